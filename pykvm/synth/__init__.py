"""Synthetic FreeBSD kernels and crash dumps, written from the kernel's side.

``pykvm.synth`` builds small, faithful kernel + vmcore pairs in a directory from a seed,
together with the ground truth a correct reader must reproduce.  It shares no code with
pykvm's readers, so a misunderstanding of a format cannot hide on both sides.

Example::

    from pykvm import synth
    dump = synth.build("amd64", tmp_path, seed=3, fmt="minidump-v3")
    va, data = dump.truth.regions[0]
    assert dump.truth.expect(va, len(data)) == data

Architectures are plug-ins found by name: every module (or package)
``pykvm.synth.arch_<name>`` that exists is an architecture (:data:`ARCHES`); it exports
``FORMATS`` and ``build(directory, seed, fmt, **options)`` (and optionally
``DEFAULT_FORMAT``).  Adding an architecture means adding that one module; see
``pykvm/synth/README.md`` ("How to add an architecture").  :func:`build` and
:func:`formats` dispatch to it.

Shared, architecture-independent pieces: :mod:`.spec` (``KernelSpec``, the target),
:mod:`.elfwriter` (ELF records of any class and byte order), :mod:`.kernel` (the
synthetic kernel ELF), :mod:`.machine` (RAM with holes, page allocation, radix page
tables, leaf records), :mod:`.minidump` (section layout, dump_avail, bitmap, page data),
:mod:`.fullcore` (ELF full dumps, ``PT_DUMP_DELTA``, powerpc chunk conventions),
:mod:`.kerneldump` (the 512-byte kerneldumpheader) and :mod:`.truth` (``GroundTruth``).

amd64 (:mod:`.arch_amd64`, the worked example; ``build_amd64`` and ``AMD64_FORMATS``
are kept here): ``minidump-v1`` (FreeBSD 6-7 era, flat PTE array), ``minidump-v2``
(flat PDE array, linear bitmap), ``minidump-v3`` (FreeBSD 13+, with dump_avail and
hole-compressed bitmap) and ``elf`` (full dump, ``dumpsys_generic``).  The machine of a
seed (details in :mod:`pykvm.synth.arch_amd64.machine`): 4-5 dump_avail ranges with
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

from __future__ import annotations

import importlib
import os
import pkgutil
from collections.abc import Iterable
from types import ModuleType

from .arch_amd64 import AMD64_FORMATS, build_amd64
from .spec import KernelSpec
from .truth import GroundTruth, Leaf, SynthDump, WalkPage

#: pykvm's architecture names, in the order :data:`ARCHES` lists them
KNOWN_ARCHES = ("amd64", "i386", "arm", "aarch64", "riscv", "mips", "powerpc", "powerpc64")

_PREFIX = "arch_"


def discover(paths: Iterable[str] | None = None) -> tuple[str, ...]:
    """Names ``<name>`` of the ``arch_<name>`` modules and packages in ``paths``.

    ``paths`` defaults to this package's directory.  Known architectures come first, in
    :data:`KNOWN_ARCHES` order, then any other name alphabetically.  Nothing is imported.
    """
    found = {
        info.name[len(_PREFIX) :]
        for info in pkgutil.iter_modules(list(__path__ if paths is None else paths))
        if info.name.startswith(_PREFIX) and len(info.name) > len(_PREFIX)
    }
    rank = {name: i for i, name in enumerate(KNOWN_ARCHES)}
    return tuple(sorted(found, key=lambda name: (rank.get(name, len(rank)), name)))


#: the architectures that have a writer module (``arch_<name>``), known ones first
ARCHES: tuple[str, ...] = discover()


def arch_module(arch: str) -> ModuleType:
    """Import and return ``pykvm.synth.arch_<arch>`` after checking its exports.

    Raises:
        ValueError: no such architecture module.
        TypeError: the module lacks ``FORMATS`` (a non-empty tuple of str) or ``build``.
    """
    if arch not in ARCHES:
        raise ValueError(f"unknown architecture {arch!r}; expected one of {ARCHES}")
    module = importlib.import_module(f"{__name__}.{_PREFIX}{arch}")
    fmts = getattr(module, "FORMATS", None)
    if (
        not isinstance(fmts, tuple)
        or not fmts
        or not all(isinstance(f, str) for f in fmts)
        or not callable(getattr(module, "build", None))
    ):
        raise TypeError(f"{module.__name__} must export FORMATS (tuple of str) and build()")
    default = getattr(module, "DEFAULT_FORMAT", fmts[0])
    if default not in fmts:
        raise TypeError(f"{module.__name__}.DEFAULT_FORMAT is not one of its FORMATS")
    return module


def formats(arch: str) -> tuple[str, ...]:
    """The dump formats architecture ``arch`` can write (its module's ``FORMATS``)."""
    return tuple(arch_module(arch).FORMATS)


def default_format(arch: str) -> str:
    """The format :func:`build` writes for ``arch`` when none is named."""
    module = arch_module(arch)
    return str(getattr(module, "DEFAULT_FORMAT", module.FORMATS[0]))


def build(
    arch: str,
    directory: str | os.PathLike[str],
    seed: int = 0,
    fmt: str | None = None,
    **options: object,
) -> SynthDump:
    """Write a synthetic kernel and vmcore of ``arch`` into ``directory``; return them.

    ``fmt`` is one of :func:`formats` (default: the module's ``DEFAULT_FORMAT``, else its
    first format); ``options`` go to the architecture's ``build`` unchanged (amd64: see
    :func:`build_amd64`).  The same arguments always give byte-identical files.

    Raises:
        ValueError: unknown architecture or format, or an option the architecture
            rejects.
    """
    module = arch_module(arch)
    fmts: tuple[str, ...] = module.FORMATS
    if fmt is None:
        fmt = default_format(arch)
    if fmt not in fmts:
        raise ValueError(f"unknown {arch} dump format {fmt!r}; expected one of {fmts}")
    dump = module.build(directory, seed, fmt, **options)
    if not isinstance(dump, SynthDump) or dump.arch != arch or dump.fmt != fmt:
        raise TypeError(f"{module.__name__}.build() returned {dump!r:.80}")
    return dump


__all__ = [
    "AMD64_FORMATS",
    "ARCHES",
    "KNOWN_ARCHES",
    "GroundTruth",
    "KernelSpec",
    "Leaf",
    "SynthDump",
    "WalkPage",
    "arch_module",
    "build",
    "build_amd64",
    "default_format",
    "discover",
    "formats",
]
