"""The drop-in's kernel-data calls: libkvm's C shapes and return conventions, strict mode.

Dumps with kernel data are built like tests/kernel's (amd64, CTF v3, era 14 and era 11 for
``dmmax``); expected values come from the writer's truth (``dump.truth.kernel_data``), the
texts from lib/libkvm (kvm_proc.c, kvm_getloadavg.c, kvm_getswapinfo.c, kvm_cptime.c,
kvm_pcpu.c).  libkvm refuses non-native dumps, so these run where amd64 is native.
"""

from __future__ import annotations

import ctypes
import struct
import subprocess
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import libkvm
import pytest

import pykvm
from pykvm.abi import kinfo_proc
from pykvm.kernel import procs
from pykvm.synth import SynthDump, build_amd64
from pykvm.synth.kerneldata import KernelDataTruth

#: an address no synthetic dump maps (tests/kernel/kdata_helpers.py)
UNMAPPED = 0xFFFFFFFF00000000 + 0x40000000 - 0x1000
KERN_PROC_ALL, KERN_PROC_PID, KERN_PROC_PROC, KERN_PROC_UID = 0, 1, 8, 5
SWIF_DEV_PREFIX = 2
Run = Callable[..., subprocess.CompletedProcess[str]]


def _build(root: Path, era: str) -> SynthDump:
    d = root / f"era{era}"
    d.mkdir()
    return build_amd64(d, seed=7, fmt="minidump-v3", types="ctf-v3", era=era, small_kva=True)


@pytest.fixture(scope="module")
def dumps(tmp_path_factory: pytest.TempPathFactory) -> dict[str, SynthDump]:
    root = tmp_path_factory.mktemp("compat-kdata")
    out = {era: _build(root, era) for era in ("14", "11")}
    with pykvm.open2(out["14"].kernel, out["14"].core) as kd:
        if not kd.native():
            pytest.skip("libkvm reads kernel data of native (amd64) dumps only")
    return out


@pytest.fixture(scope="module")
def dump(dumps: dict[str, SynthDump]) -> SynthDump:
    return dumps["14"]


def truth(d: SynthDump) -> KernelDataTruth:
    assert d.truth.kernel_data is not None
    return d.truth.kernel_data


def open_kd(d: SynthDump, resolver: Any = None) -> libkvm.KvmHandle:
    if resolver is None:
        h = libkvm.kvm_openfiles(str(d.kernel), str(d.core), None, libkvm.O_RDONLY, None)
    else:
        h = libkvm.kvm_open2(str(d.kernel), str(d.core), libkvm.O_RDONLY, None, resolver)
    assert h is not None
    return h


@pytest.fixture
def kd(dump: SynthDump) -> Iterator[libkvm.KvmHandle]:
    h = open_kd(dump)
    yield h
    libkvm.kvm_close(h)


def moved(d: SynthDump, overrides: Mapping[str, int | None]) -> Callable[[str], int | None]:
    """A resolver answering from the kernel's symbols, ``overrides`` (bare names) moved
    (None: the symbol is missing)."""
    with pykvm.open2(d.kernel, d.core) as base:
        def lookup(name: str) -> int | None:
            bare = name[1:] if name.startswith("_") else name
            if bare in overrides:
                return overrides[bare]
            e = base.nlist2([name]).entries[0]
            return e.value if e.type else None
        names = ("cpuid_to_pcpu", "mp_maxcpus", "mp_ncpus", "__pcpu", "nprocs", "allproc",
                 "zombproc", "ticks", "hz", "cpu_tick_frequency", "averunnable", "fscale",
                 "swtailq", "dmmax", "cp_time")
        table = {"_" + n: lookup("_" + n) for n in names}
    return lambda name: table.get(name)


def pcpu_size(d: SynthDump) -> int:
    assert d.truth.type_layout is not None
    return d.truth.type_layout.structs["pcpu"].size


def mem(d: SynthDump, va: int, size: int) -> bytes:
    got = d.truth.expect(va, size)
    assert got is not None
    return bytes(got)


