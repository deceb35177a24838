"""``kvm_getprocs`` as the libkvm of the dump's own release built its records (the
opt-in ``legacy=True`` of :func:`pykvm.kernel.procs.getprocs`; kernel-data.md 1.7, 1.10).

pykvm's default records are those of current libkvm (with ``pg_jobc`` copied where the
kernel still has it).  The libkvm shipped with an older release did some things
differently; :func:`detect` tells from the kernel's type information which of them apply
and :func:`transform` rewrites the records accordingly.  What each rule rests on
(lib/libkvm/kvm_proc.c of freebsd/freebsd-src):

* FreeBSD 10-era ``kvm_proclist`` (commit 004a4859, ``ki_xstat = proc.p_xstat``) and
  12-era ``kvm_proclist`` (the version with ``ki_tdev_freebsd11`` and ``KW_EXITCODE``)
  read only ``TAILQ_FIRST(&proc.p_threads)`` into ``mtd`` and emit one record per
  process whatever ``KERN_PROC_INC_THREAD`` says, never set ``ki_numthreads`` or
  ``ki_tid``, allocate ``nprocs`` records (no ``* 10``), use the three-range
  ``cputick2usec``, compute ``ki_kiflag`` from the process's own session right after
  reading it (before the tty's session may replace ``sess``), and for a zombie OR the
  stale ``mtd.td_siglist`` into ``ki_siglist`` and copy the stale ``mtd.td_sigmask``.
  A snapshot of current libkvm (the one with ``ki_pd = proc.p_pd`` and
  ``ki_jobc = -1``) has the per-thread loop and the exact ``cputick2usec``.  The stored
  sources do not show which side FreeBSD 13 is on; pykvm puts the switch where the
  kernel gained ``p_pd`` (FreeBSD 13), i.e. kernels whose ``struct proc`` has no
  ``p_pd`` get the first-thread rules.
* ``ki_tracep = proc.p_tracevp`` in every version before the kernel replaced
  ``p_tracevp`` (current libkvm stores NULL): copied when the member exists.
* ``ki_cr_flags = ucred.cr_flags`` verbatim (plus ``KI_CRF_GRP_OVERFLOW``) in every
  stored version up to the snapshot without ``ki_reaper``; the ``KI_CRF_CAPABILITY_MODE``
  mapping pykvm applies belongs to the newest libkvm.
* ``ki_reaper``/``ki_reapsubtree`` are set only by the libkvm of kernels whose own
  ``struct kinfo_proc`` (described in CTF/DWARF because ``fill_kinfo_proc`` uses it) has
  ``ki_reaper``; otherwise those bytes were spares and stay zero (also when the kernel
  does not describe ``struct kinfo_proc`` at all).
* A kernel whose ``struct kinfo_proc`` has ``u_char ki_oncpu``/``ki_lastcpu`` (no
  ``ki_oncpu_old``, FreeBSD 10) got ``kp->ki_oncpu = mtd.td_oncpu`` truncated to 8 bits
  at the offsets now named ``ki_oncpu_old``/``ki_lastcpu_old``; the ``int`` fields did
  not exist (zero).
* FreeBSD <= 11 (32-bit ``dev_t``): the 64-bit ``ki_tdev`` did not exist; that is a
  matter of the packed bytes, see :func:`pykvm.abi.kinfo_proc.records_bytes`
  (``legacy=True``).

The stale ``mtd`` of a zombie is, in C, whatever the stack slot holds: the first thread of
the last non-zombie process read during the call (``kvm_deadprocs`` calls
``kvm_proclist`` twice from one frame), and nothing (zero here) before any was read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..constants import (
    KERN_PROC_ALL,
    KERN_PROC_INC_THREAD,
    KERN_PROC_PROC,
    KI_CRF_GRP_OVERFLOW,
    KI_CTTY,
    KI_LOCKBLOCK,
    KI_SLEADER,
    PRS_ZOMBIE,
    SZOMB,
)
from ..errors import KvmError

if TYPE_CHECKING:
    from ..kvm import Kvm

U32 = 0xFFFFFFFF
U64 = (1 << 64) - 1
_NO_SIG = (0, 0, 0, 0)


@dataclass(frozen=True)
class Release:
    """What the dump's own libkvm did differently from current libkvm (:func:`detect`)."""

    #: the kernel describes its ``struct kinfo_proc``
    kinfo_described: bool
    #: that ``struct kinfo_proc`` has ``ki_reaper`` (FreeBSD 15.1): reaper fields set
    reaper: bool
    #: ``dev_t`` is 32-bit (FreeBSD <= 11): no 64-bit ``ki_tdev``
    tdev32: bool
    #: ``u_char ki_oncpu``/``ki_lastcpu`` at the ``*_old`` offsets (FreeBSD 10)
    cpu_uchar: bool
    #: the 10/12-era ``kvm_proclist``: first thread only, old ``cputick2usec``
    first_thread: bool
    #: ``struct proc`` has ``p_tracevp``: ``ki_tracep`` copied
    tracevp: bool
    #: ``ki_cr_flags`` copied verbatim (every libkvm before the reaper one)
    cr_flags_raw: bool

    def proclist_op(self, op: int) -> int:
        """The op the current walk must run to give the old walk's records: without
        ``KERN_PROC_INC_THREAD`` for the first-thread libkvm (``KERN_PROC_ALL`` stays
        unfiltered, as ``KERN_PROC_PROC``)."""
        if not self.first_thread:
            return op
        op &= ~KERN_PROC_INC_THREAD
        return KERN_PROC_PROC if op == KERN_PROC_ALL else op


