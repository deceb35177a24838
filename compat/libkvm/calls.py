"""libkvm's calls with their C names and C conventions, over pykvm's engine.

Every function here behaves as the libkvm function of the same name (api.md 3-12):
NULL is ``None``, failures are ``-1`` or ``None`` with the text in the descriptor's
error buffer (``kvm_geterr``), open failures go to the caller's buffer
(``kvm_openfiles``, ``kvm_open2``) or to stderr (``kvm_open`` with ``errstr``), and
records are filled in place.  Arguments may be what a ctypes program hands to
``libkvm.so.7`` or plain Python values (see :mod:`libkvm._cargs`).

A descriptor is a :class:`KvmHandle`: an ``int`` (so it goes wherever ctypes takes a
``c_void_p``) carrying the pykvm :class:`~pykvm.Kvm`.  Handles are never reused, so
use after ``kvm_close`` is caught (``ValueError``; a second ``kvm_close`` returns -1
with errno ``EBADF``, api.md 16).

Mirrors lib/libkvm/kvm.c and kvm.h.
"""

from __future__ import annotations

import ctypes
import errno as _errno
import threading
from _ctypes import CFuncPtr
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NamedTuple

import pykvm
from pykvm import KvmError
from pykvm.errors import FaultError, NotNativeError
from pykvm.kvm import U64, ULONG, Kvm, Resolver
from pykvm.kvm import _kvm_err as _engine_kvm_err

from . import _cargs
from ._defs import _POSIX2_LINE_MAX
from .abi import KvmNlist, KvmPage, Nlist

__all__ = [
    "IMPLEMENTED",
    "PENDING",
    "KvmHandle",
    "_kvm_err",
    "errno",
    "get_errno",
    "kvm_close",
    "kvm_counter_u64_fetch",
    "kvm_dpcpu_setcpu",
    "kvm_getargv",
    "kvm_getcptime",
    "kvm_getenvv",
    "kvm_geterr",
    "kvm_getloadavg",
    "kvm_getmaxcpu",
    "kvm_getncpus",
    "kvm_getpcpu",
    "kvm_getprocs",
    "kvm_getswapinfo",
    "kvm_kerndisp",
    "kvm_native",
    "kvm_nlist",
    "kvm_nlist2",
    "kvm_open",
    "kvm_open2",
    "kvm_openfiles",
    "kvm_read",
    "kvm_read2",
    "kvm_read_zpcpu",
    "kvm_walk_pages",
    "kvm_write",
    "set_errno",
]

#: entries read from a list given only by address before giving up on a terminator
MAX_NLIST = 1 << 20


# ------------------------------------------------------------------------ errno
class _ErrnoState(threading.local):
    value = 0
    serial = 0


_errno_state = _ErrnoState()


def errno() -> int:
    """The calling thread's ``errno`` as the drop-in's calls set it (host numbering)."""
    return _errno_state.value


def get_errno() -> int:
    """Same as :func:`errno` (the name ``ctypes.get_errno`` uses)."""
    return _errno_state.value


def set_errno(value: int) -> int:
    """Set the calling thread's ``errno``; returns the previous value (like ctypes)."""
    old = _errno_state.value
    _errno_state.value = value
    _errno_state.serial += 1
    return old


def _errno_serial() -> int:
    return _errno_state.serial


# -------------------------------------------------------------------- handles
class KvmHandle(int):
    """A ``kvm_t *``: an int for ctypes, with the pykvm descriptor at :attr:`kvm`."""

    _kvm: Kvm

    def __new__(cls, value: int, kvm: Kvm) -> KvmHandle:
        self = super().__new__(cls, value)
        self._kvm = kvm
        return self

    @property
    def kvm(self) -> Kvm:
        """The pykvm descriptor behind the handle (closed after ``kvm_close``)."""
        return self._kvm

    def __repr__(self) -> str:
        return f"<kvm_t 0x{int(self):x}>"


