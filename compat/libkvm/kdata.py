"""libkvm's kernel-data calls with their C shapes, over pykvm's engine in strict mode.

Each function mirrors the libkvm function of the same name on the dump path (what
libkvm does for a crash dump; pykvm has no live path off FreeBSD): it calls the engine
(:mod:`pykvm.kernel`) with ``strict=True`` -- FreeBSD's refusals of non-native dumps,
``unable to find dmmax`` on kernels without ``dmmax``, libkvm's ``kvm_read_zpcpu``
stride -- and turns the engine's exceptions back into libkvm's returns: -1, NULL or
``(void *)-1`` with the text in the descriptor (``kvm_geterr``).  Results go where C puts
them: the caller's ``double[]``, ``long[5]``, ``struct kvm_swap[]`` and ``int *cnt``;
``kvm_getpcpu`` returns ``malloc``'ed memory the caller frees; ``kvm_getprocs`` returns
an array of ``struct kinfo_proc`` the descriptor owns.

Mirrors lib/libkvm/kvm_proc.c (``kvm_getprocs``, ``kvm_getargv``, ``kvm_getenvv``),
kvm_getloadavg.c, kvm_getswapinfo.c, kvm_cptime.c and kvm_pcpu.c.
"""

from __future__ import annotations

import ctypes
import re
import struct
import sys
from typing import Any

from pykvm import KvmError
from pykvm.constants import CPUSTATES
from pykvm.kernel import cptime, loadavg, pcpu, procs, swap
from pykvm.kvm import U64, ULONG

from . import _cargs
from . import calls as _calls

__all__ = [
    "PCPU_ERROR",
    "kvm_counter_u64_fetch",
    "kvm_dpcpu_setcpu",
    "kvm_getargv",
    "kvm_getcptime",
    "kvm_getenvv",
    "kvm_getloadavg",
    "kvm_getmaxcpu",
    "kvm_getncpus",
    "kvm_getpcpu",
    "kvm_getprocs",
    "kvm_getswapinfo",
    "kvm_read_zpcpu",
]

#: ``(void *)-1``, ``kvm_getpcpu``'s error return, as an unsigned host pointer value
PCPU_ERROR: int = ctypes.c_void_p(-1).value or 0


def _c_int(value: Any, what: str) -> int:
    """An ``int`` parameter: the argument converted as C converts it (32-bit, signed)."""
    return ctypes.c_int(_cargs.c_int(value, what)).value


# ------------------------------------------------------------------ kvm_getloadavg
def kvm_getloadavg(kd: Any, loadavg_: Any, nelem: Any) -> int:
    """``kvm_getloadavg``: store up to 3 load averages in ``double loadavg[]``.

    Returns the number stored, -1 (``kvm_geterr`` says why), or a negative ``nelem``
    unchanged (nothing stored), as kvm_getloadavg.c does.
    """
    k = _calls._kvm(kd, "kvm_getloadavg")
    n = _c_int(nelem, "nelem")
    try:
        values = loadavg.getloadavg(k, n, strict=True)
    except KvmError:
        return -1
    if n < 0:
        return n
    if values:
        _cargs.store(loadavg_, struct.pack(f"={len(values)}d", *values), "loadavg")
    return len(values)


# ------------------------------------------------------------------ kvm_getcptime
def kvm_getcptime(kd: Any, cp_time: Any) -> int:
    """``kvm_getcptime``: the five ``long`` CPU-state counters into ``long cp_time[5]``.

    Returns 0, or -1 (``kvm_geterr`` says why).  ``kd`` NULL clears libkvm's symbol
    cache and returns 0 (pykvm's caches are per descriptor: nothing to clear).
    """
    if _calls._lookup(kd, "kvm_getcptime") is None:
        return 0
    k = _calls._kvm(kd, "kvm_getcptime")
    try:
        values = cptime.getcptime(k, strict=True)
    except KvmError as exc:
        if isinstance(exc.partial, list):  # zeroed, then the CPUs summed before the failure
            _store_longs(cp_time, exc.partial)
        return -1
    _store_longs(cp_time, values)
    return 0


def _store_longs(cp_time: Any, values: list[int]) -> None:
    longs = (ctypes.c_long * CPUSTATES)(*(ctypes.c_long(v).value for v in values))
    _cargs.store(cp_time, bytes(longs), "cp_time")


