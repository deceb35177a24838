"""``build_riscv``: write a synthetic riscv kernel and minidump and their ground truth."""

from __future__ import annotations

import os
import pathlib

from ..cmodel import RISCV64
from ..kerneltypes import ERAS
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
from ..typeinfo import check_type_options, kernel_type_info, pick_era, with_kernel_data
from .dumps import plan_minidump, write_minidump
from .machine import (
    DMAP_MAX_ADDRESS,
    DMAP_MIN_ADDRESS,
    HIGH_BIT_KINDS,
    KERNBASE,
    L2_SIZE,
    MIB,
    PAGE_SIZE,
    PTE_PPN0_S,
    VM_MAX_KERNEL_ADDRESS,
    VM_MIN_KERNEL_ADDRESS,
    RiscvMachine,
    entry_prot,
)

#: format -> (header version, Sv48)
RISCV_FORMATS: dict[str, tuple[int, bool]] = {
    "minidump-sv39": (2, False),
    "minidump-sv48": (2, True),
    "minidump-sv39-v1": (1, False),
}

#: the eras (FreeBSD major versions) riscv kernels exist in: the port entered FreeBSD in
#: 2016 and was first released with 11.0 (there is no sys/riscv in stable/10)
RISCV_ERAS: tuple[str, ...] = tuple(e for e in ERAS if e != "10")


def build_riscv(
    directory: str | os.PathLike[str],
    seed: int = 0,
    fmt: str = "minidump-sv39",
    *,
    kernel_name: str = "kernel",
    core_name: str = "vmcore",
    ram_base: int = 0x80000000,
    extra_symbols: int = 0,
    types: str | None = None,
    era: str | None = None,
    cp_time_symbol: bool = False,
    debug_name: str = "kernel.debug",
) -> SynthDump:
    """Write ``directory/kernel`` and ``directory/vmcore`` for riscv machine ``seed``.

    Arguments:
        directory: an existing directory to write into.
        seed: selects the machine; the same arguments give byte-identical files.
        fmt: ``minidump-sv39`` (header version 2, FreeBSD 13+, Sv39 paging; the
            default), ``minidump-sv48`` (version 2, Sv48 paging: the same format, the
            kernel's tables have four levels) or ``minidump-sv39-v1`` (version 1: no
            dump_avail, linear bitmap).
        kernel_name, core_name: file names inside ``directory``.
        ram_base: ``dmap_phys_base`` (the minidump's ``dmapphys``), the 1 GiB-aligned
            physical address RAM starts in (default 0x80000000).
        extra_symbols: add this many filler symbols to the kernel's symbol table.
        types: type information and kernel data: ``"ctf-v3"``, ``"ctf-v2"`` (zlib
            compressed ``.SUNW_ctf`` in the kernel), ``"ctf-v3-raw"`` (uncompressed),
            ``"dwarf"`` (a separate ``directory/kernel.debug``), or None (the default: no
            type information and no kernel data; files byte-identical to builds before
            the option existed).  With types the dump carries the kernel data of
            :mod:`pykvm.synth.kerneldata` laid out with this kernel's seed-varied
            :class:`~pykvm.synth.cmodel.LayoutTruth` for the ``riscv64`` target
            (``truth.type_layout``; ``truth.kernel_data`` the values), in every format.
        era: FreeBSD major version of the types, ``"11"`` ... ``"15"`` (riscv did not
            exist in FreeBSD 10); default chosen by the seed; only with ``types``.
        cp_time_symbol: also define the old ``cp_time`` array (only with ``types``).
        debug_name: the DWARF file's name (``types="dwarf"``).

    Raises:
        ValueError: unknown format or a bad option value.
    """
    if fmt not in RISCV_FORMATS:
        raise ValueError(
            f"unknown riscv dump format {fmt!r}; expected one of {tuple(RISCV_FORMATS)}"
        )
    check_type_options(types, era, cp_time_symbol)
    version, sv48 = RISCV_FORMATS[fmt]
    tinfo = None
    if types is not None:
        tinfo = kernel_type_info(seed, RISCV64, types, pick_era(seed, "riscv", era, RISCV_ERAS))
    m = RiscvMachine(
        seed,
        sv48=sv48,
        ram_base=ram_base,
        extra_symbols=extra_symbols,
        types=tinfo.layout if tinfo is not None else None,
        cp_time_symbol=cp_time_symbol,
        ctf_section=tinfo.ctf_section if tinfo is not None else None,
    )
    root = pathlib.Path(directory)
    kernel_path = root / kernel_name
    core_path = root / core_name
    kernel_path.write_bytes(m.kernel.file_bytes())
    debug_path = tinfo.write_debug(root / debug_name) if tinfo is not None else None
    plan = plan_minidump(m, version)
    write_minidump(str(core_path), plan, m)
    truth = minidump_truth(m, plan, fmt)
    truth = with_kernel_data(truth, tinfo.layout if tinfo is not None else None, m.kdata)
    return SynthDump(
        kernel=kernel_path, core=core_path, arch="riscv", fmt=fmt, truth=truth, debug=debug_path
    )


