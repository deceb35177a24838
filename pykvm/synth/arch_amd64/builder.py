"""``build_amd64``: write a synthetic amd64 kernel and vmcore and compute their ground truth."""

from __future__ import annotations

import os
import pathlib
from collections.abc import Callable

from .. import elfwriter as ew
from ..cmodel import AMD64
from ..fullcore import ElfCorePlan
from ..minidump import MinidumpPlan
from ..truth import (
    AddressSpace,
    GroundTruth,
    SynthDump,
    WalkPage,
    kernel_regions,
    leaf_ranges,
    leaf_regions,
    make_truth,
    pick_holes,
    pick_regions,
)
from ..typeinfo import (
    TYPE_OPTIONS,
    check_type_options,
    ctf_objects,
    kernel_type_info,
    with_kernel_data,
)
from .dumps import plan_elf_core, plan_minidump, write_elf_core, write_minidump
from .machine import (
    DMAP_MAX_ADDRESS,
    DMAP_MIN_ADDRESS,
    GIB,
    KERNBASE,
    MIB,
    NBPDR,
    NPTEPG,
    PAGE_SIZE,
    PG_FRAME,
    PG_PS,
    PG_PS_FRAME,
    PG_V,
    SMALL_KVA_START,
    VM_MIN_KERNEL_ADDRESS,
    Amd64Machine,
    entry_prot,
)

AMD64_FORMATS = ("minidump-v1", "minidump-v2", "minidump-v3", "elf")

#: the largest RAM an ELF full dump may describe (it contains every byte of RAM)
ELF_MAX_PHYSMEM = 1 * GIB


def build_amd64(
    directory: str | os.PathLike[str],
    seed: int = 0,
    fmt: str = "minidump-v3",
    *,
    kernel_name: str = "kernel",
    core_name: str = "vmcore",
    kernphys: int = 0x200000,
    dump_delta: bool = False,
    physmem_gib: int | None = None,
    extra_symbols: int = 0,
    vm_min_kernel_address: int | None = None,
    small_kva: bool = False,
    bulk_mib: int = 0,
    types: str | None = None,
    era: str | None = None,
    cp_time_symbol: bool = False,
    debug_name: str = "kernel.debug",
    extra_procs: int = 0,
) -> SynthDump:
    """Write ``directory/kernel`` and ``directory/vmcore`` for machine ``seed``; return them.

    Arguments:
        directory: an existing directory to write into.
        seed: selects the machine; the same seed always gives byte-identical files.
        fmt: one of :data:`AMD64_FORMATS` (``minidump-v1``, ``minidump-v2``,
            ``minidump-v3``, ``elf``).
        kernel_name, core_name: file names inside ``directory``.
        kernphys: physical load address of the kernel image (2 MiB aligned, >= 2 MiB);
            ``KERNBASE + 2 MiB`` maps to it.
        dump_delta: ELF only: append the ``PT_DUMP_DELTA`` program header.
        physmem_gib: describe a big sparse machine with about this many GiB of RAM in
            dump_avail (1..256; minidumps only, nothing big is materialised).
        extra_symbols: add this many filler symbols to the kernel's symbol table.
        vm_min_kernel_address: VM_MIN_KERNEL_ADDRESS (default 0xfffffe0000000000, which
            makes the v2/v3 pmap section ~8 MiB of mostly zeros).
        small_kva: shorthand for ``vm_min_kernel_address = KERNBASE - 2 GiB``
            (0xffffffff00000000): a three-page pmap section for tiny test dumps.
        bulk_mib: add a contiguous "bulk" range of this many MiB (even, 0..256) for
            throughput benchmarks: its own dump_avail range, mapped by 2 MiB superpages
            right after the tail page table in the KERNBASE GiB (``kernel_vm_end`` moves
            past it), dumped in full by every format; ``truth.bulk`` gives its KVA and
            length.  0 (the default) leaves the files byte-identical to builds without it.

        types: type information and kernel data: ``"ctf-v3"``, ``"ctf-v2"`` (zlib
            compressed ``.SUNW_ctf`` in the kernel), ``"ctf-v3-raw"`` (uncompressed),
            ``"dwarf"`` (a separate ``directory/kernel.debug``), or None (the default: no
            type information and no kernel data; files byte-identical to builds before
            the option existed).  With types the dump carries the kernel data of
            :mod:`pykvm.synth.kerneldata` laid out with this kernel's seed-varied
            :class:`~pykvm.synth.cmodel.LayoutTruth` (``truth.type_layout``;
            ``truth.kernel_data`` the values).  Not with ``minidump-v1``, which does not
            dump the kmem GiB holding the data.
        era: FreeBSD major version of the types (``"10"`` ... ``"15"``; default chosen by
            the seed); only with ``types``.
        cp_time_symbol: also define the old ``cp_time`` array (only with ``types``).
        debug_name: the DWARF file's name (``types="dwarf"``).
        extra_procs: add this many ordinary processes (two threads each, sessions of 25
            with every other one on its own ``pts/N``, two of three with an argv in
            ``p_args``) to the kernel data, for scale tests (only with ``types``;
            0..20000; about 4.5 KiB of structures each, in a dump_avail range of their
            own mapped by consecutive kmem page tables).  0 (the default) leaves the files
            byte-identical to builds without it.

    Raises:
        ValueError: unknown format, bad option values, or an ELF dump of more than
            1 GiB of RAM, or no room for the bulk range below the 1 GiB mapping's GiB.
    """
    if fmt not in AMD64_FORMATS:
        raise ValueError(f"unknown amd64 dump format {fmt!r}; expected one of {AMD64_FORMATS}")
    if dump_delta and fmt != "elf":
        raise ValueError("dump_delta applies to ELF full dumps only")
    check_type_options(types, era, cp_time_symbol)
    if types is not None and fmt == "minidump-v1":
        raise ValueError("kernel data lives in kmem, which a minidump-v1 does not dump")
    tinfo = kernel_type_info(seed, AMD64, types, era)
    layout_truth = tinfo.layout if tinfo is not None else None
    ctf_section = tinfo.ctf_section if tinfo is not None else None
    if vm_min_kernel_address is None:
        vm_min_kernel_address = SMALL_KVA_START if small_kva else VM_MIN_KERNEL_ADDRESS
    machine = Amd64Machine(
        seed,
        kernphys=kernphys,
        vm_min_kernel_address=vm_min_kernel_address,
        physmem_gib=physmem_gib,
        extra_symbols=extra_symbols,
        bulk_mib=bulk_mib,
        types=layout_truth,
        cp_time_symbol=cp_time_symbol,
        ctf_section=ctf_section,
        extra_procs=extra_procs,
    )
    if fmt == "elf" and machine.physmem > ELF_MAX_PHYSMEM:
        raise ValueError("an ELF full dump contains all RAM; use a minidump for big machines")
    root = pathlib.Path(directory)
    kernel_path = root / kernel_name
    core_path = root / core_name
    kernel_path.write_bytes(machine.kernel.file_bytes())
    debug_path = tinfo.write_debug(root / debug_name) if tinfo is not None else None

    if fmt == "elf":
        core_plan = plan_elf_core(machine, dump_delta)
        write_elf_core(str(core_path), core_plan, machine)
        truth = _elf_truth(machine, core_plan)
    else:
        version = int(fmt[-1])
        plan = plan_minidump(machine, version)
        write_minidump(str(core_path), plan, machine)
        truth = _minidump_truth(machine, plan, fmt)
    truth = with_kernel_data(truth, layout_truth, machine.kdata)
    return SynthDump(
        kernel=kernel_path, core=core_path, arch="amd64", fmt=fmt, truth=truth, debug=debug_path
    )


