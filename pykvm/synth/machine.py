"""A generic synthetic machine: RAM with holes, page allocation, page tables, leaf records.

An architecture's machine model subclasses :class:`Machine` (or holds one) and supplies
only what is specific to it: where RAM is, its page-table encoding, and which pages its
minidump writer marks.  The base class provides:

* ``segments``, the ``dump_avail`` ranges (sorted, disjoint, page aligned), with
  :meth:`Machine.dumpable`, :meth:`Machine.ram_pfns_in` and :meth:`Machine.hole_addresses`
  (physical addresses in the holes, for PTEs that point nowhere);
* deterministic page contents: every page is ``page_bytes(seed, pa)`` unless the model
  fixed it with :meth:`Machine.place` (the kernel image, the message buffer) or it holds
  page tables (``tables``, composed on top when :meth:`Machine.finish` builds
  ``memory``, a :class:`~pykvm.synth.truth.PhysicalMemory`);
* :meth:`Machine.alloc`, random free pages from :meth:`Machine.pool_segments` (drawn
  from the machine's :class:`~pykvm.synth._prng.Rng`, so the layout is a function of
  the seed), and :meth:`Machine.reserve` for ranges it must never hand out;
* page-table pages (``tables``: physical address -> bytearray, any size, entries in the
  machine's byte order via :meth:`Machine.get_entry` / :meth:`Machine.set_entry`);
* ``leaves``: every leaf translation ``(va, size, pa, entry, prot)`` recorded with
  :meth:`Machine.add_leaf`, the ground truth of the kernel map; ``extras`` (page frame
  numbers the kernel adds with ``vm_page_dump_add``) and ``nodump`` (``PG_NODUMP``
  pages).

:class:`RadixTables` builds a multi-level (radix) page table on a machine: tables are
allocated on demand, entries encoded by a callable the architecture supplies.  It fits
amd64, i386, aarch64, riscv and powerpc64 radix (and arm's two levels, with one page per
1 KiB L2 table); hashed or flat tables are written by the architecture directly.
"""

from __future__ import annotations

import struct
from bisect import bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ._prng import Rng, page_bytes
from .elfwriter import ByteOrder
from .kernel import SynthKernel
from .truth import Leaf, PhysicalMemory

MIB = 1 << 20