# ---------------------------------------------------------------------------- truth
def pmap_end(plan: MinidumpPlan) -> int:
    """End of the KVA the page-table section describes (one PTE per 4 KiB page)."""
    return VM_MIN_KERNEL_ADDRESS + len(plan.pmap) // 8 * PAGE_SIZE


def walk(m: RiscvMachine, plan: MinidumpPlan) -> list[WalkPage]:
    """The ``kvm_walk_pages`` records a correct reader yields, from the machine model.

    One record per valid L3 PTE of the page-table section, in index order: live PTEs of
    L3 tables, and for each page of a megapage the writer's ``l2e | (i << 10)`` (so
    ``kp_prot`` is the megapage's).  ``kp_paddr`` comes from the PPN bits 10-53 only,
    ``kp_dmap_vaddr`` is ``dmapbase + pa - dmapphys`` (pykvm's rules, README).  No
    direct-map records: the riscv walker never marks its scratch bitmap.
    """
    lo, hi = VM_MIN_KERNEL_ADDRESS, pmap_end(plan)
    base = m.dmap_phys_base
    offset_of = plan.offset_of
    out: list[WalkPage] = []
    for leaf in m.leaves:
        if not lo <= leaf.va < hi:
            continue
        prot = entry_prot(leaf.entry)
        for off in range(0, leaf.size, PAGE_SIZE):
            pa = leaf.pa + off
            dva = DMAP_MIN_ADDRESS + pa - base
            out.append(WalkPage(2, pa, leaf.va + off, dva, prot, offset_of(pa), PAGE_SIZE))
    return out


def minidump_truth(m: RiscvMachine, plan: MinidumpPlan, fmt: str) -> GroundTruth:
    """The ground truth of ``m`` seen through the minidump ``plan``."""
    ranges = leaf_ranges(m.leaves, VM_MIN_KERNEL_ADDRESS, pmap_end(plan))
    ranges.append((DMAP_MIN_ADDRESS, DMAP_MAX_ADDRESS, m.dmap_phys_base))
    space = AddressSpace(ranges, plan.readable(), m.memory)
    regions, holes, kinds = _samples(m, space, plan, fmt)
    return make_truth(
        m.kernel,
        fmt=fmt,
        version=plan.version,
        kernbase=KERNBASE,
        dump_avail=m.segments,
        dumped_pages=len(plan.pfns),
        msgbuf=m.msgbuf,
        space=space,
        offsets=plan.offset_of,
        regions=regions,
        holes=holes,
        hole_kinds=kinds,
        walk=walk(m, plan),
        layout=dict(plan.layout),
        leaves=m.leaves,
        page_size=PAGE_SIZE,
        vm_min_kernel_address=VM_MIN_KERNEL_ADDRESS,
        dmapbase=DMAP_MIN_ADDRESS,
        dmapend=DMAP_MAX_ADDRESS,
        kernphys=m.kernphys,
        kernel_vm_end=m.kernel_vm_end,
        extras={
            "dmapphys": m.dmap_phys_base,
            "dmap_phys_max": m.dmap_phys_max,
            "pmap_mode": m.pmap_mode,
            "root": m.pt.root,
        },
    )


