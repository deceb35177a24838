"""Corrupt kernel data on other architectures: the cases of test_kdata_corrupt.py on a
big-endian 64-bit dump (powerpc64 minidump-hpt), a little-endian 32-bit one (i386), and
two big-endian 32-bit ones (powerpc ELF, mips o32).

Every patched value is written in the dump's byte order and word size.  Each call ends
in a KvmError with libkvm's (or pykvm's) exact text, or in libkvm's documented partial
result (kernel-data.md 1.4, 1.5, 6, 7A, 4.4): never another exception, never a hang (an
alarm fails a test that runs away).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from kdata_helpers import (
    CORRUPT_BASES,
    corrupt_base,
    hang_alarm,
    kdata,
    layout,
    member_va,
    open_dump,
    packed,
    patched,
    ptr_size,
    unmapped,
)

from pykvm import kvm as K
from pykvm.constants import (
    KERN_PROC_ALL,
    KERN_PROC_INC_THREAD,
    KERN_PROC_PID,
    KERN_PROC_PROC,
    KERN_PROC_UID,
)
from pykvm.errors import KvmError
from pykvm.kernel import procs
from pykvm.synth import SynthDump
from pykvm.synth.kerneldata import ProcTruth

BASES = CORRUPT_BASES
#: seconds a single test may take before it counts as a hang
HANG = 60


@pytest.fixture(scope="module", params=BASES, ids=["-".join(b) for b in BASES])
def base(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> SynthDump:
    return corrupt_base(tmp_path_factory.mktemp(f"corrupt-{request.param[0]}"), request.param)


@pytest.fixture(autouse=True)
def no_hang() -> Iterator[None]:
    """Fail (instead of hanging the suite) when a walk does not end."""
    with hang_alarm(HANG):
        yield


def _open(d: SynthDump, tmp: Path, patches: list[tuple[int, bytes]]) -> K.Kvm:
    return open_dump(d, patched(d, tmp, patches))


def _sym(d: SynthDump, name: str) -> int:
    with open_dump(d) as kd:
        return kd.nlist2(["_" + name]).entries[0].value


def _allproc(d: SynthDump) -> list[ProcTruth]:
    return [p for p in kdata(d).procs if p.list_name == "allproc"]


def _records(ps: list[ProcTruth], inc: bool) -> list[tuple[int, int]]:
    """(pid, tid) of the records libkvm makes for ``ps`` (kernel-data.md 1.5)."""
    if not inc:
        return [(p.pid, 0 if p.zombie else p.threads[0].tid) for p in ps]
    return [(p.pid, 0 if p.zombie else td.tid)
            for p in ps for td in (p.threads[:1] if p.zombie else p.threads)]


def _got(kd: K.Kvm, op: int, arg: int = 0) -> list[tuple[int, int]]:
    return [(k.pid, k.tid) for k in procs.getprocs(kd, op, arg)]


def test_the_bases(base: SynthDump) -> None:
    """The dumps are what the module says: word size, byte order, zombproc in use."""
    want = {"powerpc64": (8, "big"), "i386": (4, "little"), "powerpc": (4, "big"),
            "mips": (4, "big")}[base.arch]
    assert (ptr_size(base), layout(base).target.byteorder) == want
    assert kdata(base).zombproc, "era 12 keeps zombies on zombproc"
    with open_dump(base) as kd:
        assert not kd.native()
        assert _got(kd, KERN_PROC_PROC) == _records(list(kdata(base).procs), False)


# ------------------------------------------------------------------ process lists
@pytest.mark.parametrize("op", [KERN_PROC_ALL, KERN_PROC_PROC, KERN_PROC_PID])
def test_cyclic_allproc(base: SynthDump, tmp_path: Path, op: int) -> None:
    addrs = [p.addr for p in _allproc(base)]
    last = member_va(base, "proc", addrs[-1], "p_list.le_next")
    with _open(base, tmp_path, [(last, packed(base, addrs[0]))]) as kd:
        with pytest.raises(KvmError) as exc:
            procs.getprocs(kd, op, 99999)
        assert str(exc.value) == "allproc corrupt: a cycle or more than 4194304 processes"
        assert kd.geterr() == str(exc.value)


def test_cyclic_allproc_to_the_middle(base: SynthDump, tmp_path: Path) -> None:
    """A cycle that does not close on the head is found too."""
    addrs = [p.addr for p in _allproc(base)]
    last = member_va(base, "proc", addrs[-1], "p_list.le_next")
    with _open(base, tmp_path, [(last, packed(base, addrs[2]))]) as kd:
        with pytest.raises(KvmError, match="^allproc corrupt: a cycle or more than"):
            procs.getprocs(kd, KERN_PROC_PROC)


def test_cyclic_threads(base: SynthDump, tmp_path: Path) -> None:
    t = kdata(base)
    p = next(p for p in t.procs if len(p.threads) > 1 and not p.zombie)
    tds = [td.addr for td in p.threads]
    last = member_va(base, "thread", tds[-1], "td_plist.tqe_next")
    with _open(base, tmp_path, [(last, packed(base, tds[0]))]) as kd:
        with pytest.raises(KvmError) as exc:
            procs.getprocs(kd, KERN_PROC_ALL)
        assert str(exc.value) == (f"thread list of the process at 0x{p.addr:x} corrupt: "
                                  "a cycle or more than 4194304 threads")
        assert kd.geterr() == str(exc.value)
        # one record per process does not follow the thread list
        assert _got(kd, KERN_PROC_PROC) == _records(list(t.procs), False)
        # nor does a PID filter that skips the process
        other = next(q for q in t.procs if q.pid != p.pid and not q.zombie)
        assert _got(kd, KERN_PROC_PID | KERN_PROC_INC_THREAD, other.pid) == \
            _records([other], True)


def test_wild_proc_pointer(base: SynthDump, tmp_path: Path) -> None:
    bad = unmapped(base)
    va = member_va(base, "proc", _allproc(base)[1].addr, "p_list.le_next")
    with _open(base, tmp_path, [(va, packed(base, bad))]) as kd:
        with pytest.raises(KvmError) as exc:
            procs.getprocs(kd, KERN_PROC_PROC)
        assert str(exc.value) == f"can't read proc at 0x{bad:x}"
        assert kd.geterr() == f"can't read proc at 0x{bad:x}"


def test_wild_allproc_head(base: SynthDump, tmp_path: Path) -> None:
    bad = unmapped(base)
    with _open(base, tmp_path, [(_sym(base, "allproc"), packed(base, bad))]) as kd:
        with pytest.raises(KvmError) as exc:
            procs.getprocs(kd, KERN_PROC_ALL)
        assert str(exc.value) == f"can't read proc at 0x{bad:x}"


@pytest.mark.parametrize("member,what", [("p_pgrp", "pgrp"), ("p_sigacts", "sigacts"),
                                         ("p_pptr", "pproc"),
                                         ("p_threads.tqh_first", "thread")])
def test_wild_members(base: SynthDump, tmp_path: Path, member: str, what: str) -> None:
    bad = unmapped(base)
    p = next(p for p in _allproc(base) if not p.zombie and p.pid > 1)
    va = member_va(base, "proc", p.addr, member)
    with _open(base, tmp_path, [(va, packed(base, bad))]) as kd:
        with pytest.raises(KvmError) as exc:
            procs.getprocs(kd, KERN_PROC_PROC)
        assert str(exc.value) == f"can't read {what} at 0x{bad:x}"
        assert kd.geterr() == str(exc.value)


def test_wild_ucred(base: SynthDump, tmp_path: Path) -> None:
    """kernel-data.md 1.5 step 4: an unreadable ucred leaves every credential field 0
    and the process is still listed (and filtered with those zeros)."""
    t = kdata(base)
    p = next(p for p in _allproc(base) if not p.zombie and p.uid != 0 and p.jid == 0)
    va = member_va(base, "proc", p.addr, "p_ucred")
    with _open(base, tmp_path, [(va, packed(base, unmapped(base)))]) as kd:
        got = procs.getprocs(kd, KERN_PROC_PROC)
        assert [k.pid for k in got] == t.pids()
        k = next(k for k in got if k.pid == p.pid)
        assert (k.uid, k.ruid, k.svuid, k.rgid, k.svgid) == (0, 0, 0, 0, 0)
        assert (k.ngroups, tuple(k.groups), k.jid) == (0, (), 0)
        assert (k.ppid, k.pgid, k.sid) == (p.ppid, p.pgid, p.sid)
        assert k.comm == p.comm.encode()[:18]
        for other, q in zip(got, t.procs, strict=True):
            if q.pid != p.pid:
                assert (other.uid, other.ruid, other.groups) == (q.uid, q.ruid, q.groups)
        # the uid filter now sees uid 0 for that process
        assert p.pid not in [k.pid for k in procs.getprocs(kd, KERN_PROC_UID, p.uid)]
        assert p.pid in [k.pid for k in procs.getprocs(kd, KERN_PROC_UID, 0)]


def test_zombproc_failure_keeps_allproc(base: SynthDump, tmp_path: Path) -> None:
    bad = unmapped(base)
    zombies = [p for p in kdata(base).procs if p.list_name == "zombproc"]
    va = member_va(base, "proc", zombies[0].addr, "p_pgrp")
    with _open(base, tmp_path, [(va, packed(base, bad))]) as kd:
        assert _got(kd, KERN_PROC_PROC) == _records(_allproc(base), False)
        assert kd.geterr() == f"can't read pgrp at 0x{bad:x}"
        assert _got(kd, KERN_PROC_ALL) == _records(_allproc(base), True)


def test_cyclic_zombproc_keeps_allproc(base: SynthDump, tmp_path: Path) -> None:
    """A zombie linked to itself: one record per process fills ``nprocs`` (7) before the
    loop comes round, so the walk stops silently at capacity (1.5); per thread the
    capacity is 70, the cycle is found and only the zombproc records are dropped."""
    t = kdata(base)
    z = next(p for p in t.procs if p.list_name == "zombproc")
    assert t.nprocs == len(t.procs) and z is t.procs[-1]
    va = member_va(base, "proc", z.addr, "p_list.le_next")
    with _open(base, tmp_path, [(va, packed(base, z.addr))]) as kd:
        assert _got(kd, KERN_PROC_PROC) == _records(list(t.procs), False)
        assert kd.geterr() == ""
        assert _got(kd, KERN_PROC_ALL) == _records(_allproc(base), True)
        assert kd.geterr() == "zombproc corrupt: a cycle or more than 4194304 processes"


# ------------------------------------------------------------------ absurd nprocs
def _nprocs(base: SynthDump, tmp: Path, value: int) -> K.Kvm:
    return _open(base, tmp, [(_sym(base, "nprocs"), packed(base, value, 4))])


def test_nprocs_bounds_the_records(base: SynthDump, tmp_path: Path) -> None:
    """kernel-data.md 1.4/1.5: ``nprocs`` (x10 for threads) is the capacity; the walk
    stops silently there."""
    every = list(kdata(base).procs)
    with _nprocs(base, tmp_path, 3) as kd:
        assert _got(kd, KERN_PROC_PROC) == _records(every, False)[:3]
        assert kd.geterr() == ""
    threads = _records(every, True)
    assert len(threads) > 10
    with _nprocs(base, tmp_path / "1", 1) as kd:
        assert _got(kd, KERN_PROC_ALL) == threads[:10]
        assert _got(kd, KERN_PROC_PROC | KERN_PROC_INC_THREAD) == threads[:10]
        assert _got(kd, KERN_PROC_PROC) == _records(every, False)[:1]
        assert kd.geterr() == ""


def test_nprocs_zero(base: SynthDump, tmp_path: Path) -> None:
    """Capacity 0: nothing listed, NULL without a message (``*cnt`` = 0)."""
    with _nprocs(base, tmp_path, 0) as kd:
        for op in (KERN_PROC_PROC, KERN_PROC_ALL, KERN_PROC_PID):
            assert procs.getprocs(kd, op, 1) == []
        assert kd.geterr() == ""


@pytest.mark.parametrize("value", [0x7FFFFFFF, 0x0CCCCCCC, 0x40000000])
def test_nprocs_huge(base: SynthDump, tmp_path: Path, value: int) -> None:
    """A huge ``nprocs`` is only a capacity: the lists end where they end (pykvm
    allocates nothing up front, so there is no allocation to fail)."""
    every = list(kdata(base).procs)
    with _nprocs(base, tmp_path, value) as kd:
        assert _got(kd, KERN_PROC_PROC) == _records(every, False)
        if value * 10 < 1 << 31:  # nprocs * 10 still a positive int
            assert _got(kd, KERN_PROC_ALL) == _records(every, True)




@pytest.mark.parametrize(("value", "op"), [(-1, KERN_PROC_PROC), (-7, KERN_PROC_ALL),
                                           (0x0CCCCCCD, KERN_PROC_ALL)])
def test_nprocs_negative(base: SynthDump, tmp_path: Path, value: int, op: int) -> None:
    """A negative capacity (or ``nprocs * 10`` past INT_MAX): libkvm's allocation of
    ``nprocs * KINFO_PROC_SIZE`` bytes, computed in the target's size_t, fails with
    _kvm_malloc's text."""
    size = 768 if base.arch == "i386" else (1088 if ptr_size(base) == 8 else 816)
    n = value * 10 if op == KERN_PROC_ALL else value
    n = (n + (1 << 31)) % (1 << 32) - (1 << 31)  # the C int
    want = (n * size) % (1 << (8 * ptr_size(base)))
    with _nprocs(base, tmp_path, value) as kd:
        with pytest.raises(KvmError) as exc:
            procs.getprocs(kd, op)
        assert str(exc.value) == f"can't allocate {want} bytes: Cannot allocate memory"
        assert kd.geterr() == str(exc.value)
