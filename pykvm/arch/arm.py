"""arm (32-bit): minidumps (versions 1 and 2) and ELF full dumps, both byte orders.

Mirrors lib/libkvm/kvm_minidump_arm.c (``_arm_minidump_probe``,
``_arm_minidump_initvtop``, ``_arm_minidump_kvatop``, ``_arm_entry_to_prot``,
``_arm_minidump_walk_pages``) and lib/libkvm/kvm_arm.c (``_arm_probe``,
``_arm_initvtop``, ``_arm_kvatop``, ``_kvm_pa2off``, ``_arm_native``), with the
constants of lib/libkvm/kvm_arm.h, the header of sys/arm/include/minidump.h,
the minidump writer sys/arm/arm/minidump_machdep.c (``cpu_minidumpsys``) and
the ``PT_DUMP_DELTA`` writer sys/arm/arm/dump_machdep.c
(``dumpsys_write_aux_headers``) (formats.md section 7).

Big-endian (armeb) kernels exist: the minidump header, dump_avail, the PTE
section, the bitmap words (32-bit ``long``), the L1 and L2 descriptors and the
``kernel_l1pa`` value are all decoded in the kernel's byte order.

What libkvm reports and pykvm reproduces: a full-dump translation that fails
on an L1 or L2 descriptor stores the soft ``Invalid address (%jx)`` (capital
I, no ``0x``); one that reaches a physical address outside every segment, and
any bootstrap (physical) read outside every segment, fails without storing any
message (formats.md 14 row 13, api.md 8.3).

pykvm departures (formats.md 14):

* row 5: ``kernel_l1pa`` is read in the kernel's byte order;
* row 6: a 1 MiB section, 16 MiB supersection or 64 KiB large-page
  translation in a full dump (and every other one) is clamped to the
  segment that holds it, so a read never runs into the next segment's bytes;
* row 14: a descriptor whose type bits say fault is invalid whatever its
  other bits, and an L2 table entry outside every segment fails the
  translation (``Invalid address``) instead of reading an undefined offset;
* row 15: the minidump walk takes XN (and the software read-only bit) of a
  64 KiB large page from where that descriptor type keeps them (bits 15 and
  13) rather than from the small-page positions (bits 0 and 7);
* row 16: a kernel virtual address at or above 4 GiB is invalid;
* a full-dump section with bit 18 set is a 16 MiB supersection (its base in
  bits 31-24, physical bits 32-39 in bits 23-20 and 8-5) as the MMU reads it;
  libkvm takes it for a 1 MiB section;
* full dumps of pmap-v6 (ARMv6/v7) kernels: ``kernel_l1pa`` holds the L1
  table's *virtual* address (sys/arm/arm/pmap-v6.c ``pmap_bootstrap``:
  ``kernel_l1pa = (vm_paddr_t)kern_pt1``, ``kern_pt1 = KERNEL_P2V(base_pt1)``),
  the v4 pmap's a physical one (``l1pt->pv_pa``); libkvm reads it as physical
  and cannot open armv7 full dumps.  pykvm tries the value as is and as a KVA
  moved by the ``kernbase``/``physaddr`` (or ``PT_DUMP_DELTA``) delta, keeps
  the candidates whose 16 KiB table lies in the dump and, when both do, takes
  the one that maps ``kernel_l1pa``'s own address to where it was read (the
  value as is when both or neither do) -- ``ArmElfCore._find_l1``;
* the minidump walk reports EXECUTE for every V4 (ARMv4/v5) page: those MMUs
  have no execute-never bit (libkvm reports READ and WRITE only);
* minidump page data: the kernel writes the PTE section unpadded
  (sys/arm/arm/minidump_machdep.c ends it with ``blk_write(di, dumpbuf, 0,
  addr - dumpbuf)``) and ``kernel_vm_end`` grows 1 MiB at a time, so
  ``ptesize`` is a multiple of 1 KiB, not always of a page; libkvm (and
  formats.md 3.1) put the pages at ``pte_off + round_page(ptesize)``.  When the
  two differ, pykvm takes the padded offset only for a file of exactly the
  padded layout's size (``pte_off + round_page(ptesize) + npages * 4096``)
  whose padding bytes are all zero; every other file -- the kernel's own
  layout, complete (``pte_off + ptesize + npages * 4096``) or truncated, or one
  with bytes appended -- has its pages at ``pte_off + ptesize``
  (:func:`page_data_offset`).  Messages keep libkvm's offset.
"""

