"""i386 dumps: placeholder backends (they claim nothing) until the reader lands."""

from __future__ import annotations

from .base import Backend


class I386ElfCore(Backend):
    """Not read yet: its probe (inherited) accepts nothing."""

    arch = "i386"
    fmt = "elf"


class I386Minidump(Backend):
    """Not read yet: its probe (inherited) accepts nothing."""

    arch = "i386"
    fmt = "minidump"
