"""mips dumps: placeholder backends (they claim nothing) until the reader lands."""

from __future__ import annotations

from .base import Backend


class MipsMinidump(Backend):
    """Not read yet: its probe (inherited) accepts nothing."""

    arch = "mips"
    fmt = "minidump"
