"""Kernel data in the powerpc and powerpc64 dumps (``types=``), checked byte by byte.

Every read goes through tests/synth/synth_powerpc_reader.py (an independent reading of the
files, importing nothing from pykvm's readers); offsets come from the layout truth, the
expected values from the kernel-data truth, and words are decoded in the byte order the
format implies (32-bit powerpc and powerpc64 big-endian, ``-le`` formats little-endian),
worked out here rather than taken from the writer.
"""

from __future__ import annotations

import hashlib
import struct
import time
from pathlib import Path

import pytest
from synth_powerpc_reader import Fault, FullCore, Kernel, Minidump

from pykvm.synth import SynthDump
from pykvm.synth.arch_powerpc import build as build32
from pykvm.synth.arch_powerpc64 import build as build64
from pykvm.synth.kerneldata import MSG_MAGIC

PS = 4096
#: (architecture, format, byte order, pointer size)
CASES = [
    ("powerpc", "elf", ">", 4),
    ("powerpc", "elf-kdh", ">", 4),
    ("powerpc64", "minidump-hpt", ">", 8),
    ("powerpc64", "minidump-hpt-le", "<", 8),
    ("powerpc64", "minidump-radix", ">", 8),
    ("powerpc64", "minidump-radix-le", "<", 8),
    ("powerpc64", "elf", ">", 8),
    ("powerpc64", "elf-le", "<", 8),
    ("powerpc64", "elf-kdh", ">", 8),
    ("powerpc64", "elf-le-kdh", "<", 8),
]
IDS = [f"{a}-{f}" for a, f, _, _ in CASES]


def _build(arch: str, d: Path, seed: int, fmt: str, **kw: object) -> SynthDump:
    return (build32 if arch == "powerpc" else build64)(d, seed, fmt, **kw)  # type: ignore[arg-type]


class View:
    """The dump through the test reader: symbols, reads, words in the dump's byte order."""

    def __init__(self, d: SynthDump, e: str, ptr: int) -> None:
        self.k = Kernel(d.kernel.read_bytes())
        data = d.core.read_bytes()
        self.r: FullCore | Minidump = (
            Minidump(data, self.k) if data.startswith(b"minidump") else FullCore(data, self.k)
        )
        self.e, self.ptr = e, ptr

    def sym(self, name: str) -> int:
        return self.k.symbols[name]

    def read(self, va: int, size: int) -> bytes:
        return self.r.read(va, size)

    def u(self, va: int, size: int) -> int:
        fmt = {1: "B", 2: "H", 4: "I", 8: "Q"}[size]
        return int(struct.unpack(self.e + fmt, self.read(va, size))[0])

    def i32(self, va: int) -> int:
        return int(struct.unpack(self.e + "i", self.read(va, 4))[0])

    def p(self, va: int) -> int:
        return self.u(va, self.ptr)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, SynthDump]:
    out: dict[str, SynthDump] = {}
    for (arch, fmt, _, _), ident in zip(CASES, IDS, strict=True):
        era = "14"
        out[ident] = _build(arch, tmp_path_factory.mktemp(ident), 7, fmt, types="ctf-v3",
                            era=era)
    return out


@pytest.mark.parametrize(("arch", "fmt", "e", "ptr"), CASES, ids=IDS)
def test_procs_by_hand(built: dict[str, SynthDump], arch: str, fmt: str, e: str,
                       ptr: int) -> None:
    d = built[f"{arch}-{fmt}"]
    t, tl = d.truth.kernel_data, d.truth.type_layout
    assert t is not None and tl is not None
    assert (tl.target.ptr_size, tl.target.byteorder) == (ptr, "big" if e == ">" else "little")
    assert tl.target.name == ("powerpc" if arch == "powerpc" else
                              "powerpc64le" if e == "<" else "powerpc64")
    v = View(d, e, ptr)
    proc = tl.structs["proc"]
    # allproc is a LIST_HEAD: its first word is lh_first, the first process of the walk
    first = v.p(v.sym("allproc"))
    assert first == t.procs[0].addr
    # walk the list by hand: p_list.le_next at the layout's offset, p_pid a 32-bit int
    off_next = proc.member("p_list.le_next").offset
    off_pid = proc.member("p_pid").offset
    off_comm = proc.member("p_comm").offset
    live = [p for p in t.procs if p.list_name == "allproc"]
    va = first
    for p in live:
        assert va == p.addr
        raw = v.read(va + off_pid, 4)
        assert raw == p.pid.to_bytes(4, "big" if e == ">" else "little", signed=True)
        comm = v.read(va + off_comm, 20)
        assert comm.split(b"\0")[0] == p.comm.encode()
        va = v.p(va + off_next)
    assert va == 0
    assert [p.pid for p in live] == list(t.allproc)
    assert v.i32(v.sym("nprocs")) == t.nprocs
    # proc0 is the kernel's own variable (.bss) and the last process of allproc
    assert live[-1].addr == v.sym("proc0") == t.proc0
    assert v.i32(v.sym("proc0") + off_pid) == 0


