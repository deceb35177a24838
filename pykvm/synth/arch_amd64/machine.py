"""The synthetic FreeBSD/amd64 machine: physical memory, 4-level page tables and a kernel.

The model follows what a running amd64 kernel has in memory when it panics, as far as a
crash-dump reader can observe it:

* Physical memory is a handful of ``dump_avail`` ranges with holes between them: an
  optional low range (below 640 KiB, sometimes not starting at 0), the range holding the
  kernel, one or two middle ranges with page- (not 2 MiB-) aligned ends, one small range
  inside the physical GiB that the 1 GiB kernel mapping covers, and with
  ``physmem_gib`` one huge range making a big sparse machine.
* Page tables are built in that memory the way ``create_pagetables()``
  (sys/amd64/amd64/pmap.c) lays them out: right after the kernel image come the ``nkpt``
  kernel page-table pages (KPTphys), the PML4 page (KPML4phys), one PDP page for every
  kernel PML4 slot from ``VM_MIN_KERNEL_ADDRESS`` up (KPDPphys), the page directory of
  the KERNBASE GiB (KPDphys) and the direct map's PDP and PD pages.  ``KERNBASE`` maps
  ``kernphys - 2 MiB`` so the image linked at ``KERNBASE + 2 MiB`` maps ``kernphys``;
  every boot page is mapped with 4 KiB PTEs (text read-only, rodata read-only and
  no-execute, data/bss/page tables writable and no-execute).
* Past the ``nkpt`` PDEs: a 2 MiB superpage, an invalid PDE, and a page-table page with a
  few mappings; ``kernel_vm_end`` ends there.
* Only with ``bulk_mib``: the *bulk range*, one more dump_avail range of exactly that many
  MiB (2 MiB aligned, placed ``BULK_GAP`` past the 2 MiB-rounded end of the last middle
  range, below the 1 GiB mapping's physical GiB; no random draws, so every other range,
  page and mapping of the seed stays where it was), mapped contiguously like a kmem arena
  by 2 MiB superpages (RW, NX) in the KERNBASE GiB right after the tail page table, with
  ``kernel_vm_end`` moved past it.  It sits in the KERNBASE GiB rather than below
  KERNBASE because a version 1 minidump only covers KERNBASE..kernel_vm_end; there every
  minidump version marks all of its pages and the ELF dump has it as one ``PT_LOAD``.
  Random pages are never allocated from it, so its contents are the ordinary per-page
  pseudo-random bytes.
* In one GiB of KVA below KERNBASE ("kmem"): a page directory (not itself mapped or
  dumped) with a sparse page-table page (random pages, contiguous runs, PTEs into
  physical holes, pages the kernel marked ``PG_NODUMP``), an invalid PDE, a 2 MiB
  superpage straddling the end of a RAM range, and another page-table page.
* In another GiB below KERNBASE a 1 GiB mapping (PDPE with ``PG_PS``) whose physical GiB
  is a hole except for one small ``dump_avail`` range.
* The direct map at ``DMAP_MIN_ADDRESS``: its first GiB through a page directory of
  2 MiB pages, the rest with 1 GiB pages, covering max(4 GiB, RAM) like
  ``create_pagetables()``.
* A few pages the kernel adds to the dump with ``vm_page_dump_add`` (UMA pages, the
  message buffer) that are reachable only through the direct map.

What the minidump writers dump, from sys/amd64/amd64/minidump_machdep.c
(``cpu_minidumpsys``, checked against FreeBSD main): the page-directory pass marks every
dumpable page of a 1 GiB or 2 MiB mapping, the page-table page of every non-superpage
PDE, and every dumpable page a valid PTE maps; page-directory pages themselves are *not*
marked (their contents travel in the pmap section), so the kmem page directory is absent
from the page data.  The pmap section covers whole GiBs from ``VM_MIN_KERNEL_ADDRESS`` to
``max(KERNBASE + nkpt * NBPDR, kernel_vm_end)``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .._prng import Rng
from ..cmodel import LayoutTruth
from ..elfwriter import ELFCLASS64, ELFDATA2LSB, EM_X86_64
from ..kernel import SymbolEntry, SynthKernel
from ..kerneldata import (
    KernelDataTruth,
    PageArena,
    bss_variables,
    install_kernel_data,
    kernel_data_span,
)
from ..machine import Machine, boot_messages
from ..spec import KernelSpec

KERNBASE = 0xFFFFFFFF80000000
KERNLOAD = 0x200000
IMAGE_VA = KERNBASE + KERNLOAD

#: the amd64 target: ELF64 LE x86-64 kernel linked at KERNBASE + KERNLOAD
SPEC = KernelSpec(
    arch="amd64",
    elfclass=ELFCLASS64,
    data=ELFDATA2LSB,
    e_machine=EM_X86_64,
    kernbase=KERNBASE,
    load_offset=KERNLOAD,
    page_size=4096,
    data_vars=(("nkpt", 4),),
    bss_vars=(("KPML4phys", 8), ("kernphys", 8)),
    func_prologue=b"\x55\x48\x89\xe5",  # push %rbp; mov %rsp,%rbp
)

PAGE_SIZE = 4096
PAGE_SHIFT = 12
NBPDR = 1 << 21
NBPDP = 1 << 30
NPTEPG = 512
MIB = 1 << 20
GIB = 1 << 30

PG_V = 0x001
PG_RW = 0x002
PG_A = 0x020
PG_M = 0x040
PG_PS = 0x080
PG_G = 0x100
PG_NX = 1 << 63
PG_FRAME = 0x000FFFFFFFFFF000
PG_PS_FRAME = 0x000FFFFFFFE00000
PG_1GB_FRAME = 0x000FFFFFC0000000

VM_MIN_KERNEL_ADDRESS = 0xFFFFFE0000000000
DMAP_MIN_ADDRESS = 0xFFFFF80000000000
DMAP_MAX_ADDRESS = 0xFFFFFC0000000000
#: smallest KVA span accepted: two GiB below KERNBASE (kmem GiB and the 1 GiB mapping)
SMALL_KVA_START = KERNBASE - 2 * GIB

DMPML4I = (DMAP_MIN_ADDRESS >> 39) & 511

#: largest bulk range (``bulk_mib``), in MiB
BULK_MAX_MIB = 256
#: free physical space left between the last middle range and the bulk range (it keeps
#: the mid-hole page ``round_up(end, 2 MiB) + 14 MiB`` a hole)
BULK_GAP = 16 * MIB
#: most extra processes (``extra_procs``) a machine takes
EXTRA_PROCS_MAX = 20000


def pml4_index(va: int) -> int:
    """Index of ``va`` in the PML4 page."""
    return (va >> 39) & 511


def pdp_index(va: int) -> int:
    """Index of ``va`` in its page-directory-pointer page."""
    return (va >> 30) & 511


def pd_index(va: int) -> int:
    """Index of ``va`` in its page directory."""
    return (va >> 21) & 511


def pt_index(va: int) -> int:
    """Index of ``va`` in its page-table page."""
    return (va >> 12) & 511


def entry_prot(entry: int) -> int:
    """VM_PROT bits libkvm reports for a leaf entry: READ, +WRITE if RW, +EXECUTE unless NX."""
    prot = 1
    if entry & PG_RW:
        prot |= 2
    if not entry & PG_NX:
        prot |= 4
    return prot


def _round_up(value: int, boundary: int) -> int:
    return -(-value // boundary) * boundary


def _leaf_flags(rng: Rng, rw_odds: int = 3, nx_odds: int = 3) -> int:
    flags = PG_V | PG_A | PG_G
    if rng.below(4) < rw_odds:
        flags |= PG_RW | PG_M
    if rng.below(4) < nx_odds:
        flags |= PG_NX
    return flags


@dataclass(frozen=True)
class PtPage:
    """A non-superpage PDE: the 2 MiB of KVA it covers and its page-table page."""

    va: int
    pt_pa: int


class Amd64Machine(Machine):
    """The synthetic amd64 machine of one seed (see the module docstring for the layout).

    Built on :class:`~pykvm.synth.machine.Machine`.  Attributes used by the dump writers
    and the ground truth: ``segments`` (dump_avail pairs), ``tables`` (page-table pages
    by physical address), ``leaves`` (every leaf translation of the kernel map),
    ``pt_pages``, ``extras`` and ``nodump`` (page frame numbers), ``memory`` (a
    :class:`~pykvm.synth.truth.PhysicalMemory`), ``kernel`` (the
    :class:`~pykvm.synth.kernel.SynthKernel`), and the scalar facts ``kernphys``,
    ``kpml4phys``, ``nkpt``,
    ``kernel_vm_end``, ``vm_min``, ``dmap_limit`` and ``msgbuf``; the bulk range is
    ``bulk_va``, ``bulk_pa`` and ``bulk_len`` (all 0 without ``bulk_mib``).
    """

    def __init__(
        self,
        seed: int = 0,
        *,
        kernphys: int = 0x200000,
        vm_min_kernel_address: int = VM_MIN_KERNEL_ADDRESS,
        physmem_gib: int | None = None,
        extra_symbols: int = 0,
        bulk_mib: int = 0,
        types: LayoutTruth | None = None,
        cp_time_symbol: bool = False,
        ctf_section: Callable[[Sequence[SymbolEntry]], bytes] | None = None,
        extra_procs: int = 0,
    ) -> None:
        """Build the machine of ``seed`` (no files are written here).

        ``types`` (the kernel's type layout) adds the kernel data of
        :mod:`pykvm.synth.kerneldata`: its variables in ``.bss`` and a kernel-data arena
        of 4 KiB pages (one page table, 2 MiB of VA) in the kmem GiB, next to the other
        kmem page tables; ``kdata`` is then the :class:`KernelDataTruth`.
        ``cp_time_symbol`` also defines the old ``cp_time`` array; ``ctf_section`` makes
        the kernel ELF carry a ``.SUNW_ctf`` section (called with the symbol table).

        ``bulk_mib`` (even, 0..256) adds the bulk range: one more dump_avail range of that
        many MiB mapped contiguously by 2 MiB superpages (see the module docstring).

        ``extra_procs`` (with ``types``) adds that many processes to the kernel data; the
        arena then spans as many consecutive kmem page tables as they need, backed by a
        dump_avail range of its own (placed like the bulk range, after it, no random
        draws) whose pages are mapped in order.  0 leaves the machine unchanged.
        """
        if kernphys % NBPDR or kernphys < NBPDR or kernphys >= 64 * GIB:
            raise ValueError("kernphys must be 2 MiB aligned, at least 2 MiB and below 64 GiB")
        vm_min = vm_min_kernel_address
        if vm_min % GIB or not DMAP_MAX_ADDRESS <= vm_min <= SMALL_KVA_START:
            raise ValueError(
                "vm_min_kernel_address must be 1 GiB aligned, at or above DMAP_MAX_ADDRESS "
                f"and at most {SMALL_KVA_START:#x}"
            )
        if physmem_gib is not None and not 1 <= physmem_gib <= 256:
            raise ValueError("physmem_gib must be between 1 and 256")
        if not 0 <= bulk_mib <= BULK_MAX_MIB or bulk_mib % 2:
            raise ValueError(f"bulk_mib must be an even number of MiB from 0 to {BULK_MAX_MIB}")
        if extra_procs and types is None:
            raise ValueError("extra_procs needs types (kernel data)")
        if not 0 <= extra_procs <= EXTRA_PROCS_MAX:
            raise ValueError(f"extra_procs must be between 0 and {EXTRA_PROCS_MAX}")
        self.extra_procs = extra_procs
        #: page tables of the kernel-data arena; with extra procs, its own physical range
        self.kdata_npt = 1
        self.kdata_len = 0
        if extra_procs and types is not None:
            self.kdata_npt = -(-kernel_data_span(types, extra_procs) // NBPDR)
            self.kdata_len = self.kdata_npt * NBPDR
        rng = Rng(seed, "phys")
        super().__init__(seed, rng, page_size=PAGE_SIZE, entry_size=8, byteorder="little")
        self.kernphys = kernphys
        self.vm_min = vm_min
        extra_bss: list[tuple[str, int]] = []
        if types is not None:
            have = {"hz", "mp_maxcpus", "dumptid"} | {n for n, _ in SPEC.data_vars}
            extra_bss = bss_variables(types, cp_time=cp_time_symbol, existing=sorted(have))
        self.kernel = SynthKernel(SPEC, seed, extra_symbols, extra_bss=extra_bss)
        self.kernel.ctf_section = ctf_section
        self.kdata: KernelDataTruth | None = None

        # ---- how many boot page-table pages follow the image
        self.nkpml4e = 512 - pml4_index(vm_min)
        image_len = self.kernel.image_len
        nkpt = 1
        while True:
            tables = nkpt + 1 + self.nkpml4e + 1 + 2
            need = -(-(KERNLOAD + image_len + tables * PAGE_SIZE) // NBPDR)
            if need <= nkpt:
                break
            nkpt = need
        nkpt += rng.below(2)  # sometimes a spare page-table page with no valid PTE
        self.nkpt = nkpt
        self.boot_tables = nkpt + 1 + self.nkpml4e + 1 + 2
        # the bulk range's superpages follow the tail page table; kernel_vm_end grows past them
        self.bulk_len = bulk_mib * MIB
        self.bulk_va = KERNBASE + (nkpt + 3) * NBPDR if bulk_mib else 0
        self.kernel_vm_end = KERNBASE + (nkpt + 3) * NBPDR + self.bulk_len
        if self.kernel_vm_end > KERNBASE + GIB:  # pragma: no cover - needs a huge kernel
            raise ValueError("the bulk range does not fit in the KERNBASE GiB")

        # ---- physical memory
        self.set_segments(self._make_segments(physmem_gib))
        self.dmap_limit = max(4, -(-self.max_pa // GIB)) * GIB

        # ---- page tables and mappings
        self.pt_pages: list[PtPage] = []
        self.hole_targets: list[int] = []
        self._build_tables()
        self._build_msgbuf()
        if types is not None:
            self._build_kdata(types, cp_time_symbol)
        self._fill_kernel_vars()
        self.place(self.kernphys, self.kernel.memory_image())
        self.finish()

    # ------------------------------------------------------------------ physical layout
    def _make_segments(self, physmem_gib: int | None) -> list[tuple[int, int]]:
        rng = self._rng
        segs: list[tuple[int, int]] = []
        kernphys = self.kernphys
        has_low = rng.chance(2, 3)
        if has_low:
            segs.append((rng.choice((0, 0, 0x1000, 0x10000)), rng.choice((0x9C000, 0x9F000))))
        kstart = kernphys - rng.choice((0x100000, 0x180000, 0x200000))
        if has_low:
            kstart = max(kstart, 0x100000)
        elif kstart == 0 and rng.chance(1, 2):
            kstart = 0x1000
        self.kspan = self.kernel.image_len + self.boot_tables * PAGE_SIZE
        self.sp_pa = _round_up(kernphys + self.kspan, NBPDR)
        kend = self.sp_pa + NBPDR + rng.between(1, 3) * MIB + rng.below(64) * PAGE_SIZE
        segs.append((kstart, kend))
        cursor = kend
        for _ in range(rng.between(1, 2)):
            start = cursor + rng.between(1, 48) * MIB + rng.below(256) * PAGE_SIZE
            end = start + rng.between(3, 5) * MIB + rng.between(1, 255) * PAGE_SIZE
            if end % NBPDR == 0:
                end += PAGE_SIZE
            segs.append((start, end))
            cursor = end
        self.g1_phys = ((cursor >> 30) + 1 + rng.below(2)) * GIB
        gstart = self.g1_phys + rng.below(256) * NBPDR + rng.below(4) * PAGE_SIZE
        segs.append((gstart, gstart + rng.between(2, 4) * MIB))
        # the bulk range: no draws, so the seed's other ranges stay where they were
        self.bulk_pa = 0
        if self.bulk_len:
            self.bulk_pa = _round_up(cursor + BULK_GAP, NBPDR)
            if self.bulk_pa + self.bulk_len + NBPDR > self.g1_phys:
                raise ValueError(
                    "no room for the bulk range below the 1 GiB mapping's physical GiB "
                    "(kernphys too close to the end of its GiB)"
                )
            segs.insert(len(segs) - 1, (self.bulk_pa, self.bulk_pa + self.bulk_len))
        # the kernel-data range of extra processes: after the bulk range, no draws either
        self.kdata_pa = 0
        if self.kdata_len:
            after = self.bulk_pa + self.bulk_len if self.bulk_len else cursor
            self.kdata_pa = _round_up(after + BULK_GAP, NBPDR)
            if self.kdata_pa + self.kdata_len + NBPDR > self.g1_phys:
                raise ValueError(
                    "no room for the kernel-data range below the 1 GiB mapping's physical "
                    "GiB (too many extra_procs)"
                )
            segs.insert(len(segs) - 1, (self.kdata_pa, self.kdata_pa + self.kdata_len))
        if physmem_gib is not None:
            have = sum(e - s for s, e in segs)
            big = max(physmem_gib * GIB - have, GIB)
            big_start = self.g1_phys + 2 * GIB
            segs.append((big_start, big_start + (big & ~(PAGE_SIZE - 1))))
        return segs

    def _mid_segments(self) -> list[tuple[int, int]]:
        # the ranges of the first GiBs, without the 1 GiB mapping's, the huge and the bulk range
        bulk = (self.bulk_pa, self.bulk_pa + self.bulk_len) if self.bulk_len else None
        kdata = (self.kdata_pa, self.kdata_pa + self.kdata_len) if self.kdata_len else None
        return [(s, e) for s, e in self.segments
                if s < self.g1_phys and (s, e) != bulk and (s, e) != kdata]

    def pool_segments(self) -> list[tuple[int, int]]:
        """Random pages come only from the ranges of the first GiBs (not the bulk range)."""
        return self._mid_segments()

    # ------------------------------------------------------------------ page tables
    def _child(self, table_pa: int, index: int) -> int:
        entry = self.get_entry(table_pa, index)
        if not entry & PG_V or entry & PG_PS:
            raise RuntimeError("synthetic page tables: missing intermediate table")
        return entry & PG_FRAME

    def pdpe_of(self, va: int) -> int:
        """Return the PDPE covering ``va`` (0 if the PML4 entry is invalid)."""
        pml4e = self.get_entry(self.kpml4phys, pml4_index(va))
        if not pml4e & PG_V:
            return 0
        return self.get_entry(pml4e & PG_FRAME, pdp_index(va))

    def _map4k(self, va: int, pa: int, flags: int) -> None:
        pdp = self._child(self.kpml4phys, pml4_index(va))
        pd = self._child(pdp, pdp_index(va))
        pt = self._child(pd, pd_index(va))
        entry = (pa & PG_FRAME) | flags
        self.set_entry(pt, pt_index(va), entry)
        self.add_leaf(va, PAGE_SIZE, pa, entry, entry_prot(entry))

    def _map2m(self, va: int, pa: int, flags: int) -> None:
        pdp = self._child(self.kpml4phys, pml4_index(va))
        pd = self._child(pdp, pdp_index(va))
        entry = (pa & PG_PS_FRAME) | flags | PG_PS
        self.set_entry(pd, pd_index(va), entry)
        self.add_leaf(va, NBPDR, pa, entry, entry_prot(entry))

    def _link_pt(self, va: int, pt_pa: int) -> None:
        pdp = self._child(self.kpml4phys, pml4_index(va))
        pd = self._child(pdp, pdp_index(va))
        self.set_entry(pd, pd_index(va), pt_pa | PG_V | PG_RW | PG_A | PG_M)
        self.pt_pages.append(PtPage(va & ~(NBPDR - 1), pt_pa))

    def _build_tables(self) -> None:
        rng = self._rng
        kernphys = self.kernphys
        # Boot page tables right after the image, in create_pagetables() order.
        cursor = kernphys + self.kernel.image_len
        self.reserve(kernphys - KERNLOAD, kernphys + self.kspan)
        self.reserve(self.sp_pa, self.sp_pa + NBPDR)
        # the chunk of the superpage that straddles the end of the first middle range
        mid_start, mid_end = self.segments[self._kernel_seg_index() + 1]
        self.straddle_pa = (mid_end - 1) & ~(NBPDR - 1)
        assert self.straddle_pa >= mid_start
        self.reserve(self.straddle_pa, mid_end)
        kpt = [self.new_table(cursor + i * PAGE_SIZE) for i in range(self.nkpt)]
        cursor += self.nkpt * PAGE_SIZE
        self.kpml4phys = self.new_table(cursor)
        cursor += PAGE_SIZE
        kslot0 = pml4_index(self.vm_min)
        kpdp = {}
        for slot in range(kslot0, 512):
            kpdp[slot] = self.new_table(cursor)
            self.set_entry(self.kpml4phys, slot, cursor | PG_V | PG_RW | PG_A | PG_M)
            cursor += PAGE_SIZE
        kpd = self.new_table(cursor)
        cursor += PAGE_SIZE
        dmpdp = self.new_table(cursor)
        cursor += PAGE_SIZE
        dmpd = self.new_table(cursor)
        cursor += PAGE_SIZE
        assert cursor == kernphys + self.kspan

        # Direct map: first GiB by 2 MiB pages, then 1 GiB pages (always RW, NX).
        self.set_entry(self.kpml4phys, DMPML4I, dmpdp | PG_V | PG_RW | PG_A | PG_M)
        dflags = PG_V | PG_RW | PG_A | PG_M | PG_PS | PG_G | PG_NX
        self.set_entry(dmpdp, 0, dmpd | PG_V | PG_RW | PG_A | PG_M)
        for j in range(512):
            self.set_entry(dmpd, j, (j * NBPDR) | dflags)
        for g in range(1, self.dmap_limit // GIB):
            self.set_entry(dmpdp, g, (g * GIB) | dflags)

        # KERNBASE GiB: nkpt page-table pages mapping the low 2 MiB and the image.
        self.set_entry(kpdp[511], pdp_index(KERNBASE), kpd | PG_V | PG_RW | PG_A | PG_M)
        for i, pt in enumerate(kpt):
            self._link_pt(KERNBASE + i * NBPDR, pt)
        low_base = kernphys - KERNLOAD
        for i in range(NPTEPG):
            if i < 16 or i % 4 == 0:
                self._map4k(
                    KERNBASE + i * PAGE_SIZE,
                    low_base + i * PAGE_SIZE,
                    PG_V | PG_RW | PG_A | PG_M | PG_G | PG_NX,
                )
        k = self.kernel
        for off in range(0, self.kspan, PAGE_SIZE):
            if off < k.rodata_off:
                flags = PG_V | PG_A | PG_G
            elif off < k.data_off:
                flags = PG_V | PG_A | PG_G | PG_NX
            else:
                flags = PG_V | PG_RW | PG_A | PG_M | PG_G | PG_NX
            self._map4k(IMAGE_VA + off, kernphys + off, flags)
        self.image_map_end = IMAGE_VA + self.kspan

        # Past the nkpt PDEs: a superpage, an invalid PDE, a sparse page-table page.
        sp_flags = PG_V | PG_RW | PG_A | PG_M | PG_G
        if rng.chance(2, 3):
            sp_flags |= PG_NX
        self.sp_va = KERNBASE + self.nkpt * NBPDR
        self._map2m(self.sp_va, self.sp_pa, sp_flags)
        self.gap_pde_va = self.sp_va + NBPDR
        tail_va = self.sp_va + 2 * NBPDR
        pt3 = self.new_table(self.alloc())
        self._link_pt(tail_va, pt3)
        self.tail_pt_va = tail_va
        for idx in sorted(rng.sample(range(NPTEPG), rng.between(3, 8))):
            self._map4k(tail_va + idx * PAGE_SIZE, self.alloc(), _leaf_flags(rng))
        # the bulk range (no draws): 2 MiB superpages right after the tail page table
        bulk_flags = PG_V | PG_RW | PG_A | PG_M | PG_G | PG_NX
        for off in range(0, self.bulk_len, NBPDR):
            self._map2m(self.bulk_va + off, self.bulk_pa + off, bulk_flags)

        # Two distinct GiBs below KERNBASE: kmem and the 1 GiB mapping.
        below = (KERNBASE - self.vm_min) // GIB
        g_kmem, g_1g = rng.sample(range(below), 2)
        self.kmem_va = self.vm_min + g_kmem * GIB
        self.g1_va = self.vm_min + g_1g * GIB
        g1_entry = self.g1_phys | PG_V | PG_RW | PG_A | PG_M | PG_PS | PG_G | PG_NX
        self.set_entry(kpdp[pml4_index(self.g1_va)], pdp_index(self.g1_va), g1_entry)
        self.add_leaf(self.g1_va, GIB, self.g1_phys, g1_entry, entry_prot(g1_entry))
        for s, e in self.segments:
            if self.g1_phys <= s < self.g1_phys + GIB:
                self.reserve(s, e)

        kmem_pd = self.new_table(self.alloc())
        self.kmem_pd_pa = kmem_pd
        self.set_entry(
            kpdp[pml4_index(self.kmem_va)],
            pdp_index(self.kmem_va),
            kmem_pd | PG_V | PG_RW | PG_A | PG_M,
        )
        a = rng.below(NPTEPG - 4)
        pde_va = self.kmem_va + a * NBPDR
        self.kmem_pt_va = pde_va
        pt1 = self.new_table(self.alloc())
        self._link_pt(pde_va, pt1)
        slots = rng.sample(range(NPTEPG), rng.between(40, 90))
        # a contiguous run: consecutive VA pages onto consecutive physical pages
        run_len = rng.between(4, 12)
        run_start = rng.below(NPTEPG - run_len)
        run_pa = self.alloc(run_len)
        self.run_va = pde_va + run_start * PAGE_SIZE
        self.run_len = run_len
        run_flags = PG_V | PG_RW | PG_A | PG_M | PG_G | PG_NX
        for i in range(run_len):
            self._map4k(self.run_va + i * PAGE_SIZE, run_pa + i * PAGE_SIZE, run_flags)
        taken = set(range(run_start, run_start + run_len))
        slots = [s for s in slots if s not in taken]
        # PTEs into physical holes
        holes = self._hole_addresses()
        self.hole_targets = holes
        self.hole_pte_vas: list[int] = []
        for target, slot in zip(holes, slots, strict=False):
            va = pde_va + slot * PAGE_SIZE
            self._map4k(va, target, PG_V | PG_RW | PG_A | PG_M | PG_G | PG_NX)
            self.hole_pte_vas.append(va)
        slots = slots[len(holes) :]
        # pages the kernel marked PG_NODUMP (e.g. ZFS ARC buffers)
        self.nodump_vas: list[int] = []
        for slot in slots[:2]:
            pa = self.alloc()
            self.nodump.add(pa >> PAGE_SHIFT)
            va = pde_va + slot * PAGE_SIZE
            self._map4k(va, pa, PG_V | PG_RW | PG_A | PG_M | PG_G | PG_NX)
            self.nodump_vas.append(va)
        for slot in slots[2:]:
            self._map4k(pde_va + slot * PAGE_SIZE, self.alloc(), _leaf_flags(rng))
        self.kmem_invalid_pde_va = pde_va + NBPDR
        # a superpage straddling the end of the first middle range
        self.straddle_va = pde_va + 2 * NBPDR
        self._map2m(self.straddle_va, self.straddle_pa, PG_V | PG_RW | PG_A | PG_M | PG_G | PG_NX)
        pt2 = self.new_table(self.alloc())
        self._link_pt(pde_va + 3 * NBPDR, pt2)
        self.kmem_pt2_va = pde_va + 3 * NBPDR
        for idx in sorted(rng.sample(range(NPTEPG - 32), rng.between(3, 10))):
            self._map4k(self.kmem_pt2_va + idx * PAGE_SIZE, self.alloc(), _leaf_flags(rng))
        big = [(s, e) for s, e in self.segments if s > self.g1_phys + GIB]
        self.big_vas: list[int] = []
        if big:
            s, e = big[0]
            npages = (e - s) // PAGE_SIZE
            for i in range(16):
                pa = s + (rng.below(npages) * PAGE_SIZE)
                va = self.kmem_pt2_va + (NPTEPG - 32 + i) * PAGE_SIZE
                self._map4k(va, pa, PG_V | PG_RW | PG_A | PG_M | PG_G | PG_NX)
                self.big_vas.append(va)
            for _ in range(8):
                self.extras.add((s >> PAGE_SHIFT) + rng.below(npages))

        # vm_page_dump_add() pages reachable only through the direct map
        for _ in range(rng.between(6, 16)):
            self.extras.add(self.alloc() >> PAGE_SHIFT)
        # the page libkvm's hole-blind bit id would alias the first hole target onto
        self.extras.add(self.quirk_alias_pa >> PAGE_SHIFT)

    def _kernel_seg_index(self) -> int:
        for i, (s, e) in enumerate(self.segments):
            if s <= self.kernphys < e:
                return i
        raise AssertionError("kernel outside RAM")

    def _hole_addresses(self) -> list[int]:
        """Physical pages in holes: just below a range (libkvm quirk bait), mid-hole, past RAM."""
        ki = self._kernel_seg_index()
        mid_start = self.segments[ki + 1][0]
        bait = mid_start - PAGE_SIZE
        self.quirk_alias_pa = self.segments[ki][1] - PAGE_SIZE
        self.use(self.quirk_alias_pa)
        last_mid_end = max(e for s, e in self._mid_segments())
        mid_hole = _round_up(last_mid_end, NBPDR) + 7 * NBPDR
        past = self.segments[-1][1] + 3 * MIB
        out = [bait, mid_hole, past]
        if self.segments[0][0] > 0:
            out.append(0)
        return [pa for pa in out if not self.dumpable(pa)]

    # ------------------------------------------------------------------ msgbuf and vars
    def _build_msgbuf(self) -> None:
        self.msgbuf = boot_messages(
            self._rng,
            self.kernel,
            physmem=self.physmem,
            avail=self.physmem - self.kspan,
            cpu="Synthetic(R) Processor @ 2.40GHz (2400.00-MHz K8-class CPU)",
            timer='Event timer "LAPIC" quality 600',
        )
        npages = -(-len(self.msgbuf) // PAGE_SIZE)
        self.msgbuf_pa = self.alloc(npages)
        self.place(self.msgbuf_pa, self.msgbuf)
        first = self.msgbuf_pa >> PAGE_SHIFT
        self.extras.update(range(first, first + npages))

    def _build_kdata(self, types: LayoutTruth, cp_time_symbol: bool) -> None:
        """The kernel-data arena (after every random draw of the default machine)."""
        k = self.kernel
        arena_va = self.kmem_pt_va + 4 * NBPDR  # the kmem PDE after pt2 (a + 4 <= 511)
        npt = self.kdata_npt
        first = pd_index(self.kmem_pt_va)
        if first + 4 + npt > NPTEPG:  # no room after pt2: the PDEs before pt1
            if first < npt:
                raise ValueError("the kernel-data arena does not fit in the kmem GiB")
            arena_va = self.kmem_pt_va - npt * NBPDR
        for n in range(npt):
            pt = self.new_table(self.alloc())
            self._link_pt(arena_va + n * NBPDR, pt)
        self.kdata_va = arena_va
        flags = PG_V | PG_RW | PG_A | PG_M | PG_G | PG_NX

        def map_page(va: int) -> int:
            if self.kdata_len:  # the range of its own, in VA order
                pa = self.kdata_pa + (va - arena_va)
                self.use(pa)
            else:
                pa = self.alloc()
            self._map4k(va, pa, flags)
            return pa

        arena = PageArena(arena_va, NPTEPG * npt, PAGE_SIZE, map_page)
        self.kdata = install_kernel_data(
            k, types, arena, self.place, seed=self.seed,
            msgbuf_ring_va=DMAP_MIN_ADDRESS + self.msgbuf_pa, msgbuf=self.msgbuf,
            cp_time_symbol=cp_time_symbol, extra_procs=self.extra_procs,
        )

    def _fill_kernel_vars(self) -> None:
        k = self.kernel
        k.set_int("nkpt", self.nkpt, signed=True)
        k.set_int("kernel_vm_end", self.kernel_vm_end)
        k.set_int("physmem", self.physmem >> PAGE_SHIFT, signed=True)
        k.set_dump_avail(self.segments)
        k.set_int("KPML4phys", self.kpml4phys)
        k.set_int("kernphys", self.kernphys)
        k.finalize()

    # ------------------------------------------------------------------ views
    def kva_end(self) -> int:
        """``MAX(KERNBASE + nkpt * NBPDR, kernel_vm_end)`` as cpu_minidumpsys computes it."""
        return max(KERNBASE + self.nkpt * NBPDR, self.kernel_vm_end)

    def minidump_pfns(self, version: int) -> list[int]:
        """The sorted page frame numbers ``cpu_minidumpsys`` of that era would dump.

        Version 1 walks KERNBASE..kernel_vm_end and does not mark page-table pages (their
        contents are copied into the PTE section); versions 2 and 3 walk whole GiBs from
        ``VM_MIN_KERNEL_ADDRESS`` and mark the page-table page of every non-superpage PDE.
        Pages flagged ``PG_NODUMP`` and pages outside dump_avail are never dumped.
        """
        marked: set[int] = set()
        if version == 1:
            lo, hi = KERNBASE, self.kernel_vm_end
        else:
            lo, hi = self.vm_min, _round_up(self.kva_end(), GIB)
        for leaf in self.leaves:
            if not lo <= leaf.va < hi:
                continue
            if leaf.size == PAGE_SIZE:
                if self.dumpable(leaf.pa):
                    marked.add(leaf.pa >> PAGE_SHIFT)
            else:
                marked.update(self.ram_pfns_in(leaf.pa, leaf.pa + leaf.size))
        if version >= 2:
            for pt in self.pt_pages:
                if lo <= pt.va < hi and self.dumpable(pt.pt_pa):
                    marked.add(pt.pt_pa >> PAGE_SHIFT)
        marked |= {pfn for pfn in self.extras if self.dumpable(pfn << PAGE_SHIFT)}
        marked -= self.nodump
        return sorted(marked)
