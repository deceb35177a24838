"""powerpc (32-bit): "virtual" ELF full dumps.

Mirrors lib/libkvm/kvm_powerpc.c (``valid_elf_header``, ``dump_header_size``,
``powerpc_maphdrs``, ``powerpc_va2off``, ``_powerpc_probe``,
``_powerpc_initvtop``, ``_powerpc_kvatop``, ``_powerpc_native``); formats.md
section 10.  The reader itself, :class:`VirtualElfCore`, is shared with the
powerpc64 full-dump backends of kvm_powerpc64.c, which is the same code with
ELF64 structures read in the kernel's byte order (formats.md 11.6).

The 32-bit powerpc kernel writes an ELF core whose ``PT_LOAD`` headers name
*kernel virtual* ranges (``p_vaddr`` = VA, ``p_paddr`` = all-ones).  The core
may start with the 512-byte ``struct kerneldumpheader`` when it did not pass
through savecore(8); all ELF offsets are then relative to that header's end.

pykvm departures (formats.md 14): a segment's end is computed without the
32/64-bit wrap-around of libkvm's ``p_vaddr + p_memsz`` (a segment ending at
the top of the address space still translates), and the contiguous length is
returned as is rather than truncated to a C ``int``.
"""

from __future__ import annotations

import sys
from typing import ClassVar

from .. import errors as E
from ..constants import (
    ELFCLASS32,
    ELFDATA2MSB,
    ELFOSABI_STANDALONE,
    EM_PPC,
    ET_CORE,
    ET_DYN,
    EV_CURRENT,
    PT_LOAD,
)
from ..errors import FormatError
from ..image.elf import Ehdr, host_machine
from .base import Backend, HeaderField, HeaderLayout

PAGE_SIZE = 4096
ELF_MAGIC = b"\x7fELF"

#: ``struct kerneldumpheader`` (sys/sys/kerneldump.h): only the fields libkvm tests.
KERNELDUMPHEADER = HeaderLayout([
    HeaderField("magic", 0, "20s"),
    HeaderField("architecture", 20, "12s"),
], 512)
KERNELDUMPMAGIC = b"FreeBSD Kernel Dump"

#: Elf32_Ehdr as ``valid_elf_header`` and ``powerpc_maphdrs`` read it.
ELF32_EHDR = HeaderLayout([
    HeaderField("ident", 0, "16s"),
    HeaderField("e_type", 16, "H"),
    HeaderField("e_machine", 18, "H"),
    HeaderField("e_phoff", 28, "I"),
    HeaderField("e_phentsize", 42, "H"),
    HeaderField("e_phnum", 44, "H"),
], 52)

#: Elf64_Ehdr, the same fields.
ELF64_EHDR = HeaderLayout([
    HeaderField("ident", 0, "16s"),
    HeaderField("e_type", 16, "H"),
    HeaderField("e_machine", 18, "H"),
    HeaderField("e_phoff", 32, "Q"),
    HeaderField("e_phentsize", 54, "H"),
    HeaderField("e_phnum", 56, "H"),
], 64)

#: Elf32_Phdr.
ELF32_PHDR = HeaderLayout([
    HeaderField("p_type", 0, "I"),
    HeaderField("p_offset", 4, "I"),
    HeaderField("p_vaddr", 8, "I"),
    HeaderField("p_paddr", 12, "I"),
    HeaderField("p_filesz", 16, "I"),
    HeaderField("p_memsz", 20, "I"),
    HeaderField("p_flags", 24, "I"),
    HeaderField("p_align", 28, "I"),
], 32)

#: Elf64_Phdr.
ELF64_PHDR = HeaderLayout([
    HeaderField("p_type", 0, "I"),
    HeaderField("p_flags", 4, "I"),
    HeaderField("p_offset", 8, "Q"),
    HeaderField("p_vaddr", 16, "Q"),
    HeaderField("p_paddr", 24, "Q"),
    HeaderField("p_filesz", 32, "Q"),
    HeaderField("p_memsz", 40, "Q"),
    HeaderField("p_align", 48, "Q"),
], 56)

