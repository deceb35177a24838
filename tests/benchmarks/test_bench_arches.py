"""Random-read and bulk-read figures for every architecture and dump format.

Each format's median time per warm 8-byte read must stay within twice amd64
minidump v3's, measured in the same run.  Uncached translation (the page
cache switched off) and bulk throughput over the largest readable region are
reported alongside.
"""

from __future__ import annotations

import json
import random
import statistics
import time
from pathlib import Path

import pytest

import pykvm
from pykvm import synth
from pykvm.synth import SynthDump

SEED = 77
CASES = [(a, f) for a in synth.ARCHES for f in synth.formats(a)]
MEDIANS: dict[tuple[str, str], float] = {}


def addresses(d: SynthDump, n: int, rng: random.Random) -> list[int]:
    regions = [(va, len(b)) for va, b in d.truth.regions if len(b) >= 8]
    out: list[int] = []
    while len(out) < n:
        va, size = rng.choice(regions)
        a = va + rng.randrange(0, size - 7)
        if d.truth.expect(a, 8) is not None:
            out.append(a)
    return out


def ns_per_read(kd: pykvm.Kvm, addrs: list[int], batch: int = 500) -> float:
    out = []
    read = kd.read2
    for i in range(0, len(addrs), batch):
        chunk = addrs[i:i + batch]
        t0 = time.perf_counter_ns()
        for a in chunk:
            read(a, 8)
        out.append((time.perf_counter_ns() - t0) / len(chunk))
    return statistics.median(out)


def open_dump(d: SynthDump) -> pykvm.Kvm:
    return pykvm.open2(str(d.kernel), str(d.core), 0, pykvm.symtab_resolver(str(d.kernel)))


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """amd64 minidump v3, kept open: every format is timed alternately against it."""
    d = synth.build("amd64", tmp_path_factory.mktemp("ref"), SEED, "minidump-v3")
    addrs = addresses(d, 5_000, random.Random(1))
    kd = open_dump(d)
    ns_per_read(kd, addrs)
    yield kd, addrs
    kd.close()


@pytest.mark.parametrize(("arch", "fmt"), CASES, ids=[f"{a}-{f}" for a, f in CASES])
def test_read_figures(tmp_path: Path, arch: str, fmt: str, reference) -> None:  # type: ignore[no-untyped-def]
    ref_kd, ref_addrs = reference
    d = synth.build(arch, tmp_path, SEED, fmt)
    addrs = addresses(d, 5_000, random.Random(2))
    with open_dump(d) as kd:
        for a in addrs[:100]:
            assert kd.read2(a, 8) == d.truth.expect(a, 8)
        kd._caching = False
        uncached = ns_per_read(kd, addrs[:3000])
        kd._caching = kd.backend.cacheable() if kd.backend else False
        ns_per_read(kd, addrs)
        # alternate rounds so that load on the machine hits both sides alike
        warm_runs, ref_runs = [], []
        for _ in range(5):
            ref_runs.append(ns_per_read(ref_kd, ref_addrs))
            warm_runs.append(ns_per_read(kd, addrs))
        warm, ref = min(warm_runs), min(ref_runs)
        va, blob = max(d.truth.regions, key=lambda r: len(r[1]))
        step = min(len(blob), 1 << 16)
        total = 0
        t0 = time.perf_counter_ns()
        while total < 16 << 20:
            for off in range(0, len(blob) - step + 1, step):
                total += len(kd.read2(va + off, step))
        bulk = total / ((time.perf_counter_ns() - t0) / 1e9) / 1e6
    MEDIANS[(arch, fmt)] = warm
    print(f"\nBENCH read-{arch}-{fmt} " + json.dumps({
        "warm_median_ns": round(warm), "amd64_v3_ns": round(ref), "uncached_ns": round(uncached),
        "ratio_to_amd64_v3": round(warm / ref, 2),
        "bulk_MB_per_s": round(bulk), "bulk_region_bytes": len(blob), "chunk": step}))
    assert warm <= 2 * ref, f"{warm:.0f} ns vs amd64 {ref:.0f} ns"
