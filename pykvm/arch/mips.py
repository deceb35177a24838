"""mips: minidumps of o32, n32 and n64 kernels, big- and little-endian.

Mirrors lib/libkvm/kvm_minidump_mips.c of FreeBSD 14 and earlier
(``_mips_minidump_probe``, ``_mips_minidump_initvtop``,
``_mips_minidump_kvatop``, ``_mips_native``, ``_mips_iterator_init``,
``_mips_iterator_next``, ``_mips_minidump_walk_pages``), with the constants of
lib/libkvm/kvm_mips.h and sys/mips/include/cpuregs.h, the header of
sys/mips/include/minidump.h, and the writer sys/mips/mips/minidump_machdep.c
(``minidumpsys``) (formats.md section 9).  libkvm of FreeBSD main no longer
has this reader; pykvm keeps it.  mips has no full-dump reader.

What libkvm reports and pykvm reproduces: a kernel virtual address below
``kernbase`` that is in no direct segment fails with the hard ``not
minidumped`` text only, without the final ``invalid address`` message; every
message prints the page-aligned address (formats.md 14 row 12, api.md 8.3).

pykvm departures (formats.md 14): the header, dump_avail and PTEs are decoded
in the kernel's byte order and the bitmap with the kernel's ``long`` (32 bits
for o32 and n32, 64 for n64; row 3); an address in a hole below a dump_avail
range is absent (row 2); a 32-bit (o32) PTE's frame is converted to a
physical address without libkvm's 32-bit truncation (``MIPS32_PTE_TO_PA``
shifts a ``uint32_t`` left by 12, losing frame bits 20-22, which the hardware
places at physical bits 32-34).
"""

from __future__ import annotations

import platform
import struct
import sys
import sysconfig
from array import array
from collections.abc import Iterator

from .. import errors as E
from ..constants import (
    EF_MIPS_ABI2,
    ELFCLASS32,
    ELFCLASS64,
    ELFDATA2LSB,
    ELFDATA2MSB,
    EM_MIPS,
    LIBKVM_WALK_PAGES_VERSION,
    VM_PROT_EXECUTE,
    VM_PROT_READ,
    VM_PROT_WRITE,
)
from ..core.minidump import SparsePages, init_sparse, read_pmap, round_page
from ..errors import FormatError
from ..image.elf import Ehdr, host_machine
from .base import HeaderField, HeaderLayout, KvmPage, MinidumpBackend

# kvm_mips.h
MIPS_PAGE_SHIFT = 12
MIPS_PAGE_SIZE = 1 << MIPS_PAGE_SHIFT
MIPS_PAGE_MASK = MIPS_PAGE_SIZE - 1
MIPS32_KSEG0_START = 0x80000000
MIPS32_KSEG0_END = 0x9FFFFFFF
MIPS32_KSEG1_START = 0xA0000000
MIPS32_KSEG1_END = 0xBFFFFFFF
MIPS64_KSEG0_START = 0xFFFFFFFF80000000
MIPS64_KSEG0_END = 0xFFFFFFFF9FFFFFFF
MIPS64_KSEG1_START = 0xFFFFFFFFA0000000
MIPS64_KSEG1_END = 0xFFFFFFFFBFFFFFFF
MIPS32_PFN_MASK = 0x1FFFFFC0
MIPS64_PFN_MASK = 0x3FFFFFFC0
MIPS_PFN_SHIFT = 6
MIPS32_SWBITS_SHIFT = 29
MIPS64_SWBITS_SHIFT = 55
MIPS_PTE_V = 0x02
MIPS32_PTE_RO = 1 << MIPS32_SWBITS_SHIFT
MIPS64_PTE_RO = 1 << MIPS64_SWBITS_SHIFT
# cpuregs.h
MIPS_KSEG0_PHYS_MASK = 0x1FFFFFFF
MIPS_XKPHYS_PHYS_MASK = 0x0FFFFFFFFFF
MIPS_XKPHYS_START = 0x8000000000000000
MIPS_XKPHYS_END = 0xBFFFFFFFFFFFFFFF
U64 = (1 << 64) - 1

# minidump.h
MINIDUMP_MAGIC = b"minidump FreeBSD/mips"
MINIDUMP_VERSION = 2

#: struct minidumphdr (sys/mips/include/minidump.h), kernel byte order, 72 bytes.
#: ``dumpavailsize`` is only meaningful in version 2 headers.
MINIDUMP_HEADER = HeaderLayout([
    HeaderField("magic", 0, "24s"),
    HeaderField("version", 24, "I"),
    HeaderField("msgbufsize", 28, "I"),
    HeaderField("bitmapsize", 32, "I"),
    HeaderField("ptesize", 36, "I"),
    HeaderField("kernbase", 40, "Q"),
    HeaderField("dmapbase", 48, "Q"),
    HeaderField("dmapend", 56, "Q"),
    HeaderField("dumpavailsize", 64, "I"),
], 72)

