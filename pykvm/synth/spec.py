"""``KernelSpec``: the target a synthetic kernel and its dumps are written for.

One frozen dataclass says everything the architecture-independent writers need to know
about a FreeBSD target: the ELF identity of its kernel (class, data encoding,
``e_machine``, ``e_type``, ``EI_OSABI``, ``e_flags``), where the image is linked
(``kernbase + load_offset``), the page size, the widths of pointers and physical
addresses, the ``MACHINE``/``MACHINE_ARCH`` names, and the architecture-specific kernel
variables the machine model gives values to.  Integers are encoded in the kernel's byte
order with :meth:`KernelSpec.int_bytes` and friends.

amd64's spec (``pykvm.synth.arch_amd64.SPEC``) is the worked example::

    KernelSpec(
        arch="amd64", elfclass=ELFCLASS64, data=ELFDATA2LSB, e_machine=EM_X86_64,
        kernbase=0xFFFFFFFF80000000, load_offset=0x200000,
        data_vars=(("nkpt", 4),), bss_vars=(("KPML4phys", 8), ("kernphys", 8)),
        func_prologue=b"\\x55\\x48\\x89\\xe5",
    )
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

from . import elfwriter as ew


@dataclass(frozen=True)
class KernelSpec:
    """A FreeBSD target as the kernel's writers see it.

    Attributes:
        arch: pykvm's architecture name (``amd64``, ``i386``, ``arm``, ``aarch64``,
            ``riscv``, ``mips``, ``powerpc``, ``powerpc64``).
        elfclass: ``ELFCLASS32`` or ``ELFCLASS64``; also fixes the pointer and ``long``
            width (4 or 8 bytes; mips n32 is ELFCLASS32 with 4-byte pointers).
        data: ``ELFDATA2LSB`` or ``ELFDATA2MSB``: the kernel's byte order.
        e_machine: the ELF machine (``EM_X86_64``, ``EM_PPC64``, ...).
        e_type: ``ET_EXEC``, or ``ET_DYN`` for powerpc and powerpc64 kernels.
        osabi: ``EI_OSABI`` of the kernel file (FreeBSD, 9).
        e_flags: ``e_flags`` of the kernel file (``EF_MIPS_ABI2`` for mips n32).
        kernbase: ``KERNBASE``, the value of the absolute symbol ``kernbase``.
        load_offset: the image (its ELF header, then ``.text``) is linked at
            ``kernbase + load_offset`` (amd64: ``KERNLOAD`` = 2 MiB); page aligned.
        page_size: 4096, or 16384 for 16 KiB-page aarch64 kernels; sections and
            ``PT_LOAD`` segments of the kernel file are aligned to it.
        text_offset: file offset (= offset from the image start) of ``.text``; None
            means one page.  At least the ELF and program headers must fit before it.
        link_paddr: ``p_paddr`` of the first ``PT_LOAD`` of the kernel file; None means
            ``load_offset`` (amd64's ``p_paddr = p_vaddr - KERNBASE``).
        paddr_size: width of ``vm_paddr_t`` (the elements of the ``dump_avail`` variable);
            None means the pointer width.
        machine: ``MACHINE`` (``uname -m``: amd64, i386, arm, arm64, riscv, mips, powerpc);
            None means ``arch``.
        machine_arch: ``MACHINE_ARCH`` (amd64, i386, armv7, aarch64, riscv64, mips64,
            powerpc, powerpc64, powerpc64le); the kerneldumpheader's architecture; None
            means ``arch``.
        data_vars: architecture-specific ``.data`` variables ``(name, size in bytes)``,
            placed after ``mp_maxcpus`` (amd64: ``nkpt``).
        bss_vars: architecture-specific ``.bss`` variables, first in ``.bss`` (amd64:
            ``KPML4phys``, ``kernphys``; i386 could have ``IdlePTD``, ``IdlePDPT``; arm
            ``kernel_l1pa``).
        func_prologue: bytes written at each function symbol in ``.text`` (cosmetic).
    """

    arch: str
    elfclass: int
    data: int
    e_machine: int
    kernbase: int
    e_type: int = ew.ET_EXEC
    osabi: int = ew.ELFOSABI_FREEBSD
    e_flags: int = 0
    load_offset: int = 0
    page_size: int = 4096
    text_offset: int | None = None
    link_paddr: int | None = None
    paddr_size: int | None = None
    machine: str | None = None
    machine_arch: str | None = None
    data_vars: tuple[tuple[str, int], ...] = ()
    bss_vars: tuple[tuple[str, int], ...] = ()
    func_prologue: bytes = b""

    def __post_init__(self) -> None:
        """Check the values that the writers rely on."""
        ew.ElfFormat(self.elfclass, self.data)  # validates class and encoding
        ps = self.page_size
        if ps < 4096 or ps & (ps - 1):
            raise ValueError("page_size must be a power of two >= 4096")
        if self.image_va % ps:
            raise ValueError("kernbase + load_offset must be page aligned")
        if not 0 <= self.kernbase <= self.word_mask or self.image_va > self.word_mask:
            raise ValueError("kernbase does not fit the pointer width")
        if self.paddr_size not in (None, 4, 8):
            raise ValueError("paddr_size must be 4 or 8")
        hdrs = self.elf.ehdr_size + 2 * self.elf.phdr_size
        if not hdrs <= self.text_off <= ps or self.text_off % 16:
            raise ValueError("text_offset must be 16-byte aligned, after the headers, <= page")

    # ------------------------------------------------------------------ derived facts
    @property
    def elf(self) -> ew.ElfFormat:
        """The :class:`~pykvm.synth.elfwriter.ElfFormat` of the kernel (and its ELF dumps)."""
        return ew.ElfFormat(self.elfclass, self.data)

    @property
    def byteorder(self) -> ew.ByteOrder:
        """``"little"`` or ``"big"``."""
        return "little" if self.data == ew.ELFDATA2LSB else "big"

    @property
    def endian(self) -> str:
        """The :mod:`struct` prefix ``"<"`` or ``">"``."""
        return "<" if self.data == ew.ELFDATA2LSB else ">"

    @property
    def ptr_size(self) -> int:
        """Bytes of a pointer, ``long`` and ``vm_offset_t``: 4 or 8."""
        return 8 if self.elfclass == ew.ELFCLASS64 else 4

    @property
    def word_bits(self) -> int:
        """Bits of a ``long``: the word of the kernel's ``BITSET`` (dump bitmap)."""
        return 8 * self.ptr_size

    @property
    def word_mask(self) -> int:
        """The largest pointer value."""
        return (1 << (8 * self.ptr_size)) - 1

    @property
    def paddr_bytes(self) -> int:
        """Bytes of ``vm_paddr_t``."""
        return self.paddr_size or self.ptr_size

    @property
    def image_va(self) -> int:
        """Link address of the image's first byte (its ELF header): ``kernbase + load_offset``."""
        return self.kernbase + self.load_offset

    @property
    def text_off(self) -> int:
        """Offset of ``.text`` from the image start."""
        return self.page_size if self.text_offset is None else self.text_offset

    @property
    def first_paddr(self) -> int:
        """``p_paddr`` of the kernel file's first ``PT_LOAD``."""
        return self.load_offset if self.link_paddr is None else self.link_paddr

    @property
    def uname_machine(self) -> str:
        """``MACHINE``."""
        return self.machine or self.arch

    @property
    def uname_machine_arch(self) -> str:
        """``MACHINE_ARCH``."""
        return self.machine_arch or self.arch

    @property
    def objdir(self) -> str:
        """The build directory name, ``MACHINE.MACHINE_ARCH`` (``amd64.amd64``)."""
        return f"{self.uname_machine}.{self.uname_machine_arch}"

    # ------------------------------------------------------------------ encoding
    def int_bytes(self, value: int, size: int, *, signed: bool = False) -> bytes:
        """Encode ``value`` in ``size`` bytes of the kernel's byte order."""
        return value.to_bytes(size, self.byteorder, signed=signed)

    def word(self, value: int, *, signed: bool = False) -> bytes:
        """Encode a pointer-sized value (``long``, ``vm_offset_t``, ``u_long``)."""
        return self.int_bytes(value, self.ptr_size, signed=signed)

    def u32(self, value: int) -> bytes:
        """Encode a 32-bit unsigned value."""
        return self.int_bytes(value, 4)

    def u64(self, value: int) -> bytes:
        """Encode a 64-bit unsigned value."""
        return self.int_bytes(value, 8)

    def array(self, values: Sequence[int], size: int) -> bytes:
        """Encode consecutive unsigned values of ``size`` bytes each."""
        code = {1: "B", 2: "H", 4: "I", 8: "Q"}[size]
        return struct.pack(f"{self.endian}{len(values)}{code}", *values)
