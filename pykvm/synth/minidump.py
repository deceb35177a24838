"""amd64 minidump writers (versions 1, 2 and 3), written from the kernel's side.

Sources followed (read, not copied): sys/amd64/amd64/minidump_machdep.c
``cpu_minidumpsys`` (FreeBSD 13+: version 3; the same file before the dump_avail change:
version 2), sys/amd64/include/minidump.h and sys/vm/vm_dumpset.h.

File layout (all integers little-endian), each section a whole number of 4 KiB pages:

======================  ===================================================================
header page             ``struct minidumphdr`` (72 bytes in v3, 64 in v1/v2), zero padded
message buffer          ``msgbufsize`` bytes, padded to a page
dump_avail (v3 only)    one page: u64 (start, end) pairs ended by a zero pair
bitmap                  ``bitmapsize`` = round_page(BITSET_SIZE(pages)); bit n is bit n%8 of
                        byte n/8 (LE longs); v3 numbers bits over the dump_avail ranges with
                        holes compressed, v1/v2 number them pa >> 12 from physical 0
page tables             v2/v3: one page of 512 PDEs per GiB from VM_MIN_KERNEL_ADDRESS to
                        ``max(KERNBASE + nkpt * NBPDR, kernel_vm_end)`` (a copy of the PD page,
                        a fake PD for a 1 GiB page whose entry j is PDPE + j * 2 MiB, or zeros);
                        v1: one page of 512 PTEs per 2 MiB from KERNBASE to kernel_vm_end (a
                        copy of the PT page, a fake PT for a 2 MiB page whose entries are
                        ``pa | PG_V | PG_RW | PG_A | PG_M``, or zeros)
page data               one page per set bit, ascending bit order
======================  ===================================================================
"""

from __future__ import annotations

import struct
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass

from .amd64 import (
    DMAP_MAX_ADDRESS,
    DMAP_MIN_ADDRESS,
    GIB,
    NBPDR,
    PAGE_SHIFT,
    PAGE_SIZE,
    PG_A,
    PG_FRAME,
    PG_M,
    PG_PS,
    PG_PS_FRAME,
    PG_RW,
    PG_V,
    Amd64Machine,
)
from .kernel import KERNBASE

MINIDUMP_MAGIC = b"minidump FreeBSD/amd64"
_HDR_V3 = struct.Struct("<24sIIIIQQQI4x")  # struct minidumphdr, FreeBSD 13+
_HDR_V2 = struct.Struct("<24sIIIIQQQ")  # versions 1 and 2 (ptesize/pmapsize at 36)
assert _HDR_V3.size == 72 and _HDR_V2.size == 64


def round_page(value: int) -> int:
    """Round ``value`` up to a multiple of 4096."""
    return (value + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1)


