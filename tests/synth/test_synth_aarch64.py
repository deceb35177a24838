"""Synthetic arm64 kernels and minidumps (pykvm.synth.arch_aarch64), checked by hand.

Header fields and section offsets are worked out here from formats.md 3.1-3.3 and 8.2
(not from the writer), the files are read back by the struct-only reader
``synth_aarch64_reader`` and compared with the ground truth.
"""

from __future__ import annotations

import struct
import time
from pathlib import Path

import pytest
from synth_aarch64_reader import Minidump
from synth_toyreader import Kernel

from pykvm import synth
from pykvm.synth import SynthDump
from pykvm.synth.arch_aarch64 import SPEC, SPEC_16K, build_aarch64

KERNBASE = 0xFFFF000000000000
DMAPBASE = 0xFFFFA00000000000
DMAPEND = 0xFFFFFF0000000000
GIB = 1 << 30
FORMATS = ("minidump-v3", "minidump-v3-16k", "minidump-v2", "minidump-v1")


def u32(data: bytes, off: int) -> int:
    return int(struct.unpack_from("<I", data, off)[0])


def u64(data: bytes, off: int) -> int:
    return int(struct.unpack_from("<Q", data, off)[0])


def rp(x: int, ps: int) -> int:
    return (x + ps - 1) // ps * ps


@pytest.fixture(scope="module")
def dumps(tmp_path_factory: pytest.TempPathFactory) -> dict[str, SynthDump]:
    out = {}
    for fmt in FORMATS:
        out[fmt] = build_aarch64(tmp_path_factory.mktemp(fmt), 1, fmt)
    return out


def test_formats_and_registry() -> None:
    assert synth.formats("aarch64") == FORMATS
    assert synth.default_format("aarch64") == "minidump-v3"
    assert SPEC.page_size == 4096 and SPEC_16K.page_size == 16384


