"""Per-CPU data on dumps (lib/libkvm/kvm_pcpu.c; kernel-data.md 6).

``getmaxcpu``, ``getncpus``, ``getpcpu``, ``dpcpu_setcpu``, ``read_zpcpu`` and
``counter_u64_fetch``.  The per-CPU cache lives with the handle (libkvm's is
process-wide); ``getmaxcpu(None)`` and ``getpcpu(None, cpu)`` clear nothing and return
0 / None as FreeBSD's clear-cache calls do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .. import errors as E
from ..constants import MAX_PCPU
from ..errors import KvmError
from ._common import (
    arch,
    byteorder,
    cache,
    current_error,
    fail,
    honours_strict,
    ptrsize,
    read_bytes,
    read_int,
)

if TYPE_CHECKING:
    from ..image.layout import StructView
    from ..kvm import Kvm

_KEY = "pcpu"
_NCPUS = "pcpu.mp_ncpus"
_PCPU = "pcpu.__pcpu"
U64 = (1 << 64) - 1


@dataclass
class PcpuState:
    """What ``_kvm_pcpu_init`` caches: ``mp_maxcpus``, ``mp_ncpus``, ``__pcpu``, the
    ``cpuid_to_pcpu`` pointers."""

    maxcpu: int
    ncpus: int
    pcpu_base: int
    table: list[int]


def _lookup(kd: Kvm, names: list[str], strict: bool) -> dict[str, int]:
    try:
        res = kd.nlist(names) if strict else kd.nlist2(names)
    except KvmError as exc:  # kvm_nlist of non-native vmcore
        raise KvmError(str(exc), exc.chain) from None
    if res.missing < 0:
        raise current_error(kd, E.NLIST_FAILED)
    return {e.name: e.value for e in res.entries}


@honours_strict
def pcpu_init(kd: Kvm, *, strict: bool = False) -> PcpuState:
    """``_kvm_pcpu_init``: read ``mp_maxcpus``, ``mp_ncpus``, (amd64) ``__pcpu`` and the
    ``cpuid_to_pcpu`` array once per handle; raise with libkvm's text on failure."""
    c = cache(kd)
    key = f"{_KEY}.{strict}"
    state: PcpuState | None = c.get(key)
    if state is not None:
        return state
    amd64 = arch(kd) == "amd64"
    names = ["_cpuid_to_pcpu", "_mp_maxcpus", "_mp_ncpus"] + (["___pcpu"] if amd64 else [])
    v = _lookup(kd, names, strict)
    if v["_cpuid_to_pcpu"] == 0:
        raise fail(kd, E.cformat(E.PCPU_NOT_FOUND, "cpuid_to_pcpu"))
    if v["_mp_maxcpus"] == 0:
        raise fail(kd, E.cformat(E.PCPU_NOT_FOUND, "mp_maxcpus"))
    maxcpu = read_int(kd, v["_mp_maxcpus"], 4, signed=True)
    if maxcpu is None:
        raise fail(kd, E.cformat(E.PCPU_CANT_READ, "mp_maxcpus"))
    if v["_mp_ncpus"] == 0:
        raise fail(kd, E.cformat(E.PCPU_NOT_FOUND, "mp_ncpus"))
    ncpus = read_int(kd, v["_mp_ncpus"], 4, signed=True)
    if ncpus is None:
        raise fail(kd, E.cformat(E.PCPU_CANT_READ, "mp_ncpus"))
    c[_NCPUS] = ncpus  # libkvm reads it into its mp_ncpus global, kept if init fails later
    psize = ptrsize(kd)
    base = 0
    if amd64:
        if v["___pcpu"] == 0:
            raise fail(kd, E.cformat(E.PCPU_NOT_FOUND, "__pcpu"))
        vtype = kd.types.variable("__pcpu") if not strict else None
        if vtype is not None and vtype.kind == "array":
            base = v["___pcpu"]  # old amd64 kernels: struct pcpu __pcpu[MAXCPU]
        else:
            got = read_int(kd, v["___pcpu"], psize)
            if got is None:
                raise fail(kd, E.cformat(E.PCPU_CANT_READ, "__pcpu"))
            base = got
        c[f"{_PCPU}.{strict}"] = base  # libkvm's __pcpu global, kept if init fails later
    if maxcpu < 0 or maxcpu > MAX_PCPU:  # malloc(maxcpu * sizeof(void *)) fails
        raise fail(kd, E.PCPU_OOM)
    raw = read_bytes(kd, v["_cpuid_to_pcpu"], maxcpu * psize) if maxcpu else b""
    if raw is None:
        raise fail(kd, E.PCPU_READ_ARRAY)
    order = byteorder(kd)
    table = [int.from_bytes(raw[i:i + psize], order) for i in range(0, len(raw), psize)]
    state = PcpuState(maxcpu, ncpus, base, table)
    c[key] = state
    return state


