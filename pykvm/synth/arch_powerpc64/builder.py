"""``build_powerpc64``: synthetic powerpc64 kernels, minidumps and full dumps with their truth."""

from __future__ import annotations

import dataclasses
import os
import pathlib

from ..arch_powerpc.kdata import ERAS_POWERPC64, ERAS_POWERPC64LE
from ..arch_powerpc.virtcore import VirtCoreMachine, VirtTarget, build_full_dump
from ..cmodel import POWERPC64, POWERPC64LE
from ..minidump import MinidumpPlan, write_minidump
from ..truth import (
    AddressSpace,
    GroundTruth,
    SynthDump,
    kernel_regions,
    leaf_ranges,
    leaf_regions,
    make_truth,
    pick_holes,
    pick_regions,
)
from ..typeinfo import check_type_options, kernel_type_info, pick_era, with_kernel_data
from .dumps import plan_minidump
from .hpt import MMUS, VM_PAGE_BASE, HptMachine
from .machine import (
    DMAP_BASE_ADDRESS,
    DMAP_MAX_ADDRESS,
    LARGE_PAGE,
    OLD_VM_MAX_KERNEL_ADDRESS,
    OLD_VM_MIN_KERNEL_ADDRESS,
    PAGE_SHIFT,
    PAGE_SIZE,
    SEGMENT_LENGTH,
    VM_MAX_KERNEL_ADDRESS,
    VM_MIN_KERNEL_ADDRESS,
    Ppc64Machine,
    make_spec,
)
from .radix import L2_SIZE, L3_SIZE, RadixMachine

#: formats a correct reader can read (the registry runs its contract on them)
POWERPC64_FORMATS = (
    "minidump-hpt",
    "minidump-hpt-le",
    "minidump-radix",
    "minidump-radix-le",
    "elf",
    "elf-le",
    "elf-kdh",
    "elf-le-kdh",
)
#: debug.minidump=0 full dumps (physical chunks): nothing translates
POWERPC64_PHYS_FORMATS = ("elf-phys", "elf-le-phys")
#: ``extras["mmu"]`` codes
MMU_CODES = {"mmu_g5": 0, "mmu_phyp": 1, "mmu_radix": 2}
U64 = (1 << 64) - 1


