"""Helpers of the drop-in's tests: where things are, and how to run a program."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
COMPAT = ROOT / "compat"
PROGRAMS = Path(__file__).resolve().parent / "programs"

try:  # an installed distribution provides libkvm; a checkout has it under compat/
    import libkvm  # noqa: F401
except ImportError:
    sys.path.insert(0, str(COMPAT))


def child_env(**extra: str) -> dict[str, str]:
    """Environment of a child Python that imports pykvm and libkvm from this checkout."""
    env = dict(os.environ)
    parts = [str(COMPAT), str(ROOT)]
    if env.get("PYTHONPATH"):
        parts.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(parts)
    env.pop("PYKVM_LIBKVM", None)
    env.update(extra)
    return env


def run_program(name: str, *args: object, cwd: Path, **env: str
                ) -> subprocess.CompletedProcess[str]:
    """``python -m libkvm.run tests/compat/programs/<name> args...`` in a subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "libkvm.run", str(PROGRAMS / name), *map(str, args)],
        cwd=cwd, env=child_env(**env), capture_output=True, text=True, timeout=120,
    )
