"""The backends: pykvm, compat, native, fvc and golden (see README.md "Backends")."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .base import Backend


def make_backends(names: Sequence[str], golden_dir: Path | None = None,
                  strict_fvc: bool = False, golden_host: str = "") -> list[Backend]:
    """Instantiate backends by name, in the order given."""
    out: list[Backend] = []
    for name in names:
        if name == "pykvm":
            from .pykvm_backend import PykvmBackend

            out.append(PykvmBackend())
        elif name == "compat":
            from .compat_backend import CompatBackend

            out.append(CompatBackend())
        elif name == "native":
            from .native_backend import NativeBackend

            out.append(NativeBackend())
        elif name == "fvc":
            from .fvc_backend import FvcBackend

            out.append(FvcBackend(strict_fvc))
        elif name == "golden":
            from ..golden import GoldenSet
            from .golden_backend import GoldenBackend

            out.append(GoldenBackend(GoldenSet(golden_dir), golden_host))
        else:
            raise ValueError(f"unknown backend {name!r}")
    return out


__all__ = ["Backend", "make_backends"]
