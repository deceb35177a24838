"""The synthetic FreeBSD/i386 machine: RAM, PAE or non-PAE page tables and a kernel.

Sources followed (read, not copied): sys/i386/i386/pmap.c (``pmap_cold``,
``pmap_bootstrap``, the ``IdlePTD_pae``/``IdlePTD_nopae``/``IdlePDPT``/``KPTmap``
variables), sys/i386/i386/pmap_base.c (``pae_mode``, ``KPTphys``, ``KERNend``,
``physfree``, ``kernel_vm_end``), sys/i386/include/{vmparam.h,pmap.h,pmap_pae.h,
pmap_nopae.h} (``KERNBASE`` = ``KERNLOAD`` = 8 MiB, ``LOWPTDI``, ``KERNPTDI``, ``NPGPTD``,
``NKPT``, ``PTDPTDI``, the PTE bits and frame masks), locore.S of FreeBSD 12+ and locore.s of
FreeBSD 11 (``kernbase``/``kernload`` symbols, the older ``create_pagetables`` with its
``.data`` variables), sys/conf/ldscript.i386 (``. = kernbase + SIZEOF_HEADERS``),
stand/common/load_elf.c (the i386 kernel is loaded at ``VA - (e_entry & 0xff000000)``).

Three eras of the kernel's memory layout (option ``era``):

* **13** (FreeBSD 13 and later, the default): ``KERNBASE`` = ``KERNLOAD`` = 8 MiB and the
  kernel runs at virtual = physical address.  One kernel carries both pmaps and picks one
  at boot: the variables ``IdlePTD_pae``, ``IdlePDPT``, ``KPTmap_pae``, ``IdlePTD_nopae``,
  ``KPTmap_nopae`` (``.bss``) are all present, only the booted pmap's are non-zero, and
  ``pae_mode`` says which.  ``vm_paddr_t`` is 64-bit.  Minidump version 2.
* **12** (FreeBSD 12): the same layout with a single pmap per kernel: ``IdlePTD`` (and
  ``IdlePDPT`` in a PAE kernel), ``KPTmap``.  Minidump version 1.
* **11** (FreeBSD 11 and earlier): ``KERNBASE`` = 0xc0000000, the image linked at
  ``KERNBASE + KERNLOAD`` (``KERNLOAD`` = one superpage, 4 MiB or 2 MiB) and loaded at
  ``KERNLOAD``; the boot page tables of locore.s map ``KERNBASE + pa`` -> ``pa``.  The
  variables ``KERNend``, ``physfree``, ``IdlePTD`` (and ``IdlePDPT``), ``KPTphys`` live in
  locore's ``.data``.  ``vm_paddr_t`` is 64-bit only in PAE kernels.  Minidump version 1.

Physical memory (``dump_avail``): base memory below 640 KiB (most seeds), the main range
from 1 MiB holding the kernel, its boot allocations (``KPTphys``: ``NKPT`` page-table pages,
the PAE ``IdlePDPT`` page, the ``NPGPTD`` page-directory pages, a guard page (12+),
thread0's kernel stack, the vm86 stack and vm86 page table) and a superpage-sized chunk
mapped by a kmem superpage, then two middle ranges after holes, the message buffer at the
top of the last one (as ``getmemsize`` takes it); with PAE and ``highmem`` one more range
above 4 GiB.

Kernel virtual memory (era 12/13; era 11 in brackets):

* PDEs ``[0, LOWPTDI)`` are invalid (``remap_lower(false)``) [era 11: PDE 0 keeps the
  identity map of the low superpage]; ``[LOWPTDI*NBPDR, KERNBASE)`` maps physical
  0..4 MiB with 4 KiB PTEs (the fixed low-memory map) [era 11: ``KERNBASE + pa`` maps
  ``pa`` for the whole boot region, text read-only, the ISA hole read-write];
* ``[KERNBASE, KERNend)`` is mapped by superpages (``PG_PS``, 4 MiB or 2 MiB)
  [era 11: only whole superpages of ``[KERNLOAD, KERNend)``, none for the small synthetic
  image, which is mapped by 4 KiB PTEs];
* the boot allocations after ``KERNend`` are identity mapped by 4 KiB PTEs (the guard
  page is not);
* ``pmap_bootstrap``'s SYSMAP area at ``virtual_avail``: CMAP pages, ``crashdumpmap``,
  ``ptvmmap`` (invalid PTEs at dump time), the message buffer pages, the ``KPTmap`` window
  onto the ``NKPT`` page-table pages;
* a kmem page table inside the ``NKPT`` region (random pages, a contiguous run, the EBDA
  and last main-range pages, PTEs into physical holes, ``PG_NODUMP`` pages in era 13);
* only with ``types`` (after every random draw of the machine): the kernel-data arena
  of :mod:`pykvm.synth.kerneldata`, 4 KiB pages (RW, NX with PAE) in the boot page table
  right after the kmem one, so ``kernel_vm_end`` and the PTE section's size stay put;
* past ``NKPT * NBPDR`` the PDEs ``pmap_growkernel`` added: a page table, a kmem
  superpage in RAM, an invalid PDE, a superpage straddling the end of a RAM range, with
  PAE and highmem a superpage and PTEs above 4 GiB, and a last page table;
  ``kernel_vm_end`` ends there;
* the recursive mapping: PDEs ``PTDPTDI ..`` point at the page-directory pages
  themselves, so ``PTmap + i * PAGE_SIZE`` maps the frame of PDE i.

What ``cpu_minidumpsys`` dumps (minidump_machdep_base.c): for every superpage step from
``KERNBASE`` to ``kernel_vm_end``, all dumpable pages of a superpage PDE and every dumpable
page a valid PTE maps; page-table pages are dumped only where a PTE maps them.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .._prng import Rng
from ..cmodel import LayoutTruth
from ..elfwriter import ELFCLASS32, ELFDATA2LSB, EM_386
from ..kernel import SymbolEntry, SynthKernel
from ..kerneldata import KernelDataTruth, PageArena, bss_variables, install_kernel_data
from ..machine import Machine, boot_messages
from ..spec import KernelSpec
from ..truth import VM_PROT_EXECUTE, VM_PROT_READ, VM_PROT_WRITE

PAGE_SIZE = 4096
PAGE_SHIFT = 12
MIB = 1 << 20
GIB = 1 << 30

PG_V = 0x001
PG_RW = 0x002
PG_U = 0x004
PG_A = 0x020
PG_M = 0x040
PG_PS = 0x080
PG_G = 0x100
PG_NX = 1 << 63

ISA_HOLE_START = 0xA0000
ISA_HOLE_END = 0x100000
#: thread0's kernel stack pages (KSTACK_PAGES)
TD0_KSTACK_PAGES = 4
#: crashdumpmap pages (MAXDUMPPGS = DFLTPHYS / PAGE_SIZE)
MAXDUMPPGS = 16
#: KERNBASE = KERNLOAD of FreeBSD 12 and later
KERNBASE_VA_EQ_PA = 0x800000
#: KERNBASE of FreeBSD 11 and earlier
KERNBASE_OLD = 0xC0000000
#: the eras of :mod:`.machine` (FreeBSD 11 and earlier, 12, 13 and later)
ERAS = (11, 12, 13)
#: file offset of ``.text`` in the kernel (``. = kernbase + SIZEOF_HEADERS``: not page aligned)
TEXT_OFFSET = 0x100


@dataclass(frozen=True)
class Paging:
    """The page-table shape of one pmap (pmap_pae.h / pmap_nopae.h)."""

    pae: bool
    entry_size: int
    pdrshift: int
    nptepg: int
    npgptd: int
    ntrpptd: int
    lowptdi: int
    kernptdi: int
    pg_frame: int
    pg_ps_frame: int

    @property
    def nbpdr(self) -> int:
        """Bytes one PDE maps (the superpage size)."""
        return 1 << self.pdrshift

    @property
    def npdeptd(self) -> int:
        """PDEs in the whole page directory (``NPGPTD`` pages)."""
        return self.npgptd * self.nptepg

    @property
    def code(self) -> str:
        """``struct`` code of one entry."""
        return "Q" if self.pae else "I"


PAE = Paging(
    pae=True,
    entry_size=8,
    pdrshift=21,
    nptepg=512,
    npgptd=4,
    ntrpptd=2,
    lowptdi=2,
    kernptdi=4,
    pg_frame=0x000FFFFFFFFFF000,
    pg_ps_frame=0x000FFFFFFFE00000,
)
NOPAE = Paging(
    pae=False,
    entry_size=4,
    pdrshift=22,
    nptepg=1024,
    npgptd=1,
    ntrpptd=1,
    lowptdi=1,
    kernptdi=2,
    pg_frame=0xFFFFF000,
    pg_ps_frame=0xFFC00000,
)


@dataclass(frozen=True)
class Layout:
    """The era-dependent constants of the kernel's address space."""

    era: int
    paging: Paging
    #: KERNBASE (the symbol ``kernbase``, the minidump header's kernbase)
    kernbase: int
    #: KERNLOAD: the physical load address of the image's first byte
    kernload: int
    #: link address of the image's first byte (its ELF header)
    image_va: int
    #: boot-time virtual address of physical 0 (0 when virtual = physical)
    boot_va_offset: int
    #: initial kernel page-table pages (NKPT)
    nkpt: int
    #: PDE index of the first kernel page-table page (KPTDI)
    kptdi: int
    #: PDE index of the recursive mapping (PTDPTDI)
    ptdptdi: int
    #: pages of the KPTmap window (KVA_PAGES)
    kva_pages: int
    #: the minidump header version this era's kernel writes
    minidump_version: int

    @property
    def ptmap(self) -> int:
        """VA of the recursive mapping (``PTmap``)."""
        return self.ptdptdi << self.paging.pdrshift

    @property
    def vm_min_kernel_address(self) -> int:
        """VM_MIN_KERNEL_ADDRESS: 0 since the 4/4 split, ``VADDR(PTDPTDI, PTDPTDI)`` before."""
        if self.era >= 12:
            return 0
        return self.ptmap | (self.ptdptdi << PAGE_SHIFT)


