"""aarch64 dumps: placeholder backends (they claim nothing) until the reader lands."""

from __future__ import annotations

from .base import Backend


class Aarch64Minidump(Backend):
    """Not read yet: its probe (inherited) accepts nothing."""

    arch = "aarch64"
    fmt = "minidump"
