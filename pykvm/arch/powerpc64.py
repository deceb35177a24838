"""powerpc64 (big- and little-endian): virtual ELF full dumps and minidumps (HPT, radix).

Mirrors lib/libkvm/kvm_powerpc64.c (full dumps, both byte orders; the reader
is :class:`~pykvm.arch.powerpc.VirtualElfCore`), kvm_minidump_powerpc64.c
(``_powerpc64_minidump_probe``, ``_powerpc64_minidump_initvtop``,
``_powerpc64_kerndisp``, ``_powerpc64_native``), the MMU back ends
kvm_minidump_powerpc64_hpt.c (``slb_init``, ``slb_search``, ``pte_search``,
``ppc64mmu_hpt_kvatop``, ``slb_vsid_search``, ``get_ea``,
``ppc64mmu_hpt_walk_pages``) and kvm_minidump_powerpc64_radix.c
(``ppc64mmu_radix_init``, ``radix_lookup``, ``ppc64mmu_radix_kvatop``,
``radix_walk_table``, ``ppc64mmu_radix_walk_pages``), with the constants of
kvm_powerpc64.h and the header of sys/powerpc/include/minidump.h
(formats.md section 11).

The kernel is position independent: symbol values of the kernel file are
based at ``PPC64_KERNBASE`` (0x100100) and both MMU back ends first move an
address below the direct map by ``startkernel - 0x100100`` (kvm_kerndisp).

pykvm departures (formats.md 14):

* row 4: the minidump header is decoded in the kernel's byte order (the
  kernel writes it natively); a little-endian kernel's header that only makes
  sense big-endian (libkvm's unconditional ``be32toh``) is read big-endian.
* row 3: the bitmap is read as 64-bit words of the kernel's byte order.
* row 7 (HPT walk): the protection is the hardware's (WRITE unless PP is
  read-only 0b11, EXECUTE unless the no-execute bit is set); the effective
  address keeps only the hash bits the table size defines, and takes the page
  size from the PTE itself; ``kp_offset`` is looked up on 4 KiB pages.
* HPT translation: a kernel address whose 4 KiB search fails is searched
  again as a 16 MiB page (segments holding large pages, such as the
  ``vm_page_array``, which libkvm's software SLB does not mark large).
* HPT segments: the kernel gives every segment but the user window
  (``USER_ADDR``) its ``KERNEL_VSID`` when first touched
  (``handle_kernel_slb_spill`` -> ``kernel_va_to_slbv``, sys/powerpc/aim/slb.c),
  so a kernel PTE in any such segment is a mapping the hardware uses:
  ``vm_page_array`` at 0xd000000000000000 (``moea64_page_array_startup``),
  direct-map RAM above ``dmapbase + bitmapsize * 8 * 4096`` (version 2
  bitmaps skip the holes between ``dump_avail`` ranges) and the VA = PA
  mapping of the page table that ``mmu_g5`` makes without a direct map
  (``moea64_bootstrap_native``).  libkvm's software SLB only covers kernbase
  to kernend and that part of the direct map.  Translation and the walk use
  the kernel's segments; where no PTE is found (or the walk meets a VSID no
  kernel segment has) libkvm's messages and early stop are kept.
* HPT byte order: ``mmu_phyp`` stores each ``H_READ`` result as a native
  integer (sys/powerpc/pseries/mmu_phyp.c ``mphyp_dump_pmap``), so its page
  table is in the kernel's byte order; ``mmu_g5`` dumps the table as it is
  in memory, big-endian (moea64_native.c).  libkvm reads both big-endian.
* Radix translation: the kernel's tree serves quadrant 3 effective
  addresses of its 52-bit space (``RTS_SIZE``, sys/powerpc/aim/mmu_radix.c),
  0xc000000000000000 to 0xc00fffffffffffff; any other address takes a
  segment interrupt (Power ISA 3.0) and is invalid.  libkvm indexes the root
  with bits 39-51 only and reads other mappings' bytes for them.
* The software SLB is not materialised: segment lookups by ESID and by VSID
  are computed (``KERNEL_VSID`` is a bijection), so ``cannot allocate MMU
  data`` and ``cannot allocate slbs`` cannot occur.
"""

from __future__ import annotations

import struct
import sys
from abc import ABC, abstractmethod
from collections.abc import Generator, Iterator
from typing import Any, ClassVar

from .. import errors as E
from ..constants import (
    ELFCLASS64,
    ELFDATA2LSB,
    ELFDATA2MSB,
    EM_PPC64,
    ET_DYN,
    LIBKVM_WALK_PAGES_VERSION,
    VM_PROT_EXECUTE,
    VM_PROT_READ,
    VM_PROT_WRITE,
)
from ..core.minidump import SparsePages, init_sparse, read_pmap, round_page
from ..errors import FormatError
from ..image.elf import Ehdr, host_machine
from .base import HeaderField, HeaderLayout, KvmPage, MinidumpBackend
from .powerpc import (
    ELF64_EHDR,
    ELF64_PHDR,
    VirtualElfCore,
    cstr_equals,
    powerpc_host_bits,
)