@honours_strict
def getmaxcpu(kd: Kvm | None, *, strict: bool = False) -> int:
    """``kvm_getmaxcpu``: ``mp_maxcpus`` (the most CPUs the kernel supports); 0 for None."""
    if kd is None:
        return 0
    return pcpu_init(kd, strict=strict).maxcpu


@honours_strict
def getncpus(kd: Kvm, *, strict: bool = False) -> int:
    """``kvm_getncpus``: ``mp_ncpus`` (the CPUs present).  As in libkvm, a value once
    read is returned without a new initialisation, even when that initialisation failed
    after reading it (``mp_ncpus`` is set before ``cpuid_to_pcpu`` is allocated)."""
    known = cache(kd).get(_NCPUS)
    if known:
        return int(known)
    return pcpu_init(kd, strict=strict).ncpus


@honours_strict
def pcpu_view(kd: Kvm, cpu: int, *, strict: bool = False) -> StructView | None:
    """``kvm_getpcpu`` as a typed view of ``struct pcpu`` (None: no such CPU)."""
    if kd is None:
        return None
    state = pcpu_init(kd, strict=strict)
    if cpu < 0 or cpu >= state.maxcpu or cpu >= len(state.table) or state.table[cpu] == 0:
        return None
    layout = kd.types.struct("pcpu")
    try:
        return kd.types.view(layout, state.table[cpu], kd)
    except KvmError:
        raise fail(kd, E.PCPU_READ_DATA) from None


@honours_strict
def getpcpu(kd: Kvm | None, cpu: int, *, strict: bool = False) -> bytes | None:
    """``kvm_getpcpu``: the bytes of CPU ``cpu``'s ``struct pcpu`` (its size from the type
    information), None where libkvm returns NULL (no such CPU, or ``kd`` None); raises
    where it returns ``(void *)-1`` (``unable to read per-CPU data`` or an init text)."""
    if kd is None:
        return None
    view = pcpu_view(kd, cpu, strict=strict)
    return None if view is None else view.data


@honours_strict
def dpcpu_setcpu(kd: Kvm, cpu: int, *, strict: bool = False) -> int:
    """``kvm_dpcpu_setcpu``: choose the CPU whose copy later ``pcpu_entry_`` lookups give.

    Returns 0; raises with ``kvm_dpcpu_setcpu: init failed``,
    ``_kvm_dpcpu_setcpu: CPU %u too big`` or ``_kvm_dpcpu_setcpu: CPU %u not found``.
    Strict mode (``strict=True`` or a descriptor opened with ``strict=True``) refuses
    non-native dumps as libkvm's DPCPU initialisation does (``init failed``); the
    default works on every target (Appendix B row 1).
    """
    ucpu = cpu & 0xFFFFFFFF
    if (strict or kd.strict) and not kd.native():
        raise fail(kd, E.DPCPU_INIT_FAILED)
    if not kd._dpcpu_ready and not kd._dpcpu_init():
        raise fail(kd, E.DPCPU_INIT_FAILED)
    if not kd._dpcpu_ready:
        raise fail(kd, E.DPCPU_NOT_INIT)
    if ucpu >= len(kd._dpcpu_off):
        raise fail(kd, E.cformat(E.DPCPU_TOO_BIG, ucpu))
    off = kd._dpcpu_off[ucpu]
    if off == 0:
        raise fail(kd, E.cformat(E.DPCPU_NOT_FOUND, ucpu))
    kd._dpcpu_curcpu = ucpu
    kd._dpcpu_curoff = off
    return 0


