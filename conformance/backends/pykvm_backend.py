"""The ``pykvm`` backend: pykvm's Python API, its results put back into C shapes.

Where libkvm returns -1 or NULL, pykvm raises :class:`pykvm.KvmError` (or a subclass)
whose text is libkvm's; this backend turns that back into ``ret = -1`` / ``"NULL"`` and
the caller's error buffer, so that both are checked against the same expectations.
``kvm_close(NULL)`` and ``kvm_geterr(NULL)`` have no Python form: not applicable.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..engine import Instance, Obs, ResolvedStep
from ..fixtures import Prepared
from ..model import KDATA_CALLS
from .base import Backend, Session

ERRBUF_SIZE = 2048  # _POSIX2_LINE_MAX
_NO_PYTHON_FORM = {"close_null": "kvm_close(NULL) has no form in the Python API",
                   "geterr_null": "kvm_geterr(NULL) has no form in the Python API"}


class PykvmSession(Session):
    """Calls on one :class:`pykvm.Kvm`."""

    def __init__(self) -> None:
        self.kd: Any = None
        self.open_ok = False

    def has_descriptor(self) -> bool:
        return self.open_ok

    def geterr(self) -> str:
        return str(self.kd.geterr())

    def cleanup(self) -> None:
        if self.open_ok:
            self.kd.close()
            self.open_ok = False

    def _open(self, a: dict[str, Any]) -> Obs:
        import pykvm

        variant = a["variant"]
        try:
            if variant == "kvm_open":
                kd = pykvm.open(a["exec"], a["core"], a["swap"], a["flags"], a["errstr"])
            elif variant == "kvm_openfiles":
                kd = pykvm.openfiles(a["exec"], a["core"], a["swap"], a["flags"])
            else:
                kd = pykvm.open2(a["exec"], a["core"], a["flags"], a["resolver"])
        except pykvm.KvmError as exc:
            obs: Obs = {"ret": "NULL"}
            if variant != "kvm_open":
                # the caller's buffer: strlcpy(errout, errbuf, _POSIX2_LINE_MAX)
                text = str(exc).encode(errors="surrogateescape")[: ERRBUF_SIZE - 1].decode(
                    errors="surrogateescape")
                obs["errbuf"] = "" if a["errbuf"] == "null" else text
            return obs
        self.kd, self.open_ok = kd, True
        obs = {"ret": "descriptor"}
        if variant != "kvm_open":
            obs["errbuf"] = "sentinel" if a["errbuf"] == "sentinel" else ""
        return obs

    def call(self, step: ResolvedStep) -> Obs:
        import pykvm

        a = step.args
        c = step.call
        if c == "open":
            return self._open(a)
        if self.kd is None:
            return {"raised": "NoDescriptor: no descriptor was opened"}
        kd = self.kd
        if c == "close":
            rc = kd.close()
            self.open_ok = False
            return {"ret": rc}
        if c == "geterr":
            return {"ret": kd.geterr()}
        if c == "native":
            return {"ret": int(kd.native())}
        if c == "kerndisp":
            return {"ret": int(kd.kerndisp())}
        if c in ("read", "read2"):
            fn = kd.read if c == "read" else kd.read2
            try:
                data = fn(a["addr"], a["size"])
            except pykvm.FaultError:
                return {"ret": -1}
            return {"ret": len(data), "data": bytes(data)}
        if c == "write":
            try:
                return {"ret": int(kd.write(a["addr"], a["data"]))}
            except pykvm.KvmError:
                return {"ret": -1}
        if c in ("nlist", "nlist2"):
            names = a["names"]
            try:
                res = (kd.nlist if c == "nlist" else kd.nlist2)(names)
            except pykvm.NotNativeError:
                return {"ret": -1, "entries": [[0, 0] for _ in names]}
            return {"ret": res.missing, "entries": [[e.type, e.value] for e in res.entries]}
        if c == "walk_pages":
            records: list[list[int]] = []
            stop = a["stop_after"]

            def cb(p: Any) -> int:
                records.append([p.version, p.paddr, p.kmap_vaddr, p.dmap_vaddr, p.prot,
                                p.offset, p.len])
                return 0 if stop and len(records) >= stop else 1

            rc = kd.walk_pages_cb(cb)
            return {"ret": rc, "records": records, "count": len(records)}
        if c == "err_hook":
            from pykvm.kvm import _kvm_err

            _kvm_err(kd, None, a["text"])
            return {}
        if c in KDATA_CALLS:
            return kdata_call(kd, c, a)
        raise ValueError(f"unknown call {c}")


def kdata_call(kd: Any, c: str, a: dict[str, Any]) -> Obs:
    """A kernel-data call through :mod:`pykvm.kernel` in strict mode (libkvm's results),
    its exceptions put back into libkvm's returns (kernel-data.md 0.3)."""
    from pykvm import KvmError
    from pykvm.kernel import cptime, loadavg, pcpu, procs, swap

    try:
        if c == "getprocs":
            recs = procs.getprocs(kd, a["op"], a["arg"], strict=True)
            if not recs:
                return {"ret": "NULL", "count": 0}
            return {"ret": "array", "count": len(recs), "values": [r.pid for r in recs]}
        if c in ("getargv", "getenvv"):
            fn = procs.getargv if c == "getargv" else procs.getenvv
            fn(kd, procs.KinfoProc(), a["nchr"])
            return {"ret": "array"}  # pragma: no cover - dumps have no user space
        if c == "getloadavg":
            vals = loadavg.getloadavg(kd, a["nelem"], strict=True)
            return {"ret": a["nelem"] if a["nelem"] < 0 else len(vals), "values": vals}
        if c == "getcptime":
            return {"ret": 0, "values": cptime.getcptime(kd, strict=True)}
        if c == "getswapinfo":
            rows = swap.getswapinfo(kd, a["max"], a["flags"], strict=True)
            if not rows:
                return {"ret": a["max"] - 1, "values": []}
            return {"ret": len(rows) - 1,
                    "values": [[r.devname, r.used, r.total, r.flags] for r in rows]}
        if c == "getmaxcpu":
            return {"ret": pcpu.getmaxcpu(kd, strict=True)}
        if c == "getncpus":
            return {"ret": pcpu.getncpus(kd, strict=True)}
        if c == "getpcpu":
            data = pcpu.getpcpu(kd, a["cpu"], strict=True)
            if data is None:
                return {"ret": "NULL"}
            return {"ret": "buffer", "data": bytes(data[: a["size"]])}
        if c == "dpcpu_setcpu":
            return {"ret": pcpu.dpcpu_setcpu(kd, a["cpu"] & 0xFFFFFFFF)}
        if c == "read_zpcpu":
            data = pcpu.read_zpcpu(kd, a["base"], a["size"], a["cpu"], strict=True)
            return {"ret": len(data), "data": bytes(data)}
        if c == "counter_u64_fetch":
            return {"ret": pcpu.counter_u64_fetch(kd, a["base"], strict=True)}
    except KvmError:
        if c == "getprocs":
            return {"ret": "NULL"}
        if c in ("getargv", "getenvv"):
            return {"ret": "NULL"}
        return {"ret": "-1" if c == "getpcpu" else -1}
    raise ValueError(f"unknown call {c}")


class PykvmBackend(Backend):
    """pykvm's Python API (``import pykvm``)."""

    name = "pykvm"

    def unsupported(self, inst: Instance, steps: Sequence[ResolvedStep]) -> str:
        for s in steps:
            if s.call in _NO_PYTHON_FORM:
                return _NO_PYTHON_FORM[s.call]
        return ""

    def session(self, prep: Prepared) -> Session:
        return PykvmSession()
