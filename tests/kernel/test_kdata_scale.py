"""getprocs on a dump with ``extra_procs`` (every record against the truth), the fast walk
against the general one, the controlling terminal's name (``extra["ttyname"]``) and the
``p_args`` extension of getargv."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from kdata_helpers import check_record, kdata, le, open_dump, patched

from pykvm import kvm as K
from pykvm.constants import (
    KERN_PROC_ALL,
    KERN_PROC_INC_THREAD,
    KERN_PROC_PGRP,
    KERN_PROC_PID,
    KERN_PROC_PROC,
    KERN_PROC_SESSION,
    KERN_PROC_TTY,
    KERN_PROC_UID,
    KI_CTTY,
    KI_SLEADER,
    SRUN,
    SSLEEP,
    SWAIT,
    SZOMB,
)
from pykvm.errors import KvmError
from pykvm.kernel import procs
from pykvm.synth import SynthDump, build_amd64
from pykvm.synth.kerneldata import ProcTruth, ThreadTruth

EXTRA = 300
#: (type source, era): both group layouts, CTF and DWARF, with and without zombproc
SCALE_CASES = [("ctf-v3", "14"), ("dwarf", "11"), ("ctf-v2", "15")]


@pytest.fixture(scope="module", params=SCALE_CASES, ids=["-".join(c) for c in SCALE_CASES])
def sdump(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
          ) -> SynthDump:
    types, era = request.param
    d: Path = tmp_path_factory.mktemp(f"scale-{types}-{era}")
    return build_amd64(d, seed=11, types=types, era=era, small_kva=True, extra_procs=EXTRA)


@pytest.fixture
def skd(sdump: SynthDump) -> Iterator[K.Kvm]:
    with open_dump(sdump) as h:
        yield h


def _stat(p: ProcTruth, td: ThreadTruth) -> int:
    if p.zombie:
        return SZOMB
    if td.state in (2, 3, 4):
        return SRUN
    return SSLEEP if td.inhibitors & 2 else SWAIT


def _check(k: procs.KinfoProc, p: ProcTruth, td: ThreadTruth | None) -> None:
    check_record(k, p)
    if p.tty is not None:
        assert k.extra["ttyname"] == p.tty
        assert k.kiflag & KI_CTTY
    else:
        assert "ttyname" not in k.extra
    assert bool(k.kiflag & KI_SLEADER) == (p.sid == p.pid)
    assert k.extra["groups0"] == p.groups[0]
    if td is None:
        assert (k.flag, k.nice, k.tid, k.stat) == (0, 0, 0, SZOMB)
        return
    assert (k.flag, k.nice) == (p.flag, p.nice)
    assert (k.tid, k.tdname) == (td.tid, td.name.encode()[:16])
    assert (k.pri_level, k.pri_native, k.oncpu, k.lastcpu, k.wchan) == (
        td.priority, td.base_pri, td.oncpu, td.lastcpu, td.wchan)
    assert k.stat == _stat(p, td)
    want = td.wmesg.encode() if td.wmesg else b""
    assert k.wmesg[:len(want) + 1] == want + b"\0"


def test_scale_every_proc(skd: K.Kvm, sdump: SynthDump) -> None:
    t = kdata(sdump)
    assert t.nprocs == 7 + EXTRA and len(t.procs) == 7 + EXTRA
    got = procs.getprocs(skd, KERN_PROC_PROC)
    assert [k.pid for k in got] == t.pids()
    for k, p in zip(got, t.procs, strict=True):
        _check(k, p, None if p.zombie else p.threads[0])


def test_scale_every_thread(skd: K.Kvm, sdump: SynthDump) -> None:
    t = kdata(sdump)
    got = procs.getprocs(skd, KERN_PROC_ALL)
    want = [(p, td) for p in t.procs for td in (p.threads[:1] if p.zombie else p.threads)]
    # the fixed plan's 12 records (3 + 1 + 1 + 1 + 3 + zombie 1 + 2), 2 threads an extra
    assert len(got) == len(want) == 12 + EXTRA * 2
    for k, (p, td) in zip(got, want, strict=True):
        _check(k, p, None if p.zombie else td)


def _records(kd: K.Kvm, op: int, arg: int) -> list[dict[str, object]] | str:
    try:
        return [dict(vars(k)) for k in procs.getprocs(kd, op, arg)]
    except KvmError as e:
        return str(e)


def test_scale_fast_walk_equals_view_walk(skd: K.Kvm, sdump: SynthDump,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    t = kdata(sdump)
    p = next(q for q in t.procs if q.pid >= 2000 and q.tty is not None)
    ops = [(KERN_PROC_ALL, 0), (KERN_PROC_PROC, 0), (KERN_PROC_PID, p.pid),
           (KERN_PROC_PGRP, p.pgid), (KERN_PROC_SESSION, p.sid), (KERN_PROC_TTY, -1),
           (KERN_PROC_UID, p.uid), (KERN_PROC_PGRP | KERN_PROC_INC_THREAD, p.pgid)]
    assert procs._codecs(skd) is not None
    fast = [_records(skd, op, arg) for op, arg in ops]
    monkeypatch.setattr(procs, "_codecs", lambda kd: None)
    slow = [_records(skd, op, arg) for op, arg in ops]
    assert fast == slow
    assert len(fast[2]) == 1 and fast[2][0]["pid"] == p.pid
    members = [q.pid for q in t.procs if q.pgid == p.pgid]
    assert [r["pid"] for r in fast[3]] == members and len(members) == 5


def test_scale_sessions_share_a_tty(skd: K.Kvm, sdump: SynthDump) -> None:
    t = kdata(sdump)
    extra = [p for p in t.procs if p.pid >= 2000]
    ttys = {p.tty for p in extra if p.tty is not None}
    assert len(ttys) == len({p.sid for p in extra if p.tty is not None}) >= 5
    got = {k.pid: k for k in procs.getprocs(skd, KERN_PROC_PROC)}
    for p in extra:
        assert got[p.pid].extra.get("ttyname") == p.tty


def test_getargv_pargs(skd: K.Kvm, sdump: SynthDump) -> None:
    t = kdata(sdump)
    got = {k.pid: k for k in procs.getprocs(skd, KERN_PROC_PROC)}
    with_args = [p for p in t.procs if p.args is not None]
    without = [p for p in t.procs if p.args is None]
    assert len(with_args) == EXTRA - EXTRA // 3 and without
    for p in with_args:
        kp = got[p.pid]
        assert kp.args != 0
        assert procs.getargv(skd, kp, pargs=True) == [a.encode() for a in p.args]
        # nchr bounds the bytes (NULs included); the string crossing the limit is cut
        assert procs.getargv(skd, kp, 0, pargs=True) == [a.encode() for a in p.args]
        first = p.args[0].encode()
        assert procs.getargv(skd, kp, len(first) + 3, pargs=True) == [first, p.args[1][:2]
                                                                       .encode()]
        with pytest.raises(KvmError, match="^cannot read user space from dead kernel$"):
            procs.getargv(skd, kp)
    for p in without:
        assert got[p.pid].args == 0
        with pytest.raises(KvmError, match="^cannot read user space from dead kernel$"):
            procs.getargv(skd, got[p.pid], pargs=True)
    assert skd.geterr() == "cannot read user space from dead kernel"


def test_extra_procs_needs_types(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="extra_procs needs types"):
        build_amd64(tmp_path, seed=1, extra_procs=5)
    with pytest.raises(ValueError, match="extra_procs must be between 0 and 20000"):
        build_amd64(tmp_path, seed=1, types="ctf-v3", extra_procs=20001)


def test_getargv_absurd_length(sdump: SynthDump, tmp_path: Path) -> None:
    """``ar_length`` of 4 GiB: kvm_argv's ARG_MAX bounds the read (512 KiB on amd64), so
    the result is a KvmError (the arena ends) or at most ARG_MAX bytes, never a 4 GiB
    allocation."""
    t = kdata(sdump)
    p = next(p for p in t.procs if p.args is not None)
    with open_dump(sdump) as kd:
        kp = next(k for k in procs.getprocs(kd, KERN_PROC_PROC) if k.pid == p.pid)
        length_va = kd.types.view("pargs", kp.args, kd).member_address("ar_length")
    with open_dump(sdump, patched(sdump, tmp_path, [(length_va, le(0xFFFFFFFF, 4))])) as kd:
        kp = next(k for k in procs.getprocs(kd, KERN_PROC_PROC) if k.pid == p.pid)
        try:
            got = procs.getargv(kd, kp, pargs=True)
        except KvmError:
            return
        assert sum(len(a) + 1 for a in got) <= 2 * 256 * 1024
