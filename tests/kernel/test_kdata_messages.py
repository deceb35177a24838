"""Every reachable message text of the kernel-data calls (kernel-data.md Appendix A and
pykvm's own), and the strict mode's non-native refusals."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kdata_helpers import UNMAPPED, build, kdata, moved, open_dump

from pykvm import kvm as K
from pykvm.constants import KERN_PROC_PROC
from pykvm.errors import KvmError
from pykvm.kernel import cptime, loadavg, msgbuf, pcpu, procs, swap
from pykvm.synth import SynthDump, build_amd64


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> SynthDump:
    """A kernel built without types: no kernel data, none of their symbols."""
    return build_amd64(tmp_path_factory.mktemp("plain"), seed=3, small_kva=True)


@pytest.fixture(scope="module")
def typed(tmp_path_factory: pytest.TempPathFactory) -> SynthDump:
    return build(tmp_path_factory.mktemp("typed"), "ctf-v3", "12")


@pytest.fixture
def foreign(typed: SynthDump, monkeypatch: pytest.MonkeyPatch) -> Iterator[K.Kvm]:
    """A handle whose dump claims to be of another architecture."""
    with open_dump(typed) as kd:
        assert kd.backend is not None
        monkeypatch.setattr(kd.backend, "native", lambda: False)
        yield kd


def _raises(kd: K.Kvm, text: str, call: Callable[[], Any]) -> None:
    with pytest.raises(KvmError) as info:
        call()
    assert str(info.value) == text
    assert kd.geterr() == text


def test_no_symbols(plain: SynthDump) -> None:
    with open_dump(plain) as kd:
        _raises(kd, "_averunnable: no such symbol", lambda: loadavg.getloadavg(kd))
        _raises(kd, "_nprocs: no such symbol", lambda: procs.getprocs(kd, KERN_PROC_PROC))
        _raises(kd, "unable to find swtailq", lambda: swap.getswapinfo(kd, 4))
        _raises(kd, "unable to find cpuid_to_pcpu", lambda: cptime.getcptime(kd))
        _raises(kd, "unable to find cpuid_to_pcpu", lambda: pcpu.getmaxcpu(kd))
        _raises(kd, "unable to find msgbufp", lambda: msgbuf.msgbuf(kd))


def test_strict_non_native(foreign: K.Kvm, typed: SynthDump) -> None:
    kd = foreign
    t = kdata(typed)
    _raises(kd, "cannot read loadavg from non-native core",
            lambda: loadavg.getloadavg(kd, strict=True))
    _raises(kd, "cannot read cp_time from non-native core",
            lambda: cptime.getcptime(kd, strict=True))
    _raises(kd, "cannot read swapinfo from non-native core",
            lambda: swap.getswapinfo(kd, 4, strict=True))
    _raises(kd, "cannot read procs from non-native core",
            lambda: procs.getprocs(kd, KERN_PROC_PROC, strict=True))
    _raises(kd, "kvm_nlist of non-native vmcore", lambda: pcpu.getmaxcpu(kd, strict=True))
    _raises(kd, "kvm_nlist of non-native vmcore", lambda: pcpu.getpcpu(kd, 0, strict=True))
    _raises(kd, "kvm_dpcpu_setcpu: init failed",
            lambda: pcpu.dpcpu_setcpu(kd, 0, strict=True))
    with pytest.raises(KvmError):
        pcpu.read_zpcpu(kd, t.pcpu[0], 8, 0, strict=True)
    # the default mode reads non-native dumps
    assert loadavg.getloadavg(kd) == [v / t.fscale for v in t.ldavg]
    assert cptime.getcptime(kd) == list(t.cp_time_sum)
    assert [k.pid for k in procs.getprocs(kd, KERN_PROC_PROC)] == t.pids()
    assert len(swap.getswapinfo(kd, 8)) == len(t.swap) + 1
    assert pcpu.getmaxcpu(kd) == t.maxcpu


def test_dpcpu_texts(typed: SynthDump) -> None:
    t = kdata(typed)
    with open_dump(typed) as kd:
        _raises(kd, f"_kvm_dpcpu_setcpu: CPU {t.maxcpu} too big",
                lambda: pcpu.dpcpu_setcpu(kd, t.maxcpu))
        _raises(kd, "_kvm_dpcpu_setcpu: CPU 4294967295 too big",
                lambda: pcpu.dpcpu_setcpu(kd, -1))
        _raises(kd, f"_kvm_dpcpu_setcpu: CPU {t.ncpus} not found",
                lambda: pcpu.dpcpu_setcpu(kd, t.ncpus))


MOVES: list[tuple[str, str, Callable[[K.Kvm], Any]]] = [
    ("averunnable", "can't read averunnable", lambda kd: loadavg.getloadavg(kd)),
    ("cp_time", "cannot read cp_time array", lambda kd: cptime.getcptime(kd)),
    ("mp_maxcpus", "cannot read mp_maxcpus", lambda kd: pcpu.getmaxcpu(kd)),
    ("mp_ncpus", "cannot read mp_ncpus", lambda kd: pcpu.getncpus(kd)),
    ("__pcpu", "cannot read __pcpu", lambda kd: pcpu.getpcpu(kd, 0, strict=True)),
    ("cpuid_to_pcpu", "cannot read cpuid_to_pcpu array", lambda kd: pcpu.getpcpu(kd, 0)),
    ("swtailq", "cannot read _swtailq", lambda kd: swap.getswapinfo(kd, 4)),
    ("nprocs", "can't read nprocs", lambda kd: procs.getprocs(kd, 0)),
    ("ticks", "can't read ticks", lambda kd: procs.getprocs(kd, 0)),
    ("hz", "can't read hz", lambda kd: procs.getprocs(kd, 0)),
    ("cpu_tick_frequency", "can't read cpu_tick_frequency", lambda kd: procs.getprocs(kd, 0)),
    ("allproc", "cannot read allproc", lambda kd: procs.getprocs(kd, 0)),
    ("zombproc", "cannot read zombproc", lambda kd: procs.getprocs(kd, 0)),
    ("msgbufp", "cannot read msgbufp", lambda kd: msgbuf.msgbuf(kd)),
]


@pytest.mark.parametrize("name,text,call", MOVES, ids=[m[0] for m in MOVES])
def test_unreadable_symbol(typed: SynthDump, name: str, text: str,
                           call: Callable[[K.Kvm], Any]) -> None:
    """A symbol pointing at unmapped memory (through a resolver) gives the read text."""
    with open_dump(typed, resolver=moved(typed, {name: UNMAPPED})) as kd:
        _raises(kd, text, lambda: call(kd))


def test_unreadable_dmmax_continues(tmp_path: Path) -> None:
    d = build(tmp_path, "ctf-v3", "11")
    t = kdata(d)
    with open_dump(d, resolver=moved(d, {"dmmax": UNMAPPED})) as kd:
        rows = swap.getswapinfo(kd, 8)
        assert kd.geterr() == "cannot read _dmmax"
        assert [r.total for r in rows[:-1]] == [s.nblks for s in t.swap]  # dmmax stays 0
