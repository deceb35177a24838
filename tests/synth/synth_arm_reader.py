"""A test-local reader of arm minidumps and full dumps, written from formats.md section 7
with ``struct`` only (it imports nothing from pykvm), to read synthetic arm dumps back.

Where the kernel's side says otherwise than formats.md, this reader follows the kernel
(the writers are what made the bytes):

* the minidump PTE section is not padded: page data start at ``pmap_off + ptesize``
  (sys/arm/arm/minidump_machdep.c writes the last partial page of PTEs as it is);
* ``kernel_l1pa`` of a pmap-v6 kernel holds the L1 table's *virtual* address
  (pmap-v6.c ``pmap_bootstrap``: ``kernel_l1pa = (vm_paddr_t)kern_pt1``); a value at or
  above ``kernbase`` is converted with the same ``kernbase``/``physaddr`` delta;
* protections are what the MMU grants: ARMv4/v5 (mmuformat V4) have no execute-never
  bit, so every V4 page is executable.
"""

from __future__ import annotations

import struct
from bisect import bisect_right
from dataclasses import dataclass

PS = 4096
PT_LOAD = 1
PT_DUMP_DELTA = 0x6FB5D000


def round_page(x: int) -> int:
    return (x + PS - 1) & ~(PS - 1)


@dataclass
class Kernel:
    """The little a reader needs from the kernel ELF: byte order and symbols."""

    endian: str
    symbols: dict[str, int]

    @classmethod
    def parse(cls, data: bytes) -> Kernel:
        assert data[:4] == b"\x7fELF" and data[4] == 1, "ELF32 kernel"
        e = "<" if data[5] == 1 else ">"
        (e_shoff,) = struct.unpack_from(e + "I", data, 32)
        e_shentsize, e_shnum = struct.unpack_from(e + "HH", data, 46)
        shdrs = [struct.unpack_from(e + "10I", data, e_shoff + i * e_shentsize)
                 for i in range(e_shnum)]
        symbols: dict[str, int] = {}
        for sh in shdrs:
            if sh[1] != 2:  # SHT_SYMTAB
                continue
            strtab = shdrs[sh[6]]
            stroff = strtab[4]
            for off in range(sh[4] + 16, sh[4] + sh[5], 16):
                name, value, _size, _info, _other, _shndx = struct.unpack_from(
                    e + "IIIBBH", data, off
                )
                end = data.index(b"\0", stroff + name)
                nm = data[stroff + name:end].decode()
                if nm and nm not in symbols:
                    symbols[nm] = value
        return cls(e, symbols)


@dataclass(frozen=True)
class Page:
    version: int
    paddr: int
    kmap_vaddr: int
    dmap_vaddr: int
    prot: int
    offset: int
    len: int


