"""C records of libkvm as ctypes ``Structure`` classes, byte-identical per FreeBSD ABI.

``structures(arch)`` gives ``struct nlist`` (a.out), ``struct kvm_nlist``,
``struct kvm_page``, ``struct kvm_swap`` and ``struct kinfo_proc`` (with its
sub-records ``struct timeval``, ``struct rusage``, ``struct priority`` and
``sigset_t``) for one target ABI: pointer size, ``long`` size, alignment of 64-bit
integers, size of ``time_t`` and byte order.  The module-level classes
(:data:`Nlist`, :data:`KvmNlist`, ...) are the host's, which is what a ctypes
program handing its own buffers to libkvm uses.

How the layout is made exact on any host: the offsets are computed here with the C
rules of the *target* ABI (api.md 1.3-1.6, kernel-data.md 4.1 and 10.2), and each
class is declared with ``_pack_ = 1`` and explicit ``_padN`` byte arrays where the
target compiler would pad, in a ``LittleEndianStructure`` or ``BigEndianStructure``.
Nothing depends on how the host's C compiler aligns ``long long``.  Pointer fields are
``c_void_p`` (names ``c_char_p``) when the target's pointers have the host's size and
byte order, so host records hold real pointers; otherwise they are unsigned integers of
the target's pointer width.

Mirrors: lib/libkvm/kvm.h, sys/sys/nlist_aout.h, sys/sys/user.h,
sys/<arch>/include/proc.h (``KINFO_PROC_SIZE``), sys/sys/_sigset.h,
sys/sys/_timeval.h, sys/sys/resource.h, sys/sys/rtprio.h.
"""

from __future__ import annotations

import ctypes
import platform
import sys
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any, Literal, NamedTuple

__all__ = [
    "ABIS",
    "Abi",
    "KINFO_PROC_SIZES",
    "Structures",
    "abi",
    "host_abi",
    "structures",
]

# sys/sys/user.h
WMESGLEN = 8
LOCKNAMELEN = 8
TDNAMLEN = 16
COMMLEN = 19
KI_EMULNAMELEN = 16
KI_NGROUPS = 16
LOGNAMELEN = 17
LOGINCLASSLEN = 17
MAXCOMLEN = 19
KI_NSPARE_INT = 2
KI_NSPARE_LONG = 12
KI_NSPARE_PTR = 4
#: ``ki_sparestrings`` of the FreeBSD 15.1 layout (46 before ki_reaper/ki_reapsubtree)
KI_NSPARE_STRINGS = 38
#: ``_SIG_WORDS`` of sys/sys/_sigset.h
SIG_WORDS = 4


@dataclass(frozen=True)
class Abi:
    """What the C layout of libkvm's records depends on, for one FreeBSD target."""

    name: str
    #: ``sizeof(void *)``; also ``size_t``, ``vm_size_t``
    pointer_size: int
    #: ``sizeof(long)``; also ``segsz_t``, ``suseconds_t``
    long_size: int
    #: alignment of ``int64_t``/``uint64_t`` (4 on i386, 8 elsewhere)
    int64_align: int
    #: ``sizeof(time_t)`` (4 only on i386)
    time_size: int
    big_endian: bool

    @property
    def byteorder(self) -> Literal["little", "big"]:
        """``"big"`` or ``"little"``, as ``int.from_bytes`` spells it."""
        return "big" if self.big_endian else "little"

    @property
    def kinfo_proc_size(self) -> int:
        """``KINFO_PROC_SIZE`` of the target (kernel-data.md 10.3)."""
        if self.pointer_size == 8:
            return 1088
        return 768 if self.time_size == 4 else 816

    def host_pointers(self) -> bool:
        """Whether a target pointer can be a host ``c_void_p`` (same size and byte order)."""
        return (self.pointer_size == ctypes.sizeof(ctypes.c_void_p)
                and self.byteorder == sys.byteorder)


def _lp64(name: str, big: bool = False) -> Abi:
    return Abi(name, 8, 8, 8, 8, big)


def _ilp32(name: str, big: bool = False, time_size: int = 8, int64_align: int = 8) -> Abi:
    return Abi(name, 4, 4, int64_align, time_size, big)


