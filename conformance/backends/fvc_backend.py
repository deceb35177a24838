"""The ``fvc`` backend: libfbsdvmcore (Moritz Systems' portable libkvm fork) via ctypes.

Only when pointed to: ``PYKVM_FVC_LIB=/path/to/libfbsdvmcore.so``.  It has the calls of
api.md 15: ``fvc_open`` (from kvm_open2/kvm_openfiles with flags 0 and both paths given),
``fvc_read`` (kvm_read/kvm_read2), ``fvc_geterr``, ``fvc_close``, ``fvc_kerndisp`` and
``fvc_walk_pages``; cases using anything else are not applicable.  libfbsdvmcore is a
third-party fork with documented differences, so its failures are reported but do not
fail the run unless ``--strict-fvc`` is given.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Sequence
from typing import Any

from ..engine import Instance, Obs, ResolvedStep, ResolverFn, errno_name
from ..fixtures import Prepared
from .base import Backend, Session
from .cshape import ERRBUF_SIZE, KvmPage, _enc, _text, page_tuple

LIB_ENV = "PYKVM_FVC_LIB"
_CALLS = {"open", "close", "close_null", "geterr", "geterr_null", "read", "read2",
          "kerndisp", "walk_pages"}
FVC_RESOLVER = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_char_p,
                                ctypes.POINTER(ctypes.c_uint64), ctypes.c_void_p)
FVC_WALK_CB = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(KvmPage), ctypes.c_void_p)


def declare_fvc(lib: Any) -> None:
    """argtypes/restypes of fvc.h."""
    c = ctypes
    vp, cp = c.c_void_p, c.c_char_p
    sigs: dict[str, tuple[list[Any], Any]] = {
        "fvc_open": ([cp, cp, c.POINTER(c.c_char), FVC_RESOLVER, vp], vp),
        "fvc_close": ([vp], c.c_int),
        "fvc_geterr": ([vp], cp),
        "fvc_read": ([vp, c.c_uint64, vp, c.c_size_t], c.c_ssize_t),
        "fvc_kerndisp": ([vp], c.c_ssize_t),
        "fvc_walk_pages": ([vp, FVC_WALK_CB, vp], c.c_int),
    }
    for name, (argtypes, restype) in sigs.items():
        fn = getattr(lib, name)
        fn.argtypes = argtypes
        fn.restype = restype


class FvcSession(Session):
    """Calls on one ``fvc_t``."""

    def __init__(self, lib: Any) -> None:
        self.lib = lib
        self.kd: Any = None
        self.open_ok = False
        self._keep: list[Any] = []

    def has_descriptor(self) -> bool:
        return self.open_ok

    def geterr(self) -> str:
        return _text(self.lib.fvc_geterr(self.kd))

    def cleanup(self) -> None:
        if self.open_ok:
            self.lib.fvc_close(self.kd)
            self.open_ok = False

    def _resolver(self, fn: ResolverFn | None) -> Any:
        if fn is None:
            return FVC_RESOLVER()

        def cb(name: bytes | None, addr: Any, data: Any) -> int:
            value = fn((name or b"").decode(errors="surrogateescape"))
            if value is None:
                return -1
            addr[0] = value
            return 0

        res = FVC_RESOLVER(cb)
        self._keep.append(res)
        return res

    def call(self, step: ResolvedStep) -> Obs:
        lib = self.lib
        a = step.args
        c = step.call
        if c == "open":
            buf = ctypes.create_string_buffer(ERRBUF_SIZE)
            if a["errbuf"] == "sentinel":
                buf.value = b"sentinel"
            out = None if a["errbuf"] == "null" else buf
            kd = lib.fvc_open(_enc(a["exec"]), _enc(a["core"]), out,
                              self._resolver(a.get("resolver")), None)
            obs: Obs = {"ret": "NULL" if not kd else "descriptor", "errbuf": _text(buf)}
            if kd:
                self.kd, self.open_ok = kd, True
            return obs
        if c == "close_null":
            ctypes.set_errno(0)
            return {"ret": int(lib.fvc_close(None)), "errno": errno_name(ctypes.get_errno())}
        if c == "geterr_null":
            return {"ret": _text(lib.fvc_geterr(None))}
        if self.kd is None:
            return {"raised": "NoDescriptor: no descriptor was opened"}
        if c == "close":
            rc = int(lib.fvc_close(self.kd))
            self.open_ok = False
            return {"ret": rc}
        if c == "geterr":
            return {"ret": _text(lib.fvc_geterr(self.kd))}
        if c == "kerndisp":
            return {"ret": int(lib.fvc_kerndisp(self.kd))}
        if c in ("read", "read2"):
            size = a["size"]
            buf = ctypes.create_string_buffer(max(size, 1))
            rc = int(lib.fvc_read(self.kd, a["addr"], buf, size))
            return {"ret": rc, "data": buf.raw[: max(rc, 0)]}
        if c == "walk_pages":
            records: list[list[int]] = []
            stop = a["stop_after"]

            def visit(page: Any, closure: Any) -> int:
                records.append(page_tuple(page))
                return 0 if stop and len(records) >= stop else 1

            rc = int(lib.fvc_walk_pages(self.kd, FVC_WALK_CB(visit), None))
            return {"ret": rc, "records": records, "count": len(records)}
        raise ValueError(f"libfbsdvmcore has no {c}")


class FvcBackend(Backend):
    """libfbsdvmcore, for the calls it has (api.md 15)."""

    name = "fvc"
    isolate = True

    def __init__(self, strict: bool = False, lib: Any = None) -> None:
        """``lib``: an already loaded object with fvc.h's functions (for tests)."""
        self.must_pass = strict
        self._lib: Any = None
        self._why = ""
        if lib is not None:
            declare_fvc(lib)
            self._lib = lib

    def unavailable(self) -> str:
        if self._lib is not None:
            return ""
        path = os.environ.get(LIB_ENV)
        if not path:
            return f"set {LIB_ENV}=/path/to/libfbsdvmcore.so"
        if self._lib is None and not self._why:
            try:
                lib = ctypes.CDLL(path, use_errno=True)
                declare_fvc(lib)
                self._lib = lib
            except (OSError, AttributeError) as exc:
                self._why = f"cannot load {path}: {exc}"
        return self._why

    def unsupported(self, inst: Instance, steps: Sequence[ResolvedStep]) -> str:
        for s in steps:
            if s.call not in _CALLS:
                return f"libfbsdvmcore has no {s.call} (api.md 15)"
            if s.call == "open":
                a = s.args
                if a["variant"] == "kvm_open":
                    return "libfbsdvmcore has no kvm_open (stderr mode, api.md 15)"
                if a["flags"] != 0:
                    return "fvc_open takes no flags (api.md 15)"
                if a["exec"] is None or a["core"] is None:
                    return "fvc_open has no default files (api.md 15)"
        return ""

    def session(self, prep: Prepared) -> Session:
        return FvcSession(self._lib)