def build_powerpc64(
    directory: str | os.PathLike[str],
    seed: int = 0,
    fmt: str = "minidump-hpt",
    *,
    mmu: str | None = None,
    hw_direct_map: bool | None = None,
    pteg_count: int | None = None,
    relocated: bool | None = None,
    extra_symbols: int = 0,
    types: str | None = None,
    era: str | None = None,
    cp_time_symbol: bool = False,
    debug_name: str = "kernel.debug",
) -> SynthDump:
    """Write ``directory/kernel`` and ``directory/vmcore`` for machine ``seed``.

    Arguments:
        fmt: one of :data:`POWERPC64_FORMATS` or :data:`POWERPC64_PHYS_FORMATS`.
        mmu: HPT minidumps only: ``mmu_phyp`` (default; the table comes from the
            hypervisor and is dumped in the kernel's byte order) or ``mmu_g5`` (bare
            metal; the table is in RAM and dumped big-endian).
        hw_direct_map: HPT minidumps only (default True): the direct map in 16 MiB pages.
        pteg_count: HPT minidumps only: the ``PTEGCOUNT`` option, a power of two from
            2048 to 1048576 (default: from the RAM size, as the kernel computes it;
            65536 or more makes the table 8 MiB or more).
        relocated: minidumps only: load the kernel away from physical 0x100000
            (``startkernel`` != 0xc000000000100100); default: the seed decides.
        extra_symbols: filler symbols added to the kernel's symbol table.
        types, era, cp_time_symbol, debug_name: type information and kernel data, as in
            :func:`~pykvm.synth.arch_amd64.builder.build_amd64` (``types`` one of
            ``"ctf-v3"``, ``"ctf-v2"``, ``"ctf-v3-raw"``, ``"dwarf"`` or None, the default,
            which leaves every file byte-identical to builds before the option existed),
            for every format: the kernel's types are the ``powerpc64`` target's
            (big-endian formats) or ``powerpc64le``'s (``-le`` formats), and the kernel
            data (``truth.type_layout``, ``truth.kernel_data``) sits in a kernel-data
            arena that the format dumps (minidumps: mapped kernel VA; ELF: the third
            chunk, after the run of kernel pages).  Eras: 10 to 15 big-endian, 13 to 15
            little-endian (powerpc64le first shipped in FreeBSD 13); None picks one by
            the seed.

    Raises:
        ValueError: unknown format, an option the format does not take, bad values,
            an era in which the kernel flavour did not exist.
    """
    every = POWERPC64_FORMATS + POWERPC64_PHYS_FORMATS
    if fmt not in every:
        raise ValueError(f"unknown powerpc64 dump format {fmt!r}; expected one of {every}")
    hpt = fmt.startswith("minidump-hpt")
    if not hpt and (mmu is not None or hw_direct_map is not None or pteg_count is not None):
        raise ValueError("mmu, hw_direct_map and pteg_count apply to HPT minidumps only")
    if not fmt.startswith("minidump") and relocated is not None:
        raise ValueError("relocated applies to minidumps only (full dumps are FreeBSD 12)")
    if mmu is not None and mmu not in MMUS:
        raise ValueError(f"mmu must be one of {MMUS}")
    if extra_symbols < 0:
        raise ValueError("extra_symbols must be >= 0")
    byteorder = "little" if "-le" in fmt else "big"
    check_type_options(types, era, cp_time_symbol)
    if types is not None:
        if byteorder == "little":
            era = pick_era(seed, "powerpc64le", era, ERAS_POWERPC64LE)
        else:
            era = pick_era(seed, "powerpc64", era, ERAS_POWERPC64)
    tinfo = kernel_type_info(seed, POWERPC64LE if byteorder == "little" else POWERPC64, types, era)
    layout = tinfo.layout if tinfo is not None else None
    ctf_section = tinfo.ctf_section if tinfo is not None else None
    root = pathlib.Path(directory)
    debug = tinfo.write_debug(root / debug_name) if tinfo is not None else None
    if fmt.startswith("elf"):
        spec = make_spec(byteorder, old=True)
        target = VirtTarget(
            spec=spec,
            kva_base=OLD_VM_MIN_KERNEL_ADDRESS,
            kva_max=OLD_VM_MAX_KERNEL_ADDRESS,
            kstack_pages=4,
            has_noexec=True,
            architecture=spec.uname_machine_arch,
            cpu="IBM POWER8E revision 2.1, 3425.00 MHz",
        )
        vm = VirtCoreMachine(
            target,
            seed,
            extra_symbols=extra_symbols,
            types=layout,
            cp_time_symbol=cp_time_symbol,
            ctf_section=ctf_section,
        )
        dump = build_full_dump(
            vm,
            directory,
            fmt,
            virtual=not fmt.endswith("-phys"),
            dump_header=fmt.endswith("-kdh"),
            arch="powerpc64",
        )
        return dataclasses.replace(dump, debug=debug) if debug is not None else dump
    spec = make_spec(byteorder)
    machine: HptMachine | RadixMachine
    if hpt:
        mmu_name = mmu or "mmu_phyp"
        machine = HptMachine(
            spec,
            seed,
            mmu=mmu_name,
            hw_direct_map=True if hw_direct_map is None else hw_direct_map,
            pteg_count=pteg_count,
            relocated=relocated,
            extra_symbols=extra_symbols,
            types=layout,
            cp_time_symbol=cp_time_symbol,
            ctf_section=ctf_section,
        )
        hdm = int(machine.hw_direct_map)
    else:
        mmu_name = "mmu_radix"
        machine = RadixMachine(
            spec,
            seed,
            relocated=relocated,
            extra_symbols=extra_symbols,
            types=layout,
            cp_time_symbol=cp_time_symbol,
            ctf_section=ctf_section,
        )
        hdm = 1
    plan = plan_minidump(
        machine,
        mmu_name=mmu_name,
        hw_direct_map=hdm,
        pages=machine.minidump_pages(),
        pmap=machine.pmap_section(),
    )
    kernel_path = root / "kernel"
    core_path = root / "vmcore"
    kernel_path.write_bytes(machine.kernel.file_bytes())
    write_minidump(str(core_path), plan, machine.memory.page)
    truth = _minidump_truth(machine, plan, fmt, mmu_name)
    truth = with_kernel_data(truth, layout, machine.kdata)
    return SynthDump(
        kernel=kernel_path,
        core=core_path,
        arch="powerpc64",
        fmt=fmt,
        truth=truth,
        debug=debug,
    )


