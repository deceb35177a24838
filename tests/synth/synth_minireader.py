"""A deliberately tiny, independent amd64 dump reader used only to check pykvm.synth.

It is written from formats.md (sections 3, 4 and 5) with nothing but ``struct``: it
shares no code with pykvm.synth (whose output it checks) nor with pykvm's real readers.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

PS = 4096
PG_V = 0x1
PG_RW = 0x2
PG_PS = 0x80
PG_NX = 1 << 63
PG_FRAME = 0x000FFFFFFFFFF000
PG_PS_FRAME = 0x000FFFFFFFE00000
PG_1GB_FRAME = 0x000FFFFFC0000000


def u32(data: bytes, off: int) -> int:
    return int(struct.unpack_from("<I", data, off)[0])


def u64(data: bytes, off: int) -> int:
    return int(struct.unpack_from("<Q", data, off)[0])


def round_page(x: int) -> int:
    return (x + PS - 1) // PS * PS


def prot(entry: int) -> int:
    p = 1
    if entry & PG_RW:
        p |= 2
    if not entry & PG_NX:
        p |= 4
    return p


@dataclass
class Page:
    version: int
    paddr: int
    kmap_vaddr: int
    dmap_vaddr: int
    prot: int
    offset: int
    len: int


class Minidump:
    """Reads an amd64 minidump held in memory (versions 1-3)."""

    def __init__(self, data: bytes) -> None:
        assert data[:24] == b"minidump FreeBSD/amd64\0\0"
        self.data = data
        self.version = u32(data, 24)
        self.msgbufsize = u32(data, 28)
        self.bitmapsize = u32(data, 32)
        self.pmapsize = u32(data, 36)
        self.kernbase = u64(data, 40)
        self.dmapbase = u64(data, 48)
        self.dmapend = u64(data, 56)
        self.dumpavailsize = u32(data, 64) if self.version == 3 else 0
        off = PS + round_page(self.msgbufsize)
        self.dump_avail_off = off
        off += round_page(self.dumpavailsize)
        self.bitmap_off = off
        off += round_page(self.bitmapsize)
        self.pmap_off = off
        off += round_page(self.pmapsize)
        self.sparse_off = off
        if self.dumpavailsize:
            pairs = []
            i = self.dump_avail_off
            while u64(data, i + 8) != 0:
                pairs.append((u64(data, i), u64(data, i + 8)))
                i += 16
            self.avail = pairs
        else:
            self.avail = [(0, self.bitmapsize * 8 * PS)]
        bitmap = data[self.bitmap_off : self.bitmap_off + self.bitmapsize]
        self.rank: dict[int, int] = {}
        n = 0
        for byte_i, byte in enumerate(bitmap):
            if byte:
                for b in range(8):
                    if byte >> b & 1:
                        self.rank[byte_i * 8 + b] = n
                        n += 1
        self.npages = n

    def bit_id(self, pa: int) -> int | None:
        adj = 0
        for s, e in self.avail:
            if pa < e:
                if pa < s:
                    return None
                return pa // PS - s // PS + adj
            adj += -(-e // PS) - s // PS
        return None

    def bit_pa(self, bit: int) -> int | None:
        for s, e in self.avail:
            n = -(-e // PS) - s // PS
            if bit < n:
                return (s // PS + bit) * PS
            bit -= n
        return None

    def pa_off(self, pa: int) -> int | None:
        bit = self.bit_id(pa)
        if bit is None or bit not in self.rank:
            return None
        return self.sparse_off + self.rank[bit] * PS

    def pmap_entry(self, i: int) -> int | None:
        if i >= self.pmapsize // 8:
            return None
        return u64(self.data, self.pmap_off + i * 8)

    def vatop(self, va: int) -> int | None:
        """File offset of va, or None."""
        off = va & (PS - 1)
        if va >= self.kernbase:
            if self.version == 1:
                pte = self.pmap_entry((va - self.kernbase) >> 12)
                if pte is None or not pte & PG_V:
                    return None
                pa = pte & PG_FRAME
            else:
                pde = self.pmap_entry((va - self.kernbase) >> 21)
                if pde is None or not pde & PG_V:
                    return None
                if pde & PG_PS:
                    pa = (pde & PG_PS_FRAME) + (va & 0x1FF000)
                else:
                    pt_off = self.pa_off(pde & PG_FRAME)
                    if pt_off is None:
                        return None
                    pte = u64(self.data, pt_off + ((va >> 12) & 511) * 8)
                    if not pte & PG_V:
                        return None
                    pa = pte & PG_FRAME
        elif self.dmapbase <= va < self.dmapend:
            pa = (va - self.dmapbase) & ~(PS - 1)
        else:
            return None
        page = self.pa_off(pa)
        return None if page is None else page + off

    def read(self, va: int, size: int) -> bytes | None:
        out = []
        while size:
            off = self.vatop(va)
            if off is None:
                return None
            n = min(size, PS - (va & (PS - 1)))
            out.append(self.data[off : off + n])
            va += n
            size -= n
        return b"".join(out)

    def walk(self) -> list[Page]:
        pages: list[Page] = []
        marks: set[int] = set()

        def mark(pa: int) -> None:
            bit = self.bit_id(pa)
            if bit is not None and bit < self.bitmapsize * 8:
                marks.add(bit)

        def offset(pa: int) -> int:
            got = self.pa_off(pa)
            return -1 if got is None else got

        for i in range(self.pmapsize // 8):
            pde = u64(self.data, self.pmap_off + i * 8)
            va = self.kernbase + (i << 21)
            if not pde & PG_V:
                continue
            if pde & PG_PS:
                pa = pde & PG_PS_FRAME
                mark(pa)
                pages.append(Page(2, pa, va, self.dmapbase + pa, prot(pde), offset(pa), 1 << 21))
                continue
            pt = self.pa_off(pde & PG_FRAME)
            if pt is None:
                continue
            for k in range(512):
                pte = u64(self.data, pt + k * 8)
                if pte & PG_V:
                    pa = pte & PG_FRAME
                    mark(pa)
                    pages.append(Page(2, pa, va, self.dmapbase + pa, prot(pte), offset(pa), PS))
                va += PS
        for bit in sorted(marks):
            bpa = self.bit_pa(bit)
            assert bpa is not None
            pages.append(Page(2, bpa, 0, self.dmapbase + bpa, 3, offset(bpa), PS))
        return pages


class ElfCore:
    """Reads an amd64 ELF full dump held in memory, 4-level walk from KPML4phys."""

    def __init__(self, data: bytes, kernbase: int, kpml4phys_va: int) -> None:
        assert data[:4] == b"\x7fELF" and data[4] == 2 and data[5] == 1
        assert struct.unpack_from("<HH", data, 16) == (4, 62)
        self.data = data
        phoff = u64(data, 32)
        phnum = int(struct.unpack_from("<H", data, 56)[0])
        self.phdrs: list[tuple[int, ...]] = [
            struct.unpack_from("<IIQQQQQQ", data, phoff + i * 56) for i in range(phnum)
        ]
        delta = [p for p in self.phdrs if p[0] == 0x6FB5D000]
        if delta:
            _, _, _, vaddr, paddr, _, _, align = delta[0]
            kpa = kpml4phys_va - vaddr - (align or 0x200000) + paddr
        else:
            kpa = kpml4phys_va - kernbase
        pml4_pa = self.phys_u64(kpa)
        assert pml4_pa is not None
        self.pml4_pa = pml4_pa

    def pa_off(self, pa: int) -> int | None:
        for p_type, _, p_offset, _, p_paddr, _, p_memsz, _ in self.phdrs:
            if p_type == 1 and p_paddr <= pa < p_paddr + p_memsz:
                return int(p_offset + pa - p_paddr)
        return None

    def phys_u64(self, pa: int) -> int | None:
        off = self.pa_off(pa)
        return None if off is None else u64(self.data, off)

    def vtop(self, va: int) -> int | None:
        pml4e = self.phys_u64(self.pml4_pa + ((va >> 39) & 511) * 8)
        if pml4e is None or not pml4e & PG_V:
            return None
        pdpe = self.phys_u64((pml4e & PG_FRAME) + ((va >> 30) & 511) * 8)
        if pdpe is None or not pdpe & PG_V:
            return None
        if pdpe & PG_PS:
            return (pdpe & PG_1GB_FRAME) + (va & 0x3FFFFFFF)
        pde = self.phys_u64((pdpe & PG_FRAME) + ((va >> 21) & 511) * 8)
        if pde is None or not pde & PG_V:
            return None
        if pde & PG_PS:
            return (pde & PG_PS_FRAME) + (va & 0x1FFFFF)
        pte = self.phys_u64((pde & PG_FRAME) + ((va >> 12) & 511) * 8)
        if pte is None or not pte & PG_V:
            return None
        return (pte & PG_FRAME) + (va & 0xFFF)

    def read(self, va: int, size: int) -> bytes | None:
        out = []
        while size:
            pa = self.vtop(va)
            if pa is None:
                return None
            off = self.pa_off(pa)
            if off is None:
                return None
            n = min(size, PS - (va & (PS - 1)))
            out.append(self.data[off : off + n])
            va += n
            size -= n
        return b"".join(out)
