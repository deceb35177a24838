"""``build_powerpc``: a synthetic 32-bit powerpc kernel and full dump with its ground truth."""

from __future__ import annotations

import dataclasses
import os
import pathlib

from ..cmodel import POWERPC
from ..truth import SynthDump
from ..typeinfo import check_type_options, kernel_type_info, pick_era
from .kdata import ERAS_POWERPC
from .machine import TARGET
from .virtcore import VirtCoreMachine, build_full_dump

#: formats whose files a correct reader can read (the registry runs its contract on them)
POWERPC_FORMATS = ("elf", "elf-kdh")
#: debug.minidump=0 dumps (physical chunks): libkvm and a correct reader translate nothing
POWERPC_PHYS_FORMATS = ("elf-phys", "elf-phys-kdh")


def build_powerpc(
    directory: str | os.PathLike[str],
    seed: int = 0,
    fmt: str = "elf",
    *,
    extra_symbols: int = 0,
    types: str | None = None,
    era: str | None = None,
    cp_time_symbol: bool = False,
    debug_name: str = "kernel.debug",
) -> SynthDump:
    """Write ``directory/kernel`` and ``directory/vmcore`` for machine ``seed``.

    Formats: ``elf`` (``debug.minidump=1``, kernel-virtual chunks), ``elf-kdh`` (the same
    with the 512-byte kerneldumpheader in front, as fetched from the dump device), and,
    outside :data:`POWERPC_FORMATS` because nothing in them is readable, ``elf-phys`` and
    ``elf-phys-kdh`` (``debug.minidump=0``, physical chunks, ``p_vaddr`` all ones).

    ``types`` (``"ctf-v3"``, ``"ctf-v2"``, ``"ctf-v3-raw"``, ``"dwarf"`` or None), ``era``,
    ``cp_time_symbol`` and ``debug_name`` work as in
    :func:`~pykvm.synth.arch_amd64.builder.build_amd64`: with types the kernel carries
    type information (``.SUNW_ctf`` or a separate ``directory/<debug_name>``) and the
    dump the kernel data of :mod:`pykvm.synth.kerneldata` (``truth.type_layout``,
    ``truth.kernel_data``), laid out for the ``powerpc`` target (ILP32, big-endian) in an
    arena that the dump's third chunk covers (the ``elf-phys`` formats hold it too, in
    RAM, where no reader can translate to it).  Eras 10 to 14 (FreeBSD 15 has no 32-bit
    powerpc kernel); None picks one by the seed.  types=None leaves every file
    byte-identical to builds before the option existed.

    Raises:
        ValueError: unknown format, negative ``extra_symbols``, bad type options or an
            era in which 32-bit powerpc did not exist.
    """
    if fmt not in POWERPC_FORMATS + POWERPC_PHYS_FORMATS:
        raise ValueError(
            f"unknown powerpc dump format {fmt!r}; expected one of "
            f"{POWERPC_FORMATS + POWERPC_PHYS_FORMATS}"
        )
    check_type_options(types, era, cp_time_symbol)
    if types is not None:
        era = pick_era(seed, "powerpc", era, ERAS_POWERPC)
    tinfo = kernel_type_info(seed, POWERPC, types, era)
    machine = VirtCoreMachine(
        TARGET,
        seed,
        extra_symbols=extra_symbols,
        types=tinfo.layout if tinfo is not None else None,
        cp_time_symbol=cp_time_symbol,
        ctf_section=tinfo.ctf_section if tinfo is not None else None,
    )
    dump = build_full_dump(
        machine,
        directory,
        fmt,
        virtual=not fmt.startswith("elf-phys"),
        dump_header=fmt.endswith("-kdh"),
        arch="powerpc",
    )
    if tinfo is not None:
        debug = tinfo.write_debug(pathlib.Path(directory) / debug_name)
        dump = dataclasses.replace(dump, debug=debug)
    return dump


__all__ = ["POWERPC_FORMATS", "POWERPC_PHYS_FORMATS", "build_powerpc"]
