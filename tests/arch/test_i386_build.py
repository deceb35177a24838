"""Hand-built i386 kernels, minidumps and ELF full dumps for the i386 reader tests.

Written from the byte layouts of formats.md section 6 and the FreeBSD headers
(sys/i386/include/minidump.h, sys/sys/elf32.h), with ``struct`` only: nothing
here calls pykvm.  No tests live in this module; the others import it.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

PS = 4096
MIB = 1 << 20
KERNBASE_LEGACY = 0xC0000000  # FreeBSD 11 and earlier
KERNBASE_MODERN = 0x00800000  # FreeBSD 12 and later: KERNBASE == KERNLOAD, VA == PA

EM_386 = 3
ET_EXEC = 2
ET_CORE = 4
SHN_ABS = 0xFFF1

# PTE/PDE bits (sys/i386/include/pmap.h)
PG_V = 0x001
PG_RW = 0x002
PG_A = 0x020
PG_M = 0x040
PG_PS = 0x080
PG_NX = 1 << 63


def pattern(pa: int, size: int = PS) -> bytes:
    """Recognisable page contents: the u64 at physical ``x`` (8-aligned) is ``x``."""
    return b"".join(struct.pack("<Q", pa + i) for i in range(0, size, 8))


def phys_bytes(pa: int, size: int) -> bytes:
    """The ``size`` bytes :func:`pattern` puts at physical ``pa`` (any alignment)."""
    base = pa & ~7
    return pattern(base, (pa - base + size + 7) & ~7)[pa - base:pa - base + size]


# -- the kernel: an ELF32 LE ET_EXEC EM_386 file with a .symtab -----------------------------
def kernel_elf(symbols: dict[str, int], *, machine: int = EM_386, etype: int = ET_EXEC,
               ei_class: int = 1, entry: int = 0) -> bytes:
    """An i386 kernel image that holds only a symbol table (every symbol SHN_ABS, global)."""
    strtab = b"\0"
    syms = [struct.pack("<IIIBBH", 0, 0, 0, 0, 0, 0)]
    for name, value in symbols.items():
        syms.append(struct.pack("<IIIBBH", len(strtab), value & 0xFFFFFFFF, 4, 0x11, 0,
                                SHN_ABS))
        strtab += name.encode() + b"\0"
    symtab = b"".join(syms)
    shstrtab = b"\0.symtab\0.strtab\0.shstrtab\0"
    off_sym = 52
    off_str = off_sym + len(symtab)
    off_shstr = off_str + len(strtab)
    shoff = (off_shstr + len(shstrtab) + 3) & ~3
    sh = [
        struct.pack("<10I", 0, 0, 0, 0, 0, 0, 0, 0, 0, 0),
        struct.pack("<10I", 1, 2, 0, 0, off_sym, len(symtab), 2, 1, 4, 16),
        struct.pack("<10I", 9, 3, 0, 0, off_str, len(strtab), 0, 0, 1, 0),
        struct.pack("<10I", 17, 3, 0, 0, off_shstr, len(shstrtab), 0, 0, 1, 0),
    ]
    ident = b"\x7fELF" + bytes([ei_class, 1, 1, 9]) + bytes(8)
    ehdr = ident + struct.pack("<HHIIIIIHHHHHH", etype, machine, 1, entry, 0, shoff, 0, 52,
                               0, 0, 40, len(sh), 3)
    body = ehdr + symtab + strtab + shstrtab
    body += bytes(shoff - len(body))
    return body + b"".join(sh)


def write_kernel(path: Path, symbols: dict[str, int], **kw: int) -> Path:
    path.write_bytes(kernel_elf(symbols, **kw))
    return path


# -- minidumps (formats.md 3.1, 6.2, 6.3) ------------------------------------------------
@dataclass
class Minidump:
    """What a test wants in an i386 minidump; :meth:`write` lays it out."""

    pae: bool
    version: int = 2
    kernbase: int = KERNBASE_LEGACY
    nptes: int = 2048
    ptes: dict[int, int] = field(default_factory=dict)
    pages: dict[int, bytes] = field(default_factory=dict)  # page-aligned pa -> 4096 bytes
    dump_avail: list[tuple[int, int]] = field(default_factory=lambda: [(0, 16 * MIB)])
    msgbuf: bytes = b""
    magic: bytes = b"minidump FreeBSD/i386\0"
    bitmapsize: int | None = None
    dumpavailsize_v1: int = 0  # what a version-1 header leaves in the (unused) last field

    def bit_id(self, pa: int) -> int:
        """``_kvm_pa_bit_id`` on this dump's dump_avail (pa must be inside a range)."""
        adj = 0
        for s, e in self.avail():
            if s <= pa < e:
                return pa // PS - s // PS + adj
            adj += -(-e // PS) - s // PS
        raise ValueError(hex(pa))

    def avail(self) -> list[tuple[int, int]]:
        return self.dump_avail if self.version == 2 else [(0, self.nbits() * PS)]

    def nbits(self) -> int:
        if self.version == 2:
            return sum(-(-e // PS) - s // PS for s, e in self.dump_avail)
        return max(self.pages, default=0) // PS + 1

    def layout(self) -> dict[str, int]:
        """Section offsets as formats.md 3.1 computes them."""
        width = 8 if self.pae else 4
        bitmapsize = self.bitmapsize
        if bitmapsize is None:
            bitmapsize = round_up(-(-self.nbits() // 8), PS)
        dumpavailsize = PS if self.version == 2 else 0
        ptesize = self.nptes * width
        msg = PS
        avail = msg + round_up(len(self.msgbuf), PS)
        bitmap = avail + dumpavailsize
        pte = bitmap + round_up(bitmapsize, PS)
        sparse = pte + round_up(ptesize, PS)
        return {"bitmapsize": bitmapsize, "dumpavailsize": dumpavailsize,
                "ptesize": ptesize, "avail": avail, "bitmap": bitmap, "pte": pte,
                "sparse": sparse}

    def order(self) -> list[int]:
        """Dumped page addresses in ascending bit order."""
        return sorted(self.pages, key=self.bit_id)

    def offset_of(self, pa: int) -> int:
        """File offset of the dumped copy of page ``pa``."""
        return self.layout()["sparse"] + self.order().index(pa & ~(PS - 1)) * PS

    def image(self) -> bytes:
        lay = self.layout()
        width = 8 if self.pae else 4
        last = lay["dumpavailsize"] if self.version == 2 else self.dumpavailsize_v1
        hdr = self.magic.ljust(24, b"\0")[:24] + struct.pack(
            "<7I", self.version, len(self.msgbuf), lay["bitmapsize"], lay["ptesize"],
            self.kernbase, 1 if self.pae else 0, last)
        out = bytearray(lay["sparse"] + PS * len(self.pages))
        out[0:len(hdr)] = hdr
        out[PS:PS + len(self.msgbuf)] = self.msgbuf
        if self.version == 2:
            pairs = b"".join(struct.pack("<QQ", s, e) for s, e in self.dump_avail)
            out[lay["avail"]:lay["avail"] + len(pairs)] = pairs
        for pa in self.pages:
            b = self.bit_id(pa)
            out[lay["bitmap"] + b // 8] |= 1 << (b % 8)
        code = "<Q" if width == 8 else "<I"
        for idx, value in self.ptes.items():
            struct.pack_into(code, out, lay["pte"] + idx * width, value)
        for n, pa in enumerate(self.order()):
            data = self.pages[pa]
            out[lay["sparse"] + n * PS:lay["sparse"] + n * PS + len(data)] = data
        return bytes(out)

    def write(self, path: Path) -> Path:
        path.write_bytes(self.image())
        return path


def round_up(x: int, to: int) -> int:
    return (x + to - 1) // to * to


def fake_superpage(pa: int, count: int) -> list[int]:
    """The minidump writer's fake page-table page for a superpage (formats.md 6.3)."""
    return [(pa + k * PS) | PG_V | PG_RW | PG_A | PG_M for k in range(count)]


# -- ELF full dumps (formats.md 4.1, 6.6) ---------------------------------------------------
@dataclass
class FullDump:
    """Physical memory in PT_LOAD segments; :meth:`write` lays out the ELF32 core."""

    segments: list[tuple[int, int]]  # (paddr, size), in program-header order
    mem: dict[int, bytes] = field(default_factory=dict)  # pa -> bytes (within one segment)
    truncate_at: int | None = None  # cut the file here (a truncated core)
    machine: int = EM_386

    def put(self, pa: int, data: bytes) -> None:
        self.mem[pa] = data

    def put32(self, pa: int, value: int) -> None:
        self.mem[pa] = struct.pack("<I", value)

    def put64(self, pa: int, value: int) -> None:
        self.mem[pa] = struct.pack("<Q", value)

    def table(self, pa: int, entries: dict[int, int], width: int) -> None:
        """A page-table page at ``pa`` holding ``entries`` (index -> value)."""
        page = bytearray(PS)
        code = "<Q" if width == 8 else "<I"
        for i, v in entries.items():
            struct.pack_into(code, page, i * width, v)
        self.mem[pa] = bytes(page)

    def offsets(self) -> list[int]:
        first = round_up(52 + 32 * len(self.segments), PS)
        out = []
        for _, size in self.segments:
            out.append(first)
            first += size
        return out

    def file_offset(self, pa: int) -> int:
        for (start, size), off in zip(self.segments, self.offsets(), strict=True):
            if start <= pa < start + size:
                return off + pa - start
        raise ValueError(hex(pa))

    def write(self, path: Path) -> Path:
        offs = self.offsets()
        ident = b"\x7fELF" + bytes([1, 1, 1, 255]) + bytes(8)
        ehdr = ident + struct.pack("<HHIIIIIHHHHHH", ET_CORE, self.machine, 1, 0, 52, 0, 0,
                                   52, 32, len(self.segments), 40, 0, 0)
        phdrs = b"".join(struct.pack("<8I", 1, off, start, start, size, size, 4, PS)
                         for (start, size), off in zip(self.segments, offs, strict=True))
        total = offs[-1] + self.segments[-1][1] if self.segments else len(ehdr) + len(phdrs)
        with open(path, "wb") as f:
            f.truncate(total)
            f.write(ehdr + phdrs)
            for pa, data in self.mem.items():
                f.seek(self.file_offset(pa))
                f.write(data)
            if self.truncate_at is not None:
                f.truncate(self.truncate_at)
        return path


def pages_at(dump: FullDump, addrs: Iterable[int]) -> None:
    """Fill whole pages with :func:`pattern` at each physical address."""
    for pa in addrs:
        dump.put(pa, pattern(pa))
