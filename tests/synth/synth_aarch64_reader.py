"""A struct-only reader of arm64 minidumps (versions 1-3, 4 and 16 KiB pages), for tests.

Written from formats.md 3.1-3.3 and 8.2-8.5 and pykvm's documented departures (README:
EXECUTE when PXN is clear, WRITE for read-only entries with ATTR_SW_DBM, direct-map
aliases ``dmapbase + pa - dmapphys``); it imports nothing from pykvm.
"""

from __future__ import annotations

import struct
from bisect import bisect_right
from dataclasses import dataclass

ATTR_MASK = 0xFFFC000000000FFF
AP_RO = 0x80
DBM = 1 << 51
PXN = 1 << 53


def u32(data: bytes, off: int) -> int:
    return int(struct.unpack_from("<I", data, off)[0])


def u64(data: bytes, off: int) -> int:
    return int(struct.unpack_from("<Q", data, off)[0])


def rp(x: int, ps: int) -> int:
    return (x + ps - 1) // ps * ps


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
    """One arm64 minidump held in memory."""

    def __init__(self, data: bytes) -> None:
        assert data[:24] == b"minidump FreeBSD/arm64\0\0"
        self.data = data
        self.version = u32(data, 24)
        assert 1 <= self.version <= 3
        self.msgbufsize = u32(data, 28)
        self.bitmapsize = u32(data, 32)
        self.pmapsize = u32(data, 36)
        self.kernbase = u64(data, 40)
        self.dmapphys = u64(data, 48)
        self.dmapbase = u64(data, 56)
        self.dmapend = u64(data, 64)
        self.dumpavailsize = u32(data, 72) if self.version >= 2 else 0
        flags = u32(data, 76) if self.version >= 3 else 0
        self.ps = {0: 4096, 1: 16384}[flags & 3]
        ps = self.ps
        self.dump_avail_off = ps + rp(self.msgbufsize, ps)
        self.bitmap_off = self.dump_avail_off + rp(self.dumpavailsize, ps)
        self.pmap_off = self.bitmap_off + rp(self.bitmapsize, ps)
        self.sparse_off = self.pmap_off + rp(self.pmapsize, ps)
        if self.dumpavailsize:
            self.avail: list[tuple[int, int]] = []
            off = self.dump_avail_off
            while u64(data, off + 8):
                self.avail.append((u64(data, off), u64(data, off + 8)))
                off += 16
        else:
            self.avail = [(0, self.bitmapsize * 8 * ps)]
        bitmap = data[self.bitmap_off : self.bitmap_off + self.bitmapsize]
        self.set_bits = [i for i in range(len(bitmap) * 8) if bitmap[i >> 3] >> (i & 7) & 1]
        self.rank = {bit: n for n, bit in enumerate(self.set_bits)}
        self.starts = [s for s, _ in self.avail]

    @property
    def msgbuf(self) -> bytes:
        return self.data[self.ps : self.ps + self.msgbufsize]

    def bit_id(self, pa: int) -> int | None:
        ps = self.ps
        adj = 0
        for s, e in self.avail:
            if pa < e:
                return pa // ps - s // ps + adj if pa >= s else None
            adj += -(-e // ps) - s // ps
        return None

    def offset(self, pa: int) -> int:
        """File offset of the page holding ``pa``, or -1."""
        bit = self.bit_id(pa)
        if bit is None or bit not in self.rank:
            return -1
        return self.sparse_off + self.rank[bit] * self.ps

    def l3(self, i: int) -> int:
        return u64(self.data, self.pmap_off + 8 * i)

    def translate(self, va: int) -> int | None:
        """Physical address of ``va`` (None when unmapped)."""
        ps = self.ps
        if self.dmapbase <= va < self.dmapend:
            return va - self.dmapbase + self.dmapphys
        if va >= self.kernbase:
            i = (va - self.kernbase) // ps
            if i >= self.pmapsize // 8:
                return None
            e = self.l3(i)
            if e & 3 != 3:
                return None
            return (e & ~ATTR_MASK) + va % ps
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
            n = min(size, self.ps - va % self.ps)
            out += self.data[off + pa % self.ps : off + pa % self.ps + n]
            va += n
            size -= n
        return out

    def walk(self) -> list[Page]:
        out = []
        for i in range(self.pmapsize // 8):
            e = self.l3(i)
            if e & 3 != 3:
                continue
            pa = e & ~ATTR_MASK
            prot = 1
            if not e & AP_RO or e & DBM:
                prot |= 2
            if not e & PXN:
                prot |= 4
            out.append(
                Page(
                    2,
                    pa,
                    self.kernbase + i * self.ps,
                    self.dmapbase + pa - self.dmapphys,
                    prot,
                    self.offset(pa),
                    self.ps,
                )
            )
        return out

    def dumped(self) -> list[int]:
        """Physical page addresses of every set bit, in file order."""
        ps = self.ps
        firsts = []
        adj = 0
        for s, e in self.avail:
            firsts.append(adj)
            adj += -(-e // ps) - s // ps
        out = []
        for bit in self.set_bits:
            k = bisect_right(firsts, bit) - 1
            out.append((self.avail[k][0] // ps + bit - firsts[k]) * ps)
        return out
