"""mips: synthetic o32, n32 and n64 kernels, big- and little-endian, and their minidumps.

FreeBSD's mips port (removed from main; FreeBSD 14 and earlier) writes only minidumps
(``minidumpsys``; libkvm has no mips full-dump reader).  Formats:

* ``minidump-{o32,n32,n64}-{be,le}``: header version 2 (FreeBSD 13), with the dump_avail
  section and the hole-compressed ``BITSET`` of ``long`` (32-bit words on o32 and n32,
  64-bit on n64);
* ``minidump-{o32,n32,n64}-{be,le}-v1``: header version 1 (FreeBSD <= 12), no dump_avail,
  a linear bitmap of ``uint32_t`` words on every ABI.

The kernels: ``EM_MIPS``, ``ET_EXEC``, ELFCLASS32 for o32 (``e_flags`` without
``EF_MIPS_ABI2``) and n32 (with it), ELFCLASS64 for n64; linked at KERNLOADADDR =
KERNBASE + 1 MiB (0x80100000, or 0xffffffff80100000 on n64), so the image lives in KSEG0.
PTEs are 4 bytes on o32 (PFN mask 0x1FFFFFC0, software bits from 29) and 8 bytes on n32
and n64 (0x3FFFFFFC0, software bits from 55); the PTE section covers
``VM_MIN_KERNEL_ADDRESS`` (0xC0000000, or 0xc000000000000000 on n64) to
``kernel_vm_end``.  The machine of a seed is described in :mod:`.machine`; the file layout
in :mod:`.dumps`.

Ground truth: ``kernbase`` and ``vm_min_kernel_address`` are VM_MIN_KERNEL_ADDRESS (the
header's ``kernbase``), ``KERNBASE`` the kernel's 0x80000000 (sign-extended on n64);
``dmapbase``/``dmapend`` are 0 (the header leaves them 0; the KSEG0/KSEG1/XKPHYS windows
are fixed and translate without page tables); the walk reports only the PTE section
(``kp_dmap_vaddr`` 0). ``extras``: ``pte_size``, ``nbpdr``, ``nkpt``, ``ptesize``,
``phys_avail0`` (end of the always-dumped low memory), ``kernel_segmap`` (its direct
address) and ``segmap_pa``, ``msgbuf_pa`` (the ring), ``msgbufp`` (the struct msgbuf's
direct address), ``bitmap_word_bits`` (32 or 64).  Hole kinds of its own: ``device-mapping``
(uncached PTE onto device registers outside RAM), ``kseg1-not-dumped``, and on o32
``pte-above-4g`` (a PTE frame above 4 GiB, which pykvm does not truncate to 32 bits).

Options of :func:`build`: ``nkpt``, ``load_offset``, ``extra_symbols``, ``kernel_name``,
``core_name``, and the kernel-data options ``types``, ``era`` (``"10"``-``"13"``: mips left
FreeBSD before 14.0), ``cp_time_symbol``, ``debug_name`` (as amd64's; every format).
With ``types`` the struct msgbuf ``msgbufp`` points to (``extras["msgbufp"]``) is the
kernel-data arena's.
"""

from __future__ import annotations

from .builder import MIPS_FORMATS, build_mips, parse_format
from .machine import ABIS, N32, N64, O32, Abi, MipsMachine, make_spec

#: the dump formats of this architecture
FORMATS = MIPS_FORMATS
#: the format :func:`pykvm.synth.build` writes when none is named (o32 big-endian: most
#: FreeBSD/mips boards)
DEFAULT_FORMAT = "minidump-o32-be"
#: the kernel of the default format
SPEC = make_spec(O32, "big")
#: the registry's entry point: ``build(directory, seed, fmt, **options)``
build = build_mips

__all__ = [
    "ABIS",
    "DEFAULT_FORMAT",
    "FORMATS",
    "MIPS_FORMATS",
    "N32",
    "N64",
    "O32",
    "SPEC",
    "Abi",
    "MipsMachine",
    "build",
    "build_mips",
    "make_spec",
    "parse_format",
]
