"""``kvm_getprocs``, ``kvm_getargv``, ``kvm_getenvv`` on dumps (lib/libkvm/kvm_proc.c:
``kvm_getprocs``, ``kvm_deadprocs``, ``kvm_proclist``, ``cputick2usec``, ``kvm_getargv``,
``kvm_getenvv``; kernel-data.md 1 and 2).

Records are :class:`KinfoProc` (the ``struct kinfo_proc`` fields the dump path sets,
kernel-data.md 1.6, with libkvm's names minus ``ki_``).  The byte packing of
``struct kinfo_proc`` (section 10) is not implemented yet.

pykvm deviation: a process or thread list that loops back on itself ends in a
:class:`~pykvm.errors.KvmError` (``allproc corrupt: ...``) in both modes; libkvm would
loop until its capacity fills (or forever for the filtering ops).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .. import errors as E
from ..constants import (
    CRED_FLAG_CAPMODE,
    KERN_PROC_ALL,
    KERN_PROC_GID,
    KERN_PROC_INC_THREAD,
    KERN_PROC_PGRP,
    KERN_PROC_PID,
    KERN_PROC_RGID,
    KERN_PROC_RUID,
    KERN_PROC_SESSION,
    KERN_PROC_TTY,
    KERN_PROC_UID,
    KI_CRF_CAPABILITY_MODE,
    KI_CRF_GRP_OVERFLOW,
    KI_CTTY,
    KI_EMULNAMELEN,
    KI_LOCKBLOCK,
    KI_LOGINLEN,
    KI_NGROUPS,
    KI_SLEADER,
    LOCKNAMELEN,
    MAX_PROC_WALK,
    MAXCPU_OLD,
    NOCPU,
    NOCPU_OLD,
    P_CONTROLT,
    P_SHOULDSTOP,
    PRS_NEW,
    PRS_NORMAL,
    PRS_ZOMBIE,
    SIDL,
    SLOCK,
    SRUN,
    SSLEEP,
    SSTOP,
    SWAIT,
    SZOMB,
    TDI_LOCK,
    TDI_SLEEPING,
    TDS_CAN_RUN,
    TDS_INHIBITED,
    TDS_RUNNING,
    TDS_RUNQ,
    WMESGLEN,
)
from ..errors import KvmError
from ._common import byteorder, check_native, fail, fmt, ptrsize, read_bytes, read_int

if TYPE_CHECKING:
    from ..image.layout import StructView
    from ..kvm import Kvm

U32 = 0xFFFFFFFF
U64 = (1 << 64) - 1
NODEV = U64
_SIGWORDS = 4


def _s32(v: int) -> int:
    v &= U32
    return v - (1 << 32) if v & 0x80000000 else v


@dataclass
class KinfoProc:
    """The ``struct kinfo_proc`` fields libkvm's dump path produces (``ki_`` dropped).

    Signal sets are tuples of four 32-bit words; ``wmesg``, ``login`` and ``lockname``
    are the raw bytes libkvm copies (8, 18 and 8 bytes); ``comm``, ``tdname`` and
    ``emul`` are the strings (at most 18, 16 and 15 characters).
    """

    paddr: int = 0
    args: int = 0
    textvp: int = 0
    fd: int = 0
    pd: int = 0
    vmspace: int = 0
    wchan: int = 0
    pid: int = 0
    ppid: int = 0
    reaper: int = 0
    reapsubtree: int = 0
    pgid: int = 0
    tpgid: int = 0
    sid: int = 0
    tsid: int = 0
    jobc: int = 0
    tdev: int = 0
    siglist: tuple[int, ...] = (0, 0, 0, 0)
    sigmask: tuple[int, ...] = (0, 0, 0, 0)
    sigignore: tuple[int, ...] = (0, 0, 0, 0)
    sigcatch: tuple[int, ...] = (0, 0, 0, 0)
    uid: int = 0
    ruid: int = 0
    svuid: int = 0
    rgid: int = 0
    svgid: int = 0
    ngroups: int = 0
    groups: tuple[int, ...] = ()
    cr_flags: int = 0
    jid: int = 0
    size: int = 0
    rssize: int = 0
    swrss: int = 0
    tsize: int = 0
    dsize: int = 0
    ssize: int = 0
    xstat: int = 0
    acflag: int = 0
    swtime: int = 0
    runtime: int = 0
    flag: int = 0
    kiflag: int = 0
    traceflag: int = 0
    stat: int = 0
    nice: int = 0
    lock: int = 0
    lastcpu: int = 0
    oncpu: int = 0
    lastcpu_old: int = 0
    oncpu_old: int = 0
    tdname: bytes = b""
    wmesg: bytes = bytes(WMESGLEN)
    login: bytes = bytes(KI_LOGINLEN)
    lockname: bytes = bytes(LOCKNAMELEN)
    comm: bytes = b""
    emul: bytes = b""
    numthreads: int = 0
    tid: int = 0
    pri_level: int = 0
    pri_native: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def tdev_freebsd11(self) -> int:
        """``ki_tdev_freebsd11``: the low 32 bits of ``tdev``."""
        return self.tdev & U32


def cputick2usec(tick: int, freq: int) -> int:
    """``cputick2usec`` (current libkvm): microseconds, unsigned 64-bit arithmetic."""
    tick &= U64
    freq &= U64
    if freq == 0:
        return 0
    return ((tick // freq) * 1000000 + ((tick % freq) * 1000000 & U64) // freq) & U64


def _sigset(v: Any) -> tuple[int, ...]:
    """A ``sigset_t`` view as four words."""
    bits = tuple(int(x) for x in v["__bits"])
    return (bits + (0,) * _SIGWORDS)[:_SIGWORDS]


def _strlcpy(raw: bytes, size: int) -> bytes:
    nul = raw.find(b"\0")
    s = raw if nul < 0 else raw[:nul]
    return s[:size - 1]


def _cpu_old(v: int) -> int:
    if v == NOCPU:
        return NOCPU_OLD
    return MAXCPU_OLD if v > MAXCPU_OLD else v


class _Walk:
    """One ``kvm_getprocs`` call's state (the symbols' values and the walk's leftovers)."""

    def __init__(self, kd: Kvm, ticks: int, hz: int, freq: int) -> None:
        self.kd = kd
        self.ticks = ticks
        self.hz = hz
        self.freq = freq
        self.types = kd.types
        self.psize = ptrsize(kd)
        self.order = byteorder(kd)
        self.separate_egid = self.types.struct("ucred").has("cr_gid")
        self.vm: StructView | None = None
        self.emul = bytes(KI_EMULNAMELEN)

    def read(self, name: str, addr: int, what: str) -> StructView:
        """A fatal structure read: ``can't read <what> at %p``."""
        layout = self.types.struct(name)
        try:
            return self.types.view(layout, addr, self.kd)
        except KvmError:
            raise fail(self.kd, fmt(E.CANT_READ_AT, what, addr)) from None

    def soft(self, name: str, addr: int) -> StructView | None:
        layout = self.types.struct(name)
        try:
            return self.types.view(layout, addr, self.kd)
        except KvmError:
            return None

    def creds(self, kp: KinfoProc, cred_addr: int) -> None:
        cred = self.soft("ucred", cred_addr)
        if cred is None:
            return
        kp.uid = int(cred.cr_uid) & U32
        kp.ruid = int(cred.cr_ruid) & U32
        kp.svuid = int(cred.cr_svuid) & U32
        kp.rgid = int(cred.cr_rgid) & U32
        kp.svgid = int(cred.cr_svgid) & U32
        kp.cr_flags = KI_CRF_CAPABILITY_MODE if int(cred.cr_flags) & CRED_FLAG_CAPMODE else 0
        ngroups = int(cred.cr_ngroups)
        groups = [0] * KI_NGROUPS
        first = 0
        if self.separate_egid:
            n = 1 + ngroups
            groups[0] = int(cred.cr_gid) & U32
            first = 1
        else:
            n = ngroups
        if n > KI_NGROUPS:
            n = KI_NGROUPS
            kp.cr_flags |= KI_CRF_GRP_OVERFLOW
        kp.ngroups = n
        want = max(n - first, 0)
        if want:
            raw = b""
            try:
                raw = self.kd.read2(int(cred.cr_groups), want * 4)
            except KvmError:
                pass
            for k in range(len(raw) // 4):
                groups[first + k] = int.from_bytes(raw[4 * k:4 * k + 4], self.order)
        kp.groups = tuple(groups[:max(n, 0)]) if n > 0 else ()
        kp.extra["groups0"] = groups[0]
        prison = int(cred.cr_prison)
        if prison:
            kp.jid = int(self.read("prison", prison, "prison").pr_id)

    def proclist(self, what: int, arg: int, p: int, maxcnt: int, out: list[KinfoProc],
                 listname: str) -> None:
        """``kvm_proclist``: append records to ``out`` (raises on fatal errors)."""
        kd = self.kd
        if what == KERN_PROC_ALL:
            what |= KERN_PROC_INC_THREAD
        sel = what & ~KERN_PROC_INC_THREAD
        inc = bool(what & KERN_PROC_INC_THREAD)
        arg32 = arg & U32
        seen: set[int] = set()
        start = len(out)
        while len(out) - start < maxcnt and p != 0:
            if p in seen or len(seen) >= MAX_PROC_WALK:
                raise fail(kd, E.cformat(E.PROC_CYCLE, listname, MAX_PROC_WALK))
            seen.add(p)
            proc = self.read("proc", p, "proc")
            nxt = int(proc["p_list.le_next"])
            state = int(proc.p_state)
            if state == PRS_NEW:
                p = nxt
                continue
            kp = KinfoProc()
            self.creds(kp, int(proc.p_ucred))
            if sel == KERN_PROC_GID and kp.extra.get("groups0", 0) != arg32:
                p = nxt
                continue
            if sel == KERN_PROC_PID and _s32(int(proc.p_pid)) != _s32(arg):
                p = nxt
                continue
            if sel == KERN_PROC_RGID and kp.rgid != arg32:
                p = nxt
                continue
            if sel == KERN_PROC_UID and kp.uid != arg32:
                p = nxt
                continue
            if sel == KERN_PROC_RUID and kp.ruid != arg32:
                p = nxt
                continue
            kp.paddr = p
            kp.args = int(proc.p_args)
            kp.numthreads = int(proc.p_numthreads)
            kp.textvp = int(proc.p_textvp)
            kp.fd = int(proc.p_fd)
            kp.pd = int(proc.get("p_pd", 0))
            kp.vmspace = int(proc.p_vmspace)
            if int(proc.p_sigacts):
                sa = self.read("sigacts", int(proc.p_sigacts), "sigacts")
                kp.sigignore = _sigset(sa.ps_sigignore)
                kp.sigcatch = _sigset(sa.ps_sigcatch)
            oppid = int(proc.get("p_oppid", 0))
            if oppid:
                kp.ppid = oppid
            elif int(proc.p_pptr):
                kp.ppid = int(self.read("proc", int(proc.p_pptr), "pproc").p_pid)
            if proc.has("p_reaper"):
                reaper = int(proc.p_reaper)
                if reaper:
                    kp.reaper = int(self.read("proc", reaper, "reaper proc").p_pid)
                kp.reapsubtree = int(proc.get("p_reapsubtree", 0))
            flag = int(proc.p_flag)
            sess: StructView | None = None
            pgrp_addr = int(proc.p_pgrp)
            if pgrp_addr == 0:
                kp.tdev = NODEV
            else:
                pgrp = self.read("pgrp", pgrp_addr, "pgrp")
                kp.pgid = int(pgrp.pg_id)
                kp.jobc = -1
                sess = self.read("session", int(pgrp.pg_session), "session")
                kp.sid = int(sess.s_sid)
                kp.login = sess.raw("s_login")[:KI_LOGINLEN].ljust(KI_LOGINLEN, b"\0")
                if flag & P_CONTROLT and int(sess.s_ttyp):
                    tty = self.read("tty", int(sess.s_ttyp), "tty")
                    if int(tty.t_dev):
                        self.read("cdev", int(tty.t_dev), "cdev")
                        kp.tdev = NODEV
                    if int(tty.t_pgrp):
                        kp.tpgid = int(self.read("pgrp", int(tty.t_pgrp), "tpgrp").pg_id)
                    else:
                        kp.tpgid = -1
                    if int(tty.t_session):
                        sess = self.read("session", int(tty.t_session), "session")
                        kp.tsid = int(sess.s_sid)
                else:
                    kp.tdev = NODEV
            vm = self.soft("vmspace", kp.vmspace) if kp.vmspace else None
            if vm is not None:
                self.vm = vm
            if self.vm is not None:
                v = self.vm
                kp.size = int(v["vm_map.size"])
                kp.rssize = int(v["vm_pmap.pm_stats.resident_count"])
                kp.swrss = int(v.vm_swrss)
                kp.tsize = int(v.vm_tsize)
                kp.dsize = int(v.vm_dsize)
                kp.ssize = int(v.vm_ssize)
            if sel == KERN_PROC_PGRP and kp.pgid != _s32(arg):
                p = nxt
                continue
            if sel == KERN_PROC_SESSION and kp.sid != _s32(arg):
                p = nxt
                continue
            if sel == KERN_PROC_TTY and (not flag & P_CONTROLT or kp.tdev != arg & U64):
                p = nxt
                continue
            comm = proc.raw("p_comm")
            if comm[:1] != b"\0":
                kp.comm = _strlcpy(comm, 19)
            sysent = int(proc.p_sysent)
            sv = self.soft("sysentvec", sysent) if sysent else None
            if sv is not None and int(sv.sv_name):
                raw = read_bytes(kd, int(sv.sv_name), KI_EMULNAMELEN)
                if raw is not None:
                    self.emul = raw
            if self.emul[:1] != b"\0":
                kp.emul = _strlcpy(self.emul, KI_EMULNAMELEN)
            kp.runtime = cputick2usec(int(proc["p_rux.rux_runtime"]), self.freq)
            kp.pid = int(proc.p_pid)
            if proc.has("p_xexit"):
                kp.xstat = ((int(proc.p_xexit) << 8) | int(proc.p_xsig)) & 0xFFFF
            else:
                kp.xstat = int(proc.get("p_xstat", 0)) & 0xFFFF
            kp.acflag = int(proc.p_acflag)
            kp.lock = int(proc.p_lock) & 0xFF
            self.threads(proc, kp, state, flag, inc, p, sess, pgrp_addr, maxcnt + start, out)
            p = nxt

    def threads(self, proc: StructView, kp: KinfoProc, state: int, flag: int, inc: bool,
                p: int, sess: StructView | None, pgrp_addr: int, limit: int,
                out: list[KinfoProc]) -> None:
        """The thread loop of ``kvm_proclist`` for one process."""
        zombie = state == PRS_ZOMBIE
        td = int(proc["p_threads.tqh_first"])
        first = True
        seen: set[int] = set()
        psig = _sigset(proc["p_sigqueue.sq_signals"])
        while len(out) < limit and td != 0 and (first or inc):
            first = False
            if td in seen or len(seen) >= MAX_PROC_WALK:
                raise fail(self.kd, fmt(E.THREAD_CYCLE, p, MAX_PROC_WALK))
            seen.add(td)
            thr: StructView | None = None
            if not zombie:
                thr = self.read("thread", td, "thread")
                if inc:
                    td = int(thr["td_plist.tqe_next"])
            else:
                td = 0
            if thr is not None and int(thr.td_wmesg):
                raw = b""
                try:
                    raw = self.kd.read2(int(thr.td_wmesg), WMESGLEN)
                except KvmError:
                    pass
                kp.wmesg = raw + kp.wmesg[len(raw):]
            else:
                kp.wmesg = bytes(WMESGLEN)
            kiflag = kp.kiflag & KI_LOCKBLOCK
            if pgrp_addr and sess is not None:
                kiflag = 0
                if int(sess.s_ttyvp):
                    kiflag |= KI_CTTY
                if int(sess.s_leader) == p:
                    kiflag |= KI_SLEADER
            elif not pgrp_addr:
                kiflag = 0
            kp.kiflag = kiflag
            if thr is not None and int(thr.td_blocked):
                kp.kiflag |= KI_LOCKBLOCK
                if int(thr.td_lockname):
                    raw = b""
                    try:
                        raw = self.kd.read2(int(thr.td_lockname), LOCKNAMELEN)
                    except KvmError:
                        pass
                    kp.lockname = raw + kp.lockname[len(raw):]
                else:
                    kp.lockname = bytes(LOCKNAMELEN)
            else:
                kp.kiflag &= ~KI_LOCKBLOCK
            kp.siglist = psig
            if thr is not None:
                tsig = _sigset(thr["td_sigqueue.sq_signals"])
                kp.siglist = tuple(a | b for a, b in zip(psig, tsig, strict=True))
                kp.sigmask = _sigset(thr.td_sigmask)
                hz = self.hz & U32
                kp.swtime = ((self.ticks - int(proc.p_swtick)) & U32) // hz if hz else 0
                kp.flag = flag
                kp.nice = int(proc.p_nice)
                kp.traceflag = int(proc.p_traceflag)
                tstate = int(thr.td_state)
                if state != PRS_NORMAL:
                    kp.stat = SIDL
                elif tstate in (TDS_RUNQ, TDS_CAN_RUN, TDS_RUNNING):
                    kp.stat = SRUN
                elif tstate == TDS_INHIBITED:
                    inhib = int(thr.td_inhibitors)
                    if flag & P_SHOULDSTOP:
                        kp.stat = SSTOP
                    elif inhib & TDI_SLEEPING:
                        kp.stat = SSLEEP
                    elif inhib & TDI_LOCK:
                        kp.stat = SLOCK
                    else:
                        kp.stat = SWAIT
                kp.pri_level = int(thr.td_priority)
                kp.pri_native = int(thr.td_base_pri)
                kp.lastcpu = int(thr.td_lastcpu)
                kp.oncpu = int(thr.td_oncpu)
                kp.wchan = int(thr.td_wchan)
                name = thr.raw("td_name")
                kp.tdname = _strlcpy(name, 17) if name[:1] != b"\0" else b""
                kp.lastcpu_old = _cpu_old(kp.lastcpu)
                kp.oncpu_old = _cpu_old(kp.oncpu)
                kp.tid = int(thr.td_tid)
            else:
                kp.sigmask = (0, 0, 0, 0)
                kp.stat = SZOMB
                kp.tid = 0
            rec = copy.copy(kp)
            rec.extra = dict(kp.extra)
            out.append(rec)


def getprocs(kd: Kvm, op: int, arg: int = 0, *, strict: bool = False) -> list[KinfoProc]:
    """``kvm_getprocs`` (dump path): the processes (or threads) ``op``/``arg`` select.

    ``op`` is a ``KERN_PROC_*`` code, optionally OR-ed with ``KERN_PROC_INC_THREAD``
    (one record per thread; ``KERN_PROC_ALL`` always is).  An empty list where libkvm
    returns NULL without a message (nothing matched).  Raises
    :class:`~pykvm.errors.KvmError` with libkvm's texts (``%s: no such symbol``,
    ``can't read nprocs``, ``cannot read allproc``, ``can't read proc at %p``, ...,
    strict: ``cannot read procs from non-native core``) and pykvm's cycle text.  A
    failure while walking ``zombproc`` keeps the ``allproc`` records, as libkvm does.
    """
    check_native(kd, strict, E.PROCS_NON_NATIVE)
    names = ["_nprocs", "_allproc", "_ticks", "_hz", "_cpu_tick_frequency"]
    res = kd.nlist2(names)
    if res.missing != 0:
        for e in res.entries:
            if e.type == 0:
                raise fail(kd, E.cformat(E.NO_SUCH_SYMBOL, e.name))
        raise fail(kd, E.cformat(E.NO_SUCH_SYMBOL, names[0]))
    v = {e.name: e.value for e in res.entries}
    zomb = kd.nlist2(["_zombproc"])["_zombproc"].value
    nprocs = read_int(kd, v["_nprocs"], 4, signed=True)
    if nprocs is None:
        raise fail(kd, E.cformat(E.CANT_READ_VAR, "nprocs"))
    if op == KERN_PROC_ALL or op & KERN_PROC_INC_THREAD:
        nprocs = _s32(nprocs * 10)
    vals = []
    for name, size in (("ticks", 4), ("hz", 4), ("cpu_tick_frequency", 8)):
        got = read_int(kd, v["_" + name], size, signed=size == 4)
        if got is None:
            raise fail(kd, E.cformat(E.CANT_READ_VAR, name))
        vals.append(got)
    walk = _Walk(kd, vals[0], vals[1], vals[2])
    out: list[KinfoProc] = []
    psize = ptrsize(kd)
    first = read_int(kd, v["_allproc"], psize)
    if first is None:
        raise fail(kd, E.cformat(E.CANT_READ_LIST, "allproc"))
    walk.proclist(op, arg, first, nprocs, out, "allproc")
    if zomb:
        zfirst = read_int(kd, zomb, psize)
        if zfirst is None:
            raise fail(kd, E.cformat(E.CANT_READ_LIST, "zombproc"))
        keep = len(out)
        try:
            walk.proclist(op, arg, zfirst, nprocs - keep, out, "zombproc")
        except KvmError:
            del out[keep:]  # its message stays in geterr(); the allproc records remain
    return out


def getargv(kd: Kvm, kp: KinfoProc, nchr: int = 0, *, pargs: bool = False) -> list[bytes]:
    """``kvm_getargv``: on dumps libkvm always fails with ``cannot read user space from
    dead kernel``.  ``pargs=True`` (a pykvm extension, Appendix B row 7) returns the
    kernel's cached arguments (``struct pargs`` at ``kp.args``), at most ``nchr`` bytes
    when ``nchr`` > 0."""
    if not pargs or kp.args == 0:
        raise fail(kd, E.DEAD_USER_SPACE)
    pa = kd.types.view("pargs", kp.args, kd)
    length = int(pa.ar_length)
    if nchr > 0:
        length = min(length, nchr)
    data = kd.read2(pa.member_address("ar_args"), length)
    parts = data.split(b"\0")
    if parts and parts[-1] == b"":
        parts.pop()
    return parts


def getenvv(kd: Kvm, kp: KinfoProc, nchr: int = 0) -> list[bytes]:
    """``kvm_getenvv``: on dumps always ``cannot read user space from dead kernel``."""
    del kp, nchr
    raise fail(kd, E.DEAD_USER_SPACE)
