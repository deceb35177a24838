"""The synthetic FreeBSD/riscv machine (RV64, Sv39 or Sv48): RAM, page tables, kernel.

Constants come from sys/riscv/include/vmparam.h (``KERNBASE`` = ``VM_MIN_KERNEL_ADDRESS``
= 0xffffffc000000000, ``VM_MAX_KERNEL_ADDRESS`` 0xffffffc800000000, the direct map
0xffffffd000000000 .. 0xfffffff000000000 -- "the kernel map layout in SV48 mode is
currently identical to that used in SV39 mode") and sys/riscv/include/pte.h (V R W X U G
A D, ``PTE_SW_WIRED`` bit 8, ``PTE_SW_MANAGED`` bit 9, the PPN from bit 10, bits 54-63
"reserved for future use"; later kernels put the Svpbmt memory types ``PTE_MA_NC`` =
1 << 61 and ``PTE_MA_IO`` = 2 << 61 there).

The machine of a seed:

* RAM: four ``dump_avail`` ranges above ``ram_base`` (default 0x80000000, where RAM
  starts on QEMU's virt board and most boards; the first 2 or 4 MiB hold the SBI
  firmware and are not in ``dump_avail``): the kernel's range, a range built around a
  2 MiB boundary and two ranges of a few MiB.  ``dmap_phys_base`` = ``ram_base``
  (``pmap_bootstrap_dmap``: ``min_pa & ~L1_OFFSET``), ``dmap_phys_max`` = end of RAM.
* The page tables: Sv39 (root = L1 table) or Sv48 (root = L0 table, the kernel map
  below its entry 511); ``pmap_mode`` is 0 (``PMAP_MODE_SV39``) or 1 (``PMAP_MODE_SV48``).
* The kernel, linked at ``KERNBASE`` and loaded at a 2 MiB-aligned ``kernphys``, mapped
  by megapages (L2 leaves ``PTE_KERN | PTE_X``: readable, writable, executable) as locore
  does.  After them: an L3 table with the message buffer and "kmem" pages of every kind
  (read-write, read-only, executable, RWX, wired/managed software bits, Svpbmt ``NC`` and
  ``IO`` memory types and reserved bits 54-60 set above the PPN, L3 entries onto
  physical holes, two ``PG_NODUMP`` pages, a PTE whose valid bit alone is clear); an
  invalid L2 entry; a megapage whose 2 MiB
  start inside a RAM range and run past its end; an L3 table with a physically
  contiguous run; one to three invalid L2 entries up to ``kernel_vm_end``.
* The direct map: gigapages (L1 leaves ``PTE_KERN``) over ``[dmap_phys_base,
  dmap_phys_max)``; outside the minidump's page-table section, so readers translate it
  with ``dmapphys``.
* Pages the kernel adds with ``vm_page_dump_add`` (UMA, the message buffer).  The pages
  behind the L3 entries with bits 54-63 set are among them: ``cpu_minidumpsys`` takes the
  physical address of an L3 entry as ``(l3e >> PTE_PPN0_S) * PAGE_SIZE`` without masking
  those bits, so its own page-table pass never marks such a page.
* Only with ``types`` (after every random draw of the machine above): the kernel-data
  variables of :mod:`pykvm.synth.kerneldata` in ``.bss`` (inside the kernel's megapages)
  and a kernel-data arena at the old ``kernel_vm_end``: one L3 table of ``PTE_KERN``
  pages allocated as the data needs them, followed by one invalid L2 entry;
  ``kernel_vm_end`` moves past both, so both minidump versions dump the arena's pages.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from .._prng import Rng
from ..cmodel import LayoutTruth
from ..elfwriter import ELFCLASS64, ELFDATA2LSB, EM_RISCV
from ..kernel import SymbolEntry, SynthKernel
from ..kerneldata import KernelDataTruth, PageArena, bss_variables, install_kernel_data
from ..machine import Level, Machine, RadixTables, boot_messages, spread_ranges
from ..spec import KernelSpec
from ..truth import VM_PROT_EXECUTE, VM_PROT_READ, VM_PROT_WRITE

MIB = 1 << 20
GIB = 1 << 30
PAGE_SIZE = 4096
PAGE_SHIFT = 12

VM_MIN_KERNEL_ADDRESS = 0xFFFFFFC000000000
VM_MAX_KERNEL_ADDRESS = 0xFFFFFFC800000000
KERNBASE = VM_MIN_KERNEL_ADDRESS
DMAP_MIN_ADDRESS = 0xFFFFFFD000000000
DMAP_MAX_ADDRESS = 0xFFFFFFF000000000

L0_SHIFT = 39
L1_SHIFT = 30
L2_SHIFT = 21
L2_SIZE = 1 << L2_SHIFT
L1_SIZE = 1 << L1_SHIFT
Ln_ENTRIES = 512

PTE_V = 1 << 0
PTE_R = 1 << 1
PTE_W = 1 << 2
PTE_X = 1 << 3
PTE_U = 1 << 4
PTE_G = 1 << 5
PTE_A = 1 << 6
PTE_D = 1 << 7
PTE_SW_WIRED = 1 << 8
PTE_SW_MANAGED = 1 << 9
PTE_RWX = PTE_R | PTE_W | PTE_X
PTE_RX = PTE_R | PTE_X
PTE_KERN = PTE_V | PTE_R | PTE_W | PTE_A | PTE_D
PTE_PPN0_S = 10
PTE_PPN1_S = 19
PTE_HI_MASK = 0xFFC0000000000000
PTE_MA_NC = 1 << 61
PTE_MA_IO = 2 << 61
PTE_RESERVED_54 = 1 << 54
PTE_RESERVED_58 = 1 << 58

PMAP_MODE_SV39 = 0
PMAP_MODE_SV48 = 1

#: the kinds of kernel L3 entries in the kmem table: name -> flags
KERNEL_PTES: dict[str, int] = {
    "rw": PTE_KERN,
    "rw-wired": PTE_KERN | PTE_SW_WIRED,
    "rw-managed": PTE_KERN | PTE_SW_MANAGED | PTE_G,
    "ro": PTE_V | PTE_R | PTE_A,
    "rx": PTE_V | PTE_R | PTE_X | PTE_A | PTE_SW_WIRED,
    "rwx": PTE_KERN | PTE_X,
    "nc": PTE_KERN | PTE_MA_NC,
    "reserved": PTE_KERN | PTE_RESERVED_54 | PTE_RESERVED_58 | PTE_SW_WIRED,
    "nc-ro-reserved": PTE_V | PTE_R | PTE_A | PTE_MA_NC | (1 << 60) | (1 << 55),
}
#: the kinds whose PTE has bits above the PPN (54-63) set
HIGH_BIT_KINDS = ("nc", "reserved", "nc-ro-reserved")


def pte(pa: int, flags: int) -> int:
    """A leaf or table entry for physical ``pa``: ``((pa >> 12) << PTE_PPN0_S) | flags``."""
    return ((pa >> PAGE_SHIFT) << PTE_PPN0_S) | flags


def pte_pa(entry: int) -> int:
    """The physical address an entry holds: PPN bits 10-53 (pykvm's rule, formats.md 14)."""
    return ((entry & ~PTE_HI_MASK) >> PTE_PPN0_S) << PAGE_SHIFT


def entry_prot(entry: int) -> int:
    """``VM_PROT_*`` of a leaf: READ, WRITE with ``PTE_W``, EXECUTE with ``PTE_X``."""
    prot = VM_PROT_READ
    if entry & PTE_W:
        prot |= VM_PROT_WRITE
    if entry & PTE_X:
        prot |= VM_PROT_EXECUTE
    return prot


#: the RV64 target: ELF64 LE ``EM_RISCV`` ``ET_EXEC`` linked at ``KERNBASE``; ``e_flags``
#: ``EF_RISCV_RVC`` (kernels are built for rv64imac/rv64gc with the soft-float lp64 ABI)
SPEC = KernelSpec(
    arch="riscv",
    elfclass=ELFCLASS64,
    data=ELFDATA2LSB,
    e_machine=EM_RISCV,
    e_flags=0x1,
    kernbase=KERNBASE,
    load_offset=0,
    page_size=PAGE_SIZE,
    machine="riscv",
    machine_arch="riscv64",
    data_vars=(("pmap_mode", 4),),
    bss_vars=(("dmap_phys_base", 8), ("dmap_phys_max", 8), ("dmap_max_addr", 8)),
    func_prologue=b"\x41\x11\x06\xe4",  # c.addi sp,sp,-16; c.sdsp ra,8(sp)
)


def _round_up(value: int, boundary: int) -> int:
    return -(-value // boundary) * boundary


class RiscvMachine(Machine):
    """The synthetic riscv machine of one seed (see the module docstring for the layout).

    Attributes used by the writers and the ground truth: ``sv48``, ``pmap_mode``,
    ``segments``, ``tables``, ``pt`` (root ``pt.root``), ``leaves``, ``extras``,
    ``nodump``, ``memory``, ``kernel``, ``msgbuf``, ``kernphys``, ``dmap_phys_base``,
    ``dmap_phys_max``, ``kernel_vm_end``; sample addresses ``msgbuf_va``, ``kmem_va``,
    ``free_kmem_va``, ``kind_vas`` (kind name -> va), ``hole_vas``, ``nodump_vas``,
    ``invalid_l2_va``, ``mega_va``/``mega_pa``/``mega_ram``, ``run_va``/``run_len``; with
    ``types`` also ``kdata`` (the :class:`~pykvm.synth.kerneldata.KernelDataTruth`, else
    None) and ``kdata_va`` (the arena's first address).
    """

    def __init__(
        self,
        seed: int = 0,
        *,
        sv48: bool = False,
        ram_base: int = 0x80000000,
        extra_symbols: int = 0,
        types: LayoutTruth | None = None,
        cp_time_symbol: bool = False,
        ctf_section: Callable[[Sequence[SymbolEntry]], bytes] | None = None,
    ) -> None:
        """Build the machine of ``seed`` (no files are written here).

        ``types`` (the kernel's type layout) adds the kernel data of
        :mod:`pykvm.synth.kerneldata` (see the module docstring); ``cp_time_symbol`` also
        defines the old ``cp_time`` array; ``ctf_section`` makes the kernel ELF carry a
        ``.SUNW_ctf`` section (called with the symbol table).  Without ``types`` the
        machine is the one built before these options existed.
        """
        if ram_base < 0 or ram_base % L1_SIZE or ram_base >= 1 << 46:
            raise ValueError("ram_base must be a multiple of 1 GiB below 64 TiB")
        super().__init__(seed, Rng(seed, "riscv-phys"), page_size=PAGE_SIZE, byteorder="little")
        rng = self._rng
        self.sv48 = sv48
        self.pmap_mode = PMAP_MODE_SV48 if sv48 else PMAP_MODE_SV39
        extra_bss: list[tuple[str, int]] = []
        if types is not None:
            have = {"hz", "mp_maxcpus", "dumptid"} | {n for n, _ in SPEC.data_vars}
            extra_bss = bss_variables(types, cp_time=cp_time_symbol, existing=sorted(have))
        k = self.kernel = SynthKernel(SPEC, seed, extra_symbols, extra_bss=extra_bss)
        k.ctf_section = ctf_section
        self.kdata: KernelDataTruth | None = None
        self.kdata_va = 0

        # ---- RAM
        self.kernphys = ram_base + rng.between(1, 2) * 2 * MIB
        nmega = -(-k.image_len // L2_SIZE)
        r0_end = self.kernphys + nmega * L2_SIZE + rng.between(2, 5) * MIB
        r0_end += rng.between(1, 255) * PAGE_SIZE
        a = rng.between(1, 4) * MIB + rng.below(256) * PAGE_SIZE
        b = rng.between(1, 255) * PAGE_SIZE
        boundary = _round_up(r0_end + rng.between(1, 48) * MIB + a, L2_SIZE)
        r1 = (boundary - a, boundary + b)
        self.set_segments(
            [
                (self.kernphys, r0_end),
                r1,
                *spread_ranges(rng, boundary + L2_SIZE, 2, page_size=PAGE_SIZE),
            ]
        )
        self.dmap_phys_base = ram_base
        self.dmap_phys_max = self.max_pa
        self.mega_pa = boundary
        self.mega_ram = b
        self.reserve(self.kernphys, self.kernphys + k.image_len)
        self.reserve(boundary, r1[1])

        # ---- page tables
        levels = [Level(L1_SHIFT, 9), Level(L2_SHIFT, 9), Level(PAGE_SHIFT, 9)]
        if sv48:
            levels.insert(0, Level(L0_SHIFT, 9))
        self.l1_level = 1 if sv48 else 0
        self.pt = RadixTables(self, levels, lambda child, level: pte(child, PTE_V))
        self._build_kernel_map(nmega)
        self._build_dmap()
        for _ in range(rng.between(6, 16)):
            self.extras.add(self.alloc() >> PAGE_SHIFT)
        if types is not None:
            self._build_kdata(types, cp_time_symbol)
        self._fill_kernel_vars()
        self.place(self.kernphys, k.memory_image())
        self.finish()

    # ------------------------------------------------------------------ helpers
    def _map(self, va: int, pa: int, flags: int) -> None:
        entry = pte(pa, flags)
        self.pt.map(va, pa, self.l1_level + 2, entry, entry_prot(entry))

    def _map_mega(self, va: int, pa: int, flags: int) -> None:
        entry = pte(pa, flags)
        self.pt.map(va, pa, self.l1_level + 1, entry, entry_prot(entry))

    def _build_kernel_map(self, nmega: int) -> None:
        k = self.kernel
        rng = self._rng
        for i in range(nmega):
            self._map_mega(KERNBASE + i * L2_SIZE, self.kernphys + i * L2_SIZE, PTE_KERN | PTE_X)
        # the L3 table after the kernel: the message buffer, then kmem
        table_va = KERNBASE + nmega * L2_SIZE
        self.msgbuf = boot_messages(
            rng,
            k,
            physmem=self.physmem,
            avail=self.physmem - nmega * L2_SIZE,
            cpu="SiFive U74 (rv64imafdc_zba_zbb)",
            timer='Event timer "RISC-V Timer" frequency 10000000 Hz quality 1000',
        )
        npages = -(-len(self.msgbuf) // PAGE_SIZE)
        self.msgbuf_pa = self.alloc(npages)
        self.place(self.msgbuf_pa, self.msgbuf)
        self.msgbuf_va = table_va
        for i in range(npages):
            self.extras.add((self.msgbuf_pa >> PAGE_SHIFT) + i)
            self._map(table_va + i * PAGE_SIZE, self.msgbuf_pa + i * PAGE_SIZE, PTE_KERN)
        self.kmem_va = table_va
        slots = rng.sample(range(npages + 1, Ln_ENTRIES), 40)
        self.kind_vas: dict[str, int] = {}
        for name, flags in KERNEL_PTES.items():
            pa = self.alloc()
            if name in HIGH_BIT_KINDS:
                self.extras.add(pa >> PAGE_SHIFT)
            va = table_va + slots.pop() * PAGE_SIZE
            self._map(va, pa, flags)
            self.kind_vas[name] = va
        self.hole_vas: list[int] = []
        for i, target in enumerate(self._hole_targets()):
            va = table_va + slots.pop() * PAGE_SIZE
            self._map(va, target, PTE_KERN | (PTE_MA_IO if i == 0 else 0))
            self.hole_vas.append(va)
        self.nodump_vas: list[int] = []
        for _ in range(2):
            pa = self.alloc()
            self.nodump.add(pa >> PAGE_SHIFT)
            va = table_va + slots.pop() * PAGE_SIZE
            self._map(va, pa, PTE_KERN)
            self.nodump_vas.append(va)
        self.free_kmem_va = table_va + slots.pop() * PAGE_SIZE
        # a PTE whose valid bit alone was cleared (an entry being replaced)
        self.stale_va = table_va + slots.pop() * PAGE_SIZE
        self.pt.set(self.stale_va, self.l1_level + 2, pte(self.alloc(), PTE_KERN & ~PTE_V))
        for slot in slots[: rng.between(8, 24)]:
            flags = rng.choice((PTE_KERN, PTE_KERN | PTE_G))
            self._map(table_va + slot * PAGE_SIZE, self.alloc(), flags)
        # an invalid L2 entry, a megapage past the end of a RAM range
        self.invalid_l2_va = table_va + L2_SIZE
        self.pt.set(self.invalid_l2_va, self.l1_level + 1, 0)
        self.mega_va = table_va + 2 * L2_SIZE
        self._map_mega(self.mega_va, self.mega_pa, PTE_KERN | PTE_SW_WIRED)
        # a table with a contiguous run
        run_table = table_va + 3 * L2_SIZE
        self.run_len = rng.between(4, 12)
        run_slot = rng.below(Ln_ENTRIES - self.run_len)
        run_pa = self.alloc(self.run_len)
        self.run_va = run_table + run_slot * PAGE_SIZE
        for i in range(self.run_len):
            self._map(self.run_va + i * PAGE_SIZE, run_pa + i * PAGE_SIZE, PTE_KERN | PTE_G)
        taken = set(range(run_slot, run_slot + self.run_len))
        free = [s for s in range(Ln_ENTRIES) if s not in taken]
        for slot in rng.sample(free, rng.between(3, 8)):
            self._map(run_table + slot * PAGE_SIZE, self.alloc(), PTE_KERN)
        end = run_table + L2_SIZE
        for _ in range(rng.between(1, 3)):
            self.pt.set(end, self.l1_level + 1, 0)
            end += L2_SIZE
        self.kernel_vm_end = end

    def _hole_targets(self) -> list[int]:
        """Physical pages outside RAM inside the direct map's span: just below a range,
        mid-hole, and past the end of RAM."""
        out = []
        for (_, e0), (s1, _) in zip(self.segments, self.segments[1:], strict=False):
            out += [s1 - PAGE_SIZE, (e0 + (s1 - e0) // 2) & ~(PAGE_SIZE - 1)]
        out = out[:3]
        out.append(self.max_pa + 3 * MIB)
        return [pa for pa in out if not self.dumpable(pa)]

    def _build_dmap(self) -> None:
        """Gigapages over ``[dmap_phys_base, dmap_phys_max)``; no leaf is recorded."""
        pa = self.dmap_phys_base
        while pa < self.dmap_phys_max:
            self.pt.set(self.dmap(pa), self.l1_level, pte(pa, PTE_KERN))
            pa += L1_SIZE

    def _build_kdata(self, types: LayoutTruth, cp_time_symbol: bool) -> None:
        """The kernel-data arena at ``kernel_vm_end`` (after every random draw)."""
        k = self.kernel
        arena_va = self.kernel_vm_end
        self.kdata_va = arena_va

        def map_page(va: int) -> int:
            pa = self.alloc()
            self._map(va, pa, PTE_KERN)
            return pa

        arena = PageArena(arena_va, Ln_ENTRIES, PAGE_SIZE, map_page)
        self.kdata = install_kernel_data(
            k, types, arena, self.place, seed=self.seed,
            msgbuf_ring_va=self.msgbuf_va, msgbuf=self.msgbuf,
            cp_time_symbol=cp_time_symbol,
        )
        # one invalid L2 entry after the arena's table, then kernel_vm_end
        self.pt.set(arena_va + L2_SIZE, self.l1_level + 1, 0)
        self.kernel_vm_end = arena_va + 2 * L2_SIZE

    def _fill_kernel_vars(self) -> None:
        k = self.kernel
        k.set_int("pmap_mode", self.pmap_mode)
        k.set_int("kernel_vm_end", self.kernel_vm_end)
        k.set_int("physmem", self.physmem >> PAGE_SHIFT, signed=True)
        k.set_dump_avail(self.segments)
        k.set_int("dmap_phys_base", self.dmap_phys_base)
        k.set_int("dmap_phys_max", self.dmap_phys_max)
        k.set_int("dmap_max_addr", self.dmap(self.dmap_phys_max))
        k.finalize()

    # ------------------------------------------------------------------ views
    def phys_in_dmap(self, pa: int) -> bool:
        """``PHYS_IN_DMAP(pa)``."""
        return self.dmap_phys_base <= pa < self.dmap_phys_max

    def is_dumpable(self, pa: int) -> bool:
        """``vm_phys_is_dumpable(pa)``: RAM (dump_avail) and not ``PG_NODUMP``."""
        return self.dumpable(pa) and (pa >> PAGE_SHIFT) not in self.nodump

    def dmap(self, pa: int) -> int:
        """``PHYS_TO_DMAP(pa)``."""
        return DMAP_MIN_ADDRESS + pa - self.dmap_phys_base