# ---------------------------------------------------------------------------- truth
def _make_truth(
    machine: Amd64Machine,
    *,
    fmt: str,
    version: int,
    kernbase: int,
    dumped_pages: int,
    space: AddressSpace,
    offsets: Callable[[int], int],
    walk: list[WalkPage],
    phdrs: list[ew.Phdr],
    layout: dict[str, int],
) -> GroundTruth:
    """Assemble the GroundTruth of ``machine`` as seen through one dump format."""
    regions, holes, kinds = _samples(machine, space, fmt)
    return make_truth(
        machine.kernel,
        fmt=fmt,
        version=version,
        kernbase=kernbase,
        dump_avail=machine.segments,
        dumped_pages=dumped_pages,
        msgbuf=machine.msgbuf,
        space=space,
        offsets=offsets,
        regions=regions,
        holes=holes,
        hole_kinds=kinds,
        walk=walk,
        phdrs=phdrs,
        layout=layout,
        leaves=machine.leaves,
        page_size=PAGE_SIZE,
        vm_min_kernel_address=machine.vm_min,
        dmapbase=DMAP_MIN_ADDRESS,
        dmapend=DMAP_MAX_ADDRESS,
        kernphys=machine.kernphys,
        kernel_vm_end=machine.kernel_vm_end,
        kpml4phys=machine.kpml4phys,
        nkpt=machine.nkpt,
        extras={"kpml4phys": machine.kpml4phys, "nkpt": machine.nkpt},
        bulk=(machine.bulk_va, machine.bulk_len) if machine.bulk_len else None,
    )