def layout_for(era: int, pae: bool) -> Layout:
    """The address-space constants of a kernel of ``era`` (11, 12 or 13) and pmap."""
    if era not in ERAS:
        raise ValueError(f"era must be one of {ERAS}")
    pg = PAE if pae else NOPAE
    if era >= 12:
        kernbase = KERNBASE_VA_EQ_PA
        nkpt = 240 if pae else 30
        return Layout(
            era=era,
            paging=pg,
            kernbase=kernbase,
            kernload=kernbase,
            image_va=kernbase,
            boot_va_offset=0,
            nkpt=nkpt,
            kptdi=0,
            ptdptdi=pg.npdeptd - pg.ntrpptd - pg.npgptd,
            kva_pages=2048 if pae else 1024,
            minidump_version=2 if era == 13 else 1,
        )
    kptdi = KERNBASE_OLD >> pg.pdrshift
    return Layout(
        era=era,
        paging=pg,
        kernbase=KERNBASE_OLD,
        kernload=pg.nbpdr,
        image_va=KERNBASE_OLD + pg.nbpdr,
        boot_va_offset=KERNBASE_OLD,
        nkpt=120 if pae else 30,
        kptdi=kptdi,
        ptdptdi=kptdi - pg.npgptd,
        kva_pages=512 if pae else 256,
        minidump_version=1,
    )


