"""Black-box cross-check: pykvm's powerpc64 reader against the synthetic writer's truth.

Every format (and the writer's options) is opened through the public API only and
compared with ``truth``: regions, holes, ``walk_pages``, ``kerndisp`` and the dumped page
count.  Where the reader and the truth disagree and the FreeBSD source says the reader
is wrong, the assertion stays, marked ``xfail(strict=True)`` with the evidence.  The
five disagreements found so far are fixed in the reader (README "Where pykvm departs
from libkvm"); their tests below now pass unmarked:

* **vm_page_array** (HPT): a NUMA kernel maps ``vm_page_array`` with 16 MiB pages at
  0xd000000000000000 (sys/powerpc/aim/mmu_oea64.c ``moea64_page_array_startup``:
  ``vm_page_base = 0xd000000000000000``, ``moea64_map_range`` -> ``moea64_kenter_large``;
  sys/powerpc/aim/slb.c ``kernel_va_to_slbv`` sets ``SLBV_L`` for that range).  The
  reader only knows segments between ``kernbase`` and ``kernend`` (and the direct map),
  so these addresses fail and the walk stops at the first such PTE.
* **Direct-map segments above ``bitmapsize * 8 * PAGE_SIZE``** (HPT walk): the software
  SLB covers the direct map only up to ``dmapbase + bitmapsize * 8 * 4096``
  (kvm_minidump_powerpc64_hpt.c ``slb_init``), but version 2 bitmaps number only the
  pages of ``dump_avail`` (sys/vm/vm_dumpset.h ``vm_page_dump_pa_bit_id``), so RAM above
  that span has 16 MiB direct-map PTEs (mmu_oea64.c ``moea64_setup_direct_map``) whose
  VSID the reader cannot place: the walk ends there.
* **Identity mappings** (HPT ``mmu_g5`` without ``hw_direct_map``): the PTEG table is
  entered at VA = PA (moea64_native.c ``moea64_bootstrap_native``: ``pmap_kenter(pa,
  pa)``); those kernel PTEs have segments below the direct map, and the walk stops.
* **mmu_phyp on little-endian kernels**: ``mphyp_dump_pmap`` (sys/powerpc/pseries/
  mmu_phyp.c) stores each ``H_READ`` result as a native integer, so the HPT section of
  a powerpc64le ``mmu_phyp`` minidump is little-endian; the reader decodes PTEs
  big-endian (as libkvm's ``pte_get`` does with ``be64toh``) and translates no kernel VA.
* **Radix effective addresses with bits 52-61 set** (e.g. 0xc010..., 0xd000...): the
  hardware raises a segment interrupt (Power ISA 3.0 radix translation; FreeBSD
  programs a 52-bit radix tree, mmu_radix.c ``RTS_SIZE``), but the reader indexes the
  root with bits 39-51 only and returns direct-map bytes.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import pykvm
from pykvm.synth import SynthDump
from pykvm.synth.arch_powerpc64 import FORMATS, POWERPC64_PHYS_FORMATS, build

DMAP = 0xC000000000000000
DMAP_END = 0xC008000000000000
KVA = 0xC008000000000000
PAGE_ARRAY = (0xD000000000000000, 0xD000000001000000)
U64 = (1 << 64) - 1

CASES: list[tuple[str, int, dict[str, object]]] = [
    (fmt, seed, {}) for fmt in FORMATS + POWERPC64_PHYS_FORMATS for seed in (0, 1, 2)
]
CASES += [
    ("minidump-hpt", 3, {"mmu": "mmu_g5"}),
    ("minidump-hpt-le", 3, {"mmu": "mmu_g5"}),
    ("minidump-hpt-le", 4, {"mmu": "mmu_g5", "relocated": True}),
    ("minidump-hpt", 3, {"hw_direct_map": False}),
    ("minidump-hpt", 4, {"mmu": "mmu_g5", "hw_direct_map": False}),
    ("minidump-hpt", 3, {"pteg_count": 65536}),
    ("minidump-hpt", 5, {"relocated": False}),
    ("minidump-radix", 5, {"relocated": True}),
    ("minidump-radix-le", 6, {"relocated": False}),
]


def _id(case: tuple[str, int, dict[str, object]]) -> str:
    fmt, seed, options = case
    return "-".join([fmt, str(seed), *(f"{k}={v}" for k, v in options.items())])


_CACHE: dict[str, SynthDump] = {}


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("ppc64x")


def _dump(root: Path, case: tuple[str, int, dict[str, object]]) -> SynthDump:
    key = _id(case)
    if key not in _CACHE:
        fmt, seed, options = case
        d = root / key
        d.mkdir()
        _CACHE[key] = build(d, seed, fmt, **options)  # type: ignore[arg-type]
    return _CACHE[key]


def _open(d: SynthDump) -> pykvm.Kvm:
    return pykvm.open2(str(d.kernel), str(d.core), 0, pykvm.symtab_resolver(str(d.kernel)))


def _phyp_le(d: SynthDump) -> bool:
    return d.fmt == "minidump-hpt-le" and d.truth.extras["mmu"] == 1


def _effective(d: SynthDump, va: int) -> int:
    """The address the readers translate (relocated below the direct map)."""
    if va < DMAP:
        va = (va + d.truth.extras["startkernel"] - 0x100100) & U64
    return va


def _known_bad_region(d: SynthDump, va: int, size: int) -> bool:
    if not d.fmt.startswith("minidump-hpt"):
        return False
    ends = [_effective(d, va), _effective(d, va + size - 1)]
    if any(PAGE_ARRAY[0] <= x < PAGE_ARRAY[1] for x in ends):
        return True
    return _phyp_le(d) and any(x >= KVA for x in ends)


def _region_failures(d: SynthDump, kd: pykvm.Kvm, known_bad: bool) -> list[str]:
    bad = []
    for va, data in d.truth.regions:
        if _known_bad_region(d, va, len(data)) != known_bad:
            continue
        try:
            got = kd.read(va, len(data))
        except pykvm.KvmError as err:
            bad.append(f"{va:#x}: {err}")
            continue
        if got != data:
            bad.append(f"{va:#x}: bytes differ")
    return bad


def _walk(pages: list[pykvm.KvmPage] | list[object]) -> list[tuple[int, ...]]:
    return [
        (p.version, p.paddr, p.kmap_vaddr, p.dmap_vaddr, p.prot, p.offset, p.len)  # type: ignore[attr-defined]
        for p in pages
    ]


def _known_walk_break(d: SynthDump) -> bool:
    """HPT dumps always carry the vm_page_array PTE (and some the others above)."""
    return d.fmt.startswith("minidump-hpt")


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_regions(root: Path, case: tuple[str, int, dict[str, object]]) -> None:
    d = _dump(root, case)
    with _open(d) as kd:
        assert _region_failures(d, kd, known_bad=False) == []


#: vm_page_array at 0xd000000000000000 (mmu_oea64.c moea64_page_array_startup, slb.c
#: kernel_va_to_slbv) and, on powerpc64le mmu_phyp, the little-endian HPT section
#: (mmu_phyp.c mphyp_dump_pmap stores H_READ results natively)
_BAD_REGION_CASES = [c for c in CASES if c[0].startswith("minidump-hpt")]


@pytest.mark.parametrize("case", _BAD_REGION_CASES, ids=_id)
def test_regions_known_reader_bugs(root: Path, case: tuple[str, int, dict[str, object]]) -> None:
    d = _dump(root, case)
    assert any(_known_bad_region(d, va, len(b)) for va, b in d.truth.regions)
    with _open(d) as kd:
        assert _region_failures(d, kd, known_bad=True) == []


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_holes(root: Path, case: tuple[str, int, dict[str, object]]) -> None:
    d = _dump(root, case)
    t = d.truth
    assert t.holes
    read = []
    with _open(d) as kd:
        for va, kind in zip(t.holes, t.hole_kinds, strict=True):
            if kind == "ea-out-of-range":
                continue
            try:
                kd.read(va, 1)
            except pykvm.FaultError:
                continue
            read.append(f"{kind} {va:#x}")
    assert read == []


#: radix EAs with bits 52-61 set fault (Power ISA 3.0 radix, 52-bit tree: mmu_radix.c
#: RTS_SIZE), where indexing the root with bits 39-51 only would alias the direct map
_RADIX_EA_CASES = [c for c in CASES if c[0].startswith("minidump-radix")]


@pytest.mark.parametrize("case", _RADIX_EA_CASES, ids=_id)
def test_radix_ea_out_of_range(root: Path, case: tuple[str, int, dict[str, object]]) -> None:
    d = _dump(root, case)
    t = d.truth
    cands = [va for va, kind in zip(t.holes, t.hole_kinds, strict=True)
             if kind == "ea-out-of-range"]
    assert cands
    with _open(d) as kd:
        for va in cands:
            with pytest.raises(pykvm.FaultError):
                kd.read(va, 1)


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_walk_prefix_and_scalars(root: Path, case: tuple[str, int, dict[str, object]]) -> None:
    d = _dump(root, case)
    t = d.truth
    with _open(d) as kd:
        got = _walk(list(kd.walk_pages()))
        assert kd.kerndisp() == t.kerndisp
        assert kd.info().pages == t.dumped_pages
    want = _walk(list(t.walk))
    if _phyp_le(d):
        return  # the reader decodes the little-endian HPT as big-endian (see module doc)
    if _known_walk_break(d):
        assert got == want[: len(got)], "the reader's walk is a prefix of the truth"
    else:
        assert got == want


#: the HPT walk past kernel PTEs outside libkvm's software SLB: vm_page_array at
#: 0xd000000000000000 (mmu_oea64.c moea64_page_array_startup), direct-map RAM above
#: bitmapsize*8*4096 (v2 bitmaps compress dump_avail holes, vm_dumpset.h), VA=PA table
#: mappings (moea64_native.c moea64_bootstrap_native); phyp-LE PTEs are little-endian
#: (mmu_phyp.c mphyp_dump_pmap)
_WALK_CASES = [c for c in CASES if c[0].startswith("minidump-hpt")]


@pytest.mark.parametrize("case", _WALK_CASES, ids=_id)
def test_walk_complete_hpt(root: Path, case: tuple[str, int, dict[str, object]]) -> None:
    d = _dump(root, case)
    with _open(d) as kd:
        assert _walk(list(kd.walk_pages())) == _walk(list(d.truth.walk))
