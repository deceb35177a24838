"""pykvm's i386 reader against synthetic i386 dumps (pykvm.synth.arch_i386), black box.

Every format (PAE and non-PAE minidumps of header versions 1 and 2, PAE and non-PAE full
dumps) and every kernel era it applies to (FreeBSD 13+ with both pmaps, 12, 11 and earlier)
is opened through the public API only and compared with the writer's ground truth: every
region reads back, every hole raises FaultError, probes around every leaf and inside
superpages at RAM edges read what the truth expects, kvm_walk_pages equals the truth
record for record, kvm_kerndisp and the dumped page count match, and a minidump's message
buffer is the truth's.
"""

from __future__ import annotations

import pytest

import pykvm
from pykvm import synth
from pykvm.synth import GroundTruth, SynthDump

PS = 4096

#: (format, era): every kernel/dump combination the writer supports
COMBOS = [
    ("minidump-pae", 13),
    ("minidump-nopae", 13),
    ("minidump-v1-pae", 11),
    ("minidump-v1-pae", 12),
    ("minidump-v1-nopae", 11),
    ("minidump-v1-nopae", 12),
    ("elf-pae", 13),
    ("elf-nopae", 13),
    ("elf-pae", 12),
    ("elf-nopae", 12),
    ("elf-pae", 11),
    ("elf-nopae", 11),
]
SEEDS = (0, 5)
CASES = [
    pytest.param(fmt, era, seed, id=f"{fmt}-era{era}-seed{seed}")
    for fmt, era in COMBOS
    for seed in SEEDS
]


@pytest.fixture(scope="module")
def dumps(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, int, int], SynthDump]:
    out = {}
    for fmt, era in COMBOS:
        for seed in SEEDS:
            d = tmp_path_factory.mktemp(f"{fmt}-{era}")
            out[(fmt, era, seed)] = synth.build("i386", d, seed, fmt, era=era)
    return out


def _open(d: SynthDump) -> pykvm.Kvm:
    return pykvm.open2(str(d.kernel), str(d.core), 0, pykvm.symtab_resolver(str(d.kernel)))


def _probes(t: GroundTruth) -> list[int]:
    out = []
    for leaf in t.leaves:
        out += [leaf.va, leaf.va + leaf.size - 8, leaf.va + leaf.size // 2 + 0x123]
        if leaf.size > PS:
            for s, e in t.dump_avail:
                for edge in (s, e):
                    if leaf.pa < edge < leaf.pa + leaf.size:
                        out += [leaf.va + edge - leaf.pa - 8, leaf.va + edge - leaf.pa]
    return sorted({va for va in out if 0 <= va and va + 16 <= 1 << 32})


@pytest.mark.parametrize(("fmt", "era", "seed"), CASES)
def test_regions_and_holes(
    dumps: dict[tuple[str, int, int], SynthDump], fmt: str, era: int, seed: int
) -> None:
    d = dumps[(fmt, era, seed)]
    t = d.truth
    bad: list[tuple[str, ...]] = []
    with _open(d) as kd:
        for va, data in t.regions:
            try:
                got = kd.read(va, len(data))
            except pykvm.FaultError as exc:
                bad.append(("region faults", hex(va), str(exc)))
                continue
            if got != data:
                bad.append(("region differs", hex(va)))
        for va, kind in zip(t.holes, t.hole_kinds, strict=True):
            try:
                kd.read(va, 1)
            except pykvm.FaultError:
                continue
            bad.append(("hole readable", hex(va), kind))
    assert not bad


@pytest.mark.parametrize(("fmt", "era", "seed"), CASES)
def test_probes(
    dumps: dict[tuple[str, int, int], SynthDump], fmt: str, era: int, seed: int
) -> None:
    d = dumps[(fmt, era, seed)]
    t = d.truth
    bad = []
    with _open(d) as kd:
        for va in _probes(t):
            want = t.expect(va, 16)
            try:
                got: bytes | None = kd.read(va, 16)
            except pykvm.FaultError:
                got = None
            if got != want:
                bad.append((hex(va), want is None, got is None))
    assert not bad[:10]


@pytest.mark.parametrize(("fmt", "era", "seed"), CASES)
def test_walk_kerndisp_pages(
    dumps: dict[tuple[str, int, int], SynthDump], fmt: str, era: int, seed: int
) -> None:
    d = dumps[(fmt, era, seed)]
    t = d.truth
    with _open(d) as kd:
        walk = [
            (p.version, p.paddr, p.kmap_vaddr, p.dmap_vaddr, p.prot, p.offset, p.len)
            for p in kd.walk_pages()
        ]
        assert kd.kerndisp() == t.kerndisp == 0
        assert kd.info().pages == t.dumped_pages
        if fmt.startswith("minidump"):
            assert kd.msgbuf() == t.msgbuf
    want = [
        (p.version, p.paddr, p.kmap_vaddr, p.dmap_vaddr, p.prot, p.offset, p.len) for p in t.walk
    ]
    assert len(walk) == len(want)
    assert walk == want
