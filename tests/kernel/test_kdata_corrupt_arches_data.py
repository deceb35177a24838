"""Corrupt per-CPU data, message buffer and swap list on other architectures: the
per-CPU, msgbuf and swap cases of test_kdata_corrupt.py on a big-endian 64-bit dump
(powerpc64 minidump-hpt), a little-endian 32-bit one (i386), and two big-endian 32-bit
ones (powerpc ELF, mips o32).

Every patched value is written in the dump's byte order and word size.  Each call ends
in a KvmError with libkvm's (or pykvm's) exact text, or in the documented result
(kernel-data.md 4, 6, 7A, Appendix A): never another exception, never a hang (an alarm
fails a test that runs away).
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
    moved,
    open_dump,
    packed,
    patched,
    ptr_size,
)
from kdata_helpers import unmapped as _unmapped

from pykvm import kvm as K
from pykvm.errors import KvmError
from pykvm.kernel import cptime, msgbuf, pcpu, swap
from pykvm.kernel.swap import KvmSwap
from pykvm.synth import SynthDump

BASES = CORRUPT_BASES
#: seconds a single test may take before it counts as a hang
HANG = 60
OOM = "out of memory"
PCPU_DATA = "unable to read per-CPU data"
MSGBUFP = "cannot read msgbufp"
SWCYCLE = "swtailq corrupt: more than 4096 swap devices or a cycle"
SWINFO = "cannot read swinfo"


@pytest.fixture(scope="module", params=BASES, ids=["-".join(b) for b in BASES])
def base(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> SynthDump:
    return corrupt_base(tmp_path_factory.mktemp(f"corrupt-data-{request.param[0]}"), request.param)


@pytest.fixture(scope="module")
def bad(base: SynthDump) -> int:
    """An address of the target's width the dump does not map."""
    return _unmapped(base)


@pytest.fixture(autouse=True)
def no_hang() -> Iterator[None]:
    """Fail (instead of hanging the suite) when a walk does not end."""
    with hang_alarm(HANG):
        yield


def _open(d: SynthDump, tmp: Path, patches: list[tuple[int, bytes]]) -> K.Kvm:
    return open_dump(d, patched(d, tmp, patches))


_SYMS: dict[tuple[str, str], int] = {}


def _sym(d: SynthDump, name: str) -> int:
    key = (str(d.kernel), name)
    if key not in _SYMS:
        with open_dump(d) as kd:
            _SYMS[key] = kd.nlist2(["_" + name]).entries[0].value
    return _SYMS[key]


def _raises(kd: K.Kvm, text: str, call: object, *args: int) -> None:
    """``call(kd, *args)`` raises KvmError with exactly ``text``, and records it."""
    assert callable(call)
    with pytest.raises(KvmError) as exc:
        call(kd, *args)
    assert type(exc.value) is KvmError
    assert str(exc.value) == text
    assert kd.geterr() == text


def _word(d: SynthDump, data: bytes) -> int:
    return int.from_bytes(data, layout(d).target.byteorder)


def test_the_bases(base: SynthDump) -> None:
    """The dumps are what the module says, and each call answers from the truth before
    anything is patched."""
    want = {"powerpc64": (8, "big"), "i386": (4, "little"), "powerpc": (4, "big"),
            "mips": (4, "big")}[base.arch]
    assert (ptr_size(base), layout(base).target.byteorder) == want
    t = kdata(base)
    assert t.ncpus == len(t.pcpu) == 4 and t.maxcpu > t.ncpus
    assert len(t.swap) == 3 and len(base.truth.msgbuf) == t.msgbuf.size
    with open_dump(base) as kd:
        assert not kd.native()
        assert (pcpu.getmaxcpu(kd), pcpu.getncpus(kd)) == (t.maxcpu, t.ncpus)
        assert cptime.getcptime(kd) == list(t.cp_time_sum)
        assert msgbuf.msgbuf(kd) == (t.msgbuf.unread, t.msgbuf.whole)
        assert len(swap.getswapinfo(kd, 8)) == 4


# ------------------------------------------------------------------ per-CPU data
def _pcpu_truth(d: SynthDump, cpu: int) -> bytes:
    """The bytes of CPU ``cpu``'s ``struct pcpu`` as written."""
    got = d.truth.expect(kdata(d).pcpu[cpu], layout(d).structs["pcpu"].size)
    assert got is not None
    return got