def pmap_variables(era: int, pae: bool) -> tuple[str, ...]:
    """Names of the pmap variables of a kernel of ``era`` (in ``.bss``, or ``.data`` in 11)."""
    if era == 13:
        return (
            "IdlePTD_pae",
            "IdlePDPT",
            "KPTmap_pae",
            "IdlePTD_nopae",
            "KPTmap_nopae",
            "KPTphys",
            "KERNend",
            "physfree",
            "pae_mode",
        )
    pdpt = ("IdlePDPT",) if pae else ()
    if era == 12:
        return ("IdlePTD", *pdpt, "KPTmap", "KPTphys", "KERNend", "physfree")
    return ("KERNend", "physfree", "IdlePTD", *pdpt, "KPTphys")


def make_spec(era: int = 13, pae: bool = True) -> KernelSpec:
    """The i386 target: ELF32 LE ``EM_386``, ``ET_EXEC``, linked at the era's image address.

    ``p_paddr`` of the kernel file equals ``p_vaddr`` (ldscript.i386 has no ``AT()``).
    """
    lay = layout_for(era, pae)
    names = pmap_variables(era, pae)
    paddr = 8 if (era == 13 or pae) else 4
    vars_ = tuple((name, 4) for name in names)
    return KernelSpec(
        arch="i386",
        elfclass=ELFCLASS32,
        data=ELFDATA2LSB,
        e_machine=EM_386,
        kernbase=lay.kernbase,
        load_offset=lay.image_va - lay.kernbase,
        page_size=PAGE_SIZE,
        text_offset=TEXT_OFFSET,
        link_paddr=lay.image_va,
        paddr_size=paddr,
        machine="i386",
        machine_arch="i386",
        data_vars=vars_ if era == 11 else (),
        bss_vars=vars_ if era != 11 else (),
        func_prologue=b"\x55\x89\xe5",  # push %ebp; mov %esp,%ebp
    )


#: the default target (FreeBSD 13+, one kernel with both pmaps)
SPEC = make_spec(13, True)


def entry_prot(entry: int, pae: bool) -> int:
    """VM_PROT bits of a leaf entry: READ, +WRITE if PG_RW, +EXECUTE unless PAE's PG_NX."""
    prot = VM_PROT_READ
    if entry & PG_RW:
        prot |= VM_PROT_WRITE
    if not (pae and entry & PG_NX):
        prot |= VM_PROT_EXECUTE
    return prot