@pytest.mark.parametrize(("arch", "fmt", "e", "ptr"), CASES, ids=IDS)
def test_msgbuf_cpus_and_load(built: dict[str, SynthDump], arch: str, fmt: str, e: str,
                              ptr: int) -> None:
    d = built[f"{arch}-{fmt}"]
    t, tl = d.truth.kernel_data, d.truth.type_layout
    assert t is not None and tl is not None
    v = View(d, e, ptr)
    mb = tl.structs["msgbuf"]
    mva = v.p(v.sym("msgbufp"))
    assert mva == t.msgbuf.addr
    assert v.u(mva + mb.member("msg_magic").offset, 4) == MSG_MAGIC == 0x063062
    ring = v.p(mva + mb.member("msg_ptr").offset)
    assert ring == t.msgbuf.ring
    size = v.u(mva + mb.member("msg_size").offset, 4)
    assert size == t.msgbuf.size == len(d.truth.msgbuf)
    # the ring is the machine's message buffer, mapped in kernel VA and dumped
    assert v.read(ring, size) == d.truth.msgbuf
    if "msgbuf_va" in d.truth.extras:
        assert ring == d.truth.extras["msgbuf_va"]
    # MAXCPU 256 on every powerpc flavour (sys/powerpc/include/param.h)
    assert v.i32(v.sym("mp_maxcpus")) == t.maxcpu == 256
    assert v.i32(v.sym("mp_ncpus")) == t.ncpus
    pc = tl.structs["pcpu"]
    for cpu in range(t.ncpus):
        pva = v.p(v.sym("cpuid_to_pcpu") + cpu * ptr)
        assert pva == t.pcpu[cpu]
        assert v.u(pva + pc.member("pc_cpuid").offset, 4) == cpu
        cp = pc.member("pc_cp_time").offset
        longs = [v.u(pva + cp + i * ptr, ptr) for i in range(5)]  # long is a word here
        assert tuple(longs) == t.cp_time[cpu]
        assert v.p(v.sym("dpcpu_off") + cpu * ptr) == t.dpcpu_off[cpu]
    assert v.sym("__start_set_pcpu") == t.dpcpu_start
    assert v.sym("__stop_set_pcpu") == t.dpcpu_stop
    # averunnable: fixpt_t ldavg[3] (u_int) then long fscale
    la = tl.structs["loadavg"]
    avg = v.sym("averunnable")
    got = [v.u(avg + la.member("ldavg").offset + 4 * i, 4) for i in range(3)]
    assert tuple(got) == t.ldavg
    assert v.i32(v.sym("fscale")) == t.fscale == 2048


@pytest.mark.parametrize(("arch", "fmt", "e", "ptr"), CASES, ids=IDS)
def test_arena_pages_dumped(built: dict[str, SynthDump], arch: str, fmt: str, e: str,
                            ptr: int) -> None:
    d = built[f"{arch}-{fmt}"]
    t = d.truth.kernel_data
    assert t is not None
    v = View(d, e, ptr)
    addrs = [p.addr for p in t.procs if p.addr != t.proc0]
    addrs += [td.addr for p in t.procs for td in p.threads] + list(t.pcpu)
    addrs += [s.addr for s in t.swap] + [t.msgbuf.addr]
    lo, hi = min(addrs) & ~(PS - 1), max(addrs) | (PS - 1)
    # one contiguous arena of kernel VA, every page of it in the dump
    assert hi - lo < 256 * PS
    for va in range(lo, hi, PS):
        v.read(va, PS)
    kva = d.truth.vm_min_kernel_address
    assert lo >= kva
    if isinstance(v.r, FullCore):
        # the third chunk (after .data/.bss and the message buffer) covers the arena
        assert len(v.r.phdrs) == 3
        _, _, pv, _, memsz = v.r.phdrs[2]
        assert pv <= lo and hi < pv + memsz
        with pytest.raises(Fault):  # the chunk ends there: the next page is not dumped
            v.read(pv + memsz, 1)
    else:
        assert d.truth.kernel_vm_end >= hi


