"""i386: minidumps (versions 1 and 2, PAE and non-PAE) and ELF full dumps.

Mirrors lib/libkvm/kvm_minidump_i386.c (``_i386_minidump_initvtop``,
``_i386_minidump_vatop``, ``_i386_minidump_vatop_pae``,
``_i386_minidump_walk_pages``) and lib/libkvm/kvm_i386.c (``_i386_initvtop``,
``_i386_vatop``, ``_i386_vatop_pae``, ``_kvm_pa2off``), with the constants of
kvm_i386.h and the header of sys/i386/include/minidump.h (formats.md
section 6).  Everything is little-endian, as the hardware reads it and as
libkvm decodes it (``le32toh``/``le64toh``).

pykvm departures (formats.md 14 and the report that came with this module):

* every full-dump translation, 4 MiB and 2 MiB pages included, is clamped to
  the PT_LOAD segment holding the physical address (row 6), and a page-table
  entry must lie wholly inside a segment;
* full-dump addresses at or above 4 GiB are invalid with only the soft
  ``invalid address (0x%jx)`` (row 16): libkvm indexes past its copy of the
  page directory;
* kernel variables are read during a full dump's initialisation at physical
  ``VA - (kernbase & 0xff000000)`` (:func:`kernel_var_pa`), not libkvm's
  ``VA - kernbase``: the two agree for kernels before FreeBSD 12, whose
  KERNBASE is 16 MiB aligned, and only the former is right for FreeBSD 12 and
  later, whose kernel runs at VA == PA with KERNBASE == KERNLOAD (8 MiB);
* kernels carrying both pmaps (FreeBSD 13 and later) define ``IdlePDPT``
  whatever mode they booted in; pykvm reads ``pae_mode`` and, when it is 0,
  loads the non-PAE directory from ``IdlePTD_nopae`` (formats.md 6.6).
"""

from __future__ import annotations

import struct
import sys
from array import array
from collections.abc import Iterator

from .. import errors as E
from ..constants import (
    ELFCLASS32,
    EM_386,
    ET_EXEC,
    LIBKVM_WALK_PAGES_VERSION,
    PT_LOAD,
    VM_PROT_EXECUTE,
    VM_PROT_READ,
    VM_PROT_WRITE,
)
from ..core.elfcore import Phdr, read_core_phdrs
from ..core.minidump import SparsePages, init_sparse, read_pmap, round_page
from ..errors import FormatError
from ..image.elf import Ehdr, host_machine
from .base import Backend, HeaderField, HeaderLayout, KvmPage, MinidumpBackend

# kvm_i386.h
PAGE_SHIFT = 12
PAGE_SIZE = 1 << PAGE_SHIFT
PAGE_MASK = PAGE_SIZE - 1
NPTEPG = PAGE_SIZE // 4
PDRSHIFT = 22
NBPDR = 1 << PDRSHIFT
PAGE_PS_MASK = NBPDR - 1
NPTEPG_PAE = PAGE_SIZE // 8
PDRSHIFT_PAE = 21
NBPDR_PAE = 1 << PDRSHIFT_PAE
PAGE_PS_MASK_PAE = NBPDR_PAE - 1
PG_V = 0x001
PG_RW = 0x002
PG_PS = 0x080
PG_NX = 1 << 63
PG_FRAME_PAE = 0x000FFFFFFFFFF000
PG_PS_FRAME_PAE = 0x000FFFFFFFE00000
PG_FRAME = 0xFFFFF000
PG_PS_FRAME = 0xFFC00000
#: Pages of the PAE page directory (``NPGPTD`` of sys/i386/include/pmap_pae.h).
NPGPTD_PAE = 4
#: Page-directory entries a full-dump translation can index: 4 GiB of KVA.
NPDE = 1 << (32 - PDRSHIFT)
NPDE_PAE = 1 << (32 - PDRSHIFT_PAE)
#: ``KERNBASE`` an i386 libkvm is compiled with (sys/i386/include/vmparam.h,
#: FreeBSD 12 and later: ``KERNBASE`` == ``KERNLOAD`` == 8 MiB); used only when
#: running on i386 and the kernel has no ``kernbase`` symbol.
KERNBASE_COMPILED = 0x00800000
#: The i386 loader relocates a kernel by the 16 MiB-aligned part of its address
#: (stand/common/load_elf.c: ``off = -(dest & 0xff000000)``).
LOADER_RELOC_MASK = 0xFF000000
U64 = (1 << 64) - 1

MINIDUMP_MAGIC = b"minidump FreeBSD/i386"
MINIDUMP_VERSION = 2

