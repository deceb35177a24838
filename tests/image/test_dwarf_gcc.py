"""pykvm.image.dwarf and the layout model on DWARF from a real compiler.

tests/image/fixtures/fbsd_types.c (FreeBSD-shaped structs) is compiled here with the
host's gcc in many ways (DWARF 2 to 5, -m32, type units, accelerator tables, compressed
sections).  Every expected offset, size and bit position comes from the compiler itself:
a small program prints offsetof/sizeof (native ABI), or the same questions are compiled
into constants and read back (-m32, where nothing can be linked).  Values come from
objects gcc initialised, decoded through StructView.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from gcc_build import (
    Probe,
    compile_object,
    data_probes,
    link_shared,
    run,
    run_probes,
    symbol_bytes,
)

from pykvm.errors import KvmError
from pykvm.image.dwarf import DwarfFile
from pykvm.image.layout import KernelTypes, MemberError

#: name -> (gcc flags, link into a shared object first)
VARIANTS: dict[str, tuple[list[str], bool]] = {
    "g": (["-g"], False),
    "dwarf2": (["-gdwarf-2"], False),
    "dwarf3": (["-gdwarf-3"], False),
    "dwarf4": (["-gdwarf-4"], False),
    "dwarf5": (["-gdwarf-5"], False),
    "m32": (["-m32", "-g"], False),
    "m32-dwarf4": (["-m32", "-gdwarf-4"], False),
    "m32-dwarf2": (["-m32", "-gdwarf-2"], False),
    "typeunits4": (["-gdwarf-4", "-fdebug-types-section", "-fPIC"], True),
    "typeunits5": (["-gdwarf-5", "-fdebug-types-section", "-fPIC"], True),
    "pubnames": (["-g", "-gpubnames"], False),
    "zlib": (["-g", "-gz=zlib"], False),
}

STRUCTS = ("proc", "thread", "vmspace", "vm_map", "pmap", "pmap_statistics", "ucred",
           "prison", "session", "pgrp", "pargs", "vnode", "sysentvec", "sigqueue",
           "__sigset", "lock_object", "mtx", "sx", "rusage_ext", "loadavg", "swdevt", "pcpu",
           "proclist", "threadqueue", "ksiginfo_list")

#: Paths the reader must find (through nested and anonymous members).
MUST_HAVE = {
    "proc": ["p_list.le_next", "p_list.le_prev", "p_threads.tqh_first", "p_ucred", "p_pid",
             "p_sigqueue.sq_signals.__bits", "p_rux.rux_runtime", "p_comm", "p_pgrp",
             "p_sflags", "p_uflags", "p_wide", "p_flagb", "p_estate", "p_nested.inner_a",
             "p_nested.inner_s", "p_nested.inner_l", "p_slock.lock_object.lo_name",
             "p_hash.le_next"],
    "thread": ["td_plist.tqe_next", "td_slpq.tqe_next", "td_zombie", "td_tid", "td_name",
               "td_sigqueue.sq_signals", "td_oncpu", "td_state", "td_pcb"],
    "vm_map": ["size", "lock", "lock.lock_object.lo_name", "system_mtx.mtx_lock",
               "system_map", "needs_wakeup"],
    "vmspace": ["vm_map.size", "vm_pmap.pm_stats.resident_count", "vm_swrss", "vm_tsize",
                "vm_dsize", "vm_ssize"],
    "vnode": ["v_type", "v_state", "v_irflag", "v_rdev", "v_mountedhere", "v_usecount"],
    "pargs": ["ar_length", "ar_args"],
    "session": ["s_login", "s_sid", "s_leader"],
    "ucred": ["cr_groups", "cr_smallgroups", "cr_prison"],
}


@dataclass
class Built:
    name: str
    path: Path
    dwarf: DwarfFile
    types: KernelTypes
    m32: bool


@pytest.fixture(scope="module", params=sorted(VARIANTS))
def built(request: pytest.FixtureRequest,
          tmp_path_factory: pytest.TempPathFactory) -> Any:
    name: str = request.param
    flags, shared = VARIANTS[name]
    d = tmp_path_factory.mktemp(f"dwarf-{name}")
    path = compile_object(d, flags)
    if shared:
        path = link_shared(d, [path], flags)
    dwarf = DwarfFile.open(path)
    m32 = "-m32" in flags
    types = KernelTypes(byteorder="little", pointer_size=4 if m32 else 8, dwarf=[dwarf])
    yield Built(name, path, dwarf, types, m32)
    dwarf.close()


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> KernelTypes:
    """The layouts read from the plain -g object: they choose the questions to ask."""
    d = tmp_path_factory.mktemp("dwarf-ref")
    dwarf = DwarfFile.open(compile_object(d, ["-g"]))
    return KernelTypes(byteorder="little", pointer_size=8, dwarf=[dwarf])


@pytest.fixture(scope="module")
def probes(reference: KernelTypes) -> list[Probe]:
    out: list[Probe] = []
    for s in STRUCTS:
        lay = reference.struct(s)
        out.append(Probe(s))
        for path, m, _depth in lay.walk():
            if path:
                out.append(Probe(s, path, m.is_bitfield))
    return out


@pytest.fixture(scope="module")
def native_truth(probes: list[Probe], tmp_path_factory: pytest.TempPathFactory) -> Any:
    sized = [p for p in probes if p.path != "ar_args"]  # a flexible array has no sizeof
    return run_probes(tmp_path_factory.mktemp("probe-native"), sized)


@pytest.fixture(scope="module")
def m32_truth(probes: list[Probe], tmp_path_factory: pytest.TempPathFactory) -> Any:
    sized = [p for p in probes if p.path != "ar_args"]
    return data_probes(tmp_path_factory.mktemp("probe-m32"), sized, ["-m32"])


def test_probe_methods_agree(probes: list[Probe], native_truth: Any,
                             tmp_path: Path) -> None:
    """The compile-only probes (used for -m32) say what the running program says."""
    sized = [p for p in probes if p.path != "ar_args"]
    assert data_probes(tmp_path, sized, []) == native_truth


def test_layouts_match_the_compiler(built: Built, probes: list[Probe], native_truth: Any,
                                    m32_truth: Any) -> None:
    truth = m32_truth if built.m32 else native_truth
    checked = 0
    for p in probes:
        if p not in truth:
            continue
        lay = built.types.struct(p.struct)
        assert lay.source == "DWARF"
        if not p.path:
            assert lay.size == truth[p][1], p
            continue
        m = lay.member(p.path)
        if p.bitfield:
            assert (m.bit_offset, m.bit_size) == truth[p], p
            assert m.offset == m.bit_offset // 8
        else:
            assert (m.offset, m.size) == truth[p], p
            assert m.bit_size is None and m.bit_offset == 8 * m.offset
        checked += 1
    assert checked > 150
    # the flexible array member: right offset, no size
    ar = built.types.struct("pargs").member("ar_args")
    assert ar.size is None and ar.count is None and ar.offset == 8


def test_must_have_paths(built: Built) -> None:
    for s, paths in MUST_HAVE.items():
        lay = built.types.struct(s)
        for path in paths:
            assert lay.has(path), (s, path)
        assert not lay.has("no_such_member")


def test_type_names_and_kinds(built: Built) -> None:
    proc = built.types.struct("proc")
    names = {
        "p_const_label": "const char *const",
        "p_hook": "int (*)(struct proc *, int)",
        "p_grid": "char (*)[4]",
        "p_peers": "struct proc *[2]",
        "p_label": "cstring_t",
        "p_list": "struct {...}",
        "p_threads": "struct threadqueue",
        "p_pid": "pid_t",
        "p_comm": "char [20]",
        "p_sigqueue": "sigqueue_t",
        "p_state": "enum p_states",
    }
    for path, name in names.items():
        assert proc.member(path).type_name == name, path
    t = built.types.struct("thread")
    assert t.member("td_lock").type_name == "struct mtx *volatile"
    assert t.member("td_wchan").type_name == "const void *"
    assert built.types.struct("pmap").member("pm_pml4").type_name == "u_long [2][3]"
    assert built.types.struct("pargs").member("ar_args").type_name == "u_char []"
    assert built.types.struct("sysentvec").member("sv_sendsig").type_name == \
        "void (*)(int, sigset_t *, ...)"
    assert built.types.struct("vnode").member("v_usecount").type_name in (
        "const volatile int", "volatile const int")
    kinds = {"p_pid": ("int", True), "p_swtick": ("int", False), "p_state": ("enum", False),
             "p_nice": ("int", True), "p_acflag": ("int", False), "p_ucred": ("pointer", False),
             "p_list": ("struct", False), "p_comm": ("array", False),
             "p_nested": ("struct", False), "p_signed64": ("int", True),
             "p_unsigned64": ("int", False), "p_hook": ("pointer", False)}
    for path, (kind, signed) in kinds.items():
        m = proc.member(path)
        assert (m.kind, m.type.signed) == (kind, signed), path
    assert proc.member("p_comm").type.is_string
    assert proc.member("p_comm").count == 20
    assert proc.member("p_ucred").type.target is not None
    assert proc.member("p_ucred").type.target.tag == "ucred"
    assert t.member("td_runtime_f").kind == "float"
    assert t.member("td_flag_b").kind == "bool"
    ps = 4 if built.m32 else 8
    assert proc.member("p_ucred").size == ps
    assert proc.member("p_list").size == 2 * ps
    grid = proc.member("p_grid").type.target
    assert grid is not None and grid.kind == "array" and grid.count == 4
    pml4 = built.types.struct("pmap").member("pm_pml4").type
    assert pml4.count == 2 and pml4.target is not None and pml4.target.count == 3
    assert pml4.size == 6 * (4 if built.m32 else 8)


def test_enums_variables_and_typedefs(built: Built) -> None:
    kt = built.types
    assert kt.enum("p_states") == {"PRS_NEW": 0, "PRS_NORMAL": 1, "PRS_ZOMBIE": 2}
    assert kt.enum("td_states")["TDS_RUNNING"] == 4
    assert kt.enum("vtype")["VCHR"] == 4
    assert kt.enum("signed_thing") == {"NEG_ONE": -1, "ZERO": 0, "BIG": 0x7FFFFFFF}
    version = kt.variable("version")
    assert version is not None and version.name == "char [29]" and version.size == 29
    cpus = kt.variable("cpuid_to_pcpu")
    assert cpus is not None and cpus.name == "struct pcpu *[4]"
    allproc = kt.variable("allproc")
    assert allproc is not None and allproc.name == "struct proclist"
    assert allproc.layout is not None and allproc.layout.has("lh_first")
    off = kt.variable("proc_off_p_pid")
    assert off is not None and off.name == "const int" and off.kind == "int"
    assert kt.variable("no_such_variable") is None
    assert kt.type("segsz_t").size == (4 if built.m32 else 8)
    assert kt.type("pid_t").signed
    with pytest.raises(KvmError, match="no type information"):
        kt.type("no_such_t")


def test_declared_only_and_unknown(built: Built) -> None:
    kt = built.types
    # struct witness is only ever a pointer target: declared, never defined
    assert built.dwarf.find("struct", "witness") is None
    assert kt.find_struct("witness") is None
    with pytest.raises(KvmError) as exc:
        kt.struct("witness")
    assert str(exc.value) == ("struct witness: no type information "
                              "(no .SUNW_ctf, not in DWARF, no exported offsets)")
    assert built.dwarf.find("struct", "no_such_struct") is None
    assert built.dwarf.find("union", "proc") is None  # tags live in their own namespace
    with pytest.raises(MemberError) as merr:
        kt.struct("proc").member("p_rux.rux_nope")
    assert str(merr.value) == "struct proc has no member p_rux.rux_nope (DWARF)"


# --------------------------------------------------------------------------- values

#: struct -> [(member path, C initialiser, value the view must decode)]
VALUES: dict[str, list[tuple[str, str, Any]]] = {
    "proc": [
        ("p_pid", "-12345", -12345),
        ("p_flag", "0x7fffffff", 0x7FFFFFFF),
        ("p_state", "PRS_ZOMBIE", 2),
        ("p_comm", '"sh"', b"sh"),
        ("p_nice", "-20", -20),
        ("p_acflag", "200", 200),
        ("p_sflags", "-3", -3),
        ("p_uflags", "21", 21),
        ("p_wide", "0xABCDE", 0xABCDE),
        ("p_flagb", "1", True),
        ("p_estate", "PRS_NORMAL", 1),
        ("p_rux.rux_runtime", "0x1122334455667788ULL", 0x1122334455667788),
        ("p_sigqueue.sq_signals.__bits", "{1, 2, 0x80000000u, 4}", (1, 2, 0x80000000, 4)),
        ("p_list.le_next", "(struct proc *)0x1000", 0x1000),
        ("p_list.le_prev", "(struct proc **)0x2000", 0x2000),
        ("p_pgrp", "(struct pgrp *)0x3000", 0x3000),
        ("p_nested.inner_a", "-7", -7),
        ("p_nested.inner_l", "-8", -8),
        ("p_signed64", "-5", -5),
        ("p_unsigned64", "0xFFFFFFFFFFFFFFFEULL", 0xFFFFFFFFFFFFFFFE),
        ("p_short", "-2", -2),
        ("p_ushort", "65535", 65535),
        ("p_peers", "{(struct proc *)0x10, (struct proc *)0x20}", (0x10, 0x20)),
        ("p_pctcpu", "0xFFFFFFFFu", 0xFFFFFFFF),
        ("p_xexit", "-1", -1),
        ("p_numthreads", "5", 5),
    ],
    "thread": [
        ("td_tid", "100001", 100001),
        ("td_name", '"idle: cpu0"', b"idle: cpu0"),
        ("td_oncpu", "-1", -1),
        ("td_zombie", "(struct thread *)0x4000", 0x4000),
        ("td_runtime_f", "1.5", 1.5),
        ("td_flag_b", "1", True),
        ("td_nice", "-1", -1),
        ("td_state", "TDS_RUNNING", 4),
        ("td_base_pri", "255", 255),
    ],
    "vnode": [
        ("v_type", "VCHR", 4),
        ("v_state", "7", 7),
        ("v_irflag", "-9", -9),
        ("v_rdev", "(struct cdev *)0x5000", 0x5000),
    ],
}


@pytest.fixture(scope="module")
def value_objects(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The value file compiled once per ABI."""
    d = tmp_path_factory.mktemp("values")
    lines = ['#define FBSD_TYPES_NO_OBJECTS',
             f'#include "{Path(__file__).parent / "fixtures" / "fbsd_types.c"}"']
    for s, rows in VALUES.items():
        inits = ", ".join(f".{path} = {c}" for path, c, _ in rows)
        lines.append(f"struct {s} value_{s} = {{ {inits} }};")
    src = d / "values.c"
    src.write_text("\n".join(lines) + "\n")
    return {"64": compile_object(d, ["-w", "-g"], src, "values64.o"),
            "32": compile_object(d, ["-w", "-m32", "-g"], src, "values32.o")}


