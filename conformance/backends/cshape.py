"""Calling libkvm the way a ctypes program does: shared by ``native`` and ``compat``.

The same code drives FreeBSD's ``libkvm.so.7`` (through :mod:`ctypes`) and pykvm's
drop-in package ``libkvm``, which promises to accept exactly what a ctypes program
passes: ``create_string_buffer`` error buffers, arrays of ``struct nlist`` /
``struct kvm_nlist`` filled in place, buffers for reads, ``CFUNCTYPE`` callbacks for
``kvm_walk_pages`` and the resolver of ``kvm_open2``.  Results are normalised into the
C-shaped observations of :mod:`conformance.engine`.
"""

from __future__ import annotations

import ctypes
from typing import Any

from ..engine import Obs, ResolvedStep, ResolverFn, errno_name
from .base import Session

ERRBUF_SIZE = 2048  # _POSIX2_LINE_MAX


class Nlist(ctypes.Structure):
    """``struct nlist`` (sys/sys/nlist_aout.h), native ABI."""

    _fields_ = [("n_name", ctypes.c_char_p), ("n_type", ctypes.c_ubyte),
                ("n_other", ctypes.c_char), ("n_desc", ctypes.c_short),
                ("n_value", ctypes.c_ulong)]


class KvmNlist(ctypes.Structure):
    """``struct kvm_nlist`` (lib/libkvm/kvm.h)."""

    _fields_ = [("n_name", ctypes.c_char_p), ("n_type", ctypes.c_ubyte),
                ("n_value", ctypes.c_uint64)]


class KvmPage(ctypes.Structure):
    """``struct kvm_page`` (lib/libkvm/kvm.h), version 2."""

    _fields_ = [("kp_version", ctypes.c_uint), ("kp_paddr", ctypes.c_uint64),
                ("kp_kmap_vaddr", ctypes.c_uint64), ("kp_dmap_vaddr", ctypes.c_uint64),
                ("kp_prot", ctypes.c_ubyte), ("kp_offset", ctypes.c_int64),
                ("kp_len", ctypes.c_size_t)]


class KvmSwap(ctypes.Structure):
    """``struct kvm_swap`` (lib/libkvm/kvm.h): 52 bytes on every architecture."""

    _fields_ = [("ksw_devname", ctypes.c_char * 32), ("ksw_used", ctypes.c_uint),
                ("ksw_total", ctypes.c_uint), ("ksw_flags", ctypes.c_int),
                ("ksw_reserved1", ctypes.c_uint), ("ksw_reserved2", ctypes.c_uint)]


#: ``sizeof(struct kinfo_proc)`` of the host (sys/<arch>/include/proc.h) and the offset of
#: ``ki_pid`` (two ints, then eight pointers: sys/sys/user.h)
_PTR = ctypes.sizeof(ctypes.c_void_p)
KINFO_PROC_SIZE = 1088 if _PTR == 8 else 816
KI_PID_OFFSET = 8 + 8 * _PTR


WALK_CB = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(KvmPage), ctypes.c_void_p)
RESOLVER = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_char_p, ctypes.POINTER(ctypes.c_uint64))


def _enc(s: str | None) -> bytes | None:
    return None if s is None else s.encode(errors="surrogateescape")


def _text(v: Any) -> str:
    """A C string result (bytes, str, ``c_char_p`` or a char array) as ``str``."""
    if v is None:
        return "<NULL>"
    if isinstance(v, ctypes.c_char_p):
        v = v.value
    if isinstance(v, ctypes.Array):
        v = bytes(v).split(b"\0", 1)[0]
    if isinstance(v, (bytes, bytearray)):
        return bytes(v).decode(errors="surrogateescape")
    return str(v)


def page_tuple(p: Any) -> list[int]:
    """A ``struct kvm_page`` (or a pointer to one) as the record list."""
    if hasattr(p, "contents"):
        p = p.contents
    return [int(p.kp_version), int(p.kp_paddr), int(p.kp_kmap_vaddr), int(p.kp_dmap_vaddr),
            int(p.kp_prot), int(p.kp_offset), int(p.kp_len)]


