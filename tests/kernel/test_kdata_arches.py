"""The kernel-data calls on every architecture whose synthetic builder lays out kernel data.

A format joins automatically when its architecture's ``build`` accepts ``types=``: each
such format is built with a CTF v3 kernel, and the default format also with CTF v2 (an
older era) and DWARF.  Every call's result is compared with the builder's truth, decoded
in the dump's own byte order and word size; strict mode must refuse non-native dumps with
libkvm's texts (Appendix B row 1) while the default reads them.
"""

from __future__ import annotations

import inspect
import struct
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kdata_helpers import check_record, kdata, open_dump

from pykvm import errors as E
from pykvm import kvm as K
from pykvm.constants import (
    KERN_PROC_ALL,
    KERN_PROC_GID,
    KERN_PROC_INC_THREAD,
    KERN_PROC_PGRP,
    KERN_PROC_PID,
    KERN_PROC_PROC,
    KERN_PROC_RGID,
    KERN_PROC_RUID,
    KERN_PROC_SESSION,
    KERN_PROC_TTY,
    KERN_PROC_UID,
)
from pykvm.errors import KvmError
from pykvm.kernel import cptime, loadavg, msgbuf, pcpu, procs, swap
from pykvm.synth import ARCHES, SynthDump, arch_module, default_format, formats
from pykvm.synth import build as synth_build
from pykvm.synth.kerneldata import ProcTruth

#: the era each architecture's kernels are built in (MIPS left FreeBSD after 13)
ERA = {"mips": "13"}
OLD_ERA = {"mips": "11", "powerpc64": "12"}


def _cases() -> list[tuple[str, str, str, str]]:
    out: list[tuple[str, str, str, str]] = []
    for arch in ARCHES:
        if arch == "amd64":  # tests/kernel/test_kdata_*.py cover every amd64 case
            continue
        if "types" not in inspect.signature(arch_module(arch).build).parameters:
            continue
        era = ERA.get(arch, "14")
        for fmt in formats(arch):
            # ARMv4/v5 kernels (the arm "v4" formats) left FreeBSD before 13
            out.append((arch, fmt, "ctf-v3", "12" if arch == "arm" and "v4" in fmt else era))
        dflt = default_format(arch)
        out.append((arch, dflt, "ctf-v2", OLD_ERA.get(arch, "11")))
        out.append((arch, dflt, "dwarf", era))
    return out


CASES = _cases()
_BUILT: dict[tuple[str, str, str, str], SynthDump] = {}


