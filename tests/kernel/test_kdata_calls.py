"""getloadavg, getcptime, the per-CPU calls, msgbuf and getswapinfo against the truth of
synthetic dumps (CTF v3, CTF v2 and DWARF kernels of every era)."""

from __future__ import annotations

import math
import struct
from pathlib import Path

import pytest
from kdata_helpers import build, kdata, open_dump

from pykvm import kvm as K
from pykvm.constants import SWIF_DEV_PREFIX
from pykvm.errors import KvmError
from pykvm.kernel import cptime, loadavg, msgbuf, pcpu, swap
from pykvm.synth import SynthDump


def test_loadavg(kd: K.Kvm, kdump: SynthDump) -> None:
    t = kdata(kdump)
    want = [v / t.fscale for v in t.ldavg]
    assert loadavg.getloadavg(kd, 3) == want
    assert loadavg.getloadavg(kd, 10) == want
    assert loadavg.getloadavg(kd, 2) == want[:2]
    assert loadavg.getloadavg(kd, 0) == []
    assert loadavg.getloadavg(kd, -5) == []
    assert loadavg.getloadavg(kd, strict=True) == want


def test_loadavg_zero_scale() -> None:
    assert math.isnan(loadavg._div(0, 0))
    assert loadavg._div(5, 0) == math.inf


def test_cptime(kd: K.Kvm, kdump: SynthDump) -> None:
    t = kdata(kdump)
    assert t.cp_time_symbol is None
    assert cptime.getcptime(kd) == list(t.cp_time_sum)
    assert cptime.getcptime(kd, strict=True) == list(t.cp_time_sum)


def test_cptime_symbol(kroot: Path) -> None:
    d = build(kroot, "ctf-v3", "10", cp_time_symbol=True)
    t = kdata(d)
    assert t.cp_time_symbol is not None
    with open_dump(d) as kd:
        assert cptime.getcptime(kd) == list(t.cp_time_symbol)


def test_pcpu(kd: K.Kvm, kdump: SynthDump) -> None:
    t = kdata(kdump)
    assert pcpu.getmaxcpu(kd) == t.maxcpu
    assert pcpu.getncpus(kd) == t.ncpus
    assert pcpu.getmaxcpu(None) == 0
    assert pcpu.getpcpu(None, 0) is None
    size = kd.types.sizeof("pcpu")
    for cpu in range(t.ncpus):
        raw = pcpu.getpcpu(kd, cpu)
        assert raw is not None and len(raw) == size
        assert raw == kd.read2(t.pcpu[cpu], size)
        view = pcpu.pcpu_view(kd, cpu)
        assert view is not None
        assert int(view.pc_cpuid) == cpu
        assert tuple(view.pc_cp_time) == t.cp_time[cpu]
    assert pcpu.getpcpu(kd, t.ncpus) is None
    assert pcpu.getpcpu(kd, t.maxcpu) is None
    assert pcpu.getpcpu(kd, -1) is None


def test_dpcpu(kd: K.Kvm, kdump: SynthDump) -> None:
    t = kdata(kdump)
    for cpu in range(t.ncpus):
        assert pcpu.dpcpu_setcpu(kd, cpu) == 0
        for name, values in t.dpcpu_values.items():
            res = kd.nlist2(["_" + name])
            va = res.entries[0].value
            assert va == (t.dpcpu_entries["pcpu_entry_" + name][0] + t.dpcpu_off[cpu]) % (1 << 64)
            assert struct.unpack("<Q", kd.read2(va, 8))[0] == values[cpu]


def test_zpcpu_and_counter(kd: K.Kvm, kdump: SynthDump) -> None:
    t = kdata(kdump)
    # the synthetic pc_zpcpu_offset (era >= 12) is cpu * 4096; old kernels: PAGE_SIZE * cpu
    base = t.pcpu[0]
    total = 0
    for cpu in range(t.ncpus):
        want = kd.read2(base + 4096 * cpu, 8)
        assert pcpu.read_zpcpu(kd, base, 8, cpu) == want
        total += struct.unpack("<Q", want)[0]
    assert pcpu.counter_u64_fetch(kd, base) == total % (1 << 64)
    # strict: libkvm's stride sizeof(struct pcpu) plus __pcpu
    st = pcpu.pcpu_init(kd, strict=True)
    size = kd.types.sizeof("pcpu")
    arg = (t.pcpu[0] - st.pcpu_base) % (1 << 64)
    assert pcpu.read_zpcpu(kd, arg, 16, 1, strict=True) == kd.read2(t.pcpu[0] + size, 16)
    if kd.types.has_member("pcpu", "pc_zpcpu_offset"):  # else PAGE_SIZE * cpu, any cpu
        assert pcpu.read_zpcpu(kd, base, 8, t.maxcpu + 5) == b""