@pytest.mark.parametrize("fmt", FORMATS)
def test_header_and_sections_by_hand(dumps: dict[str, SynthDump], fmt: str) -> None:
    dump = dumps[fmt]
    t = dump.truth
    data = dump.core.read_bytes()
    version = {"minidump-v3": 3, "minidump-v3-16k": 3, "minidump-v2": 2, "minidump-v1": 1}[fmt]
    ps = 16384 if fmt.endswith("16k") else 4096
    l2 = 32 << 20 if ps == 16384 else 2 << 20
    assert t.page_size == ps and t.version == version

    # struct minidumphdr: magic 0, version 24, msgbufsize 28, bitmapsize 32, pmapsize 36,
    # kernbase 40, dmapphys 48, dmapbase 56, dmapend 64, dumpavailsize 72, flags 76
    assert data[:24] == b"minidump FreeBSD/arm64\0\0"
    assert u32(data, 24) == version
    msgbufsize, bitmapsize, pmapsize = u32(data, 28), u32(data, 32), u32(data, 36)
    assert msgbufsize == len(t.msgbuf)
    assert u64(data, 40) == KERNBASE == t.kernbase == t.vm_min_kernel_address
    dmapphys = u64(data, 48)
    assert dmapphys == (64 * GIB if ps == 16384 else GIB) == t.extras["dmapphys"]
    assert u64(data, 56) == DMAPBASE and u64(data, 64) == DMAPEND
    hdr_end = {3: 80, 2: 76, 1: 72}[version]
    if version >= 2:
        assert u32(data, 72) == ps  # round_page(sizeof(dump_avail))
    if version == 3:
        assert u32(data, 76) == (1 if ps == 16384 else 0)
    assert data[hdr_end:ps] == bytes(ps - hdr_end)

    # one PS page of L3 entries per L2 step of KVA up to kernel_vm_end
    assert pmapsize == (t.kernel_vm_end - KERNBASE) // l2 * ps

    # sections (formats.md 3.1)
    dumpavailsize = ps if version >= 2 else 0
    dump_avail_off = ps + rp(msgbufsize, ps)
    bitmap_off = dump_avail_off + dumpavailsize
    pmap_off = bitmap_off + rp(bitmapsize, ps)
    sparse_off = pmap_off + rp(pmapsize, ps)
    assert t.layout["sparse_off"] == sparse_off and t.layout["pmap_off"] == pmap_off
    assert data[ps : ps + msgbufsize] == t.msgbuf
    assert data[ps : ps + msgbufsize].startswith(b"---<<BOOT>>---\n")

    if version >= 2:
        pairs = []
        off = dump_avail_off
        while u64(data, off + 8):
            pairs.append((u64(data, off), u64(data, off + 8)))
            off += 16
        assert pairs == t.dump_avail and len(pairs) == 4
        assert pairs[0][0] > dmapphys  # the direct map starts below RAM
        npages = sum(-(-e // ps) - s // ps for s, e in pairs)

        def bit_of(pa: int) -> int:
            adj = 0
            for s, e in pairs:
                if s <= pa < e:
                    return pa // ps - s // ps + adj
                adj += -(-e // ps) - s // ps
            raise AssertionError(hex(pa))

    else:
        npages = t.dump_avail[-1][1] // ps  # linear from physical 0

        def bit_of(pa: int) -> int:
            return pa // ps

    assert bitmapsize == rp((npages + 63) // 64 * 8, ps)
    bitmap = data[bitmap_off : bitmap_off + bitmapsize]
    popcount = sum(bin(b).count("1") for b in bitmap)
    assert popcount == t.dumped_pages and len(data) == sparse_off + ps * popcount

    # the kernel's first page: bit (n % 64) of the little-endian u64 word n // 64
    bit = bit_of(t.kernphys)
    assert u64(data, bitmap_off + bit // 64 * 8) >> (bit % 64) & 1
    rank = sum(bin(b).count("1") for b in bitmap[: bit // 8])
    rank += bin(bitmap[bit // 8] & ((1 << (bit % 8)) - 1)).count("1")
    off = sparse_off + rank * ps
    assert data[off : off + ps] == dump.kernel.read_bytes()[:ps]
    assert t.core_offset(t.kernphys) == off

    # L3 entry 0 maps KERNBASE (the ELF header, kernel text): kernphys | AF | SH(IS) |
    # IDX(write-back) | AP(RO) | UXN | GP | L3_PAGE, PXN clear
    e = u64(data, pmap_off)
    assert e & 0x0003FFFFFFFFF000 == t.kernphys
    assert e & 0xFFF == 0x400 | 0x300 | 2 << 2 | 0x80 | 3
    assert e >> 54 & 1 and not e >> 53 & 1 and e >> 50 & 1

    # the L2 block: fake entries (pa + i * PS) | 0x703 for its Ln_ENTRIES pages
    block = next(leaf for leaf in t.leaves if leaf.size == l2)
    i = (block.va - KERNBASE) // ps
    fake = struct.unpack_from(f"<{l2 // ps}Q", data, pmap_off + i * 8)
    assert fake == tuple((block.pa + j * ps) | 0x703 for j in range(l2 // ps))
    assert block.entry & 3 == 1


@pytest.mark.parametrize("fmt", FORMATS)
def test_reader_agrees_with_truth(dumps: dict[str, SynthDump], fmt: str) -> None:
    dump = dumps[fmt]
    t = dump.truth
    r = Minidump(dump.core.read_bytes())
    assert r.msgbuf == t.msgbuf and r.ps == t.page_size
    for va, data in t.regions:
        assert r.read(va, len(data)) == data, hex(va)
    for va in t.holes:
        assert r.read(va, 1) is None, hex(va)
    assert [tuple(vars(p).values()) for p in r.walk()] == [
        (w.version, w.paddr, w.kmap_vaddr, w.dmap_vaddr, w.prot, w.offset, w.len) for w in t.walk
    ]
    assert r.dumped() == sorted(r.dumped()) and len(r.dumped()) == t.dumped_pages
    assert all(t.core_offset(pa) == r.offset(pa) for pa in r.dumped())
    # probes around every leaf and every RAM range edge, through KVA and the direct map
    ps = t.page_size
    probes: list[int] = []
    for leaf in t.leaves:
        probes += [leaf.va - 1, leaf.va, leaf.va + ps // 2, leaf.va + leaf.size - 1]
        probes.append(leaf.va + leaf.size)
    for s, e in t.dump_avail:
        probes += [t.dmapbase + x - t.extras["dmapphys"] for x in (s - 1, s, e - 1, e)]
    for va in probes:
        assert r.read(va, 1) == t.expect(va, 1), hex(va)


def test_kinds_of_entries(dumps: dict[str, SynthDump]) -> None:
    t = dumps["minidump-v3"].truth
    prots = {w.prot for w in t.walk}
    assert prots == {1, 3, 5, 7}  # RO, RW (incl. AP_RO + DBM), kernel text R+X, blocks RWX
    dbm_ro = [leaf for leaf in t.leaves if leaf.entry & 0x80 and leaf.entry >> 51 & 1]
    assert dbm_ro and all(leaf.prot == 3 for leaf in dbm_ro)
    uxn_only = [leaf for leaf in t.leaves if leaf.entry >> 54 & 1 and not leaf.entry >> 53 & 1]
    assert uxn_only and all(leaf.prot & 4 for leaf in uxn_only)
    kinds = set(t.hole_kinds)
    assert {
        "user",
        "invalid-pde",
        "invalid-pte",
        "superpage-hole",
        "pte-to-physical-hole",
        "pte-to-nodump-page",
        "dmap-physical-hole",
        "dmap-not-dumped",
        "dmap-beyond-ram",
        "dmap-below-ram",
        "above-kva",
        "unmapped-kva",
    } <= kinds
    assert t.extras["l1_block"] == 0 and t.walk and not any(w.kmap_vaddr == 0 for w in t.walk)
    # an L3C range: 16 ATTR_CONTIGUOUS entries, VA and PA 64 KiB aligned and consecutive
    l3c = [leaf for leaf in t.leaves if leaf.entry >> 52 & 1]
    assert len(l3c) == 16 and l3c[0].va % (16 * 4096) == 0 == l3c[0].pa % (16 * 4096)
    assert [leaf.pa - l3c[0].pa for leaf in l3c] == [i * 4096 for i in range(16)]
    # the break-before-make entry: address and attributes still there, type bits 0b10
    data = dumps["minidump-v3"].core.read_bytes()
    stale_va = t.holes[t.hole_kinds.index("invalid-pte-stale")]
    e = u64(data, t.layout["pmap_off"] + (stale_va - KERNBASE) // 4096 * 8)
    assert e & 3 == 2 and e & 0x0003FFFFFFFFF000 and e & 0x700 == 0x700


def test_kernel_elf(dumps: dict[str, SynthDump]) -> None:
    for fmt in ("minidump-v3", "minidump-v3-16k"):
        t = dumps[fmt].truth
        raw = dumps[fmt].kernel.read_bytes()
        assert raw[:7] == b"\x7fELF\x02\x01\x01" and raw[7] == 9
        assert struct.unpack_from("<HHI", raw, 16) == (2, 183, 1)
        assert u32(raw, 48) == 0  # e_flags
        k = Kernel(raw)
        assert {n: v for n, v in k.symbols.items() if n in t.symbols} == {
            n: t.symbols[n] for n in k.symbols
        }
        assert k.symbols["kernbase"] == KERNBASE
        ps = t.page_size
        avail = struct.unpack_from("<10Q", t.variables["dump_avail"])
        assert list(zip(avail[0:8:2], avail[1:8:2], strict=True)) == t.dump_avail
        assert avail[8:] == (0, 0)
        assert u64(t.variables["dmap_phys_base"], 0) == t.extras["dmapphys"]
        assert u64(t.variables["kernel_vm_end"], 0) == t.kernel_vm_end
        assert u64(t.variables["physmem"], 0) == t.physmem // ps
        # the variables read through the dump equal their values
        for name in ("dmap_phys_base", "dmap_phys_max", "kernel_vm_end", "dump_avail"):
            assert t.expect(t.symbols[name], len(t.variables[name])) == t.variables[name]


def test_determinism_and_seeds(tmp_path: Path) -> None:
    a, b, c = (tmp_path / x for x in "abc")
    for d in (a, b, c):
        d.mkdir()
    da = build_aarch64(a, 7, "minidump-v3")
    db = build_aarch64(b, 7, "minidump-v3")
    dc = build_aarch64(c, 8, "minidump-v3")
    assert da.core.read_bytes() == db.core.read_bytes()
    assert da.kernel.read_bytes() == db.kernel.read_bytes()
    assert da.core.read_bytes() != dc.core.read_bytes()
    assert da.truth.dump_avail != dc.truth.dump_avail
    assert da.truth.leaves != dc.truth.leaves


def test_l1_block(tmp_path: Path) -> None:
    (tmp_path / "v3").mkdir()
    (tmp_path / "v1").mkdir()
    d3 = build_aarch64(tmp_path / "v3", 2, "minidump-v3", l1_block=True)
    d1 = build_aarch64(tmp_path / "v1", 2, "minidump-v1", l1_block=True)
    t3, t1 = d3.truth, d1.truth
    l1 = next(leaf for leaf in t3.leaves if leaf.size == GIB)
    assert l1.va == KERNBASE + GIB == t3.extras["l1_block"] and l1.entry & 3 == 1
    assert t3.kernel_vm_end == KERNBASE + 2 * GIB + 2 * (2 << 20)
    data = d3.core.read_bytes()
    pmap_off = t3.layout["pmap_off"]
    assert t3.layout["pmapsize"] == (512 + 512 + 2) * 4096
    # fake L3 entries all the way through the GiB
    first = u64(data, pmap_off + (GIB >> 12) * 8)
    last = u64(data, pmap_off + ((2 * GIB >> 12) - 1) * 8)
    assert first == l1.pa | 0x703 and last == (l1.pa + GIB - 4096) | 0x703
    # the small RAM range inside the block: dumped by v3, not by v1 (which skips L1 blocks)
    ram = next((s, e) for s, e in t3.dump_avail if l1.pa <= s < l1.pa + GIB)
    va = l1.va + ram[0] - l1.pa
    assert t3.expect(va, 4096) is not None and t1.expect(va, 1) is None
    assert "l1-block-not-dumped" in t1.hole_kinds
    assert len(t3.walk) == len(t1.walk) >= 512 * 512
    r = Minidump(data)
    for va, chunk in t3.regions:
        assert r.read(va, len(chunk)) == chunk
    assert r.read(l1.va + ram[1] - l1.pa, 1) is None


def test_options_and_limits(tmp_path: Path) -> None:
    d = tmp_path / "x"
    d.mkdir()
    with pytest.raises(ValueError, match="unknown aarch64 dump format"):
        build_aarch64(d, 0, "elf")
    with pytest.raises(ValueError, match="4 KiB"):
        build_aarch64(d, 0, "minidump-v3-16k", l1_block=True)
    with pytest.raises(ValueError, match="ram_base"):
        build_aarch64(d, 0, "minidump-v3", ram_base=GIB + 4096)
    with pytest.raises(ValueError, match="ram_base"):
        build_aarch64(d, 0, "minidump-v3-16k", ram_base=GIB)
    with pytest.raises(ValueError):
        build_aarch64(d, 0, "minidump-v3", extra_symbols=-1)
    with pytest.raises(TypeError):
        synth.build("aarch64", d, 0, "minidump-v3", no_such_option=1)
    start = time.perf_counter()
    dump = build_aarch64(
        d, 3, "minidump-v2", ram_base=0, kernel_name="k", core_name="c", extra_symbols=300
    )
    assert time.perf_counter() - start < 1.0
    assert dump.kernel == d / "k" and dump.core == d / "c"
    assert dump.truth.extras["dmapphys"] == 0 and dump.truth.dump_avail[0][0] < GIB
    assert len(dump.truth.symbols) > 300
    assert dump.core.stat().st_size < 4 << 20
    r = Minidump(dump.core.read_bytes())
    for va, chunk in dump.truth.regions:
        assert r.read(va, len(chunk)) == chunk
    sixteen = build_aarch64(d, 3, "minidump-v3-16k")
    assert sixteen.core.stat().st_size < 8 << 20
