"""aarch64 (arm64): synthetic kernels and minidumps of header versions 1, 2 and 3.

The architecture module the registry finds as ``pykvm.synth.arch_aarch64``; it exports
:data:`FORMATS`, :data:`DEFAULT_FORMAT`, :data:`SPEC` and :func:`build`.

* :mod:`.machine` -- ``SPEC`` / ``SPEC_16K`` (ELF64 LE ``EM_AARCH64`` linked at
  ``KERNBASE`` = 0xffff000000000000, with the ``dmap_phys_base``, ``dmap_phys_max`` and
  ``dmap_max_addr`` variables), the 4 KiB and 16 KiB granules and
  :class:`~.machine.Arm64Machine` (RAM above a non-zero ``dmap_phys_base``, the TTBR1
  tables with L3 pages, an L2 block, optionally an L1 block, the direct map);
* :mod:`.dumps` -- ``cpu_minidumpsys``: which pages are dumped, the flat L3 page-table
  section (live L3 tables, fake entries for blocks), the header;
* :mod:`.builder` -- :func:`build_aarch64` and the ground truth.

Formats: ``minidump-v3`` (FreeBSD 14+, 4 KiB pages, the default), ``minidump-v3-16k``
(16 KiB pages, ``flags`` = 1), ``minidump-v2`` (FreeBSD 13: dump_avail) and
``minidump-v1`` (FreeBSD 11-12: linear bitmap from physical 0).  There is no full
(ELF) dump format: libkvm has no arm64 full-dump reader.

``extras`` of the ground truth: ``dmapphys`` (the header's ``dmapphys`` =
``dmap_phys_base``), ``dmap_phys_max``, ``ttbr1_l0`` (physical address of the kernel's
L0 table) and ``l1_block`` (KVA of the L1 block, 0 without one).  Options of
:func:`build_aarch64`: ``ram_base``, ``l1_block``, ``extra_symbols``, ``kernel_name``,
``core_name``, and ``types`` / ``era`` / ``cp_time_symbol`` / ``debug_name`` (CTF or
DWARF type information and laid-out kernel data, as ``build_amd64``, in every format;
eras 11-15: arm64 was not in FreeBSD 10).  Hole kinds of its own besides the shared
vocabulary: ``invalid-pte-stale``
(an L3 entry with only ``ATTR_DESCR_VALID`` cleared), ``below-kernbase``, ``above-dmap``,
``dmap-below-ram`` (direct-map bytes between ``dmapphys`` and the first RAM range),
``l1-block-hole`` and ``l1-block-not-dumped`` (version 1 skips L1 blocks).
"""

from __future__ import annotations

from .builder import AARCH64_FORMATS, build_aarch64
from .machine import SPEC, SPEC_16K, Arm64Machine

#: the dump formats of this architecture
FORMATS: tuple[str, ...] = tuple(AARCH64_FORMATS)
#: the format :func:`pykvm.synth.build` writes when none is named
DEFAULT_FORMAT = "minidump-v3"
#: the registry's entry point: ``build(directory, seed, fmt, **options)``
build = build_aarch64

__all__ = [
    "AARCH64_FORMATS",
    "DEFAULT_FORMAT",
    "FORMATS",
    "SPEC",
    "SPEC_16K",
    "Arm64Machine",
    "build",
    "build_aarch64",
]
