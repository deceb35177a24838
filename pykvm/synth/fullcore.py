"""Full (ELF) crash dumps as ``dumpsys_generic`` (sys/kern/kern_dump.c) writes them, any target.

The payload is an ``ET_CORE`` file of the kernel's class and byte order (formats.md 4.1).
The kernel zeroes the header and fills ``e_ident`` (``EI_OSABI`` =
``ELFOSABI_STANDALONE``), ``e_type``, ``e_machine``, ``e_phoff`` (the header size, 52 or
64), ``e_flags`` (0), ``e_ehsize``, ``e_phentsize`` and ``e_shentsize``; it never sets
``e_version``, which therefore stays 0, and it writes no sections.  One ``PT_LOAD`` per
chunk (``dumpsys_gen_pa_init``: one per dump_avail range) with ``p_flags`` = ``PF_R``,
``p_filesz`` = ``p_memsz`` = the chunk size, ``p_align`` = the page size, and normally
``p_vaddr`` = ``p_paddr`` = the chunk's physical start.  powerpc conventions
(:func:`chunks` ``convention``): with ``debug.minidump=0`` ``p_vaddr`` is all ones and
``p_paddr`` the physical start; with ``debug.minidump=1`` (32-bit powerpc's MMU lists
*kernel virtual* ranges) ``p_vaddr`` is the kernel VA and ``p_paddr`` all ones.  The
architecture's auxiliary headers (``dumpsys_write_aux_headers``; amd64 and arm: one
``PT_DUMP_DELTA``, :func:`dump_delta`) follow the ``PT_LOAD`` headers.  The data of the
first chunk starts at ``roundup(e_phoff + e_phnum * e_phentsize, PAGE_SIZE)`` and the
chunks follow back to back.  Optionally a 512-byte kerneldumpheader (formats.md 1.1)
precedes the payload, as in a dump taken straight from the device.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property

from . import elfwriter as ew
from .kerneldump import KernelDumpHeader


@dataclass(frozen=True)
class Chunk:
    """One ``PT_LOAD`` of a full dump: its header addresses and where its bytes come from.

    ``source`` is the address of the chunk's first byte in the space the writer's
    ``read`` callable reads (physical memory for physical chunks, kernel virtual memory
    for powerpc's virtual ones).
    """

    vaddr: int
    paddr: int
    size: int
    source: int


#: chunk conventions: p_vaddr = p_paddr = start (everyone); powerpc debug.minidump=0
#: (p_vaddr all ones, p_paddr = start); powerpc debug.minidump=1 (p_vaddr = start, a
#: kernel VA; p_paddr all ones)
CONVENTIONS = ("phys", "powerpc-phys", "powerpc-virt")


def chunks(
    ranges: Sequence[tuple[int, int]], elf: ew.ElfFormat = ew.ELF64LE, convention: str = "phys"
) -> list[Chunk]:
    """One chunk per ``(start, end)`` range under ``convention`` (see :data:`CONVENTIONS`)."""
    ones = elf.all_ones
    out: list[Chunk] = []
    for start, end in ranges:
        if convention == "phys":
            out.append(Chunk(start, start, end - start, start))
        elif convention == "powerpc-phys":
            out.append(Chunk(ones, start, end - start, start))
        elif convention == "powerpc-virt":
            out.append(Chunk(start, ones, end - start, start))
        else:
            raise ValueError(f"unknown chunk convention {convention!r}; expected {CONVENTIONS}")
    return out


def dump_delta(vaddr: int, paddr: int, align: int) -> ew.Phdr:
    """The ``PT_DUMP_DELTA`` auxiliary header: ``PF_R``, zero offset and sizes.

    amd64: ``(KERNBASE, kernphys, KERNLOAD)``; arm: ``(KERNVIRTADDR, its physical
    address, PAGE_SIZE)``.
    """
    return ew.Phdr(ew.PT_DUMP_DELTA, ew.PF_R, 0, vaddr, paddr, 0, 0, align)


@dataclass(frozen=True)
class ElfCorePlan:
    """A full dump laid out: the header bytes, the program headers and the chunks."""

    #: kerneldumpheader (if any) + ELF header + program headers + zero pad to a page
    head: bytes
    phdrs: list[ew.Phdr]
    chunks: list[Chunk]
    #: bytes before the ELF header (0, or 512 with a kerneldumpheader)
    prefix: int
    file_size: int

    def offset_of_paddr(self, pa: int) -> int:
        """File offset of physical ``pa`` by the ``PT_LOAD`` ``p_paddr`` ranges, or -1."""
        return self._lookup(self._by_paddr, pa)

    def offset_of_vaddr(self, va: int) -> int:
        """File offset of ``va`` by the ``PT_LOAD`` ``p_vaddr`` ranges, or -1."""
        return self._lookup(self._by_vaddr, va)

    @cached_property
    def _by_paddr(self) -> list[tuple[int, int, int]]:
        return sorted(
            (p.p_paddr, p.p_memsz, p.p_offset) for p in self.phdrs if p.p_type == ew.PT_LOAD
        )

    @cached_property
    def _by_vaddr(self) -> list[tuple[int, int, int]]:
        return sorted(
            (p.p_vaddr, p.p_memsz, p.p_offset) for p in self.phdrs if p.p_type == ew.PT_LOAD
        )

    def _lookup(self, keyed: list[tuple[int, int, int]], addr: int) -> int:
        i = bisect_right(keyed, (addr, 1 << 64, 0)) - 1
        if i < 0:
            return -1
        start, size, offset = keyed[i]
        if addr >= start + size:
            return -1
        return self.prefix + offset + addr - start


def plan_elf_core(
    elf: ew.ElfFormat,
    e_machine: int,
    chunk_list: Sequence[Chunk],
    *,
    page_size: int = 4096,
    aux: Sequence[ew.Phdr] = (),
    osabi: int = ew.ELFOSABI_STANDALONE,
    e_flags: int = 0,
    dump_header: KernelDumpHeader | None = None,
) -> ElfCorePlan:
    """Lay out a full dump of ``chunk_list`` (header bytes, program headers, offsets).

    ``aux`` are appended after the ``PT_LOAD`` headers; ``dump_header`` prefixes a
    kerneldumpheader whose ``dumplength`` is the ELF payload's length.
    """
    phnum = len(chunk_list) + len(aux)
    hdrsz = elf.ehdr_size + phnum * elf.phdr_size
    fileofs = ew.align(hdrsz, page_size)
    phdrs: list[ew.Phdr] = []
    for c in chunk_list:
        phdrs.append(
            ew.Phdr(ew.PT_LOAD, ew.PF_R, fileofs, c.vaddr, c.paddr, c.size, c.size, page_size)
        )
        fileofs += c.size
    phdrs += aux
    ehdr = ew.Ehdr(
        osabi=osabi,
        e_type=ew.ET_CORE,
        e_machine=e_machine,
        e_version=0,
        e_entry=0,
        e_phoff=elf.ehdr_size,
        e_shoff=0,
        e_flags=e_flags,
        e_phnum=phnum,
        e_shnum=0,
        e_shstrndx=0,
    )
    head = ehdr.pack(elf) + b"".join(p.pack(elf) for p in phdrs)
    head = head.ljust(ew.align(hdrsz, page_size), b"\0")
    prefix = b"" if dump_header is None else dump_header.pack(fileofs)
    return ElfCorePlan(prefix + head, phdrs, list(chunk_list), len(prefix), len(prefix) + fileofs)


def write_elf_core(
    path: str, plan: ElfCorePlan, read: Callable[[int, int], Iterable[bytes]]
) -> None:
    """Write the full dump of ``plan``; ``read(source, size)`` yields each chunk's bytes.

    For physical chunks pass ``memory.chunks`` adapted to ``(start, size)``, see
    :func:`physical_reader`.
    """
    with open(path, "wb") as f:
        f.write(plan.head)
        for c in plan.chunks:
            written = 0
            for piece in read(c.source, c.size):
                f.write(piece)
                written += len(piece)
            if written != c.size:
                raise RuntimeError(f"chunk at {c.source:#x}: read {written} of {c.size} bytes")


def physical_reader(
    chunks_of: Callable[[int, int], Iterable[bytes]],
) -> Callable[[int, int], Iterable[bytes]]:
    """Adapt ``PhysicalMemory.chunks(start, end)`` to the ``read(source, size)`` shape."""
    return lambda start, size: chunks_of(start, start + size)