class _Desc:
    """A descriptor as the drop-in tracks it."""

    __slots__ = ("kvm", "closed", "cerr", "procbase", "keep")

    def __init__(self, kvm: Kvm) -> None:
        self.kvm = kvm
        self.closed = False
        #: C copy of the error text, for ``kvm_geterr`` called with a pointer restype
        self.cerr: ctypes.Array[ctypes.c_char] | None = None
        #: the latest ``kvm_getprocs`` array (C's ``kd->procbase``)
        self.procbase: Any = None
        #: memory handed out to C callers, kept until ``kvm_close`` (no dangling pointers)
        self.keep: list[Any] = []


_lock = threading.Lock()
_descs: dict[int, _Desc] = {}
#: handle values: small (they survive a ctypes c_int restype), aligned, never reused
_HANDLE_BASE = 0x10000
_HANDLE_STEP = 0x10
_next_handle = _HANDLE_BASE
#: ``kvm_geterr(NULL)``'s static empty string, for pointer restypes
_EMPTY = ctypes.create_string_buffer(1)


def _register(kvm: Kvm) -> KvmHandle:
    global _next_handle
    with _lock:
        value = _next_handle
        _next_handle += _HANDLE_STEP
        _descs[value] = _Desc(kvm)
    return KvmHandle(value, kvm)


def _lookup(kd: Any, fn: str) -> _Desc | None:
    """The descriptor ``kd`` names; None for NULL.  ValueError for a foreign value."""
    kd = _cargs.unwrap(kd)
    if isinstance(kd, Kvm):
        return _Desc(kd)
    if isinstance(kd, ctypes.c_void_p):
        kd = kd.value
    if kd is None:
        return None
    if not isinstance(kd, int) or isinstance(kd, bool):
        raise TypeError(f"{fn}: expected a kvm_t handle, got {type(kd).__name__}")
    if kd == 0:
        return None
    with _lock:
        desc = _descs.get(int(kd))
    if desc is None:
        raise ValueError(f"{fn}: 0x{int(kd):x} is not a kvm_t from this library")
    return desc


def _open_desc(kd: Any, fn: str) -> _Desc:
    """The open descriptor ``kd`` names (api.md 16: NULL and closed ones raise)."""
    desc = _lookup(kd, fn)
    if desc is None:
        raise TypeError(f"{fn}: NULL kvm_t")
    if desc.closed:
        raise ValueError(f"{fn}: kvm_t used after kvm_close")
    return desc


def _kvm(kd: Any, fn: str) -> Kvm:
    return _open_desc(kd, fn).kvm


# ---------------------------------------------------------------------- open
def _path(obj: Any, what: str) -> bytes | None:
    return _cargs.c_string(obj, what)


class _CResolver:
    """A C resolver ``int (*)(const char *, kvaddr_t *)`` as pykvm's resolver."""

    def __init__(self, func: Any) -> None:
        self.func = func
        argtypes: Sequence[Any] = getattr(func, "argtypes", None) or ()
        slot: Any = ctypes.c_uint64
        if len(argtypes) >= 2:
            target = getattr(argtypes[1], "_type_", None)
            if (isinstance(target, type) and issubclass(target, ctypes._SimpleCData)
                    and ctypes.sizeof(target) == 8):
                slot = target
        self.slot = slot

    def __call__(self, name: str) -> int | None:
        value = self.slot(0)
        rc = self.func(name.encode("utf-8", "surrogateescape"), ctypes.byref(value))
        if rc:
            return None
        return int(value.value) & U64


#: ``int (*)(const char *, kvaddr_t *)`` (kvm.h, the resolver of kvm_open2)
RESOLVER_T = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_char_p, ctypes.POINTER(ctypes.c_uint64))


