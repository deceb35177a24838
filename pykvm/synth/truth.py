"""Ground truth of a synthetic dump: what a correct reader must see.

Everything here is computed from the machine model that produced the files (page tables,
physical memory contents, the set of dumped pages), never by parsing the files, so a
reader tested against it cannot share a misunderstanding with the writer.
"""

from __future__ import annotations

import pathlib
from bisect import bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from .elfwriter import Phdr
from .kernel import SymbolEntry

PAGE_SIZE = 4096
PAGE_MASK = PAGE_SIZE - 1

VM_PROT_READ = 0x01
VM_PROT_WRITE = 0x02
VM_PROT_EXECUTE = 0x04


@dataclass(frozen=True)
class WalkPage:
    """One record of libkvm's ``kvm_walk_pages`` (``struct kvm_page``, version 2).

    ``offset`` is the byte offset of the page data in the vmcore (for a superpage, of its
    first 4 KiB page), or -1 when that page is not in the dump.
    """

    version: int
    paddr: int
    kmap_vaddr: int
    dmap_vaddr: int
    prot: int
    offset: int
    len: int


@dataclass(frozen=True)
class Leaf:
    """One leaf translation of the kernel page tables (a PTE, 2 MiB PDE or 1 GiB PDPE).

    ``entry`` is the raw 64-bit entry as stored in the page table.
    """

    va: int
    size: int
    pa: int
    entry: int


class PhysicalMemory:
    """The machine's RAM: a few pages with fixed contents, the rest pseudo-random.

    ``page_source(pa)`` supplies ordinary pages lazily; ``overrides`` maps a page frame
    number to the 4096 bytes of a page whose contents the model fixes (page tables, the
    kernel image, the message buffer).
    """

    def __init__(self, page_source: Callable[[int], bytes], overrides: dict[int, bytes]) -> None:
        """Wrap a lazy page generator and the fixed pages."""
        self._source = page_source
        self._overrides = overrides

    def page(self, pfn: int) -> bytes:
        """Return the 4096 bytes of page frame ``pfn``."""
        fixed = self._overrides.get(pfn)
        if fixed is not None:
            return fixed
        return self._source(pfn * PAGE_SIZE)

    def read(self, pa: int, size: int) -> bytes:
        """Return ``size`` bytes of physical memory starting at ``pa``."""
        out = []
        while size > 0:
            off = pa & PAGE_MASK
            n = min(size, PAGE_SIZE - off)
            out.append(self.page(pa >> 12)[off : off + n])
            pa += n
            size -= n
        return b"".join(out)


class AddressSpace:
    """Sorted translation ranges plus the readable physical ranges, for fast lookups.

    ``ranges`` holds ``(va_start, va_end, pa_start)`` triples (non-overlapping); inside a
    range ``pa = pa_start + (va - va_start)``.  ``readable`` holds sorted, disjoint
    physical intervals ``(start, end)`` whose bytes the core file contains.
    """

    def __init__(
        self,
        ranges: Sequence[tuple[int, int, int]],
        readable: Sequence[tuple[int, int]],
        memory: PhysicalMemory,
    ) -> None:
        """Index the ranges for bisection."""
        ordered = sorted(ranges)
        for (_, end, _), (start, _, _) in zip(ordered, ordered[1:], strict=False):
            if start < end:
                raise ValueError("overlapping translation ranges")
        self._vstarts = [r[0] for r in ordered]
        self._vends = [r[1] for r in ordered]
        self._pas = [r[2] for r in ordered]
        self._pstarts = [r[0] for r in readable]
        self._pends = [r[1] for r in readable]
        self.memory = memory

    def phys_readable(self, pa: int, size: int) -> bool:
        """Return True when every byte of ``[pa, pa + size)`` is in the core file."""
        while size > 0:
            j = bisect_right(self._pstarts, pa) - 1
            if j < 0 or pa >= self._pends[j]:
                return False
            n = min(size, self._pends[j] - pa)
            pa += n
            size -= n
        return True

    def translate(self, va: int) -> tuple[int, int] | None:
        """Return ``(pa, bytes left in the range)`` for ``va``, or None if unmapped."""
        i = bisect_right(self._vstarts, va) - 1
        if i < 0 or va >= self._vends[i]:
            return None
        return self._pas[i] + (va - self._vstarts[i]), self._vends[i] - va

    def read(self, va: int, size: int) -> bytes | None:
        """Return the bytes at ``[va, va + size)`` or None if any byte is unreadable."""
        if size < 0:
            raise ValueError("negative size")
        out = []
        while size > 0:
            hit = self.translate(va)
            if hit is None:
                return None
            pa, left = hit
            n = min(size, left)
            if not self.phys_readable(pa, n):
                return None
            out.append(self.memory.read(pa, n))
            va += n
            size -= n
        return b"".join(out)


