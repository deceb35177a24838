"""Type information for synthetic kernels of any architecture (the ``types=`` option).

Every builder that lays out kernel data offers the same choices: ``"ctf-v3"``,
``"ctf-v2"`` (zlib-compressed ``.SUNW_ctf`` inside the kernel), ``"ctf-v3-raw"``
(uncompressed), ``"dwarf"`` (a separate ``kernel.debug``) or None (no type information
and no kernel data).  :func:`kernel_type_info` turns a choice into the seed's
:class:`~.cmodel.TypeSet`, its :class:`~.cmodel.LayoutTruth`, the CTF section builder the
kernel writer calls with its final symbol table, and the DWARF file writer.
"""

from __future__ import annotations

import dataclasses
import pathlib
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

from . import elfwriter as ew
from ._prng import Rng
from .cmodel import LayoutTruth, Target, TypeSet
from .ctfwriter import write_ctf
from .debugelf import write_debug_elf
from .dwarfwriter import write_dwarf
from .kernel import SymbolEntry
from .kerneldata import KernelDataTruth
from .kerneltypes import kernel_types
from .truth import GroundTruth

#: the values of a builder's ``types=`` option
TYPE_OPTIONS: tuple[str | None, ...] = (None, "ctf-v3", "ctf-v2", "ctf-v3-raw", "dwarf")

CtfBuilder = Callable[[Sequence[SymbolEntry]], bytes]


@dataclass(frozen=True)
class KernelTypeInfo:
    """What a builder needs to give its kernel type information."""

    kind: str
    typeset: TypeSet
    layout: LayoutTruth
    #: called by the kernel writer with its symbol table (None for DWARF)
    ctf_section: CtfBuilder | None

    def write_debug(self, path: pathlib.Path) -> pathlib.Path | None:
        """Write the DWARF file (``types="dwarf"`` only) and return its path, else None."""
        if self.kind != "dwarf":
            return None
        path.write_bytes(
            write_debug_elf(write_dwarf(self.typeset).as_dict(), self.typeset.target)
        )
        return path


def check_type_options(types: str | None, era: str | None, cp_time_symbol: bool) -> None:
    """Raise ValueError for an unknown ``types`` or options that need ``types``."""
    if types not in TYPE_OPTIONS:
        raise ValueError(f"unknown types {types!r}; expected one of {TYPE_OPTIONS}")
    if types is None and (era is not None or cp_time_symbol):
        raise ValueError("era and cp_time_symbol need types")


def pick_era(seed: int, flavour: str, era: str | None, allowed: Sequence[str]) -> str:
    """The era of a kernel flavour's types: ``era`` checked against ``allowed`` (the
    FreeBSD majors the port existed in), or the seed's choice among them when None.

    Raises:
        ValueError: ``era`` is not one of ``allowed``.
    """
    if era is None:
        return Rng(seed, f"{flavour}-era").choice(tuple(allowed))
    if era not in allowed:
        raise ValueError(
            f"unknown era {era!r} for {flavour}: {flavour} kernels exist in FreeBSD "
            f"{allowed[0]} to {allowed[-1]} only; era {era!r} is not one of {tuple(allowed)}"
        )
    return era


def with_kernel_data(truth: GroundTruth, layout: LayoutTruth | None,
                     kdata: KernelDataTruth | None) -> GroundTruth:
    """``truth`` carrying the type layout and the kernel data a machine laid out (as is
    when it laid out none)."""
    if layout is None or kdata is None:
        return truth
    return dataclasses.replace(truth, type_layout=layout, kernel_data=kdata)


def kernel_type_info(
    seed: int, target: Target, types: str | None, era: str | None = None
) -> KernelTypeInfo | None:
    """The type information of machine ``seed`` on ``target`` (None when ``types`` is None)."""
    check_type_options(types, era, False)
    if types is None:
        return None
    typeset = kernel_types(seed, target, era=era)
    ctf = _ctf_builder(typeset, types) if types.startswith("ctf") else None
    return KernelTypeInfo(types, typeset, typeset.truth(), ctf)


def ctf_objects(symbols: Sequence[SymbolEntry], variables: Collection[str]) -> list[str | None]:
    """The object-section entries for ``symbols`` (symbol-table order, ``init_symtab``).

    A symbol gets an entry when it is ``STT_OBJECT``, named, defined (not ``SHN_UNDEF``),
    not ``_START_``/``_END_`` and not ``SHN_ABS`` with value 0; the entry names the
    variable (a TypeSet variable) or is None (type ID 0, "no type information").
    """
    out: list[str | None] = []
    for sym in symbols:
        if sym.type != ew.STT_OBJECT or not sym.name or sym.shndx == ew.SHN_UNDEF:
            continue
        if sym.name in ("_START_", "_END_") or (sym.shndx == ew.SHN_ABS and sym.value == 0):
            continue
        out.append(sym.name if sym.name in variables else None)
    return out


def _ctf_builder(typeset: TypeSet, types: str) -> CtfBuilder:
    version = 2 if types == "ctf-v2" else 3
    compress = types != "ctf-v3-raw"
    names = {v.name for v in typeset.variables}

    def build(symbols: Sequence[SymbolEntry]) -> bytes:
        return write_ctf(
            typeset,
            version=version,
            compress=compress,
            symbols=ctf_objects(symbols, names),
            label="FreeBSD synth",
        )

    return build