# ------------------------------------------------------------------ kvm_getloadavg
def test_getloadavg(kd: libkvm.KvmHandle, dump: SynthDump) -> None:
    t = truth(dump)
    want = [v / t.fscale for v in t.ldavg]
    for nelem, n in ((3, 3), (10, 3), (2, 2), (0, 0)):
        out = (ctypes.c_double * 3)(-1.0, -1.0, -1.0)
        assert libkvm.kvm_getloadavg(kd, out, nelem) == n
        assert list(out) == want[:n] + [-1.0] * (3 - n)
    out = (ctypes.c_double * 3)(-1.0, -1.0, -1.0)
    assert libkvm.kvm_getloadavg(kd, out, -5) == -5  # returned unchanged, nothing stored
    assert list(out) == [-1.0] * 3
    small = bytearray(16)
    with pytest.raises(ValueError):
        libkvm.kvm_getloadavg(kd, small, 3)


def test_getloadavg_missing_symbol(dump: SynthDump) -> None:
    h = open_kd(dump, moved(dump, {"averunnable": None}))
    out = (ctypes.c_double * 3)()
    assert libkvm.kvm_getloadavg(h, out, 3) == -1
    assert libkvm.kvm_geterr(h) == "_averunnable: no such symbol"
    libkvm.kvm_close(h)
    h = open_kd(dump, moved(dump, {"averunnable": UNMAPPED}))
    assert libkvm.kvm_getloadavg(h, out, 3) == -1
    assert libkvm.kvm_geterr(h) == "can't read averunnable"
    libkvm.kvm_close(h)


# ------------------------------------------------------------------- kvm_getcptime
def test_getcptime(kd: libkvm.KvmHandle, dump: SynthDump) -> None:
    out = (ctypes.c_long * 5)(*([-9] * 5))
    assert libkvm.kvm_getcptime(kd, out) == 0
    assert list(out) == list(truth(dump).cp_time_sum)
    assert libkvm.kvm_getcptime(None, None) == 0  # libkvm's clear-cache call


def test_getcptime_errors(dump: SynthDump) -> None:
    out = (ctypes.c_long * 5)()
    h = open_kd(dump, moved(dump, {"cp_time": UNMAPPED}))
    assert libkvm.kvm_getcptime(h, out) == -1
    assert libkvm.kvm_geterr(h) == "cannot read cp_time array"
    libkvm.kvm_close(h)
    h = open_kd(dump, moved(dump, {"cpuid_to_pcpu": UNMAPPED}))
    assert libkvm.kvm_getcptime(h, out) == -1
    assert libkvm.kvm_geterr(h) == "cannot read cpuid_to_pcpu array"
    libkvm.kvm_close(h)


# ----------------------------------------------------------------- kvm_getswapinfo
def _swap_rows(arr: Any, n: int) -> list[tuple[bytes, int, int, int, int, int]]:
    return [(bytes(r.ksw_devname), r.ksw_used, r.ksw_total, r.ksw_flags, r.ksw_reserved1,
             r.ksw_reserved2) for r in list(arr)[:n]]


def test_getswapinfo_no_dmmax(kd: libkvm.KvmHandle) -> None:
    arr = (libkvm.KvmSwap * 4)()
    assert libkvm.kvm_getswapinfo(kd, arr, 4, 0) == -1  # FreeBSD >= 12: no dmmax
    assert libkvm.kvm_geterr(kd) == "unable to find dmmax"
    assert bytes(arr) == bytes(ctypes.sizeof(arr))


