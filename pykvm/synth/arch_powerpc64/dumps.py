"""The powerpc64 minidump header and layout (``cpu_minidumpsys``, version 2).

Sources followed (read, not copied): sys/powerpc/powerpc/minidump_machdep.c and
sys/powerpc/include/minidump.h.  ``struct minidumphdr`` in the kernel's byte order,
144 bytes:

======  ======  ==========================================================================
offset  size    field
======  ======  ==========================================================================
0       32      magic ``minidump FreeBSD/powerpc64``, NUL padded
32      32      mmu_name: ``pmap_mmu_name()`` (``mmu_g5``, ``mmu_phyp``, ``mmu_radix``)
64      4       version (``MINIDUMP_VERSION`` 2)
68      4       msgbufsize
72      4       bitmapsize, ``round_page(BITSET_SIZE(vm_page_dump_pages))``
76      4       pmapsize: ``dumpsys_scan_pmap()`` (HPT: 16 x 8 x PTEGs; radix: 65536)
80      8       kernbase ``VM_MIN_KERNEL_ADDRESS``
88      8       kernend ``VM_MAX_SAFE_KERNEL_ADDRESS``
96      8       dmapbase ``DMAP_BASE_ADDRESS``
104     8       dmapend ``DMAP_MAX_ADDRESS`` (inclusive)
112     4       hw_direct_map (int)
116     4       padding
120     8       startkernel ``__startkernel``
128     8       endkernel ``__endkernel``
136     4       dumpavailsize ``round_page(sizeof(dump_avail))`` = one page
140     4       padding
======  ======  ==========================================================================

Then the message buffer, the dump_avail page (u64 pairs in the kernel's byte order), the
bitmap (64-bit words in the kernel's byte order), the page-table section and the pages,
all laid out by :func:`pykvm.synth.minidump.plan_minidump`.
"""

from __future__ import annotations

import struct

from .. import minidump as md
from .machine import (
    DMAP_BASE_ADDRESS,
    DMAP_MAX_ADDRESS,
    PAGE_SHIFT,
    PAGE_SIZE,
    VM_MAX_KERNEL_ADDRESS,
    VM_MIN_KERNEL_ADDRESS,
    Ppc64Machine,
)

MINIDUMP_MAGIC = b"minidump FreeBSD/powerpc64"
MINIDUMP_VERSION = 2
HEADER_SIZE = 144


def header_struct(endian: str) -> struct.Struct:
    """``struct minidumphdr`` in byte order ``endian`` (``<`` or ``>``)."""
    st = struct.Struct(endian + "32s32sIIIIQQQQi4xQQI4x")
    assert st.size == HEADER_SIZE
    return st


def plan_minidump(
    machine: Ppc64Machine,
    *,
    mmu_name: str,
    hw_direct_map: int,
    pages: list[int],
    pmap: bytes,
) -> md.MinidumpPlan:
    """Lay out the minidump of ``machine``; ``pages`` are the page frame numbers dumped."""
    spec = machine.spec
    st = header_struct(spec.endian)

    def header(sz: md.Sizes) -> bytes:
        return st.pack(
            MINIDUMP_MAGIC,
            mmu_name.encode(),
            MINIDUMP_VERSION,
            sz.msgbufsize,
            sz.bitmapsize,
            sz.pmapsize,
            VM_MIN_KERNEL_ADDRESS,
            VM_MAX_KERNEL_ADDRESS,
            DMAP_BASE_ADDRESS,
            DMAP_MAX_ADDRESS,
            hw_direct_map,
            machine.startkernel,
            machine.endkernel,
            sz.dumpavailsize,
        )

    return md.plan_minidump(
        header=header,
        msgbuf=machine.msgbuf,
        ranges=machine.segments,
        pages=[pfn << PAGE_SHIFT for pfn in pages],
        pmap=pmap,
        with_dump_avail=True,
        page_size=PAGE_SIZE,
        word_bits=64,
        byteorder=spec.byteorder,
        version=MINIDUMP_VERSION,
    )


__all__ = ["HEADER_SIZE", "MINIDUMP_MAGIC", "MINIDUMP_VERSION", "header_struct", "plan_minidump"]