class CSession(Session):
    """Calls on a library object whose attributes are libkvm's C functions.

    ``lib`` is a ``ctypes.CDLL`` with argtypes set (native) or the ``libkvm`` module
    (compat); ``types`` supplies the ``Nlist``/``KvmNlist``/``KvmPage`` structures and the
    ``WALK_CB``/``RESOLVER`` callback types the library expects.
    """

    def __init__(self, lib: Any, types: Any, get_errno: Any, set_errno: Any = None,
                 c_err_hook: bool = True) -> None:
        self.lib = lib
        self.types = types
        self.get_errno = get_errno
        self.set_errno = set_errno or ctypes.set_errno
        #: libkvm's _kvm_err is printf-like (kd, program, fmt, ...); compat's takes a text
        self.c_err_hook = c_err_hook
        self.kd: Any = None
        self.open_ok = False
        self._keep: list[Any] = []  # C may keep pointers (errstr, resolver) until close

    def has_descriptor(self) -> bool:
        return self.open_ok

    def geterr(self) -> str:
        return _text(self.lib.kvm_geterr(self.kd))

    def cleanup(self) -> None:
        if self.open_ok:
            self.lib.kvm_close(self.kd)
            self.open_ok = False

    def _open(self, a: dict[str, Any]) -> Obs:
        lib = self.lib
        variant = a["variant"]
        exec_b, core_b, swap_b = _enc(a["exec"]), _enc(a["core"]), _enc(a["swap"])
        buf = ctypes.create_string_buffer(ERRBUF_SIZE)
        if a["errbuf"] == "sentinel":
            buf.value = b"sentinel"
        out = None if a["errbuf"] == "null" else buf
        if variant == "kvm_open":
            errstr = _enc(a["errstr"])
            self._keep.append(errstr)
            kd = lib.kvm_open(exec_b, core_b, swap_b, a["flags"], errstr)
        elif variant == "kvm_openfiles":
            kd = lib.kvm_openfiles(exec_b, core_b, swap_b, a["flags"], out)
        else:
            res = self.types.make_resolver(a["resolver"])
            self._keep.append(res)
            kd = lib.kvm_open2(exec_b, core_b, a["flags"], out, res)
        obs: Obs = {"ret": "NULL" if kd is None or kd == 0 else "descriptor"}
        if variant != "kvm_open":
            obs["errbuf"] = _text(buf)
        if obs["ret"] == "descriptor":
            self.kd, self.open_ok = kd, True
        return obs

    def call(self, step: ResolvedStep) -> Obs:
        lib = self.lib
        a = step.args
        c = step.call
        if c == "open":
            return self._open(a)
        if c == "close_null":
            self.set_errno(0)
            rc = lib.kvm_close(None)
            return {"ret": int(rc), "errno": errno_name(self.get_errno())}
        if c == "geterr_null":
            return {"ret": _text(lib.kvm_geterr(None))}
        if self.kd is None:
            return {"raised": "NoDescriptor: no descriptor was opened"}
        kd = self.kd
        if c == "close":
            self.set_errno(0)
            rc = int(lib.kvm_close(kd))
            was_open, self.open_ok = self.open_ok, False
            obs: Obs = {"ret": rc}
            if not was_open:
                obs["errno"] = errno_name(self.get_errno())
            return obs
        if c == "geterr":
            return {"ret": _text(lib.kvm_geterr(kd))}
        if c == "native":
            return {"ret": int(lib.kvm_native(kd))}
        if c == "kerndisp":
            return {"ret": int(lib.kvm_kerndisp(kd))}
        if c in ("read", "read2"):
            size = a["size"]
            buf = ctypes.create_string_buffer(max(size, 1))
            fn = lib.kvm_read if c == "read" else lib.kvm_read2
            rc = int(fn(kd, a["addr"], buf, size))
            return {"ret": rc, "data": buf.raw[: max(rc, 0)]}
        if c == "write":
            data = a["data"]
            buf = ctypes.create_string_buffer(data, max(len(data), 1))
            return {"ret": int(lib.kvm_write(kd, a["addr"], buf, len(data)))}
        if c in ("nlist", "nlist2"):
            struct_t = self.types.Nlist if c == "nlist" else self.types.KvmNlist
            names = a["names"]
            arr = (struct_t * (len(names) + 1))()
            encoded = [_enc(n) for n in names]
            for i, n in enumerate(encoded):
                arr[i].n_name = n
            rc = int((lib.kvm_nlist if c == "nlist" else lib.kvm_nlist2)(kd, arr))
            count = names.index("") if "" in names else len(names)  # the list's end
            return {"ret": rc,
                    "entries": [[int(arr[i].n_type), int(arr[i].n_value)]
                                for i in range(count)]}
        if c == "walk_pages":
            records: list[list[int]] = []
            stop = a["stop_after"]

            def visit(page: Any, closure: Any) -> int:
                records.append(page_tuple(page))
                return 0 if stop and len(records) >= stop else 1

            cb = self.types.WALK_CB(visit)
            rc = int(lib.kvm_walk_pages(kd, cb, None))
            return {"ret": rc, "records": records, "count": len(records)}
        if c == "err_hook":
            hook = getattr(lib, "_kvm_err", None)
            if hook is None:
                return {"raised": "NotAvailable: _kvm_err is not exported"}
            if self.c_err_hook:
                hook(kd, None, b"%s", a["text"].encode())
            else:
                hook(kd, None, a["text"].encode())
            return {}
        return self.kdata(c, a)

    def kdata(self, c: str, a: dict[str, Any]) -> Obs:
        """The kernel-data calls, made as a ctypes program makes them."""
        lib, kd = self.lib, self.kd
        if c == "getprocs":
            cnt = ctypes.c_int(-7)
            p = lib.kvm_getprocs(kd, a["op"], a["arg"], ctypes.byref(cnt))
            addr = ctypes.cast(p, ctypes.c_void_p).value if p is not None else None
            if not addr:
                return {"ret": "NULL", "count": cnt.value}
            size = self.types.kinfo_proc_size
            pids = [ctypes.c_int.from_address(addr + i * size + KI_PID_OFFSET).value
                    for i in range(cnt.value)]
            return {"ret": "array", "count": cnt.value, "values": pids}
        if c in ("getargv", "getenvv"):
            fn = lib.kvm_getargv if c == "getargv" else lib.kvm_getenvv
            argv = fn(kd, None, a["nchr"])
            return {"ret": "array" if argv else "NULL"}
        if c == "getloadavg":
            out = (ctypes.c_double * max(a["nelem"], 3))()
            rc = int(lib.kvm_getloadavg(kd, out, a["nelem"]))
            return {"ret": rc, "values": list(out[: max(rc, 0)])}
        if c == "getcptime":
            longs = (ctypes.c_long * 5)()
            rc = int(lib.kvm_getcptime(kd, longs))
            return {"ret": rc, "values": list(longs) if rc == 0 else []}
        if c == "getswapinfo":
            arr = (self.types.KvmSwap * max(a["max"], 1))()
            rc = int(lib.kvm_getswapinfo(kd, arr, a["max"], a["flags"]))
            rows = [[r.ksw_devname.decode(errors="surrogateescape"), int(r.ksw_used),
                     int(r.ksw_total), int(r.ksw_flags)] for r in list(arr)[: max(rc + 1, 0)]]
            return {"ret": rc, "values": rows}
        if c in ("getmaxcpu", "getncpus"):
            return {"ret": int(getattr(lib, "kvm_" + c)(kd))}
        if c == "getpcpu":
            p = lib.kvm_getpcpu(kd, a["cpu"])
            if not p:
                return {"ret": "NULL"}
            if p in (-1, ctypes.c_void_p(-1).value):
                return {"ret": "-1"}
            data = ctypes.string_at(p, a["size"])
            free = ctypes.CDLL(None).free
            free.argtypes = [ctypes.c_void_p]
            free(p)
            return {"ret": "buffer", "data": data}
        if c == "dpcpu_setcpu":
            return {"ret": int(lib.kvm_dpcpu_setcpu(kd, a["cpu"]))}
        if c == "read_zpcpu":
            buf = ctypes.create_string_buffer(max(a["size"], 1))
            rc = int(lib.kvm_read_zpcpu(kd, a["base"], buf, a["size"], a["cpu"]))
            return {"ret": rc, "data": buf.raw[: max(rc, 0)]}
        if c == "counter_u64_fetch":
            return {"ret": int(lib.kvm_counter_u64_fetch(kd, a["base"]))}
        raise ValueError(f"unknown call {c}")