def test_getswapinfo(dumps: dict[str, SynthDump]) -> None:
    d = dumps["11"]
    t = truth(d)
    assert t.dmmax is not None
    h = open_kd(d)

    def name(dev: int, prefix: str) -> bytes:
        if dev == 0xFFFFFFFF:  # NODEV of the era-11 32-bit dev_t
            return b"[NFS swap]"
        return (prefix + f"#C:{dev:#x}").encode()  # devname(3) without the dump's host

    for flags, prefix in ((0, ""), (SWIF_DEV_PREFIX, "/dev/")):
        arr = (libkvm.KvmSwap * 8)()
        assert libkvm.kvm_getswapinfo(h, arr, 8, flags) == len(t.swap)
        want = [(name(s.dev, prefix), s.used, s.nblks - t.dmmax, s.flags, 0, 0)
                for s in t.swap]
        want.append((b"", sum(s.used for s in t.swap),
                     sum(s.nblks - t.dmmax for s in t.swap), 0, 0, 0))
        assert _swap_rows(arr, 8) == want + [(b"", 0, 0, 0, 0, 0)] * (8 - len(want))
    arr = (libkvm.KvmSwap * 2)()
    assert libkvm.kvm_getswapinfo(h, arr, 2, 0) == 1  # one device, then the total
    assert _swap_rows(arr, 2)[1][1:3] == (sum(s.used for s in t.swap),
                                          sum(s.nblks - t.dmmax for s in t.swap))
    assert arr[0].ksw_devname == name(t.swap[0].dev, "")
    one = (libkvm.KvmSwap * 1)()
    assert libkvm.kvm_getswapinfo(h, one, 1, 0) == 0
    assert one[0].ksw_devname == b"" and one[0].ksw_used == sum(s.used for s in t.swap)
    assert libkvm.kvm_getswapinfo(h, one, 0, 0) == -1  # nothing written, no message
    assert libkvm.kvm_getswapinfo(h, one, -3, 0) == -4
    assert libkvm.kvm_getswapinfo(None, None, 0, 0) == 0
    libkvm.kvm_close(h)


def test_getswapinfo_unreadable(dumps: dict[str, SynthDump]) -> None:
    d = dumps["11"]
    arr = (libkvm.KvmSwap * 4)()
    h = open_kd(d, moved(d, {"swtailq": UNMAPPED}))
    assert libkvm.kvm_getswapinfo(h, arr, 4, 0) == -1
    assert libkvm.kvm_geterr(h) == "cannot read _swtailq"
    libkvm.kvm_close(h)
    h = open_kd(d, moved(d, {"swtailq": None}))
    assert libkvm.kvm_getswapinfo(h, arr, 4, 0) == -1
    assert libkvm.kvm_geterr(h) == "unable to find swtailq"
    libkvm.kvm_close(h)


# ------------------------------------------------------------------------ per-CPU
def test_maxcpu_ncpus(kd: libkvm.KvmHandle, dump: SynthDump) -> None:
    t = truth(dump)
    assert libkvm.kvm_getmaxcpu(kd) == t.maxcpu
    assert libkvm.kvm_getncpus(kd) == t.ncpus
    assert libkvm.kvm_getmaxcpu(None) == 0
    with pytest.raises(TypeError):
        libkvm.kvm_getncpus(None)  # libkvm dereferences NULL (api.md 16)


def test_getpcpu(kd: libkvm.KvmHandle, dump: SynthDump) -> None:
    t = truth(dump)
    size = pcpu_size(dump)
    free = ctypes.CDLL(None).free
    free.argtypes = [ctypes.c_void_p]
    for cpu, va in enumerate(t.pcpu):
        addr = libkvm.kvm_getpcpu(kd, cpu)
        assert isinstance(addr, int) and addr not in (0, libkvm.kdata.PCPU_ERROR)
        assert ctypes.string_at(addr, size) == mem(dump, va, size)
        free(addr)  # malloc'ed, as libkvm's copy is
    assert libkvm.kvm_getpcpu(kd, t.maxcpu) is None
    assert libkvm.kvm_getpcpu(kd, len(t.pcpu)) is None  # cpuid_to_pcpu[cpu] == NULL
    assert libkvm.kvm_getpcpu(None, 0) is None