U64 = (1 << 64) - 1

# kvm_powerpc64.h
PPC64_KERNBASE = 0x100100
PPC64_PAGE_SHIFT = 12
PPC64_PAGE_SIZE = 1 << PPC64_PAGE_SHIFT
PPC64_PAGE_MASK = PPC64_PAGE_SIZE - 1
PPC64_MMU_G5 = b"mmu_g5"
PPC64_MMU_PHYP = b"mmu_phyp"
PPC64_MMU_RADIX = b"mmu_radix"

# sys/powerpc/include/minidump.h
MINIDUMP_MAGIC = b"minidump FreeBSD/powerpc64"
MINIDUMP_VERSION = 2

#: struct minidumphdr, 144 bytes, written in the kernel's byte order.
MINIDUMP_HEADER = HeaderLayout([
    HeaderField("magic", 0, "32s"),
    HeaderField("mmu_name", 32, "32s"),
    HeaderField("version", 64, "I"),
    HeaderField("msgbufsize", 68, "I"),
    HeaderField("bitmapsize", 72, "I"),
    HeaderField("pmapsize", 76, "I"),
    HeaderField("kernbase", 80, "Q"),
    HeaderField("kernend", 88, "Q"),
    HeaderField("dmapbase", 96, "Q"),
    HeaderField("dmapend", 104, "Q"),
    HeaderField("hw_direct_map", 112, "i"),
    HeaderField("startkernel", 120, "Q"),
    HeaderField("endkernel", 128, "Q"),
    HeaderField("dumpavailsize", 136, "I"),
], 144)

# kvm_minidump_powerpc64_hpt.c: segments, SLB and PTE fields
LP_PAGE_SHIFT = 24
LP_PAGE_SIZE = 1 << LP_PAGE_SHIFT
LP_PAGE_MASK = 0x00FFFFFF
SEGMENT_SHIFT = 28
SEGMENT_LENGTH = 1 << SEGMENT_SHIFT
SLBE_ESID_MASK = 0xFFFFFFFFF0000000
VSID_VRMA = 0x1FFFFFF
LPTEH_B_MASK = 0xC000000000000000
LPTEH_BIG = 0x4
LPTEH_HID = 0x2
LPTEH_VALID = 0x1
LPTEL_NOEXEC = 0x4
LPTEL_PP_MASK = 0x3
LPTEL_BR = 0x3
LPTEL_RW = 0x2
PTEH_AVA_VSID_MASK = 0x3FFFFFFFFFFFF000
PTEH_AVA_VSID_SHIFT = 12
PTEH_AVA_PAGE_MASK = 0xF80
PTEH_AVA_PAGE_SHIFT = 7
PTEL_PA_MASK = 0x0FFFFFFFFFFFF000
PTEL_LP_PA_MASK = 0x0FFFFFFFFF000000
PTE_HASH_MASK = 0x0000007FFFFFFFFF
KERNEL_VSID_BIT = 0x0000001000000000
KERNEL_VSID_MULT = 0x13BB
PTE_SIZE = 16
PTEG_SIZE = 8 * PTE_SIZE
#: (AVA_PAGE_SHIFT(b), VA_PAGE_SHIFT(b)) for the two base page sizes.
PAGE_SHIFTS = {PPC64_PAGE_SHIFT: (0, 11), LP_PAGE_SHIFT: (1, 0)}

#: ``USER_ADDR`` (sys/powerpc/include/sr.h): the segment through which the kernel reaches
#: the current process (copyin/copyout); it holds a user VSID, never a kernel one.
USER_ADDR = 0xC00FFFFFF0000000
USER_ESID = USER_ADDR >> SEGMENT_SHIFT

_ESID_BITS = 36
_ESID_MASK = (1 << _ESID_BITS) - 1
#: Inverse of the KERNEL_VSID multiplier modulo 2**36 (the multiplier is odd).
_VSID_MULT_INV = pow(KERNEL_VSID_MULT, -1, 1 << _ESID_BITS)

# kvm_minidump_powerpc64_radix.c
RADIX_ROOT_SIZE = 1 << 16
RADIX_ROOT_ENTRIES = RADIX_ROOT_SIZE // 8
RADIX_ENTRIES = PPC64_PAGE_SIZE // 8
RADIX_L1_SHIFT = 39
RADIX_L2_SHIFT = 30
RADIX_L3_SHIFT = 21
RPTE_VALID = 0x8000000000000000
RPTE_LEAF = 0x4000000000000000
RPTE_RPN_MASK = 0x00FFFFFFFFFFF000
RPDE_NLB_MASK = 0x00FFFFFFFFFFFF00
RPTE_EAA_R = 0x4
RPTE_EAA_W = 0x2
RPTE_EAA_X = 0x1
#: radix_lookup's level shifts, root first.
RADIX_SHIFTS = (RADIX_L1_SHIFT, RADIX_L2_SHIFT, RADIX_L3_SHIFT, PPC64_PAGE_SHIFT)
#: The effective addresses the kernel's radix tree translates: quadrant 3 (EA bits 62-63)
#: with bits 52-61 clear, the tree being 52 bits (mmu_radix.c ``RTS_SIZE``); the hardware
#: raises a segment interrupt for the others (Power ISA 3.0, radix tree translation).
RADIX_EA_CHECK_MASK = 0xFFF0000000000000
RADIX_KERNEL_EA = 0xC000000000000000

