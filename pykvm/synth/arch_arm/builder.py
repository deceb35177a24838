"""``build_arm``: write a synthetic arm kernel and vmcore and compute their ground truth."""

from __future__ import annotations

import os
import pathlib
from collections.abc import Callable
from dataclasses import dataclass

from .. import elfwriter as ew
from .._prng import Rng
from ..cmodel import ARMV7, ARMV7EB, Target
from ..elfwriter import ByteOrder
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
from ..typeinfo import check_type_options, kernel_type_info, with_kernel_data
from .dumps import (
    MINIDUMP_MMU_FORMAT_V4,
    MINIDUMP_MMU_FORMAT_V6,
    plan_elf_core,
    plan_minidump,
    write_elf_core,
    write_minidump,
)
from .machine import (
    ARM_VECTORS_HIGH,
    KERNBASE,
    L1_SIZE,
    L2_L_SIZE,
    MIB,
    PAGE_SIZE,
    PT2MAP,
    ArmMachine,
)


@dataclass(frozen=True)
class Format:
    """What one format name means: pmap flavour, byte order, dump kind."""

    pmap: str
    byteorder: ByteOrder
    #: minidump header version (1 or 2), or 0 for a full dump
    version: int
    #: full dumps: write the PT_DUMP_DELTA program header
    delta: bool = True


#: every format, in :data:`ARM_FORMATS` order
FORMAT_TABLE: dict[str, Format] = {
    "minidump": Format("v6", "little", 2),
    "minidump-be": Format("v6", "big", 2),
    "minidump-v1": Format("v6", "little", 1),
    "minidump-v4": Format("v4", "little", 1),
    "minidump-v4-be": Format("v4", "big", 1),
    "elf": Format("v6", "little", 0),
    "elf-be": Format("v6", "big", 0),
    "elf-nodelta": Format("v6", "little", 0, delta=False),
    "elf-v4": Format("v4", "little", 0),
    "elf-v4-be": Format("v4", "big", 0),
}
ARM_FORMATS = tuple(FORMAT_TABLE)

#: FreeBSD versions (``types`` eras) with a kernel of each pmap flavour: pmap-v6
#: (armv6/armv7; armv7 is still supported in 15.0) and the v4 pmap of ARMv4/v5 (``arm``,
#: ``armeb``), whose kernels were removed before FreeBSD 13.0 (the last v4-pmap kernels
#: are FreeBSD 12's; see the package docstring)
TYPE_ERAS: dict[str, tuple[str, ...]] = {
    "v6": ("10", "11", "12", "13", "14", "15"),
    "v4": ("10", "11", "12"),
}


def type_target(fmt: str) -> Target:
    """The C ABI of a format's kernel: ARMv7 EABI in the format's byte order (``armeb``
    for big-endian; ARMv5 EABI kernels have the same type layout)."""
    return ARMV7EB if FORMAT_TABLE[fmt].byteorder == "big" else ARMV7


