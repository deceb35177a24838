"""A struct-only reader of mips minidumps, for the tests of pykvm.synth.arch_mips.

Written from formats.md 3.1-3.3 and 9 with nothing but ``struct``; it imports nothing from
pykvm.  One addition from the kernel source: a version-1 dump (FreeBSD <= 12) carries the
kernel's ``uint32_t *vm_page_dump`` bitmap, so its words are 32-bit on every ABI
(sys/mips/mips/minidump_machdep.c: ``CTASSERT(sizeof(*vm_page_dump) == 4)``); version 2 uses
``long`` words (64-bit on n64).  Translation follows pykvm's rules: an address in a hole of
dump_avail is absent, and PTE frames keep all their bits (no 32-bit truncation on o32).
"""

from __future__ import annotations

import struct

PS = 4096
PTE_V = 0x02
EF_MIPS_ABI2 = 0x20


def rp(x: int) -> int:
    return (x + PS - 1) // PS * PS


class Kernel:
    """The kernel ELF: class, byte order, flags and the first value of every symbol name."""

    def __init__(self, data: bytes) -> None:
        assert data[:4] == b"\x7fELF"
        self.is64 = data[4] == 2
        self.e = "<" if data[5] == 1 else ">"
        e = self.e
        self.e_type, self.e_machine = struct.unpack_from(e + "HH", data, 16)
        if self.is64:
            (self.e_flags,) = struct.unpack_from(e + "I", data, 48)
            shoff = struct.unpack_from(e + "Q", data, 40)[0]
            shentsize, shnum, _ = struct.unpack_from(e + "HHH", data, 58)
            shfmt = e + "IIQQQQIIQQ"
        else:
            (self.e_flags,) = struct.unpack_from(e + "I", data, 36)
            shoff = struct.unpack_from(e + "I", data, 32)[0]
            shentsize, shnum, _ = struct.unpack_from(e + "HHH", data, 46)
            shfmt = e + "IIIIIIIIII"
        shdrs = [struct.unpack_from(shfmt, data, shoff + i * shentsize) for i in range(shnum)]
        symtab = next(sh for sh in shdrs if sh[1] == 2)
        strtab = shdrs[symtab[6]]
        self.symbols: dict[str, int] = {}
        for i in range(1, symtab[5] // symtab[9]):
            off = symtab[4] + i * symtab[9]
            if self.is64:
                name, _, _, _, value, _ = struct.unpack_from(e + "IBBHQQ", data, off)
            else:
                name, value, _, _, _, _ = struct.unpack_from(e + "IIIBBH", data, off)
            start = strtab[4] + name
            text = data[start : data.index(b"\0", start)].decode()
            if text:
                self.symbols.setdefault(text, value)

    @property
    def pte_size(self) -> int:
        """formats.md 9.1: 64-bit PTEs for ELFCLASS64 or EF_MIPS_ABI2, else 32-bit."""
        return 8 if self.is64 or self.e_flags & EF_MIPS_ABI2 else 4

    def uint(self, raw: bytes) -> int:
        return int.from_bytes(raw, "little" if self.e == "<" else "big")


class Minidump:
    """Header (9.2), sections (3.1), dump_avail and bitmap (3.2, 3.3), PTE section (9.3)."""

    def __init__(self, data: bytes, kernel: Kernel) -> None:
        e = kernel.e
        self.data, self.k = data, kernel
        assert data[:24] == b"minidump FreeBSD/mips".ljust(24, b"\0")
        (
            self.version,
            self.msgbufsize,
            self.bitmapsize,
            self.ptesize,
            self.kernbase,
            self.dmapbase,
            self.dmapend,
        ) = struct.unpack_from(e + "IIIIQQQ", data, 24)
        assert self.version in (1, 2)
        self.davail = struct.unpack_from(e + "I", data, 64)[0] if self.version == 2 else 0
        self.msgbuf_off = PS
        self.dump_avail_off = PS + rp(self.msgbufsize)
        self.bitmap_off = self.dump_avail_off + rp(self.davail)
        self.pte_off = self.bitmap_off + rp(self.bitmapsize)
        self.sparse_off = self.pte_off + rp(self.ptesize)
        self.avail: list[tuple[int, int]] = []
        if self.davail:
            i = self.dump_avail_off
            while True:
                s, end = struct.unpack_from(e + "QQ", data, i)
                if end == 0:
                    break
                self.avail.append((s, end))
                i += 16
        else:
            self.avail = [(0, self.bitmapsize * 8 * PS)]
        w = 8 if kernel.is64 and self.version == 2 else 4
        self.word_bits = 8 * w
        self.rank: dict[int, int] = {}
        n = 0
        for wi in range(self.bitmapsize // w):
            value = kernel.uint(data[self.bitmap_off + wi * w : self.bitmap_off + (wi + 1) * w])
            while value:
                low = value & -value
                self.rank[wi * 8 * w + low.bit_length() - 1] = n
                n += 1
                value ^= low
        self.npages = n

    # ------------------------------------------------------------------ physical
    def bit_id(self, pa: int) -> int | None:
        adj = 0
        for s, e in self.avail:
            if s <= pa < e:
                return pa // PS - s // PS + adj
            adj += -(-e // PS) - s // PS
        return None

    def page_off(self, pa: int) -> int | None:
        bit = self.bit_id(pa)
        if bit is None or bit not in self.rank:
            return None
        return self.sparse_off + self.rank[bit] * PS

    # ------------------------------------------------------------------ virtual
    def pte(self, index: int) -> int:
        w = self.k.pte_size
        start = self.pte_off + index * w
        return self.k.uint(self.data[start : start + w])

    def pte_pa(self, pte: int) -> int:
        mask = 0x3FFFFFFC0 if self.k.pte_size == 8 else 0x1FFFFFC0
        return ((pte & mask) >> 6) << 12

    def vtop(self, va: int) -> int | None:
        """Physical address of page-aligned ``va``, or None (9.4)."""
        if self.k.is64:
            if 0x8000000000000000 <= va < 0xBFFFFFFFFFFFFFFF:
                return va & 0x0FFFFFFFFFF
            if 0xFFFFFFFF80000000 <= va < 0xFFFFFFFFBFFFFFFF:
                return va & 0x1FFFFFFF
        elif 0x80000000 <= va < 0xBFFFFFFF:
            return va & 0x1FFFFFFF
        if va < self.kernbase:
            return None
        i = (va - self.kernbase) >> 12
        if i >= self.ptesize // self.k.pte_size:
            return None
        pte = self.pte(i)
        if not pte & PTE_V:
            return None
        return self.pte_pa(pte)

    def read(self, va: int, size: int) -> bytes | None:
        out = []
        while size:
            off = va & (PS - 1)
            pa = self.vtop(va - off)
            if pa is None:
                return None
            page = self.page_off(pa)
            if page is None:
                return None
            n = min(size, PS - off)
            out.append(self.data[page + off : page + off + n])
            va += n
            size -= n
        return b"".join(out)

    def walk(self) -> list[tuple[int, int, int, int, int, int, int]]:
        """kvm_walk_pages records (9.5) as (version, pa, kmap, dmap, prot, offset, len)."""
        ro = 1 << (55 if self.k.pte_size == 8 else 29)
        out = []
        for i in range(self.ptesize // self.k.pte_size):
            pte = self.pte(i)
            if not pte & PTE_V:
                continue
            pa = self.pte_pa(pte)
            prot = 0x1 | 0x4 | (0 if pte & ro else 0x2)
            off = self.page_off(pa)
            out.append((2, pa, self.kernbase + i * PS, 0, prot, -1 if off is None else off, PS))
        return out
