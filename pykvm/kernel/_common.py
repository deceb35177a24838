"""Helpers shared by the kernel-data calls: errors, symbols, scalar reads, per-handle caches."""

from __future__ import annotations

import functools
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast

from ..constants import ELFCLASS64
from ..errors import FaultError, KvmError, cformat

if TYPE_CHECKING:
    from ..image.layout import StructView
    from ..kvm import Kvm

_F = TypeVar("_F", bound=Callable[..., Any])


def honours_strict(fn: _F) -> _F:
    """Make a call strict when its descriptor was opened with ``strict=True``
    (:attr:`Kvm.strict`, what the compat layer asks for), whatever its own ``strict``
    argument says: the descriptor's switch covers every kernel-data call."""

    @functools.wraps(fn)
    def call(kd: Kvm | None, *args: Any, strict: bool = False, **kw: Any) -> Any:
        return fn(kd, *args, strict=strict or bool(kd is not None and kd.strict), **kw)

    return cast(_F, call)


_CACHES: weakref.WeakKeyDictionary[Kvm, dict[str, Any]] = weakref.WeakKeyDictionary()


def cache(kd: Kvm) -> dict[str, Any]:
    """The per-handle cache of these modules (libkvm keeps it process-wide)."""
    c = _CACHES.get(kd)
    if c is None:
        c = {}
        _CACHES[kd] = c
    return c


def fmt(text: str, *args: int | str) -> str:
    """:func:`cformat` that also expands ``%p`` as FreeBSD does (``0x`` + hex, ``0x0``)."""
    if "%p" not in text:
        return cformat(text, *args)
    parts = text.split("%p")
    out = []
    it = iter(args)
    for k, part in enumerate(parts):
        n = part.count("%") - 2 * part.count("%%")
        mine = tuple(next(it) for _ in range(n))
        out.append(cformat(part, *mine) if mine else part.replace("%%", "%"))
        if k + 1 < len(parts):
            out.append(f"0x{int(next(it)) & ((1 << 64) - 1):x}")
    return "".join(out)


def fail(kd: Kvm, text: str) -> KvmError:
    """Record ``text`` as libkvm's ``_kvm_err`` does; return the exception to raise."""
    kd.err(kd.program, text)
    return KvmError(text, tuple(getattr(kd, "_chain", ())))


def current_error(kd: Kvm, default: str) -> KvmError:
    """The error a failed lower-level call left behind (libkvm's -1 without its own text)."""
    text = kd.geterr() or default
    return KvmError(text, tuple(getattr(kd, "_chain", ())))


def byteorder(kd: Kvm) -> Literal["little", "big"]:
    """The dump's byte order (from the kernel's ELF header)."""
    return "little" if kd.kernel.ehdr.ei_data == 1 else "big"


def ptrsize(kd: Kvm) -> int:
    """The target's pointer (and ``long``) size."""
    return 8 if kd.kernel.ehdr.ei_class == ELFCLASS64 else 4


def arch(kd: Kvm) -> str:
    """The dump's architecture name (``amd64``, ``aarch64``...)."""
    b = kd.backend
    return b.arch if b is not None else ""


def read_int(kd: Kvm, addr: int, size: int, signed: bool = False) -> int | None:
    """A scalar at ``addr``: None when it cannot be read in full (a failed ``kvm_read``)."""
    try:
        data = kd.read2(addr, size)
    except KvmError:
        return None
    if len(data) != size:
        return None
    return int.from_bytes(data, byteorder(kd), signed=signed)


def read_bytes(kd: Kvm, addr: int, size: int) -> bytes | None:
    """``size`` bytes at ``addr`` or None (failure or short read)."""
    try:
        data = kd.read2(addr, size)
    except KvmError:
        return None
    return data if len(data) == size else None


def bare_read(kd: Kvm, addr: int, size: int) -> bytes:
    """A ``kvm_read`` whose result the caller ignores: what libkvm copied into the
    destination before it failed, i.e. the bytes up to the first page that does not
    translate (``b""`` when the first one does not)."""
    try:
        return kd.read2(addr, size)
    except FaultError as exc:
        n = (exc.address - addr) & ((1 << 64) - 1)
        if 0 < n < size:
            try:
                return kd.read2(addr, n)
            except KvmError:
                return b""
        return b""
    except KvmError:
        return b""


def struct_at(kd: Kvm, name: str, addr: int) -> StructView | None:
    """A structure read (``KREAD``): the whole ``struct name`` at ``addr``, or None when
    any byte of it is unreadable.  Missing type information still raises."""
    layout = kd.types.struct(name)
    try:
        return kd.types.view(layout, addr, kd)
    except KvmError:
        return None


def check_native(kd: Kvm, strict: bool, text: str) -> None:
    """The dump path's non-native refusal, in strict mode only (Appendix B row 1)."""
    if strict and not kd.native():
        raise fail(kd, text)
