"""The ABI of an open dump: which :class:`~pykvm.abi.model.Abi` its records follow.

libkvm has no such function: it always writes records in the layout it was compiled
for, i.e. the host's (and refuses non-native kernel data in the first place).  pykvm
reads every architecture's dumps on any host, so it lays the records out for the
dump's architecture instead (kernel-data.md 10.3: "records whose length equals the
target's ``KINFO_PROC_SIZE`` and whose bytes follow the target's layout and byte
order").
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from .. import errors as E
from ..constants import (
    ELFCLASS64,
    ELFDATA2MSB,
    EM_386,
    EM_AARCH64,
    EM_ARM,
    EM_MIPS,
    EM_PPC,
    EM_PPC64,
    EM_RISCV,
    EM_X86_64,
)
from ..errors import KvmError
from .model import ABIS, Abi

if TYPE_CHECKING:
    from ..image.elf import Ehdr
    from ..kvm import Kvm

#: the backend name an ELF machine number stands for (when no backend is attached)
_MACHINES = {
    EM_X86_64: "amd64",
    EM_386: "i386",
    EM_ARM: "arm",
    EM_AARCH64: "aarch64",
    EM_RISCV: "riscv",
    EM_PPC: "powerpc",
    EM_PPC64: "powerpc64",
    EM_MIPS: "mips",
}


def abi_of(arch: str, ehdr: Ehdr) -> Abi:
    """The ABI of a kernel of backend architecture ``arch`` with ELF header ``ehdr``.

    The byte order is the kernel's (``EI_DATA``); arm and powerpc64 exist in both.
    MIPS asks :func:`pykvm.arch.mips.kernel_mips_abi` (n64 for ELFCLASS64, n32 with
    ``EF_MIPS_ABI2``, else o32), the same test the mips backend makes.  Raises
    :class:`~pykvm.errors.KvmError` (``unsupported architecture``) for anything else.
    """
    big = ehdr.ei_data == ELFDATA2MSB
    is64 = ehdr.ei_class == ELFCLASS64
    name: str | None = None
    if arch == "amd64":
        name = "amd64"
    elif arch == "i386":
        name = "i386"
    elif arch == "arm":
        name = "armeb" if big else "arm"
    elif arch == "aarch64":
        name = "aarch64"
    elif arch == "riscv":
        name = "riscv"
    elif arch == "powerpc":
        name = "powerpc"
    elif arch == "powerpc64":
        name = "powerpc64" if big else "powerpc64le"
    elif arch == "mips":
        from ..arch.mips import kernel_mips_abi

        mabi = kernel_mips_abi(ehdr)
        base = {"n64": "mips64", "n32": "mipsn32", "o32": "mips"}[mabi]
        name = base if big else base + "el"
    if name is None:
        raise KvmError(E.UNSUPPORTED_ARCH)
    abi = ABIS[name]
    if abi.big_endian != big:  # a byte order FreeBSD never shipped for this port
        abi = replace(abi, name=f"{name}-{'be' if big else 'le'}", big_endian=big)
    if (abi.pointer_size == 8) != is64:
        raise KvmError(E.UNSUPPORTED_ARCH)
    return abi


def abi_for(kd: Kvm) -> Abi:
    """The ABI of the open dump ``kd``: from its backend's architecture and the kernel's
    ELF header (machine number when no backend is attached)."""
    ehdr = kd.kernel.ehdr
    backend = kd.backend
    arch = backend.arch if backend is not None else _MACHINES.get(ehdr.e_machine, "")
    return abi_of(arch, ehdr)
