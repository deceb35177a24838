"""riscv dumps: placeholder backends (they claim nothing) until the reader lands."""

from __future__ import annotations

from .base import Backend


class RiscvMinidump(Backend):
    """Not read yet: its probe (inherited) accepts nothing."""

    arch = "riscv"
    fmt = "minidump"
