"""Cross-check the ground truth against an independent struct-only reader of the files."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from synth_minireader import ElfCore, Minidump

from pykvm.synth import AMD64_FORMATS, GroundTruth, WalkPage, build_amd64

CASES = [(fmt, seed) for fmt in AMD64_FORMATS for seed in (0, 1, 2)]


def reader_for(fmt: str, core: bytes, t: GroundTruth) -> Minidump | ElfCore:
    if fmt == "elf":
        return ElfCore(core, t.symbols["kernbase"], t.symbols["KPML4phys"])
    return Minidump(core)


def probe_addresses(t: GroundTruth) -> list[int]:
    """Addresses never listed in regions: around every leaf, and in the direct map."""
    out = []
    for leaf in t.leaves:
        out += [leaf.va, leaf.va + leaf.size - 8, leaf.va + leaf.size // 2 + 0x123]
    for s, e in t.dump_avail:
        out += [t.dmapbase + s, t.dmapbase + e - 8, t.dmapbase + e, t.dmapbase + s - 4]
    return out


@pytest.mark.parametrize(("fmt", "seed"), CASES)
def test_reader_agrees_with_truth(tmp_path: Path, fmt: str, seed: int) -> None:
    dump = build_amd64(tmp_path, seed=seed, fmt=fmt, small_kva=(seed == 1))
    t = dump.truth
    r = reader_for(fmt, dump.core.read_bytes(), t)
    assert len(t.regions) >= 30
    for va, data in t.regions:
        assert r.read(va, len(data)) == data, hex(va)
        assert t.expect(va, len(data)) == data
    assert len(t.holes) >= 12
    for va in t.holes:
        assert t.expect(va, 1) is None
        assert r.read(va, 1) is None, hex(va)
    for va in probe_addresses(t):
        assert r.read(va, 16) == t.expect(va, 16), hex(va)


@pytest.mark.parametrize("fmt", ["minidump-v2", "minidump-v3"])
@pytest.mark.parametrize("seed", [0, 5])
def test_walk_matches_file(tmp_path: Path, fmt: str, seed: int) -> None:
    dump = build_amd64(tmp_path, seed=seed, fmt=fmt, small_kva=True)
    t = dump.truth
    mine = Minidump(dump.core.read_bytes()).walk()
    assert [WalkPage(**vars(p)) for p in mine] == t.walk
    supers = [p for p in t.walk if p.len == 1 << 21]
    # the KERNBASE superpage, the straddling one and 512 from the 1 GiB mapping
    assert len(supers) == 514
    direct = [p for p in t.walk if p.kmap_vaddr == 0]
    assert direct and all(p.prot == 3 and p.len == 4096 for p in direct)
    assert [p.paddr for p in direct] == sorted(p.paddr for p in direct)
    # quirk: only the first page of a superpage is marked for the direct-map pass
    sp = next(p for p in supers if p.offset >= 0)
    marked = {p.paddr for p in direct}
    assert sp.paddr in marked and sp.paddr + 4096 not in marked
    # protections: read always, write iff PG_RW, execute iff not PG_NX
    kernel_text = next(p for p in t.walk if p.kmap_vaddr == 0xFFFFFFFF80200000)
    assert kernel_text.prot == 1 | 4 and kernel_text.paddr == t.kernphys
    assert kernel_text.offset == t.core_offset(t.kernphys)
    data_page = next(p for p in t.walk if p.kmap_vaddr == t.symbols["version"] & ~0xFFF)
    assert data_page.prot == 1 | 2


@pytest.mark.parametrize("fmt", ["minidump-v1", "elf"])
def test_no_walk(tmp_path: Path, fmt: str) -> None:
    assert build_amd64(tmp_path, seed=0, fmt=fmt).truth.walk == []


def test_holes_cover_every_kind(tmp_path: Path) -> None:
    kinds = {}
    for fmt in AMD64_FORMATS:
        d = tmp_path / fmt
        d.mkdir()
        kinds[fmt] = set(build_amd64(d, seed=3, fmt=fmt).truth.hole_kinds)
    common = {
        "invalid-pde",
        "invalid-pte",
        "pte-to-physical-hole",
        "user",
        "dmap-physical-hole",
        "above-kva",
    }
    for fmt in AMD64_FORMATS:
        assert common <= kinds[fmt], fmt
    for fmt in ("minidump-v2", "minidump-v3"):
        assert {"pte-to-nodump-page", "dmap-not-dumped", "superpage-hole", "1g-page-hole"} <= kinds[
            fmt
        ]
    assert "below-kernbase-v1" in kinds["minidump-v1"]
    assert {"superpage-hole", "1g-page-hole"} <= kinds["elf"]
    assert "pte-to-nodump-page" not in kinds["elf"]  # full dumps contain every RAM page


def test_expect_semantics(tmp_path: Path) -> None:
    t = build_amd64(tmp_path, seed=2, fmt="minidump-v3", small_kva=True).truth
    va, data = t.regions[0]
    assert t.expect(va, 0) == b""
    assert t.expect(va + 3, 5) == data[3:8]
    hole = t.holes[0]
    assert t.expect(hole - 4096, 8192) is None  # any unreadable byte spoils the range
    version = t.expect(t.symbols["version"], 7)
    assert version == b"FreeBSD"
    # the straddling superpage: readable up to the end of RAM, then not
    ends = [e for s, e in t.dump_avail]
    leaf = next(
        x
        for x in t.leaves
        if x.size == 1 << 21
        and x.pa + x.size > x.pa
        and any(x.pa < e < x.pa + x.size for e in ends)
    )
    cut = next(e for e in ends if leaf.pa < e < leaf.pa + leaf.size) - leaf.pa
    assert t.expect(leaf.va + cut - 16, 16) is not None
    assert t.expect(leaf.va + cut - 16, 17) is None
    assert t.translate(leaf.va + cut) == leaf.pa + cut


def test_kernphys_relocated_elf(tmp_path: Path) -> None:
    dump = build_amd64(tmp_path, seed=6, fmt="elf", kernphys=0x1000000, dump_delta=True)
    t = dump.truth
    assert t.kernphys == 0x1000000
    assert t.translate(0xFFFFFFFF80200000) == 0x1000000
    core = dump.core.read_bytes()
    r = ElfCore(core, t.symbols["kernbase"], t.symbols["KPML4phys"])
    assert r.pml4_pa == t.kpml4phys
    assert r.read(t.symbols["version"], 8) == b"FreeBSD "
    # without the delta header the legacy rule (KPML4phys - kernbase) reads the wrong page
    legacy = t.symbols["KPML4phys"] - t.symbols["kernbase"]
    assert t.phys_expect(legacy, 8) != struct.pack("<Q", t.kpml4phys)