@pytest.mark.parametrize(("sym", "where", "text", "stage"), [
    ("cpuid_to_pcpu", None, "unable to find cpuid_to_pcpu", 0),
    ("mp_maxcpus", None, "unable to find mp_maxcpus", 0),
    ("mp_maxcpus", UNMAPPED, "cannot read mp_maxcpus", 0),
    ("mp_ncpus", None, "unable to find mp_ncpus", 0),
    ("mp_ncpus", UNMAPPED, "cannot read mp_ncpus", 0),
    ("__pcpu", None, "unable to find __pcpu", 1),
    ("__pcpu", UNMAPPED, "cannot read __pcpu", 1),
    ("cpuid_to_pcpu", UNMAPPED, "cannot read cpuid_to_pcpu array", 2),
])
def test_pcpu_init_errors(dump: SynthDump, sym: str, where: int | None, text: str,
                          stage: int) -> None:
    """_kvm_pcpu_init failing at each step.  ``stage`` 0: before it read ``mp_ncpus``;
    1: after (its ``mp_ncpus`` global is set, ``__pcpu`` is not); 2: after reading
    ``__pcpu`` too.  kvm_getncpus, kvm_read_zpcpu and kvm_counter_u64_fetch initialise
    only while ``mp_ncpus`` is 0, so from stage 1 on they use what was read."""
    t = truth(dump)
    h = open_kd(dump, moved(dump, {sym: where}))
    assert libkvm.kvm_getpcpu(h, 0) == libkvm.kdata.PCPU_ERROR
    assert libkvm.kvm_geterr(h) == text
    assert libkvm.kvm_getmaxcpu(h) == -1
    assert libkvm.kvm_getncpus(h) == (-1 if stage == 0 else t.ncpus)
    buf = ctypes.create_string_buffer(8)
    got = libkvm.kvm_read_zpcpu(h, 0, buf, 8, 0)
    firsts = [struct.unpack("<Q", mem(dump, va, 8))[0] for va in t.pcpu]
    if stage == 0:
        assert got == 0  # init failed: 0, not -1
    elif stage == 1:
        assert got == -1  # __pcpu still 0: address 0 does not translate
    else:
        assert got == 8 and struct.unpack("<Q", buf.raw)[0] == firsts[0]
    assert libkvm.kvm_counter_u64_fetch(h, 0) == (sum(firsts) % (1 << 64) if stage == 2
                                                 else 0)
    libkvm.kvm_close(h)


def test_dpcpu_setcpu(kd: libkvm.KvmHandle, dump: SynthDump) -> None:
    t = truth(dump)
    for cpu in range(t.ncpus):
        assert libkvm.kvm_dpcpu_setcpu(kd, cpu) == 0
    libkvm.kvm_read(kd, 0, None, 0)
    # dpcpu_off[] has mp_maxcpus slots; those past the CPUs present are 0
    absent = len(t.dpcpu_off)
    assert absent < t.maxcpu
    assert libkvm.kvm_dpcpu_setcpu(kd, absent) == -1
    assert libkvm.kvm_geterr(kd) == f"_kvm_dpcpu_setcpu: CPU {absent} not found"
    assert libkvm.kvm_dpcpu_setcpu(kd, t.maxcpu) == -1
    assert libkvm.kvm_geterr(kd) == f"_kvm_dpcpu_setcpu: CPU {t.maxcpu} too big"
    assert libkvm.kvm_dpcpu_setcpu(kd, -1) == -1  # u_int: 4294967295
    assert libkvm.kvm_geterr(kd) == "_kvm_dpcpu_setcpu: CPU 4294967295 too big"


def test_dpcpu_setcpu_init_failed(dump: SynthDump) -> None:
    h = open_kd(dump, moved(dump, {"mp_maxcpus": UNMAPPED}))
    assert libkvm.kvm_dpcpu_setcpu(h, 0) == -1
    assert libkvm.kvm_geterr(h) == "kvm_dpcpu_setcpu: init failed"
    libkvm.kvm_close(h)