def build_arm(
    directory: str | os.PathLike[str],
    seed: int = 0,
    fmt: str = "minidump",
    *,
    kernel_name: str = "kernel",
    core_name: str = "vmcore",
    kva_tail_mib: int = 0,
    kernel_l1pa: str = "auto",
    extra_symbols: int = 0,
    types: str | None = None,
    era: str | None = None,
    cp_time_symbol: bool = False,
    debug_name: str = "kernel.debug",
) -> SynthDump:
    """Write ``directory/kernel`` and ``directory/vmcore`` for machine ``seed``; return them.

    Arguments:
        directory: an existing directory to write into.
        seed: selects the machine; the same seed always gives byte-identical files.
        fmt: one of :data:`ARM_FORMATS`.
        kernel_name, core_name: file names inside ``directory``.
        kva_tail_mib: 1..3 makes ``kernel_vm_end - KERNBASE`` that many MiB more than a
            multiple of 4 MiB, as ``pmap_growkernel()`` (1 MiB steps) leaves it on a real
            system: the minidump PTE section is then not a whole number of pages, and the
            kernel writes it unpadded (page data right after it).  0 (default): a multiple
            of 4 MiB, where padded and unpadded layouts coincide.
        kernel_l1pa: the value of the ``kernel_l1pa`` variable: ``"auto"`` (what the pmap
            stores: the L1 table's virtual address for pmap-v6, its physical address for
            the v4 pmap), ``"physical"`` or ``"virtual"``.
        extra_symbols: add this many filler symbols to the kernel's symbol table.
        types: type information and kernel data, as for ``build_amd64``: ``"ctf-v3"``,
            ``"ctf-v2"``, ``"ctf-v3-raw"`` (``.SUNW_ctf`` in the kernel), ``"dwarf"`` (a
            separate ``directory/<debug_name>``) or None (the default: no type
            information, no kernel data; files byte-identical to builds before the
            option existed).  With types the kernel data of
            :mod:`pykvm.synth.kerneldata`, laid out with the seed's
            :class:`~pykvm.synth.cmodel.LayoutTruth` of :func:`type_target` (in the
            format's byte order; ``truth.type_layout``, values in ``truth.kernel_data``),
            lives in a kernel-map arena every format dumps.
        era: FreeBSD major version of the types (only with ``types``): ``"10"`` ...
            ``"15"`` for the pmap-v6 formats, ``"10"`` ... ``"12"`` for the v4 ones
            (:data:`TYPE_ERAS`); default chosen by the seed among those.
        cp_time_symbol: also define the old ``cp_time`` array (only with ``types``).
        debug_name: the DWARF file's name (``types="dwarf"``).

    Raises:
        ValueError: unknown format, bad option values, or a types era without a kernel
            of the format's pmap flavour.
    """
    if fmt not in FORMAT_TABLE:
        raise ValueError(f"unknown arm dump format {fmt!r}; expected one of {ARM_FORMATS}")
    f = FORMAT_TABLE[fmt]
    check_type_options(types, era, cp_time_symbol)
    eras = TYPE_ERAS[f.pmap]
    if era is not None and era not in eras:
        what = "ARMv4/v5 (v4 pmap) kernels left FreeBSD in 13" if f.pmap == "v4" else "arm"
        raise ValueError(f"unknown era {era!r} for {fmt}: expected one of {eras} ({what})")
    if types is not None and era is None:
        era = Rng(seed, f"arm-{f.pmap}-types-era").choice(eras)
    tinfo = kernel_type_info(seed, type_target(fmt), types, era)
    layout_truth = tinfo.layout if tinfo is not None else None
    machine = ArmMachine(
        seed,
        pmap=f.pmap,
        byteorder=f.byteorder,
        kva_tail_mib=kva_tail_mib,
        kernel_l1pa=kernel_l1pa,
        extra_symbols=extra_symbols,
        types=layout_truth,
        cp_time_symbol=cp_time_symbol,
        ctf_section=tinfo.ctf_section if tinfo is not None else None,
    )
    root = pathlib.Path(directory)
    kernel_path = root / kernel_name
    core_path = root / core_name
    kernel_path.write_bytes(machine.kernel.file_bytes())
    debug_path = tinfo.write_debug(root / debug_name) if tinfo is not None else None
    if f.version:
        plan = plan_minidump(machine, f.version)
        write_minidump(str(core_path), plan, machine)
        truth = _minidump_truth(machine, plan, fmt)
    else:
        core_plan = plan_elf_core(machine, f.delta)
        write_elf_core(str(core_path), core_plan, machine)
        truth = _elf_truth(machine, core_plan, fmt)
    truth = with_kernel_data(truth, layout_truth, machine.kdata)
    return SynthDump(
        kernel=kernel_path, core=core_path, arch="arm", fmt=fmt, truth=truth, debug=debug_path
    )


# ---------------------------------------------------------------------------- truth
def _extras(machine: ArmMachine) -> dict[str, int]:
    return {
        "kernel_l1pa": machine.kernel_l1pa,
        "l1pt_pa": machine.l1_pa,
        "l1pt_va": machine.l1_va,
        "physaddr": machine.physaddr,
        "kernvirtaddr": machine.kernvirtaddr,
        "mmuformat": MINIDUMP_MMU_FORMAT_V6 if machine.v6 else MINIDUMP_MMU_FORMAT_V4,
        "arch": 7 if machine.v6 else 5,
    }


def _make_truth(
    machine: ArmMachine,
    *,
    fmt: str,
    version: int,
    dumped_pages: int,
    space: AddressSpace,
    offsets: Callable[[int], int],
    walk: list[WalkPage],
    phdrs: list[ew.Phdr],
    layout: dict[str, int],
) -> GroundTruth:
    regions, holes, kinds = _samples(machine, space, fmt)
    return make_truth(
        machine.kernel,
        fmt=fmt,
        version=version,
        kernbase=KERNBASE,
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
        kernphys=machine.kernphys,
        kernel_vm_end=machine.kernel_vm_end,
        extras=_extras(machine),
    )


def _minidump_truth(machine: ArmMachine, plan: MinidumpPlan, fmt: str) -> GroundTruth:
    ranges = leaf_ranges(machine.leaves, KERNBASE, machine.kernel_vm_end)
    space = AddressSpace(ranges, plan.readable(), machine.memory)
    return _make_truth(
        machine,
        fmt=fmt,
        version=plan.version,
        dumped_pages=len(plan.pfns),
        space=space,
        offsets=plan.offset_of,
        walk=_walk(machine, plan),
        phdrs=[],
        layout=dict(plan.layout),
    )


