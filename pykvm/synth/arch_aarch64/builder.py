"""``build_aarch64``: write a synthetic arm64 kernel and minidump and their ground truth."""

from __future__ import annotations

import os
import pathlib

from ..cmodel import AARCH64
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
    ATTR_DEFAULT,
    DMAP_MAX_ADDRESS,
    DMAP_MIN_ADDRESS,
    GRANULE_4K,
    GRANULE_16K,
    KERNBASE,
    L3_PAGE,
    MIB,
    VM_MAX_KERNEL_ADDRESS,
    VM_MIN_KERNEL_ADDRESS,
    Arm64Machine,
    entry_prot,
)

#: format -> (header version, page size)
AARCH64_FORMATS: dict[str, tuple[int, int]] = {
    "minidump-v3": (3, 4096),
    "minidump-v3-16k": (3, 16384),
    "minidump-v2": (2, 4096),
    "minidump-v1": (1, 4096),
}

#: the eras (FreeBSD major versions) arm64 kernels exist in: arm64 was added to FreeBSD
#: in 2015 and first released with 11.0 (there is no sys/arm64 in stable/10)
AARCH64_ERAS: tuple[str, ...] = tuple(e for e in ERAS if e != "10")


def build_aarch64(
    directory: str | os.PathLike[str],
    seed: int = 0,
    fmt: str = "minidump-v3",
    *,
    kernel_name: str = "kernel",
    core_name: str = "vmcore",
    ram_base: int | None = None,
    l1_block: bool = False,
    extra_symbols: int = 0,
    types: str | None = None,
    era: str | None = None,
    cp_time_symbol: bool = False,
    debug_name: str = "kernel.debug",
) -> SynthDump:
    """Write ``directory/kernel`` and ``directory/vmcore`` for arm64 machine ``seed``.

    Arguments:
        directory: an existing directory to write into.
        seed: selects the machine; the same arguments give byte-identical files.
        fmt: ``minidump-v3`` (FreeBSD 14+, 4 KiB pages), ``minidump-v3-16k`` (16 KiB
            pages), ``minidump-v2`` (FreeBSD 13: dump_avail, no flags) or ``minidump-v1``
            (FreeBSD 11-12: no dump_avail, linear bitmap).
        kernel_name, core_name: file names inside ``directory``.
        ram_base: ``dmap_phys_base``, the L1-aligned physical address RAM starts in
            (default 1 GiB with 4 KiB pages, 64 GiB with 16 KiB pages; the minidump's
            ``dmapphys``); a multiple of 1 GiB (64 GiB for 16 KiB pages) below 64 TiB.
        l1_block: map a 1 GiB L1 block at ``KERNBASE + 1 GiB`` (4 KiB pages only); adds
            2 MiB of fake L3 entries to the page-table section and 262144 walk records.
        extra_symbols: add this many filler symbols to the kernel's symbol table.
        types: type information and kernel data: ``"ctf-v3"``, ``"ctf-v2"`` (zlib
            compressed ``.SUNW_ctf`` in the kernel), ``"ctf-v3-raw"`` (uncompressed),
            ``"dwarf"`` (a separate ``directory/kernel.debug``), or None (the default: no
            type information and no kernel data; files byte-identical to builds before
            the option existed).  With types the dump carries the kernel data of
            :mod:`pykvm.synth.kerneldata` laid out with this kernel's seed-varied
            :class:`~pykvm.synth.cmodel.LayoutTruth` for the ``aarch64`` target
            (``truth.type_layout``; ``truth.kernel_data`` the values), in every format.
        era: FreeBSD major version of the types, ``"11"`` ... ``"15"`` (arm64 did not
            exist in FreeBSD 10); default chosen by the seed; only with ``types``.
        cp_time_symbol: also define the old ``cp_time`` array (only with ``types``).
        debug_name: the DWARF file's name (``types="dwarf"``).

    Raises:
        ValueError: unknown format or a bad option value.
    """
    if fmt not in AARCH64_FORMATS:
        raise ValueError(
            f"unknown aarch64 dump format {fmt!r}; expected one of {tuple(AARCH64_FORMATS)}"
        )
    if not isinstance(l1_block, bool):
        raise ValueError("l1_block must be True or False")
    check_type_options(types, era, cp_time_symbol)
    version, page_size = AARCH64_FORMATS[fmt]
    granule = GRANULE_4K if page_size == 4096 else GRANULE_16K
    tinfo = None
    if types is not None:
        tinfo = kernel_type_info(seed, AARCH64, types, pick_era(seed, "aarch64", era, AARCH64_ERAS))
    m = Arm64Machine(
        seed,
        granule=granule,
        ram_base=ram_base,
        l1_block=l1_block,
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
        kernel=kernel_path, core=core_path, arch="aarch64", fmt=fmt, truth=truth, debug=debug_path
    )


