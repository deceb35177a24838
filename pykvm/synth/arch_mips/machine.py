"""The mips target (o32, n32, n64; either byte order) and the synthetic machine of a seed.

Facts followed (read, not copied), FreeBSD 14 and earlier (mips left FreeBSD main):
sys/mips/include/vmparam.h (``KERNBASE`` 0x80000000 sign-extended, ``VM_MIN_KERNEL_ADDRESS``
0xC0000000 / 0xc000000000000000), param.h (``NPTEPG``, ``NBPDR`` = 4 MiB for 32-bit PTEs and
2 MiB for 64-bit ones, ``SEGSHIFT``, ``MACHINE_ARCH``), pte.h (``TLBLO_PFN_MASK``
0x1FFFFFC0 / 0x3FFFFFFC0, PFN shift 6, ``PTE_G`` 1, ``PTE_V`` 2, ``PTE_D`` 4,
``PTE_C(cca)`` = cca << 3, software bits ``PTE_RO``/``PTE_W``/``PTE_MANAGED`` at bit 29 (o32)
or 55 (n32, n64)), _types.h (``vm_paddr_t`` 32-bit on o32, 64-bit on n32/n64), cpuregs.h
(KSEG0/KSEG1 windows, ``MIPS_PHYS_TO_DIRECT``: KSEG0 on 32-bit kernels, XKPHYS with the
cached CCA 3 on n64), sys/mips/mips/pmap.c (``pmap_steal_memory``,
``pmap_create_kernel_pagetable``: segment table, n64 page directory and ``nkpt`` page-table
pages stolen after the message buffer and kstack0; invalid kernel PTEs hold ``PTE_G``;
``pmap_kenter_attr`` entries ``PFN | PTE_C | PTE_D | PTE_V | PTE_G``; ``init_pte_prot``),
sys/kern/subr_prf.c (``msgbufinit``: ring first, ``struct msgbuf`` at the end) and
sys/mips/mips/minidump_machdep.c (which pages ``minidumpsys`` marks).

The machine of a seed (every ABI draws the same choices, so the shapes match):

* RAM (``dump_avail``): range 0 from physical 0, holding the exception vectors, the kernel
  image at ``load_offset`` (KERNLOADADDR - KERNBASE, 1 MiB by default) and the memory
  ``pmap_bootstrap`` steals right after it (message buffer, kstack0, segment table, n64 page
  directory, the ``nkpt`` boot page-table pages) -- ``phys_avail[0]`` ends that; two more
  ranges below 512 MiB with holes between them; one "high" range that KSEG0 cannot reach
  (above 512 MiB on o32, above 4 GiB on n32 and n64).
* The boot-time ``vm_page_startup`` pages (bitmap, UMA bootstrap) at the end of the largest
  low range, and UMA ``uma_small_alloc`` pages: reachable only through KSEG0/XKPHYS, added to
  the dump with ``dump_add_page`` (``extras``).
* KVA from ``VM_MIN_KERNEL_ADDRESS`` to ``kernel_vm_end``: ``nkpt`` boot page-table pages and
  one or two grown by ``pmap_growkernel``; the first two pages (the SMP pcpu area, mapped by
  a wired TLB entry) invalid; scattered kmem pages (``pmap_kenter`` dirty, managed clean,
  read-only), a contiguous run onto the high range, two pages straddling a page-table page
  boundary, an alias of the kernel's ``.data``, uncached device pages outside RAM, PTEs into
  physical holes (one just below a range start), ``PG_NODUMP`` pages, and on o32 a PTE whose
  frame lies above 4 GiB.
* Only with ``types`` (after every draw of the default machine, which it leaves as it
  was): one more page-table page "grown" past the others (``kernel_vm_end`` moves one
  ``NBPDR`` on), whose VA is the kernel-data arena of :mod:`pykvm.synth.kerneldata`:
  ``pmap_kenter`` pages of kmem holding the process table, per-CPU areas, swap devices and
  the ``struct msgbuf`` (``msgbufp`` then points there; its ``msg_ptr`` is the ring in the
  stolen area, through KSEG0/XKPHYS).  Like every page a valid kernel PTE maps, the arena
  is in the minidump.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .. import elfwriter as ew
from .._prng import Rng
from ..cmodel import LayoutTruth
from ..kernel import SymbolEntry, SynthKernel
from ..kerneldata import KernelDataTruth, PageArena, bss_variables, install_kernel_data
from ..machine import Machine, boot_messages, spread_ranges
from ..spec import KernelSpec
from ..truth import VM_PROT_EXECUTE, VM_PROT_READ, VM_PROT_WRITE

MIB = 1 << 20
GIB = 1 << 30
PAGE_SHIFT = 12
PAGE_SIZE = 1 << PAGE_SHIFT

# pte.h: hardware bits of EntryLo and the PFN field
PTE_G = 0x01
PTE_V = 0x02
PTE_D = 0x04
TLBLO_PFN_SHIFT = 6
# cca.h: cache coherency attributes (PTE_C(cca) = cca << 3)
MIPS_CCA_UNCACHED = 2
MIPS_CCA_CACHED = 3

# cpuregs.h / kvm_mips.h: the unmapped windows
MIPS_KSEG0_LARGEST_PHYS = 0x20000000
MIPS_KSEG0_PHYS_MASK = 0x1FFFFFFF
MIPS_XKPHYS_PHYS_MASK = 0x0FFFFFFFFFF
MIPS32_KSEG0_START = 0x80000000
MIPS32_KSEG1_START = 0xA0000000
MIPS64_KSEG0_START = 0xFFFFFFFF80000000
MIPS64_KSEG1_START = 0xFFFFFFFFA0000000
MIPS_XKPHYS_START = 0x8000000000000000
#: bytes of one XKPHYS window (one cache attribute): 40 physical address bits
XKPHYS_SPAN = 1 << 40

#: the physical address of the uncached device pages (Malta's GT-64120 register block)
DEVICE_PA = 0x1BE00000

#: sizeof(struct msgbuf) (sys/sys/msgbuf.h, with its struct mtx) for 32- and 64-bit pointers
MSGBUF_STRUCT_SIZE = {4: 56, 8: 80}
MSG_MAGIC = 0x063062
#: kern.msgbufsize of the synthetic kernels (the stolen area: ring + struct msgbuf)
MSGBUFSIZE = 4 * PAGE_SIZE
#: KSTACK_PAGES (param.h)
KSTACK_PAGES = 2


def pte_c(cca: int) -> int:
    """``PTE_C(attr)``: the cache attribute field of an entry."""
    return (cca & 7) << 3


@dataclass(frozen=True)
class Abi:
    """One mips ABI as the kernel's headers define it."""

    name: str
    elfclass: int
    #: e_flags of the kernel (EF_MIPS_ARCH_* | ABI bits | EF_MIPS_NOREORDER)
    e_flags: int
    #: sizeof(pt_entry_t)
    pte_size: int
    #: sizeof(void *), also sizeof(long) and of pd_entry_t
    ptr_size: int
    #: sizeof(vm_paddr_t)
    paddr_size: int
    #: KERNBASE, the value of the kernel's ``kernbase`` symbol
    kernbase: int
    #: VM_MIN_KERNEL_ADDRESS, the minidump header's ``kernbase``
    vm_min: int
    #: TLBLO_PFN_MASK
    pfn_mask: int
    #: TLBLO_SWBITS_SHIFT (PTE_RO is 1 << it)
    swbits_shift: int
    #: SEGSHIFT: the VA bits one segment-table entry covers
    seg_shift: int
    #: MACHINE_ARCH for (big, little) endian
    machine_arch: tuple[str, str]

    @property
    def npte_pg(self) -> int:
        """NPTEPG: PTEs in a page-table page."""
        return PAGE_SIZE // self.pte_size

    @property
    def nbpdr(self) -> int:
        """NBPDR: bytes of KVA one page-table page maps."""
        return self.npte_pg * PAGE_SIZE

    @property
    def npde_pg(self) -> int:
        """NPDEPG: pointers in a segment-table (or n64 page-directory) page."""
        return PAGE_SIZE // self.ptr_size

    @property
    def pte_ro(self) -> int:
        """PTE_RO (software)."""
        return 1 << self.swbits_shift

    @property
    def pte_w(self) -> int:
        """PTE_W (wired, software)."""
        return 2 << self.swbits_shift

    @property
    def pte_managed(self) -> int:
        """PTE_MANAGED (software)."""
        return 4 << self.swbits_shift

    @property
    def is64(self) -> bool:
        """True for n64 (ELFCLASS64, 64-bit pointers)."""
        return self.elfclass == ew.ELFCLASS64

    @property
    def bitset_word_bits(self) -> int:
        """Bits of ``long``: the word of the FreeBSD 13 ``BITSET`` dump bitmap."""
        return 8 * self.ptr_size

    def pa_to_pfn(self, pa: int) -> int:
        """``TLBLO_PA_TO_PFN``: the PFN field of an entry for physical ``pa``."""
        return ((pa >> PAGE_SHIFT) << TLBLO_PFN_SHIFT) & self.pfn_mask

    def pte_to_pa(self, pte: int) -> int:
        """The physical page an entry maps, as the hardware sees it (all PFN bits)."""
        return ((pte & self.pfn_mask) >> TLBLO_PFN_SHIFT) << PAGE_SHIFT

    def kernel_pte_to_pa(self, pte: int) -> int:
        """``TLBLO_PTE_TO_PA`` as the kernel computes it: in ``vm_paddr_t`` (32 bits on o32)."""
        return self.pte_to_pa(pte) & ((1 << (8 * self.paddr_size)) - 1)

    def kseg0(self, pa: int) -> int:
        """``MIPS_PHYS_TO_KSEG0`` (pa below 512 MiB)."""
        return (MIPS64_KSEG0_START if self.is64 else MIPS32_KSEG0_START) | pa

    def kseg1(self, pa: int) -> int:
        """``MIPS_PHYS_TO_KSEG1`` (pa below 512 MiB): the uncached alias."""
        return (MIPS64_KSEG1_START if self.is64 else MIPS32_KSEG1_START) | pa

    def xkphys(self, pa: int, cca: int = MIPS_CCA_CACHED) -> int:
        """``MIPS_PHYS_TO_XKPHYS(cca, pa)`` (n64)."""
        return MIPS_XKPHYS_START | (cca << 59) | pa

    def direct(self, pa: int) -> int:
        """``MIPS_PHYS_TO_DIRECT``: XKPHYS (cached) on n64, KSEG0 otherwise."""
        return self.xkphys(pa) if self.is64 else self.kseg0(pa)

    def direct_mappable(self, pa: int) -> bool:
        """``MIPS_DIRECT_MAPPABLE``."""
        return self.is64 or pa < MIPS_KSEG0_LARGEST_PHYS

    def seg_index(self, va: int) -> int:
        """``pmap_seg_index``: the segment-table slot of ``va``."""
        return (va >> self.seg_shift) & (self.npde_pg - 1)

    def pde_index(self, va: int) -> int:
        """``pmap_pde_index`` (n64): the page-directory slot of ``va``."""
        return (va >> (PAGE_SHIFT + 9)) & (self.npde_pg - 1)