class ArmMinidump:
    """formats.md 3 and 7.2-7.5."""

    def __init__(self, kernel: Kernel, core: bytes) -> None:
        e = self.e = kernel.endian
        self.core = core
        magic = core[:24]
        assert magic == b"minidump FreeBSD/arm".ljust(24, b"\0"), magic
        (self.version, self.msgbufsize, self.bitmapsize, self.ptesize, self.kernbase,
         self.arch, self.mmuformat) = struct.unpack_from(e + "7I", core, 24)
        assert self.version in (1, 2)
        self.dumpavailsize = struct.unpack_from(e + "I", core, 52)[0] if self.version == 2 else 0
        if self.mmuformat == 0:
            self.mmuformat = 2
        self.msgbuf_off = PS
        self.dump_avail_off = PS + round_page(self.msgbufsize)
        self.bitmap_off = self.dump_avail_off + round_page(self.dumpavailsize)
        self.pmap_off = self.bitmap_off + round_page(self.bitmapsize)
        self.sparse_off = self.pmap_off + self.ptesize  # unpadded (kernel's side)
        if self.dumpavailsize:
            self.ranges: list[tuple[int, int]] = []
            for i in range(0, self.dumpavailsize, 16):
                s, en = struct.unpack_from(e + "QQ", core, self.dump_avail_off + i)
                if en == 0:
                    break
                self.ranges.append((s, en))
        else:
            self.ranges = [(0, self.bitmapsize * 8 * PS)]
        words = struct.unpack_from(f"{e}{self.bitmapsize // 4}I", core, self.bitmap_off)
        self.bits: list[int] = list(words)
        self.ranks: list[int] = []
        total = 0
        for w in words:
            self.ranks.append(total)
            total += bin(w).count("1")
        self.npages = total
        fmt = f"{e}{self.ptesize // 4}I"
        self.ptes: list[int] = list(struct.unpack_from(fmt, core, self.pmap_off))

    def bit_id(self, pa: int) -> int | None:
        adj = 0
        for s, en in self.ranges:
            if pa < en:
                if pa < s:
                    return None
                return pa // PS - s // PS + adj
            adj += -(-en // PS) - s // PS
        return None

    def offset(self, pa: int) -> int:
        bit = self.bit_id(pa)
        if bit is None or bit >= self.bitmapsize * 8:
            return -1
        w, b = divmod(bit, 32)
        word = self.bits[w]
        if not word >> b & 1:
            return -1
        rank = self.ranks[w] + bin(word & ((1 << b) - 1)).count("1")
        return int(self.sparse_off + rank * PS)

    def entry(self, va: int) -> int | None:
        if va < self.kernbase or va >= 1 << 32:
            return None
        i = (va - self.kernbase) >> 12
        if i >= len(self.ptes):
            return None
        return int(self.ptes[i])

    def pa_of(self, pte: int, va: int) -> int | None:
        t = pte & 3
        if t == 0:
            return None
        if t == 1:
            return (pte & 0xFFFF0000) + (va & 0xF000)
        if self.mmuformat == 1 and t == 3:
            return None
        return pte & 0xFFFFF000

    def translate(self, va: int) -> int | None:
        pte = self.entry(va)
        if pte is None:
            return None
        pa = self.pa_of(pte, va)
        if pa is None:
            return None
        off = self.offset(pa)
        return None if off < 0 else off + (va & 0xFFF)

    def read(self, va: int, size: int) -> bytes | None:
        out = []
        while size:
            off = self.translate(va)
            if off is None:
                return None
            n = min(size, PS - (va & 0xFFF))
            out.append(self.core[off:off + n])
            va += n
            size -= n
        return b"".join(out)

    def prot(self, pte: int) -> int:
        if self.mmuformat == 1:
            return 1 | 4 | (2 if pte & 0x10 else 0)
        if pte & 3 == 1:
            ro, nx = pte & (1 << 13), pte & (1 << 15)
        else:
            ro, nx = pte & 0x80, pte & 1
        return 1 | (0 if ro else 2) | (0 if nx else 4)

    def walk(self) -> list[Page]:
        out = []
        for i, pte in enumerate(self.ptes):
            va = self.kernbase + i * PS
            pa = self.pa_of(pte, va)
            if pa is None:
                continue
            out.append(Page(2, pa, va, 0, self.prot(pte), self.offset(pa), PS))
        return out


class ArmFullDump:
    """formats.md 4 and 7.6, with the hardware's reading of the descriptors."""

    def __init__(self, kernel: Kernel, core: bytes) -> None:
        self.core = core
        assert core[:4] == b"\x7fELF" and core[4] == 1
        e = self.e = "<" if core[5] == 1 else ">"
        assert e == kernel.endian
        e_type, e_machine = struct.unpack_from(e + "HH", core, 16)
        assert (e_type, e_machine) == (4, 40)
        (e_phoff,) = struct.unpack_from(e + "I", core, 28)
        e_phentsize, e_phnum = struct.unpack_from(e + "HH", core, 42)
        self.phdrs = [struct.unpack_from(e + "8I", core, e_phoff + i * e_phentsize)
                      for i in range(e_phnum)]
        loads = sorted((p[3], p[4], p[1]) for p in self.phdrs if p[0] == PT_LOAD)
        self.starts = [p for p, _, _ in loads]
        self.loads = loads
        delta = [p for p in self.phdrs if p[0] == PT_DUMP_DELTA]
        if delta:
            self.kernbase, self.physaddr = delta[0][2], delta[0][3]
        else:
            self.kernbase = kernel.symbols["kernbase"]
            self.physaddr = kernel.symbols["physaddr"]
        raw = self.phys(kernel.symbols["kernel_l1pa"] - self.kernbase + self.physaddr, 4)
        assert raw is not None
        l1pa = int(struct.unpack(e + "I", raw)[0])
        if l1pa >= self.kernbase:  # pmap-v6 stores the L1 table's KVA
            l1pa = l1pa - self.kernbase + self.physaddr
        self.l1pa = l1pa
        l1 = self.phys(l1pa, 16384)
        assert l1 is not None
        self.l1: list[int] = list(struct.unpack(f"{e}4096I", l1))

    def phys_offset(self, pa: int) -> tuple[int, int] | None:
        i = bisect_right(self.starts, pa) - 1
        if i < 0:
            return None
        start, size, off = self.loads[i]
        if pa >= start + size:
            return None
        return off + pa - start, start + size - pa

    def phys(self, pa: int, size: int) -> bytes | None:
        out = []
        while size:
            hit = self.phys_offset(pa)
            if hit is None:
                return None
            off, left = hit
            n = min(size, left)
            out.append(self.core[off:off + n])
            pa += n
            size -= n
        return b"".join(out)

    def translate(self, va: int) -> int | None:
        if va >= 1 << 32:
            return None
        pd = self.l1[va >> 20]
        t = pd & 3
        if t == 2:
            if pd & (1 << 18):
                return (pd & 0xFF000000) + (va & 0xFFFFFF)
            return (pd & 0xFFF00000) + (va & 0xFFFFF)
        if t != 1:
            return None
        raw = self.phys((pd & 0xFFFFFC00) + ((va >> 12) & 0xFF) * 4, 4)
        if raw is None:
            return None
        pte = int(struct.unpack(self.e + "I", raw)[0])
        t2 = pte & 3
        if t2 == 0:
            return None
        if t2 == 1:
            return (pte & 0xFFFF0000) | (va & 0xFFFF)
        return (pte & 0xFFFFF000) | (va & 0xFFF)

    def read(self, va: int, size: int) -> bytes | None:
        out = []
        while size:
            pa = self.translate(va)
            if pa is None:
                return None
            n = min(size, PS - (va & 0xFFF))
            data = self.phys(pa, n)
            if data is None:
                return None
            out.append(data)
            va += n
            size -= n
        return b"".join(out)


def open_dump(kernel: bytes, core: bytes) -> ArmMinidump | ArmFullDump:
    k = Kernel.parse(kernel)
    if core[:8] == b"minidump":
        return ArmMinidump(k, core)
    return ArmFullDump(k, core)
