"""amd64 minidumps (versions 1, 2 and 3) and full dumps, written from the kernel's side.

Sources followed (read, not copied): sys/amd64/amd64/minidump_machdep.c
``cpu_minidumpsys`` (FreeBSD 13+: version 3; the same file before the dump_avail change:
version 2), sys/amd64/include/minidump.h, sys/vm/vm_dumpset.h, sys/kern/kern_dump.c and
sys/x86/x86/dump_machdep.c (``PT_DUMP_DELTA``).

What is amd64's here is only the header and the page-table section; the section layout,
bitmap, dump_avail and page data come from :mod:`pykvm.synth.minidump`, the ELF core from
:mod:`pykvm.synth.fullcore`.  All integers little-endian, PS = 4096:

======================  ===================================================================
header                  ``struct minidumphdr`` (72 bytes in v3, 64 in v1/v2): magic
                        ``minidump FreeBSD/amd64``, version, msgbufsize, bitmapsize,
                        pmapsize, kernbase, dmapbase, dmapend, (v3) dumpavailsize
dump_avail              v3 only; v1/v2 bitmaps number pages ``pa >> 12`` from physical 0
page tables             v2/v3: one page of 512 PDEs per GiB from VM_MIN_KERNEL_ADDRESS to
                        ``max(KERNBASE + nkpt * NBPDR, kernel_vm_end)`` (a copy of the PD page,
                        a fake PD for a 1 GiB page whose entry j is PDPE + j * 2 MiB, or zeros);
                        v1: one page of 512 PTEs per 2 MiB from KERNBASE to kernel_vm_end (a
                        copy of the PT page, a fake PT for a 2 MiB page whose entries are
                        ``pa | PG_V | PG_RW | PG_A | PG_M``, or zeros)
======================  ===================================================================

The full dump is ELF64 LE ``EM_X86_64`` with one ``PT_LOAD`` per dump_avail range and,
optionally (FreeBSD pull request #1706), ``PT_DUMP_DELTA`` = (KERNBASE, kernphys,
KERNLOAD) after them.
"""

from __future__ import annotations

import struct

from .. import elfwriter as ew
from .. import fullcore as fc
from .. import minidump as md
from .machine import (
    DMAP_MAX_ADDRESS,
    DMAP_MIN_ADDRESS,
    GIB,
    KERNBASE,
    KERNLOAD,
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

MINIDUMP_MAGIC = b"minidump FreeBSD/amd64"
_HDR_V3 = struct.Struct("<24sIIIIQQQI4x")  # struct minidumphdr, FreeBSD 13+
_HDR_V2 = struct.Struct("<24sIIIIQQQ")  # versions 1 and 2 (ptesize/pmapsize at 36)
assert _HDR_V3.size == 72 and _HDR_V2.size == 64


def plan_minidump(machine: Amd64Machine, version: int) -> md.MinidumpPlan:
    """Compute the sections of a version ``version`` minidump of ``machine``."""
    if version not in (1, 2, 3):
        raise ValueError("amd64 minidump versions are 1, 2 and 3")
    if version == 1:
        pmap = _v1_pte_section(machine)
        kernbase = KERNBASE
    else:
        pmap = _pd_section(machine)
        kernbase = machine.vm_min
    magic = MINIDUMP_MAGIC.ljust(24, b"\0")

    def header(sz: md.Sizes) -> bytes:
        fields = (
            magic,
            version,
            sz.msgbufsize,
            sz.bitmapsize,
            sz.pmapsize,
            kernbase,
            DMAP_MIN_ADDRESS,
            DMAP_MAX_ADDRESS,
        )
        if version == 3:
            return _HDR_V3.pack(*fields, sz.dumpavailsize)
        return _HDR_V2.pack(*fields)

    return md.plan_minidump(
        header=header,
        msgbuf=machine.msgbuf,
        ranges=machine.segments if version == 3 else [(0, machine.max_pa)],
        pages=[pfn << PAGE_SHIFT for pfn in machine.minidump_pfns(version)],
        pmap=pmap,
        with_dump_avail=version == 3,
        page_size=PAGE_SIZE,
        word_bits=64,
        byteorder="little",
        version=version,
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


def write_minidump(path: str, plan: md.MinidumpPlan, machine: Amd64Machine) -> None:
    """Write the minidump described by ``plan`` (page data taken from ``machine``)."""
    md.write_minidump(path, plan, machine.memory.page)


def plan_elf_core(machine: Amd64Machine, dump_delta: bool) -> fc.ElfCorePlan:
    """Lay out the full dump: one ``PT_LOAD`` per range, then ``PT_DUMP_DELTA`` if asked."""
    aux = [fc.dump_delta(KERNBASE, machine.kernphys, KERNLOAD)] if dump_delta else []
    return fc.plan_elf_core(
        ew.ELF64LE,
        ew.EM_X86_64,
        fc.chunks(machine.segments, ew.ELF64LE, "phys"),
        page_size=PAGE_SIZE,
        aux=aux,
    )


def write_elf_core(path: str, plan: fc.ElfCorePlan, machine: Amd64Machine) -> None:
    """Write the full dump of ``plan`` (RAM contents taken from ``machine``)."""
    fc.write_elf_core(path, plan, fc.physical_reader(machine.memory.chunks))
