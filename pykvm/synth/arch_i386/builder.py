"""``build_i386``: write a synthetic i386 kernel and vmcore and compute their ground truth."""

from __future__ import annotations

import os
import pathlib
from collections.abc import Callable

from .. import elfwriter as ew
from .._prng import Rng
from ..cmodel import I386
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
from .dumps import plan_elf_core, plan_minidump, write_elf_core, write_minidump
from .machine import ERAS, PAGE_SIZE, PG_V, I386Machine, entry_prot, pmap_variables

I386_FORMATS = (
    "minidump-pae",
    "minidump-nopae",
    "minidump-v1-pae",
    "minidump-v1-nopae",
    "elf-pae",
    "elf-nopae",
)

#: FreeBSD versions (``types`` eras) with an i386 kernel: i386 was retired in 15.0
#: ("The venerable 32-bit hardware platforms i386, armv6, and 32-bit powerpc have been
#: retired", FreeBSD 15.0-RELEASE release notes)
I386_TYPE_ERAS = ("10", "11", "12", "13", "14")


def parse_format(fmt: str) -> tuple[str, int, bool]:
    """``(kind, minidump version or 0, pae)`` of an i386 format name."""
    if fmt not in I386_FORMATS:
        raise ValueError(f"unknown i386 dump format {fmt!r}; expected one of {I386_FORMATS}")
    pae = fmt.endswith("-pae")
    if fmt.startswith("elf"):
        return "elf", 0, pae
    return "minidump", 1 if "-v1-" in fmt else 2, pae