#: ``uname -m`` names of the powerpc family (Linux and FreeBSD spellings).
PPC32_MACHINES = frozenset({"ppc", "powerpc", "powerpcspe"})
PPC64_MACHINES = frozenset({"ppc64", "ppc64le", "powerpc64", "powerpc64le"})


def cstr_equals(field: bytes, text: bytes) -> bool:
    """``strcmp(field, text) == 0`` for a fixed-size C field."""
    return field[: len(text) + 1] == text + b"\0"


def powerpc_host_bits(machine: str) -> int | None:
    """32 or 64 on a powerpc host named ``machine`` (libkvm's build), else None.

    FreeBSD's ``uname -m`` is ``powerpc`` on every powerpc machine; there the
    interpreter's own word size tells ``__powerpc64__`` apart.
    """
    if machine in PPC64_MACHINES:
        return 64
    if machine in PPC32_MACHINES:
        if sys.platform.startswith("freebsd") and sys.maxsize > 2**32:
            return 64
        return 32
    return None


def powerpc_native() -> bool:
    """``_powerpc_native``: the host is 32-bit powerpc (``__powerpc__`` without 64)."""
    return powerpc_host_bits(host_machine()) == 32


def zero_pad(data: bytes, size: int) -> bytes:
    """``data`` padded with zeros to ``size`` bytes: what a map past the end of file shows."""
    if len(data) >= size:
        return data
    return data + b"\0" * (size - len(data))