def test_read_zpcpu_and_counter(kd: libkvm.KvmHandle, dump: SynthDump) -> None:
    t = truth(dump)
    size = pcpu_size(dump)
    pcpu0 = t.pcpu[0]  # what __pcpu points to: libkvm's base is relative to it on amd64
    for cpu in range(t.ncpus):
        buf = ctypes.create_string_buffer(16)
        assert libkvm.kvm_read_zpcpu(kd, 96, buf, 16, cpu) == 16
        assert buf.raw == mem(dump, pcpu0 + 96 + size * cpu, 16)
    # pc_cp_time[0] of every CPU: offset 96 of struct pcpu in the synthetic kernel
    assert dump.truth.type_layout is not None
    assert dump.truth.type_layout.structs["pcpu"].member("pc_cp_time").offset == 96
    want = sum(struct.unpack("<Q", mem(dump, pcpu0 + 96 + size * c, 8))[0]
               for c in range(t.ncpus))
    assert want == sum(t.cp_time[c][0] for c in range(t.ncpus))
    assert libkvm.kvm_counter_u64_fetch(kd, 96) == want
    buf = ctypes.create_string_buffer(8)
    hole = (UNMAPPED - pcpu0) % (1 << 64)
    assert libkvm.kvm_read_zpcpu(kd, hole, buf, 8, 0) == -1
    assert libkvm.kvm_geterr(kd) == f"invalid address ({UNMAPPED:#x})"
    assert libkvm.kvm_counter_u64_fetch(kd, hole) == 0


# --------------------------------------------------------------- argv, envv
def test_getargv_getenvv(kd: libkvm.KvmHandle) -> None:
    for fn in (libkvm.kvm_getargv, libkvm.kvm_getenvv):
        libkvm.kvm_read(kd, 0, None, 0)
        assert fn(kd, None, 0) is None
        assert libkvm.kvm_geterr(kd) == "cannot read user space from dead kernel"