@honours_strict
def zpcpu_address(kd: Kvm, base: int, cpu: int, *, strict: bool = False) -> int | None:
    """Where CPU ``cpu``'s slot of the UMA per-CPU allocation ``base`` lies.

    Default (Appendix B row 5): ``base + pc_zpcpu_offset`` of that CPU (the kernel's
    rule), ``base + PAGE_SIZE * cpu`` when ``struct pcpu`` has no ``pc_zpcpu_offset``;
    None for a CPU that does not exist.  Strict: libkvm's
    ``base [+ __pcpu on amd64] + sizeof(struct pcpu) * cpu``.
    """
    if strict:
        # libkvm initialises only while its mp_ncpus is 0, and then adds whatever its
        # __pcpu global holds (0 when an earlier initialisation stopped before reading it)
        if cache(kd).get(_NCPUS):
            pbase = int(cache(kd).get(f"{_PCPU}.True", 0))
        else:
            pbase = pcpu_init(kd, strict=True).pcpu_base
        addr = base + (pbase if arch(kd) == "amd64" else 0)
        return (addr + kd.types.sizeof("pcpu") * cpu) & U64
    pcpu_init(kd, strict=strict)
    layout = kd.types.struct("pcpu")
    if not layout.has("pc_zpcpu_offset"):
        return (base + kd.info().page_size * cpu) & U64
    view = pcpu_view(kd, cpu)
    if view is None:
        return None
    return (base + int(view.pc_zpcpu_offset)) & U64


@honours_strict
def read_zpcpu(kd: Kvm, base: int, size: int, cpu: int, *, strict: bool = False) -> bytes:
    """``kvm_read_zpcpu``: ``size`` bytes of CPU ``cpu``'s slot of ``base``.

    Returns the bytes read (shorter where libkvm returns a short count; ``b""`` where it
    returns 0: per-CPU initialisation failed, or the CPU does not exist).  Strict mode on
    a non-native dump raises :class:`~pykvm.errors.KvmError` (libkvm: -1, no message).
    """
    if strict and not kd.native():
        raise KvmError(kd.geterr())
    try:
        addr = zpcpu_address(kd, base, cpu, strict=strict)
    except KvmError:
        return b""
    if addr is None:
        return b""
    return kd.read2(addr, size)


@honours_strict
def counter_u64_fetch(kd: Kvm, base: int, *, strict: bool = False) -> int:
    """``kvm_counter_u64_fetch``: the sum over CPUs of a ``counter_u64_t``'s slots.

    Default: the CPUs that exist (``cpuid_to_pcpu[i] != NULL``); strict: ``0 ..
    mp_ncpus-1``.  0 when initialisation fails or any slot cannot be read (as libkvm).
    """
    if strict:  # libkvm: 0 .. mp_ncpus - 1, initialising only while mp_ncpus is 0
        ncpus = cache(kd).get(_NCPUS)
        if not ncpus:
            try:
                ncpus = pcpu_init(kd, strict=True).ncpus
            except KvmError:
                return 0
        cpus = list(range(max(int(ncpus), 0)))
    else:
        try:
            state = pcpu_init(kd, strict=strict)
        except KvmError:
            return 0
        cpus = [i for i, p in enumerate(state.table) if p != 0]
    order = byteorder(kd)
    total = 0
    for cpu in cpus:
        try:
            data = read_zpcpu(kd, base, 8, cpu, strict=strict)
        except KvmError:
            return 0
        if len(data) != 8:
            return 0
        total += int.from_bytes(data, order)
    return total & U64
