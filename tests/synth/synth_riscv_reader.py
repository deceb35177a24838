"""A struct-only reader of riscv minidumps (versions 1 and 2), for the tests.

Written from formats.md 3.1-3.3 and 12.2-12.5 with pykvm's rules (README): the physical
address of a PTE comes from its PPN bits 10-53 only, direct-map aliases are ``dmapbase +
pa - dmapphys``.  It imports nothing from pykvm.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

PS = 4096


def u32(data: bytes, off: int) -> int:
    return int(struct.unpack_from("<I", data, off)[0])


def u64(data: bytes, off: int) -> int:
    return int(struct.unpack_from("<Q", data, off)[0])


def rp(x: int) -> int:
    return (x + PS - 1) // PS * PS


def pte_pa(e: int) -> int:
    return (e >> 10 & (1 << 44) - 1) << 12


@dataclass(frozen=True)
class Page:
    version: int
    paddr: int
    kmap_vaddr: int
    dmap_vaddr: int
    prot: int
    offset: int
    len: int


class Minidump:
    """One riscv minidump held in memory."""

    def __init__(self, data: bytes) -> None:
        assert data[:24] == b"minidump FreeBSD/riscv\0\0"
        self.data = data
        self.version = u32(data, 24)
        assert self.version in (1, 2)
        self.msgbufsize = u32(data, 28)
        self.bitmapsize = u32(data, 32)
        self.pmapsize = u32(data, 36)
        self.kernbase = u64(data, 40)
        self.dmapphys = u64(data, 48)
        self.dmapbase = u64(data, 56)
        self.dmapend = u64(data, 64)
        self.dumpavailsize = u32(data, 72) if self.version == 2 else 0
        self.dump_avail_off = PS + rp(self.msgbufsize)
        self.bitmap_off = self.dump_avail_off + rp(self.dumpavailsize)
        self.pmap_off = self.bitmap_off + rp(self.bitmapsize)
        self.sparse_off = self.pmap_off + rp(self.pmapsize)
        self.avail: list[tuple[int, int]] = []
        if self.dumpavailsize:
            off = self.dump_avail_off
            while u64(data, off + 8):
                self.avail.append((u64(data, off), u64(data, off + 8)))
                off += 16
        else:
            self.avail = [(0, self.bitmapsize * 8 * PS)]
        bitmap = data[self.bitmap_off : self.bitmap_off + self.bitmapsize]
        bits = [i for i in range(len(bitmap) * 8) if bitmap[i >> 3] >> (i & 7) & 1]
        self.rank = {bit: n for n, bit in enumerate(bits)}
        self.npages = len(bits)

    @property
    def msgbuf(self) -> bytes:
        return self.data[PS : PS + self.msgbufsize]

    def offset(self, pa: int) -> int:
        adj = 0
        for s, e in self.avail:
            if pa < e:
                if pa < s:
                    return -1
                bit = pa // PS - s // PS + adj
                return self.sparse_off + self.rank[bit] * PS if bit in self.rank else -1
            adj += -(-e // PS) - s // PS
        return -1

    def pte(self, i: int) -> int:
        return u64(self.data, self.pmap_off + 8 * i)

    def translate(self, va: int) -> int | None:
        if self.dmapbase <= va < self.dmapend:
            return va - self.dmapbase + self.dmapphys
        if va >= self.kernbase:
            i = (va - self.kernbase) // PS
            if i >= self.pmapsize // 8:
                return None
            e = self.pte(i)
            if not e & 1 or not e & 0xE:
                return None
            return pte_pa(e) + va % PS
        return None

    def read(self, va: int, size: int) -> bytes | None:
        out = b""
        while size:
            pa = self.translate(va)
            if pa is None:
                return None
            off = self.offset(pa)
            if off < 0:
                return None
            n = min(size, PS - va % PS)
            out += self.data[off + pa % PS : off + pa % PS + n]
            va += n
            size -= n
        return out

    def walk(self) -> list[Page]:
        out = []
        for i in range(self.pmapsize // 8):
            e = self.pte(i)
            if not e & 1 or not e & 0xE:
                continue
            pa = pte_pa(e)
            prot = 1 | (2 if e & 4 else 0) | (4 if e & 8 else 0)
            kva = self.kernbase + i * PS
            dva = self.dmapbase + pa - self.dmapphys
            out.append(Page(2, pa, kva, dva, prot, self.offset(pa), PS))
        return out
