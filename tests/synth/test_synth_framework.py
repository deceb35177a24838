"""The shared pieces of pykvm.synth for any target, by hand and through the toy architecture.

Hand-worked bytes for the generic helpers (bitmap words, bit ids, dump_avail, the
kerneldumpheader, ELF records of both classes and byte orders, radix tables), then the
toy architecture of synth_toyarch.py -- ELF32/ELF64, little/big endian, 4/16 KiB pages,
an unpadded page-table section, virtual full dumps -- read back by the independent
struct reader of synth_toyreader.py.
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from synth_toyarch import build as build_toy
from synth_toyreader import ElfCore, Kernel, Minidump

from pykvm.synth import SynthDump
from pykvm.synth import elfwriter as ew
from pykvm.synth import fullcore as fc
from pykvm.synth import minidump as md
from pykvm.synth._prng import Rng, page_bytes
from pykvm.synth.kerneldump import KernelDumpHeader
from pykvm.synth.machine import Level, Machine, RadixTables
from pykvm.synth.spec import KernelSpec


def rp(x: int, ps: int = 4096) -> int:
    return (x + ps - 1) // ps * ps


# ---------------------------------------------------------------------------- generic pieces
def test_bitmap_words_by_hand() -> None:
    bits = [0, 1, 31, 32, 63, 64]
    le = bytes.fromhex("03000080010000800100000000000000")
    assert md.bitmap_bytes(bits, 16, word_bits=32, byteorder="little") == le
    assert md.bitmap_bytes(bits, 16, word_bits=64, byteorder="little") == le
    # big-endian: bit n is bit n % W of word n / W, each word stored big-endian
    be32 = bytes.fromhex("80000003800000010000000100000000")
    assert md.bitmap_bytes(bits, 16, word_bits=32, byteorder="big") == be32
    be64 = bytes.fromhex("80000001800000030000000000000001")
    assert md.bitmap_bytes(bits, 16, word_bits=64, byteorder="big") == be64
    assert md.bitmap_size(33, 32, 4096) == 4096
    assert md.bitmap_size(0x8001, 64, 4096) == 8192
    assert md.bitmap_size(1, 64, 16384) == 16384


def test_bit_ids_compress_holes() -> None:
    ids = md.BitIds([(0x1000, 0x3000), (0x10000, 0x10800)])
    assert ids.nbits == 3
    assert [ids.bit_id(pa) for pa in (0x1000, 0x2FFF, 0x3000, 0x10400, 0x10800)] == [
        0,
        1,
        None,
        2,
        None,
    ]
    assert [ids.bit_pa(b) for b in range(4)] == [0x1000, 0x2000, 0x10000, None]
    big = md.BitIds([(0x4000, 0xC000), (0x20000, 0x21000)], 16384)
    assert big.nbits == 3 and big.bit_id(0x20FFF) == 2 and big.bit_pa(1) == 0x8000


def test_dump_avail_section_by_hand() -> None:
    raw = md.dump_avail_bytes([(0x1000, 0x3000), (0x40000000, 0x48000000)], 64, "big")
    assert raw[:32] == bytes.fromhex(
        "0000000000001000000000000000300000000000400000000000000048000000"
    )
    assert raw[32:] == bytes(32)
    assert md.dump_avail_bytes([(0, 0x2000)], 32)[:16] == struct.pack("<QQ", 0, 0x2000)
    with pytest.raises(ValueError):
        md.dump_avail_bytes([(0, 0x1000)] * 4, 64)


def test_pages_bigger_than_4k_are_their_4k_pages() -> None:
    big = page_bytes(5, 0x40004000 + 123, 16384)
    assert len(big) == 16384
    assert big == b"".join(page_bytes(5, 0x40004000 + i * 4096) for i in range(4))
    assert page_bytes(5, 0x1234) == page_bytes(5, 0x1000, 4096) != page_bytes(6, 0x1000)


def test_kerneldumpheader_by_hand() -> None:
    kdh = KernelDumpHeader("powerpc", 1, dumptime=0x5EED, versionstring="FreeBSD 15.0")
    raw = kdh.pack(0x12345678)
    assert len(raw) == 512
    assert raw[:20] == b"FreeBSD Kernel Dump\0"
    assert raw[20:32] == b"powerpc".ljust(12, b"\0")
    assert struct.unpack_from(">IIQQII", raw, 32) == (4, 1, 0x12345678, 0x5EED, 0, 512)
    assert raw[64:81] == b"synth.example.org"
    assert raw[128:141] == b"FreeBSD 15.0\0"
    assert raw[495] == 0
    assert struct.unpack_from(">Q", raw, 496)[0] == 0x12345678
    for order in ("<", ">"):
        acc = 0
        for (word,) in struct.iter_unpack(order + "I", raw):
            acc ^= word
        assert acc == 0
    assert struct.unpack_from(">Q", kdh.pack(10, 4)[496:504])[0] == 4


@pytest.mark.parametrize(
    ("fmt", "sizes"),
    [
        (ew.ELF64LE, (64, 56, 64, 24)),
        (ew.ELF64BE, (64, 56, 64, 24)),
        (ew.ELF32LE, (52, 32, 40, 16)),
        (ew.ELF32BE, (52, 32, 40, 16)),
    ],
)
def test_elf_records_any_class(fmt: ew.ElfFormat, sizes: tuple[int, ...]) -> None:
    e = fmt.endian
    ehdr = ew.Ehdr(9, ew.ET_DYN, ew.EM_MIPS, 1, 0x1000, fmt.ehdr_size, 0, 0x20, 2, 0, 0)
    raw = ehdr.pack(fmt)
    assert (len(raw), fmt.phdr_size, fmt.shdr_size, fmt.sym_size) == sizes
    assert raw[:8] == bytes((0x7F, 0x45, 0x4C, 0x46, fmt.elfclass, fmt.data, 1, 9))
    assert struct.unpack_from(e + "HHI", raw, 16) == (3, 8, 1)
    flags_at = 48 if fmt.is64 else 36
    assert struct.unpack_from(e + "IHHHHHH", raw, flags_at) == (0x20, sizes[0], sizes[1], 2) + (
        sizes[2],
        0,
        0,
    )
    ph = ew.Phdr(1, 5, 0x1000, 0x2000, 0x3000, 0x10, 0x20, 0x1000).pack(fmt)
    if fmt.is64:
        assert ph == struct.pack(e + "IIQQQQQQ", 1, 5, 0x1000, 0x2000, 0x3000, 0x10, 0x20, 0x1000)
    else:  # p_flags after p_memsz in Elf32_Phdr
        assert ph == struct.pack(e + "8I", 1, 0x1000, 0x2000, 0x3000, 0x10, 0x20, 5, 0x1000)
    sym = fmt.pack_sym(7, 0xC0001000, 16, 0x12, 0, 1)
    if fmt.is64:
        assert sym == struct.pack(e + "IBBHQQ", 7, 0x12, 0, 1, 0xC0001000, 16)
    else:
        assert sym == struct.pack(e + "IIIBBH", 7, 0xC0001000, 16, 0x12, 0, 1)
    assert fmt.all_ones == (1 << (8 * fmt.addr_size)) - 1


def test_chunk_conventions() -> None:
    ranges = [(0x1000, 0x3000)]
    assert fc.chunks(ranges, ew.ELF32BE) == [fc.Chunk(0x1000, 0x1000, 0x2000, 0x1000)]
    assert fc.chunks(ranges, ew.ELF32BE, "powerpc-phys") == [
        fc.Chunk(0xFFFFFFFF, 0x1000, 0x2000, 0x1000)
    ]
    assert fc.chunks(ranges, ew.ELF64BE, "powerpc-virt") == [
        fc.Chunk(0x1000, (1 << 64) - 1, 0x2000, 0x1000)
    ]
    with pytest.raises(ValueError):
        fc.chunks(ranges, ew.ELF64LE, "sideways")
    assert fc.dump_delta(0xC0000000, 0x1000000, 4096) == ew.Phdr(
        ew.PT_DUMP_DELTA, ew.PF_R, 0, 0xC0000000, 0x1000000, 0, 0, 4096
    )


def test_radix_tables_arm_shaped() -> None:
    """Two levels with 4-byte entries: a 16 KiB root (16 KiB aligned), 1 KiB leaf tables."""
    m = Machine(1, Rng(1, "t"), page_size=4096, entry_size=4, byteorder="big")
    m.set_segments([(0x100000, 0x400000)])
    pt = RadixTables(m, [Level(20, 12), Level(12, 8)], lambda child, level: child | 1)
    assert pt.root % 0x4000 == 0 and len(m.tables[pt.root]) == 0x4000
    assert all(not m.is_free((pt.root >> 12) + i) for i in range(4))
    leaf = pt.map(0xC0123000, 0x200000, 1, 0x200000 | 2, prot=3)
    assert (leaf.va, leaf.size, leaf.pa, leaf.prot) == (0xC0123000, 4096, 0x200000, 3)
    l2 = pt.children()[(pt.root, 0xC01)]
    assert l2 % 4096 == 0 and len(m.tables[l2]) == 1024
    assert m.get_entry(pt.root, 0xC01) == l2 | 1
    assert m.get_entry(l2, 0x23) == 0x200002
    pt.map(0xC0200000, 0x300000, 0, 0x300000 | 2)  # a 1 MiB section
    with pytest.raises(ValueError):
        pt.map(0xC0201000, 0x301000, 1, 0x301002)  # under the section
    with pytest.raises(ValueError):
        pt.map(0xC0300800, 0x300000, 1, 0x300002)  # misaligned
    mem = m.finish()
    root_bytes = mem.read(pt.root, 0x4000)
    assert root_bytes[0xC01 * 4 : 0xC01 * 4 + 4] == (l2 | 1).to_bytes(4, "big")
    assert root_bytes[0xC02 * 4 : 0xC02 * 4 + 4] == (0x300002).to_bytes(4, "big")
    page = mem.page(l2 >> 12)
    assert page[0x23 * 4 : 0x23 * 4 + 4] == (0x200002).to_bytes(4, "big")
    assert page[1024:] == bytes(3072)  # the rest of a small table's page is zero
    assert [x.va for x in m.leaves] == [0xC0123000, 0xC0200000]
    assert m.hole_addresses() == [0, 0x400000 + 3 * (1 << 20)]


def test_alloc_alignment_and_place() -> None:
    m = Machine(2, Rng(2, "t"), page_size=16384)
    m.set_segments([(0x40000000, 0x41000000)])
    pa = m.alloc(2, align=1 << 20)
    assert pa % (1 << 20) == 0 and not m.is_free(pa >> 14) and not m.is_free((pa >> 14) + 1)
    m.place(0x40000000, b"hello")
    mem = m.finish()
    assert mem.page(0x40000000 >> 14) == b"hello".ljust(16384, b"\0")
    assert mem.read(0x40004000, 16) == page_bytes(2, 0x40004000, 16384)[:16]
    with pytest.raises(ValueError):
        m.set_segments([(0x1000, 0x2000)])  # not 16 KiB aligned


def test_kernel_spec_checks() -> None:
    base = dict(arch="x", elfclass=ew.ELFCLASS32, data=ew.ELFDATA2MSB, e_machine=ew.EM_PPC)
    spec = KernelSpec(**base, kernbase=0xC0000000)  # type: ignore[arg-type]
    assert (spec.ptr_size, spec.word_bits, spec.paddr_bytes, spec.byteorder) == (4, 32, 4, "big")
    assert spec.word(0x12345678) == bytes.fromhex("12345678")
    assert spec.array([1, 2], 8) == bytes.fromhex("00000000000000010000000000000002")
    for bad in (
        {"kernbase": 0xC0000000, "page_size": 3000},
        {"kernbase": 0xC0000000, "load_offset": 0x100},
        {"kernbase": 0x1_0000_0000},
        {"kernbase": 0xC0000000, "text_offset": 0x10},
        {"kernbase": 0xC0000000, "paddr_size": 2},
    ):
        with pytest.raises(ValueError):
            KernelSpec(**base, **bad)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------- the toy
def toy(tmp_path: Path, name: str, **kw: object) -> SynthDump:
    d = tmp_path / name
    d.mkdir()
    return build_toy(d, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("bits", "order", "ps", "text_offset"),
    [(32, "big", 4096, 0x100), (64, "little", 16384, None), (64, "big", 4096, None)],
)
def test_toy_kernel_elf(
    tmp_path: Path, bits: int, order: str, ps: int, text_offset: int | None
) -> None:
    dump = toy(
        tmp_path, "k", seed=2, fmt="minidump", bits=bits, order=order, page_size=ps,
        text_offset=text_offset,
    )  # fmt: skip
    t = dump.truth
    data = dump.kernel.read_bytes()
    e = "<" if order == "little" else ">"
    assert data[:8] == bytes(
        (0x7F, 0x45, 0x4C, 0x46, 2 if bits == 64 else 1, 1 if e == "<" else 2, 1, 9)
    )
    e_type, e_machine = struct.unpack_from(e + "HH", data, 16)
    assert (e_type, e_machine) == (3, 21 if bits == 64 else 20)  # ET_DYN, EM_PPC64 / EM_PPC
    kernbase = 0xFFFFFFFFC0000000 if bits == 64 else 0xC0000000
    image_va = kernbase + 0x100000
    text = ps if text_offset is None else text_offset
    if bits == 64:
        e_entry, e_phoff = struct.unpack_from(e + "QQ", data, 24)
        e_flags, ehsize, phentsize, phnum = struct.unpack_from(e + "IHHH", data, 48)
        ph0 = struct.unpack_from(e + "IIQQQQQQ", data, e_phoff)
        p_type, p_flags, p_offset, p_vaddr, p_paddr, _, _, p_align = ph0
    else:
        e_entry, e_phoff = struct.unpack_from(e + "II", data, 24)
        e_flags, ehsize, phentsize, phnum = struct.unpack_from(e + "IHHH", data, 36)
        ph0 = struct.unpack_from(e + "8I", data, e_phoff)
        p_type, p_offset, p_vaddr, p_paddr, _, _, p_flags, p_align = ph0
    assert (e_flags, ehsize, phentsize, phnum) == (0x20, e_phoff, 56 if bits == 64 else 32, 2)
    assert e_entry == image_va + text
    assert (p_type, p_flags, p_offset, p_vaddr, p_paddr, p_align) == (
        1,
        5,
        0,
        image_va,
        0x100000,
        ps,
    )
    # the independent reader finds the same symbols; values are in the kernel's order
    k = Kernel(data)
    assert k.symbols == t.symbols
    assert t.symbols["kernbase"] == kernbase and t.symbols["btext"] == image_va + text
    word = 8 if bits == 64 else 4
    v = t.variables
    assert k.uint(v["hz"]) in (100, 1000) and len(v["hz"]) == 4
    assert len(v["kernel_vm_end"]) == word == len(v["physmem"]) == len(v["toy_root"])
    assert k.uint(v["kernel_vm_end"]) == t.kernel_vm_end
    assert k.uint(v["toy_root"]) == t.extras["toy_root"]
    assert k.uint(v["toy_flags"]) == 0x1234
    assert k.uint(v["synth_pair"]) == 0x5EED000000000001
    avail = [k.uint(v["dump_avail"][i : i + word]) for i in range(0, 32 * word, word)]
    assert list(zip(avail[0:8:2], avail[1:8:2], strict=True))[: len(t.dump_avail)] == t.dump_avail
    assert t.expect(t.symbols["version"], 8) == b"FreeBSD "
    assert f"/usr/src/toy.toy{bits}".encode() in v["version"]


def test_toy_minidump_hand_worked(tmp_path: Path) -> None:
    """ELF32 big-endian, 4 KiB pages, unpadded page-table section of 4 MiB x 4 + 3 pages."""
    dump = toy(
        tmp_path, "m", seed=1, fmt="minidump", bits=32, order="big", pad_pmap=False,
        tail_pages=3,
    )  # fmt: skip
    t = dump.truth
    data = dump.core.read_bytes()
    assert data[:24] == b"minidump FreeBSD/toy\0\0\0\0"
    version, msgbufsize, bitmapsize, pmapsize = struct.unpack_from(">IIII", data, 24)
    kernbase, kvm_end, davail, ps = struct.unpack_from(">QQII", data, 40)
    assert (version, kernbase, davail, ps) == (1, 0xC0000000, 4096, 4096)
    assert kvm_end == 0xC0000000 + 4 * (4 << 20) + 3 * 4096 == t.kernel_vm_end
    assert msgbufsize == len(t.msgbuf) and data[64:4096] == bytes(4032)
    assert pmapsize == 4 * ((kvm_end - kernbase) // 4096) == 4 * (4 * 1024 + 3)
    # sections by hand: header page, msgbuf, dump_avail page, bitmap, pmap (unpadded)
    dump_avail_off = 4096 + rp(msgbufsize)
    bitmap_off = dump_avail_off + 4096
    pmap_off = bitmap_off + bitmapsize
    sparse_off = pmap_off + pmapsize
    assert sparse_off % 4096 == 12  # 3 four-byte entries past a page boundary
    assert (t.layout["pmap_off"], t.layout["sparse_off"]) == (pmap_off, sparse_off)
    assert data[4096 : 4096 + msgbufsize] == t.msgbuf
    pairs = [struct.unpack_from(">QQ", data, dump_avail_off + 16 * i) for i in range(4)]
    assert pairs[: len(t.dump_avail)] == t.dump_avail and pairs[len(t.dump_avail)] == (0, 0)
    npages = sum(-(-e // 4096) - s // 4096 for s, e in t.dump_avail)
    assert bitmapsize == rp((npages + 31) // 32 * 4)
    words = struct.unpack_from(f">{bitmapsize // 4}I", data, bitmap_off)
    set_bits = [i * 32 + b for i, w in enumerate(words) for b in range(32) if w >> b & 1]
    assert len(set_bits) == t.dumped_pages and len(data) == sparse_off + 4096 * len(set_bits)
    # the kernel's first page: bit id of kernphys (in the first range), rank, page data
    bit = t.kernphys // 4096 - t.dump_avail[0][0] // 4096
    assert bit in set_bits
    off = sparse_off + set_bits.index(bit) * 4096
    assert data[off : off + 4096] == dump.kernel.read_bytes()[:4096]
    assert t.core_offset(t.kernphys + 5) == off + 5
    # the flat PTE array: the image's first page maps kernphys, read-only (V, no W)
    pte = struct.unpack_from(">I", data, pmap_off + (0x100000 // 4096) * 4)[0]
    assert pte == t.kernphys | 1
    assert Minidump(data, Kernel(dump.kernel.read_bytes()), padded=False).npages == len(set_bits)


def test_toy_minidump_16k_pages(tmp_path: Path) -> None:
    dump = toy(tmp_path, "m", seed=4, fmt="minidump", bits=64, order="big", page_size=16384)
    t = dump.truth
    data = dump.core.read_bytes()
    ps = 16384
    assert t.page_size == ps and struct.unpack_from(">I", data, 60)[0] == ps
    lay = t.layout
    assert lay["msgbuf_off"] == ps and lay["dumpavailsize"] == ps
    assert lay["dump_avail_off"] == ps + rp(lay["msgbufsize"], ps)
    assert lay["bitmap_off"] == lay["dump_avail_off"] + ps
    npages = sum(-(-e // ps) - s // ps for s, e in t.dump_avail)
    assert lay["bitmapsize"] == rp((npages + 63) // 64 * 8, ps)
    assert lay["sparse_off"] == lay["pmap_off"] + rp(lay["pmapsize"], ps)
    assert all(lay[k] % ps == 0 for k in ("bitmap_off", "pmap_off", "sparse_off"))
    assert len(data) == lay["sparse_off"] + ps * t.dumped_pages
    off = t.core_offset(t.kernphys)
    assert off is not None and data[off : off + ps] == dump.kernel.read_bytes()[:ps]


def test_toy_full_dumps(tmp_path: Path) -> None:
    # physical chunks, ELF32 little-endian, 16 KiB pages, PT_DUMP_DELTA last
    dump = toy(tmp_path, "p", seed=5, fmt="elf", bits=32, order="little", page_size=16384)
    t = dump.truth
    data = dump.core.read_bytes()
    assert data[:8] == b"\x7fELF\x01\x01\x01\xff"
    assert struct.unpack_from("<HHI", data, 16) == (4, 20, 0)  # ET_CORE, EM_PPC, e_version 0
    assert struct.unpack_from("<III", data, 24) == (0, 52, 0)  # e_entry, e_phoff, e_shoff
    n = len(t.dump_avail) + 1
    assert struct.unpack_from("<IHHHHHH", data, 36) == (0, 52, 32, n, 40, 0, 0)
    offset = rp(52 + 32 * n, 16384)
    for i, (s, e) in enumerate(t.dump_avail):
        ph = struct.unpack_from("<8I", data, 52 + 32 * i)
        assert ph == (1, offset, s, s, e - s, e - s, 4, 16384)
        offset += e - s
    image_va = 0xC0000000 + 0x100000
    delta = struct.unpack_from("<8I", data, 52 + 32 * (n - 1))
    assert delta == (0x6FB5D000, 0, image_va, t.kernphys, 0, 0, 4, 16384)
    assert len(data) == offset and t.dumped_pages * 16384 == t.physmem
    assert [p.p_type for p in t.phdrs] == [1] * (n - 1) + [0x6FB5D000]

    # powerpc "virtual" chunks, ELF32 big-endian, behind a kerneldumpheader
    dump = toy(tmp_path, "v", seed=5, fmt="elf-virt", bits=32, order="big")
    t = dump.truth
    data = dump.core.read_bytes()
    assert data[:20] == b"FreeBSD Kernel Dump\0" and data[20:27] == b"toy32eb"
    assert struct.unpack_from(">IIQ", data, 32) == (4, 1, len(data) - 512)
    assert data[512:520] == b"\x7fELF\x01\x02\x01\xff"
    assert struct.unpack_from(">HH", data, 528) == (4, 20)
    phs = [struct.unpack_from(">8I", data, 512 + 52 + 32 * i) for i in range(2)]
    # the image, then the kmem run: root slot 2 (8 MiB up), second half of its table
    run_va = 0xC0000000 + 2 * (4 << 20) + 512 * 4096
    assert [(p[0], p[2], p[3], p[6]) for p in phs] == [
        (1, image_va, 0xFFFFFFFF, 4),
        (1, run_va, 0xFFFFFFFF, 4),
    ]
    assert phs[1][4] == phs[1][5] == 6 * 4096
    assert phs[0][1] == 4096 and phs[1][1] == 4096 + phs[0][4]
    k_off = 512 + phs[0][1]
    assert data[k_off : k_off + 4096] == dump.kernel.read_bytes()[:4096]
    assert t.core_offset(t.kernphys) == k_off
    assert t.layout == {"prefix": 512}


TOY_CASES = [
    (fmt, bits, order, ps)
    for fmt in ("minidump", "elf", "elf-virt")
    for bits, order, ps in ((64, "little", 4096), (32, "big", 4096), (64, "big", 16384))
]


@pytest.mark.parametrize(("fmt", "bits", "order", "ps"), TOY_CASES)
def test_toy_reader_agrees_with_truth(
    tmp_path: Path, fmt: str, bits: int, order: str, ps: int
) -> None:
    pad = not (bits == 32 and fmt == "minidump")
    dump = toy(
        tmp_path, "r", seed=7, fmt=fmt, bits=bits, order=order, page_size=ps, pad_pmap=pad,
        tail_pages=0 if pad else 5,
    )  # fmt: skip
    t = dump.truth
    kernel = Kernel(dump.kernel.read_bytes())
    core = dump.core.read_bytes()
    r = Minidump(core, kernel, pad) if fmt == "minidump" else ElfCore(core, kernel, ps)
    assert len(t.regions) >= 15
    for va, data in t.regions:
        assert r.read(va, len(data)) == data, hex(va)
    assert len(t.holes) == len(t.hole_kinds) >= 5
    for va in t.holes:
        assert t.expect(va, 1) is None and r.read(va, 1) is None, hex(va)
    for leaf in t.leaves:
        for va in (leaf.va, leaf.va + leaf.size - 8, leaf.va + leaf.size // 2 + 0x123):
            assert r.read(va, 8) == t.expect(va, 8), hex(va)
    assert {"user", "invalid-pde", "invalid-pte", "pte-to-physical-hole"} <= set(t.hole_kinds)
    assert ("pte-to-nodump-page" in t.hole_kinds) == (fmt != "elf")
    assert t.spec is not None and t.spec.page_size == ps == t.page_size


def test_toy_is_deterministic(tmp_path: Path) -> None:
    kw = {"seed": 9, "fmt": "minidump", "bits": 32, "order": "big", "page_size": 16384}
    a, b = toy(tmp_path, "a", **kw), toy(tmp_path, "b", **kw)
    assert a.kernel.read_bytes() == b.kernel.read_bytes()
    assert a.core.read_bytes() == b.core.read_bytes()
    assert a.truth.regions == b.truth.regions and a.truth.holes == b.truth.holes
    c = toy(tmp_path, "c", **{**kw, "seed": 10})
    assert c.truth.dump_avail != a.truth.dump_avail


# ---------------------------------------------------------------------------- kernel options
def test_kernel_extra_bss_and_ctf_section() -> None:
    """``extra_bss`` variables are contiguous and 8-aligned; ``ctf_section`` adds section 8."""
    from elftools.elf.elffile import ELFFile

    from pykvm.synth.arch_amd64 import SPEC
    from pykvm.synth.kernel import SynthKernel

    plain = SynthKernel(SPEC, 9)
    k = SynthKernel(SPEC, 9, extra_bss=[("kd_a", 12), ("kd_b", 8), ("kd_c", 3)])
    assert k.var_address("kd_b") == k.var_address("kd_a") + 16
    assert k.var_address("kd_c") == k.var_address("kd_b") + 8
    assert plain.var_address("dumptid") == k.var_address("dumptid")
    seen: list[int] = []

    def ctf(symbols: object) -> bytes:
        seen.append(len(list(symbols)))  # type: ignore[call-overload]
        return b"\xf1\xcf\x03\x00" + bytes(32)

    k.ctf_section = ctf
    import io

    elf = ELFFile(io.BytesIO(k.file_bytes()))
    assert elf["e_shstrndx"] == 7 and elf.num_sections() == 9
    sec = elf.get_section(8)
    assert sec.name == ".SUNW_ctf" and sec.data()[:2] == b"\xf1\xcf"
    assert seen == [len(k.symbols())]
    assert ELFFile(io.BytesIO(plain.file_bytes())).num_sections() == 8