#: The host's own byte order as array() stores it (not sys.byteorder, which
#: tests of native() replace).
_HOST_ENDIAN = "<" if array("H", [1]).tobytes()[0] == 1 else ">"
_ARRAY_CODE = {4: next(c for c in "IL" if array(c).itemsize == 4),
               8: next(c for c in "QL" if array(c).itemsize == 8)}


def _pointer_bits() -> int:
    """Width of a pointer in this Python process."""
    return struct.calcsize("P") * 8


def _abi_hints() -> str:
    """Platform strings that name the mips ABI of this process (``n32`` shows up there)."""
    parts = [sysconfig.get_config_var("MULTIARCH"), sysconfig.get_config_var("HOST_GNU_TYPE"),
             platform.processor()]
    return " ".join(str(p) for p in parts if p)


def host_mips_abi() -> str | None:
    """The ABI libkvm would have been built for on this host: ``n64``, ``n32``, ``o32``.

    None when the host is not mips.  Mirrors the ``__mips_n64`` /
    ``__mips_n32`` tests of ``_mips_native``: a 64-bit process is n64; a
    32-bit one is n32 when the platform names that ABI, else o32.
    """
    if not host_machine().startswith("mips"):
        return None
    if _pointer_bits() == 64:
        return "n64"
    return "n32" if "n32" in _abi_hints().lower() else "o32"


def kernel_mips_abi(ehdr: Ehdr) -> str:
    """The kernel's ABI: n64 for ELFCLASS64, n32 with ``EF_MIPS_ABI2``, else o32."""
    if ehdr.ei_class == ELFCLASS64:
        return "n64"
    return "n32" if ehdr.e_flags & EF_MIPS_ABI2 else "o32"


def magic_matches(field: bytes) -> bool:
    """``strncmp(MINIDUMP_MAGIC, hdr.magic, sizeof(hdr.magic)) == 0``."""
    return field[: len(MINIDUMP_MAGIC) + 1] == MINIDUMP_MAGIC + b"\0"


def c_int(value: int) -> int:
    """A ``uint32_t`` as C's ``%d`` prints it."""
    return value - (1 << 32) if value >= 1 << 31 else value


