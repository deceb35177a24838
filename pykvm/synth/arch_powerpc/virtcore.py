"""Full (ELF) dumps of the AIM powerpc MMUs, as ``dumpsys_generic`` writes them.

Shared by :mod:`pykvm.synth.arch_powerpc` (32-bit OEA, ``mmu_oea.c``) and the ELF formats
of :mod:`pykvm.synth.arch_powerpc64` (64-bit OEA, ``mmu_oea64.c`` of FreeBSD 12 and
earlier, before powerpc64 had page-tracking minidumps).

Sources followed (read, not copied): sys/kern/kern_dump.c (``dumpsys_generic``,
``cb_dumphdr``: on powerpc ``p_vaddr = do_minidump ? start : ~0`` and
``p_paddr = do_minidump ? ~0 : start``), sys/powerpc/aim/mmu_oea.c and mmu_oea64.c
(``moea_scan_init`` / ``moea64_scan_init``, the chunk list; ``moea*_bootstrap``, the
kernel stack, message buffer and dynamic per-CPU area carved from
``VM_MIN_KERNEL_ADDRESS``), sys/powerpc/include/vmparam.h and pte.h, formats.md 4.1,
10 and 11.6.

The chunk list the MMU module hands to ``dumpsys_generic``:

* ``debug.minidump=1`` (the default; "virtual" chunks, ``p_paddr`` all ones): (1) the
  kernel's ``.data`` and ``.bss``, ``trunc_page(_etext)`` to ``round_page(_end)`` at their
  link addresses (the kernel runs at its link address, identity mapped: BATs on 32-bit
  OEA, ``moea64_kenter(pa, pa)`` on 64-bit); (2) the message buffer,
  ``msgbufp->msg_ptr`` for ``round_page(msg_size)`` bytes; (3) the first run of mapped
  kernel pages after it (the dynamic per-CPU area and what follows it contiguously), ended
  by the first unmapped page or by the start of the buffer cache (``kmi.buffer_sva``).
  Kernel text, the thread0 stack and every other kernel page are not in the dump.
* ``debug.minidump=0`` ("physical" chunks, ``p_vaddr`` all ones): one chunk per physical
  memory region.  libkvm (and so a correct reader) refuses to translate such a core
  (``Raw corefile not supported``): every address fails.

The machine of a seed: RAM from physical 0 (the kernel image at ``0x100000``, its link
address) and one or two more ranges after holes; at ``VM_MIN_KERNEL_ADDRESS`` an unmapped
guard page, the thread0 stack, the message buffer, the dynamic per-CPU area, a run of
kernel pages, in some seeds buffer-cache pages right after the run, then after a gap a few
scattered kernel pages and one device mapping onto a physical hole.  With kernel data
(``types``) the kernel-data arena follows the run directly (mapped writable, so
``moea*_scan_init``'s third chunk, which runs to the first unmapped page, covers it) and
the buffer-cache pages, gap and scattered pages come after it.  Leaf entries are the
low word of the PTE the pmap would build: ``pa | PTE_M | PP`` (PP = ``BW`` 0b10 for
writable pages, ``BR`` 0b11 for read-only ones; 64-bit entries add ``LPTE_NOEXEC``).
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from .. import fullcore as fc
from .._prng import Rng
from ..cmodel import LayoutTruth
from ..kernel import SymbolEntry, SynthKernel
from ..kerneldata import KernelDataTruth
from ..kerneldump import KernelDumpHeader
from ..machine import Machine, boot_messages, spread_ranges
from ..spec import KernelSpec
from ..truth import (
    VM_PROT_EXECUTE,
    VM_PROT_READ,
    VM_PROT_WRITE,
    AddressSpace,
    SynthDump,
    kernel_regions,
    make_truth,
    pick_holes,
    pick_regions,
)
from .kdata import build_kernel_data, kdata_bss

PAGE_SIZE = 4096
PAGE_SHIFT = 12
MIB = 1 << 20
#: physical (and link) address of the image's first byte: KERNBASE 0x100100 - 0x100
IMAGE_PHYS = 0x100000

# PTE low-word bits (sys/powerpc/include/pte.h)
PTE_M = 0x10
PTE_I = 0x20
PTE_G = 0x08
PTE_BW = 0x2
PTE_BR = 0x3
PTE_REF = 0x100
PTE_CHG = 0x80
LPTE_NOEXEC = 0x4

#: KERNELDUMP_POWERPC_VERSION (sys/sys/kerneldump.h)
KERNELDUMP_POWERPC_VERSION = 1


@dataclass(frozen=True)
class VirtTarget:
    """What differs between the 32-bit and the 64-bit AIM full-dump machines."""

    spec: KernelSpec
    #: VM_MIN_KERNEL_ADDRESS
    kva_base: int
    #: VM_MAX_SAFE_KERNEL_ADDRESS (inclusive)
    kva_max: int
    #: pages of thread0's kernel stack (KSTACK_PAGES)
    kstack_pages: int
    #: 64-bit PTEs carry LPTE_NOEXEC; 32-bit OEA has no per-page no-execute bit
    has_noexec: bool
    #: the kerneldumpheader's architecture (MACHINE_ARCH)
    architecture: str
    #: CPU line of the boot messages
    cpu: str


def leaf_prot(entry: int, has_noexec: bool) -> int:
    """What the hardware grants a kernel access through a PTE with low word ``entry``."""
    prot = VM_PROT_READ
    if entry & 0x3 != PTE_BR:
        prot |= VM_PROT_WRITE
    if not (has_noexec and entry & LPTE_NOEXEC):
        prot |= VM_PROT_EXECUTE
    return prot


class VirtCoreMachine(Machine):
    """RAM, the identity-mapped kernel, the kernel pages of KVA and the dump chunks."""

    def __init__(
        self,
        target: VirtTarget,
        seed: int,
        *,
        extra_symbols: int = 0,
        types: LayoutTruth | None = None,
        cp_time_symbol: bool = False,
        ctf_section: Callable[[Sequence[SymbolEntry]], bytes] | None = None,
    ) -> None:
        """Build the machine of ``seed`` for ``target``.

        ``types`` (the kernel's type layout) adds the kernel data of
        :mod:`pykvm.synth.kerneldata`: its variables in ``.bss`` and the kernel-data
        arena right after the run of kernel pages (``kdata`` is then the
        :class:`KernelDataTruth`, ``kdata_va``/``kdata_pages`` the arena); without it the
        machine is the one of builds before the option existed.  ``cp_time_symbol`` also
        defines the old ``cp_time`` array; ``ctf_section`` gives the kernel ``.SUNW_ctf``.
        """
        spec = target.spec
        super().__init__(seed, Rng(seed, "powerpc-virt"), byteorder=spec.byteorder)
        self.target = target
        rng = self._rng
        k = self.kernel = SynthKernel(
            spec, seed, extra_symbols, extra_bss=kdata_bss(spec, types, cp_time_symbol)
        )
        k.ctf_section = ctf_section
        self.kdata: KernelDataTruth | None = None
        self.kdata_va = 0
        self.kdata_pages = 0
        self.kernphys = IMAGE_PHYS
        first = (0, 4 * MIB + rng.below(3) * MIB + rng.between(1, 255) * PAGE_SIZE)
        more = spread_ranges(rng, first[1], rng.between(1, 2), size_mib=(2, 4))
        self.set_segments([first, *more])
        self.reserve(0, IMAGE_PHYS + k.image_len)
        self.leaf_by_va: dict[int, int] = {}

        # the kernel image, identity mapped (text read-only)
        for off in range(0, k.image_len, PAGE_SIZE):
            writable = off >= k.data_off
            self._map(IMAGE_PHYS + off, IMAGE_PHYS + off, writable, exec_=not writable)

        # KVA from VM_MIN_KERNEL_ADDRESS: guard page, thread0 stack, msgbuf, dpcpu, a run
        kva = target.kva_base
        self.guard_va = kva
        va = kva + PAGE_SIZE
        self.kstack_va = va
        kstack_pa = self.alloc(target.kstack_pages)
        for i in range(target.kstack_pages):
            self._map(va, kstack_pa + i * PAGE_SIZE, True)
            va += PAGE_SIZE
        self.msgbuf = boot_messages(
            rng,
            k,
            physmem=self.physmem,
            avail=self.physmem - 2 * MIB,
            cpu=target.cpu,
            timer="Event timer \"decrementer\" frequency 33333333 Hz quality 0",
        )
        npages = -(-len(self.msgbuf) // PAGE_SIZE)
        self.msgbuf_pa = self.alloc(npages)
        self.place(self.msgbuf_pa, self.msgbuf)
        self.msgbuf_va = va
        for i in range(npages):
            self._map(va, self.msgbuf_pa + i * PAGE_SIZE, True)
            va += PAGE_SIZE
        self.dpcpu_va = va
        dpcpu_pages = rng.between(2, 4)
        dpcpu_pa = self.alloc(dpcpu_pages)
        for i in range(dpcpu_pages):
            self._map(va, dpcpu_pa + i * PAGE_SIZE, True)
            va += PAGE_SIZE
        self.run_va = va
        for _ in range(rng.between(3, 8)):
            writable = rng.chance(3, 4)
            self._map(va, self.alloc(), writable, exec_=rng.chance(1, 4))
            va += PAGE_SIZE
        self.run_end = va
        if types is not None:
            va = self._build_kdata(types, va, cp_time_symbol)
        # buffer-cache pages mapped right after the run (moea*_scan_init stops at them)
        self.buffer_va = 0
        if rng.chance(1, 2):
            self.buffer_va = va
            for _ in range(rng.between(2, 4)):
                self._map(va, self.alloc(), True)
                va += PAGE_SIZE
        self.gap_va = va
        # scattered kernel pages and a device mapping onto a physical hole, after a gap
        base = va + rng.between(2, 6) * PAGE_SIZE
        slots = sorted(rng.sample(range(64), rng.between(6, 12)))
        self.scattered_vas = [base + s * PAGE_SIZE for s in slots[1:]]
        for sva in self.scattered_vas:
            self._map(sva, self.alloc(), rng.chance(2, 3))
        self.device_va = base + slots[0] * PAGE_SIZE
        self.device_pa = self.hole_addresses()[-1]
        entry = self.device_pa | PTE_I | PTE_G | PTE_BW
        self.add_leaf(self.device_va, PAGE_SIZE, self.device_pa, entry,
                      leaf_prot(entry, target.has_noexec))
        self.leaf_by_va[self.device_va] = self.device_pa
        self.kernel_vm_end = base + 64 * PAGE_SIZE

        k.set_int("kernel_vm_end", self.kernel_vm_end)
        k.set_int("physmem", self.physmem // PAGE_SIZE, signed=True)
        k.set_dump_avail(self.segments)
        k.set_int("msgbuf_phys", self.msgbuf_pa)
        k.set_int("virtual_avail", self.kernel_vm_end)
        k.set_int("virtual_end", target.kva_max)
        k.finalize()
        self.place(IMAGE_PHYS, k.memory_image())
        self.finish()

    def _build_kdata(self, types: LayoutTruth, base: int, cp_time_symbol: bool) -> int:
        """The kernel-data arena from ``base`` (writable, no-execute pages); return its end."""

        def map_page(va: int) -> int:
            pa = self.alloc()
            self._map(va, pa, True, exec_=False)
            return pa

        self.kdata, vas = build_kernel_data(
            self.kernel,
            types,
            seed=self.seed,
            base=base,
            page_size=PAGE_SIZE,
            map_page=map_page,
            place=self.place,
            msgbuf_ring_va=self.msgbuf_va,
            msgbuf=self.msgbuf,
            cp_time_symbol=cp_time_symbol,
        )
        self.kdata_va = base
        self.kdata_pages = len(vas)
        return base + len(vas) * PAGE_SIZE

    def _map(self, va: int, pa: int, writable: bool, *, exec_: bool = True) -> None:
        entry = pa | PTE_M | (PTE_BW if writable else PTE_BR)
        if self._rng.chance(1, 2):
            entry |= PTE_REF | (PTE_CHG if writable else 0)
        if self.target.has_noexec and not exec_:
            entry |= LPTE_NOEXEC
        self.add_leaf(va, PAGE_SIZE, pa, entry, leaf_prot(entry, self.target.has_noexec))
        self.leaf_by_va[va] = pa

    # ------------------------------------------------------------------ chunks
    @property
    def etext(self) -> int:
        """Link address of ``_etext`` (end of ``.text``)."""
        k = self.kernel
        return k.image_va + k.text_off + k.text_size

    @property
    def end(self) -> int:
        """Link address of ``_end`` (end of ``.bss``)."""
        k = self.kernel
        return k.image_va + k.bss_off + k.bss_size

    def virtual_chunks(self) -> list[tuple[int, int]]:
        """``moea*_scan_init`` with ``do_minidump`` set: three kernel-virtual ranges."""
        data = (self.etext & ~(PAGE_SIZE - 1), -(-self.end // PAGE_SIZE) * PAGE_SIZE)
        msg = (self.msgbuf_va, self.msgbuf_va + -(-len(self.msgbuf) // PAGE_SIZE) * PAGE_SIZE)
        # the first mapped page at or after the end of the message buffer, then the run
        va = msg[1]
        while va not in self.leaf_by_va:
            va += PAGE_SIZE
        start = va
        va += PAGE_SIZE
        while va in self.leaf_by_va and va != self.buffer_va:
            va += PAGE_SIZE
        return [data, msg, (start, va)]

    def translate(self, va: int) -> int:
        """Physical address of the kernel page at ``va`` (identity for the image)."""
        return self.leaf_by_va[va & ~(PAGE_SIZE - 1)] | (va & (PAGE_SIZE - 1))


# ---------------------------------------------------------------------------- dumps
def virtual_ranges(machine: VirtCoreMachine) -> list[tuple[int, int, int]]:
    """``(va, va_end, pa)`` page translations of the virtual chunks (merged runs)."""
    out: list[tuple[int, int, int]] = []
    for start, end in machine.virtual_chunks():
        for va in range(start, end, PAGE_SIZE):
            pa = machine.translate(va)
            if out and out[-1][1] == va and out[-1][2] + (va - out[-1][0]) == pa:
                out[-1] = (out[-1][0], va + PAGE_SIZE, out[-1][2])
            else:
                out.append((va, va + PAGE_SIZE, pa))
    return out


def build_full_dump(
    machine: VirtCoreMachine,
    directory: str | os.PathLike[str],
    fmt: str,
    *,
    virtual: bool,
    dump_header: bool,
    arch: str,
) -> SynthDump:
    """Write ``kernel`` and ``vmcore`` of ``machine`` and return them with the truth.

    ``virtual`` selects ``debug.minidump=1`` chunks (kernel VAs) or ``=0`` (physical
    regions); ``dump_header`` prefixes the 512-byte kerneldumpheader.
    """
    target = machine.target
    spec = target.spec
    k = machine.kernel
    root = pathlib.Path(directory)
    kernel_path = root / "kernel"
    core_path = root / "vmcore"
    kernel_path.write_bytes(k.file_bytes())
    kdh = None
    if dump_header:
        kdh = KernelDumpHeader(
            target.architecture,
            KERNELDUMP_POWERPC_VERSION,
            dumptime=1_700_000_000 + machine.seed,
            versionstring=k.version_string,
            panicstring=f"synthetic crash {machine.seed}",
        )
    memory = machine.memory
    if virtual:
        vchunks = machine.virtual_chunks()
        plan = fc.plan_elf_core(
            spec.elf,
            spec.e_machine,
            fc.chunks(vchunks, spec.elf, "powerpc-virt"),
            page_size=PAGE_SIZE,
            dump_header=kdh,
        )
        ranges = virtual_ranges(machine)
        pages = sorted({pa + off for va, ve, pa in ranges for off in range(0, ve - va, PAGE_SIZE)})
        readable = _runs(pages)
        space = AddressSpace(ranges, readable, memory)

        def read_virtual(va: int, size: int) -> list[bytes]:
            data = space.read(va, size)
            assert data is not None, hex(va)
            return [data]

        fc.write_elf_core(str(core_path), plan, read_virtual)
        by_pa = {
            pa + off: va + off for va, ve, pa in ranges for off in range(0, ve - va, PAGE_SIZE)
        }

        def offsets(pa: int) -> int:
            va = by_pa.get(pa)
            return -1 if va is None else plan.offset_of_vaddr(va)

        dumped = sum(e - s for s, e in vchunks) // PAGE_SIZE
        regions, holes, kinds = _samples(machine, space, fmt)
    else:
        plan = fc.plan_elf_core(
            spec.elf,
            spec.e_machine,
            fc.chunks(machine.segments, spec.elf, "powerpc-phys"),
            page_size=PAGE_SIZE,
            dump_header=kdh,
        )
        fc.write_elf_core(str(core_path), plan, fc.physical_reader(memory.chunks))
        # the file holds every byte of RAM, but no virtual address translates
        space = AddressSpace([], machine.segments, memory)
        offsets = plan.offset_of_paddr
        dumped = machine.physmem // PAGE_SIZE
        regions = []
        holes = [va for _, va in _hole_candidates(machine)]
        kinds = ["raw-corefile"] * len(holes)
    truth = make_truth(
        k,
        fmt=fmt,
        version=0,
        kernbase=spec.kernbase,
        dump_avail=machine.segments,
        dumped_pages=dumped,
        msgbuf=machine.msgbuf,
        space=space,
        offsets=offsets,
        regions=regions,
        holes=holes,
        hole_kinds=kinds,
        phdrs=list(plan.phdrs),
        layout={"prefix": plan.prefix, "file_size": plan.file_size},
        leaves=machine.leaves,
        page_size=PAGE_SIZE,
        vm_min_kernel_address=target.kva_base,
        kernphys=machine.kernphys,
        kernel_vm_end=machine.kernel_vm_end,
        extras={
            "msgbuf_va": machine.msgbuf_va,
            "msgbuf_pa": machine.msgbuf_pa,
            "debug_minidump": int(virtual),
            "dump_header": int(dump_header),
        },
    )
    if machine.kdata is not None:
        truth = dataclasses.replace(
            truth, type_layout=machine.kdata.layout, kernel_data=machine.kdata
        )
    return SynthDump(kernel=kernel_path, core=core_path, arch=arch, fmt=fmt, truth=truth)


def _runs(pages: Iterable[int]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for pa in pages:
        if out and out[-1][1] == pa:
            out[-1] = (out[-1][0], pa + PAGE_SIZE)
        else:
            out.append((pa, pa + PAGE_SIZE))
    return out


def _hole_candidates(machine: VirtCoreMachine) -> list[tuple[str, int]]:
    k = machine.kernel
    target = machine.target
    cands = [
        ("text-not-dumped", k.image_va + k.text_off + 0x40),
        ("text-not-dumped", k.image_va),
        ("unmapped-kva", machine.guard_va + 0x10),
        ("kva-not-dumped", machine.kstack_va),
        ("after-chunk", machine.gap_va + 8),
        ("pte-to-physical-hole", machine.device_va + 0x20),
        ("user", 0x1000),
        ("above-kva", target.kva_max + 1 + PAGE_SIZE),
    ]
    if machine.buffer_va:
        cands.append(("buffer-cache", machine.buffer_va))
    cands += [("kva-not-dumped", va + 0x100) for va in machine.scattered_vas[:3]]
    return cands


def _samples(
    machine: VirtCoreMachine, space: AddressSpace, fmt: str
) -> tuple[list[tuple[int, bytes]], list[int], list[str]]:
    k = machine.kernel
    c_data, c_msg, c_run = machine.virtual_chunks()
    want = kernel_regions(k, ("msgbuf_phys", "virtual_avail", "ostype", "hz", "physmem"))
    want += [
        (c_data[0], PAGE_SIZE),
        (c_data[1] - 16, 16),
        (machine.msgbuf_va, len(machine.msgbuf)),
        (c_msg[1] - 8, 16),
        (c_run[0], c_run[1] - c_run[0]),
        (c_run[1] - PAGE_SIZE - 4, 8),
        (k.var_address("dump_avail"), k.var_size("dump_avail")),
        (machine.etext - 8, 16),
    ]
    want += [(va, PAGE_SIZE) for va in range(c_run[0], c_run[1], PAGE_SIZE)]
    must = [k.var_address("version"), machine.msgbuf_va, c_run[0]]
    regions = pick_regions(space, want, must, fmt)
    holes, kinds = pick_holes(space, _hole_candidates(machine))
    return regions, holes, kinds


__all__ = [
    "IMAGE_PHYS",
    "KERNELDUMP_POWERPC_VERSION",
    "PAGE_SIZE",
    "VirtCoreMachine",
    "VirtTarget",
    "build_full_dump",
    "leaf_prot",
    "virtual_ranges",
]

