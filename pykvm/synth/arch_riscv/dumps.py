"""riscv minidumps (header versions 1 and 2), written from the kernel's side.

Sources followed (read, not copied): sys/riscv/riscv/minidump_machdep.c
``cpu_minidumpsys`` (FreeBSD main, version 2) and its earlier ``minidumpsys`` (version
2 with the FreeBSD 13 dump-set interface; version 1 before dump_avail: no dump_avail
section, a linear bitmap from physical 0), sys/riscv/include/minidump.h, ``pmap_l1`` and
``pmap_get_tables`` in sys/riscv/riscv/pmap.c.  PS = 4096, everything little-endian.

======================  ===================================================================
header                  ``struct minidumphdr``: magic ``minidump FreeBSD/riscv`` (24),
                        version 24, msgbufsize 28, bitmapsize 32, pmapsize 36, kernbase
                        40 (``KERNBASE``), dmapphys 48 (``dmap_phys_base``), dmapbase 56,
                        dmapend 64 (``DMAP_MAX_ADDRESS``, the constant), dumpavailsize 72
                        (v2; the struct is 80 bytes, 72 in v1)
page tables             for each 2 MiB of KVA from ``VM_MIN_KERNEL_ADDRESS`` to
                        ``kernel_vm_end`` one page of L3 PTEs: a copy of the live L3 table
                        (v2: when it is in the direct map and dumpable, else zeros), for a
                        megapage ``l2e | (i << PTE_PPN0_S)``, i = 0..511, zeros when
                        ``pmap_get_tables`` fails
page data               every dumpable page of a megapage (physical address
                        ``(l2e >> PTE_PPN1_S) << L2_SHIFT``) and of every valid L3 PTE
                        (``(l3e >> PTE_PPN0_S) * PAGE_SIZE``, v2: inside the direct map),
                        then the ``vm_page_dump_add`` pages, minus pages that are not
                        dumpable or, v2, not in the direct map.  Neither address is masked:
                        an entry with bits 54-63 set yields an address beyond the direct
                        map, so the page-table pass never marks its page.
======================  ===================================================================

A gigapage (L1 leaf) inside ``[VM_MIN_KERNEL_ADDRESS, kernel_vm_end)`` cannot be dumped:
``pmap_get_tables`` returns true with ``*l2 = NULL`` and the second pass loads ``*l2``
(the first pass skips it: "We should always be using the l2 table for kvm").  The
machine therefore puts gigapages only in the direct map, as ``pmap_bootstrap_dmap`` does.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

from .. import minidump as md
from .machine import (
    DMAP_MAX_ADDRESS,
    DMAP_MIN_ADDRESS,
    KERNBASE,
    L2_SHIFT,
    L2_SIZE,
    PAGE_SHIFT,
    PAGE_SIZE,
    PTE_PPN0_S,
    PTE_PPN1_S,
    PTE_RWX,
    PTE_RX,
    PTE_V,
    VM_MIN_KERNEL_ADDRESS,
    Ln_ENTRIES,
    RiscvMachine,
)

MINIDUMP_MAGIC = b"minidump FreeBSD/riscv"
_HDR_V2 = struct.Struct("<24sIIIIQQQQI4x")
_HDR_V1 = struct.Struct("<24sIIIIQQQQ")
assert (_HDR_V2.size, _HDR_V1.size) == (80, 72)


def _table_pa(entry: int) -> int:
    """The kernel's ``(entry >> PTE_PPN0_S) * PAGE_SIZE`` for table entries."""
    return (entry >> PTE_PPN0_S) * PAGE_SIZE


def get_tables(m: RiscvMachine, va: int) -> tuple[bool, int | None, int | None]:
    """``pmap_get_tables(kernel_pmap, va, &l1, &l2, &l3)`` over the machine's tables.

    Returns ``(ok, l2e, l3)``: ``l2e`` None for an L1 leaf (gigapage), ``l3`` the L3
    table's physical address or None for a megapage.
    """
    lv = m.pt.levels
    table = m.pt.root
    if m.sv48:  # pmap_l1(): through the L0 entry, NULL unless it is a valid table
        l0e = m.get_entry(table, lv[0].index(va))
        if not l0e & PTE_V or l0e & PTE_RX:
            return False, None, None
        table = _table_pa(l0e)
    i = m.l1_level
    l1e = m.get_entry(table, lv[i].index(va))
    if not l1e & PTE_V:
        return False, None, None
    if l1e & PTE_RX:
        return True, None, None
    l2e = m.get_entry(_table_pa(l1e), lv[i + 1].index(va))
    if not l2e & PTE_V:
        return False, None, None
    if l2e & PTE_RX:
        return True, l2e, None
    return True, l2e, _table_pa(l2e)