def _counter_base(d: SynthDump) -> tuple[int, int]:
    """A ``counter_u64_t`` base whose four slots (``pc_zpcpu_offset`` = cpu * 4096 in
    the synthetic kernel) are all mapped, and the sum of those slots (u64)."""
    t = kdata(d)
    for leaf in d.truth.leaves:
        for va in range(leaf.va, leaf.va + leaf.size, 4096):
            slots = [d.truth.expect(va + 0x40 + 4096 * c, 8) for c in range(t.ncpus)]
            if all(s is not None for s in slots):
                total = sum(_word(d, s) for s in slots if s is not None)
                if total:
                    return va + 0x40, total % (1 << 64)
    raise AssertionError("no four mapped pages in a row")


@pytest.mark.parametrize("value", [1 << 30, -1, 0x7FFFFFFF, 0x10001])
def test_absurd_maxcpus(base: SynthDump, tmp_path: Path, value: int) -> None:
    """kernel-data.md 6.1 step 6: the ``cpuid_to_pcpu`` copy of ``mp_maxcpus`` pointers
    cannot be allocated: every per-CPU call fails with ``out of memory``, each time
    (nothing is cached); ``kvm_counter_u64_fetch`` gives 0, ``kvm_read_zpcpu`` nothing.

    ``kvm_getncpus`` is asserted only as the first call: libkvm stores ``mp_ncpus`` in
    its process-wide cache before the allocation fails, so its later calls return it
    (pykvm fails every time: its per-handle cache holds only a complete
    initialisation)."""
    with _open(base, tmp_path, [(_sym(base, "mp_maxcpus"), packed(base, value, 4))]) as kd:
        _raises(kd, OOM, pcpu.getncpus)
        for _ in range(2):
            _raises(kd, OOM, pcpu.getmaxcpu)
            _raises(kd, OOM, pcpu.getpcpu, 0)
            _raises(kd, OOM, pcpu.pcpu_view, 1)
            _raises(kd, OOM, cptime.getcptime)
        kd.err(kd.program, "")
        assert pcpu.counter_u64_fetch(kd, 0) == 0
        assert kd.geterr() == OOM
        cbase, _ = _counter_base(base)
        assert pcpu.counter_u64_fetch(kd, cbase) == 0
        assert pcpu.read_zpcpu(kd, cbase, 8, 0) == b""
        assert pcpu.getmaxcpu(None) == 0 and pcpu.getpcpu(None, 0) is None


def _cptime_over(d: SynthDump, table: list[int]) -> list[int] | None:
    """``kvm_getcptime``'s sum over a ``cpuid_to_pcpu`` array as written (None: a CPU's
    ``struct pcpu`` is not in the dump, ``unable to read per-CPU data``)."""
    lsize = ptr_size(d)
    pcpu_type = layout(d).structs["pcpu"]
    off = pcpu_type.member("pc_cp_time").offset
    total = [0] * 5
    for p in table:
        if p == 0:
            continue
        raw = d.truth.expect(p, pcpu_type.size)
        if raw is None:
            return None
        for k in range(5):
            total[k] += _word(d, raw[off + k * lsize:off + (k + 1) * lsize])
    half, full = 1 << (8 * lsize - 1), 1 << (8 * lsize)
    return [v % full - full if v % full >= half else v % full for v in total]


@pytest.mark.parametrize("value", [0x10000, 0x400, 0])
def test_maxcpus_at_the_edges(base: SynthDump, tmp_path: Path, value: int) -> None:
    """``mp_maxcpus`` up to 65536 is allocated: when that many pointers are not all in
    the dump, ``cannot read cpuid_to_pcpu array``; when they are, whatever follows the
    real array is taken for ``struct pcpu`` pointers, exactly as libkvm does.  0 is a
    kernel with no CPU slot at all: every CPU is absent (NULL), the sums are 0."""
    t = kdata(base)
    arr = _sym(base, "cpuid_to_pcpu")
    psize = ptr_size(base)
    with _open(base, tmp_path, [(_sym(base, "mp_maxcpus"), packed(base, value, 4))]) as kd:
        raw = base.truth.expect(arr, value * psize)
        if raw is None:
            text = "cannot read cpuid_to_pcpu array"
            _raises(kd, text, pcpu.getmaxcpu)
            _raises(kd, text, pcpu.getpcpu, 0)
            _raises(kd, text, cptime.getcptime)
            assert pcpu.counter_u64_fetch(kd, 0) == 0
            return
        table = [_word(base, raw[i:i + psize]) for i in range(0, len(raw), psize)]
        assert table[:t.ncpus] == list(t.pcpu)[:value]
        assert pcpu.getmaxcpu(kd) == value
        assert pcpu.getncpus(kd) == t.ncpus
        for cpu in range(t.ncpus):
            assert pcpu.getpcpu(kd, cpu) == (_pcpu_truth(base, cpu) if value else None)
        want = _cptime_over(base, table)
        if want is None:
            _raises(kd, PCPU_DATA, cptime.getcptime)
        else:
            assert cptime.getcptime(kd) == want
        if value == 0:
            assert want == [0] * 5
            assert pcpu.counter_u64_fetch(kd, _counter_base(base)[0]) == 0
            assert kd.geterr() == ""