class CTypes:
    """The structure and callback types one library uses (its own, or these)."""

    def __init__(self, module: Any = None) -> None:
        self.Nlist = getattr(module, "Nlist", Nlist)
        self.KvmNlist = getattr(module, "KvmNlist", KvmNlist)
        self.KvmPage = getattr(module, "KvmPage", KvmPage)
        self.WALK_CB = getattr(module, "WALK_PAGES_CB_T", None) or ctypes.CFUNCTYPE(
            ctypes.c_int, ctypes.POINTER(self.KvmPage), ctypes.c_void_p)
        self.RESOLVER = getattr(module, "RESOLVER_T", None) or RESOLVER
        self.KvmSwap = getattr(module, "KvmSwap", KvmSwap)
        kinfo = getattr(module, "KinfoProc", None)
        self.kinfo_proc_size = ctypes.sizeof(kinfo) if kinfo is not None else KINFO_PROC_SIZE

    def make_resolver(self, fn: ResolverFn | None) -> Any:
        """The resolver argument for kvm_open2: a ``RESOLVER`` callback or NULL."""
        if fn is None:
            return self.RESOLVER()

        def cb(name: bytes | None, addr: Any) -> int:
            value = fn((name or b"").decode(errors="surrogateescape"))
            if value is None:
                return -1
            addr[0] = value
            return 0

        return self.RESOLVER(cb)


