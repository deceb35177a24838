"""Kernel data and type information in synthetic amd64 kernels (``build_amd64(types=...)``).

The checks read the files with test-local code: pyelftools for the ELF and DWARF, a few
lines of ``struct`` for the CTF header, and ``synth_minireader`` (the independent amd64
dump reader) for memory, walking the kernel's lists with the offsets of the kernel's own
``LayoutTruth``.
"""

from __future__ import annotations

import hashlib
import io
import struct
import zlib
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile
from synth_minireader import ElfCore, Minidump

from pykvm.synth import build_amd64
from pykvm.synth.cmodel import LayoutTruth

STT_OBJECT = "STT_OBJECT"


def _symbols(kernel: Path) -> dict[str, int]:
    with kernel.open("rb") as f:
        elf = ELFFile(f)
        symtab = elf.get_section_by_name(".symtab")
        return {s.name: s["st_value"] for s in symtab.iter_symbols() if s.name}


class _Mem:
    """Virtual reads through the test-local reader of either dump format."""

    def __init__(self, dump_core: Path, fmt: str, kernbase: int, kpml4_va: int) -> None:
        data = dump_core.read_bytes()
        self.r: Minidump | ElfCore = (
            ElfCore(data, kernbase, kpml4_va) if fmt == "elf" else Minidump(data)
        )

    def read(self, va: int, n: int) -> bytes:
        out = self.r.read(va, n)
        assert out is not None, hex(va)
        return out

    def u64(self, va: int) -> int:
        return int(struct.unpack("<Q", self.read(va, 8))[0])

    def u32(self, va: int) -> int:
        return int(struct.unpack("<I", self.read(va, 4))[0])

    def i32(self, va: int) -> int:
        return int(struct.unpack("<i", self.read(va, 4))[0])

    def cstr(self, va: int, n: int) -> str:
        return self.read(va, n).split(b"\0", 1)[0].decode()


def _mem(dump_core: Path, fmt: str, syms: dict[str, int]) -> _Mem:
    return _Mem(dump_core, fmt, syms["kernbase"], syms["KPML4phys"])


def _walk_list(mem: _Mem, lt: LayoutTruth, head: int) -> list[int]:
    out = []
    p = mem.u64(head)
    next_off = lt.offset("proc", "p_list.le_next")
    while p and len(out) < 1000:
        out.append(p)
        p = mem.u64(p + next_off)
    return out