#: FreeBSD ABIs by pykvm's architecture name (kernel-data.md 10.2-10.3)
ABIS: dict[str, Abi] = {
    a.name: a
    for a in (
        _lp64("amd64"),
        _lp64("aarch64"),
        _lp64("riscv"),
        _lp64("powerpc64", big=True),
        _lp64("powerpc64le"),
        _lp64("mips64", big=True),
        _lp64("mips64el"),
        _lp64("sparc64", big=True),
        _ilp32("i386", time_size=4, int64_align=4),
        _ilp32("arm"),
        _ilp32("armeb", big=True),
        _ilp32("powerpc", big=True),
        _ilp32("powerpcspe", big=True),
        _ilp32("mips", big=True),
        _ilp32("mipsel"),
        _ilp32("mipsn32", big=True),
        _ilp32("mipsn32el"),
    )
}

_ALIASES = {
    "x86_64": "amd64",
    "x64": "amd64",
    "arm64": "aarch64",
    "riscv64": "riscv",
    "i486": "i386",
    "i586": "i386",
    "i686": "i386",
    "x86": "i386",
    "ppc64": "powerpc64",
    "ppc64le": "powerpc64le",
    "powerpc64el": "powerpc64le",
    "ppc": "powerpc",
    "armv6": "arm",
    "armv7": "arm",
    "armv6l": "arm",
    "armv7l": "arm",
    "mips64le": "mips64el",
    "mipsle": "mipsel",
}

#: ``KINFO_PROC_SIZE`` by architecture name (kernel-data.md 10.3)
KINFO_PROC_SIZES: dict[str, int] = {name: a.kinfo_proc_size for name, a in ABIS.items()}


def _host_name() -> str | None:
    """pykvm's name for the machine running Python, or None if it is not a FreeBSD one."""
    machine = platform.machine().lower()
    ptr = ctypes.sizeof(ctypes.c_void_p)
    big = sys.byteorder == "big"
    machine = _ALIASES.get(machine, machine)
    if machine in ("amd64", "i386"):
        return "amd64" if ptr == 8 else "i386"
    if machine == "aarch64" or machine.startswith("arm"):
        if ptr == 8:
            return "aarch64"
        return "armeb" if big else "arm"
    if machine.startswith("riscv"):
        return "riscv" if ptr == 8 else None
    if machine.startswith("powerpc") or machine.startswith("ppc"):
        if ptr == 4:
            return "powerpc"
        return "powerpc64" if big else "powerpc64le"
    if machine.startswith("mips"):
        if ptr == 8:
            return "mips64" if big else "mips64el"
        return "mips" if big else "mipsel"
    if machine.startswith("sparc64"):
        return "sparc64"
    return None


@lru_cache(maxsize=1)
def host_abi() -> Abi:
    """The FreeBSD ABI of the host's machine (a generic one when it has no FreeBSD port)."""
    name = _host_name()
    if name is not None:
        return ABIS[name]
    ptr = ctypes.sizeof(ctypes.c_void_p)
    return Abi("host", ptr, ctypes.sizeof(ctypes.c_long), ctypes.alignment(ctypes.c_int64),
               8, sys.byteorder == "big")


def abi(arch: str | Abi | None = None) -> Abi:
    """The :class:`Abi` named ``arch`` (pykvm's names, ``uname -m``/``-p`` aliases too).

    None (or ``"host"``) is the host's.  Raises ValueError for an unknown name.
    """
    if arch is None:
        return host_abi()
    if isinstance(arch, Abi):
        return arch
    key = arch.lower()
    if key == "host":
        return host_abi()
    key = _ALIASES.get(key, key)
    try:
        return ABIS[key]
    except KeyError:
        raise ValueError(f"unknown FreeBSD ABI {arch!r}; expected one of "
                         f"{', '.join(sorted(ABIS))}") from None


# ---------------------------------------------------------------- layout engine
class _CType(NamedTuple):
    """A C type on the target: the ctypes type that stores it, its size and alignment."""

    ctype: Any
    size: int
    align: int


def _int(size: int, signed: bool, align: int | None = None) -> _CType:
    table = {
        (1, True): ctypes.c_int8, (1, False): ctypes.c_uint8,
        (2, True): ctypes.c_int16, (2, False): ctypes.c_uint16,
        (4, True): ctypes.c_int32, (4, False): ctypes.c_uint32,
        (8, True): ctypes.c_int64, (8, False): ctypes.c_uint64,
    }
    return _CType(table[size, signed], size, size if align is None else align)


