"""``struct kinfo_proc`` in pykvm.abi: layouts against a table copied by hand from
kernel-data.md 10.2, records of synthetic dumps packed and read back at those offsets,
big-endian records, and random records round-tripped through a local decoder.

Every offset and size below is written here by hand (kernel-data.md 10.2 and 10.3);
none is computed from pykvm.abi.
"""

from __future__ import annotations

import dataclasses
import struct
from typing import Any, Literal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from spec_kinfo_proc import TABLE as KINFO_PROC_TABLE

from pykvm import kvm as K
from pykvm.abi import ABIS, Abi, layout
from pykvm.abi import kinfo_proc as kpabi
from pykvm.abi.model import struct_format
from pykvm.constants import KERN_PROC_ALL, KERN_PROC_PROC
from pykvm.kernel import procs
from pykvm.kernel.procs import KinfoProc
from pykvm.synth import SynthDump
from pykvm.synth import build as synth_build

NODEV = (1 << 64) - 1

# ------------------------------------------------------------------ the hand table
# kernel-data.md 10.2, row by row: name, amd64 (off, size), i386 (off, size),
# arm/powerpc 32-bit (off, size).
TABLE = KINFO_PROC_TABLE
COLUMN = {"lp64": 1, "i386": 3, "ilp32": 5}
#: every FreeBSD ABI: the column of the table it follows and its KINFO_PROC_SIZE (10.3).
#: 32-bit MIPS (o32, n32) follows arm/powerpc: sys/mips/include/_types.h makes
#: ``__time_t`` 64-bit on every MIPS ABI and 64-bit integers are 8-aligned there.
ABI_COLUMN = {
    "amd64": ("lp64", 1088), "aarch64": ("lp64", 1088), "riscv": ("lp64", 1088),
    "powerpc64": ("lp64", 1088), "powerpc64le": ("lp64", 1088),
    "mips64": ("lp64", 1088), "mips64el": ("lp64", 1088), "sparc64": ("lp64", 1088),
    "i386": ("i386", 768),
    "arm": ("ilp32", 816), "armeb": ("ilp32", 816), "powerpc": ("ilp32", 816),
    "powerpcspe": ("ilp32", 816), "mips": ("ilp32", 816), "mipsel": ("ilp32", 816),
    "mipsn32": ("ilp32", 816), "mipsn32el": ("ilp32", 816),
}
BIG = {"powerpc64", "mips64", "sparc64", "armeb", "powerpc", "powerpcspe", "mips", "mipsn32"}


def hand(abi_name: str) -> dict[str, tuple[int, int]]:
    """``member -> (offset, size)`` of the hand table for one ABI."""
    col = COLUMN[ABI_COLUMN[abi_name][0]]
    return {row[0]: (row[col], row[col + 1]) for row in TABLE}


def test_every_abi_has_a_column() -> None:
    assert set(ABIS) == set(ABI_COLUMN)
    assert {n for n, a in ABIS.items() if a.big_endian} == BIG


@pytest.mark.parametrize("name", sorted(ABI_COLUMN))
def test_layout_matches_the_hand_table(name: str) -> None:
    a = ABIS[name]
    lay = layout(kpabi.KINFO_PROC, a)
    assert lay.offsets() == hand(name)
    assert lay.size == ABI_COLUMN[name][1] == a.kinfo_proc_size
    fmt, _ = struct_format(kpabi.KINFO_PROC, a)
    assert struct.calcsize(fmt) == lay.size
    assert fmt[0] == (">" if name in BIG else "<")


# sub-records (kernel-data.md 10.2, "Sub-structures"): (offset, size) per member
TIMEVAL = {"lp64": ({"tv_sec": (0, 8), "tv_usec": (8, 8)}, 16),
           "i386": ({"tv_sec": (0, 4), "tv_usec": (4, 4)}, 8),
           "ilp32": ({"tv_sec": (0, 8), "tv_usec": (8, 4)}, 16)}
RUSAGE_LONGS = ("ru_maxrss", "ru_ixrss", "ru_idrss", "ru_isrss", "ru_minflt", "ru_majflt",
                "ru_nswap", "ru_inblock", "ru_oublock", "ru_msgsnd", "ru_msgrcv",
                "ru_nsignals", "ru_nvcsw", "ru_nivcsw")