O32 = Abi(
    name="o32",
    elfclass=ew.ELFCLASS32,
    e_flags=0x50001001,  # EF_MIPS_ARCH_32 | EF_MIPS_ABI_O32 | EF_MIPS_NOREORDER
    pte_size=4,
    ptr_size=4,
    paddr_size=4,
    kernbase=0x80000000,
    vm_min=0xC0000000,
    pfn_mask=0x1FFFFFC0,
    swbits_shift=29,
    seg_shift=PAGE_SHIFT + 10,
    machine_arch=("mips", "mipsel"),
)
N32 = Abi(
    name="n32",
    elfclass=ew.ELFCLASS32,
    e_flags=0x60000021,  # EF_MIPS_ARCH_64 | EF_MIPS_ABI2 | EF_MIPS_NOREORDER
    pte_size=8,
    ptr_size=4,
    paddr_size=8,
    kernbase=0x80000000,
    vm_min=0xC0000000,
    pfn_mask=0x3FFFFFFC0,
    swbits_shift=55,
    seg_shift=PAGE_SHIFT + 9,
    machine_arch=("mipsn32", "mipsn32el"),
)
N64 = Abi(
    name="n64",
    elfclass=ew.ELFCLASS64,
    e_flags=0x60000001,  # EF_MIPS_ARCH_64 | EF_MIPS_NOREORDER
    pte_size=8,
    ptr_size=8,
    paddr_size=8,
    kernbase=0xFFFFFFFF80000000,
    vm_min=0xC000000000000000,
    pfn_mask=0x3FFFFFFC0,
    swbits_shift=55,
    seg_shift=PAGE_SHIFT + 9 + 9,
    machine_arch=("mips64", "mips64el"),
)
ABIS = {abi.name: abi for abi in (O32, N32, N64)}


