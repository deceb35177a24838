"""i386 minidumps (versions 1 and 2, PAE and non-PAE) and full dumps, from the kernel's side.

Sources followed (read, not copied): sys/i386/i386/minidump_machdep_base.c
(``cpu_minidumpsys``, compiled as ``cpu_minidumpsys_pae`` and ``cpu_minidumpsys_nopae``;
version 2), the FreeBSD 6-12 sys/i386/i386/minidump_machdep.c (``minidumpsys``;
version 1: no dump_avail, a linear bitmap of ``vm_page_dump_size`` bytes),
sys/i386/include/minidump.h, sys/vm/vm_dumpset.h, sys/kern/kern_dump.c.

What is i386's here is the header and the PTE section; the section layout, bitmap
(``BITSET`` of 32-bit ``long`` words), dump_avail and page data come from
:mod:`pykvm.synth.minidump`, the ELF core from :mod:`pykvm.synth.fullcore`.  All integers
little-endian, PS = 4096:

======================  ===================================================================
header                  ``struct minidumphdr``: magic ``minidump FreeBSD/i386`` (24 bytes),
                        version, msgbufsize, bitmapsize, ptesize, kernbase (u32,
                        ``KERNBASE``), paemode (u32), and in version 2 dumpavailsize; 52
                        bytes (48 in version 1)
dump_avail              version 2 only: the kernel's ``dump_avail`` (u64 ``vm_paddr_t``)
                        copied into one page; version 1 bitmaps number pages ``pa >> 12``
                        from physical 0 up to the end of the last dump_avail range
PTE section             one page per superpage step (4 MiB non-PAE, 2 MiB PAE) from
                        ``KERNBASE`` to ``kernel_vm_end``: the live page-table page (1024
                        u32 or 512 u64 PTEs), a fake page for a superpage whose entries are
                        ``(pa + k * 4096) | PG_V | PG_RW | PG_A | PG_M``, or zeros
======================  ===================================================================

The full dump is ELF32 LE ``EM_386`` with one ``PT_LOAD`` per dump_avail range
(``p_vaddr = p_paddr`` = the physical start) and no auxiliary header.
"""

from __future__ import annotations

import struct

from .. import elfwriter as ew
from .. import fullcore as fc
from .. import minidump as md
from .machine import PAGE_SHIFT, PAGE_SIZE, I386Machine

MINIDUMP_MAGIC = b"minidump FreeBSD/i386"
_HDR_V2 = struct.Struct("<24sIIIIIII")  # struct minidumphdr, FreeBSD 13+
_HDR_V1 = struct.Struct("<24sIIIIII")  # the same without dumpavailsize
assert _HDR_V2.size == 52 and _HDR_V1.size == 48


def pte_section(machine: I386Machine) -> bytes:
    """The PTE section bytes (see the module docstring)."""
    pg = machine.pg
    page = struct.Struct(f"<{pg.nptepg}{pg.code}")
    return b"".join(page.pack(*entries) for entries in machine.pte_pages())


def plan_minidump(machine: I386Machine, version: int) -> md.MinidumpPlan:
    """Compute the sections of a version ``version`` (1 or 2) minidump of ``machine``."""
    if version not in (1, 2):
        raise ValueError("i386 minidump versions are 1 and 2")
    lay = machine.lay
    magic = MINIDUMP_MAGIC.ljust(24, b"\0")
    paemode = 1 if machine.pae else 0

    def header(sz: md.Sizes) -> bytes:
        fields = (
            magic,
            version,
            sz.msgbufsize,
            sz.bitmapsize,
            sz.pmapsize,
            lay.kernbase,
            paemode,
        )
        if version == 2:
            return _HDR_V2.pack(*fields, sz.dumpavailsize)
        return _HDR_V1.pack(*fields)

    return md.plan_minidump(
        header=header,
        msgbuf=machine.msgbuf,
        ranges=machine.segments if version == 2 else [(0, machine.max_pa)],
        pages=[pfn << PAGE_SHIFT for pfn in machine.minidump_pfns()],
        pmap=pte_section(machine),
        with_dump_avail=version == 2,
        page_size=PAGE_SIZE,
        word_bits=32,
        byteorder="little",
        version=version,
    )


def write_minidump(path: str, plan: md.MinidumpPlan, machine: I386Machine) -> None:
    """Write the minidump described by ``plan`` (page data taken from ``machine``)."""
    md.write_minidump(path, plan, machine.memory.page)


def plan_elf_core(machine: I386Machine) -> fc.ElfCorePlan:
    """Lay out the full dump: one ``PT_LOAD`` per dump_avail range (ELF32, physical)."""
    if machine.max_pa > 1 << 32:
        raise ValueError("an i386 full dump cannot describe RAM above 4 GiB (ELF32)")
    return fc.plan_elf_core(
        ew.ELF32LE,
        ew.EM_386,
        fc.chunks(machine.segments, ew.ELF32LE, "phys"),
        page_size=PAGE_SIZE,
    )


def write_elf_core(path: str, plan: fc.ElfCorePlan, machine: I386Machine) -> None:
    """Write the full dump of ``plan`` (RAM contents taken from ``machine``)."""
    fc.write_elf_core(path, plan, fc.physical_reader(machine.memory.chunks))
