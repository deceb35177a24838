"""A toy architecture written only with pykvm.synth's shared pieces (a template, for tests).

It proves the framework on targets amd64 does not exercise -- ELF32 and big-endian
kernels, 16 KiB pages, 32-bit bitmap words, an unpadded page-table section, an ``ET_DYN``
kernel with ``e_flags`` and ``.text`` not at a page boundary, powerpc-style "virtual"
full dumps with a kerneldumpheader prefix -- and it is the shortest example of what an
``arch_<name>`` module supplies: a :class:`KernelSpec`, a machine (RAM, page tables,
leaves, which pages are dumped), a minidump header and page-table section, full-dump
chunks, and the ground truth.  It is not registered (``ARCHES`` lists real targets).

The toy MMU has two levels.  With page size PS = 2**p and pointer size W, a table page
holds PS / W entries, so each level takes b = log2(PS / W) bits: the root indexes VA
bits ``[p + b, p + 2b)``, a leaf table bits ``[p, p + b)``; higher bits are ignored, and
addresses outside ``[kernbase, kernel_vm_end)`` are never translated.  Entries are W
bytes in the kernel's byte order: V 0x1, W 0x2 (writable), L 0x4 (a root-level leaf, a
superpage of ``2**(p + b)`` bytes); the frame is ``entry & ~(PS - 1)``.  The variable
``toy_root`` holds the physical address of the root table.

Formats: ``minidump`` (header below, then the shared sections; the page-table section is
a flat array of W-byte leaf entries, one per page from kernbase to kernel_vm_end, with
superpages expanded), ``elf`` (physical chunks, ``PT_DUMP_DELTA`` = (image VA, its
physical address, PS)) and ``elf-virt`` (powerpc convention: ``p_vaddr`` = kernel VA,
``p_paddr`` all ones; chunks = the kernel image and a kmem run; a kerneldumpheader
first).

Minidump header, kernel byte order: magic ``minidump FreeBSD/toy`` (24 bytes), version
u32 (1) at 24, msgbufsize 28, bitmapsize 32, pmapsize 36, kernbase u64 40, kernel_vm_end
u64 48, dumpavailsize u32 56, page size u32 60; 64 bytes.
"""

from __future__ import annotations

import os
import pathlib
import struct

from pykvm.synth import elfwriter as ew
from pykvm.synth import fullcore as fc
from pykvm.synth import minidump as md
from pykvm.synth._prng import Rng
from pykvm.synth.kernel import SynthKernel
from pykvm.synth.kerneldump import KernelDumpHeader
from pykvm.synth.machine import Level, Machine, RadixTables, boot_messages, spread_ranges
from pykvm.synth.spec import KernelSpec
from pykvm.synth.truth import (
    VM_PROT_EXECUTE,
    VM_PROT_READ,
    VM_PROT_WRITE,
    AddressSpace,
    SynthDump,
    kernel_regions,
    leaf_ranges,
    leaf_regions,
    make_truth,
    pick_holes,
    pick_regions,
)

FORMATS = ("minidump", "elf", "elf-virt")
DEFAULT_FORMAT = "minidump"
MIB = 1 << 20
V, W, L = 0x1, 0x2, 0x4
RAM_BASE = 0x10000000
MAGIC = b"minidump FreeBSD/toy"


def make_spec(bits: int, order: str, page_size: int, text_offset: int | None) -> KernelSpec:
    """The toy target: ``ET_DYN``, ``e_flags`` 0x20, linked at kernbase + 1 MiB."""
    return KernelSpec(
        arch="toy",
        elfclass=ew.ELFCLASS64 if bits == 64 else ew.ELFCLASS32,
        data=ew.ELFDATA2LSB if order == "little" else ew.ELFDATA2MSB,
        e_machine=ew.EM_PPC64 if bits == 64 else ew.EM_PPC,
        e_type=ew.ET_DYN,
        e_flags=ew.EF_MIPS_ABI2,
        kernbase=0xFFFFFFFFC0000000 if bits == 64 else 0xC0000000,
        load_offset=0x100000,
        page_size=page_size,
        text_offset=text_offset,
        machine="toy",
        machine_arch=f"toy{bits}{'eb' if order == 'big' else ''}",
        data_vars=(("toy_flags", 4),),
        bss_vars=(("toy_root", 8 if bits == 64 else 4),),
    )


def prot(entry: int) -> int:
    """What the toy MMU grants: read and execute always, write with W."""
    return VM_PROT_READ | VM_PROT_EXECUTE | (VM_PROT_WRITE if entry & W else 0)