@dataclass(frozen=True)
class GroundTruth:
    """What a correct reader must see in one synthetic kernel + vmcore pair.

    Addresses are plain ints.  ``expect()`` answers for any virtual address; ``regions``
    and ``holes`` are a varied, ready-made sample of readable ranges and failing addresses.
    Formats: ``minidump-v1``, ``minidump-v2``, ``minidump-v3`` and ``elf``.
    """

    fmt: str
    #: minidump header version (1, 2 or 3); 0 for ELF full dumps
    version: int
    page_size: int
    #: the minidump header's ``kernbase`` (VM_MIN_KERNEL_ADDRESS for v2/v3 and ELF,
    #: KERNBASE for v1)
    kernbase: int
    #: the link base of the kernel, 0xffffffff80000000
    KERNBASE: int
    #: VM_MIN_KERNEL_ADDRESS of the machine (first KVA covered by the v2/v3 pmap section)
    vm_min_kernel_address: int
    dmapbase: int
    dmapend: int
    #: physical load address of the kernel image (KERNBASE + 2 MiB maps here)
    kernphys: int
    #: physical address of the kernel PML4 page (the value of the variable KPML4phys)
    kpml4phys: int
    kernel_vm_end: int
    nkpt: int
    dump_avail: list[tuple[int, int]]
    #: bytes of RAM (sum of the dump_avail ranges)
    physmem: int
    #: 4 KiB pages of page data in the core (bits set in the bitmap; PT_LOAD pages for ELF)
    dumped_pages: int
    msgbuf: bytes
    #: name -> st_value; for a duplicated name the value of its FIRST entry in table order,
    #: which is what libc's nlist returns for a one-name lookup (the scan stops at the
    #: first match); every value is listed in ``duplicates``
    symbols: dict[str, int]
    #: names that occur more than once -> every st_value in table order
    duplicates: dict[str, list[int]]
    #: name -> a.out n_type libc's __fdnlist produces (first entry for duplicates)
    nlist_types: dict[str, int]
    #: the whole symbol table in order (entry 0, the null symbol, omitted)
    symbol_table: list[SymbolEntry]
    #: in-memory bytes of the kernel variables the machine gave values to
    variables: dict[str, bytes]
    regions: list[tuple[int, bytes]]
    holes: list[int]
    walk: list[WalkPage]
    #: program headers of the ELF full dump (empty for minidumps)
    phdrs: list[Phdr]
    #: minidump section geometry: msgbufsize, bitmapsize, pmapsize, dumpavailsize and the
    #: file offsets msgbuf_off, dump_avail_off, bitmap_off, pmap_off, sparse_off
    layout: dict[str, int]
    #: every leaf translation of the kernel map (below the direct map), sorted by va
    leaves: list[Leaf]
    #: what each address in ``holes`` is, same order: ``invalid-pde``, ``invalid-pte``,
    #: ``pte-to-physical-hole``, ``pte-to-nodump-page``, ``superpage-hole``,
    #: ``1g-page-hole``, ``dmap-physical-hole``, ``dmap-not-dumped``, ``dmap-beyond-ram``,
    #: ``unmapped-kva-gib``, ``above-kva``, ``user``, ``kernel-half-unmapped``,
    #: ``between-dmap-and-kva``, ``below-kernbase-v1`` (only kinds that fail in this format)
    hole_kinds: list[str] = field(default_factory=list)
    #: ``(start va, length in bytes)`` of the contiguous bulk range (``bulk_mib``): 2 MiB
    #: superpages onto one dump_avail range, every page in the dump; None without it
    bulk: tuple[int, int] | None = None
    _space: AddressSpace | None = field(default=None, repr=False, compare=False)
    _offsets: Callable[[int], int] | None = field(default=None, repr=False, compare=False)

    def expect(self, va: int, size: int) -> bytes | None:
        """Return the bytes a reader must return for ``[va, va + size)``, or None.

        None means at least one byte is unreadable: unmapped, or mapped to a physical page
        the core file does not contain.  Works for any address (bisection over page-level
        maps; nothing is scanned byte by byte).
        """
        assert self._space is not None
        return self._space.read(va, size)

    def translate(self, va: int) -> int | None:
        """Return the physical address ``va`` maps to in the format's view, or None."""
        assert self._space is not None
        hit = self._space.translate(va)
        return None if hit is None else hit[0]

    def phys_expect(self, pa: int, size: int) -> bytes | None:
        """Return physical bytes ``[pa, pa + size)`` if the core contains them all."""
        assert self._space is not None
        if not self._space.phys_readable(pa, size):
            return None
        return self._space.memory.read(pa, size)

    def core_offset(self, pa: int) -> int | None:
        """Return the vmcore file offset holding physical address ``pa``, or None."""
        assert self._offsets is not None
        off = self._offsets(pa & ~PAGE_MASK)
        return None if off < 0 else off + (pa & PAGE_MASK)

    def nlist(self, name: str) -> tuple[int, int] | None:
        """Resolve ``name`` like libc's ``__fdnlist`` for a single-entry list.

        Scans the table in order; an entry matches when the names are equal or when
        ``name`` starts with ``_`` and ``name[1:]`` equals the symbol's name.  The scan
        stops at the first match because one entry is outstanding.  Returns
        ``(n_type, n_value)`` or None when nothing matched.
        """
        for sym in self.symbol_table:
            if not sym.name:
                continue
            if sym.name == name or (name.startswith("_") and name[1:] == sym.name):
                return sym.nlist_type, sym.value
        return None


@dataclass(frozen=True)
class SynthDump:
    """A synthetic kernel and vmcore written to disk, with their ground truth."""

    kernel: pathlib.Path
    core: pathlib.Path
    arch: str
    fmt: str
    truth: GroundTruth
