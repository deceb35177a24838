"""``build_mips``: write a synthetic mips kernel and minidump and compute their ground truth."""

from __future__ import annotations

import os
import pathlib

from .. import elfwriter as ew
from .._prng import Rng
from ..cmodel import (
    MIPS64,
    MIPS64EL,
    MIPS_N32,
    MIPS_O32,
    MIPSEL_N32,
    MIPSEL_O32,
    Target,
)
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
from .dumps import plan_mips_minidump, write_mips_minidump
from .machine import (
    ABIS,
    DEVICE_PA,
    MIB,
    MIPS_CCA_UNCACHED,
    PAGE_SIZE,
    PTE_V,
    MipsMachine,
    entry_prot,
)

#: ``minidump-<abi>-<be|le>`` (header version 2, FreeBSD 13) and ``...-v1`` (FreeBSD <= 12)
MIPS_FORMATS = tuple(
    f"minidump-{abi}-{order}{suffix}"
    for suffix in ("", "-v1")
    for abi in ("o32", "n32", "n64")
    for order in ("be", "le")
)

#: the C target of each (ABI, byte order)
TARGETS: dict[tuple[str, ew.ByteOrder], Target] = {
    ("o32", "big"): MIPS_O32,
    ("o32", "little"): MIPSEL_O32,
    ("n32", "big"): MIPS_N32,
    ("n32", "little"): MIPSEL_N32,
    ("n64", "big"): MIPS64,
    ("n64", "little"): MIPS64EL,
}
#: the FreeBSD versions that had the mips port (it left FreeBSD main before 14.0)
MIPS_ERAS = ("10", "11", "12", "13")


def parse_format(fmt: str) -> tuple[str, ew.ByteOrder, int]:
    """``(abi name, byte order, header version)`` of a format name."""
    if fmt not in MIPS_FORMATS:
        raise ValueError(f"unknown mips dump format {fmt!r}; expected one of {MIPS_FORMATS}")
    parts = fmt.split("-")
    order: ew.ByteOrder = "big" if parts[2] == "be" else "little"
    return parts[1], order, 1 if len(parts) == 4 else 2