def _steps(m: RiscvMachine) -> Iterator[tuple[int, bool, int | None, int | None]]:
    for va in range(VM_MIN_KERNEL_ADDRESS, m.kernel_vm_end, L2_SIZE):
        ok, l2e, l3 = get_tables(m, va)
        if ok and l2e is None:
            raise ValueError(f"cpu_minidumpsys cannot dump the gigapage at {va:#x}")
        yield va, ok, l2e, l3


def minidump_pages(m: RiscvMachine, version: int) -> list[int]:
    """The physical page addresses ``cpu_minidumpsys`` of header ``version`` dumps."""
    marked: set[int] = set()
    for _va, ok, l2e, l3 in _steps(m):
        if not ok or l2e is None:
            continue
        if l2e & PTE_RWX:
            base = (l2e >> PTE_PPN1_S) << L2_SHIFT
            for pfn in m.ram_pfns_in(base, base + L2_SIZE):
                if pfn not in m.nodump:
                    marked.add(pfn << PAGE_SHIFT)
            continue
        assert l3 is not None
        for i in range(Ln_ENTRIES):
            l3e = m.get_entry(l3, i)
            if not l3e & PTE_V:
                continue
            pa = (l3e >> PTE_PPN0_S) * PAGE_SIZE
            if (version == 1 or m.phys_in_dmap(pa)) and m.is_dumpable(pa):
                marked.add(pa)
    marked.update(pfn << PAGE_SHIFT for pfn in m.extras)
    return sorted(pa for pa in marked if m.is_dumpable(pa) and (version == 1 or m.phys_in_dmap(pa)))


def pmap_section(m: RiscvMachine, version: int) -> bytes:
    """The page-table section: one page of L3 PTEs per 2 MiB of KVA."""
    zero = bytes(PAGE_SIZE)
    out: list[bytes] = []
    for _va, ok, l2e, l3 in _steps(m):
        if not ok or l2e is None:
            out.append(zero)
        elif l2e & PTE_RWX:
            fake = [l2e | (i << PTE_PPN0_S) for i in range(Ln_ENTRIES)]
            out.append(struct.pack(f"<{Ln_ENTRIES}Q", *fake))
        else:
            assert l3 is not None
            if version == 1 or (m.phys_in_dmap(l3) and m.is_dumpable(l3)):
                out.append(bytes(m.tables[l3]))
            else:
                out.append(zero)
    return b"".join(out)


def plan_minidump(m: RiscvMachine, version: int) -> md.MinidumpPlan:
    """Compute the sections of a version ``version`` minidump of ``m``."""
    if version not in (1, 2):
        raise ValueError("riscv minidump versions are 1 and 2")
    magic = MINIDUMP_MAGIC.ljust(24, b"\0")

    def header(sz: md.Sizes) -> bytes:
        fields = (
            magic,
            version,
            sz.msgbufsize,
            sz.bitmapsize,
            sz.pmapsize,
            KERNBASE,
            m.dmap_phys_base,
            DMAP_MIN_ADDRESS,
            DMAP_MAX_ADDRESS,
        )
        if version == 2:
            return _HDR_V2.pack(*fields, sz.dumpavailsize)
        return _HDR_V1.pack(*fields)

    return md.plan_minidump(
        header=header,
        msgbuf=m.msgbuf,
        ranges=m.segments if version == 2 else [(0, m.max_pa)],
        pages=minidump_pages(m, version),
        pmap=pmap_section(m, version),
        with_dump_avail=version == 2,
        page_size=PAGE_SIZE,
        word_bits=64,
        byteorder="little",
        version=version,
    )


def write_minidump(path: str, plan: md.MinidumpPlan, m: RiscvMachine) -> None:
    """Write the minidump of ``plan`` (page data from ``m``)."""
    md.write_minidump(path, plan, m.memory.page)


__all__ = ["MINIDUMP_MAGIC", "get_tables", "minidump_pages", "plan_minidump", "pmap_section"]
