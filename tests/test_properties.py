"""Property tests: random reads equal the ground truth; damaged inputs fail cleanly.

Every truncation or byte corruption of a dump or kernel must end in correct
data or a KvmError -- never another exception, never a hang.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pykvm
from pykvm.synth import AMD64_FORMATS, SynthDump, build_amd64

FORMATS = list(AMD64_FORMATS)
#: Seconds one damaged-input session may take (open, reads, nlist, walk).
TIME_BOUND = 5.0


@pytest.fixture(scope="module")
def descriptors(amd64_dumps: dict[str, SynthDump]):  # type: ignore[no-untyped-def]
    kds = {f: pykvm.openfiles(str(d.kernel), str(d.core)) for f, d in amd64_dumps.items()}
    yield kds
    for kd in kds.values():
        kd.close()


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_random_reads_equal_truth(amd64_dumps: dict[str, SynthDump], descriptors,  # type: ignore[no-untyped-def]
                                  data: st.DataObject) -> None:
    fmt = data.draw(st.sampled_from(FORMATS))
    d = amd64_dumps[fmt]
    kd = descriptors[fmt]
    regions = d.truth.regions
    va0, blob = data.draw(st.sampled_from(regions))
    # anywhere in or near the region: reads may run off its end into holes
    start = va0 + data.draw(st.integers(-64, len(blob) + 64))
    size = data.draw(st.integers(0, 9000))
    want = d.truth.expect(start, size)
    if want is None:
        with pytest.raises(pykvm.FaultError) as ei:
            kd.read2(start, size)
        assert str(ei.value).startswith("invalid address (0x")
        assert d.truth.expect(ei.value.address, 1) is None
        assert start <= ei.value.address < start + size
    else:
        assert kd.read2(start, size) == want


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_random_addresses_anywhere(amd64_dumps: dict[str, SynthDump], descriptors,  # type: ignore[no-untyped-def]
                                   data: st.DataObject) -> None:
    fmt = data.draw(st.sampled_from(FORMATS))
    d = amd64_dumps[fmt]
    va = data.draw(st.one_of(
        st.integers(0, 2**64 - 1),
        st.sampled_from(d.truth.holes),
        st.integers(0xFFFFF80000000000, 0xFFFFF80000000000 + (1 << 34)),
        st.integers(0xFFFFFFFF80000000, 0xFFFFFFFFFFFFFFFF),
    ))
    want = d.truth.expect(va, 8)
    if want is None:
        with pytest.raises(pykvm.FaultError):
            descriptors[fmt].read2(va, 8)
    else:
        assert descriptors[fmt].read2(va, 8) == want


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, SynthDump]:
    out = {}
    for fmt in FORMATS:
        out[fmt] = build_amd64(tmp_path_factory.mktemp("tiny-" + fmt), seed=7, fmt=fmt,
                               **TINY_OPTIONS)
    return out


TINY_OPTIONS: dict[str, object] = {"small_kva": True}


def exercise(kernel: Path, core: Path, d: SynthDump) -> None:
    """Open, read, look up and walk; only KvmError may escape."""
    t0 = time.monotonic()
    try:
        with pykvm.openfiles(str(kernel), str(core)) as kd:
            nl = kd.nlist2(["version", "hz", "no_such_symbol"])
            assert nl.missing in (-1, 0, 1, 2, 3)
            for va, blob in d.truth.regions[:6]:
                try:
                    got = kd.read2(va, min(len(blob), 8192))
                except pykvm.FaultError:
                    continue
                assert len(got) <= min(len(blob), 8192)
            for va in d.truth.holes[:3]:
                try:
                    kd.read2(va, 16)
                except pykvm.FaultError:
                    pass
            for _i, _p in zip(range(20000), kd.walk_pages(), strict=False):
                pass
            kd.info()
    except pykvm.KvmError as exc:
        assert str(exc)
    assert time.monotonic() - t0 < TIME_BOUND


@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_corrupt_or_truncated_core(tiny: dict[str, SynthDump],
                                   tmp_path_factory: pytest.TempPathFactory,
                                   data: st.DataObject) -> None:
    fmt = data.draw(st.sampled_from(FORMATS))
    d = tiny[fmt]
    raw = bytearray(d.core.read_bytes())
    action = data.draw(st.sampled_from(["truncate", "flip", "header"]))
    if action == "truncate":
        raw = raw[: data.draw(st.integers(0, len(raw)))]
    elif action == "flip":
        for _ in range(data.draw(st.integers(1, 16))):
            i = data.draw(st.integers(0, len(raw) - 1))
            raw[i] = data.draw(st.integers(0, 255))
    else:  # hammer the header page, where the sizes live
        for _ in range(data.draw(st.integers(1, 8))):
            i = data.draw(st.integers(0, min(len(raw), 4096) - 1))
            raw[i] = data.draw(st.integers(0, 255))
    core = tmp_path_factory.mktemp("bad") / "vmcore"
    core.write_bytes(bytes(raw))
    before = bytes(raw)
    exercise(d.kernel, core, d)
    assert core.read_bytes() == before


@settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_corrupt_or_truncated_kernel(tiny: dict[str, SynthDump],
                                     tmp_path_factory: pytest.TempPathFactory,
                                     data: st.DataObject) -> None:
    fmt = data.draw(st.sampled_from(FORMATS))
    d = tiny[fmt]
    raw = bytearray(d.kernel.read_bytes())
    if data.draw(st.booleans()):
        raw = raw[: data.draw(st.integers(0, len(raw)))]
    else:
        for _ in range(data.draw(st.integers(1, 24))):
            i = data.draw(st.integers(0, len(raw) - 1))
            raw[i] = data.draw(st.integers(0, 255))
    kernel = tmp_path_factory.mktemp("badk") / "kernel"
    kernel.write_bytes(bytes(raw))
    exercise(kernel, d.core, d)


def test_files_not_modified_by_hostile_sessions(tiny: dict[str, SynthDump]) -> None:
    for d in tiny.values():
        st_k, st_c = os.stat(d.kernel), os.stat(d.core)
        exercise(d.kernel, d.core, d)
        assert os.stat(d.kernel).st_mtime_ns == st_k.st_mtime_ns
        assert os.stat(d.core).st_mtime_ns == st_c.st_mtime_ns
