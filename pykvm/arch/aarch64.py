"""aarch64 (arm64) minidumps: header versions 1-3, 4 KiB and 16 KiB pages.

Mirrors lib/libkvm/kvm_minidump_aarch64.c (``_aarch64_minidump_probe``,
``_aarch64_minidump_initvtop``, ``_aarch64_minidump_vatop``,
``_aarch64_native``, ``_aarch64_entry_to_prot``,
``_aarch64_minidump_walk_pages``) with the constants of kvm_aarch64.h and the
header of sys/arm64/include/minidump.h, as the kernel writes it in
sys/arm64/arm64/minidump_machdep.c (formats.md section 8).  There is no
aarch64 full-dump reader in libkvm: an ELF core of an arm64 kernel is claimed
by nobody and ends in ``unsupported architecture``.

The page-table section of an arm64 minidump is a flat array of 8-byte L3
entries, one per page of kernel virtual address space from ``kernbase``; the
kernel writes L1 and L2 block mappings as runs of fake L3 entries, so one
index computation translates every kernel address.  riscv minidumps have the
same shape (kvm_minidump_riscv.c was written from the same template), so the
shared machinery lives here in :class:`L3ArrayMinidump` and
:mod:`pykvm.arch.riscv` only declares its differences.

pykvm departures (formats.md 14 rule: what the hardware and the kernel say
about memory, pykvm answers correctly; how libkvm reports, pykvm
reproduces):

* header and entries are decoded in the kernel's byte order (libkvm uses
  ``le*toh``; every FreeBSD arm64 kernel is little-endian, so the results
  agree for every real dump);
* walk_pages reports the direct-map alias of a page as the kernel computes it,
  ``dmapbase + pa - dmapphys`` (``PHYS_TO_DMAP``), and 0 when the page lies
  outside the direct map; libkvm reports ``dmapbase + pa``, which names
  another page whenever ``dmapphys`` is not 0;
* walk_pages reports EXECUTE when the privileged-execute-never bit (PXN) is
  clear: arm64 ``pmap_enter`` sets UXN on every kernel mapping, so libkvm's
  test of ``PXN | UXN`` reports no kernel page as executable; and WRITE for a
  clean writable page (AP read-only plus ``ATTR_SW_DBM``, which the arm64
  pmap defines as "the mapping is writeable"), as libkvm does for dirty ones.
"""

from __future__ import annotations

import sys
from array import array
from collections.abc import Iterator
from typing import Any, ClassVar

from .. import errors as E
from ..constants import (
    ELFCLASS64,
    EM_AARCH64,
    ET_EXEC,
    LIBKVM_WALK_PAGES_VERSION,
    VM_PROT_EXECUTE,
    VM_PROT_READ,
    VM_PROT_WRITE,
)
from ..core.minidump import SparsePages, init_sparse, read_pmap, round_page
from ..errors import FormatError
from ..image.elf import Ehdr, host_machine
from .base import HeaderField, HeaderLayout, KdContext, KvmPage, MinidumpBackend

U64 = (1 << 64) - 1

# kvm_aarch64.h
AARCH64_PAGE_SHIFT_4K = 12
AARCH64_PAGE_SIZE_4K = 1 << AARCH64_PAGE_SHIFT_4K
AARCH64_PAGE_SHIFT_16K = 14
AARCH64_PAGE_SIZE_16K = 1 << AARCH64_PAGE_SHIFT_16K
AARCH64_L3_SHIFT_4K = 12
AARCH64_L3_SHIFT_16K = 14
AARCH64_ATTR_MASK = 0xFFFC000000000FFF
AARCH64_ATTR_UXN = 1 << 54
AARCH64_ATTR_PXN = 1 << 53
AARCH64_ATTR_XN = AARCH64_ATTR_PXN | AARCH64_ATTR_UXN
AARCH64_ATTR_AP_RO = 1 << 7  # ATTR_AP(ATTR_AP_RO): AP[2], read-only
AARCH64_ATTR_DESCR_MASK = 3
AARCH64_L3_PAGE = 3
# sys/arm64/include/pte.h and pmap.c: the software dirty-bit-modifier flag
ATTR_SW_DBM = 1 << 51