_ROOT = struct.Struct(f">{RADIX_ROOT_ENTRIES}Q")
_TABLE = struct.Struct(f">{RADIX_ENTRIES}Q")

#: radix_lookup's answer when a table page is missing (its message already stored).
_MISSING = -1


def to_signed64(v: int) -> int:
    """``v`` as a C ``int64_t`` (``kssize_t``)."""
    v &= U64
    return v - (1 << 64) if v >> 63 else v


def to_signed32(v: int) -> int:
    """``v`` as a C ``int`` (how ``%d`` prints a ``uint32_t``)."""
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v >> 31 else v


def kernel_vsid(esid: int) -> int:
    """``KERNEL_VSID(esid)``: the VSID FreeBSD gives a kernel segment."""
    return (((((esid << 8) | (esid >> 28)) * KERNEL_VSID_MULT) & (KERNEL_VSID_BIT - 1))
            | KERNEL_VSID_BIT)


def kernel_esid(vsid: int) -> int | None:
    """The ESID whose ``KERNEL_VSID`` is ``vsid``; None when no ESID has it."""
    if vsid >> _ESID_BITS != 1:
        return None
    rot = ((vsid & _ESID_MASK) * _VSID_MULT_INV) & _ESID_MASK
    return (rot >> 8) | ((rot & 0xFF) << 28)


def powerpc64_host() -> bool:
    """A 64-bit powerpc host (either byte order): ``__powerpc64__``."""
    return powerpc_host_bits(host_machine()) == 64


class Powerpc64ElfCore(VirtualElfCore):
    """kvm_powerpc64.c, big-endian kernels (formats.md 11.6)."""

    arch = "powerpc64"
    ELF_CLASS: ClassVar[int] = ELFCLASS64
    MACHINE: ClassVar[int] = EM_PPC64
    DATA_ENCODINGS: ClassVar[tuple[int, ...]] = (ELFDATA2MSB, ELFDATA2LSB)
    DUMP_ARCHES: ClassVar[tuple[bytes, ...]] = (b"powerpc64", b"powerpc64le")
    EHDR: ClassVar[HeaderLayout] = ELF64_EHDR
    PHDR: ClassVar[HeaderLayout] = ELF64_PHDR
    ADDR_BITS: ClassVar[int] = 64
    KERNEL_DATA: ClassVar[int] = ELFDATA2MSB
    HOST_ORDER: ClassVar[str] = "big"

    @classmethod
    def probe(cls, ehdr: Ehdr, is_minidump: bool) -> bool:
        """``_powerpc64_probe``: ELFCLASS64, ET_DYN, EM_PPC64 and the kernel's ``EI_DATA``.

        Like libkvm's, the probe does not exclude minidumps; the probe table
        offers minidumps to :class:`Powerpc64Minidump` first (formats.md 14 row 1).
        """
        return (ehdr.ei_class == ELFCLASS64 and ehdr.e_type == ET_DYN
                and ehdr.e_machine == EM_PPC64 and ehdr.ei_data == cls.KERNEL_DATA)

    def native(self) -> bool:
        """``_powerpc64_native``: a powerpc64 host of the same byte order."""
        return powerpc64_host() and sys.byteorder == self.HOST_ORDER


class Powerpc64leElfCore(Powerpc64ElfCore):
    """kvm_powerpc64.c, little-endian kernels (``_powerpc64le_probe``)."""

    KERNEL_DATA: ClassVar[int] = ELFDATA2LSB
    HOST_ORDER: ClassVar[str] = "little"


class _Mmu(ABC):
    """``struct ppc64_mmu_ops``: what a minidump MMU back end provides."""

    def __init__(self, md: Powerpc64Minidump) -> None:
        self.md = md
        self.kd = md.kd
        self.pages = md.pages
        self.pmap: bytes = md.pmap
        self.dmapbase: int = md.hdr["dmapbase"]
        self.dmapend: int = md.hdr["dmapend"]
        self.kernbase: int = md.hdr["kernbase"]
        self.disp = (md.hdr["startkernel"] - PPC64_KERNBASE) & U64

    @abstractmethod
    def kvatop(self, va: int) -> tuple[int, int]:
        """``kvatop`` of the back end."""

    @abstractmethod
    def walk(self) -> Generator[KvmPage, None, bool]:
        """``walk_pages`` of the back end: the records; returns libkvm's result."""

    def invalid(self, va: int) -> tuple[int, int]:
        """The soft ``invalid address (0x%jx)`` every failure ends with."""
        self.kd.err(None, E.cformat(E.INVALID_ADDRESS, va))
        return 0, 0

    def visit(self, pa: int, kva: int, prot: int, length: int) -> KvmPage:
        """``_kvm_visit_cb`` with ``kp_offset`` looked up on 4 KiB pages."""
        return KvmPage(LIBKVM_WALK_PAGES_VERSION, pa, kva, (self.dmapbase + pa) & U64, prot,
                       self.pages.find(pa), length)


