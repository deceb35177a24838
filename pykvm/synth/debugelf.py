"""A tiny ELF file carrying only given sections (type information), for tests.

:func:`write_debug_elf` wraps ``.SUNW_ctf`` and/or DWARF sections in an ``ET_EXEC`` ELF
file of the target's class, byte order and machine, so independent readers such as
pyelftools can open them.  It is deliberately separate from the synthetic kernel's ELF
writer: no program headers, no loadable contents, optionally a symbol table whose symbols
live in an empty ``.bss`` (enough for the CTF object-section mapping of ``init_symtab``).

Layout: ELF header, the section contents (each aligned to 8), the section header table.
Sections: the null section, the given sections in order (``SHT_PROGBITS``, no flags),
then ``.bss`` / ``.symtab`` / ``.strtab`` when symbols are given, then ``.shstrtab``.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .cmodel import Target

ET_EXEC = 2
EV_CURRENT = 1
ELFOSABI_FREEBSD = 9
SHT_PROGBITS = 1
SHT_SYMTAB = 2
SHT_STRTAB = 3
SHT_NOBITS = 8
SHF_WRITE = 0x1
SHF_ALLOC = 0x2
STB_GLOBAL = 1
STT_OBJECT = 1
STT_FUNC = 2


@dataclass(frozen=True)
class DebugSymbol:
    """A symbol of the test ELF; it is defined in ``.bss`` at ``value``."""

    name: str
    value: int = 0
    size: int = 0
    type: int = STT_OBJECT


def write_debug_elf(
    sections: Mapping[str, bytes],
    target: Target,
    *,
    byteorder: str | None = None,
    symbols: Sequence[DebugSymbol] = (),
) -> bytes:
    """An ELF file (bytes) holding ``sections`` for ``target``."""
    order = byteorder or target.byteorder
    e = "<" if order == "little" else ">"
    is64 = target.ptr_size == 8
    ehsize, shentsize = (64, 64) if is64 else (52, 40)

    names = bytearray(b"\0")

    def name_of(s: str) -> int:
        off = len(names)
        names.extend(s.encode() + b"\0")
        return off

    # (name offset, type, flags, contents or None for NOBITS, link, info, align, entsize)
    shdrs: list[tuple[int, int, int, bytes | None, int, int, int, int]] = []
    for sname, contents in sections.items():
        shdrs.append((name_of(sname), SHT_PROGBITS, 0, contents, 0, 0, 1, 0))
    if symbols:
        bss_index = len(shdrs) + 1
        bss_size = max((s.value + s.size for s in symbols), default=0)
        shdrs.append((name_of(".bss"), SHT_NOBITS, SHF_ALLOC | SHF_WRITE, None, 0, 0, 8,
                      bss_size))
        strtab = bytearray(b"\0")
        syms = bytearray(bytes(24 if is64 else 16))
        for sym in symbols:
            noff = len(strtab)
            strtab.extend(sym.name.encode() + b"\0")
            info = (STB_GLOBAL << 4) | sym.type
            if is64:
                syms += struct.pack(e + "IBBHQQ", noff, info, 0, bss_index, sym.value, sym.size)
            else:
                syms += struct.pack(e + "IIIBBH", noff, sym.value, sym.size, info, 0, bss_index)
        symtab_index = len(shdrs) + 1
        shdrs.append((name_of(".symtab"), SHT_SYMTAB, 0, bytes(syms), symtab_index + 1, 1,
                      8 if is64 else 4, 24 if is64 else 16))
        shdrs.append((name_of(".strtab"), SHT_STRTAB, 0, bytes(strtab), 0, 0, 1, 0))
    shstr_name = name_of(".shstrtab")
    shdrs.append((shstr_name, SHT_STRTAB, 0, bytes(names), 0, 0, 1, 0))

    out = bytearray(ehsize)
    placed: list[tuple[int, int]] = []
    for _, _, _, data, _, _, _, entsize in shdrs:
        out += bytes(-len(out) % 8)
        placed.append((len(out), len(data) if data is not None else entsize))
        if data is not None:
            out += data
    out += bytes(-len(out) % 8)
    shoff = len(out)
    out += bytes(shentsize)  # the null section header
    for (noff, stype, flags, data, link, info, align, entsize), (off, size) in zip(
        shdrs, placed, strict=True
    ):
        ent = entsize if data is not None else 0
        if is64:
            out += struct.pack(e + "IIQQQQIIQQ", noff, stype, flags, 0, off, size, link, info,
                               align, ent)
        else:
            out += struct.pack(e + "IIIIIIIIII", noff, stype, flags, 0, off, size, link, info,
                               align, ent)
    ident = b"\x7fELF" + bytes([2 if is64 else 1, 1 if order == "little" else 2, EV_CURRENT,
                                ELFOSABI_FREEBSD]) + bytes(8)
    shnum = len(shdrs) + 1
    if is64:
        hdr = struct.pack(e + "HHIQQQIHHHHHH", ET_EXEC, target.elf_machine, EV_CURRENT, 0, 0,
                          shoff, 0, ehsize, 0, 0, shentsize, shnum, shnum - 1)
    else:
        hdr = struct.pack(e + "HHIIIIIHHHHHH", ET_EXEC, target.elf_machine, EV_CURRENT, 0, 0,
                          shoff, 0, ehsize, 0, 0, shentsize, shnum, shnum - 1)
    out[0:ehsize] = ident + hdr
    return bytes(out)
