"""The synthetic FreeBSD/arm machine: RAM with holes, two-level ARM page tables, a kernel.

Two pmaps are modelled, the two FreeBSD has had for 32-bit arm:

* ``v6`` -- sys/arm/arm/pmap-v6.c (FreeBSD 11 and later, ARMv6/v7, the only one today).
  ``pmap_bootstrap_prepare()`` maps ``KERNBASE`` (= ``KERNVIRTADDR``, 0xc0000000) onto
  the physical load address of the kernel with 1 MiB sections (``PTE1_KERN``: RW,
  executable) up to ``pte1_roundup(last)``; right behind them in physical memory come the
  kernel L1 table ``kern_pt1`` (16 KiB), the ``PT2TAB`` page and the ``NKPT2PG`` (32)
  pages of L2 tables (four 1 KiB tables a page, one page per 4 MiB of KVA); the L1 table
  and PT2TAB are mapped with 4 KiB pages (``PTE2_KPT``) at ``KERNEL_P2V`` of their
  physical address.  ``PT2MAP`` (4 MiB below ``KERNBASE``) maps every L2 page through
  PT2TAB used as L2 tables (the recursive mapping).  ``kernel_vm_end`` starts at
  ``KERNBASE + NKPT2PG * 4 MiB`` and ``pmap_growkernel()`` moves it 1 MiB at a time.
  ``pmap_bootstrap()`` stores ``kernel_l1pa = (vm_paddr_t)kern_pt1`` -- the L1 table's
  *virtual* address (``kernel_l1pa`` option ``"auto"``; see the package docstring).
* ``v4`` -- the old sys/arm/arm/pmap.c of ARMv4/v5 kernels (FreeBSD 12 and earlier,
  including big-endian ``armeb``).  ``initarm()`` maps the first MiB at ``KERNBASE`` onto
  ``PHYSADDR`` with a section and the kernel (linked at ``KERNVIRTADDR`` = KERNBASE +
  1 MiB) with ``pmap_map_chunk()``: 64 KiB large pages where aligned, then 4 KiB small
  pages, linearly over the image and the boot allocations behind it (the L1 table, the
  L2 pages, the message buffer, stacks); ``pmap_bootstrap()`` stores
  ``kernel_l1pa = l1pt->pv_pa``, a physical address.  Descriptors use the generic ARMv4
  prototypes (``L1_S_PROTO`` = section | IMP, ``L1_C_PROTO`` = coarse | IMP2, AP fields
  of four sub-pages, no XN) and one 16 MiB supersection (``pmap_kenter_supersection``,
  ``ARM_HAVE_SUPERSECTIONS``) in KVA.

Both then have a "kmem" area (random 4 KiB pages, a contiguous run, read-only and
executable pages, PTEs into physical holes and onto physical page 0 when RAM starts
there, a fault descriptor with software bits set, zero entries), a 1 MiB section onto
RAM and one straddling the end of a RAM range, ``v4`` also 64 KiB pages (one straddling
a range end) and the supersection; above ``kernel_vm_end`` device sections (onto
physical holes) and the high vector page at ``ARM_VECTORS_HIGH``.

Only with ``types`` (after every random draw of the machine above): the kernel-data
variables of :mod:`pykvm.synth.kerneldata` in ``.bss`` and a kernel-data arena of 4 KiB
pages (RW, XN on v6) from ``KERNBASE + 8 MiB`` (up to 2 MiB, between the boot area and
kmem, whose L2 tables are already linked), below ``kernel_vm_end``: every minidump
marks its pages and a full dump holds all RAM.

Protections recorded with each leaf are what the MMU grants (``VM_PROT_*``): ``v6``
READ, WRITE unless ``PTE2_RO``/``PTE1_RO`` (the kernel sets the hardware ``NM``/AP2 bit
together with them), EXECUTE unless ``PTE2_NX``/``PTE1_NX``; ``v4`` READ and EXECUTE
(ARMv4/v5 have no execute-never bit), WRITE when the AP field grants kernel write.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .._prng import Rng
from ..cmodel import LayoutTruth
from ..elfwriter import ELFCLASS32, ELFDATA2LSB, ELFDATA2MSB, EM_ARM, ByteOrder
from ..kernel import SymbolEntry, SynthKernel
from ..kerneldata import KernelDataTruth, PageArena, bss_variables, install_kernel_data
from ..machine import Machine, boot_messages, spread_ranges
from ..spec import KernelSpec
from ..truth import VM_PROT_EXECUTE, VM_PROT_READ, VM_PROT_WRITE

PAGE_SIZE = 4096
PAGE_SHIFT = 12
KIB = 1 << 10
MIB = 1 << 20

KERNBASE = 0xC0000000
#: pmap-v6 links KERNBASE .. KERNBASE + NKPT2PG * NPT2_IN_PG MiB at boot
NKPT2PG = 32
NPT2_IN_PG = 4
PT2MAP_SIZE = 4 * MIB
PT2MAP = KERNBASE - PT2MAP_SIZE
ARM_VECTORS_HIGH = 0xFFFF0000
#: the kernel-data arena (``types``): its first address and its size in pages
KDATA_VA = KERNBASE + 8 * MIB
KDATA_PAGES = 512
#: v4: KERNVIRTADDR - KERNBASE (the image is linked 1 MiB above KERNBASE)
V4_LOAD_OFFSET = MIB

L1_SIZE = 16 * KIB
L1_ENTRIES = 4096
L2_SIZE = 1 * KIB
L1_S_SIZE = MIB
L1_SUP_SIZE = 16 * MIB
L2_L_SIZE = 64 * KIB

# L1 descriptors (pte-v6.h / pte-v4.h)
L1_TYPE_INV = 0
L1_TYPE_C = 1
L1_TYPE_S = 2
L1_TYPE_MASK = 3
L1_S_FRAME = 0xFFF00000
L1_SUP_FRAME = 0xFF000000
L1_C_ADDR_MASK = 0xFFFFFC00
L1_S_B = 0x4
L1_S_C = 0x8
L1_S_SUPERSEC = 1 << 18
# L2 descriptors
L2_TYPE_INV = 0
L2_TYPE_L = 1
L2_TYPE_S = 2
L2_TYPE_MASK = 3
L2_S_FRAME = 0xFFFFF000
L2_L_FRAME = 0xFFFF0000
L2_B = 0x4
L2_C = 0x8
L2_TEX0 = 0x40

# pmap-v6 software view of the bits (pte-v6.h)
PTE1_V = L1_TYPE_S
PTE1_NX = 0x10
PTE1_A = 0x400
PTE1_RO = 0x2000
PTE1_W = 0x4000
PTE1_NM = 0x8000
PTE1_S = 0x10000
PTE1_NG = 0x20000
PTE1_U = 0x800
PTE2_V = L2_TYPE_S
PTE2_NX = 0x1
PTE2_A = 0x10
PTE2_U = 0x20
PTE2_RO = 0x80
PTE2_W = 0x100
PTE2_NM = 0x200
PTE2_S = 0x400
PTE2_NG = 0x800

# the old ARMv4/v5 pmap (pmap.c, pmap-v4.h, generic CPU class)
V4_L1_S_PROTO = L1_TYPE_S | 0x10  # L1_S_IMP
V4_L1_C_PROTO = L1_TYPE_C | 0x10  # L1_C_IMP2
V4_L1_S_PROT_W = 0x400  # L1_S_AP(AP_W)
V4_L2_S_PROTO = L2_TYPE_S
V4_L2_L_PROTO = L2_TYPE_L
V4_L2_PROT_W = 0x550  # L2_AP(AP_W): AP_W in each of the four sub-page AP fields
V4_CACHE = L2_B | L2_C  # pte_l2_s_cache_mode (write-back)

PMAPS = ("v6", "v4")


def make_spec(pmap: str, byteorder: ByteOrder) -> KernelSpec:
    """The kernel target of a pmap flavour and byte order.

    ``v6``: ARMv7 (``MACHINE_ARCH`` armv7; the big-endian variant, "armv7eb" with BE8
    ``e_flags``, is not a FreeBSD target but a test of kernel byte order), linked at
    ``KERNVIRTADDR`` = ``KERNBASE``.  ``v4``: ARMv5 (``arm``, big-endian ``armeb``),
    linked at ``KERNBASE + 1 MiB``.  Both: ELF32 ``EM_ARM`` ``ET_EXEC``, ``.text`` right
    after the headers (``KERNVIRTADDR + SIZEOF_HEADERS``, sys/conf/ldscript.arm), the
    ``.bss`` variable ``kernel_l1pa`` (``vm_paddr_t``, 32 bits on arm).
    """
    if pmap not in PMAPS:
        raise ValueError(f"unknown arm pmap {pmap!r}; expected one of {PMAPS}")
    big = byteorder == "big"
    if pmap == "v6":
        arch_name = "armv7eb" if big else "armv7"
        flags = 0x05800400 if big else 0x05000400  # EABI5, hard float, (BE8)
        load = 0
    else:
        arch_name = "armeb" if big else "arm"
        flags = 0x05000000
        load = V4_LOAD_OFFSET
    # push {fp, lr}: 0xe92d4800
    prologue = (0xE92D4800).to_bytes(4, byteorder)
    return KernelSpec(
        arch="arm",
        elfclass=ELFCLASS32,
        data=ELFDATA2MSB if big else ELFDATA2LSB,
        e_machine=EM_ARM,
        e_flags=flags,
        kernbase=KERNBASE,
        load_offset=load,
        page_size=PAGE_SIZE,
        text_offset=0x100,
        paddr_size=4,
        machine="arm",
        machine_arch=arch_name,
        bss_vars=(("kernel_l1pa", 4),),
        func_prologue=prologue,
    )


#: the default target: ARMv7, little-endian, pmap-v6
SPEC = make_spec("v6", "little")


@dataclass(frozen=True)
class KernelView:
    """How the kernel image is placed: link address, physical address, KERNBASE's pa."""

    kernvirtaddr: int
    kernphys: int
    #: physical address of KERNBASE (the ``physaddr`` symbol)
    physaddr: int


