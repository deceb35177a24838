"""Kernel data in synthetic i386 and arm (both byte orders) dumps (``build(types=...)``).

The bytes are read back with the test-local readers (``synth_i386_reader``,
``synth_arm_reader``: ``struct`` only, nothing from pykvm), the kernel's lists walked with
the offsets of the kernel's own ``LayoutTruth`` and decoded in the target's byte order
and pointer size; the expected values are worked out from the writer's truth by hand.
The last test reads the ARMv4/v5 formats (which ``tests/kernel/test_kdata_arches.py``
skips: it builds every format in era 14, which that pmap never had) with pykvm's calls.
"""

from __future__ import annotations

import hashlib
import struct
from pathlib import Path

import pytest
import synth_arm_reader as ar
import synth_i386_reader as ir
from elftools.elf.elffile import ELFFile

from pykvm.synth import SynthDump, build
from pykvm.synth.cmodel import LayoutTruth
from pykvm.synth.kerneldata import KernelDataTruth

MSG_MAGIC = 0x063062

#: every format of both architectures with the types era each is built in (the v4 pmap
#: formats are FreeBSD <= 12 kernels)
CASES = [
    ("i386", "minidump-pae", "14"),
    ("i386", "minidump-nopae", "13"),
    ("i386", "minidump-v1-pae", "12"),
    ("i386", "minidump-v1-nopae", "10"),
    ("i386", "elf-pae", "11"),
    ("i386", "elf-nopae", "14"),
    ("arm", "minidump", "15"),
    ("arm", "minidump-be", "14"),
    ("arm", "minidump-v1", "12"),
    ("arm", "minidump-v4", "12"),
    ("arm", "minidump-v4-be", "11"),
    ("arm", "elf", "13"),
    ("arm", "elf-be", "10"),
    ("arm", "elf-nodelta", "14"),
    ("arm", "elf-v4", "10"),
    ("arm", "elf-v4-be", "12"),
]

#: sha256(kernel + vmcore) of default builds made before the types option existed
PINNED = {
    ("i386", "minidump-pae", 0):
        "1519bce28ed4e5a9c551cd28dd0661274c64418e2f46a61b2be3a9f6ffbd16ea",
    ("i386", "minidump-nopae", 0):
        "41f92f16f0ba8e7313921ce88b8ac71671126aa5f7c06948e55325ad393c91c9",
}


class Mem:
    """Kernel virtual reads through a test-local reader, decoded in the kernel's order."""

    def __init__(self, d: SynthDump) -> None:
        kernel = d.kernel.read_bytes()
        core = d.core.read_bytes()
        self.r: ir.Minidump | ir.ElfCore | ar.ArmMinidump | ar.ArmFullDump
        if d.arch == "i386":
            self.syms = ir.kernel_symbols(kernel)
            self.r = ir.Minidump(core) if core[:8] == b"minidump" else ir.ElfCore(core, kernel)
            self.order = "<"
        else:
            k = ar.Kernel.parse(kernel)
            self.syms = k.symbols
            self.r = ar.open_dump(kernel, core)
            self.order = k.endian
        self.ptr = 4

    def read(self, va: int, n: int) -> bytes:
        out = self.r.read(va, n)
        assert out is not None, hex(va)
        assert len(out) == n
        return out

    def uint(self, va: int, size: int) -> int:
        return int.from_bytes(self.read(va, size), "little" if self.order == "<" else "big")

    def sint(self, va: int, size: int) -> int:
        v = self.uint(va, size)
        return v - (1 << (8 * size)) if v >> (8 * size - 1) else v

    def ptr_at(self, va: int) -> int:
        return self.uint(va, self.ptr)

    def var(self, name: str) -> int:
        return self.syms[name]


_BUILT: dict[tuple[str, str, str, str], SynthDump] = {}


def _build(root: Path, arch: str, fmt: str, era: str, types: str = "ctf-v3") -> SynthDump:
    key = (arch, fmt, era, types)
    if key not in _BUILT:
        d = root / "-".join(key)
        d.mkdir(parents=True)
        _BUILT[key] = build(arch, d, 21, fmt, types=types, era=era)
    return _BUILT[key]


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("kdata-i386-arm")


def _truth(d: SynthDump) -> tuple[KernelDataTruth, LayoutTruth]:
    kd, lt = d.truth.kernel_data, d.truth.type_layout
    assert kd is not None and lt is not None
    return kd, lt


# ----------------------------------------------------------------------------- defaults
@pytest.mark.parametrize(("arch", "fmt", "seed"), sorted(PINNED))
def test_types_none_is_byte_identical(tmp_path: Path, arch: str, fmt: str, seed: int) -> None:
    a = build(arch, tmp_path, seed, fmt, types=None)
    digest = hashlib.sha256(a.kernel.read_bytes() + a.core.read_bytes()).hexdigest()
    assert digest == PINNED[(arch, fmt, seed)]
    assert a.truth.kernel_data is None and a.truth.type_layout is None and a.debug is None