@pytest.mark.parametrize("value", [1 << 30, 0x7FFFFFFF, -5, 0])
def test_absurd_ncpus(base: SynthDump, tmp_path: Path, value: int) -> None:
    """``mp_ncpus`` is only reported (6.2): ``kvm_getncpus`` returns it as read (a C
    ``int``); the CPUs present, their data, the ``cp_time`` sum and (default mode, over
    the CPUs present) the counters are unchanged."""
    t = kdata(base)
    cbase, total = _counter_base(base)
    with _open(base, tmp_path, [(_sym(base, "mp_ncpus"), packed(base, value, 4))]) as kd:
        assert pcpu.getncpus(kd) == value
        assert pcpu.getmaxcpu(kd) == t.maxcpu
        for cpu in range(t.ncpus):
            assert pcpu.getpcpu(kd, cpu) == _pcpu_truth(base, cpu)
            view = pcpu.pcpu_view(kd, cpu)
            assert view is not None and tuple(view.pc_cp_time) == t.cp_time[cpu]
        assert pcpu.getpcpu(kd, t.ncpus) is None
        assert pcpu.getpcpu(kd, t.maxcpu) is None
        assert cptime.getcptime(kd) == list(t.cp_time_sum)
        assert pcpu.counter_u64_fetch(kd, cbase) == total
        assert kd.geterr() == ""


def test_wild_cpuid_to_pcpu_entry(base: SynthDump, tmp_path: Path, bad: int) -> None:
    """A wild ``cpuid_to_pcpu[1]``: ``kvm_getpcpu(kd, 1)`` fails with ``unable to read
    per-CPU data`` (6.3), and so does ``kvm_getcptime``, which sums every CPU (5, step
    4); the other CPUs still read; the counter of a CPU without its ``pcpu`` is 0."""
    t = kdata(base)
    va = _sym(base, "cpuid_to_pcpu") + ptr_size(base)
    cbase, _ = _counter_base(base)
    with _open(base, tmp_path, [(va, packed(base, bad))]) as kd:
        assert (pcpu.getmaxcpu(kd), pcpu.getncpus(kd)) == (t.maxcpu, t.ncpus)
        _raises(kd, PCPU_DATA, pcpu.getpcpu, 1)
        _raises(kd, PCPU_DATA, pcpu.pcpu_view, 1)
        _raises(kd, PCPU_DATA, cptime.getcptime)
        for cpu in (0, 2, 3):
            assert pcpu.getpcpu(kd, cpu) == _pcpu_truth(base, cpu)
        assert pcpu.read_zpcpu(kd, cbase, 8, 1) == b""
        assert pcpu.read_zpcpu(kd, cbase, 8, 2) == base.truth.expect(cbase + 2 * 4096, 8)
        assert pcpu.counter_u64_fetch(kd, cbase) == 0
        assert pcpu.getpcpu(kd, 0) == _pcpu_truth(base, 0)


def test_null_cpuid_to_pcpu_entry(base: SynthDump, tmp_path: Path) -> None:
    """A NULL ``cpuid_to_pcpu[1]`` is an absent CPU: NULL without a message, and the
    ``cp_time`` sum and the counters leave it out."""
    t = kdata(base)
    va = _sym(base, "cpuid_to_pcpu") + ptr_size(base)
    cbase, total = _counter_base(base)
    slot1 = base.truth.expect(cbase + 4096, 8)
    assert slot1 is not None
    lmask = (1 << (8 * ptr_size(base))) - 1
    with _open(base, tmp_path, [(va, packed(base, 0))]) as kd:
        assert pcpu.getpcpu(kd, 1) is None
        assert cptime.getcptime(kd) == [
            sum(t.cp_time[c][k] for c in (0, 2, 3)) & lmask for k in range(5)]
        assert pcpu.counter_u64_fetch(kd, cbase) == (total - _word(base, slot1)) % (1 << 64)
        assert kd.geterr() == ""


