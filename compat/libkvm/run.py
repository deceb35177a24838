"""Run an unmodified ctypes-over-libkvm program on any host.

``python -m libkvm.run prog.py args...`` (or ``-m package.module args...``) runs the
program with ctypes' loaders pointed at pykvm's emulation of libkvm:

* ``ctypes.util.find_library("kvm")`` returns ``"libkvm.so.7"``;
* ``ctypes.CDLL(name)``, ``ctypes.cdll.LoadLibrary(name)`` and ``ctypes.cdll.<name>``
  return an :class:`~libkvm.cdll.EmulatedLibkvm` when ``name`` is libkvm
  (``libkvm.so.7``, ``libkvm.so``, ``libkvm``, ``kvm``, any directory);
  every other library loads as usual.

The program sees the argv it was given (``sys.argv[0]`` is the script) and its own
directory first on ``sys.path``, as under ``python prog.py``; its exit status is the
command's.  With
``PYKVM_LIBKVM=native`` (or on FreeBSD, unless ``PYKVM_LIBKVM=emulated``) nothing is
replaced and the real libkvm is used.  :func:`patched` does the same replacement
for the duration of a ``with`` block.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import re
import runpy
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from .cdll import ENV, LIBKVM_SONAME, EmulatedLibkvm

__all__ = ["is_libkvm", "main", "patched"]

_NAME = re.compile(r"(lib)?kvm(\.so(\.\d+)*)?")
USAGE = "usage: python -m libkvm.run [-m module | script.py] [args ...]\n"


def is_libkvm(name: object) -> bool:
    """Whether a library name or path given to ctypes means libkvm."""
    if name is None:
        return False
    if isinstance(name, (str, bytes, os.PathLike)):
        base = os.path.basename(os.fsdecode(name))
        return _NAME.fullmatch(base) is not None
    return False


@contextmanager
def patched() -> Iterator[None]:
    """Make ctypes load pykvm's libkvm for the duration of the block (then restore)."""
    real_cdll = ctypes.CDLL
    real_loader = ctypes.cdll
    real_find = ctypes.util.find_library

    class CDLL(real_cdll):  # type: ignore[valid-type,misc]
        """``ctypes.CDLL`` that serves libkvm from pykvm."""

        def __new__(cls, name: Any, *args: Any, **kwargs: Any) -> Any:
            if is_libkvm(name):
                return EmulatedLibkvm(name, *args, **kwargs)
            return super().__new__(cls)

    def find_library(name: str) -> str | None:
        if name in ("kvm", "libkvm"):
            return LIBKVM_SONAME
        return real_find(name)

    ctypes.CDLL = CDLL  # type: ignore[misc]
    ctypes.cdll = ctypes.LibraryLoader(CDLL)
    ctypes.util.find_library = find_library
    try:
        yield
    finally:
        ctypes.CDLL = real_cdll  # type: ignore[misc]
        ctypes.cdll = real_loader
        ctypes.util.find_library = real_find


def _emulate() -> bool:
    choice = (os.environ.get(ENV) or "auto").strip().lower()
    if choice == "auto":
        return not sys.platform.startswith("freebsd")
    if choice in ("native", "emulated"):
        return choice == "emulated"
    raise SystemExit(f"{ENV}: expected native, emulated or auto, not {choice!r}")


def main(argv: Sequence[str] | None = None) -> int:
    """Run a script or module the way ``python`` would, with libkvm emulated."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        sys.stderr.write(USAGE)
        return 0 if args else 2
    if args[0] == "-m":
        if len(args) < 2:
            sys.stderr.write(USAGE)
            return 2
        module, rest = args[1], args[2:]
        sys.argv = [module, *rest]
        target, as_module = module, True
    else:
        script, rest = args[0], args[1:]
        sys.argv = [script, *rest]
        # python puts the script's directory first; the entries after it (where pykvm
        # and libkvm were found) stay, so that their lazy imports still work
        sys.path.insert(0, os.path.dirname(os.path.abspath(script)))
        target, as_module = script, False
    if _emulate():
        with patched():
            _run(target, as_module)
    else:
        _run(target, as_module)
    return 0


def _run(target: str, as_module: bool) -> None:
    if as_module:
        runpy.run_module(target, run_name="__main__", alter_sys=True)
    else:
        runpy.run_path(target, run_name="__main__")


if __name__ == "__main__":
    sys.exit(main())
