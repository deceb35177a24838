"""arm (32-bit): synthetic kernels, minidumps (versions 1 and 2, V6 and V4 MMU formats)
and full ELF dumps, in both byte orders.

The architecture module the registry finds as ``pykvm.synth.arch_arm``: :data:`FORMATS`,
:data:`DEFAULT_FORMAT`, :data:`SPEC` and :func:`build`.  Parts: :mod:`.machine` (the
targets and :class:`~.machine.ArmMachine`: RAM, the pmap-v6 or v4 page tables, leaves),
:mod:`.dumps` (``struct minidumphdr``, the PTE section, the full dump), :mod:`.builder`
(:func:`build_arm` and the ground truth).

Formats (pmap flavour, byte order, dump):

=================  ===========================================================================
``minidump``       FreeBSD 13+ armv7: header version 2, mmuformat V6, dump_avail, compressed
                   bitmap of 32-bit words (the default)
``minidump-be``    the same in big-endian (not a FreeBSD target; exercises kernel byte order)
``minidump-v1``    FreeBSD 11-12 armv6/v7: version 1 (no dump_avail, linear bitmap), V6
``minidump-v4``    FreeBSD 11-12 ARMv5: version 1, mmuformat V4 (64 KiB pages, a supersection)
``minidump-v4-be`` the same for big-endian ``armeb``
``elf``            full dump of the pmap-v6 machine with ``PT_DUMP_DELTA``
``elf-be``         the same in big-endian
``elf-nodelta``    pmap-v6 full dump without the aux header (readers use the ``kernbase``
                   and ``physaddr`` symbols)
``elf-v4``         full dump of the v4 machine (``PT_DUMP_DELTA``)
``elf-v4-be``      the same for ``armeb``
=================  ===========================================================================

Options ``types``, ``era``, ``cp_time_symbol`` and ``debug_name`` add type information
and kernel data as for amd64 (types eras ``"10"`` ... ``"15"``; ``"10"`` ... ``"12"``
for the v4 formats, whose ARMv4/v5 kernels FreeBSD 13 no longer has).

``extras`` of the ground truth: ``kernel_l1pa`` (the value of the kernel variable),
``l1pt_pa`` / ``l1pt_va`` (where the 16 KiB L1 table is), ``physaddr`` (physical address
of ``KERNBASE``, also the absolute symbol ``physaddr``), ``kernvirtaddr`` (link address of
the image, ``PT_DUMP_DELTA``'s ``p_vaddr``), ``mmuformat`` (2 = V6, 1 = V4) and ``arch``
(``__ARM_ARCH``: 7 or 5).

Two facts of the kernel's side that readers trip on (formats.md 7.3 and 7.6 say
otherwise): pmap-v6 stores ``kernel_l1pa = (vm_paddr_t)kern_pt1``, the L1 table's
*virtual* address (``KERNEL_P2V(base_pt1)``), so a full dump's ``kernel_l1pa`` is not a
physical address (the v4 pmap stored ``l1pt->pv_pa``); and both pmaps grow
``kernel_vm_end`` 1 MiB at a time while the minidump writer never pads the PTE section,
so ``round_page(ptesize)`` is only right when the KVA span is a multiple of 4 MiB (option
``kva_tail_mib``).
"""

from __future__ import annotations

from .builder import ARM_FORMATS, FORMAT_TABLE, build_arm
from .machine import SPEC, ArmMachine, make_spec

#: the dump formats of this architecture
FORMATS = ARM_FORMATS
#: the format :func:`pykvm.synth.build` writes when none is named
DEFAULT_FORMAT = "minidump"
#: the registry's entry point: ``build(directory, seed, fmt, **options)``
build = build_arm

__all__ = [
    "ARM_FORMATS",
    "DEFAULT_FORMAT",
    "FORMATS",
    "FORMAT_TABLE",
    "SPEC",
    "ArmMachine",
    "build",
    "build_arm",
    "make_spec",
]