# ----------------------------------------------------------------------------- defaults
def test_types_none_is_byte_identical(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = build_amd64(tmp_path / "a", 4, small_kva=True)
    b = build_amd64(tmp_path / "b", 4, small_kva=True, types=None)
    assert a.kernel.read_bytes() == b.kernel.read_bytes()
    assert a.core.read_bytes() == b.core.read_bytes()
    assert a.truth.kernel_data is None and a.truth.type_layout is None and a.debug is None
    with a.kernel.open("rb") as f:
        assert ELFFile(f).get_section_by_name(".SUNW_ctf") is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"types": "ctf-v4"}, "unknown types"),
        ({"era": "13"}, "need types"),
        ({"cp_time_symbol": True}, "need types"),
        ({"types": "ctf-v3", "fmt": "minidump-v1"}, "minidump-v1"),
        ({"types": "ctf-v3", "era": "9"}, "unknown era"),
    ],
)
def test_bad_options(tmp_path: Path, kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build_amd64(tmp_path, 0, small_kva=True, **kwargs)  # type: ignore[arg-type]


def test_deterministic_and_seed_varied(tmp_path: Path) -> None:
    files = []
    for name, seed in (("a", 3), ("b", 3), ("c", 8)):
        d = tmp_path / name
        d.mkdir()
        dump = build_amd64(d, seed, small_kva=True, types="ctf-v3", era="14")
        files.append(
            (hashlib.sha256(dump.kernel.read_bytes()).digest(), dump.core.read_bytes(), dump)
        )
    assert files[0][:2] == files[1][:2]
    assert files[0][:2] != files[2][:2]
    lt_a = files[0][2].truth.type_layout
    lt_c = files[2][2].truth.type_layout
    assert lt_a is not None and lt_c is not None
    # seed-varied offsets: no reader can hard-code them
    assert (lt_a.offset("proc", "p_pid"), lt_a.size("proc")) != (
        lt_c.offset("proc", "p_pid"),
        lt_c.size("proc"),
    )


# ----------------------------------------------------------------------------- CTF
@pytest.mark.parametrize("types", ["ctf-v3", "ctf-v2", "ctf-v3-raw"])
def test_ctf_section(tmp_path: Path, types: str) -> None:
    dump = build_amd64(tmp_path, 6, small_kva=True, types=types)
    with dump.kernel.open("rb") as f:
        elf = ELFFile(f)
        sec = elf.get_section_by_name(".SUNW_ctf")
        assert sec is not None
        assert sec["sh_type"] == "SHT_PROGBITS" and sec["sh_flags"] == 0 and sec["sh_addr"] == 0
        raw = sec.data()
        syms = list(elf.get_section_by_name(".symtab").iter_symbols())[1:]
    magic, version, flags = struct.unpack_from("<HBB", raw, 0)
    parlabel, parname, lbloff, objtoff, funcoff, typeoff, stroff, strlen = struct.unpack_from(
        "<8I", raw, 4
    )
    assert magic == 0xCFF1
    assert version == (2 if types == "ctf-v2" else 3)
    assert flags == (0 if types == "ctf-v3-raw" else 1)
    body = raw[36:] if flags == 0 else zlib.decompress(raw[36:])
    assert len(body) == stroff + strlen
    assert lbloff <= objtoff <= funcoff <= typeoff <= stroff
    # the object section: one ID per STT_OBJECT symbol that init_symtab maps, in order
    mapped = [
        s
        for s in syms
        if s["st_info"]["type"] == STT_OBJECT
        and s.name
        and s["st_shndx"] != "SHN_UNDEF"
        and s.name not in ("_START_", "_END_")
        and not (s["st_shndx"] == "SHN_ABS" and s["st_value"] == 0)
    ]
    width = 2 if version == 2 else 4
    assert funcoff - objtoff == width * len(mapped)
    ids = [
        int.from_bytes(body[objtoff + i * width : objtoff + (i + 1) * width], "little")
        for i in range(len(mapped))
    ]
    by_name = dict(zip([s.name for s in mapped], ids, strict=True))
    layout = dump.truth.type_layout
    assert layout is not None
    for name in ("allproc", "nprocs", "averunnable", "cpuid_to_pcpu", "msgbufp", "proc0"):
        assert by_name[name] != 0, name
    assert by_name["version"] == 0 and by_name["physmem"] == 0
    strings = body[stroff : stroff + strlen]
    for needed in (b"\0proc\0", b"\0p_pid\0", b"\0p_list\0", b"\0pc_cp_time\0"):
        assert needed in strings


# ----------------------------------------------------------------------------- DWARF
def test_dwarf_debug_file(tmp_path: Path) -> None:
    dump = build_amd64(tmp_path, 2, small_kva=True, types="dwarf")
    assert dump.debug is not None and dump.debug == tmp_path / "kernel.debug"
    lt = dump.truth.type_layout
    assert lt is not None
    with dump.kernel.open("rb") as f:
        assert ELFFile(f).get_section_by_name(".SUNW_ctf") is None
    elf = ELFFile(io.BytesIO(dump.debug.read_bytes()))
    dwarf = elf.get_dwarf_info()
    found = {}
    for cu in dwarf.iter_CUs():
        for die in cu.iter_DIEs():
            if die.tag == "DW_TAG_structure_type" and die.attributes.get("DW_AT_name"):
                name = die.attributes["DW_AT_name"].value.decode()
                if name in ("proc", "thread") and "DW_AT_byte_size" in die.attributes:
                    members = {
                        c.attributes["DW_AT_name"].value.decode(): c.attributes[
                            "DW_AT_data_member_location"
                        ].value
                        for c in die.iter_children()
                        if c.tag == "DW_TAG_member" and "DW_AT_name" in c.attributes
                        and "DW_AT_data_member_location" in c.attributes
                    }
                    found[name] = (die.attributes["DW_AT_byte_size"].value, members)
    assert found["proc"][0] == lt.size("proc")
    assert found["proc"][1]["p_pid"] == lt.offset("proc", "p_pid")
    assert found["proc"][1]["p_comm"] == lt.offset("proc", "p_comm")
    assert found["thread"][1]["td_tid"] == lt.offset("thread", "td_tid")


# ----------------------------------------------------------------------------- memory
@pytest.mark.parametrize(
    ("fmt", "era", "seed"),
    [
        ("minidump-v3", "14", 1),
        ("minidump-v2", "12", 2),
        ("elf", "10", 3),
        ("minidump-v3", "15", 4),
    ],
)
def test_walk_allproc(tmp_path: Path, fmt: str, era: str, seed: int) -> None:
    dump = build_amd64(tmp_path, seed, fmt, small_kva=True, types="ctf-v3", era=era)
    kd = dump.truth.kernel_data
    lt = dump.truth.type_layout
    assert kd is not None and lt is not None and kd.era == era
    syms = _symbols(dump.kernel)
    mem = _mem(dump.core, fmt, syms)
    pid_off = lt.offset("proc", "p_pid")
    comm_off = lt.offset("proc", "p_comm")
    procs = _walk_list(mem, lt, syms["allproc"])
    if "zombproc" in syms:
        assert kd.zombproc is not None and era in ("10", "11", "12")
        procs += _walk_list(mem, lt, syms["zombproc"])
    else:
        assert kd.zombproc is None
    assert [mem.i32(p + pid_off) for p in procs] == kd.pids()
    assert len(procs) >= 6 and mem.i32(syms["nprocs"]) == kd.nprocs == len(procs)
    assert procs[-1 if kd.zombproc is None else -2] == syms["proc0"] == kd.proc0
    for p, want in zip(procs, kd.procs, strict=True):
        assert p == want.addr
        assert mem.cstr(p + comm_off, 20) == want.comm
        assert mem.u32(p + lt.offset("proc", "p_state")) == want.state
        pptr = mem.u64(p + lt.offset("proc", "p_pptr"))
        assert pptr == want.pptr
        if pptr:
            assert mem.i32(pptr + pid_off) == want.ppid
        pg = mem.u64(p + lt.offset("proc", "p_pgrp"))
        assert mem.i32(pg + lt.offset("pgrp", "pg_id")) == want.pgid
        sess = mem.u64(pg + lt.offset("pgrp", "pg_session"))
        assert mem.i32(sess + lt.offset("session", "s_sid")) == want.sid
        assert mem.cstr(sess + lt.offset("session", "s_login"), 40) == want.login
        cred = mem.u64(p + lt.offset("proc", "p_ucred"))
        assert mem.u32(cred + lt.offset("ucred", "cr_uid")) == want.uid
        assert mem.u32(cred + lt.offset("ucred", "cr_rgid")) == want.rgid
        ngroups = mem.i32(cred + lt.offset("ucred", "cr_ngroups"))
        garr = mem.u64(cred + lt.offset("ucred", "cr_groups"))
        groups = [mem.u32(garr + 4 * i) for i in range(ngroups)]
        if lt.structs["ucred"].has("cr_gid"):
            groups = [mem.u32(cred + lt.offset("ucred", "cr_gid")), *groups]
        assert tuple(groups) == want.groups
        vm = mem.u64(p + lt.offset("proc", "p_vmspace"))
        assert mem.u64(vm + lt.offset("vmspace", "vm_map.size")) == want.size
        sysent = mem.u64(p + lt.offset("proc", "p_sysent"))
        name = mem.u64(sysent + lt.offset("sysentvec", "sv_name"))
        assert mem.cstr(name, 16) == want.emul == "FreeBSD ELF64"
        td = mem.u64(p + lt.offset("proc", "p_threads.tqh_first"))
        tids = []
        while td:
            assert mem.u64(td + lt.offset("thread", "td_proc")) == p
            tids.append(mem.i32(td + lt.offset("thread", "td_tid")))
            td = mem.u64(td + lt.offset("thread", "td_plist.tqe_next"))
        assert tids == [t.tid for t in want.threads]
        assert 1 <= len(tids) <= 3
    comms = [p.comm for p in kd.procs]
    assert any(len(c) == 19 for c in comms)
    assert sum(p.zombie for p in kd.procs) == 1
    assert any(p.tty for p in kd.procs)


def test_other_kernel_data(tmp_path: Path) -> None:
    dump = build_amd64(tmp_path, 7, "minidump-v3", small_kva=True, types="dwarf", era="11",
                       cp_time_symbol=True)
    kd = dump.truth.kernel_data
    lt = dump.truth.type_layout
    assert kd is not None and lt is not None
    syms = _symbols(dump.kernel)
    mem = _mem(dump.core, "minidump-v3", syms)
    # loadavg
    av = syms["averunnable"]
    ld = tuple(mem.u32(av + lt.offset("loadavg", "ldavg") + 4 * i) for i in range(3))
    assert ld == kd.ldavg and mem.u64(av + lt.offset("loadavg", "fscale")) == kd.fscale
    # swap
    sp = mem.u64(syms["swtailq"])
    seen = []
    while sp:
        seen.append((mem.i32(sp + lt.offset("swdevt", "sw_nblks")),
                     mem.i32(sp + lt.offset("swdevt", "sw_used"))))
        sp = mem.u64(sp + lt.offset("swdevt", "sw_list.tqe_next"))
    assert seen == [(s.nblks, s.used) for s in kd.swap]
    assert mem.i32(syms["dmmax"]) == kd.dmmax
    # per-CPU
    assert mem.i32(syms["mp_maxcpus"]) == kd.maxcpu
    assert mem.i32(syms["mp_ncpus"]) == kd.ncpus
    pcpus = [mem.u64(syms["cpuid_to_pcpu"] + 8 * c) for c in range(kd.maxcpu)]
    assert tuple(p for p in pcpus if p) == kd.pcpu
    total = [0] * 5
    for c, pc in enumerate(kd.pcpu):
        times = [mem.u64(pc + lt.offset("pcpu", "pc_cp_time") + 8 * k) for k in range(5)]
        assert tuple(times) == kd.cp_time[c]
        total = [a + b for a, b in zip(total, times, strict=True)]
        off = mem.u64(syms["dpcpu_off"] + 8 * c)
        assert off == kd.dpcpu_off[c]
        entry = syms["pcpu_entry_synth_counter"]
        assert syms["__start_set_pcpu"] <= entry < syms["__stop_set_pcpu"]
        assert mem.u64((entry + off) % (1 << 64)) == kd.dpcpu_values["synth_counter"][c]
    assert tuple(total) == kd.cp_time_sum == kd.cp_time_symbol
    assert tuple(mem.u64(syms["cp_time"] + 8 * k) for k in range(5)) == kd.cp_time_sum
    # msgbuf
    mb = mem.u64(syms["msgbufp"])
    assert mb == kd.msgbuf.addr
    assert mem.u32(mb + lt.offset("msgbuf", "msg_magic")) == 0x063062
    size = mem.u32(mb + lt.offset("msgbuf", "msg_size"))
    ring = mem.u64(mb + lt.offset("msgbuf", "msg_ptr"))
    rpos = mem.u32(mb + lt.offset("msgbuf", "msg_rseq")) % size
    wpos = mem.u32(mb + lt.offset("msgbuf", "msg_wseq")) % size
    if wpos >= rpos:
        unread = mem.read(ring + rpos, wpos - rpos)
    else:  # going round the end of the ring
        unread = mem.read(ring + rpos, size - rpos) + mem.read(ring, wpos)
    assert unread == kd.msgbuf.unread and len(unread) > 0
    assert mem.read(ring, size) == dump.truth.msgbuf
    assert mem.i32(syms["dumptid"]) == kd.dumptid