class BitIds:
    """The kernel's page numbering for the dump bitmap (vm_dumpset.h ``vm_page_dump_pa_bit_id``).

    Over ranges ``(s_k, e_k)`` each range contributes ``howmany(e_k, PS) - s_k / PS`` bits,
    in order, so holes between ranges take no bits.  Version 1 and 2 dumps use the single
    range ``(0, end of RAM)``.  An address outside every range has no bit id.
    """

    def __init__(self, ranges: Sequence[tuple[int, int]]) -> None:
        """Number the pages of ``ranges`` (sorted, disjoint)."""
        self.ranges = list(ranges)
        self._starts = [s for s, _ in self.ranges]
        self._first_bit: list[int] = []
        total = 0
        for s, e in self.ranges:
            self._first_bit.append(total)
            total += -(-e // PAGE_SIZE) - s // PAGE_SIZE
        self.nbits = total

    def bit_id(self, pa: int) -> int | None:
        """Return the bit id of physical ``pa`` or None when it lies in no range."""
        i = bisect_right(self._starts, pa) - 1
        if i < 0 or pa >= self.ranges[i][1]:
            return None
        return (pa >> PAGE_SHIFT) - (self.ranges[i][0] >> PAGE_SHIFT) + self._first_bit[i]

    def bit_pa(self, bit: int) -> int | None:
        """Return the page address of bit id ``bit`` or None when past the last range."""
        i = bisect_right(self._first_bit, bit) - 1
        if i < 0 or bit >= self.nbits:
            return None
        return ((self.ranges[i][0] >> PAGE_SHIFT) + bit - self._first_bit[i]) << PAGE_SHIFT


@dataclass(frozen=True)
class MinidumpPlan:
    """Everything a minidump file contains except the page data bytes themselves."""

    version: int
    header: bytes
    msgbuf: bytes
    dump_avail_page: bytes
    bitmap: bytes
    pmap: bytes
    #: sorted page frame numbers of the dumped pages (the set bits, in file order)
    pfns: list[int]
    bits: BitIds
    layout: dict[str, int]

    def offset_of(self, pa: int) -> int:
        """File offset of the dumped page holding ``pa``, or -1 when it is not dumped."""
        pfn = pa >> PAGE_SHIFT
        i = bisect_left(self.pfns, pfn)
        if i < len(self.pfns) and self.pfns[i] == pfn:
            return self.layout["sparse_off"] + i * PAGE_SIZE
        return -1


def plan_minidump(machine: Amd64Machine, version: int) -> MinidumpPlan:
    """Compute the sections of a version ``version`` minidump of ``machine``."""
    if version not in (1, 2, 3):
        raise ValueError("amd64 minidump versions are 1, 2 and 3")
    pfns = machine.minidump_pfns(version)
    if version == 3:
        bits = BitIds(machine.segments)
    else:
        bits = BitIds([(0, machine.max_pa)])
    bitmapsize = round_page(-(-bits.nbits // 64) * 8)
    if version < 3:
        # Readers of v1/v2 dumps take the bitmap as covering [0, bitmapsize * 8 pages):
        # the numbering is the same, only the padding bits past the end of RAM are added.
        bits = BitIds([(0, bitmapsize * 8 * PAGE_SIZE)])
    bitmap = bytearray(bitmapsize)
    for pfn in pfns:
        bit = bits.bit_id(pfn << PAGE_SHIFT)
        assert bit is not None
        bitmap[bit >> 3] |= 1 << (bit & 7)

    if version == 1:
        pmap = _v1_pte_section(machine)
        kernbase = KERNBASE
    else:
        pmap = _pd_section(machine)
        kernbase = machine.vm_min
    msgbuf = machine.msgbuf
    msgbufsize = len(msgbuf)
    dumpavailsize = PAGE_SIZE if version == 3 else 0
    magic = MINIDUMP_MAGIC.ljust(24, b"\0")
    if version == 3:
        header = _HDR_V3.pack(
            magic,
            version,
            msgbufsize,
            bitmapsize,
            len(pmap),
            kernbase,
            DMAP_MIN_ADDRESS,
            DMAP_MAX_ADDRESS,
            dumpavailsize,
        )
    else:
        header = _HDR_V2.pack(
            magic,
            version,
            msgbufsize,
            bitmapsize,
            len(pmap),
            kernbase,
            DMAP_MIN_ADDRESS,
            DMAP_MAX_ADDRESS,
        )
    dump_avail_page = b""
    if version == 3:
        words: list[int] = []
        for s, e in machine.segments:
            words += [s, e]
        words += [0, 0]
        dump_avail_page = struct.pack(f"<{len(words)}Q", *words).ljust(PAGE_SIZE, b"\0")
    msgbuf_off = PAGE_SIZE
    dump_avail_off = msgbuf_off + round_page(msgbufsize)
    bitmap_off = dump_avail_off + dumpavailsize
    pmap_off = bitmap_off + bitmapsize
    sparse_off = pmap_off + len(pmap)
    layout = {
        "msgbufsize": msgbufsize,
        "bitmapsize": bitmapsize,
        "pmapsize": len(pmap),
        "dumpavailsize": dumpavailsize,
        "msgbuf_off": msgbuf_off,
        "dump_avail_off": dump_avail_off,
        "bitmap_off": bitmap_off,
        "pmap_off": pmap_off,
        "sparse_off": sparse_off,
        "file_size": sparse_off + PAGE_SIZE * len(pfns),
    }
    return MinidumpPlan(
        version,
        header.ljust(PAGE_SIZE, b"\0"),
        msgbuf,
        dump_avail_page,
        bytes(bitmap),
        pmap,
        pfns,
        bits,
        layout,
    )


def _pd_section(machine: Amd64Machine) -> bytes:
    """The v2/v3 page-directory section: one page per GiB of KVA."""
    ngib = -(-(machine.kva_end() - machine.vm_min) // GIB)
    out = bytearray(ngib * PAGE_SIZE)
    for g in range(ngib):
        va = machine.vm_min + g * GIB
        pdpe = machine.pdpe_of(va)
        if not pdpe & PG_V:
            continue
        if pdpe & PG_PS:
            # "1GB page is represented as 512 2MB pages in a dump"
            struct.pack_into("<512Q", out, g * PAGE_SIZE, *(pdpe + j * NBPDR for j in range(512)))
            continue
        pd_pa = pdpe & PG_FRAME
        if machine.dumpable(pd_pa):
            out[g * PAGE_SIZE : (g + 1) * PAGE_SIZE] = machine.tables[pd_pa]
    return bytes(out)


def _v1_pte_section(machine: Amd64Machine) -> bytes:
    """The v1 PTE section: one page of PTEs per 2 MiB from KERNBASE to kernel_vm_end."""
    npdes = (machine.kernel_vm_end - KERNBASE) // NBPDR
    out = bytearray(npdes * PAGE_SIZE)
    pdpe = machine.pdpe_of(KERNBASE)
    assert pdpe & PG_V and not pdpe & PG_PS
    pd_pa = pdpe & PG_FRAME
    first = (KERNBASE >> 21) & 511
    for i in range(npdes):
        pde = machine.get_entry(pd_pa, first + i)
        if not pde & PG_V:
            continue
        if pde & PG_PS:
            base = pde & PG_PS_FRAME
            fake = PG_V | PG_RW | PG_A | PG_M
            struct.pack_into(
                "<512Q", out, i * PAGE_SIZE, *((base + k * PAGE_SIZE) | fake for k in range(512))
            )
        else:
            out[i * PAGE_SIZE : (i + 1) * PAGE_SIZE] = machine.tables[pde & PG_FRAME]
    return bytes(out)


def write_minidump(path: str, plan: MinidumpPlan, machine: Amd64Machine) -> None:
    """Write the minidump described by ``plan`` (page data taken from ``machine``)."""
    page = machine.memory.page
    with open(path, "wb") as f:
        f.write(plan.header)
        f.write(plan.msgbuf.ljust(round_page(len(plan.msgbuf)), b"\0"))
        f.write(plan.dump_avail_page)
        f.write(plan.bitmap)
        f.write(plan.pmap)
        batch: list[bytes] = []
        for pfn in plan.pfns:
            batch.append(page(pfn))
            if len(batch) == 256:
                f.write(b"".join(batch))
                batch.clear()
        f.write(b"".join(batch))


__all__ = [
    "DMAP_MAX_ADDRESS",
    "MINIDUMP_MAGIC",
    "BitIds",
    "MinidumpPlan",
    "plan_minidump",
    "round_page",
    "write_minidump",
]
