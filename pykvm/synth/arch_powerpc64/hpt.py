"""The powerpc64 hashed page table (HPT: ``mmu_g5`` bare metal, ``mmu_phyp`` under a hypervisor).

Sources followed (read, not copied): sys/powerpc/aim/mmu_oea64.c (``init_pvo_entry``:
``pvo_vpn`` and the primary PTEG; ``moea64_pte_from_pvo``; ``moea64_kenter_large``;
``moea64_setup_direct_map``; ``moea64_late_bootstrap``; ``moea64_page_array_startup`` /
``moea64_map_range``; ``moea64_scan_pmap``, the pages a minidump contains, and
``moea64_dump_pmap_init``; ``moea64_early_bootstrap``, the PTEG count),
sys/powerpc/aim/moea64_native.c (``moea64_insert_to_pteg_native``: a random first slot,
the first free one, then the secondary PTEG with ``LPTE_HID``; ``moea64_dump_pmap_native``
dumps the table as it is in memory, big-endian), sys/powerpc/pseries/mmu_phyp.c
(``mphyp_dump_pmap``: each PTE fetched with ``H_READ`` and stored as a native integer,
i.e. in the *kernel's* byte order), sys/powerpc/aim/slb.c (``kernel_va_to_slbv``: a
kernel segment uses 16 MiB pages in the direct map when ``hw_direct_map`` and inside
``vm_page_array``), sys/powerpc/include/slb.h (``KERNEL_VSID``) and pte.h.

One PTE is two 64-bit words.  For a kernel mapping of effective address ``ea`` with base
page shift ``b`` (12, or 24 for a 16 MiB page):

* ``vsid = KERNEL_VSID(ea >> 28)``, ``page = (ea & 0x0ffff000) >> b``,
  primary hash ``(vsid & 0x7fffffffff) ^ page``, PTEG ``hash & (count - 1)``, secondary
  PTEG ``~hash & (count - 1)``;
* ``pte_hi = vsid << 12 | ((ea >> 23) & 0x1f) << 7 | LPTE_WIRED (0x10, kernel pmap_kenter
  mappings) | LPTE_BIG (0x4, 16 MiB) | LPTE_HID (0x2, secondary PTEG) | LPTE_VALID (0x1)``;
* ``pte_lo = pa | WIMG (LPTE_M 0x10 for memory; LPTE_I|LPTE_G 0x28 for devices; LPTE_G
  0x08 also on direct-map pages only partly backed by RAM) | LPTE_REF/LPTE_CHG
  (0x100/0x80, set by hardware) | LPTE_NOEXEC (0x4) without execute permission | PP``
  (``LPTE_BW`` 0b10 writable, ``LPTE_BR`` 0b11 read-only).

The table (``count`` PTEGs of 8 PTEs, 128 bytes each; ``count`` from the RAM size as
``moea64_early_bootstrap`` computes it, or the ``PTEGCOUNT`` kernel option) holds, in the
order the kernel enters them: with ``hw_direct_map`` a 16 MiB page for every 16 MiB of
physical memory at ``DMAP_BASE_ADDRESS | pa`` (without it: 4 KiB direct-map pages of the
kernel image and of the exception vectors, and for ``mmu_g5`` the PTEG table itself
mapped at VA = PA); the boot KVA pages; one 16 MiB page of ``vm_page_array`` at
0xd000000000000000 (a NUMA kernel maps its page array with large pages; the physical
16 MiB chunk is mostly a hole); kernel memory in three 256 MiB segments of KVA, including
read-only and no-execute pages, a contiguous run, device mappings onto physical holes and
a group of pages whose primary PTEGs coincide, so that some land in their secondary PTEG;
with kernel data, the kernel-data arena 16 MiB into the first kernel-memory segment;
three user-process PTEs (VSIDs without ``KERNEL_VSID_BIT``); and for ``mmu_phyp`` one
hypervisor VRMA entry (1 TiB segment, VSID 0x1ffffff).  A ``mmu_g5`` table lives in RAM
(256 KiB aligned, big-endian); a ``mmu_phyp`` table lives in the hypervisor.

``Leaf.entry`` of an HPT mapping is ``pte_hi << 64 | pte_lo``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .._prng import Rng
from ..cmodel import LayoutTruth
from ..elfwriter import ByteOrder
from ..kernel import SymbolEntry
from ..spec import KernelSpec
from ..truth import VM_PROT_EXECUTE, VM_PROT_READ, VM_PROT_WRITE, WalkPage
from .machine import (
    DMAP_BASE_ADDRESS,
    DMAP_MAX_ADDRESS,
    EXC_LAST,
    LARGE_PAGE,
    PAGE_SHIFT,
    PAGE_SIZE,
    SEGMENT_LENGTH,
    VM_MIN_KERNEL_ADDRESS,
    Ppc64Machine,
)

KERNEL_VSID_BIT = 1 << 36
VSID_HASH_MASK = 0x0000007FFFFFFFFF
VSID_VRMA = 0x1FFFFFF
#: where moea64_page_array_startup maps vm_page_array on NUMA kernels
VM_PAGE_BASE = 0xD000000000000000
#: where the kernel-data arena starts in the first kernel-memory segment (past the pages
#: and the run ``_kmem`` maps, which stay below 8.1 MiB)
KDATA_OFFSET = 16 << 20

LPTE_VALID = 0x1
LPTE_HID = 0x2
LPTE_BIG = 0x4
LPTE_WIRED = 0x10
#: pte_hi B field 0b01: a 1 TiB segment (used by the hypervisor's VRMA entries)
LPTE_B_1TB = 1 << 62

LPTE_M = 0x10
LPTE_I = 0x20
LPTE_G = 0x08
LPTE_REF = 0x100
LPTE_CHG = 0x80
LPTE_NOEXEC = 0x4
LPTE_BW = 0x2
LPTE_BR = 0x3

MMUS = ("mmu_phyp", "mmu_g5")


def kernel_vsid(esid: int) -> int:
    """``KERNEL_VSID(esid)`` (sys/powerpc/include/slb.h)."""
    rot = ((esid << 8) | (esid >> 28)) * 0x13BB
    return (rot & (KERNEL_VSID_BIT - 1)) | KERNEL_VSID_BIT


def default_pteg_count(physmem_pages: int) -> int:
    """``moea64_pteg_count`` without the ``PTEGCOUNT`` option (moea64_early_bootstrap)."""
    count = 0x1000
    while count < physmem_pages:
        count <<= 1
    return count >> 1


def hpt_prot(pte_lo: int) -> int:
    """The protection the hardware applies to a kernel access (key 0): READ, WRITE unless
    PP is 0b11, EXECUTE unless ``LPTE_NOEXEC`` (pykvm's rule; libkvm differs)."""
    prot = VM_PROT_READ
    if pte_lo & 0x3 != LPTE_BR:
        prot |= VM_PROT_WRITE
    if not pte_lo & LPTE_NOEXEC:
        prot |= VM_PROT_EXECUTE
    return prot


@dataclass(frozen=True)
class HptEntry:
    """One valid PTE of the table and what it maps (``walk``: a kernel 256 MiB-segment
    mapping a walker reports; user and VRMA entries are not)."""

    pte_hi: int
    pte_lo: int
    ea: int
    size: int
    pa: int
    walk: bool


class HashedPageTable:
    """``count`` PTEGs of 8 PTE slots, filled as ``moea64_pte_insert`` fills them."""

    def __init__(self, count: int, rng: Rng) -> None:
        """An empty table of ``count`` (a power of two) PTEGs."""
        self.count = count
        self.mask = count - 1
        self.slots: list[HptEntry | None] = [None] * (count * 8)
        self._rng = rng

    def insert(self, entry: HptEntry, hash_: int) -> HptEntry:
        """Put ``entry`` in its primary PTEG, else its secondary one (``LPTE_HID``)."""
        for hid, pteg in ((0, hash_ & self.mask), (LPTE_HID, ~hash_ & self.mask)):
            first = self._rng.below(8)
            for j in range(8):
                k = pteg * 8 + (first + j) % 8
                if self.slots[k] is None:
                    placed = HptEntry(
                        entry.pte_hi | hid, entry.pte_lo, entry.ea, entry.size, entry.pa,
                        entry.walk,
                    )
                    self.slots[k] = placed
                    return placed
        raise RuntimeError("moea64_pte_insert: overflow")

    def section(self, byteorder: ByteOrder) -> bytes:
        """The table as ``count * 128`` bytes, each word in ``byteorder``."""
        out = bytearray(self.count * 128)
        order = byteorder
        for k, slot in enumerate(self.slots):
            if slot is not None:
                out[16 * k : 16 * k + 8] = slot.pte_hi.to_bytes(8, order)
                out[16 * k + 8 : 16 * k + 16] = slot.pte_lo.to_bytes(8, order)
        return bytes(out)


@dataclass(frozen=True)
class Pvo:
    """A kernel-pmap mapping ``moea64_scan_pmap`` visits."""

    va: int
    size: int
    pa: int


class HptMachine(Ppc64Machine):
    """The powerpc64 machine under the HPT MMU."""

    def __init__(
        self,
        spec: KernelSpec,
        seed: int,
        *,
        mmu: str = "mmu_phyp",
        hw_direct_map: bool = True,
        pteg_count: int | None = None,
        relocated: bool | None = None,
        extra_symbols: int = 0,
        types: LayoutTruth | None = None,
        cp_time_symbol: bool = False,
        ctf_section: Callable[[Sequence[SymbolEntry]], bytes] | None = None,
    ) -> None:
        """Build the machine of ``seed`` (``types`` etc.: see :class:`Ppc64Machine`; the
        kernel-data arena is at ``KDATA_OFFSET`` into the first kernel-memory segment)."""
        if mmu not in MMUS:
            raise ValueError(f"HPT mmu must be one of {MMUS}")
        super().__init__(
            spec,
            seed,
            relocated=relocated,
            extra_symbols=extra_symbols,
            types=types,
            cp_time_symbol=cp_time_symbol,
            ctf_section=ctf_section,
        )
        self.mmu = mmu
        self.hw_direct_map = hw_direct_map
        rng = self._rng
        count = pteg_count or default_pteg_count(self.physmem // PAGE_SIZE)
        if count & (count - 1) or not 0x800 <= count <= 1 << 20:
            raise ValueError("pteg_count must be a power of two from 2048 to 1048576")
        self.hpt = HashedPageTable(count, Rng(seed, "powerpc64-hpt-slots"))
        self.pvos: list[Pvo] = []
        self.table_pa = 0
        if mmu == "mmu_g5":
            size = count * 128
            self.table_pa = self.alloc(size // PAGE_SIZE, max(256 * 1024, size))
            self.new_table(self.table_pa, size)

        # moea64_setup_direct_map
        if hw_direct_map:
            chunks = sorted(
                {
                    c
                    for s, e in self.segments
                    for c in range(s & ~(LARGE_PAGE - 1), e, LARGE_PAGE)
                }
            )
            for chunk in chunks:
                full = any(s <= chunk and chunk + LARGE_PAGE <= e for s, e in self.segments)
                lo = chunk | LPTE_M | LPTE_BW | (0 if full else LPTE_G)
                self._enter(DMAP_BASE_ADDRESS | chunk, LARGE_PAGE, chunk, lo)
        else:
            for pa in self.image_pages():
                self._enter(DMAP_BASE_ADDRESS | pa, PAGE_SIZE, pa, pa | LPTE_M | LPTE_BW)
            for pa in range(0, EXC_LAST, PAGE_SIZE):
                self._enter(DMAP_BASE_ADDRESS | pa, PAGE_SIZE, pa, pa | LPTE_M | LPTE_BW)
            if self.table_pa:
                for pa in range(self.table_pa, self.table_pa + count * 128, PAGE_SIZE):
                    self._enter(pa, PAGE_SIZE, pa, pa | LPTE_M | LPTE_BW)

        # moea64_late_bootstrap
        self.boot_kva()
        # moea64_page_array_startup (NUMA): one 16 MiB page
        self.page_array_va = VM_PAGE_BASE
        self.page_array_pa = self.high_chunk
        self._enter(VM_PAGE_BASE, LARGE_PAGE, self.high_chunk, self.high_chunk | LPTE_M | LPTE_BW)
        self._kmem(rng)
        self._foreign(rng)
        self.add_extras()
        if self.add_kernel_data(self.kmem_va + KDATA_OFFSET):
            self.kernel_vm_end = max(
                leaf.va + leaf.size for leaf in self.leaves if leaf.va < VM_PAGE_BASE
            )
        # vm_page_base is scooted up by size - needed: the array ends with the page
        self.fill_kernel(
            hw_direct_map=int(hw_direct_map),
            pteg_count=count,
            page_array=VM_PAGE_BASE + LARGE_PAGE - self.page_array_bytes,
            page_array_size=self.physmem // PAGE_SIZE,
        )
        if self.table_pa:
            self.tables[self.table_pa][:] = self.hpt.section("big")
        self.finish()

    # ------------------------------------------------------------------ entering PTEs
    def _enter(
        self, ea: int, size: int, pa: int, lo: int, *, wired: bool = True
    ) -> HptEntry:
        vsid = kernel_vsid(ea >> 28)
        shift = 24 if size == LARGE_PAGE else PAGE_SHIFT
        page = (ea & 0x0FFFF000) >> shift
        hi = (vsid << 12) | (((ea >> 23) & 0x1F) << 7) | LPTE_VALID
        if size == LARGE_PAGE:
            hi |= LPTE_BIG
        if wired:
            hi |= LPTE_WIRED
        if self._rng.chance(1, 2):
            lo |= LPTE_REF | (LPTE_CHG if lo & 0x3 != LPTE_BR else 0)
        placed = self.hpt.insert(
            HptEntry(hi, lo, ea, size, pa, True), (vsid & VSID_HASH_MASK) ^ page
        )
        self.pvos.append(Pvo(ea, size, pa))
        if ea >= VM_MIN_KERNEL_ADDRESS:
            self.add_leaf(ea, size, pa, (placed.pte_hi << 64) | placed.pte_lo, hpt_prot(lo))
        return placed

    def kenter(self, va: int, pa: int) -> None:
        """``moea64_kenter``: wired, read/write/execute."""
        self._enter(va, PAGE_SIZE, pa, pa | LPTE_M | LPTE_BW)

    def map_kva(self, va: int, pa: int, *, write: bool = True, exec_: bool = False) -> None:
        """``moea64_enter`` of a kernel page (wired, the given protection)."""
        lo = pa | LPTE_M | (LPTE_BW if write else LPTE_BR) | (0 if exec_ else LPTE_NOEXEC)
        self._enter(va, PAGE_SIZE, pa, lo)

    # ------------------------------------------------------------------ kernel memory
    def _kmem(self, rng: Rng) -> None:
        segs = rng.sample(range(1, 120), 3)
        s1 = VM_MIN_KERNEL_ADDRESS + segs[0] * SEGMENT_LENGTH
        self.kmem_va = s1
        slots = rng.sample(range(512), rng.between(24, 40))
        holes = self.hole_addresses()
        self.hole_vas: list[int] = []
        for slot, target in zip(slots, holes, strict=False):
            va = s1 + slot * PAGE_SIZE
            self._enter(va, PAGE_SIZE, target, target | LPTE_I | LPTE_G | LPTE_BW)
            self.hole_vas.append(va)
        self.free_va = s1 + next(i for i in range(512) if i not in slots) * PAGE_SIZE
        slots = slots[len(holes) :]
        self.kind_vas: dict[str, int] = {}
        for i, slot in enumerate(slots):
            va = s1 + slot * PAGE_SIZE
            kind = ("rw", "ro", "rwx", "rw")[i % 4]
            self.kind_vas.setdefault(kind, va)
            self.map_kva(va, self.alloc(), write=kind != "ro", exec_=kind == "rwx")
        # a contiguous run (kmem_malloc of a multi-page object)
        self.run_len = rng.between(4, 12)
        self.run_va = s1 + (1024 + rng.below(1024)) * PAGE_SIZE
        run_pa = self.alloc(self.run_len)
        for i in range(self.run_len):
            self.map_kva(self.run_va + i * PAGE_SIZE, run_pa + i * PAGE_SIZE)
        # pages whose primary PTEGs coincide: the ninth and later go to the secondary
        self.collide_vas: list[int] = []
        count = self.hpt.count
        first_seg = VM_MIN_KERNEL_ADDRESS + segs[1] * SEGMENT_LENGTH
        p0 = 2048 + rng.below(2048)
        target = (kernel_vsid(first_seg >> 28) ^ p0) & self.hpt.mask
        candidates = [segs[1], segs[2], *[s for s in range(120, 127)]]
        for seg in candidates:
            ea0 = VM_MIN_KERNEL_ADDRESS + seg * SEGMENT_LENGTH
            base = (target ^ kernel_vsid(ea0 >> 28)) & self.hpt.mask
            for page in range(base, 1 << 16, count):
                if len(self.collide_vas) >= 11:
                    break
                self.collide_vas.append(ea0 + page * PAGE_SIZE)
        for va in self.collide_vas:
            self.map_kva(va, self.alloc())
        self.kernel_vm_end = max(
            leaf.va + leaf.size for leaf in self.leaves if leaf.va < VM_PAGE_BASE
        )

    def _foreign(self, rng: Rng) -> None:
        """User-process PTEs and, under a hypervisor, a VRMA entry: not kernel mappings."""
        for _ in range(3):
            vsid = rng.between(1, KERNEL_VSID_BIT - 1)
            ea = rng.below(1 << 40) & ~(PAGE_SIZE - 1)
            page = (ea & 0x0FFFF000) >> PAGE_SHIFT
            pa = self.alloc()
            hi = (vsid << 12) | (((ea >> 23) & 0x1F) << 7) | LPTE_VALID
            lo = pa | LPTE_M | LPTE_BW | LPTE_NOEXEC
            entry = HptEntry(hi, lo, ea, PAGE_SIZE, pa, False)
            self.hpt.insert(entry, (vsid & VSID_HASH_MASK) ^ page)
        if self.mmu == "mmu_phyp":
            hi = LPTE_B_1TB | (VSID_VRMA << 24) | LPTE_BIG | LPTE_VALID
            lo = LPTE_M | LPTE_BW
            self.hpt.insert(HptEntry(hi, lo, 0, LARGE_PAGE, 0, False), rng.below(self.hpt.count))

    # ------------------------------------------------------------------ the dump
    def minidump_pages(self) -> list[int]:
        """``moea64_scan_pmap`` plus ``dump_add_page``: sorted page frame numbers."""
        kstart = (self.link_etext + self.disp) & ~(PAGE_SIZE - 1)
        kend = -(-(self.link_end + self.disp) // PAGE_SIZE) * PAGE_SIZE
        kstart_lp = kstart & ~(LARGE_PAGE - 1)
        kend_lp = -(-kend // LARGE_PAGE) * LARGE_PAGE
        marked: set[int] = set()
        for pvo in self.pvos:
            if DMAP_BASE_ADDRESS <= pvo.va <= DMAP_MAX_ADDRESS:
                if pvo.size == LARGE_PAGE:
                    if not kstart_lp <= pvo.va < kend_lp:
                        continue
                elif not kstart <= pvo.va < kend:
                    continue
            marked.update(self.ram_pfns_in(pvo.pa, pvo.pa + pvo.size))
        marked.update(pfn for pfn in self.extras if self.dumpable(pfn << PAGE_SHIFT))
        return sorted(marked)

    def pmap_section(self) -> bytes:
        """``dumpsys_dump_pmap``: ``mmu_g5`` the raw (big-endian) table, ``mmu_phyp`` the
        ``H_READ`` results as native integers (kernel byte order)."""
        return self.hpt.section("big" if self.mmu == "mmu_g5" else self.spec.byteorder)

    def walk(self, offset_of: Callable[[int], int]) -> list[WalkPage]:
        """``kvm_walk_pages`` records (pykvm's rules): every valid kernel PTE in slot order
        with its true effective address, the hardware protection and a 4 KiB offset."""
        out: list[WalkPage] = []
        for slot in self.hpt.slots:
            if slot is None or not slot.walk:
                continue
            out.append(
                WalkPage(
                    2,
                    slot.pa,
                    slot.ea,
                    DMAP_BASE_ADDRESS + slot.pa,
                    hpt_prot(slot.pte_lo),
                    offset_of(slot.pa),
                    slot.size,
                )
            )
        return out


__all__ = [
    "MMUS",
    "VM_PAGE_BASE",
    "HashedPageTable",
    "HptEntry",
    "HptMachine",
    "default_pteg_count",
    "hpt_prot",
    "kernel_vsid",
]
