"""amd64: synthetic kernels and minidump v1-v3 / ELF full dumps (the worked example).

The architecture module the registry finds as ``pykvm.synth.arch_amd64``: it exports
:data:`FORMATS`, :data:`DEFAULT_FORMAT`, :data:`SPEC` and :func:`build`.  Its parts show
how an architecture plugs into :mod:`pykvm.synth`:

* :mod:`.machine` -- ``SPEC`` (the :class:`~pykvm.synth.spec.KernelSpec`: ELF64 LE
  ``EM_X86_64`` linked at ``KERNBASE + KERNLOAD``, with the ``nkpt``, ``KPML4phys`` and
  ``kernphys`` variables) and :class:`~.machine.Amd64Machine`, a
  :class:`~pykvm.synth.machine.Machine` that lays out RAM and builds the 4-level page
  tables and direct map, records every leaf, and decides which pages
  ``cpu_minidumpsys`` marks;
* :mod:`.dumps` -- the ``struct minidumphdr`` and the page-table sections, handed to
  :func:`pykvm.synth.minidump.plan_minidump`; the full dump through
  :func:`pykvm.synth.fullcore.plan_elf_core` with the optional ``PT_DUMP_DELTA``;
* :mod:`.builder` -- :func:`build_amd64`, and the ground truth: the format's view of the
  address space, the ``kvm_walk_pages`` records, the sampled regions and holes, all put
  together by :func:`pykvm.synth.truth.make_truth`.

Formats: ``minidump-v1`` (FreeBSD 6-7 era, flat PTE array), ``minidump-v2`` (flat PDE
array, linear bitmap), ``minidump-v3`` (FreeBSD 13+, with dump_avail and hole-compressed
bitmap; the default) and ``elf`` (full dump, ``dumpsys_generic``).  ``extras`` of the
ground truth: ``kpml4phys`` and ``nkpt`` (also the fields of the same names).
"""

from __future__ import annotations

from .builder import AMD64_FORMATS, build_amd64
from .machine import SPEC, Amd64Machine

#: the dump formats of this architecture
FORMATS = AMD64_FORMATS
#: the format :func:`pykvm.synth.build` writes when none is named
DEFAULT_FORMAT = "minidump-v3"
#: the registry's entry point: ``build(directory, seed, fmt, **options)``
build = build_amd64

__all__ = [
    "AMD64_FORMATS",
    "DEFAULT_FORMAT",
    "FORMATS",
    "SPEC",
    "Amd64Machine",
    "build",
    "build_amd64",
]
