"""pykvm's arm64 minidump reader against pykvm.synth's arm64 writer (black box).

Every dump is opened through the public API only; regions, holes, the page walk,
``kerndisp`` and the dumped-page count must equal the writer's ground truth, which is
computed from the synthetic machine (never from pykvm's readers).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import pykvm
from pykvm.synth import SynthDump
from pykvm.synth.arch_aarch64 import FORMATS, build_aarch64

CASES: list[tuple[str, int, dict[str, Any]]] = [
    (fmt, seed, {}) for fmt in FORMATS for seed in (0, 1, 2)
]
CASES += [
    ("minidump-v3", 3, {"ram_base": 0}),
    ("minidump-v3-16k", 3, {"ram_base": 0}),
    ("minidump-v2", 4, {"ram_base": 1 << 40}),
]


def _open(d: SynthDump) -> pykvm.Kvm:
    return pykvm.open2(str(d.kernel), str(d.core), 0, pykvm.symtab_resolver(str(d.kernel)))


def _compare(d: SynthDump) -> None:
    t = d.truth
    with _open(d) as kd:
        for va, data in t.regions:
            assert kd.read(va, len(data)) == data, hex(va)
        for va, kind in zip(t.holes, t.hole_kinds, strict=True):
            with pytest.raises(pykvm.FaultError):
                kd.read(va, 1)
            assert kind
        got = [
            (p.version, p.paddr, p.kmap_vaddr, p.dmap_vaddr, p.prot, p.offset, p.len)
            for p in kd.walk_pages()
        ]
        want = [
            (w.version, w.paddr, w.kmap_vaddr, w.dmap_vaddr, w.prot, w.offset, w.len)
            for w in t.walk
        ]
        assert len(got) == len(want)
        assert got == want
        assert kd.kerndisp() == t.kerndisp == 0
        info = kd.info()
        assert info.pages == t.dumped_pages
        assert info.page_size == t.page_size
        assert kd.msgbuf() == t.msgbuf


@pytest.mark.parametrize(("fmt", "seed", "opts"), CASES)
def test_reader_matches_truth(tmp_path: Path, fmt: str, seed: int, opts: dict[str, Any]) -> None:
    _compare(build_aarch64(tmp_path, seed, fmt, **opts))


@pytest.mark.parametrize("fmt", ["minidump-v3", "minidump-v1"])
def test_l1_block(tmp_path: Path, fmt: str) -> None:
    _compare(build_aarch64(tmp_path, 5, fmt, l1_block=True))
