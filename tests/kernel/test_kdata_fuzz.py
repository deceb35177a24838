"""Hypothesis mutates the kernel's data structures in a dump (processes, threads, swap
devices, per-CPU areas, the message buffer) and every kernel-data call must still end
in a result or a :class:`~pykvm.errors.KvmError`: never another exception, never a hang.

One copy of each core is patched in place for an example and restored afterwards; each
example opens a fresh descriptor (the calls cache per descriptor).
"""

from __future__ import annotations

import shutil
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kdata_helpers import kdata, open_dump

from pykvm import kvm as K
from pykvm.constants import (
    KERN_PROC_ALL,
    KERN_PROC_PGRP,
    KERN_PROC_PROC,
    KERN_PROC_SESSION,
    KERN_PROC_TTY,
    KERN_PROC_UID,
)
from pykvm.errors import KvmError
from pykvm.kernel import cptime, loadavg, msgbuf, pcpu, procs, swap
from pykvm.synth import SynthDump
from pykvm.synth import build as synth_build

#: (architecture, format, era): little- and big-endian, 64- and 32-bit
DUMPS = [("amd64", "minidump-v3", "14"), ("powerpc64", "minidump-hpt", "12"),
         ("i386", "minidump-pae", "13")]
#: seconds one example's calls may take in all
BUDGET = 20


@dataclass
class Target:
    """A dump, a patchable copy of its core and the structures worth damaging."""

    dump: SynthDump
    core: Path
    #: (file offset, length) of each structure's bytes that lie in one run of the core
    spans: list[tuple[int, int]]


def _spans(d: SynthDump) -> list[tuple[int, int]]:
    t = kdata(d)
    structs = t.layout.structs
    objs: list[tuple[int, int]] = []
    for p in t.procs:
        objs.append((p.addr, structs["proc"].size))
        objs += [(td.addr, structs["thread"].size) for td in p.threads]
    objs += [(s.addr, structs["swdevt"].size) for s in t.swap]
    objs += [(a, structs["pcpu"].size) for a in t.pcpu]
    objs.append((t.msgbuf.addr, structs["msgbuf"].size))
    out = []
    with open_dump(d) as kd:
        assert kd.backend is not None
        for va, size in objs:
            off, n = kd.backend.kvatop(va)
            out.append((off, min(size, n)))
    return out


@pytest.fixture(scope="module", params=DUMPS, ids=["-".join(x) for x in DUMPS])
def target(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Target:
    arch, fmt, era = request.param
    root = tmp_path_factory.mktemp(f"fuzz-{arch}")
    d = synth_build(arch, root, 17, fmt, types="ctf-v3", era=era)
    core = root / "vmcore.fuzz"
    shutil.copyfile(d.core, core)
    return Target(d, core, _spans(d))


class _Hang(Exception):
    pass


@pytest.fixture
def alarm() -> Iterator[None]:
    def stop(signum: int, frame: FrameType | None) -> None:
        raise _Hang

    old = signal.signal(signal.SIGALRM, stop)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def _calls(kd: K.Kvm, t: Any) -> list[Callable[[], object]]:
    uid = t.procs[-1].uid
    return [
        lambda: procs.getprocs(kd, KERN_PROC_PROC),
        lambda: procs.getprocs(kd, KERN_PROC_ALL),
        lambda: procs.getprocs(kd, KERN_PROC_UID, uid),
        lambda: procs.getprocs(kd, KERN_PROC_PGRP, 1),
        lambda: procs.getprocs(kd, KERN_PROC_SESSION, 1),
        lambda: procs.getprocs(kd, KERN_PROC_TTY, -1),
        lambda: procs.getprocs(kd, KERN_PROC_PROC, strict=True),
        lambda: swap.getswapinfo(kd, 16),
        lambda: loadavg.getloadavg(kd, 3),
        lambda: cptime.getcptime(kd),
        lambda: pcpu.getpcpu(kd, 1),
        lambda: pcpu.counter_u64_fetch(kd, t.pcpu[0]),
        lambda: msgbuf.msgbuf(kd),
    ]


patch = st.tuples(st.integers(0, 1 << 30), st.integers(0, 1 << 30),
                  st.binary(min_size=1, max_size=8))


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(patches=st.lists(patch, min_size=1, max_size=6))
def test_damaged_structures(target: Target, alarm: None,
                            patches: list[tuple[int, int, bytes]]) -> None:
    saved: list[tuple[int, bytes]] = []
    with target.core.open("r+b") as f:
        for which, where, data in patches:
            off, n = target.spans[which % len(target.spans)]
            pos = off + where % max(n - len(data) + 1, 1)
            f.seek(pos)
            saved.append((pos, f.read(len(data))))
            f.seek(pos)
            f.write(data)
    try:
        t = kdata(target.dump)
        kd = open_dump(target.dump, target.core)
        start = time.monotonic()
        signal.alarm(BUDGET)
        try:
            for call in _calls(kd, t):
                try:
                    call()
                except KvmError:
                    pass
        except _Hang:
            pytest.fail(f"the calls did not end within {BUDGET} s")
        finally:
            signal.alarm(0)
            kd.close()
        assert time.monotonic() - start < BUDGET
    finally:
        with target.core.open("r+b") as f:
            for pos, old in reversed(saved):
                f.seek(pos)
                f.write(old)