def _resolver(obj: Any) -> Resolver | None:
    """A resolver argument: NULL, a C function (ctypes), or a Python callable.

    A Python callable follows pykvm's convention (``name -> address or None``; a
    ``(rc, address)`` tuple is accepted too); a ctypes function pointer follows C's.
    """
    obj = _cargs.unwrap(obj)
    if obj is None:
        return None
    if isinstance(obj, CFuncPtr):
        return _CResolver(obj) if obj else None
    if isinstance(obj, (int, ctypes.c_void_p)):
        addr = _cargs.address(obj, "resolver")
        return None if addr is None else _CResolver(RESOLVER_T(addr))
    if callable(obj):
        return obj  # type: ignore[no-any-return]
    raise TypeError(f"resolver: expected a function, got {type(obj).__name__}")


def _open_failed(errout: Any, exc: KvmError) -> None:
    """``_kvm_open``'s failure path: ``strlcpy(errout, errbuf, _POSIX2_LINE_MAX)``."""
    if _cargs.is_null(errout):
        return
    _cargs.strlcpy(errout, exc.message.encode("utf-8", "surrogateescape"), _POSIX2_LINE_MAX)


def kvm_open(execfile: Any, corefile: Any, swapfile: Any, flags: Any,
             errstr: Any) -> KvmHandle | None:
    """``kvm_open``: open errors (and later hard errors) print ``errstr: text`` on stderr.

    With ``errstr`` NULL they are lost.  ``swapfile`` is never looked at.  libkvm keeps
    ``errstr`` by reference; the drop-in copies the string when the call is made.
    """
    del swapfile
    prog = _cargs.c_string(errstr, "errstr")
    program = None if prog is None else prog.decode("utf-8", "surrogateescape")
    try:
        kd = pykvm.open(_path(execfile, "execfile"), _path(corefile, "corefile"), None,
                        _cargs.c_int(flags, "flags"), program, strict=True)
    except KvmError:
        return None
    return _register(kd)


def kvm_openfiles(execfile: Any, corefile: Any, swapfile: Any, flags: Any,
                  errbuf: Any) -> KvmHandle | None:
    """``kvm_openfiles``: on failure (only then) the text goes to ``errbuf`` if not NULL.

    ``errbuf`` should hold ``_POSIX2_LINE_MAX`` (2048) bytes; a smaller buffer of
    known size gets a truncated, NUL-terminated text.
    """
    del swapfile
    try:
        kd = pykvm.openfiles(_path(execfile, "execfile"), _path(corefile, "corefile"), None,
                             _cargs.c_int(flags, "flags"), strict=True)
    except KvmError as exc:
        _open_failed(errbuf, exc)
        return None
    return _register(kd)


def kvm_open2(execfile: Any, corefile: Any, flags: Any, errbuf: Any,
              resolver: Any) -> KvmHandle | None:
    """``kvm_open2``: as :func:`kvm_openfiles`, with a symbol resolver (may be NULL)."""
    try:
        kd = pykvm.open2(_path(execfile, "execfile"), _path(corefile, "corefile"),
                         _cargs.c_int(flags, "flags"), _resolver(resolver), strict=True)
    except KvmError as exc:
        _open_failed(errbuf, exc)
        return None
    return _register(kd)


# ---------------------------------------------------------- close, geterr, native
def kvm_close(kd: Any) -> int:
    """``kvm_close``: 0, or -1 with errno ``EINVAL`` for NULL (``EBADF`` if closed)."""
    desc = _lookup(kd, "kvm_close")
    if desc is None:
        set_errno(_errno.EINVAL)
        return -1
    if desc.closed:
        set_errno(_errno.EBADF)
        return -1
    desc.closed = True
    desc.procbase = None
    desc.keep.clear()
    rc = desc.kvm.close()
    if rc:
        set_errno(_errno.EBADF)  # pykvm: already closed through the Python API
    return rc