def _round_up(value: int, boundary: int) -> int:
    return -(-value // boundary) * boundary


class ArmMachine(Machine):
    """The synthetic arm machine of one seed, pmap flavour and byte order.

    Attributes used by the writers and the ground truth: ``segments``, ``tables`` (the
    16 KiB L1 table at ``l1_pa`` and 4 KiB pages of L2 tables), ``leaves``, ``memory``,
    ``kernel``, ``pmap`` (``"v6"``/``"v4"``), ``kernphys``, ``physaddr``,
    ``kernvirtaddr``, ``kernel_vm_end``, ``l1_pa``, ``l1_va``, ``kernel_l1pa`` (the value
    the kernel variable holds), ``msgbuf``/``msgbuf_pa``/``msgbuf_va`` and the sample
    addresses named in the builder.
    """

    def __init__(
        self,
        seed: int = 0,
        *,
        pmap: str = "v6",
        byteorder: ByteOrder = "little",
        kva_tail_mib: int = 0,
        kernel_l1pa: str = "auto",
        extra_symbols: int = 0,
        types: LayoutTruth | None = None,
        cp_time_symbol: bool = False,
        ctf_section: Callable[[Sequence[SymbolEntry]], bytes] | None = None,
    ) -> None:
        """Build the machine (no files are written here).

        ``types`` (the kernel's type layout) adds the kernel data of
        :mod:`pykvm.synth.kerneldata` (see the module docstring); ``kdata`` is then the
        :class:`KernelDataTruth`.  ``cp_time_symbol`` also defines the old ``cp_time``
        array; ``ctf_section`` makes the kernel ELF carry a ``.SUNW_ctf`` section (called
        with the symbol table).  Without ``types`` the machine is the one built before
        these options existed.
        """
        if pmap not in PMAPS:
            raise ValueError(f"unknown arm pmap {pmap!r}; expected one of {PMAPS}")
        if kva_tail_mib not in (0, 1, 2, 3):
            raise ValueError("kva_tail_mib must be 0, 1, 2 or 3")
        if kernel_l1pa not in ("auto", "physical", "virtual"):
            raise ValueError("kernel_l1pa must be 'auto', 'physical' or 'virtual'")
        super().__init__(
            seed, Rng(seed, f"arm-{pmap}-phys"), entry_size=4, byteorder=byteorder
        )
        self.pmap = pmap
        self.v6 = pmap == "v6"
        self.spec = make_spec(pmap, byteorder)
        rng = self._rng
        extra_bss: list[tuple[str, int]] = []
        if types is not None:
            have = {"hz", "mp_maxcpus", "dumptid"} | {n for n, _ in self.spec.bss_vars}
            extra_bss = bss_variables(types, cp_time=cp_time_symbol, existing=sorted(have))
        k = self.kernel = SynthKernel(self.spec, seed, extra_symbols, extra_bss=extra_bss)
        k.ctf_section = ctf_section
        self.kdata: KernelDataTruth | None = None
        self.kdata_va = 0
        self.group_pages: dict[int, int] = {}  # 4 MiB group index -> L2 page pa
        self.l1_kind: dict[int, str] = {}  # MiB index -> "section" / "supersection" / "link"

        # ---- RAM: the first range holds the kernel; two or three more after holes
        if self.v6:
            base = rng.choice((0x00000000, 0x10000000, 0x40000000, 0x80000000))
        else:
            base = rng.choice((0x00000000, 0x20000000))
        self.ram_base = base
        first_end = base + rng.between(8, 11) * MIB + rng.between(1, 255) * PAGE_SIZE
        more = spread_ranges(rng, first_end, rng.between(2, 3), size_mib=(1, 3), gap_mib=(1, 24))
        self.set_segments([(base, first_end), *more])
        # physical blocks for the kmem section (the last whole MiB of the first range,
        # above the kernel's boot area) and the v4 64 KiB pages, before any allocation
        self.section_pa = (first_end & ~(MIB - 1)) - MIB
        self.reserve(self.section_pa, self.section_pa + MIB)
        s2, e2 = self.segments[2]
        blocks = list(range(_round_up(s2, L2_L_SIZE), e2 - L2_L_SIZE + 1, L2_L_SIZE))
        self.large_pas = sorted(rng.sample(blocks, 4))
        for pa in self.large_pas:
            self.reserve(pa, pa + L2_L_SIZE)

        # ---- the kernel image
        if self.v6:
            kernphys = base + 2 * MIB * rng.between(1, 2)
            physaddr = kernphys
        else:
            physaddr = base
            kernphys = base + V4_LOAD_OFFSET
        self.kernphys = kernphys
        self.physaddr = physaddr
        self.kernvirtaddr = k.image_va
        self.view = KernelView(k.image_va, kernphys, physaddr)
        k.add_symbol("physaddr", physaddr)

        # ---- the kernel map: KVA size first (the L1 links depend on it)
        if self.v6:
            kva_mib = NKPT2PG * NPT2_IN_PG + 4 * rng.between(0, 6)
        else:
            kva_mib = 64 + 4 * rng.between(0, 6)
        self.kernel_vm_end = KERNBASE + (kva_mib + kva_tail_mib) * MIB
        if self.v6:
            self._boot_v6(rng)
        else:
            self._boot_v4(rng)
        if self._boot_pa > self.section_pa:  # pragma: no cover - layout invariant
            raise RuntimeError("boot allocations run into the kmem section's block")
        self._kmem(rng)
        self._high(rng)
        if self.v6:  # PT2MAP: page g maps the L2 page of 4 MiB group g
            for g, page in sorted(self.group_pages.items()):
                e = self.get_entry(self.pt2tab_pa, g)
                self.add_leaf(PT2MAP + g * PAGE_SIZE, PAGE_SIZE, page, e, self.prot(e, 2))
        if types is not None:
            self._build_kdata(types, cp_time_symbol)

        # ---- kernel variables
        if kernel_l1pa == "auto":
            kernel_l1pa = "virtual" if self.v6 else "physical"
        self.kernel_l1pa = self.l1_va if kernel_l1pa == "virtual" else self.l1_pa
        k.set_int("kernel_l1pa", self.kernel_l1pa)
        k.set_int("kernel_vm_end", self.kernel_vm_end)
        k.set_int("physmem", self.physmem // PAGE_SIZE, signed=True)
        k.set_dump_avail(self.segments)
        k.finalize()
        self.place(kernphys, k.memory_image())
        self.finish()

    # ------------------------------------------------------------------ descriptors
    def section_entry(self, pa: int, *, write: bool = True, nx: bool = False) -> int:
        """An L1 section descriptor for kernel memory (``PTE1_KERN`` / v4 section)."""
        if self.v6:
            e = (pa & L1_S_FRAME) | PTE1_A | PTE1_S | PTE1_V
            if not write:
                e |= PTE1_RO | PTE1_NM
            if nx:
                e |= PTE1_NX
            return e
        e = (pa & L1_S_FRAME) | V4_L1_S_PROTO | L1_S_B | L1_S_C
        return e | (V4_L1_S_PROT_W if write else 0)

    def link_entry(self, table_pa: int) -> int:
        """An L1 coarse descriptor pointing to the 1 KiB L2 table at ``table_pa``."""
        proto = L1_TYPE_C if self.v6 else V4_L1_C_PROTO
        return (table_pa & L1_C_ADDR_MASK) | proto

    def small_entry(self, pa: int, *, write: bool = True, nx: bool = True) -> int:
        """An L2 small-page descriptor (``PTE2_KERN`` / v4 ``L2_S_PROTO``)."""
        if self.v6:
            e = (pa & L2_S_FRAME) | PTE2_A | PTE2_S | PTE2_V
            if not write:
                e |= PTE2_RO | PTE2_NM
            if nx:
                e |= PTE2_NX
            return e
        e = (pa & L2_S_FRAME) | V4_L2_S_PROTO | V4_CACHE
        return e | (V4_L2_PROT_W if write else 0)

    def large_entry(self, pa: int, *, write: bool = True) -> int:
        """A v4 64 KiB large-page descriptor (``L2_L_PROTO``)."""
        e = (pa & L2_L_FRAME) | V4_L2_L_PROTO | V4_CACHE
        return e | (V4_L2_PROT_W if write else 0)

    def prot(self, entry: int, level: int) -> int:
        """``VM_PROT_*`` the MMU grants for a leaf ``entry`` at ``level`` (1 = L1, 2 = L2)."""
        if self.v6:
            ro, nx = (PTE1_RO, PTE1_NX) if level == 1 else (PTE2_RO, PTE2_NX)
            p = VM_PROT_READ
            if not entry & ro:
                p |= VM_PROT_WRITE
            if not entry & nx:
                p |= VM_PROT_EXECUTE
            return p
        w = V4_L1_S_PROT_W if level == 1 else 0x10
        return VM_PROT_READ | VM_PROT_EXECUTE | (VM_PROT_WRITE if entry & w else 0)

    # ------------------------------------------------------------------ table helpers
    def l1_index(self, va: int) -> int:
        """Index of ``va`` in the L1 table."""
        return va >> 20

    def set_l1(self, va: int, entry: int, kind: str) -> None:
        """Store L1 entry of the MiB holding ``va``."""
        self.set_entry(self.l1_pa, self.l1_index(va), entry)
        self.l1_kind[self.l1_index(va)] = kind

    def l1_entry(self, va: int) -> int:
        """The L1 entry of ``va``."""
        return self.get_entry(self.l1_pa, self.l1_index(va))

    def _group_page(self, va: int, pa: int | None = None) -> int:
        """The L2 page of the 4 MiB group holding ``va`` (allocated and linked if new)."""
        g = va >> 22
        page = self.group_pages.get(g)
        if page is None:
            page = self.new_table(self.alloc() if pa is None else pa)
            self.group_pages[g] = page
            if self.v6 and self.pt2tab_pa:
                self.set_entry(self.pt2tab_pa, g, self._kpt_entry(page, g))
        return page

    def _kpt_entry(self, page: int, g: int) -> int:
        """``PTE2_KPT`` (``PTE2_KPT_NG`` for PT2MAP's own group)."""
        e = self.small_entry(page, nx=False)
        return e | PTE2_NG if g == PT2MAP >> 22 else e

    def link(self, va: int, pa: int | None = None) -> None:
        """Give the MiB holding ``va`` an L2 table (in its group's page) and link it."""
        page = self._group_page(va, pa)
        self.set_l1(va, self.link_entry(page + ((va >> 20) & 3) * L2_SIZE), "link")

    def l2_slot(self, va: int) -> tuple[int, int]:
        """``(page pa, entry index)`` of the L2 entry of ``va`` (its MiB must be linked)."""
        page = self.group_pages[va >> 22]
        return page, ((va >> 20) & 3) * 256 + ((va >> 12) & 0xFF)

    def set_l2(self, va: int, entry: int) -> None:
        """Store a raw L2 entry for ``va`` (no leaf recorded)."""
        page, idx = self.l2_slot(va)
        self.set_entry(page, idx, entry)

    def l2_entry(self, va: int) -> int:
        """The L2 entry of ``va`` (its MiB must be linked)."""
        page, idx = self.l2_slot(va)
        return self.get_entry(page, idx)

    def map_small(self, va: int, pa: int, *, write: bool = True, nx: bool = True) -> None:
        """Map one 4 KiB page and record the leaf."""
        e = self.small_entry(pa, write=write, nx=nx)
        self.set_l2(va, e)
        self.add_leaf(va, PAGE_SIZE, pa, e, self.prot(e, 2))

    def map_large(self, va: int, pa: int, *, write: bool = True) -> None:
        """Map one v4 64 KiB page: the descriptor repeated in 16 consecutive entries."""
        assert not self.v6 and not va % L2_L_SIZE and not pa % L2_L_SIZE
        e = self.large_entry(pa, write=write)
        for i in range(16):
            self.set_l2(va + i * PAGE_SIZE, e)
        self.add_leaf(va, L2_L_SIZE, pa, e, self.prot(e, 2))

    def map_section(self, va: int, pa: int, *, write: bool = True, nx: bool = False) -> None:
        """Map one 1 MiB section and record the leaf."""
        e = self.section_entry(pa, write=write, nx=nx)
        self.set_l1(va, e, "section")
        self.add_leaf(va, L1_S_SIZE, pa, e, self.prot(e, 1))

    def map_supersection(self, va: int, pa: int) -> None:
        """Map one 16 MiB supersection (v4, ``pmap_kenter_supersection``): 16 L1 copies."""
        e = (pa & L1_SUP_FRAME) | V4_L1_S_PROTO | L1_S_SUPERSEC | V4_L1_S_PROT_W
        e |= L1_S_B | L1_S_C
        for i in range(16):
            self.set_l1(va + i * MIB, e, "supersection")
        self.add_leaf(va, L1_SUP_SIZE, pa, e, self.prot(e, 1))

    def take(self, pa: int, count: int = 1) -> int:
        """Mark ``count`` pages from ``pa`` used; return ``pa``."""
        self.use(pa, count)
        return pa

    # ------------------------------------------------------------------ boot layouts
    def _boot_v6(self, rng: Rng) -> None:
        """pmap_bootstrap_prepare(): sections, kern_pt1, PT2TAB, PT2 pages, PT2MAP."""
        k = self.kernel
        kp = self.kernphys
        nsec = _round_up(k.image_len, MIB) // MIB + rng.below(2)
        last = kp + nsec * MIB
        self.reserve(kp, last)
        self.l1_pa = self.new_table(last, L1_SIZE)
        self.pt2tab_pa = 0
        pt2tab = self.new_table(last + L1_SIZE)
        first_pt2 = pt2tab + PAGE_SIZE
        # the boot PT2 pages, in order, then PT2TAB becomes live
        for g in range(NKPT2PG):
            self._group_page(KERNBASE + g * 4 * MIB, first_pt2 + g * PAGE_SIZE)
        self.pt2tab_pa = pt2tab
        for g, page in self.group_pages.items():
            self.set_entry(pt2tab, g, self._kpt_entry(page, g))
        # link every MiB of KVA (pmap_growkernel links the rest the same way)
        for va in range(KERNBASE, self.kernel_vm_end, MIB):
            self.link(va)
        # kernel sections over the image and the boot area
        for i in range(nsec):
            self.map_section(KERNBASE + i * MIB, kp + i * MIB)
        # PT2MAP: four L1 links into PT2TAB (used as four L2 tables), PT2TAB self map
        for i in range(PT2MAP_SIZE // MIB):
            self.set_l1(PT2MAP + i * MIB, self.link_entry(pt2tab + i * L2_SIZE), "link")
        self.group_pages[PT2MAP >> 22] = pt2tab  # PT2MAP's group: PT2TAB itself
        self.set_entry(pt2tab, PT2MAP >> 22, self._kpt_entry(pt2tab, PT2MAP >> 22))
        # kern_pt1 and PT2TAB mapped at KERNEL_P2V() with PTE2_KPT
        self.l1_va = KERNBASE + (self.l1_pa - kp)
        for i in range(L1_SIZE // PAGE_SIZE + 1):
            self.map_small(self.l1_va + i * PAGE_SIZE, self.l1_pa + i * PAGE_SIZE, nx=False)
        # preboot allocations behind the PT2 pages, mapped from virtual_avail
        self._boot_pa = first_pt2 + NKPT2PG * PAGE_SIZE
        self._boot_va = self.l1_va + L1_SIZE + PAGE_SIZE
        self._boot_allocs(rng)

    def _boot_v4(self, rng: Rng) -> None:
        """initarm(): first MiB by a section, then the linear chunk with 64K/4K pages."""
        k = self.kernel
        kp = self.kernphys
        l1 = _round_up(kp + k.image_len, L1_SIZE)
        self.l1_pa = self.new_table(l1, L1_SIZE)
        self.pt2tab_pa = 0
        # L2 pages of the boot KVA, right behind the L1 table
        ngroups = (self.kernel_vm_end - KERNBASE + 4 * MIB - 1) // (4 * MIB)
        for g in range(ngroups):
            self._group_page(KERNBASE + g * 4 * MIB, l1 + L1_SIZE + g * PAGE_SIZE)
        for va in range(KERNBASE, self.kernel_vm_end, MIB):
            self.link(va)
        self.map_section(KERNBASE, self.physaddr)
        self.reserve(self.physaddr, kp)
        self._boot_pa = l1 + L1_SIZE + ngroups * PAGE_SIZE
        self._boot_va = k.image_va + (self._boot_pa - kp)
        self.l1_va = k.image_va + (l1 - kp)
        self._boot_allocs(rng)
        # pmap_map_chunk(KERNVIRTADDR, kernphys, lastaddr - kernphys): 64K pages where
        # aligned and long enough, 4K pages elsewhere
        end = self._boot_pa
        self.reserve(kp, end)
        pa = kp
        while pa < end:
            va = k.image_va + (pa - kp)
            if not pa % L2_L_SIZE and end - pa >= L2_L_SIZE:
                self.map_large(va, pa)
                pa += L2_L_SIZE
            else:
                self.map_small(va, pa)
                pa += PAGE_SIZE

    def _boot_allocs(self, rng: Rng) -> None:
        """The message buffer, thread0's stack and a few boot pages behind the tables."""
        k = self.kernel
        self.msgbuf = boot_messages(
            rng,
            k,
            physmem=self.physmem,
            avail=self.physmem - 8 * MIB,
            cpu="ARM Cortex-A7 r0p5 (ECO: 0x00000000)" if self.v6 else "ARM Feroceon 88FR131",
            timer='Event timer "ARM MPCore Eventtimer" quality 1000'
            if self.v6
            else 'Event timer "CPUTimer0" quality 1000',
        )
        npages = -(-len(self.msgbuf) // PAGE_SIZE)
        extra = rng.between(3, 9)
        pa0 = self.take(self._boot_pa, npages + 2 + extra)
        self.msgbuf_pa = pa0
        self.msgbuf_va = self._boot_va
        self.place(pa0, self.msgbuf)
        self.boot_pages = npages + 2 + extra
        if self.v6:
            for i in range(self.boot_pages):
                self.map_small(self._boot_va + i * PAGE_SIZE, pa0 + i * PAGE_SIZE)
        self._boot_pa += self.boot_pages * PAGE_SIZE

    # ------------------------------------------------------------------ kmem
    def _kmem(self, rng: Rng) -> None:
        """Random kernel pages, holes, sections (and v4 64K pages and a supersection)."""
        ps = PAGE_SIZE
        # a MiB with sparse 4 KiB pages, 16..40 MiB above KERNBASE
        kva = KERNBASE + rng.between(16, 40) * MIB
        self.kmem_va = kva
        slots = rng.sample(range(256), rng.between(60, 110))
        run_len = rng.between(4, 12)
        run_start = rng.below(256 - run_len)
        taken = set(range(run_start, run_start + run_len))
        slots = [s for s in slots if s not in taken]
        self.run_va = kva + run_start * ps
        self.run_len = run_len
        run_pa = self.alloc(run_len)
        for i in range(run_len):
            self.map_small(self.run_va + i * ps, run_pa + i * ps)
        self.hole_targets = self.hole_addresses()
        self.hole_pte_vas: list[int] = []
        for target in self.hole_targets:
            va = kva + slots.pop() * ps
            self.map_small(va, target)
            self.hole_pte_vas.append(va)
        self.page0_va = 0
        if self.segments[0][0] == 0:
            self.page0_va = kva + slots.pop() * ps
            self.map_small(self.page0_va, 0)
        self.ro_vas: list[int] = []
        for _ in range(3):
            va = kva + slots.pop() * ps
            self.map_small(va, self.alloc(), write=False)
            self.ro_vas.append(va)
        self.text_vas: list[int] = []
        for _ in range(3):  # module text: read-only, executable
            va = kva + slots.pop() * ps
            self.map_small(va, self.alloc(), write=False, nx=False)
            self.text_vas.append(va)
        # a fault descriptor with software bits (type 0): hardware and readers ignore it
        self.fault_va = kva + slots.pop() * ps
        self.fault_pa = self.alloc()
        self.set_l2(self.fault_va, self.fault_pa | (PTE2_A if self.v6 else 0x550))
        self.zero_va = kva + slots.pop() * ps  # stays 0
        for slot in slots:
            self.map_small(kva + slot * ps, self.alloc(), write=rng.chance(3, 4))
        # an unused but linked MiB right after (all-zero L2 table)
        self.empty_mib_va = kva + MIB
        # a 1 MiB section onto RAM (a promoted kmem superpage: RW, NX on v6)
        self.section_va = kva + 2 * MIB
        self.map_section(self.section_va, self.section_pa, nx=True)
        # a section straddling the end of the second RAM range
        s1, e1 = self.segments[1]
        self.straddle_va = kva + 3 * MIB
        self.straddle_pa = (e1 - 1) & ~(MIB - 1)
        self.straddle_end = e1
        self.map_section(self.straddle_va, self.straddle_pa, nx=True)
        self.reserve(max(s1, self.straddle_pa), e1)
        if not self.v6:
            self._v4_large_and_super(rng, kva + 4 * MIB)

    def _v4_large_and_super(self, rng: Rng, va: int) -> None:
        """v4: 64 KiB pages (one straddling a range end) and a 16 MiB supersection."""
        s2, e2 = self.segments[2]
        self.large_vas: list[int] = []
        for i, pa in enumerate(self.large_pas):
            self.map_large(va + i * L2_L_SIZE, pa, write=i != 2)
            self.large_vas.append(va + i * L2_L_SIZE)
        self.large_straddle_va = va + 8 * L2_L_SIZE
        self.large_straddle_pa = (e2 - 1) & ~(L2_L_SIZE - 1)
        self.large_straddle_end = e2
        self.map_large(self.large_straddle_va, self.large_straddle_pa)
        # the supersection: 16 MiB aligned KVA, onto the 16 MiB block holding the end
        # of the first RAM range (partly RAM, partly hole)
        sup_va = KERNBASE + 48 * MIB
        self.super_va = sup_va
        self.super_pa = (self.segments[0][1] - 1) & ~(L1_SUP_SIZE - 1)
        self.map_supersection(sup_va, self.super_pa)

    # ------------------------------------------------------------------ kernel data
    def _build_kdata(self, types: LayoutTruth, cp_time_symbol: bool) -> None:
        """The kernel-data arena at :data:`KDATA_VA` (after every random draw)."""
        k = self.kernel
        boot_end = self._boot_va + self.boot_pages * PAGE_SIZE
        if not boot_end <= KDATA_VA and KDATA_VA + KDATA_PAGES * PAGE_SIZE <= self.kmem_va:
            raise RuntimeError("the kernel-data arena overlaps the boot area or kmem")
        self.kdata_va = KDATA_VA

        def map_page(va: int) -> int:
            pa = self.alloc()
            self.map_small(va, pa)
            return pa

        arena = PageArena(KDATA_VA, KDATA_PAGES, PAGE_SIZE, map_page)
        self.kdata = install_kernel_data(
            k, types, arena, self.place, seed=self.seed,
            msgbuf_ring_va=self.msgbuf_va, msgbuf=self.msgbuf,
            cp_time_symbol=cp_time_symbol,
        )

    # ------------------------------------------------------------------ above KVA
    def _high(self, rng: Rng) -> None:
        """Device sections (onto physical holes) and the high vector page."""
        dev_pa = _round_up(self.max_pa + 64 * MIB, MIB)
        self.dev_va = 0xFE000000 - rng.between(1, 8) * MIB
        for i in range(2):
            va = self.dev_va + i * MIB
            self.map_section(va, dev_pa + i * MIB, nx=True)
        # the vectors page (RO, executable) in the last MiB
        self.link(ARM_VECTORS_HIGH)
        self.vectors_pa = self.alloc()
        self.map_small(ARM_VECTORS_HIGH, self.vectors_pa, write=False, nx=False)

    # ------------------------------------------------------------------ minidump view
    def dump_kextract(self, va: int) -> tuple[int, int]:
        """``pmap_dump_kextract(va)``: ``(pa, L2-format entry)`` as the minidump writer
        gets them (pmap-v6.c / the v4 pmap.c)."""
        pd = self.l1_entry(va)
        t = pd & L1_TYPE_MASK
        if t == L1_TYPE_S:
            if not self.v6 and pd & L1_S_SUPERSEC:
                pa = (pd & L1_SUP_FRAME) | (va & (L1_SUP_SIZE - 1))
            else:
                pa = (pd & L1_S_FRAME) | (va & (L1_S_SIZE - 1))
            if self.v6:
                return pa, pa | attr_to_l2(pd) | PTE2_V
            return pa, V4_L2_S_PROTO | pa | V4_L2_PROT_W
        if t == L1_TYPE_C:
            table = pd & L1_C_ADDR_MASK
            page = table & ~(PAGE_SIZE - 1)
            pte = self.get_entry(page, (table & (PAGE_SIZE - 1)) // 4 + ((va >> 12) & 0xFF))
            if self.v6:
                return pte & L2_S_FRAME, pte
            if pte == 0:
                return 0, 0
            if pte & L2_TYPE_MASK == L2_TYPE_L:
                return (pte & L2_L_FRAME) | (va & (L2_L_SIZE - 1)), pte
            return pte & L2_S_FRAME, pte
        return 0, 0

    def kva_ptes(self) -> list[tuple[int, int]]:
        """``dump_kextract`` of every page of KVA from KERNBASE to kernel_vm_end."""
        return [self.dump_kextract(va) for va in range(KERNBASE, self.kernel_vm_end, PAGE_SIZE)]

    def minidump_pages(self, ptes: list[tuple[int, int]]) -> list[int]:
        """Pages ``cpu_minidumpsys`` marks: non-zero, dumpable pa of every KVA page."""
        return sorted({pa for pa, _ in ptes if pa != 0 and self.dumpable(pa)})


def attr_to_l2(pte1: int) -> int:
    """pmap-v6.c ``ATTR_TO_L2``: the L2 bits of an L1 section's attributes."""
    pairs = (
        (0x1000, L2_TEX0),  # L1_S_TEX0
        (L1_S_C, L2_C),
        (L1_S_B, L2_B),
        (PTE1_A, PTE2_A),
        (PTE1_NM, PTE2_NM),
        (PTE1_S, PTE2_S),
        (PTE1_NG, PTE2_NG),
        (PTE1_NX, PTE2_NX),
        (PTE1_RO, PTE2_RO),
        (PTE1_U, PTE2_U),
        (PTE1_W, PTE2_W),
    )
    out = 0
    for l1bit, l2bit in pairs:
        if pte1 & l1bit:
            out |= l2bit
    return out