def declare_libkvm(lib: Any, types: CTypes) -> None:
    """Set argtypes and restypes of a ``ctypes.CDLL("libkvm.so.7")`` (kvm.h)."""
    c = ctypes
    vp, cp, pc = c.c_void_p, c.c_char_p, c.POINTER(c.c_char)
    sigs: dict[str, tuple[list[Any], Any]] = {
        "kvm_open": ([cp, cp, cp, c.c_int, cp], vp),
        "kvm_openfiles": ([cp, cp, cp, c.c_int, pc], vp),
        "kvm_open2": ([cp, cp, c.c_int, pc, types.RESOLVER], vp),
        "kvm_close": ([vp], c.c_int),
        "kvm_geterr": ([vp], cp),
        "kvm_native": ([vp], c.c_int),
        "kvm_kerndisp": ([vp], c.c_int64),
        "kvm_read": ([vp, c.c_ulong, vp, c.c_size_t], c.c_ssize_t),
        "kvm_read2": ([vp, c.c_uint64, vp, c.c_size_t], c.c_ssize_t),
        "kvm_write": ([vp, c.c_ulong, vp, c.c_size_t], c.c_ssize_t),
        "kvm_nlist": ([vp, c.POINTER(types.Nlist)], c.c_int),
        "kvm_nlist2": ([vp, c.POINTER(types.KvmNlist)], c.c_int),
        "kvm_walk_pages": ([vp, types.WALK_CB, vp], c.c_int),
        "kvm_getprocs": ([vp, c.c_int, c.c_int, c.POINTER(c.c_int)], vp),
        "kvm_getargv": ([vp, vp, c.c_int], c.POINTER(cp)),
        "kvm_getenvv": ([vp, vp, c.c_int], c.POINTER(cp)),
        "kvm_getloadavg": ([vp, c.POINTER(c.c_double), c.c_int], c.c_int),
        "kvm_getcptime": ([vp, c.POINTER(c.c_long)], c.c_int),
        "kvm_getswapinfo": ([vp, c.POINTER(types.KvmSwap), c.c_int, c.c_int], c.c_int),
        "kvm_getmaxcpu": ([vp], c.c_int),
        "kvm_getncpus": ([vp], c.c_int),
        "kvm_getpcpu": ([vp, c.c_int], vp),
        "kvm_dpcpu_setcpu": ([vp, c.c_uint], c.c_int),
        "kvm_read_zpcpu": ([vp, c.c_ulong, vp, c.c_size_t, c.c_int], c.c_ssize_t),
        "kvm_counter_u64_fetch": ([vp, c.c_ulong], c.c_uint64),
    }
    for name, (argtypes, restype) in sigs.items():
        try:
            fn = getattr(lib, name)
        except AttributeError:  # an older libkvm (e.g. without kvm_getncpus)
            continue
        fn.argtypes = argtypes
        fn.restype = restype
    try:
        hook = lib._kvm_err
        hook.restype = None
    except AttributeError:
        pass
