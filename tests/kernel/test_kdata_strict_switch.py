"""The descriptor's strict switch (``open2(..., strict=True)``) covers every kernel-data
call: a non-native dump is refused with libkvm's texts, and on a native dump the calls
behave as with ``strict=True`` (swap device names as ``#C:0x...``, libkvm's zpcpu stride)."""

from __future__ import annotations

import pytest
from kdata_helpers import build, kdata

from pykvm import errors as E
from pykvm import kvm as K
from pykvm.constants import KERN_PROC_PROC
from pykvm.errors import KvmError
from pykvm.kernel import cptime, loadavg, pcpu, procs, swap
from pykvm.synth import SynthDump
from pykvm.synth import build as synth_build


@pytest.fixture(scope="module")
def native(tmp_path_factory: pytest.TempPathFactory) -> SynthDump:
    return build(tmp_path_factory.mktemp("strict"), "ctf-v3", "11")


@pytest.fixture(scope="module")
def foreign(tmp_path_factory: pytest.TempPathFactory) -> SynthDump:
    d = tmp_path_factory.mktemp("strict-ppc64")
    return synth_build("powerpc64", d, 3, "minidump-hpt", types="ctf-v3", era="14")


def _resolver(d: SynthDump) -> K.Resolver:
    return K.symtab_resolver(d.kernel)


def test_native_switch_equals_per_call_strict(native: SynthDump) -> None:
    with K.open2(native.kernel, native.core) as loose, \
            K.open2(native.kernel, native.core, strict=True) as tight:
        assert tight.strict and not loose.strict
        want = swap.getswapinfo(loose, 8, strict=True)
        assert swap.getswapinfo(tight, 8) == want
        assert want[0].devname.startswith("#C:0x")  # the host's devname, not the dump's
        assert swap.getswapinfo(loose, 8)[0].devname == kdata(native).swap[0].name
        assert procs.getprocs(tight, KERN_PROC_PROC) == procs.getprocs(loose, KERN_PROC_PROC,
                                                                       strict=True)
        # libkvm's stride: sizeof(struct pcpu) from base + __pcpu
        st = pcpu.pcpu_init(loose, strict=True)
        arg = (kdata(native).pcpu[0] - st.pcpu_base) % (1 << 64)
        size = loose.types.sizeof("pcpu")
        want_z = loose.read2(kdata(native).pcpu[0] + size, 8)
        assert pcpu.read_zpcpu(tight, arg, 8, 1) == want_z
        assert pcpu.read_zpcpu(loose, arg, 8, 1, strict=True) == want_z


def test_foreign_refused(foreign: SynthDump) -> None:
    with K.open2(foreign.kernel, foreign.core, resolver=_resolver(foreign)) as loose:
        assert [k.pid for k in procs.getprocs(loose, KERN_PROC_PROC)] == kdata(foreign).pids()
    with K.open2(foreign.kernel, foreign.core, resolver=_resolver(foreign),
                 strict=True) as kd:
        for call, text in ((lambda: procs.getprocs(kd, KERN_PROC_PROC), E.PROCS_NON_NATIVE),
                           (lambda: loadavg.getloadavg(kd, 3), E.LOADAVG_NON_NATIVE),
                           (lambda: swap.getswapinfo(kd, 4), E.SWAP_NON_NATIVE),
                           (lambda: cptime.getcptime(kd), E.CPTIME_NON_NATIVE)):
            with pytest.raises(KvmError) as exc:
                call()
            assert str(exc.value) == text == kd.geterr()
        with pytest.raises(KvmError) as exc:
            pcpu.dpcpu_setcpu(kd, 0)
        assert str(exc.value) == E.DPCPU_INIT_FAILED
