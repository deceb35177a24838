"""getprocs(legacy=True) and records_bytes(legacy=True): the records of the dump's own
release's libkvm (pykvm/kernel/procs_legacy.py), against the truth of synthetic dumps of
every era, worked out by the old libkvm's rules."""

from __future__ import annotations

import dataclasses

import pytest
from kdata_helpers import kdata

from pykvm import kvm as K
from pykvm.abi import kinfo_proc as kpabi
from pykvm.constants import (
    KERN_PROC_ALL,
    KERN_PROC_INC_THREAD,
    KERN_PROC_PROC,
    KI_CRF_GRP_OVERFLOW,
    KI_SLEADER,
)
from pykvm.kernel import procs, procs_legacy
from pykvm.synth import SynthDump

NODEV64 = b"\xff" * 8


def _era(kdump: SynthDump) -> int:
    return int(kdata(kdump).era)


@pytest.mark.parametrize("op", [KERN_PROC_ALL, KERN_PROC_PROC | KERN_PROC_INC_THREAD])
def test_legacy_thread_records(kd: K.Kvm, kdump: SynthDump, op: int) -> None:
    t = kdata(kdump)
    era = int(t.era)
    got = procs.getprocs(kd, op, legacy=True)
    if era <= 12:  # 10/12-era kvm_proclist: the first thread only, no ki_tid/numthreads
        assert [k.pid for k in got] == t.pids()
        assert all(k.tid == 0 and k.numthreads == 0 for k in got)
        for k, p in zip(got, t.procs, strict=True):
            if not p.zombie:
                assert k.tdname == p.threads[0].name.encode()[:16]
    else:
        want = [(p, td) for p in t.procs for td in (p.threads[:1] if p.zombie else p.threads)]
        assert [(k.pid, k.tid) for k in got] == [
            (p.pid, 0 if p.zombie else td.tid) for p, td in want]
        assert [k.numthreads for k in got] == [len(p.threads) for p, _ in want]
    # no synthetic kernel's struct kinfo_proc has ki_reaper: the bytes were spares
    assert all(k.reaper == 0 and k.reapsubtree == 0 for k in got)
    default = procs.getprocs(kd, op)
    # the default mode fills them from p_reaper (kernels since 10.2; era 10 here has none)
    assert any(k.reaper != 0 for k in default) == (era >= 11)


def test_legacy_kiflag_own_session_and_zombie_mask(kd: K.Kvm, kdump: SynthDump) -> None:
    t = kdata(kdump)
    got = procs.getprocs(kd, KERN_PROC_PROC, legacy=True)
    if int(t.era) > 12:
        # the per-thread libkvm: its records are the default ones but for the reaper
        # fields, which no synthetic kernel's struct kinfo_proc has
        default = procs.getprocs(kd, KERN_PROC_PROC)
        assert got == [dataclasses.replace(k, reaper=0, reapsubtree=0) for k in default]
        return
    last = (0, 0, 0, 0)
    for k, p in zip(got, t.procs, strict=True):
        assert k.kiflag & KI_SLEADER == (KI_SLEADER if p.session_leader == p.addr else 0)
        if p.zombie:  # the stale mtd of the last non-zombie process
            assert k.sigmask == last
        else:
            last = k.sigmask
    assert any(p.zombie for p in t.procs) and last != (0, 0, 0, 0)
    for k, p in zip(procs.getprocs(kd, KERN_PROC_PROC), t.procs, strict=True):
        if p.zombie:
            assert k.sigmask == (0, 0, 0, 0)


def test_legacy_cpu_fields(kd: K.Kvm, kdump: SynthDump) -> None:
    t = kdata(kdump)
    era = int(t.era)
    got = procs.getprocs(kd, KERN_PROC_PROC, legacy=True)
    for k, p in zip(got, t.procs, strict=True):
        if p.zombie:
            continue
        td = p.threads[0]
        if era == 10:  # u_char ki_oncpu/ki_lastcpu = td value (truncated); no int fields
            assert (k.oncpu_old, k.lastcpu_old) == (td.oncpu & 0xFF, td.lastcpu & 0xFF)
            assert (k.oncpu, k.lastcpu) == (0, 0)
        else:
            assert (k.oncpu, k.lastcpu) == (td.oncpu, td.lastcpu)
            assert k.oncpu_old == (255 if td.oncpu == -1 else min(td.oncpu, 254))
    if era == 10:  # pykvm's default reads the u_char NOCPU 0xff as NOCPU (-1)
        idle = [k for k, p in zip(procs.getprocs(kd, KERN_PROC_PROC), t.procs, strict=True)
                if not p.zombie and p.threads[0].oncpu == 255]
        assert idle and all((k.oncpu, k.oncpu_old) == (-1, 255) for k in idle)


