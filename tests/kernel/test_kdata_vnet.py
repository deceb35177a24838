"""VNET symbol relocation (kernel-data.md 7, 0.5 rule 4; api.md 10.5-10.6) and pykvm's
VNET selection extension (Appendix B row 6), against the synthetic kernels' truth.

Eras >= 12 have ``options VIMAGE``: ``vnet_entry_*`` variables in ``set_vnet``, ``vnet0``
and a jail's own vnet, each with a copy of the set.  On a crash dump libkvm selects
``vnet0`` (proc0 -> prison0 -> vnet0) the first time ``kvm_nlist`` leaves names
unresolved; names are then retried as ``vnet_entry_<name>`` and relocated by
``vnet_data_base``.  Every ``_kvm_vnet_selectpid`` text is provoked by patching the dump.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from kdata_helpers import CASES, UNMAPPED, build, kdata, layout, le, member_va, open_dump, patched

from pykvm import kvm as K
from pykvm import symtab_resolver
from pykvm.constants import N_BSS, N_DATA, N_EXT, VNET_MAGIC_N
from pykvm.errors import KvmError
from pykvm.kernel import pcpu
from pykvm.kernel.vnet import VnetInfo
from pykvm.synth import SynthDump
from pykvm.synth.kerneldata import DPCPU_ENTRIES, VNET_ENTRIES, VnetTruth

U64 = (1 << 64) - 1
NAMES = ["_" + n for n, _ in VNET_ENTRIES]
SIZES = dict(VNET_ENTRIES)

VIMAGE_CASES = [c for c in CASES if int(c[1]) >= 12]
OLD_CASES = [c for c in CASES if int(c[1]) < 12]


def _vt(d: SynthDump) -> VnetTruth:
    v = kdata(d).vnet
    assert v is not None
    return v


@pytest.fixture(scope="module")
def vroot(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("vnet")


@pytest.fixture(scope="module", params=VIMAGE_CASES, ids=["-".join(c) for c in VIMAGE_CASES])
def vdump(request: pytest.FixtureRequest, vroot: Path) -> SynthDump:
    types, era, fmt = request.param
    return build(vroot, types, era, fmt)


@pytest.fixture(scope="module")
def one(vroot: Path) -> SynthDump:
    """The dump the corruption tests patch (CTF v3, era 14)."""
    return build(vroot, "ctf-v3", "14")


@pytest.fixture
def vkd(vdump: SynthDump) -> Iterator[K.Kvm]:
    with open_dump(vdump) as kd:
        yield kd


def _expect_copy(kd: K.Kvm, v: VnetTruth, vnet: int) -> None:
    """nlist of the bare names relocates into ``vnet``'s copy, whose bytes are the truth's."""
    inst = v.vnet(vnet)
    res = kd.nlist2(NAMES)
    assert res.missing == 0
    for e in res.entries:
        sym = "vnet_entry" + e.name
        assert e.type == N_BSS | N_EXT
        assert e.value == (v.entries[sym][0] + inst.data_base) & U64
        assert e.value == inst.data_mem + (v.entries[sym][0] - v.start)
        assert kd.read2(e.value, SIZES[e.name[1:]]) == inst.data[sym]


# ----------------------------------------------------------------------------- default
def test_nlist_relocates_into_vnet0(vkd: K.Kvm, vdump: SynthDump) -> None:
    v = _vt(vdump)
    assert v.selected == v.vnet0 and kdata(vdump).dumptid > 0
    assert vkd.vnet_current is None  # nothing selected before a lookup needs it
    _expect_copy(vkd, v, v.vnet0)
    assert vkd.vnet_current == v.vnet0
    assert vkd.geterr() == ""
    # the copies differ from one another and from the template
    a, b = (inst.data["vnet_entry_synth_table"] for inst in v.vnets)
    assert a != b and v.template["vnet_entry_synth_table"] not in (a, b)


def test_full_name_is_not_relocated(vkd: K.Kvm, vdump: SynthDump) -> None:
    v = _vt(vdump)
    res = vkd.nlist2(["vnet_entry_synth_ifcnt", "_vnet_entry_synth_table"])
    assert res.missing == 0
    for e, sym in zip(res.entries, ("vnet_entry_synth_ifcnt", "vnet_entry_synth_table"),
                      strict=True):
        assert e.value == v.entries[sym][0]
        assert vkd.read2(e.value, v.entries[sym][1]) == v.template[sym]
    # nothing was missing, so no vnet was selected
    assert vkd.vnet_current is None


def test_set_bounds_found_plainly(vkd: K.Kvm, vdump: SynthDump) -> None:
    v = _vt(vdump)
    res = vkd.nlist2(["___start_set_vnet", "___stop_set_vnet", "_vnet_head"])
    assert [e.value for e in res.entries[:2]] == [v.start, v.stop]
    assert v.stop - v.start == 8 + 32  # 4-byte ifcnt padded to 8, then the 32-byte table


def test_vnet_then_dpcpu_retry(vkd: K.Kvm, vdump: SynthDump) -> None:
    t = kdata(vdump)
    v = _vt(vdump)
    res = vkd.nlist2(["_synth_ifcnt", "_" + DPCPU_ENTRIES[0][0], "_no_such_thing"])
    assert res.missing == 1
    ifc, dp, none = res.entries
    assert ifc.value == (v.entries["vnet_entry_synth_ifcnt"][0] + v.vnet(v.vnet0).data_base) & U64
    assert dp.value == (t.dpcpu_entries["pcpu_entry_" + DPCPU_ENTRIES[0][0]][0]
                        + t.dpcpu_off[0]) & U64
    assert (none.type, none.value) == (0, 0)


def test_vnets_listing(vkd: K.Kvm, vdump: SynthDump) -> None:
    v = _vt(vdump)
    want = [VnetInfo(i.addr, i.data_base, i.data_mem, i.jids, False) for i in v.vnets]
    assert vkd.vnets() == [w if w.addr != vkd.vnet_current else
                           VnetInfo(w.addr, w.data_base, w.data_mem, w.jails, True)
                           for w in want]
    assert [i.addr for i in v.vnets][-1] == v.vnet0  # LIST_INSERT_HEAD: vnet0 last
    assert v.vnet(v.vnet0).jids == (0,) and v.vnets[0].jids == (v.jail_id,)


def test_select_by_jail_pid_vnet(vkd: K.Kvm, vdump: SynthDump) -> None:
    t = kdata(vdump)
    v = _vt(vdump)
    jail = v.vnets[0].addr
    _expect_copy(vkd, v, v.vnet0)
    assert vkd.vnet_select(jid=v.jail_id) == jail
    assert vkd.vnet_current == jail
    _expect_copy(vkd, v, jail)
    assert vkd.vnet_select(jid=0) == v.vnet0
    _expect_copy(vkd, v, v.vnet0)
    jailed = [p.pid for p in t.procs if p.jid == v.jail_id]
    assert jailed
    assert vkd.vnet_select(pid=jailed[0]) == jail
    _expect_copy(vkd, v, jail)
    assert vkd.vnet_select(pid=1) == v.vnet0
    assert vkd.vnet_select(vnet=jail) == jail
    _expect_copy(vkd, v, jail)
    assert [i.selected for i in vkd.vnets()] == [True, False]


def _raises(kd: K.Kvm, text: str, call: object) -> None:
    with pytest.raises(KvmError) as info:
        call()  # type: ignore[operator]
    assert str(info.value) == text
    assert kd.geterr() == text


def test_select_errors(one: SynthDump) -> None:
    v = _vt(one)
    lt = layout(one)
    with open_dump(one) as kd:
        _raises(kd, "vnet_select: give exactly one of vnet, jid or pid", lambda: kd.vnet_select())
        _raises(kd, "vnet_select: give exactly one of vnet, jid or pid",
                lambda: kd.vnet_select(jid=0, pid=0))
        _raises(kd, "no jail with jid 9999", lambda: kd.vnet_select(jid=9999))
        _raises(kd, "no process with pid 99999", lambda: kd.vnet_select(pid=99999))
        _raises(kd, f"can't read vnet at 0x{UNMAPPED:x}", lambda: kd.vnet_select(vnet=UNMAPPED))
        # a readable address that holds no vnet: its magic is what lies there
        off = lt.structs["vnet"].member("vnet_magic_n").offset
        magic = int.from_bytes(kd.read2(v.prison0 + off, 4), "little")
        assert magic != VNET_MAGIC_N
        _raises(kd, f"vnet at 0x{v.prison0:x}: invalid vnet magic# 0x{magic:x}",
                lambda: kd.vnet_select(vnet=v.prison0))
        assert kd.vnet_current is None  # no failed selection selects anything


# ----------------------------------------------------------------------------- no VIMAGE
@pytest.mark.parametrize("case", OLD_CASES, ids=["-".join(c) for c in OLD_CASES])
def test_no_vimage_no_translation(case: tuple[str, str, str], vroot: Path) -> None:
    d = build(vroot, *case)
    assert kdata(d).vnet is None
    with open_dump(d) as kd:
        res = kd.nlist2(NAMES + ["vnet_entry_synth_ifcnt", "___start_set_vnet", "_vnet_head"])
        assert res.missing == len(res.entries)
        assert all((e.type, e.value) == (0, 0) for e in res.entries)
        assert kd.vnet_current is None
        assert kd.geterr() == ""  # a kernel without VIMAGE fails silently
        _raises(kd, "no VNET support in this kernel (__start_set_vnet: no such symbol)",
                lambda: kd.vnets())
        _raises(kd, "no VNET support in this kernel (__start_set_vnet: no such symbol)",
                lambda: kd.vnet_select(jid=0))


# ----------------------------------------------------------------------------- errors
def _proc0_cred(kd: K.Kvm, d: SynthDump) -> int:
    t = kdata(d)
    return int.from_bytes(kd.read2(member_va(d, "proc", t.proc0, "p_ucred"), 8), "little")


def _patches(name: str, kd: K.Kvm, d: SynthDump) -> list[tuple[int, bytes]]:
    t = kdata(d)
    v = _vt(d)
    p0 = t.proc0
    pid = member_va(d, "proc", p0, "p_pid")
    nxt = member_va(d, "proc", p0, "p_list.le_next")
    cred = _proc0_cred(kd, d)
    if name == "magic":
        return [(member_va(d, "vnet", v.vnet0, "vnet_magic_n"), le(0xDEADBEEF, 4))]
    if name == "no jail":
        return [(member_va(d, "ucred", cred, "cr_prison"), le(0))]
    if name == "no vnet":
        return [(member_va(d, "prison", v.prison0, "pr_vnet"), le(0))]
    if name == "vnet":
        return [(member_va(d, "prison", v.prison0, "pr_vnet"), le(UNMAPPED))]
    if name == "prison":
        return [(member_va(d, "ucred", cred, "cr_prison"), le(UNMAPPED))]
    if name == "cred":
        return [(member_va(d, "proc", p0, "p_ucred"), le(UNMAPPED))]
    if name == "proc":  # proc0 is not pid 0 and leads to an unmapped "process"
        return [(pid, le(99999, 4)), (nxt, le(UNMAPPED))]
    if name == "not found":  # proc0 is not pid 0 and ends the list
        return [(pid, le(99999, 4)), (nxt, le(0))]
    if name == "cycle":  # proc0 is not pid 0 and points at itself
        return [(pid, le(99999, 4)), (nxt, le(p0))]
    raise AssertionError(name)


CORRUPT = [
    ("magic", "_kvm_vnet_selectpid: invalid vnet magic#"),
    ("no jail", "_kvm_vnet_selectpid: no jail"),
    ("no vnet", "_kvm_vnet_selectpid: no vnet"),
    ("vnet", "_kvm_vnet_selectpid: vnet"),
    ("prison", "_kvm_vnet_selectpid: prison"),
    ("cred", "_kvm_vnet_selectpid: cred"),
    ("proc", "_kvm_vnet_selectpid: proc"),
    ("not found", "_kvm_vnet_selectpid: pid/tid not found"),
    ("cycle", "_kvm_vnet_selectpid: pid/tid not found"),
]


@pytest.mark.parametrize(("name", "text"), CORRUPT, ids=[c[0] for c in CORRUPT])
def test_selectpid_texts(name: str, text: str, one: SynthDump, tmp_path: Path) -> None:
    with open_dump(one) as kd:
        patches = _patches(name, kd, one)
    core = patched(one, tmp_path, patches)
    with open_dump(one, core) as kd:
        res = kd.nlist2(NAMES)
        # VNET translation stays off; kvm_nlist goes on (DPCPU retry) and reports the count
        assert res.missing == len(NAMES)
        assert all((e.type, e.value) == (0, 0) for e in res.entries)
        assert kd.geterr() == text
        assert kd.vnet_current is None
        # a failure is retried by the next lookup that needs it, with the same result
        kd.err(None, "")
        assert kd.nlist2(NAMES[:1]).missing == 1 and kd.geterr() == text
        # plain names still resolve, and the extension can still choose a stack
        assert kd.nlist2(["_vnet_head"]).missing == 0
        if name in ("proc", "not found", "cycle", "cred", "no jail"):
            v = _vt(one)
            assert kd.vnet_select(vnet=v.vnet0) == v.vnet0
            _expect_copy(kd, v, v.vnet0)


def _aout_resolver(d: SynthDump, overrides: dict[str, int]) -> K.Resolver:
    """Exact names from the kernel's symbol table, then the a.out rule (one ``_`` less);
    ``overrides`` (bare names) answer first."""
    base = symtab_resolver(d.kernel)

    def resolve(name: str) -> int | None:
        bare = name[1:] if name.startswith("_") else name
        if bare in overrides:
            return overrides[bare]
        got = base(name)
        if got is None and name.startswith("_"):
            got = base(name[1:])
        return got if isinstance(got, int) or got is None else None

    return resolve


def test_dumptid_unreadable(one: SynthDump) -> None:
    with open_dump(one, resolver=_aout_resolver(one, {"dumptid": UNMAPPED})) as kd:
        assert kd.nlist2(NAMES).missing == len(NAMES)
        assert kd.geterr() == "_kvm_vnet_selectpid: dumptid"


def test_no_dumptid_walks_allproc_for_own_pid(one: SynthDump, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """``dumptid == 0`` (not a crash dump): start at ``&allproc`` and look for the
    caller's pid, as on a live kernel; a jailed pid selects the jail's stack."""
    t = kdata(one)
    v = _vt(one)
    with open_dump(one) as kd:
        dumptid = kd.nlist2(["_dumptid"]).entries[0].value
    core = patched(one, tmp_path, [(dumptid, le(0, 4))])
    jailed = next(p.pid for p in t.procs if p.jid == v.jail_id)
    monkeypatch.setattr(os, "getpid", lambda: jailed)
    with open_dump(one, core) as kd:
        _expect_copy(kd, v, v.vnets[0].addr)
        assert kd.vnet_current == v.vnets[0].addr
    monkeypatch.setattr(os, "getpid", lambda: 99999)
    with open_dump(one, core) as kd:
        assert kd.nlist2(NAMES).missing == len(NAMES)
        assert kd.geterr() == "_kvm_vnet_selectpid: pid/tid not found"


def test_resolver_sees_prefixed_names(one: SynthDump) -> None:
    """Through a resolver the retry asks for ``vnet_entry_<name>`` (api.md 10.5)."""
    asked: list[str] = []
    inner = _aout_resolver(one, {})

    def spy(name: str) -> int | None:
        asked.append(name)
        return inner(name)

    v = _vt(one)
    with open_dump(one, resolver=spy) as kd:
        e = kd.nlist2(["_synth_ifcnt"]).entries[0]
        assert e.type == N_DATA | N_EXT  # what kvm_fdnlist gives a resolved entry
        assert e.value == (v.entries["vnet_entry_synth_ifcnt"][0]
                           + v.vnet(v.vnet0).data_base) & U64
    assert asked[:2] == ["_synth_ifcnt", "___start_set_vnet"]
    assert "vnet_entry_synth_ifcnt" in asked


# ----------------------------------------------------------------------------- strict
@pytest.fixture
def foreign(one: SynthDump, monkeypatch: pytest.MonkeyPatch) -> Iterator[K.Kvm]:
    """A handle whose dump claims to be of another architecture."""
    with open_dump(one) as kd:
        assert kd.backend is not None
        monkeypatch.setattr(kd.backend, "native", lambda: False)
        yield kd


def test_default_reads_non_native(foreign: K.Kvm, one: SynthDump) -> None:
    t = kdata(one)
    v = _vt(one)
    assert not foreign.strict
    _expect_copy(foreign, v, v.vnet0)
    name = DPCPU_ENTRIES[0][0]
    e = foreign.nlist2(["_" + name]).entries[0]
    assert e.value == (t.dpcpu_entries["pcpu_entry_" + name][0] + t.dpcpu_off[0]) & U64
    assert pcpu.dpcpu_setcpu(foreign, 1) == 0
    e = foreign.nlist2(["_" + name]).entries[0]
    assert e.value == (t.dpcpu_entries["pcpu_entry_" + name][0] + t.dpcpu_off[1]) & U64


def test_strict_refuses_non_native(foreign: K.Kvm) -> None:
    foreign.strict = True
    name = DPCPU_ENTRIES[0][0]
    res = foreign.nlist2(NAMES + ["_" + name])
    # libkvm: VNET and DPCPU initialisation fail silently on a non-native dump
    assert res.missing == len(NAMES) + 1
    assert all((e.type, e.value) == (0, 0) for e in res.entries)
    assert foreign.geterr() == "" and foreign.vnet_current is None
    _raises(foreign, "kvm_dpcpu_setcpu: init failed", lambda: pcpu.dpcpu_setcpu(foreign, 0))


def test_strict_native_still_translates(one: SynthDump) -> None:
    v = _vt(one)
    kd = K.open2(one.kernel, one.core, strict=True)
    try:
        if one.debug is not None:
            kd.attach_debug(one.debug)
        assert kd.strict
        if kd.native():
            _expect_copy(kd, v, v.vnet0)
            assert pcpu.dpcpu_setcpu(kd, 0) == 0
    finally:
        kd.close()
    for opener in (lambda: K.openfiles(one.kernel, one.core, strict=True),
                   lambda: K.open(one.kernel, one.core, strict=True)):
        with opener() as h:
            assert h.strict
    with K.openfiles(one.kernel, one.core) as h:
        assert not h.strict