def test_msgbuf(kd: K.Kvm, kdump: SynthDump) -> None:
    t = kdata(kdump).msgbuf
    unread, whole = msgbuf.msgbuf(kd)
    assert unread == t.unread
    assert whole == t.whole
    assert kd.msgbuf() == b"" or kd.msgbuf()[:t.size] == kd.read2(t.ring, t.size)


def _want_swap(d: SynthDump, dmmax: int, prefix: str = "") -> list[tuple[str, int, int, int]]:
    rows = []
    for s in kdata(d).swap:
        name = s.name if s.name == "[NFS swap]" else prefix + s.name
        rows.append((name, s.used, s.nblks - dmmax, s.flags))
    rows.append(("", sum(r[1] for r in rows), sum(r[2] for r in rows), 0))
    return rows


def test_swap(kd: K.Kvm, kdump: SynthDump) -> None:
    t = kdata(kdump)
    dmmax = t.dmmax if t.dmmax is not None else t.nsw_cluster_max
    want = _want_swap(kdump, dmmax)
    got = swap.getswapinfo(kd, 16)
    assert [(r.devname, r.used, r.total, r.flags) for r in got] == want
    got = swap.getswapinfo(kd, 16, SWIF_DEV_PREFIX)
    assert [(r.devname, r.used, r.total, r.flags) for r in got] == _want_swap(kdump, dmmax,
                                                                              "/dev/")
    # the total row sits at min(n, maxswap - 1)
    assert [(r.devname, r.used, r.total) for r in swap.getswapinfo(kd, 1)] == [want[-1][:3]]
    two = swap.getswapinfo(kd, 2)
    assert len(two) == 2 and two[0].devname == want[0][0] and two[1].total == want[-1][2]
    assert swap.getswapinfo(kd, 0) == []
    if t.dmmax is not None:
        strict = swap.getswapinfo(kd, 16, strict=True)
        assert [(r.used, r.total) for r in strict] == [(w[1], w[2]) for w in want]
        assert strict[0].devname.startswith("#C:0x")


def test_swap_bytes(kd: K.Kvm, kdump: SynthDump) -> None:
    rows = swap.getswapinfo(kd, 16)
    raw = swap.swap_bytes(kd, rows)
    assert len(raw) == 52 * len(rows)
    for k, r in enumerate(rows):
        rec = raw[52 * k:52 * (k + 1)]
        name, used, total, flags, r1, r2 = struct.unpack("<32sIIiII", rec)
        assert name.rstrip(b"\0").decode() == r.devname
        assert (used, total, flags, r1, r2) == (r.used, r.total, r.flags, 0, 0)
    big = swap.KvmSwap("x" * 40, 1, 2, 3).pack("big")
    assert big[:32] == b"x" * 31 + b"\0"
    assert struct.unpack(">IIiII", big[32:]) == (1, 2, 3, 0, 0)


@pytest.mark.parametrize("era", ["12", "15"])
def test_swap_strict_no_dmmax(kroot: Path, era: str) -> None:
    d = build(kroot, "ctf-v3", era)
    with open_dump(d) as kd:
        with pytest.raises(KvmError, match="^unable to find dmmax$"):
            swap.getswapinfo(kd, 4, strict=True)
        assert kd.geterr() == "unable to find dmmax"


def test_loadavg_short_layout(kd: K.Kvm, monkeypatch: pytest.MonkeyPatch) -> None:
    """Type information describing ``ldavg`` with fewer than three elements is refused
    with a text, not an IndexError."""

    class Short:
        ldavg = (1, 2)
        fscale = 2048

    monkeypatch.setattr(loadavg, "struct_at", lambda kd, name, addr: Short())
    with pytest.raises(KvmError, match="^struct loadavg has 2 load averages, not 3$"):
        loadavg.getloadavg(kd, 3)
