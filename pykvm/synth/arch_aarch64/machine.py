"""The synthetic FreeBSD/arm64 machine: RAM, the kernel's translation tables, the kernel.

Constants come from sys/arm64/include/vmparam.h (``VM_MIN_KERNEL_ADDRESS`` =
``KERNBASE`` = 0xffff000000000000, the direct map 0xffffa00000000000 ..
0xffffff0000000000) and sys/arm64/include/pte.h (descriptor bits, the 4 KiB and 16 KiB
granule geometries); the attribute sets of each kind of kernel mapping follow
sys/arm64/arm64/pmap.c (``pmap_kenter``: ``ATTR_AF | ATTR_SH(IS) | ATTR_S1_AP(RW) |
ATTR_S1_XN | ATTR_S1_IDX(mode)``; ``pmap_enter`` on the kernel pmap: ``ATTR_S1_UXN``
always, ``ATTR_S1_XN`` without execute, ``ATTR_S1_AP(RO)`` without write and, for managed
pages, ``ATTR_SW_MANAGED`` plus ``ATTR_SW_DBM`` when writable -- with ``ATTR_S1_AP(RO)``
still set while the page is clean).

The machine of a seed, ``L2`` = 2 MiB (4 KiB granule) or 32 MiB (16 KiB granule):

* RAM: four ``dump_avail`` ranges above ``ram_base`` (the physical address of the first
  L1 block of RAM, default 1 GiB for 4 KiB pages as on QEMU's virt board and many SoCs,
  64 GiB for 16 KiB pages, where an L1 block spans 64 GiB): the kernel's range
  (starting a seeded distance above ``ram_base``, so the direct map's first bytes are
  a hole), a range built around an L2 boundary, and two ranges of a few MiB; with
  ``l1_block`` one more range of 1-3 MiB inside the physical GiB the L1 block maps.
  ``dmap_phys_base`` = ``ram_base`` (``pmap_bootstrap_dmap``: ``min_pa & ~L1_OFFSET``),
  ``dmap_phys_max`` = the end of the last range.
* The kernel, linked at ``KERNBASE`` (its ELF header is the first mapped page), loaded
  at a 2 MiB-aligned ``kernphys`` and mapped by L3 pages: text read-only and executable
  at EL1 (``ATTR_S1_AP(RO) | ATTR_S1_UXN | ATTR_S1_GP``), rodata read-only and
  ``ATTR_S1_XN``, data and bss read-write and ``ATTR_S1_XN``; the message buffer is
  mapped right after the image.
* After the image's L2 steps: an L2 block whose physical 2/32 MiB starts inside a RAM
  range and runs past its end; an invalid L2 entry; a "kmem" L3 table (random pages with
  every kind of kernel attribute set -- ``pmap_kenter`` RW, managed clean pages with
  ``ATTR_S1_AP(RO) | ATTR_SW_DBM``, managed dirty and read-only pages, executable module
  text, an RWX page --, L3 entries onto physical holes, including a device mapping, and
  two pages the kernel flagged ``PG_NODUMP``, and one entry caught in break-before-make:
  ``ATTR_DESCR_VALID`` cleared, address and attributes kept); a second L3 table with a
  physically contiguous run and, with 4 KiB pages, an ``ATTR_CONTIGUOUS`` (L3C) range of
  16 pages; then one to three invalid L2 entries up to ``kernel_vm_end``.
* With ``l1_block`` (4 KiB granule only: FreeBSD has no L1 blocks with 16 KiB pages
  before FEAT_LPA2): an L1 block at ``KERNBASE + 1 GiB``, then ``kernel_vm_end`` moves
  past one more L2 table at ``KERNBASE + 2 GiB`` holding a few pages.
* The direct map at ``DMAP_MIN_ADDRESS``: L1 blocks (4 KiB granule) or L2 blocks (16 KiB
  granule) covering the RAM ranges; it lies outside the minidump's page-table section and
  readers translate it arithmetically with ``dmapphys``.
* Pages reachable only through the direct map that the kernel adds with
  ``vm_page_dump_add`` (UMA small allocations) and the message buffer.
* Only with ``types`` (after every random draw of the machine above): the kernel-data
  variables of :mod:`pykvm.synth.kerneldata` in ``.bss`` and a kernel-data arena at the
  old ``kernel_vm_end``: one L3 table of ``pmap_kenter`` pages (RW, XN) allocated as the
  data needs them, followed by one invalid L2 entry; ``kernel_vm_end`` moves past both,
  so every minidump version dumps the arena's pages (valid L3 entries below
  ``kernel_vm_end``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .._prng import Rng
from ..cmodel import LayoutTruth
from ..elfwriter import ELFCLASS64, ELFDATA2LSB, EM_AARCH64
from ..kernel import SymbolEntry, SynthKernel
from ..kerneldata import KernelDataTruth, PageArena, bss_variables, install_kernel_data
from ..machine import Level, Machine, RadixTables, boot_messages, spread_ranges
from ..spec import KernelSpec
from ..truth import VM_PROT_EXECUTE, VM_PROT_READ, VM_PROT_WRITE

MIB = 1 << 20
GIB = 1 << 30

VM_MIN_KERNEL_ADDRESS = 0xFFFF000000000000
VM_MAX_KERNEL_ADDRESS = 0xFFFF008000000000
KERNBASE = VM_MIN_KERNEL_ADDRESS
DMAP_MIN_ADDRESS = 0xFFFFA00000000000
DMAP_MAX_ADDRESS = 0xFFFFFF0000000000

# ---- descriptor bits (sys/arm64/include/pte.h; ATTR_SW_DBM is pmap.c's alias of ATTR_DBM)
ATTR_DESCR_MASK = 3
L0_TABLE = L1_TABLE = L2_TABLE = 3
L1_BLOCK = L2_BLOCK = 1
L3_PAGE = 3
ATTR_MASK = 0xFFFC000000000FFF
ATTR_S1_IDX_SHIFT = 2
ATTR_S1_AP_RO = 1 << 7  # ATTR_S1_AP(ATTR_S1_AP_RO)
ATTR_SH_IS = 3 << 8
ATTR_AF = 1 << 10
ATTR_DEFAULT = ATTR_AF | ATTR_SH_IS  # 0x700
ATTR_S1_GP = 1 << 50
ATTR_SW_DBM = 1 << 51
ATTR_CONTIGUOUS = 1 << 52
ATTR_S1_PXN = 1 << 53
ATTR_S1_UXN = 1 << 54
ATTR_S1_XN = ATTR_S1_PXN | ATTR_S1_UXN
ATTR_SW_WIRED = 1 << 55
ATTR_SW_MANAGED = 1 << 56

# VM_MEMATTR_* of arm64 (sys/arm64/include/vm.h): MAIR indexes
VM_MEMATTR_DEVICE = 0
VM_MEMATTR_UNCACHEABLE = 1
VM_MEMATTR_WRITE_BACK = 2


def attr_idx(mode: int) -> int:
    """``ATTR_S1_IDX(mode)``."""
    return mode << ATTR_S1_IDX_SHIFT


#: the attributes of the kind of kernel mapping pmap.c creates, by name
KENTER = ATTR_DEFAULT | attr_idx(VM_MEMATTR_WRITE_BACK) | ATTR_S1_XN
KERNEL_ATTRS: dict[str, int] = {
    "kenter": KENTER,
    "kenter-wired": KENTER | ATTR_SW_WIRED,
    "managed-clean": ATTR_DEFAULT
    | attr_idx(VM_MEMATTR_WRITE_BACK)
    | ATTR_S1_XN
    | ATTR_SW_MANAGED
    | ATTR_SW_DBM
    | ATTR_S1_AP_RO,
    "managed-dirty": ATTR_DEFAULT
    | attr_idx(VM_MEMATTR_WRITE_BACK)
    | ATTR_S1_XN
    | ATTR_SW_MANAGED
    | ATTR_SW_DBM
    | ATTR_SW_WIRED,
    "managed-ro": ATTR_DEFAULT
    | attr_idx(VM_MEMATTR_WRITE_BACK)
    | ATTR_S1_XN
    | ATTR_SW_MANAGED
    | ATTR_S1_AP_RO,
    "module-text": ATTR_DEFAULT
    | attr_idx(VM_MEMATTR_WRITE_BACK)
    | ATTR_S1_UXN
    | ATTR_S1_AP_RO
    | ATTR_S1_GP
    | ATTR_SW_WIRED,
    "rwx": ATTR_DEFAULT | attr_idx(VM_MEMATTR_WRITE_BACK) | ATTR_S1_UXN | ATTR_SW_WIRED,
    "uncacheable": ATTR_DEFAULT | attr_idx(VM_MEMATTR_UNCACHEABLE) | ATTR_S1_XN,
    "device": ATTR_DEFAULT | attr_idx(VM_MEMATTR_DEVICE) | ATTR_S1_XN,
}
KERNEL_TEXT = ATTR_DEFAULT | attr_idx(VM_MEMATTR_WRITE_BACK) | ATTR_S1_AP_RO | ATTR_S1_UXN
KERNEL_TEXT |= ATTR_S1_GP
KERNEL_RODATA = ATTR_DEFAULT | attr_idx(VM_MEMATTR_WRITE_BACK) | ATTR_S1_AP_RO | ATTR_S1_XN
KERNEL_DATA = ATTR_DEFAULT | attr_idx(VM_MEMATTR_WRITE_BACK) | ATTR_S1_XN


def pte_to_phys(entry: int) -> int:
    """``PTE_TO_PHYS``: the output address of a descriptor (``entry & ~ATTR_MASK``)."""
    return entry & ~ATTR_MASK


def entry_prot(entry: int) -> int:
    """The ``VM_PROT_*`` bits the hardware grants the kernel through a leaf descriptor.

    READ always; WRITE unless ``ATTR_S1_AP(RO)`` is set -- or when it is set together with
    ``ATTR_SW_DBM`` (a clean, writable managed page: the first write makes it writable);
    EXECUTE unless ``ATTR_S1_PXN`` is set (``ATTR_S1_UXN`` only concerns EL0).  This is
    pykvm's rule (README, "aarch64 walk"); libkvm's differs.
    """
    prot = VM_PROT_READ
    if not entry & ATTR_S1_AP_RO or entry & ATTR_SW_DBM:
        prot |= VM_PROT_WRITE
    if not entry & ATTR_S1_PXN:
        prot |= VM_PROT_EXECUTE
    return prot


@dataclass(frozen=True)
class Granule:
    """The translation geometry of one page size (pte.h ``L*_SHIFT``, ``Ln_ENTRIES``)."""

    page_size: int
    l0_shift: int
    l0_bits: int
    ln_bits: int

    @property
    def page_shift(self) -> int:
        """``L3_SHIFT`` = ``PAGE_SHIFT``."""
        return self.page_size.bit_length() - 1

    @property
    def l1_shift(self) -> int:
        """``L1_SHIFT``."""
        return self.page_shift + 2 * self.ln_bits

    @property
    def l2_shift(self) -> int:
        """``L2_SHIFT``."""
        return self.page_shift + self.ln_bits

    @property
    def l1_size(self) -> int:
        """``L1_SIZE``: 1 GiB or 64 GiB."""
        return 1 << self.l1_shift

    @property
    def l2_size(self) -> int:
        """``L2_SIZE``: 2 MiB or 32 MiB."""
        return 1 << self.l2_shift

    @property
    def entries(self) -> int:
        """``Ln_ENTRIES``: 512 or 2048."""
        return 1 << self.ln_bits

    @property
    def levels(self) -> tuple[Level, Level, Level, Level]:
        """L0 .. L3 as :class:`~pykvm.synth.machine.Level` (root first)."""
        return (
            Level(self.l0_shift, self.l0_bits),
            Level(self.l1_shift, self.ln_bits),
            Level(self.l2_shift, self.ln_bits),
            Level(self.page_shift, self.ln_bits),
        )


GRANULE_4K = Granule(page_size=4096, l0_shift=39, l0_bits=9, ln_bits=9)
GRANULE_16K = Granule(page_size=16384, l0_shift=47, l0_bits=1, ln_bits=11)


def make_spec(page_size: int) -> KernelSpec:
    """The arm64 target: ELF64 LE ``EM_AARCH64`` ``ET_EXEC`` linked at ``KERNBASE``."""
    return KernelSpec(
        arch="aarch64",
        elfclass=ELFCLASS64,
        data=ELFDATA2LSB,
        e_machine=EM_AARCH64,
        kernbase=KERNBASE,
        load_offset=0,
        page_size=page_size,
        machine="arm64",
        machine_arch="aarch64",
        bss_vars=(("dmap_phys_base", 8), ("dmap_phys_max", 8), ("dmap_max_addr", 8)),
        func_prologue=b"\xfd\x7b\xbf\xa9\xfd\x03\x00\x91",  # stp x29, x30, [sp,#-16]!; mov x29, sp
    )


#: the 4 KiB-page target (the default)
SPEC = make_spec(4096)
#: the 16 KiB-page target (``minidump-v3-16k``)
SPEC_16K = make_spec(16384)


#: L3C_ENTRIES with 4 KiB pages: L3 entries of one ATTR_CONTIGUOUS range
L3C_ENTRIES = 16


def _round_up(value: int, boundary: int) -> int:
    return -(-value // boundary) * boundary


def _span(first: int) -> set[int]:
    return set(range(first, first + L3C_ENTRIES))


class Arm64Machine(Machine):
    """The synthetic arm64 machine of one seed (see the module docstring for the layout).

    Attributes used by the dump writers and the ground truth: ``granule``, ``segments``,
    ``tables`` and ``pt`` (the kernel's TTBR1 translation tables, root ``pt.root``),
    ``leaves`` (every leaf of the kernel map ``[KERNBASE, kernel_vm_end)``), ``extras``,
    ``nodump``, ``memory``, ``kernel``, ``msgbuf``, and ``kernphys``, ``dmap_phys_base``,
    ``dmap_phys_max``, ``kernel_vm_end``; the sample addresses ``msgbuf_va``,
    ``block_va``/``block_pa``/``block_ram`` (the L2 block and how many of its bytes are
    RAM), ``invalid_l2_va``, ``kmem_va``, ``free_kmem_va``, ``hole_vas``, ``nodump_vas``,
    ``attr_vas`` (kind name -> va), ``run_va``/``run_len``, ``tail_va``, ``l1_va``/
    ``l1_pa``/``l1_ram`` (0 without ``l1_block``); with ``types`` also ``kdata`` (the
    :class:`~pykvm.synth.kerneldata.KernelDataTruth`, else None) and ``kdata_va`` (the
    arena's first address).
    """

    def __init__(
        self,
        seed: int = 0,
        *,
        granule: Granule = GRANULE_4K,
        ram_base: int | None = None,
        l1_block: bool = False,
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
        g = granule
        if ram_base is None:
            ram_base = GIB if g is GRANULE_4K else 64 * GIB
        if ram_base < 0 or ram_base % g.l1_size or ram_base >= 1 << 46:
            raise ValueError(
                f"ram_base must be a multiple of L1_SIZE ({g.l1_size:#x}) below 64 TiB"
            )
        if l1_block and g is not GRANULE_4K:
            raise ValueError("L1 blocks exist only with 4 KiB pages")
        ps = g.page_size
        super().__init__(seed, Rng(seed, "arm64-phys"), page_size=ps, byteorder="little")
        self.granule = g
        self.spec = SPEC if g is GRANULE_4K else SPEC_16K
        extra_bss: list[tuple[str, int]] = []
        if types is not None:
            have = {"hz", "mp_maxcpus", "dumptid"} | {n for n, _ in self.spec.data_vars}
            extra_bss = bss_variables(types, cp_time=cp_time_symbol, existing=sorted(have))
        k = self.kernel = SynthKernel(self.spec, seed, extra_symbols, extra_bss=extra_bss)
        k.ctf_section = ctf_section
        self.kdata: KernelDataTruth | None = None
        self.kdata_va = 0
        rng = self._rng
        l2 = g.l2_size

        # ---- RAM
        r0_start = ram_base + rng.below(4) * 2 * MIB + rng.between(1, 63) * ps
        self.kernphys = _round_up(r0_start, 2 * MIB) + rng.below(2) * 2 * MIB
        r0_end = self.kernphys + k.image_len + rng.between(3, 6) * MIB + rng.between(1, 63) * ps
        a = rng.between(1, 4) * MIB + rng.below(64) * ps
        if g is GRANULE_4K:
            b = rng.between(1, 255) * ps
        else:
            b = rng.between(1, 3) * MIB + rng.below(64) * ps
        boundary = _round_up(r0_end + rng.between(1, 48) * MIB + a, l2)
        r1 = (boundary - a, boundary + b)
        # the next ranges start past the block's physical end
        segs = [(r0_start, r0_end), r1, *spread_ranges(rng, boundary + l2, 2, page_size=ps)]
        self.l1_va = self.l1_pa = self.l1_ram = 0
        if l1_block:
            self.l1_pa = _round_up(segs[-1][1], GIB) + rng.below(2) * GIB
            gs = self.l1_pa + rng.below(256) * 2 * MIB + rng.below(4) * ps
            segs.append((gs, gs + rng.between(1, 3) * MIB))
        self.set_segments(segs)
        self.dmap_phys_base = ram_base
        self.dmap_phys_max = self.max_pa
        self.block_pa = boundary
        self.block_ram = b
        self.reserve(self.kernphys, self.kernphys + k.image_len)
        self.reserve(boundary, r1[1])
        if l1_block:
            self.reserve(self.l1_pa, self.l1_pa + GIB)

        # ---- the kernel's translation tables (TTBR1)
        self.pt = RadixTables(self, g.levels, lambda child, level: child | L0_TABLE)
        self._build_kernel_map()
        self._build_dmap()

        # ---- pages only the direct map reaches (UMA), the message buffer
        for _ in range(rng.between(6, 16)):
            self.extras.add(self.alloc() >> self.page_shift)
        if types is not None:
            self._build_kdata(types, cp_time_symbol)
        self._fill_kernel_vars()
        self.place(self.kernphys, k.memory_image())
        self.finish()

    # ------------------------------------------------------------------ helpers
    def _map(self, va: int, pa: int, attrs: int) -> None:
        entry = pa | attrs | L3_PAGE
        self.pt.map(va, pa, 3, entry, entry_prot(entry))

    def _build_kernel_map(self) -> None:
        g = self.granule
        k = self.kernel
        rng = self._rng
        ps = g.page_size
        l2 = g.l2_size
        # the image, L3 pages
        for off in range(0, k.image_len, ps):
            if off < k.rodata_off:
                attrs = KERNEL_TEXT
            elif off < k.data_off:
                attrs = KERNEL_RODATA
            else:
                attrs = KERNEL_DATA
            self._map(KERNBASE + off, self.kernphys + off, attrs)
        # the message buffer right after the image
        self.msgbuf = boot_messages(
            rng,
            k,
            physmem=self.physmem,
            avail=self.physmem - k.image_len,
            cpu="ARM Cortex-A72 r0p3 affinity:  0",
            timer='Event timer "ARM MPCore Eventtimer" frequency 62500000 Hz quality 1000',
        )
        npages = -(-len(self.msgbuf) // ps)
        self.msgbuf_pa = self.alloc(npages)
        self.place(self.msgbuf_pa, self.msgbuf)
        self.msgbuf_va = KERNBASE + k.image_len
        for i in range(npages):
            self.extras.add((self.msgbuf_pa >> self.page_shift) + i)
            self._map(self.msgbuf_va + i * ps, self.msgbuf_pa + i * ps, KENTER)
        used = k.image_len + npages * ps
        self.image_free_va = KERNBASE + used  # an invalid L3 entry of the image's table
        step = -(-used // l2)
        if used % l2 == 0:
            self.image_free_va = 0

        # an L2 block running past the end of its RAM range
        self.block_va = KERNBASE + step * l2
        battrs = KENTER | ATTR_SW_WIRED
        if rng.chance(1, 2):
            battrs = KERNEL_ATTRS["managed-clean"]
        entry = self.block_pa | battrs | L2_BLOCK
        self.pt.map(self.block_va, self.block_pa, 2, entry, entry_prot(entry))
        # an invalid L2 entry (the L2 table exists: its neighbours are mapped)
        self.invalid_l2_va = self.block_va + l2
        self.pt.set(self.invalid_l2_va, 2, 0)
        # kmem: every kind of kernel L3 entry, holes, PG_NODUMP pages
        self.kmem_va = self.block_va + 2 * l2
        slots = rng.sample(range(g.entries), 40)
        holes = self._hole_targets()
        self.hole_vas: list[int] = []
        for i, target in enumerate(holes):
            va = self.kmem_va + slots.pop() * ps
            self._map(va, target, KERNEL_ATTRS["device" if i == 0 else "kenter"])
            self.hole_vas.append(va)
        self.nodump_vas: list[int] = []
        for _ in range(2):
            pa = self.alloc()
            self.nodump.add(pa >> self.page_shift)
            va = self.kmem_va + slots.pop() * ps
            self._map(va, pa, KENTER)
            self.nodump_vas.append(va)
        self.attr_vas: dict[str, int] = {}
        for name, attrs in KERNEL_ATTRS.items():
            if name == "device":
                continue
            va = self.kmem_va + slots.pop() * ps
            self._map(va, self.alloc(), attrs)
            self.attr_vas[name] = va
        self.free_kmem_va = self.kmem_va + slots.pop() * ps
        # an entry caught in break-before-make: ATTR_DESCR_VALID cleared, the rest kept
        self.stale_va = self.kmem_va + slots.pop() * ps
        self.pt.set(self.stale_va, 3, self.alloc() | KENTER | (L3_PAGE & ~1))
        for slot in slots[: rng.between(8, 24)]:
            attrs = KERNEL_ATTRS[rng.choice(("kenter", "kenter", "managed-dirty", "managed-ro"))]
            self._map(self.kmem_va + slot * ps, self.alloc(), attrs)
        # a second table: a physically contiguous run and a few pages
        self.run_va_table = self.kmem_va + l2
        self.run_len = rng.between(4, 12)
        run_slot = rng.below(g.entries - self.run_len)
        run_pa = self.alloc(self.run_len)
        self.run_va = self.run_va_table + run_slot * ps
        for i in range(self.run_len):
            self._map(self.run_va + i * ps, run_pa + i * ps, KENTER | ATTR_SW_WIRED)
        taken = set(range(run_slot, run_slot + self.run_len))
        # 4 KiB granule: an L3C range (pmap_kenter's ATTR_CONTIGUOUS runs of L3C_ENTRIES
        # = 16 pages, VA and PA aligned to 64 KiB)
        self.l3c_va = 0
        if g is GRANULE_4K:
            starts = [x for x in range(0, g.entries, L3C_ENTRIES) if not taken & _span(x)]
            first = rng.choice(starts)
            l3c_pa = self.alloc(L3C_ENTRIES, L3C_ENTRIES * ps)
            self.l3c_va = self.run_va_table + first * ps
            for i in range(L3C_ENTRIES):
                pa = l3c_pa + i * ps
                self._map(self.l3c_va + i * ps, pa, KENTER | ATTR_CONTIGUOUS)
            taken |= _span(first)
        free = [s for s in range(g.entries) if s not in taken]
        for slot in rng.sample(free, rng.between(3, 8)):
            self._map(self.run_va_table + slot * ps, self.alloc(), KENTER)
        # trailing invalid L2 entries up to kernel_vm_end
        end = self.run_va_table + l2
        for _ in range(rng.between(1, 3)):
            self.pt.set(end, 2, 0)
            end += l2
        self.tail_va = 0
        if self.l1_pa:
            self.l1_va = KERNBASE + GIB
            entry = self.l1_pa | KENTER | L1_BLOCK
            self.pt.map(self.l1_va, self.l1_pa, 1, entry, entry_prot(entry))
            self.l1_ram = next(s for s, _ in self.segments if s >= self.l1_pa) - self.l1_pa
            self.tail_va = KERNBASE + 2 * GIB
            for slot in sorted(rng.sample(range(g.entries), rng.between(2, 5))):
                self._map(self.tail_va + slot * ps, self.alloc(), KENTER)
            end = self.tail_va + 2 * l2
            self.pt.set(self.tail_va + l2, 2, 0)
        self.kernel_vm_end = end

    def _hole_targets(self) -> list[int]:
        """Physical pages outside RAM but inside the direct map's span: just below a
        range (libkvm's missing lower-bound check would alias it), mid-hole, past RAM."""
        ps = self.page_size
        out = []
        for (_, e0), (s1, _) in zip(self.segments, self.segments[1:], strict=False):
            out += [s1 - ps, (e0 + (s1 - e0) // 2) & ~(ps - 1)]
        out = out[:3]
        out.append(self.max_pa + 3 * MIB)
        return [pa for pa in out if not self.dumpable(pa)]

    def _build_dmap(self) -> None:
        """L1 (4 KiB) or L2 (16 KiB) blocks over the RAM ranges; no leaf is recorded."""
        g = self.granule
        dattrs = ATTR_DEFAULT | attr_idx(VM_MEMATTR_WRITE_BACK) | ATTR_S1_XN
        level = 1 if g is GRANULE_4K else 2
        size = g.l1_size if level == 1 else g.l2_size
        done: set[int] = set()
        for s, e in self.segments:
            for pa in range(s & ~(size - 1), e, size):
                if pa in done:
                    continue
                done.add(pa)
                va = DMAP_MIN_ADDRESS + pa - self.dmap_phys_base
                self.pt.set(va, level, pa | dattrs | L1_BLOCK)

    def _build_kdata(self, types: LayoutTruth, cp_time_symbol: bool) -> None:
        """The kernel-data arena at ``kernel_vm_end`` (after every random draw)."""
        k = self.kernel
        l2 = self.granule.l2_size
        arena_va = self.kernel_vm_end
        self.kdata_va = arena_va

        def map_page(va: int) -> int:
            pa = self.alloc()
            self._map(va, pa, KENTER)
            return pa

        arena = PageArena(arena_va, self.granule.entries, self.page_size, map_page)
        self.kdata = install_kernel_data(
            k, types, arena, self.place, seed=self.seed,
            msgbuf_ring_va=self.msgbuf_va, msgbuf=self.msgbuf,
            cp_time_symbol=cp_time_symbol,
        )
        # one invalid L2 entry after the arena's table, then kernel_vm_end
        self.pt.set(arena_va + l2, 2, 0)
        self.kernel_vm_end = arena_va + 2 * l2

    def _fill_kernel_vars(self) -> None:
        k = self.kernel
        k.set_int("kernel_vm_end", self.kernel_vm_end)
        k.set_int("physmem", self.physmem >> self.page_shift, signed=True)
        k.set_dump_avail(self.segments)
        k.set_int("dmap_phys_base", self.dmap_phys_base)
        k.set_int("dmap_phys_max", self.dmap_phys_max)
        k.set_int("dmap_max_addr", DMAP_MIN_ADDRESS + self.dmap_phys_max - self.dmap_phys_base)
        k.finalize()

    # ------------------------------------------------------------------ views
    def phys_in_dmap(self, pa: int) -> bool:
        """``PHYS_IN_DMAP(pa)``."""
        return self.dmap_phys_base <= pa < self.dmap_phys_max

    def is_dumpable(self, pa: int) -> bool:
        """``vm_phys_is_dumpable(pa)``: RAM (dump_avail) and not ``PG_NODUMP``."""
        return self.dumpable(pa) and (pa >> self.page_shift) not in self.nodump

    def dmap(self, pa: int) -> int:
        """``PHYS_TO_DMAP(pa)``."""
        return DMAP_MIN_ADDRESS + pa - self.dmap_phys_base