class HptMmu(_Mmu):
    """kvm_minidump_powerpc64_hpt.c: the hashed page table (formats.md 11.3)."""

    def __init__(self, md: Powerpc64Minidump) -> None:
        super().__init__(md)
        h = md.hdr
        self.pmapsize: int = h["pmapsize"]
        self.nptegs = self.pmapsize // PTEG_SIZE
        self.hmask = self.nptegs - 1
        self.large_dmap = h["hw_direct_map"] != 0
        # mmu_phyp's dumpsys_dump_pmap stores H_READ results natively (pykvm; libkvm: be64toh)
        order = md.kd.kernel.ehdr.endian if cstr_equals(h["mmu_name"], PPC64_MMU_PHYP) else ">"
        self.pte_order: str = order
        self._pteg = struct.Struct(f"{order}16Q")
        self._pte = struct.Struct(f"{order}QQ")
        self.slb_init(h["kernend"], h["bitmapsize"])

    def slb_init(self, kernend: int, bitmapsize: int) -> None:
        """``slb_init``: the kernel VM segments, then the direct-map segments.

        Entry k of the VM area covers ESID ``(kernbase >> 28) + k`` while its
        start is below ``kernend``; the direct map follows up to
        ``min(dmapend, dmapbase + maxmem)``.  Both ranges are kept as
        (first ESID, count) instead of an array of entries.  This is libkvm's
        table; :meth:`kernel_segment` is the kernel's.
        """
        maxmem = bitmapsize * 8 * PPC64_PAGE_SIZE
        self.vm_esid = self.kernbase >> SEGMENT_SHIFT
        self.vm_count = self._segments(self.kernbase, kernend)
        limit = min(self.dmapend, (self.dmapbase + maxmem) & U64)
        self.dmap_esid = self.dmapbase >> SEGMENT_SHIFT
        self.dmap_count = self._segments(self.dmapbase, limit)

    @staticmethod
    def _segments(start: int, end: int) -> int:
        """How many ``ea = start + k * 256 MiB`` lie below ``end`` (and below 2**64)."""
        if end <= start:
            return 0
        return -(-(end - start) // SEGMENT_LENGTH)

    def libkvm_segment(self, esid: int) -> int | None:
        """The base page shift of libkvm's software SLB entry for ``esid``; None without one."""
        if 0 <= esid - self.vm_esid < self.vm_count:
            return PPC64_PAGE_SHIFT
        if 0 <= esid - self.dmap_esid < self.dmap_count:
            return LP_PAGE_SHIFT if self.large_dmap else PPC64_PAGE_SHIFT
        return None

    @staticmethod
    def kernel_segment(esid: int) -> bool:
        """Whether the kernel gives ``esid`` its ``KERNEL_VSID`` (pykvm).

        A kernel-mode access to a segment missing from the SLB is filled in by
        ``handle_kernel_slb_spill`` with ``kernel_va_to_slbv(ea)`` (slb.c), for
        every segment but ``USER_ADDR``'s, which trap() loads with the user VSID.
        """
        return esid != USER_ESID

    def slb_vsid_search(self, vsid: int) -> int | None:
        """``slb_vsid_search``: the ESID of the segment whose VSID is ``vsid``.

        pykvm looks in the kernel's segments (:meth:`kernel_segment`), which
        include libkvm's; a VSID no kernel segment has stops the walk as in libkvm.
        """
        esid = kernel_esid(vsid)
        if esid is not None and (self.kernel_segment(esid)
                                 or self.libkvm_segment(esid) is not None):
            return esid
        kd = self.kd
        kd.err(kd.program, E.cformat(E.PPC64_HPT_NO_SEGMENT_VSID, vsid))
        return None

    def pte_search(self, vsid: int, b: int, ea: int) -> tuple[int, int] | None:
        """``pte_search``: the primary PTEG, then the secondary one; (pte_hi, pte_lo)."""
        va_page = (ea & ~SLBE_ESID_MASK) >> b
        s_ava, s_va = PAGE_SHIFTS[b]
        want_page = va_page >> s_va
        want_big = LPTEH_BIG if b == LP_PAGE_SHIFT else 0
        primary = (vsid & PTE_HASH_MASK) ^ va_page
        pmap = self.pmap
        for hid in (0, LPTEH_HID):
            h = primary if hid == 0 else ~primary & PTE_HASH_MASK
            pteg = h & self.hmask
            if pteg < 0 or pteg >= self.nptegs:
                continue  # libkvm reads past its page map here
            ptes = self._pteg.unpack_from(pmap, pteg * PTEG_SIZE)
            for i in range(0, 16, 2):
                hi = ptes[i]
                if ((hi & (LPTEH_HID | LPTEH_VALID | LPTEH_B_MASK)) != hid | LPTEH_VALID
                        or (hi & PTEH_AVA_VSID_MASK) >> PTEH_AVA_VSID_SHIFT != vsid
                        or ((hi & PTEH_AVA_PAGE_MASK) >> PTEH_AVA_PAGE_SHIFT) >> s_ava
                        != want_page
                        or hi & LPTEH_BIG != want_big):
                    continue
                return hi, ptes[i + 1]
        return None

    def search_both(self, esid: int, ea: int) -> tuple[int, int] | None:
        """A 4 KiB, then a 16 MiB PTE for ``ea`` in the kernel segment ``esid`` (pykvm).

        The segment's page size is ``kernel_va_to_slbv``'s choice (16 MiB for
        the direct map and ``vm_page_array`` when the CPU has large pages), which
        the dump does not record; the kernel never enters both sizes in one segment.
        """
        vsid = kernel_vsid(esid)
        pte = self.pte_search(vsid, PPC64_PAGE_SHIFT, ea)
        if pte is None:
            pte = self.pte_search(vsid, LP_PAGE_SHIFT, ea)
        return pte

    def kernel_pte(self, ea: int) -> tuple[int, int] | None:
        """The PTE the hardware uses for ``ea`` in a segment libkvm lacks, silently (pykvm)."""
        esid = ea >> SEGMENT_SHIFT
        if not self.kernel_segment(esid):
            return None
        return self.search_both(esid, ea)

    def pte_lookup(self, ea: int) -> tuple[int, int] | None:
        """``pte_lookup``: segment (``slb_search``), then PTE; messages stored on failure."""
        kd = self.kd
        esid = ea >> SEGMENT_SHIFT
        b = self.libkvm_segment(esid)
        if b is None:
            pte = self.kernel_pte(ea)  # pykvm: a kernel segment libkvm's SLB lacks
            if pte is None:
                kd.err(kd.program, E.cformat(E.PPC64_HPT_NO_SEGMENT_EA, ea))
            return pte
        vsid = kernel_vsid(esid)
        pte = self.pte_search(vsid, b, ea)
        if pte is None and b == PPC64_PAGE_SHIFT:
            pte = self.pte_search(vsid, LP_PAGE_SHIFT, ea)  # pykvm: a large-page segment
        if pte is None:
            kd.err(kd.program, E.PPC64_HPT_PTE_NOT_FOUND)
        return pte

    def translate(self, va: int, pte: tuple[int, int]) -> tuple[int, int]:
        """The file offset and length for ``va`` through ``pte``, as ``ppc64mmu_hpt_kvatop``."""
        hi, lo = pte
        if hi & LPTEH_BIG:
            pa = (lo & PTEL_LP_PA_MASK) | (va & ~PPC64_PAGE_MASK & LP_PAGE_MASK)
        else:
            pa = lo & PTEL_PA_MASK
        off = self.pages.find(pa)
        if off == -1:
            kd = self.kd
            kd.err(kd.program, E.cformat(E.PPC64_HPT_PA_ABSENT, pa))
            return self.invalid(va)
        pgoff = va & PPC64_PAGE_MASK
        return off + pgoff, PPC64_PAGE_SIZE - pgoff

    def kvatop(self, va: int) -> tuple[int, int]:
        """``ppc64mmu_hpt_kvatop``: relocation, direct map, or a hashed page-table search."""
        kd = self.kd
        if va < self.dmapbase:
            va = (va + self.disp) & U64
        pgoff = va & PPC64_PAGE_MASK
        if self.dmapbase <= va <= self.dmapend:
            pa = va & ~self.dmapbase & ~PPC64_PAGE_MASK & U64
            off = self.pages.find(pa)
            if off == -1:
                kd.err(kd.program, E.cformat(E.PPC64_HPT_DMAP_ABSENT, va))
                return self.invalid(va)
            return off + pgoff, PPC64_PAGE_SIZE - pgoff
        if va >= self.kernbase:
            pte = self.pte_lookup(va)
            if pte is None:
                kd.err(kd.program, E.PPC64_HPT_PTE_INVALID)
                return self.invalid(va)
            return self.translate(va, pte)
        pte = self.kernel_pte(va)  # pykvm: mapped below kernbase (no libkvm segment there)
        if pte is not None:
            return self.translate(va, pte)
        kd.err(kd.program, E.cformat(E.PPC64_HPT_NOT_DUMPED, va))
        return self.invalid(va)

    @staticmethod
    def entry_to_prot(lo: int) -> int:
        """The protection the hardware gives the kernel (``entry_to_prot``, corrected).

        libkvm reports WRITE whenever bit 0x2 is set (so also for PP = 0b11,
        read-only) and EXECUTE when the no-execute bit is set.
        """
        prot = VM_PROT_READ
        if lo & LPTEL_PP_MASK != LPTEL_BR:
            prot |= VM_PROT_WRITE
        if not lo & LPTEL_NOEXEC:
            prot |= VM_PROT_EXECUTE
        return prot

    def get_ea(self, hi: int, ptex: int) -> int | None:
        """``get_ea``: the effective address a PTE maps, from its AVA and its PTEG.

        The page bits come from the PTEG index (``hash ^ VSID``, only the bits
        the table's hash mask keeps) and, for tables of fewer than 65536
        PTEGs, from the AVA; the page size is the PTE's own (``LPTEH_BIG``).
        """
        vsid = (hi & PTEH_AVA_VSID_MASK) >> PTEH_AVA_VSID_SHIFT
        esid = self.slb_vsid_search(vsid)
        if esid is None:
            return None
        b = LP_PAGE_SHIFT if hi & LPTEH_BIG else PPC64_PAGE_SHIFT
        page_mask = (1 << (SEGMENT_SHIFT - b)) - 1
        h = ptex >> 3
        if hi & LPTEH_HID:
            h = ~h & PTE_HASH_MASK
        va_page: int = (h ^ (vsid & PTE_HASH_MASK)) & self.hmask & page_mask
        if self.nptegs < 0x10000:
            s_ava, s_va = PAGE_SHIFTS[b]
            va_page |= (((hi & PTEH_AVA_PAGE_MASK) >> PTEH_AVA_PAGE_SHIFT) >> s_ava) << s_va
        return (esid << SEGMENT_SHIFT) | ((va_page & page_mask) << b)

    def walk(self) -> Generator[KvmPage, None, bool]:
        """``ppc64mmu_hpt_walk_pages``: every valid kernel PTE, in table order."""
        nptes = self.pmapsize // PTE_SIZE
        view = memoryview(self.pmap)[: nptes * PTE_SIZE]
        for ptex, (hi, lo) in enumerate(self._pte.iter_unpack(view)):
            if not hi & LPTEH_VALID:
                continue
            vsid = (hi & PTEH_AVA_VSID_MASK) >> PTEH_AVA_VSID_SHIFT
            if not vsid & KERNEL_VSID_BIT or vsid >> PPC64_PAGE_SHIFT == VSID_VRMA:
                continue
            ea = self.get_ea(hi, ptex)
            if ea is None:
                return False
            if hi & LPTEH_BIG:
                pa, length = lo & PTEL_LP_PA_MASK, LP_PAGE_SIZE
            else:
                pa, length = lo & PTEL_PA_MASK, PPC64_PAGE_SIZE
            yield self.visit(pa, ea, self.entry_to_prot(lo), length)
        return True


class RadixMmu(_Mmu):
    """kvm_minidump_powerpc64_radix.c: the radix tree (formats.md 11.4)."""

    def __init__(self, md: Powerpc64Minidump) -> None:
        super().__init__(md)
        self.root: tuple[int, ...] = _ROOT.unpack_from(self.pmap, 0)
        self._tables: dict[int, tuple[int, ...] | None] = {}
        # (table page, level) -> whether a completed walk of it reported any leaf
        self._walked: dict[tuple[int, int], bool] = {}

    @staticmethod
    def init(pmapsize: int) -> None:
        """``ppc64mmu_radix_init``: the page map must be the 64 KiB root table."""
        if pmapsize == 0:
            raise FormatError(E.PPC64_RADIX_NO_PMAP)
        if pmapsize != RADIX_ROOT_SIZE:
            raise FormatError(E.cformat(E.PPC64_RADIX_PMAP_SIZE, pmapsize))

    def table(self, pa: int) -> tuple[int, ...] | None:
        """``_kvm_map_get``: the 512 entries of the dumped page holding ``pa``, or None."""
        page = pa & ~PPC64_PAGE_MASK
        try:
            return self._tables[page]
        except KeyError:
            pass
        off = self.pages.find(page)
        entries = None
        if off != -1:
            raw = self.kd.core.pread(off, PPC64_PAGE_SIZE)
            if len(raw) == PPC64_PAGE_SIZE:
                entries = _TABLE.unpack(raw)
        if len(self._tables) > 4096:
            self._tables.clear()
        self._tables[page] = entries
        return entries

    def table_entries(self, pa: int) -> tuple[int, ...] | None:
        """``radix_table_entry``'s page, with its message when it was not dumped."""
        t = self.table(pa)
        if t is None:
            kd = self.kd
            kd.err(kd.program, E.cformat(E.PPC64_RADIX_NOT_DUMPED, pa))
        return t

    def lookup(self, va: int) -> int | None:
        """``radix_lookup``: the physical address, None when unmapped, -1 (_MISSING)."""
        entry: int = self.root[(va >> RADIX_L1_SHIFT) & (RADIX_ROOT_ENTRIES - 1)]
        for level, shift in enumerate(RADIX_SHIFTS):
            if not entry & RPTE_VALID:
                return None
            size = 1 << shift
            if entry & RPTE_LEAF:
                return (entry & RPTE_RPN_MASK & ~(size - 1)) | (va & (size - 1))
            if level == len(RADIX_SHIFTS) - 1:
                return None
            t = self.table_entries(entry & RPDE_NLB_MASK)
            if t is None:
                return _MISSING
            entry = t[(va >> RADIX_SHIFTS[level + 1]) & (RADIX_ENTRIES - 1)]
        return None

    def kvatop(self, va: int) -> tuple[int, int]:
        """``ppc64mmu_radix_kvatop``: relocation, direct map, or a radix lookup.

        pykvm first applies the hardware's check (:data:`RADIX_EA_CHECK_MASK`):
        an effective address outside the kernel tree's quadrant-3, 52-bit space
        is invalid, where libkvm would index the root with bits 39-51 alone.
        """
        if va < self.dmapbase:
            va = (va + self.disp) & U64
        if va & RADIX_EA_CHECK_MASK != RADIX_KERNEL_EA:
            return self.invalid(va)  # pykvm: a segment interrupt on the hardware
        if self.dmapbase <= va <= self.dmapend:
            pa = (va - self.dmapbase) & U64
        elif va >= self.kernbase:
            found = self.lookup(va)
            if found == _MISSING:
                return 0, 0  # only the hard message: libkvm skips the soft one here
            if found is None:
                return self.invalid(va)
            pa = found
        else:
            return self.invalid(va)
        off = self.pages.find(pa & ~PPC64_PAGE_MASK)
        if off == -1:
            return self.invalid(va)
        pgoff = pa & PPC64_PAGE_MASK
        return off + pgoff, PPC64_PAGE_SIZE - pgoff

    @staticmethod
    def entry_to_prot(entry: int) -> int:
        """``radix_entry_to_prot``: READ for R or W, WRITE for W, EXECUTE for X."""
        prot = 0
        if entry & (RPTE_EAA_R | RPTE_EAA_W):
            prot |= VM_PROT_READ
        if entry & RPTE_EAA_W:
            prot |= VM_PROT_WRITE
        if entry & RPTE_EAA_X:
            prot |= VM_PROT_EXECUTE
        return prot

    def walk(self) -> Generator[KvmPage, None, bool]:
        """``ppc64mmu_radix_walk_pages``: root entries from the kernel map up, depth first."""
        for i, entry in enumerate(self.root):
            if not entry & RPTE_VALID:
                continue
            va = self.dmapbase | (i << RADIX_L1_SHIFT)
            if va < self.kernbase:
                continue
            if entry & RPTE_LEAF:
                size = 1 << RADIX_L1_SHIFT
                yield self.visit(entry & RPTE_RPN_MASK & ~(size - 1), va,
                                 self.entry_to_prot(entry), size)
                continue
            table = entry & RPDE_NLB_MASK
            if self._walked.get((table & ~PPC64_PAGE_MASK, 0)) is False:
                continue  # walked before and found to hold no leaf
            rc = yield from self.walk_table(table, va, 0)
            if rc == 0:
                return False
        return True

    def walk_table(self, table_pa: int, va: int, level: int) -> Generator[KvmPage, None, int]:
        """``radix_walk_table``: 0 when the walk must stop, 1 (no leaf) or 2 (leaves) else.

        A table page already walked to the end is never missing any page
        below it, so a second visit that cannot report anything (no leaves, or
        every address below ``kernbase``) is skipped: hostile tables that
        point many entries at the same page cost one pass, not one per path.
        """
        entries = self.table_entries(table_pa)
        if entries is None:
            return 0
        shift = RADIX_SHIFTS[level + 1]
        last = level == 2
        size = 1 << shift
        kernbase = self.kernbase
        leaves = False
        for i, entry in enumerate(entries):
            if not entry & RPTE_VALID:
                continue
            subva = va | (i << shift)
            if not entry & RPTE_LEAF:
                if last:
                    continue
                child = entry & RPDE_NLB_MASK
                known = self._walked.get((child & ~PPC64_PAGE_MASK, level + 1))
                if known is not None:
                    leaves = leaves or known
                    if not known or subva | (size - 1) < kernbase:
                        continue
                rc = yield from self.walk_table(child, subva, level + 1)
                if rc == 0:
                    return 0
                leaves = leaves or rc == 2
                continue
            leaves = True
            if subva < kernbase:
                continue
            yield self.visit(entry & RPTE_RPN_MASK & ~(size - 1), subva,
                             self.entry_to_prot(entry), size)
        self._walked[(table_pa & ~PPC64_PAGE_MASK, level)] = leaves
        return 2 if leaves else 1


class Powerpc64Minidump(MinidumpBackend):
    """kvm_minidump_powerpc64.c: header versions 1 and 2, HPT and radix MMUs."""

    header_page_size = PPC64_PAGE_SIZE

    arch = "powerpc64"
    fmt = "minidump"

    @classmethod
    def probe(cls, ehdr: Ehdr, is_minidump: bool) -> bool:
        """``_powerpc64_minidump_probe``: ELFCLASS64, ET_DYN, EM_PPC64 and a minidump."""
        return (ehdr.ei_class == ELFCLASS64 and ehdr.e_type == ET_DYN
                and ehdr.e_machine == EM_PPC64 and is_minidump)

    def native(self) -> bool:
        """``_powerpc64_native``: any powerpc64 host."""
        return powerpc64_host()

    def read_header(self) -> dict[str, Any]:
        """The minidump header in the kernel's byte order, big-endian as a fallback."""
        raw = self.kd.core.pread(0, MINIDUMP_HEADER.size)
        if len(raw) != MINIDUMP_HEADER.size:
            raise FormatError(E.PPC64_CANNOT_READ_HEADER)
        h = MINIDUMP_HEADER.unpack(raw, self.kd.kernel.ehdr.endian)
        if not cstr_equals(h["magic"], MINIDUMP_MAGIC):
            raise FormatError(E.NOT_A_MINIDUMP)
        if h["version"] not in (1, MINIDUMP_VERSION):
            be = MINIDUMP_HEADER.unpack(raw, ">")
            if be["version"] in (1, MINIDUMP_VERSION):
                h = be  # what libkvm's unconditional be32toh reads
            else:
                raise FormatError(E.cformat(E.WRONG_VERSION_UC, MINIDUMP_VERSION,
                                            to_signed32(h["version"])))
        return h

    def initvtop(self) -> None:
        """``_powerpc64_minidump_initvtop``: header, MMU back end, sections, page map."""
        kd = self.kd
        h = self.read_header()
        self.hdr = h
        self._version: int = h["version"]
        if self._version != MINIDUMP_VERSION:
            h["dumpavailsize"] = 0
        field: bytes = h["mmu_name"]
        mmu_cls: type[HptMmu] | type[RadixMmu]
        if cstr_equals(field, PPC64_MMU_G5) or cstr_equals(field, PPC64_MMU_PHYP):
            mmu_cls = HptMmu
        elif cstr_equals(field, PPC64_MMU_RADIX):
            mmu_cls = RadixMmu
            RadixMmu.init(h["pmapsize"])
        else:
            name = field.split(b"\0", 1)[0].decode(errors="surrogateescape")
            raise FormatError(E.cformat(E.PPC64_UNSUPPORTED_MMU, name))
        self.msgbufsize: int = h["msgbufsize"]
        dumpavailsize: int = h["dumpavailsize"]
        bitmapsize: int = h["bitmapsize"]
        pmapsize: int = h["pmapsize"]
        dump_avail_off = PPC64_PAGE_SIZE + round_page(self.msgbufsize, PPC64_PAGE_SIZE)
        bitmap_off = dump_avail_off + round_page(dumpavailsize, PPC64_PAGE_SIZE)
        pmap_off = bitmap_off + round_page(bitmapsize, PPC64_PAGE_SIZE)
        sparse_off = pmap_off + round_page(pmapsize, PPC64_PAGE_SIZE)
        self.pages: SparsePages = init_sparse(
            kd.core, dumpavailsize=dumpavailsize, dump_avail_off=dump_avail_off,
            bitmapsize=bitmapsize, bitmap_off=bitmap_off, sparse_off=sparse_off,
            page_size=PPC64_PAGE_SIZE, endian=kd.kernel.ehdr.endian, word_bits=64)
        self.pmap = read_pmap(kd.core, pmapsize, pmap_off)
        self.mmu: HptMmu | RadixMmu = mmu_cls(self)

    def kvatop(self, va: int) -> tuple[int, int]:
        """``_powerpc64_minidump_kvatop``: the MMU back end's translation."""
        return self.mmu.kvatop(va)

    def cacheable(self) -> bool:
        """Only when every boundary the translation tests falls on a page boundary.

        The relocation (``startkernel - 0x100100``), the direct map's ends and
        ``kernbase`` are page aligned in every kernel; a header that moves one
        of them inside a page makes that page translate in two different ways.
        """
        h = self.hdr
        return (h["startkernel"] - PPC64_KERNBASE) % PPC64_PAGE_SIZE == 0 and all(
            v % PPC64_PAGE_SIZE == 0 for v in (h["dmapbase"], h["dmapend"] + 1, h["kernbase"]))

    def walk_pages(self) -> Iterator[KvmPage] | None:
        """``_powerpc64_minidump_walk_pages``: the MMU back end's walk.

        The generator returns False where libkvm's walk returns 0 early (a
        segment or a table page that cannot be found; its message is stored).
        """
        return self.mmu.walk()

    def kerndisp(self) -> int:
        """``_powerpc64_kerndisp``: ``startkernel - PPC64_KERNBASE`` as a signed value."""
        return to_signed64(self.hdr["startkernel"] - PPC64_KERNBASE)



__all__ = ["Powerpc64ElfCore", "Powerpc64Minidump", "Powerpc64leElfCore"]