def test_unreadable_mp_maxcpus(base: SynthDump, bad: int) -> None:
    """``mp_maxcpus`` and ``mp_ncpus`` at addresses the dump does not map (6.1)."""
    for name in ("mp_maxcpus", "mp_ncpus"):
        with open_dump(base, resolver=moved(base, {name: bad})) as kd:
            _raises(kd, f"cannot read {name}", pcpu.getmaxcpu)
            _raises(kd, f"cannot read {name}", pcpu.getpcpu, 0)
            assert pcpu.counter_u64_fetch(kd, 0) == 0


# ------------------------------------------------------------------ message buffer
def _msgbuf_patch(base: SynthDump, tmp: Path, member: str, value: int) -> K.Kvm:
    va = member_va(base, "msgbuf", kdata(base).msgbuf.addr, member)
    size = layout(base).structs["msgbuf"].member(member).size
    return _open(base, tmp, [(va, packed(base, value, size))])


@pytest.mark.parametrize("value", [0x1234, 0, 0xFFFFFFFF, 0x063063])
def test_msgbuf_bad_magic(base: SynthDump, tmp_path: Path, value: int) -> None:
    with _msgbuf_patch(base, tmp_path, "msg_magic", value) as kd:
        _raises(kd, f"message buffer magic 0x{value:x} is not 0x63062: the buffer is unusable",
                msgbuf.msgbuf)


@pytest.mark.parametrize(("value", "shown"), [(0, 0), (-8, 4294967288), (0x80000000, 2147483648),
                                              ((1 << 26) + 1, 67108865)])
def test_msgbuf_bad_size(base: SynthDump, tmp_path: Path, value: int, shown: int) -> None:
    """``msg_size`` is a ``u_int``: 0 and anything past pykvm's 64 MiB bound are refused
    before any ring read."""
    with _msgbuf_patch(base, tmp_path, "msg_size", value) as kd:
        _raises(kd, f"message buffer size {shown} is not usable", msgbuf.msgbuf)


def test_msgbuf_size_past_the_ring(base: SynthDump, tmp_path: Path) -> None:
    """A usable-looking size (64 MiB) that runs past the mapped ring."""
    m = kdata(base).msgbuf
    assert base.truth.expect(m.ring, 1 << 26) is None
    with _msgbuf_patch(base, tmp_path, "msg_size", 1 << 26) as kd:
        _raises(kd, f"cannot read the message buffer at 0x{m.ring:x}", msgbuf.msgbuf)


@pytest.mark.parametrize("wild", [True, False])
def test_msgbuf_unreadable_ring(base: SynthDump, tmp_path: Path, bad: int, wild: bool) -> None:
    ring = bad if wild else 0
    with _msgbuf_patch(base, tmp_path, "msg_ptr", ring) as kd:
        _raises(kd, f"cannot read the message buffer at 0x{ring:x}", msgbuf.msgbuf)


@pytest.mark.parametrize("wild", [True, False])
def test_msgbufp_wild_and_null(base: SynthDump, tmp_path: Path, bad: int, wild: bool) -> None:
    value = bad if wild else 0
    with _open(base, tmp_path, [(_sym(base, "msgbufp"), packed(base, value))]) as kd:
        _raises(kd, MSGBUFP, msgbuf.msgbuf)


def test_msgbufp_unreadable(base: SynthDump, bad: int) -> None:
    """The ``msgbufp`` variable itself outside the dump."""
    with open_dump(base, resolver=moved(base, {"msgbufp": bad})) as kd:
        _raises(kd, MSGBUFP, msgbuf.msgbuf)


def _ring_texts(base: SynthDump, wseq: int, rseq: int) -> tuple[bytes, bytes]:
    """The unread text and the whole ring (7A) for these sequence numbers, from the ring
    as written."""
    ring = base.truth.msgbuf
    size = len(ring)
    w, r = wseq % size, rseq % size
    unread = ring[r:w] if w >= r else ring[r:] + ring[:w]
    return unread, (ring[w:] + ring[:w]).replace(b"\0", b"")