# ---------------------------------------------------------------------------- truth
def pmap_end(m: Arm64Machine, plan: MinidumpPlan) -> int:
    """End of the KVA the page-table section describes (one entry per page)."""
    return VM_MIN_KERNEL_ADDRESS + len(plan.pmap) // 8 * m.page_size


def walk(m: Arm64Machine, plan: MinidumpPlan) -> list[WalkPage]:
    """The ``kvm_walk_pages`` records a correct reader yields, from the machine model.

    One record per valid L3 entry of the page-table section in index order: for an L3
    page the live entry, for each page of an L2 or L1 block the fake entry the writer
    emits (``pa | ATTR_DEFAULT | L3_PAGE``: read, write and execute).  ``kp_prot`` follows
    pykvm's rule (:func:`~.machine.entry_prot`), ``kp_dmap_vaddr`` is ``dmapbase + pa -
    dmapphys`` (README: libkvm omits ``dmapphys``).  No direct-map pass records: the
    arm64 walker never marks its scratch bitmap.
    """
    ps = m.page_size
    lo, hi = VM_MIN_KERNEL_ADDRESS, pmap_end(m, plan)
    base = m.dmap_phys_base
    offset_of = plan.offset_of
    out: list[WalkPage] = []
    fake = ATTR_DEFAULT | L3_PAGE
    fake_prot = entry_prot(fake)
    for leaf in m.leaves:
        if not lo <= leaf.va < hi:
            continue
        if leaf.size == ps:
            pa = leaf.pa
            prot = entry_prot(leaf.entry)
            dva = DMAP_MIN_ADDRESS + pa - base
            out.append(WalkPage(2, pa, leaf.va, dva, prot, offset_of(pa), ps))
            continue
        for off in range(0, leaf.size, ps):
            pa = leaf.pa + off
            out.append(
                WalkPage(
                    2,
                    pa,
                    leaf.va + off,
                    DMAP_MIN_ADDRESS + pa - base,
                    fake_prot,
                    offset_of(pa),
                    ps,
                )
            )
    return out


def minidump_truth(m: Arm64Machine, plan: MinidumpPlan, fmt: str) -> GroundTruth:
    """The ground truth of ``m`` seen through the minidump ``plan``."""
    ranges = leaf_ranges(m.leaves, VM_MIN_KERNEL_ADDRESS, pmap_end(m, plan))
    ranges.append((DMAP_MIN_ADDRESS, DMAP_MAX_ADDRESS, m.dmap_phys_base))
    space = AddressSpace(ranges, plan.readable(), m.memory)
    regions, holes, kinds = _samples(m, space, plan, fmt)
    return make_truth(
        m.kernel,
        fmt=fmt,
        version=plan.version,
        kernbase=VM_MIN_KERNEL_ADDRESS,
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
        page_size=m.page_size,
        vm_min_kernel_address=VM_MIN_KERNEL_ADDRESS,
        dmapbase=DMAP_MIN_ADDRESS,
        dmapend=DMAP_MAX_ADDRESS,
        kernphys=m.kernphys,
        kernel_vm_end=m.kernel_vm_end,
        extras={
            "dmapphys": m.dmap_phys_base,
            "dmap_phys_max": m.dmap_phys_max,
            "ttbr1_l0": m.pt.root,
            "l1_block": m.l1_va,
        },
    )


