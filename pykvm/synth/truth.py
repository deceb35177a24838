"""Ground truth of a synthetic dump: what a correct reader must see, for every architecture.

Everything here is computed from the machine model that produced the files (page tables,
physical memory contents, the set of dumped pages), never by parsing the files, so a
reader tested against it cannot share a misunderstanding with the writer.

The pieces an architecture module uses: :class:`PhysicalMemory` (RAM contents),
:class:`AddressSpace` (the format's view: virtual ranges onto physical memory, and which
physical bytes the core holds), :func:`runs` (dumped page numbers to readable intervals),
:func:`pick_regions` and :func:`pick_holes` (the ``regions``/``holes`` samples) and
:func:`make_truth`, which assembles a :class:`GroundTruth` with the symbol facts taken
from the :class:`~pykvm.synth.kernel.SynthKernel`.
"""

from __future__ import annotations

import pathlib
from bisect import bisect_right
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .cmodel import LayoutTruth
from .elfwriter import Phdr
from .kernel import SymbolEntry
from .kerneldata import KernelDataTruth

if TYPE_CHECKING:
    from .kernel import SynthKernel
    from .spec import KernelSpec

PAGE_SIZE = 4096
PAGE_MASK = PAGE_SIZE - 1

VM_PROT_READ = 0x01
VM_PROT_WRITE = 0x02
VM_PROT_EXECUTE = 0x04