# ---------------------------------------------------------------- kvm_getswapinfo
def kvm_getswapinfo(kd: Any, swap_ary: Any, swap_max: Any, flags: Any) -> int:
    """``kvm_getswapinfo``: fill ``struct kvm_swap swap_ary[swap_max]``.

    One record per device (at most ``swap_max - 1``), then the total; returns the index
    of the total (``min(devices, swap_max - 1)``), -1 on failure (``kvm_geterr``), and
    ``swap_max - 1`` without storing anything when ``swap_max`` <= 0.  ``kd`` NULL
    clears libkvm's cache and returns 0.
    """
    if _calls._lookup(kd, "kvm_getswapinfo") is None:
        return 0
    k = _calls._kvm(kd, "kvm_getswapinfo")
    smax = _c_int(swap_max, "swap_max")
    try:
        rows = swap.getswapinfo(k, smax, _c_int(flags, "flags"), strict=True)
    except KvmError as exc:
        if isinstance(exc.partial, list) and exc.partial:  # rows stored before the failure
            _cargs.store(swap_ary, b"".join(r.pack(sys.byteorder) for r in exc.partial),
                         "swap_ary")
        return -1
    if not rows:
        i = ctypes.c_int(smax - 1).value
        if i >= 0:  # INT_MIN - 1: signed overflow in C
            raise ValueError("kvm_getswapinfo: swap_max - 1 overflows an int")
        return i
    _cargs.store(swap_ary, b"".join(r.pack(sys.byteorder) for r in rows), "swap_ary")
    return len(rows) - 1


# ------------------------------------------------------------------------ per-CPU
def kvm_getmaxcpu(kd: Any) -> int:
    """``kvm_getmaxcpu``: ``mp_maxcpus``, or -1; 0 for NULL (libkvm's clear-cache call)."""
    if _calls._lookup(kd, "kvm_getmaxcpu") is None:
        return 0
    try:
        return pcpu.getmaxcpu(_calls._kvm(kd, "kvm_getmaxcpu"), strict=True)
    except KvmError:
        return -1


def kvm_getncpus(kd: Any) -> int:
    """``kvm_getncpus``: ``mp_ncpus`` (the CPUs present), or -1."""
    try:
        return pcpu.getncpus(_calls._kvm(kd, "kvm_getncpus"), strict=True)
    except KvmError:
        return -1


_libc: Any = None


def _malloc_copy(data: bytes, desc: Any) -> int:
    """``malloc(len(data))`` filled with ``data``: memory the caller may ``free(3)``.

    Where the C library cannot be reached (no ``malloc`` in the process), a ctypes
    buffer owned by the descriptor stands in (freeing it would be a caller bug there).
    """
    global _libc
    if _libc is None:
        try:
            lib = ctypes.CDLL(None)
            fn = lib.malloc
            fn.restype = ctypes.c_void_p
            fn.argtypes = [ctypes.c_size_t]
            _libc = fn
        except (OSError, AttributeError, TypeError):
            _libc = False
    if _libc:
        addr = int(_libc(max(len(data), 1)) or 0)
        if addr:
            ctypes.memmove(addr, data, len(data))
            return addr
        raise MemoryError("malloc failed")
    buf = ctypes.create_string_buffer(data, max(len(data), 1))
    desc.keep.append(buf)
    return ctypes.addressof(buf)


def kvm_getpcpu(kd: Any, cpu: Any) -> int | None:
    """``kvm_getpcpu``: a ``malloc``'ed copy of CPU ``cpu``'s ``struct pcpu`` (free it).

    Returns its address, None (NULL: no such CPU, or ``kd`` NULL, libkvm's clear-cache
    call), or :data:`PCPU_ERROR` (``(void *)-1``: ``kvm_geterr`` says why).
    """
    desc = _calls._lookup(kd, "kvm_getpcpu")
    if desc is None:
        return None
    k = _calls._kvm(kd, "kvm_getpcpu")
    try:
        data = pcpu.getpcpu(k, _c_int(cpu, "cpu"), strict=True)
    except KvmError:
        return PCPU_ERROR
    if data is None:
        return None
    try:
        return _malloc_copy(data, desc)
    except MemoryError:
        k.err(k.program, "out of memory")
        return PCPU_ERROR


def kvm_dpcpu_setcpu(kd: Any, cpu: Any) -> int:
    """``kvm_dpcpu_setcpu``: the CPU whose copies later DPCPU symbol look-ups give; 0 or
    -1 (``kvm_dpcpu_setcpu: init failed``, ``_kvm_dpcpu_setcpu: CPU %u too big`` ...)."""
    k = _calls._kvm(kd, "kvm_dpcpu_setcpu")
    try:
        return pcpu.dpcpu_setcpu(k, _cargs.c_int(cpu, "cpu") & 0xFFFFFFFF)
    except KvmError:
        return -1


