"""riscv (RV64, Sv39 and Sv48) minidumps: header versions 1 and 2.

Mirrors lib/libkvm/kvm_minidump_riscv.c (``_riscv_minidump_probe``,
``_riscv_minidump_initvtop``, ``_riscv_minidump_vatop``, ``_riscv_native``,
``_riscv_entry_to_prot``, ``_riscv_minidump_walk_pages``) with the constants
of kvm_riscv.h and the header of sys/riscv/include/minidump.h, as the kernel
writes it in sys/riscv/riscv/minidump_machdep.c (formats.md section 12).
There is no riscv full-dump reader in libkvm.

The page-table section is a flat array of 8-byte L3 PTEs, one per 4 KiB page
of kernel virtual address space from ``kernbase`` (the same for Sv39 and
Sv48: the kernel map is identical in both modes); the kernel writes each
2 MiB megapage as 512 fake PTEs ``l2e | (i << 10)``.  Gigapages are used only
by the direct map, which translates linearly.  The reader is
:class:`pykvm.arch.aarch64.L3ArrayMinidump` with riscv's data.

pykvm departures (formats.md 14): the physical address of a PTE is its PPN,
bits 10-53 (row 9; libkvm shifts the whole entry, so the reserved, Svpbmt
and Svnapot bits 54-63 land in the address); entries are decoded in the
kernel's byte order; walk_pages reports the direct-map alias the kernel
computes (``dmapbase + pa - dmapphys``, 0 outside the direct map) where
libkvm reports ``dmapbase + pa``.
"""

from __future__ import annotations

import sys
from typing import Any

from .. import errors as E
from ..constants import EM_RISCV, VM_PROT_EXECUTE, VM_PROT_READ, VM_PROT_WRITE
from ..image.elf import host_machine
from .aarch64 import L3ArrayMinidump
from .base import HeaderField, HeaderLayout

# kvm_riscv.h
RISCV_PAGE_SHIFT = 12
RISCV_PAGE_SIZE = 1 << RISCV_PAGE_SHIFT
RISCV_PAGE_MASK = RISCV_PAGE_SIZE - 1
RISCV_L3_SHIFT = 12
RISCV_PTE_SW_MANAGED = 1 << 9
RISCV_PTE_SW_WIRED = 1 << 8
RISCV_PTE_D = 1 << 7
RISCV_PTE_A = 1 << 6
RISCV_PTE_G = 1 << 5
RISCV_PTE_U = 1 << 4
RISCV_PTE_X = 1 << 3
RISCV_PTE_W = 1 << 2
RISCV_PTE_R = 1 << 1
RISCV_PTE_V = 1 << 0
RISCV_PTE_RWX = RISCV_PTE_R | RISCV_PTE_W | RISCV_PTE_X
RISCV_PTE_PPN0_S = 10
# sys/riscv/include/pte.h: bits 63-54 are not part of the PPN.
PTE_HI_MASK = 0xFFC0000000000000
#: Width of the PPN field (bits 10-53).
PPN_BITS = 44

# sys/riscv/include/minidump.h
MINIDUMP_MAGIC = b"minidump FreeBSD/riscv"
MINIDUMP_VERSION = 2

#: struct minidumphdr (sys/riscv/include/minidump.h), kernel byte order; 76 bytes
#: of fields padded to 80.  ``dumpavailsize`` exists in version 2.
MINIDUMP_HEADER = HeaderLayout([
    HeaderField("magic", 0, "24s"),
    HeaderField("version", 24, "I"),
    HeaderField("msgbufsize", 28, "I"),
    HeaderField("bitmapsize", 32, "I"),
    HeaderField("pmapsize", 36, "I"),
    HeaderField("kernbase", 40, "Q"),
    HeaderField("dmapphys", 48, "Q"),
    HeaderField("dmapbase", 56, "Q"),
    HeaderField("dmapend", 64, "Q"),
    HeaderField("dumpavailsize", 72, "I"),
], 80)


class RiscvMinidump(L3ArrayMinidump):
    """kvm_minidump_riscv.c: header versions 1 and 2, 4 KiB pages.

    ``probe`` is ``_riscv_minidump_probe``, ``native`` ``_riscv_native``,
    ``initvtop`` ``_riscv_minidump_initvtop``, ``kvatop``
    ``_riscv_minidump_vatop`` (a PTE is valid when V and any of R, W, X are
    set; its physical address is its PPN shifted to a page address),
    ``entry_to_prot`` ``_riscv_entry_to_prot`` and ``walk_pages``
    ``_riscv_minidump_walk_pages``.
    """

    arch = "riscv"
    fmt = "minidump"
    page_size = RISCV_PAGE_SIZE
    MACHINE = EM_RISCV
    HOSTS = ("riscv64",)
    MAGIC = MINIDUMP_MAGIC
    HEADER = MINIDUMP_HEADER
    MAX_VERSION = MINIDUMP_VERSION
    VALID_MASK = RISCV_PTE_V
    VALID_BITS = RISCV_PTE_V
    VALID_ANY = RISCV_PTE_RWX
    PA_RSHIFT = RISCV_PTE_PPN0_S
    PA_MASK = (1 << PPN_BITS) - 1
    PA_LSHIFT = RISCV_L3_SHIFT
    MSG_DMAP = E.RISCV_MD_DMAP_ABSENT
    MSG_INVALID = E.RISCV_MD_PTE_INVALID
    MSG_PA = E.RISCV_MD_PA_ABSENT
    MSG_NOT_DUMPED = E.RISCV_MD_NOT_DUMPED

    def native(self) -> bool:
        """``_riscv_native``: the host is riscv64, in the kernel's byte order."""
        host_endian = "<" if sys.byteorder == "little" else ">"
        return host_machine() in self.HOSTS and self.kd.kernel.ehdr.endian == host_endian

    def _version_ok(self, version: int) -> bool:
        """``version != MINIDUMP_VERSION && version != 1`` is refused."""
        return version in (1, MINIDUMP_VERSION)

    def _dumpavailsize(self, h: dict[str, Any]) -> int:
        """``dumpavailsize`` in version 2 (``MINIDUMP_VERSION``), else 0."""
        return int(h["dumpavailsize"]) if h["version"] == MINIDUMP_VERSION else 0

    def _page_geometry(self, h: dict[str, Any]) -> tuple[int, int]:
        """Always 4 KiB pages (``RISCV_PAGE_SIZE``, ``RISCV_L3_SHIFT``)."""
        return RISCV_PAGE_SIZE, RISCV_L3_SHIFT

    def entry_to_prot(self, entry: int) -> int:
        """``_riscv_entry_to_prot``: READ, plus WRITE for W, plus EXECUTE for X."""
        prot = VM_PROT_READ
        if entry & RISCV_PTE_W:
            prot |= VM_PROT_WRITE
        if entry & RISCV_PTE_X:
            prot |= VM_PROT_EXECUTE
        return prot
