"""The C type model (layout rules, names, ground truth) and the kernel type generator."""

from __future__ import annotations

import pytest

from pykvm.synth.cmodel import (
    AMD64,
    I386,
    POWERPC,
    TARGETS,
    CType,
    Field,
    StructType,
    Target,
    TypeSpace,
    c_type_name,
)
from pykvm.synth.kerneltypes import ERAS, kernel_types

# -- layout rules, worked by hand -------------------------------------------------------


def test_struct_layout_lp64_vs_ilp32() -> None:
    # struct s { char c; long l; short h; uint64 q; char *p; }
    for target, want in (
        (AMD64, ([0, 8, 16, 24, 32], 40, 8)),
        (I386, ([0, 4, 8, 12, 20], 24, 4)),  # 8-byte integers are 4-aligned in i386 structs
        (POWERPC, ([0, 4, 8, 16, 24], 32, 8)),
    ):
        sp = TypeSpace(target)
        s = sp.define(sp.struct("s"), [
            Field("c", sp.base("char")),
            Field("l", sp.base("long")),
            Field("h", sp.base("short")),
            Field("q", sp.base("unsigned long long")),
            Field("p", sp.ptr(sp.base("char"))),
        ])
        assert ([m.offset for m in s.members], s.size, s.align) == want, target.name


def test_bitfields_union_and_aligned() -> None:
    sp = TypeSpace(AMD64)
    u_int, u_char = sp.base("unsigned int"), sp.base("unsigned char")
    s = sp.define(sp.struct("bf"), [
        Field("a", u_char),
        Field("b", u_int, bits=3),  # shares the first int unit: bits 8..10
        Field("c", u_int, bits=22),  # 11 + 22 = 33 > 32: starts the next unit at bit 32
        Field("", u_int, bits=0),  # zero width: align to the next int
        Field("d", u_char, bits=7),
        Field("e", u_char, bits=2),  # 7 + 2 > 8: next byte
        Field("f", sp.array(sp.base("char"), 3), align=16),
    ])
    got = [(m.name, m.bit_offset, m.bit_size) for m in s.members]
    assert got == [
        ("a", 0, None), ("b", 8, 3), ("c", 32, 22), ("d", 64, 7), ("e", 72, 2),
        ("f", 128, None),
    ]
    assert (s.size, s.align) == (32, 16)
    u = sp.define(sp.union("u"), [Field("x", u_char), Field("y", sp.base("long")),
                                  Field("z", u_int, bits=5)])
    assert [m.bit_offset for m in u.members] == [0, 0, 0]
    assert (u.size, u.align) == (8, 8)


def test_c_type_names() -> None:
    sp = TypeSpace(AMD64)
    ch, void, i = sp.base("char"), sp.base("void"), sp.base("int")
    proc = sp.struct("proc")
    cases: list[tuple[CType, str]] = [
        (sp.ptr(proc), "struct proc *"),
        (sp.ptr(sp.ptr(proc)), "struct proc **"),
        (sp.array(ch, 20), "char [20]"),
        (sp.ptr(sp.const(ch)), "const char *"),
        (sp.volatile(sp.ptr(sp.struct("mtx"))), "struct mtx *volatile"),
        (sp.ptr(sp.func(void, [i])), "void (*)(int)"),
        (sp.func(i, [], varargs=True), "int (...)"),
        (sp.ptr(sp.array(i, 4)), "int (*)[4]"),
        (sp.array(sp.ptr(proc), 2), "struct proc *[2]"),
        (sp.ptr(sp.const(void)), "const void *"),
        (sp.list_entry(proc), "struct {...}"),
        (sp.enum(None, [("A", 0)]), "enum {...}"),
    ]
    for t, want in cases:
        assert c_type_name(t) == want