def kvm_read_zpcpu(kd: Any, base: Any, buf: Any, size: Any, cpu: Any) -> int:
    """``kvm_read_zpcpu``: ``kvm_read`` of CPU ``cpu``'s slot of a UMA per-CPU allocation.

    libkvm's address: ``base`` (+ ``__pcpu`` on amd64) + ``sizeof(struct pcpu) * cpu``.
    Returns what ``kvm_read`` returns there; -1 (no message) on a non-native dump; 0 when
    the per-CPU initialisation fails (its text in ``kvm_geterr``).
    """
    k = _calls._kvm(kd, "kvm_read_zpcpu")
    if not k.native():
        return -1
    try:  # initialises only while libkvm's mp_ncpus is 0
        addr = pcpu.zpcpu_address(k, _cargs.c_int(base, "base") & ULONG,
                                  _c_int(cpu, "cpu"), strict=True)
    except KvmError:
        return 0
    assert addr is not None  # strict mode always computes an address
    return _calls._read("kvm_read", kd, addr, buf, size, ULONG)


def kvm_counter_u64_fetch(kd: Any, base: Any) -> int:
    """``kvm_counter_u64_fetch``: the sum of a ``counter_u64_t``'s per-CPU slots over
    CPUs ``0 .. mp_ncpus-1``; 0 when any slot cannot be read or initialisation fails."""
    k = _calls._kvm(kd, "kvm_counter_u64_fetch")
    return pcpu.counter_u64_fetch(k, _cargs.c_int(base, "base") & ULONG, strict=True) & U64


# ---------------------------------------------------------------------- processes
#: texts of kvm_getprocs' early failures, which leave ``*cnt`` untouched; a failure of
#: the list walk (kvm_deadprocs) sets ``*cnt`` to 0 (kvm_proc.c: kvm_getprocs)
_EARLY = re.compile(r"cannot read procs from non-native core|.*: no such symbol"
                    r"|can't read (?:nprocs|ticks|hz|cpu_tick_frequency)"
                    r"|can't allocate \d+ bytes: .*", re.S)


def _store_cnt(cnt: Any, value: int) -> None:
    _cargs.store(cnt, ctypes.c_int(value).value.to_bytes(4, sys.byteorder, signed=True),
                 "cnt")


def kvm_getprocs(kd: Any, op: Any, arg: Any, cnt: Any) -> Any:
    """``kvm_getprocs``: the ``struct kinfo_proc`` records ``op``/``arg`` select.

    Returns a ctypes array of :data:`~libkvm.KinfoProc` (the descriptor keeps it; C's
    ``kd->procbase``) and stores its length in ``*cnt``; None (NULL) on failure with the
    text in ``kvm_geterr`` -- ``*cnt`` untouched for the early failures, 0 after a failed
    list walk -- and None with ``*cnt`` = 0 and no text when nothing matched.  The bytes
    of each record are pykvm's packing of the dump path's fields
    (:mod:`pykvm.abi.kinfo_proc`), which in strict mode is the host's ABI.
    """
    from pykvm.abi import kinfo_proc as _kp

    from .abi import KinfoProc

    desc = _calls._open_desc(kd, "kvm_getprocs")
    k = desc.kvm
    desc.procbase = None  # libkvm frees the previous array first
    try:
        records = procs.getprocs(k, _c_int(op, "op"), _c_int(arg, "arg"), strict=True)
    except KvmError as exc:
        if not _EARLY.fullmatch(str(exc.message)):
            _store_cnt(cnt, 0)
        return None
    if not records:
        _store_cnt(cnt, 0)
        return None
    data = _kp.records_bytes(k, records)
    size = ctypes.sizeof(KinfoProc)
    if len(data) != size * len(records):
        raise ValueError(f"kvm_getprocs: {len(data)} bytes for {len(records)} records of "
                         f"{size} bytes (the host is not the dump's ABI)")
    array = (KinfoProc * len(records)).from_buffer_copy(data)
    desc.procbase = array
    desc.keep.append(array)
    _store_cnt(cnt, len(records))
    return array


def _argv(kd: Any, fn: str, nchr: Any) -> None:
    """``kvm_argv`` on a dump: ``cannot read user space from dead kernel``, NULL."""
    k = _calls._kvm(kd, fn)
    _c_int(nchr, "nchr")
    try:
        procs.getargv(k, procs.KinfoProc(), 0)
    except KvmError:
        return None
    return None  # pragma: no cover - the engine always fails without pargs=True


def kvm_getargv(kd: Any, kp: Any, nchr: Any) -> None:
    """``kvm_getargv``: NULL on dumps (``cannot read user space from dead kernel``)."""
    del kp
    return _argv(kd, "kvm_getargv", nchr)


def kvm_getenvv(kd: Any, kp: Any, nchr: Any) -> None:
    """``kvm_getenvv``: NULL on dumps (``cannot read user space from dead kernel``)."""
    del kp
    return _argv(kd, "kvm_getenvv", nchr)