class _Types:
    """The scalar C types of one ABI."""

    def __init__(self, a: Abi) -> None:
        native = a.host_pointers()
        p = a.pointer_size
        self.char = _CType(ctypes.c_char, 1, 1)
        self.schar = _int(1, True)
        self.uchar = _int(1, False)
        self.short = _int(2, True)
        self.ushort = _int(2, False)
        self.int = _int(4, True)
        self.uint = _int(4, False)
        self.int64 = _int(8, True, a.int64_align)
        self.uint64 = _int(8, False, a.int64_align)
        self.long = _int(a.long_size, True)
        self.ulong = _int(a.long_size, False)
        self.size_t = _int(p, False)
        self.ptr = _CType(ctypes.c_void_p, p, p) if native else _int(p, False)
        self.cstr = _CType(ctypes.c_char_p, p, p) if native else _int(p, False)
        self.time = _int(8, True, a.int64_align) if a.time_size == 8 else _int(4, True)


def _array(t: _CType, n: int) -> _CType:
    return _CType(t.ctype * n, t.size * n, t.align)


def _struct(name: str, a: Abi, members: list[tuple[str, _CType]]) -> _CType:
    """A packed ctypes record with the target's padding made explicit (``_padN``)."""
    fields: list[tuple[str, Any]] = []
    off = 0
    align = 1
    npad = 0

    def pad(n: int) -> None:
        nonlocal off, npad
        if n:
            fields.append((f"_pad{npad}", ctypes.c_uint8 * n))
            npad += 1
            off += n

    for fname, t in members:
        pad(-off % t.align)
        fields.append((fname, t.ctype))
        off += t.size
        align = max(align, t.align)
    pad(-off % align)
    base: type[ctypes.Structure] = (ctypes.BigEndianStructure if a.big_endian
                                    else ctypes.LittleEndianStructure)
    names = tuple(fname for fname, _ in members)

    def __init__(self: ctypes.Structure, *args: Any, **kwargs: Any) -> None:
        """Positional arguments fill the named fields in order (padding is skipped)."""
        if len(args) > len(names):
            raise TypeError("too many initializers")
        for fname, value in zip(names, args, strict=False):
            if fname in kwargs:
                raise TypeError(f"duplicate values for field {fname!r}")
            kwargs[fname] = value
        base.__init__(self, **kwargs)

    namespace = {
        "__init__": __init__,
        "_names_": names,
        "_pack_": 1,
        "_layout_": "ms",  # Python 3.14+: _pack_ asks for it; earlier versions ignore it
        "_fields_": fields,
        "_abi_": a,
        "__module__": __name__,
        "__qualname__": f"{name}[{a.name}]",
        "__doc__": f"``{name}`` for the {a.name} ABI ({off} bytes).",
    }
    meta: Any = type(base)
    cls = meta(name, (base,), namespace)
    if ctypes.sizeof(cls) != off:  # pragma: no cover - a ctypes that ignores _pack_
        raise RuntimeError(f"{name}[{a.name}]: ctypes laid out {ctypes.sizeof(cls)} bytes, "
                           f"expected {off}")
    return _CType(cls, off, align)


class Structures(NamedTuple):
    """The record classes of one ABI (what :func:`structures` returns)."""

    abi: Abi
    #: ``struct nlist`` (a.out; ``kvm_nlist``)
    Nlist: type[ctypes.Structure]
    #: ``struct kvm_nlist`` (``kvm_nlist2``)
    KvmNlist: type[ctypes.Structure]
    #: ``struct kvm_page`` (``kvm_walk_pages``)
    KvmPage: type[ctypes.Structure]
    #: ``struct kvm_swap`` (``kvm_getswapinfo``), 52 bytes everywhere
    KvmSwap: type[ctypes.Structure]
    #: ``struct kinfo_proc`` (``kvm_getprocs``), ``KINFO_PROC_SIZE`` bytes
    KinfoProc: type[ctypes.Structure]
    #: ``struct timeval``
    Timeval: type[ctypes.Structure]
    #: ``struct rusage``
    Rusage: type[ctypes.Structure]
    #: ``struct priority``
    Priority: type[ctypes.Structure]
    #: ``sigset_t``
    Sigset: type[ctypes.Structure]


