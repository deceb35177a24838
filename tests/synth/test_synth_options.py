"""Determinism, speed and options of pykvm.synth.build_amd64."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from pykvm.synth import AMD64_FORMATS, SynthDump, build_amd64


def build(tmp_path: Path, name: str, **kw: object) -> SynthDump:
    d = tmp_path / name
    d.mkdir()
    return build_amd64(d, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("fmt", AMD64_FORMATS)
def test_same_seed_same_bytes(tmp_path: Path, fmt: str) -> None:
    a = build(tmp_path, "a", seed=11, fmt=fmt)
    b = build(tmp_path, "b", seed=11, fmt=fmt)
    assert a.kernel.read_bytes() == b.kernel.read_bytes()
    assert a.core.read_bytes() == b.core.read_bytes()
    assert a.truth.regions == b.truth.regions and a.truth.walk == b.truth.walk
    assert a.fmt == fmt and a.arch == "amd64"


def test_different_seeds_different_machines(tmp_path: Path) -> None:
    truths = [
        build(tmp_path, str(s), seed=s, fmt="minidump-v3", small_kva=True).truth for s in range(5)
    ]
    assert len({tuple(t.dump_avail) for t in truths}) == 5
    assert len({t.symbols["panic"] for t in truths}) > 1
    assert len({t.msgbuf for t in truths}) == 5
    assert any(t.dump_avail[0][0] != 0 for t in truths)
    assert any(t.dump_avail[0][0] == 0 for t in truths)


def test_default_build_time_and_size(tmp_path: Path) -> None:
    for fmt in AMD64_FORMATS:
        start = time.perf_counter()
        dump = build(tmp_path, fmt, seed=0, fmt=fmt)
        elapsed = time.perf_counter() - start
        assert elapsed < 2.0, (fmt, elapsed)
        size = dump.core.stat().st_size
        assert size < 40 << 20
        if fmt != "elf":
            assert dump.truth.dumped_pages * 4096 < 12 << 20


def test_big_sparse_machine(tmp_path: Path) -> None:
    start = time.perf_counter()
    dump = build(tmp_path, "big", seed=0, fmt="minidump-v3", physmem_gib=64)
    assert time.perf_counter() - start < 3.0
    t = dump.truth
    assert t.physmem == 64 << 30
    assert t.layout["bitmapsize"] == (64 << 30) // 4096 // 8  # 2 MiB
    assert dump.core.stat().st_size < 24 << 20
    big_start, big_end = t.dump_avail[-1]
    high = [leaf for leaf in t.leaves if big_start <= leaf.pa < big_end]
    assert len(high) == 16
    assert all(t.expect(leaf.va, 4096) is not None for leaf in high)
    assert t.expect(t.dmapbase + big_start + (big_end - big_start) // 2, 8) is None


def test_elf_refuses_big_machine(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        build_amd64(tmp_path, seed=0, fmt="elf", physmem_gib=8)


def test_bad_options(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        build_amd64(tmp_path, fmt="minidump-v4")
    with pytest.raises(ValueError):
        build_amd64(tmp_path, kernphys=0x201000)
    with pytest.raises(ValueError):
        build_amd64(tmp_path, fmt="minidump-v3", dump_delta=True)
    with pytest.raises(ValueError):
        build_amd64(tmp_path, vm_min_kernel_address=0xFFFFFFFF40000000)


def test_file_names(tmp_path: Path) -> None:
    dump = build_amd64(
        tmp_path, seed=0, fmt="minidump-v1", kernel_name="kernel.full", core_name="vmcore.0"
    )
    assert dump.kernel == tmp_path / "kernel.full" and dump.kernel.exists()
    assert dump.core == tmp_path / "vmcore.0" and dump.core.exists()


@pytest.mark.parametrize("kernphys", [0x400000, 0x1000000, 0x40000000])
def test_kernphys_option(tmp_path: Path, kernphys: int) -> None:
    t = build_amd64(tmp_path, seed=2, fmt="minidump-v3", kernphys=kernphys, small_kva=True).truth
    assert t.translate(0xFFFFFFFF80200000) == kernphys
    assert t.translate(0xFFFFFFFF80000000) == kernphys - 0x200000
    assert any(s <= kernphys < e for s, e in t.dump_avail)
    assert t.expect(t.symbols["ostype"], 8) == b"FreeBSD\0"
