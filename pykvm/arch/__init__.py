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
from .aarch64 import Aarch64Minidump
from .amd64 import Amd64ElfCore, Amd64Minidump
from .arm import ArmElfCore, ArmMinidump
from .base import Backend, KvmPage
from .i386 import I386ElfCore, I386Minidump
from .mips import MipsMinidump
from .powerpc import PowerpcElfCore
from .powerpc64 import Powerpc64ElfCore, Powerpc64leElfCore, Powerpc64Minidump
from .riscv import RiscvMinidump

#: Backends in libkvm's probe order (the SRCS order of lib/libkvm/Makefile).
PROBE_ORDER: tuple[type[Backend], ...] = (
    Aarch64Minidump,
    Amd64ElfCore,
    Amd64Minidump,
    ArmElfCore,
    ArmMinidump,
    I386ElfCore,
    I386Minidump,
    MipsMinidump,
    PowerpcElfCore,
    Powerpc64ElfCore,
    Powerpc64leElfCore,
    RiscvMinidump,
    Powerpc64Minidump,
)


def select_backend(ehdr: Ehdr, is_minidump: bool) -> type[Backend] | None:
    """The first backend whose probe accepts the kernel and core (``_kvm_open``).

    pykvm's one departure from the linker-set order: a core that starts with
    ``minidump`` is offered to the powerpc64 minidump backend before the
    powerpc64 full-dump backends, whose probes do not exclude minidumps.
    """
    if is_minidump and Powerpc64Minidump.probe(ehdr, is_minidump):
        return Powerpc64Minidump
    for backend in PROBE_ORDER:
        if backend.probe(ehdr, is_minidump):
            return backend
    return None


__all__ = ["Backend", "KvmPage", "PROBE_ORDER", "select_backend"]
