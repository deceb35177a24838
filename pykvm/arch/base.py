"""What every architecture backend provides, and what it may ask of the descriptor.

Mirrors ``struct kvm_arch`` (lib/libkvm/kvm_private.h): ``ka_probe``,
``ka_initvtop``, ``ka_kvatop``, ``ka_native``, ``ka_walk_pages`` and
``ka_kerndisp``.  A backend never imports the descriptor; it talks to it
through :class:`KdContext`.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple, Protocol

from ..core.corefile import CoreFile
from ..core.minidump import SparsePages
from ..image.elf import Ehdr, KernelImage


@dataclass(frozen=True)
class KvmPage:
    """``struct kvm_page`` as kvm_walk_pages hands it to its callback (kvm.h)."""

    version: int
    paddr: int
    kmap_vaddr: int
    dmap_vaddr: int
    prot: int
    offset: int
    len: int


class KdContext(Protocol):
    """The descriptor as a backend sees it (the fields of ``struct __kvm`` it uses)."""

    program: str | None
    core: CoreFile
    kernel: KernelImage
    rawdump: bool

    def err(self, program: str | None, text: str) -> None:
        """``_kvm_err``: print ``program: text`` or store ``text``."""

    def syserr(self, program: str | None, text: str, errnum: int) -> None:
        """``_kvm_syserr``: as :meth:`err` with ``: strerror(errnum)`` appended."""

    def nlist2_values(self, names: Sequence[str]) -> tuple[int, list[int]]:
        """``kvm_nlist2`` on a throw-away list: (libkvm's count, values)."""
        ...

    def read_bootstrap(self, addr: int, size: int) -> bytes | None:
        """``kvm_read2`` while the backend initialises; None where it returns -1."""
        ...


class HeaderField(NamedTuple):
    """One field of an on-disk header: name, byte offset, struct code."""

    name: str
    offset: int
    code: str


class HeaderLayout:
    """A fixed header layout, compiled once to a :class:`struct.Struct` per byte order."""

    def __init__(self, fields: Sequence[HeaderField], size: int) -> None:
        self.fields = tuple(fields)
        self.size = size
        parts = []
        pos = 0
        for f in self.fields:
            if f.offset < pos:
                raise ValueError(f"overlapping field {f.name}")
            if f.offset > pos:
                parts.append(f"{f.offset - pos}x")
            parts.append(f.code)
            pos = f.offset + struct.calcsize("<" + f.code)
        if size > pos:
            parts.append(f"{size - pos}x")
        body = "".join(parts)
        self._structs = {e: struct.Struct(e + body) for e in "<>"}

    def unpack(self, data: bytes, endian: str = "<") -> dict[str, Any]:
        """Decode ``data`` (at least :attr:`size` bytes) into a field dict."""
        values = self._structs[endian].unpack_from(data, 0)
        return dict(zip((f.name for f in self.fields), values, strict=True))


class Backend:
    """Base of every dump backend.  Subclasses set the class attributes and methods."""

    arch: ClassVar[str] = ""
    fmt: ClassVar[str] = ""
    page_size: int = 4096

    def __init__(self, kd: KdContext) -> None:
        self.kd = kd

    @classmethod
    def probe(cls, ehdr: Ehdr, is_minidump: bool) -> bool:
        """``ka_probe``: does this backend claim the kernel and core?  (Each backend says.)"""
        return False

    def native(self) -> bool:
        """``ka_native``: the dump's machine equals the host's."""
        return False

    def initvtop(self) -> None:
        """``ka_initvtop``: read headers; raise FormatError with libkvm's text."""

    def kvatop(self, va: int) -> tuple[int, int]:
        """``ka_kvatop``: (file offset, bytes available there); (0, 0) on failure."""
        return 0, 0

    def walk_pages(self) -> Iterator[KvmPage] | None:
        """``ka_walk_pages``: the records, or None when the backend has no walker.

        A generator that stops early as libkvm's walker does (returning 0) ends
        with ``return False``.
        """
        return None

    def kerndisp(self) -> int:
        """``ka_kerndisp``: the kernel displacement (0 where libkvm has none)."""
        return 0

    def version(self) -> int | None:
        """Minidump header version, None for full dumps."""
        return None

    def dumped_pages(self) -> int:
        """Number of pages of memory the core holds."""
        return 0

    def msgbuf(self) -> bytes:
        """The message-buffer section of a minidump (b"" for other formats)."""
        return b""

    def cacheable(self) -> bool:
        """Whether successful translations may be cached per page after initialisation.

        False when one page could translate two ways (segments meeting inside a
        page, unaligned relocations).
        """
        return True


class MinidumpBackend(Backend):
    """What every minidump reader shares: the header version it accepted, the pages its
    bitmap marks and the message buffer, which ``minidumpsys`` writes right after the
    header page (``header_page_size`` bytes; the dump's page size)."""

    header_page_size: int = 4096
    _version: int | None = None
    pages: SparsePages
    msgbufsize: int = 0

    def version(self) -> int | None:
        """The minidump header version."""
        return self._version

    def dumped_pages(self) -> int:
        """Bits set in the dump bitmap."""
        return self.pages.npages

    def msgbuf(self) -> bytes:
        """The ``msgbufsize`` bytes after the header page."""
        return self.kd.core.pread(self.header_page_size, self.msgbufsize)
