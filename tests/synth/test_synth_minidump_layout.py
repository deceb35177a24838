"""Byte-level checks of synthetic amd64 dumps at hand-worked offsets (formats.md 3.1, 4.1, 5.2)."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from pykvm.synth import build_amd64

PS = 4096
KERNBASE = 0xFFFFFFFF80000000
IMAGE_VA = 0xFFFFFFFF80200000
SMALL_VM_MIN = 0xFFFFFFFF00000000


def u32(data: bytes, off: int) -> int:
    return int(struct.unpack_from("<I", data, off)[0])


def u64(data: bytes, off: int) -> int:
    return int(struct.unpack_from("<Q", data, off)[0])


def rp(x: int) -> int:
    return (x + 4095) // 4096 * 4096


def popcount(data: bytes) -> int:
    return sum(bin(b).count("1") for b in data)


def bit_id_v3(avail: list[tuple[int, int]], pa: int) -> int:
    adj = 0
    for s, e in avail:
        if s <= pa < e:
            return pa // PS - s // PS + adj
        adj += -(-e // PS) - s // PS
    raise AssertionError("pa not in dump_avail")


def rank(bitmap: bytes, bit: int) -> int:
    whole = popcount(bitmap[: bit // 8])
    return whole + bin(bitmap[bit // 8] & ((1 << (bit % 8)) - 1)).count("1")


def test_v3_tiny_header_and_sections(tmp_path: Path) -> None:
    dump = build_amd64(tmp_path, seed=1, fmt="minidump-v3", small_kva=True)
    t = dump.truth
    data = dump.core.read_bytes()
    assert dump.core == tmp_path / "vmcore" and dump.kernel == tmp_path / "kernel"

    # header: magic at 0 (NUL padded to 24), version 24, msgbufsize 28, bitmapsize 32,
    # pmapsize 36, kernbase 40, dmapbase 48, dmapend 56, dumpavailsize 64, rest of page zero
    assert data[:24] == b"minidump FreeBSD/amd64\0\0"
    assert u32(data, 24) == 3
    msgbufsize = u32(data, 28)
    bitmapsize = u32(data, 32)
    pmapsize = u32(data, 36)
    assert msgbufsize == len(t.msgbuf)
    assert u64(data, 40) == SMALL_VM_MIN == t.kernbase
    assert u64(data, 48) == 0xFFFFF80000000000
    assert u64(data, 56) == 0xFFFFFC0000000000
    assert u32(data, 64) == 4096
    assert data[68:4096] == bytes(4028)
    # pmap: KVA 0xffffffff00000000 .. kernel_vm_end (< 0xffffffffc0000000) is 3 GiB pages
    assert pmapsize == 3 * 4096

    # sections by hand (formats.md 3.1)
    msgbuf_off = 4096
    dump_avail_off = 4096 + rp(msgbufsize)
    bitmap_off = dump_avail_off + 4096
    pmap_off = bitmap_off + rp(bitmapsize)
    sparse_off = pmap_off + rp(pmapsize)
    assert t.layout["sparse_off"] == sparse_off
    assert data[msgbuf_off : msgbuf_off + msgbufsize] == t.msgbuf
    assert data[msgbuf_off : msgbuf_off + msgbufsize].startswith(b"---<<BOOT>>---\n")
    assert data[msgbuf_off + msgbufsize : dump_avail_off] == bytes(rp(msgbufsize) - msgbufsize)

    pairs = []
    i = dump_avail_off
    while u64(data, i + 8):
        pairs.append((u64(data, i), u64(data, i + 8)))
        i += 16
    assert pairs == t.dump_avail
    assert 4 <= len(pairs) <= 5
    assert data[i : dump_avail_off + 4096] == bytes(dump_avail_off + 4096 - i)

    # bitmap: one bit per page of the dump_avail ranges, holes compressed
    npages = sum(-(-e // PS) - s // PS for s, e in pairs)
    assert bitmapsize == rp((npages + 63) // 64 * 8)
    bitmap = data[bitmap_off : bitmap_off + bitmapsize]
    set_bits = popcount(bitmap)
    assert set_bits == t.dumped_pages
    assert len(data) == sparse_off + 4096 * set_bits

    # the kernel's first page (its ELF header) sits at sparse_off + rank(bit(kernphys)) pages
    bit = bit_id_v3(pairs, t.kernphys)
    assert bitmap[bit // 8] >> (bit % 8) & 1
    off = sparse_off + rank(bitmap, bit) * PS
    kernel = dump.kernel.read_bytes()
    assert data[off : off + 4096] == kernel[:4096]
    assert t.core_offset(t.kernphys) == off

    # pmap: the KERNBASE GiB is a copy of the live PD; its PDE 1 points at the page table
    # whose PTE 0 maps IMAGE_VA -> kernphys, read-only and executable
    pde = u64(data, pmap_off + ((IMAGE_VA - SMALL_VM_MIN) >> 21) * 8)
    assert pde & 0x81 == 0x01
    pt_off = sparse_off + rank(bitmap, bit_id_v3(pairs, pde & 0x000FFFFFFFFFF000)) * PS
    pte = u64(data, pt_off + ((IMAGE_VA >> 12) & 511) * 8)
    assert pte & 0x000FFFFFFFFFF000 == t.kernphys
    assert pte & 0x1 and not pte & 0x2 and not pte >> 63

    # the 1 GiB mapping appears as a fake PD: entry j = PDPE + j * 2 MiB, all with PG_PS
    fake = [leaf for leaf in t.leaves if leaf.size == 1 << 30]
    assert len(fake) == 1
    g = (fake[0].va - SMALL_VM_MIN) >> 30
    entries = struct.unpack_from("<512Q", data, pmap_off + g * 4096)
    assert entries[0] == fake[0].entry and entries[0] & 0x80
    assert all(entries[j] == entries[0] + j * (1 << 21) for j in range(512))


def test_v3_default_kva_is_8mib_of_pmap(tmp_path: Path) -> None:
    dump = build_amd64(tmp_path, seed=0, fmt="minidump-v3")
    data = dump.core.read_bytes()
    assert u64(data, 40) == 0xFFFFFE0000000000
    # one page per GiB from 0xfffffe0000000000 up to kernel_vm_end in the KERNBASE GiB:
    # 2046 GiBs below KERNBASE plus the KERNBASE GiB
    assert u32(data, 36) == 2047 * 4096
    assert dump.truth.kernel_vm_end < 0xFFFFFFFFC0000000


def test_v2_header_bitmap_is_linear(tmp_path: Path) -> None:
    dump = build_amd64(tmp_path, seed=2, fmt="minidump-v2", small_kva=True)
    t = dump.truth
    data = dump.core.read_bytes()
    assert data[:24] == b"minidump FreeBSD/amd64\0\0"
    assert u32(data, 24) == 2
    assert data[64:4096] == bytes(4032)  # no dumpavailsize field in v2
    msgbufsize, bitmapsize, pmapsize = u32(data, 28), u32(data, 32), u32(data, 36)
    end_of_ram = t.dump_avail[-1][1]
    assert bitmapsize == rp((end_of_ram // PS + 63) // 64 * 8)
    bitmap_off = 4096 + rp(msgbufsize)  # no dump_avail section
    pmap_off = bitmap_off + bitmapsize
    sparse_off = pmap_off + pmapsize
    bitmap = data[bitmap_off:pmap_off]
    assert t.layout["sparse_off"] == sparse_off
    assert len(data) == sparse_off + 4096 * popcount(bitmap)
    # bit n = pa >> 12
    pfn = t.kernphys // PS
    assert bitmap[pfn // 8] >> (pfn % 8) & 1
    off = sparse_off + rank(bitmap, pfn) * PS
    assert data[off : off + 64] == dump.kernel.read_bytes()[:64]
    # pages of holes between dump_avail ranges are never dumped
    s1 = t.dump_avail[1][0]
    hole_pfn = s1 // PS - 1
    assert not bitmap[hole_pfn // 8] >> (hole_pfn % 8) & 1


def test_v1_pte_array(tmp_path: Path) -> None:
    dump = build_amd64(tmp_path, seed=3, fmt="minidump-v1")
    t = dump.truth
    data = dump.core.read_bytes()
    assert u32(data, 24) == 1
    assert u64(data, 40) == KERNBASE == t.kernbase
    ptesize = u32(data, 36)
    assert ptesize == (t.kernel_vm_end - KERNBASE) // 4096 * 8
    msgbufsize, bitmapsize = u32(data, 28), u32(data, 32)
    pte_off = 4096 + rp(msgbufsize) + bitmapsize
    pte = u64(data, pte_off + ((IMAGE_VA - KERNBASE) >> 12) * 8)
    assert pte & 0x000FFFFFFFFFF000 == t.kernphys and pte & 1
    # the 2 MiB superpage right after the nkpt page tables is written as 512 fake PTEs
    sp_va = KERNBASE + t.nkpt * (1 << 21)
    sp = [leaf for leaf in t.leaves if leaf.va == sp_va]
    assert sp and sp[0].size == 1 << 21
    first = (sp_va - KERNBASE) >> 12
    ptes = struct.unpack_from("<512Q", data, pte_off + first * 8)
    assert all(p == (sp[0].pa + k * PS) | 0x63 for k, p in enumerate(ptes))
    bitmap = data[4096 + rp(msgbufsize) : pte_off]
    assert len(data) == pte_off + ptesize + 4096 * popcount(bitmap)


@pytest.mark.parametrize("delta", [False, True])
def test_elf_core_headers(tmp_path: Path, delta: bool) -> None:
    dump = build_amd64(tmp_path, seed=4, fmt="elf", dump_delta=delta)
    t = dump.truth
    data = dump.core.read_bytes()
    assert data[:16] == b"\x7fELF\x02\x01\x01\xff" + bytes(8)
    assert struct.unpack_from("<H", data, 16)[0] == 4  # ET_CORE
    assert struct.unpack_from("<H", data, 18)[0] == 62  # EM_X86_64
    assert u64(data, 32) == 64  # e_phoff
    assert u64(data, 40) == 0  # e_shoff
    assert struct.unpack_from("<HHHHHH", data, 52) == (64, 56, len(t.dump_avail) + delta, 64, 0, 0)
    phnum = struct.unpack_from("<H", data, 56)[0]
    offset = rp(64 + phnum * 56)
    assert offset == 4096
    for i, (s, e) in enumerate(t.dump_avail):
        ph = struct.unpack_from("<IIQQQQQQ", data, 64 + i * 56)
        assert ph == (1, 4, offset, s, s, e - s, e - s, 4096)
        offset += e - s
    assert len(data) == offset == 4096 + t.physmem
    if delta:
        ph = struct.unpack_from("<IIQQQQQQ", data, 64 + len(t.dump_avail) * 56)
        assert ph == (0x6FB5D000, 4, 0, KERNBASE, t.kernphys, 0, 0, 0x200000)
    # the kernel image is in RAM at kernphys: the kernel file's first page
    s0, e0 = next((s, e) for s, e in t.dump_avail if s <= t.kernphys < e)
    i0 = t.dump_avail.index((s0, e0))
    base = struct.unpack_from("<Q", data, 64 + i0 * 56 + 8)[0]
    off = base + t.kernphys - s0
    assert data[off : off + 4096] == dump.kernel.read_bytes()[:4096]
    # KPML4phys read at physical (KPML4phys - kernbase), legacy rule with kernphys = 2 MiB
    kp = t.symbols["KPML4phys"] - t.symbols["kernbase"]
    off = base + kp - s0
    assert u64(data, off) == t.kpml4phys
    assert t.dumped_pages == t.physmem // 4096
    assert t.version == 0 and t.walk == []


def test_msgbuf_size_not_page_multiple_somewhere(tmp_path: Path) -> None:
    sizes = set()
    for seed in range(6):
        d = tmp_path / str(seed)
        d.mkdir()
        t = build_amd64(d, seed=seed, fmt="minidump-v3", small_kva=True).truth
        sizes.add(t.layout["msgbufsize"])
        assert t.layout["dump_avail_off"] == 4096 + rp(t.layout["msgbufsize"])
    assert any(s % 4096 for s in sizes)
    assert len(sizes) > 1