def kvm_geterr(kd: Any) -> str:
    """``kvm_geterr``: the descriptor's last stored error; ``""`` for NULL."""
    desc = _lookup(kd, "kvm_geterr")
    if desc is None:
        return ""
    if desc.closed:
        raise ValueError("kvm_geterr: kvm_t used after kvm_close")
    return desc.kvm.geterr()


class CString(NamedTuple):
    """A ``char *`` result: where it lives (0 for NULL) and the bytes it holds."""

    address: int
    value: bytes | None


def _kvm_geterr_c(kd: Any) -> CString:
    """``kvm_geterr`` as C returns it: a pointer into memory the descriptor owns."""
    desc = _lookup(kd, "kvm_geterr")
    if desc is None:
        return CString(ctypes.addressof(_EMPTY), b"")
    if desc.closed:
        raise ValueError("kvm_geterr: kvm_t used after kvm_close")
    text = desc.kvm.geterr().encode("utf-8", "surrogateescape")
    if desc.cerr is None:
        desc.cerr = ctypes.create_string_buffer(_POSIX2_LINE_MAX)
    desc.cerr.value = text[:_POSIX2_LINE_MAX - 1]
    return CString(ctypes.addressof(desc.cerr), text)


def _kvm_err(kd: Any, program: Any, text: Any) -> None:
    """libkvm's internal ``_kvm_err(kd, program, fmt)`` (FreeBSD's geterr test calls it)."""
    prog = _cargs.c_string(program, "program")
    msg = _cargs.c_string(text, "text") or b""
    _engine_kvm_err(_kvm(kd, "_kvm_err"),
                    None if prog is None else prog.decode("utf-8", "surrogateescape"),
                    msg.decode("utf-8", "surrogateescape"))


def kvm_native(kd: Any) -> int:
    """``kvm_native``: 1 when the dump is of the host's architecture, else 0."""
    return 1 if _kvm(kd, "kvm_native").native() else 0


def kvm_kerndisp(kd: Any) -> int:
    """``kvm_kerndisp``: the kernel displacement (``kssize_t``; 0 unless recorded)."""
    return _kvm(kd, "kvm_kerndisp").kerndisp()


# ----------------------------------------------------------------- read, write
def _read(fn: str, kd: Any, addr: Any, buf: Any, nbytes: Any, narrow: int) -> int:
    k = _kvm(kd, fn)
    start = _cargs.c_int(addr, "addr") & narrow
    size = _cargs.c_int(nbytes, "nbytes") & U64
    if size == 0:
        return 0
    if _cargs.is_null(buf):
        # read(2) into NULL: the first chunk translates, then EFAULT stops the loop
        try:
            k.read2(start, 1)
        except FaultError:
            return -1
        k.syserr(k.program, "kvm_read", _errno.EFAULT)
        return 0
    cap = _cargs.capacity(buf)
    if cap is not None and cap < size:
        raise ValueError(f"{fn}: buffer of {cap} bytes for {size} bytes")
    try:
        data = k.read2(start, size)
    except FaultError as exc:
        # libkvm copied the chunks before the failing one into buf already
        done = (exc.address - start) & U64
        if 0 < done < size:
            try:
                _cargs.store(buf, k.read2(start, done), fn)
            except KvmError:
                pass
        return -1
    except KvmError:
        return -1
    _cargs.store(buf, data, fn)
    return len(data)


def kvm_read(kd: Any, addr: Any, buf: Any, nbytes: Any) -> int:
    """``kvm_read``: ``kvm_read2`` with the address narrowed to ``unsigned long``."""
    return _read("kvm_read", kd, addr, buf, nbytes, ULONG)


def kvm_read2(kd: Any, addr: Any, buf: Any, nbytes: Any) -> int:
    """``kvm_read2``: copy ``nbytes`` at kernel address ``addr`` into ``buf``.

    Returns ``nbytes``, a short count (the core ends), or -1 when a page does not
    translate (``kvm_geterr`` names the failing chunk, api.md 8.3).
    """
    return _read("kvm_read2", kd, addr, buf, nbytes, U64)


