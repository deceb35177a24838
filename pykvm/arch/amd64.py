"""amd64: minidumps (versions 1-3) and ELF full dumps.

Mirrors lib/libkvm/kvm_minidump_amd64.c (``_amd64_minidump_initvtop``,
``_amd64_minidump_vatop``, ``_amd64_minidump_vatop_v1``,
``_amd64_minidump_walk_pages``) and lib/libkvm/kvm_amd64.c
(``_amd64_initvtop``, ``_amd64_vatop``, ``_kvm_pa2off``), with the constants
of kvm_amd64.h and the header of sys/amd64/include/minidump.h
(formats.md section 5).

pykvm departures (formats.md 14): page-table entries are always decoded
little-endian (rows 3, 5); a large-page translation in a full dump is clamped
to its PT_LOAD segment (row 6); an amd64 full dump carrying a
``PT_DUMP_DELTA`` header locates ``KPML4phys`` from it, for kernels not loaded
at 2 MiB physical (row 11, formats.md 5.8).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

from .. import errors as E
from ..constants import (
    ELFCLASS64,
    EM_X86_64,
    ET_EXEC,
    LIBKVM_WALK_PAGES_VERSION,
    PT_DUMP_DELTA,
    VM_PROT_EXECUTE,
    VM_PROT_READ,
    VM_PROT_WRITE,
)
from ..core.elfcore import Phdr, pa2off, read_core_phdrs
from ..core.minidump import SparsePages, init_sparse, read_pmap, round_page
from ..errors import FormatError
from ..image.elf import Ehdr, host_machine
from .base import Backend, HeaderField, HeaderLayout, KvmPage, MinidumpBackend

PAGE_SIZE = 4096
PAGE_SHIFT = 12
PAGE_MASK = PAGE_SIZE - 1
PDRSHIFT = 21
NBPDR = 1 << PDRSHIFT
PDRMASK = NBPDR - 1
PDPSHIFT = 30
NBPDP = 1 << PDPSHIFT
PDPMASK = NBPDP - 1
PML4SHIFT = 39
NPTEPG = 512
PG_V = 0x001
PG_RW = 0x002
PG_PS = 0x080
PG_NX = 1 << 63
PG_FRAME = 0x000FFFFFFFFFF000
PG_PS_FRAME = 0x000FFFFFFFE00000
PG_1GB_FRAME = 0x000FFFFFC0000000
KERNLOAD = 0x200000
U64 = (1 << 64) - 1

MINIDUMP_MAGIC = b"minidump FreeBSD/amd64"
MINIDUMP_VERSION = 3

#: struct minidumphdr (sys/amd64/include/minidump.h), little-endian, 72 bytes.
MINIDUMP_HEADER = HeaderLayout([
    HeaderField("magic", 0, "24s"),
    HeaderField("version", 24, "I"),
    HeaderField("msgbufsize", 28, "I"),
    HeaderField("bitmapsize", 32, "I"),
    HeaderField("pmapsize", 36, "I"),
    HeaderField("kernbase", 40, "Q"),
    HeaderField("dmapbase", 48, "Q"),
    HeaderField("dmapend", 56, "Q"),
    HeaderField("dumpavailsize", 64, "I"),
], 72)

_PT = struct.Struct("<512Q")


def entry_to_prot(entry: int) -> int:
    """``_amd64_entry_to_prot``: READ, plus WRITE for PG_RW, plus EXECUTE without PG_NX."""
    prot = VM_PROT_READ
    if entry & PG_RW:
        prot |= VM_PROT_WRITE
    if not entry & PG_NX:
        prot |= VM_PROT_EXECUTE
    return prot


def amd64_native() -> bool:
    """``_amd64_native``: true when the host is amd64."""
    return host_machine() in ("x86_64", "amd64")


def magic_matches(field: bytes, magic: bytes) -> bool:
    """``strncmp(MINIDUMP_MAGIC, hdr.magic, sizeof(hdr.magic)) == 0``."""
    return field[: len(magic) + 1] == magic + b"\0"


class Amd64Minidump(MinidumpBackend):
    """kvm_minidump_amd64.c: header versions 1, 2 and 3."""

    header_page_size = PAGE_SIZE

    arch = "amd64"
    fmt = "minidump"

    @classmethod
    def probe(cls, ehdr: Ehdr, is_minidump: bool) -> bool:
        """ELFCLASS64, ET_EXEC, EM_X86_64 kernel and a ``minidump`` core."""
        return (ehdr.ei_class == ELFCLASS64 and ehdr.e_type == ET_EXEC
                and ehdr.e_machine == EM_X86_64 and is_minidump)

    def native(self) -> bool:
        """amd64 hosts only."""
        return amd64_native()

    def initvtop(self) -> None:
        """``_amd64_minidump_initvtop``: header checks, dump_avail, bitmap, page map."""
        core = self.kd.core
        raw = core.pread(0, MINIDUMP_HEADER.size)
        if len(raw) != MINIDUMP_HEADER.size:
            raise FormatError(E.CANNOT_READ_DUMP_HEADER)
        h = MINIDUMP_HEADER.unpack(raw, "<")
        version: int = h["version"]
        if not magic_matches(h["magic"], MINIDUMP_MAGIC):
            raise FormatError(E.NOT_A_MINIDUMP)
        if version > MINIDUMP_VERSION or version < 1:
            raise FormatError(E.cformat(E.WRONG_VERSION_LC, MINIDUMP_VERSION, version))
        self.hdr = h
        self._version: int = version
        self.kernbase = h["kernbase"]
        self.dmapbase = h["dmapbase"]
        self.dmapend = h["dmapend"]
        self.pmapsize = h["pmapsize"]
        self.bitmapsize = h["bitmapsize"]
        self.msgbufsize = h["msgbufsize"]
        dumpavailsize = h["dumpavailsize"] if version == MINIDUMP_VERSION else 0
        dump_avail_off = PAGE_SIZE + round_page(self.msgbufsize, PAGE_SIZE)
        bitmap_off = dump_avail_off + round_page(dumpavailsize, PAGE_SIZE)
        pmap_off = bitmap_off + round_page(self.bitmapsize, PAGE_SIZE)
        sparse_off = pmap_off + round_page(self.pmapsize, PAGE_SIZE)
        self.pages: SparsePages = init_sparse(
            core, dumpavailsize=dumpavailsize, dump_avail_off=dump_avail_off,
            bitmapsize=self.bitmapsize, bitmap_off=bitmap_off, sparse_off=sparse_off,
            page_size=PAGE_SIZE, endian="<", word_bits=64)
        self.pmap = read_pmap(core, self.pmapsize, pmap_off)
        self.nentries = self.pmapsize // 8
        self._pmap_q = memoryview(self.pmap)[: self.nentries * 8].cast("B")
        self._ptcache: dict[int, tuple[int, ...]] = {}

    def _entry(self, index: int) -> int:
        """Entry ``index`` of the page-table section, little-endian."""
        return int.from_bytes(self._pmap_q[index * 8:index * 8 + 8], "little")

    def _pt_page(self, pa: int) -> tuple[int, ...] | int:
        """The 512 PTEs of the dumped page-table page at ``pa``.

        -1 when the page is not in the dump, -2 when the core ends inside it.
        Found pages are cached (page-table pages are few and hot).
        """
        ptes = self._ptcache.get(pa)
        if ptes is not None:
            return ptes
        ofs = self.pages.find(pa)
        if ofs == -1:
            return -1
        data = self.kd.core.pread(ofs, PAGE_SIZE)
        if len(data) != PAGE_SIZE:
            return -2
        ptes = _PT.unpack(data)
        if len(self._ptcache) > 4096:
            self._ptcache.clear()
        self._ptcache[pa] = ptes
        return ptes

    def kvatop(self, va: int) -> tuple[int, int]:
        """``_amd64_minidump_kvatop``: dispatch on the header version."""
        if self._version == 1:
            return self._vatop_v1(va)
        return self._vatop(va)

    def _fail(self, va: int, hard: str | None) -> tuple[int, int]:
        kd = self.kd
        if hard is not None:
            kd.err(kd.program, hard)
        kd.err(None, E.cformat(E.INVALID_ADDRESS, va))
        return 0, 0

    def _vatop_v1(self, va: int) -> tuple[int, int]:
        """``_amd64_minidump_vatop_v1``: a flat array of PTEs from kernbase."""
        offset = va & PAGE_MASK
        if va >= self.kernbase:
            idx = (va - self.kernbase) >> PAGE_SHIFT
            if idx >= self.nentries:
                return self._fail(va, None)
            pte = self._entry(idx)
            if not pte & PG_V:
                return self._fail(va, E.AMD64_MD1_PTE_INVALID)
            a = pte & PG_FRAME
            ofs = self.pages.find(a)
            if ofs == -1:
                return self._fail(va, E.cformat(E.AMD64_MD1_PA_ABSENT, a))
            return ofs + offset, PAGE_SIZE - offset
        if self.dmapbase <= va < self.dmapend:
            a = (va - self.dmapbase) & ~PAGE_MASK
            ofs = self.pages.find(a)
            if ofs == -1:
                return self._fail(va, E.cformat(E.AMD64_MD1_DMAP_ABSENT, va))
            return ofs + offset, PAGE_SIZE - offset
        return self._fail(va, E.cformat(E.AMD64_MD1_NOT_DUMPED, va))

    def _vatop(self, va: int) -> tuple[int, int]:
        """``_amd64_minidump_vatop``: PDEs from kernbase, 4 KiB tables from the dump."""
        offset = va & PAGE_MASK
        if va >= self.kernbase:
            idx = (va - self.kernbase) >> PDRSHIFT
            if idx >= self.nentries:
                return self._fail(va, None)
            pde = self._entry(idx)
            if not pde & PG_V:
                return self._fail(va, E.AMD64_MD_PDE_INVALID)
            if not pde & PG_PS:
                a = pde & PG_FRAME
                ptes = self._pt_page(a)
                if ptes == -1:
                    return self._fail(va, E.cformat(E.AMD64_MD_NO_PT, a))
                if isinstance(ptes, int):
                    return self._fail(va, E.cformat(E.AMD64_MD_READ_PT, a))
                pte = ptes[(va >> PAGE_SHIFT) & (NPTEPG - 1)]
                if not pte & PG_V:
                    return self._fail(va, E.AMD64_MD_PTE_INVALID)
                a = pte & PG_FRAME
            else:
                a = (pde & PG_PS_FRAME) + ((va & PDRMASK) ^ offset)
            ofs = self.pages.find(a)
            if ofs == -1:
                return self._fail(va, E.cformat(E.AMD64_MD_PA_ABSENT, a))
            return ofs + offset, PAGE_SIZE - offset
        if self.dmapbase <= va < self.dmapend:
            a = (va - self.dmapbase) & ~PAGE_MASK
            ofs = self.pages.find(a)
            if ofs == -1:
                return self._fail(va, E.cformat(E.AMD64_MD_DMAP_ABSENT, va))
            return ofs + offset, PAGE_SIZE - offset
        return self._fail(va, E.cformat(E.AMD64_MD_NOT_DUMPED, va))

    def walk_pages(self) -> Iterator[KvmPage] | None:
        """``_amd64_minidump_walk_pages`` (versions 2 and 3; version 1 has none)."""
        if self._version < 2:
            return None
        return self._walk()

    def _walk(self) -> Iterator[KvmPage]:
        pages = self.pages
        scratch = bytearray(self.bitmapsize)
        nbytes = len(scratch)

        def mark(pa: int) -> None:
            bit = pages.pa_bit_id(pa)
            if 0 <= bit and bit >> 3 < nbytes:
                scratch[bit >> 3] |= 1 << (bit & 7)

        def page(pa: int, kva: int, dva: int, prot: int, length: int) -> KvmPage:
            # _kvm_visit_cb: kp_offset is looked up on 4 KiB pages, superpages included.
            return KvmPage(LIBKVM_WALK_PAGES_VERSION, pa, kva, dva, prot, pages.find(pa),
                           length)

        for idx in range(self.nentries):
            pde = self._entry(idx)
            va = (self.kernbase + (idx << PDRSHIFT)) & U64
            if not pde & PG_V:
                continue
            if pde & PG_PS:
                pa = ((pde & PG_PS_FRAME) + ((va & PDRMASK) ^ (va & PAGE_MASK))) & U64
                mark(pa)
                yield page(pa, va, (self.dmapbase + pa) & U64, entry_to_prot(pde), NBPDR)
                continue
            ptes = self._pt_page(pde & PG_FRAME)
            if isinstance(ptes, int):
                continue  # page-table pages that were not dumped are skipped
            for pte in ptes:
                if pte & PG_V:
                    pa = pte & PG_FRAME
                    mark(pa)
                    yield page(pa, va, (self.dmapbase + pa) & U64, entry_to_prot(pte),
                               PAGE_SIZE)
                va = (va + PAGE_SIZE) & U64
        for bit in pages.set_bits(scratch):
            pa = pages.bit_id_pa(bit)
            if pa < 0:
                break
            dva = (self.dmapbase + pa) & U64
            if self.dmapend < dva + PAGE_SIZE:
                break
            yield page(pa, 0, dva, VM_PROT_READ | VM_PROT_WRITE, PAGE_SIZE)



class Amd64ElfCore(Backend):
    """kvm_amd64.c: ELF full dumps (and raw ``/dev/fwmem``-style memory)."""

    arch = "amd64"
    fmt = "elf"

    @classmethod
    def probe(cls, ehdr: Ehdr, is_minidump: bool) -> bool:
        """ELFCLASS64, ET_EXEC, EM_X86_64 kernel and a core that is not a minidump."""
        return (ehdr.ei_class == ELFCLASS64 and ehdr.e_type == ET_EXEC
                and ehdr.e_machine == EM_X86_64 and not is_minidump)

    def native(self) -> bool:
        """amd64 hosts only."""
        return amd64_native()

    def initvtop(self) -> None:
        """``_amd64_initvtop``: program headers, ``kernbase``, ``KPML4phys``, the PML4."""
        kd = self.kd
        self.pml4: tuple[int, ...] | None = None
        self.phdrs: list[Phdr] = []
        if not kd.rawdump:
            self.phdrs = read_core_phdrs(kd.core, kd.kernel.ehdr)
        count, values = kd.nlist2_values(["kernbase"])
        if count != 0:
            raise FormatError(E.AMD64_NO_KERNBASE)
        kernbase = values[0]
        count, values = kd.nlist2_values(["KPML4phys"])
        if count != 0:
            raise FormatError(E.AMD64_NO_KPML4PHYS)
        where = (values[0] - kernbase) & U64
        delta = next((p for p in self.phdrs if p.type == PT_DUMP_DELTA), None)
        if delta is not None:
            align = delta.align or KERNLOAD
            where = (values[0] - delta.vaddr - align + delta.paddr) & U64
        raw = kd.read_bootstrap(where, 8)
        if raw is None or len(raw) != 8:
            raise FormatError(E.AMD64_READ_KPML4PHYS)
        pa = int.from_bytes(raw, "little")
        page = kd.read_bootstrap(pa, PAGE_SIZE)
        if page is None or len(page) != PAGE_SIZE:
            raise FormatError(E.AMD64_READ_KPML4PHYS)
        self.pml4 = _PT.unpack(page)

    def cacheable(self) -> bool:
        """Only once the PML4 is loaded (before, addresses are physical)."""
        return self.pml4 is not None

    def _pa2off(self, pa: int) -> tuple[int, int]:
        """``_kvm_pa2off`` for amd64: (file offset, bytes to the end of the page or segment)."""
        if self.kd.rawdump:
            return pa, PAGE_SIZE - (pa & PAGE_MASK)
        return pa2off(self.phdrs, pa)

    def _read_entry(self, pa: int) -> int | None:
        ofs, n = self._pa2off(pa)
        if n < 8:
            return None
        raw = self.kd.core.pread(ofs, 8)
        if len(raw) != 8:
            return -1  # a short pread: libkvm's syserr then shows whatever errno held
        return int.from_bytes(raw, "little")

    def _fail(self, va: int, hard: str, errnum: int | None = None) -> tuple[int, int]:
        kd = self.kd
        if errnum is None:
            kd.err(kd.program, hard)
        else:
            kd.syserr(kd.program, hard, errnum)
        kd.err(None, E.cformat(E.INVALID_ADDRESS, va))
        return 0, 0

    def kvatop(self, va: int) -> tuple[int, int]:
        """``_amd64_vatop``: walk PML4 -> PDP -> PD -> PT through the core's segments."""
        offset = va & PAGE_MASK
        if self.pml4 is None:
            ofs, n = self._pa2off(va)
            if n == 0:
                return self._fail(va, E.AMD64_BOOTSTRAP)
            return ofs, PAGE_SIZE - offset
        pml4e = self.pml4[(va >> PML4SHIFT) & (NPTEPG - 1)]
        if not pml4e & PG_V:
            return self._fail(va, E.AMD64_PML4E_INVALID)
        pdpe = self._read_entry((pml4e & PG_FRAME) + ((va >> PDPSHIFT) & (NPTEPG - 1)) * 8)
        if pdpe is None:
            return self._fail(va, E.AMD64_PDPE_PA)
        if pdpe == -1:
            return self._fail(va, E.AMD64_READ_PDPE, 0)
        if not pdpe & PG_V:
            return self._fail(va, E.AMD64_PDPE_INVALID)
        if pdpe & PG_PS:
            a = (pdpe & PG_1GB_FRAME) + (va & PDPMASK)
            ofs, n = self._pa2off(a)
            if n == 0:
                return self._fail(va, E.AMD64_1GB_ABSENT)
            return ofs, min(NBPDP - (va & PDPMASK), self._seg_left(a))
        pde = self._read_entry((pdpe & PG_FRAME) + ((va >> PDRSHIFT) & (NPTEPG - 1)) * 8)
        if pde is None:
            return self._fail(va, E.AMD64_PDE_PA, 0)
        if pde == -1:
            return self._fail(va, E.AMD64_READ_PDE, 0)
        if not pde & PG_V:
            return self._fail(va, E.AMD64_PDE_INVALID)
        if pde & PG_PS:
            a = (pde & PG_PS_FRAME) + (va & PDRMASK)
            ofs, n = self._pa2off(a)
            if n == 0:
                return self._fail(va, E.AMD64_2MB_ABSENT)
            return ofs, min(NBPDR - (va & PDRMASK), self._seg_left(a))
        pte = self._read_entry((pde & PG_FRAME) + ((va >> PAGE_SHIFT) & (NPTEPG - 1)) * 8)
        if pte is None:
            return self._fail(va, E.AMD64_PTE_PA)
        if pte == -1:
            return self._fail(va, E.AMD64_READ_PTE, 0)
        if not pte & PG_V:
            return self._fail(va, E.AMD64_PTE_INVALID)
        a = (pte & PG_FRAME) + offset
        ofs, n = self._pa2off(a)
        if n == 0:
            return self._fail(va, E.AMD64_ADDR_ABSENT)
        return ofs, min(PAGE_SIZE - offset, self._seg_left(a))

    def _seg_left(self, pa: int) -> int:
        """Bytes from ``pa`` to the end of its segment (row 6 of formats.md 14)."""
        if self.kd.rawdump:
            return 1 << 64
        for p in self.phdrs:
            if p.paddr <= pa < p.paddr + p.memsz:
                return p.paddr + p.memsz - pa
        return 0

    def dumped_pages(self) -> int:
        """Pages of memory in the PT_LOAD segments."""
        return sum(p.memsz for p in self.phdrs if p.type == 1) // PAGE_SIZE
