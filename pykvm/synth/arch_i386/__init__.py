"""i386: synthetic kernels and PAE / non-PAE minidumps (versions 1 and 2) and full dumps.

The architecture module the registry finds as ``pykvm.synth.arch_i386``; it exports
:data:`FORMATS`, :data:`DEFAULT_FORMAT`, :data:`SPEC` and :func:`build`.

* :mod:`.machine` -- the eras of the i386 kernel's address space (:func:`layout_for`:
  FreeBSD 13+ with both pmaps and ``KERNBASE`` = ``KERNLOAD`` = 8 MiB at virtual =
  physical; FreeBSD 12, one pmap; FreeBSD 11 and earlier, ``KERNBASE`` = 0xc0000000),
  :func:`make_spec` and :class:`~.machine.I386Machine`: RAM with holes (and with PAE a
  range above 4 GiB), the boot page tables as ``pmap_cold`` or locore.s builds them, 4 KiB
  and superpage (4 MiB non-PAE, 2 MiB PAE) mappings, the recursive ``PTmap``, and which
  pages ``cpu_minidumpsys`` marks;
* :mod:`.dumps` -- ``struct minidumphdr`` and the flat PTE section, handed to
  :func:`pykvm.synth.minidump.plan_minidump`; the ELF32 full dump;
* :mod:`.builder` -- :func:`build_i386` and the ground truth.

Formats: ``minidump-pae``, ``minidump-nopae`` (header version 2, FreeBSD 13+, with
dump_avail; the default is ``minidump-pae``), ``minidump-v1-pae``, ``minidump-v1-nopae``
(version 1: FreeBSD 12 and earlier, linear bitmap, no dump_avail), ``elf-pae``,
``elf-nopae`` (full dumps, ``dumpsys_generic``).  Options: ``era`` (11, 12, 13),
``highmem`` (PAE minidumps: RAM above 4 GiB), ``extra_symbols``, ``kernel_name``,
``core_name``; ``types``, ``cp_time_symbol``, ``debug_name`` and a string ``era``
(``"10"`` ... ``"14"``) add type information and kernel data as for amd64.

``extras`` of the ground truth: ``era``; ``pae`` (1/0, the booted pmap: the minidump
header's ``paemode``, the kernel's ``pae_mode`` in era 13); ``IdlePTD`` and ``IdlePDPT``
(physical addresses of the page directory and of the PAE PDPT page, 0 without PAE: the
values of the booted pmap's ``IdlePTD*``/``IdlePDPT`` variables); ``KPTphys``; ``KERNend``;
``nkpt`` (kernel page-table pages: NKPT plus those ``pmap_growkernel`` added, also the
``nkpt`` field); ``kernload`` (physical load address = ``kernphys``); ``ptmap`` (VA of the
recursive mapping).  ``kerndisp`` is 0; there is no direct map.

Ground-truth rules worth knowing: kernel variables of every era sit at physical
``VA - (kernbase & 0xff000000)`` (what the loader does: ``VA - KERNBASE`` for FreeBSD 11,
``VA`` since the kernel runs at virtual = physical); a full dump's view is the hardware's
(every PDE of the page directory, the recursive mapping included); a minidump's view is
``[KERNBASE, kernel_vm_end)`` through the PTE section, whose superpages carry the writer's
fake entries (``PG_V | PG_RW | PG_A | PG_M``: the walk reports them read/write/execute).

Hole kinds beyond the shared vocabulary: ``below-kernbase`` (a minidump covers nothing
below ``KERNBASE``: the low-memory map, era 11's identity map and recursive mapping),
``null-page`` (page 0 of a 12+ kernel: its PDE is cleared by ``remap_lower``),
``low-memory-map`` (the fixed map of physical 0..4 MiB at 4..8 MiB onto a page outside
RAM, full dumps).
"""

from __future__ import annotations

from .builder import I386_FORMATS, build_i386, parse_format
from .machine import ERAS, SPEC, I386Machine, layout_for, make_spec

#: the dump formats of this architecture
FORMATS = I386_FORMATS
#: the format :func:`pykvm.synth.build` writes when none is named
DEFAULT_FORMAT = "minidump-pae"
#: the registry's entry point: ``build(directory, seed, fmt, **options)``
build = build_i386

__all__ = [
    "DEFAULT_FORMAT",
    "ERAS",
    "FORMATS",
    "I386_FORMATS",
    "SPEC",
    "I386Machine",
    "build",
    "build_i386",
    "layout_for",
    "make_spec",
    "parse_format",
]