@pytest.mark.parametrize("fmt", ["minidump", "minidump-v4-be", "elf-be"])
def test_arm_types_none_same_as_default(tmp_path: Path, fmt: str) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = build("arm", tmp_path / "a", 4, fmt)
    b = build("arm", tmp_path / "b", 4, fmt, types=None, kva_tail_mib=0)
    assert a.kernel.read_bytes() == b.kernel.read_bytes()
    assert a.core.read_bytes() == b.core.read_bytes()
    assert b.truth.kernel_data is None
    with b.kernel.open("rb") as f:
        assert ELFFile(f).get_section_by_name(".SUNW_ctf") is None


@pytest.mark.parametrize(
    ("arch", "fmt", "kwargs", "message"),
    [
        ("i386", "minidump-pae", {"types": "ctf-v3", "era": "15"}, "retired in FreeBSD 15"),
        ("i386", "elf-pae", {"era": "13"}, "need types"),
        ("i386", "elf-pae", {"cp_time_symbol": True}, "need types"),
        ("i386", "elf-pae", {"types": "ctf-v9"}, "unknown types"),
        ("arm", "minidump-v4", {"types": "ctf-v3", "era": "13"}, "left FreeBSD in 13"),
        ("arm", "elf-v4-be", {"types": "dwarf", "era": "15"}, "left FreeBSD in 13"),
        ("arm", "minidump", {"types": "ctf-v3", "era": "9"}, "unknown era"),
        ("arm", "minidump", {"era": "14"}, "need types"),
    ],
)
def test_bad_options(
    tmp_path: Path, arch: str, fmt: str, kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        build(arch, tmp_path, 0, fmt, **kwargs)


@pytest.mark.parametrize(
    ("fmt", "era", "layout"),
    [
        ("elf-pae", "11", 11),
        ("elf-nopae", "12", 12),
        ("elf-pae", "14", 13),
        ("minidump-v1-pae", "14", 12),
        ("minidump-v1-nopae", "10", 11),
        ("minidump-pae", "10", 13),
    ],
)
def test_i386_layout_follows_types_era(tmp_path: Path, fmt: str, era: str, layout: int) -> None:
    d = build("i386", tmp_path, 3, fmt, types="ctf-v3", era=era)
    kd, lt = _truth(d)
    assert d.truth.extras["era"] == layout
    assert kd.era == era and lt.era == era
    assert lt.target.name == "i386"


def test_default_eras(tmp_path: Path) -> None:
    """Without ``era`` the seed picks one the format's kernel had."""
    seen: dict[str, set[str]] = {"i386": set(), "v4": set()}
    for seed in range(8):
        d = tmp_path / str(seed)
        d.mkdir()
        (d / "a").mkdir()
        kd, _ = _truth(build("i386", d, seed, "minidump-nopae", types="ctf-v3"))
        seen["i386"].add(kd.era)
        kd, _ = _truth(build("arm", d / "a", seed, "elf-v4", types="ctf-v3"))
        seen["v4"].add(kd.era)
    assert seen["i386"] <= {"10", "11", "12", "13", "14"} and len(seen["i386"]) > 1
    assert seen["v4"] <= {"10", "11", "12"} and len(seen["v4"]) > 1


# ----------------------------------------------------------------------------- the data
@pytest.mark.parametrize(("arch", "fmt", "era"), CASES, ids=["-".join(c) for c in CASES])
def test_kernel_data_bytes(root: Path, arch: str, fmt: str, era: str) -> None:
    d = _build(root, arch, fmt, era)
    kd, lt = _truth(d)
    m = Mem(d)
    target = lt.target
    big = fmt.endswith("-be")
    # the target: 32-bit, the format's byte order, MAXCPU of sys/<arch>/include/param.h
    assert target.ptr_size == 4 and target.long_size == 4
    assert target.byteorder == ("big" if big else "little")
    assert m.order == (">" if big else "<")
    assert target.maxcpu == (32 if arch == "i386" else 4)
    assert kd.era == era and kd.maxcpu == target.maxcpu
    assert m.uint(m.var("mp_maxcpus"), 4) == target.maxcpu
    assert m.uint(m.var("mp_ncpus"), 4) == kd.ncpus

    # allproc -> the newest process; p_list.le_next chains them; proc0 last
    next_off = lt.offset("proc", "p_list.le_next")
    pid_off = lt.offset("proc", "p_pid")
    first = m.ptr_at(m.var("allproc"))
    live = [p for p in kd.procs if p.list_name == "allproc"]
    assert first == live[0].addr
    chain = []
    p = first
    while p and len(chain) < 50:
        chain.append(p)
        p = m.ptr_at(p + next_off)
    assert chain == [q.addr for q in live]
    assert chain[-1] == m.var("proc0") == kd.proc0
    for q in kd.procs:
        assert m.sint(q.addr + pid_off, 4) == q.pid
        raw = m.read(q.addr + pid_off, 4)
        assert raw == q.pid.to_bytes(4, target.byteorder)
        comm = m.read(q.addr + lt.offset("proc", "p_comm"), 20).split(b"\0")[0]
        assert comm == q.comm.encode()[:19]
        td = q.threads[0]
        assert m.ptr_at(q.addr + lt.offset("proc", "p_threads.tqh_first")) == td.addr
        assert m.sint(td.addr + lt.offset("thread", "td_tid"), 4) == td.tid
        assert m.ptr_at(td.addr + lt.offset("thread", "td_proc")) == q.addr
    if kd.zombproc is not None:
        zombies = [q for q in kd.procs if q.list_name == "zombproc"]
        assert m.ptr_at(m.var("zombproc")) == zombies[0].addr
    assert m.uint(m.var("nprocs"), 4) == kd.nprocs == 7

    # load average, swap, per-CPU data
    ld_off = lt.offset("loadavg", "ldavg")
    av = m.var("averunnable")
    assert tuple(m.uint(av + ld_off + 4 * i, 4) for i in range(3)) == kd.ldavg
    assert m.uint(m.var("fscale"), 4) == kd.fscale == 2048
    sw = m.ptr_at(m.var("swtailq"))
    for s in kd.swap:
        assert sw == s.addr
        assert m.sint(s.addr + lt.offset("swdevt", "sw_nblks"), 4) == s.nblks
        assert m.sint(s.addr + lt.offset("swdevt", "sw_used"), 4) == s.used
        sw = m.ptr_at(s.addr + lt.offset("swdevt", "sw_list.tqe_next"))
    assert sw == 0
    for c in range(kd.ncpus):
        pc = m.ptr_at(m.var("cpuid_to_pcpu") + 4 * c)
        assert pc == kd.pcpu[c]
        assert m.sint(pc + lt.offset("pcpu", "pc_cpuid"), 4) == c
        times = tuple(m.uint(pc + lt.offset("pcpu", "pc_cp_time") + 4 * k, 4) for k in range(5))
        assert times == kd.cp_time[c]
        off = m.ptr_at(m.var("dpcpu_off") + 4 * c)
        assert off == kd.dpcpu_off[c]
        region = (kd.dpcpu_start + off) % (1 << 32)
        assert m.uint(region, 8) == kd.dpcpu_values["synth_counter"][c]
    assert m.var("__start_set_pcpu") == kd.dpcpu_start
    assert m.var("__stop_set_pcpu") == kd.dpcpu_stop == kd.dpcpu_start + 8 + 32

    # msgbufp -> struct msgbuf whose ring is the machine's message buffer
    mb = m.ptr_at(m.var("msgbufp"))
    assert mb == kd.msgbuf.addr
    assert m.uint(mb + lt.offset("msgbuf", "msg_magic"), 4) == MSG_MAGIC
    ring = m.ptr_at(mb + lt.offset("msgbuf", "msg_ptr"))
    assert ring == kd.msgbuf.ring
    assert m.uint(mb + lt.offset("msgbuf", "msg_size"), 4) == kd.msgbuf.size
    assert m.read(ring, kd.msgbuf.size) == d.truth.msgbuf
    if isinstance(m.r, ir.Minidump):
        assert m.r.msgbuf()[: kd.msgbuf.size] == d.truth.msgbuf


@pytest.mark.parametrize("arch_fmt", [("i386", "minidump-v1-nopae"), ("arm", "minidump-be"),
                                      ("arm", "minidump-v4")])
def test_arena_pages_dumped(root: Path, arch_fmt: tuple[str, str]) -> None:
    """Every page the data lies in is in the minidump's page data (bitmap bit set, its
    own page of the sparse data)."""
    arch, fmt = arch_fmt
    era = next(e for a, f, e in CASES if (a, f) == arch_fmt)
    d = _build(root, arch, fmt, era)
    kd, lt = _truth(d)
    m = Mem(d)
    vas = {q.addr for q in kd.procs} | {t.addr for q in kd.procs for t in q.threads}
    vas |= {s.addr for s in kd.swap} | set(kd.pcpu) | {kd.msgbuf.addr}
    vas |= {(kd.dpcpu_start + o) % (1 << 32) for o in kd.dpcpu_off}
    pages = {va & ~0xFFF for va in vas}
    assert len(pages) >= 3
    assert isinstance(m.r, (ir.Minidump, ar.ArmMinidump))
    data_start = m.r.sparse_off
    offsets = set()
    for page in sorted(pages):
        off = m.r.translate(page)  # the page's file offset: None unless its bit is set
        assert off is not None, hex(page)
        assert off >= data_start and off % 4096 == 0
        offsets.add(off)
    assert len(offsets) == len(pages)


@pytest.mark.parametrize(("arch", "fmt"), [("i386", "elf-nopae"), ("arm", "minidump-v4-be")])
@pytest.mark.parametrize("types", ["ctf-v2", "ctf-v3-raw", "dwarf"])
def test_type_information_files(tmp_path: Path, arch: str, fmt: str, types: str) -> None:
    era = "12"
    d = build(arch, tmp_path, 5, fmt, types=types, era=era, debug_name="k.dbg")
    big = fmt.endswith("-be")
    with d.kernel.open("rb") as f:
        sec = ELFFile(f).get_section_by_name(".SUNW_ctf")
        ctf = sec.data() if sec is not None else None
    if types == "dwarf":
        assert ctf is None
        assert d.debug == tmp_path / "k.dbg"
        with d.debug.open("rb") as f:
            elf = ELFFile(f)
            assert elf.elfclass == 32 and elf.little_endian == (not big)
            assert elf.get_section_by_name(".debug_info") is not None
    else:
        assert d.debug is None and ctf is not None
        magic, version, flags = struct.unpack_from(">HBB" if big else "<HBB", ctf, 0)
        assert magic == 0xCFF1
        assert version == (2 if types == "ctf-v2" else 3)
        assert flags == (0 if types == "ctf-v3-raw" else 1)


def test_cp_time_symbol(tmp_path: Path) -> None:
    d = build("arm", tmp_path, 9, "elf-be", types="ctf-v3", era="11", cp_time_symbol=True)
    kd, _ = _truth(d)
    m = Mem(d)
    assert kd.cp_time_symbol == kd.cp_time_sum
    got = tuple(m.uint(m.var("cp_time") + 4 * k, 4) for k in range(5))
    assert got == tuple(v % (1 << 32) for v in kd.cp_time_sum)


# ----------------------------------------------------------------------------- readers
def _read_all(d: SynthDump) -> dict[str, object]:
    """The kernel-data calls' results on dump ``d`` (non-native: a resolver over the
    kernel's symbols that drops one leading ``_`` as libc's ``__fdnlist`` does)."""
    from pykvm import kvm as K
    from pykvm.constants import KERN_PROC_PROC
    from pykvm.kernel import cptime, loadavg, msgbuf, pcpu, procs, swap

    symtab = K.symtab_resolver(d.kernel)

    def resolve(name: str) -> int | None:
        r = symtab(name[1:] if name.startswith("_") else name)
        return r if isinstance(r, int) else None

    with K.open2(d.kernel, d.core, resolver=resolve) as kd:
        assert not kd.native()
        return {
            "pids": [k.pid for k in procs.getprocs(kd, KERN_PROC_PROC)],
            "loadavg": loadavg.getloadavg(kd, 3),
            "cptime": cptime.getcptime(kd),
            "maxcpu": pcpu.getmaxcpu(kd),
            "ncpus": pcpu.getncpus(kd),
            "msgbuf": msgbuf.msgbuf(kd),
            "swap": [(r.devname, r.used, r.total) for r in swap.getswapinfo(kd, 16)],
        }


@pytest.mark.parametrize("fmt", ["minidump-v4", "minidump-v4-be", "elf-v4", "elf-v4-be"])
def test_readers_on_v4_pmap_formats(root: Path, fmt: str) -> None:
    """pykvm's kernel-data calls on the ARMv4/v5 formats (FreeBSD <= 12 kernels)."""
    era = next(e for a, f, e in CASES if (a, f) == ("arm", fmt))
    d = _build(root, "arm", fmt, era)
    kd, _ = _truth(d)
    got = _read_all(d)
    assert got["pids"] == kd.pids()
    assert got["loadavg"] == [v / kd.fscale for v in kd.ldavg]
    assert got["cptime"] == list(kd.cp_time_sum)
    assert got["maxcpu"] == 4 and got["ncpus"] == kd.ncpus
    assert got["msgbuf"] == (kd.msgbuf.unread, kd.msgbuf.whole)
    dmmax = kd.dmmax if kd.dmmax is not None else kd.nsw_cluster_max
    rows = [(s.name, s.used, s.nblks - dmmax) for s in kd.swap]
    rows.append(("", sum(r[1] for r in rows), sum(r[2] for r in rows)))
    assert got["swap"] == rows