def test_truth_paths_descend_anonymous_members() -> None:
    for era in ("12", "13"):
        tr = kernel_types(5, AMD64, era=era).truth()
        vnode = tr.structs["vnode"]
        if era == "13":
            rdev = vnode.member("v_rdev")
            anon = next(m for m in vnode.members if m.name == "" and m.offset == rdev.offset)
            assert anon.type_name == "union {...}"
            assert not vnode.has("v_un.vu_cdev")
        else:
            rdev = vnode.member("v_un.vu_cdev")
            assert rdev.offset == vnode.member("v_un").offset
            assert not vnode.has("v_rdev")
        assert rdev.type_name == "struct cdev *"
        proc = tr.structs["proc"]
        assert proc.member("p_list.le_next").offset == proc.member("p_list").offset
        assert proc.member("p_sigqueue.sq_signals").size == 16
        vm = tr.structs["vmspace"]
        rc = vm.member("vm_pmap.pm_stats.resident_count")
        assert rc.offset == (vm.member("vm_pmap").offset
                             + tr.structs["pmap"].member("pm_stats").offset)


# -- the kernel generator ---------------------------------------------------------------


REQUIRED = {
    "proc": ["p_list.le_next", "p_threads.tqh_first", "p_ucred", "p_fd", "p_sigacts", "p_flag",
             "p_state", "p_pid", "p_pptr", "p_sigqueue.sq_signals", "p_oppid", "p_vmspace",
             "p_swtick", "p_rux.rux_runtime", "p_traceflag", "p_textvp", "p_lock", "p_comm",
             "p_sysent", "p_args", "p_nice", "p_pgrp", "p_numthreads", "p_acflag"],
    "thread": ["td_plist.tqe_next", "td_tid", "td_sigqueue.sq_signals", "td_inhibitors",
               "td_wchan", "td_wmesg", "td_blocked", "td_lockname", "td_name", "td_sigmask",
               "td_base_pri", "td_priority", "td_state", "td_lastcpu", "td_oncpu"],
    "ucred": ["cr_uid", "cr_ruid", "cr_svuid", "cr_ngroups", "cr_rgid", "cr_svgid",
              "cr_prison", "cr_flags", "cr_groups"],
    "prison": ["pr_id", "pr_vnet"],
    "sigacts": ["ps_sigignore", "ps_sigcatch"],
    "pgrp": ["pg_id", "pg_session"],
    "session": ["s_leader", "s_ttyvp", "s_ttyp", "s_sid", "s_login"],
    "tty": ["t_dev", "t_pgrp", "t_session"],
    "cdev": ["si_name"],
    "vmspace": ["vm_map.size", "vm_pmap.pm_stats.resident_count", "vm_swrss", "vm_tsize",
                "vm_dsize", "vm_ssize"],
    "sysentvec": ["sv_name"],
    "__sigset": ["__bits"],
    "pargs": ["ar_length", "ar_args"],
    "loadavg": ["ldavg", "fscale"],
    "swdevt": ["sw_flags", "sw_nblks", "sw_used", "sw_dev", "sw_list.tqe_next", "sw_vp"],
    "vnode": ["v_type"],
    "pcpu": ["pc_cp_time", "pc_dynamic", "pc_cpuid"],
    "vnet": ["vnet_magic_n", "vnet_data_base"],
    "msgbuf": ["msg_ptr", "msg_magic", "msg_size", "msg_wseq", "msg_rseq"],
}


@pytest.mark.parametrize("target", list(TARGETS.values()), ids=lambda t: t.name)
def test_required_members_everywhere(target: Target) -> None:
    for era in ERAS:
        tr = kernel_types(11, target, era=era).truth()
        for struct, paths in REQUIRED.items():
            for path in paths:
                assert tr.structs[struct].has(path), (era, struct, path)
        long_size = tr.target.long_size
        assert tr.structs["session"].member("s_login").size == (40 if long_size == 8 else 36)
        assert tr.structs["proc"].member("p_comm").type_name == "char [20]"
        assert tr.structs["thread"].member("td_name").size == 20
        assert tr.structs["__sigset"].size == 16
        assert tr.structs["pcpu"].member("pc_cp_time").type_name == "long [5]"
        assert tr.structs["ucred"].member("cr_groups").type_name == "gid_t *"
        assert tr.structs["vnode"].has("v_rdev") or tr.structs["vnode"].has("v_un.vu_cdev")
        # every struct's members lie inside it and do not overlap (unions excepted)
        for st in tr.structs.values():
            end = 0
            for m in st.members:
                assert m.bit_offset + (m.bit_size or m.size * 8) <= st.size * 8
                if st.kind == "struct":
                    assert m.bit_offset >= end, (st.name, m.name)
                    end = m.bit_offset + (m.bit_size or m.size * 8)


