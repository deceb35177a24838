"""Kernel data in synthetic mips kernels (``build_mips(types=...)``), every ABI and order.

The bytes are read back with test-local code only: ``synth_mips_reader`` (the independent
struct-only mips minidump reader) for the kernel's symbols and for memory, pyelftools for
the ``.SUNW_ctf`` section and the DWARF file.  Lists are walked with the offsets of the
kernel's own ``LayoutTruth``; every integer is decoded in the dump's byte order and the
target's pointer width, worked out here from the format name (o32/n32: 4-byte pointers,
n64: 8; ``-be``: big-endian).
"""

from __future__ import annotations

import hashlib
import io
import zlib
from pathlib import Path
from typing import Literal

import pytest
from elftools.elf.elffile import ELFFile
from synth_mips_reader import Kernel, Minidump

from pykvm.synth import SynthDump
from pykvm.synth.arch_mips import FORMATS, build
from pykvm.synth.cmodel import LayoutTruth
from pykvm.synth.kerneldata import KernelDataTruth

PS = 4096
MSG_MAGIC = 0x063062
#: per ABI: (pointer bytes, PTE bytes, NBPDR, MIPS_PHYS_TO_DIRECT base, C target name)
ABI = {
    "o32": (4, 4, 4 << 20, 0x80000000, "mips"),
    "n32": (4, 8, 2 << 20, 0x80000000, "mipsn32"),
    "n64": (8, 8, 2 << 20, 0x9800000000000000, "mips64"),
}
#: sha256 of (kernel, vmcore) of default builds, taken before ``types=`` existed
DEFAULT_HASHES = {
    (0, "minidump-o32-be"): (
        "423490b62d16b6c26c343199914c0866825de000b0e1f833d751390199fe5ef9",
        "daf0e5e3a00547098f7d62cf5c24be5be19a1252150778cdbe5fa602aa81f995",
    ),
    (2, "minidump-n64-le-v1"): (
        "05a9eb1946a8e752a7f70fa17c1075b96883cd2776538d5296c1bc9a6cc3ab6a",
        "83b3ec2e851bef9162733ad213eb1f745e7b3b8746d95d491c81e5adb4fe4551",
    ),
    (1, "minidump-n32-le"): (
        "fbaff8bd31149f41b4ff3d51be924a6afb8697da7e88dc41f3d1b8ff42ab4689",
        "a52b458b266c1e053fd293529f30da426b13482f990278b56bb2bd6f68f61afd",
    ),
}


Order = Literal["little", "big"]


def _parts(fmt: str) -> tuple[str, Order, int]:
    p = fmt.split("-")
    order: Order = "big" if p[2] == "be" else "little"
    return p[1], order, 1 if len(p) == 4 else 2


class _Mem:
    """Kernel virtual reads and the kernel's symbols, through the test-local reader."""

    def __init__(self, dump: SynthDump) -> None:
        abi, order, _ = _parts(dump.fmt)
        self.k = Kernel(dump.kernel.read_bytes())
        self.core = dump.core.read_bytes()
        self.r = Minidump(self.core, self.k)
        self.order = order
        self.ptr = ABI[abi][0]
        self.syms = self.k.symbols

    def read(self, va: int, n: int) -> bytes:
        out = self.r.read(va, n)
        assert out is not None, hex(va)
        return out

    def uint(self, va: int, n: int) -> int:
        return int.from_bytes(self.read(va, n), self.order)

    def sint(self, va: int, n: int = 4) -> int:
        return int.from_bytes(self.read(va, n), self.order, signed=True)

    def ptr_at(self, va: int) -> int:
        return self.uint(va, self.ptr)

    def cstr(self, va: int, n: int) -> str:
        return self.read(va, n).split(b"\0", 1)[0].decode()


def _walk_list(mem: _Mem, lt: LayoutTruth, head: int) -> list[int]:
    out: list[int] = []
    p = mem.ptr_at(head)
    next_off = lt.offset("proc", "p_list.le_next")
    while p and len(out) < 1000:
        out.append(p)
        p = mem.ptr_at(p + next_off)
    return out


def _truths(dump: SynthDump) -> tuple[KernelDataTruth, LayoutTruth]:
    kd, lt = dump.truth.kernel_data, dump.truth.type_layout
    assert kd is not None and lt is not None
    return kd, lt


