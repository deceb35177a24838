"""Synthetic riscv kernels and minidumps (pykvm.synth.arch_riscv), checked by hand.

Header fields and section offsets are worked out here from formats.md 3.1-3.3 and 12.2
(not from the writer); the files are read back by the struct-only reader
``synth_riscv_reader`` and compared with the ground truth.
"""

from __future__ import annotations

import struct
import time
from pathlib import Path

import pytest
from synth_riscv_reader import Minidump
from synth_toyreader import Kernel

from pykvm import synth
from pykvm.synth import SynthDump
from pykvm.synth.arch_riscv import build_riscv
from pykvm.synth.arch_riscv.builder import high_bit_ptes
from pykvm.synth.arch_riscv.machine import RiscvMachine

PS = 4096
KERNBASE = 0xFFFFFFC000000000
DMAPBASE = 0xFFFFFFD000000000
DMAPEND = 0xFFFFFFF000000000
FORMATS = ("minidump-sv39", "minidump-sv48", "minidump-sv39-v1")


def u32(data: bytes, off: int) -> int:
    return int(struct.unpack_from("<I", data, off)[0])


def u64(data: bytes, off: int) -> int:
    return int(struct.unpack_from("<Q", data, off)[0])


def rp(x: int) -> int:
    return (x + PS - 1) // PS * PS


@pytest.fixture(scope="module")
def dumps(tmp_path_factory: pytest.TempPathFactory) -> dict[str, SynthDump]:
    return {fmt: build_riscv(tmp_path_factory.mktemp(fmt), 1, fmt) for fmt in FORMATS}


def test_formats_and_registry() -> None:
    assert synth.formats("riscv") == FORMATS
    assert synth.default_format("riscv") == "minidump-sv39"


