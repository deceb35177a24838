"""What a C function sees of a Python argument: strings, addresses, buffers.

The drop-in's calls take both what a ctypes program passes to ``libkvm.so.7``
(``create_string_buffer`` arrays, ``c_char_p``, ``c_void_p``, ``byref()``,
``pointer()``, integer addresses) and plain Python values (``str``/``bytes``/
path-like paths, ``bytearray``/``memoryview`` buffers).  These helpers turn either
into the C view: a NUL-terminated string, a pointer value, or memory to fill or read.
Where the size of the memory is known (a ctypes object, a Python buffer) it is
checked; a bare address is trusted, as C trusts it.
"""

from __future__ import annotations

import ctypes
import os
from _ctypes import CFuncPtr
from typing import Any

U64 = (1 << 64) - 1

#: ctypes classes whose *value* is an address (as opposed to objects that own memory)
_POINTER_TYPES: Any = (
    ctypes.c_void_p, ctypes.c_char_p, ctypes.c_wchar_p, ctypes._Pointer, CFuncPtr,
)
#: ctypes classes that own memory (``addressof`` is their storage)
_STORAGE_TYPES: Any = (
    ctypes.Array, ctypes.Structure, ctypes.Union, ctypes._SimpleCData,
)
_CArgObject: Any = type(ctypes.byref(ctypes.c_int()))


def unwrap(obj: Any) -> Any:
    """Follow ``_as_parameter_`` the way ctypes does for arguments."""
    seen = 0
    while hasattr(obj, "_as_parameter_") and seen < 8:
        obj = obj._as_parameter_
        seen += 1
    return obj


def is_null(obj: Any) -> bool:
    """Whether ``obj`` is a C NULL pointer (None, 0, a NULL ``c_void_p``/pointer)."""
    obj = unwrap(obj)
    if obj is None:
        return True
    if isinstance(obj, bool):
        return False
    if isinstance(obj, int):
        return obj == 0
    if isinstance(obj, _POINTER_TYPES):
        return not ctypes.cast(obj, ctypes.c_void_p).value
    return False


def address(obj: Any, what: str = "pointer") -> int | None:
    """The pointer value C would receive for ``obj``: an int, or None for NULL.

    Raises TypeError for something that is not a pointer or memory (a ``str``,
    a ``bytearray``, a float ...).
    """
    obj = unwrap(obj)
    if obj is None:
        return None
    if isinstance(obj, int) and not isinstance(obj, bool):
        return (obj & U64) or None
    if isinstance(obj, _POINTER_TYPES):
        return ctypes.cast(obj, ctypes.c_void_p).value or None
    if isinstance(obj, _STORAGE_TYPES):
        return ctypes.addressof(obj)
    if isinstance(obj, _CArgObject):
        return ctypes.cast(obj, ctypes.c_void_p).value or None
    raise TypeError(f"{what}: cannot pass {type(obj).__name__} as a C pointer")


def c_string(obj: Any, what: str = "string") -> bytes | None:
    """The ``const char *`` C would read: bytes up to the first NUL, None for NULL."""
    obj = unwrap(obj)
    if obj is None:
        return None
    if isinstance(obj, str):
        data = os.fsencode(obj)
    elif isinstance(obj, os.PathLike):
        data = os.fsencode(obj)
    elif isinstance(obj, (bytes, bytearray, memoryview)):
        data = bytes(obj)
    elif isinstance(obj, ctypes.c_char_p):
        value = obj.value
        return None if value is None else value
    elif isinstance(obj, ctypes.Array) and obj._type_ is ctypes.c_char:
        return bytes(obj.value)
    else:
        addr = address(obj, what)
        if addr is None:
            return None
        return ctypes.string_at(addr)
    return data.split(b"\0", 1)[0]


def c_int(obj: Any, what: str = "int") -> int:
    """An integer argument (a Python int or a ctypes integer instance)."""
    obj = unwrap(obj)
    if isinstance(obj, ctypes._SimpleCData) and isinstance(obj.value, int):
        return int(obj.value)
    if isinstance(obj, int):
        return int(obj)
    raise TypeError(f"{what}: expected an integer, got {type(obj).__name__}")