# ---------------------------------------------------------------------------- truth
def relocation_aliases(
    ranges: list[tuple[int, int, int]], disp: int
) -> list[tuple[int, int, int]]:
    """The ranges below the direct map that the readers' relocation rule
    (``va < dmapbase: va += startkernel - 0x100100``) carries onto ``ranges``."""
    out: list[tuple[int, int, int]] = []
    for start, end, pa in ranges:
        lo, hi = start - disp, end - disp
        if hi <= 0 or lo >= DMAP_BASE_ADDRESS:
            continue
        clip = max(0, -lo)
        out.append((lo + clip, min(hi, DMAP_BASE_ADDRESS), pa + clip))
    return out


def minidump_space(machine: Ppc64Machine, plan: MinidumpPlan) -> AddressSpace:
    """The minidump's view: direct map, kernel-VA leaves, and their relocation aliases."""
    direct = [(DMAP_BASE_ADDRESS, DMAP_MAX_ADDRESS + 1, 0)]
    kva = leaf_ranges(machine.leaves, VM_MIN_KERNEL_ADDRESS)
    ranges = direct + kva
    ranges += relocation_aliases(ranges, machine.disp & U64)
    return AddressSpace(ranges, plan.readable(), machine.memory)


def _minidump_truth(
    machine: HptMachine | RadixMachine, plan: MinidumpPlan, fmt: str, mmu_name: str
) -> GroundTruth:
    space = minidump_space(machine, plan)
    regions, holes, kinds = _samples(machine, space, plan, fmt)
    if isinstance(machine, HptMachine):
        hw_direct_map, pteg_count = int(machine.hw_direct_map), machine.hpt.count
        pmap_be = mmu_name == "mmu_g5" or machine.spec.byteorder == "big"
    else:
        hw_direct_map, pteg_count, pmap_be = 1, 0, True
    extras = {
        "startkernel": machine.startkernel,
        "endkernel": machine.endkernel,
        "mmu": MMU_CODES[mmu_name],
        "hw_direct_map": hw_direct_map,
        "pteg_count": pteg_count,
        "pmap_big_endian": int(pmap_be),
        "hdr_dmapend": DMAP_MAX_ADDRESS,
        "kernend": VM_MAX_KERNEL_ADDRESS,
        "relocated": int(machine.relocated),
    }
    return make_truth(
        machine.kernel,
        fmt=fmt,
        version=plan.version,
        kernbase=VM_MIN_KERNEL_ADDRESS,
        dump_avail=machine.segments,
        dumped_pages=len(plan.pfns),
        msgbuf=machine.msgbuf,
        space=space,
        offsets=plan.offset_of,
        regions=regions,
        holes=holes,
        hole_kinds=kinds,
        walk=machine.walk(plan.offset_of),
        layout=dict(plan.layout),
        leaves=machine.leaves,
        page_size=PAGE_SIZE,
        vm_min_kernel_address=VM_MIN_KERNEL_ADDRESS,
        dmapbase=DMAP_BASE_ADDRESS,
        dmapend=DMAP_MAX_ADDRESS + 1,
        kernphys=machine.kernphys,
        kernel_vm_end=machine.kernel_vm_end,
        kerndisp=machine.kerndisp,
        extras=extras,
    )


