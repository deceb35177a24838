"""Minimal ELF64 little-endian writing helpers used by the synthetic kernel and full dumps.

Only what the synthetic fixtures need is here: the three header records, symbol records
and a string-table builder.  The layouts follow the System V gABI (``Elf64_Ehdr`` 64
bytes, ``Elf64_Phdr`` 56 bytes, ``Elf64_Shdr`` 64 bytes, ``Elf64_Sym`` 24 bytes).  This
module is written for the *writer* side only and shares nothing with pykvm's readers.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

# e_ident
ELFCLASS64 = 2
ELFDATA2LSB = 1
EV_CURRENT = 1
ELFOSABI_FREEBSD = 9
ELFOSABI_STANDALONE = 255

# e_type / e_machine
ET_EXEC = 2
ET_CORE = 4
EM_X86_64 = 62

# program headers
PT_LOAD = 1
PT_DUMP_DELTA = 0x6FB5D000
PF_X = 1
PF_W = 2
PF_R = 4

# section headers
SHT_NULL = 0
SHT_PROGBITS = 1
SHT_SYMTAB = 2
SHT_STRTAB = 3
SHT_NOBITS = 8
SHF_WRITE = 0x1
SHF_ALLOC = 0x2
SHF_EXECINSTR = 0x4

# symbols
SHN_UNDEF = 0
SHN_ABS = 0xFFF1
SHN_COMMON = 0xFFF2
STB_LOCAL = 0
STB_GLOBAL = 1
STB_WEAK = 2
STT_NOTYPE = 0
STT_OBJECT = 1
STT_FUNC = 2
STT_SECTION = 3
STT_FILE = 4

EHDR_SIZE = 64
PHDR_SIZE = 56
SHDR_SIZE = 64
SYM_SIZE = 24

_EHDR = struct.Struct("<16sHHIQQQIHHHHHH")
_PHDR = struct.Struct("<IIQQQQQQ")
_SHDR = struct.Struct("<IIQQQQIIQQ")
SYM_STRUCT = struct.Struct("<IBBHQQ")

assert _EHDR.size == EHDR_SIZE and _PHDR.size == PHDR_SIZE
assert _SHDR.size == SHDR_SIZE and SYM_STRUCT.size == SYM_SIZE


def ident(osabi: int) -> bytes:
    """Return the 16-byte ``e_ident`` of a 64-bit little-endian file with ABI ``osabi``."""
    return bytes((0x7F, 0x45, 0x4C, 0x46, ELFCLASS64, ELFDATA2LSB, EV_CURRENT, osabi)) + bytes(8)


@dataclass(frozen=True)
class Ehdr:
    """The fields of an ``Elf64_Ehdr`` (``e_ident`` is built from ``osabi``)."""

    osabi: int
    e_type: int
    e_machine: int
    e_version: int
    e_entry: int
    e_phoff: int
    e_shoff: int
    e_flags: int
    e_phnum: int
    e_shnum: int
    e_shstrndx: int

    def pack(self) -> bytes:
        """Return the 64 encoded bytes."""
        return _EHDR.pack(
            ident(self.osabi),
            self.e_type,
            self.e_machine,
            self.e_version,
            self.e_entry,
            self.e_phoff,
            self.e_shoff,
            self.e_flags,
            EHDR_SIZE,
            PHDR_SIZE,
            self.e_phnum,
            SHDR_SIZE,
            self.e_shnum,
            self.e_shstrndx,
        )


@dataclass(frozen=True)
class Phdr:
    """One ``Elf64_Phdr``, fields in file order except ``p_flags`` (stored second)."""

    p_type: int
    p_flags: int
    p_offset: int
    p_vaddr: int
    p_paddr: int
    p_filesz: int
    p_memsz: int
    p_align: int

    def pack(self) -> bytes:
        """Return the 56 encoded bytes."""
        return _PHDR.pack(
            self.p_type,
            self.p_flags,
            self.p_offset,
            self.p_vaddr,
            self.p_paddr,
            self.p_filesz,
            self.p_memsz,
            self.p_align,
        )


@dataclass(frozen=True)
class Shdr:
    """One ``Elf64_Shdr``."""

    sh_name: int
    sh_type: int
    sh_flags: int
    sh_addr: int
    sh_offset: int
    sh_size: int
    sh_link: int
    sh_info: int
    sh_addralign: int
    sh_entsize: int

    def pack(self) -> bytes:
        """Return the 64 encoded bytes."""
        return _SHDR.pack(
            self.sh_name,
            self.sh_type,
            self.sh_flags,
            self.sh_addr,
            self.sh_offset,
            self.sh_size,
            self.sh_link,
            self.sh_info,
            self.sh_addralign,
            self.sh_entsize,
        )


class StringTable:
    """An ELF string table under construction: index 0 is the empty string."""

    def __init__(self) -> None:
        """Create a table holding only the leading NUL."""
        self._parts: list[bytes] = [b"\0"]
        self._size = 1
        self._index: dict[str, int] = {"": 0}

    def add(self, name: str) -> int:
        """Return the offset of ``name``, appending it once if it is new."""
        found = self._index.get(name)
        if found is not None:
            return found
        offset = self._size
        raw = name.encode() + b"\0"
        self._parts.append(raw)
        self._size += len(raw)
        self._index[name] = offset
        return offset

    def data(self) -> bytes:
        """Return the encoded table."""
        return b"".join(self._parts)


def align(value: int, boundary: int) -> int:
    """Round ``value`` up to a multiple of ``boundary`` (a power of two)."""
    return (value + boundary - 1) & ~(boundary - 1)