@pytest.fixture(scope="module")
def aroot(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("kdata-arches")


@pytest.fixture(scope="module", params=CASES, ids=["-".join(c) for c in CASES])
def adump(request: pytest.FixtureRequest, aroot: Path) -> SynthDump:
    case = request.param
    if case not in _BUILT:
        arch, fmt, types, era = case
        d = aroot / "-".join(case)
        d.mkdir()
        _BUILT[case] = synth_build(arch, d, 11, fmt, types=types, era=era)
    return _BUILT[case]


def test_every_architecture_joins() -> None:
    """Every architecture but amd64 (covered by the other kdata tests) lays out kernel
    data in every format."""
    assert {c[0] for c in CASES} == set(ARCHES) - {"amd64"}
    assert {(c[0], c[1]) for c in CASES} == {
        (a, f) for a in ARCHES if a != "amd64" for f in formats(a)}


@pytest.fixture
def akd(adump: SynthDump) -> Iterator[K.Kvm]:
    with open_dump(adump) as kd:
        yield kd


def _order(d: SynthDump) -> str:
    tl = d.truth.type_layout
    assert tl is not None
    return "<" if tl.target.byteorder == "little" else ">"


def test_procs(akd: K.Kvm, adump: SynthDump) -> None:
    t = kdata(adump)
    got = procs.getprocs(akd, KERN_PROC_PROC)
    assert [k.pid for k in got] == t.pids()
    for k, p in zip(got, t.procs, strict=True):
        check_record(k, p)
        if not p.zombie:
            td = p.threads[0]
            assert (k.tid, k.tdname) == (td.tid, td.name.encode()[:16])
    every = procs.getprocs(akd, KERN_PROC_ALL)
    want = [(p, td) for p in t.procs for td in (p.threads[:1] if p.zombie else p.threads)]
    assert len(every) == len(want)
    for k, (p, td) in zip(every, want, strict=True):
        check_record(k, p)
        if not p.zombie:
            assert (k.tid, k.tdname) == (td.tid, td.name.encode()[:16])
            assert (k.pri_level, k.pri_native) == (td.priority, td.base_pri)
    p = t.procs[len(t.procs) // 2]
    assert [k.pid for k in procs.getprocs(akd, KERN_PROC_PID, p.pid)] == [p.pid]
    assert [k.pid for k in procs.getprocs(akd, KERN_PROC_UID, p.uid)] == [
        q.pid for q in t.procs if q.uid == p.uid]


#: kernel-data.md 1.2 and 1.5: each filter op and the truth value its ``arg`` matches
#: (GID compares ``ki_groups[0]``, the effective gid libkvm copies first)
FILTERS: tuple[tuple[str, int, Callable[[ProcTruth], int]], ...] = (
    ("PID", KERN_PROC_PID, lambda q: q.pid),
    ("PGRP", KERN_PROC_PGRP, lambda q: q.pgid),
    ("SESSION", KERN_PROC_SESSION, lambda q: q.sid),
    ("UID", KERN_PROC_UID, lambda q: q.uid),
    ("RUID", KERN_PROC_RUID, lambda q: q.ruid),
    ("RGID", KERN_PROC_RGID, lambda q: q.rgid),
    ("GID", KERN_PROC_GID, lambda q: q.groups[0]),
)


@pytest.mark.parametrize("inc", [0, KERN_PROC_INC_THREAD], ids=["procs", "threads"])
def test_procs_filters(akd: K.Kvm, adump: SynthDump, inc: int) -> None:
    """Every op (with and without KERN_PROC_INC_THREAD) selects exactly the processes
    the truth says, in list order, one record per thread with INC_THREAD (a zombie's
    one linked thread gives one record)."""
    t = kdata(adump)

    def per(ps: list[ProcTruth]) -> list[tuple[int, int]]:
        if not inc:
            return [(p.pid, p.threads[0].tid if not p.zombie else 0) for p in ps]
        return [(p.pid, 0 if p.zombie else td.tid)
                for p in ps for td in (p.threads[:1] if p.zombie else p.threads)]

    def got(op: int, arg: int) -> list[tuple[int, int]]:
        return [(k.pid, k.tid) for k in procs.getprocs(akd, op | inc, arg)]

    for name, op, key in FILTERS:
        values = sorted({key(q) for q in t.procs})
        assert len(values) > 1 or name == "GID", (name, values)  # a filter that filters
        for v in values:
            want = per([q for q in t.procs if key(q) == v])
            assert want, (name, v)
            assert got(op, v) == want, (name, v)
    # arg -1 is (uid_t)-1, which no process has: nothing, not everything
    assert got(KERN_PROC_UID, -1) == per([q for q in t.procs if q.uid == 0xFFFFFFFF])
    # TTY: -1 is NODEV, and every process with a controlling tty has ki_tdev == NODEV
    ttys = [q for q in t.procs if q.tty]
    assert ttys and len(ttys) < len(t.procs)
    assert got(KERN_PROC_TTY, -1) == per(ttys)
    assert got(KERN_PROC_TTY, 0) == []
    assert got(KERN_PROC_PID, 99999) == []
    assert akd.geterr() == ""  # nothing matched: NULL without a message
    # unknown ops behave like KERN_PROC_PROC (per-thread with the 0x10 bit)
    assert got(77, 0) == per(list(t.procs))


def test_loadavg_cptime(akd: K.Kvm, adump: SynthDump) -> None:
    t = kdata(adump)
    assert loadavg.getloadavg(akd, 3) == [v / t.fscale for v in t.ldavg]
    assert cptime.getcptime(akd) == list(t.cp_time_sum)


def test_pcpu_and_dpcpu(akd: K.Kvm, adump: SynthDump) -> None:
    t = kdata(adump)
    assert pcpu.getmaxcpu(akd) == t.maxcpu
    assert pcpu.getncpus(akd) == t.ncpus
    size = akd.types.sizeof("pcpu")
    mask = (1 << (8 * t.layout.target.ptr_size)) - 1
    for cpu in range(t.ncpus):
        raw = pcpu.getpcpu(akd, cpu)
        assert raw == akd.read2(t.pcpu[cpu], size)
        view = pcpu.pcpu_view(akd, cpu)
        assert view is not None and int(view.pc_cpuid) == cpu
        assert tuple(view.pc_cp_time) == t.cp_time[cpu]
        assert pcpu.dpcpu_setcpu(akd, cpu) == 0
        for name, values in t.dpcpu_values.items():
            va = akd.nlist2(["_" + name]).entries[0].value
            assert va == (t.dpcpu_entries["pcpu_entry_" + name][0] + t.dpcpu_off[cpu]) & mask
            assert struct.unpack(_order(adump) + "Q", akd.read2(va, 8))[0] == values[cpu]


def test_msgbuf(akd: K.Kvm, adump: SynthDump) -> None:
    m = kdata(adump).msgbuf
    assert msgbuf.msgbuf(akd) == (m.unread, m.whole)


def test_swap(akd: K.Kvm, adump: SynthDump) -> None:
    t = kdata(adump)
    dmmax = t.dmmax if t.dmmax is not None else t.nsw_cluster_max
    rows = [(s.name, s.used, s.nblks - dmmax) for s in t.swap]
    rows.append(("", sum(r[1] for r in rows), sum(r[2] for r in rows)))
    got = swap.getswapinfo(akd, 16)
    assert [(r.devname, r.used, r.total) for r in got] == rows


def test_strict_non_native(akd: K.Kvm) -> None:
    if akd.native():
        pytest.skip("native on this host")
    for call, text in ((lambda: procs.getprocs(akd, KERN_PROC_PROC, strict=True),
                        E.PROCS_NON_NATIVE),
                       (lambda: loadavg.getloadavg(akd, 3, strict=True), E.LOADAVG_NON_NATIVE),
                       (lambda: swap.getswapinfo(akd, 4, strict=True), E.SWAP_NON_NATIVE),
                       (lambda: cptime.getcptime(akd, strict=True), E.CPTIME_NON_NATIVE)):
        with pytest.raises(KvmError) as exc:
            call()
        assert str(exc.value) == text
        assert akd.geterr() == text


def test_vnet(akd: K.Kvm, adump: SynthDump) -> None:
    """VIMAGE kernels (era 12+): a name nlist cannot find is relocated into vnet0's copy
    of ``set_vnet`` (proc0 -> prison0 -> vnet0 on a dump), in the dump's word size; other
    stacks are selectable by jail."""
    t = kdata(adump)
    v = t.vnet
    if v is None:
        assert int(t.era) < 12
        assert akd.nlist2(["_synth_ifcnt"]).missing == 1
        return
    mask = (1 << (8 * t.layout.target.ptr_size)) - 1
    for name in ("synth_ifcnt", "synth_table"):
        addr, size = v.entries["vnet_entry_" + name]
        e = akd.nlist2(["_" + name]).entries[0]
        assert e.value == (addr + v.vnet(v.vnet0).data_base) & mask
        assert akd.read2(e.value, size) == v.vnet(v.vnet0).data["vnet_entry_" + name]
    assert akd.vnet_current == v.vnet0
    jail = next(inst for inst in v.vnets if v.jail_id in inst.jids)
    assert akd.vnet_select(jid=v.jail_id) == jail.addr
    e = akd.nlist2(["_synth_table"]).entries[0]
    size = v.entries["vnet_entry_synth_table"][1]
    assert akd.read2(e.value, size) == jail.data["vnet_entry_synth_table"]
