"""The ordered probe table: which backend claims a kernel and core.

Mirrors libkvm's ``kvm_arch`` linker set, visited in the ``SRCS`` order of
lib/libkvm/Makefile (api.md 4.7): aarch64 minidump, amd64 full, amd64
minidump, arm full, arm minidump, i386 full, i386 minidump, (mips minidump),
powerpc full, powerpc64 full (BE, LE), riscv minidump, powerpc64 minidump.
pykvm tries the powerpc64 minidump backend before the powerpc64 full-dump
ones whenever the core starts with ``minidump`` (formats.md 14 row 1).

Only the backends that exist are listed; the others join in their place as
they are written.
"""

from __future__ import annotations

from ..image.elf import Ehdr
from .amd64 import Amd64ElfCore, Amd64Minidump
from .base import Backend, KvmPage

#: Backends in libkvm's probe order.
PROBE_ORDER: tuple[type[Backend], ...] = (
    Amd64ElfCore,
    Amd64Minidump,
)


def select_backend(ehdr: Ehdr, is_minidump: bool) -> type[Backend] | None:
    """The first backend whose probe accepts the kernel and core (``_kvm_open``)."""
    for backend in PROBE_ORDER:
        if backend.probe(ehdr, is_minidump):
            return backend
    return None


__all__ = ["Backend", "KvmPage", "PROBE_ORDER", "select_backend"]