def _round_up(value: int, boundary: int) -> int:
    return -(-value // boundary) * boundary


class I386Machine(Machine):
    """The synthetic i386 machine of one seed (see the module docstring for the layout).

    Attributes used by the dump writers and the truth: ``lay`` (:class:`Layout`), ``pg``
    (:class:`Paging`), ``segments``, ``tables``, ``leaves`` (from a hardware walk of the
    finished page directory), ``nodump``, ``memory``, ``kernel``; the physical addresses
    ``kernphys``, ``kernend``, ``kptphys``, ``pdpt`` (0 without PAE), ``ptd``, ``guard_pa``
    (0 in era 11), ``kstack_pa``, ``vm86stk_pa``, ``vm86pa``, ``boot_end``, ``sp_pa``,
    ``straddle_pa``, ``msgbuf_pa``; the virtual addresses ``sysmap_va``, ``cmap_va``,
    ``msgbuf_va``, ``kptmap_va``, ``kmem_va`` (its page table's 4 KiB slots), ``run_va``,
    ``grow_va``, ``sp_va``, ``gap_va``, ``straddle_va``, ``high_sp_va``, ``tail_pt_va``;
    ``kernel_vm_end``, ``nkpt`` (page-table pages of the kernel map, grown ones included),
    ``msgbuf``; lists ``hole_pte_vas``, ``nodump_vas``, ``high_vas``, ``bait_vas``.
    """

    def __init__(
        self,
        seed: int = 0,
        *,
        era: int = 13,
        pae: bool = True,
        highmem: bool = False,
        extra_symbols: int = 0,
        types: LayoutTruth | None = None,
        cp_time_symbol: bool = False,
        ctf_section: Callable[[Sequence[SymbolEntry]], bytes] | None = None,
    ) -> None:
        """Build the machine of ``seed`` (no files are written here).

        ``types`` (the kernel's type layout) adds the kernel data of
        :mod:`pykvm.synth.kerneldata`: its variables in ``.bss`` and a kernel-data arena
        of 4 KiB pages in the boot page table right after the kmem one (see
        :meth:`_build_kdata`); ``kdata`` is then the :class:`KernelDataTruth`.
        ``cp_time_symbol`` also defines the old ``cp_time`` array; ``ctf_section`` makes
        the kernel ELF carry a ``.SUNW_ctf`` section (called with the symbol table).
        Without ``types`` the machine is the one built before the option existed.
        """
        if highmem and not pae:
            raise ValueError("highmem (RAM above 4 GiB) needs PAE")
        lay = layout_for(era, pae)
        pg = lay.paging
        rng = Rng(seed, f"i386-phys-{era}")
        super().__init__(seed, rng, page_size=PAGE_SIZE, entry_size=pg.entry_size)
        self.lay = lay
        self.pg = pg
        self.era = era
        self.pae = pae
        self.highmem = highmem
        self.spec = make_spec(era, pae)
        extra_bss: list[tuple[str, int]] = []
        if types is not None:
            have = {"hz", "mp_maxcpus", "dumptid"} | {
                n for n, _ in (*self.spec.data_vars, *self.spec.bss_vars)
            }
            extra_bss = bss_variables(types, cp_time=cp_time_symbol, existing=sorted(have))
        self.kernel = SynthKernel(self.spec, seed, extra_symbols, extra_bss=extra_bss)
        self.kernel.ctf_section = ctf_section
        self.kdata: KernelDataTruth | None = None
        self.kdata_va = 0
        self.kernel.add_symbol("kernload", lay.kernload)
        self._page_entries = struct.Struct(f"<{pg.nptepg}{pg.code}")

        self._plan_boot()
        self.set_segments(self._make_segments())
        self._reserve()
        self.hole_pte_vas: list[int] = []
        self.nodump_vas: list[int] = []
        self.high_vas: list[int] = []
        self.bait_vas: list[int] = []
        self._build_boot_tables()
        self._build_msgbuf()
        self._build_sysmap()
        self._build_kmem()
        self._build_grown()
        if types is not None:
            self._build_kdata(types, cp_time_symbol)
        self._walk_leaves()
        self._fill_kernel_vars()
        self.place(self.kernphys, self.kernel.memory_image())
        self.finish()

    # ------------------------------------------------------------------ addresses
    def boot_va(self, pa: int) -> int:
        """Boot-time virtual address of the physical boot-region address ``pa``."""
        return pa + self.lay.boot_va_offset

    def _plan_boot(self) -> None:
        lay, pg = self.lay, self.pg
        ps = PAGE_SIZE
        self.kernphys = lay.kernload
        image_end = self.kernphys + self.kernel.image_len
        # pmap_cold rounds KERNend to a superpage; locore.s (era 11) to a page
        self.kernend = _round_up(image_end, pg.nbpdr) if lay.era >= 12 else image_end
        cursor = self.kernend
        self.kptphys = cursor
        cursor += lay.nkpt * ps
        self.pdpt = 0
        if pg.pae:
            self.pdpt = cursor
            cursor += ps
        self.ptd = cursor
        cursor += pg.npgptd * ps
        self.guard_pa = 0
        if lay.era >= 12:  # "Leave a guard page between IdlePTD and proc0kstack"
            self.guard_pa = cursor
            cursor += ps
        self.kstack_pa = cursor
        cursor += TD0_KSTACK_PAGES * ps
        self.vm86stk_pa = cursor
        cursor += ps
        self.vm86pa = cursor
        cursor += 3 * ps
        self.boot_end = cursor
        if lay.era >= 12:
            # free RAM below the kernel: the superpage-sized chunk just under KERNLOAD
            self.sp_pa = lay.kernload - pg.nbpdr
        else:
            self.sp_pa = _round_up(self.boot_end, pg.nbpdr)

    # ------------------------------------------------------------------ RAM
    def _make_segments(self) -> list[tuple[int, int]]:
        rng = self._rng
        nbpdr = self.pg.nbpdr
        ps = PAGE_SIZE
        segs: list[tuple[int, int]] = []
        self.has_low = rng.chance(3, 4)
        if self.has_low:
            segs.append((rng.choice((0, 0, 0x1000)), rng.choice((0x9C000, 0x9F000, 0xA0000))))
        main_end = max(self.boot_end, self.sp_pa + nbpdr)
        main_end += rng.between(1, 3) * MIB + rng.below(64) * ps
        if main_end % nbpdr == 0:
            main_end += ps
        segs.append((0x100000, main_end))
        cursor = main_end
        for _ in range(2):
            start = cursor + rng.between(4, 48) * MIB + rng.below(256) * ps
            end = start + rng.between(2, 4) * MIB + rng.between(1, 255) * ps
            if end % nbpdr == 0:
                end += ps
            segs.append((start, end))
            cursor = end
        self.high = (0, 0)
        if self.highmem:
            hs = 4 * GIB + rng.below(32) * nbpdr + rng.between(1, 255) * ps
            he = hs + rng.between(2, 4) * MIB + rng.between(1, 255) * ps
            self.high = (hs, he)
            segs.append(self.high)
        return segs

    def pool_segments(self) -> list[tuple[int, int]]:
        """Random pages come from RAM below 4 GiB (never the high range)."""
        return [(s, e) for s, e in self.segments if e <= 4 * GIB]

    def _reserve(self) -> None:
        nbpdr = self.pg.nbpdr
        main = self.segments[1 if self.has_low else 0]
        self.main = main
        self.mid0 = self.segments[(2 if self.has_low else 1)]
        self.mid1 = self.segments[(3 if self.has_low else 2)]
        self.reserve(0, 0x100000)
        self.reserve(self.kernphys, self.boot_end)
        self.reserve(self.sp_pa, self.sp_pa + nbpdr)
        s0, e0 = self.mid0
        self.straddle_pa = (e0 - 1) & ~(nbpdr - 1)
        self.reserve(max(self.straddle_pa, s0), e0)
        # the bait pages (see _build_kmem) stay what they are
        self.reserve(main[1] - PAGE_SIZE, main[1])

    # ------------------------------------------------------------------ page tables
    def pde_table(self, index: int) -> tuple[int, int]:
        """``(page address, entry index)`` of PDE ``index`` in the page directory."""
        npde = self.pg.nptepg
        return self.ptd + (index // npde) * PAGE_SIZE, index % npde

    def get_pde(self, index: int) -> int:
        """PDE ``index`` of the kernel page directory (IdlePTD)."""
        page, idx = self.pde_table(index)
        return self.get_entry(page, idx)

    def set_pde(self, index: int, value: int) -> None:
        """Store PDE ``index``."""
        page, idx = self.pde_table(index)
        self.set_entry(page, idx, value)

    def pde_index(self, va: int) -> int:
        """PDE index of ``va``."""
        return va >> self.pg.pdrshift

    def set_pte(self, va: int, value: int) -> None:
        """Store the PTE of ``va`` in the page table its PDE points to."""
        pde = self.get_pde(self.pde_index(va))
        if not pde & PG_V or pde & PG_PS:
            raise RuntimeError(f"synthetic page tables: no page table for {va:#x}")
        self.set_entry(pde & self.pg.pg_frame, (va >> PAGE_SHIFT) % self.pg.nptepg, value)

    def _kpt_flat(self, index: int, value: int) -> None:
        """Store entry ``index`` of KPTphys seen as one flat PTE array (``KPTmap``)."""
        npte = self.pg.nptepg
        self.set_entry(self.kptphys + (index // npte) * PAGE_SIZE, index % npte, value)

    def _build_boot_tables(self) -> None:
        lay, pg = self.lay, self.pg
        ps = PAGE_SIZE
        for a in range(pg.npgptd):
            self.new_table(self.ptd + a * ps)
        if pg.pae:
            self.new_table(self.pdpt)
            for a in range(pg.npgptd):
                self.set_entry(self.pdpt, a, (self.ptd + a * ps) | PG_V)
        for i in range(lay.nkpt):
            self.new_table(self.kptphys + i * ps)
        # the vm86 page table: page 0 and the ISA hole, user accessible
        self.new_table(self.vm86pa)
        user = PG_RW | PG_U | PG_A | PG_M | PG_V
        self.set_entry(self.vm86pa, 0, 0 | user)
        for pa in range(ISA_HOLE_START, ISA_HOLE_END, ps):
            self.set_entry(self.vm86pa, pa >> PAGE_SHIFT, pa | user)
        if lay.era >= 12:
            self._pmap_cold()
        else:
            self._locore_create_pagetables()

    def _pmap_cold(self) -> None:
        """The boot page tables as ``pmap_cold()`` (FreeBSD 12+) builds them; VA = PA."""
        lay, pg = self.lay, self.pg
        ps = PAGE_SIZE
        rw = PG_V | PG_RW | PG_A | PG_M
        for a in range(lay.nkpt):
            self.set_pde(a, (self.kptphys + a * ps) | rw)
        for a in range(pg.npgptd):
            self.set_pde(lay.ptdptdi + a, (self.ptd + a * ps) | PG_V | PG_RW)

        def cold_map(pa: int, va: int, count: int) -> None:
            first = va >> PAGE_SHIFT
            for k in range(count):
                self._kpt_flat(first + k, (pa + k * ps) | rw)

        low_pages = (pg.nbpdr >> PAGE_SHIFT) * pg.lowptdi
        cold_map(0, 0, low_pages)
        cold_map(0, pg.nbpdr * pg.lowptdi, low_pages)
        cold_map(lay.kernbase, lay.kernbase, (self.kernend - lay.kernbase) >> PAGE_SHIFT)
        if pg.pae:
            cold_map(self.pdpt, self.pdpt, 1)
        cold_map(self.ptd, self.ptd, pg.npgptd)
        cold_map(self.kptphys, self.kptphys, lay.nkpt)
        cold_map(self.kstack_pa, self.kstack_pa, TD0_KSTACK_PAGES)
        cold_map(self.vm86stk_pa, self.vm86stk_pa, 1)
        cold_map(self.vm86pa, self.vm86pa, 3)
        # PSE: superpage mapping of the kernel (the 4 KiB page tables stay unreferenced)
        for a in range(lay.kernbase, self.kernend, pg.nbpdr):
            self.set_pde(a >> pg.pdrshift, a | PG_PS | PG_A | PG_M | PG_RW | PG_V)
        for i in range(pg.lowptdi):  # remap_lower(false)
            self.set_pde(i, 0)

    def _locore_create_pagetables(self) -> None:
        """The boot page tables as FreeBSD 11's locore.s builds them; VA = KERNBASE + PA."""
        lay, pg = self.lay, self.pg
        ps = PAGE_SIZE
        k = self.kernel
        etext = _round_up(self.kernphys + k.text_off + k.text_size, ps)
        # fillkptphys: KPTphys indexed by physical page number
        for pa in range(0, self.boot_end, ps):
            flags = PG_V if pa < etext else PG_V | PG_RW
            self._kpt_flat(pa >> PAGE_SHIFT, pa | flags)
        self._kpt_flat(0, 0 | PG_V | PG_RW)  # page zero read-write for bios32 calls
        for pa in range(ISA_HOLE_START, ISA_HOLE_END, ps):  # map the ISA hole read-write
            self._kpt_flat(pa >> PAGE_SHIFT, pa | PG_V | PG_RW)
        self.set_pde(0, self.kptphys | PG_V | PG_RW)  # the identity map of low memory
        for i in range(lay.nkpt):
            self.set_pde(lay.kptdi + i, (self.kptphys + i * ps) | PG_V | PG_RW)
        for a in range(pg.npgptd):
            self.set_pde(lay.ptdptdi + a, (self.ptd + a * ps) | PG_V | PG_RW)
        # PSE: whole superpages of [KERNLOAD, KERNend)
        count = (self.kernend - lay.kernload) >> pg.pdrshift
        first = lay.kptdi + lay.kernload // pg.nbpdr
        for i in range(count):
            self.set_pde(first + i, (lay.kernload + i * pg.nbpdr) | PG_V | PG_RW | PG_PS)

    # ------------------------------------------------------------------ mappings
    def _kenter(self, va: int, pa: int, flags: int) -> None:
        self.set_pte(va, pa | flags)

    def _kmem_flags(self) -> int:
        rng = self._rng
        flags = PG_V | PG_A | PG_G
        if rng.below(4) < 3:
            flags |= PG_RW | PG_M
        if self.pae and rng.chance(1, 2):
            flags |= PG_NX
        return flags

    def _nx(self) -> int:
        return PG_NX if self.pae else 0

    def _build_msgbuf(self) -> None:
        self.msgbuf = boot_messages(
            self._rng,
            self.kernel,
            physmem=self.physmem,
            avail=self.physmem - (self.boot_end - self.kernphys),
            cpu="Synthetic(R) CPU @ 1.60GHz (1600.00-MHz 686-class CPU)",
            timer='Event timer "LAPIC" quality 400',
        )
        npages = -(-len(self.msgbuf) // PAGE_SIZE)
        self.msgbuf_pages = npages
        self.msgbuf_pa = self.mid1[1] - npages * PAGE_SIZE  # the top of the last range
        self.reserve(self.msgbuf_pa, self.mid1[1])
        self.place(self.msgbuf_pa, self.msgbuf)

    def _build_sysmap(self) -> None:
        """``pmap_bootstrap``'s SYSMAP reservations at ``virtual_avail``."""
        lay = self.lay
        ps = PAGE_SIZE
        va = self.boot_va(self.boot_end)
        self.sysmap_va = va
        self.cmap_va = va  # CMAP1, CMAP2, qmap, CMAP3: not mapped at dump time
        va += 4 * ps
        self.crashdumpmap_va = va
        va += MAXDUMPPGS * ps
        va += ps  # ptvmmap
        self.msgbuf_va = va
        for i in range(self.msgbuf_pages):
            self._kenter(va + i * ps, self.msgbuf_pa + i * ps, PG_RW | PG_V | PG_G)
        va += self.msgbuf_pages * ps
        self.kptmap_va = va
        for i in range(lay.nkpt):
            self._kenter(va + i * ps, self.kptphys + i * ps, PG_RW | PG_V)
        va += lay.kva_pages * ps
        va += 3 * ps  # PMAP1, PMAP2, PMAP3
        self.virtual_avail = va

    def _build_kmem(self) -> None:
        """A kmem page table inside the NKPT region, past the SYSMAP area."""
        rng = self._rng
        lay, pg = self.lay, self.pg
        ps = PAGE_SIZE
        nbpdr = pg.nbpdr
        base = _round_up(self.virtual_avail, nbpdr) + rng.below(4) * nbpdr
        limit = (lay.kptdi << pg.pdrshift) + lay.nkpt * nbpdr
        assert base + nbpdr <= limit, "the kmem page table must be a boot page table"
        self.kmem_va = base
        npte = pg.nptepg
        slots = rng.sample(range(npte), rng.between(40, 90))
        run_len = rng.between(4, 12)
        run_start = rng.below(npte - run_len)
        run_pa = self.alloc(run_len)
        self.run_va = base + run_start * ps
        self.run_len = run_len
        for i in range(run_len):
            self._kenter(self.run_va + i * ps, run_pa + i * ps, PG_V | PG_RW | PG_A | PG_M | PG_G)
        taken = set(range(run_start, run_start + run_len))
        slots = [s for s in slots if s not in taken]
        # the BIOS data area and the last main-range page: dumped pages just below a hole
        # (libkvm's hole-blind bit id of the next range's first hole page lands on them)
        baits = [self.main[1] - ps]
        if self.has_low:
            baits.insert(0, self.segments[0][1] - ps)
        for target, slot in zip(baits, slots, strict=False):
            va = base + slot * ps
            self._kenter(va, target, PG_V | PG_RW | PG_A | PG_M)
            self.bait_vas.append(va)
        slots = slots[len(baits) :]
        holes = self.hole_addresses()
        self.hole_targets = holes
        for target, slot in zip(holes, slots, strict=False):
            va = base + slot * ps
            self._kenter(va, target, PG_V | PG_RW | PG_A | PG_M | PG_G | self._nx())
            self.hole_pte_vas.append(va)
        slots = slots[len(holes) :]
        if lay.era == 13:  # vm_phys_is_dumpable() honours PG_NODUMP
            for slot in slots[:2]:
                pa = self.alloc()
                self.nodump.add(pa >> PAGE_SHIFT)
                va = base + slot * ps
                self._kenter(va, pa, PG_V | PG_RW | PG_A | PG_M | PG_G | self._nx())
                self.nodump_vas.append(va)
            slots = slots[2:]
        for slot in slots:
            self._kenter(base + slot * ps, self.alloc(), self._kmem_flags())
        used = {(va - base) // ps for va in self._mapped_in(base)}
        self.kmem_free_va = base + min(set(range(npte)) - used) * ps

    def _mapped_in(self, pde_va: int) -> list[int]:
        pde = self.get_pde(self.pde_index(pde_va))
        table = self.tables[pde & self.pg.pg_frame]
        return [
            pde_va + k * PAGE_SIZE
            for k, e in enumerate(self._page_entries.unpack_from(table))
            if e & PG_V
        ]

    def _link_new_pt(self, va: int) -> int:
        pt = self.new_table(self.alloc())
        self.set_pde(self.pde_index(va), pt | PG_V | PG_RW | PG_A | PG_M)
        return pt

    def _build_grown(self) -> None:
        """The PDEs pmap_growkernel added past NKPT * NBPDR."""
        rng = self._rng
        lay, pg = self.lay, self.pg
        ps = PAGE_SIZE
        nbpdr = pg.nbpdr
        va = (lay.kptdi << pg.pdrshift) + lay.nkpt * nbpdr
        self.grow_va = va
        grown = 0
        # a page table with a few kmem pages
        self._link_new_pt(va)
        grown += 1
        npte = pg.nptepg
        for idx in sorted(rng.sample(range(npte), rng.between(3, 10))):
            self._kenter(va + idx * ps, self.alloc(), self._kmem_flags())
        self.grow_pt_va = va
        va += nbpdr
        # a promoted kmem superpage, all RAM
        sp_flags = PG_PS | PG_V | PG_RW | PG_A | PG_M | PG_G
        if self.pae and rng.chance(2, 3):
            sp_flags |= PG_NX
        self.sp_va = va
        self.set_pde(self.pde_index(va), self.sp_pa | sp_flags)
        va += nbpdr
        # an invalid PDE
        self.gap_va = va
        va += nbpdr
        # a superpage straddling the end of the first middle range
        self.straddle_va = va
        self.set_pde(
            self.pde_index(va),
            self.straddle_pa | PG_PS | PG_V | PG_RW | PG_A | PG_M | PG_G | self._nx(),
        )
        va += nbpdr
        self.high_sp_va = 0
        if self.highmem:
            hs, _ = self.high
            self.high_sp_pa = hs & ~(nbpdr - 1)
            self.high_sp_va = va
            self.set_pde(self.pde_index(va), self.high_sp_pa | PG_PS | PG_V | PG_RW | PG_A | PG_M)
            va += nbpdr
        # a last page table: high-memory pages (PAE) and kmem pages, the rest invalid
        self._link_new_pt(va)
        grown += 1
        self.tail_pt_va = va
        idxs = sorted(rng.sample(range(npte // 2), rng.between(3, 8)))
        for idx in idxs:
            self._kenter(va + idx * ps, self.alloc(), self._kmem_flags())
        if self.highmem:
            hs, he = self.high
            npages = (he - hs) // ps
            for i in range(6):
                pa = hs + rng.below(npages) * ps
                hva = va + (npte // 2 + i) * ps
                self._kenter(hva, pa, PG_V | PG_RW | PG_A | PG_M | PG_G | PG_NX)
                self.high_vas.append(hva)
        self.tail_free_va = va + (npte - 1) * ps
        va += nbpdr
        self.kernel_vm_end = va
        self.nkpt = lay.nkpt + grown

    def _build_kdata(self, types: LayoutTruth, cp_time_symbol: bool) -> None:
        """The kernel-data arena (after every random draw of the default machine).

        Its pages are mapped with 4 KiB PTEs in the boot page table (``NKPT`` region)
        right after the kmem one, so ``[KERNBASE, kernel_vm_end)`` and the PTE section
        stay as they are; every minidump marks them and a full dump has all RAM.
        """
        lay, pg = self.lay, self.pg
        k = self.kernel
        arena_va = self.kmem_va + pg.nbpdr
        limit = (lay.kptdi << pg.pdrshift) + lay.nkpt * pg.nbpdr
        assert arena_va + pg.nbpdr <= limit, "the kernel-data arena must be a boot page table"
        self.kdata_va = arena_va
        flags = PG_V | PG_RW | PG_A | PG_M | PG_G | self._nx()

        def map_page(va: int) -> int:
            pa = self.alloc()
            self._kenter(va, pa, flags)
            return pa

        arena = PageArena(arena_va, pg.nptepg, PAGE_SIZE, map_page)
        self.kdata = install_kernel_data(
            k, types, arena, self.place, seed=self.seed,
            msgbuf_ring_va=self.msgbuf_va, msgbuf=self.msgbuf,
            cp_time_symbol=cp_time_symbol,
        )

    # ------------------------------------------------------------------ leaves
    def table_entries(self, pa: int) -> tuple[int, ...]:
        """The entries of the page-table page at physical ``pa``."""
        return tuple(self._page_entries.unpack_from(self.tables[pa]))

    def _walk_leaves(self) -> None:
        """Record every leaf of the finished page directory, as the MMU walks it."""
        pg = self.pg
        pae = pg.pae
        nbpdr = pg.nbpdr
        for i in range(pg.npdeptd):
            pde = self.get_pde(i)
            if not pde & PG_V:
                continue
            va = i << pg.pdrshift
            if pde & PG_PS:
                self.add_leaf(va, nbpdr, pde & pg.pg_ps_frame, pde, entry_prot(pde, pae))
                continue
            for k, pte in enumerate(self.table_entries(pde & pg.pg_frame)):
                if pte & PG_V:
                    self.add_leaf(
                        va + k * PAGE_SIZE, PAGE_SIZE, pte & pg.pg_frame, pte, entry_prot(pte, pae)
                    )

    # ------------------------------------------------------------------ kernel variables
    def _fill_kernel_vars(self) -> None:
        k = self.kernel
        era, pae = self.era, self.pae
        ptd_ptr = self.boot_va(self.ptd)
        pdpt_ptr = self.boot_va(self.pdpt) if pae else 0
        if era == 13:
            suffix = "_pae" if pae else "_nopae"
            k.set_int("IdlePTD" + suffix, ptd_ptr)
            k.set_int("KPTmap" + suffix, self.kptmap_va)
            k.set_int("IdlePDPT", pdpt_ptr)
            k.set_int("pae_mode", int(pae), signed=True)
        else:
            # FreeBSD 11's locore keeps physical addresses; 12 runs at VA = PA anyway
            k.set_int("IdlePTD", self.ptd)
            if pae:
                k.set_int("IdlePDPT", self.pdpt)
            if era == 12:
                k.set_int("KPTmap", self.kptmap_va)
        k.set_int("KPTphys", self.kptphys)
        k.set_int("KERNend", self.kernend)
        k.set_int("physfree", self.boot_end)
        k.set_int("kernel_vm_end", self.kernel_vm_end)
        k.set_int("physmem", self.physmem >> PAGE_SHIFT, signed=True)
        k.set_dump_avail(self.segments)
        k.finalize()

    # ------------------------------------------------------------------ views
    def idle_ptd_name(self) -> str:
        """The name of the page-directory variable of the booted pmap."""
        if self.era == 13:
            return "IdlePTD_pae" if self.pae else "IdlePTD_nopae"
        return "IdlePTD"

    def minidump_pfns(self) -> list[int]:
        """The sorted page frame numbers ``cpu_minidumpsys`` marks."""
        pg = self.pg
        marked: set[int] = set()
        ps = PAGE_SIZE
        for va in range(self.lay.kernbase, self.kernel_vm_end, pg.nbpdr):
            pde = self.get_pde(self.pde_index(va))
            if pde & (PG_PS | PG_V) == PG_PS | PG_V:
                base = pde & pg.pg_ps_frame
                marked.update(
                    (base + k * ps) >> PAGE_SHIFT
                    for k in range(pg.nptepg)
                    if self.dumpable(base + k * ps)
                )
            elif pde & PG_V:
                for pte in self.table_entries(pde & pg.pg_frame):
                    if pte & PG_V and self.dumpable(pte & pg.pg_frame):
                        marked.add((pte & pg.pg_frame) >> PAGE_SHIFT)
        marked -= self.nodump  # vm_phys_is_dumpable(): PG_NODUMP pages are not dumpable
        return sorted(marked)

    def pte_pages(self) -> list[tuple[int, ...]]:
        """The minidump's PTE section as entries: one page per superpage step of
        ``[KERNBASE, kernel_vm_end)`` (a page-table page, a fake page for a superpage,
        zeros for an invalid PDE)."""
        pg = self.pg
        out: list[tuple[int, ...]] = []
        zeros = (0,) * pg.nptepg
        fake = PG_V | PG_RW | PG_A | PG_M
        for va in range(self.lay.kernbase, self.kernel_vm_end, pg.nbpdr):
            pde = self.get_pde(self.pde_index(va))
            if pde & (PG_PS | PG_V) == PG_PS | PG_V:
                base = pde & pg.pg_ps_frame
                out.append(tuple((base + k * PAGE_SIZE) | fake for k in range(pg.nptepg)))
            elif pde & PG_V:
                out.append(self.table_entries(pde & pg.pg_frame))
            else:
                out.append(zeros)
        return out
