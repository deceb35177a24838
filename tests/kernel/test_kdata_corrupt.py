"""Corrupt kernel data in copies of a core: cyclic lists, wild pointers, absurd counts end
in a KvmError or libkvm's documented partial result, never a hang or another exception."""

from __future__ import annotations

from pathlib import Path

import pytest
from kdata_helpers import UNMAPPED, build, kdata, layout, le, member_va, open_dump, patched

from pykvm import kvm as K
from pykvm.constants import KERN_PROC_ALL, KERN_PROC_PID, KERN_PROC_PROC
from pykvm.errors import KvmError
from pykvm.kernel import cptime, msgbuf, pcpu, procs, swap
from pykvm.synth import SynthDump


@pytest.fixture(scope="module", params=["ctf-v3", "dwarf"])
def base(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> SynthDump:
    return build(tmp_path_factory.mktemp("corrupt"), str(request.param), "12")


def _open(d: SynthDump, tmp: Path, patches: list[tuple[int, bytes]]) -> K.Kvm:
    return open_dump(d, patched(d, tmp, patches))


def _hole_after_data(kd: K.Kvm) -> int:
    """The first page after the kernel's data (``allproc``) that is not in the dump."""
    page = kd.nlist2(["_allproc"])["_allproc"].value & ~0xFFF
    while True:
        page += 0x1000
        try:
            kd.read2(page, 1)
        except KvmError:
            return page


def _allproc_addrs(d: SynthDump) -> list[int]:
    kdt = kdata(d)
    return [p.addr for p in kdt.procs if p.list_name == "allproc"]


@pytest.mark.parametrize("op", [KERN_PROC_ALL, KERN_PROC_PROC, KERN_PROC_PID])
def test_cyclic_allproc(base: SynthDump, tmp_path: Path, op: int) -> None:
    addrs = _allproc_addrs(base)
    last = member_va(base, "proc", addrs[-1], "p_list.le_next")
    with _open(base, tmp_path, [(last, le(addrs[0]))]) as kd:
        with pytest.raises(KvmError, match="^allproc corrupt: a cycle"):
            procs.getprocs(kd, op, 99999)
        assert kd.geterr().startswith("allproc corrupt")


def test_cyclic_threads(base: SynthDump, tmp_path: Path) -> None:
    p = next(p for p in kdata(base).procs if len(p.threads) > 1)
    tds = [td.addr for td in p.threads]
    last = member_va(base, "thread", tds[-1], "td_plist.tqe_next")
    with _open(base, tmp_path, [(last, le(tds[0]))]) as kd:
        with pytest.raises(KvmError, match="^thread list of the process at 0x"):
            procs.getprocs(kd, KERN_PROC_ALL)
        # one record per process does not follow the thread list
        assert len(procs.getprocs(kd, KERN_PROC_PROC)) == len(kdata(base).procs)


def test_overlapping_threads(base: SynthDump, tmp_path: Path) -> None:
    """A thread list leading into the middle of a thread already listed (real threads
    never overlap): pykvm's overlap text, so a corrupt dump cannot make more records than
    its size allows."""
    p = next(p for p in kdata(base).procs if len(p.threads) > 1)
    tds = [td.addr for td in p.threads]
    last = member_va(base, "thread", tds[-1], "td_plist.tqe_next")
    inside = tds[0] + 8
    with _open(base, tmp_path, [(last, le(inside))]) as kd:
        with pytest.raises(KvmError) as exc:
            procs.getprocs(kd, KERN_PROC_ALL)
        assert str(exc.value) == (
            f"thread list of the process at {p.addr:#x} corrupt: the struct thread at "
            f"{inside:#x} overlaps another or is listed twice")


def test_thread_in_two_processes(base: SynthDump, tmp_path: Path) -> None:
    """Two processes whose thread lists share a thread: listed once, then refused."""
    multi = [p for p in kdata(base).procs if not p.zombie and p.threads]
    a, b = multi[0], multi[1]
    head = member_va(base, "proc", b.addr, "p_threads.tqh_first")
    with _open(base, tmp_path, [(head, le(a.threads[0].addr))]) as kd:
        with pytest.raises(KvmError) as exc:
            procs.getprocs(kd, KERN_PROC_ALL)
        assert str(exc.value) == (
            f"thread list of the process at {b.addr:#x} corrupt: the struct thread at "
            f"{a.threads[0].addr:#x} overlaps another or is listed twice")


def test_overlapping_procs(base: SynthDump, tmp_path: Path) -> None:
    addrs = _allproc_addrs(base)
    va = member_va(base, "proc", addrs[1], "p_list.le_next")
    inside = addrs[0] + 16
    with _open(base, tmp_path, [(va, le(inside))]) as kd:
        with pytest.raises(KvmError) as exc:
            procs.getprocs(kd, KERN_PROC_PROC)
        assert str(exc.value) == (
            f"allproc corrupt: the struct proc at {inside:#x} overlaps another")


def test_wild_proc_pointer(base: SynthDump, tmp_path: Path) -> None:
    addrs = _allproc_addrs(base)
    va = member_va(base, "proc", addrs[1], "p_list.le_next")
    with _open(base, tmp_path, [(va, le(UNMAPPED))]) as kd:
        with pytest.raises(KvmError, match=f"^can't read proc at 0x{UNMAPPED:x}$"):
            procs.getprocs(kd, KERN_PROC_PROC)


@pytest.mark.parametrize("member,what", [("p_pgrp", "pgrp"), ("p_sigacts", "sigacts"),
                                         ("p_pptr", "pproc"),
                                         ("p_threads.tqh_first", "thread")])
def test_wild_members(base: SynthDump, tmp_path: Path, member: str, what: str) -> None:
    p = next(p for p in kdata(base).procs if not p.zombie and p.pid > 1)
    va = member_va(base, "proc", p.addr, member)
    with _open(base, tmp_path, [(va, le(UNMAPPED))]) as kd:
        with pytest.raises(KvmError, match=f"^can't read {what} at 0x{UNMAPPED:x}$"):
            procs.getprocs(kd, KERN_PROC_PROC)


def test_zombproc_failure_keeps_allproc(base: SynthDump, tmp_path: Path) -> None:
    kdt = kdata(base)
    zombies = [p for p in kdt.procs if p.list_name == "zombproc"]
    assert zombies, "era 12 keeps zombies on zombproc"
    va = member_va(base, "proc", zombies[0].addr, "p_pgrp")
    with _open(base, tmp_path, [(va, le(UNMAPPED))]) as kd:
        got = procs.getprocs(kd, KERN_PROC_PROC)
        assert [k.pid for k in got] == [p.pid for p in kdt.procs if p.list_name == "allproc"]
        assert kd.geterr() == f"can't read pgrp at 0x{UNMAPPED:x}"


def test_absurd_maxcpus(base: SynthDump, tmp_path: Path) -> None:
    with open_dump(base) as kd0:
        va = kd0.nlist2(["_mp_maxcpus"]).entries[0].value
    with _open(base, tmp_path, [(va, le(1 << 30, 4))]) as kd:
        with pytest.raises(KvmError, match="^out of memory$"):
            pcpu.getmaxcpu(kd)
        assert pcpu.counter_u64_fetch(kd, 0) == 0


def test_msgbuf_magic_and_size(base: SynthDump, tmp_path: Path) -> None:
    m = kdata(base).msgbuf
    magic = member_va(base, "msgbuf", m.addr, "msg_magic")
    with _open(base, tmp_path / "a", [(magic, le(0x1234, 4))]) as kd:
        with pytest.raises(KvmError, match="^message buffer magic 0x1234 is not"):
            msgbuf.msgbuf(kd)
    size = member_va(base, "msgbuf", m.addr, "msg_size")
    with _open(base, tmp_path / "b", [(size, le(0, 4))]) as kd:
        with pytest.raises(KvmError, match="^message buffer size 0 is not usable$"):
            msgbuf.msgbuf(kd)


def test_cyclic_swtailq(base: SynthDump, tmp_path: Path) -> None:
    sw = kdata(base).swap
    va = member_va(base, "swdevt", sw[-1].addr, "sw_list.tqe_next")
    with _open(base, tmp_path, [(va, le(sw[0].addr))]) as kd:
        with pytest.raises(KvmError, match="^swtailq corrupt"):
            swap.getswapinfo(kd, 8)


def test_wild_swdevt(base: SynthDump, tmp_path: Path) -> None:
    sw = kdata(base).swap
    va = member_va(base, "swdevt", sw[0].addr, "sw_list.tqe_next")
    with _open(base, tmp_path, [(va, le(UNMAPPED))]) as kd:
        with pytest.raises(KvmError, match="^cannot read swinfo$") as exc:
            swap.getswapinfo(kd, 8)
        # what libkvm had stored in swap_ary: the first device's row
        assert isinstance(exc.value.partial, list)
        assert [(r.devname, r.used) for r in exc.value.partial] == [(sw[0].name, sw[0].used)]


def test_unreadable_pcpu_keeps_partial_sums(base: SynthDump, tmp_path: Path) -> None:
    """kvm_getcptime zeroes cp_time and adds CPU by CPU: a CPU it cannot read leaves the
    sums of the CPUs before it (``KvmError.partial``)."""
    t = kdata(base)
    with open_dump(base) as kd:
        slot = kd.nlist2(["_cpuid_to_pcpu"]).entries[0].value + 8 * 2
    with _open(base, tmp_path, [(slot, le(UNMAPPED))]) as kd:
        with pytest.raises(KvmError, match="^unable to read per-CPU data$") as exc:
            cptime.getcptime(kd)
        assert exc.value.partial == [a + b for a, b in zip(t.cp_time[0], t.cp_time[1],
                                                           strict=True)]


def test_out_of_memory_is_libkvms_allocation_failure(base: SynthDump,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """A host that runs out of memory during the walk: libkvm's allocation text."""
    real = procs._FastWalk.proclist

    def exhausted(*args: object, **kw: object) -> None:
        raise MemoryError

    monkeypatch.setattr(procs._FastWalk, "proclist", exhausted)
    with open_dump(base) as kd:
        n = kdata(base).nprocs * 10
        with pytest.raises(KvmError) as exc:
            procs.getprocs(kd, KERN_PROC_ALL)
        assert str(exc.value) == f"can't allocate {n * 1088} bytes: Cannot allocate memory"
    monkeypatch.setattr(procs._FastWalk, "proclist", real)


def test_wmesg_read_across_a_hole_keeps_the_prefix(base: SynthDump, tmp_path: Path) -> None:
    """libkvm's kvm_read copies page by page into ki_wmesg and gives up at the page that
    does not translate: the bytes before it replace the previous thread's, the rest stay
    (kernel-data.md 1.9 quirk 8)."""
    kt = kdata(base)
    p = next(p for p in kt.procs if not p.zombie and len(p.threads) >= 2
             and p.threads[0].wmesg)
    with open_dump(base) as kd:
        page = _hole_after_data(kd)
    addr = page - 4
    wm = member_va(base, "thread", p.threads[1].addr, "td_wmesg")
    with _open(base, tmp_path, [(addr, b"ABCD"), (wm, le(addr))]) as kd:
        for strict in (False, True):
            recs = [r for r in procs.getprocs(kd, KERN_PROC_ALL, strict=strict)
                    if r.pid == p.pid]
            first = recs[0].wmesg
            assert first[:len(p.threads[0].wmesg)] == p.threads[0].wmesg.encode()[:8]
            assert recs[1].wmesg == b"ABCD" + first[4:]


VM_FIELDS = (("size", "vm_map.size"), ("rssize", "vm_pmap.pm_stats.resident_count"),
             ("swrss", "vm_swrss"), ("tsize", "vm_tsize"), ("dsize", "vm_dsize"),
             ("ssize", "vm_ssize"))


def test_vmspace_read_across_a_hole_overlays_the_previous(base: SynthDump,
                                                          tmp_path: Path) -> None:
    """``(void)kvm_read`` of a vmspace whose tail does not translate: the bytes before the
    hole land over the previous process's vmspace, whose other bytes stay (0.4)."""
    kt = kdata(base)
    lt = layout(base)
    vm_st = lt.structs["vmspace"]
    procs_in_walk = [p for p in kt.procs if p.list_name == "allproc"]
    a, b = procs_in_walk[2], procs_in_walk[3]
    with open_dump(base) as kd:
        a_vm = next(k for k in procs.getprocs(kd, KERN_PROC_PROC) if k.pid == a.pid).vmspace
        a_raw = kd.read2(a_vm, vm_st.size)
        page = _hole_after_data(kd)
    # the bytes copied before the hole reach just past the first vmspace field read
    ends = sorted(vm_st.member(path).offset + vm_st.member(path).size for _n, path in VM_FIELDS)
    prefix = bytes((0x41 + i) % 256 for i in range(ends[0]))
    where = page - len(prefix)
    ptr = member_va(base, "proc", b.addr, "p_vmspace")
    with _open(base, tmp_path, [(where, prefix), (ptr, le(where))]) as kd:
        overlay = prefix + a_raw[len(prefix):]
        for strict in (False, True):
            got = next(k for k in procs.getprocs(kd, KERN_PROC_PROC, strict=strict)
                       if k.pid == b.pid)
            changed = 0
            for name, path in VM_FIELDS:
                m = vm_st.member(path)
                want = int.from_bytes(overlay[m.offset:m.offset + m.size], "little")
                assert getattr(got, name) % (1 << (8 * m.size)) == want, name
                changed += want != int.from_bytes(a_raw[m.offset:m.offset + m.size], "little")
            assert changed >= 1  # a field from the new bytes, the others the previous one's


def test_sysentvec_read_across_a_hole_overlays_the_previous(base: SynthDump,
                                                            tmp_path: Path) -> None:
    """A ``struct sysentvec`` readable only up to just past ``sv_name``: that prefix lands
    over the previous process's sysentvec, and the emulation name is read through the new
    ``sv_name`` (here: the kernel's ``version`` string)."""
    kt = kdata(base)
    lt = layout(base)
    sv_st = lt.structs["sysentvec"]
    name_m = sv_st.member("sv_name")
    walk = [p for p in kt.procs if p.list_name == "allproc"]
    b = walk[3]
    with open_dump(base) as kd:
        version = kd.nlist2(["_version"])["_version"].value
        text = kd.read2(version, 16)
        page = _hole_after_data(kd)
    n = name_m.offset + name_m.size
    prefix = bytes(name_m.offset) + le(version, name_m.size)
    where = page - n
    ptr = member_va(base, "proc", b.addr, "p_sysent")
    with _open(base, tmp_path, [(where, prefix), (ptr, le(where))]) as kd:
        for strict in (False, True):
            recs = {k.pid: k for k in procs.getprocs(kd, KERN_PROC_PROC, strict=strict)}
            want = text.split(b"\0")[0][:15]
            assert recs[b.pid].emul == want
            assert recs[walk[4].pid].emul == b.emul.encode()[:15]  # a whole sysentvec again