def _elf_truth(machine: ArmMachine, plan: ElfCorePlan, fmt: str) -> GroundTruth:
    space = AddressSpace(leaf_ranges(machine.leaves), machine.segments, machine.memory)
    return _make_truth(
        machine,
        fmt=fmt,
        version=0,
        dumped_pages=machine.physmem // PAGE_SIZE,
        space=space,
        offsets=plan.offset_of_paddr,
        walk=[],
        phdrs=list(plan.phdrs),
        layout={},
    )


def _walk(machine: ArmMachine, plan: MinidumpPlan) -> list[WalkPage]:
    """The ``kvm_walk_pages`` records of a minidump, from the machine's leaves.

    One record per 4 KiB page of every leaf in ``[KERNBASE, kernel_vm_end)``, in address
    order (sections, supersections and 64 KiB pages are split into their 4 KiB pages, as
    the flat PTE section does): ``kp_paddr`` the page's physical address, ``kp_kmap_vaddr``
    its VA, no direct map, the leaf's protection, the page's file offset or -1, 4096.
    Fault entries (type 0, whatever their other bits) give no record.
    """
    out: list[WalkPage] = []
    for leaf in machine.leaves:
        if not KERNBASE <= leaf.va < machine.kernel_vm_end:
            continue
        for off in range(0, leaf.size, PAGE_SIZE):
            pa = leaf.pa + off
            out.append(
                WalkPage(2, pa, leaf.va + off, 0, leaf.prot, plan.offset_of(pa), PAGE_SIZE)
            )
    return out


def _samples(
    machine: ArmMachine, space: AddressSpace, fmt: str
) -> tuple[list[tuple[int, bytes]], list[int], list[str]]:
    """Readable regions and failing addresses for this format's view of the machine."""
    m = machine
    k = m.kernel
    ps = PAGE_SIZE
    want = kernel_regions(k, ("kernel_l1pa", "ostype", "hz"))
    want += [
        (m.msgbuf_va, len(m.msgbuf)),
        (m.run_va + 100, m.run_len * ps - 200),
        (m.l1_va, L1_SIZE),
        (m.section_va, ps),
        (m.section_va + MIB - 8, 16),  # section -> straddling section
        (m.straddle_va, ps),
        (m.straddle_va + (m.straddle_end - m.straddle_pa) - ps, ps),
        (PT2MAP + (KERNBASE >> 22) * ps, ps),  # full dumps of pmap-v6: the PT2MAP
        (ARM_VECTORS_HIGH, ps),
    ]
    want += [(va, ps) for va in m.ro_vas + m.text_vas]
    if m.page0_va:
        want.append((m.page0_va, ps))
    if not m.v6:
        want += [(va, ps) for va in m.large_vas]
        want += [
            (m.large_vas[0] + L2_L_SIZE - 8, 16),
            (m.large_straddle_va, ps),
            (m.super_va, ps),
            (m.super_va + MIB - 8, 16),
            (m.super_va + (m.segments[0][1] - m.super_pa) - ps, ps),
        ]
    want += leaf_regions(m.leaves, ps, 32)
    must = [k.image_va, k.var_address("version"), m.msgbuf_va, m.section_va]
    regions = pick_regions(space, want, must, fmt)

    cands: list[tuple[str, int]] = [
        ("user", 0x1000),
        ("below-kernbase", PT2MAP + 0x10),
        ("invalid-pte", m.zero_va + 0x24),
        ("fault-descriptor", m.fault_va + 4),
        ("invalid-pte", m.empty_mib_va + 0x3000),
        ("superpage-hole", m.straddle_va + (m.straddle_end - m.straddle_pa) + 0x10),
        ("above-kva", m.kernel_vm_end + 0x10),
        ("invalid-pde", 0xF0000000 + 0x100),
        ("device-section", m.dev_va + 0x20),
        ("invalid-pte", ARM_VECTORS_HIGH + ps),
        ("above-4gib", (1 << 32) + KERNBASE + 0x1000),
        ("above-4gib", (1 << 32) + 0x1000),
    ]
    cands += [("pte-to-physical-hole", va + 8) for va in m.hole_pte_vas]
    if m.page0_va:
        cands.append(("pte-to-page-zero", m.page0_va + 0x10))
    if not m.v6:
        cands += [
            (
                "large-page-hole",
                m.large_straddle_va + (m.large_straddle_end - m.large_straddle_pa) + 0x10,
            ),
            ("supersection-hole", m.super_va + (m.segments[0][1] - m.super_pa) + 0x10),
        ]
    holes, kinds = pick_holes(space, cands)
    return regions, holes, kinds
