"""The descriptor's kernel-data methods (``kd.getprocs`` ...) give what the
:mod:`pykvm.kernel` functions give, on a native and a foreign dump."""

from __future__ import annotations

import pytest
from kdata_helpers import build, kdata, open_dump

from pykvm import errors as E
from pykvm.constants import KERN_PROC_ALL, KERN_PROC_PROC
from pykvm.errors import KvmError
from pykvm.kernel import cptime, loadavg, pcpu, procs, swap
from pykvm.synth import SynthDump
from pykvm.synth import build as synth_build


@pytest.fixture(scope="module", params=["amd64", "powerpc64"])
def dump(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> SynthDump:
    root = tmp_path_factory.mktemp("methods")
    if request.param == "amd64":
        return build(root, "ctf-v3", "13")
    return synth_build("powerpc64", root, 5, "minidump-radix", types="dwarf", era="13")


def test_methods(dump: SynthDump) -> None:
    t = kdata(dump)
    with open_dump(dump) as kd:
        got = kd.getprocs(KERN_PROC_PROC)
        assert [k.pid for k in got] == t.pids()
        assert got == procs.getprocs(kd, KERN_PROC_PROC)
        assert len(kd.getprocs(KERN_PROC_ALL)) == sum(
            1 if p.zombie else len(p.threads) for p in t.procs)
        assert kd.getloadavg(3) == loadavg.getloadavg(kd, 3) == [v / t.fscale for v in t.ldavg]
        assert kd.getcptime() == cptime.getcptime(kd) == list(t.cp_time_sum)
        assert kd.getswapinfo(8) == swap.getswapinfo(kd, 8)
        assert (kd.getmaxcpu(), kd.getncpus()) == (t.maxcpu, t.ncpus)
        assert kd.getpcpu(1) == pcpu.getpcpu(kd, 1) == kd.read2(t.pcpu[1],
                                                               kd.types.sizeof("pcpu"))
        assert kd.dpcpu_setcpu(1) == 0
        assert kd.read_zpcpu(t.pcpu[0], 8, 0) == pcpu.read_zpcpu(kd, t.pcpu[0], 8, 0)
        assert kd.counter_u64_fetch(t.pcpu[0]) == pcpu.counter_u64_fetch(kd, t.pcpu[0])
        with pytest.raises(KvmError, match=f"^{E.DEAD_USER_SPACE}$"):
            kd.getargv(got[0])
        with pytest.raises(KvmError, match=f"^{E.DEAD_USER_SPACE}$"):
            kd.getenvv(got[0])
        if not kd.native():
            with pytest.raises(KvmError, match=f"^{E.PROCS_NON_NATIVE}$"):
                kd.getprocs(KERN_PROC_PROC, strict=True)
