"""The ``bulk_mib`` option: a contiguous, superpage-mapped range dumped in full."""

from __future__ import annotations

import hashlib
import struct
import time
from pathlib import Path

import pytest
from synth_minireader import ElfCore, Minidump

from pykvm.synth import AMD64_FORMATS, GroundTruth, SynthDump, WalkPage, build_amd64
from pykvm.synth._prng import page_bytes

PS = 4096
MIB = 1 << 20
NBPDR = 1 << 21
BULK_MIB = 8
KERNBASE = 0xFFFFFFFF80000000
PG_PS = 0x80
PG_RW = 0x2
PG_NX = 1 << 63


def build(tmp_path: Path, name: str, **kw: object) -> SynthDump:
    d = tmp_path / name
    d.mkdir()
    return build_amd64(d, **kw)  # type: ignore[arg-type]


def reader_for(dump: SynthDump) -> Minidump | ElfCore:
    t = dump.truth
    core = dump.core.read_bytes()
    if dump.fmt == "elf":
        return ElfCore(core, t.symbols["kernbase"], t.symbols["KPML4phys"])
    return Minidump(core)


def bulk_of(t: GroundTruth) -> tuple[int, int, int]:
    """(va, pa, length) of the bulk range."""
    assert t.bulk is not None
    va, length = t.bulk
    pa = t.translate(va)
    assert pa is not None
    return va, pa, length


def check_bulk(dump: SynthDump, seed: int, mib: int) -> None:
    """The bulk range reads back in 1 MiB calls and every page of it is in the core."""
    t = dump.truth
    va, pa, length = bulk_of(t)
    assert length == mib * MIB
    assert va % NBPDR == 0 and pa % NBPDR == 0
    # its own dump_avail range, mapped by read-write no-execute 2 MiB pages onto it
    assert (pa, pa + length) in t.dump_avail
    leaves = [leaf for leaf in t.leaves if va <= leaf.va < va + length]
    assert [(leaf.va, leaf.pa, leaf.size) for leaf in leaves] == [
        (va + off, pa + off, NBPDR) for off in range(0, length, NBPDR)
    ]
    assert all(leaf.entry & PG_PS and leaf.entry & PG_RW and leaf.entry & PG_NX for leaf in leaves)
    # the whole range is readable and holds the ordinary pseudo-random page contents
    whole = t.expect(va, length)
    assert whole is not None and len(whole) == length
    for off in (0, PS, NBPDR - PS, NBPDR, length - PS):
        assert whole[off : off + PS] == page_bytes(seed, pa + off)
    assert t.expect(t.dmapbase + pa, length) == whole
    # the independent reader agrees, 1 MiB at a time
    r = reader_for(dump)
    for off in range(0, length, MIB):
        assert r.read(va + off, MIB) == whole[off : off + MIB], hex(va + off)
    assert r.read(va + length - 8, 8) == whole[-8:]
    # regions sample it
    regions = dict(t.regions)
    assert regions[va] == whole[: len(regions[va])] and len(regions[va]) >= PS
    if isinstance(r, Minidump):
        # every page of the range has its bit set and its page in the file
        for page in range(pa, pa + length, PS):
            bit = r.bit_id(page)
            assert bit is not None and bit in r.rank, hex(page)
            assert t.core_offset(page) == r.pa_off(page)
    else:
        loads = [p for p in t.phdrs if p.p_type == 1]
        assert any(p.p_paddr == pa and p.p_memsz == p.p_filesz == length for p in loads)
        assert t.core_offset(pa) is not None


@pytest.mark.parametrize("fmt", AMD64_FORMATS)
def test_bulk_reads_back(tmp_path: Path, fmt: str) -> None:
    dump = build(tmp_path, "bulk", seed=0, fmt=fmt, bulk_mib=BULK_MIB)
    check_bulk(dump, 0, BULK_MIB)
    t = dump.truth
    va, _, length = bulk_of(t)
    # right after the tail page table; kernel_vm_end moves past it (v1 covers it too)
    assert va == KERNBASE + (t.nkpt + 3) * NBPDR
    assert t.kernel_vm_end == va + length
    assert t.expect(va + length, 1) is None


@pytest.mark.parametrize(
    ("fmt", "kw"),
    [
        ("minidump-v3", {"small_kva": True, "physmem_gib": 4}),
        ("minidump-v2", {"small_kva": True, "seed": 5}),
        ("minidump-v1", {"physmem_gib": 2, "seed": 3}),
        ("elf", {"small_kva": True, "seed": 6, "kernphys": 0x1000000, "dump_delta": True}),
        ("elf", {"seed": 2, "kernphys": 0x40000000, "dump_delta": True}),
    ],
)
def test_bulk_with_other_options(tmp_path: Path, fmt: str, kw: dict[str, object]) -> None:
    dump = build(tmp_path, "bulk", fmt=fmt, bulk_mib=BULK_MIB, **kw)
    seed = kw.get("seed", 0)
    assert isinstance(seed, int)
    check_bulk(dump, seed, BULK_MIB)


