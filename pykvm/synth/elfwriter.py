"""Minimal ELF writing helpers for the synthetic kernels and full dumps, any class and byte order.

Only what the synthetic fixtures need is here: the three header records, symbol records
and a string-table builder.  The layouts follow the System V gABI: ``Elf64_Ehdr`` 64
bytes, ``Elf64_Phdr`` 56, ``Elf64_Shdr`` 64, ``Elf64_Sym`` 24; ``Elf32_Ehdr`` 52,
``Elf32_Phdr`` 32 (fields in a different order: ``p_flags`` comes after ``p_memsz``),
``Elf32_Shdr`` 40, ``Elf32_Sym`` 16 (``st_value`` and ``st_size`` before ``st_info``).
An :class:`ElfFormat` (class + data encoding) packs any record; the records default to
ELF64 little-endian, the format the amd64 fixtures were first written in.  This module
is written for the *writer* side only and shares nothing with pykvm's readers.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Literal

#: a byte order as :meth:`int.to_bytes` spells it
ByteOrder = Literal["little", "big"]

# e_ident
ELFCLASS32 = 1
ELFCLASS64 = 2
ELFDATA2LSB = 1
ELFDATA2MSB = 2
EV_CURRENT = 1
ELFOSABI_NONE = 0
ELFOSABI_FREEBSD = 9
ELFOSABI_STANDALONE = 255

# e_type
ET_EXEC = 2
ET_DYN = 3
ET_CORE = 4

# e_machine
EM_386 = 3
EM_MIPS = 8
EM_PPC = 20
EM_PPC64 = 21
EM_ARM = 40
EM_X86_64 = 62
EM_AARCH64 = 183
EM_RISCV = 243

# e_flags
EF_MIPS_ABI2 = 0x20

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

# ELF64 sizes (kept for the writers that predate ElfFormat)
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


@cache
def _structs(
    elfclass: int, data: int
) -> tuple[struct.Struct, struct.Struct, struct.Struct, struct.Struct]:
    e = "<" if data == ELFDATA2LSB else ">"
    if elfclass == ELFCLASS64:
        return (
            struct.Struct(e + "16sHHIQQQIHHHHHH"),
            struct.Struct(e + "IIQQQQQQ"),
            struct.Struct(e + "IIQQQQIIQQ"),
            struct.Struct(e + "IBBHQQ"),
        )
    return (
        struct.Struct(e + "16sHHIIIIIHHHHHH"),
        struct.Struct(e + "IIIIIIII"),
        struct.Struct(e + "IIIIIIIIII"),
        struct.Struct(e + "IIIBBH"),
    )


#: ``pack_into(buffer, offset, st_name, st_info, st_other, st_shndx, st_value, st_size)``
SymPacker = Callable[[bytearray, int, int, int, int, int, int, int], None]


@dataclass(frozen=True)
class ElfFormat:
    """An ELF class (``ELFCLASS32``/``ELFCLASS64``) and data encoding (``ELFDATA2LSB``/``MSB``)."""

    elfclass: int = ELFCLASS64
    data: int = ELFDATA2LSB

    def __post_init__(self) -> None:
        """Reject classes and encodings other than the four real ones."""
        if self.elfclass not in (ELFCLASS32, ELFCLASS64):
            raise ValueError(f"bad ELF class {self.elfclass}")
        if self.data not in (ELFDATA2LSB, ELFDATA2MSB):
            raise ValueError(f"bad ELF data encoding {self.data}")

    @property
    def is64(self) -> bool:
        """True for ELFCLASS64."""
        return self.elfclass == ELFCLASS64

    @property
    def byteorder(self) -> ByteOrder:
        """``"little"`` or ``"big"`` (for :meth:`int.to_bytes`)."""
        return "little" if self.data == ELFDATA2LSB else "big"

    @property
    def endian(self) -> str:
        """The :mod:`struct` byte-order prefix, ``"<"`` or ``">"``."""
        return "<" if self.data == ELFDATA2LSB else ">"

    @property
    def addr_size(self) -> int:
        """Bytes of an ``ElfN_Addr``: 4 or 8."""
        return 8 if self.is64 else 4

    @property
    def all_ones(self) -> int:
        """The all-ones address of this class (0xffffffff or 0xffffffffffffffff)."""
        return (1 << (8 * self.addr_size)) - 1

    @property
    def ehdr_size(self) -> int:
        """``e_ehsize``: 64 or 52."""
        return 64 if self.is64 else 52

    @property
    def phdr_size(self) -> int:
        """``e_phentsize``: 56 or 32."""
        return 56 if self.is64 else 32

    @property
    def shdr_size(self) -> int:
        """``e_shentsize``: 64 or 40."""
        return 64 if self.is64 else 40

    @property
    def sym_size(self) -> int:
        """``sh_entsize`` of a symbol table: 24 or 16."""
        return 24 if self.is64 else 16

    def ident(self, osabi: int) -> bytes:
        """Return the 16-byte ``e_ident`` with ABI ``osabi`` (ABI version and padding zero)."""
        head = (0x7F, 0x45, 0x4C, 0x46, self.elfclass, self.data, EV_CURRENT, osabi)
        return bytes(head) + bytes(8)

    def pack_sym(
        self, name: int, value: int, size: int, info: int, other: int, shndx: int
    ) -> bytes:
        """Return one encoded ``ElfN_Sym``."""
        sym = _structs(self.elfclass, self.data)[3]
        if self.is64:
            return sym.pack(name, info, other, shndx, value, size)
        return sym.pack(name, value, size, info, other, shndx)

    def sym_packer(self) -> SymPacker:
        """Return a fast ``pack_into(buffer, offset, name, info, other, shndx, value, size)``."""
        sym = _structs(self.elfclass, self.data)[3]
        if self.is64:
            return sym.pack_into

        def pack_into(
            buf: bytearray, off: int, name: int, info: int, other: int, shndx: int, value: int,
            size: int,
        ) -> None:  # fmt: skip
            sym.pack_into(buf, off, name, value, size, info, other, shndx)

        return pack_into


ELF64LE = ElfFormat(ELFCLASS64, ELFDATA2LSB)
ELF64BE = ElfFormat(ELFCLASS64, ELFDATA2MSB)
ELF32LE = ElfFormat(ELFCLASS32, ELFDATA2LSB)
ELF32BE = ElfFormat(ELFCLASS32, ELFDATA2MSB)


def ident(osabi: int) -> bytes:
    """Return the 16-byte ``e_ident`` of a 64-bit little-endian file with ABI ``osabi``."""
    return ELF64LE.ident(osabi)


@dataclass(frozen=True)
class Ehdr:
    """The fields of an ``ElfN_Ehdr`` (``e_ident`` is built from the format and ``osabi``).

    ``e_ehsize``, ``e_phentsize`` and ``e_shentsize`` are the sizes of the format's records.
    """

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

    def pack(self, fmt: ElfFormat = ELF64LE) -> bytes:
        """Return the encoded header (64 bytes for ELF64, 52 for ELF32)."""
        return _structs(fmt.elfclass, fmt.data)[0].pack(
            fmt.ident(self.osabi),
            self.e_type,
            self.e_machine,
            self.e_version,
            self.e_entry,
            self.e_phoff,
            self.e_shoff,
            self.e_flags,
            fmt.ehdr_size,
            fmt.phdr_size,
            self.e_phnum,
            fmt.shdr_size,
            self.e_shnum,
            self.e_shstrndx,
        )


@dataclass(frozen=True)
class Phdr:
    """One program header; fields in ``Elf64_Phdr`` order (:meth:`pack` reorders for ELF32)."""

    p_type: int
    p_flags: int
    p_offset: int
    p_vaddr: int
    p_paddr: int
    p_filesz: int
    p_memsz: int
    p_align: int

    def pack(self, fmt: ElfFormat = ELF64LE) -> bytes:
        """Return the encoded header (56 bytes for ELF64, 32 for ELF32)."""
        st = _structs(fmt.elfclass, fmt.data)[1]
        if fmt.is64:
            return st.pack(
                self.p_type,
                self.p_flags,
                self.p_offset,
                self.p_vaddr,
                self.p_paddr,
                self.p_filesz,
                self.p_memsz,
                self.p_align,
            )
        return st.pack(
            self.p_type,
            self.p_offset,
            self.p_vaddr,
            self.p_paddr,
            self.p_filesz,
            self.p_memsz,
            self.p_flags,
            self.p_align,
        )


@dataclass(frozen=True)
class Shdr:
    """One section header (same field order in both classes)."""

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

    def pack(self, fmt: ElfFormat = ELF64LE) -> bytes:
        """Return the encoded header (64 bytes for ELF64, 40 for ELF32)."""
        return _structs(fmt.elfclass, fmt.data)[2].pack(
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
