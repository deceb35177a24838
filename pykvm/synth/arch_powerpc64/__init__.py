"""powerpc64 (big- and little-endian): synthetic kernels, minidumps and full dumps.

Parts: :mod:`.machine` (targets, constants, the shared minidump machine: RAM, the kernel
in the direct map, boot KVA, message buffer), :mod:`.hpt` (the hashed page table:
``mmu_phyp`` and ``mmu_g5``), :mod:`.radix` (``mmu_radix``), :mod:`.dumps` (``struct
minidumphdr``), :mod:`.builder` (:func:`build_powerpc64` and the ground truth); the full
dumps come from :mod:`pykvm.synth.arch_powerpc.virtcore`.

Formats (:data:`FORMATS`):

* ``minidump-hpt``, ``minidump-hpt-le``: ``cpu_minidumpsys`` of a FreeBSD 13+ kernel under
  the HPT MMU (default ``mmu_phyp``; option ``mmu="mmu_g5"``; ``hw_direct_map``,
  ``pteg_count``);
* ``minidump-radix``, ``minidump-radix-le``: the same under ``mmu_radix``;
* ``elf``, ``elf-le``, ``elf-kdh``, ``elf-le-kdh``: ``dumpsys_generic`` full dumps with
  ``debug.minidump=1`` ("virtual" chunks, ``p_paddr`` all ones) as FreeBSD 12 and earlier
  wrote them (the kernel at its link address, kernel VA at 0xe000000000000000), with or
  without the 512-byte kerneldumpheader (architecture ``powerpc64`` / ``powerpc64le``).
  No released little-endian kernel writes this format (powerpc64le appeared in FreeBSD
  13, which writes minidumps when ``debug.minidump=1``); ``elf-le`` is the same layout in
  little-endian, the input kvm_powerpc64.c's little-endian module is written for.

:func:`build` also writes ``elf-phys`` and ``elf-le-phys`` (``debug.minidump=0``:
physical chunks, ``p_vaddr`` all ones), which no correct reader translates; they are not
in :data:`FORMATS` (the registry's contract requires readable memory).

Minidumps record ``startkernel``, so ``truth.kerndisp`` = ``startkernel - 0x100100`` as a
signed 64-bit value (the kernel runs from the direct map: 0xc000000000000000 plus the
load offset, negative as a signed number); full dumps have ``kerndisp`` 0.  Option
``relocated`` (minidumps) loads the kernel away from physical 0x100000.

Ground-truth ``extras``: minidumps ``startkernel``, ``endkernel``, ``mmu`` (0
``mmu_g5``, 1 ``mmu_phyp``, 2 ``mmu_radix``), ``hw_direct_map``, ``pteg_count`` (0 for
radix), ``pmap_big_endian`` (1 when the page-table section's words are big-endian),
``hdr_dmapend`` (the header's inclusive ``dmapend``; ``truth.dmapend`` is exclusive),
``kernend``, ``relocated``; full dumps as in :mod:`pykvm.synth.arch_powerpc`.  ``leaves``
are the kernel-VA translations (at or above ``VM_MIN_KERNEL_ADDRESS``; an HPT leaf's
``entry`` is ``pte_hi << 64 | pte_lo``); the direct map is the range ``[dmapbase,
dmapend)``.  Addresses below the direct map translate as the readers relocate them
(``va + startkernel - 0x100100``), so kernel symbol values read directly.  Hole kinds
besides the shared ones: ``1g-page-hole``, ``ea-out-of-range`` (radix: effective-address
bits 52-61 not zero; the hardware faults, a lookup that only indexes bits 39-51 would
alias the direct map), and the full-dump kinds of :mod:`pykvm.synth.arch_powerpc`.

Walk (``truth.walk``, pykvm's rules): HPT, every valid kernel PTE in slot order with its
true effective address, the protection the hardware applies (no EXECUTE with
``LPTE_NOEXEC``, no WRITE with PP=0b11) and ``kp_offset`` looked up on 4 KiB pages;
radix, every kernel-VA leaf in table order.
"""

from __future__ import annotations

from .builder import POWERPC64_FORMATS, POWERPC64_PHYS_FORMATS, build_powerpc64
from .machine import SPEC

#: the dump formats of this architecture
FORMATS = POWERPC64_FORMATS
#: the format :func:`pykvm.synth.build` writes when none is named
DEFAULT_FORMAT = "minidump-hpt"
#: the registry's entry point
build = build_powerpc64

__all__ = [
    "DEFAULT_FORMAT",
    "FORMATS",
    "POWERPC64_PHYS_FORMATS",
    "SPEC",
    "build",
    "build_powerpc64",
]