def test_legacy_bytes_tdev(kd: K.Kvm, kdump: SynthDump) -> None:
    era = _era(kdump)
    size = 1088
    recs = procs.getprocs(kd, KERN_PROC_PROC, legacy=True)
    old = kpabi.records_bytes(kd, recs, legacy=True)
    cur = kpabi.records_bytes(kd, recs)
    assert len(old) == len(cur) == size * len(recs)
    for i in range(len(recs)):
        base = i * size
        assert old[base + 100:base + 104] == b"\xff\xff\xff\xff"  # 32-bit NODEV
        assert cur[base + 560:base + 568] == NODEV64
        assert old[base + 560:base + 568] == (bytes(8) if era <= 11 else NODEV64)
        # everything else is the same bytes
        assert old[base:base + 560] == cur[base:base + 560]
        assert old[base + 568:base + size] == cur[base + 568:base + size]


def test_release_detection(kd: K.Kvm, kdump: SynthDump) -> None:
    era = _era(kdump)
    rel = procs_legacy.detect(kd)
    assert rel == procs_legacy.Release(
        kinfo_described=True, reaper=False, tdev32=era <= 11, cpu_uchar=era == 10,
        first_thread=era <= 12, tracevp=era <= 12, cr_flags_raw=True)


def test_default_and_strict_unchanged(kd: K.Kvm) -> None:
    a = procs.getprocs(kd, KERN_PROC_ALL)
    b = procs.getprocs(kd, KERN_PROC_ALL, legacy=False)
    assert a == b and all(k.tracep == 0 for k in a)
    assert kpabi.records_bytes(kd, a) == kpabi.records_bytes(kd, b, legacy=False)


def test_cputick2usec_old() -> None:
    f = 2_400_000_123
    # below floor(2^64 / 10^6): (tick * 10^6) / f, like the current formula
    assert procs_legacy.cputick2usec_old(3 * f, f) == 3_000_000
    assert procs_legacy.cputick2usec_old(3 * f, f) == procs.cputick2usec(3 * f, f)
    # middle range: (tick * 1000) / (f / 1000) = 10^17 * 1000 // 2_400_000
    tick = 10 ** 17
    assert procs_legacy.cputick2usec_old(tick, f) == 41_666_666_666_666
    assert procs.cputick2usec(tick, f) == 41_666_664_531_250
    # top range: tick / (f / 10^6) = 2^63 // 2400
    assert procs_legacy.cputick2usec_old(1 << 63, f) == 3_843_071_682_022_823
    assert procs_legacy.cputick2usec_old(5, 0) == 0


def test_tracep_and_cr_flags(kd: K.Kvm, kdump: SynthDump) -> None:
    """The jailed daemon's credential carries CRED_FLAG_CAPMODE and the long-named job is
    ktrace'd (kernels with ``p_tracevp``): current libkvm maps the flag and stores a NULL
    ``ki_tracep``; the dump's own release's libkvm copies both."""
    t = kdata(kdump)
    traced = [p for p in t.procs if p.tracevp]
    capmode = [p for p in t.procs if p.cr_flags]
    assert capmode and (bool(traced) == (int(t.era) <= 12))
    for legacy in (False, True):
        got = {k.pid: k for k in procs.getprocs(kd, KERN_PROC_PROC, legacy=legacy)}
        for p in t.procs:
            k = got[p.pid]
            assert k.cr_flags & ~KI_CRF_GRP_OVERFLOW == p.cr_flags  # 0x1 either way
            assert k.tracep == (p.tracevp if legacy else 0)
