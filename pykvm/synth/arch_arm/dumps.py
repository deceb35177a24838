"""arm minidumps (header versions 1 and 2) and full dumps, written from the kernel's side.

Sources followed (read, not copied): sys/arm/arm/minidump_machdep.c ``cpu_minidumpsys``
(FreeBSD 13+: version 2 with dump_avail; FreeBSD 11-12 ``minidumpsys``: version 1, a
linear bitmap of 32-bit words ``vm_page_dump[]``, ``mmuformat`` V4 for ``__ARM_ARCH <
6`` kernels), sys/arm/include/minidump.h, pmap-v6.c / pmap.c ``pmap_dump_kextract``,
sys/kern/kern_dump.c and sys/arm/arm/dump_machdep.c (``PT_DUMP_DELTA``).

Minidump header (kernel byte order): magic ``minidump FreeBSD/arm`` (24 bytes), version,
msgbufsize, bitmapsize, ptesize, kernbase, arch (``__ARM_ARCH``: 7, or 5 for ARMv5),
mmuformat (2 = V6, 1 = V4), and in version 2 dumpavailsize: 56 bytes (52 in version 1).
The PTE section holds one 32-bit L2-format entry per page from KERNBASE to
``kernel_vm_end`` and is written **unpadded** (``ptesize`` = 4 x pages; page data follow
right after it).  Bitmap words are 32-bit ``long``/``u_int`` in kernel byte order.

Full dump: ELF32 ``EM_ARM`` ``ET_CORE`` in the kernel's byte order, one ``PT_LOAD`` per
dump_avail range, and ``PT_DUMP_DELTA`` = (``KERNVIRTADDR``,
``pmap_kextract(KERNVIRTADDR)``, ``PAGE_SIZE``) unless the format is ``elf-nodelta``.
"""

from __future__ import annotations

import struct

from .. import elfwriter as ew
from .. import fullcore as fc
from .. import minidump as md
from .machine import KERNBASE, PAGE_SIZE, ArmMachine

MINIDUMP_MAGIC = b"minidump FreeBSD/arm"
MINIDUMP_MMU_FORMAT_V4 = 1
MINIDUMP_MMU_FORMAT_V6 = 2


def header_struct(endian: str, version: int) -> struct.Struct:
    """``struct minidumphdr`` of header ``version`` (56 bytes in v2, 52 in v1)."""
    return struct.Struct(f"{endian}24s{8 if version == 2 else 7}I")


def pte_section(machine: ArmMachine) -> tuple[bytes, list[tuple[int, int]]]:
    """The PTE section bytes and the ``(pa, entry)`` of every KVA page."""
    ptes = machine.kva_ptes()
    return machine.spec.array([e for _, e in ptes], 4), ptes


def plan_minidump(machine: ArmMachine, version: int) -> md.MinidumpPlan:
    """Compute the sections of a version ``version`` minidump of ``machine``."""
    if version not in (1, 2):
        raise ValueError("arm minidump versions are 1 and 2")
    spec = machine.spec
    pmap, ptes = pte_section(machine)
    hdr = header_struct(spec.endian, version)
    arch = 7 if machine.v6 else 5
    mmu = MINIDUMP_MMU_FORMAT_V6 if machine.v6 else MINIDUMP_MMU_FORMAT_V4

    def header(sz: md.Sizes) -> bytes:
        fields = [
            MINIDUMP_MAGIC.ljust(24, b"\0"),
            version,
            sz.msgbufsize,
            sz.bitmapsize,
            sz.pmapsize,
            KERNBASE,
            arch,
            mmu,
        ]
        if version == 2:
            fields.append(sz.dumpavailsize)
        return hdr.pack(*fields)

    return md.plan_minidump(
        header=header,
        msgbuf=machine.msgbuf,
        ranges=machine.segments if version == 2 else [(0, machine.max_pa)],
        pages=machine.minidump_pages(ptes),
        pmap=pmap,
        with_dump_avail=version == 2,
        page_size=PAGE_SIZE,
        word_bits=32,
        byteorder=spec.byteorder,
        pad_pmap=False,
        version=version,
    )


def write_minidump(path: str, plan: md.MinidumpPlan, machine: ArmMachine) -> None:
    """Write the minidump described by ``plan``."""
    md.write_minidump(path, plan, machine.memory.page)


def plan_elf_core(machine: ArmMachine, dump_delta: bool) -> fc.ElfCorePlan:
    """One ``PT_LOAD`` per dump_avail range, then ``PT_DUMP_DELTA`` if ``dump_delta``."""
    spec = machine.spec
    aux = [fc.dump_delta(machine.kernvirtaddr, machine.kernphys, PAGE_SIZE)] if dump_delta else []
    return fc.plan_elf_core(
        spec.elf,
        ew.EM_ARM,
        fc.chunks(machine.segments, spec.elf, "phys"),
        page_size=PAGE_SIZE,
        aux=aux,
    )


def write_elf_core(path: str, plan: fc.ElfCorePlan, machine: ArmMachine) -> None:
    """Write the full dump of ``plan`` (RAM contents from ``machine``)."""
    fc.write_elf_core(path, plan, fc.physical_reader(machine.memory.chunks))