def _ctypes_capacity(obj: Any, addr: int) -> int | None:
    """Bytes of memory known to lie at ``addr`` inside a ctypes object, or None."""
    if isinstance(obj, _STORAGE_TYPES) and not isinstance(obj, _POINTER_TYPES):
        return ctypes.sizeof(obj)
    if isinstance(obj, _CArgObject):
        target = getattr(obj, "_obj", None)
        if isinstance(target, _STORAGE_TYPES) and not isinstance(target, _POINTER_TYPES):
            return ctypes.sizeof(target) - (addr - ctypes.addressof(target))
    return None


def _python_buffer(obj: Any) -> memoryview | None:
    """A byte view of a Python buffer object that is not a ctypes object, else None."""
    if obj is None or isinstance(obj, (*_POINTER_TYPES, *_STORAGE_TYPES, _CArgObject, int, str)):
        return None
    try:
        view = memoryview(obj)
    except TypeError:
        return None
    return view.cast("B") if view.format != "B" or view.ndim != 1 else view


def store(obj: Any, data: bytes, what: str = "buffer") -> None:
    """Copy ``data`` to the start of the memory ``obj`` stands for (``memcpy``).

    Raises TypeError for NULL, read-only objects and non-memory; ValueError when the
    memory is known to be smaller than ``data``.
    """
    obj = unwrap(obj)
    if not data and obj is not None:
        return
    view = _python_buffer(obj)
    if view is not None:
        if view.readonly:
            raise TypeError(f"{what}: {type(obj).__name__} is read-only")
        if len(view) < len(data):
            raise ValueError(f"{what}: {len(view)} bytes, {len(data)} needed")
        view[:len(data)] = data
        return
    if isinstance(obj, ctypes.c_char_p) and isinstance(obj._objects, bytes):
        raise TypeError(f"{what}: c_char_p points into an immutable bytes object; "
                        "use ctypes.create_string_buffer")
    addr = address(obj, what)
    if addr is None:
        raise TypeError(f"{what}: NULL pointer")
    cap = _ctypes_capacity(obj, addr)
    if cap is not None and cap < len(data):
        raise ValueError(f"{what}: {cap} bytes, {len(data)} needed")
    ctypes.memmove(addr, data, len(data))


def capacity(obj: Any) -> int | None:
    """Bytes known to be writable at ``obj`` (None: unknown, a bare address)."""
    obj = unwrap(obj)
    view = _python_buffer(obj)
    if view is not None:
        return len(view)
    addr = address(obj)
    if addr is None:
        return 0
    return _ctypes_capacity(obj, addr)


def load(obj: Any, size: int, what: str = "buffer") -> bytes:
    """The ``size`` bytes C would read at ``obj`` (a ``const void *`` argument)."""
    obj = unwrap(obj)
    if size <= 0:
        return b""
    if isinstance(obj, bytes):
        view: memoryview | None = memoryview(obj)
    else:
        view = _python_buffer(obj)
    if view is not None:
        if len(view) < size:
            raise ValueError(f"{what}: {len(view)} bytes, {size} needed")
        return bytes(view[:size])
    addr = address(obj, what)
    if addr is None:
        raise TypeError(f"{what}: NULL pointer")
    cap = _ctypes_capacity(obj, addr)
    if cap is not None and cap < size:
        raise ValueError(f"{what}: {cap} bytes, {size} needed")
    return ctypes.string_at(addr, size)


def strlcpy(obj: Any, text: bytes, size: int) -> None:
    """``strlcpy(obj, text, size)``: at most ``size - 1`` bytes and a NUL.

    The limit is lowered to the memory's known size, so a small Python or ctypes
    buffer receives a truncated, still NUL-terminated text instead of an overflow.
    """
    cap = capacity(obj)
    if cap is not None:
        size = min(size, cap)
    if size <= 0:
        return
    store(obj, text[:size - 1] + b"\0", "errbuf")