def dev_t_32(kd: Kvm) -> bool:
    """Whether the kernel's ``dev_t`` is 32-bit (FreeBSD <= 11): from its
    ``struct kinfo_proc``'s ``ki_tdev`` when described, else the ``dev_t`` typedef."""
    kinfo = kd.types.find_struct("kinfo_proc")
    if kinfo is not None and kinfo.has("ki_tdev"):
        return kinfo.member("ki_tdev").size == 4
    try:
        return kd.types.type("dev_t").size == 4
    except KvmError:
        return False


def detect(kd: Kvm) -> Release:
    """The :class:`Release` rules of ``kd``'s kernel, from its type information."""
    types = kd.types
    kinfo = types.find_struct("kinfo_proc")
    proc = types.struct("proc")
    cpu = kinfo.get("ki_oncpu") if kinfo is not None else None
    reaper = kinfo is not None and kinfo.has("ki_reaper")
    return Release(
        kinfo_described=kinfo is not None,
        reaper=reaper,
        tdev32=dev_t_32(kd),
        cpu_uchar=(kinfo is not None and not kinfo.has("ki_oncpu_old") and cpu is not None
                   and cpu.size == 1),
        first_thread=not proc.has("p_pd"),
        tracevp=proc.has("p_tracevp"),
        cr_flags_raw=not reaper,
    )


def cputick2usec_old(tick: int, freq: int) -> int:
    """``cputick2usec`` of the 10/12-era libkvm: three ranges, unsigned 64-bit."""
    tick &= U64
    freq &= U64
    if freq == 0:
        return 0
    if tick > 18446744073709551:  # floor(2^64 / 1000)
        div = freq // 1000000
        return tick // div if div else 0  # C would trap; pykvm stores 0
    if tick > 18446744073709:  # floor(2^64 / 1000000)
        div = freq // 1000
        return ((tick * 1000) & U64) // div if div else 0
    return ((tick * 1000000) & U64) // freq


def _sigset(v: Any) -> tuple[int, ...]:
    bits = tuple(int(x) for x in v["__bits"])
    return (bits + _NO_SIG)[:4]


def transform(kd: Kvm, records: list[Any], rel: Release, freq: int) -> list[Any]:
    """Rewrite the current walk's ``records`` (in place) into the old libkvm's."""
    types = kd.types
    last_tsig: tuple[int, ...] = _NO_SIG
    last_mask: tuple[int, ...] = _NO_SIG
    for r in records:
        if not rel.reaper:
            r.reaper = 0
            r.reapsubtree = 0
        if rel.cpu_uchar and r.stat != SZOMB:
            r.oncpu_old = r.oncpu & 0xFF
            r.lastcpu_old = r.lastcpu & 0xFF
            r.oncpu = 0
            r.lastcpu = 0
        if not (rel.tracevp or rel.cr_flags_raw or rel.first_thread):
            continue
        try:
            proc = types.view("proc", r.paddr, kd)
        except KvmError:
            continue
        if rel.tracevp:
            r.tracep = int(proc.p_tracevp)
        if rel.cr_flags_raw:
            try:
                cred = types.view("ucred", int(proc.p_ucred), kd)
                r.cr_flags = (int(cred.cr_flags) & U32) | (r.cr_flags & KI_CRF_GRP_OVERFLOW)
            except KvmError:
                pass
        if rel.first_thread:
            r.numthreads = 0
            r.tid = 0
            r.runtime = cputick2usec_old(int(proc["p_rux.rux_runtime"]), freq)
            r.extra.pop("tdname_raw", None)
            kiflag = r.kiflag & KI_LOCKBLOCK
            pgrp = int(proc.p_pgrp)
            if pgrp:
                try:
                    sess = types.view("session", int(types.view("pgrp", pgrp, kd).pg_session),
                                      kd)
                    if int(sess.s_ttyvp):
                        kiflag |= KI_CTTY
                    if int(sess.s_leader) == r.paddr:
                        kiflag |= KI_SLEADER
                except KvmError:
                    pass
            r.kiflag = kiflag
            if int(proc.p_state) == PRS_ZOMBIE:
                psig = _sigset(proc["p_sigqueue.sq_signals"])
                r.siglist = tuple(a | b for a, b in zip(psig, last_tsig, strict=True))
                r.sigmask = last_mask
            else:
                try:
                    td = types.view("thread", int(proc["p_threads.tqh_first"]), kd)
                    last_tsig = _sigset(td["td_sigqueue.sq_signals"])
                    last_mask = r.sigmask
                except KvmError:
                    pass
    return records