class MipsMinidump(MinidumpBackend):
    """kvm_minidump_mips.c: header versions 1 and 2, 32- and 64-bit PTEs."""

    header_page_size = MIPS_PAGE_SIZE

    arch = "mips"
    fmt = "minidump"
    page_size = MIPS_PAGE_SIZE

    @classmethod
    def probe(cls, ehdr: Ehdr, is_minidump: bool) -> bool:
        """``_mips_minidump_probe``: ELFCLASS32 or 64, EM_MIPS, any e_type, a minidump."""
        return (ehdr.ei_class in (ELFCLASS32, ELFCLASS64) and ehdr.e_machine == EM_MIPS
                and is_minidump)

    def native(self) -> bool:
        """``_mips_native``: a mips host of the kernel's ABI and byte order."""
        ehdr = self.kd.kernel.ehdr
        abi = host_mips_abi()
        if abi is None or abi != kernel_mips_abi(ehdr):
            return False
        want = ELFDATA2LSB if sys.byteorder == "little" else ELFDATA2MSB
        return ehdr.ei_data == want

    def initvtop(self) -> None:
        """``_mips_minidump_initvtop``: header checks, dump_avail, bitmap, PTE array."""
        kd = self.kd
        core = kd.core
        ehdr = kd.kernel.ehdr
        endian = ehdr.endian
        self._is64 = ehdr.ei_class == ELFCLASS64
        self.pte_size = 8 if self._is64 or ehdr.e_flags & EF_MIPS_ABI2 else 4
        raw = core.pread(0, MINIDUMP_HEADER.size)
        if len(raw) != MINIDUMP_HEADER.size:
            raise FormatError(E.CANNOT_READ_DUMP_HEADER)
        h = MINIDUMP_HEADER.unpack(raw, endian)
        if not magic_matches(h["magic"]):
            raise FormatError(E.NOT_A_MINIDUMP)
        version: int = h["version"]
        if version != MINIDUMP_VERSION and version != 1:
            raise FormatError(E.cformat(E.WRONG_VERSION_UC, MINIDUMP_VERSION, c_int(version)))
        self.hdr = h
        self._version = version
        self.msgbufsize: int = h["msgbufsize"]
        self.bitmapsize: int = h["bitmapsize"]
        self.ptesize: int = h["ptesize"]
        self.kernbase: int = h["kernbase"]
        dumpavailsize: int = h["dumpavailsize"] if version == MINIDUMP_VERSION else 0
        dump_avail_off = MIPS_PAGE_SIZE + round_page(self.msgbufsize, MIPS_PAGE_SIZE)
        bitmap_off = dump_avail_off + round_page(dumpavailsize, MIPS_PAGE_SIZE)
        pte_off = bitmap_off + round_page(self.bitmapsize, MIPS_PAGE_SIZE)
        sparse_off = pte_off + round_page(self.ptesize, MIPS_PAGE_SIZE)
        # Version 2 writers keep the bitmap as a BITSET of long (32 bits on o32 and n32,
        # 64 on n64); the version 1 writer (FreeBSD 12 and earlier) used uint32_t words on
        # every ABI (minidump_machdep.c: "uint32_t *vm_page_dump").
        word_bits = 64 if self._is64 and version == MINIDUMP_VERSION else 32
        self.pages: SparsePages = init_sparse(
            core, dumpavailsize=dumpavailsize, dump_avail_off=dump_avail_off,
            bitmapsize=self.bitmapsize, bitmap_off=bitmap_off, sparse_off=sparse_off,
            page_size=MIPS_PAGE_SIZE, endian=endian, word_bits=word_bits)
        pmap = read_pmap(core, self.ptesize, pte_off)
        self.nptes = self.ptesize // self.pte_size
        ptes = array(_ARRAY_CODE[self.pte_size])
        ptes.frombytes(pmap[: self.nptes * self.pte_size])
        if endian != _HOST_ENDIAN:
            ptes.byteswap()
        self.ptes = ptes
        if self.pte_size == 8:
            self._pfn_mask, self._ro = MIPS64_PFN_MASK, MIPS64_PTE_RO
        else:
            self._pfn_mask, self._ro = MIPS32_PFN_MASK, MIPS32_PTE_RO

    def pte_to_pa(self, pte: int) -> int:
        """``MIPS32_PTE_TO_PA`` / ``MIPS64_PTE_TO_PA``: the frame as a physical address.

        Computed without truncation to 32 bits (see the module docstring).
        """
        return ((pte & self._pfn_mask) >> MIPS_PFN_SHIFT) << MIPS_PAGE_SHIFT

    def _fail(self, va: int, hard: str | None) -> tuple[int, int]:
        """The ``invalid:`` exit of ``_mips_minidump_kvatop`` (``va`` page-aligned)."""
        kd = self.kd
        if hard is not None:
            kd.err(kd.program, hard)
        kd.err(None, E.cformat(E.INVALID_ADDRESS, va))
        return 0, 0

    def kvatop(self, va: int) -> tuple[int, int]:
        """``_mips_minidump_kvatop``: direct segments, then the PTE array from kernbase."""
        offset = va & MIPS_PAGE_MASK
        va ^= offset  # libkvm works on the page-aligned address from here on
        if self._is64:
            if MIPS_XKPHYS_START <= va < MIPS_XKPHYS_END:
                a = va & MIPS_XKPHYS_PHYS_MASK
            elif MIPS64_KSEG0_START <= va < MIPS64_KSEG0_END:
                a = va & MIPS_KSEG0_PHYS_MASK
            elif MIPS64_KSEG1_START <= va < MIPS64_KSEG1_END:
                a = va & MIPS_KSEG0_PHYS_MASK
            else:
                a = -1
        elif MIPS32_KSEG0_START <= va < MIPS32_KSEG0_END:
            a = va & MIPS_KSEG0_PHYS_MASK
        elif MIPS32_KSEG1_START <= va < MIPS32_KSEG1_END:
            a = va & MIPS_KSEG0_PHYS_MASK
        else:
            a = -1
        if a < 0:
            if va < self.kernbase:
                kd = self.kd
                kd.err(kd.program, E.cformat(E.MIPS_MD_NOT_DUMPED, va))
                return 0, 0  # no "invalid address" message on this path
            idx = (va - self.kernbase) >> MIPS_PAGE_SHIFT
            if idx >= self.nptes:
                return self._fail(va, None)
            pte = self.ptes[idx]
            if not pte & MIPS_PTE_V:
                return self._fail(va, E.MIPS_MD_PTE_INVALID)
            a = ((pte & self._pfn_mask) >> MIPS_PFN_SHIFT) << MIPS_PAGE_SHIFT
        ofs = self.pages.find(a)
        if ofs == -1:
            return self._fail(va, E.cformat(E.MIPS_MD_PA_ABSENT, a))
        return ofs + offset, MIPS_PAGE_SIZE - offset

    def walk_pages(self) -> Iterator[KvmPage] | None:
        """``_mips_minidump_walk_pages``: the valid entries of the PTE array, in order.

        The direct segments (KSEG0/KSEG1/XKPHYS) are not reported, as in libkvm.
        """
        return self._walk()

    def _walk(self) -> Iterator[KvmPage]:
        """``_mips_iterator_next`` driven to the end, each hit through ``_kvm_visit_cb``."""
        find = self.pages.find
        kernbase = self.kernbase
        ro = self._ro
        for idx, pte in enumerate(self.ptes):
            if not pte & MIPS_PTE_V:
                continue
            # mips pmap: every kernel page is at least readable and executable.
            prot = VM_PROT_READ | VM_PROT_EXECUTE
            if not pte & ro:
                prot |= VM_PROT_WRITE
            pa = self.pte_to_pa(pte)
            va = (kernbase + (idx << MIPS_PAGE_SHIFT)) & U64
            yield KvmPage(LIBKVM_WALK_PAGES_VERSION, pa, va, 0, prot, find(pa), MIPS_PAGE_SIZE)