@pytest.mark.parametrize("fmt", FORMATS)
def test_header_and_sections_by_hand(dumps: dict[str, SynthDump], fmt: str) -> None:
    dump = dumps[fmt]
    t = dump.truth
    data = dump.core.read_bytes()
    version = 1 if fmt.endswith("v1") else 2
    assert t.version == version and t.page_size == PS

    # magic 0, version 24, msgbufsize 28, bitmapsize 32, pmapsize 36, kernbase 40,
    # dmapphys 48, dmapbase 56, dmapend 64, dumpavailsize 72 (v2)
    assert data[:24] == b"minidump FreeBSD/riscv\0\0"
    assert u32(data, 24) == version
    msgbufsize, bitmapsize, pmapsize = u32(data, 28), u32(data, 32), u32(data, 36)
    assert msgbufsize == len(t.msgbuf)
    assert u64(data, 40) == KERNBASE == t.kernbase
    assert u64(data, 48) == 0x80000000 == t.extras["dmapphys"]
    assert (u64(data, 56), u64(data, 64)) == (DMAPBASE, DMAPEND)
    end = 76 if version == 2 else 72
    if version == 2:
        assert u32(data, 72) == PS
    assert data[end:PS] == bytes(PS - end)
    assert pmapsize == (t.kernel_vm_end - KERNBASE) // (2 << 20) * PS

    dump_avail_off = PS + rp(msgbufsize)
    bitmap_off = dump_avail_off + (PS if version == 2 else 0)
    pmap_off = bitmap_off + rp(bitmapsize)
    sparse_off = pmap_off + rp(pmapsize)
    assert (t.layout["bitmap_off"], t.layout["sparse_off"]) == (bitmap_off, sparse_off)
    assert data[PS : PS + msgbufsize] == t.msgbuf
    if version == 2:
        pairs = [struct.unpack_from("<QQ", data, dump_avail_off + 16 * i) for i in range(5)]
        assert pairs[4] == (0, 0) and pairs[:4] == t.dump_avail
        assert pairs[0][0] >= 0x80200000  # the SBI firmware's first 2 MiB are not RAM here
        npages = sum(-(-e // PS) - s // PS for s, e in t.dump_avail)

        def bit_of(pa: int) -> int:
            adj = 0
            for s, e in t.dump_avail:
                if s <= pa < e:
                    return pa // PS - s // PS + adj
                adj += -(-e // PS) - s // PS
            raise AssertionError(hex(pa))

    else:
        npages = t.dump_avail[-1][1] // PS

        def bit_of(pa: int) -> int:
            return pa // PS

    assert bitmapsize == rp((npages + 63) // 64 * 8)
    bitmap = data[bitmap_off : bitmap_off + bitmapsize]
    popcount = sum(bin(b).count("1") for b in bitmap)
    assert popcount == t.dumped_pages and len(data) == sparse_off + PS * popcount
    bit = bit_of(t.kernphys)
    assert u64(data, bitmap_off + bit // 64 * 8) >> (bit % 64) & 1
    rank = sum(bin(b).count("1") for b in bitmap[: bit // 8])
    rank += bin(bitmap[bit // 8] & ((1 << (bit % 8)) - 1)).count("1")
    assert (
        data[sparse_off + rank * PS : sparse_off + (rank + 1) * PS]
        == (dump.kernel.read_bytes()[:PS])
    )

    # PTE 0: the kernel megapage's fake L3 entry l2e | (0 << 10): kernphys, V R W X A D;
    # PTE 1 is l2e | (1 << 10)
    pte0, pte1 = struct.unpack_from("<2Q", data, pmap_off)
    assert pte0 == (t.kernphys >> 12) << 10 | 0xCF
    assert pte1 == pte0 | 1 << 10
    # a PTE with Svpbmt / reserved bits: the PPN is bits 10-53
    ptes = struct.unpack_from(f"<{pmapsize // 8}Q", data, pmap_off)
    high = [(i, e) for i, e in enumerate(ptes) if e >> 54]
    assert high
    for i, e in high:
        pa = (e >> 10 & (1 << 44) - 1) << 12
        va = KERNBASE + i * PS
        leaf = next(leaf for leaf in t.leaves if leaf.va == va)
        assert leaf.pa == pa
        if e >> 54 & 0xFF:  # bits 54-61 survive an unmasked 64-bit (pte >> 10) << 12
            assert pa != (e >> 10) << 12 & (1 << 64) - 1


@pytest.mark.parametrize("fmt", FORMATS)
def test_reader_agrees_with_truth(dumps: dict[str, SynthDump], fmt: str) -> None:
    t = dumps[fmt].truth
    r = Minidump(dumps[fmt].core.read_bytes())
    assert r.msgbuf == t.msgbuf and r.npages == t.dumped_pages
    for va, data in t.regions:
        assert r.read(va, len(data)) == data, hex(va)
    for va in t.holes:
        assert r.read(va, 1) is None, hex(va)
    assert [tuple(vars(p).values()) for p in r.walk()] == [
        (w.version, w.paddr, w.kmap_vaddr, w.dmap_vaddr, w.prot, w.offset, w.len) for w in t.walk
    ]
    probes: list[int] = []
    for leaf in t.leaves:
        probes += [leaf.va - 1, leaf.va, leaf.va + leaf.size - 1, leaf.va + leaf.size]
    for s, e in t.dump_avail:
        probes += [DMAPBASE + x - t.extras["dmapphys"] for x in (s - 1, s, e - 1, e)]
    for va in probes:
        assert r.read(va, 1) == t.expect(va, 1), hex(va)
    for pa in (t.kernphys, t.dump_avail[-1][0]):
        assert t.core_offset(pa) == (None if r.offset(pa) < 0 else r.offset(pa))


def test_high_bit_ptes_are_readable_only_when_masked(dumps: dict[str, SynthDump]) -> None:
    t = dumps["minidump-sv39"].truth
    m = RiscvMachine(1)
    hi = high_bit_ptes(m)
    assert set(hi) == {"nc", "reserved", "nc-ro-reserved"}
    assert any(e >> 61 & 3 for e in hi.values()) and any(e >> 54 & 0x7F for e in hi.values())
    for name, entry in hi.items():
        va = m.kind_vas[name]
        data = t.expect(va, PS)
        assert data is not None, name
        # an unmasked reader lands far outside the dump
        unmasked = (entry >> 10) << 12 & (1 << 64) - 1
        assert t.phys_expect(unmasked, 1) is None


def test_stale_pte(dumps: dict[str, SynthDump]) -> None:
    t = dumps["minidump-sv39"].truth
    data = dumps["minidump-sv39"].core.read_bytes()
    va = t.holes[t.hole_kinds.index("invalid-pte-stale")]
    e = u64(data, t.layout["pmap_off"] + (va - KERNBASE) // PS * 8)
    assert not e & 1 and e & 0xC6 == 0xC6 and e >> 10


def test_sv48_pmap_mode(dumps: dict[str, SynthDump]) -> None:
    t39, t48 = dumps["minidump-sv39"].truth, dumps["minidump-sv48"].truth
    assert (t39.extras["pmap_mode"], t48.extras["pmap_mode"]) == (0, 1)
    assert u32(t48.variables["pmap_mode"], 0) == 1
    assert t48.kernbase == t39.kernbase and t48.dmapbase == t39.dmapbase
    assert t48.expect(t48.symbols["pmap_mode"], 4) == b"\1\0\0\0"


def test_kernel_elf(dumps: dict[str, SynthDump]) -> None:
    t = dumps["minidump-sv39"].truth
    raw = dumps["minidump-sv39"].kernel.read_bytes()
    assert raw[:7] == b"\x7fELF\x02\x01\x01" and raw[7] == 9
    assert struct.unpack_from("<HHI", raw, 16) == (2, 243, 1)
    assert u32(raw, 48) == 1  # EF_RISCV_RVC
    k = Kernel(raw)
    assert {n: k.symbols[n] for n in t.symbols if n in k.symbols} == {
        n: v for n, v in t.symbols.items() if n in k.symbols
    }
    assert k.symbols["kernbase"] == KERNBASE
    avail = struct.unpack_from("<10Q", t.variables["dump_avail"])
    assert list(zip(avail[0:8:2], avail[1:8:2], strict=True)) == t.dump_avail
    assert u64(t.variables["dmap_phys_base"], 0) == 0x80000000
    assert u64(t.variables["kernel_vm_end"], 0) == t.kernel_vm_end
    for name in ("dmap_phys_base", "kernel_vm_end", "dump_avail", "pmap_mode"):
        assert t.expect(t.symbols[name], len(t.variables[name])) == t.variables[name]


def test_determinism_and_seeds(tmp_path: Path) -> None:
    dirs = [tmp_path / x for x in "abc"]
    for d in dirs:
        d.mkdir()
    a = build_riscv(dirs[0], 5, "minidump-sv48")
    b = build_riscv(dirs[1], 5, "minidump-sv48")
    c = build_riscv(dirs[2], 6, "minidump-sv48")
    assert a.core.read_bytes() == b.core.read_bytes()
    assert a.kernel.read_bytes() == b.kernel.read_bytes()
    assert a.core.read_bytes() != c.core.read_bytes() and a.truth.leaves != c.truth.leaves


def test_options_and_limits(tmp_path: Path) -> None:
    d = tmp_path / "x"
    d.mkdir()
    with pytest.raises(ValueError, match="unknown riscv dump format"):
        build_riscv(d, 0, "minidump-sv57")
    with pytest.raises(ValueError, match="ram_base"):
        build_riscv(d, 0, "minidump-sv39", ram_base=0x80200000)
    with pytest.raises(TypeError):
        synth.build("riscv", d, 0, "minidump-sv39", l1_block=True)
    start = time.perf_counter()
    dump = build_riscv(
        d,
        4,
        "minidump-sv39-v1",
        ram_base=0x1_0000_0000,
        kernel_name="k",
        core_name="c",
        extra_symbols=100,
    )
    assert time.perf_counter() - start < 1.0
    assert dump.kernel == d / "k" and dump.core == d / "c"
    assert dump.truth.extras["dmapphys"] == 0x1_0000_0000
    assert dump.core.stat().st_size < 6 << 20
    r = Minidump(dump.core.read_bytes())
    for va, chunk in dump.truth.regions:
        assert r.read(va, len(chunk)) == chunk
    zero = build_riscv(d, 4, "minidump-sv39", ram_base=0)
    assert zero.truth.extras["dmapphys"] == 0 and zero.truth.dump_avail[0][0] < 1 << 30
