"""``ctypes.CDLL("libkvm.so.7")``, native or emulated, with the same surface.

:class:`EmulatedLibkvm` behaves as the ``CDLL`` object of libkvm: its attributes are
function objects with settable ``argtypes``, ``restype`` and ``errcheck``; arguments
are checked and converted by ``argtypes`` as ctypes does (a Python function passed
where a ``CFUNCTYPE`` is declared becomes a C callback), results are converted by
``restype`` (``c_int`` unless set, like ctypes: a ``kvm_t *`` is then an ``int`` and
``kvm_geterr`` needs ``c_char_p`` to give ``bytes``), and with ``use_errno=True`` the
``errno`` a call sets is what ``ctypes.get_errno()`` returns afterwards.  Every call of
``kvm.h`` exists; any other name raises ``AttributeError`` as a missing symbol does.

:func:`load` returns the real library on FreeBSD and the emulation elsewhere, both with
the argtypes and restypes of ``kvm.h`` declared (:data:`SIGNATURES`).  The environment
variable ``PYKVM_LIBKVM`` (``native``, ``emulated`` or ``auto``) forces the choice.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
from _ctypes import CFuncPtr
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from . import _cargs, calls
from .abi import KinfoProc, KvmNlist, KvmPage, KvmSwap, Nlist

__all__ = [
    "ENV",
    "EmulatedFunction",
    "EmulatedLibkvm",
    "LIBKVM_SONAME",
    "RESOLVER_T",
    "SIGNATURES",
    "WALK_PAGES_CB_T",
    "declare",
    "load",
]

#: the shared object a FreeBSD program loads
LIBKVM_SONAME = "libkvm.so.7"
#: environment variable choosing what :func:`load` returns
ENV = "PYKVM_LIBKVM"

#: ``int (*)(const char *, kvaddr_t *)``: the resolver of ``kvm_open2``
RESOLVER_T = calls.RESOLVER_T
#: ``kvm_walk_pages_cb_t``: ``int (*)(struct kvm_page *, void *)``
WALK_PAGES_CB_T = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(KvmPage), ctypes.c_void_p)

_P = ctypes.POINTER
_kvm_t = ctypes.c_void_p
_str = ctypes.c_char_p


class Signature(NamedTuple):
    """A prototype of ``kvm.h`` as ctypes declares it."""

    restype: Any
    argtypes: list[Any]


#: the prototypes of ``kvm.h`` (FreeBSD 15), for ``argtypes``/``restype``
SIGNATURES: dict[str, Signature] = {
    "kvm_close": Signature(ctypes.c_int, [_kvm_t]),
    "kvm_counter_u64_fetch": Signature(ctypes.c_uint64, [_kvm_t, ctypes.c_ulong]),
    "kvm_dpcpu_setcpu": Signature(ctypes.c_int, [_kvm_t, ctypes.c_uint]),
    "kvm_getargv": Signature(_P(ctypes.c_char_p), [_kvm_t, _P(KinfoProc), ctypes.c_int]),
    "kvm_getcptime": Signature(ctypes.c_int, [_kvm_t, _P(ctypes.c_long)]),
    "kvm_getenvv": Signature(_P(ctypes.c_char_p), [_kvm_t, _P(KinfoProc), ctypes.c_int]),
    "kvm_geterr": Signature(ctypes.c_char_p, [_kvm_t]),
    "kvm_getloadavg": Signature(ctypes.c_int, [_kvm_t, _P(ctypes.c_double), ctypes.c_int]),
    "kvm_getmaxcpu": Signature(ctypes.c_int, [_kvm_t]),
    "kvm_getncpus": Signature(ctypes.c_int, [_kvm_t]),
    "kvm_getpcpu": Signature(ctypes.c_void_p, [_kvm_t, ctypes.c_int]),
    "kvm_getprocs": Signature(_P(KinfoProc), [_kvm_t, ctypes.c_int, ctypes.c_int,
                                               _P(ctypes.c_int)]),
    "kvm_getswapinfo": Signature(ctypes.c_int, [_kvm_t, _P(KvmSwap), ctypes.c_int,
                                                ctypes.c_int]),
    "kvm_kerndisp": Signature(ctypes.c_int64, [_kvm_t]),
    "kvm_native": Signature(ctypes.c_int, [_kvm_t]),
    "kvm_nlist": Signature(ctypes.c_int, [_kvm_t, _P(Nlist)]),
    "kvm_nlist2": Signature(ctypes.c_int, [_kvm_t, _P(KvmNlist)]),
    "kvm_open": Signature(_kvm_t, [_str, _str, _str, ctypes.c_int, _str]),
    "kvm_open2": Signature(_kvm_t, [_str, _str, ctypes.c_int, _str, RESOLVER_T]),
    "kvm_openfiles": Signature(_kvm_t, [_str, _str, _str, ctypes.c_int, _str]),
    "kvm_read": Signature(ctypes.c_ssize_t, [_kvm_t, ctypes.c_ulong, ctypes.c_void_p,
                                             ctypes.c_size_t]),
    "kvm_read2": Signature(ctypes.c_ssize_t, [_kvm_t, ctypes.c_uint64, ctypes.c_void_p,
                                              ctypes.c_size_t]),
    "kvm_read_zpcpu": Signature(ctypes.c_ssize_t, [_kvm_t, ctypes.c_ulong, ctypes.c_void_p,
                                                   ctypes.c_size_t, ctypes.c_int]),
    "kvm_walk_pages": Signature(ctypes.c_int, [_kvm_t, WALK_PAGES_CB_T, ctypes.c_void_p]),
    "kvm_write": Signature(ctypes.c_ssize_t, [_kvm_t, ctypes.c_ulong, ctypes.c_void_p,
                                              ctypes.c_size_t]),
}

# What each emulated function returns before restype conversion.
_HANDLE, _STRING, _INT = "handle", "string", "int"
_KINDS = {"kvm_open": _HANDLE, "kvm_openfiles": _HANDLE, "kvm_open2": _HANDLE,
          "kvm_geterr": _STRING}
_IMPLS: dict[str, Callable[..., Any]] = {
    name: (calls._kvm_geterr_c if name == "kvm_geterr" else getattr(calls, name))
    for name in sorted(calls.IMPLEMENTED | calls.PENDING)
}

_INT_CODES = frozenset("bBhHiIlLqQnN?")
_FLOAT_CODES = frozenset("fdg")

# The real loader, kept before anything (libkvm.run) replaces ctypes' names.
_REAL_CDLL = ctypes.CDLL
_real_find_library = ctypes.util.find_library


def _is_subclass(obj: Any, cls: type) -> bool:
    return isinstance(obj, type) and issubclass(obj, cls)


def _to_restype(restype: Any, result: Any) -> Any:
    """Convert a C result to what ctypes gives for ``restype``."""
    if restype is None:
        return None
    if result is None:  # a NULL pointer result (kvm_getprocs, kvm_getpcpu, kvm_getargv)
        result = 0
    elif isinstance(result, ctypes.Array):  # memory the call returns (kvm_getprocs)
        result = ctypes.addressof(result)
    pointer = isinstance(result, calls.CString)
    if pointer:
        addr, text = result.address, result.value
        if _is_subclass(restype, ctypes.c_char_p):
            if restype is ctypes.c_char_p:
                return None if not addr else (text or b"")
            return restype(text if addr else None)
        if restype is ctypes.c_void_p:
            return addr or None
        if _is_subclass(restype, ctypes.c_void_p):
            return restype(addr or None)
        if _is_subclass(restype, ctypes._Pointer):
            return ctypes.cast(ctypes.c_void_p(addr or None), restype)
        value: Any = addr
    else:
        value = result
    if _is_subclass(restype, ctypes._SimpleCData):
        code = getattr(restype, "_type_", "")
        if code in _INT_CODES:
            return restype(int(value)).value
        if code in _FLOAT_CODES:
            return float(value)
        if code == "P":
            if restype is ctypes.c_void_p:
                return int(value) or None
            return restype(int(value) or None)
        if code == "c":
            return bytes([int(value) & 0xFF])
        raise TypeError(f"restype {restype.__name__} cannot hold this result")
    if callable(restype) and not isinstance(restype, type):
        return restype(int(value))
    if _is_subclass(restype, ctypes._Pointer):
        return ctypes.cast(ctypes.c_void_p(int(value) or None), restype)
    raise TypeError(f"restype must be a type, a callable, or None, not {restype!r}")


def _convert_arg(argtype: Any, arg: Any) -> Any:
    """Check ``arg`` against ``argtype`` as ctypes does; the value the call receives."""
    arg = _cargs.unwrap(arg)
    if _is_subclass(argtype, CFuncPtr):
        if callable(arg) and not isinstance(arg, CFuncPtr):
            return argtype(arg)  # ctypes makes a C callback of a Python function
        if arg is None or isinstance(arg, CFuncPtr):
            return arg
    if (_is_subclass(argtype, ctypes._SimpleCData)
            and getattr(argtype, "_type_", "") in _INT_CODES
            and isinstance(arg, int) and not isinstance(arg, bool)):
        return argtype(arg).value  # C's conversion (wraps to the parameter's width)
    from_param = getattr(argtype, "from_param", None)
    if from_param is None:
        raise TypeError(f"argtypes item {argtype!r} has no from_param")
    from_param(arg)
    return arg


class EmulatedFunction:
    """One function of :class:`EmulatedLibkvm` (a ctypes foreign function look-alike)."""

    def __init__(self, name: str, impl: Callable[..., Any], kind: str,
                 use_errno: bool) -> None:
        self.__name__ = name
        self._impl = impl
        self._kind = kind
        self._use_errno = use_errno
        self.argtypes: Sequence[Any] | None = None
        self.restype: Any = ctypes.c_int
        self.errcheck: Callable[..., Any] | None = None

    def __repr__(self) -> str:
        return f"<EmulatedFunction {self.__name__} (pykvm)>"

    def _args(self, args: tuple[Any, ...]) -> tuple[Any, ...]:
        argtypes = self.argtypes
        if argtypes is None:
            return args
        if len(args) < len(argtypes):
            n = len(argtypes)
            raise TypeError(f"this function takes at least {n} argument{'s' * (n != 1)} "
                            f"({len(args)} given)")
        out = list(args)
        for i, argtype in enumerate(argtypes):
            try:
                out[i] = _convert_arg(argtype, args[i])
            except Exception as exc:
                raise ctypes.ArgumentError(f"argument {i + 1}: {type(exc).__name__}: "
                                           f"{exc}") from None
        return tuple(out)

    def __call__(self, *args: Any) -> Any:
        cargs = self._args(args)
        serial = calls._errno_serial()
        try:
            result = self._impl(*cargs)
        finally:
            if self._use_errno and calls._errno_serial() != serial:
                ctypes.set_errno(calls.errno())
        if self._kind == _HANDLE:
            result = calls.CString(int(result) if result is not None else 0, None)
        value = _to_restype(self.restype, result)
        if self.errcheck is not None:
            value = self.errcheck(value, self, args)
        return value


class EmulatedLibkvm:
    """libkvm as ``ctypes.CDLL`` would load it, served by pykvm."""

    def __init__(self, name: str | bytes | os.PathLike[str] | None = LIBKVM_SONAME,
                 mode: int = 0, handle: int | None = None, use_errno: bool = False,
                 use_last_error: bool = False, winmode: int | None = None) -> None:
        del mode, handle, use_last_error, winmode
        self._name = os.fsdecode(name) if name is not None else LIBKVM_SONAME
        self._handle = 0
        self._use_errno = use_errno

    def __repr__(self) -> str:
        return f"<EmulatedLibkvm '{self._name}' (pykvm)>"

    def __getattr__(self, name: str) -> EmulatedFunction:
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        func = self[name]
        setattr(self, name, func)
        return func

    def __getitem__(self, name: str) -> EmulatedFunction:
        impl = _IMPLS.get(name)
        if impl is None:
            raise AttributeError(f"{self._name}: undefined symbol: {name}")
        return EmulatedFunction(name, impl, _KINDS.get(name, _INT), self._use_errno)


Libkvm = ctypes.CDLL | EmulatedLibkvm


def declare(lib: Libkvm) -> Libkvm:
    """Set ``argtypes`` and ``restype`` of every ``kvm.h`` function ``lib`` has."""
    for name, sig in SIGNATURES.items():
        try:
            func = getattr(lib, name)
        except AttributeError:
            continue  # an older libkvm without e.g. kvm_kerndisp
        func.restype = sig.restype
        func.argtypes = sig.argtypes
    return lib


def load(mode: str | None = None) -> Libkvm:
    """libkvm with ``kvm.h``'s prototypes declared: native on FreeBSD, else pykvm's.

    ``mode`` (default: ``$PYKVM_LIBKVM``, else ``auto``) is ``native`` (ctypes'
    ``libkvm.so.7``; OSError where there is none), ``emulated`` (pykvm) or ``auto``.
    The native library is opened with ``use_errno=True``, and so is the emulation.
    """
    choice = (mode or os.environ.get(ENV) or "auto").strip().lower()
    if choice == "auto":
        choice = "native" if sys.platform.startswith("freebsd") else "emulated"
    if choice == "native":
        path = _real_find_library("kvm") or LIBKVM_SONAME
        return declare(_REAL_CDLL(path, use_errno=True))
    if choice == "emulated":
        return declare(EmulatedLibkvm(LIBKVM_SONAME, use_errno=True))
    raise ValueError(f"{ENV}: expected native, emulated or auto, not {choice!r}")
