"""arm64 minidumps (header versions 1, 2 and 3; 4 KiB and 16 KiB pages), kernel side.

Sources followed (read, not copied): sys/arm64/arm64/minidump_machdep.c
``cpu_minidumpsys`` (FreeBSD main: version 3; the same code before the page-size flag:
version 2) and its FreeBSD 11/12 form ``minidumpsys`` (version 1: no dump_avail, a
linear bitmap), sys/arm64/include/minidump.h, ``pmap_get_tables`` in
sys/arm64/arm64/pmap.c, sys/vm/vm_dumpset.h.

What is arm64's here is the header and the page-table section; the section layout,
bitmap, dump_avail and page data come from :mod:`pykvm.synth.minidump`.  Everything is
little-endian; PS = the kernel's page size (4096, or 16384 for ``minidump-v3-16k``).

======================  ===================================================================
header                  ``struct minidumphdr``: magic ``minidump FreeBSD/arm64`` (24),
                        version 24, msgbufsize 28, bitmapsize 32, pmapsize 36, kernbase
                        40 (``VM_MIN_KERNEL_ADDRESS``), dmapphys 48 (``DMAP_MIN_PHYSADDR``
                        = ``dmap_phys_base``), dmapbase 56, dmapend 64
                        (``DMAP_MAX_ADDRESS``, the constant), dumpavailsize 72 (v2+),
                        flags 76 (v3: 0 = 4 KiB pages, 1 = 16 KiB)
page tables             for each ``L2_SIZE`` step of KVA from ``VM_MIN_KERNEL_ADDRESS`` to
                        ``kernel_vm_end``, one PS page of L3 entries: a copy of the live L3
                        table (v2+: only when it is in the direct map and dumpable, else
                        zeros), fake entries ``(pa + i * PS) | ATTR_DEFAULT | L3_PAGE`` for
                        an L2 block, for an L1 block ``Ln_ENTRIES`` such pages in a row,
                        zeros when ``pmap_get_tables`` fails
page data               pass 1 marks every dumpable page of an L1 block (v2+ only; v1
                        skips L1 blocks) or L2 block, and every dumpable page a valid L3
                        entry maps (v2+: also inside the direct map); then the
                        ``vm_page_dump_add`` pages; pages that are not dumpable (outside
                        dump_avail, ``PG_NODUMP``) or, v2+, not in the direct map, are
                        dropped
======================  ===================================================================

L1 blocks are written the way the writer means to: FreeBSD main's ``cpu_minidumpsys``
loads ``*l2`` before it tests the L1 entry for a block, and ``pmap_get_tables`` sets
``l2`` to NULL for an L1 block, so a kernel with an L1 block below ``kernel_vm_end``
faults while dumping; the FreeBSD 11/12 writer tested ``l2 == NULL`` first.  The FreeBSD
11 ``pmap_get_tables`` did not reject an invalid L2 entry, so that writer's second pass
copied the page at ``PHYS_TO_DMAP(0)`` for it; version 1 dumps here carry zeros there,
as later kernels write.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

from .. import minidump as md
from .machine import (
    ATTR_DEFAULT,
    ATTR_DESCR_MASK,
    DMAP_MAX_ADDRESS,
    DMAP_MIN_ADDRESS,
    GRANULE_4K,
    L0_TABLE,
    L1_BLOCK,
    L1_TABLE,
    L2_BLOCK,
    L2_TABLE,
    L3_PAGE,
    VM_MIN_KERNEL_ADDRESS,
    Arm64Machine,
    pte_to_phys,
)

MINIDUMP_MAGIC = b"minidump FreeBSD/arm64"
MINIDUMP_FLAG_PS_4K = 0
MINIDUMP_FLAG_PS_16K = 1
_HDR_V3 = struct.Struct("<24sIIIIQQQQII")
_HDR_V2 = struct.Struct("<24sIIIIQQQQI4x")  # sizeof keeps the u64 alignment: 80
_HDR_V1 = struct.Struct("<24sIIIIQQQQ")
assert (_HDR_V3.size, _HDR_V2.size, _HDR_V1.size) == (80, 80, 72)


class Tables:
    """What ``pmap_get_tables`` finds for one ``va``: ``ok`` False when an L0/L1/L2
    entry is neither a table nor (L1, L2) a block; ``l2e`` is None for an L1 block and
    ``l3`` (the L3 table's physical address) None unless the L2 entry is a table."""

    __slots__ = ("ok", "l1e", "l2e", "l3")

    def __init__(
        self, ok: bool, l1e: int = 0, l2e: int | None = None, l3: int | None = None
    ) -> None:
        """Record one lookup."""
        self.ok, self.l1e, self.l2e, self.l3 = ok, l1e, l2e, l3


def get_tables(m: Arm64Machine, va: int) -> Tables:
    """``pmap_get_tables(kernel_pmap, va, ...)`` over the machine's tables (FreeBSD main)."""
    lv = m.granule.levels
    l0e = m.get_entry(m.pt.root, lv[0].index(va))
    if l0e & ATTR_DESCR_MASK != L0_TABLE:
        return Tables(False)
    l1e = m.get_entry(pte_to_phys(l0e), lv[1].index(va))
    if l1e & ATTR_DESCR_MASK == L1_BLOCK:
        return Tables(True, l1e)
    if l1e & ATTR_DESCR_MASK != L1_TABLE:
        return Tables(False)
    l2e = m.get_entry(pte_to_phys(l1e), lv[2].index(va))
    if l2e & ATTR_DESCR_MASK == L2_BLOCK:
        return Tables(True, l1e, l2e)
    if l2e & ATTR_DESCR_MASK != L2_TABLE:
        return Tables(False)
    return Tables(True, l1e, l2e, pte_to_phys(l2e))


def _steps(m: Arm64Machine) -> Iterator[tuple[int, Tables]]:
    """The ``va`` steps of both passes: L2_SIZE apart, jumping over an L1 block."""
    g = m.granule
    va = VM_MIN_KERNEL_ADDRESS
    while va < m.kernel_vm_end:
        t = get_tables(m, va)
        yield va, t
        if t.ok and t.l1e & ATTR_DESCR_MASK == L1_BLOCK:
            va += g.l1_size
        else:
            va += g.l2_size


def minidump_pages(m: Arm64Machine, version: int) -> list[int]:
    """The physical page addresses ``cpu_minidumpsys`` of header ``version`` dumps."""
    ps = m.page_size
    ln = m.granule.entries
    marked: set[int] = set()

    def add_range(base: int, count: int) -> None:
        for pfn in m.ram_pfns_in(base, base + count * ps):
            if pfn not in m.nodump:
                marked.add(pfn << m.page_shift)

    for _va, t in _steps(m):
        if not t.ok:
            continue
        if t.l2e is None:  # an L1 block
            if version >= 2:
                add_range(pte_to_phys(t.l1e), ln * ln)
            continue  # v1: "We should always be using the l2 table for kvm"
        if t.l2e & ATTR_DESCR_MASK == L2_BLOCK:
            add_range(pte_to_phys(t.l2e), ln)
            continue
        assert t.l3 is not None
        for i in range(ln):
            l3e = m.get_entry(t.l3, i)
            if l3e & ATTR_DESCR_MASK != L3_PAGE:
                continue
            pa = pte_to_phys(l3e)
            if (version == 1 or m.phys_in_dmap(pa)) and m.is_dumpable(pa):
                marked.add(pa)
    marked.update(pfn << m.page_shift for pfn in m.extras)
    keep = sorted(pa for pa in marked if m.is_dumpable(pa) and (version == 1 or m.phys_in_dmap(pa)))
    return keep


def _fake_page(base: int, count: int, ps: int) -> bytes:
    """``count`` fake L3 entries ``(base + i * PS) | ATTR_DEFAULT | L3_PAGE``."""
    flags = ATTR_DEFAULT | L3_PAGE
    return struct.pack(f"<{count}Q", *[(base + i * ps) | flags for i in range(count)])


def pmap_section(m: Arm64Machine, version: int) -> bytes:
    """The page-table section: one PS page of L3 entries per L2 step of KVA."""
    g = m.granule
    ps = g.page_size
    ln = g.entries
    zero = bytes(ps)
    out: list[bytes] = []
    for va, t in _steps(m):
        if not t.ok:
            out.append(zero)
        elif t.l2e is None:  # L1 block: Ln_ENTRIES fake pages
            base = pte_to_phys(t.l1e) | (va & (g.l1_size - 1))
            out += [_fake_page(base + i * g.l2_size, ln, ps) for i in range(ln)]
        elif t.l2e & ATTR_DESCR_MASK == L2_BLOCK:
            out.append(_fake_page(pte_to_phys(t.l2e) | (va & (g.l2_size - 1)), ln, ps))
        else:
            assert t.l3 is not None
            if version == 1 or (m.phys_in_dmap(t.l3) and m.is_dumpable(t.l3)):
                out.append(bytes(m.tables[t.l3]))
            else:
                out.append(zero)
    return b"".join(out)


def plan_minidump(m: Arm64Machine, version: int) -> md.MinidumpPlan:
    """Compute the sections of a version ``version`` minidump of ``m``."""
    if version not in (1, 2, 3):
        raise ValueError("arm64 minidump versions are 1, 2 and 3")
    if version < 3 and m.granule is not GRANULE_4K:
        raise ValueError("16 KiB pages need a version 3 minidump")
    flags = MINIDUMP_FLAG_PS_4K if m.granule is GRANULE_4K else MINIDUMP_FLAG_PS_16K
    magic = MINIDUMP_MAGIC.ljust(24, b"\0")

    def header(sz: md.Sizes) -> bytes:
        fields = (
            magic,
            version,
            sz.msgbufsize,
            sz.bitmapsize,
            sz.pmapsize,
            VM_MIN_KERNEL_ADDRESS,
            m.dmap_phys_base,
            DMAP_MIN_ADDRESS,
            DMAP_MAX_ADDRESS,
        )
        if version == 3:
            return _HDR_V3.pack(*fields, sz.dumpavailsize, flags)
        if version == 2:
            return _HDR_V2.pack(*fields, sz.dumpavailsize)
        return _HDR_V1.pack(*fields)

    return md.plan_minidump(
        header=header,
        msgbuf=m.msgbuf,
        ranges=m.segments if version >= 2 else [(0, m.max_pa)],
        pages=minidump_pages(m, version),
        pmap=pmap_section(m, version),
        with_dump_avail=version >= 2,
        page_size=m.page_size,
        word_bits=64,
        byteorder="little",
        version=version,
    )


def write_minidump(path: str, plan: md.MinidumpPlan, m: Arm64Machine) -> None:
    """Write the minidump of ``plan`` (page data from ``m``)."""
    md.write_minidump(path, plan, m.memory.page)


__all__ = [
    "MINIDUMP_MAGIC",
    "get_tables",
    "minidump_pages",
    "plan_minidump",
    "pmap_section",
    "write_minidump",
]