from __future__ import annotations

import struct
import sys
from array import array
from collections.abc import Iterator

from .. import errors as E
from ..constants import (
    ELFCLASS32,
    ELFDATA2LSB,
    ELFDATA2MSB,
    EM_ARM,
    ET_EXEC,
    LIBKVM_WALK_PAGES_VERSION,
    PT_DUMP_DELTA,
    PT_LOAD,
    VM_PROT_EXECUTE,
    VM_PROT_READ,
    VM_PROT_WRITE,
)
from ..core.corefile import CoreFile
from ..core.elfcore import Phdr, read_core_phdrs
from ..core.minidump import SparsePages, init_sparse, read_pmap, round_page
from ..errors import FormatError
from ..image.elf import Ehdr, host_machine
from .base import Backend, HeaderField, HeaderLayout, KvmPage, MinidumpBackend

# kvm_arm.h
ARM_PAGE_SHIFT = 12
ARM_PAGE_SIZE = 1 << ARM_PAGE_SHIFT
ARM_PAGE_MASK = ARM_PAGE_SIZE - 1
ARM_L1_TABLE_SIZE = 0x4000
ARM_L1_ENTRIES = ARM_L1_TABLE_SIZE // 4
ARM_L1_S_SIZE = 0x00100000
ARM_L1_S_OFFSET = ARM_L1_S_SIZE - 1
ARM_L1_S_SHIFT = 20
ARM_L2_L_SIZE = 0x00010000
ARM_L2_L_OFFSET = ARM_L2_L_SIZE - 1
ARM_L2_L_FRAME = 0xFFFFFFFF & ~ARM_L2_L_OFFSET
ARM_L2_S_SIZE = 0x00001000
ARM_L2_S_OFFSET = ARM_L2_S_SIZE - 1
ARM_L2_S_FRAME = 0xFFFFFFFF & ~ARM_L2_S_OFFSET
ARM_L2_S_SHIFT = 12
ARM_PTE2_RO = 0x00000080  # ARM_L2_TEX1 of a small page (software read-only)
ARM_PTE2_NX = 0x00000001  # ARM_L2_NX of a small page
ARM_L2_S_PROT_W = 0x01 << 4  # ARM_L2_AP0(ARM_AP_W)
ARM_L1_TYPE_INV = 0x00
ARM_L1_TYPE_C = 0x01
ARM_L1_TYPE_S = 0x02
ARM_L1_TYPE_MASK = 0x03
ARM_L1_S_ADDR_MASK = 0xFFF00000
ARM_L1_C_ADDR_MASK = 0xFFFFFC00
ARM_L2_TYPE_INV = 0x00
ARM_L2_TYPE_L = 0x01
ARM_L2_TYPE_S = 0x02
ARM_L2_TYPE_T = 0x03
ARM_L2_TYPE_MASK = 0x03
ARM_L2_ENTRIES = 256  # a coarse table: 1 KiB of 32-bit entries

# The same descriptor bits where a 64 KiB large page keeps them (ARMv6 format).
ARM_L2_L_TEX1 = 0x00002000
ARM_L2_L_NX = 0x00008000

# Supersections (sys/arm/include/pte-v4.h L1_S_SUPERSEC, L1_SUP_FRAME/OFFSET).
ARM_L1_S_SUPERSEC = 1 << 18
ARM_L1_SUP_SIZE = 0x01000000
ARM_L1_SUP_OFFSET = ARM_L1_SUP_SIZE - 1
ARM_L1_SUP_FRAME = 0xFF000000

#: KERNBASE of sys/arm/include/vmparam.h, libkvm's fallback when built for arm.
ARM_KERNBASE = 0xC0000000

U32 = 0xFFFFFFFF
U64 = (1 << 64) - 1
#: A 32-bit kernel maps nothing at or above 4 GiB (formats.md 14 row 16).
VA_LIMIT = 1 << 32