# ------------------------------------------------------------------ kvm_getprocs
def test_getprocs(kd: libkvm.KvmHandle, dump: SynthDump) -> None:
    t = truth(dump)
    cnt = ctypes.c_int(-7)
    arr = libkvm.kvm_getprocs(kd, KERN_PROC_PROC, 0, ctypes.byref(cnt))
    assert cnt.value == len(t.procs) == len(arr)
    assert [r.ki_pid for r in arr] == t.pids()
    assert [r.ki_comm for r in arr] == [p.comm.encode()[:18] for p in t.procs]
    assert all(r.ki_structsize == 0 for r in arr)  # kernel-data.md 1.9 quirk 1
    with pykvm.open2(dump.kernel, dump.core) as ref:
        want = kinfo_proc.records_bytes(ref, procs.getprocs(ref, KERN_PROC_PROC, strict=True))
    assert bytes(arr) == want
    arr = libkvm.kvm_getprocs(kd, KERN_PROC_ALL, 0, ctypes.byref(cnt))
    assert cnt.value == sum(1 if p.zombie else len(p.threads) for p in t.procs) == len(arr)
    p = t.procs[len(t.procs) // 2]
    arr = libkvm.kvm_getprocs(kd, KERN_PROC_UID, p.uid, ctypes.byref(cnt))
    assert [r.ki_pid for r in arr] == [q.pid for q in t.procs if q.uid == p.uid]


def test_getprocs_no_match(kd: libkvm.KvmHandle) -> None:
    libkvm.kvm_read(kd, 0, None, 0)
    before = libkvm.kvm_geterr(kd)
    cnt = ctypes.c_int(-7)
    assert libkvm.kvm_getprocs(kd, KERN_PROC_PID, 999999, ctypes.byref(cnt)) is None
    assert cnt.value == 0
    assert libkvm.kvm_geterr(kd) == before  # no message when nothing matched


@pytest.mark.parametrize(("sym", "where", "text", "cnt"), [
    ("nprocs", None, "_nprocs: no such symbol", -7),
    ("cpu_tick_frequency", None, "_cpu_tick_frequency: no such symbol", -7),
    ("nprocs", UNMAPPED, "can't read nprocs", -7),
    ("hz", UNMAPPED, "can't read hz", -7),
    ("allproc", UNMAPPED, "cannot read allproc", 0),
])
def test_getprocs_errors(dump: SynthDump, sym: str, where: int | None, text: str,
                         cnt: int) -> None:
    h = open_kd(dump, moved(dump, {sym: where}))
    c = ctypes.c_int(-7)
    assert libkvm.kvm_getprocs(h, KERN_PROC_PROC, 0, ctypes.byref(c)) is None
    assert libkvm.kvm_geterr(h) == text
    assert c.value == cnt  # early failures leave *cnt alone; a failed walk sets 0
    libkvm.kvm_close(h)


# ------------------------------------------------------------- through ctypes
def test_emulated_cdll(dump: SynthDump) -> None:
    lib: Any = libkvm.load("emulated")
    t = truth(dump)
    kd = lib.kvm_openfiles(str(dump.kernel).encode(), str(dump.core).encode(), None, 0,
                           None)
    cnt = ctypes.c_int()
    p = lib.kvm_getprocs(kd, KERN_PROC_PROC, 0, ctypes.byref(cnt))
    assert isinstance(p, ctypes.POINTER(libkvm.KinfoProc))
    assert [p[i].ki_pid for i in range(cnt.value)] == t.pids()
    assert not lib.kvm_getprocs(kd, KERN_PROC_PID, 999999, ctypes.byref(cnt))
    assert not lib.kvm_getargv(kd, p, 0)
    assert lib.kvm_geterr(kd) == b"cannot read user space from dead kernel"
    assert lib.kvm_getpcpu(kd, t.maxcpu) is None
    assert isinstance(lib.kvm_getpcpu(kd, 0), int)
    assert lib.kvm_getmaxcpu(kd) == t.maxcpu
    avg = (ctypes.c_double * 3)()
    assert lib.kvm_getloadavg(kd, avg, 3) == 3
    assert list(avg) == [v / t.fscale for v in t.ldavg]
    assert lib.kvm_counter_u64_fetch(kd, 96) == sum(t.cp_time[c][0] for c in range(t.ncpus))
    assert lib.kvm_close(kd) == 0
    resolve = moved(dump, {"mp_ncpus": None})

    def c_resolver(name: bytes, addr: Any) -> int:  # int (*)(const char *, kvaddr_t *)
        value = resolve(name.decode())
        if value is None:
            return -1
        addr[0] = value
        return 0

    h = lib.kvm_open2(str(dump.kernel).encode(), str(dump.core).encode(), 0, None,
                      c_resolver)
    assert lib.kvm_getpcpu(h, 0) == ctypes.c_void_p(-1).value  # (void *)-1
    assert lib.kvm_geterr(h) == b"unable to find mp_ncpus"
    lib.kvm_close(h)


# ------------------------------------------------------------------ a ps program
def test_ps_program(run: Run, dumps: dict[str, SynthDump]) -> None:
    for era in ("14", "11"):
        d = dumps[era]
        t = truth(d)
        proc = run("kvm_ps.py", d.kernel, d.core)
        assert proc.returncode == 0, proc.stderr
        lines = ["  PID  PPID   UID COMMAND"]
        for p in t.procs:
            lines.append(f"{p.pid:5d} {p.ppid:5d} {p.uid:5d} {p.comm[:18]}")
        if t.dmmax is None:
            lines.append("kvm_getswapinfo: unable to find dmmax")
        else:
            for s in t.swap:
                dev = "[NFS swap]" if s.dev == 0xFFFFFFFF else f"/dev/#C:{s.dev:#x}"
                lines.append(f"{dev:<16} {s.nblks - t.dmmax:9d} {s.used:9d}")
            lines.append(f"{'Total':<16} {sum(s.nblks - t.dmmax for s in t.swap):9d} "
                         f"{sum(s.used for s in t.swap):9d}")
        lines.append("load averages: " + ", ".join(f"{v / t.fscale:.2f}" for v in t.ldavg))
        assert proc.stdout == "\n".join(lines) + "\n"
        assert proc.stderr == ""


def _patched(dump: SynthDump, tmp_path: Path, patches: Mapping[int, bytes]) -> Path:
    """A copy of the dump's core with ``bytes`` written at each kernel address."""
    core = tmp_path / "vmcore"
    core.write_bytes(dump.core.read_bytes())
    with pykvm.open2(dump.kernel, dump.core) as k:
        assert k.backend is not None
        where = [(k.backend.kvatop(va)[0], data) for va, data in patches.items()]
    with core.open("r+b") as f:
        for off, data in where:
            f.seek(off)
            f.write(data)
    return core


def _sym(dump: SynthDump, name: str) -> int:
    with pykvm.open2(dump.kernel, dump.core) as k:
        return k.nlist2(["_" + name]).entries[0].value


def test_getprocs_negative_nprocs(dump: SynthDump, tmp_path: Path) -> None:
    """``nprocs`` = -1: libkvm's ``_kvm_malloc(nprocs * sizeof(struct kinfo_proc))``
    fails; NULL, the allocator's text, ``*cnt`` untouched."""
    core = _patched(dump, tmp_path, {_sym(dump, "nprocs"): b"\xff\xff\xff\xff"})
    h = libkvm.kvm_openfiles(str(dump.kernel), str(core), None, 0, None)
    c = ctypes.c_int(-7)
    assert libkvm.kvm_getprocs(h, KERN_PROC_PROC, 0, ctypes.byref(c)) is None
    size = (-1 * 1088) % (1 << 64)
    assert libkvm.kvm_geterr(h) == f"can't allocate {size} bytes: Cannot allocate memory"
    assert c.value == -7
    libkvm.kvm_close(h)


def test_cptime_partial_sums(dump: SynthDump, tmp_path: Path) -> None:
    """A CPU whose ``struct pcpu`` cannot be read: -1, and ``cp_time`` holds what libkvm
    had stored (zeroed, then the sums of the CPUs before it)."""
    t = truth(dump)
    slot = _sym(dump, "cpuid_to_pcpu") + 8 * 1
    core = _patched(dump, tmp_path, {slot: struct.pack("<Q", UNMAPPED)})
    h = libkvm.kvm_openfiles(str(dump.kernel), str(core), None, 0, None)
    buf = (ctypes.c_long * 5)(*([-1] * 5))
    assert libkvm.kvm_getcptime(h, buf) == -1
    assert libkvm.kvm_geterr(h) == "unable to read per-CPU data"
    assert list(buf) == list(t.cp_time[0])
    libkvm.kvm_close(h)


def test_swapinfo_partial_rows(dumps: Mapping[str, SynthDump], tmp_path: Path) -> None:
    """A ``struct swdevt`` that cannot be read: -1, and the rows before it are stored
    (kvm_getswapinfo_kvm fills ``swap_ary`` as it walks)."""
    d = dumps["11"]  # has dmmax, which libkvm needs
    t = truth(d)
    assert len(t.swap) >= 2
    lt = d.truth.type_layout
    assert lt is not None
    nxt = t.swap[0].addr + lt.structs["swdevt"].member("sw_list.tqe_next").offset
    core = _patched(d, tmp_path, {nxt: struct.pack("<Q", UNMAPPED)})
    h = libkvm.kvm_openfiles(str(d.kernel), str(core), None, 0, None)
    ary = (libkvm.KvmSwap * 8)()
    for r in ary:
        r.ksw_used = 77
    assert libkvm.kvm_getswapinfo(h, ary, 8, 0) == -1
    assert libkvm.kvm_geterr(h) == "cannot read swinfo"
    dmmax = t.dmmax
    assert dmmax is not None
    assert (ary[0].ksw_used, ary[0].ksw_total) == (t.swap[0].used, t.swap[0].nblks - dmmax)
    assert [r.ksw_used for r in ary[1:]] == [77] * 7  # nothing stored past the failure
    libkvm.kvm_close(h)
