"""A struct-only reader of powerpc and powerpc64 kernels, full dumps and minidumps (tests).

Written from formats.md (1.1, 3.1-3.3, 4.1, 10, 11) and the FreeBSD kernel headers
(sys/powerpc/include/minidump.h, pte.h, slb.h), with pykvm's rules where they depart from
libkvm (the HPT walk reports the true effective address and the hardware protection,
16 MiB kernel pages translate wherever the kernel put them, PTE words are decoded in the
order the MMU module dumped them).  It imports nothing from pykvm: it is an independent
second reading of the files the synthetic writers produce.
"""

from __future__ import annotations

import struct

PS = 4096


def rp(x: int, ps: int = PS) -> int:
    return (x + ps - 1) // ps * ps


class Fault(Exception):
    """The address does not translate (or its page is not in the dump)."""


class Kernel:
    """The kernel ELF: class, byte order, e_type/e_machine/e_flags and symbol values."""

    def __init__(self, data: bytes) -> None:
        assert data[:4] == b"\x7fELF"
        self.is64 = data[4] == 2
        self.e = "<" if data[5] == 1 else ">"
        e = self.e
        self.e_type, self.e_machine = struct.unpack_from(e + "HH", data, 16)
        if self.is64:
            (self.e_flags,) = struct.unpack_from(e + "I", data, 48)
            (shoff,) = struct.unpack_from(e + "Q", data, 40)
            shentsize, shnum = struct.unpack_from(e + "HH", data, 58)
            shfmt = e + "IIQQQQIIQQ"
        else:
            (self.e_flags,) = struct.unpack_from(e + "I", data, 36)
            (shoff,) = struct.unpack_from(e + "I", data, 32)
            shentsize, shnum = struct.unpack_from(e + "HH", data, 46)
            shfmt = e + "IIIIIIIIII"
        shdrs = [struct.unpack_from(shfmt, data, shoff + i * shentsize) for i in range(shnum)]
        symtab = next(sh for sh in shdrs if sh[1] == 2)
        strtab = shdrs[symtab[6]]
        self.symbols: dict[str, int] = {}
        self.sizes: dict[str, int] = {}
        for i in range(1, symtab[5] // symtab[9]):
            off = symtab[4] + i * symtab[9]
            if self.is64:
                name, _, _, _, value, size = struct.unpack_from(e + "IBBHQQ", data, off)
            else:
                name, value, size, _, _, _ = struct.unpack_from(e + "IIIBBH", data, off)
            start = strtab[4] + name
            text = data[start : data.index(b"\0", start)].decode()
            if text and text not in self.symbols:
                self.symbols[text] = value
                self.sizes[text] = size

    @property
    def order(self) -> str:
        return "little" if self.e == "<" else "big"


# ---------------------------------------------------------------------------- full dumps
class FullCore:
    """A powerpc / powerpc64 ELF core, optionally behind a kerneldumpheader (10.1, 11.6)."""

    def __init__(self, data: bytes, kernel: Kernel) -> None:
        self.data = data
        self.prefix = 0
        if not self._elf_ok(0):
            assert data[:20].rstrip(b"\0") == b"FreeBSD Kernel Dump"
            arch = data[20:32].rstrip(b"\0").decode()
            assert arch in ("powerpc", "powerpc64", "powerpc64le")
            self.prefix = 512
            assert self._elf_ok(512)
        self.is64 = data[self.prefix + 4] == 2
        self.e = "<" if data[self.prefix + 5] == 1 else ">"
        assert self.is64 == kernel.is64 and self.e == kernel.e
        e, p = self.e, self.prefix
        if self.is64:
            (phoff,) = struct.unpack_from(e + "Q", data, p + 32)
            phentsize, phnum = struct.unpack_from(e + "HH", data, p + 54)
        else:
            (phoff,) = struct.unpack_from(e + "I", data, p + 28)
            phentsize, phnum = struct.unpack_from(e + "HH", data, p + 42)
        self.phdrs: list[tuple[int, int, int, int, int]] = []  # type, off, vaddr, paddr, memsz
        for i in range(phnum):
            at = p + phoff + i * phentsize
            if self.is64:
                t, _, off, va, pa, _, memsz, _ = struct.unpack_from(e + "IIQQQQQQ", data, at)
            else:
                t, off, va, pa, _, memsz, _, _ = struct.unpack_from(e + "IIIIIIII", data, at)
            self.phdrs.append((t, off, va, pa, memsz))
        self.ones = (1 << 64) - 1 if self.is64 else 0xFFFFFFFF

    def _elf_ok(self, at: int) -> bool:
        d = self.data
        if d[at : at + 4] != b"\x7fELF" or d[at + 6] != 1 or d[at + 7] != 255:
            return False
        e = "<" if d[at + 5] == 1 else ">"
        t, m = struct.unpack_from(e + "HH", d, at + 16)
        return t == 4 and m in (20, 21)

    @property
    def virtual(self) -> bool:
        return self.phdrs[0][3] == self.ones

    def read(self, va: int, size: int) -> bytes:
        if not self.virtual:
            raise Fault("Raw corefile not supported")
        out = b""
        while size > 0:
            for _, off, pv, _, memsz in self.phdrs:
                if pv <= va < pv + memsz:
                    n = min(size, pv + memsz - va)
                    start = self.prefix + off + va - pv
                    out += self.data[start : start + n]
                    va += n
                    size -= n
                    break
            else:
                raise Fault(hex(va))
        return out


# ---------------------------------------------------------------------------- minidumps
KERNEL_VSID_BIT = 1 << 36
VSID_MASK36 = (1 << 36) - 1
HASH_MASK = 0x7FFFFFFFFF
INV_13BB = pow(0x13BB, -1, 1 << 36)


def kernel_vsid(esid: int) -> int:
    """``KERNEL_VSID`` (slb.h)."""
    return ((((esid << 8) | (esid >> 28)) * 0x13BB) & VSID_MASK36) | KERNEL_VSID_BIT


def esid_of(vsid: int) -> int:
    """Invert ``KERNEL_VSID`` (the multiplier is odd, the swizzle a 36-bit rotation)."""
    rot = ((vsid & VSID_MASK36) * INV_13BB) & VSID_MASK36
    return ((rot >> 8) | (rot << 28)) & VSID_MASK36


class Minidump:
    """The powerpc64 minidump (11.2): header, sections, bitmap, HPT or radix tables."""

    def __init__(self, data: bytes, kernel: Kernel) -> None:
        self.data, self.k = data, kernel
        e = kernel.e
        assert data[:32].rstrip(b"\0") == b"minidump FreeBSD/powerpc64"
        self.mmu = data[32:64].split(b"\0")[0].decode()
        (
            self.version,
            self.msgbufsize,
            self.bitmapsize,
            self.pmapsize,
            self.kernbase,
            self.kernend,
            self.dmapbase,
            self.dmapend,
            self.hw_direct_map,
            self.startkernel,
            self.endkernel,
            self.dumpavailsize,
        ) = struct.unpack_from(e + "IIIIQQQQi4xQQI", data, 64)
        self.dump_avail_off = PS + rp(self.msgbufsize)
        self.bitmap_off = self.dump_avail_off + rp(self.dumpavailsize)
        self.pmap_off = self.bitmap_off + rp(self.bitmapsize)
        self.sparse_off = self.pmap_off + rp(self.pmapsize)
        self.ranges: list[tuple[int, int]] = []
        at = self.dump_avail_off
        while True:
            s, end = struct.unpack_from(e + "QQ", data, at)
            if end == 0:
                break
            self.ranges.append((s, end))
            at += 16
        words = struct.unpack_from(f"{e}{self.bitmapsize // 8}Q", data, self.bitmap_off)
        self.rank: dict[int, int] = {}
        n = 0
        for w, word in enumerate(words):
            for b in range(64):
                if word >> b & 1:
                    pa = self.bit_pa(w * 64 + b)
                    if pa is not None:
                        self.rank[pa] = n
                    n += 1
        self.nbits = n
        self.disp = (self.startkernel - 0x100100) & ((1 << 64) - 1)
        self.radix = self.mmu == "mmu_radix"
        pte_order = ">" if self.mmu == "mmu_g5" or self.radix else e
        self.pmap = data[self.pmap_off : self.pmap_off + self.pmapsize]
        self.words = struct.unpack(f"{pte_order}{self.pmapsize // 8}Q", self.pmap)

    def bit_pa(self, bit: int) -> int | None:
        for s, e in self.ranges:
            n = -(-e // PS) - s // PS
            if bit < n:
                return (s // PS + bit) * PS
            bit -= n
        return None

    def offset(self, pa: int) -> int:
        """File offset of the dumped page holding ``pa`` (Fault when absent)."""
        page = pa & ~(PS - 1)
        if page not in self.rank:
            raise Fault(hex(pa))
        return self.sparse_off + self.rank[page] * PS + (pa & (PS - 1))

    def page_offset(self, pa: int) -> int:
        page = pa & ~(PS - 1)
        return self.sparse_off + self.rank[page] * PS if page in self.rank else -1

    # ------------------------------------------------------------------ translation
    def translate(self, va: int) -> int:
        if va < self.dmapbase:
            va = (va + self.disp) & ((1 << 64) - 1)
        if self.dmapbase <= va <= self.dmapend:
            return va - self.dmapbase
        if va < self.kernbase:
            raise Fault(hex(va))
        return self.radix_lookup(va) if self.radix else self.hpt_lookup(va)

    def read(self, va: int, size: int) -> bytes:
        out = b""
        while size > 0:
            pa = self.translate(va)
            n = min(size, PS - (va & (PS - 1)))
            off = self.offset(pa)
            out += self.data[off : off + n]
            va += n
            size -= n
        return out

    # HPT --------------------------------------------------------------------------
    def pte(self, ptex: int) -> tuple[int, int]:
        return self.words[2 * ptex], self.words[2 * ptex + 1]

    def hpt_lookup(self, ea: int) -> int:
        vsid = kernel_vsid(ea >> 28)
        nptegs = self.pmapsize // 128
        for shift in (12, 24):
            page = (ea & 0x0FFFFFFF) >> shift
            h = (vsid & HASH_MASK) ^ page
            for hid in (0, 2):
                pteg = (h if hid == 0 else ~h) & (nptegs - 1)
                for ptex in range(pteg * 8, pteg * 8 + 8):
                    hi, lo = self.pte(ptex)
                    if not hi & 1 or hi & 2 != hid or hi >> 62:
                        continue
                    if (hi & 0x3FFFFFFFFFFFF000) >> 12 != vsid:
                        continue
                    if bool(hi & 4) != (shift == 24):
                        continue
                    ava = (hi >> 7) & 0x1F
                    if shift == 12 and ava != page >> 11:
                        continue
                    if shift == 24 and ava >> 1 != page:
                        continue
                    if shift == 24:
                        return (lo & 0x0FFFFFFFFF000000) | (ea & 0xFFFFFF)
                    return (lo & 0x0FFFFFFFFFFFF000) | (ea & 0xFFF)
        raise Fault(hex(ea))

    def hpt_walk(self) -> list[tuple[int, int, int, int, int, int, int]]:
        out = []
        nptegs = self.pmapsize // 128
        for ptex in range(self.pmapsize // 16):
            hi, lo = self.pte(ptex)
            if not hi & 1 or hi >> 62:
                continue
            vsid = (hi & 0x3FFFFFFFFFFFF000) >> 12
            if not vsid & KERNEL_VSID_BIT:
                continue
            esid = esid_of(vsid)
            assert kernel_vsid(esid) == vsid
            h = ptex >> 3
            if hi & 2:
                h = ~h & (nptegs - 1)
            low = (h ^ (vsid & HASH_MASK)) & (nptegs - 1)
            ava = (hi >> 7) & 0x1F
            if hi & 4:
                ea, size, pa = (esid << 28) | ((ava >> 1) << 24), 1 << 24, lo & 0x0FFFFFFFFF000000
            else:
                page = (ava << 11) | (low & 0x7FF)
                ea, size, pa = (esid << 28) | (page << 12), PS, lo & 0x0FFFFFFFFFFFF000
            prot = 1 | (2 if lo & 3 != 3 else 0) | (0 if lo & 4 else 4)
            out.append((2, pa, ea, self.dmapbase + pa, prot, self.page_offset(pa), size))
        return out

    # radix ------------------------------------------------------------------------
    def entry(self, table: int, index: int) -> int:
        return int.from_bytes(self.data[self.offset(table + 8 * index) :][:8], "big")

    def radix_lookup(self, va: int) -> int:
        if (va >> 52) & 0x3FF:
            raise Fault("EA bits 52-61 not zero: segment interrupt")
        e = self.words[(va >> 39) & 8191]
        for shift in (39, 30, 21, 12):
            if not e >> 63:
                raise Fault(hex(va))
            if e >> 62 & 1:
                size = 1 << shift
                return ((e & 0x00FFFFFFFFFFF000) & ~(size - 1)) | (va & (size - 1))
            if shift == 12:
                raise Fault(hex(va))
            e = self.entry(e & 0x00FFFFFFFFFFFF00, (va >> (shift - 9)) & 511)
        raise Fault(hex(va))

    def radix_walk(self) -> list[tuple[int, int, int, int, int, int, int]]:
        out = []

        def prot(e: int) -> int:
            return (1 if e & 6 else 0) | (2 if e & 2 else 0) | (4 if e & 1 else 0)

        def visit(table: int, shift: int, va: int) -> None:
            for j in range(512):
                e = self.entry(table, j)
                if not e >> 63:
                    continue
                sub = va | (j << shift)
                if e >> 62 & 1:
                    if sub >= self.kernbase:
                        size = 1 << shift
                        pa = (e & 0x00FFFFFFFFFFF000) & ~(size - 1)
                        out.append(
                            (2, pa, sub, self.dmapbase + pa, prot(e), self.page_offset(pa), size)
                        )
                elif shift > 12:
                    visit(e & 0x00FFFFFFFFFFFF00, shift - 9, sub)

        for i in range(8192):
            e = self.words[i]
            va = self.dmapbase | (i << 39)
            if e >> 63 and va >= self.kernbase:
                assert not e >> 62 & 1
                visit(e & 0x00FFFFFFFFFFFF00, 30, va)
        return out

    def walk(self) -> list[tuple[int, int, int, int, int, int, int]]:
        return self.radix_walk() if self.radix else self.hpt_walk()
