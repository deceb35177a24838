"""Black-box cross-check: pykvm's 32-bit powerpc reader against the synthetic writer's truth.

Each format is opened through the public API only; every truth region must read back
equal, every hole must raise :class:`pykvm.FaultError`, the walk must be empty (full
dumps have no walker), ``kerndisp`` 0 and the page count the chunks' pages.  The
``debug.minidump=0`` cores (physical chunks) open but translate nothing.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import pykvm
from pykvm.synth.arch_powerpc import FORMATS, POWERPC_PHYS_FORMATS, build

CASES = [(fmt, seed) for fmt in FORMATS + POWERPC_PHYS_FORMATS for seed in (0, 1, 2, 3)]


@pytest.mark.parametrize(("fmt", "seed"), CASES)
def test_reader_matches_truth(tmp_path: Path, fmt: str, seed: int) -> None:
    d = build(tmp_path, seed, fmt, extra_symbols=seed * 10)
    t = d.truth
    resolver = pykvm.symtab_resolver(str(d.kernel))
    with pykvm.open2(str(d.kernel), str(d.core), 0, resolver) as kd:
        for va, data in t.regions:
            assert kd.read(va, len(data)) == data, hex(va)
        for va, kind in zip(t.holes, t.hole_kinds, strict=True):
            with pytest.raises(pykvm.FaultError):
                kd.read(va, 1)
            assert kind
        assert list(kd.walk_pages()) == t.walk == []
        assert kd.kerndisp() == t.kerndisp == 0
        assert kd.info().pages == t.dumped_pages
        if fmt.startswith("elf-phys"):
            assert t.regions == []
            with pytest.raises(pykvm.FaultError):
                kd.read(t.symbols["version"], 8)
        else:
            assert kd.read(t.symbols["version"], 8) == b"FreeBSD "
