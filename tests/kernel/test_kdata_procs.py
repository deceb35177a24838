"""getprocs (every op, with and without KERN_PROC_INC_THREAD), getargv and getenvv
against the truth of synthetic dumps."""

from __future__ import annotations

import dataclasses

import pytest
from kdata_helpers import check_record, kdata

from pykvm import kvm as K
from pykvm.constants import (
    KERN_PROC_ALL,
    KERN_PROC_GID,
    KERN_PROC_INC_THREAD,
    KERN_PROC_PGRP,
    KERN_PROC_PID,
    KERN_PROC_PROC,
    KERN_PROC_RGID,
    KERN_PROC_RUID,
    KERN_PROC_SESSION,
    KERN_PROC_TTY,
    KERN_PROC_UID,
    KI_CTTY,
    KI_LOCKBLOCK,
    KI_SLEADER,
    SRUN,
    SSLEEP,
    SWAIT,
    SZOMB,
)
from pykvm.errors import KvmError
from pykvm.kernel import procs
from pykvm.synth import SynthDump
from pykvm.synth.kerneldata import ProcTruth, ThreadTruth

NODEV = (1 << 64) - 1


def _stat(p: ProcTruth, td: ThreadTruth) -> int:
    if p.zombie:
        return SZOMB
    if td.state in (2, 3, 4):
        return SRUN
    return SSLEEP if td.inhibitors & 2 else SWAIT


def _check_proc(k: procs.KinfoProc, p: ProcTruth, t: SynthDump) -> None:
    check_record(k, p)
    if p.zombie:
        assert (k.flag, k.nice, k.tid, k.stat) == (0, 0, 0, SZOMB)


def test_procs_proc(kd: K.Kvm, kdump: SynthDump) -> None:
    t = kdata(kdump)
    got = procs.getprocs(kd, KERN_PROC_PROC)
    assert [k.pid for k in got] == t.pids()
    for k, p in zip(got, t.procs, strict=True):
        _check_proc(k, p, kdump)
        if not p.zombie:
            td = p.threads[0]
            assert k.tid == td.tid and k.tdname == td.name.encode()[:16]
            assert k.stat == _stat(p, td)
    # strict is current libkvm: the same records, but ki_jobc always -1
    strict = procs.getprocs(kd, KERN_PROC_PROC, strict=True)
    assert [k.jobc for k in strict] == [-1] * len(got)
    assert strict == [dataclasses.replace(k, jobc=-1) for k in got]


@pytest.mark.parametrize("op", [KERN_PROC_ALL, KERN_PROC_PROC | KERN_PROC_INC_THREAD])
def test_procs_threads(kd: K.Kvm, kdump: SynthDump, op: int) -> None:
    t = kdata(kdump)
    got = procs.getprocs(kd, op)
    want = [(p, td) for p in t.procs for td in (p.threads[:1] if p.zombie else p.threads)]
    assert len(got) == len(want)
    for k, (p, td) in zip(got, want, strict=True):
        _check_proc(k, p, kdump)
        if p.zombie:
            continue
        assert k.tid == td.tid
        assert k.tdname == td.name.encode()[:16]
        assert (k.pri_level, k.pri_native) == (td.priority, td.base_pri)
        # FreeBSD 10's u_char td_oncpu/td_lastcpu hold NOCPU as 0xff: read as -1
        oncpu, lastcpu = (-1 if v == 0xFF and t.era == "10" else v
                          for v in (td.oncpu, td.lastcpu))
        assert (k.oncpu, k.lastcpu, k.wchan) == (oncpu, lastcpu, td.wchan)
        assert (k.oncpu_old, k.lastcpu_old) == tuple(
            255 if v == -1 else min(v, 254) for v in (oncpu, lastcpu))
        assert k.stat == _stat(p, td)
        wm = (td.wmesg or "").encode()
        assert k.wmesg[:len(wm)] == wm[:8]
        if k.kiflag & KI_LOCKBLOCK:
            assert k.lockname == b"sleep mu"


def _pids(kd: K.Kvm, op: int, arg: int) -> list[int]:
    return [k.pid for k in procs.getprocs(kd, op, arg)]


@pytest.mark.parametrize("inc", [0, KERN_PROC_INC_THREAD])
def test_procs_filters(kd: K.Kvm, kdump: SynthDump, inc: int) -> None:
    t = kdata(kdump)

    def per(ps: list[ProcTruth]) -> list[int]:
        if not inc:
            return [p.pid for p in ps]
        return [p.pid for p in ps for _ in (p.threads[:1] if p.zombie else p.threads)]

    for p in t.procs:
        assert _pids(kd, KERN_PROC_PID | inc, p.pid) == per([p])
        assert _pids(kd, KERN_PROC_PGRP | inc, p.pgid) == per(
            [q for q in t.procs if q.pgid == p.pgid])
        assert _pids(kd, KERN_PROC_SESSION | inc, p.sid) == per(
            [q for q in t.procs if q.sid == p.sid])
        assert _pids(kd, KERN_PROC_UID | inc, p.uid) == per(
            [q for q in t.procs if q.uid == p.uid])
        assert _pids(kd, KERN_PROC_RUID | inc, p.ruid) == per(
            [q for q in t.procs if q.ruid == p.ruid])
        assert _pids(kd, KERN_PROC_RGID | inc, p.rgid) == per(
            [q for q in t.procs if q.rgid == p.rgid])
        assert _pids(kd, KERN_PROC_GID | inc, p.egid) == per(
            [q for q in t.procs if q.groups[0] == p.egid])
    # TTY: arg -1 is NODEV, and every controlling-tty process has ki_tdev == NODEV
    assert _pids(kd, KERN_PROC_TTY | inc, -1) == per([q for q in t.procs if q.tty])
    assert _pids(kd, KERN_PROC_TTY | inc, 0) == []
    assert _pids(kd, KERN_PROC_PID | inc, 99999) == []
    assert kd.geterr() == ""  # nothing matched: no message
    # unknown ops behave like KERN_PROC_PROC
    assert _pids(kd, 77 | inc, 0) == per(list(t.procs))


def test_procs_kiflag(kd: K.Kvm, kdump: SynthDump) -> None:
    t = kdata(kdump)
    for k, p in zip(procs.getprocs(kd, KERN_PROC_PROC), t.procs, strict=True):
        if p.tty is None:
            assert k.kiflag & KI_SLEADER == (KI_SLEADER if p.session_leader == p.addr else 0)
            assert not k.kiflag & KI_CTTY


def test_argv_envv(kd: K.Kvm) -> None:
    k = procs.getprocs(kd, KERN_PROC_PROC)[0]
    with pytest.raises(KvmError, match="^cannot read user space from dead kernel$"):
        procs.getargv(kd, k, 0)
    assert kd.geterr() == "cannot read user space from dead kernel"
    with pytest.raises(KvmError, match="^cannot read user space from dead kernel$"):
        procs.getenvv(kd, k, 0)


def test_cputick2usec() -> None:
    assert procs.cputick2usec(10, 0) == 0
    assert procs.cputick2usec(3_000_000_000, 1_000_000_000) == 3_000_000
    assert procs.cputick2usec(1_500_000_001, 1_000_000_000) == 1_500_000