#: struct minidumphdr (sys/i386/include/minidump.h), little-endian, 52 bytes.
#: ``dumpavailsize`` is meaningful in version 2 only.
MINIDUMP_HEADER = HeaderLayout([
    HeaderField("magic", 0, "24s"),
    HeaderField("version", 24, "I"),
    HeaderField("msgbufsize", 28, "I"),
    HeaderField("bitmapsize", 32, "I"),
    HeaderField("ptesize", 36, "I"),
    HeaderField("kernbase", 40, "I"),
    HeaderField("paemode", 44, "I"),
    HeaderField("dumpavailsize", 48, "I"),
], 52)

_PTD = struct.Struct("<1024I")
_PTD_PAE = struct.Struct("<2048Q")
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")

#: The host's i386 spellings of ``uname -m``.
_I386_HOSTS = ("i386", "i486", "i586", "i686")


def entry_to_prot(entry: int) -> int:
    """``_i386_entry_to_prot``: READ, plus WRITE for PG_RW, plus EXECUTE without PG_NX."""
    prot = VM_PROT_READ
    if entry & PG_RW:
        prot |= VM_PROT_WRITE
    if not entry & PG_NX:
        prot |= VM_PROT_EXECUTE
    return prot


def i386_native() -> bool:
    """``_i386_native``: true when the host is i386 (always little-endian)."""
    return host_machine() in _I386_HOSTS and sys.byteorder == "little"


def magic_matches(field: bytes, magic: bytes) -> bool:
    """``strncmp(MINIDUMP_MAGIC, hdr.magic, sizeof(hdr.magic)) == 0``."""
    return field[: len(magic) + 1] == magic + b"\0"


def c_int(value: int) -> int:
    """A ``uint32_t`` as C's ``%d`` prints it."""
    return value - (1 << 32) if value >= 1 << 31 else value


def kernel_var_pa(va: int, kernbase: int) -> int:
    """Physical address of the kernel-image variable at ``va`` (full-dump bootstrap).

    libkvm reads ``va - kernbase``.  The loader puts an i386 kernel at ``va``
    minus the 16 MiB-aligned part of its link address: before FreeBSD 12 that
    is ``KERNBASE`` (0xc0000000, always 16 MiB aligned), so both rules agree;
    since FreeBSD 12 ``KERNBASE`` == ``KERNLOAD`` == 8 MiB and the kernel runs
    at VA == PA (sys/i386/include/vmparam.h, sys/conf/ldscript.i386), where
    libkvm's rule reads 8 MiB too low.
    """
    return (va - (kernbase & LOADER_RELOC_MASK)) & U64


