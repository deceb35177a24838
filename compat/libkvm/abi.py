"""C records of libkvm as ctypes ``Structure`` classes, byte-identical per FreeBSD ABI.

``structures(arch)`` gives ``struct nlist`` (a.out), ``struct kvm_nlist``,
``struct kvm_page``, ``struct kvm_swap`` and ``struct kinfo_proc`` (with its
sub-records ``struct timeval``, ``struct rusage``, ``struct priority`` and
``sigset_t``) for one target ABI: pointer size, ``long`` size, alignment of 64-bit
integers, size of ``time_t`` and byte order.  The module-level classes
(:data:`Nlist`, :data:`KvmNlist`, ...) are the host's, which is what a ctypes
program handing its own buffers to libkvm uses.

The member lists and the ABI table are the engine's (:mod:`pykvm.abi`: one member
list per record, from which pykvm's ``struct`` packers are derived as well); this
module only turns them into ctypes classes.

How the layout is made exact on any host: the offsets are computed with the C
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
from functools import cache, lru_cache
from typing import Any, NamedTuple

from pykvm.abi import model as _model
from pykvm.abi.kinfo_proc import KINFO_PROC, PRIORITY, RUSAGE, SIGSET, TIMEVAL
from pykvm.abi.kvm_swap import KVM_SWAP
from pykvm.abi.model import Abi, Array, Record
from pykvm.abi.nlist import KVM_NLIST, KVM_PAGE, NLIST

__all__ = [
    "ABIS",
    "Abi",
    "KINFO_PROC_SIZES",
    "Structures",
    "abi",
    "host_abi",
    "structures",
]

#: FreeBSD ABIs by pykvm's architecture name (kernel-data.md 10.2-10.3)
ABIS: dict[str, Abi] = _model.ABIS
_ALIASES = _model.ALIASES

#: ``KINFO_PROC_SIZE`` by architecture name (kernel-data.md 10.3)
KINFO_PROC_SIZES: dict[str, int] = {name: a.kinfo_proc_size for name, a in ABIS.items()}


def _host_pointers(a: Abi) -> bool:
    """Whether a target pointer can be a host ``c_void_p`` (same size and byte order)."""
    return (a.pointer_size == ctypes.sizeof(ctypes.c_void_p)
            and a.byteorder == sys.byteorder)


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
        native = _host_pointers(a)
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


def _ctype(t: _Types, a: Abi, ctype: str | Array | Record, built: dict[str, _CType]) -> _CType:
    """The ctypes form of one type of the engine's model (records built once per ABI)."""
    if isinstance(ctype, str):
        got: _CType = getattr(t, ctype)
        return got
    if isinstance(ctype, Array):
        return _array(_ctype(t, a, ctype.elem, built), ctype.count)
    if ctype.pyname not in built:
        members = [(name, _ctype(t, a, m, built)) for name, m in ctype.members]
        built[ctype.pyname] = _struct(ctype.pyname, a, members)
        want = _model.layout(ctype, a)
        got_ct = built[ctype.pyname]
        if (got_ct.size, got_ct.align) != (want.size, want.align):  # pragma: no cover
            raise RuntimeError(f"{ctype.pyname}[{a.name}]: ctypes {got_ct.size} bytes, "
                               f"pykvm.abi {want.size}")
    return built[ctype.pyname]


@cache
def _build(a: Abi) -> Structures:
    t = _Types(a)
    built: dict[str, _CType] = {}
    for record in (NLIST, KVM_NLIST, KVM_PAGE, KVM_SWAP, SIGSET, TIMEVAL, PRIORITY, RUSAGE,
                   KINFO_PROC):
        _ctype(t, a, record, built)
    if built["KinfoProc"].size != a.kinfo_proc_size:  # pragma: no cover - table and rules
        raise RuntimeError(f"kinfo_proc[{a.name}] is {built['KinfoProc'].size} bytes, "
                           f"KINFO_PROC_SIZE is {a.kinfo_proc_size}")
    return Structures(a, *(built[n].ctype for n in (
        "Nlist", "KvmNlist", "KvmPage", "KvmSwap", "KinfoProc", "Timeval", "Rusage",
        "Priority", "Sigset")))


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