def build_mips(
    directory: str | os.PathLike[str],
    seed: int = 0,
    fmt: str = "minidump-o32-be",
    *,
    kernel_name: str = "kernel",
    core_name: str = "vmcore",
    nkpt: int | None = None,
    load_offset: int = 0x100000,
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
        fmt: one of :data:`MIPS_FORMATS`: ``minidump-{o32,n32,n64}-{be,le}`` (header
            version 2) or the same with ``-v1`` (version 1).
        kernel_name, core_name: file names inside ``directory``.
        nkpt: boot page-table pages (``NKPT``, 1..32; default drawn from the seed, 2..4);
            one or two more are "grown", so the PTE section has ``nkpt + 1..2`` pages.
        load_offset: ``KERNLOADADDR - KERNBASE`` (page aligned, 4 KiB..16 MiB; default
            1 MiB as in the MALTA kernels); also the image's physical address.
        extra_symbols: add this many filler symbols to the kernel's symbol table.
        types: type information and kernel data: ``"ctf-v3"``, ``"ctf-v2"`` (zlib
            compressed ``.SUNW_ctf`` in the kernel), ``"ctf-v3-raw"`` (uncompressed),
            ``"dwarf"`` (a separate ``directory/kernel.debug``), or None (the default: no
            type information and no kernel data; files byte-identical to builds before
            the option existed).  With types the dump carries the kernel data of
            :mod:`pykvm.synth.kerneldata` laid out for the format's target (byte order and
            ABI: ``mips``/``mipsel``, ``mipsn32``/``mipsn32el``, ``mips64``/``mips64el``)
            with this kernel's seed-varied layout (``truth.type_layout``;
            ``truth.kernel_data`` the values), in every format.
        era: FreeBSD major version of the types, ``"10"`` ... ``"13"`` (the mips port was
            removed before FreeBSD 14.0); only with ``types``.  Default: ``"13"`` for a
            version 2 dump, one of ``"10"``-``"12"`` (by the seed) for version 1.
        cp_time_symbol: also define the old ``cp_time`` array (only with ``types``).
        debug_name: the DWARF file's name (``types="dwarf"``).

    Raises:
        ValueError: unknown format or bad option values (among them an era 14 or 15,
            when FreeBSD had no mips port).
    """
    abi_name, order, version = parse_format(fmt)
    check_type_options(types, era, cp_time_symbol)
    if era is not None and era not in MIPS_ERAS:
        raise ValueError(
            f"era {era!r}: FreeBSD/mips exists in eras {MIPS_ERAS} only "
            "(the mips port was removed before FreeBSD 14.0)"
        )
    if types is not None and era is None:
        era = "13" if version == 2 else MIPS_ERAS[Rng(seed, "mips-era").below(3)]
    if nkpt is not None and (isinstance(nkpt, bool) or not 1 <= int(nkpt) <= 32):
        raise ValueError("nkpt must be 1..32")
    if load_offset % PAGE_SIZE or not PAGE_SIZE <= load_offset <= 16 * MIB:
        raise ValueError("load_offset must be page aligned and within 4 KiB..16 MiB")
    if extra_symbols < 0:
        raise ValueError("extra_symbols must be >= 0")
    tinfo = kernel_type_info(seed, TARGETS[abi_name, order], types, era)
    machine = MipsMachine(
        seed,
        ABIS[abi_name],
        order,
        nkpt=nkpt,
        load_offset=load_offset,
        extra_symbols=extra_symbols,
        types=tinfo.layout if tinfo is not None else None,
        cp_time_symbol=cp_time_symbol,
        ctf_section=tinfo.ctf_section if tinfo is not None else None,
    )
    root = pathlib.Path(directory)
    kernel_path = root / kernel_name
    core_path = root / core_name
    kernel_path.write_bytes(machine.kernel.file_bytes())
    debug_path = tinfo.write_debug(root / debug_name) if tinfo is not None else None
    plan = plan_mips_minidump(machine, version)
    write_mips_minidump(str(core_path), plan, machine)
    truth = _truth(machine, plan, fmt)
    truth = with_kernel_data(truth, tinfo.layout if tinfo is not None else None, machine.kdata)
    return SynthDump(
        kernel=kernel_path, core=core_path, arch="mips", fmt=fmt, truth=truth, debug=debug_path
    )


# ---------------------------------------------------------------------------- truth
def _truth(machine: MipsMachine, plan: MinidumpPlan, fmt: str) -> GroundTruth:
    m = machine
    ranges = leaf_ranges(m.leaves, m.vm_min, m.kernel_vm_end) + m.direct_ranges()
    space = AddressSpace(ranges, plan.readable(), m.memory)
    regions, holes, kinds = _samples(m, space, fmt)
    extras = {
        "pte_size": m.abi.pte_size,
        "nbpdr": m.abi.nbpdr,
        "nkpt": m.nkpt,
        "ptesize": len(plan.pmap),
        "phys_avail0": m.phys_avail0,
        "kernel_segmap": m.abi.direct(m.segmap_pa),
        "segmap_pa": m.segmap_pa,
        "msgbuf_pa": m.msgbuf_pa,
        "msgbufp": m.kdata.msgbuf.addr if m.kdata else m.abi.direct(m.msgbuf_struct_pa),
        "bitmap_word_bits": 32 if plan.version == 1 else m.abi.bitset_word_bits,
    }
    return make_truth(
        m.kernel,
        fmt=fmt,
        version=plan.version,
        kernbase=m.vm_min,
        dump_avail=m.segments,
        dumped_pages=len(plan.pfns),
        msgbuf=m.msgbuf,
        space=space,
        offsets=plan.offset_of,
        regions=regions,
        holes=holes,
        hole_kinds=kinds,
        walk=_walk(m, plan),
        layout=dict(plan.layout),
        leaves=m.leaves,
        page_size=PAGE_SIZE,
        vm_min_kernel_address=m.vm_min,
        kernphys=m.kernphys,
        kernel_vm_end=m.kernel_vm_end,
        extras=extras,
    )


def _walk(machine: MipsMachine, plan: MinidumpPlan) -> list[WalkPage]:
    """The records ``_mips_minidump_walk_pages`` yields: every PTE of the section in index
    order that has ``PTE_V``, at ``kernbase + index * PAGE_SIZE``, no direct-map alias,
    READ|EXECUTE plus WRITE without ``PTE_RO``; the physical address from every PFN bit
    (pykvm does not truncate o32 frames to 32 bits)."""
    m = machine
    abi = m.abi
    out: list[WalkPage] = []
    for slot in range(m.nseg * abi.npte_pg):
        pte = m.pte_at(slot)
        if not pte & PTE_V:
            continue
        pa = abi.pte_to_pa(pte)
        out.append(
            WalkPage(2, pa, m.slot_va(slot), 0, entry_prot(abi, pte), plan.offset_of(pa), PAGE_SIZE)
        )
    return out


def _samples(
    m: MipsMachine, space: AddressSpace, fmt: str
) -> tuple[list[tuple[int, bytes]], list[int], list[str]]:
    """Pick readable regions and failing addresses for this machine."""
    abi = m.abi
    k = m.kernel
    ps = PAGE_SIZE
    direct = abi.direct
    want = kernel_regions(k, ("kernel_segmap", "msgbufp", "kernel_vm_end", "ostype", "hz"))
    want += [
        (abi.kseg1(m.kernphys), 64),  # the image through the uncached window
        (abi.kseg0(0), 512),  # exception vectors
        (abi.kseg0(m.kernphys - 16), 32),  # across the start of the image
        (direct(m.msgbuf_pa), len(m.msgbuf)),
        (direct(m.msgbuf_struct_pa), len(m.msgbuf_struct)),
        (direct(m.segmap_pa), ps),
        (direct(m.ptaddr), 2 * ps),
        (direct(m.kstack0_pa) + ps - 8, 16),
        (m.slot_va(m.run_slot) + 100, m.run_len * ps - 200),
        (m.slot_va(m.seam_slot) + ps - 64, 128),
        (m.slot_va(m.alias_slot), ps),
        (direct(m.boot_pages_pa), m.boot_pages * ps),
        (direct(m.quirk_alias_pa), ps),
    ]
    if m.pd_pa:
        want.append((direct(m.pd_pa), ps))
    for pa in m.uma_pages[:6]:
        want.append((direct(pa), ps))
    if abi.is64:
        want += [
            (abi.xkphys(m.kernphys), 64),
            (abi.xkphys(m.kernphys, MIPS_CCA_UNCACHED) + ps - 8, 16),
            (abi.xkphys(m.run_pa), 2 * ps),  # high RAM through XKPHYS
        ]
    want += leaf_regions(m.leaves, ps, 48)
    must = [
        k.image_va,
        k.var_address("version"),
        m.slot_va(m.run_slot) + 100,
        direct(m.msgbuf_pa),
        direct(m.segmap_pa),
    ]
    regions = pick_regions(space, want, must, fmt)

    slot_va = m.slot_va
    cands: list[tuple[str, int]] = [
        ("invalid-pte", m.vm_min + 0x10),  # the pcpu pages (wired TLB entry)
        ("invalid-pte", slot_va(m.free_slot) + 8),
        ("above-kva", m.kernel_vm_end + 0x10),
        ("pte-to-physical-hole", slot_va(m.hole_slots[0]) + 0x10),  # just below a range
        ("pte-to-physical-hole", slot_va(m.hole_slots[1])),
        ("pte-to-physical-hole", slot_va(m.hole_slots[2]) + 0xFF0),
        ("device-mapping", slot_va(m.device_slots[0])),
        ("pte-to-nodump-page", slot_va(m.nodump_slots[0]) + 0x100),
        ("pte-to-nodump-page", slot_va(m.nodump_slots[1])),
        ("dmap-physical-hole", direct(m.mid_hole_pa)),
        ("dmap-physical-hole", direct(m.bait_pa) + 0x20),
        ("dmap-not-dumped", direct(m.undumped_pa) + 0x40),
        ("kseg1-not-dumped", abi.kseg1(m.undumped_pa)),
        ("user", 0x1000),
    ]
    if m.above4g_slot >= 0:
        cands.append(("pte-above-4g", slot_va(m.above4g_slot) + 0x20))
    if abi.is64:
        cands += [
            ("dmap-beyond-ram", abi.xkphys(m.past_ram_pa)),
            ("dmap-beyond-ram", abi.xkphys(m.max_pa + 64 * MIB, MIPS_CCA_UNCACHED)),
            ("user", 0x0000000120000000),
            ("user", 0x4000000000001000),  # xsseg
            ("above-kva", 0xFFFFFFFFC0001000),  # compatibility kseg2
            ("above-kva", 0xC000000100000000),
        ]
    else:
        cands += [
            ("user", 0x7FFFF000),
            ("above-kva", 0xFFFFE000),
            ("dmap-physical-hole", abi.kseg0(0x1FFFF000)),
            ("dmap-physical-hole", abi.kseg1(DEVICE_PA)),
        ]
    holes, kinds = pick_holes(space, cands)
    return regions, holes, kinds