def le_array(data: bytes, width: int) -> array[int]:
    """``data`` as an array of little-endian unsigned ``width``-byte integers."""
    code = next(c for c in "ILQ" if array(c).itemsize == width)
    out = array(code)
    out.frombytes(data[: len(data) // width * width])
    if sys.byteorder != "little":
        out.byteswap()
    return out


class I386Minidump(MinidumpBackend):
    """kvm_minidump_i386.c: header versions 1 and 2, PAE (8-byte) or non-PAE PTEs."""

    header_page_size = PAGE_SIZE

    arch = "i386"
    fmt = "minidump"

    @classmethod
    def probe(cls, ehdr: Ehdr, is_minidump: bool) -> bool:
        """``_i386_minidump_probe``: ELFCLASS32, ET_EXEC, EM_386 kernel, ``minidump`` core."""
        return (ehdr.ei_class == ELFCLASS32 and ehdr.e_type == ET_EXEC
                and ehdr.e_machine == EM_386 and is_minidump)

    def native(self) -> bool:
        """i386 hosts only."""
        return i386_native()

    def initvtop(self) -> None:
        """``_i386_minidump_initvtop``: header checks, dump_avail and bitmap, then the PTEs."""
        core = self.kd.core
        raw = core.pread(0, MINIDUMP_HEADER.size)
        if len(raw) != MINIDUMP_HEADER.size:
            raise FormatError(E.CANNOT_READ_DUMP_HEADER)
        h = MINIDUMP_HEADER.unpack(raw, "<")
        if not magic_matches(h["magic"], MINIDUMP_MAGIC):
            raise FormatError(E.NOT_A_MINIDUMP)
        version: int = h["version"]
        if version != MINIDUMP_VERSION and version != 1:
            raise FormatError(E.cformat(E.WRONG_VERSION_LC, MINIDUMP_VERSION, c_int(version)))
        self.hdr = h
        self._version = version
        self.msgbufsize: int = h["msgbufsize"]
        self.bitmapsize: int = h["bitmapsize"]
        self.ptesize: int = h["ptesize"]
        self.kernbase: int = h["kernbase"]
        self.pae = h["paemode"] != 0
        dumpavailsize = h["dumpavailsize"] if version == MINIDUMP_VERSION else 0
        dump_avail_off = PAGE_SIZE + round_page(self.msgbufsize, PAGE_SIZE)
        bitmap_off = dump_avail_off + round_page(dumpavailsize, PAGE_SIZE)
        pte_off = bitmap_off + round_page(self.bitmapsize, PAGE_SIZE)
        sparse_off = pte_off + round_page(self.ptesize, PAGE_SIZE)
        self.pages: SparsePages = init_sparse(
            core, dumpavailsize=dumpavailsize, dump_avail_off=dump_avail_off,
            bitmapsize=self.bitmapsize, bitmap_off=bitmap_off, sparse_off=sparse_off,
            page_size=PAGE_SIZE, endian="<", word_bits=32)
        width = 8 if self.pae else 4
        self._ptes = le_array(read_pmap(core, self.ptesize, pte_off), width)
        self.nptes = len(self._ptes)
        if self.pae:
            self._frame = PG_FRAME_PAE
            self._texts = (E.I386_MDPAE_PTE_INVALID, E.I386_MDPAE_PA_ABSENT,
                           E.I386_MDPAE_NOT_DUMPED)
        else:
            self._frame = PG_FRAME
            self._texts = (E.I386_MD_PTE_INVALID, E.I386_MD_PA_ABSENT, E.I386_MD_NOT_DUMPED)

    def _fail(self, va: int, hard: str | None) -> tuple[int, int]:
        kd = self.kd
        if hard is not None:
            kd.err(kd.program, hard)
        kd.err(None, E.cformat(E.INVALID_ADDRESS, va))
        return 0, 0

    def kvatop(self, va: int) -> tuple[int, int]:
        """``_i386_minidump_kvatop``: ``_i386_minidump_vatop_pae`` when the header's
        ``paemode`` is set, else ``_i386_minidump_vatop``.

        Both index the flat PTE array by ``(va - kernbase) >> 12``; only the
        entry width, the frame mask and the function name in the texts differ.
        """
        offset = va & PAGE_MASK
        if va >= self.kernbase:
            idx = (va - self.kernbase) >> PAGE_SHIFT
            if idx >= self.nptes:
                return self._fail(va, None)
            pte = self._ptes[idx]
            if not pte & PG_V:
                return self._fail(va, self._texts[0])
            a = pte & self._frame
            ofs = self.pages.find(a)
            if ofs == -1:
                return self._fail(va, E.cformat(self._texts[1], a))
            return ofs + offset, PAGE_SIZE - offset
        return self._fail(va, E.cformat(self._texts[2], va))

    def walk_pages(self) -> Iterator[KvmPage] | None:
        """``_i386_minidump_walk_pages``: every valid PTE, in index order."""
        return self._walk()

    def _walk(self) -> Iterator[KvmPage]:
        find = self.pages.find
        frame = self._frame
        kernbase = self.kernbase
        for idx, pte in enumerate(self._ptes):
            if not pte & PG_V:
                continue
            pa = pte & frame
            # _kvm_visit_cb with page_size 0: kp_offset looked up with len = 4 KiB
            yield KvmPage(LIBKVM_WALK_PAGES_VERSION, pa, kernbase + (idx << PAGE_SHIFT), 0,
                          entry_to_prot(pte), find(pa), PAGE_SIZE)



class I386ElfCore(Backend):
    """kvm_i386.c: ELF full dumps (and raw ``/dev/fwmem``-style memory), PAE or not."""

    arch = "i386"
    fmt = "elf"

    @classmethod
    def probe(cls, ehdr: Ehdr, is_minidump: bool) -> bool:
        """``_i386_probe``: ELFCLASS32, ET_EXEC, EM_386 kernel, core not a minidump."""
        return (ehdr.ei_class == ELFCLASS32 and ehdr.e_type == ET_EXEC
                and ehdr.e_machine == EM_386 and not is_minidump)

    def native(self) -> bool:
        """i386 hosts only."""
        return i386_native()

    # -- initialisation -------------------------------------------------------------
    def initvtop(self) -> None:
        """``_i386_initvtop``: program headers, ``kernbase``, then the page directory.

        ``IdlePDPT`` selects PAE (four directory pages found through the PDPT);
        without it ``IdlePTD`` gives the one non-PAE directory page.  A kernel
        with both pmaps whose ``pae_mode`` is 0 is read through ``IdlePTD_nopae``.
        """
        kd = self.kd
        self.ptd: tuple[int, ...] | None = None
        self.pae = False
        self.phdrs: list[Phdr] = []
        if not kd.rawdump:
            self.phdrs = read_core_phdrs(kd.core, kd.kernel.ehdr)
        self._segs = tuple((p.paddr, p.paddr + p.memsz, p.offset)
                           for p in self.phdrs if p.memsz > 0)
        count, values = kd.nlist2_values(["kernbase"])
        if count != 0:
            if not self.native():
                raise FormatError(E.I386_NO_KERNBASE)
            kernbase = KERNBASE_COMPILED  # "for old kernels", on i386 hosts only
        else:
            kernbase = values[0]
        count, values = kd.nlist2_values(["IdlePDPT"])
        if count == 0:
            if self._booted_without_pae(kernbase):
                self._load_ptd(kernbase, "IdlePTD_nopae")
            else:
                self._load_ptd_pae(kernbase, values[0])
        else:
            self._load_ptd(kernbase, "IdlePTD")

    def _booted_without_pae(self, kernbase: int) -> bool:
        """Whether a kernel with both pmaps ran without PAE (``pae_mode`` == 0).

        pykvm's addition to libkvm (formats.md 6.6): kernels with a single pmap
        have no ``pae_mode`` and keep libkvm's choice.  The variable is read
        quietly: a failure here leaves libkvm's path and no message.
        """
        count, values = self.kd.nlist2_values(["pae_mode"])
        if count != 0:
            return False
        ofs, left = self._pa2off(kernel_var_pa(values[0], kernbase))
        if left < 4:
            return False
        raw = self.kd.core.pread(ofs, 4)
        return len(raw) == 4 and _U32.unpack(raw)[0] == 0

    def _load_ptd_pae(self, kernbase: int, idlepdpt: int) -> None:
        """The PAE branch of ``_i386_initvtop``: ``IdlePDPT``, the PDPT, four PTD pages."""
        kd = self.kd
        raw = kd.read_bootstrap(kernel_var_pa(idlepdpt, kernbase), 4)
        if raw is None or len(raw) != 4:
            raise FormatError(E.I386_READ_IDLEPDPT)
        pdpt = _U32.unpack(raw)[0]
        pages = []
        for i in range(NPGPTD_PAE):
            raw = kd.read_bootstrap(pdpt + i * 8, 8)
            if raw is None or len(raw) != 8:
                raise FormatError(E.I386_READ_PDPT_ENTRY)
            pdpte = _U64.unpack(raw)[0]
            page = kd.read_bootstrap(pdpte & PG_FRAME_PAE, PAGE_SIZE)
            if page is None or len(page) != PAGE_SIZE:
                raise FormatError(E.I386_READ_PDPT)
            pages.append(page)
        self.ptd = _PTD_PAE.unpack(b"".join(pages))
        self.pae = True

    def _load_ptd(self, kernbase: int, name: str) -> None:
        """The non-PAE branch of ``_i386_initvtop``: the page named by ``name`` (``IdlePTD``)."""
        kd = self.kd
        count, values = kd.nlist2_values([name])
        if count != 0:
            raise FormatError(E.I386_BAD_NAMELIST)
        raw = kd.read_bootstrap(kernel_var_pa(values[0], kernbase), 4)
        if raw is None or len(raw) != 4:
            raise FormatError(E.I386_READ_IDLEPTD)
        page = kd.read_bootstrap(_U32.unpack(raw)[0], PAGE_SIZE)
        if page is None or len(page) != PAGE_SIZE:
            raise FormatError(E.I386_READ_PTD)
        self.ptd = _PTD.unpack(page)
        self.pae = False

    def cacheable(self) -> bool:
        """Only once the page directory is loaded (before, addresses are physical)."""
        return self.ptd is not None

    # -- translation ----------------------------------------------------------------
    def _pa2off(self, pa: int) -> tuple[int, int]:
        """``_kvm_pa2off``: (file offset, bytes left in the segment holding ``pa``).

        The first segment in program-header order decides; (0, 0) when none
        holds ``pa``.  Raw dumps map physical addresses to file offsets 1:1.
        libkvm returns the bytes left in the page; callers clamp to both.
        """
        if self.kd.rawdump:
            return pa, 1 << 64
        for start, end, offset in self._segs:
            if start <= pa < end:
                return pa - start + offset, end - pa
        return 0, 0

    def _fail(self, va: int, hard: str | None, errnum: int | None = None) -> tuple[int, int]:
        kd = self.kd
        if hard is not None:
            if errnum is None:
                kd.err(kd.program, hard)
            else:
                kd.syserr(kd.program, hard, errnum)
        kd.err(None, E.cformat(E.INVALID_ADDRESS, va))
        return 0, 0

    def _read_entry(self, pa: int, size: int) -> int | None:
        """The page-table entry of ``size`` bytes at physical ``pa``.

        None when it is not wholly inside a segment, -1 when the core ends
        before it (libkvm's failed ``pread``).
        """
        ofs, left = self._pa2off(pa)
        if left < size:
            return None
        raw = self.kd.core.pread(ofs, size)
        if len(raw) != size:
            return -1
        return int.from_bytes(raw, "little")

    def kvatop(self, va: int) -> tuple[int, int]:
        """``_i386_kvatop``: physical addresses while bootstrapping, then
        ``_i386_vatop_pae`` or ``_i386_vatop``.

        While the directory is not loaded both libkvm translators treat ``va``
        as physical; libkvm's flag selecting PAE is set with the directory, so
        the bootstrap text is always ``_i386_vatop``'s.
        """
        ptd = self.ptd
        if ptd is None:
            ofs, left = self._pa2off(va)
            if left == 0:
                return self._fail(va, E.I386_BOOTSTRAP)
            return ofs, min(PAGE_SIZE - (va & PAGE_MASK), left)
        if self.pae:
            return self._vatop_pae(va, ptd)
        return self._vatop(va, ptd)

    def _vatop(self, va: int, ptd: tuple[int, ...]) -> tuple[int, int]:
        """``_i386_vatop``: 1024 PDEs of 4 bytes, 4 MiB pages or 4 KiB page tables."""
        idx = va >> PDRSHIFT
        if idx >= NPDE:
            return self._fail(va, None)
        pde = ptd[idx]
        if not pde & PG_V:
            return self._fail(va, E.I386_PDE_INVALID)
        if pde & PG_PS:
            offset = va & PAGE_PS_MASK
            a = (pde & PG_PS_FRAME) + offset
            ofs, left = self._pa2off(a)
            if left == 0:
                return self._fail(va, E.I386_4MB_ABSENT)
            return ofs, min(NBPDR - offset, left)
        pte = self._read_entry((pde & PG_FRAME) + ((va >> PAGE_SHIFT) & (NPTEPG - 1)) * 4, 4)
        if pte is None:
            return self._fail(va, E.I386_PTE_PA)
        if pte == -1:
            return self._fail(va, E.I386_PREAD, 0)
        if not pte & PG_V:
            return self._fail(va, E.I386_PTE_INVALID)
        offset = va & PAGE_MASK
        a = (pte & PG_FRAME) + offset
        ofs, left = self._pa2off(a)
        if left == 0:
            return self._fail(va, E.I386_ADDR_ABSENT)
        return ofs, min(PAGE_SIZE - offset, left)

    def _vatop_pae(self, va: int, ptd: tuple[int, ...]) -> tuple[int, int]:
        """``_i386_vatop_pae``: 2048 PDEs of 8 bytes, 2 MiB pages or 4 KiB page tables."""
        idx = va >> PDRSHIFT_PAE
        if idx >= NPDE_PAE:
            return self._fail(va, None)
        pde = ptd[idx]
        if not pde & PG_V:
            return self._fail(va, E.I386_PAE_PDE_INVALID)
        if pde & PG_PS:
            offset = va & PAGE_PS_MASK_PAE
            a = (pde & PG_PS_FRAME_PAE) + offset
            ofs, left = self._pa2off(a)
            if left == 0:
                return self._fail(va, E.I386_2MB_ABSENT)
            return ofs, min(NBPDR_PAE - offset, left)
        pte_pa = (pde & PG_FRAME_PAE) + ((va >> PAGE_SHIFT) & (NPTEPG_PAE - 1)) * 8
        pte = self._read_entry(pte_pa, 8)
        if pte is None:
            return self._fail(va, E.I386_PAE_PTE_PA)
        if pte == -1:
            return self._fail(va, E.I386_PAE_READ, 0)
        if not pte & PG_V:
            return self._fail(va, E.I386_PAE_PTE_INVALID)
        offset = va & PAGE_MASK
        a = (pte & PG_FRAME_PAE) + offset
        ofs, left = self._pa2off(a)
        if left == 0:
            return self._fail(va, E.I386_PAE_ADDR_ABSENT)
        return ofs, min(PAGE_SIZE - offset, left)

    def dumped_pages(self) -> int:
        """Pages of memory in the PT_LOAD segments."""
        return sum(p.memsz for p in self.phdrs if p.type == PT_LOAD) // PAGE_SIZE
