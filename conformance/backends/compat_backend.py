"""The ``compat`` backend: pykvm's drop-in package ``libkvm`` (source in ``compat/``).

It is driven exactly like native libkvm (:mod:`.cshape`): C names, ``None`` for NULL,
-1/NULL returns, ``create_string_buffer`` error buffers, ctypes structure arrays filled
in place and ``CFUNCTYPE`` callbacks.  The emulation is used even on FreeBSD (the
environment variable ``PYKVM_LIBKVM=emulated`` is set for ``libkvm.load()``).
"""

from __future__ import annotations

import ctypes
import importlib
import os
import sys
from pathlib import Path
from typing import Any

from ..fixtures import Prepared
from .base import Backend, Session
from .cshape import CSession, CTypes

#: the functions the compat backend calls
FUNCTIONS = ("kvm_open", "kvm_openfiles", "kvm_open2", "kvm_close", "kvm_geterr",
             "kvm_native", "kvm_read", "kvm_read2", "kvm_write", "kvm_nlist", "kvm_nlist2",
             "kvm_kerndisp", "kvm_walk_pages")


#: the drop-in's source, used when no installed distribution provides ``libkvm``
COMPAT_SRC = Path(__file__).resolve().parents[2] / "compat"


def load_compat() -> tuple[Any, Any]:
    """``(library object, module)``: the module's own functions, else ``load()``'s."""
    try:
        module = importlib.import_module("libkvm")
    except ImportError:
        if not (COMPAT_SRC / "libkvm" / "__init__.py").is_file():
            raise
        sys.path.insert(0, str(COMPAT_SRC))
        module = importlib.import_module("libkvm")
    lib: Any = module
    if not all(hasattr(module, f) for f in FUNCTIONS) and hasattr(module, "load"):
        os.environ.setdefault("PYKVM_LIBKVM", "emulated")
        lib = module.load()
    missing = [f for f in FUNCTIONS if not hasattr(lib, f)]
    if missing:
        raise AttributeError(f"libkvm lacks {', '.join(missing)}")
    return lib, module


def _compat_errno(module: Any) -> tuple[Any, Any]:
    """The drop-in's errno accessors (``get_errno``/``set_errno``), else ctypes'."""
    get = getattr(module, "get_errno", None)
    put = getattr(module, "set_errno", None)
    if callable(get) and callable(put):
        return get, put
    return ctypes.get_errno, ctypes.set_errno


class CompatBackend(Backend):
    """``import libkvm`` (the emulation), called as a ctypes program calls libkvm."""

    name = "compat"

    def __init__(self) -> None:
        self._lib: Any = None
        self._module: Any = None
        self._why = ""

    def unavailable(self) -> str:
        if self._lib is None and not self._why:
            try:
                self._lib, self._module = load_compat()
            except ImportError as exc:
                self._why = f"the libkvm package (compat/) is not importable: {exc}"
            except AttributeError as exc:
                self._why = str(exc)
        return self._why

    def session(self, prep: Prepared) -> Session:
        get, put = _compat_errno(self._module)
        return CSession(self._lib, CTypes(self._module), get, put, c_err_hook=False)
