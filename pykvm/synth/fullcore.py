"""amd64 full (ELF) crash dumps, as ``dumpsys_generic`` (sys/kern/kern_dump.c) writes them.

The payload is an ELF64 little-endian ``ET_CORE`` file for ``EM_X86_64`` with
``EI_OSABI`` = ``ELFOSABI_STANDALONE``.  The kernel zeroes the header and fills
``e_ident``, ``e_type``, ``e_machine``, ``e_phoff`` (64), ``e_flags`` (0), ``e_ehsize``,
``e_phentsize`` and ``e_shentsize``; it never sets ``e_version``, which therefore stays
0, and it writes no sections.  One ``PT_LOAD`` per dump_avail range (``dumpsys_gen_pa_init``)
with ``p_flags`` = ``PF_R``, ``p_vaddr`` = ``p_paddr`` = the range start,
``p_filesz`` = ``p_memsz`` = its size and ``p_align`` = 4096; the data of the first range
starts at ``roundup(e_phoff + e_phnum * e_phentsize, PAGE_SIZE)`` and the ranges follow
back to back.  Optionally (FreeBSD pull request #1706) one ``PT_DUMP_DELTA`` header comes
after the ``PT_LOAD`` headers: ``p_vaddr`` = KERNBASE, ``p_paddr`` = kernphys,
``p_align`` = KERNLOAD (2 MiB), zero offset and sizes, ``PF_R``.
"""

from __future__ import annotations

from . import elfwriter as ew
from .amd64 import PAGE_SHIFT, PAGE_SIZE, Amd64Machine
from .kernel import KERNBASE, KERNLOAD


def plan_elf_core(machine: Amd64Machine, dump_delta: bool) -> tuple[bytes, list[ew.Phdr]]:
    """Return the header bytes (ELF header, program headers, zero pad) and the phdrs."""
    nload = len(machine.segments)
    phnum = nload + (1 if dump_delta else 0)
    hdrsz = ew.EHDR_SIZE + phnum * ew.PHDR_SIZE
    fileofs = ew.align(hdrsz, PAGE_SIZE)
    phdrs: list[ew.Phdr] = []
    for start, end in machine.segments:
        phdrs.append(
            ew.Phdr(ew.PT_LOAD, ew.PF_R, fileofs, start, start, end - start, end - start, PAGE_SIZE)
        )
        fileofs += end - start
    if dump_delta:
        phdrs.append(
            ew.Phdr(ew.PT_DUMP_DELTA, ew.PF_R, 0, KERNBASE, machine.kernphys, 0, 0, KERNLOAD)
        )
    ehdr = ew.Ehdr(
        osabi=ew.ELFOSABI_STANDALONE,
        e_type=ew.ET_CORE,
        e_machine=ew.EM_X86_64,
        e_version=0,
        e_entry=0,
        e_phoff=ew.EHDR_SIZE,
        e_shoff=0,
        e_flags=0,
        e_phnum=phnum,
        e_shnum=0,
        e_shstrndx=0,
    )
    head = ehdr.pack() + b"".join(p.pack() for p in phdrs)
    return head.ljust(ew.align(hdrsz, PAGE_SIZE), b"\0"), phdrs


def write_elf_core(path: str, machine: Amd64Machine, dump_delta: bool) -> list[ew.Phdr]:
    """Write the full dump of ``machine`` to ``path``; return its program headers."""
    head, phdrs = plan_elf_core(machine, dump_delta)
    page = machine.memory.page
    with open(path, "wb") as f:
        f.write(head)
        for start, end in machine.segments:
            batch: list[bytes] = []
            for pfn in range(start >> PAGE_SHIFT, end >> PAGE_SHIFT):
                batch.append(page(pfn))
                if len(batch) == 256:
                    f.write(b"".join(batch))
                    batch.clear()
            f.write(b"".join(batch))
    return phdrs