def _samples(
    machine: HptMachine | RadixMachine, space: AddressSpace, plan: MinidumpPlan, fmt: str
) -> tuple[list[tuple[int, bytes]], list[int], list[str]]:
    k = machine.kernel
    dmap = DMAP_BASE_ADDRESS
    disp = machine.disp
    want = kernel_regions(
        k, ("hw_direct_map", "__startkernel", "msgbuf_phys", "ostype", "hz", "physmem")
    )
    want += [
        (machine.startkernel, 64),
        (dmap + machine.kernphys, 2 * PAGE_SIZE),
        (machine.msgbuf_va, len(machine.msgbuf)),
        (dmap + machine.msgbuf_pa, len(machine.msgbuf)),
        (machine.msgbuf_va - disp, 64),
        (machine.kstack_va, PAGE_SIZE),
        (machine.dpcpu_va - 8, 16),
        (machine.run_va + 100, machine.run_len * PAGE_SIZE - 200),
        (k.var_address("dump_avail"), k.var_size("dump_avail")),
    ]
    want += [(va, PAGE_SIZE) for va in machine.kind_vas.values()]
    want += [(dmap + (pfn << PAGE_SHIFT), PAGE_SIZE) for pfn in sorted(machine.extras)[:6]]
    want += leaf_regions(machine.leaves, PAGE_SIZE, 32)
    hs, he = machine.segments[-1]
    cands: list[tuple[str, int]] = [
        ("invalid-pte", machine.guard_va + 0x10),
        ("invalid-pte", machine.crashdumpmap + PAGE_SIZE),
        ("invalid-pte", machine.free_va + 8),
        ("above-kva", VM_MAX_KERNEL_ADDRESS + 1 + PAGE_SIZE),
        ("dmap-beyond-ram", dmap + (1 << 40)),
        ("user", 0x4000000000000000),
        ("user", DMAP_MAX_ADDRESS + 1 - disp - 0x1000),
    ]
    cands += [("pte-to-physical-hole", va + 0x40) for va in machine.hole_vas]
    cands += [("dmap-physical-hole", dmap + pa) for pa in machine.hole_addresses()]
    dumped = set(plan.pfns)
    probe = machine.undumped_ram(dumped)
    cands.append(("dmap-not-dumped", dmap + probe))
    cands.append(("dmap-not-dumped", dmap + probe - disp))
    if isinstance(machine, HptMachine):
        pa_off = hs - machine.page_array_pa
        want += [
            (VM_PAGE_BASE + pa_off, PAGE_SIZE),
            (VM_PAGE_BASE + pa_off + PAGE_SIZE - 8, 16),
            (VM_PAGE_BASE + (he - machine.page_array_pa) - PAGE_SIZE, PAGE_SIZE),
            (VM_PAGE_BASE + pa_off - disp, 32),
        ]
        want += [(va, PAGE_SIZE) for va in machine.collide_vas]
        cands += [
            ("unmapped-kva", VM_MIN_KERNEL_ADDRESS + 126 * SEGMENT_LENGTH + 0x3000)
            if not any(
                VM_MIN_KERNEL_ADDRESS + 126 * SEGMENT_LENGTH <= va
                < VM_MIN_KERNEL_ADDRESS + 127 * SEGMENT_LENGTH
                for va in machine.collide_vas
            )
            else ("unmapped-kva", VM_MIN_KERNEL_ADDRESS + 127 * SEGMENT_LENGTH + 0x3000),
            ("superpage-hole", VM_PAGE_BASE + 0x10),
            ("superpage-hole", VM_PAGE_BASE + (he - machine.page_array_pa) + 0x10),
            ("unmapped-kva", VM_PAGE_BASE + 3 * LARGE_PAGE),
            ("above-kva", 0xE000000000000000),
        ]
        must = [k.var_address("version"), machine.msgbuf_va, VM_PAGE_BASE + pa_off]
    else:
        g_off = hs - machine.high_gib
        sp_end = machine.straddle_seg_end - machine.straddle_pa
        want += [
            (machine.sp_va, PAGE_SIZE),
            (machine.sp_va + L3_SIZE - PAGE_SIZE - 8, PAGE_SIZE + 8),
            (machine.straddle_va, PAGE_SIZE),
            (machine.straddle_va + sp_end - PAGE_SIZE, PAGE_SIZE),
            (machine.g1_va + g_off, PAGE_SIZE),
            (machine.g1_va + g_off + PAGE_SIZE - 4, 8),
            (machine.g1_va + (he - machine.high_gib) - PAGE_SIZE, PAGE_SIZE),
        ]
        want += [(dmap + pa, PAGE_SIZE) for pa in machine.table_pages()[:4]]
        cands += [
            ("invalid-pde", machine.invalid_pde_va + 0x2000),
            ("unmapped-kva", VM_MIN_KERNEL_ADDRESS + 5 * L2_SIZE + 0x1000),
            ("superpage-hole", machine.straddle_va + sp_end + 0x10),
            ("1g-page-hole", machine.g1_va + 0x10),
            ("1g-page-hole", machine.g1_va + L2_SIZE - 8),
            ("ea-out-of-range", 0xC010000000000000 + machine.kernphys),
            ("ea-out-of-range", 0xD000000000000000 + machine.msgbuf_pa),
        ]
        must = [k.var_address("version"), machine.msgbuf_va, machine.sp_va]
    regions = pick_regions(space, want, must, fmt)
    holes, kinds = pick_holes(space, cands)
    return regions, holes, kinds


__all__ = ["POWERPC64_FORMATS", "POWERPC64_PHYS_FORMATS", "build_powerpc64"]
