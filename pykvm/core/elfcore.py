"""ELF full dumps: the program headers and the physical-address map.

Mirrors ``_kvm_read_core_phdrs`` (lib/libkvm/kvm_private.c), which checks the
core the way elftoolchain classifies it, and the per-architecture
``_kvm_pa2off`` (formats.md 4.2).  Every program header is kept, auxiliary
ones (``PT_DUMP_DELTA``) included.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from .. import errors as E
from ..constants import ELFCLASS64, ET_CORE
from ..errors import FormatError
from ..image.elf import Ehdr, elf_begin_class, gelf_getehdr
from .corefile import CoreFile


@dataclass(frozen=True)
class Phdr:
    """A program header (GElf_Phdr)."""

    type: int
    flags: int
    offset: int
    vaddr: int
    paddr: int
    filesz: int
    memsz: int
    align: int


_PHDR64 = ("IIQQQQQQ", 56)
_PHDR32 = ("IIIIIIII", 32)


def read_core_phdrs(core: CoreFile, kernel: Ehdr) -> list[Phdr]:
    """``_kvm_read_core_phdrs``: an ET_CORE of the kernel's class and machine.

    The checks run in libkvm's order: libelf kind (``invalid core`` when the
    core is not ELF at all), libelf's own header errors (their texts), class,
    the whole header, type, machine, then the program headers (libelf's
    ``Missing or malformed ELF header`` when they do not fit the file).
    """
    head = core.pread(0, 64)
    size = core.size if core.regular else len(head)
    try:
        ei_class = elf_begin_class(head, size)
    except FormatError as exc:
        if exc.message == E.NOT_ELF_KERNEL:
            raise FormatError(E.INVALID_CORE) from None
        raise
    if ei_class != kernel.ei_class:
        raise FormatError(E.INVALID_CORE)
    eh = gelf_getehdr(head, size)
    if eh.e_type != ET_CORE or eh.e_machine != kernel.e_machine:
        raise FormatError(E.INVALID_CORE)
    fmt, entsize = _PHDR64 if eh.ei_class == ELFCLASS64 else _PHDR32
    if eh.e_phnum == 0:
        return []
    if eh.e_phentsize != entsize or eh.e_phoff == 0 or eh.e_phoff + eh.e_phnum * entsize > size:
        raise FormatError(E.ELF_EHEADER)
    raw = core.pread(eh.e_phoff, eh.e_phnum * entsize)
    out = []
    for row in struct.iter_unpack(eh.endian + fmt, raw):
        if eh.ei_class == ELFCLASS64:
            p_type, p_flags, p_offset, p_vaddr, p_paddr, p_filesz, p_memsz, p_align = row
        else:
            p_type, p_offset, p_vaddr, p_paddr, p_filesz, p_memsz, p_flags, p_align = row
        out.append(Phdr(p_type, p_flags, p_offset, p_vaddr, p_paddr, p_filesz, p_memsz,
                        p_align))
    return out


def pa2off(phdrs: list[Phdr], pa: int, page_size: int = 4096) -> tuple[int, int]:
    """``_kvm_pa2off`` (amd64, i386): (file offset, bytes to the end of the page).

    The first header in file order whose ``[p_paddr, p_paddr + p_memsz)`` holds
    ``pa`` decides, whatever its type.  ``(0, 0)`` when none does.
    """
    for p in phdrs:
        if p.paddr <= pa < p.paddr + p.memsz:
            return pa - p.paddr + p.offset, page_size - (pa & (page_size - 1))
    return 0, 0