# sys/arm64/include/minidump.h
MINIDUMP_MAGIC = b"minidump FreeBSD/arm64"
MINIDUMP_VERSION = 3
MINIDUMP_FLAG_PS_MASK = 3
MINIDUMP_FLAG_PS_4K = 0
MINIDUMP_FLAG_PS_16K = 1

#: struct minidumphdr (sys/arm64/include/minidump.h), kernel byte order, 80 bytes.
#: ``dumpavailsize`` exists from version 2, ``flags`` from version 3.
MINIDUMP_HEADER = HeaderLayout([
    HeaderField("magic", 0, "24s"),
    HeaderField("version", 24, "I"),
    HeaderField("msgbufsize", 28, "I"),
    HeaderField("bitmapsize", 32, "I"),
    HeaderField("pmapsize", 36, "I"),
    HeaderField("kernbase", 40, "Q"),
    HeaderField("dmapphys", 48, "Q"),
    HeaderField("dmapbase", 56, "Q"),
    HeaderField("dmapend", 64, "Q"),
    HeaderField("dumpavailsize", 72, "I"),
    HeaderField("flags", 76, "I"),
], 80)

#: (page size, L3 shift) for each ``flags & MINIDUMP_FLAG_PS_MASK`` libkvm knows.
PAGE_SIZES = {
    MINIDUMP_FLAG_PS_4K: (AARCH64_PAGE_SIZE_4K, AARCH64_L3_SHIFT_4K),
    MINIDUMP_FLAG_PS_16K: (AARCH64_PAGE_SIZE_16K, AARCH64_L3_SHIFT_16K),
}


def c_int(value: int) -> int:
    """A ``uint32_t`` as ``printf("%d")`` shows it (values of 2**31 and above are negative)."""
    return value - (1 << 32) if value >= 1 << 31 else value


def magic_matches(field: bytes, magic: bytes) -> bool:
    """``strncmp(MINIDUMP_MAGIC, hdr.magic, sizeof(hdr.magic)) == 0``."""
    return field[: len(magic) + 1] == magic + b"\0"


def host_is(machines: tuple[str, ...], ehdr: Ehdr) -> bool:
    """The host is one of ``machines`` and has the kernel's byte order (api.md 4.8)."""
    host_endian = "<" if sys.byteorder == "little" else ">"
    return host_machine() in machines and ehdr.endian == host_endian