class Machine:
    """Physical memory, page allocation, page-table pages and leaf records of one seed."""

    def __init__(
        self,
        seed: int,
        rng: Rng,
        *,
        page_size: int = 4096,
        entry_size: int = 8,
        byteorder: ByteOrder = "little",
    ) -> None:
        """Start an empty machine; ``rng`` is the stream its random choices come from.

        ``entry_size`` and ``byteorder`` are the defaults of :meth:`get_entry` and
        :meth:`set_entry` (the page-table entry width and the kernel's byte order).
        """
        if page_size < 4096 or page_size & (page_size - 1):
            raise ValueError("page_size must be a power of two >= 4096")
        if byteorder not in ("little", "big"):
            raise ValueError("byteorder must be 'little' or 'big'")
        self.seed = seed
        self._rng = rng
        self.page_size = page_size
        self.page_shift = page_size.bit_length() - 1
        self.entry_size = entry_size
        self.byteorder = byteorder
        self._endian = "<" if byteorder == "little" else ">"
        self._entry_structs: dict[int, struct.Struct] = {}
        self.segments: list[tuple[int, int]] = []
        self._seg_starts: list[int] = []
        self.tables: dict[int, bytearray] = {}
        self.leaves: list[Leaf] = []
        self.extras: set[int] = set()
        self.nodump: set[int] = set()
        self._used: set[int] = set()
        self._reserved: list[tuple[int, int]] = []
        self._overrides: dict[int, bytes] = {}
        self._memory: PhysicalMemory | None = None

    # ------------------------------------------------------------------ RAM
    def set_segments(self, segments: Sequence[tuple[int, int]]) -> None:
        """Set the ``dump_avail`` ranges (sorted, disjoint, page aligned, non-empty)."""
        segs = [(int(s), int(e)) for s, e in segments]
        mask = self.page_size - 1
        for s, e in segs:
            if s & mask or e & mask or e <= s:
                raise ValueError(f"bad RAM range {s:#x}-{e:#x}")
        for (_, e0), (s1, _) in zip(segs, segs[1:], strict=False):
            if s1 < e0:
                raise ValueError("RAM ranges must be sorted and disjoint")
        self.segments = segs
        self._seg_starts = [s for s, _ in segs]

    @property
    def physmem(self) -> int:
        """Bytes of RAM (the sum of the ranges)."""
        return sum(e - s for s, e in self.segments)

    @property
    def max_pa(self) -> int:
        """End of the last RAM range."""
        return self.segments[-1][1]

    def dumpable(self, pa: int) -> bool:
        """True when physical ``pa`` lies inside a dump_avail range."""
        i = bisect_right(self._seg_starts, pa) - 1
        return i >= 0 and pa < self.segments[i][1]

    def ram_pfns_in(self, start: int, end: int) -> list[int]:
        """Page frame numbers of dumpable pages in the physical range ``[start, end)``."""
        out: list[int] = []
        ps = self.page_size
        for s, e in self.segments:
            lo, hi = max(s, start), min(e, end)
            if lo < hi:
                out.extend(range(lo >> self.page_shift, -(-hi // ps)))
        return out

    def hole_addresses(self) -> list[int]:
        """Page addresses outside RAM: below RAM, just below each later range, in the
        middle of each hole, and 3 MiB past the end of RAM (no duplicates, in order)."""
        ps = self.page_size
        out: list[int] = []
        if self.segments[0][0] >= ps:
            out.append(0)
        for (_, e0), (s1, _) in zip(self.segments, self.segments[1:], strict=False):
            if s1 > e0:
                out += [s1 - ps, (e0 + (s1 - e0) // 2) & ~(ps - 1)]
        out.append(self.max_pa + 3 * MIB)
        unique: list[int] = []
        for pa in out:
            if not self.dumpable(pa) and pa not in unique:
                unique.append(pa)
        return unique

    # ------------------------------------------------------------------ allocation
    def reserve(self, start: int, end: int) -> None:
        """Never hand out pages of ``[start, end)`` from :meth:`alloc`."""
        self._reserved.append((start, end))

    def use(self, pa: int, count: int = 1) -> None:
        """Mark ``count`` pages from ``pa`` as taken."""
        first = pa >> self.page_shift
        self._used.update(range(first, first + count))

    def is_free(self, pfn: int) -> bool:
        """True when page ``pfn`` is RAM, not taken and not reserved."""
        if pfn in self._used:
            return False
        pa = pfn << self.page_shift
        if not self.dumpable(pa):
            return False
        return not any(s <= pa < e for s, e in self._reserved)

    def pool_segments(self) -> list[tuple[int, int]]:
        """The ranges :meth:`alloc` draws from (all of RAM unless a subclass says otherwise)."""
        return self.segments

    def alloc(self, count: int = 1, align: int | None = None) -> int:
        """Allocate ``count`` physically contiguous free pages at a random place.

        ``align`` (a power of two, default one page) aligns the first page.
        """
        rng = self._rng
        ps = self.page_size
        amask = (align or ps) - 1
        pool = self.pool_segments()
        total = sum(e - s for s, e in pool)
        for _ in range(1000):
            pick = rng.below(total) & ~(ps - 1)
            for s, e in pool:
                if pick < e - s:
                    pa = (s + pick) & ~(ps - 1) & ~amask
                    break
                pick -= e - s
            else:  # pragma: no cover - pick < total always lands
                continue
            pfn = pa >> self.page_shift
            if all(self.is_free(pfn + i) for i in range(count)):
                for i in range(count):
                    self._used.add(pfn + i)
                return pa
        raise RuntimeError("synthetic machine ran out of free pages")

    # ------------------------------------------------------------------ fixed contents
    def place(self, pa: int, data: bytes) -> None:
        """Fix the contents of the pages from ``pa`` (page aligned) to ``data``, zero padded."""
        ps = self.page_size
        if pa % ps:
            raise ValueError("place() needs a page-aligned address")
        npages = -(-len(data) // ps)
        padded = data.ljust(npages * ps, b"\0")
        first = pa >> self.page_shift
        for i in range(npages):
            self._overrides[first + i] = padded[i * ps : (i + 1) * ps]

    # ------------------------------------------------------------------ page tables
    def new_table(self, pa: int, size: int | None = None) -> int:
        """Create a zeroed page-table of ``size`` bytes (default a page) at ``pa``; return pa."""
        size = self.page_size if size is None else size
        self.tables[pa] = bytearray(size)
        self.use(pa & ~(self.page_size - 1), -(-((pa % self.page_size) + size) // self.page_size))
        return pa

    def _entry_struct(self, size: int) -> struct.Struct:
        st = self._entry_structs.get(size)
        if st is None:
            st = struct.Struct(self._endian + {4: "I", 8: "Q"}[size])
            self._entry_structs[size] = st
        return st

    def get_entry(self, table_pa: int, index: int, size: int | None = None) -> int:
        """Return entry ``index`` of the table at ``table_pa`` (``size``-byte entries)."""
        size = size or self.entry_size
        return int(self._entry_struct(size).unpack_from(self.tables[table_pa], index * size)[0])

    def set_entry(self, table_pa: int, index: int, value: int, size: int | None = None) -> None:
        """Store ``value`` as entry ``index`` of the table at ``table_pa``."""
        size = size or self.entry_size
        self._entry_struct(size).pack_into(self.tables[table_pa], index * size, value)

    def add_leaf(self, va: int, size: int, pa: int, entry: int, prot: int = 0) -> Leaf:
        """Record one leaf translation of the kernel map (ground truth); return it."""
        leaf = Leaf(va, size, pa, entry, prot)
        self.leaves.append(leaf)
        return leaf

    # ------------------------------------------------------------------ the end
    def finish(self) -> PhysicalMemory:
        """Freeze the model: sort ``leaves`` by va and build ``memory``; return it.

        Page tables are laid over the placed pages; the rest of a page holding only
        tables smaller than a page is zero.
        """
        self.leaves.sort(key=lambda leaf: leaf.va)
        ps = self.page_size
        overrides = dict(self._overrides)
        composed: dict[int, bytearray] = {}
        for pa, table in sorted(self.tables.items()):
            off = 0
            while off < len(table):
                cur = pa + off
                pfn = cur >> self.page_shift
                start = cur & (ps - 1)
                n = min(len(table) - off, ps - start)
                buf = composed.get(pfn)
                if buf is None:
                    buf = composed[pfn] = bytearray(overrides.get(pfn, bytes(ps)))
                buf[start : start + n] = table[off : off + n]
                off += n
        for pfn, buf in composed.items():
            overrides[pfn] = bytes(buf)
        seed = self.seed
        self._memory = PhysicalMemory(lambda pa: page_bytes(seed, pa, ps), overrides, ps)
        return self._memory

    @property
    def memory(self) -> PhysicalMemory:
        """The machine's RAM contents (after :meth:`finish`)."""
        if self._memory is None:
            raise RuntimeError("call finish() first")
        return self._memory


@dataclass(frozen=True)
class Level:
    """One level of a radix page table: entries index ``va`` bits ``[shift, shift + bits)``."""

    shift: int
    bits: int

    @property
    def span(self) -> int:
        """Bytes of VA one entry of this level covers (the leaf size at this level)."""
        return 1 << self.shift

    def index(self, va: int) -> int:
        """Index of ``va`` in a table of this level."""
        return (va >> self.shift) & ((1 << self.bits) - 1)


class RadixTables:
    """A radix page table in a :class:`Machine`: tables allocated on demand, leaves recorded.

    ``levels`` go from the root down (amd64: shifts 39, 30, 21, 12 with 9 bits each);
    ``table_entry(child_pa, level)`` encodes the entry at ``level`` that points to the
    table ``child_pa`` of ``level + 1`` (amd64: ``child_pa | PG_V | PG_RW | PG_A | PG_M``).
    Tables are ``(1 << bits) * entry_size`` bytes, aligned to their size and at least a
    page (a table smaller than a page gets a page of its own).  ``allocate(size, align)``
    returns the physical address of a new table (default: :meth:`Machine.alloc`).
    The root is allocated at construction unless ``root`` gives its address.
    """

    def __init__(
        self,
        machine: Machine,
        levels: Sequence[Level],
        table_entry: Callable[[int, int], int],
        *,
        entry_size: int | None = None,
        root: int | None = None,
        allocate: Callable[[int, int], int] | None = None,
    ) -> None:
        """Create the root table (or adopt the existing one at ``root``)."""
        self.machine = machine
        self.levels = tuple(levels)
        self.table_entry = table_entry
        self.entry_size = entry_size or machine.entry_size
        self._allocate = allocate or self._default_alloc
        self._child: dict[tuple[int, int], int] = {}
        self._leaf_at: set[tuple[int, int]] = set()
        if root is None:
            root = self._new(0)
        elif root not in machine.tables:
            machine.new_table(root, self.table_size(0))
        self.root = root

    def table_size(self, level: int) -> int:
        """Bytes of a table of ``level``."""
        return (1 << self.levels[level].bits) * self.entry_size

    def _default_alloc(self, size: int, align: int) -> int:
        ps = self.machine.page_size
        return self.machine.alloc(-(-size // ps), align)

    def _new(self, level: int) -> int:
        size = self.table_size(level)
        align = max(self.machine.page_size, 1 << (size - 1).bit_length())
        return self.machine.new_table(self._allocate(size, align), size)

    def table(self, va: int, level: int) -> int:
        """Physical address of the ``level`` table covering ``va``, creating missing ones."""
        pa = self.root
        for lvl in range(level):
            idx = self.levels[lvl].index(va)
            child = self._child.get((pa, idx))
            if child is None:
                if (pa, idx) in self._leaf_at:
                    raise ValueError(f"{va:#x} is already mapped by a level-{lvl} leaf")
                child = self._new(lvl + 1)
                self.machine.set_entry(pa, idx, self.table_entry(child, lvl), self.entry_size)
                self._child[(pa, idx)] = child
            pa = child
        return pa

    def link(self, va: int, level: int, child: int) -> None:
        """Make the ``level`` entry of ``va`` point to the existing table ``child``."""
        pa = self.table(va, level)
        idx = self.levels[level].index(va)
        if (pa, idx) in self._child or (pa, idx) in self._leaf_at:
            raise ValueError(f"the level-{level} entry of {va:#x} is already in use")
        if child not in self.machine.tables:
            self.machine.new_table(child, self.table_size(level + 1))
        self.machine.set_entry(pa, idx, self.table_entry(child, level), self.entry_size)
        self._child[(pa, idx)] = child

    def set(self, va: int, level: int, entry: int) -> None:
        """Store a raw ``entry`` at ``level`` for ``va`` (no leaf recorded: invalid entries,
        entries the ground truth must not count)."""
        pa = self.table(va, level)
        self.machine.set_entry(pa, self.levels[level].index(va), entry, self.entry_size)

    def map(self, va: int, pa: int, level: int, entry: int, prot: int = 0) -> Leaf:
        """Store the leaf ``entry`` at ``level`` for ``va`` and record ``va -> pa``.

        The leaf covers ``levels[level].span`` bytes; ``va`` and ``pa`` must be aligned
        to it.
        """
        span = self.levels[level].span
        if va % span or pa % span:
            raise ValueError(f"leaf {va:#x} -> {pa:#x} not aligned to {span:#x}")
        table = self.table(va, level)
        idx = self.levels[level].index(va)
        if (table, idx) in self._child:
            raise ValueError(f"{va:#x} already has a level-{level + 1} table")
        self.machine.set_entry(table, idx, entry, self.entry_size)
        self._leaf_at.add((table, idx))
        return self.machine.add_leaf(va, span, pa, entry, prot)

    def children(self) -> dict[tuple[int, int], int]:
        """``(table pa, index) -> child table pa`` for every table this object linked."""
        return dict(self._child)


# ---------------------------------------------------------------------------- helpers
def spread_ranges(
    rng: Rng,
    start: int,
    count: int,
    *,
    size_mib: tuple[int, int] = (3, 5),
    gap_mib: tuple[int, int] = (1, 48),
    page_size: int = 4096,
) -> list[tuple[int, int]]:
    """``count`` RAM ranges after ``start``, each preceded by a hole.

    Gaps are ``gap_mib`` MiB plus up to 255 pages; sizes ``size_mib`` MiB plus 1..255
    pages, never ending on a 2 MiB boundary (so superpages can straddle a range's end).
    """
    out: list[tuple[int, int]] = []
    cursor = start
    for _ in range(count):
        s = cursor + rng.between(*gap_mib) * MIB + rng.below(256) * page_size
        e = s + rng.between(*size_mib) * MIB + rng.between(1, 255) * page_size
        if e % (2 * MIB) == 0:
            e += page_size
        out.append((s, e))
        cursor = e
    return out


def boot_messages(
    rng: Rng,
    kernel: SynthKernel,
    *,
    physmem: int,
    avail: int,
    cpu: str,
    timer: str,
) -> bytes:
    """The kernel message buffer of a synthetic boot that ended in a panic.

    ``---<<BOOT>>---``, the version banner, the compiler, ``CPU: {cpu}``, real and
    available memory, ``{timer}, hz {hz}``, 4..60 device lines, the panic and
    ``Dumping ...``.  The device count and ids are drawn from ``rng``.
    """
    k = kernel
    spec = k.spec
    lines = [
        "---<<BOOT>>---",
        k.version_string.rstrip("\n").split("\n")[0],
        f"    root@synth.example.org:/usr/obj/usr/src/{spec.objdir}/sys/SYNTH {spec.uname_machine}",
        "FreeBSD clang version 18.1.6 (https://github.com/llvm/llvm-project.git)",
        f"CPU: {cpu}",
        f"real memory  = {physmem} ({physmem >> 20} MB)",
        f"avail memory = {avail} ({avail >> 20} MB)",
        f"{timer}, hz {k.hz}",
    ]
    for i in range(rng.between(4, 60)):
        lines.append(f"synth{i}: <Synthetic device {rng.below(1 << 16):04x}> on pci0")
    lines.append(f"panic: synthetic crash {k.seed}")
    lines.append("Dumping ...")
    return ("\n".join(lines) + "\n").encode()
