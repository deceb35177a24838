"""A struct-only reader of the toy architecture's files (synth_toyarch.py), for the tests.

Written from the toy's docstring and formats.md 1.1, 3.1-3.3 and 4.1 with nothing but
``struct``; it imports nothing from pykvm.  The kernel file gives the byte order, class
and symbols; the minidump reader computes the section offsets itself; the ELF reader
handles both classes and byte orders, the ``PT_DUMP_DELTA`` header, the powerpc
"virtual" convention and a leading kerneldumpheader.
"""

from __future__ import annotations

import struct


def rp(x: int, ps: int) -> int:
    return (x + ps - 1) // ps * ps


class Kernel:
    """The kernel ELF: class, byte order and the first value of every symbol name."""

    def __init__(self, data: bytes) -> None:
        assert data[:4] == b"\x7fELF"
        self.is64 = data[4] == 2
        self.e = "<" if data[5] == 1 else ">"
        e = self.e
        if self.is64:
            shoff = struct.unpack_from(e + "Q", data, 40)[0]
            shentsize, shnum, shstrndx = struct.unpack_from(e + "HHH", data, 58)
            shfmt = e + "IIQQQQIIQQ"
        else:
            shoff = struct.unpack_from(e + "I", data, 32)[0]
            shentsize, shnum, shstrndx = struct.unpack_from(e + "HHH", data, 46)
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
    def word(self) -> int:
        return 8 if self.is64 else 4

    def uint(self, raw: bytes) -> int:
        return int.from_bytes(raw, "little" if self.e == "<" else "big")


