"""riscv (RV64, Sv39 and Sv48): synthetic kernels and minidumps of header versions 1 and 2.

The architecture module the registry finds as ``pykvm.synth.arch_riscv``; it exports
:data:`FORMATS`, :data:`DEFAULT_FORMAT`, :data:`SPEC` and :func:`build`.

* :mod:`.machine` -- ``SPEC`` (ELF64 LE ``EM_RISCV`` linked at ``KERNBASE`` =
  0xffffffc000000000, with ``pmap_mode``, ``dmap_phys_base``, ``dmap_phys_max`` and
  ``dmap_max_addr``) and :class:`~.machine.RiscvMachine` (RAM above a non-zero
  ``dmap_phys_base``, Sv39 or Sv48 tables, the kernel in megapages, L3 pages of every
  kind including PTEs with bits 54-63 set, a megapage past the end of RAM, the direct
  map in gigapages);
* :mod:`.dumps` -- ``cpu_minidumpsys``: which pages are dumped, the flat L3 PTE section
  (live L3 tables, fake PTEs for megapages), the header;
* :mod:`.builder` -- :func:`build_riscv` and the ground truth.

Formats: ``minidump-sv39`` (header version 2, the default), ``minidump-sv48`` (version
2 of a kernel running Sv48: the same format and kernel map) and ``minidump-sv39-v1``
(version 1: no dump_avail, linear bitmap; Sv48 came after version 2).  No full (ELF)
dump format: libkvm has no riscv full-dump reader.

``extras`` of the ground truth: ``dmapphys`` (= ``dmap_phys_base``), ``dmap_phys_max``,
``pmap_mode`` (0 Sv39, 1 Sv48) and ``root`` (physical address of the root page table,
the PPN of ``satp``).  Options of :func:`build_riscv`: ``ram_base``, ``extra_symbols``,
``kernel_name``, ``core_name``, and ``types`` / ``era`` / ``cp_time_symbol`` /
``debug_name`` (CTF or DWARF type information and laid-out kernel data, as
``build_amd64``, in every format; eras 11-15: riscv was not in FreeBSD 10).  Hole kinds
of its own besides the shared vocabulary:
``invalid-pte-stale`` (a PTE with only ``PTE_V`` cleared), ``below-kernbase``,
``above-dmap``, ``dmap-below-ram``.
"""

from __future__ import annotations

from .builder import RISCV_FORMATS, build_riscv
from .machine import SPEC, RiscvMachine

#: the dump formats of this architecture
FORMATS: tuple[str, ...] = tuple(RISCV_FORMATS)
#: the format :func:`pykvm.synth.build` writes when none is named
DEFAULT_FORMAT = "minidump-sv39"
#: the registry's entry point: ``build(directory, seed, fmt, **options)``
build = build_riscv

__all__ = [
    "DEFAULT_FORMAT",
    "FORMATS",
    "RISCV_FORMATS",
    "SPEC",
    "RiscvMachine",
    "build",
    "build_riscv",
]