class VirtualElfCore(Backend):
    """kvm_powerpc.c / kvm_powerpc64.c: a kernel-virtual ELF core (formats.md 10, 11.6).

    Subclasses set the ELF class, machine, the accepted ``EI_DATA`` values,
    the kerneldumpheader architectures and the header layouts.
    """

    fmt = "elf"
    ELF_CLASS: ClassVar[int] = ELFCLASS32
    MACHINE: ClassVar[int] = EM_PPC
    DATA_ENCODINGS: ClassVar[tuple[int, ...]] = (ELFDATA2MSB,)
    DUMP_ARCHES: ClassVar[tuple[bytes, ...]] = (b"powerpc",)
    EHDR: ClassVar[HeaderLayout] = ELF32_EHDR
    PHDR: ClassVar[HeaderLayout] = ELF32_PHDR
    ADDR_BITS: ClassVar[int] = 32

    def _endian(self) -> str:
        """The byte order every header field is read in (the kernel's)."""
        return self.kd.kernel.ehdr.endian

    def valid_elf_header(self, raw: bytes) -> bool:
        """``valid_elf_header``: magic, class, data, version, OS ABI, type, machine."""
        h = self.EHDR.unpack(raw, self._endian())
        ident: bytes = h["ident"]
        return (ident[:4] == ELF_MAGIC and ident[4] == self.ELF_CLASS
                and ident[5] in self.DATA_ENCODINGS and ident[6] == EV_CURRENT
                and ident[7] == ELFOSABI_STANDALONE and h["e_type"] == ET_CORE
                and h["e_machine"] == self.MACHINE)

    def dump_header_size(self, raw: bytes) -> int:
        """``dump_header_size``: 512 for a kerneldumpheader of this architecture, else 0."""
        h = KERNELDUMPHEADER.unpack(raw, ">")
        if not cstr_equals(h["magic"], KERNELDUMPMAGIC):
            return 0
        if not any(cstr_equals(h["architecture"], a) for a in self.DUMP_ARCHES):
            return 0
        return KERNELDUMPHEADER.size

    def initvtop(self) -> None:
        """``_powerpc_initvtop`` / ``powerpc_maphdrs``: find the ELF header, map the phdrs."""
        core = self.kd.core
        e = self._endian()
        first = self.EHDR.size + KERNELDUMPHEADER.size
        head = core.pread(0, first)
        if not head:
            raise FormatError(E.PPC_CANNOT_MAP_CORE)
        head = zero_pad(head, first)
        dmphdrsz = 0
        if not self.valid_elf_header(head):
            # A core fetched without savecore(8) may still carry the dump header.
            dmphdrsz = self.dump_header_size(head)
            if dmphdrsz == 0 or not self.valid_elf_header(head[dmphdrsz:]):
                raise FormatError(E.PPC_INVALID_CORE)
        h = self.EHDR.unpack(head[dmphdrsz:], e)
        phoff: int = h["e_phoff"]
        phentsize: int = h["e_phentsize"]
        phnum: int = h["e_phnum"]
        mapsz = dmphdrsz + phentsize * phnum + phoff
        # mmap of nothing fails; pykvm also refuses program headers past the end of
        # the file (libkvm maps them and faults when it touches them).
        if mapsz == 0 or (core.regular and mapsz > core.size):
            raise FormatError(E.PPC_CANNOT_MAP_HEADERS)
        self.dmphdrsz = dmphdrsz
        psize = self.PHDR.size
        top = 1 << self.ADDR_BITS
        segs: list[tuple[int, int, int]] = []
        loads = 0
        first_paddr = 0
        for k in range(max(phnum, 1)):
            at = dmphdrsz + phoff + k * phentsize
            p = self.PHDR.unpack(zero_pad(core.pread(at, psize), psize), e)
            if k == 0:
                # _powerpc_kvatop reads the first header even when e_phnum is 0.
                first_paddr = p["p_paddr"]
            if k >= phnum:
                break
            vaddr: int = p["p_vaddr"]
            end = min(vaddr + p["p_memsz"], top)
            segs.append((vaddr, end, dmphdrsz + p["p_offset"] - vaddr))
            if p["p_type"] == PT_LOAD:
                loads += p["p_memsz"]
        self.segments = tuple(segs)
        self.virtual = first_paddr == top - 1
        self._loaded = loads
        self._linear = all(start % PAGE_SIZE == 0 and end % PAGE_SIZE == 0
                           for start, end, _ in segs if end > start)

    def kvatop(self, va: int) -> tuple[int, int]:
        """``_powerpc_kvatop``: only virtual cores; ``Raw corefile not supported`` else."""
        if not self.virtual:
            self.kd.err(self.kd.program, E.PPC_RAW_CORE)
            return 0, 0
        return self.va2off(va)

    def va2off(self, va: int) -> tuple[int, int]:
        """``powerpc_va2off``: the first header holding ``va``; (0, 0) silently if none."""
        for start, end, base in self.segments:
            if start <= va < end:
                return base + va, end - va
        return 0, 0

    def cacheable(self) -> bool:
        """Only when every segment starts and ends on a page boundary.

        A page shared by two segments does not map linearly to the file, so a
        translation of one part of it says nothing about the other part.
        """
        return self._linear

    def dumped_pages(self) -> int:
        """Pages described by the PT_LOAD headers."""
        return self._loaded // PAGE_SIZE


class PowerpcElfCore(VirtualElfCore):
    """kvm_powerpc.c: 32-bit big-endian kernels (formats.md 10)."""

    arch = "powerpc"

    @classmethod
    def probe(cls, ehdr: Ehdr, is_minidump: bool) -> bool:
        """``_powerpc_probe``: ELFCLASS32, ET_DYN, EM_PPC, big-endian kernel."""
        return (ehdr.ei_class == ELFCLASS32 and ehdr.e_type == ET_DYN
                and ehdr.e_machine == EM_PPC and ehdr.ei_data == ELFDATA2MSB)

    def native(self) -> bool:
        """``_powerpc_native``."""
        return powerpc_native()

    def _endian(self) -> str:
        """kvm_powerpc.c converts with ``be16toh``/``be32toh`` unconditionally."""
        return ">"


__all__ = ["PowerpcElfCore", "VirtualElfCore"]