def test_optional_members_follow_features() -> None:
    for era in ERAS:
        ts = kernel_types(2, AMD64, era=era)
        tr = ts.truth()
        f = ts.features
        proc, ucred = tr.structs["proc"], tr.structs["ucred"]
        assert proc.has("p_pd") == f["proc.p_pd"] == (int(era) >= 13)
        assert proc.has("p_reaper") == proc.has("p_reapsubtree") == f["proc.p_reaper"]
        assert proc.has("p_xexit") == proc.has("p_xsig") == (not proc.has("p_xstat"))
        assert proc.has("p_tracevp") == f["proc.p_tracevp"]
        assert ucred.has("cr_gid") == f["ucred.cr_gid"] == (era == "15")
        assert tr.structs["pgrp"].has("pg_jobc") == f["pgrp.pg_jobc"]
        if f["ucred.cr_gid"]:  # the separate-egid layout moved cr_ngroups before cr_uid
            assert ucred.member("cr_ngroups").offset < ucred.member("cr_uid").offset
        else:
            assert ucred.member("cr_ngroups").offset > ucred.member("cr_svuid").offset
        assert ("td_states" in tr.enums) == f["thread.td_states_named"]
        assert ("p_states" in tr.enums) == f["proc.p_states_named"]
        v_type = tr.structs["vnode"].member("v_type")
        assert (v_type.bit_size == 8) == f["vnode.v_type_bitfield"]
        assert tr.enums["vtype"]["VCHR"] == 4
        assert ("zombproc" in tr.variables) == f["symbol.zombproc"]
        want_pcpu = "struct pcpu [256]" if f["symbol.__pcpu_array"] else "struct pcpu *"
        assert tr.variables["__pcpu"] == want_pcpu
        assert tr.structs["pcpu"].size == 4096  # amd64 pads it to one page
        assert tr.structs["swdevt"].member("sw_dev").size == (8 if f["dev_t_64"] else 4)
        if f["proc.p_states_named"]:
            assert tr.enums["p_states"] == {"PRS_NEW": 0, "PRS_NORMAL": 1, "PRS_ZOMBIE": 2}
            assert tr.enums["td_states"]["TDS_RUNNING"] == 4


def test_determinism_per_seed() -> None:
    a = kernel_types(42, AMD64).truth()
    b = kernel_types(42, AMD64).truth()
    assert a == b
    assert kernel_types(42, AMD64).era == kernel_types(42, AMD64).era


def test_offsets_vary_between_seeds() -> None:
    probes = [("proc", "p_pid"), ("proc", "p_comm"), ("thread", "td_tid"), ("ucred", "cr_uid"),
              ("vmspace", "vm_ssize"), ("pgrp", "pg_id"), ("session", "s_sid"),
              ("pcpu", "pc_cp_time"), ("swdevt", "sw_dev"), ("prison", "pr_vnet")]
    # within one era the variation comes from the fillers alone
    truths = [kernel_types(seed, AMD64, era="14").truth() for seed in range(12)]
    for struct, path in probes:
        offsets = {t.offset(struct, path) for t in truths}
        assert len(offsets) > 1, (struct, path)
    sizes = {t.size("proc") for t in truths}
    assert len(sizes) > 3
    eras = {kernel_types(seed, AMD64).era for seed in range(40)}
    assert eras == set(ERAS)


def test_type_space_records_every_type_once() -> None:
    ts = kernel_types(0, AMD64)
    ids = [id(t) for t in ts.types]
    assert len(ids) == len(set(ids))
    forwards = {t.name for t in ts.types if isinstance(t, StructType) and not t.complete}
    assert {"filedesc", "pstats", "witness"} <= forwards
    assert "proc" not in forwards
    assert ts.find("synth_large").size >= 8192
