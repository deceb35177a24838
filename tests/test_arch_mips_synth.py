"""pykvm's mips reader against synthetic mips dumps (pykvm.synth.arch_mips), black box.

Every format (o32, n32, n64; big and little endian; header versions 1 and 2) is opened
through the public API only and compared with the writer's ground truth: every region
reads back, every hole raises FaultError, kvm_walk_pages equals the truth record for
record, kvm_kerndisp and the dumped page count match.
"""

from __future__ import annotations

import dataclasses

import pytest

import pykvm
from pykvm import synth
from pykvm.synth import SynthDump
from pykvm.synth.arch_mips import FORMATS

SEEDS = (0, 4)

def _params() -> list[object]:
    out: list[object] = []
    for fmt in FORMATS:
        out.append(pytest.param(fmt, id=fmt))
    return out


def _all_params() -> list[object]:
    return [pytest.param(fmt, id=fmt) for fmt in FORMATS]


@pytest.fixture(scope="module")
def mips_dumps(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, int], SynthDump]:
    out = {}
    for fmt in FORMATS:
        for seed in SEEDS:
            out[(fmt, seed)] = synth.build("mips", tmp_path_factory.mktemp(fmt), seed, fmt)
    return out


def _open(d: SynthDump) -> pykvm.Kvm:
    return pykvm.open2(str(d.kernel), str(d.core), 0, pykvm.symtab_resolver(str(d.kernel)))


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("fmt", _params())
def test_regions(mips_dumps: dict[tuple[str, int], SynthDump], fmt: str, seed: int) -> None:
    d = mips_dumps[(fmt, seed)]
    bad = []
    with _open(d) as kd:
        for va, data in d.truth.regions:
            try:
                got = kd.read2(va, len(data))
            except pykvm.FaultError as exc:
                bad.append((hex(va), str(exc)))
                continue
            if got != data:
                bad.append((hex(va), "different bytes"))
    assert not bad


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("fmt", _all_params())
def test_holes(mips_dumps: dict[tuple[str, int], SynthDump], fmt: str, seed: int) -> None:
    d = mips_dumps[(fmt, seed)]
    with _open(d) as kd:
        for va, kind in zip(d.truth.holes, d.truth.hole_kinds, strict=True):
            with pytest.raises(pykvm.FaultError):
                kd.read2(va, 1)
                pytest.fail(f"{kind} {va:#x} is readable")


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("fmt", _params())
def test_walk(mips_dumps: dict[tuple[str, int], SynthDump], fmt: str, seed: int) -> None:
    d = mips_dumps[(fmt, seed)]
    with _open(d) as kd:
        got = [dataclasses.astuple(p) for p in kd.walk_pages()]
    assert got == [dataclasses.astuple(p) for p in d.truth.walk]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("fmt", _all_params())
def test_kerndisp_and_info(
    mips_dumps: dict[tuple[str, int], SynthDump], fmt: str, seed: int
) -> None:
    d = mips_dumps[(fmt, seed)]
    t = d.truth
    with _open(d) as kd:
        assert kd.kerndisp() == t.kerndisp == 0
        info = kd.info()
        assert info.pages == t.dumped_pages
        assert (info.arch, info.version, info.page_size) == ("mips", t.version, 4096)
        assert not kd.native()
        assert kd.msgbuf() == t.msgbuf
