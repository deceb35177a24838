"""Fixtures of the drop-in's tests: ``libkvm`` importable, programs runnable."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from compat_helpers import run_program


@pytest.fixture
def run(tmp_path: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run a program of tests/compat/programs under ``python -m libkvm.run``."""
    def _run(name: str, *args: object, **env: str) -> subprocess.CompletedProcess[str]:
        return run_program(name, *args, cwd=tmp_path, **env)
    return _run
