"""powerpc64 dumps: placeholder backends (they claim nothing) until the reader lands."""

from __future__ import annotations

from .base import Backend


class Powerpc64ElfCore(Backend):
    """Not read yet: its probe (inherited) accepts nothing."""

    arch = "powerpc64"
    fmt = "elf"


class Powerpc64leElfCore(Backend):
    """Not read yet: its probe (inherited) accepts nothing."""

    arch = "powerpc64"
    fmt = "elf"


class Powerpc64Minidump(Backend):
    """Not read yet: its probe (inherited) accepts nothing."""

    arch = "powerpc64"
    fmt = "minidump"
