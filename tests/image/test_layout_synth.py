"""The layout model against pykvm.synth's CTF and DWARF writers (round trips).

pykvm.synth describes the kernel structures of kernel-data.md 9 with seeded, moving
offsets and records the ground truth (``TypeSet.truth()``).  Whatever it writes --
DWARF 4 or 5, either bit-field style, either array bound, CTF 2 or 3, compressed or
not, little- or big-endian, 32- or 64-bit -- must read back as that truth: every
struct size, every member path's offset, bit offset, bit-field width and size, and
(for DWARF) the C spelling of its type.  The sources must also agree with each other.
"""

from __future__ import annotations

from typing import Any

import pytest

from pykvm.image.ctf import CtfFile
from pykvm.image.dwarf import DwarfFile
from pykvm.image.elf import KernelImage
from pykvm.image.layout import KernelTypes, StructLayout
from pykvm.synth.cmodel import AMD64, ARMV7, I386, POWERPC, POWERPC64, Target
from pykvm.synth.ctfwriter import write_ctf
from pykvm.synth.debugelf import DebugSymbol, write_debug_elf
from pykvm.synth.dwarfwriter import write_dwarf
from pykvm.synth.kerneltypes import kernel_types

TARGETS = [AMD64, I386, POWERPC, POWERPC64, ARMV7]


def dwarf_types(ts: Any, **options: Any) -> KernelTypes:
    target: Target = ts.target
    sec = write_dwarf(ts, **options)
    elf = write_debug_elf({".debug_info": sec.debug_info, ".debug_abbrev": sec.debug_abbrev,
                           ".debug_str": sec.debug_str}, target)
    return KernelTypes(byteorder=target.byteorder, pointer_size=target.ptr_size,
                       dwarf=[DwarfFile.from_bytes(elf, "synth.debug")])


def ctf_types(ts: Any, **options: Any) -> KernelTypes:
    target: Target = ts.target
    ctf = CtfFile.parse(write_ctf(ts, **options), pointer_size=target.ptr_size)
    return KernelTypes(byteorder=target.byteorder, pointer_size=target.ptr_size, ctf=ctf)


def check_truth(kt: KernelTypes, truth: Any, source: str, names: bool) -> int:
    """Compare every struct and path with the truth; returns how many paths were checked."""
    checked = 0
    for key, st in truth.structs.items():
        lay = kt.struct(key)
        assert lay.source == source
        assert lay.size == st.size, key
        assert lay.kind == st.kind
        for path, mt in st.paths.items():
            m = lay.member(path)
            got = (m.offset, m.bit_offset, m.bit_size, m.size)
            assert got == (mt.offset, mt.bit_offset, mt.bit_size, mt.size), (key, path)
            if names:
                assert m.type_name == mt.type_name, (key, path)
            checked += 1
        assert [m.name for m in lay.fields] == [m.name for m in st.members], key
    for ename, values in truth.enums.items():
        assert kt.enum(ename) == dict(values)
    return checked


@pytest.mark.parametrize("target", TARGETS, ids=lambda t: t.name)
@pytest.mark.parametrize("version", [4, 5])
@pytest.mark.parametrize("style", ["data_bit_offset", "bit_offset"])
def test_dwarf_round_trip(target: Target, version: int, style: str) -> None:
    for seed in (1, 2):
        ts = kernel_types(seed, target)
        truth = ts.truth()
        bound = "count" if seed == 1 else "upper_bound"
        kt = dwarf_types(ts, version=version, bitfield_style=style, array_bound=bound)
        assert check_truth(kt, truth, "DWARF", names=True) > 300
        for name, tname in truth.variables.items():
            var = kt.variable(name)
            assert var is not None and var.name == tname, name


@pytest.mark.parametrize("target", TARGETS, ids=lambda t: t.name)
@pytest.mark.parametrize("version", [2, 3])
@pytest.mark.parametrize("compress", [False, True])
def test_ctf_round_trip(target: Target, version: int, compress: bool) -> None:
    for seed in (1, 2):
        ts = kernel_types(seed, target)
        kt = ctf_types(ts, version=version, compress=compress)
        # CTF spells bit-field types by their base integer and "signed char" as
        # "char" (ctfconvert), so only the positions and sizes are compared
        assert check_truth(kt, ts.truth(), "CTF", names=False) > 300


