"""Synthetic FreeBSD kernels and crash dumps, written from the kernel's side.

``pykvm.synth`` builds small, faithful kernel + vmcore pairs in a directory from a seed,
together with the ground truth a correct reader must reproduce.  It shares no code with
pykvm's readers, so a misunderstanding of a format cannot hide on both sides.

Example::

    from pykvm.synth import build_amd64
    dump = build_amd64(tmp_path, seed=3, fmt="minidump-v3")
    va, data = dump.truth.regions[0]
    assert dump.truth.expect(va, len(data)) == data

Formats (:data:`AMD64_FORMATS`): ``minidump-v1`` (FreeBSD 6-7 era, flat PTE array),
``minidump-v2`` (flat PDE array, linear bitmap), ``minidump-v3`` (FreeBSD 13+, with
dump_avail and hole-compressed bitmap) and ``elf`` (full dump, ``dumpsys_generic``).

The machine of a seed (details in :mod:`pykvm.synth.amd64`): 4-5 dump_avail ranges with
holes (low RAM below 640 KiB in most seeds, the kernel's range around ``kernphys``, one or
two ranges of a few MiB in the first GiB, a few MiB inside the physical GiB behind the
1 GiB mapping), the kernel image at ``KERNBASE + 2 MiB`` -> ``kernphys`` with 4 KiB PTEs,
a 2 MiB superpage and a sparse page table above it up to ``kernel_vm_end``, a "kmem" GiB
below KERNBASE (sparse page tables, PTEs into holes and onto ``PG_NODUMP`` pages, a
superpage straddling the end of a RAM range), a 1 GiB mapping, and the direct map at
0xfffff80000000000.  Options of :func:`build_amd64`: ``kernphys``, ``dump_delta`` (ELF),
``physmem_gib`` (big sparse machine), ``extra_symbols``, ``vm_min_kernel_address`` /
``small_kva`` (pmap section size), ``bulk_mib`` (a contiguous superpage-mapped range for
throughput benchmarks, ``truth.bulk``), ``kernel_name`` / ``core_name``.
"""

from .build import AMD64_FORMATS, build_amd64
from .truth import GroundTruth, Leaf, SynthDump, WalkPage

__all__ = ["AMD64_FORMATS", "GroundTruth", "Leaf", "SynthDump", "WalkPage", "build_amd64"]