def _samples(
    m: RiscvMachine, space: AddressSpace, plan: MinidumpPlan, fmt: str
) -> tuple[list[tuple[int, bytes]], list[int], list[str]]:
    """Readable regions and failing addresses of this format's view of the machine."""
    k = m.kernel
    ps = PAGE_SIZE
    dmap = m.dmap
    want = kernel_regions(k, ("pmap_mode", "dmap_phys_base", "ostype", "hz"))
    want += [
        (m.msgbuf_va, len(m.msgbuf)),
        (dmap(m.msgbuf_pa), len(m.msgbuf)),
        (dmap(m.kernphys), 2 * ps),
        (KERNBASE + L2_SIZE - ps, ps),
        (m.mega_va, ps),
        (m.mega_va + ps - 8, 16),
        (m.mega_va + m.mega_ram - ps, ps),
        (m.run_va + 100, m.run_len * ps - 200),
        (dmap(m.pt.root), ps),
    ]
    want += [(va, ps) for va in m.kind_vas.values()]
    want += [(m.kind_vas[name] + ps // 2, ps // 4) for name in HIGH_BIT_KINDS]
    want += [(dmap(pfn << 12), ps) for pfn in sorted(m.extras)[:6]]
    want += leaf_regions(m.leaves, ps, 24)
    s2 = m.segments[2]
    want += [(dmap(s2[0]), ps), (dmap(s2[1]) - ps, ps)]
    must = [
        k.image_va,
        k.var_address("version"),
        m.msgbuf_va,
        dmap(m.msgbuf_pa),
        m.mega_va,
        m.run_va + 100,
        *m.kind_vas.values(),
    ]
    regions = pick_regions(space, want, must, fmt)

    undumped = next(
        (pa for pa in range(s2[0], s2[1], ps) if plan.offset_of(pa) < 0),
        m.max_pa + 3 * MIB,
    )
    mid_hole = (m.segments[0][1] + m.segments[1][0]) // 2 & ~(ps - 1)
    cands: list[tuple[str, int]] = [
        ("user", 0x1000),
        ("user", 0x0000003FFFFFF000),
        ("below-kernbase", KERNBASE - 8),
        ("invalid-pde", m.invalid_l2_va + 0x10),
        ("invalid-pte", m.free_kmem_va + 8),
        ("invalid-pte-stale", m.stale_va + 0x40),
        ("superpage-hole", m.mega_va + m.mega_ram + 0x10),
        ("superpage-hole", m.mega_va + L2_SIZE - 8),
        ("unmapped-kva", m.kernel_vm_end - L2_SIZE + 0x20),
        ("above-kva", m.kernel_vm_end + 0x10),
        ("above-kva", VM_MAX_KERNEL_ADDRESS + 0x1000),
        ("above-dmap", DMAP_MAX_ADDRESS + 0x1000),
        ("dmap-below-ram", DMAP_MIN_ADDRESS + 0x10),
        ("dmap-physical-hole", dmap(mid_hole)),
        ("dmap-not-dumped", dmap(undumped) + 0x18),
        ("dmap-beyond-ram", dmap(m.max_pa + 3 * MIB)),
    ]
    cands += [("pte-to-physical-hole", va + 0x30) for va in m.hole_vas]
    cands += [("pte-to-nodump-page", va) for va in m.nodump_vas]
    holes, kinds = pick_holes(space, cands)
    return regions, holes, kinds


def high_bit_ptes(m: RiscvMachine) -> dict[str, int]:
    """The raw L3 PTEs with bits 54-63 set, by kind name (for tests)."""
    by_va = {leaf.va: leaf for leaf in m.leaves}
    out = {name: by_va[m.kind_vas[name]].entry for name in HIGH_BIT_KINDS}
    for name in HIGH_BIT_KINDS:
        leaf = by_va[m.kind_vas[name]]
        unmasked = ((leaf.entry >> PTE_PPN0_S) << 12) & (1 << 64) - 1
        assert leaf.entry >> 54 and unmasked >= 1 << 56 and unmasked != leaf.pa
    return out


__all__ = [
    "RISCV_ERAS",
    "RISCV_FORMATS",
    "build_riscv",
    "high_bit_ptes",
    "minidump_truth",
    "walk",
]