def make_spec(abi: Abi, byteorder: ew.ByteOrder, load_offset: int = 0x100000) -> KernelSpec:
    """The kernel of ``abi``: EM_MIPS ET_EXEC linked at KERNLOADADDR = KERNBASE + load_offset.

    ``.text`` follows the ELF and program headers in the first page (ldscript.mips:
    ``. = KERNLOADADDR + SIZEOF_HEADERS``), and ``p_paddr`` equals ``p_vaddr`` (no ``AT``).
    """
    elfclass = abi.elfclass
    hdrs = 52 + 2 * 32 if elfclass == ew.ELFCLASS32 else 64 + 2 * 56
    # addiu/daddiu sp, sp, -32: the first instruction of a function
    insn = 0x67BDFFE0 if abi.is64 else 0x27BDFFE0
    return KernelSpec(
        arch="mips",
        elfclass=elfclass,
        data=ew.ELFDATA2LSB if byteorder == "little" else ew.ELFDATA2MSB,
        e_machine=ew.EM_MIPS,
        kernbase=abi.kernbase,
        e_type=ew.ET_EXEC,
        e_flags=abi.e_flags,
        load_offset=load_offset,
        text_offset=ew.align(hdrs, 16),
        link_paddr=abi.kernbase + load_offset,
        paddr_size=abi.paddr_size,
        machine="mips",
        machine_arch=abi.machine_arch[0 if byteorder == "big" else 1],
        bss_vars=(("kernel_segmap", abi.ptr_size), ("msgbufp", abi.ptr_size)),
        func_prologue=insn.to_bytes(4, byteorder),
    )


