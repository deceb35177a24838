"""powerpc dumps: placeholder backends (they claim nothing) until the reader lands."""

from __future__ import annotations

from .base import Backend


class PowerpcElfCore(Backend):
    """Not read yet: its probe (inherited) accepts nothing."""

    arch = "powerpc"
    fmt = "elf"