# sys/arm/include/minidump.h
MINIDUMP_MAGIC = b"minidump FreeBSD/arm"
MINIDUMP_VERSION = 2
MINIDUMP_MMU_FORMAT_UNKNOWN = 0
MINIDUMP_MMU_FORMAT_V4 = 1
MINIDUMP_MMU_FORMAT_V6 = 2
MINIDUMP_MMU_FORMAT_V6_LPAE = 3

#: struct minidumphdr (sys/arm/include/minidump.h), kernel byte order, 56 bytes.
MINIDUMP_HEADER = HeaderLayout([
    HeaderField("magic", 0, "24s"),
    HeaderField("version", 24, "I"),
    HeaderField("msgbufsize", 28, "I"),
    HeaderField("bitmapsize", 32, "I"),
    HeaderField("ptesize", 36, "I"),
    HeaderField("kernbase", 40, "I"),
    HeaderField("arch", 44, "I"),
    HeaderField("mmuformat", 48, "I"),
    HeaderField("dumpavailsize", 52, "I"),
], 56)

_L1 = {e: struct.Struct(f"{e}{ARM_L1_ENTRIES}I") for e in "<>"}
_L2 = {e: struct.Struct(f"{e}{ARM_L2_ENTRIES}I") for e in "<>"}
_U32 = {e: struct.Struct(f"{e}I") for e in "<>"}


def arm_host() -> bool:
    """Whether libkvm would be built with ``__arm__`` here: a 32-bit arm host."""
    m = host_machine()
    return m.startswith("arm") and not m.startswith("arm64")


def arm_native(ehdr: Ehdr) -> bool:
    """``_arm_native``: a 32-bit arm host whose byte order is the kernel's ``EI_DATA``."""
    host = ELFDATA2LSB if sys.byteorder == "little" else ELFDATA2MSB
    return arm_host() and ehdr.ei_data == host


def arm_probe(ehdr: Ehdr) -> bool:
    """``_kvm_probe_elf_kernel(kd, ELFCLASS32, EM_ARM)``."""
    return ehdr.ei_class == ELFCLASS32 and ehdr.e_type == ET_EXEC and ehdr.e_machine == EM_ARM


def magic_matches(field: bytes, magic: bytes) -> bool:
    """``strncmp(MINIDUMP_MAGIC, hdr.magic, sizeof(hdr.magic)) == 0``."""
    return field[: len(magic) + 1] == magic + b"\0"


def entry_to_prot(pte: int, v4: bool) -> int:
    """``_arm_entry_to_prot``: protections of a minidump PTE, as the MMU grants them.

    ARMv4/v5 (pmap-v4): READ and EXECUTE (these MMUs have no execute-never bit,
    so every readable page is executable; libkvm omits EXECUTE), plus WRITE when
    ``AP0`` grants it.  ARMv6 (pmap-v6): READ, plus WRITE unless the software
    read-only bit (TEX1) is set, plus EXECUTE unless XN is set, both taken from
    where the descriptor's type keeps them (a large page's XN is bit 15, not
    bit 0, which is part of its type).
    """
    prot = VM_PROT_READ
    if v4:
        prot |= VM_PROT_EXECUTE
        if pte & ARM_L2_S_PROT_W:
            prot |= VM_PROT_WRITE
        return prot
    if pte & ARM_L2_TYPE_MASK == ARM_L2_TYPE_L:
        ro, nx = pte & ARM_L2_L_TEX1, pte & ARM_L2_L_NX
    else:
        ro, nx = pte & ARM_PTE2_RO, pte & ARM_PTE2_NX
    if not ro:
        prot |= VM_PROT_WRITE
    if not nx:
        prot |= VM_PROT_EXECUTE
    return prot


def page_data_offset(core: CoreFile, pte_off: int, ptesize: int, npages: int) -> int:
    """Where the dumped pages start: right after the PTE section, or a page further.

    The kernel writes the PTE section unpadded (``cpu_minidumpsys`` ends it with
    ``blk_write(di, dumpbuf, 0, addr - dumpbuf)``), and ``kernel_vm_end`` grows
    1 MiB (1 KiB of PTEs) at a time, so ``ptesize`` need not be a whole number of
    pages; libkvm reads the pages at ``pte_off + round_page(ptesize)``.  When the
    two differ, the padded offset is taken only for a file of exactly the padded
    layout's size (``pte_off + round_page(ptesize) + npages * PAGE_SIZE``) whose
    padding bytes are all zero, as a writer that pads leaves them; every other
    file -- the kernel's layout, complete or truncated, or one with trailing
    bytes -- is read with the page data at ``pte_off + ptesize``.
    """
    unpadded = pte_off + ptesize
    padded = pte_off + round_page(ptesize, ARM_PAGE_SIZE)
    if padded == unpadded:
        return padded
    if core.size == padded + npages * ARM_PAGE_SIZE:
        gap = core.pread(unpadded, padded - unpadded)
        if len(gap) == padded - unpadded and not any(gap):
            return padded
    return unpadded