@pytest.mark.parametrize(("wseq", "rseq"), [(0xFFFFFFFF, 0), (0, 0xFFFFFFFF),
                                            (0x80000000, 0x7FFFFFFF), (0xFFFFFFF0, 0xFFFFFFF0),
                                            (-3, 5)])
def test_msgbuf_absurd_seq(base: SynthDump, tmp_path: Path, wseq: int, rseq: int) -> None:
    """Sequence numbers past ``msg_seqmod`` (or anything at all) are taken modulo the ring
    size (``MSGBUF_SEQ_TO_POS``); the unread part wraps round the end of the ring."""
    m = kdata(base).msgbuf
    pw = member_va(base, "msgbuf", m.addr, "msg_wseq")
    pr = member_va(base, "msgbuf", m.addr, "msg_rseq")
    want = _ring_texts(base, wseq % (1 << 32), rseq % (1 << 32))
    assert want != (m.unread, m.whole)
    with _open(base, tmp_path, [(pw, packed(base, wseq, 4)), (pr, packed(base, rseq, 4))]) as kd:
        got = msgbuf.msgbuf(kd)
        assert got == want
        assert kd.geterr() == ""
    if wseq == rseq:
        assert got[0] == b""


# ------------------------------------------------------------------ swap
def _next_va(base: SynthDump, k: int) -> int:
    return member_va(base, "swdevt", kdata(base).swap[k].addr, "sw_list.tqe_next")


@pytest.mark.parametrize(("src", "dst"), [(2, 0), (2, 1), (1, 1), (0, 0)],
                         ids=["to-head", "to-middle", "self-loop-middle", "self-loop-head"])
def test_cyclic_swtailq(base: SynthDump, tmp_path: Path, src: int, dst: int) -> None:
    """kernel-data.md 4.4 step 4 loops for ever on a cycle in libkvm; pykvm stops with
    its own text, whatever ``swap_max`` is."""
    sw = kdata(base).swap
    with _open(base, tmp_path, [(_next_va(base, src), packed(base, sw[dst].addr))]) as kd:
        # the walk does not depend on swap_max (0: libkvm writes nothing, still walks)
        for maxswap in (8, 2, 1, 0):
            _raises(kd, SWCYCLE, swap.getswapinfo, maxswap)


def test_wild_swdevt(base: SynthDump, tmp_path: Path, bad: int) -> None:
    with _open(base, tmp_path, [(_next_va(base, 0), packed(base, bad))]) as kd:
        for maxswap in (8, 1):
            _raises(kd, SWINFO, swap.getswapinfo, maxswap)


def test_wild_swtailq_head(base: SynthDump, tmp_path: Path, bad: int) -> None:
    """``tqh_first`` wild: the first ``struct swdevt`` cannot be read."""
    with _open(base, tmp_path, [(_sym(base, "swtailq"), packed(base, bad))]) as kd:
        _raises(kd, SWINFO, swap.getswapinfo, 8)


def test_unreadable_swtailq(base: SynthDump, bad: int) -> None:
    """The ``TAILQ_HEAD`` itself outside the dump (4.4 step 3)."""
    with open_dump(base, resolver=moved(base, {"swtailq": bad})) as kd:
        _raises(kd, "cannot read _swtailq", swap.getswapinfo, 8)


def _rows(base: SynthDump, n: int) -> list[tuple[str, int, int]]:
    t = kdata(base)
    dmmax = t.dmmax if t.dmmax is not None else t.nsw_cluster_max
    rows = [(s.name, s.used, s.nblks - dmmax) for s in t.swap[:n]]
    return rows + [("", sum(r[1] for r in rows), sum(r[2] for r in rows))]


def test_short_swtailq(base: SynthDump, tmp_path: Path) -> None:
    """A NULL ``tqh_first`` is an empty list (only the zero total row); a NULL
    ``tqe_next`` ends the list there (4.2)."""
    with _open(base, tmp_path / "a", [(_sym(base, "swtailq"), packed(base, 0))]) as kd:
        assert swap.getswapinfo(kd, 8) == [KvmSwap("", 0, 0, 0)]
        assert kd.geterr() == ""
    with _open(base, tmp_path / "b", [(_next_va(base, 0), packed(base, 0))]) as kd:
        got = swap.getswapinfo(kd, 8)
        assert [(r.devname, r.used, r.total) for r in got] == _rows(base, 1)
        assert kd.geterr() == ""
