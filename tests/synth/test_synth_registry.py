"""Architecture discovery (``pykvm.synth.build``/``formats``/``ARCHES``) and the contract
every ``arch_<name>`` module must meet.

The contract tests run for every architecture module present, so a new one is checked
the moment its file exists: same seed -> same bytes, a kernel ELF that matches the
module's spec, and a ground truth of the common shape whose samples are consistent.
"""

from __future__ import annotations

import hashlib
import struct
import time
from pathlib import Path

import pytest

from pykvm import synth
from pykvm.synth import AMD64_FORMATS, ARCHES, KNOWN_ARCHES, SynthDump, build_amd64


def test_amd64_is_discovered() -> None:
    assert "amd64" in ARCHES and ARCHES[0] == "amd64"
    assert set(ARCHES) <= set(KNOWN_ARCHES), "architecture names are pykvm's eight"
    assert synth.formats("amd64") == AMD64_FORMATS == synth.arch_module("amd64").FORMATS
    assert synth.default_format("amd64") == "minidump-v3"


def test_discovery_is_by_module_name(tmp_path: Path) -> None:
    (tmp_path / "arch_zeta.py").write_text("")
    (tmp_path / "arch_amd64.py").write_text("")
    (tmp_path / "arch_i386").mkdir()
    (tmp_path / "arch_i386" / "__init__.py").write_text("")
    (tmp_path / "arch_.py").write_text("")
    (tmp_path / "archive.py").write_text("")
    (tmp_path / "notes").mkdir()
    assert synth.discover([str(tmp_path)]) == ("amd64", "i386", "zeta")


def test_build_dispatches_to_the_module(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    via = synth.build("amd64", a, seed=3, small_kva=True)
    direct = build_amd64(b, 3, "minidump-v3", small_kva=True)
    assert (via.arch, via.fmt) == ("amd64", "minidump-v3")
    assert via.kernel.read_bytes() == direct.kernel.read_bytes()
    assert via.core.read_bytes() == direct.core.read_bytes()
    assert via.truth.regions == direct.truth.regions


def test_build_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown architecture 'vax'"):
        synth.build("vax", tmp_path)
    with pytest.raises(ValueError, match="unknown architecture"):
        synth.formats("amd")
    with pytest.raises(ValueError, match="unknown amd64 dump format 'minidump-v9'"):
        synth.build("amd64", tmp_path, fmt="minidump-v9")
    with pytest.raises(TypeError):
        synth.build("amd64", tmp_path, fmt="elf", no_such_option=1)


def _cases() -> list[tuple[str, str]]:
    cases: list[tuple[str, str]] = []
    for arch in ARCHES:
        try:
            fmts = synth.formats(arch)
        except Exception:  # reported by the test below, not at collection
            fmts = ("<module does not load>",)
        cases += [(arch, fmt) for fmt in fmts]
    return cases


def _digest(dump: SynthDump) -> tuple[str, str]:
    return (
        hashlib.sha256(dump.kernel.read_bytes()).hexdigest(),
        hashlib.sha256(dump.core.read_bytes()).hexdigest(),
    )


@pytest.mark.parametrize(("arch", "fmt"), _cases())
def test_architecture_contract(tmp_path: Path, arch: str, fmt: str) -> None:
    formats = synth.formats(arch)  # raises if the module does not load or lacks exports
    assert fmt in formats
    dirs = [tmp_path / "a", tmp_path / "b"]
    for d in dirs:
        d.mkdir()
    start = time.perf_counter()
    dump = synth.build(arch, dirs[0], seed=1, fmt=fmt)
    assert time.perf_counter() - start < 5.0, "keep default builds fast"
    again = synth.build(arch, dirs[1], seed=1, fmt=fmt)
    assert _digest(dump) == _digest(again), "the same seed must give the same bytes"
    assert (dump.arch, dump.fmt) == (arch, fmt)
    assert dump.kernel.parent == dirs[0] and dump.core.parent == dirs[0]

    t = dump.truth
    spec = t.spec
    assert spec is not None and spec.arch == arch and t.fmt == fmt
    assert t.page_size in (4096, 16384) and t.page_size % spec.page_size == 0
    # the kernel file is the spec's ELF
    k = dump.kernel.read_bytes()
    assert k[:4] == b"\x7fELF" and (k[4], k[5], k[6]) == (spec.elfclass, spec.data, 1)
    assert k[7] == spec.osabi
    e_type, e_machine = struct.unpack_from(spec.endian + "HH", k, 16)
    assert (e_type, e_machine) == (spec.e_type, spec.e_machine)
    # symbols and variables of the common kernel, in the kernel's byte order
    for name in ("version", "ostype", "hz", "mp_maxcpus", "dumptid", "kernbase", "synth_pair"):
        assert name in t.symbols and name in t.nlist_types, name
    assert t.symbols["kernbase"] == t.KERNBASE == spec.kernbase
    assert "counter" in t.duplicates and "_synth_pair" in t.symbols
    assert t.variables["ostype"] == b"FreeBSD\0"
    assert int.from_bytes(t.variables["hz"], spec.byteorder) in (100, 1000)
    assert t.expect(t.symbols["version"], 8) == b"FreeBSD ", "the version string is readable"
    assert t.expect(t.symbols["ostype"], 8) == b"FreeBSD\0"
    # RAM, samples, leaves, walk
    assert t.dump_avail and t.physmem == sum(e - s for s, e in t.dump_avail)
    assert all(s < e for s, e in t.dump_avail)
    assert t.dumped_pages > 0 and dump.core.stat().st_size > 0
    assert len(t.regions) >= 10
    for va, data in t.regions:
        assert data and t.expect(va, len(data)) == data, hex(va)
    assert len(t.holes) == len(t.hole_kinds) >= 3
    assert all(t.expect(va, 1) is None for va in t.holes)
    assert [leaf.va for leaf in t.leaves] == sorted(leaf.va for leaf in t.leaves)
    assert all(isinstance(p, synth.WalkPage) and p.version == 2 for p in t.walk)
    assert isinstance(t.kerndisp, int) and isinstance(t.extras, dict)
    if t.version and t.layout:  # minidumps: the file is exactly header .. page data
        assert dump.core.stat().st_size == t.layout["sparse_off"] + t.page_size * t.dumped_pages