def test_values_decode(built: Built, value_objects: dict[str, Path]) -> None:
    blobs = symbol_bytes(value_objects["32" if built.m32 else "64"], "value_")
    for s, rows in VALUES.items():
        data = blobs[f"value_{s}"]
        view = built.types.view_from(s, data, 0xFFFF_0000)
        assert view.data == data
        for path, _c, expected in rows:
            got = view[path]
            assert got == expected, (s, path, got, expected)
            assert type(got) is type(expected) or isinstance(got, int), (s, path)
    view = built.types.view_from("proc", blobs["value_proc"], 0x1000)
    assert view.p_pid == -12345                            # attribute access
    assert view.p_rux.rux_runtime == 0x1122334455667788    # nested struct, same bytes
    assert view.p_rux.address == 0x1000 + view.layout.offsetof("p_rux")
    assert view.p_list.le_next == 0x1000 and repr(view.p_list.le_next).endswith("0x1000")
    assert view.member_address("p_comm") == 0x1000 + view.layout.offsetof("p_comm")
    assert view.raw("p_comm") == b"sh" + bytes(18)
    assert view.get("p_not_there", "dflt") == "dflt" and not view.has("p_not_there")
    assert not hasattr(view, "p_not_there")


# --------------------------------------------------------------------------- two units