class Minidump:
    """The toy minidump: header, sections by formats.md 3.1, W-bit bitmap words."""

    def __init__(self, data: bytes, kernel: Kernel, padded: bool = True) -> None:
        e = kernel.e
        self.data, self.k = data, kernel
        assert data[:24] == b"minidump FreeBSD/toy".ljust(24, b"\0")
        (
            self.version,
            self.msgbufsize,
            self.bitmapsize,
            self.pmapsize,
            self.kernbase,
            self.kvm_end,
            self.davail,
            ps,
        ) = struct.unpack_from(e + "IIIIQQII", data, 24)
        self.ps = ps
        off = ps + rp(self.msgbufsize, ps)
        self.dump_avail_off = off
        off += rp(self.davail, ps)
        self.bitmap_off = off
        off += rp(self.bitmapsize, ps)
        self.pmap_off = off
        off += rp(self.pmapsize, ps) if padded else self.pmapsize
        self.sparse_off = off
        self.avail = []
        i = self.dump_avail_off
        while True:
            s, end = struct.unpack_from(e + "QQ", data, i)
            if end == 0:
                break
            self.avail.append((s, end))
            i += 16
        w = kernel.word
        bits = 8 * w
        self.rank: dict[int, int] = {}
        n = 0
        for word_i in range(self.bitmapsize // w):
            raw = data[self.bitmap_off + word_i * w : self.bitmap_off + (word_i + 1) * w]
            value = kernel.uint(raw)
            for b in range(bits):
                if value >> b & 1:
                    self.rank[word_i * bits + b] = n
                    n += 1
        self.npages = n

    def bit_id(self, pa: int) -> int | None:
        adj = 0
        ps = self.ps
        for s, e in self.avail:
            if s <= pa < e:
                return pa // ps - s // ps + adj
            adj += -(-e // ps) - s // ps
        return None

    def page_off(self, pa: int) -> int | None:
        bit = self.bit_id(pa)
        if bit is None or bit not in self.rank:
            return None
        return self.sparse_off + self.rank[bit] * self.ps

    def vtop_off(self, va: int) -> int | None:
        if not self.kernbase <= va < self.kvm_end:
            return None
        w = self.k.word
        i = (va - self.kernbase) // self.ps
        if (i + 1) * w > self.pmapsize:
            return None
        pte = self.k.uint(self.data[self.pmap_off + i * w : self.pmap_off + (i + 1) * w])
        if not pte & 1:
            return None
        page = self.page_off(pte & ~(self.ps - 1))
        return None if page is None else page + va % self.ps

    def read(self, va: int, size: int) -> bytes | None:
        out = []
        while size:
            off = self.vtop_off(va)
            if off is None:
                return None
            n = min(size, self.ps - va % self.ps)
            out.append(self.data[off : off + n])
            va += n
            size -= n
        return b"".join(out)


class ElfCore:
    """A toy full dump (physical chunks with PT_DUMP_DELTA, or powerpc virtual chunks)."""

    def __init__(self, data: bytes, kernel: Kernel, page_size: int) -> None:
        self.prefix = 512 if data.startswith(b"FreeBSD Kernel Dump\0") else 0
        self.data, self.k, self.ps = data, kernel, page_size
        base = self.prefix
        assert data[base : base + 4] == b"\x7fELF"
        is64 = data[base + 4] == 2
        e = "<" if data[base + 5] == 1 else ">"
        if is64:
            phoff = struct.unpack_from(e + "Q", data, base + 32)[0]
            phentsize, phnum = struct.unpack_from(e + "HH", data, base + 54)
            raw = [
                struct.unpack_from(e + "IIQQQQQQ", data, base + phoff + i * phentsize)
                for i in range(phnum)
            ]
            # (type, offset, vaddr, paddr, filesz, memsz, flags, align)
            self.phdrs = [(t, o, v, p, fs, ms, f, a) for t, f, o, v, p, fs, ms, a in raw]
        else:
            phoff = struct.unpack_from(e + "I", data, base + 28)[0]
            phentsize, phnum = struct.unpack_from(e + "HH", data, base + 42)
            self.phdrs = [
                struct.unpack_from(e + "IIIIIIII", data, base + phoff + i * phentsize)
                for i in range(phnum)
            ]
        ones = (1 << 64) - 1 if is64 else 0xFFFFFFFF
        loads = [p for p in self.phdrs if p[0] == 1]
        self.virtual = loads[0][3] == ones
        syms = kernel.symbols
        self.kernbase = syms["kernbase"]
        if not self.virtual:
            delta = next(p for p in self.phdrs if p[0] == 0x6FB5D000)
            self.image_va, self.kernphys = delta[2], delta[3]
            w = kernel.word
            self.root = kernel.uint(self.phys(self.image_pa(syms["toy_root"]), w) or b"")
            self.kvm_end = kernel.uint(self.phys(self.image_pa(syms["kernel_vm_end"]), w) or b"")

    def image_pa(self, va: int) -> int:
        return va - self.image_va + self.kernphys

    def phys(self, pa: int, size: int) -> bytes | None:
        for t, off, _, p, _, memsz, _, _ in self.phdrs:
            if t == 1 and p <= pa and pa + size <= p + memsz:
                start = self.prefix + off + pa - p
                return self.data[start : start + size]
        return None

    def vtop(self, va: int) -> int | None:
        """The toy MMU walk (physical cores only)."""
        if not self.kernbase <= va < self.kvm_end:
            return None
        w, ps = self.k.word, self.ps
        p = ps.bit_length() - 1
        b = (ps // w).bit_length() - 1
        raw = self.phys(self.root + ((va >> (p + b)) & ((1 << b) - 1)) * w, w)
        if raw is None:
            return None
        top = self.k.uint(raw)
        if not top & 1:
            return None
        if top & 4:
            return (top & ~(ps - 1)) + (va & ((1 << (p + b)) - 1))
        raw = self.phys((top & ~(ps - 1)) + ((va >> p) & ((1 << b) - 1)) * w, w)
        if raw is None:
            return None
        pte = self.k.uint(raw)
        if not pte & 1:
            return None
        return (pte & ~(ps - 1)) + va % ps

    def read(self, va: int, size: int) -> bytes | None:
        if self.virtual:
            for t, off, v, _, _, memsz, _, _ in self.phdrs:
                if t == 1 and v <= va and va + size <= v + memsz:
                    start = self.prefix + off + va - v
                    return self.data[start : start + size]
            return None
        out = []
        while size:
            pa = self.vtop(va)
            if pa is None:
                return None
            n = min(size, self.ps - va % self.ps)
            got = self.phys(pa, n)
            if got is None:
                return None
            out.append(got)
            va += n
            size -= n
        return b"".join(out)