def test_enum_bitfield_width_in_ctf_is_inferred() -> None:
    """CTF keeps the whole enum type for ``enum vtype v_type:8`` (no width)."""
    for era in ("13", "14", "15"):
        ts = kernel_types(3, AMD64, era=era)
        assert ts.features["vnode.v_type_bitfield"]
        v_type = ctf_types(ts, version=3).struct("vnode").member("v_type")
        assert (v_type.bit_size, v_type.kind, v_type.type_name) == (8, "enum", "enum vtype")


@pytest.mark.parametrize("target", [AMD64, POWERPC], ids=lambda t: t.name)
def test_sources_agree(target: Target) -> None:
    ts = kernel_types(5, target)
    a = dwarf_types(ts, version=5)
    b = ctf_types(ts, version=3)
    for key in ts.truth().structs:
        la, lb = a.struct(key), b.struct(key)
        rows_a = [(p, m.offset, m.bit_offset, m.bit_size, m.size, m.kind) for p, m, _ in la.walk()]
        rows_b = [(p, m.offset, m.bit_offset, m.bit_size, m.size, m.kind) for p, m, _ in lb.walk()]
        assert rows_a == rows_b, key


def test_era_switches_are_member_presence() -> None:
    """kernel-data.md 1.10: behaviour switches on "does member X exist"."""
    for era in ("10", "12", "13", "15"):
        ts = kernel_types(9, AMD64, era=era)
        kt = dwarf_types(ts)
        f = ts.features
        proc = kt.struct("proc")
        assert proc.has("p_pd") == f["proc.p_pd"]
        assert proc.has("p_reaper") == f["proc.p_reaper"]
        assert proc.has("p_xexit") == f["proc.p_xexit"]
        assert proc.has("p_xstat") == f["proc.p_xstat"]
        assert kt.struct("pgrp").has("pg_jobc") == f["pgrp.pg_jobc"]
        assert kt.struct("ucred").has("cr_gid") == f["ucred.cr_gid"]
        assert kt.struct("thread").has("td_zombie") == f["thread.td_zombie"]
        vnode = kt.struct("vnode")
        if f["vnode.v_rdev_anonymous"]:  # inside an anonymous union since FreeBSD 13
            assert vnode.has("v_rdev") and not vnode.has("v_un")
        else:  # before: v_un.vu_cdev, v_rdev being only a macro
            assert vnode.has("v_un.vu_cdev") and not vnode.has("v_rdev")
        assert kt.has_member("pcpu", "pc_zpcpu_offset") == f["pcpu.pc_zpcpu_offset"]


@pytest.mark.parametrize("target", [AMD64, POWERPC], ids=lambda t: t.name)
def test_for_kernel_finds_ctf_and_variable_types(target: Target, tmp_path: Any) -> None:
    """A kernel file with ``.SUNW_ctf`` and a symbol table: CTF is found by section name,
    with the ELF's byte order and pointer size, and variables are typed through the
    object section."""
    ts = kernel_types(4, target, era="12")
    names = [v.name for v in ts.variables]
    blob = write_ctf(ts, version=3, symbols=names)
    elf = write_debug_elf({".SUNW_ctf": blob}, target,
                          symbols=[DebugSymbol(n, 0x1000 + 16 * i) for i, n in enumerate(names)])
    path = tmp_path / "kernel"
    path.write_bytes(elf)
    import os

    fd = os.open(path, os.O_RDONLY)
    try:
        image = KernelImage(str(path), fd)
        kt = KernelTypes.for_kernel(image)
        assert kt.byteorder == target.byteorder and kt.pointer_size == target.ptr_size
        proc: StructLayout = kt.struct("proc")
        truth = ts.truth()
        assert proc.source == "CTF" and proc.size == truth.size("proc")
        assert proc.offsetof("p_pid") == truth.offset("proc", "p_pid")
        for name, tname in truth.variables.items():
            var = kt.variable(name)
            assert var is not None, name
            if "bitfield" not in var.name and "char" not in tname:
                assert var.name == tname, name
        info = kt.sources[0]
        assert info.name == "CTF" and info.available and "version 3" in info.detail
        assert [s.available for s in kt.sources] == [True, False, False]
        image.close()
    finally:
        os.close(fd)
