"""powerpc (32-bit AIM, ``mmu_oea``): synthetic kernels and full (ELF) dumps.

32-bit powerpc has no minidump: ``dumpsys_generic`` writes an ELF32 big-endian core whose
chunks the MMU module lists (:mod:`.virtcore` describes them and the machine).

Formats (:data:`FORMATS`): ``elf`` (``debug.minidump=1``, the default: ``PT_LOAD``
``p_vaddr`` = kernel VA, ``p_paddr`` = 0xffffffff) and ``elf-kdh`` (the same preceded by
the 512-byte kerneldumpheader, architecture ``powerpc``).  :func:`build` also writes
``elf-phys`` and ``elf-phys-kdh`` (``debug.minidump=0``: ``p_vaddr`` = 0xffffffff,
``p_paddr`` = physical start of each memory region), which no correct reader can
translate (libkvm: ``Raw corefile not supported``); their truth has no regions and every
sampled address as a hole of kind ``raw-corefile``.  They are left out of
:data:`FORMATS` because the registry's contract requires readable kernel memory.

Ground truth ``extras``: ``msgbuf_va``, ``msgbuf_pa``, ``debug_minidump`` (1 or 0),
``dump_header`` (1 when the kerneldumpheader is present).  ``layout``: ``prefix`` (0 or
512, the bytes before the ELF header) and ``file_size``.  Hole kinds besides the shared
ones: ``text-not-dumped`` (kernel text and headers, not in any chunk), ``kva-not-dumped``
(mapped kernel pages outside the chunks), ``after-chunk``, ``buffer-cache``,
``raw-corefile``.
"""

from __future__ import annotations

from .builder import POWERPC_FORMATS, POWERPC_PHYS_FORMATS, build_powerpc
from .machine import SPEC

#: the dump formats of this architecture
FORMATS = POWERPC_FORMATS
#: the format :func:`pykvm.synth.build` writes when none is named
DEFAULT_FORMAT = "elf"
#: the registry's entry point
build = build_powerpc

__all__ = ["DEFAULT_FORMAT", "FORMATS", "POWERPC_PHYS_FORMATS", "SPEC", "build", "build_powerpc"]