@pytest.mark.parametrize("fmt", ["minidump-v2", "minidump-v3"])
def test_bulk_walk(tmp_path: Path, fmt: str) -> None:
    dump = build(tmp_path, "bulk", seed=0, fmt=fmt, small_kva=True, bulk_mib=BULK_MIB)
    t = dump.truth
    va, pa, length = bulk_of(t)
    mine = Minidump(dump.core.read_bytes()).walk()
    assert [WalkPage(**vars(p)) for p in mine] == t.walk
    kmap = [p for p in t.walk if p.kmap_vaddr]
    i = next(i for i, p in enumerate(kmap) if p.kmap_vaddr == va)
    n = length // NBPDR
    offsets = [t.core_offset(pa + off) for off in range(0, length, NBPDR)]
    assert all(o is not None for o in offsets)
    assert kmap[i : i + n] == [
        WalkPage(2, pa + off, va + off, t.dmapbase + pa + off, 3, o, NBPDR)
        for off, o in zip(range(0, length, NBPDR), offsets, strict=True)
    ]
    assert kmap[i - 1].kmap_vaddr < va  # the tail page table's pages come first
    assert all(p.kmap_vaddr >= va + length for p in kmap[i + n :])
    # the direct-map pass marks only the first page of each superpage (libkvm quirk)
    direct = {p.paddr for p in t.walk if p.kmap_vaddr == 0}
    for off in range(0, length, NBPDR):
        assert pa + off in direct and pa + off + PS not in direct
    # one superpage record per 2 MiB: the KERNBASE one, the straddling one, 512 for 1 GiB
    assert len([p for p in t.walk if p.len == NBPDR]) == 514 + n


def _sizes(dump: SynthDump) -> tuple[int, dict[str, int]]:
    return dump.core.stat().st_size, dump.truth.layout


def rp(x: int) -> int:
    return (x + PS - 1) // PS * PS


@pytest.mark.parametrize("fmt", AMD64_FORMATS)
def test_bulk_file_growth(tmp_path: Path, fmt: str) -> None:
    """Exactly the bulk range's pages are added; the rest of the machine stays put.

    Minidumps grow by ``bulk_mib`` MiB of page data plus the growth of the msgbuf section
    (the boot messages print the RAM size) and of the bitmap (v3 numbers the new range's
    pages; v1/v2 bitmaps span 0..end of RAM and do not change); no page-table page is
    added (the KERNBASE page directory gets the PDEs), but a v1 PTE section has one fake
    page of PTEs per 2 MiB up to kernel_vm_end, so v1 grows by ``bulk_mib / 2`` pages more.
    For seed 0 with 8 MiB the msgbuf and bitmap sizes do not change: v2/v3 grow by exactly
    8 MiB, v1 by 8 MiB + 4 pages.  ELF dumps grow by exactly the range (one more PT_LOAD
    header still fits in the header page).
    """
    a = build(tmp_path, "plain", seed=0, fmt=fmt)
    b = build(tmp_path, "bulk", seed=0, fmt=fmt, bulk_mib=BULK_MIB)
    ta, tb = a.truth, b.truth
    va, pa, length = bulk_of(tb)
    grow = b.core.stat().st_size - a.core.stat().st_size
    assert tb.dumped_pages - ta.dumped_pages == BULK_MIB * MIB // PS
    if fmt == "elf":
        assert grow == BULK_MIB * MIB
        assert len(tb.phdrs) == len(ta.phdrs) + 1
    else:
        la, lb = ta.layout, tb.layout
        extra_pmap = BULK_MIB // 2 * PS if fmt == "minidump-v1" else 0
        assert lb["pmapsize"] - la["pmapsize"] == extra_pmap
        expected = (
            BULK_MIB * MIB
            + extra_pmap
            + lb["bitmapsize"] - la["bitmapsize"]
            + rp(lb["msgbufsize"]) - rp(la["msgbufsize"])
        )  # fmt: skip
        assert grow == expected
        assert grow == BULK_MIB * MIB + extra_pmap  # seed 0: no msgbuf or bitmap growth
        if fmt != "minidump-v3":
            assert lb["bitmapsize"] == la["bitmapsize"]
    # the seed's other ranges, mappings, samples and failing addresses are untouched
    assert [r for r in tb.dump_avail if r != (pa, pa + length)] == ta.dump_avail
    assert [x for x in tb.leaves if not va <= x.va < va + length] == ta.leaves
    assert tb.holes == ta.holes and tb.hole_kinds == ta.hole_kinds
    # (the same samples; the kernel's data section differs: physmem, dump_avail, ...)
    assert [v for v, _ in tb.regions[: len(ta.regions)]] == [v for v, _ in ta.regions]
    assert tb.physmem == ta.physmem + length
    assert ta.bulk is None
    # below the 1 GiB mapping's physical GiB, above every other range of the first GiBs
    g1_phys = next(leaf.pa for leaf in tb.leaves if leaf.size == 1 << 30)
    assert pa + length < g1_phys
    assert all(e < pa for s, e in ta.dump_avail if s < g1_phys)


