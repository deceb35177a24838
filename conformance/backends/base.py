"""What every backend provides, the step loop they share, and crash isolation.

A backend executes the resolved steps of one instance and returns one C-shaped
observation per step (see :mod:`conformance.engine`).  Backends that call C through
ctypes run each instance in a forked child, so that a crash of the library (a NULL
dereference libkvm is allowed to make) becomes a reported result, not a dead suite.
"""

from __future__ import annotations

import io
import json
import os
import signal
import sys
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from ..engine import Instance, Obs, ResolvedStep
from ..fixtures import Prepared


@dataclass
class Execution:
    """What a backend did with an instance."""

    observations: list[Obs] = field(default_factory=list)
    #: set when the instance did not run (the text says why)
    not_run: str = ""
    #: set when the process running the instance died (e.g. ``signal 11 (SIGSEGV)``)
    crash: str = ""
    #: set when an instance does not apply to this backend (a call it lacks)
    not_applicable: str = ""
    #: set when a recorded fixture no longer matches what pykvm.synth builds
    drift: str = ""


class Session(ABC):
    """One descriptor's worth of calls, C-shaped."""

    @abstractmethod
    def call(self, step: ResolvedStep) -> Obs:
        """Perform one step and return its observation (without stderr/geterr)."""

    @abstractmethod
    def has_descriptor(self) -> bool:
        """Whether a descriptor is open (so kvm_geterr may be called)."""

    @abstractmethod
    def geterr(self) -> str:
        """kvm_geterr on the open descriptor."""

    @abstractmethod
    def cleanup(self) -> None:
        """Close whatever the steps left open."""


class Backend:
    """A way to run the calls: pykvm, the compat package, native libkvm, ..."""

    name = ""
    #: whether a failure of this backend makes ``run`` exit non-zero
    must_pass = True
    #: run every instance in a forked child (C libraries that may crash)
    isolate = False

    def unavailable(self) -> str:
        """Why this backend cannot run at all on this host ("" when it can)."""
        return ""

    def unsupported(self, inst: Instance, steps: Sequence[ResolvedStep]) -> str:
        """Why this instance does not apply to this backend ("" when it does)."""
        return ""

    def session(self, prep: Prepared) -> Session:
        """A fresh session (backends that execute steps themselves)."""
        raise TypeError(f"the {type(self).__name__} backend runs instances through "
                        "execute(), not through sessions")

    def execute(self, inst: Instance, prep: Prepared,
                steps: Sequence[ResolvedStep]) -> Execution:
        """Run the steps; the default runs a :class:`Session`, forked if :attr:`isolate`."""
        if self.isolate and hasattr(os, "fork"):
            return run_forked(lambda: run_steps(self.session(prep), steps))
        return Execution(run_steps(self.session(prep), steps))


@contextmanager
def capture_stderr() -> Iterator[list[str]]:
    """Capture what is written to file descriptor 2 and to ``sys.stderr``.

    C libraries print to the descriptor, Python code to ``sys.stderr`` (which a test
    runner may have replaced); both are collected, descriptor output first.
    """
    out: list[str] = []
    try:
        sys.stderr.flush()
    except (AttributeError, ValueError):
        pass
    pybuf = io.StringIO()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        old = sys.stderr
        sys.stderr = pybuf
        try:
            yield out
        finally:
            sys.stderr = old
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            out.append(tmp.read().decode(errors="surrogateescape") + pybuf.getvalue())


def run_steps(session: Session, steps: Sequence[ResolvedStep]) -> list[Obs]:
    """The step loop: each call with stderr captured, then kvm_geterr if a descriptor is open.

    An exception raised by a Python backend is observed as ``raised`` (its type name and
    text), not propagated: it is part of what the backend does.
    """
    observations: list[Obs] = []
    try:
        for step in steps:
            with capture_stderr() as cap:
                try:
                    obs = session.call(step)
                except Exception as exc:  # observed, compared like any other result
                    obs = {"raised": f"{type(exc).__name__}: {exc}"}
            obs["stderr"] = cap[0]
            if session.has_descriptor():
                try:
                    obs["geterr"] = session.geterr()
                except Exception as exc:  # pragma: no cover - defensive
                    obs["geterr_raised"] = f"{type(exc).__name__}: {exc}"
            observations.append(obs)
            if step.call == "open" and obs.get("ret") == "NULL":
                break  # no descriptor: the remaining calls cannot be made
    finally:
        session.cleanup()
    return observations


# ------------------------------------------------------------------ fork isolation
def obs_to_json(obs: Obs) -> dict[str, Any]:
    """An observation with bytes as ``{"hex": ...}`` (for the pipe from a child)."""
    return {k: ({"hex": v.hex()} if isinstance(v, (bytes, bytearray)) else v)
            for k, v in obs.items()}


def obs_from_json(d: dict[str, Any]) -> Obs:
    """Inverse of :func:`obs_to_json`."""
    return {k: (bytes.fromhex(v["hex"]) if isinstance(v, dict) and set(v) == {"hex"} else v)
            for k, v in d.items()}


def run_forked(fn: Any) -> Execution:
    """Run ``fn() -> list[Obs]`` in a child process; a crash is reported, not fatal."""
    rfd, wfd = os.pipe()
    sys.stdout.flush()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        os.close(rfd)
        code = 0
        try:
            obs = fn()
            payload = json.dumps([obs_to_json(o) for o in obs]).encode()
        except BaseException as exc:
            payload = json.dumps({"error": f"{type(exc).__name__}: {exc}"}).encode()
            code = 1
        with os.fdopen(wfd, "wb") as fh:
            fh.write(payload)
        os._exit(code)
    os.close(wfd)
    with os.fdopen(rfd, "rb") as fh:
        payload = fh.read()
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        return Execution(crash=f"signal {sig} ({signal.Signals(sig).name})")
    try:
        data = json.loads(payload.decode() or "null")
    except ValueError:
        return Execution(crash="the child process returned no result")
    if isinstance(data, dict):
        return Execution(crash=str(data.get("error", "child failed")))
    if not isinstance(data, list):
        return Execution(crash="the child process returned no result")
    return Execution([obs_from_json(o) for o in data])
