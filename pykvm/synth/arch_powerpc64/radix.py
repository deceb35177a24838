"""The powerpc64 radix MMU (``mmu_radix``, POWER9 and later).

Sources followed (read, not copied): sys/powerpc/aim/mmu_radix.c (``pte_store``,
``pde_store``: a directory entry is ``pa | RPTE_VALID | RPTE_SHIFT`` with the next-level
size 9 in its low bits; ``mmu_radix_kenter``; ``mmu_radix_dmap_range``: the direct map
in 1 GiB, 2 MiB or 4 KiB leaves with ``DMAP_PAGE_BITS``; every entry is stored
big-endian, ``htobe64``, whatever the kernel's byte order), sys/powerpc/include/pte.h
(``RPTE_*``), formats.md 11.4 and 11.7 (the minidump's page-table section is the root
page directory, 65536 bytes; ``mmu_radix_scan_pmap`` marks every table page and every
leaf page; direct-map leaves only for the kernel image).  The ``mmu_radix_scan_pmap`` /
``mmu_radix_dump_pmap`` pair of FreeBSD main (2026) was not available to read; the
rules above are formats.md's.

Tables: the root has 8192 entries (VA bits 39-51, 64 KiB, 64 KiB aligned), then three
levels of 512 entries (bits 30-38, 21-29, 12-20), one 4 KiB page each.  Leaves:
``RPTE_VALID | RPTE_LEAF | pa | RPTE_R/RPTE_C (reference/change, 0x100/0x80) |
RPTE_EAA_P (0x8) | RPTE_EAA_R (0x4) | RPTE_EAA_W (0x2) | RPTE_EAA_X (0x1)``.

The machine's page tables: the direct map (root entry 0) over every RAM range; in kernel
VA (root entry 4096): under the first 2 MiB a page-table page holding the boot pages
(guard page, thread0 stack, msgbuf, dpcpu, crashdumpmap) and kernel memory; an invalid
2 MiB entry; a 2 MiB leaf onto RAM; a page-table page with a contiguous run, scattered
pages and device mappings onto physical holes; a 2 MiB leaf straddling the end of a RAM
range; with kernel data, a page-table page of kernel-data arena pages after it; and at
``VM_MIN_KERNEL_ADDRESS + 1 GiB`` a 1 GiB leaf onto a physical GiB that is
a hole except for the machine's high RAM range.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ..cmodel import LayoutTruth
from ..kernel import SymbolEntry
from ..machine import Level, RadixTables
from ..spec import KernelSpec
from ..truth import VM_PROT_EXECUTE, VM_PROT_READ, VM_PROT_WRITE, WalkPage
from .machine import (
    DMAP_BASE_ADDRESS,
    MIB,
    PAGE_SHIFT,
    PAGE_SIZE,
    VM_MIN_KERNEL_ADDRESS,
    Ppc64Machine,
)

RPTE_VALID = 0x8000000000000000
RPTE_LEAF = 0x4000000000000000
RPTE_RPN_MASK = 0x00FFFFFFFFFFF000
RPDE_NLB_MASK = 0x00FFFFFFFFFFFF00
RPTE_SHIFT = 9
RPTE_R = 0x100
RPTE_C = 0x80
RPTE_EAA_P = 0x8
RPTE_EAA_R = 0x4
RPTE_EAA_W = 0x2
RPTE_EAA_X = 0x1
RPTE_EAA_MASK = 0xF
DMAP_PAGE_BITS = RPTE_VALID | RPTE_LEAF | RPTE_EAA_MASK | RPTE_C | RPTE_R
#: the root page directory (RADIX_PGD_SIZE), the minidump's page-table section
RADIX_PGD_SIZE = 65536
L2_SIZE = 1 << 30
L3_SIZE = 1 << 21
LEVELS = (Level(39, 13), Level(30, 9), Level(21, 9), Level(12, 9))


def radix_prot(entry: int) -> int:
    """``kp_prot`` of a leaf: READ if R or W, WRITE if W, EXECUTE if X."""
    prot = 0
    if entry & (RPTE_EAA_R | RPTE_EAA_W):
        prot |= VM_PROT_READ
    if entry & RPTE_EAA_W:
        prot |= VM_PROT_WRITE
    if entry & RPTE_EAA_X:
        prot |= VM_PROT_EXECUTE
    return prot


def kernel_leaf(pa: int, *, write: bool = True, exec_: bool = False) -> int:
    """A kernel leaf entry (privileged, referenced, changed when writable)."""
    entry = pa | RPTE_VALID | RPTE_LEAF | RPTE_EAA_P | RPTE_EAA_R | RPTE_R
    if write:
        entry |= RPTE_EAA_W | RPTE_C
    if exec_:
        entry |= RPTE_EAA_X
    return entry


class RadixMachine(Ppc64Machine):
    """The powerpc64 machine under the radix MMU."""

    def __init__(
        self,
        spec: KernelSpec,
        seed: int,
        *,
        relocated: bool | None = None,
        extra_symbols: int = 0,
        types: LayoutTruth | None = None,
        cp_time_symbol: bool = False,
        ctf_section: Callable[[Sequence[SymbolEntry]], bytes] | None = None,
    ) -> None:
        """Build the machine of ``seed`` (``types`` etc.: see :class:`Ppc64Machine`; the
        kernel-data arena gets the page-table page after the straddling 2 MiB leaf)."""
        super().__init__(
            spec,
            seed,
            relocated=relocated,
            extra_symbols=extra_symbols,
            types=types,
            cp_time_symbol=cp_time_symbol,
            ctf_section=ctf_section,
        )
        rng = self._rng
        self.sp_pa = 2 * MIB
        self.reserve(self.sp_pa, self.sp_pa + L3_SIZE)
        s, e = self.segments[2]
        self.straddle_seg_end = e
        self.straddle_pa = (e - 1) & ~(L3_SIZE - 1)
        self.reserve(self.straddle_pa, e)
        self.pt = RadixTables(
            self, LEVELS, lambda child, level: child | RPTE_VALID | RPTE_SHIFT
        )
        # mmu_radix_dmap_range over every physical memory range
        for start, end in self.segments:
            self._dmap_range(start, end)
        self.dmap_leaves = self.leaves
        self.leaves = []

        kb = VM_MIN_KERNEL_ADDRESS
        self.boot_kva()
        # kernel memory in the rest of the first page-table page
        used = (self.kva_next - kb) // PAGE_SIZE
        slots = rng.sample(range(used + 8, 512), rng.between(20, 40))
        self.kind_vas: dict[str, int] = {}
        for i, slot in enumerate(slots):
            kind = ("rw", "ro", "rwx", "rw")[i % 4]
            va = kb + slot * PAGE_SIZE
            self.kind_vas.setdefault(kind, va)
            self.map_kva(va, self.alloc(), write=kind != "ro", exec_=kind == "rwx")
        self.free_va = kb + next(i for i in range(used, 512) if i not in slots) * PAGE_SIZE
        self.invalid_pde_va = kb + L3_SIZE
        self.sp_va = kb + 2 * L3_SIZE
        entry = kernel_leaf(self.sp_pa)
        self.pt.map(self.sp_va, self.sp_pa, 2, entry, radix_prot(entry))
        pt_b = kb + 3 * L3_SIZE
        self.run_len = rng.between(4, 12)
        self.run_va = pt_b + rng.below(64) * PAGE_SIZE
        run_pa = self.alloc(self.run_len)
        for i in range(self.run_len):
            self.map_kva(self.run_va + i * PAGE_SIZE, run_pa + i * PAGE_SIZE)
        taken = set(range(0, 64 + 12))
        free = [i for i in range(512) if i not in taken]
        more = rng.sample(free, rng.between(3, 10) + len(self.hole_addresses()))
        self.hole_vas: list[int] = []
        for slot, target in zip(more, self.hole_addresses(), strict=False):
            va = pt_b + slot * PAGE_SIZE
            entry = target | RPTE_VALID | RPTE_LEAF | RPTE_EAA_P | RPTE_EAA_R | RPTE_EAA_W
            entry |= 0x20  # RPTE_ATTR_GUARDEDIO
            self.pt.map(va, target, 3, entry, radix_prot(entry))
            self.hole_vas.append(va)
        for slot in more[len(self.hole_vas) :]:
            self.map_kva(pt_b + slot * PAGE_SIZE, self.alloc())
        self.straddle_va = kb + 4 * L3_SIZE
        entry = kernel_leaf(self.straddle_pa)
        self.pt.map(self.straddle_va, self.straddle_pa, 2, entry, radix_prot(entry))
        self.g1_va = kb + L2_SIZE
        entry = kernel_leaf(self.high_gib)
        self.pt.map(self.g1_va, self.high_gib, 1, entry, radix_prot(entry))
        self.kernel_vm_end = kb + 5 * L3_SIZE
        self.add_extras()
        if self.add_kernel_data(kb + 5 * L3_SIZE):
            self.kernel_vm_end = kb + 6 * L3_SIZE
        self.fill_kernel(
            hw_direct_map=1,
            pteg_count=0,
            page_array=DMAP_BASE_ADDRESS + self.segments[-1][1] - self.page_array_bytes,
            page_array_size=self.physmem // PAGE_SIZE,
        )
        self.finish()

    def _dmap_range(self, start: int, end: int) -> None:
        while start < end:
            va = DMAP_BASE_ADDRESS | start
            if start % L2_SIZE == 0 and end - start >= L2_SIZE:
                level, size = 1, L2_SIZE
            elif start % L3_SIZE == 0 and end - start >= L3_SIZE:
                level, size = 2, L3_SIZE
            else:
                level, size = 3, PAGE_SIZE
            self.pt.map(va, start, level, start | DMAP_PAGE_BITS, 7)
            start += size

    def kenter(self, va: int, pa: int) -> None:
        """``mmu_radix_kenter``: R, W, privileged, referenced and changed."""
        entry = kernel_leaf(pa)
        self.pt.map(va, pa, 3, entry, radix_prot(entry))

    def map_kva(self, va: int, pa: int, *, write: bool = True, exec_: bool = False) -> None:
        """A kernel page entered with the given protection."""
        entry = kernel_leaf(pa, write=write, exec_=exec_)
        self.pt.map(va, pa, 3, entry, radix_prot(entry))

    # ------------------------------------------------------------------ the dump
    def table_pages(self) -> list[int]:
        """Physical addresses of every table page below the root."""
        return sorted(set(self.pt.children().values()))

    def minidump_pages(self) -> list[int]:
        """What ``mmu_radix_scan_pmap`` marks plus ``dump_add_page``: sorted pfns."""
        marked: set[int] = set()
        for leaf in self.leaves:
            marked.update(self.ram_pfns_in(leaf.pa, leaf.pa + leaf.size))
        marked.update(pa >> PAGE_SHIFT for pa in self.table_pages() if self.dumpable(pa))
        marked.update(pa >> PAGE_SHIFT for pa in self.image_pages() if self.dumpable(pa))
        marked.update(pfn for pfn in self.extras if self.dumpable(pfn << PAGE_SHIFT))
        return sorted(marked)

    def pmap_section(self) -> bytes:
        """The root page directory as it is in memory (big-endian entries)."""
        return bytes(self.tables[self.pt.root])

    def walk(self, offset_of: Callable[[int], int]) -> list[WalkPage]:
        """``ppc64mmu_radix_walk_pages``: kernel-VA leaves in table order."""
        out: list[WalkPage] = []

        def visit(table: int, level: int, va: int) -> None:
            shift = LEVELS[level].shift
            for j in range(1 << LEVELS[level].bits):
                e = self.get_entry(table, j)
                if not e & RPTE_VALID:
                    continue
                subva = va | (j << shift)
                if e & RPTE_LEAF:
                    if subva >= VM_MIN_KERNEL_ADDRESS:
                        size = 1 << shift
                        pa = (e & RPTE_RPN_MASK) & ~(size - 1)
                        out.append(
                            WalkPage(
                                2, pa, subva, DMAP_BASE_ADDRESS + pa, radix_prot(e),
                                offset_of(pa), size,
                            )
                        )
                elif level < 3:
                    visit(e & RPDE_NLB_MASK, level + 1, subva)

        root = self.pt.root
        for i in range(1 << LEVELS[0].bits):
            e = self.get_entry(root, i)
            va = DMAP_BASE_ADDRESS | (i << LEVELS[0].shift)
            if not e & RPTE_VALID or va < VM_MIN_KERNEL_ADDRESS:
                continue
            if e & RPTE_LEAF:
                pa = (e & RPTE_RPN_MASK) & ~((1 << 39) - 1)
                out.append(
                    WalkPage(2, pa, va, DMAP_BASE_ADDRESS + pa, radix_prot(e), offset_of(pa),
                             1 << 39)
                )
                continue
            visit(e & RPDE_NLB_MASK, 1, va)
        return out


__all__ = ["RADIX_PGD_SIZE", "RadixMachine", "kernel_leaf", "radix_prot"]
