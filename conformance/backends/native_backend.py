"""The ``native`` backend: FreeBSD's libkvm through ctypes (FreeBSD hosts only).

Every instance runs in a forked child: libkvm may crash on inputs where C leaves the
behaviour undefined, and a crash is a result to report.  On any other host the backend
reports every case as "not run: needs FreeBSD", never as passed.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from typing import Any

from ..fixtures import Prepared, is_freebsd
from .base import Backend, Session
from .cshape import CSession, CTypes, declare_libkvm

#: the environment variable naming another libkvm shared object to load
LIB_ENV = "PYKVM_NATIVE_LIB"


def libkvm_path() -> str:
    """Where native libkvm is loaded from (``$PYKVM_NATIVE_LIB`` or the system's)."""
    return os.environ.get(LIB_ENV) or ctypes.util.find_library("kvm") or "libkvm.so.7"


class NativeBackend(Backend):
    """FreeBSD's libkvm (``libkvm.so.7``) called through ctypes."""

    name = "native"
    isolate = True

    def __init__(self, lib: Any = None, name: str = "native") -> None:
        """``lib``: an already loaded library object with ``kvm.h``'s functions (tests
        drive this backend's C path through compat's ``EmulatedLibkvm``; ``name`` then
        selects whose expectations apply)."""
        self.name = name
        self._lib: Any = None
        self._types = CTypes()
        self._why = ""
        if lib is not None:
            declare_libkvm(lib, self._types)
            self._lib = lib

    def unavailable(self) -> str:
        if self._lib is not None:
            return ""
        if not is_freebsd() and not os.environ.get(LIB_ENV):
            return "needs FreeBSD"
        if self._lib is None and not self._why:
            try:
                lib = ctypes.CDLL(libkvm_path(), use_errno=True)
                declare_libkvm(lib, self._types)
                self._lib = lib
            except (OSError, AttributeError) as exc:
                self._why = f"cannot load libkvm: {exc}"
        return self._why

    def session(self, prep: Prepared) -> Session:
        return CSession(self._lib, self._types, ctypes.get_errno)