class ArmMinidump(MinidumpBackend):
    """kvm_minidump_arm.c: header versions 1 and 2, MMU formats V4 and V6."""

    header_page_size = ARM_PAGE_SIZE

    arch = "arm"
    fmt = "minidump"

    @classmethod
    def probe(cls, ehdr: Ehdr, is_minidump: bool) -> bool:
        """``_arm_minidump_probe``: ELFCLASS32, ET_EXEC, EM_ARM kernel, ``minidump`` core."""
        return arm_probe(ehdr) and is_minidump

    def native(self) -> bool:
        """``_arm_native``."""
        return arm_native(self.kd.kernel.ehdr)

    def initvtop(self) -> None:
        """``_arm_minidump_initvtop``: header checks, dump_avail, bitmap, PTE section."""
        core = self.kd.core
        endian = self.kd.kernel.ehdr.endian
        raw = core.pread(0, MINIDUMP_HEADER.size)
        if len(raw) != MINIDUMP_HEADER.size:
            raise FormatError(E.CANNOT_READ_DUMP_HEADER)
        h = MINIDUMP_HEADER.unpack(raw, endian)
        if not magic_matches(h["magic"], MINIDUMP_MAGIC):
            raise FormatError(E.NOT_A_MINIDUMP)
        version: int = h["version"]
        if version != MINIDUMP_VERSION and version != 1:
            # printed with %d: a uint32_t above INT_MAX shows as negative
            shown = version - (1 << 32) if version >= 1 << 31 else version
            raise FormatError(E.cformat(E.WRONG_VERSION_UC, MINIDUMP_VERSION, shown))
        mmuformat: int = h["mmuformat"]
        if mmuformat == MINIDUMP_MMU_FORMAT_UNKNOWN:
            mmuformat = MINIDUMP_MMU_FORMAT_V6  # libkvm: 1K pages are not used
        dumpavailsize: int = h["dumpavailsize"] if version == MINIDUMP_VERSION else 0
        self.hdr = h
        self._version = version
        self.mmuformat = mmuformat
        self.v4 = mmuformat == MINIDUMP_MMU_FORMAT_V4
        self.kernbase: int = h["kernbase"]
        self.msgbufsize: int = h["msgbufsize"]
        self.bitmapsize: int = h["bitmapsize"]
        self.ptesize: int = h["ptesize"]
        dump_avail_off = ARM_PAGE_SIZE + round_page(self.msgbufsize, ARM_PAGE_SIZE)
        bitmap_off = dump_avail_off + round_page(dumpavailsize, ARM_PAGE_SIZE)
        pte_off = bitmap_off + round_page(self.bitmapsize, ARM_PAGE_SIZE)
        # libkvm's offset; its texts (the empty-bitmap error) report this one
        sparse_off = pte_off + round_page(self.ptesize, ARM_PAGE_SIZE)
        self.pages: SparsePages = init_sparse(
            core, dumpavailsize=dumpavailsize, dump_avail_off=dump_avail_off,
            bitmapsize=self.bitmapsize, bitmap_off=bitmap_off, sparse_off=sparse_off,
            page_size=ARM_PAGE_SIZE, endian=endian, word_bits=32)
        pmap = read_pmap(core, self.ptesize, pte_off)
        self.pages.sparse_off = page_data_offset(core, pte_off, self.ptesize,
                                                 self.pages.npages)
        self.nentries = self.ptesize // 4
        ptes = array("I")
        if ptes.itemsize == 4:
            ptes.frombytes(pmap[: self.nentries * 4])
            if (endian == "<") != (sys.byteorder == "little"):
                ptes.byteswap()
            self.ptes: array[int] | tuple[int, ...] = ptes
        else:  # pragma: no cover - no supported host has a 2- or 8-byte int
            self.ptes = struct.unpack(f"{endian}{self.nentries}I", pmap[: self.nentries * 4])

    def _fail(self, va: int, hard: str | None) -> tuple[int, int]:
        kd = self.kd
        if hard is not None:
            kd.err(kd.program, hard)
        kd.err(None, E.cformat(E.INVALID_ADDRESS, va))
        return 0, 0

    def _pte_pa(self, va: int, pte: int) -> int:
        """The physical page a valid PTE maps at ``va`` (a 64 KiB page's 4 KiB sub-page)."""
        if pte & ARM_L2_TYPE_MASK == ARM_L2_TYPE_L:
            return (pte & ARM_L2_L_FRAME) + (va & ARM_L2_L_OFFSET & ARM_L2_S_FRAME)
        return pte & ARM_L2_S_FRAME

    def kvatop(self, va: int) -> tuple[int, int]:
        """``_arm_minidump_kvatop``: one 32-bit PTE per 4 KiB page from ``kernbase``."""
        if va < self.kernbase:
            return self._fail(va, E.cformat(E.ARM_MD_NOT_DUMPED, va))
        idx = (va - self.kernbase) >> ARM_PAGE_SHIFT
        if idx >= self.nentries or va >= VA_LIMIT:
            return self._fail(va, None)
        pte = self.ptes[idx]
        kind = pte & ARM_L2_TYPE_MASK
        if kind == ARM_L2_TYPE_INV:
            return self._fail(va, E.ARM_MD_PTE_INVALID)
        if kind == ARM_L2_TYPE_L:
            a = (pte & ARM_L2_L_FRAME) + (va & ARM_L2_L_OFFSET & ARM_L2_S_FRAME)
        elif kind == ARM_L2_TYPE_T and self.v4:
            return self._fail(va, E.ARM_MD_PTE_UNSUPPORTED)
        else:
            a = pte & ARM_L2_S_FRAME
        ofs = self.pages.find(a)
        if ofs == -1:
            return self._fail(va, E.cformat(E.ARM_MD_PA_ABSENT, a))
        offset = va & ARM_L2_S_OFFSET
        return ofs + offset, ARM_PAGE_SIZE - offset

    def walk_pages(self) -> Iterator[KvmPage] | None:
        """``_arm_minidump_walk_pages``."""
        return self._walk()

    def _walk(self) -> Iterator[KvmPage]:
        pages = self.pages
        v4 = self.v4
        ptes = self.ptes
        for idx in range(self.nentries):
            pte = ptes[idx]
            kind = pte & ARM_L2_TYPE_MASK
            if kind == ARM_L2_TYPE_INV:
                continue
            va = self.kernbase + (idx << ARM_PAGE_SHIFT)
            if va >= VA_LIMIT:
                break
            if v4 and kind == ARM_L2_TYPE_T:
                continue
            pa = self._pte_pa(va, pte)
            # no direct map on arm; kp_offset looked up on the 4 KiB page
            yield KvmPage(LIBKVM_WALK_PAGES_VERSION, pa, va, 0, entry_to_prot(pte, v4),
                          pages.find(pa), ARM_PAGE_SIZE)