@cache
def _build(a: Abi) -> Structures:
    t = _Types(a)
    nlist = _struct("Nlist", a, [
        ("n_name", t.cstr),  # union n_un { n_name; long n_strx; }: same size
        ("n_type", t.uchar),
        ("n_other", t.char),
        ("n_desc", t.short),
        ("n_value", t.ulong),
    ])
    kvm_nlist = _struct("KvmNlist", a, [
        ("n_name", t.cstr),
        ("n_type", t.uchar),
        ("n_value", t.uint64),  # kvaddr_t
    ])
    kvm_page = _struct("KvmPage", a, [
        ("kp_version", t.uint),
        ("kp_paddr", t.uint64),  # kpaddr_t
        ("kp_kmap_vaddr", t.uint64),  # kvaddr_t
        ("kp_dmap_vaddr", t.uint64),
        ("kp_prot", t.uchar),  # vm_prot_t
        ("kp_offset", t.int64),  # off_t
        ("kp_len", t.size_t),
    ])
    kvm_swap = _struct("KvmSwap", a, [
        ("ksw_devname", _array(t.char, 32)),
        ("ksw_used", t.uint),
        ("ksw_total", t.uint),
        ("ksw_flags", t.int),
        ("ksw_reserved1", t.uint),
        ("ksw_reserved2", t.uint),
    ])
    sigset = _struct("Sigset", a, [("__bits", _array(t.uint, SIG_WORDS))])
    timeval = _struct("Timeval", a, [("tv_sec", t.time), ("tv_usec", t.long)])
    priority = _struct("Priority", a, [
        ("pri_class", t.uchar),
        ("pri_level", t.uchar),
        ("pri_native", t.uchar),
        ("pri_user", t.uchar),
    ])
    rusage = _struct("Rusage", a, [
        ("ru_utime", timeval),
        ("ru_stime", timeval),
        *((name, t.long) for name in (
            "ru_maxrss", "ru_ixrss", "ru_idrss", "ru_isrss", "ru_minflt", "ru_majflt",
            "ru_nswap", "ru_inblock", "ru_oublock", "ru_msgsnd", "ru_msgrcv",
            "ru_nsignals", "ru_nvcsw", "ru_nivcsw")),
    ])
    pid = t.int
    kinfo_proc = _struct("KinfoProc", a, [
        ("ki_structsize", t.int),
        ("ki_layout", t.int),
        ("ki_args", t.ptr),
        ("ki_paddr", t.ptr),
        ("ki_addr", t.ptr),
        ("ki_tracep", t.ptr),
        ("ki_textvp", t.ptr),
        ("ki_fd", t.ptr),
        ("ki_vmspace", t.ptr),
        ("ki_wchan", t.ptr),
        ("ki_pid", pid),
        ("ki_ppid", pid),
        ("ki_pgid", pid),
        ("ki_tpgid", pid),
        ("ki_sid", pid),
        ("ki_tsid", pid),
        ("ki_jobc", t.short),
        ("ki_spare_short1", t.short),
        ("ki_tdev_freebsd11", t.uint),
        ("ki_siglist", sigset),
        ("ki_sigmask", sigset),
        ("ki_sigignore", sigset),
        ("ki_sigcatch", sigset),
        ("ki_uid", t.uint),
        ("ki_ruid", t.uint),
        ("ki_svuid", t.uint),
        ("ki_rgid", t.uint),
        ("ki_svgid", t.uint),
        ("ki_ngroups", t.short),
        ("ki_spare_short2", t.short),
        ("ki_groups", _array(t.uint, KI_NGROUPS)),
        ("ki_size", t.ulong),  # vm_size_t
        ("ki_rssize", t.long),  # segsz_t
        ("ki_swrss", t.long),
        ("ki_tsize", t.long),
        ("ki_dsize", t.long),
        ("ki_ssize", t.long),
        ("ki_xstat", t.ushort),
        ("ki_acflag", t.ushort),
        ("ki_pctcpu", t.uint),  # fixpt_t
        ("ki_estcpu", t.uint),
        ("ki_slptime", t.uint),
        ("ki_swtime", t.uint),
        ("ki_cow", t.uint),
        ("ki_runtime", t.uint64),
        ("ki_start", timeval),
        ("ki_childtime", timeval),
        ("ki_flag", t.long),
        ("ki_kiflag", t.long),
        ("ki_traceflag", t.int),
        ("ki_stat", t.char),
        ("ki_nice", t.schar),
        ("ki_lock", t.char),
        ("ki_rqindex", t.char),
        ("ki_oncpu_old", t.uchar),
        ("ki_lastcpu_old", t.uchar),
        ("ki_tdname", _array(t.char, TDNAMLEN + 1)),
        ("ki_wmesg", _array(t.char, WMESGLEN + 1)),
        ("ki_login", _array(t.char, LOGNAMELEN + 1)),
        ("ki_lockname", _array(t.char, LOCKNAMELEN + 1)),
        ("ki_comm", _array(t.char, COMMLEN + 1)),
        ("ki_emul", _array(t.char, KI_EMULNAMELEN + 1)),
        ("ki_loginclass", _array(t.char, LOGINCLASSLEN + 1)),
        ("ki_moretdname", _array(t.char, MAXCOMLEN - TDNAMLEN + 1)),
        ("ki_sparestrings", _array(t.char, KI_NSPARE_STRINGS)),
        ("ki_spareints", _array(t.int, KI_NSPARE_INT)),
        ("ki_reaper", pid),
        ("ki_reapsubtree", pid),
        ("ki_tdev", t.uint64),
        ("ki_oncpu", t.int),
        ("ki_lastcpu", t.int),
        ("ki_tracer", t.int),
        ("ki_flag2", t.int),
        ("ki_fibnum", t.int),
        ("ki_cr_flags", t.uint),
        ("ki_jid", t.int),
        ("ki_numthreads", t.int),
        ("ki_tid", t.int),  # lwpid_t
        ("ki_pri", priority),
        ("ki_rusage", rusage),
        ("ki_rusage_ch", rusage),
        ("ki_pcb", t.ptr),
        ("ki_kstack", t.ptr),
        ("ki_udata", t.ptr),
        ("ki_tdaddr", t.ptr),
        ("ki_pd", t.ptr),
        ("ki_uerrmsg", t.ptr),
        ("ki_spareptrs", _array(t.ptr, KI_NSPARE_PTR)),
        ("ki_sparelongs", _array(t.long, KI_NSPARE_LONG)),
        ("ki_sflag", t.long),
        ("ki_tdflags", t.long),
    ])
    if kinfo_proc.size != a.kinfo_proc_size:  # pragma: no cover - table and rules disagree
        raise RuntimeError(f"kinfo_proc[{a.name}] is {kinfo_proc.size} bytes, "
                           f"KINFO_PROC_SIZE is {a.kinfo_proc_size}")
    return Structures(a, nlist.ctype, kvm_nlist.ctype, kvm_page.ctype, kvm_swap.ctype,
                      kinfo_proc.ctype, timeval.ctype, rusage.ctype, priority.ctype,
                      sigset.ctype)


def structures(arch: str | Abi | None = None) -> Structures:
    """The record classes of FreeBSD's ABI for ``arch`` (default: the host's).

    ``arch`` is an architecture name (``amd64``, ``i386``, ``arm``, ``aarch64``,
    ``riscv``, ``powerpc``, ``powerpc64``, ``powerpc64le``, the mips variants, or an
    alias such as ``x86_64``/``arm64``), an :class:`Abi`, or None for the host.  The
    same ABI always gives the same classes.
    """
    return _build(abi(arch))


_HOST = structures()
#: ``struct nlist`` of the host ABI
Nlist: type[ctypes.Structure] = _HOST.Nlist
#: ``struct kvm_nlist`` of the host ABI
KvmNlist: type[ctypes.Structure] = _HOST.KvmNlist
#: ``struct kvm_page`` of the host ABI
KvmPage: type[ctypes.Structure] = _HOST.KvmPage
#: ``struct kvm_swap`` (52 bytes)
KvmSwap: type[ctypes.Structure] = _HOST.KvmSwap
#: ``struct kinfo_proc`` of the host ABI
KinfoProc: type[ctypes.Structure] = _HOST.KinfoProc