def _minidump_truth(machine: Amd64Machine, plan: MinidumpPlan, fmt: str) -> GroundTruth:
    version = plan.version
    if version == 1:
        lo, hi = KERNBASE, machine.kernel_vm_end
    else:
        lo, hi = machine.vm_min, machine.vm_min + len(plan.pmap) // PAGE_SIZE * GIB
    ranges = leaf_ranges(machine.leaves, lo, hi)
    ranges.append((DMAP_MIN_ADDRESS, DMAP_MAX_ADDRESS, 0))
    space = AddressSpace(ranges, plan.readable(), machine.memory)
    return _make_truth(
        machine,
        fmt=fmt,
        version=version,
        kernbase=KERNBASE if version == 1 else machine.vm_min,
        dumped_pages=len(plan.pfns),
        space=space,
        offsets=plan.offset_of,
        walk=_walk(machine, plan) if version >= 2 else [],
        phdrs=[],
        layout=dict(plan.layout),
    )


def _elf_truth(machine: Amd64Machine, plan: ElfCorePlan) -> GroundTruth:
    ranges = leaf_ranges(machine.leaves)
    ranges.append((DMAP_MIN_ADDRESS, DMAP_MIN_ADDRESS + machine.dmap_limit, 0))
    space = AddressSpace(ranges, machine.segments, machine.memory)
    return _make_truth(
        machine,
        fmt="elf",
        version=0,
        kernbase=machine.vm_min,
        dumped_pages=machine.physmem // PAGE_SIZE,
        space=space,
        offsets=plan.offset_of_paddr,
        walk=[],
        phdrs=list(plan.phdrs),
        layout={},
    )


def _walk(machine: Amd64Machine, plan: MinidumpPlan) -> list[WalkPage]:
    """The records ``_amd64_minidump_walk_pages`` yields, derived from the machine model.

    Pass 1 visits every PDE of the pmap section in index order: a superpage gives one
    record of 2 MiB and marks only the bit of its FIRST 4 KiB page (libkvm quirk); a page
    table page (if dumped) gives one record per valid PTE and marks that page.  Pass 2
    visits the marked bit ids in ascending order with direct-map records (READ|WRITE).
    Addresses without a bit id (holes of dump_avail) are not marked (pykvm's rule for
    libkvm's hole-blind ``_kvm_pa_bit_id``).
    """
    bits = plan.bits
    nbits = len(plan.bitmap) * 8
    marks: set[int] = set()
    out: list[WalkPage] = []
    dmapbase = DMAP_MIN_ADDRESS

    def mark(pa: int) -> None:
        bit = bits.bit_id(pa)
        if bit is not None and bit < nbits:
            marks.add(bit)

    ngib = len(plan.pmap) // PAGE_SIZE
    for g in range(ngib):
        gva = machine.vm_min + g * GIB
        pdpe = machine.pdpe_of(gva)
        if not pdpe & PG_V:
            continue
        if pdpe & PG_PS:
            pdes = [pdpe + j * NBPDR for j in range(NPTEPG)]
        elif machine.dumpable(pdpe & PG_FRAME):
            pd = pdpe & PG_FRAME
            pdes = [machine.get_entry(pd, j) for j in range(NPTEPG)]
        else:
            continue
        for j, pde in enumerate(pdes):
            va = gva + j * NBPDR
            if not pde & PG_V:
                continue
            if pde & PG_PS:
                pa = pde & PG_PS_FRAME
                mark(pa)
                out.append(
                    WalkPage(2, pa, va, dmapbase + pa, entry_prot(pde), plan.offset_of(pa), NBPDR)
                )
                continue
            pt = pde & PG_FRAME
            if plan.offset_of(pt) < 0:
                continue
            for k in range(NPTEPG):
                pte = machine.get_entry(pt, k)
                if pte & PG_V:
                    pa = pte & PG_FRAME
                    mark(pa)
                    out.append(
                        WalkPage(
                            2,
                            pa,
                            va + k * PAGE_SIZE,
                            dmapbase + pa,
                            entry_prot(pte),
                            plan.offset_of(pa),
                            PAGE_SIZE,
                        )
                    )
    for bit in sorted(marks):
        bpa = bits.bit_pa(bit)
        if bpa is None:
            break
        dva = dmapbase + bpa
        if dva + PAGE_SIZE > DMAP_MAX_ADDRESS:
            break
        out.append(WalkPage(2, bpa, 0, dva, 3, plan.offset_of(bpa), PAGE_SIZE))
    return out