def entry_prot(abi: Abi, entry: int) -> int:
    """What a valid kernel PTE grants: read and execute always, write unless ``PTE_RO``."""
    prot = VM_PROT_READ | VM_PROT_EXECUTE
    if not entry & abi.pte_ro:
        prot |= VM_PROT_WRITE
    return prot


class MipsMachine(Machine):
    """RAM, the kernel image, the kernel page tables and which pages ``minidumpsys`` marks."""

    def __init__(
        self,
        seed: int,
        abi: Abi,
        byteorder: ew.ByteOrder,
        *,
        nkpt: int | None = None,
        load_offset: int = 0x100000,
        extra_symbols: int = 0,
        types: LayoutTruth | None = None,
        cp_time_symbol: bool = False,
        ctf_section: Callable[[Sequence[SymbolEntry]], bytes] | None = None,
    ) -> None:
        """Build the machine of ``seed`` for ``abi`` and byte order ``byteorder``.

        ``types`` (the kernel's type layout, of the target matching ``abi`` and
        ``byteorder``) adds the kernel data: its variables in ``.bss`` and the kernel-data
        arena (see the module docstring); ``kdata`` is then the :class:`KernelDataTruth`.
        ``cp_time_symbol`` also defines the old ``cp_time`` array; ``ctf_section`` makes
        the kernel ELF carry a ``.SUNW_ctf`` section (called with the symbol table).
        """
        rng = Rng(seed, "mips-phys")
        super().__init__(
            seed, rng, page_size=PAGE_SIZE, entry_size=abi.pte_size, byteorder=byteorder
        )
        self.abi = abi
        self.spec = make_spec(abi, byteorder, load_offset)
        if types is not None and (
            types.target.ptr_size != abi.ptr_size or types.target.byteorder != byteorder
        ):
            raise ValueError(f"types of {types.target.name} do not fit a {abi.name} kernel")
        extra_bss: list[tuple[str, int]] = []
        if types is not None:
            have = {"hz", "mp_maxcpus", "dumptid"}
            have |= {n for n, _ in self.spec.data_vars} | {n for n, _ in self.spec.bss_vars}
            extra_bss = bss_variables(types, cp_time=cp_time_symbol, existing=sorted(have))
        k = self.kernel = SynthKernel(self.spec, seed, extra_symbols, extra_bss=extra_bss)
        k.ctf_section = ctf_section
        self.kdata: KernelDataTruth | None = None
        self.kdata_va = 0
        drawn_nkpt = rng.between(2, 4)
        self.nkpt = drawn_nkpt if nkpt is None else nkpt
        self.ngrown = rng.between(1, 2)
        self.nseg = self.nkpt + self.ngrown
        self.kernphys = load_offset
        self.vm_min = abi.vm_min
        self.kernel_vm_end = abi.vm_min + self.nseg * abi.nbpdr
        self._pool: list[tuple[int, int]] = []
        self._steal()
        self._draw_ram()
        self._build_page_tables()
        self._map_kva()
        self._add_extras()
        self._build_msgbuf()
        if types is not None:
            self._build_kdata(types, cp_time_symbol)
        self._fill_kernel_vars()
        self.place(self.kernphys, k.memory_image())
        self.finish()

    # ------------------------------------------------------------------ RAM
    def _steal(self) -> None:
        """Lay out what ``pmap_bootstrap`` steals from ``phys_avail[0]`` after the kernel."""
        cursor = self.kernphys + self.kernel.image_len
        self.msgbuf_pa = cursor
        cursor += MSGBUFSIZE
        self.kstack0_pa = cursor
        cursor += KSTACK_PAGES * PAGE_SIZE
        self.segmap_pa = cursor
        cursor += PAGE_SIZE
        self.pd_pa = 0
        if self.abi.is64:
            self.pd_pa = cursor  # howmany(NKPT, NPDEPG) = 1 page directory page
            cursor += PAGE_SIZE
        self.ptaddr = cursor
        cursor += self.nkpt * PAGE_SIZE
        self.phys_avail0 = cursor

    def _draw_ram(self) -> None:
        rng = self._rng
        r0_end = self.phys_avail0 + rng.between(4, 8) * MIB + rng.below(256) * PAGE_SIZE
        low = [(0, r0_end), *spread_ranges(rng, r0_end, 2, gap_mib=(1, 40))]
        if self.abi.name == "o32":
            high_start = MIPS_KSEG0_LARGEST_PHYS + rng.below(64) * MIB
        else:
            high_start = 4 * GIB + rng.below(512) * MIB
        high_start += rng.below(256) * PAGE_SIZE
        high = (high_start, high_start + rng.between(2, 4) * MIB + rng.between(1, 255) * PAGE_SIZE)
        self.low_ranges = low
        self.high_range = high
        self.set_segments([*low, high])
        # everything below phys_avail[0] belongs to the firmware, the kernel and the
        # bootstrap allocations; the vm_page_startup pages sit at the end of the largest
        # low range
        self.reserve(0, self.phys_avail0)
        big = max(low, key=lambda r: r[1] - r[0])
        nboot = rng.between(3, 8)
        self.boot_pages_pa = big[1] - nboot * PAGE_SIZE
        self.boot_pages = nboot
        self.reserve(self.boot_pages_pa, big[1])

    def pool_segments(self) -> list[tuple[int, int]]:
        """The ranges the current allocation draws from (see :meth:`alloc_low`)."""
        return self._pool or self.segments

    def alloc_low(self, count: int = 1) -> int:
        """Allocate direct-mappable pages (``VM_FREELIST_DIRECT``): the low ranges."""
        self._pool = self.low_ranges
        try:
            return self.alloc(count)
        finally:
            self._pool = []

    def alloc_any(self, count: int = 1) -> int:
        """Allocate pages anywhere in RAM."""
        self._pool = self.segments
        try:
            return self.alloc(count)
        finally:
            self._pool = []

    def alloc_high(self, count: int = 1) -> int:
        """Allocate pages in the high range (beyond KSEG0 on 32-bit kernels)."""
        self._pool = [self.high_range]
        try:
            return self.alloc(count)
        finally:
            self._pool = []

    # ------------------------------------------------------------------ page tables
    def _build_page_tables(self) -> None:
        """``pmap_create_kernel_pagetable`` and ``pmap_growkernel``: tables full of PTE_G."""
        abi = self.abi
        ps = PAGE_SIZE
        self.new_table(self.segmap_pa)
        if abi.is64:
            self.new_table(self.pd_pa)
        self.pt_pages: list[int] = []
        for i in range(self.nseg):
            pa = self.ptaddr + i * ps if i < self.nkpt else self.alloc_low()
            self.new_table(pa)
            for j in range(abi.npte_pg):
                self.set_entry(pa, j, PTE_G)
            self.pt_pages.append(pa)
            va = abi.vm_min + i * abi.nbpdr
            if abi.is64:
                # kernel_segmap[seg] -> page directory, pde[j] -> page-table page
                self.set_entry(self.segmap_pa, abi.seg_index(va), abi.direct(self.pd_pa), 8)
                self.set_entry(self.pd_pa, abi.pde_index(va), abi.direct(pa), 8)
            else:
                self.set_entry(self.segmap_pa, abi.seg_index(va), abi.direct(pa), 4)

    def slot_va(self, slot: int) -> int:
        """The KVA of PTE number ``slot`` (counted from VM_MIN_KERNEL_ADDRESS)."""
        return self.vm_min + slot * PAGE_SIZE

    def pte_at(self, slot: int) -> int:
        """The PTE number ``slot`` of the kernel page table."""
        npg = self.abi.npte_pg
        return self.get_entry(self.pt_pages[slot // npg], slot % npg)

    def _map(self, slot: int, pa: int, flags: int) -> None:
        abi = self.abi
        npg = abi.npte_pg
        entry = abi.pa_to_pfn(pa) | flags
        self.set_entry(self.pt_pages[slot // npg], slot % npg, entry)
        self.add_leaf(
            self.slot_va(slot), PAGE_SIZE, abi.pte_to_pa(entry), entry, entry_prot(abi, entry)
        )

    def _kenter_flags(self, cca: int = MIPS_CCA_CACHED) -> int:
        """``pmap_kenter_attr``: PTE_C | PTE_D | PTE_V | PTE_G."""
        return pte_c(cca) | PTE_D | PTE_V | PTE_G

    def _leaf_flags(self) -> int:
        """A kernel mapping as ``pmap_kenter`` or ``pmap_enter`` (``init_pte_prot``) leaves it."""
        abi = self.abi
        kind = self._rng.below(5)
        base = pte_c(MIPS_CCA_CACHED) | PTE_V | PTE_G
        if kind == 0:  # managed, writable, not yet written (no PTE_D)
            return base | abi.pte_managed
        if kind == 1:  # read-only
            return base | abi.pte_ro
        if kind == 2:  # read-only, wired, managed: every software bit
            return base | abi.pte_ro | abi.pte_w | abi.pte_managed
        return base | PTE_D  # pmap_kenter

    def _map_kva(self) -> None:
        abi = self.abi
        rng = self._rng
        npg = abi.npte_pg
        nslots = self.nseg * npg
        taken: set[int] = {0, 1}  # the pcpu pages: a wired TLB entry, PTE_G in the table

        def claim(slots: list[int]) -> None:
            assert not taken.intersection(slots)
            taken.update(slots)

        # two pages straddling the end of a page-table page
        seam_seg = rng.below(self.nseg - 1)
        self.seam_slot = (seam_seg + 1) * npg - 1
        claim([self.seam_slot, self.seam_slot + 1])
        self._map(self.seam_slot, self.alloc_any(), self._kenter_flags())
        self._map(self.seam_slot + 1, self.alloc_any(), self._kenter_flags())
        # a contiguous run onto the high range (reachable only through the page table on
        # 32-bit kernels): pmap_qenter of a multi-page buffer
        self.run_len = rng.between(4, 12)
        while True:
            start = rng.between(2, nslots - self.run_len - 1)
            if not taken.intersection(range(start, start + self.run_len)):
                break
        self.run_slot = start
        claim(list(range(start, start + self.run_len)))
        self.run_pa = self.alloc_high(self.run_len)
        for i in range(self.run_len):
            self._map(start + i, self.run_pa + i * PAGE_SIZE, self._kenter_flags())
        # uncached device registers outside RAM (pmap_kenter_device)
        free = [s for s in range(nslots) if s not in taken]
        picks = rng.sample(free, 80 + rng.below(60))
        dev = picks.pop()
        if dev + 1 in taken or dev + 1 >= nslots or dev + 1 in picks:
            dev_slots = [dev]
        else:
            dev_slots = [dev, dev + 1]
        claim(dev_slots)
        self.device_slots = dev_slots
        for i, slot in enumerate(dev_slots):
            self._map(slot, DEVICE_PA + i * PAGE_SIZE, self._kenter_flags(MIPS_CCA_UNCACHED))
        picks = [s for s in picks if s not in taken]
        # an alias of the kernel's first .data page
        self.alias_slot = picks.pop()
        claim([self.alias_slot])
        self.alias_pa = self.kernphys + self.kernel.data_off
        self._map(self.alias_slot, self.alias_pa, self._kenter_flags())
        # PTEs into physical holes
        self.hole_slots: list[int] = []
        for target in self._hole_targets():
            slot = picks.pop()
            claim([slot])
            self._map(slot, target, self._kenter_flags())
            self.hole_slots.append(slot)
        # pages marked PG_NODUMP
        self.nodump_slots: list[int] = []
        for _ in range(2):
            slot = picks.pop()
            claim([slot])
            pa = self.alloc_any()
            self.nodump.add(pa >> PAGE_SHIFT)
            self._map(slot, pa, self._kenter_flags())
            self.nodump_slots.append(slot)
        # o32: a frame above 4 GiB (PFN bits 26-28), beyond vm_paddr_t
        self.above4g_slot = -1
        if abi.name == "o32":
            self.above4g_slot = picks.pop()
            claim([self.above4g_slot])
            self._map(self.above4g_slot, (1 << 32) + self.kernphys, self._kenter_flags())
        # one slot that stays invalid (PTE_G only), for the samples
        self.free_slot = picks.pop()
        claim([self.free_slot])
        # ordinary kmem pages
        self.kmem_slots = sorted(picks)
        claim(self.kmem_slots)
        for slot in self.kmem_slots:
            self._map(slot, self.alloc_any(), self._leaf_flags())

    def _hole_targets(self) -> list[int]:
        """Physical pages outside RAM: just below the third range (libkvm's hole-blind bit id
        gives it the last page of the second range, which is dumped), mid-hole, past RAM."""
        (_, e0), (s1, e1), (s2, _) = self.low_ranges
        self.bait_pa = s2 - PAGE_SIZE
        self.quirk_alias_pa = e1 - PAGE_SIZE
        self.use(self.quirk_alias_pa)
        self.mid_hole_pa = (e0 + (s1 - e0) // 2) & ~(PAGE_SIZE - 1)
        self.past_ram_pa = self.max_pa + 3 * MIB
        out = [self.bait_pa, self.mid_hole_pa, self.past_ram_pa]
        assert not any(self.dumpable(pa) for pa in out)
        return out

    # ------------------------------------------------------------------ extras
    def _add_extras(self) -> None:
        """Pages added with ``dump_add_page``: vm_page_startup's and UMA's."""
        rng = self._rng
        first = self.boot_pages_pa >> PAGE_SHIFT
        self.extras.update(range(first, first + self.boot_pages))
        self.uma_pages: list[int] = []
        for _ in range(rng.between(6, 14)):
            # uma_small_alloc: VM_FREELIST_DIRECT pages (any page on n64)
            pa = self.alloc_any() if self.abi.is64 and rng.chance(1, 3) else self.alloc_low()
            self.uma_pages.append(pa)
            self.extras.add(pa >> PAGE_SHIFT)
        self.extras.add(self.quirk_alias_pa >> PAGE_SHIFT)
        # a low RAM page nothing maps or marks (for the "not dumped" samples)
        self.undumped_pa = self.alloc_low()

    # ------------------------------------------------------------------ msgbuf
    def _build_msgbuf(self) -> None:
        """``msgbufinit``: the ring at the start of the stolen area, struct msgbuf at its end."""
        abi = self.abi
        k = self.kernel
        rng = self._rng
        text = boot_messages(
            rng,
            k,
            physmem=self.physmem,
            avail=self.physmem - self.phys_avail0,
            cpu=f"MIPS{'64' if abi.elfclass == ew.ELFCLASS64 else '32'} 24Kf (Malta) "
            f"{abi.name} rev 1.{rng.below(10)}",
            timer='Timecounter "MIPS32" frequency 100000000 Hz quality 800',
        )
        struct_size = MSGBUF_STRUCT_SIZE[abi.ptr_size]
        msg_size = MSGBUFSIZE - struct_size
        if len(text) > msg_size:
            text = text[:msg_size]
        self.msgbuf = text.ljust(msg_size, b"\0")
        self.msgbuf_struct_pa = self.msgbuf_pa + msg_size
        rseq = text.find(b"panic:")
        rseq = 0 if rseq < 0 else rseq
        spec = self.spec
        fields = (
            spec.word(abi.direct(self.msgbuf_pa))
            + spec.array(
                [MSG_MAGIC, msg_size, len(text), rseq, sum(text) & 0xFFFFFFFF, msg_size * 16],
                4,
            )
            + spec.int_bytes(-1, 4, signed=True)
        )
        self.msgbuf_struct = fields.ljust(struct_size, b"\0")
        self.place(self.msgbuf_pa, self.msgbuf + self.msgbuf_struct)

    # ------------------------------------------------------------------ kernel data
    def _grow_page_table(self) -> int:
        """``pmap_growkernel`` once more: a page-table page past the others; its first VA."""
        abi = self.abi
        pa = self.alloc_low()
        self.new_table(pa)
        for j in range(abi.npte_pg):
            self.set_entry(pa, j, PTE_G)
        va = self.kernel_vm_end
        self.pt_pages.append(pa)
        if abi.is64:
            self.set_entry(self.pd_pa, abi.pde_index(va), abi.direct(pa), 8)
        else:
            self.set_entry(self.segmap_pa, abi.seg_index(va), abi.direct(pa), 4)
        self.nseg += 1
        self.kernel_vm_end += abi.nbpdr
        return va

    def _build_kdata(self, types: LayoutTruth, cp_time_symbol: bool) -> None:
        """The kernel-data arena (after every random draw of the default machine)."""
        k = self.kernel
        arena_va = self._grow_page_table()
        self.kdata_va = arena_va
        first_slot = (arena_va - self.vm_min) // PAGE_SIZE

        def map_page(va: int) -> int:
            pa = self.alloc_any()
            self._map(first_slot + (va - arena_va) // PAGE_SIZE, pa, self._kenter_flags())
            return pa

        arena = PageArena(arena_va, self.abi.npte_pg, PAGE_SIZE, map_page)
        self.kdata = install_kernel_data(
            k, types, arena, self.place, seed=self.seed,
            msgbuf_ring_va=self.abi.direct(self.msgbuf_pa), msgbuf=self.msgbuf,
            cp_time_symbol=cp_time_symbol,
        )

    def _fill_kernel_vars(self) -> None:
        abi = self.abi
        k = self.kernel
        k.set_int("kernel_vm_end", self.kernel_vm_end)
        k.set_int("physmem", self.physmem >> PAGE_SHIFT, signed=True)
        k.set_dump_avail(self.segments)
        k.set_int("kernel_segmap", abi.direct(self.segmap_pa))
        if self.kdata is None:  # with kernel data msgbufp is the arena's struct msgbuf
            k.set_int("msgbufp", abi.direct(self.msgbuf_struct_pa))
        k.finalize()

    # ------------------------------------------------------------------ views
    def pte_section(self) -> bytes:
        """The minidump's PTE section: the page-table page of every NBPDR step, in order."""
        return b"".join(bytes(self.tables[pa]) for pa in self.pt_pages)

    def minidump_pfns(self) -> list[int]:
        """The sorted page frame numbers ``minidumpsys`` writes.

        Every valid PTE's page (its ``TLBLO_PTE_TO_PA``, truncated to ``vm_paddr_t``) if
        dumpable, every dumpable page below ``phys_avail[0]``, the ``dump_add_page`` extras;
        then ``is_dumpable`` drops ``PG_NODUMP`` pages and anything outside ``dump_avail``.
        """
        abi = self.abi
        marked: set[int] = set()
        for leaf in self.leaves:
            pa = abi.kernel_pte_to_pa(leaf.entry)
            if self.dumpable(pa):
                marked.add(pa >> PAGE_SHIFT)
        marked.update(self.ram_pfns_in(0, self.phys_avail0))
        marked |= {pfn for pfn in self.extras if self.dumpable(pfn << PAGE_SHIFT)}
        marked -= self.nodump
        return sorted(marked)

    def direct_ranges(self) -> list[tuple[int, int, int]]:
        """The unmapped windows as ``(va_start, va_end, pa_start)``: KSEG0 and KSEG1 (the
        compatibility ones on n64) and, on n64, XKPHYS with each of its 8 cache attributes."""
        abi = self.abi
        win = MIPS_KSEG0_LARGEST_PHYS
        out = [
            (abi.kseg0(0), abi.kseg0(0) + win, 0),
            (abi.kseg1(0), abi.kseg1(0) + win, 0),
        ]
        if abi.is64:
            out += [(abi.xkphys(0, cca), abi.xkphys(0, cca) + XKPHYS_SPAN, 0) for cca in range(8)]
        return out
