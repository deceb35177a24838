"""The 32-bit AIM powerpc target (``mmu_oea``): its :class:`KernelSpec` and machine constants.

From sys/powerpc/include/vmparam.h and sr.h: ``KERNBASE`` = 0x00100100 (the absolute
symbol ``kernbase``; the image, linked with ``. = kernbase + SIZEOF_HEADERS``, runs at its
link address, identity mapped by BATs), ``VM_MIN_KERNEL_ADDRESS`` = ``KERNEL_SR << 28`` =
0xd0000000 and ``VM_MAX_SAFE_KERNEL_ADDRESS`` = that + 2 segments - 1 = 0xefffffff;
``vm_paddr_t`` is 32 bits on AIM (sys/powerpc/include/_types.h).  The kernel file is an
ELF32 big-endian ``ET_DYN`` ``EM_PPC`` image.  The synthetic image starts at 0x100000 (its
first page holds the ELF and program headers) and ``.text`` starts at ``kernbase``
0x100100, so every symbol has the value the real linker script gives it.
"""

from __future__ import annotations

from .. import elfwriter as ew
from ..spec import KernelSpec
from .virtcore import IMAGE_PHYS, VirtTarget

KERNBASE = 0x00100100
KERNEL_SR = 13
VM_MIN_KERNEL_ADDRESS = KERNEL_SR << 28
SEGMENT_LENGTH = 1 << 28
VM_MAX_SAFE_KERNEL_ADDRESS = VM_MIN_KERNEL_ADDRESS + 2 * SEGMENT_LENGTH - 1
KSTACK_PAGES = 4

#: the 32-bit powerpc target: ELF32 BE EM_PPC ET_DYN, .text at kernbase 0x100100
SPEC = KernelSpec(
    arch="powerpc",
    elfclass=ew.ELFCLASS32,
    data=ew.ELFDATA2MSB,
    e_machine=ew.EM_PPC,
    e_type=ew.ET_DYN,
    kernbase=KERNBASE,
    load_offset=IMAGE_PHYS - KERNBASE,
    text_offset=KERNBASE - IMAGE_PHYS,
    link_paddr=IMAGE_PHYS,
    paddr_size=4,
    machine="powerpc",
    machine_arch="powerpc",
    bss_vars=(("msgbuf_phys", 4), ("virtual_avail", 4), ("virtual_end", 4)),
    func_prologue=b"\x94\x21\xff\xf0",  # stwu r1,-16(r1)
)

TARGET = VirtTarget(
    spec=SPEC,
    kva_base=VM_MIN_KERNEL_ADDRESS,
    kva_max=VM_MAX_SAFE_KERNEL_ADDRESS,
    kstack_pages=KSTACK_PAGES,
    has_noexec=False,
    architecture="powerpc",
    cpu="Motorola PowerPC 7447A revision 1.1, 1249.99 MHz",
)