def build_i386(
    directory: str | os.PathLike[str],
    seed: int = 0,
    fmt: str = "minidump-pae",
    *,
    era: int | str | None = None,
    highmem: bool | None = None,
    extra_symbols: int = 0,
    kernel_name: str = "kernel",
    core_name: str = "vmcore",
    types: str | None = None,
    cp_time_symbol: bool = False,
    debug_name: str = "kernel.debug",
) -> SynthDump:
    """Write ``directory/kernel`` and ``directory/vmcore`` for machine ``seed``; return them.

    Arguments:
        directory: an existing directory to write into.
        seed: selects the machine; the same seed always gives byte-identical files.
        fmt: one of :data:`I386_FORMATS`: ``minidump-pae`` / ``minidump-nopae`` (header
            version 2, FreeBSD 13+), ``minidump-v1-pae`` / ``minidump-v1-nopae`` (version 1,
            FreeBSD 12 and earlier), ``elf-pae`` / ``elf-nopae`` (full dumps).
        era: an int: the kernel's memory layout (see :mod:`.machine`): 13 (``KERNBASE``
            = 8 MiB, both pmaps in one kernel), 12 (``KERNBASE`` = 8 MiB, one pmap) or 11
            (``KERNBASE`` = 0xc0000000).  Default 13, or 11 for the version 1 minidumps.
            Version 2 minidumps need era 13, version 1 minidumps era 11 or 12.
            A string (only with ``types``, as for ``build_amd64``): the FreeBSD major
            version of the types, ``"10"`` ... ``"14"`` (:data:`I386_TYPE_ERAS`; i386
            left FreeBSD in 15.0); the memory layout then follows it as far as the format
            allows (13+ -> 13, 12 -> 12, 10/11 -> 11; a version 2 minidump is always
            layout 13, a version 1 minidump at most 12).  Without a string the types'
            era is chosen by the seed among :data:`I386_TYPE_ERAS`.
        highmem: PAE minidumps only: add a RAM range above 4 GiB with mappings onto it
            (default True for PAE minidumps, False otherwise).
        extra_symbols: add this many filler symbols to the kernel's symbol table.
        kernel_name, core_name: file names inside ``directory``.
        types: type information and kernel data, as for ``build_amd64``: ``"ctf-v3"``,
            ``"ctf-v2"``, ``"ctf-v3-raw"`` (``.SUNW_ctf`` in the kernel), ``"dwarf"`` (a
            separate ``directory/<debug_name>``) or None (the default: no type
            information, no kernel data; files byte-identical to builds before the
            option existed).  With types the kernel data of
            :mod:`pykvm.synth.kerneldata` (laid out with the seed's i386
            :class:`~pykvm.synth.cmodel.LayoutTruth`, ``truth.type_layout``; values in
            ``truth.kernel_data``) lives in a kernel-map arena every format dumps.
        cp_time_symbol: also define the old ``cp_time`` array (only with ``types``).
        debug_name: the DWARF file's name (``types="dwarf"``).

    Raises:
        ValueError: unknown format, an era the format's kernel never had, highmem where
            it cannot be (non-PAE, full dumps), bad type options or a types era without
            an i386 kernel.
    """
    kind, version, pae = parse_format(fmt)
    types_era: str | None = None
    if isinstance(era, str):
        types_era = era
        check_type_options(types, types_era, cp_time_symbol)
        if types_era not in I386_TYPE_ERAS:
            raise ValueError(
                f"unknown era {types_era!r} for i386: expected one of {I386_TYPE_ERAS} "
                "(i386 was retired in FreeBSD 15.0)"
            )
        era = _layout_era(int(types_era), version)
    check_type_options(types, types_era, cp_time_symbol)
    if types is not None and types_era is None:
        types_era = Rng(seed, "i386-types-era").choice(I386_TYPE_ERAS)
    if era is None:
        era = 11 if version == 1 else 13
    if era not in ERAS:
        raise ValueError(f"era must be one of {ERAS}")
    if version == 2 and era != 13:
        raise ValueError("version 2 minidumps are written by FreeBSD 13+ kernels (era 13)")
    if version == 1 and era == 13:
        raise ValueError("version 1 minidumps are written by FreeBSD 12 and earlier (era 11/12)")
    if highmem is None:
        highmem = kind == "minidump" and pae
    if highmem and (kind != "minidump" or not pae):
        raise ValueError("highmem needs a PAE minidump (ELF32 full dumps end at 4 GiB)")
    if extra_symbols < 0:
        raise ValueError("extra_symbols must be >= 0")
    tinfo = kernel_type_info(seed, I386, types, types_era)
    layout_truth = tinfo.layout if tinfo is not None else None
    machine = I386Machine(
        seed,
        era=era,
        pae=pae,
        highmem=highmem,
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
    if kind == "elf":
        core_plan = plan_elf_core(machine)
        write_elf_core(str(core_path), core_plan, machine)
        truth = _elf_truth(machine, core_plan, fmt)
    else:
        plan = plan_minidump(machine, version)
        write_minidump(str(core_path), plan, machine)
        truth = _minidump_truth(machine, plan, fmt)
    truth = with_kernel_data(truth, layout_truth, machine.kdata)
    return SynthDump(
        kernel=kernel_path, core=core_path, arch="i386", fmt=fmt, truth=truth, debug=debug_path
    )


def _layout_era(freebsd: int, version: int) -> int:
    """The memory-layout era of a FreeBSD ``freebsd`` kernel, as near as the format allows.

    FreeBSD 13 and later -> 13, 12 -> 12, earlier -> 11; a version 2 minidump is only
    written by layout 13, a version 1 minidump only by 11 or 12.
    """
    layout = 13 if freebsd >= 13 else 12 if freebsd == 12 else 11
    if version == 2:
        return 13
    if version == 1:
        return min(layout, 12)
    return layout


# ---------------------------------------------------------------------------- truth
def _extras(machine: I386Machine) -> dict[str, int]:
    return {
        "era": machine.era,
        "pae": int(machine.pae),
        "IdlePTD": machine.ptd,
        "IdlePDPT": machine.pdpt,
        "KPTphys": machine.kptphys,
        "KERNend": machine.kernend,
        "nkpt": machine.nkpt,
        "kernload": machine.lay.kernload,
        "ptmap": machine.lay.ptmap,
    }


def _make_truth(
    machine: I386Machine,
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
    regions, holes, kinds = _samples(machine, space, fmt, version)
    return make_truth(
        machine.kernel,
        fmt=fmt,
        version=version,
        kernbase=machine.lay.kernbase,
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
        vm_min_kernel_address=machine.lay.vm_min_kernel_address,
        kernphys=machine.kernphys,
        kernel_vm_end=machine.kernel_vm_end,
        nkpt=machine.nkpt,
        extras=_extras(machine),
    )


def _minidump_truth(machine: I386Machine, plan: MinidumpPlan, fmt: str) -> GroundTruth:
    lo, hi = machine.lay.kernbase, machine.kernel_vm_end
    space = AddressSpace(leaf_ranges(machine.leaves, lo, hi), plan.readable(), machine.memory)
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


def _elf_truth(machine: I386Machine, plan: ElfCorePlan, fmt: str) -> GroundTruth:
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
        layout={"data_off": plan.phdrs[0].p_offset, "file_size": plan.file_size},
    )


def _walk(machine: I386Machine, plan: MinidumpPlan) -> list[WalkPage]:
    """The records ``_i386_minidump_walk_pages`` yields: one per valid entry of the PTE
    section, in index order (superpages appear as their fake 4 KiB entries), with no
    direct-map pass; ``kp_offset`` of the 4 KiB page, -1 when it is not dumped."""
    pg = machine.pg
    kernbase = machine.lay.kernbase
    out: list[WalkPage] = []
    index = 0
    for entries in machine.pte_pages():
        for pte in entries:
            if pte & PG_V:
                pa = pte & pg.pg_frame
                out.append(
                    WalkPage(
                        2,
                        pa,
                        kernbase + index * PAGE_SIZE,
                        0,
                        entry_prot(pte, pg.pae),
                        plan.offset_of(pa),
                        PAGE_SIZE,
                    )
                )
            index += 1
    return out


def _samples(
    machine: I386Machine, space: AddressSpace, fmt: str, version: int
) -> tuple[list[tuple[int, bytes]], list[int], list[str]]:
    """Pick readable regions and failing addresses for this format's view of the machine."""
    m = machine
    k = m.kernel
    lay, pg = m.lay, m.pg
    ps = PAGE_SIZE
    nbpdr = pg.nbpdr
    idle = pmap_variables(m.era, m.pae)
    want = kernel_regions(k, (*idle, "ostype", "hz", "kernel_vm_end", "dump_avail"))
    want += [
        (m.msgbuf_va, len(m.msgbuf)),
        (m.boot_va(m.ptd), pg.npgptd * ps),
        (m.boot_va(m.kptphys), ps),
        (m.boot_va(m.kstack_pa) + ps - 8, 16),
        (m.boot_va(m.vm86pa), ps),
        (m.kptmap_va, 2 * ps),
        (m.sp_va, ps),
        (m.sp_va + 0x7FF8, 16),
        (m.sp_va + nbpdr - ps, ps),
        (m.run_va + 100, m.run_len * ps - 200),
        (m.kernphys + m.kernel.image_len + lay.boot_va_offset, ps),
        # the image's superpage (era 12+) or 4 KiB pages (era 11) into the boot tables
        (m.boot_va(m.kernend) - 8, 16),
        # the recursive mapping: PTD page 0, and the first kernel page-table page
        (lay.ptmap + lay.ptdptdi * ps, ps),
        (lay.ptmap + (lay.kptdi + lay.nkpt - 1) * ps, ps),
        # low memory: the fixed map below KERNBASE (12+), or identity and KERNBASE + pa (11)
        (pg.lowptdi * nbpdr + 0x2000 if m.era >= 12 else 0x2000, ps),
        (lay.boot_va_offset + 0x2000 if m.era == 11 else pg.lowptdi * nbpdr + 0x7FF8, 16),
    ]
    if m.pae:
        want.append((m.boot_va(m.pdpt), 32))
    s0, e0 = m.mid0
    lo = max(m.straddle_pa, s0)
    want += [
        (m.straddle_va + (lo - m.straddle_pa), ps),
        (m.straddle_va + (e0 - m.straddle_pa) - ps, ps),
    ]
    want += [(va, ps) for va in m.bait_vas]
    for va in m.high_vas[:3]:
        want.append((va, ps))
    if m.highmem:
        hs, _ = m.high
        want.append((m.high_sp_va + (hs - m.high_sp_pa), 2 * ps))
    want += leaf_regions(m.leaves, ps)
    must = [k.image_va, k.var_address("version"), m.msgbuf_va, m.sp_va]
    regions = pick_regions(space, want, must, fmt)

    minidump = version > 0

    def kind_of(kind: str, va: int) -> str:
        if minidump and va < lay.kernbase:
            return "below-kernbase"
        if minidump and va >= m.kernel_vm_end and kind != "above-kva":
            return "above-kva"
        return kind

    cands: list[tuple[str, int]] = [
        ("invalid-pde", m.gap_va + 0x10),
        ("invalid-pte", m.cmap_va + 0x20),
        ("invalid-pte", m.crashdumpmap_va),
        ("invalid-pte", m.kmem_free_va + 8),
        ("invalid-pte", m.tail_free_va),
        ("above-kva", m.kernel_vm_end + 0x1000),
        ("above-kva", lay.ptmap + 0x40),
        ("unmapped-kva", lay.ptmap - nbpdr + 0x10),
        ("user", 0x40000000),
        # era 11: the identity map of the low superpage (a hole where 0x1000 is not RAM)
        ("null-page" if m.era >= 12 else "pte-to-physical-hole", 0x1000),
        ("superpage-hole", m.straddle_va + (e0 - m.straddle_pa) + 0x10),
    ]
    if m.guard_pa:
        cands.append(("invalid-pte", m.boot_va(m.guard_pa) + 0x80))
    if m.era >= 12:
        cands.append(("low-memory-map", pg.lowptdi * nbpdr + 0x3000))
        cands.append(("pte-to-physical-hole", pg.lowptdi * nbpdr + 0xA0000 + 0x10))
    else:
        cands.append(("pte-to-physical-hole", lay.kernbase + 0xA0000 + 0x10))
    if m.straddle_pa < s0:
        cands.append(("superpage-hole", m.straddle_va + 0x20))
    for va in m.hole_pte_vas:
        cands.append(("pte-to-physical-hole", va + 0x123))
    for va in m.nodump_vas:
        cands.append(("pte-to-nodump-page", va))
    if m.highmem:
        hs, _ = m.high
        if hs > m.high_sp_pa:
            cands.append(("superpage-hole", m.high_sp_va + 0x30))
    holes, kinds = pick_holes(space, [(kind_of(kind, va), va) for kind, va in cands])
    return regions, holes, kinds


__all__ = ["I386_FORMATS", "build_i386", "parse_format"]