#: sha256 of (kernel, vmcore) recorded before ``bulk_mib`` existed
UNCHANGED = {
    ("minidump-v1", 0, ()): (
        "b7e4172675f4e06d3f0c5047f0d3fd1b97b03e094a9dfb05e012b8ef6ba8c75f",
        "0294d96661f5214615eaafe182cae763beb2397b782d15f7e0ad6ee2e48bc29f",
    ),
    ("minidump-v2", 0, ()): (
        "b7e4172675f4e06d3f0c5047f0d3fd1b97b03e094a9dfb05e012b8ef6ba8c75f",
        "c52559cce2caea684bce3885a75a1897ebb38b05d13a7c8dad71a41048d272c5",
    ),
    ("minidump-v3", 0, ()): (
        "b7e4172675f4e06d3f0c5047f0d3fd1b97b03e094a9dfb05e012b8ef6ba8c75f",
        "3797e6e5d6473663de0e69fbe415382d7043c124d0bc9465bc8a5384d5593db2",
    ),
    ("elf", 0, ()): (
        "b7e4172675f4e06d3f0c5047f0d3fd1b97b03e094a9dfb05e012b8ef6ba8c75f",
        "affd38b46f9988425d0365d4b4c5ad0eaebdfa4605ab6b00b2cc1f6e1e74432d",
    ),
    ("minidump-v3", 1, (("small_kva", True),)): (
        "a0506b18ac437a263619a7452fabe273ba2778cb67099781857fb3004263ef01",
        "8c0da0d38634dcd28236e65c421ca7776a4ba892162f96a4896d2bb7cb0cb902",
    ),
    ("elf", 6, (("dump_delta", True), ("kernphys", 0x1000000))): (
        "4dd6444e3f02c11fef37590519e8b29306b346dcb6a423527e3684316232c5d3",
        "9f90d50ef7af523a4a09d0c583c707b546859883907cc7d8ee0caa4ef0d17ea2",
    ),
}


@pytest.mark.parametrize(("fmt", "seed", "opts"), sorted(UNCHANGED, key=repr))
def test_no_bulk_files_unchanged(
    tmp_path: Path, fmt: str, seed: int, opts: tuple[tuple[str, object], ...]
) -> None:
    dump = build(tmp_path, "zero", seed=seed, fmt=fmt, bulk_mib=0, **dict(opts))
    got = (
        hashlib.sha256(dump.kernel.read_bytes()).hexdigest(),
        hashlib.sha256(dump.core.read_bytes()).hexdigest(),
    )
    assert got == UNCHANGED[(fmt, seed, opts)]
    assert dump.truth.bulk is None


def test_bulk_64_mib_build_time(tmp_path: Path) -> None:
    start = time.perf_counter()
    dump = build(tmp_path, "big", seed=0, fmt="minidump-v3", bulk_mib=64)
    assert time.perf_counter() - start < 5.0
    va, pa, length = bulk_of(dump.truth)
    assert length == 64 * MIB
    r = Minidump(dump.core.read_bytes())
    assert all(r.bit_id(p) in r.rank for p in range(pa, pa + length, PS))
    data = dump.truth.expect(va + 63 * MIB, MIB)
    assert data is not None and r.read(va + 63 * MIB, MIB) == data


def test_bulk_bad_values(tmp_path: Path) -> None:
    for bad in (-2, 3, 258, 1024):
        with pytest.raises(ValueError):
            build_amd64(tmp_path, seed=0, bulk_mib=bad)
    # no room below the 1 GiB mapping's GiB when the kernel sits at the end of a GiB
    with pytest.raises(ValueError):
        build_amd64(tmp_path, seed=2, kernphys=0x30000000, bulk_mib=256)


def test_bulk_kernel_variables(tmp_path: Path) -> None:
    t = build(tmp_path, "v", seed=4, fmt="minidump-v3", bulk_mib=BULK_MIB).truth
    va, pa, length = bulk_of(t)
    assert struct.unpack("<Q", t.variables["kernel_vm_end"])[0] == va + length
    words = struct.unpack(f"<{len(t.variables['dump_avail']) // 8}Q", t.variables["dump_avail"])
    assert (pa, pa + length) in zip(words[::2], words[1::2], strict=True)
    assert f"real memory  = {t.physmem} ".encode() in t.msgbuf
