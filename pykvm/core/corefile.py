"""The core file as a byte source: a read-only mmap, or ``pread`` for devices.

libkvm keeps the corefile descriptor (``pmfd``) and ``pread``s from it; pykvm
maps regular files read-only once and slices the map, so nothing is ever read
whole and the file cannot be modified through pykvm.  Character devices other
than ``/dev/mem`` and ``/dev/null`` (``/dev/fwmem*``, ``/dev/zero``...) are
read with ``pread``.
"""

from __future__ import annotations

import mmap
import os
import stat


class CoreFile:
    """Read-only access to the bytes of a core file."""

    def __init__(self, path: str, fd: int) -> None:
        self.path = path
        self.fd = fd
        st = os.fstat(fd)
        self.regular = stat.S_ISREG(st.st_mode)
        self.size = st.st_size if self.regular else 0
        self.map: mmap.mmap | None = None
        if self.regular and self.size > 0:
            self.map = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)

    def pread(self, offset: int, size: int) -> bytes:
        """Up to ``size`` bytes at ``offset``; shorter at end of file, b"" past it."""
        if size <= 0 or offset < 0:
            return b""
        if self.map is not None:
            return self.map[offset:offset + size]
        if self.regular:
            return b""
        try:
            return os.pread(self.fd, size, offset)
        except OSError:
            return b""

    def close(self) -> None:
        """Drop the mapping (the descriptor is closed by the owner)."""
        if self.map is not None:
            self.map.close()
            self.map = None