@dataclass(frozen=True)
class WalkPage:
    """One record of libkvm's ``kvm_walk_pages`` (``struct kvm_page``, version 2).

    ``offset`` is the byte offset of the page data in the vmcore (for a superpage, of its
    first page), or -1 when that page is not in the dump.
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
    """One leaf translation of the kernel page tables (amd64: a PTE, 2 MiB PDE or 1 GiB PDPE).

    ``entry`` is the raw entry as stored in the page table (for formats whose leaf is not
    one integer, such as a powerpc64 HPT PTE, whatever integer the architecture documents);
    ``prot`` the ``VM_PROT_*`` bits the hardware grants (0 when the architecture does not
    record them).
    """

    va: int
    size: int
    pa: int
    entry: int
    prot: int = 0


class PhysicalMemory:
    """The machine's RAM: a few pages with fixed contents, the rest pseudo-random.

    ``page_source(pa)`` supplies ordinary pages lazily; ``overrides`` maps a page frame
    number (``pa // page_size``) to the ``page_size`` bytes of a page whose contents the
    model fixes (page tables, the kernel image, the message buffer).
    """

    def __init__(
        self,
        page_source: Callable[[int], bytes],
        overrides: dict[int, bytes],
        page_size: int = PAGE_SIZE,
    ) -> None:
        """Wrap a lazy page generator and the fixed pages."""
        self._source = page_source
        self._overrides = overrides
        self.page_size = page_size
        self._shift = page_size.bit_length() - 1

    def page(self, pfn: int) -> bytes:
        """Return the ``page_size`` bytes of page frame ``pfn``."""
        fixed = self._overrides.get(pfn)
        if fixed is not None:
            return fixed
        return self._source(pfn * self.page_size)

    def read(self, pa: int, size: int) -> bytes:
        """Return ``size`` bytes of physical memory starting at ``pa``."""
        out = []
        ps = self.page_size
        while size > 0:
            off = pa & (ps - 1)
            n = min(size, ps - off)
            out.append(self.page(pa >> self._shift)[off : off + n])
            pa += n
            size -= n
        return b"".join(out)

    def chunks(self, start: int, end: int, batch: int = 256) -> Iterable[bytes]:
        """Yield the bytes of ``[start, end)`` in pieces of up to ``batch`` pages."""
        step = batch * self.page_size
        while start < end:
            n = min(step, end - start)
            if not start % self.page_size and not n % self.page_size:
                first = start >> self._shift
                yield b"".join(self.page(first + i) for i in range(n >> self._shift))
            else:
                yield self.read(start, n)
            start += n


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

    The same shape for every architecture.  Addresses are plain ints.  ``expect()``
    answers for any virtual address; ``regions`` and ``holes`` are a varied, ready-made
    sample of readable ranges and failing addresses.  Fields that an architecture or
    format lacks are 0 (or empty); architecture-specific scalars live in ``extras``.
    """

    fmt: str
    #: minidump header version; 0 for ELF full dumps
    version: int
    #: page size of the dump (the minidump's PS; 4096 or 16384)
    page_size: int
    #: the minidump header's ``kernbase`` (amd64: VM_MIN_KERNEL_ADDRESS for v2/v3 and ELF,
    #: KERNBASE for v1); for formats without one, the kernel's KERNBASE
    kernbase: int
    #: the link base of the kernel, the value of the symbol ``kernbase`` (amd64
    #: 0xffffffff80000000)
    KERNBASE: int
    dump_avail: list[tuple[int, int]]
    #: bytes of RAM (sum of the dump_avail ranges)
    physmem: int
    #: pages of page data in the core (bits set in the bitmap; PT_LOAD pages for ELF)
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
    #: in-memory bytes of the kernel variables (kernel byte order and word size)
    variables: dict[str, bytes]
    regions: list[tuple[int, bytes]]
    holes: list[int]
    #: ``kvm_walk_pages`` records in libkvm's order (empty when the format has no walker)
    walk: list[WalkPage]
    #: program headers of the ELF full dump (empty for minidumps)
    phdrs: list[Phdr]
    #: minidump section geometry: msgbufsize, bitmapsize, pmapsize, dumpavailsize, the
    #: file offsets msgbuf_off, dump_avail_off, bitmap_off, pmap_off, sparse_off, and
    #: file_size (empty for ELF dumps, which may record their own keys)
    layout: dict[str, int]
    #: every leaf translation of the kernel map (amd64: below the direct map), sorted by va
    leaves: list[Leaf]
    #: what each address in ``holes`` is, same order.  Shared vocabulary (an architecture
    #: may add its own): ``invalid-pde``, ``invalid-pte``, ``pte-to-physical-hole``,
    #: ``pte-to-nodump-page``, ``superpage-hole``, ``dmap-physical-hole``,
    #: ``dmap-not-dumped``, ``dmap-beyond-ram``, ``unmapped-kva``, ``above-kva``,
    #: ``user``; amd64 also ``1g-page-hole``, ``unmapped-kva-gib``,
    #: ``kernel-half-unmapped``, ``between-dmap-and-kva``, ``below-kernbase-v1`` (only
    #: kinds that fail in this format are listed)
    hole_kinds: list[str] = field(default_factory=list)
    #: VM_MIN_KERNEL_ADDRESS of the machine (0 if the architecture has no such notion)
    vm_min_kernel_address: int = 0
    #: the direct map ``[dmapbase, dmapend)``; both 0 without a direct map
    dmapbase: int = 0
    dmapend: int = 0
    #: physical load address of the kernel image (the image's first byte)
    kernphys: int = 0
    #: amd64: physical address of the kernel PML4 page (the value of ``KPML4phys``)
    kpml4phys: int = 0
    kernel_vm_end: int = 0
    #: amd64 and i386: ``nkpt``
    nkpt: int = 0
    #: ``kvm_kerndisp``: 0 unless the format records a displacement (powerpc64 minidump)
    kerndisp: int = 0
    #: architecture-specific facts by name (amd64: ``kpml4phys``, ``nkpt``; i386 might
    #: give ``IdlePTD``, arm ``kernel_l1pa``): documented by each architecture module
    extras: dict[str, int] = field(default_factory=dict)
    #: ``(start va, length in bytes)`` of amd64's contiguous bulk range (``bulk_mib``): 2 MiB
    #: superpages onto one dump_avail range, every page in the dump; None without it
    bulk: tuple[int, int] | None = None
    #: the target the kernel was written for (class, byte order, machine, page size)
    spec: KernelSpec | None = field(default=None, repr=False)
    #: the layout of the kernel's structures when it carries type information (CTF or a
    #: ``kernel.debug``) and kernel data; None otherwise
    type_layout: LayoutTruth | None = field(default=None, repr=False)
    #: what the kernel-data calls must find (processes, swap, load, per-CPU, msgbuf)
    kernel_data: KernelDataTruth | None = field(default=None, repr=False)
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
        mask = self.page_size - 1
        off = self._offsets(pa & ~mask)
        return None if off < 0 else off + (pa & mask)

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
    #: the separate DWARF file (``kernel.debug``) when one was written
    debug: pathlib.Path | None = None


# ---------------------------------------------------------------------------- helpers
def runs(pfns: Iterable[int], page_size: int = PAGE_SIZE) -> list[tuple[int, int]]:
    """Merge sorted page frame numbers into physical ``(start, end)`` intervals."""
    out: list[tuple[int, int]] = []
    for pfn in pfns:
        pa = pfn * page_size
        if out and out[-1][1] == pa:
            out[-1] = (out[-1][0], pa + page_size)
        else:
            out.append((pa, pa + page_size))
    return out


def leaf_ranges(
    leaves: Iterable[Leaf], lo: int = 0, hi: int | None = None
) -> list[tuple[int, int, int]]:
    """``(va_start, va_end, pa_start)`` of the leaves with ``lo <= va < hi`` (for
    :class:`AddressSpace`)."""
    return [
        (leaf.va, leaf.va + leaf.size, leaf.pa)
        for leaf in leaves
        if lo <= leaf.va and (hi is None or leaf.va < hi)
    ]


def symbol_truth(
    kernel: SynthKernel,
) -> tuple[dict[str, int], dict[str, list[int]], dict[str, int]]:
    """Return ``(symbols, duplicates, nlist_types)`` of ``kernel`` (see :class:`GroundTruth`)."""
    symbols: dict[str, int] = {}
    types: dict[str, int] = {}
    every: dict[str, list[int]] = {}
    for sym in kernel.symbols():
        if not sym.name:
            continue
        every.setdefault(sym.name, []).append(sym.value)
        if sym.name not in symbols:
            symbols[sym.name] = sym.value
            types[sym.name] = sym.nlist_type
    duplicates = {name: values for name, values in every.items() if len(values) > 1}
    return symbols, duplicates, types


def pick_regions(
    space: AddressSpace,
    want: Iterable[tuple[int, int]],
    must: Iterable[int] = (),
    what: str = "",
) -> list[tuple[int, bytes]]:
    """Read every wanted ``(va, size)`` range through ``space``; keep the readable ones.

    Raises AssertionError when an address of ``must`` is not the start of a kept region
    (the machine model and the format disagree: a writer bug worth stopping for).
    """
    regions: list[tuple[int, bytes]] = []
    for va, size in want:
        data = space.read(va, size)
        if data is not None:
            regions.append((va, data))
    got = {va for va, _ in regions}
    missing = [hex(va) for va in must if va not in got]
    if missing:
        raise AssertionError(f"synthetic machine: expected readable {missing} ({what})")
    return regions


def pick_holes(
    space: AddressSpace, candidates: Iterable[tuple[str, int]]
) -> tuple[list[int], list[str]]:
    """Keep the ``(kind, va)`` candidates whose first byte is unreadable in ``space``.

    Returns ``(holes, hole_kinds)`` in candidate order.
    """
    holes: list[int] = []
    kinds: list[str] = []
    for kind, va in candidates:
        if space.read(va, 1) is None:
            holes.append(va)
            kinds.append(kind)
    return holes, kinds


def kernel_regions(
    kernel: SynthKernel, variables: Sequence[str] = ("ostype", "hz")
) -> list[tuple[int, int]]:
    """The standard kernel samples ``(va, size)``: the version string, the image's ELF
    header, the whole ``.data`` section, a range straddling the end of the first text
    page, then each variable of ``variables`` (its full size)."""
    k = kernel
    want = [
        (k.var_address("version"), len(k.version_string)),
        (k.image_va, 64),  # the ELF header, mapped by the first PT_LOAD
        (k.image_va + k.data_off, k.data_size),
        (k.image_va + k.text_off + k.page_size - 24, 48),
    ]
    want += [(k.var_address(name), k.var_size(name)) for name in variables]
    return want


def leaf_regions(
    leaves: Sequence[Leaf], page_size: int = PAGE_SIZE, count: int = 48
) -> list[tuple[int, int]]:
    """About ``count`` evenly spread one-page samples of the ``page_size`` leaves."""
    small = [leaf for leaf in leaves if leaf.size == page_size]
    return [(leaf.va, page_size) for leaf in small[:: max(1, len(small) // count)]]


def make_truth(
    kernel: SynthKernel,
    *,
    fmt: str,
    version: int,
    kernbase: int,
    dump_avail: Sequence[tuple[int, int]],
    dumped_pages: int,
    msgbuf: bytes,
    space: AddressSpace,
    offsets: Callable[[int], int],
    regions: list[tuple[int, bytes]],
    holes: list[int],
    hole_kinds: list[str],
    walk: Sequence[WalkPage] = (),
    phdrs: Sequence[Phdr] = (),
    layout: dict[str, int] | None = None,
    leaves: Sequence[Leaf] = (),
    page_size: int | None = None,
    vm_min_kernel_address: int = 0,
    dmapbase: int = 0,
    dmapend: int = 0,
    kernphys: int = 0,
    kernel_vm_end: int = 0,
    kerndisp: int = 0,
    extras: dict[str, int] | None = None,
    kpml4phys: int = 0,
    nkpt: int = 0,
    bulk: tuple[int, int] | None = None,
) -> GroundTruth:
    """Assemble a :class:`GroundTruth` for ``kernel`` as seen through one dump format.

    Symbol facts, variables, ``KERNBASE`` and the spec come from the kernel; ``physmem``
    is the sum of ``dump_avail``; ``page_size`` defaults to the kernel's.  The keyword
    arguments after it are the :class:`GroundTruth` fields of the same names.
    """
    if len(holes) != len(hole_kinds):
        raise ValueError("holes and hole_kinds differ in length")
    symbols, duplicates, types = symbol_truth(kernel)
    return GroundTruth(
        fmt=fmt,
        version=version,
        page_size=kernel.page_size if page_size is None else page_size,
        kernbase=kernbase,
        KERNBASE=kernel.spec.kernbase,
        dump_avail=list(dump_avail),
        physmem=sum(e - s for s, e in dump_avail),
        dumped_pages=dumped_pages,
        msgbuf=msgbuf,
        symbols=symbols,
        duplicates=duplicates,
        nlist_types=types,
        symbol_table=kernel.symbols(),
        variables=kernel.var_values(),
        regions=regions,
        holes=holes,
        hole_kinds=hole_kinds,
        walk=list(walk),
        phdrs=list(phdrs),
        layout=dict(layout or {}),
        leaves=list(leaves),
        vm_min_kernel_address=vm_min_kernel_address,
        dmapbase=dmapbase,
        dmapend=dmapend,
        kernphys=kernphys,
        kpml4phys=kpml4phys,
        kernel_vm_end=kernel_vm_end,
        nkpt=nkpt,
        kerndisp=kerndisp,
        extras=dict(extras or {}),
        bulk=bulk,
        spec=kernel.spec,
        _space=space,
        _offsets=offsets,
    )
