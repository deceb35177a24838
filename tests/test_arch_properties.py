"""Every architecture and format: random reads equal the ground truth, damage fails cleanly.

The same properties tests/test_properties.py checks on amd64, over every format
pykvm.synth writes.  Dumps of other architectures are opened as libkvm opens
them off their host: kvm_open2 with a symbol resolver.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pykvm
from pykvm import synth
from pykvm.synth import SynthDump

CASES = [(a, f) for a in synth.ARCHES for f in synth.formats(a)]
TIME_BOUND = 5.0


def open_dump(kernel: Path, core: Path) -> pykvm.Kvm:
    return pykvm.open2(str(kernel), str(core), 0, pykvm.symtab_resolver(str(kernel)))


@pytest.fixture(scope="module")
def dumps(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], SynthDump]:
    return {(a, f): synth.build(a, tmp_path_factory.mktemp(f"{a}-{f}"), 21, f)
            for a, f in CASES}


@pytest.fixture(scope="module")
def descriptors(dumps: dict[tuple[str, str], SynthDump]):  # type: ignore[no-untyped-def]
    kds = {k: open_dump(d.kernel, d.core) for k, d in dumps.items()}
    yield kds
    for kd in kds.values():
        kd.close()


@settings(max_examples=600, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_random_reads_equal_truth(dumps, descriptors, data: st.DataObject) -> None:  # type: ignore[no-untyped-def]
    key = data.draw(st.sampled_from(CASES))
    d, kd = dumps[key], descriptors[key]
    va0, blob = data.draw(st.sampled_from(d.truth.regions))
    start = va0 + data.draw(st.integers(-64, len(blob) + 64))
    size = data.draw(st.integers(0, 3 * d.truth.page_size))
    want = d.truth.expect(start, size)
    if want is None:
        with pytest.raises(pykvm.FaultError) as ei:
            kd.read2(start, size)
        assert start <= ei.value.address < start + size, key
        assert d.truth.expect(ei.value.address, 1) is None, key
    else:
        assert kd.read2(start, size) == want, key


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_holes_fail(dumps, descriptors, data: st.DataObject) -> None:  # type: ignore[no-untyped-def]
    key = data.draw(st.sampled_from(CASES))
    d, kd = dumps[key], descriptors[key]
    va = data.draw(st.sampled_from(d.truth.holes))
    with pytest.raises(pykvm.FaultError):
        kd.read2(va, 8)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_damaged_cores_and_kernels(dumps, tmp_path_factory: pytest.TempPathFactory,  # type: ignore[no-untyped-def]
                                   data: st.DataObject) -> None:
    key = data.draw(st.sampled_from(CASES))
    d = dumps[key]
    target = data.draw(st.sampled_from(["core", "kernel"]))
    raw = bytearray((d.core if target == "core" else d.kernel).read_bytes())
    if data.draw(st.booleans()):
        raw = raw[: data.draw(st.integers(0, len(raw)))]
    else:
        span = min(len(raw), data.draw(st.sampled_from([512, 4096, 1 << 20, len(raw)])))
        for _ in range(data.draw(st.integers(1, 12))):
            raw[data.draw(st.integers(0, span - 1))] = data.draw(st.integers(0, 255))
    out = tmp_path_factory.mktemp("damaged")
    kernel, core = d.kernel, d.core
    if target == "core":
        core = out / "vmcore"
        core.write_bytes(bytes(raw))
    else:
        kernel = out / "kernel"
        kernel.write_bytes(bytes(raw))
    t0 = time.monotonic()
    try:
        with open_dump(kernel, core) as kd:
            kd.nlist2(["version", "hz", "no_such_symbol"])
            for va, blob in d.truth.regions[:6]:
                try:
                    kd.read2(va, min(len(blob), 8192))
                except pykvm.FaultError:
                    pass
            for _i, _p in zip(range(20000), kd.walk_pages(), strict=False):
                pass
            kd.info()
            kd.kerndisp()
    except pykvm.KvmError as exc:
        assert str(exc), key
    assert time.monotonic() - t0 < TIME_BOUND, key
