"""``build_powerpc``: a synthetic 32-bit powerpc kernel and full dump with its ground truth."""

from __future__ import annotations

import os

from ..truth import SynthDump
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
) -> SynthDump:
    """Write ``directory/kernel`` and ``directory/vmcore`` for machine ``seed``.

    Formats: ``elf`` (``debug.minidump=1``, kernel-virtual chunks), ``elf-kdh`` (the same
    with the 512-byte kerneldumpheader in front, as fetched from the dump device), and,
    outside :data:`POWERPC_FORMATS` because nothing in them is readable, ``elf-phys`` and
    ``elf-phys-kdh`` (``debug.minidump=0``, physical chunks, ``p_vaddr`` all ones).

    Raises:
        ValueError: unknown format or negative ``extra_symbols``.
    """
    if fmt not in POWERPC_FORMATS + POWERPC_PHYS_FORMATS:
        raise ValueError(
            f"unknown powerpc dump format {fmt!r}; expected one of "
            f"{POWERPC_FORMATS + POWERPC_PHYS_FORMATS}"
        )
    machine = VirtCoreMachine(TARGET, seed, extra_symbols=extra_symbols)
    return build_full_dump(
        machine,
        directory,
        fmt,
        virtual=not fmt.startswith("elf-phys"),
        dump_header=fmt.endswith("-kdh"),
        arch="powerpc",
    )


__all__ = ["POWERPC_FORMATS", "POWERPC_PHYS_FORMATS", "build_powerpc"]