class L3ArrayMinidump(MinidumpBackend):
    """A minidump whose page-table section is a flat array of L3 entries from kernbase.

    Shared by kvm_minidump_aarch64.c and kvm_minidump_riscv.c, which differ
    only in the data below: how an entry says it is valid, where its physical
    address sits, its protection bits, the header versions accepted and the
    message texts.  A subclass sets the class attributes and
    :meth:`_version_ok`; the page size may vary per dump (``_page_geometry``).
    """

    #: e_machine of the kernels this backend claims.
    MACHINE: ClassVar[int] = 0
    #: ``uname -m`` spellings of the native host.
    HOSTS: ClassVar[tuple[str, ...]] = ()
    MAGIC: ClassVar[bytes] = b""
    HEADER: ClassVar[HeaderLayout] = MINIDUMP_HEADER
    MAX_VERSION: ClassVar[int] = 0
    #: An entry is valid when ``e & VALID_MASK == VALID_BITS`` and, if
    #: VALID_ANY is not 0, ``e & VALID_ANY`` is not 0.
    VALID_MASK: ClassVar[int] = 0
    VALID_BITS: ClassVar[int] = 0
    VALID_ANY: ClassVar[int] = 0
    #: Physical address of an entry: ``((e >> PA_RSHIFT) & PA_MASK) << PA_LSHIFT``.
    PA_RSHIFT: ClassVar[int] = 0
    PA_MASK: ClassVar[int] = 0
    PA_LSHIFT: ClassVar[int] = 0
    MSG_DMAP: ClassVar[str] = ""
    MSG_INVALID: ClassVar[str] = ""
    MSG_PA: ClassVar[str] = ""
    MSG_NOT_DUMPED: ClassVar[str] = ""

    @classmethod
    def probe(cls, ehdr: Ehdr, is_minidump: bool) -> bool:
        """``_kvm_probe_elf_kernel(kd, ELFCLASS64, MACHINE) && _kvm_is_minidump(kd)``."""
        return (ehdr.ei_class == ELFCLASS64 and ehdr.e_type == ET_EXEC
                and ehdr.e_machine == cls.MACHINE and is_minidump)

    def native(self) -> bool:
        """``_aarch64_native``: the host is arm64, in the kernel's byte order."""
        return host_is(self.HOSTS, self.kd.kernel.ehdr)

    # -- initialisation ------------------------------------------------------------
    def _read_header(self) -> dict[str, Any]:
        """The header checks every minidump initvtop starts with: size, then magic."""
        raw = self.kd.core.pread(0, self.HEADER.size)
        if len(raw) != self.HEADER.size:
            raise FormatError(E.CANNOT_READ_DUMP_HEADER)
        h = self.HEADER.unpack(raw, self.kd.kernel.ehdr.endian)
        if not magic_matches(h["magic"], self.MAGIC):
            raise FormatError(E.NOT_A_MINIDUMP)
        return h

    def _version_ok(self, version: int) -> bool:
        """Whether libkvm accepts this header version."""
        return 1 <= version <= self.MAX_VERSION

    def _dumpavailsize(self, h: dict[str, Any]) -> int:
        """``dumpavailsize`` where the header version has it, else 0."""
        return int(h["dumpavailsize"]) if h["version"] >= 2 else 0

    def _page_geometry(self, h: dict[str, Any]) -> tuple[int, int]:
        """(page size, L3 shift) of the dump; raises FormatError for unknown ones."""
        return 4096, 12

    def initvtop(self) -> None:
        """The ``*_minidump_initvtop`` routine: header, dump_avail, bitmap, page map.

        Sections follow formats.md 3.1 with the dump's page size ``PS``: the
        header page, the message buffer, dump_avail, the bitmap and the
        L3 array, each rounded up to ``PS``, then the dumped pages.
        """
        h = self._read_header()
        version: int = h["version"]
        if not self._version_ok(version):
            raise FormatError(E.cformat(E.WRONG_VERSION_UC, self.MAX_VERSION, c_int(version)))
        ps, l3_shift = self._page_geometry(h)
        core = self.kd.core
        endian = self.kd.kernel.ehdr.endian
        self.hdr = h
        self._version = version
        self.page_size = ps
        self.header_page_size = ps  # the message buffer follows the header page
        self.l3_shift = l3_shift
        self._pmask = ps - 1
        self.msgbufsize: int = h["msgbufsize"]
        self.bitmapsize: int = h["bitmapsize"]
        self.pmapsize: int = h["pmapsize"]
        self.kernbase: int = h["kernbase"]
        self.dmapphys: int = h["dmapphys"]
        self.dmapbase: int = h["dmapbase"]
        self.dmapend: int = h["dmapend"]
        dumpavailsize = self._dumpavailsize(h)
        dump_avail_off = ps + round_page(self.msgbufsize, ps)
        bitmap_off = dump_avail_off + round_page(dumpavailsize, ps)
        pmap_off = bitmap_off + round_page(self.bitmapsize, ps)
        sparse_off = pmap_off + round_page(self.pmapsize, ps)
        self.pages: SparsePages = init_sparse(
            core, dumpavailsize=dumpavailsize, dump_avail_off=dump_avail_off,
            bitmapsize=self.bitmapsize, bitmap_off=bitmap_off, sparse_off=sparse_off,
            page_size=ps, endian=endian, word_bits=64)
        raw = read_pmap(core, self.pmapsize, pmap_off)
        entries = array("Q")
        entries.frombytes(raw[: len(raw) // 8 * 8])
        if (endian == "<") != (sys.byteorder == "little"):
            entries.byteswap()
        self._pmap = entries
        self.nentries = len(entries)

    # -- translation ---------------------------------------------------------------
    def _fail(self, va: int, hard: str | None) -> tuple[int, int]:
        """The ``invalid:`` label: the hard text (if any), then ``invalid address``."""
        kd = self.kd
        if hard is not None:
            kd.err(kd.program, hard)
        kd.err(None, E.cformat(E.INVALID_ADDRESS, va))
        return 0, 0

    def kvatop(self, va: int) -> tuple[int, int]:
        """The ``*_minidump_vatop`` routine: direct map first, then the L3 array.

        A direct-map address translates linearly (``va - dmapbase + dmapphys``);
        an address at or above ``kernbase`` indexes the L3 array by page; any
        other address was not minidumped.  A hit returns the rest of its page.
        """
        ps = self.page_size
        offset = va & self._pmask
        if self.dmapbase <= va < self.dmapend:
            a = ((va - self.dmapbase + self.dmapphys) & U64) & ~self._pmask
            ofs = self.pages.find(a)
            if ofs == -1:
                return self._fail(va, E.cformat(self.MSG_DMAP, va))
            return ofs + offset, ps - offset
        if va >= self.kernbase:
            idx = (va - self.kernbase) >> self.l3_shift
            if idx >= self.nentries:
                return self._fail(va, None)
            entry = self._pmap[idx]
            if (entry & self.VALID_MASK != self.VALID_BITS
                    or (self.VALID_ANY and not entry & self.VALID_ANY)):
                return self._fail(va, self.MSG_INVALID)
            a = ((entry >> self.PA_RSHIFT) & self.PA_MASK) << self.PA_LSHIFT
            ofs = self.pages.find(a)
            if ofs == -1:
                return self._fail(va, E.cformat(self.MSG_PA, a))
            return ofs + offset, ps - offset
        return self._fail(va, E.cformat(self.MSG_NOT_DUMPED, va))

    # -- walk_pages ----------------------------------------------------------------
    def entry_to_prot(self, entry: int) -> int:
        """The ``*_entry_to_prot`` routine (per architecture)."""
        return VM_PROT_READ

    def dmap_alias(self, pa: int) -> int:
        """The direct-map address of ``pa`` (``PHYS_TO_DMAP``), 0 outside the direct map.

        pykvm's answer; libkvm reports ``dmapbase + pa`` whatever ``dmapphys`` is.
        """
        if pa < self.dmapphys:
            return 0
        va = self.dmapbase + (pa - self.dmapphys)
        return va if va < self.dmapend else 0

    def walk_pages(self) -> Iterator[KvmPage] | None:
        """The ``*_minidump_walk_pages`` routine: every valid L3 entry, in index order.

        Each record is one page of ``PS`` bytes; ``kp_offset`` is the page's
        place in the core (-1 when it was not dumped).  libkvm's second pass,
        over a scratch bitmap that these walkers never mark, reports nothing.
        """
        return self._walk()

    def _walk(self) -> Iterator[KvmPage]:
        ps = self.page_size
        shift = self.l3_shift
        kernbase = self.kernbase
        find = self.pages.find
        vmask, vbits, vany = self.VALID_MASK, self.VALID_BITS, self.VALID_ANY
        rshift, pmask, lshift = self.PA_RSHIFT, self.PA_MASK, self.PA_LSHIFT
        for idx, entry in enumerate(self._pmap):
            if entry & vmask != vbits or (vany and not entry & vany):
                continue
            pa = ((entry >> rshift) & pmask) << lshift
            yield KvmPage(LIBKVM_WALK_PAGES_VERSION, pa, (kernbase + (idx << shift)) & U64,
                          self.dmap_alias(pa), self.entry_to_prot(entry), find(pa), ps)

    # -- information -----------------------------------------------------------------


class Aarch64Minidump(L3ArrayMinidump):
    """kvm_minidump_aarch64.c: header versions 1-3; 4 KiB or 16 KiB pages (version 3).

    ``probe`` is ``_aarch64_minidump_probe``, ``native`` ``_aarch64_native``,
    ``initvtop`` ``_aarch64_minidump_initvtop`` (with :meth:`_page_geometry`
    for its page-size switch), ``kvatop`` ``_aarch64_minidump_vatop`` (an L3
    entry is valid when its descriptor type is page, 3; its physical address
    is the entry without ``AARCH64_ATTR_MASK``), ``entry_to_prot``
    ``_aarch64_entry_to_prot`` and ``walk_pages``
    ``_aarch64_minidump_walk_pages``.
    """

    arch = "aarch64"
    fmt = "minidump"
    MACHINE = EM_AARCH64
    HOSTS = ("aarch64", "arm64")
    MAGIC = MINIDUMP_MAGIC
    HEADER = MINIDUMP_HEADER
    MAX_VERSION = MINIDUMP_VERSION
    VALID_MASK = AARCH64_ATTR_DESCR_MASK
    VALID_BITS = AARCH64_L3_PAGE
    VALID_ANY = 0
    PA_RSHIFT = 0
    PA_MASK = ~AARCH64_ATTR_MASK & U64
    PA_LSHIFT = 0
    MSG_DMAP = E.AARCH64_MD_DMAP_ABSENT
    MSG_INVALID = E.AARCH64_MD_PDE_INVALID
    MSG_PA = E.AARCH64_MD_PA_ABSENT
    MSG_NOT_DUMPED = E.AARCH64_MD_NOT_DUMPED

    def __init__(self, kd: KdContext) -> None:
        super().__init__(kd)
        self.page_size = self._peek_page_size()

    def _peek_page_size(self) -> int:
        """The page size the header announces, 4096 when it says nothing usable.

        The descriptor sizes its translation cache from ``page_size`` before
        ``initvtop`` runs; this look never fails (initvtop reports problems).
        """
        raw = self.kd.core.pread(0, MINIDUMP_HEADER.size)
        if len(raw) != MINIDUMP_HEADER.size:
            return AARCH64_PAGE_SIZE_4K
        h = MINIDUMP_HEADER.unpack(raw, self.kd.kernel.ehdr.endian)
        if not magic_matches(h["magic"], MINIDUMP_MAGIC) or h["version"] != 3:
            return AARCH64_PAGE_SIZE_4K
        return PAGE_SIZES.get(h["flags"] & MINIDUMP_FLAG_PS_MASK, (AARCH64_PAGE_SIZE_4K, 0))[0]

    def _page_geometry(self, h: dict[str, Any]) -> tuple[int, int]:
        """``flags`` (version 3; 4 KiB before) picks the page size and L3 shift."""
        flags = h["flags"] if h["version"] >= 3 else MINIDUMP_FLAG_PS_4K
        geometry = PAGE_SIZES.get(flags & MINIDUMP_FLAG_PS_MASK)
        if geometry is None:
            raise FormatError(E.cformat(E.AARCH64_MD_PAGE_SIZE_FLAG,
                                        flags & MINIDUMP_FLAG_PS_MASK))
        return geometry

    def entry_to_prot(self, entry: int) -> int:
        """``_aarch64_entry_to_prot``, with the bits a kernel mapping uses.

        READ always; WRITE unless AP[2] (read-only) is set without
        ``ATTR_SW_DBM``; EXECUTE unless PXN is set (UXN concerns EL0 only and
        is set on every kernel mapping).
        """
        prot = VM_PROT_READ
        if not entry & AARCH64_ATTR_AP_RO or entry & ATTR_SW_DBM:
            prot |= VM_PROT_WRITE
        if not entry & AARCH64_ATTR_PXN:
            prot |= VM_PROT_EXECUTE
        return prot

