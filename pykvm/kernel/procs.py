"""``kvm_getprocs``, ``kvm_getargv``, ``kvm_getenvv`` on dumps (lib/libkvm/kvm_proc.c:
``kvm_getprocs``, ``kvm_deadprocs``, ``kvm_proclist``, ``cputick2usec``, ``kvm_getargv``,
``kvm_getenvv``; kernel-data.md 1 and 2).

Records are :class:`KinfoProc` (the ``struct kinfo_proc`` fields the dump path sets,
kernel-data.md 1.6, with libkvm's names minus ``ki_``);
:func:`pykvm.abi.kinfo_proc.records_bytes` packs them into the ``struct kinfo_proc``
array libkvm hands out, in the dump's ABI.  ``extra["tdname_raw"]`` holds the raw
``ki_tdname`` array when an earlier thread's longer name survives after the NUL (quirk 6
of 1.9), which the packer writes; ``tdname`` itself is always the clean name.

pykvm deviation: a process or thread list that loops back on itself ends in a
:class:`~pykvm.errors.KvmError` (``allproc corrupt: ...``) in both modes; libkvm would
loop until its capacity fills (or forever for the filtering ops).

pykvm extension: ``extra["ttyname"]`` is the controlling terminal's name as the dump
has it (``session -> s_ttyp -> t_dev -> cdev si_name``, e.g. ``"pts/3"``), set for
records whose process has a controlling tty with a device; libkvm only sets
``ki_tdev`` (to ``NODEV``).

Speed: :class:`_FastWalk` reads each structure once as bytes and decodes the members it
needs with ``struct.Struct`` accessors compiled once per handle and layout
(:class:`_Codecs`); shared objects (credentials, process groups, sessions, ttys, parent
pids, the ``sysentvec``, wait-message strings) are decoded once per call; a read that
fails is repeated every time, so errors and ``geterr()`` are those of the plain walk.
Layouts it cannot serve (a member missing, a bit-field) use :class:`_ViewWalk`, the
member-by-member walk over :class:`~pykvm.image.layout.StructView`.
"""

from __future__ import annotations