def _sha(d: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(d.iterdir()):
        h.update(f.name.encode() + b"\0" + f.read_bytes())
    return h.hexdigest()


#: sha256 of the files written without types (recorded before the option existed)
UNCHANGED = {
    ("powerpc", "elf", 5):
        "63d2714d6db0f6699d781fd2c8a239821e098d1e46d9af7f42a5f0ec0192c083",
    ("powerpc64", "minidump-hpt-le", 5):
        "2762ac1a171b99e45260cc2823848c25289a87e442d5a1d46aedd802d15759c5",
    ("powerpc64", "minidump-radix", 5):
        "07e614dbf821ed5512ebfb1d53af159e74bd4b45d95fe21d5cbb675ecfc46722",
    ("powerpc64", "elf-kdh", 5):
        "636d9b5d3764ee577d551e2190034b318afda3deba87473a729d639fc798cd2d",
}


@pytest.mark.parametrize(("arch", "fmt", "seed"), sorted(UNCHANGED))
def test_no_types_unchanged(tmp_path: Path, arch: str, fmt: str, seed: int) -> None:
    d = _build(arch, tmp_path, seed, fmt)
    assert d.truth.kernel_data is None and d.truth.type_layout is None and d.debug is None
    assert _sha(tmp_path) == UNCHANGED[(arch, fmt, seed)]
    assert sorted(f.name for f in tmp_path.iterdir()) == ["kernel", "vmcore"]


@pytest.mark.parametrize(("arch", "fmt", "era", "allowed"), [
    ("powerpc", "elf", "15", "10 to 14"),
    ("powerpc64", "minidump-hpt-le", "12", "13 to 15"),
    ("powerpc64", "elf-le", "10", "13 to 15"),
    ("powerpc64", "minidump-radix-le", "11", "13 to 15"),
])
def test_eras_the_flavour_did_not_exist_in(tmp_path: Path, arch: str, fmt: str, era: str,
                                           allowed: str) -> None:
    with pytest.raises(ValueError, match=f"exist in FreeBSD {allowed} only; era '{era}'"):
        _build(arch, tmp_path, 1, fmt, types="ctf-v3", era=era)
    assert list(tmp_path.iterdir()) == []


def test_default_eras(tmp_path: Path) -> None:
    seen: dict[str, set[str]] = {"powerpc": set(), "le": set(), "be": set()}
    for seed in range(16):
        for key, arch, fmt in (("powerpc", "powerpc", "elf"), ("le", "powerpc64", "elf-le"),
                               ("be", "powerpc64", "minidump-hpt")):
            d = tmp_path / f"{key}{seed}"
            d.mkdir()
            tl = _build(arch, d, seed, fmt, types="ctf-v3").truth.type_layout
            assert tl is not None
            seen[key].add(tl.era)
    assert seen["powerpc"] <= {"10", "11", "12", "13", "14"} and len(seen["powerpc"]) >= 3
    assert seen["le"] <= {"13", "14", "15"} and len(seen["le"]) >= 2
    assert "15" in seen["be"] and seen["be"] & {"10", "11", "12"}
    # the old eras that big-endian powerpc64 and 32-bit powerpc had are accepted
    for arch, fmt, era in (("powerpc64", "minidump-hpt", "10"), ("powerpc64", "elf", "12"),
                           ("powerpc", "elf-kdh", "10")):
        d = tmp_path / f"old-{arch}-{fmt}"
        d.mkdir()
        tl = _build(arch, d, 2, fmt, types="ctf-v2", era=era).truth.type_layout
        assert tl is not None and tl.era == era


def test_option_errors(tmp_path: Path) -> None:
    for arch, fmt in (("powerpc", "elf"), ("powerpc64", "minidump-radix")):
        with pytest.raises(ValueError, match="era and cp_time_symbol need types"):
            _build(arch, tmp_path, 1, fmt, era="13")
        with pytest.raises(ValueError, match="era and cp_time_symbol need types"):
            _build(arch, tmp_path, 1, fmt, cp_time_symbol=True)
        with pytest.raises(ValueError, match="unknown types 'ctf-v4'"):
            _build(arch, tmp_path, 1, fmt, types="ctf-v4")


@pytest.mark.parametrize(("arch", "fmt", "e", "ptr"), [CASES[0], CASES[3], CASES[4], CASES[7]],
                         ids=[IDS[0], IDS[3], IDS[4], IDS[7]])
def test_type_kinds_and_cp_time(tmp_path: Path, arch: str, fmt: str, e: str, ptr: int) -> None:
    for types in ("ctf-v3", "ctf-v2", "ctf-v3-raw", "dwarf"):
        d = tmp_path / types
        d.mkdir()
        era = "14"
        dump = _build(arch, d, 4, fmt, types=types, era=era, cp_time_symbol=True,
                      debug_name="k.dbg")
        kfile = dump.kernel.read_bytes()
        assert (b".SUNW_ctf" in kfile) == types.startswith("ctf")
        if types == "dwarf":
            assert dump.debug == d / "k.dbg"
            assert dump.debug.read_bytes()[:4] == b"\x7fELF"
            assert b".debug_info" in dump.debug.read_bytes()
        else:
            assert dump.debug is None and not (d / "k.dbg").exists()
        t = dump.truth.kernel_data
        assert t is not None and t.cp_time_symbol is not None
        v = View(dump, e, ptr)
        got = tuple(v.u(v.sym("cp_time") + i * ptr, ptr) for i in range(5))
        assert got == t.cp_time_symbol
    # without cp_time_symbol the kernel has no cp_time
    d = tmp_path / "plain"
    d.mkdir()
    dump = _build(arch, d, 4, fmt, types="ctf-v3", era="14")
    assert "cp_time" not in Kernel(dump.kernel.read_bytes()).symbols
    assert dump.truth.kernel_data is not None and dump.truth.kernel_data.cp_time_symbol is None


@pytest.mark.parametrize(("arch", "virt", "phys"), [
    ("powerpc", "elf", "elf-phys"), ("powerpc", "elf-kdh", "elf-phys-kdh"),
    ("powerpc64", "elf", "elf-phys"), ("powerpc64", "elf-le", "elf-le-phys"),
])
def test_physical_cores_hold_the_data(tmp_path: Path, arch: str, virt: str, phys: str) -> None:
    """debug.minidump=0 cores translate nothing, but the arena's pages are in their RAM."""
    (tmp_path / "v").mkdir()
    (tmp_path / "p").mkdir()
    a = _build(arch, tmp_path / "v", 9, virt, types="ctf-v3", era="14")
    b = _build(arch, tmp_path / "p", 9, phys, types="ctf-v3", era="14")
    ta, tb = a.truth.kernel_data, b.truth.kernel_data
    assert ta is not None and tb is not None
    assert tb.procs == ta.procs and tb.msgbuf == ta.msgbuf
    e = ">" if "-le" not in virt else "<"
    v = View(a, e, 4 if arch == "powerpc" else 8)
    core = b.core.read_bytes()
    for va in sorted({p.addr & ~(PS - 1) for p in ta.procs if p.addr != ta.proc0}):
        page = v.read(va, PS)
        assert core.find(page) > 0
    with pytest.raises(Fault, match="Raw corefile not supported"):
        View(b, e, 4).read(ta.procs[0].addr, 4)


def test_build_time(tmp_path: Path) -> None:
    for i, (arch, fmt, _, _) in enumerate(CASES):
        d = tmp_path / str(i)
        d.mkdir()
        t0 = time.perf_counter()
        _build(arch, d, 13, fmt, types="ctf-v3", era="14")
        assert time.perf_counter() - t0 < 1.5, (arch, fmt)
