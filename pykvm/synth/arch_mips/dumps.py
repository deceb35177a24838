"""The mips minidump as ``minidumpsys`` writes it (sys/mips/mips/minidump_machdep.c).

``struct minidumphdr`` (sys/mips/include/minidump.h), every field in the kernel's byte order::

    char     magic[24];      "minidump FreeBSD/mips"
    uint32_t version;        1 (FreeBSD <= 12) or 2 (FreeBSD 13, with dump_avail)
    uint32_t msgbufsize;     msgbufp->msg_size
    uint32_t bitmapsize;     v1: vm_page_dump_size; v2: round_page(BITSET_SIZE(pages))
    uint32_t ptesize;        PAGE_SIZE per NBPDR step from VM_MIN_KERNEL_ADDRESS
    uint64_t kernbase;       VM_MIN_KERNEL_ADDRESS
    uint64_t dmapbase;       0 (never set)
    uint64_t dmapend;        0 (never set)
    uint32_t dumpavailsize;  v2 only: round_page(nitems(dump_avail) * 8)

Sections after the header page: the message buffer (``round_page(msg_size)`` bytes from
``msg_ptr``, so the page tail holds the ``struct msgbuf`` that follows the ring), the
dump_avail copy (v2: u64 pairs), the bitmap, the PTE pages, then the page data.

The bitmap differs between the versions, following the kernel's own type:

* v1 (FreeBSD <= 12): ``uint32_t *vm_page_dump`` (``CTASSERT(sizeof(*vm_page_dump) == 4)``,
  ``dump_add_page``: word ``pfn >> 5``, bit ``pfn & 31``): 32-bit words in the kernel's byte
  order on every ABI, n64 included; bit ids are ``pa / PAGE_SIZE`` from physical 0 and the
  size is ``round_page(roundup2(last_pa / PAGE_SIZE, NBBY) / NBBY)`` (vm_page_startup).
* v2 (FreeBSD 13): the ``BITSET`` of ``long`` of sys/vm/vm_dumpset.h: 32-bit words on o32 and
  n32, 64-bit words on n64, kernel byte order, bit ids compressed over dump_avail.
"""

from __future__ import annotations

import struct

from ..minidump import MinidumpPlan, Sizes, plan_minidump, write_minidump
from .machine import PAGE_SIZE, MipsMachine

MINIDUMP_MAGIC = b"minidump FreeBSD/mips"
#: bytes of ``struct minidumphdr``: 64 in version 1, 72 (68 plus tail padding) in version 2
HEADER_SIZE = {1: 64, 2: 72}


def header_bytes(machine: MipsMachine, version: int, sizes: Sizes) -> bytes:
    """``struct minidumphdr`` of ``version`` for these section sizes, kernel byte order."""
    e = machine.spec.endian
    head = struct.pack(
        f"{e}24sIIIIQQQ",
        MINIDUMP_MAGIC,
        version,
        sizes.msgbufsize,
        sizes.bitmapsize,
        sizes.pmapsize,
        machine.vm_min,
        0,
        0,
    )
    if version >= 2:
        head += struct.pack(f"{e}I", sizes.dumpavailsize)
    return head.ljust(HEADER_SIZE[version], b"\0")


def plan_mips_minidump(machine: MipsMachine, version: int) -> MinidumpPlan:
    """Every section of the minidump of ``machine`` in header ``version`` 1 or 2."""
    if version not in (1, 2):
        raise ValueError("mips minidump versions are 1 and 2")
    if version == 1:
        ranges = [(0, machine.max_pa)]
        word_bits = 32
    else:
        ranges = list(machine.segments)
        word_bits = machine.abi.bitset_word_bits
    pages = [pfn * PAGE_SIZE for pfn in machine.minidump_pfns()]
    return plan_minidump(
        header=lambda sizes: header_bytes(machine, version, sizes),
        msgbuf=machine.msgbuf,
        ranges=ranges,
        pages=pages,
        pmap=machine.pte_section(),
        with_dump_avail=version >= 2,
        page_size=PAGE_SIZE,
        word_bits=word_bits,
        byteorder=machine.byteorder,
        version=version,
    )


def write_mips_minidump(path: str, plan: MinidumpPlan, machine: MipsMachine) -> None:
    """Write the file; the message-buffer section's tail is the ``struct msgbuf``.

    ``minidumpsys`` writes ``round_page(msg_size)`` bytes from ``msg_ptr``; the ring is
    followed in memory by ``struct msgbuf`` (``msgbufinit``), so those bytes end the page.
    """
    write_minidump(path, plan, machine.memory.page)
    msg_size = len(machine.msgbuf)
    tail = machine.memory.read(machine.msgbuf_pa + msg_size, -msg_size % PAGE_SIZE)
    with open(path, "r+b") as f:
        f.seek(plan.layout["msgbuf_off"] + msg_size)
        f.write(tail)