class ArmElfCore(Backend):
    """kvm_arm.c: ELF full dumps, with or without the ``PT_DUMP_DELTA`` header."""

    arch = "arm"
    fmt = "elf"

    @classmethod
    def probe(cls, ehdr: Ehdr, is_minidump: bool) -> bool:
        """``_arm_probe``: ELFCLASS32, ET_EXEC, EM_ARM kernel, core not a minidump."""
        return arm_probe(ehdr) and not is_minidump

    def native(self) -> bool:
        """``_arm_native``."""
        return arm_native(self.kd.kernel.ehdr)

    def initvtop(self) -> None:
        """``_arm_initvtop``: program headers, kernbase/physaddr, ``kernel_l1pa``, L1 table."""
        kd = self.kd
        self.l1: tuple[int, ...] | None = None
        self.phdrs: list[Phdr] = []
        self._segs: tuple[tuple[int, int, int], ...] = ()
        self._l2cache: dict[int, tuple[int, ...] | None] = {}
        if kd.rawdump:
            raise FormatError(E.ARM_RAW_DUMPS)
        self._endian = kd.kernel.ehdr.endian
        self.phdrs = read_core_phdrs(kd.core, kd.kernel.ehdr)
        # _kvm_pa2off visits every header in file order; zero-sized ones never match
        self._segs = tuple((p.paddr, p.paddr + p.memsz, p.offset) for p in self.phdrs
                           if p.memsz > 0)
        delta = next((p for p in self.phdrs if p.type == PT_DUMP_DELTA), None)
        if delta is not None:
            kernbase, physaddr = delta.vaddr, delta.paddr
        else:
            count, values = kd.nlist2_values(["kernbase"])
            if count != 0:
                if not arm_host():
                    raise FormatError(E.ARM_NO_KERNBASE)
                kernbase = ARM_KERNBASE
            else:
                kernbase = values[0]
            count, values = kd.nlist2_values(["physaddr"])
            if count != 0:
                raise FormatError(E.ARM_NO_PHYSADDR)
            physaddr = values[0]
        self.kernbase = kernbase & U64
        self.physaddr = physaddr & U32  # arm_physaddr_t
        count, values = kd.nlist2_values(["kernel_l1pa"])
        if count != 0:
            raise FormatError(E.ARM_BAD_NAMELIST)
        var_va = values[0] & U64
        where = (var_va - self.kernbase + self.physaddr) & U64
        raw = kd.read_bootstrap(where, 4)
        if raw is None or len(raw) != 4:
            raise FormatError(E.ARM_READ_KERNEL_L1PA)
        #: the value of the kernel variable: physical (v4 pmap) or virtual (pmap-v6)
        self.kernel_l1pa: int = _U32[self._endian].unpack(raw)[0]
        self.l1pa, self.l1 = self._find_l1(var_va, where)

    def _find_l1(self, var_va: int, var_pa: int) -> tuple[int, tuple[int, ...]]:
        """The physical address and entries of the kernel's L1 table.

        ``kernel_l1pa`` holds a physical address on the v4 pmap (``l1pt->pv_pa``)
        but the table's *virtual* address on pmap-v6 (``pmap_bootstrap``:
        ``kernel_l1pa = (vm_paddr_t)kern_pt1``, a ``KERNEL_P2V`` address).  The
        candidates are the value itself (libkvm's reading) and the value taken as
        a kernel virtual address, moved by the ``kernbase``/``physaddr`` delta
        that located the variable (``KERNEL_V2P``; only when that gives an
        address at all).  A candidate counts when its 16 KiB lie in the dump;
        with two, the one whose table maps ``kernel_l1pa``'s own address to where
        it was read wins, and the value as is when both or neither do.  None
        readable: libkvm's ``cannot read l1pt``.
        """
        value = self.kernel_l1pa
        candidates = [value]
        moved = value - self.kernbase + self.physaddr
        if moved >= 0 and moved != value:
            candidates.append(moved)
        found: list[tuple[int, tuple[int, ...]]] = []
        for pa in candidates:
            table = self.kd.read_bootstrap(pa, ARM_L1_TABLE_SIZE)
            if table is not None and len(table) == ARM_L1_TABLE_SIZE:
                found.append((pa, _L1[self._endian].unpack(table)))
        if not found:
            raise FormatError(E.ARM_READ_L1PT)
        if len(found) == 2 and var_va < VA_LIMIT:
            fits = [self._maps(l1, var_va, var_pa) for _, l1 in found]
            if fits == [False, True]:
                return found[1]
        return found[0]

    def _maps(self, l1: tuple[int, ...], va: int, pa: int) -> bool:
        """Whether the L1 table ``l1`` translates ``va`` to ``pa``."""
        got, size = self._resolve(l1, va)
        return size > 0 and got == pa

    def cacheable(self) -> bool:
        """Only once the L1 table is loaded (before, addresses are physical)."""
        return self.l1 is not None

    def _seg(self, pa: int) -> tuple[int, int] | None:
        """``_kvm_pa2off``'s lookup: (file offset, bytes left in the segment), or None."""
        for start, end, offset in self._segs:
            if start <= pa < end:
                return pa - start + offset, end - pa
        return None

    def _pa2off(self, pa: int, pgsz: int) -> tuple[int, int]:
        """``_kvm_pa2off``: (offset, bytes to the end of the ``pgsz`` mapping), clamped to
        the segment (formats.md 14 row 6); (0, 0), with no message, outside every segment.
        """
        for start, end, offset in self._segs:
            if start <= pa < end:
                return pa - start + offset, min(pgsz - (pa & (pgsz - 1)), end - pa)
        return 0, 0

    def _invalid(self, va: int) -> tuple[int, int]:
        self.kd.err(None, E.cformat(E.ARM_INVALID_ADDRESS, va))
        return 0, 0

    def _l2_table(self, base: int) -> tuple[int, ...] | None:
        """The 256 entries of the coarse table at ``base`` when it lies whole in one
        segment and in the file (cached); None sends the caller to entry-by-entry reads.
        """
        cache = self._l2cache
        if base in cache:
            return cache[base]
        table: tuple[int, ...] | None = None
        seg = self._seg(base)
        if seg is not None and seg[1] >= ARM_L2_ENTRIES * 4:
            raw = self.kd.core.pread(seg[0], ARM_L2_ENTRIES * 4)
            if len(raw) == ARM_L2_ENTRIES * 4:
                table = _L2[self._endian].unpack(raw)
        if len(cache) >= 4096:
            cache.clear()
        cache[base] = table
        return table

    def kvatop(self, va: int) -> tuple[int, int]:
        """``_arm_kvatop``: L1 section / supersection, or coarse L2 large and small pages."""
        l1 = self.l1
        if l1 is None:
            # bootstrap: the address is physical; outside every segment fails silently
            return self._pa2off(va, ARM_PAGE_SIZE)
        if va >= VA_LIMIT:
            return self._invalid(va)
        pa, size = self._resolve(l1, va)
        if size > 0:
            return self._pa2off(pa, size)
        if size < 0:
            # a short pread leaves errno as it was; FreeBSD prints 0 as below
            self.kd.syserr(self.kd.program, E.ARM_PREAD, 0)
        return self._invalid(va)

    def _resolve(self, l1: tuple[int, ...], va: int) -> tuple[int, int]:
        """Walk ``l1`` for ``va`` (below 4 GiB): (physical address, mapping size).

        The size is that of the section, supersection, large or small page; 0
        means an invalid descriptor or an L2 table outside every segment
        (formats.md 14 row 14), -1 a short read of the L2 entry.
        """
        pd = l1[va >> ARM_L1_S_SHIFT]
        kind = pd & ARM_L1_TYPE_MASK
        if kind == ARM_L1_TYPE_INV:
            return 0, 0
        if kind == ARM_L1_TYPE_S:
            if pd & ARM_L1_S_SUPERSEC:
                pa = ((pd & ARM_L1_SUP_FRAME) | ((pd >> 20) & 0xF) << 32
                      | ((pd >> 5) & 0xF) << 36 | (va & ARM_L1_SUP_OFFSET))
                return pa, ARM_L1_SUP_SIZE
            return (pd & ARM_L1_S_ADDR_MASK) + (va & ARM_L1_S_OFFSET), ARM_L1_S_SIZE
        base = pd & ARM_L1_C_ADDR_MASK
        index = (va & ARM_L1_S_OFFSET) >> ARM_L2_S_SHIFT
        table = self._l2_table(base)
        if table is not None:
            pte = table[index]
        else:
            seg = self._seg(base + index * 4)
            if seg is None or seg[1] < 4:
                return 0, 0
            raw = self.kd.core.pread(seg[0], 4)
            if len(raw) != 4:
                return 0, -1
            pte = _U32[self._endian].unpack(raw)[0]
        kind = pte & ARM_L2_TYPE_MASK
        if kind == ARM_L2_TYPE_INV:
            return 0, 0
        if kind == ARM_L2_TYPE_L:
            return (pte & ARM_L2_L_FRAME) | (va & ARM_L2_L_OFFSET), ARM_L2_L_SIZE
        return (pte & ARM_L2_S_FRAME) | (va & ARM_L2_S_OFFSET), ARM_PAGE_SIZE

    def dumped_pages(self) -> int:
        """Pages of memory in the PT_LOAD segments."""
        return sum(p.memsz for p in self.phdrs if p.type == PT_LOAD) // ARM_PAGE_SIZE