def kvm_write(kd: Any, addr: Any, buf: Any, nbytes: Any) -> int:
    """``kvm_write``: -1 (``kvm_write not implemented for dead kernels``) on crash dumps."""
    k = _kvm(kd, "kvm_write")
    size = _cargs.c_int(nbytes, "nbytes") & U64
    data = b""
    if k.writable and size:
        if _cargs.is_null(buf):
            k.syserr(k.program, "kvm_write", _errno.EFAULT)
            return 0
        data = _cargs.load(buf, size, "kvm_write")
    try:
        return k.write(_cargs.c_int(addr, "addr") & ULONG, data)
    except KvmError:
        return -1


# ---------------------------------------------------------------------- nlist
def _entries(nl: Any, cls: type[ctypes.Structure], fn: str) -> Iterator[Any]:
    """``cls`` views of a C list's entries, up to (not including) its terminator.

    ``nl`` is a ctypes array, a pointer or ``byref()`` to the first entry, an address,
    or a Python list of structures.  Structures of the caller's own classes are fine
    as long as they have the C layout.
    """
    nl = _cargs.unwrap(nl)
    size = ctypes.sizeof(cls)
    if isinstance(nl, (list, tuple)):
        items: list[Any] = []
        for item in nl:
            if not isinstance(item, (ctypes.Structure, ctypes.Union)):
                raise TypeError(f"{fn}: list items must be ctypes structures")
            if ctypes.sizeof(item) < size:
                raise TypeError(f"{fn}: {type(item).__name__} is smaller than "
                                f"{cls.__name__}")
            items.append(cls.from_address(ctypes.addressof(item)))
        limit = len(items)

        def at(i: int) -> Any:
            return items[i]
    else:
        base = _cargs.address(nl, fn)
        if base is None:
            raise TypeError(f"{fn}: NULL list")
        known = _cargs.capacity(nl)
        limit = MAX_NLIST if known is None else known // size

        def at(i: int) -> Any:
            return cls.from_address(base + i * size)
    for i in range(limit):
        entry = at(i)
        if not entry.n_name:
            return
        yield entry


def _names(entries: list[Any]) -> list[bytes]:
    return [bytes(e.n_name) for e in entries]


def kvm_nlist(kd: Any, nl: Any) -> int:
    """``kvm_nlist``: fill an array of ``struct nlist`` (a.out) in place.

    Returns the number of names not found (libkvm's count), or -1: a dump of another
    architecture (``kvm_nlist of non-native vmcore``, list untouched) or an unreadable
    kernel symbol table.  ``n_other`` and ``n_desc`` of every counted entry become 0.
    """
    k = _kvm(kd, "kvm_nlist")
    entries = list(_entries(nl, Nlist, "kvm_nlist"))
    try:
        res = k.nlist(_names(entries))
    except NotNativeError:
        return -1
    for entry, found in zip(entries, res.entries, strict=False):
        entry.n_type = found.type
        entry.n_other = b"\0"
        entry.n_desc = 0
        entry.n_value = found.value & ULONG
    return res.missing


def kvm_nlist2(kd: Any, nl: Any) -> int:
    """``kvm_nlist2``: fill an array of ``struct kvm_nlist`` (only n_type, n_value)."""
    k = _kvm(kd, "kvm_nlist2")
    entries = list(_entries(nl, KvmNlist, "kvm_nlist2"))
    res = k.nlist2(_names(entries))
    for entry, found in zip(entries, res.entries, strict=False):
        entry.n_type = found.type
        entry.n_value = found.value
    return res.missing


# ------------------------------------------------------------------ walk_pages
def _closure_arg(closure: Any) -> Any:
    """The ``void *`` C hands back to the callback: an address, None, or ``closure``."""
    try:
        return _cargs.address(closure, "closure")
    except TypeError:
        return closure