@pytest.fixture(scope="module")
def two_units(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``ld -r`` of a unit that only declares struct proc, then the fixture."""
    d = tmp_path_factory.mktemp("two-units")
    cu1 = d / "cu1.c"
    cu1.write_text("struct proc;\nstruct proc *cu1_ptr;\n"
                   "struct cu1_only_marker_struct { int x; long y; } cu1_obj;\n")
    o1 = compile_object(d, ["-g"], cu1, "cu1.o")
    o2 = compile_object(d, ["-g"])
    out = d / "both.o"
    run(["ld", "-r", "-o", str(out), str(o1), str(o2)], d)
    return out


def test_declaration_before_definition(two_units: Path, native_truth: Any) -> None:
    with DwarfFile.open(two_units) as dwarf:
        assert dwarf.summary()["units"] == 2
        kt = KernelTypes(byteorder="little", pointer_size=8, dwarf=[dwarf])
        proc = kt.struct("proc")  # unit 1 only declares it; unit 2 defines it
        assert proc.size == native_truth[Probe("proc")][1]
        assert proc.member("p_pid").offset == native_truth[Probe("proc", "p_pid")][0]


def test_lookups_read_only_the_units_that_name_the_type(two_units: Path) -> None:
    with DwarfFile.open(two_units) as dwarf:
        starts = [s for s, _ in dwarf._unit_table()]
        h = dwarf.find("struct", "cu1_only_marker_struct")
        assert h is not None and dwarf.type(h).size == 16
        assert {off for _tu, off in dwarf._scans} == {starts[0]}  # unit 2 never read
        assert dwarf.find("struct", "vnode") is not None
        assert {off for _tu, off in dwarf._scans} == {starts[1]}.union({starts[0]})
        assert dwarf.find("struct", "absent_everywhere_xyz") is None
        # a lookup answered from the index built on the way reads nothing new
        scans = dict(dwarf._scans)
        assert dwarf.find("struct", "pgrp") is not None
        assert dwarf._scans == scans
