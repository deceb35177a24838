"""arm dumps: placeholder backends (they claim nothing) until the reader lands."""

from __future__ import annotations

from .base import Backend


class ArmElfCore(Backend):
    """Not read yet: its probe (inherited) accepts nothing."""

    arch = "arm"
    fmt = "elf"


class ArmMinidump(Backend):
    """Not read yet: its probe (inherited) accepts nothing."""

    arch = "arm"
    fmt = "minidump"
