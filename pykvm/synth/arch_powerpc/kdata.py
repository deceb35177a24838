"""Kernel data (the ``types=`` option) on the powerpc machines: eras, ``.bss``, the arena.

Shared by the 32-bit full-dump machine (:mod:`.virtcore`, also used by powerpc64's ELF
formats) and powerpc64's HPT and radix minidump machines.  The kernel-data layout itself
is :func:`pykvm.synth.kerneldata.lay_out_kernel_data`; this module only says which eras a
kernel of each flavour can be, which variables go to ``.bss``, and how the laid-out arena
pages, ``mp_maxcpus`` and the linker-set symbols reach the machine and its kernel.

Eras (FreeBSD major versions of the types):

* 32-bit powerpc: 10 to 14.  FreeBSD 15.0 retired the 32-bit powerpc kernel (release
  notes: "The venerable 32-bit hardware platforms i386, armv6, and 32-bit powerpc have
  been retired"; freebsd-arch, J. Baldwin, "Deprecation of i386 and 32-bit powerpc for
  15.0", June 2025).
* powerpc64 (big-endian): 10 to 15.
* powerpc64le: 13 to 15 (the little-endian port first shipped in FreeBSD 13.0;
  ``MACHINE_ARCH "powerpc64le"`` appears in sys/powerpc/include/param.h from then on).
"""

from __future__ import annotations

from collections.abc import Callable

from ..cmodel import LayoutTruth
from ..kernel import SynthKernel
from ..kerneldata import KernelDataTruth, PageArena, bss_variables, install_kernel_data
from ..kerneltypes import ERAS
from ..spec import KernelSpec

#: eras each powerpc kernel flavour existed in (see the module docstring)
ERAS_POWERPC = ("10", "11", "12", "13", "14")
ERAS_POWERPC64 = ERAS
ERAS_POWERPC64LE = ("13", "14", "15")
#: pages of kernel VA reserved for the kernel-data arena (1 MiB; a few dozen are used)
KDATA_PAGES = 256


def kdata_bss(spec: KernelSpec, types: LayoutTruth | None, cp_time: bool) -> list[tuple[str, int]]:
    """The kernel-data ``.bss`` variables for ``SynthKernel(extra_bss=...)`` ([] without types)."""
    if types is None:
        return []
    have = {"hz", "mp_maxcpus", "dumptid"}
    have |= {n for n, _ in spec.data_vars} | {n for n, _ in spec.bss_vars}
    return bss_variables(types, cp_time=cp_time, existing=sorted(have))


def build_kernel_data(
    kernel: SynthKernel,
    types: LayoutTruth,
    *,
    seed: int,
    base: int,
    page_size: int,
    map_page: Callable[[int], int],
    place: Callable[[int, bytes], None],
    msgbuf_ring_va: int,
    msgbuf: bytes,
    cp_time_symbol: bool,
) -> tuple[KernelDataTruth, list[int]]:
    """Lay out the kernel data in an arena of kernel VA from ``base``; return it and the
    arena's page VAs.

    ``map_page(va)`` maps one arena page (it is called in ascending VA order, the arena
    being a bump allocator, so the used pages are contiguous from ``base``) and returns
    its physical address; ``place(pa, data)`` fixes that page's contents.  Sets
    ``mp_maxcpus`` to the target's MAXCPU and adds the layout's extra symbols (linker-set
    bounds) to ``kernel`` as ``STT_NOTYPE`` symbols in ``.bss``, as the amd64 machine does.
    """
    arena = PageArena(base, KDATA_PAGES, page_size, map_page)
    kdata = install_kernel_data(
        kernel, types, arena, place, seed=seed, msgbuf_ring_va=msgbuf_ring_va,
        msgbuf=msgbuf, cp_time_symbol=cp_time_symbol,
    )
    vas = [va for va, _pa, _data in arena.pages()]
    assert vas == [base + i * page_size for i in range(len(vas))], "arena pages not contiguous"
    return kdata, vas


__all__ = [
    "ERAS_POWERPC",
    "ERAS_POWERPC64",
    "ERAS_POWERPC64LE",
    "KDATA_PAGES",
    "build_kernel_data",
    "kdata_bss",
]
