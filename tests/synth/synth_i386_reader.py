"""A tiny, independent i386 dump reader used only to check pykvm.synth's i386 writer.

Written from formats.md (sections 3, 4 and 6) and the README's i386 rules with nothing but
``struct``: it shares no code with pykvm.synth (whose output it checks) nor with pykvm's
readers.  Minidumps (versions 1 and 2, PAE and non-PAE) translate through the flat PTE
section; full dumps walk the kernel's page directory found through the kernel's symbols,
reading kernel variables at physical ``VA - (kernbase & 0xff000000)`` and choosing the
pmap by ``pae_mode`` when the kernel has it (both pmaps), else by ``IdlePDPT``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

PS = 4096
PG_V = 0x1
PG_RW = 0x2
PG_PS = 0x80
PG_NX = 1 << 63
FRAME_PAE = 0x000FFFFFFFFFF000
PS_FRAME_PAE = 0x000FFFFFFFE00000
FRAME = 0xFFFFF000
PS_FRAME = 0xFFC00000


def u32(data: bytes, off: int) -> int:
    return int(struct.unpack_from("<I", data, off)[0])


def u64(data: bytes, off: int) -> int:
    return int(struct.unpack_from("<Q", data, off)[0])


def round_page(x: int) -> int:
    return (x + PS - 1) // PS * PS


@dataclass
class Page:
    version: int
    paddr: int
    kmap_vaddr: int
    dmap_vaddr: int
    prot: int
    offset: int
    len: int


def kernel_symbols(kernel: bytes) -> dict[str, int]:
    """name -> st_value of the first symbol of each name in an ELF32 LE kernel's .symtab."""
    assert kernel[:6] == b"\x7fELF\x01\x01"
    shoff = u32(kernel, 32)
    shentsize, shnum = struct.unpack_from("<HH", kernel, 46)
    out: dict[str, int] = {}
    for i in range(shnum):
        sh = shoff + i * shentsize
        sh_type, sh_offset, sh_size, sh_link = (
            u32(kernel, sh + 4),
            u32(kernel, sh + 16),
            u32(kernel, sh + 20),
            u32(kernel, sh + 24),
        )
        if sh_type != 2:  # SHT_SYMTAB
            continue
        strtab = shoff + sh_link * shentsize
        str_off = u32(kernel, strtab + 16)
        for off in range(sh_offset + 16, sh_offset + sh_size, 16):
            name_off, value = u32(kernel, off), u32(kernel, off + 4)
            end = kernel.index(b"\0", str_off + name_off)
            name = kernel[str_off + name_off : end].decode()
            if name and name not in out:
                out[name] = value
    return out