class ToyMachine(Machine):
    """RAM with holes, the kernel image, two-level page tables, kmem pages, msgbuf."""

    def __init__(self, spec: KernelSpec, seed: int, tail_pages: int = 0) -> None:
        """Build the machine of ``seed`` for ``spec``; KVA ends ``tail_pages`` past slot 3."""
        ps = spec.page_size
        super().__init__(
            seed,
            Rng(seed, "toy-phys"),
            page_size=ps,
            entry_size=spec.ptr_size,
            byteorder=spec.byteorder,
        )
        self.spec = spec
        rng = self._rng
        k = self.kernel = SynthKernel(spec, seed)
        first = (RAM_BASE, RAM_BASE + 3 * MIB + 5 * ps)
        self.set_segments([first, *spread_ranges(rng, first[1], 2, page_size=ps)])
        self.kernphys = RAM_BASE + ps
        self.reserve(self.kernphys, self.kernphys + k.image_len)
        b = (ps // spec.ptr_size).bit_length() - 1
        self.levels = [Level(self.page_shift + b, b), Level(self.page_shift, b)]
        span = self.span = self.levels[0].span
        self.pt = RadixTables(self, self.levels, lambda child, level: child | V)
        kb = spec.kernbase
        self.kernel_vm_end = kb + 4 * span + tail_pages * ps

        # the kernel image: text and rodata read-only, data and bss writable
        for off in range(0, k.image_len, ps):
            pa = self.kernphys + off
            entry = pa | V | (W if off >= k.data_off else 0)
            self.pt.map(k.image_va + off, pa, 1, entry, prot(entry))
        # kmem (root slot 2): random pages, a PTE into a hole and a PG_NODUMP-like page in
        # the first half of the leaf table; a contiguous run and the message buffer in the
        # second half; root slot 1 stays invalid
        self.kmem_va = kb + 2 * span
        half = (1 << b) // 2
        slots = rng.sample(range(half), 14)
        self.hole_va = self.kmem_va + slots[0] * ps
        self._map(self.hole_va, self.hole_addresses()[0], W)
        self.nodump_va = self.kmem_va + slots[1] * ps
        nodump_pa = self.alloc()
        self.nodump.add(nodump_pa >> self.page_shift)
        self._map(self.nodump_va, nodump_pa, W)
        for slot in slots[2:]:
            self._map(self.kmem_va + slot * ps, self.alloc(), rng.choice((0, W)))
        self.free_va = self.kmem_va + next(i for i in range(half) if i not in slots) * ps
        self.run_va = self.kmem_va + half * ps
        run_pa = self.alloc(6)
        for i in range(6):
            self._map(self.run_va + i * ps, run_pa + i * ps, W)
        self.msgbuf = boot_messages(
            rng, k, physmem=self.physmem, avail=self.physmem // 2, cpu="Toy", timer="Toy timer"
        )
        npages = -(-len(self.msgbuf) // ps)
        self.msgbuf_pa = self.alloc(npages)
        self.place(self.msgbuf_pa, self.msgbuf)
        self.msgbuf_va = self.run_va + 16 * ps
        for i in range(npages):
            self.extras.add((self.msgbuf_pa >> self.page_shift) + i)
            self._map(self.msgbuf_va + i * ps, self.msgbuf_pa + i * ps, W)
        # a superpage (root slot 3) onto RAM_BASE: part RAM, part hole when larger than
        # the first range
        self.sp_va = kb + 3 * span
        entry = RAM_BASE | V | W | L
        self.pt.map(self.sp_va, RAM_BASE, 0, entry, prot(entry))

        k.set_int("toy_root", self.pt.root)
        k.set_int("toy_flags", 0x1234)
        k.set_int("kernel_vm_end", self.kernel_vm_end)
        k.set_int("physmem", self.physmem // ps, signed=True)
        k.set_dump_avail(self.segments)
        k.finalize()
        self.place(self.kernphys, k.memory_image())
        self.finish()

    def _map(self, va: int, pa: int, flags: int) -> None:
        entry = pa | V | flags
        self.pt.map(va, pa, 1, entry, prot(entry))

    def minidump_pages(self) -> list[int]:
        """Dumpable pages of every kernel-map leaf, the extras, minus the nodump pages."""
        pfns: set[int] = set(self.extras)
        for leaf in self.leaves:
            pfns.update(self.ram_pfns_in(leaf.pa, leaf.pa + leaf.size))
        pfns -= self.nodump
        pages = (pfn << self.page_shift for pfn in pfns)
        return sorted(pa for pa in pages if self.dumpable(pa))

    def flat_ptes(self) -> bytes:
        """One W-byte leaf entry per page from kernbase to kernel_vm_end."""
        ps = self.page_size
        kb = self.spec.kernbase
        n = (self.kernel_vm_end - kb) // ps
        values = [0] * n
        for leaf in self.leaves:
            flags = leaf.entry & (W | V)
            for off in range(0, leaf.size, ps):
                values[(leaf.va + off - kb) // ps] = (leaf.pa + off) | flags
        return self.spec.array(values, self.spec.ptr_size)


def build(
    directory: str | os.PathLike[str],
    seed: int = 0,
    fmt: str = DEFAULT_FORMAT,
    *,
    bits: int = 64,
    order: str = "little",
    page_size: int = 4096,
    pad_pmap: bool = True,
    text_offset: int | None = None,
    tail_pages: int = 0,
) -> SynthDump:
    """Write ``kernel`` and ``vmcore`` of the toy machine ``seed`` in ``directory``.

    ``tail_pages`` unmapped pages of KVA after the superpage make the page-table section
    a size that is not a page multiple (to exercise ``pad_pmap=False``).
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown toy format {fmt!r}")
    spec = make_spec(bits, order, page_size, text_offset)
    m = ToyMachine(spec, seed, tail_pages)
    k = m.kernel
    root = pathlib.Path(directory)
    (root / "kernel").write_bytes(k.file_bytes())
    core = root / "vmcore"
    ps = page_size
    kb = spec.kernbase
    e = spec.endian
    phdrs: list[ew.Phdr] = []
    layout: dict[str, int] = {}
    if fmt == "minidump":

        def header(sz: md.Sizes) -> bytes:
            return struct.pack(
                f"{e}24sIIIIQQII",
                MAGIC,
                1,
                sz.msgbufsize,
                sz.bitmapsize,
                sz.pmapsize,
                kb,
                m.kernel_vm_end,
                sz.dumpavailsize,
                sz.page_size,
            )

        plan = md.plan_minidump(
            header=header,
            msgbuf=m.msgbuf,
            ranges=m.segments,
            pages=m.minidump_pages(),
            pmap=m.flat_ptes(),
            page_size=ps,
            word_bits=spec.word_bits,
            byteorder=spec.byteorder,
            pad_pmap=pad_pmap,
            version=1,
        )
        md.write_minidump(str(core), plan, m.memory.page)
        space = AddressSpace(leaf_ranges(m.leaves, kb, m.kernel_vm_end), plan.readable(), m.memory)
        offsets = plan.offset_of
        dumped, version, layout = len(plan.pfns), 1, plan.layout
    elif fmt == "elf":
        cplan = fc.plan_elf_core(
            spec.elf,
            spec.e_machine,
            fc.chunks(m.segments, spec.elf, "phys"),
            page_size=ps,
            aux=[fc.dump_delta(k.image_va, m.kernphys, ps)],
        )
        fc.write_elf_core(str(core), cplan, fc.physical_reader(m.memory.chunks))
        space = AddressSpace(leaf_ranges(m.leaves), m.segments, m.memory)
        offsets = cplan.offset_of_paddr
        dumped, version, phdrs = m.physmem // ps, 0, cplan.phdrs
    else:
        vranges = [(k.image_va, k.image_va + k.image_len), (m.run_va, m.run_va + 6 * ps)]
        cplan = fc.plan_elf_core(
            spec.elf,
            spec.e_machine,
            fc.chunks(vranges, spec.elf, "powerpc-virt"),
            page_size=ps,
            dump_header=KernelDumpHeader(spec.uname_machine_arch, versionstring=k.version_string),
        )
        inside = [r for r in leaf_ranges(m.leaves) if any(s <= r[0] < end for s, end in vranges)]
        space = AddressSpace(inside, m.segments, m.memory)

        def read_virtual(va: int, size: int) -> list[bytes]:
            data = space.read(va, size)
            assert data is not None
            return [data]

        fc.write_elf_core(str(core), cplan, read_virtual)
        by_pa = {leaf.pa: leaf.va for leaf in m.leaves}

        def offsets(pa: int) -> int:
            va = by_pa.get(pa)
            return -1 if va is None else cplan.offset_of_vaddr(va)

        dumped = sum(end - s for s, end in vranges) // ps
        version, phdrs = 0, cplan.phdrs
        layout = {"prefix": cplan.prefix}

    want = kernel_regions(k, ("toy_root", "toy_flags", "ostype", "hz"))
    want += [
        (m.run_va + 100, 6 * ps - 200),
        (m.msgbuf_va, len(m.msgbuf)),
        (m.sp_va, ps),
        (m.sp_va + m.span - 8, 8),
    ]
    want += leaf_regions(m.leaves, ps, 16)
    regions = pick_regions(space, want, [k.image_va, k.var_address("version")], fmt)
    holes, kinds = pick_holes(
        space,
        [
            ("user", 0x1000),
            ("invalid-pde", kb + m.span + 0x20),
            ("invalid-pte", m.free_va + 8),
            ("pte-to-physical-hole", m.hole_va + 0x10),
            ("pte-to-nodump-page", m.nodump_va),
            ("superpage-hole", m.sp_va + (m.segments[0][1] - RAM_BASE) + 0x10),
            ("above-kva", m.kernel_vm_end + 0x10),
        ],
    )
    truth = make_truth(
        k,
        fmt=fmt,
        version=version,
        kernbase=kb,
        dump_avail=m.segments,
        dumped_pages=dumped,
        msgbuf=m.msgbuf,
        space=space,
        offsets=offsets,
        regions=regions,
        holes=holes,
        hole_kinds=kinds,
        phdrs=phdrs,
        layout=layout,
        leaves=m.leaves,
        kernphys=m.kernphys,
        kernel_vm_end=m.kernel_vm_end,
        extras={"toy_root": m.pt.root},
    )
    return SynthDump(kernel=root / "kernel", core=core, arch="toy", fmt=fmt, truth=truth)