def _samples(
    m: Arm64Machine, space: AddressSpace, plan: MinidumpPlan, fmt: str
) -> tuple[list[tuple[int, bytes]], list[int], list[str]]:
    """Readable regions and failing addresses of this format's view of the machine."""
    k = m.kernel
    ps = m.page_size
    l2 = m.granule.l2_size
    dmap = m.dmap
    want = kernel_regions(k, ("dmap_phys_base", "dmap_phys_max", "ostype", "hz"))
    want += [
        (m.msgbuf_va, len(m.msgbuf)),
        (dmap(m.msgbuf_pa), len(m.msgbuf)),
        (dmap(m.kernphys), 2 * ps),
        (dmap(m.kernphys) + ps - 8, 16),
        (m.block_va, ps),
        (m.block_va + ps - 8, 16),
        (m.block_va + m.block_ram - ps, ps),
        (m.run_va + 100, m.run_len * ps - 200),
        (dmap(m.pt.root), ps),
    ]
    if m.l3c_va:
        want.append((m.l3c_va + 8, 16 * ps - 16))
    want += [(va, ps) for va in m.attr_vas.values()]
    want += [(dmap(pfn << m.page_shift), ps) for pfn in sorted(m.extras)[:6]]
    want += leaf_regions(m.leaves, ps, 24)
    s2 = m.segments[2]
    want += [(dmap(s2[0]), ps), (dmap(s2[1]) - ps, ps)]
    if m.l1_va:
        want += [
            (m.l1_va + m.l1_ram, ps),
            (m.l1_va + m.l1_ram + ps - 8, 16),
            (m.tail_va, l2),
        ]
    must = [
        k.image_va,
        k.var_address("version"),
        m.msgbuf_va,
        dmap(m.msgbuf_pa),
        m.block_va,
        m.run_va + 100,
        *m.attr_vas.values(),
    ]
    regions = pick_regions(space, want, must, fmt)

    undumped = next(
        (pa for pa in range(s2[0], s2[1], ps) if plan.offset_of(pa) < 0),
        m.max_pa + 3 * MIB,
    )
    mid_hole = (m.segments[0][1] + m.segments[1][0]) // 2 & ~(ps - 1)
    cands: list[tuple[str, int]] = [
        ("user", 0x1000),
        ("user", 0x0000FFFFFFFFF000),
        ("invalid-pde", m.invalid_l2_va + 0x10),
        ("invalid-pte", m.free_kmem_va + 8),
        ("invalid-pte-stale", m.stale_va + 0x40),
        ("superpage-hole", m.block_va + m.block_ram + 0x10),
        ("superpage-hole", m.block_va + l2 - 8),
        ("unmapped-kva", m.kernel_vm_end - l2 + 0x20),
        ("above-kva", m.kernel_vm_end + 0x10),
        ("above-kva", VM_MAX_KERNEL_ADDRESS + 0x1000),
        ("above-dmap", DMAP_MAX_ADDRESS + 0x1000),
        ("dmap-physical-hole", dmap(mid_hole)),
        ("dmap-not-dumped", dmap(undumped) + 0x18),
        ("dmap-beyond-ram", dmap(m.max_pa + 3 * MIB)),
    ]
    if m.image_free_va:
        cands.append(("invalid-pte", m.image_free_va))
    if m.segments[0][0] > m.dmap_phys_base:
        cands.append(("dmap-below-ram", DMAP_MIN_ADDRESS + 0x10))
    cands += [("pte-to-physical-hole", va + 0x30) for va in m.hole_vas]
    cands += [("pte-to-nodump-page", va) for va in m.nodump_vas]
    if m.l1_va:
        cands.append(("l1-block-hole", m.l1_va + 0x10 if m.l1_ram else m.l1_va + (1 << 29)))
        cands.append(("l1-block-not-dumped", m.l1_va + m.l1_ram))
        cands.append(("invalid-pde", m.tail_va + l2 + 0x40))
    cands.append(("below-kernbase", KERNBASE - 1))
    holes, kinds = pick_holes(space, cands)
    return regions, holes, kinds


__all__ = ["AARCH64_ERAS", "AARCH64_FORMATS", "build_aarch64", "minidump_truth", "walk"]