class Minidump:
    """An i386 minidump held in memory."""

    def __init__(self, data: bytes) -> None:
        assert data[:24] == b"minidump FreeBSD/i386\0\0\0"
        self.data = data
        self.version = u32(data, 24)
        assert self.version in (1, 2)
        self.msgbufsize = u32(data, 28)
        self.bitmapsize = u32(data, 32)
        self.ptesize = u32(data, 36)
        self.kernbase = u32(data, 40)
        self.pae = u32(data, 44) != 0
        self.dumpavailsize = u32(data, 48) if self.version == 2 else 0
        self.esize = 8 if self.pae else 4
        dump_avail_off = PS + round_page(self.msgbufsize)
        self.bitmap_off = dump_avail_off + round_page(self.dumpavailsize)
        self.pte_off = self.bitmap_off + round_page(self.bitmapsize)
        self.sparse_off = self.pte_off + round_page(self.ptesize)
        self.ranges: list[tuple[int, int]] = []
        if self.version == 2:
            for off in range(dump_avail_off, dump_avail_off + self.dumpavailsize, 16):
                s, e = u64(data, off), u64(data, off + 8)
                if e == 0:
                    break
                self.ranges.append((s, e))
        else:
            self.ranges = [(0, self.bitmapsize * 8 * PS)]
        # rank of every set bit, counted once
        self.rank: dict[int, int] = {}
        bitmap = data[self.bitmap_off : self.bitmap_off + self.bitmapsize]
        n = 0
        for byte_index, byte in enumerate(bitmap):
            for bit in range(8):
                if byte >> bit & 1:
                    self.rank[byte_index * 8 + bit] = n
                    n += 1
        self.npages = n

    def msgbuf(self) -> bytes:
        return self.data[PS : PS + self.msgbufsize]

    def bit_id(self, pa: int) -> int | None:
        adj = 0
        for s, e in self.ranges:
            if s <= pa < e:
                return pa // PS - s // PS + adj
            adj += -(-e // PS) - s // PS
        return None

    def offset(self, pa: int) -> int:
        bit = self.bit_id(pa)
        if bit is None or bit not in self.rank:
            return -1
        return self.sparse_off + self.rank[bit] * PS

    def pte(self, index: int) -> int:
        off = self.pte_off + index * self.esize
        return u64(self.data, off) if self.pae else u32(self.data, off)

    def nptes(self) -> int:
        return self.ptesize // self.esize

    def translate(self, va: int) -> int | None:
        """File offset of ``va`` or None."""
        if va < self.kernbase:
            return None
        i = (va - self.kernbase) // PS
        if i >= self.nptes():
            return None
        pte = self.pte(i)
        if not pte & PG_V:
            return None
        off = self.offset(pte & (FRAME_PAE if self.pae else FRAME))
        return None if off < 0 else off + va % PS

    def read(self, va: int, size: int) -> bytes | None:
        out = b""
        while size > 0:
            off = self.translate(va)
            if off is None:
                return None
            n = min(size, PS - va % PS)
            out += self.data[off : off + n]
            va += n
            size -= n
        return out

    def walk(self) -> list[Page]:
        out = []
        for i in range(self.nptes()):
            pte = self.pte(i)
            if not pte & PG_V:
                continue
            pa = pte & (FRAME_PAE if self.pae else FRAME)
            prot = 1 | (2 if pte & PG_RW else 0) | (0 if pte & PG_NX else 4)
            out.append(Page(2, pa, self.kernbase + i * PS, 0, prot, self.offset(pa), PS))
        return out


class ElfCore:
    """An i386 ELF full dump, its kernel's page directory located through the symbols."""

    def __init__(self, data: bytes, kernel: bytes) -> None:
        assert data[:7] == b"\x7fELF\x01\x01\x01" and data[7] == 255
        assert struct.unpack_from("<HH", data, 16) == (4, 3)
        self.data = data
        phoff = u32(data, 28)
        phentsize, phnum = struct.unpack_from("<HH", data, 42)
        self.loads: list[tuple[int, int, int]] = []  # (paddr, size, offset)
        for i in range(phnum):
            ph = phoff + i * phentsize
            p_type, p_offset, p_paddr, p_filesz = (
                u32(data, ph),
                u32(data, ph + 4),
                u32(data, ph + 12),
                u32(data, ph + 16),
            )
            if p_type == 1:
                self.loads.append((p_paddr, p_filesz, p_offset))
        syms = kernel_symbols(kernel)
        kernbase = syms["kernbase"]
        delta = kernbase & 0xFF000000

        def var(name: str) -> int:
            raw = self.phys(syms[name] - delta, 4)
            assert raw is not None, name
            return u32(raw, 0)

        if "pae_mode" in syms:
            self.pae = var("pae_mode") != 0
            ptd_name = "IdlePTD_pae" if self.pae else "IdlePTD_nopae"
        else:
            self.pae = "IdlePDPT" in syms
            ptd_name = "IdlePTD"
        if self.pae:
            pdpt = var("IdlePDPT")
            pages = []
            for i in range(4):
                raw = self.phys(pdpt + 8 * i, 8)
                assert raw is not None
                page = self.phys(u64(raw, 0) & FRAME_PAE, PS)
                assert page is not None
                pages.append(page)
            self.ptd = b"".join(pages)
        else:
            page = self.phys(var(ptd_name), PS)
            assert page is not None
            self.ptd = page
        self.ptd_pa = var(ptd_name)

    def offset(self, pa: int) -> int:
        for start, size, off in self.loads:
            if start <= pa < start + size:
                return off + pa - start
        return -1

    def phys(self, pa: int, size: int) -> bytes | None:
        out = b""
        while size > 0:
            off = self.offset(pa)
            if off < 0:
                return None
            n = min(size, PS - pa % PS)
            out += self.data[off : off + n]
            pa += n
            size -= n
        return out

    def translate(self, va: int) -> int | None:
        """Physical address of ``va`` or None when a table entry is invalid."""
        if not 0 <= va < 1 << 32:
            return None
        if self.pae:
            pde = u64(self.ptd, (va >> 21) * 8)
            if not pde & PG_V:
                return None
            if pde & PG_PS:
                return (pde & PS_FRAME_PAE) + (va & 0x1FFFFF)
            raw = self.phys((pde & FRAME_PAE) + ((va >> 12) & 511) * 8, 8)
            if raw is None:
                return None
            pte = u64(raw, 0)
            return (pte & FRAME_PAE) + va % PS if pte & PG_V else None
        pde = u32(self.ptd, (va >> 22) * 4)
        if not pde & PG_V:
            return None
        if pde & PG_PS:
            return (pde & PS_FRAME) + (va & 0x3FFFFF)
        raw = self.phys((pde & FRAME) + ((va >> 12) & 1023) * 4, 4)
        if raw is None:
            return None
        pte = u32(raw, 0)
        return (pte & FRAME) + va % PS if pte & PG_V else None

    def read(self, va: int, size: int) -> bytes | None:
        out = b""
        while size > 0:
            pa = self.translate(va)
            if pa is None:
                return None
            n = min(size, PS - va % PS)
            got = self.phys(pa, n)
            if got is None:
                return None
            out += got
            va += n
            size -= n
        return out