#: (ru_stime offset, first long, long size, total)
RUSAGE = {"lp64": (16, 32, 8, 144), "i386": (8, 16, 4, 72), "ilp32": (16, 32, 4, 88)}


@pytest.mark.parametrize("name", ["amd64", "i386", "armeb", "mipsn32", "powerpc64le"])
def test_sub_records(name: str) -> None:
    a = ABIS[name]
    col = ABI_COLUMN[name][0]
    tv, tv_size = TIMEVAL[col]
    assert layout(kpabi.TIMEVAL, a).offsets() == tv
    assert layout(kpabi.TIMEVAL, a).size == tv_size
    stime, first, lsize, total = RUSAGE[col]
    want = {"ru_utime": (0, tv_size), "ru_stime": (stime, tv_size)}
    want.update({n: (first + i * lsize, lsize) for i, n in enumerate(RUSAGE_LONGS)})
    assert layout(kpabi.RUSAGE, a).offsets() == want
    assert layout(kpabi.RUSAGE, a).size == total
    assert layout(kpabi.PRIORITY, a).offsets() == {
        "pri_class": (0, 1), "pri_level": (1, 1), "pri_native": (2, 1), "pri_user": (3, 1)}
    assert layout(kpabi.SIGSET, a).offsets() == {"__bits": (0, 16)}


# ------------------------------------------------------------ a test-local decoder
Order = Literal["little", "big"]


def _uint(raw: bytes, off: int, size: int, order: Order) -> int:
    return int.from_bytes(raw[off:off + size], order)


def _sint(raw: bytes, off: int, size: int, order: Order) -> int:
    return int.from_bytes(raw[off:off + size], order, signed=True)