# ----------------------------------------------------------------------------- defaults
@pytest.mark.parametrize(("seed", "fmt"), sorted(DEFAULT_HASHES))
def test_default_files_unchanged(tmp_path: Path, seed: int, fmt: str) -> None:
    dump = build(tmp_path, seed, fmt, types=None)
    got = (
        hashlib.sha256(dump.kernel.read_bytes()).hexdigest(),
        hashlib.sha256(dump.core.read_bytes()).hexdigest(),
    )
    assert got == DEFAULT_HASHES[seed, fmt]
    assert dump.truth.kernel_data is None and dump.truth.type_layout is None
    assert dump.debug is None
    with dump.kernel.open("rb") as f:
        assert ELFFile(f).get_section_by_name(".SUNW_ctf") is None


@pytest.mark.parametrize("fmt", FORMATS)
def test_types_none_is_the_default(tmp_path: Path, fmt: str) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = build(tmp_path / "a", 5, fmt)
    b = build(tmp_path / "b", 5, fmt, types=None)
    assert a.kernel.read_bytes() == b.kernel.read_bytes()
    assert a.core.read_bytes() == b.core.read_bytes()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"types": "ctf-v4"}, "unknown types"),
        ({"era": "13"}, "need types"),
        ({"cp_time_symbol": True}, "need types"),
        ({"types": "ctf-v3", "era": "14"}, r"era '14': FreeBSD/mips exists in eras"),
        ({"types": "ctf-v3", "era": "15"}, r"removed before FreeBSD 14\.0"),
        ({"types": "ctf-v3", "era": "9"}, "FreeBSD/mips exists in eras"),
    ],
)
def test_bad_options(tmp_path: Path, kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build(tmp_path, 0, "minidump-o32-be", **kwargs)  # type: ignore[arg-type]


def test_default_era_and_determinism(tmp_path: Path) -> None:
    eras = set()
    for seed in range(6):
        d = tmp_path / f"v2-{seed}"
        d.mkdir()
        kd, _ = _truths(build(d, seed, "minidump-n32-be", types="ctf-v3"))
        assert kd.era == "13"  # the header version 2 dump is FreeBSD 13's
        d = tmp_path / f"v1-{seed}"
        d.mkdir()
        kd, _ = _truths(build(d, seed, "minidump-n32-be-v1", types="ctf-v3"))
        eras.add(kd.era)
    assert eras <= {"10", "11", "12"} and len(eras) >= 2
    files = []
    for name, seed in (("a", 3), ("b", 3), ("c", 8)):
        d = tmp_path / name
        d.mkdir()
        dump = build(d, seed, "minidump-o32-le", types="ctf-v3", era="12")
        files.append((dump.kernel.read_bytes(), dump.core.read_bytes(), dump))
    assert files[0][:2] == files[1][:2]
    assert files[0][:2] != files[2][:2]
    _, lt_a = _truths(files[0][2])
    _, lt_c = _truths(files[2][2])
    assert (lt_a.offset("proc", "p_pid"), lt_a.size("proc")) != (
        lt_c.offset("proc", "p_pid"),
        lt_c.size("proc"),
    )


# ----------------------------------------------------------------------------- memory
ERAS = ("10", "11", "12", "13")
WALK_CASES = [(fmt, ERAS[i % 4], 1 + i) for i, fmt in enumerate(FORMATS)]


@pytest.mark.parametrize(("fmt", "era", "seed"), WALK_CASES)
def test_walk_allproc(tmp_path: Path, fmt: str, era: str, seed: int) -> None:
    abi, order, _ = _parts(fmt)
    ptr, _, _, _, target = ABI[abi]
    dump = build(tmp_path, seed, fmt, types="ctf-v3", era=era)
    kd, lt = _truths(dump)
    assert kd.era == era
    assert lt.target.name == (target if order == "big" else target + "el")
    assert (lt.target.ptr_size, lt.target.byteorder) == (ptr, order)
    mem = _Mem(dump)
    syms = mem.syms
    # allproc holds the first process's address, in the kernel's order and width
    raw = mem.read(syms["allproc"], ptr)
    assert raw == kd.procs[0].addr.to_bytes(ptr, order)
    pid_off = lt.offset("proc", "p_pid")
    first = kd.procs[0]
    assert mem.read(first.addr + pid_off, 4) == first.pid.to_bytes(4, order)
    procs = _walk_list(mem, lt, syms["allproc"])
    if era in ("10", "11", "12"):
        assert kd.zombproc is not None and "zombproc" in syms
        procs += _walk_list(mem, lt, syms["zombproc"])
    else:
        assert kd.zombproc is None and "zombproc" not in syms
    assert [mem.sint(p + pid_off) for p in procs] == kd.pids()
    assert len(procs) >= 6 and mem.sint(syms["nprocs"]) == kd.nprocs == len(procs)
    assert procs[-1 if kd.zombproc is None else -2] == syms["proc0"] == kd.proc0
    emul = "FreeBSD ELF64" if ptr == 8 else "FreeBSD ELF32"
    for p, want in zip(procs, kd.procs, strict=True):
        assert p == want.addr
        assert mem.cstr(p + lt.offset("proc", "p_comm"), 20) == want.comm
        assert mem.uint(p + lt.offset("proc", "p_state"), 4) == want.state
        pptr = mem.ptr_at(p + lt.offset("proc", "p_pptr"))
        assert pptr == want.pptr
        if pptr:
            assert mem.sint(pptr + pid_off) == want.ppid
        pg = mem.ptr_at(p + lt.offset("proc", "p_pgrp"))
        assert mem.sint(pg + lt.offset("pgrp", "pg_id")) == want.pgid
        sess = mem.ptr_at(pg + lt.offset("pgrp", "pg_session"))
        assert mem.sint(sess + lt.offset("session", "s_sid")) == want.sid
        cred = mem.ptr_at(p + lt.offset("proc", "p_ucred"))
        assert mem.uint(cred + lt.offset("ucred", "cr_uid"), 4) == want.uid
        ngroups = mem.sint(cred + lt.offset("ucred", "cr_ngroups"))
        garr = mem.ptr_at(cred + lt.offset("ucred", "cr_groups"))
        assert tuple(mem.uint(garr + 4 * i, 4) for i in range(ngroups)) == want.groups
        vm = mem.ptr_at(p + lt.offset("proc", "p_vmspace"))
        assert mem.uint(vm + lt.offset("vmspace", "vm_map.size"), ptr) == want.size
        sysent = mem.ptr_at(p + lt.offset("proc", "p_sysent"))
        name = mem.ptr_at(sysent + lt.offset("sysentvec", "sv_name"))
        assert mem.cstr(name, 16) == want.emul == emul
        td = mem.ptr_at(p + lt.offset("proc", "p_threads.tqh_first"))
        tids = []
        while td:
            assert mem.ptr_at(td + lt.offset("thread", "td_proc")) == p
            tids.append(mem.sint(td + lt.offset("thread", "td_tid")))
            td = mem.ptr_at(td + lt.offset("thread", "td_plist.tqe_next"))
        assert tids == [t.tid for t in want.threads]


@pytest.mark.parametrize("fmt", ["minidump-o32-be", "minidump-n32-le-v1", "minidump-n64-be"])
def test_arena_is_one_grown_page_table(tmp_path: Path, fmt: str) -> None:
    """The arena is the VA of one more page-table page: the PTE section grows by a page,
    ``kernel_vm_end`` by NBPDR, and every arena page's PTE maps a page of the dump."""
    abi, order, _ = _parts(fmt)
    ptr, pte_size, nbpdr, _, _ = ABI[abi]
    (tmp_path / "none").mkdir()
    (tmp_path / "kd").mkdir()
    plain = _Mem(build(tmp_path / "none", 4, fmt))
    dump = build(tmp_path / "kd", 4, fmt, types="dwarf", era="12")
    kd, _ = _truths(dump)
    mem = _Mem(dump)
    assert mem.r.ptesize == plain.r.ptesize + PS
    vm_end = mem.ptr_at(mem.syms["kernel_vm_end"])
    assert vm_end == plain.ptr_at(plain.syms["kernel_vm_end"]) + nbpdr
    assert vm_end == dump.truth.kernel_vm_end == mem.r.kernbase + mem.r.ptesize // pte_size * PS
    arena = vm_end - nbpdr
    first = (arena - mem.r.kernbase) // PS
    valid = []
    for i in range(nbpdr // PS):
        pte = mem.r.pte(first + i)
        if pte & 0x02:  # PTE_V
            assert pte & 0x01 and pte & 0x04  # PTE_G, PTE_D: pmap_kenter
            pa = mem.r.pte_pa(pte)
            assert mem.r.page_off(pa) is not None, hex(pa)
            valid.append(arena + i * PS)
        else:
            assert pte == 0x01  # an invalid kernel PTE holds PTE_G only
    # the arena is used from its start, page after page
    assert valid == [arena + i * PS for i in range(len(valid))]
    assert 8 <= len(valid) < nbpdr // PS
    procs = [p.addr for p in kd.procs if p.addr != kd.proc0]  # proc0 is in .bss
    assert len(procs) == len(kd.procs) - 1
    for va in (*procs, *kd.pcpu, kd.msgbuf.addr, *(s.addr for s in kd.swap)):
        assert arena <= va < arena + len(valid) * PS, hex(va)
    # the variables stay in the kernel's .bss, in KSEG0 (n64: the compatibility KSEG0)
    kseg0 = 0xFFFFFFFF80000000 if ptr == 8 else 0x80000000
    for name in ("allproc", "nprocs", "proc0", "msgbufp", "cpuid_to_pcpu"):
        assert kseg0 + 0x100000 <= mem.syms[name] < kseg0 + 0x20000000, name


@pytest.mark.parametrize("fmt", ["minidump-o32-le", "minidump-n32-be", "minidump-n64-le-v1"])
def test_msgbuf_and_other_data(tmp_path: Path, fmt: str) -> None:
    abi, order, _ = _parts(fmt)
    ptr, _, _, direct, _ = ABI[abi]
    dump = build(tmp_path, 7, fmt, types="ctf-v3", era="11", cp_time_symbol=True)
    kd, lt = _truths(dump)
    mem = _Mem(dump)
    syms = mem.syms
    # msgbufp -> the arena's struct msgbuf, whose ring is the stolen area through KSEG0/XKPHYS
    mb = mem.ptr_at(syms["msgbufp"])
    assert mb == kd.msgbuf.addr == dump.truth.extras["msgbufp"]
    assert mem.uint(mb + lt.offset("msgbuf", "msg_magic"), 4) == MSG_MAGIC
    size = mem.uint(mb + lt.offset("msgbuf", "msg_size"), 4)
    ring = mem.ptr_at(mb + lt.offset("msgbuf", "msg_ptr"))
    msgbuf_pa = dump.truth.extras["msgbuf_pa"]
    assert ring == direct | msgbuf_pa == kd.msgbuf.ring
    assert size == mem.r.msgbufsize == len(dump.truth.msgbuf)
    # the ring read through the direct window equals the dump's message-buffer section
    assert mem.read(ring, size) == mem.core[PS : PS + size] == dump.truth.msgbuf
    rpos = mem.uint(mb + lt.offset("msgbuf", "msg_rseq"), 4) % size
    wpos = mem.uint(mb + lt.offset("msgbuf", "msg_wseq"), 4) % size
    if wpos >= rpos:
        unread = mem.read(ring + rpos, wpos - rpos)
    else:
        unread = mem.read(ring + rpos, size - rpos) + mem.read(ring, wpos)
    assert unread == kd.msgbuf.unread and len(unread) > 0
    # loadavg: fixpt_t ldavg[3] (u32) and long fscale
    av = syms["averunnable"]
    assert tuple(mem.uint(av + lt.offset("loadavg", "ldavg") + 4 * i, 4) for i in range(3)) == (
        kd.ldavg
    )
    assert mem.uint(av + lt.offset("loadavg", "fscale"), ptr) == kd.fscale == 2048
    # swap (era 11 has dmmax)
    sp = mem.ptr_at(syms["swtailq"])
    seen = []
    while sp:
        seen.append((mem.sint(sp + lt.offset("swdevt", "sw_nblks")),
                     mem.sint(sp + lt.offset("swdevt", "sw_used"))))
        sp = mem.ptr_at(sp + lt.offset("swdevt", "sw_list.tqe_next"))
    assert seen == [(s.nblks, s.used) for s in kd.swap] and seen
    assert mem.sint(syms["dmmax"]) == kd.dmmax
    # per-CPU: MAXCPU 32 (sys/mips/include/param.h), cpuid_to_pcpu of pointers
    assert mem.sint(syms["mp_maxcpus"]) == kd.maxcpu == 32
    assert mem.sint(syms["mp_ncpus"]) == kd.ncpus
    pcpus = [mem.ptr_at(syms["cpuid_to_pcpu"] + ptr * c) for c in range(32)]
    assert tuple(p for p in pcpus if p) == kd.pcpu
    total = [0] * 5
    for c, pc in enumerate(kd.pcpu):
        # long pc_cp_time[CPUSTATES]: 4 bytes on o32 and n32, 8 on n64
        times = [mem.uint(pc + lt.offset("pcpu", "pc_cp_time") + ptr * k, ptr) for k in range(5)]
        assert tuple(times) == kd.cp_time[c]
        total = [a + b for a, b in zip(total, times, strict=True)]
        off = mem.ptr_at(syms["dpcpu_off"] + ptr * c)
        assert off == kd.dpcpu_off[c]
        entry = syms["pcpu_entry_synth_counter"]
        assert syms["__start_set_pcpu"] <= entry < syms["__stop_set_pcpu"]
        assert mem.uint((entry + off) % (1 << (8 * ptr)), 8) == kd.dpcpu_values["synth_counter"][c]
    mask = (1 << (8 * ptr)) - 1
    assert tuple(t & mask for t in total) == tuple(t & mask for t in kd.cp_time_sum)
    assert tuple(mem.uint(syms["cp_time"] + ptr * k, ptr) for k in range(5)) == tuple(
        t & mask for t in kd.cp_time_sum
    )
    assert mem.sint(syms["dumptid"]) == kd.dumptid


# ----------------------------------------------------------------------------- type files
@pytest.mark.parametrize(("fmt", "types"), [("minidump-o32-be", "ctf-v2"),
                                            ("minidump-n64-le", "ctf-v3"),
                                            ("minidump-n32-be-v1", "ctf-v3-raw")])
def test_ctf_section_in_kernel_order(tmp_path: Path, fmt: str, types: str) -> None:
    _, order, _ = _parts(fmt)
    dump = build(tmp_path, 6, fmt, types=types, era="12")
    with dump.kernel.open("rb") as f:
        sec = ELFFile(f).get_section_by_name(".SUNW_ctf")
        assert sec is not None
        raw = sec.data()
    e = order
    assert int.from_bytes(raw[0:2], e) == 0xCFF1
    assert raw[2] == (2 if types == "ctf-v2" else 3)
    assert raw[3] == (0 if types == "ctf-v3-raw" else 1)  # CTF_F_COMPRESS
    body = raw[36:] if raw[3] == 0 else zlib.decompress(raw[36:])
    stroff, strlen = (int.from_bytes(raw[28 + 4 * i : 32 + 4 * i], e) for i in range(2))
    assert len(body) == stroff + strlen
    for needed in (b"\0proc\0", b"\0p_pid\0", b"\0pc_cp_time\0", b"\0msgbuf\0"):
        assert needed in body[stroff:]


def test_dwarf_debug_file(tmp_path: Path) -> None:
    dump = build(tmp_path, 2, "minidump-n32-be", types="dwarf", debug_name="k.dbg")
    assert dump.debug == tmp_path / "k.dbg"
    _, lt = _truths(dump)
    elf = ELFFile(io.BytesIO(dump.debug.read_bytes()))
    assert elf.elfclass == 32 and not elf.little_endian
    found = None
    for cu in elf.get_dwarf_info().iter_CUs():
        for die in cu.iter_DIEs():
            name = die.attributes.get("DW_AT_name")
            if (die.tag == "DW_TAG_structure_type" and name and name.value == b"proc"
                    and "DW_AT_byte_size" in die.attributes):
                members = {
                    c.attributes["DW_AT_name"].value: c.attributes[
                        "DW_AT_data_member_location"].value
                    for c in die.iter_children()
                    if c.tag == "DW_TAG_member" and "DW_AT_name" in c.attributes
                    and "DW_AT_data_member_location" in c.attributes
                }
                found = (die.attributes["DW_AT_byte_size"].value, members)
    assert found is not None
    assert found[0] == lt.size("proc")
    assert found[1][b"p_pid"] == lt.offset("proc", "p_pid")
