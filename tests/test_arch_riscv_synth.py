"""pykvm's riscv minidump reader against pykvm.synth's riscv writer (black box).

Every dump is opened through the public API only; regions (among them pages mapped by
PTEs with bits 54-63 set), holes, the page walk, ``kerndisp`` and the dumped-page count
must equal the writer's ground truth, computed from the synthetic machine.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import pykvm
from pykvm.synth import SynthDump
from pykvm.synth.arch_riscv import FORMATS, build_riscv

CASES: list[tuple[str, int, dict[str, Any]]] = [
    (fmt, seed, {}) for fmt in FORMATS for seed in (0, 1, 2)
]
CASES += [("minidump-sv39", 3, {"ram_base": 0}), ("minidump-sv48", 4, {"ram_base": 1 << 40})]


def _open(d: SynthDump) -> pykvm.Kvm:
    return pykvm.open2(str(d.kernel), str(d.core), 0, pykvm.symtab_resolver(str(d.kernel)))


@pytest.mark.parametrize(("fmt", "seed", "opts"), CASES)
def test_reader_matches_truth(tmp_path: Path, fmt: str, seed: int, opts: dict[str, Any]) -> None:
    d = build_riscv(tmp_path, seed, fmt, **opts)
    t = d.truth
    with _open(d) as kd:
        for va, data in t.regions:
            assert kd.read(va, len(data)) == data, hex(va)
        for va in t.holes:
            with pytest.raises(pykvm.FaultError):
                kd.read(va, 1)
        got = [
            (p.version, p.paddr, p.kmap_vaddr, p.dmap_vaddr, p.prot, p.offset, p.len)
            for p in kd.walk_pages()
        ]
        want = [
            (w.version, w.paddr, w.kmap_vaddr, w.dmap_vaddr, w.prot, w.offset, w.len)
            for w in t.walk
        ]
        assert got == want
        assert kd.kerndisp() == t.kerndisp == 0
        assert kd.info().pages == t.dumped_pages
        assert kd.msgbuf() == t.msgbuf


def test_high_bit_ptes_read(tmp_path: Path) -> None:
    """The pages behind PTEs with Svpbmt/reserved bits read through the kernel map."""
    d = build_riscv(tmp_path, 0, "minidump-sv39")
    t = d.truth
    high = [leaf for leaf in t.leaves if leaf.entry >> 54 and t.expect(leaf.va, 1) is not None]
    assert len(high) >= 3
    with _open(d) as kd:
        for leaf in high:
            assert kd.read(leaf.va, 4096) == t.expect(leaf.va, 4096)