import copy
import gc
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from .. import errors as E
from ..abi.target import abi_for
from ..constants import (
    ARG_MAX_ILP32,
    ARG_MAX_LP64,
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
from ..image.layout import _MAX_VIEW
from . import procs_legacy
from ._common import (
    bare_read,
    byteorder,
    cache,
    check_native,
    fail,
    fmt,
    honours_strict,
    ptrsize,
    read_int,
)

if TYPE_CHECKING:
    from ..image.layout import Member, StructLayout, StructView
    from ..kvm import Kvm

U32 = 0xFFFFFFFF
U64 = (1 << 64) - 1
NODEV = U64
_SIGWORDS = 4


def _s16(v: int) -> int:
    """``v`` stored in a C ``short`` (``ki_jobc``)."""
    v &= 0xFFFF
    return v - 0x10000 if v & 0x8000 else v


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
    #: ``ki_tracep``: NULL in current libkvm; ``p_tracevp`` in the legacy mode
    tracep: int = 0
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


_TDNAME_SIZE = 17  # sizeof(ki_tdname): TDNAMLEN + 1
_TDNAME_ZERO = bytes(_TDNAME_SIZE)


def _tdname_update(buf: bytes, name: bytes) -> bytes:
    """``ki_tdname`` after one thread of ``kvm_proclist``: ``strlcpy`` of a non-empty
    ``td_name`` over the previous contents (whose tail survives past the new NUL),
    else the array zeroed (quirk 6 of kernel-data.md 1.9)."""
    if name[:1] == b"\0":
        return _TDNAME_ZERO
    nul = name.find(b"\0")
    s = (name if nul < 0 else name[:nul])[:_TDNAME_SIZE - 1]
    return s + b"\0" + buf[len(s) + 1:]


def _tdname_extra(rec_extra: dict[str, Any], buf: bytes, name: bytes) -> None:
    """Record the raw ``ki_tdname`` array when bytes of an earlier name follow the NUL
    (``extra["tdname_raw"]``; the packer writes it, the ``tdname`` field stays clean)."""
    if buf[len(name) + 1:].strip(b"\0"):
        rec_extra["tdname_raw"] = buf


def _cstr(raw: bytes) -> str:
    """A C string (up to its NUL) as text."""
    nul = raw.find(b"\0")
    return (raw if nul < 0 else raw[:nul]).decode("utf-8", "replace")


def _overlay_read(kd: Kvm, addr: int, size: int, prev: bytes) -> bytes | None:
    """``(void)kvm_read`` into a local that ``kvm_proclist`` reuses from process to
    process: the bytes copied before the first page that does not translate, over the
    previous contents; None when nothing was copied (the contents stay as they were)."""
    raw = bare_read(kd, addr, size)
    if len(raw) == size:
        return raw
    return raw + prev[len(raw):] if raw else None


class _Disjoint:
    """Addresses of same-sized kernel objects, which in a sane kernel never overlap.

    Buckets of the object's size hold at most one object each, so an overlap shows in
    the bucket or a neighbour: O(1) per object.  Bounding the walks by this keeps the
    number of records of a corrupt dump below its size divided by the object's size.
    """

    def __init__(self, size: int) -> None:
        self.size = max(size, 1)
        self.buckets: dict[int, int] = {}

    def add(self, addr: int, *, again: bool = False) -> bool:
        """Record ``addr``; False when it overlaps an object already recorded (the same
        address counts as an overlap unless ``again``)."""
        b = addr // self.size
        for k in (b - 1, b, b + 1):
            x = self.buckets.get(k)
            if x is not None and abs(x - addr) < self.size and not (again and x == addr):
                return False
        self.buckets[b] = addr
        return True


_NOCPU_U8 = 0xFF  # NOCPU of kernels whose td_oncpu is a u_char (FreeBSD 10)


def _cpu(v: int, member: Any) -> int:
    """A CPU number of ``struct thread``: a ``u_char`` member's 0xff is NOCPU (-1)."""
    if member is not None and member.size == 1 and v == _NOCPU_U8:
        return NOCPU
    return v


def _cpu_old(v: int) -> int:
    if v == NOCPU:
        return NOCPU_OLD
    return MAXCPU_OLD if v > MAXCPU_OLD else v


class _ViewWalk:
    """One ``kvm_getprocs`` call's state (the symbols' values and the walk's leftovers),
    reading members through :class:`~pykvm.image.layout.StructView` (the general path)."""

    copy_jobc = False

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
        self.vm_raw = b""
        self.sv_raw = b""
        self.emul = bytes(KI_EMULNAMELEN)
        self.proc_spots = _Disjoint(kd.types.sizeof("proc"))
        self.thread_spots = _Disjoint(kd.types.sizeof("thread"))

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
            raw = bare_read(self.kd, int(cred.cr_groups), want * 4)
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
        # the leftovers of ignored reads live in this walk's locals: zero at its start
        # (uninitialised in libkvm; kernel-data.md 0.4)
        self.vm = None
        self.vm_raw = b""
        self.sv_raw = b""
        self.emul = bytes(KI_EMULNAMELEN)
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
            if not self.proc_spots.add(p, again=True):
                raise fail(kd, fmt(E.PROC_OVERLAP, listname, p))
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
                kp.jobc = _s16(int(pgrp.get("pg_jobc", -1))) if self.copy_jobc else -1
                sess = self.read("session", int(pgrp.pg_session), "session")
                kp.sid = int(sess.s_sid)
                kp.login = sess.raw("s_login")[:KI_LOGINLEN].ljust(KI_LOGINLEN, b"\0")
                if flag & P_CONTROLT and int(sess.s_ttyp):
                    tty = self.read("tty", int(sess.s_ttyp), "tty")
                    if int(tty.t_dev):
                        cdev = self.read("cdev", int(tty.t_dev), "cdev")
                        kp.tdev = NODEV
                        kp.extra["ttyname"] = _cstr(cdev.raw("si_name"))
                    if int(tty.t_pgrp):
                        kp.tpgid = int(self.read("pgrp", int(tty.t_pgrp), "tpgrp").pg_id)
                    else:
                        kp.tpgid = -1
                    if int(tty.t_session):
                        sess = self.read("session", int(tty.t_session), "session")
                        kp.tsid = int(sess.s_sid)
                else:
                    kp.tdev = NODEV
            vm_layout = self.types.struct("vmspace")
            if vm_layout.size <= _MAX_VIEW:
                if kp.vmspace:
                    raw = _overlay_read(kd, kp.vmspace, vm_layout.size,
                                        self.vm_raw or bytes(vm_layout.size))
                    if raw is not None:
                        self.vm_raw = raw
                        self.vm = self.types.view_from(vm_layout, raw, kp.vmspace, kd)
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
            sv = None
            sv_layout = self.types.struct("sysentvec")
            if sysent and sv_layout.size <= _MAX_VIEW:  # (void)kvm_read, reused local
                raw_sv = _overlay_read(kd, sysent, sv_layout.size,
                                       self.sv_raw or bytes(sv_layout.size))
                if raw_sv is not None:
                    self.sv_raw = raw_sv
                    sv = self.types.view_from(sv_layout, raw_sv, sysent, kd)
            if sv is not None and int(sv.sv_name):
                raw = bare_read(kd, int(sv.sv_name), KI_EMULNAMELEN)
                self.emul = raw + self.emul[len(raw):]  # what kvm_read copied, over the last
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
        tdbuf = _TDNAME_ZERO  # the record is zeroed for each process
        while len(out) < limit and td != 0 and (first or inc):
            first = False
            if td in seen or len(seen) >= MAX_PROC_WALK:
                raise fail(self.kd, fmt(E.THREAD_CYCLE, p, MAX_PROC_WALK))
            seen.add(td)
            if not zombie and not self.thread_spots.add(td):
                raise fail(self.kd, fmt(E.THREAD_OVERLAP, p, td))
            thr: StructView | None = None
            if not zombie:
                thr = self.read("thread", td, "thread")
                if inc:
                    td = int(thr["td_plist.tqe_next"])
            else:
                td = 0
            if thr is not None and int(thr.td_wmesg):
                raw = bare_read(self.kd, int(thr.td_wmesg), WMESGLEN)
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
                    raw = bare_read(self.kd, int(thr.td_lockname), LOCKNAMELEN)
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
                kp.lastcpu = _cpu(int(thr.td_lastcpu), thr.layout.get("td_lastcpu"))
                kp.oncpu = _cpu(int(thr.td_oncpu), thr.layout.get("td_oncpu"))
                kp.wchan = int(thr.td_wchan)
                tdbuf = _tdname_update(tdbuf, thr.raw("td_name"))
                kp.tdname = tdbuf[:tdbuf.find(b"\0")]
                kp.lastcpu_old = _cpu_old(kp.lastcpu)
                kp.oncpu_old = _cpu_old(kp.oncpu)
                kp.tid = int(thr.td_tid)
            else:
                kp.sigmask = (0, 0, 0, 0)
                kp.stat = SZOMB
                kp.tid = 0
            rec = copy.copy(kp)
            rec.extra = dict(kp.extra)
            if not zombie:
                _tdname_extra(rec.extra, tdbuf, rec.tdname)
            out.append(rec)


# ------------------------------------------------------------------------- fast path

_CODES = {1: "b", 2: "h", 4: "i", 8: "q"}
#: a member given as (path, value): the value when the layout has no such member
Path = str | tuple[str, int]


class _Unsupported(Exception):
    """The layouts need the general walk (a member missing, a bit-field, an overlap)."""


def _code(m: Member) -> str:
    """The ``struct`` code decoding ``m`` as :meth:`StructView.__getitem__` would."""
    t = m.type
    if m.bit_size is not None or t.size not in _CODES:
        raise _Unsupported(m.name)
    c = _CODES[t.size]
    if t.kind in ("int", "enum"):
        return c if t.signed else c.upper()
    if t.kind == "pointer":
        return c.upper()
    if t.kind == "bool" and t.size == 1:
        return "?"
    raise _Unsupported(m.name)


def _fields(layout: StructLayout, order: str, paths: Sequence[Path],
            sigsets: Sequence[str] = ()) -> Callable[[bytes], tuple[Any, ...]]:
    """One precompiled decoder of ``paths`` (scalars) of ``layout``: ``f(data)`` gives
    their values in the order asked, from one ``struct.Struct.unpack_from``, followed by
    the four words of each ``sigset_t`` in ``sigsets`` (as :func:`_sigset` gives them)."""
    items: list[tuple[int, int, str, int]] = []
    consts: list[tuple[int, int]] = []
    for idx, p in enumerate(paths):
        path, default = (p, None) if isinstance(p, str) else p
        m = layout.get(path)
        if m is None:
            if default is None:
                raise _Unsupported(path)
            consts.append((idx, default))
            continue
        items.append((m.offset, m.size or 0, _code(m), idx))
    idx = len(paths)
    for path in sigsets:
        words = _sigset_words(layout, path)
        for k in range(_SIGWORDS):
            if k < len(words):
                items.append((*words[k], idx))
            else:
                consts.append((idx, 0))
            idx += 1
    nout = idx
    items.sort()
    spec = "<" if order == "little" else ">"
    pos = 0
    for off, size, code, _idx in items:
        if off < pos:
            raise _Unsupported("overlapping members")
        spec += (f"{off - pos}x" if off > pos else "") + code
        pos = off + size
    if pos > layout.size:
        raise _Unsupported("member past the end")
    unpack = struct.Struct(spec).unpack_from
    where = {idx: k for k, (_o, _s, _c, idx) in enumerate(items)}
    where.update({idx: len(items) + j for j, (idx, _v) in enumerate(consts)})
    perm = [where[i] for i in range(nout)]
    extra = tuple(v for _i, v in consts)
    if perm == list(range(nout)) and not extra:
        return unpack
    pick = itemgetter(*perm)
    if len(perm) == 1:
        return lambda data: (pick(unpack(data) + extra),)
    return lambda data: pick(unpack(data) + extra)


def _sigset_words(layout: StructLayout, path: str) -> list[tuple[int, int, str]]:
    """(offset, size, struct code) of each word of the ``sigset_t`` at ``path``."""
    m = layout.get(path + ".__bits")
    if m is None or m.type.kind != "array" or m.type.target is None:
        raise _Unsupported(path)
    el = m.type.target
    n = m.type.count or 0
    if m.bit_size is not None or el.kind != "int" or el.size not in _CODES or n <= 0:
        raise _Unsupported(path)
    if m.offset + n * el.size > layout.size:
        raise _Unsupported(path)
    code = _CODES[el.size] if el.signed else _CODES[el.size].upper()
    return [(m.offset + k * el.size, el.size, code) for k in range(min(n, _SIGWORDS))]


def _sigset_at(layout: StructLayout, order: str, path: str) -> Callable[[bytes], tuple[
        int, ...]]:
    """A decoder of the ``sigset_t`` at ``path``: always four words (as :func:`_sigset`)."""
    words = _sigset_words(layout, path)
    off = words[0][0]
    unpack = struct.Struct(("<" if order == "little" else ">")
                           + "".join(code for _o, _s, code in words)).unpack_from
    if len(words) == _SIGWORDS:
        return lambda data: unpack(data, off)
    pad = (0,) * (_SIGWORDS - len(words))
    return lambda data: unpack(data, off) + pad


def _raw_at(layout: StructLayout, path: str) -> tuple[int, int]:
    """(offset, size) of a member copied as bytes (``p_comm``, ``td_name``...)."""
    m = layout.get(path)
    if m is None or m.bit_size is not None or m.size is None:
        raise _Unsupported(path)
    return m.offset, m.offset + m.size


_PROC_FIELDS: tuple[Path, ...] = (
    "p_list.le_next", "p_state", "p_ucred", "p_pid", "p_args", "p_numthreads",
    "p_textvp", "p_fd", ("p_pd", 0), "p_vmspace", "p_sigacts", ("p_oppid", 0), "p_pptr",
    ("p_reaper", 0), ("p_reapsubtree", 0), "p_flag", "p_pgrp", "p_sysent",
    "p_rux.rux_runtime", "p_acflag", "p_lock", "p_threads.tqh_first", "p_swtick",
    "p_nice", "p_traceflag")
_THREAD_FIELDS: tuple[Path, ...] = (
    "td_plist.tqe_next", "td_wmesg", "td_blocked", "td_lockname", "td_state",
    "td_inhibitors", "td_priority", "td_base_pri", "td_lastcpu", "td_oncpu", "td_wchan",
    "td_tid")
_VM_FIELDS: tuple[Path, ...] = (
    "vm_map.size", "vm_pmap.pm_stats.resident_count", "vm_swrss", "vm_tsize",
    "vm_dsize", "vm_ssize")


class _Codecs:
    """The decoders of one handle's layouts (built once; :func:`_codecs`)."""

    def __init__(self, kd: Kvm, layouts: dict[str, StructLayout]) -> None:
        order = byteorder(kd)
        self.layouts = layouts
        self.size = {name: lay.size for name, lay in layouts.items()}
        self.too_large = {name for name, lay in layouts.items() if lay.size > _MAX_VIEW}
        proc, thread, ucred = layouts["proc"], layouts["thread"], layouts["ucred"]
        self.has_reaper = proc.has("p_reaper")
        self.has_xexit = proc.has("p_xexit")
        xfields: tuple[Path, ...] = (
            ("p_xexit", "p_xsig") if self.has_xexit else (("p_xstat", 0), ("p_xsig", 0)))
        self.proc = _fields(proc, order, _PROC_FIELDS + xfields)
        self.proc_pid = _fields(proc, order, ("p_pid",))
        self.proc_sig = _sigset_at(proc, order, "p_sigqueue.sq_signals")
        self.p_comm = _raw_at(proc, "p_comm")
        self.thread = _fields(thread, order, _THREAD_FIELDS,
                              ("td_sigqueue.sq_signals", "td_sigmask"))
        self.td_sig = _sigset_at(thread, order, "td_sigqueue.sq_signals")
        self.td_mask = _sigset_at(thread, order, "td_sigmask")
        self.td_name = _raw_at(thread, "td_name")
        # FreeBSD 10: u_char td_oncpu/td_lastcpu, whose NOCPU is 0xff
        self.cpu_u8 = any((m := thread.get(n)) is not None and m.size == 1
                          for n in ("td_oncpu", "td_lastcpu"))
        self.separate_egid = ucred.has("cr_gid")
        self.ucred = _fields(ucred, order, (
            "cr_uid", "cr_ruid", "cr_svuid", "cr_rgid", "cr_svgid", "cr_flags",
            "cr_ngroups", "cr_gid" if self.separate_egid else ("cr_gid", 0),
            "cr_groups", "cr_prison"))
        self.prison = _fields(layouts["prison"], order, ("pr_id",))
        self.sa_ignore = _sigset_at(layouts["sigacts"], order, "ps_sigignore")
        self.sa_catch = _sigset_at(layouts["sigacts"], order, "ps_sigcatch")
        self.pgrp = _fields(layouts["pgrp"], order, ("pg_id", "pg_session", ("pg_jobc", -1)))
        self.session = _fields(layouts["session"], order,
                               ("s_sid", "s_ttyp", "s_ttyvp", "s_leader"))
        self.s_login = _raw_at(layouts["session"], "s_login")
        self.tty = _fields(layouts["tty"], order, ("t_dev", "t_pgrp", "t_session"))
        self.si_name = _raw_at(layouts["cdev"], "si_name")
        self.vmspace = _fields(layouts["vmspace"], order, _VM_FIELDS)
        self.sysentvec = _fields(layouts["sysentvec"], order, ("sv_name",))


_STRUCTS = ("proc", "thread", "ucred", "prison", "sigacts", "pgrp", "session", "tty",
            "cdev", "vmspace", "sysentvec")


def _codecs(kd: Kvm) -> _Codecs | None:
    """The handle's :class:`_Codecs` (None: the general walk must serve these layouts)."""
    try:
        layouts = {name: kd.types.struct(name) for name in _STRUCTS}
    except KvmError:
        return None
    key = tuple(id(lay) for lay in layouts.values())
    c = cache(kd)
    hit = c.get("procs.codecs")
    if hit is not None and hit[0] == key:
        return hit[1]  # type: ignore[no-any-return]
    built: _Codecs | None
    try:
        built = _Codecs(kd, layouts)
    except (_Unsupported, KvmError):
        built = None
    c["procs.codecs"] = (key, built)
    return built


_DEFAULTS = dict(KinfoProc().__dict__)
del _DEFAULTS["extra"]
_ZERO_SIG = (0, 0, 0, 0)
_NEW = object.__new__


class _FastWalk:
    """One ``kvm_getprocs`` call over :class:`_Codecs` (same results as
    :class:`_ViewWalk`; shared objects decoded once per call)."""

    copy_jobc = False

    def __init__(self, kd: Kvm, codecs: _Codecs, ticks: int, hz: int, freq: int) -> None:
        self.kd = kd
        self.c = codecs
        self.ticks = ticks
        self.hz = hz
        self.freq = freq
        self.vm: tuple[int, ...] | None = None
        self.vm_raw = b""
        self.sv_raw = b""
        self.emul = bytes(KI_EMULNAMELEN)
        self.proc_spots = _Disjoint(kd.types.sizeof("proc"))
        self.thread_spots = _Disjoint(kd.types.sizeof("thread"))
        # successful reads of shared objects, by address (a failed read is never cached)
        self.creds: dict[int, tuple[Any, ...]] = {}
        self.pids: dict[int, int] = {}
        self.sigacts: dict[int, tuple[tuple[int, ...], tuple[int, ...]]] = {}
        self.pgrps: dict[int, tuple[int, int, int]] = {}
        self.sessions: dict[int, tuple[tuple[int, ...], bytes]] = {}
        self.ttys: dict[int, tuple[int, int, int]] = {}
        self.cdevs: dict[int, str] = {}
        self.sysents: dict[int, tuple[int, bytes]] = {}
        self.names: dict[int, bytes] = {}
        self.strings: dict[int, bytes] = {}

    def data(self, name: str, addr: int, what: str) -> bytes:
        """A fatal structure read (``KREAD``): the whole struct, or ``can't read <what>``."""
        size = self.c.size[name]
        data = b""
        if name not in self.c.too_large:
            try:
                data = self.kd.read2(addr, size)
            except KvmError:
                data = b""
        if len(data) < size:
            raise fail(self.kd, fmt(E.CANT_READ_AT, what, addr))
        return data

    def soft(self, name: str, addr: int) -> bytes | None:
        """An ignored-result structure read: the bytes, or None."""
        size = self.c.size[name]
        if name in self.c.too_large:
            return None
        try:
            data = self.kd.read2(addr, size)
        except KvmError:
            return None
        return data if len(data) >= size else None

    def raw8(self, addr: int, size: int) -> bytes:
        """A bare ``kvm_read`` of a string's first bytes (whatever was read)."""
        hit = self.strings.get(addr)
        if hit is not None and len(hit) == size:
            return hit
        raw = bare_read(self.kd, addr, size)
        if len(raw) == size:
            self.strings[addr] = raw
        return raw

    def pid_of(self, addr: int, what: str) -> int:
        """``p_pid`` of the ``struct proc`` at ``addr`` (a fatal structure read)."""
        pid = self.pids.get(addr)
        if pid is None:
            pid = self.c.proc_pid(self.data("proc", addr, what))[0]
            self.pids[addr] = pid
        return pid

    def cred(self, addr: int) -> tuple[Any, ...] | None:
        """The credential fields of the ``struct ucred`` at ``addr`` (None: unreadable)."""
        hit = self.creds.get(addr)
        if hit is not None:
            return hit
        data = self.soft("ucred", addr)
        if data is None:
            return None
        uid, ruid, svuid, rgid, svgid, crf, ngroups, gid, cr_groups, prison = \
            self.c.ucred(data)
        cr_flags = KI_CRF_CAPABILITY_MODE if crf & CRED_FLAG_CAPMODE else 0
        groups = [0] * KI_NGROUPS
        first = 0
        if self.c.separate_egid:
            n = 1 + ngroups
            groups[0] = gid & U32
            first = 1
        else:
            n = ngroups
        if n > KI_NGROUPS:
            n = KI_NGROUPS
            cr_flags |= KI_CRF_GRP_OVERFLOW
        want = max(n - first, 0)
        if want:
            raw = bare_read(self.kd, cr_groups, want * 4)
            order = "<" if byteorder(self.kd) == "little" else ">"
            k = len(raw) // 4
            groups[first:first + k] = struct.unpack_from(f"{order}{k}I", raw)
        jid = 0
        if prison:
            jid = self.c.prison(self.data("prison", prison, "prison"))[0]
        out = (uid & U32, ruid & U32, svuid & U32, rgid & U32, svgid & U32, cr_flags, n,
               tuple(groups[:n]) if n > 0 else (), groups[0], jid)
        self.creds[addr] = out
        return out

    def pgrp(self, addr: int, what: str) -> tuple[int, int, int]:
        hit = self.pgrps.get(addr)
        if hit is None:
            hit = self.c.pgrp(self.data("pgrp", addr, what))
            self.pgrps[addr] = hit
        return hit

    def session(self, addr: int) -> tuple[tuple[int, ...], bytes]:
        hit = self.sessions.get(addr)
        if hit is None:
            data = self.data("session", addr, "session")
            lo, hi = self.c.s_login
            hit = (self.c.session(data),
                   data[lo:hi][:KI_LOGINLEN].ljust(KI_LOGINLEN, b"\0"))
            self.sessions[addr] = hit
        return hit

    def proclist(self, what: int, arg: int, p: int, maxcnt: int, out: list[KinfoProc],
                 listname: str) -> None:
        """``kvm_proclist``: append records to ``out`` (raises on fatal errors)."""
        # the leftovers of ignored reads live in this walk's locals: zero at its start
        # (uninitialised in libkvm; kernel-data.md 0.4)
        self.vm = None
        self.vm_raw = b""
        self.sv_raw = b""
        self.emul = bytes(KI_EMULNAMELEN)
        kd = self.kd
        c = self.c
        if what == KERN_PROC_ALL:
            what |= KERN_PROC_INC_THREAD
        sel = what & ~KERN_PROC_INC_THREAD
        inc = bool(what & KERN_PROC_INC_THREAD)
        arg32 = arg & U32
        sarg = _s32(arg)
        seen: set[int] = set()
        start = len(out)
        limit = maxcnt + start
        proc_fields = c.proc
        has_reaper = c.has_reaper
        has_xexit = c.has_xexit
        comm_lo, comm_hi = c.p_comm
        hz = self.hz & U32
        freq = self.freq
        read2 = kd.read2
        psize_ = c.size["proc"]
        proc_direct = "proc" not in c.too_large
        vmsize = c.size["vmspace"]
        vm_direct = "vmspace" not in c.too_large
        vmspace_fields = c.vmspace
        creds, pids, pgrps, sessions = self.creds, self.pids, self.pgrps, self.sessions
        copy_jobc = self.copy_jobc
        last_emul: bytes | None = None
        last_emul_str = b""
        while len(out) - start < maxcnt and p != 0:
            if p in seen or len(seen) >= MAX_PROC_WALK:
                raise fail(kd, E.cformat(E.PROC_CYCLE, listname, MAX_PROC_WALK))
            seen.add(p)
            if not self.proc_spots.add(p, again=True):
                raise fail(kd, fmt(E.PROC_OVERLAP, listname, p))
            data = b""
            if proc_direct:  # self.data, inlined
                try:
                    data = read2(p, psize_)
                except KvmError:
                    pass
            if len(data) < psize_ or not proc_direct:
                data = self.data("proc", p, "proc")  # the failure, as KREAD
            (nxt, state, ucred, pid, args, numthreads, textvp, fdp, pdp, vmspace, sigacts,
             oppid, pptr, reaper, reapsubtree, flag, pgrp_addr, sysent, runtime, acflag,
             lock, td, swtick, nice, traceflag, x1, x2) = proc_fields(data)
            self.pids[p] = pid
            if state == PRS_NEW:
                p = nxt
                continue
            d = _DEFAULTS.copy()
            cred = creds.get(ucred)
            if cred is None:
                cred = self.cred(ucred)
            groups0 = 0
            extra: dict[str, Any] = {}
            if cred is not None:
                (d["uid"], d["ruid"], d["svuid"], d["rgid"], d["svgid"], d["cr_flags"],
                 d["ngroups"], d["groups"], groups0, d["jid"]) = cred
                extra["groups0"] = groups0
            if sel:
                if sel == KERN_PROC_GID and groups0 != arg32 \
                        or sel == KERN_PROC_PID and _s32(pid) != sarg \
                        or sel == KERN_PROC_RGID and d["rgid"] != arg32 \
                        or sel == KERN_PROC_UID and d["uid"] != arg32 \
                        or sel == KERN_PROC_RUID and d["ruid"] != arg32:
                    p = nxt
                    continue
            d["paddr"] = p
            d["args"] = args
            d["numthreads"] = numthreads
            d["textvp"] = textvp
            d["fd"] = fdp
            d["pd"] = pdp
            d["vmspace"] = vmspace
            if sigacts:
                sa = self.sigacts.get(sigacts)
                if sa is None:
                    sdata = self.data("sigacts", sigacts, "sigacts")
                    sa = (c.sa_ignore(sdata), c.sa_catch(sdata))
                    self.sigacts[sigacts] = sa
                d["sigignore"], d["sigcatch"] = sa
            if oppid:
                d["ppid"] = oppid
            elif pptr:
                ppid = pids.get(pptr)
                d["ppid"] = ppid if ppid is not None else self.pid_of(pptr, "pproc")
            if has_reaper:
                if reaper:
                    rpid = pids.get(reaper)
                    d["reaper"] = rpid if rpid is not None else self.pid_of(reaper,
                                                                          "reaper proc")
                d["reapsubtree"] = reapsubtree
            kiflag = 0
            tdev = 0
            pgid = sid = 0
            if pgrp_addr == 0:
                tdev = NODEV
            else:
                pg = pgrps.get(pgrp_addr)
                pgid, sess_addr, jobc = pg if pg is not None else self.pgrp(pgrp_addr,
                                                                            "pgrp")
                d["jobc"] = _s16(jobc) if copy_jobc else -1
                se = sessions.get(sess_addr)
                sess, d["login"] = se if se is not None else self.session(sess_addr)
                sid = sess[0]
                if flag & P_CONTROLT and sess[1]:
                    tty_addr = sess[1]
                    tty = self.ttys.get(tty_addr)
                    if tty is None:
                        tty = c.tty(self.data("tty", tty_addr, "tty"))
                        self.ttys[tty_addr] = tty
                    t_dev, t_pgrp, t_session = tty
                    if t_dev:
                        name = self.cdevs.get(t_dev)
                        if name is None:
                            cdata = self.data("cdev", t_dev, "cdev")
                            name = _cstr(cdata[c.si_name[0]:c.si_name[1]])
                            self.cdevs[t_dev] = name
                        tdev = NODEV
                        extra["ttyname"] = name
                    d["tpgid"] = self.pgrp(t_pgrp, "tpgrp")[0] if t_pgrp else -1
                    if t_session:
                        sess = self.session(t_session)[0]
                        d["tsid"] = sess[0]
                else:
                    tdev = NODEV
                if sess[2]:
                    kiflag |= KI_CTTY
                if sess[3] == p:
                    kiflag |= KI_SLEADER
            d["pgid"] = pgid
            d["sid"] = sid
            d["tdev"] = tdev
            if vmspace and vm_direct:  # (void)kvm_read into the reused vmspace local
                vm: bytes | None
                try:
                    vm = read2(vmspace, vmsize)
                except KvmError:
                    vm = _overlay_read(kd, vmspace, vmsize, self.vm_raw or bytes(vmsize))
                if vm is not None and 0 < len(vm) < vmsize:  # a short read (core's end)
                    vm = vm + (self.vm_raw or bytes(vmsize))[len(vm):]
                if vm is not None and len(vm) == vmsize:
                    self.vm_raw = vm
                    self.vm = vmspace_fields(vm)
            if self.vm is not None:
                (d["size"], d["rssize"], d["swrss"], d["tsize"], d["dsize"],
                 d["ssize"]) = self.vm
            if sel == KERN_PROC_PGRP and pgid != sarg \
                    or sel == KERN_PROC_SESSION and sid != sarg \
                    or sel == KERN_PROC_TTY and (not flag & P_CONTROLT or tdev != arg & U64):
                p = nxt
                continue
            comm = data[comm_lo:comm_hi]
            if comm[:1] != b"\0":  # strlcpy(ki_comm, p_comm, MAXCOMLEN)
                nul = comm.find(b"\0")
                d["comm"] = (comm if nul < 0 else comm[:nul])[:18]
            if sysent:
                hit = self.sysents.get(sysent)
                sv_name = None
                if hit is not None:
                    sv_name, self.sv_raw = hit
                elif "sysentvec" not in c.too_large:  # (void)kvm_read, reused local
                    svsize = c.size["sysentvec"]
                    got = bare_read(kd, sysent, svsize)
                    if got:
                        raw_sv = got + (self.sv_raw or bytes(svsize))[len(got):]
                        sv_name = c.sysentvec(raw_sv)[0]
                        if len(got) == svsize:  # a whole read: the same every time
                            self.sysents[sysent] = (sv_name, raw_sv)
                        self.sv_raw = raw_sv
                if sv_name:
                    raw = self.names.get(sv_name)
                    if raw is None:
                        raw = bare_read(kd, sv_name, KI_EMULNAMELEN)
                        if len(raw) == KI_EMULNAMELEN:
                            self.names[sv_name] = raw
                    self.emul = raw + self.emul[len(raw):]  # kvm_read's copy, over the last
            emul = self.emul
            if emul[:1] != b"\0":
                if emul is not last_emul:  # strlcpy(ki_emul, svname, KI_EMULNAMELEN)
                    last_emul, last_emul_str = emul, _strlcpy(emul, KI_EMULNAMELEN)
                d["emul"] = last_emul_str
            d["runtime"] = cputick2usec(runtime, freq)
            d["pid"] = pid
            d["xstat"] = ((x1 << 8) | x2) & 0xFFFF if has_xexit else x1 & 0xFFFF
            d["acflag"] = acflag
            d["lock"] = lock & 0xFF
            swtime = ((self.ticks - swtick) & U32) // hz if hz else 0
            self.threads(data, d, extra, td, state, flag, nice, traceflag, swtime, kiflag,
                         inc, p, limit, out)
            p = nxt

    def threads(self, pdata: bytes, d: dict[str, Any], extra: dict[str, Any], td: int,
                state: int, flag: int, nice: int, traceflag: int, swtime: int, kiflag: int,
                inc: bool, p: int, limit: int, out: list[KinfoProc]) -> None:
        """The thread loop of ``kvm_proclist`` for one process (``d``: the record so far)."""
        c = self.c
        zombie = state == PRS_ZOMBIE
        first = True
        seen: set[int] = set()
        psig = c.proc_sig(pdata)
        name_lo, name_hi = c.td_name
        thread_fields = c.thread
        cpu_u8 = c.cpu_u8
        tdbuf = _TDNAME_ZERO  # the record is zeroed for each process
        tdmax = 0
        strings = self.strings
        tspots = self.thread_spots.buckets
        tsz = self.thread_spots.size
        read2 = self.kd.read2
        tsize = c.size["thread"]
        direct = "thread" not in c.too_large
        while len(out) < limit and td != 0 and (first or inc):
            first = False
            if td in seen or len(seen) >= MAX_PROC_WALK:
                raise fail(self.kd, fmt(E.THREAD_CYCLE, p, MAX_PROC_WALK))
            seen.add(td)
            if not zombie:  # _Disjoint.add, inlined: no two threads may overlap
                b = td // tsz
                if b in tspots or (b - 1 in tspots and td - tspots[b - 1] < tsz) \
                        or (b + 1 in tspots and tspots[b + 1] - td < tsz):
                    raise fail(self.kd, fmt(E.THREAD_OVERLAP, p, td))
                tspots[b] = td
            if zombie:
                td = 0
                d["wmesg"] = bytes(WMESGLEN)
                d["kiflag"] = kiflag
                d["siglist"] = psig
                d["sigmask"] = _ZERO_SIG
                d["stat"] = SZOMB
                d["tid"] = 0
            else:
                tdata = b""
                if direct:
                    try:
                        tdata = read2(td, tsize)
                    except KvmError:
                        pass
                if len(tdata) < tsize or not direct:
                    tdata = self.data("thread", td, "thread")  # the failure, as KREAD
                (tnext, wmesg, blocked, lockname, tstate, inhib, prio, base, lastcpu, oncpu,
                 wchan, tid, t0, t1, t2, t3, m0, m1, m2, m3) = thread_fields(tdata)
                if cpu_u8:
                    lastcpu = NOCPU if lastcpu == _NOCPU_U8 else lastcpu
                    oncpu = NOCPU if oncpu == _NOCPU_U8 else oncpu
                if inc:
                    td = tnext
                if wmesg:
                    raw = strings.get(wmesg)  # self.raw8, inlined for the cached case
                    if raw is None or len(raw) != WMESGLEN:
                        raw = self.raw8(wmesg, WMESGLEN)
                    d["wmesg"] = raw if len(raw) == WMESGLEN else raw + d["wmesg"][len(raw):]
                else:
                    d["wmesg"] = bytes(WMESGLEN)
                tkiflag = kiflag
                if blocked:
                    tkiflag |= KI_LOCKBLOCK
                    if lockname:
                        raw = self.raw8(lockname, LOCKNAMELEN)
                        d["lockname"] = raw + d["lockname"][len(raw):]
                    else:
                        d["lockname"] = bytes(LOCKNAMELEN)
                if state != PRS_NORMAL:
                    d["stat"] = SIDL
                elif tstate == TDS_RUNQ or tstate == TDS_CAN_RUN or tstate == TDS_RUNNING:
                    d["stat"] = SRUN
                elif tstate == TDS_INHIBITED:
                    if flag & P_SHOULDSTOP:
                        d["stat"] = SSTOP
                    elif inhib & TDI_SLEEPING:
                        d["stat"] = SSLEEP
                    elif inhib & TDI_LOCK:
                        d["stat"] = SLOCK
                    else:
                        d["stat"] = SWAIT
                p0, p1, p2, p3 = psig
                # ki_tdname: strlcpy over the previous thread's array (_tdname_update);
                # tdmax is where that array's last non-zero byte ends
                name = tdata[name_lo:name_hi]
                rextra = extra.copy()
                if name[:1] == b"\0":
                    tdbuf, tdmax, tdname = _TDNAME_ZERO, 0, b""
                else:
                    nul = name.find(b"\0")
                    tdname = (name if nul < 0 else name[:nul])[:_TDNAME_SIZE - 1]
                    n = len(tdname)
                    if tdmax > n + 1:
                        tdbuf = tdname + b"\0" + tdbuf[n + 1:]
                        _tdname_extra(rextra, tdbuf, tdname)
                    else:
                        tdbuf, tdmax = tdname + bytes(_TDNAME_SIZE - n), n
                # the fields every thread record sets (the carried ones are in d; a copy
                # and stores is about twice as fast as a dict display merging d)
                r = d.copy()
                r["kiflag"] = tkiflag
                r["siglist"] = (p0 | t0, p1 | t1, p2 | t2, p3 | t3)
                r["sigmask"] = (m0, m1, m2, m3)
                r["swtime"] = swtime
                r["flag"] = flag
                r["nice"] = nice
                r["traceflag"] = traceflag
                r["pri_level"] = prio
                r["pri_native"] = base
                r["lastcpu"] = lastcpu
                r["oncpu"] = oncpu
                r["wchan"] = wchan
                r["tdname"] = tdname
                r["lastcpu_old"] = (lastcpu if 0 <= lastcpu <= MAXCPU_OLD else NOCPU_OLD
                                    if lastcpu == NOCPU else _cpu_old(lastcpu))
                r["oncpu_old"] = (oncpu if 0 <= oncpu <= MAXCPU_OLD else NOCPU_OLD
                                  if oncpu == NOCPU else _cpu_old(oncpu))
                r["tid"] = tid
                r["extra"] = rextra
                rec = _NEW(KinfoProc)
                rec.__dict__ = r
                out.append(rec)
                continue
            rec = _NEW(KinfoProc)
            rd = d.copy()
            rd["extra"] = extra.copy()
            rec.__dict__ = rd
            out.append(rec)


@honours_strict
def getprocs(kd: Kvm, op: int, arg: int = 0, *, strict: bool = False,
             legacy: bool = False) -> list[KinfoProc]:
    """``kvm_getprocs`` (dump path): the processes (or threads) ``op``/``arg`` select.

    ``op`` is a ``KERN_PROC_*`` code, optionally OR-ed with ``KERN_PROC_INC_THREAD``
    (one record per thread; ``KERN_PROC_ALL`` always is).  An empty list where libkvm
    returns NULL without a message (nothing matched).  Raises
    :class:`~pykvm.errors.KvmError` with libkvm's texts (``%s: no such symbol``,
    ``can't read nprocs``, ``cannot read allproc``, ``can't read proc at %p``, ...,
    strict: ``cannot read procs from non-native core``) and pykvm's cycle text.  A
    failure while walking ``zombproc`` keeps the ``allproc`` records, as libkvm does.

    ``legacy=True`` (pykvm extension): the records the libkvm of the dump's own release
    would have built (first thread only and the old ``cputick2usec`` on FreeBSD <= 12,
    ``ki_tracep``, verbatim ``ki_cr_flags``, no reaper fields before 15.1...; the rules
    and their sources are in :mod:`pykvm.kernel.procs_legacy`); pack them with
    ``records_bytes(kd, records, legacy=True)``.
    """
    check_native(kd, strict, E.PROCS_NON_NATIVE)
    release = procs_legacy.detect(kd) if legacy else None
    if release is not None:
        op = release.proclist_op(op)
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
    psize = ptrsize(kd)
    if nprocs < 0:
        # _kvm_malloc(nprocs * sizeof(struct kinfo_proc)): a size_t product that no
        # allocator grants (the record size is the dump's KINFO_PROC_SIZE)
        want = (nprocs * abi_for(kd).kinfo_proc_size) % (1 << (8 * psize))
        raise fail(kd, E.cformat(E.KVM_MALLOC_FAILED, want, E.strerror_name("ENOMEM")))
    codecs = _codecs(kd)
    walk: _FastWalk | _ViewWalk
    if codecs is not None:
        walk = _FastWalk(kd, codecs, vals[0], vals[1], vals[2])
    else:
        walk = _ViewWalk(kd, vals[0], vals[1], vals[2])
    # kernel-data.md 1.10: the libkvm of a kernel that still has pg_jobc (FreeBSD <= 13)
    # copied it; current libkvm stores -1 (strict)
    walk.copy_jobc = not strict or legacy
    out: list[KinfoProc] = []
    first = read_int(kd, v["_allproc"], psize)
    if first is None:
        raise fail(kd, E.cformat(E.CANT_READ_LIST, "allproc"))
    # The walk allocates tens of thousands of acyclic records; the cyclic collector's
    # full passes over them cost about a fifth of the time, so it pauses meanwhile.
    collecting = gc.isenabled()
    gc.disable()
    try:
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
    except MemoryError:
        # the host ran out where libkvm's calloc of the record array would have failed
        out.clear()
        want = (nprocs * abi_for(kd).kinfo_proc_size) % (1 << (8 * psize))
        raise fail(kd, E.cformat(E.KVM_MALLOC_FAILED, want,
                                 E.strerror_name("ENOMEM"))) from None
    finally:
        if collecting:
            gc.enable()
    if release is not None:
        procs_legacy.transform(kd, out, release, vals[2])
    return out


def getargv(kd: Kvm, kp: KinfoProc, nchr: int = 0, *, pargs: bool = False) -> list[bytes]:
    """``kvm_getargv``: on dumps libkvm always fails with ``cannot read user space from
    dead kernel``.  ``pargs=True`` (a pykvm extension, Appendix B row 7) returns the
    kernel's cached arguments (``struct pargs`` at ``kp.args``), at most ``nchr`` bytes
    when ``nchr`` > 0."""
    if not pargs or kp.args == 0:
        raise fail(kd, E.DEAD_USER_SPACE)
    pa = kd.types.view("pargs", kp.args, kd)
    # kvm_argv's bound: nchr, at most ARG_MAX of the target (the dump's ar_length is not
    # trusted beyond it)
    arg_max = ARG_MAX_LP64 if ptrsize(kd) == 8 else ARG_MAX_ILP32
    limit = arg_max if nchr <= 0 or nchr > arg_max else nchr
    length = min(int(pa.ar_length), limit)
    data = kd.read2(pa.member_address("ar_args"), length)
    parts = data.split(b"\0")
    if parts and parts[-1] == b"":
        parts.pop()
    return parts


def getenvv(kd: Kvm, kp: KinfoProc, nchr: int = 0) -> list[bytes]:
    """``kvm_getenvv``: on dumps always ``cannot read user space from dead kernel``."""
    del kp, nchr
    raise fail(kd, E.DEAD_USER_SPACE)