def _samples(
    machine: Amd64Machine, space: AddressSpace, fmt: str
) -> tuple[list[tuple[int, bytes]], list[int], list[str]]:
    """Pick readable regions and failing addresses for this format's view of the machine."""
    k = machine.kernel
    dmap = DMAP_MIN_ADDRESS
    want = kernel_regions(k, ("KPML4phys", "ostype", "hz"))
    want += [
        (machine.sp_va, PAGE_SIZE),
        (machine.sp_va + 0x7FF8, 16),
        (machine.sp_va + NBPDR - PAGE_SIZE, PAGE_SIZE),
        (machine.run_va + 100, machine.run_len * PAGE_SIZE - 200),
        (machine.straddle_va, PAGE_SIZE),
        (dmap + machine.msgbuf_pa, len(machine.msgbuf)),
        (dmap + machine.kpml4phys, PAGE_SIZE),
        (dmap + machine.kernphys, 2 * PAGE_SIZE),
        (dmap + machine.quirk_alias_pa, PAGE_SIZE),
    ]
    mid_start, mid_end = machine.segments[machine._kernel_seg_index() + 1]
    want.append((machine.straddle_va + (mid_end - machine.straddle_pa) - PAGE_SIZE, PAGE_SIZE))
    gs, ge = next((s, e) for s, e in machine.segments if s >= machine.g1_phys)
    g_va = machine.g1_va + (gs - machine.g1_phys)
    want += [
        (g_va, PAGE_SIZE),
        (g_va + PAGE_SIZE - 8, 16),
        (g_va + (ge - gs) - PAGE_SIZE, PAGE_SIZE),
    ]
    for pfn in sorted(machine.extras)[:6]:
        want.append((dmap + pfn * PAGE_SIZE, PAGE_SIZE))
    want += leaf_regions(machine.leaves, PAGE_SIZE)
    for va in machine.big_vas[:4]:
        want.append((va, PAGE_SIZE))
    seg_mid = machine.segments[-1]
    want.append((dmap + seg_mid[0] + 5 * PAGE_SIZE, PAGE_SIZE))
    if machine.bulk_len:
        bva, blen = machine.bulk_va, machine.bulk_len
        want += [
            (bva, 4 * PAGE_SIZE),
            (bva + NBPDR - 8, 16),
            (bva + blen - PAGE_SIZE, PAGE_SIZE),
            (dmap + machine.bulk_pa + PAGE_SIZE, PAGE_SIZE),
        ]
    must = [k.image_va, k.var_address("version"), machine.sp_va, dmap + machine.msgbuf_pa]
    regions = pick_regions(space, want, must, fmt)

    # a GiB of kernel VA below KERNBASE that neither kmem nor the 1 GiB mapping uses (with
    # small_kva both GiBs may be taken: then there is none)
    free_gibs = [g for g in range(machine.vm_min, KERNBASE, GIB)
                 if g not in (machine.kmem_va, machine.g1_va)]
    cands: list[tuple[str, int]] = [
        ("invalid-pde", machine.gap_pde_va + 0x10),
        ("invalid-pde", machine.kmem_invalid_pde_va + 0x2000),
        *([("unmapped-kva-gib", free_gibs[0] + 0x5000)] if free_gibs else []),
        ("above-kva", 0xFFFFFFFFC0001000),
        ("user", 0x1000),
        ("user", 0x00007FFFFFFFF000),
        ("kernel-half-unmapped", 0xFFFF800000000000),
        ("between-dmap-and-kva", DMAP_MAX_ADDRESS + 0x1000),
        ("dmap-beyond-ram", dmap + machine.dmap_limit + 0x1000),
        ("superpage-hole", machine.straddle_va + (mid_end - machine.straddle_pa) + 0x10),
    ]
    for idx in range(NPTEPG):
        va = machine.tail_pt_va + idx * PAGE_SIZE
        if space.translate(va) is None:
            cands.append(("invalid-pte", va + 8))
            break
    if machine.image_map_end < machine.sp_va:
        cands.append(("invalid-pte", machine.image_map_end + 0x40))
    for idx in range(NPTEPG):
        va = machine.kmem_pt_va + idx * PAGE_SIZE
        if all(leaf.va != va for leaf in machine.leaves):
            cands.append(("invalid-pte", va))
            break
    for va in machine.hole_pte_vas:
        cands.append(("pte-to-physical-hole", va + 0x123))
    for va in machine.nodump_vas:
        cands.append(("pte-to-nodump-page", va))
    g_hole = machine.g1_phys + PAGE_SIZE if gs > machine.g1_phys + PAGE_SIZE else ge + MIB
    cands.append(("1g-page-hole", machine.g1_va + (g_hole - machine.g1_phys)))
    cands.append(("1g-page-hole", machine.g1_va + GIB - 8))
    for pa in machine.hole_targets:
        cands.append(("dmap-physical-hole", dmap + pa))
    # a RAM page that no mapping reaches and the kernel never marked
    probe = machine.segments[machine._kernel_seg_index()][1] - 3 * PAGE_SIZE
    cands.append(("dmap-not-dumped", dmap + probe))
    cands.append(("dmap-not-dumped", dmap + machine.kmem_pd_pa))
    cands.append(("below-kernbase-v1", machine.run_va))
    holes, kinds = pick_holes(space, cands)
    return regions, holes, kinds


__all__ = ["AMD64_FORMATS", "TYPE_OPTIONS", "build_amd64", "ctf_objects"]