def _page_arg(cb: Any, page: ctypes.Structure) -> Any:
    """``struct kvm_page *`` in the form the callback's first parameter is declared."""
    argtypes: Sequence[Any] = getattr(cb, "argtypes", None) or ()
    if argtypes:
        first = argtypes[0]
        target: Any = getattr(first, "_type_", None)
        if (isinstance(first, type) and issubclass(first, ctypes._Pointer)
                and hasattr(target, "from_buffer") and target is not type(page)):
            return ctypes.pointer(target.from_buffer(page))
        if first is ctypes.c_void_p:
            return ctypes.addressof(page)
    return ctypes.pointer(page)


def _fill_page(p: pykvm.KvmPage) -> ctypes.Structure:
    page = KvmPage()
    page.kp_version = p.version
    page.kp_paddr = p.paddr
    page.kp_kmap_vaddr = p.kmap_vaddr
    page.kp_dmap_vaddr = p.dmap_vaddr
    page.kp_prot = p.prot
    page.kp_offset = p.offset
    page.kp_len = p.len
    return page


def kvm_walk_pages(kd: Any, cb: Any, closure: Any) -> int:
    """``kvm_walk_pages``: call ``cb(struct kvm_page *, closure)`` for every page.

    ``cb`` is a ctypes ``CFUNCTYPE(c_int, POINTER(KvmPage), c_void_p)`` (any pointer
    type of the same layout will do) or a Python callable, which receives
    ``ctypes.pointer(KvmPage)`` and ``closure`` unchanged.  A zero return stops the
    walk.  Returns 1 after a complete walk, 0 when stopped or when the format has no
    walker (ELF full dumps).
    """
    k = _kvm(kd, "kvm_walk_pages")
    cb = _cargs.unwrap(cb)
    if cb is None or (isinstance(cb, CFuncPtr) and not cb):
        raise TypeError("kvm_walk_pages: NULL callback")
    call: Callable[[pykvm.KvmPage], int]
    if isinstance(cb, CFuncPtr):
        arg = _closure_arg(closure)

        def call(p: pykvm.KvmPage) -> int:
            page = _fill_page(p)
            return int(cb(_page_arg(cb, page), arg) or 0)
    elif callable(cb):
        def call(p: pykvm.KvmPage) -> int:
            return 1 if cb(ctypes.pointer(_fill_page(p)), closure) else 0
    else:
        raise TypeError(f"kvm_walk_pages: expected a function, got {type(cb).__name__}")
    return k.walk_pages_cb(call)


# --------------------------------------------------------- kernel-data calls
#: calls of kvm.h the drop-in implements
IMPLEMENTED: frozenset[str] = frozenset({
    "kvm_close", "kvm_counter_u64_fetch", "kvm_dpcpu_setcpu", "kvm_getargv",
    "kvm_getcptime", "kvm_getenvv", "kvm_geterr", "kvm_getloadavg", "kvm_getmaxcpu",
    "kvm_getncpus", "kvm_getpcpu", "kvm_getprocs", "kvm_getswapinfo", "kvm_kerndisp",
    "kvm_native", "kvm_nlist", "kvm_nlist2", "kvm_open", "kvm_open2", "kvm_openfiles",
    "kvm_read", "kvm_read2", "kvm_read_zpcpu", "kvm_walk_pages", "kvm_write",
})
#: calls of kvm.h that wait for pykvm's engine (none left; kept for callers that test it)
PENDING: frozenset[str] = frozenset()

# the kernel-data calls live in .kdata (it uses the helpers above)
from .kdata import (  # noqa: E402
    kvm_counter_u64_fetch,
    kvm_dpcpu_setcpu,
    kvm_getargv,
    kvm_getcptime,
    kvm_getenvv,
    kvm_getloadavg,
    kvm_getmaxcpu,
    kvm_getncpus,
    kvm_getpcpu,
    kvm_getprocs,
    kvm_getswapinfo,
    kvm_read_zpcpu,
)