class Rec:
    """One packed record read at the hand table's offsets."""

    def __init__(self, raw: bytes, abi_name: str) -> None:
        self.raw = raw
        self.off = hand(abi_name)
        self.order: Order = "big" if abi_name in BIG else "little"

    def u(self, member: str, sub: int = 0, size: int | None = None) -> int:
        off, whole = self.off[member]
        return _uint(self.raw, off + sub, whole if size is None else size, self.order)

    def s(self, member: str, sub: int = 0, size: int | None = None) -> int:
        off, whole = self.off[member]
        return _sint(self.raw, off + sub, whole if size is None else size, self.order)

    def words(self, member: str) -> tuple[int, ...]:
        off, whole = self.off[member]
        return tuple(_uint(self.raw, off + 4 * i, 4, self.order) for i in range(whole // 4))

    def chars(self, member: str) -> bytes:
        off, whole = self.off[member]
        return self.raw[off:off + whole]


def _cstr(s: bytes, size: int) -> bytes:
    return s[:size].ljust(size, b"\0")


# ------------------------------------------------- records of real synthetic dumps
#: (architecture, pykvm.abi name written by hand, builder options) of the synthetic
#: dumps with kernel data; adding a dump is one line here.  Every architecture and byte
#: order: i386 768 bytes; arm LE/BE, powerpc, mips o32/n32 816; the LP64 ports 1088.
DUMPS: list[tuple[str, str, dict[str, Any]]] = [
    ("amd64", "amd64", {"fmt": "minidump-v3", "types": "ctf-v3", "era": era,
                        "small_kva": True})
    for era in ("10", "11", "12", "13", "14", "15")
] + [
    ("amd64", "amd64", {"fmt": "elf", "types": "dwarf", "era": "14", "small_kva": True}),
    ("i386", "i386", {"fmt": "minidump-pae", "types": "ctf-v3", "era": "14"}),
    ("i386", "i386", {"fmt": "elf-nopae", "types": "dwarf", "era": "10"}),
    ("arm", "arm", {"fmt": "minidump", "types": "ctf-v3", "era": "14"}),
    ("arm", "armeb", {"fmt": "minidump-be", "types": "ctf-v3", "era": "13"}),
    ("arm", "armeb", {"fmt": "elf-v4-be", "types": "ctf-v2", "era": "11"}),
    ("powerpc", "powerpc", {"fmt": "elf", "types": "ctf-v3", "era": "14"}),
    ("powerpc", "powerpc", {"fmt": "elf-kdh", "types": "dwarf", "era": "10"}),
    ("aarch64", "aarch64", {"fmt": "minidump-v3", "types": "ctf-v3", "era": "15"}),
    ("riscv", "riscv", {"fmt": "minidump-sv39", "types": "dwarf", "era": "13"}),
    ("powerpc64", "powerpc64", {"fmt": "minidump-hpt", "types": "ctf-v3", "era": "14"}),
    ("powerpc64", "powerpc64le", {"fmt": "minidump-radix-le", "types": "ctf-v3",
                                  "era": "15"}),
    ("mips", "mips64", {"fmt": "minidump-n64-be", "types": "ctf-v3", "era": "13"}),
    ("mips", "mips64el", {"fmt": "minidump-n64-le", "types": "dwarf", "era": "12"}),
    ("mips", "mips", {"fmt": "minidump-o32-be", "types": "ctf-v3", "era": "13"}),
    ("mips", "mipsel", {"fmt": "minidump-o32-le", "types": "ctf-v2", "era": "11"}),
    ("mips", "mipsn32", {"fmt": "minidump-n32-be", "types": "ctf-v3", "era": "12"}),
    ("mips", "mipsn32el", {"fmt": "minidump-n32-le", "types": "dwarf", "era": "13"}),
]
#: ki_pid and ki_comm offsets of each column, copied by hand from 10.2 once more
PID_COMM = {"lp64": (72, 447), "i386": (40, 367), "ilp32": (40, 383)}


@pytest.fixture(scope="module", params=DUMPS,
                ids=[f"{a}-{o['fmt']}-{o['types']}-{o['era']}" for a, _, o in DUMPS])
def dump(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
         ) -> tuple[str, SynthDump]:
    arch, name, opts = request.param
    opts = dict(opts)
    fmt = opts.pop("fmt")
    d = tmp_path_factory.mktemp(f"abi-{arch}")
    return name, synth_build(arch, d, 7, fmt, **opts)


def _open(d: SynthDump) -> K.Kvm:
    """Open a dump; a non-amd64 one (non-native here) with a resolver over the kernel's
    own symbols that drops the a.out ``_`` (libkvm refuses non-native kernels without
    one, api.md 10.4)."""
    resolver: K.Resolver | None = None
    if d.arch != "amd64":
        symtab = K.symtab_resolver(d.kernel)

        def resolver(name: str) -> int | None:
            r = symtab(name[1:] if name.startswith("_") else name)
            return r if isinstance(r, int) else None
    kd = K.open2(d.kernel, d.core, resolver=resolver)
    if d.debug is not None:
        kd.attach_debug(d.debug)
    return kd


def test_records_of_a_synthetic_dump(dump: tuple[str, SynthDump]) -> None:
    name, d = dump
    size = ABI_COLUMN[name][1]
    psize = 8 if ABI_COLUMN[name][0] == "lp64" else 4
    truth = d.truth.kernel_data
    assert truth is not None
    with _open(d) as kd:
        assert kpabi.abi_for(kd) is ABIS[name]
        records = procs.getprocs(kd, KERN_PROC_ALL)
        data = kpabi.records_bytes(kd, records)
    want = [(p, td) for p in truth.procs for td in (p.threads[:1] if p.zombie else p.threads)]
    assert len(records) == len(want) > 3
    assert len(data) == size * len(want)
    for i, ((p, td), kp) in enumerate(zip(want, records, strict=True)):
        r = Rec(data[i * size:(i + 1) * size], name)
        assert r.raw == kpabi.pack(kp, ABIS[name])
        # the fields of kernel-data.md 1.6, against the writer's truth
        assert r.u("ki_structsize") == 0  # memset after ki_structsize = sizeof (1.9 #1)
        assert r.u("ki_layout") == 0
        pid_off, comm_off = PID_COMM[ABI_COLUMN[name][0]]
        assert struct.unpack_from("<i" if r.order == "little" else ">i", r.raw, pid_off)[0] \
            == p.pid == r.s("ki_pid")
        assert r.u("ki_paddr") == p.addr
        assert (r.s("ki_ppid"), r.s("ki_pgid"), r.s("ki_sid")) == (p.ppid, p.pgid, p.sid)
        assert (r.u("ki_uid"), r.u("ki_ruid"), r.u("ki_svuid"), r.u("ki_rgid"),
                r.u("ki_svgid")) == (p.uid, p.ruid, p.svuid, p.rgid, p.svgid)
        assert r.s("ki_ngroups") == len(p.groups)
        assert r.words("ki_groups") == p.groups + (0,) * (16 - len(p.groups))
        assert r.s("ki_jid") == p.jid
        assert r.raw[comm_off:comm_off + 20] == _cstr(p.comm.encode()[:18], 20)
        assert r.chars("ki_comm") == _cstr(p.comm.encode()[:18], 20)
        assert r.chars("ki_emul") == _cstr(p.emul.encode()[:15], 17)
        assert r.chars("ki_login") == _cstr(p.login.encode()[:18], 18)
        assert (r.u("ki_size"), r.s("ki_rssize"), r.s("ki_swrss"), r.s("ki_tsize"),
                r.s("ki_dsize"), r.s("ki_ssize")) == (p.size, p.rssize, p.swrss, p.tsize,
                                                      p.dsize, p.ssize)
        assert r.u("ki_xstat") == ((p.xexit << 8) | p.xsig) & 0xFFFF
        assert r.s("ki_jobc") == (-1 if p.pg_jobc is None else p.pg_jobc)
        assert r.u("ki_tdev") == NODEV
        assert r.u("ki_tdev_freebsd11") == 0xFFFFFFFF
        if p.tty is not None:
            assert (r.s("ki_tpgid"), r.s("ki_tsid")) == (p.tty_pgid, p.tty_sid)
        else:
            assert (r.s("ki_tpgid"), r.s("ki_tsid")) == (0, 0)
        assert r.s("ki_numthreads") == len(p.threads)
        if p.zombie:
            assert (r.s("ki_flag"), r.s("ki_nice"), r.s("ki_tid"), r.s("ki_stat")) == (
                0, 0, 0, 5)  # SZOMB
        else:
            assert (r.s("ki_flag"), r.s("ki_nice")) == (p.flag, p.nice)
            assert r.s("ki_tid") == td.tid
            assert r.chars("ki_tdname")[:len(td.name.encode()[:16]) + 1] == \
                td.name.encode()[:16] + b"\0"
            assert (r.u("ki_pri", 1, 1), r.u("ki_pri", 2, 1)) == (td.priority, td.base_pri)
            assert (r.u("ki_pri", 0, 1), r.u("ki_pri", 3, 1)) == (0, 0)
            # FreeBSD 10's u_char td_oncpu/td_lastcpu hold NOCPU as 0xff: read as -1
            oncpu, lastcpu = (-1 if v == 0xFF and int(truth.era) == 10 else v
                              for v in (td.oncpu, td.lastcpu))
            assert (r.s("ki_oncpu"), r.s("ki_lastcpu")) == (oncpu, lastcpu)
            assert r.u("ki_oncpu_old") == (255 if oncpu == -1 else min(oncpu, 254))
            assert r.u("ki_lastcpu_old") == (255 if lastcpu == -1 else min(lastcpu, 254))
            assert r.u("ki_wchan") == td.wchan
            wm = (td.wmesg or "").encode()[:8]
            assert r.chars("ki_wmesg")[:len(wm)] == wm
            assert r.chars("ki_wmesg")[8] == 0
        # the values pykvm derives (kernel-data.md 1.7) land where the record says
        assert r.u("ki_runtime") == kp.runtime
        assert r.u("ki_swtime") == kp.swtime
        assert r.s("ki_kiflag") == kp.kiflag
        assert r.words("ki_siglist") == tuple(kp.siglist)
        assert r.words("ki_sigignore") == tuple(kp.sigignore)
        assert r.u("ki_vmspace") == kp.vmspace
        assert r.s("ki_reaper") == kp.reaper
        # never set on the dump path (kernel-data.md 1.8): zero bytes
        for member in ("ki_addr", "ki_tracep", "ki_pctcpu", "ki_estcpu", "ki_slptime",
                       "ki_cow", "ki_start", "ki_childtime", "ki_rqindex", "ki_loginclass",
                       "ki_moretdname", "ki_sparestrings", "ki_spareints", "ki_tracer",
                       "ki_flag2", "ki_fibnum", "ki_rusage", "ki_rusage_ch", "ki_pcb",
                       "ki_kstack", "ki_udata", "ki_tdaddr", "ki_uerrmsg", "ki_spareptrs",
                       "ki_sparelongs", "ki_sflag", "ki_tdflags", "ki_spare_short1",
                       "ki_spare_short2"):
            assert not any(r.chars(member)), member
        assert r.u("ki_pd") == kp.pd
        assert psize == hand(name)["ki_args"][1]


def test_process_records_and_structsize(dump: tuple[str, SynthDump]) -> None:
    _, d = dump
    with _open(d) as kd:
        records = procs.getprocs(kd, KERN_PROC_PROC)
        a = kpabi.abi_for(kd)
        live = kpabi.records_bytes(kd, records, structsize=a.kinfo_proc_size)
    size = a.kinfo_proc_size
    for i, kp in enumerate(records):
        raw = live[i * size:(i + 1) * size]
        assert int.from_bytes(raw[:4], a.byteorder) == size
        assert raw[4:] == kpabi.pack(kp, a)[4:]


# ---------------------------------------------------------- big-endian, by hand
def _sample(psize: int) -> KinfoProc:
    ptr = 0xFFFFF80012345678 if psize == 8 else 0xC1234568
    return KinfoProc(
        paddr=ptr, args=ptr + 8, textvp=ptr + 16, fd=ptr + 24, pd=ptr + 32,
        vmspace=ptr + 40, wchan=ptr + 48, pid=0x01020304, ppid=1, reaper=1,
        reapsubtree=7, pgid=0x0A0B, tpgid=-1, sid=12, tsid=13, jobc=-1, tdev=NODEV,
        siglist=(1, 2, 3, 0x80000000), sigmask=(5, 0, 0, 0), sigignore=(6, 0, 0, 0),
        sigcatch=(7, 0, 0, 0), uid=1001, ruid=1002, svuid=1003, rgid=1004, svgid=1005,
        ngroups=3, groups=(20, 0, 5), cr_flags=0x80000001, jid=9, size=0x7654321,
        rssize=11, swrss=12, tsize=13, dsize=14, ssize=15, xstat=0x0102, acflag=3,
        swtime=99, runtime=0x1122334455667788, flag=0x10004000, kiflag=2, traceflag=4,
        stat=3, nice=-4, lock=1, lastcpu=-1, oncpu=3, lastcpu_old=255, oncpu_old=3,
        tdname=b"sshd: worker", wmesg=b"select\0x", login=b"root".ljust(18, b"\0"),
        lockname=b"sleepq\0\0", comm=b"sshd", emul=b"FreeBSD ELF64", numthreads=2,
        tid=100123, pri_level=120, pri_native=121)


@pytest.mark.parametrize("name", ["powerpc64", "armeb", "mips", "mipsn32"])
def test_big_endian_record_by_hand(name: str) -> None:
    a = ABIS[name]
    psize = a.pointer_size
    raw = kpabi.pack(_sample(psize), a)
    off = hand(name)
    assert len(raw) == ABI_COLUMN[name][1]
    ptr = 0xFFFFF80012345678 if psize == 8 else 0xC1234568
    p = ">Q" if psize == 8 else ">I"
    assert raw[0:8] == bytes(8)  # ki_structsize 0, ki_layout 0
    assert struct.unpack_from(p, raw, off["ki_paddr"][0])[0] == ptr
    assert struct.unpack_from(p, raw, off["ki_args"][0])[0] == ptr + 8
    assert struct.unpack_from(p, raw, off["ki_pd"][0])[0] == ptr + 32
    assert raw[off["ki_pid"][0]:off["ki_pid"][0] + 4] == bytes.fromhex("01020304")
    assert raw[off["ki_pgid"][0]:off["ki_pgid"][0] + 4] == bytes.fromhex("00000a0b")
    assert raw[off["ki_tpgid"][0]:off["ki_tpgid"][0] + 4] == b"\xff" * 4
    assert raw[off["ki_jobc"][0]:off["ki_jobc"][0] + 2] == b"\xff\xff"
    assert raw[off["ki_tdev_freebsd11"][0]:off["ki_tdev_freebsd11"][0] + 4] == b"\xff" * 4
    assert raw[off["ki_tdev"][0]:off["ki_tdev"][0] + 8] == b"\xff" * 8
    assert raw[off["ki_siglist"][0]:off["ki_siglist"][0] + 16] == bytes.fromhex(
        "00000001" "00000002" "00000003" "80000000")
    assert struct.unpack_from(">16I", raw, off["ki_groups"][0]) == (20, 0, 5) + (0,) * 13
    assert struct.unpack_from(">h", raw, off["ki_ngroups"][0])[0] == 3
    assert struct.unpack_from(">I", raw, off["ki_cr_flags"][0])[0] == 0x80000001
    assert raw[off["ki_runtime"][0]:off["ki_runtime"][0] + 8] == bytes.fromhex(
        "1122334455667788")
    assert struct.unpack_from(p.replace("Q", "q").replace("I", "i"), raw,
                              off["ki_flag"][0])[0] == 0x10004000
    assert struct.unpack_from(">H", raw, off["ki_xstat"][0])[0] == 0x0102
    assert raw[off["ki_stat"][0]:off["ki_stat"][0] + 6] == bytes([3, 0xFC, 1, 0, 3, 255])
    assert raw[off["ki_tdname"][0]:off["ki_tdname"][0] + 17] == b"sshd: worker".ljust(17,
                                                                                    b"\0")
    assert raw[off["ki_wmesg"][0]:off["ki_wmesg"][0] + 9] == b"select\0x\0"
    assert raw[off["ki_login"][0]:off["ki_login"][0] + 18] == b"root".ljust(18, b"\0")
    assert raw[off["ki_comm"][0]:off["ki_comm"][0] + 20] == b"sshd".ljust(20, b"\0")
    assert raw[off["ki_emul"][0]:off["ki_emul"][0] + 17] == b"FreeBSD ELF64\0\0\0\0"
    assert struct.unpack_from(">ii", raw, off["ki_reaper"][0]) == (1, 7)
    assert struct.unpack_from(">ii", raw, off["ki_oncpu"][0]) == (3, -1)
    assert struct.unpack_from(">i", raw, off["ki_numthreads"][0])[0] == 2
    assert struct.unpack_from(">i", raw, off["ki_tid"][0])[0] == 100123
    assert raw[off["ki_pri"][0]:off["ki_pri"][0] + 4] == bytes([0, 120, 121, 0])
    assert not any(raw[off["ki_rusage"][0]:off["ki_pcb"][0] + off["ki_pcb"][1]])
    # the same record little-endian is the byte-swapped image of every integer
    le = {"powerpc64": "powerpc64le", "armeb": "arm", "mips": "mipsel",
          "mipsn32": "mipsn32el"}[name]
    raw_le = kpabi.pack(_sample(psize), ABIS[le])
    assert raw_le[off["ki_pid"][0]:off["ki_pid"][0] + 4] == bytes.fromhex("04030201")
    assert raw_le[off["ki_comm"][0]:off["ki_comm"][0] + 20] == b"sshd".ljust(20, b"\0")


def test_out_of_range_values_are_stored_as_c_does() -> None:
    """Values outside the C type are stored modulo 2**bits (the careful packer)."""
    kp = _sample(8)
    kp.pid = 0xFFFFFFFF  # an unsigned view of -1
    kp.nice = 0xFC  # an unsigned view of -4
    kp.lock = 0x1FF
    kp.groups = [1, 2]  # type: ignore[assignment]
    kp.comm = bytearray(b"long-command-name-here")  # type: ignore[assignment]
    raw = kpabi.pack(kp, ABIS["i386"])  # 64-bit pointers into a 32-bit record
    off = hand("i386")
    assert len(raw) == 768
    assert struct.unpack_from("<i", raw, off["ki_pid"][0])[0] == -1
    assert struct.unpack_from("<I", raw, off["ki_paddr"][0])[0] == 0x12345678
    assert raw[off["ki_nice"][0]] == 0xFC and raw[off["ki_lock"][0]] == 0xFF
    assert struct.unpack_from("<16I", raw, off["ki_groups"][0]) == (1, 2) + (0,) * 14
    assert raw[off["ki_comm"][0]:off["ki_comm"][0] + 20] == b"long-command-name-he"
    assert kpabi.pack_many([kp, _sample(4)], ABIS["i386"]) == raw + kpabi.pack(
        _sample(4), ABIS["i386"])
    assert kpabi.pack_many([], ABIS["amd64"]) == b""


def test_tdname_tail_of_a_previous_thread_is_kept() -> None:
    """kernel-data.md 1.9 quirk 6: a raw 17-byte ki_tdname goes in unchanged."""
    kp = _sample(8)
    kp.tdname = b"ab\0worker-thread"
    raw = kpabi.pack(kp, ABIS["amd64"])
    assert raw[394:411] == b"ab\0worker-thread\0"


def test_every_record_field_is_packed() -> None:
    """Each field of procs.KinfoProc has a place in struct kinfo_proc (none dropped)."""
    names = set(kpabi.attribute_names(ABIS["amd64"]))
    fields = {f.name for f in dataclasses.fields(KinfoProc)} - {"extra"}
    assert fields <= names, sorted(fields - names)
    assert {"pid", "comm", "pri_level", "start_tv_sec", "rusage_ru_utime_tv_usec",
            "rusage_ch_ru_nivcsw", "siglist", "groups"} <= names


def test_other_record_types_and_enriched_fields() -> None:
    """Any object with C-named attributes packs; extra fields (enriched mode) land too."""

    @dataclasses.dataclass
    class Enriched:
        pid: int = 5
        start_tv_sec: int = 1_700_000_000
        start_tv_usec: int = 250
        rusage_ru_maxrss: int = 4096
        tdaddr: int = 0xFFFFF80000ABC000
        loginclass: bytes = b"daemon"

    raw = kpabi.pack(Enriched(), ABIS["arm"])
    off = hand("arm")
    assert len(raw) == 816
    assert struct.unpack_from("<i", raw, off["ki_pid"][0])[0] == 5
    assert struct.unpack_from("<qi", raw, off["ki_start"][0]) == (1_700_000_000, 250)
    assert struct.unpack_from("<i", raw, off["ki_rusage"][0] + 32)[0] == 4096
    assert struct.unpack_from("<I", raw, off["ki_tdaddr"][0])[0] == 0x00ABC000
    assert raw[off["ki_loginclass"][0]:off["ki_loginclass"][0] + 18] == b"daemon".ljust(
        18, b"\0")
    assert raw[off["ki_tdev"][0]:off["ki_tdev"][0] + 8] == bytes(8)

    class Plain:
        """Not a dataclass: attributes read one by one."""

        def __init__(self) -> None:
            self.pid = 77
            self.comm = b"init"

    raw = kpabi.pack(Plain(), ABIS["amd64"])
    assert struct.unpack_from("<i", raw, 72)[0] == 77 and raw[447:452] == b"init\0"
    assert raw.count(0) == 1088 - 1 - 4  # everything else is zero


# ------------------------------------------------- random records, round trip
U32 = st.integers(0, 0xFFFFFFFF)
S32 = st.integers(-(1 << 31), (1 << 31) - 1)


def _record(psize: int) -> st.SearchStrategy[KinfoProc]:
    ptr = st.integers(0, (1 << (8 * psize)) - 1)
    lng = st.integers(-(1 << (8 * psize - 1)), (1 << (8 * psize - 1)) - 1)
    sig = st.tuples(U32, U32, U32, U32)
    return st.builds(
        KinfoProc, paddr=ptr, args=ptr, textvp=ptr, fd=ptr, pd=ptr, vmspace=ptr,
        wchan=ptr, pid=S32, ppid=S32, reaper=S32, reapsubtree=S32, pgid=S32, tpgid=S32,
        sid=S32, tsid=S32, jobc=st.integers(-(1 << 15), (1 << 15) - 1),
        tdev=st.integers(0, NODEV), siglist=sig, sigmask=sig, sigignore=sig, sigcatch=sig,
        uid=U32, ruid=U32, svuid=U32, rgid=U32, svgid=U32,
        ngroups=st.integers(0, 16), groups=st.lists(U32, max_size=16).map(tuple),
        cr_flags=U32, jid=S32, size=ptr, rssize=lng, swrss=lng, tsize=lng, dsize=lng,
        ssize=lng, xstat=st.integers(0, 0xFFFF), acflag=st.integers(0, 0xFFFF),
        swtime=U32, runtime=st.integers(0, NODEV), flag=lng, kiflag=lng, traceflag=S32,
        stat=st.integers(0, 127), nice=st.integers(-128, 127), lock=st.integers(0, 127),
        lastcpu=S32, oncpu=S32, lastcpu_old=st.integers(0, 255),
        oncpu_old=st.integers(0, 255), tdname=st.binary(max_size=17),
        wmesg=st.binary(min_size=8, max_size=8), login=st.binary(max_size=18),
        lockname=st.binary(min_size=8, max_size=8), comm=st.binary(max_size=19),
        emul=st.binary(max_size=16), numthreads=S32, tid=S32,
        pri_level=st.integers(0, 255), pri_native=st.integers(0, 255))


def _decode(raw: bytes, name: str) -> dict[str, Any]:
    r = Rec(raw, name)
    out: dict[str, Any] = {}
    for m in ("ki_paddr", "ki_args", "ki_textvp", "ki_fd", "ki_pd", "ki_vmspace",
              "ki_wchan", "ki_uid", "ki_ruid", "ki_svuid", "ki_rgid", "ki_svgid",
              "ki_cr_flags", "ki_size", "ki_xstat", "ki_acflag", "ki_swtime",
              "ki_runtime", "ki_tdev", "ki_lastcpu_old", "ki_oncpu_old"):
        out[m[3:]] = r.u(m)
    for m in ("ki_pid", "ki_ppid", "ki_reaper", "ki_reapsubtree", "ki_pgid", "ki_tpgid",
              "ki_sid", "ki_tsid", "ki_jobc", "ki_jid", "ki_rssize", "ki_swrss",
              "ki_tsize", "ki_dsize", "ki_ssize", "ki_flag", "ki_kiflag", "ki_traceflag",
              "ki_stat", "ki_nice", "ki_lock", "ki_lastcpu", "ki_oncpu", "ki_numthreads",
              "ki_tid", "ki_ngroups"):
        out[m[3:]] = r.s(m)
    for m in ("ki_siglist", "ki_sigmask", "ki_sigignore", "ki_sigcatch"):
        out[m[3:]] = r.words(m)
    out["groups"] = r.words("ki_groups")
    for m in ("ki_tdname", "ki_wmesg", "ki_login", "ki_lockname", "ki_comm", "ki_emul"):
        out[m[3:]] = r.chars(m)
    out["pri_level"] = r.u("ki_pri", 1, 1)
    out["pri_native"] = r.u("ki_pri", 2, 1)
    out["tdev_freebsd11"] = r.u("ki_tdev_freebsd11")
    return out


def _expected(kp: KinfoProc, keys: Any) -> dict[str, Any]:
    out = {k: getattr(kp, k) for k in keys}
    out["groups"] = tuple(kp.groups) + (0,) * (16 - len(kp.groups))
    for name, size in (("tdname", 17), ("wmesg", 9), ("login", 18), ("lockname", 9),
                       ("comm", 20), ("emul", 17)):
        out[name] = getattr(kp, name)[:size].ljust(size, b"\0")
    out["tdev_freebsd11"] = kp.tdev & 0xFFFFFFFF
    return out


@pytest.mark.parametrize("name", ["amd64", "i386", "arm", "powerpc64", "armeb", "mipsn32"])
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_random_records_round_trip(name: str, data: st.DataObject) -> None:
    a: Abi = ABIS[name]
    kp = data.draw(_record(a.pointer_size))
    raw = kpabi.pack(kp, a)
    assert len(raw) == ABI_COLUMN[name][1]
    got = _decode(raw, name)
    assert got == _expected(kp, got)
    assert kpabi.pack_many([kp, kp], a) == raw + raw


def test_an_empty_iterator() -> None:
    assert kpabi.pack_many(iter(()), ABIS["powerpc"]) == b""
