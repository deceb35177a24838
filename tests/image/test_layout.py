"""pykvm.image.layout: the model on hand-assembled CTF, source precedence (CTF over
DWARF over exported offsets), the error texts, and typed views over a synthetic dump
and over a fake memory (pointers, dereferencing).

The CTF is packed with tests/image/ctf_asm.py straight from kernel-data.md 11; every
bit offset below is written next to the record that sets it.  The DWARF comes from
gcc (tests/image/fixtures/fbsd_types.c), whose offsets differ from the CTF's on
purpose, so a layout always shows which source it came from.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ctf_asm import INT_CHAR, INT_SIGNED, K_POINTER, K_TYPEDEF, Asm
from gcc_build import compile_object

import pykvm
from pykvm.errors import FaultError, FormatError, KvmError
from pykvm.image.ctf import CtfFile
from pykvm.image.dwarf import DwarfFile
from pykvm.image.elf import KernelImage
from pykvm.image.layout import (
    EXPORTED_OFFSETS,
    KernelTypes,
    MemberError,
    Pointer,
    StructView,
    _read_exported_offsets,
)
from pykvm.synth import SynthDump, build_amd64

# ids of the records proc_ctf() packs, in order
INT, UINT, CHAR, LONG, ULONG, PID_T, P_PROC, PP_PROC, LIST_ENTRY, COMM, P_STATES = range(1, 12)
BITS3, PROC, RUX, ANON_U, FWD_PGRP, P_PGRP, PGRP, P_CHAR, P_VOID, VTYPE, P_UINT = range(12, 23)


def proc_ctf(version: int = 3, endian: str = "<", compress: bool = False) -> bytes:
    """struct proc (104 bytes), struct rusage_ext, struct pgrp, enums; see the ids above."""
    a = Asm(version=version, endian=endian)
    assert a.integer("int", 4, 32, INT_SIGNED) == INT
    assert a.integer("unsigned int", 4, 32) == UINT
    assert a.integer("char", 1, 8, INT_SIGNED | INT_CHAR) == CHAR
    assert a.integer("long", 8, 64, INT_SIGNED) == LONG
    assert a.integer("unsigned long", 8, 64) == ULONG
    assert a.ref(K_TYPEDEF, INT, "pid_t") == PID_T
    assert a.ref(K_POINTER, PROC, root=False) == P_PROC
    assert a.ref(K_POINTER, P_PROC, root=False) == PP_PROC
    # LIST_ENTRY(proc): le_next at bit 0, le_prev at bit 64
    assert a.struct_("", 16, [("le_next", P_PROC, 0), ("le_prev", PP_PROC, 64)],
                     root=False) == LIST_ENTRY
    assert a.array(CHAR, LONG, 20, 20) == COMM
    assert a.enum("p_states", 4, [("PRS_NEW", 0), ("PRS_NORMAL", 1),
                                  ("PRS_ZOMBIE", 2)]) == P_STATES
    assert a.integer("unsigned int", 4, 3, root=False) == BITS3  # a 3-bit field's type
    assert a.struct_("proc", 104, [
        ("p_list", LIST_ENTRY, 0),      # bytes 0-15
        ("p_pid", PID_T, 128),          # byte 16
        ("p_comm", COMM, 160),          # bytes 20-39
        ("p_flags", BITS3, 320),        # byte 40, bits 0-2
        ("p_more", BITS3, 323),         # byte 40, bits 3-5
        ("p_state", P_STATES, 352),     # byte 44
        ("p_rux", RUX, 384),            # bytes 48-63
        ("", ANON_U, 512),              # bytes 64-71: p_a, p_b
        ("p_pgrp", P_PGRP, 576),        # byte 72
        ("p_wmesg", P_CHAR, 640),       # byte 80
        ("p_vtype", VTYPE, 704),        # byte 88: enum bit-field, 8 bits of room
        ("p_after", CHAR, 712),         # byte 89
        ("p_data", P_VOID, 768),        # byte 96
    ]) == PROC
    assert a.struct_("rusage_ext", 16, [("rux_runtime", ULONG, 0),
                                        ("rux_uticks", ULONG, 64)]) == RUX
    assert a.union("", 8, [("p_a", INT, 0), ("p_b", LONG, 0)]) == ANON_U
    assert a.forward("pgrp") == FWD_PGRP
    assert a.ref(K_POINTER, FWD_PGRP, root=False) == P_PGRP
    assert a.struct_("pgrp", 16, [("pg_id", PID_T, 0), ("pg_session", P_VOID, 64)]) == PGRP
    assert a.ref(K_POINTER, CHAR, root=False) == P_CHAR
    assert a.ref(K_POINTER, 0, root=False) == P_VOID
    assert a.enum("vtype", 4, [(f"V{i}", i) for i in range(9)]) == VTYPE
    assert a.ref(K_POINTER, UINT, root=False) == P_UINT
    return a.build(compress=compress)


def ctf_types(version: int = 3, endian: str = "<", **kw: Any) -> KernelTypes:
    ctf = CtfFile.parse(proc_ctf(version, endian), pointer_size=8)
    return KernelTypes(byteorder="little" if endian == "<" else "big", pointer_size=8,
                       ctf=ctf, **kw)


@pytest.mark.parametrize("version", [2, 3])
@pytest.mark.parametrize("endian", ["<", ">"])
def test_ctf_layout_by_hand(version: int, endian: str) -> None:
    proc = ctf_types(version, endian).struct("proc")
    assert (proc.name, proc.kind, proc.size, proc.source) == ("proc", "struct", 104, "CTF")
    assert proc.complete and proc.exact_size and proc.title == "struct proc"
    expect = {  # path: (offset, size, bit_offset, bit_size, type name, kind)
        "p_list": (0, 16, 0, None, "struct {...}", "struct"),
        "p_list.le_next": (0, 8, 0, None, "struct proc *", "pointer"),
        "p_list.le_prev": (8, 8, 64, None, "struct proc **", "pointer"),
        "p_pid": (16, 4, 128, None, "pid_t", "int"),
        "p_comm": (20, 20, 160, None, "char [20]", "array"),
        "p_flags": (40, 4, 320, 3, "unsigned int", "int"),
        "p_more": (40, 4, 323, 3, "unsigned int", "int"),
        "p_state": (44, 4, 352, None, "enum p_states", "enum"),
        "p_rux": (48, 16, 384, None, "struct rusage_ext", "struct"),
        "p_rux.rux_uticks": (56, 8, 448, None, "unsigned long", "int"),
        "p_a": (64, 4, 512, None, "int", "int"),
        "p_b": (64, 8, 512, None, "long", "int"),
        "p_pgrp": (72, 8, 576, None, "struct pgrp *", "pointer"),
        "p_wmesg": (80, 8, 640, None, "char *", "pointer"),
        "p_vtype": (88, 4, 704, 8, "enum vtype", "enum"),
        "p_after": (89, 1, 712, None, "char", "int"),
        "p_data": (96, 8, 768, None, "void *", "pointer"),
    }
    for path, want in expect.items():
        m = proc.member(path)
        assert (m.offset, m.size, m.bit_offset, m.bit_size, m.type_name, m.kind) == want, path
        assert m.name == path
    assert proc.offsetof("p_rux.rux_runtime") == 48
    assert proc.member("p_pid").type.signed and not proc.member("p_flags").type.signed
    assert [m.name for m in proc.fields][:3] == ["p_list", "p_pid", "p_comm"]
    assert proc.fields[7].name == "" and proc.fields[7].type_name == "union {...}"
    pgrp = proc.member("p_pgrp").type.target
    assert pgrp is not None and pgrp.tag == "pgrp"
    assert pgrp.layout is not None and pgrp.layout.member("pg_id").offset == 0  # via forward
    walked = [(p, d) for p, _m, d in proc.walk()]
    assert ("p_list.le_next", 1) in walked and ("", 0) in walked and ("p_b", 1) in walked
    assert "p_pid" in proc and "p_nope" not in proc and len(proc) == 13


def test_paths_and_errors() -> None:
    kt = ctf_types()
    proc = kt.struct("proc")
    assert kt.struct("struct proc") is proc
    assert proc.has("p_rux.rux_runtime") and not proc.has("p_pd")  # optional: no raise
    assert kt.has_member("proc", "p_a") and not kt.has_member("proc", "p_xstat")
    with pytest.raises(MemberError) as exc:
        proc.member("p_foo")
    assert str(exc.value) == "struct proc has no member p_foo (CTF)"
    assert isinstance(exc.value, KvmError) and isinstance(exc.value, AttributeError)
    with pytest.raises(MemberError) as exc:
        proc.member("p_pid.x")
    assert str(exc.value) == "struct proc: member p_pid is pid_t, not a struct or union (CTF)"
    with pytest.raises(MemberError) as exc:
        kt.offsetof("proc", "p_rux.nope")
    assert str(exc.value) == "struct proc has no member p_rux.nope (CTF)"
    with pytest.raises(KvmError) as kexc:
        kt.struct("thread")
    assert str(kexc.value) == ("struct thread: no type information "
                               "(not in CTF, no DWARF, no exported offsets)")
    with pytest.raises(KvmError) as kexc:
        kt.struct("union proc")
    assert str(kexc.value).startswith("union proc: no type information")
    with pytest.raises(ValueError):
        kt.struct("struct a b")
    assert kt.enum("p_states") == {"PRS_NEW": 0, "PRS_NORMAL": 1, "PRS_ZOMBIE": 2}
    assert kt.sizeof("proc") == 104 and kt.offsetof("pgrp", "pg_session") == 8
    none = KernelTypes(byteorder="little", pointer_size=8)
    with pytest.raises(KvmError) as kexc:
        none.struct("proc")
    assert str(kexc.value) == ("struct proc: no type information "
                               "(no .SUNW_ctf, no DWARF, no exported offsets)")


# --------------------------------------------------------------------------- precedence


@pytest.fixture(scope="module")
def gcc_dwarf(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DwarfFile]:
    d = tmp_path_factory.mktemp("layout-dwarf")
    dwarf = DwarfFile.open(compile_object(d, ["-g"]))
    yield dwarf
    dwarf.close()


OFFSETS = {"proc_off_p_pid": 200, "proc_off_p_comm": 300, "proc_off_p_list": 8,
           "thread_off_td_tid": 40, "thread_off_td_plist": 16, "pcb_size": 1024}


def test_precedence_ctf_dwarf_offsets(gcc_dwarf: DwarfFile) -> None:
    ctf = CtfFile.parse(proc_ctf(), pointer_size=8)
    every = KernelTypes(byteorder="little", pointer_size=8, ctf=ctf, dwarf=[gcc_dwarf],
                        offsets=OFFSETS)
    assert every.struct("proc").source == "CTF" and every.offsetof("proc", "p_pid") == 16
    assert every.struct("thread").source == "DWARF"  # not in this CTF
    pcb = every.struct("pcb")  # only the exported pcb_size knows it
    assert (pcb.source, pcb.size, pcb.exact_size, pcb.complete, pcb.fields) == \
        ("exported offsets", 1024, True, False, ())
    dwarf_first = KernelTypes(byteorder="little", pointer_size=8, dwarf=[gcc_dwarf],
                              offsets=OFFSETS)
    assert dwarf_first.struct("proc").source == "DWARF"
    pid = next(m for m in gcc_dwarf.members(gcc_dwarf.find("struct", "proc") or 0)
               if m.name == "p_pid")
    assert dwarf_first.offsetof("proc", "p_pid") == pid.bit_offset // 8 != 16
    names = [s.name for s in every.sources]
    assert names == ["CTF", "DWARF", "exported offsets"]
    assert [s.available for s in every.sources] == [True, True, True]
    with pytest.raises(KvmError) as exc:
        every.struct("nosuch")
    assert str(exc.value) == ("struct nosuch: no type information (not in CTF, not in DWARF, "
                              "not among the exported offsets)")


def test_exported_offsets_layouts() -> None:
    kt = KernelTypes(byteorder="little", pointer_size=8, offsets=OFFSETS)
    proc = kt.struct("proc")
    assert (proc.source, proc.complete, proc.exact_size) == ("exported offsets", False, False)
    assert proc.size == 320  # the extent of what is known: p_comm ends at 300 + 20
    assert [m.name for m in proc.fields] == ["p_list", "p_pid", "p_comm"]
    assert proc.member("p_pid").type_name == "pid_t" and proc.member("p_pid").type.signed
    assert proc.member("p_comm").type_name == "char [20]"
    assert proc.offsetof("p_list.le_next") == 8 and proc.offsetof("p_list.le_prev") == 16
    assert proc.member("p_list.le_next").type_name == "struct proc *"
    with pytest.raises(MemberError) as exc:
        proc.member("p_ucred")
    assert str(exc.value) == "struct proc has no member p_ucred (exported offsets)"
    thread = kt.struct("thread")
    assert thread.offsetof("td_plist.tqe_next") == 16 and thread.offsetof("td_tid") == 40
    assert thread.member("td_tid").type_name == "lwpid_t"
    assert set(EXPORTED_OFFSETS) >= set(OFFSETS)
    with pytest.raises(KvmError) as kexc:
        kt.struct("ucred")
    assert str(kexc.value) == ("struct ucred: no type information "
                               "(no .SUNW_ctf, no DWARF, not among the exported offsets)")


def test_unreadable_ctf_falls_back_and_says_so(gcc_dwarf: DwarfFile) -> None:
    def broken() -> CtfFile:
        raise FormatError("CTF: bad magic 0x0000 (expected 0xcff1)")

    kt = KernelTypes(byteorder="little", pointer_size=8, ctf=broken, dwarf=[gcc_dwarf])
    assert kt.struct("proc").source == "DWARF"
    assert kt.sources[0].error == "CTF: bad magic 0x0000 (expected 0xcff1)"
    with pytest.raises(KvmError) as exc:
        kt.struct("nosuch")
    assert str(exc.value) == ("struct nosuch: no type information (CTF unreadable: CTF: bad "
                              "magic 0x0000 (expected 0xcff1), not in DWARF, no exported "
                              "offsets)")


def test_exported_offsets_are_read_through_the_descriptor(tmp_path: Path) -> None:
    """The symbol values live in kernel memory: the dump answers first, the file after."""
    obj = compile_object(tmp_path, ["-O0"])  # no DWARF; proc_off_p_pid in .rodata
    fd = os.open(obj, os.O_RDONLY)
    try:
        image = KernelImage(str(obj), fd)
        table = image.symtab()
        assert table is not None
        addr = table.value[table.indices(b"proc_off_p_pid")[0]]
        from_file, where = _read_exported_offsets(image, None, "little")
        assert where == "read from the kernel file"
        assert from_file["proc_off_p_pid"] == 104  # offsetof(struct proc, p_pid) on amd64
        memory = FakeMemory({addr: (4242).to_bytes(4, "little")})
        kt = KernelTypes.for_kernel(image, memory=memory)
        assert kt.struct("proc").offsetof("p_pid") == 4242
        assert kt.sources[-1].detail.endswith("read from the dump")
        failing = FakeMemory({})
        kt = KernelTypes.for_kernel(image, memory=failing)  # a fault: the file answers
        assert kt.struct("proc").offsetof("p_pid") == 104
        assert "read from the kernel file" in kt.sources[-1].detail
        image.close()
    finally:
        os.close(fd)


# --------------------------------------------------------------------------- views


class FakeMemory:
    """Kernel memory as a few blobs; anything else faults the way a dump does."""

    def __init__(self, blobs: dict[int, bytes]) -> None:
        self.blobs = blobs
        self.reads: list[tuple[int, int]] = []

    def read2(self, addr: int, size: int) -> bytes:
        self.reads.append((addr, size))
        for base, data in self.blobs.items():
            if base <= addr and addr + size <= base + len(data):
                return data[addr - base:addr - base + size]
        raise FaultError(f"invalid address (0x{addr:x})", addr)


def proc_bytes(**fields: Any) -> bytes:
    """A struct proc of proc_ctf() (little-endian)."""
    b = bytearray(104)
    struct.pack_into("<QQ", b, 0, fields.get("next", 0), fields.get("prev", 0))
    struct.pack_into("<i", b, 16, fields.get("pid", 0))
    comm = fields.get("comm", b"")
    b[20:20 + len(comm)] = comm
    b[40] = fields.get("flags", 0) | fields.get("more", 0) << 3
    struct.pack_into("<i", b, 44, fields.get("state", 0))
    struct.pack_into("<QQ", b, 48, fields.get("runtime", 0), 0)
    struct.pack_into("<q", b, 64, fields.get("b", 0))
    struct.pack_into("<QQ", b, 72, fields.get("pgrp", 0), fields.get("wmesg", 0))
    b[88] = fields.get("vtype", 0)
    b[89] = fields.get("after", 0)
    return bytes(b)


def test_view_decodes_and_dereferences() -> None:
    mem = FakeMemory({
        0x1000: proc_bytes(next=0x2000, prev=0x5000, pid=-7, comm=b"init", flags=5, more=6,
                           state=2, runtime=123456789, b=-2, pgrp=0x3000, wmesg=0x4000,
                           vtype=4, after=0xFF),
        0x2000: proc_bytes(pid=2, comm=b"kthread"),
        0x3000: struct.pack("<iiQ", 77, 0, 0),
        0x4000: b"biowait\0garbage".ljust(256, b"\xff"),
        0x5000: struct.pack("<Q", 0x1000),
    })
    kt = ctf_types(memory=mem)
    view = kt.view("proc", 0x1000)
    assert isinstance(view, StructView) and mem.reads == [(0x1000, 104)]  # one read
    assert (view.p_pid, view.p_comm, view.p_flags, view.p_more, view.p_state) == \
        (-7, b"init", 5, 6, 2)
    assert view["p_rux.rux_runtime"] == 123456789 and view.p_rux.rux_runtime == 123456789
    assert view.p_b == -2 and view.p_a == -2  # the anonymous union's members
    assert view.p_vtype == 4 and view.p_after == -1  # char is signed in this CTF
    assert len(mem.reads) == 1  # members decode from the cached bytes
    nxt = view.p_list.le_next
    assert isinstance(nxt, Pointer) and nxt == 0x2000 and nxt.address == 0x2000
    assert repr(nxt) == "(struct proc *)0x2000"
    other = nxt.deref()
    assert other.p_pid == 2 and other.p_comm == b"kthread" and other.address == 0x2000
    assert view.p_pgrp.deref().pg_id == 77
    assert view.p_wmesg.string() == b"biowait" and view.p_wmesg.deref() == ord("b")
    back = view.p_list.le_prev.deref()  # struct proc ** -> struct proc *
    assert isinstance(back, Pointer) and back == 0x1000 and back.deref().p_pid == -7
    with pytest.raises(KvmError) as kexc:
        view.p_data.deref()
    assert str(kexc.value) == "cannot dereference void *"
    mem.blobs[0x1000] = proc_bytes(wmesg=0, pgrp=0)
    again = kt.view("proc", 0x1000)
    with pytest.raises(FaultError, match="cannot dereference a NULL struct pgrp \\*"):
        again.p_pgrp.deref()
    with pytest.raises(FaultError, match="invalid address"):
        kt.view("proc", 0x9000)
    with pytest.raises(MemberError):
        _ = view.p_nope


def test_view_short_read_and_no_memory() -> None:
    class Short:
        def read2(self, addr: int, size: int) -> bytes:
            return bytes(size - 1)

    kt = ctf_types(memory=Short())
    with pytest.raises(FaultError) as exc:
        kt.view("proc", 0x10)
    assert str(exc.value) == "struct proc at 0x10: short read (103 of 104 bytes)"
    assert exc.value.address == 0x10
    with pytest.raises(KvmError, match="no kernel memory"):
        ctf_types().view("proc", 0x10)
    view = ctf_types().view_from("proc", proc_bytes(pid=9), 0x10)
    assert view.p_pid == 9
    with pytest.raises(KvmError, match="no kernel memory"):
        view.p_pgrp.deref()
    with pytest.raises(ValueError):
        ctf_types().view_from("proc", b"short", 0)
    huge = KernelTypes(byteorder="little", pointer_size=8, offsets={"pcb_size": 1 << 40},
                       memory=Short())
    with pytest.raises(FormatError) as fexc:  # a corrupt size is not read
        huge.view("pcb", 0)
    assert str(fexc.value) == f"struct pcb: {1 << 40} bytes is too large to read as one structure"


def test_big_endian_view() -> None:
    kt = ctf_types(3, ">")
    b = bytearray(104)
    struct.pack_into(">i", b, 16, -300)
    b[40] = 0b101_110_00  # MSB-first: p_flags bits 0-2 = 5, p_more bits 3-5 = 6
    struct.pack_into(">Q", b, 48, 0x0102030405060708)
    view = kt.view_from("proc", bytes(b), 0)
    assert (view.p_pid, view.p_flags, view.p_more) == (-300, 5, 6)
    assert view.p_rux.rux_runtime == 0x0102030405060708


# --------------------------------------------------------------------------- on a dump


@pytest.fixture(scope="module")
def dump(tmp_path_factory: pytest.TempPathFactory) -> SynthDump:
    return build_amd64(tmp_path_factory.mktemp("layout-dump"), seed=11, fmt="minidump-v3",
                       small_kva=True)


def var_ctf(version_len: int) -> CtfFile:
    a = Asm(version=3)
    char = a.integer("char", 1, 8, INT_SIGNED | INT_CHAR)
    ints = a.integer("int", 4, 32, INT_SIGNED)
    ulong = a.integer("unsigned long", 8, 64)
    text = a.array(char, ulong, version_len, version_len)
    a.struct_("version_buf", version_len, [("text", text, 0)])
    a.struct_("hz_buf", 4, [("hz", ints, 0)])
    ranges = a.array(ulong, ulong, 32, 256)
    a.struct_("dump_avail_buf", 256, [("ranges", ranges, 0)])
    return CtfFile.parse(a.build(), pointer_size=8)


def test_views_on_a_synthetic_dump(dump: SynthDump) -> None:
    t = dump.truth
    version = t.variables["version"]
    with pykvm.openfiles(dump.kernel, dump.core) as kd:
        kt = KernelTypes(byteorder="little", pointer_size=8, ctf=var_ctf(len(version)),
                         memory=kd)
        v = kt.view("version_buf", t.symbols["version"])
        assert v.text == version.split(b"\0")[0] and v.text.startswith(b"FreeBSD")
        assert v.raw("text") == version and v.data == version
        assert kt.view("hz_buf", t.symbols["hz"]).hz == \
            int.from_bytes(t.variables["hz"], "little", signed=True)
        ranges = kt.view("dump_avail_buf", t.symbols["dump_avail"]).ranges
        assert ranges == tuple(x for (x,) in struct.iter_unpack("<Q", t.variables["dump_avail"]))
        with pytest.raises(FaultError) as exc:
            kt.view("hz_buf", t.holes[0])
        assert str(exc.value) == kd.geterr()  # libkvm's text, from the descriptor


def test_kvm_types_and_attach_debug(dump: SynthDump, tmp_path: Path) -> None:
    t = dump.truth
    n = len(t.variables["version"])
    src = tmp_path / "views.c"
    src.write_text(f"struct version_view {{ char text[{n}]; }} vv;\n"
                   "struct hz_view { union { int hz; unsigned char low; }; } hv;\n")
    debug = compile_object(tmp_path, ["-g"], src, "kernel.debug")
    with pykvm.openfiles(dump.kernel, dump.core) as kd:
        with pytest.raises(KvmError) as exc:
            kd.types.struct("proc")
        assert str(exc.value) == ("struct proc: no type information "
                                  "(no .SUNW_ctf, no DWARF, no exported offsets)")
        assert kd.types.find_struct("version_view") is None
        kd.attach_debug(debug)  # after kd.types exists: the new source is asked too
        view = kd.struct("version_view", t.symbols["version"])
        assert view.text == t.variables["version"].split(b"\0")[0]
        hz = kd.struct("hz_view", t.symbols["hz"])
        assert hz.hz == int.from_bytes(t.variables["hz"], "little", signed=True)
        assert hz.low == t.variables["hz"][0]
        assert kd.types.sources[1].name == "DWARF" and kd.types.sources[1].detail == str(debug)
        with pytest.raises(KvmError) as exc:
            kd.types.struct("proc")
        assert str(exc.value) == ("struct proc: no type information "
                                  "(no .SUNW_ctf, not in DWARF, no exported offsets)")
        with pytest.raises(FaultError):
            kd.struct("hz_view", t.holes[0])
        with pytest.raises(KvmError) as kexc:
            kd.attach_debug(tmp_path / "missing.debug")
        assert str(kexc.value) == f"{tmp_path / 'missing.debug'}: No such file or directory"
        with pytest.raises(FormatError) as fexc:
            kd.attach_debug(src)
        assert str(fexc.value) == f"{src}: not an ELF file"
        with pytest.raises(FormatError) as fexc:
            kd.attach_debug(dump.kernel)
        assert str(fexc.value) == (f"{dump.kernel}: no DWARF debugging information "
                                   "(no .debug_info section)")
        kd2 = pykvm.openfiles(dump.kernel, dump.core)
        kd2.attach_debug(debug)  # before kd.types exists
        assert kd2.struct("hz_view", t.symbols["hz"]).hz == hz.hz
        kd2.close()
    with pytest.raises(ValueError):
        _ = kd.types


def test_bookkeeping_reads_leave_the_error_buffer_alone(
        dump: SynthDump, capsys: pytest.CaptureFixture[str]) -> None:
    """The exported offsets are read through the descriptor without touching what
    kvm_geterr(3) reports or printing the program's messages."""
    from pykvm.kvm import _QuietReader

    t = dump.truth
    with pykvm.open(str(dump.kernel), str(dump.core), None, 0, "prog") as kd:
        with pytest.raises(FaultError):
            kd.read(t.holes[0], 4)
        before, printed = kd.geterr(), capsys.readouterr().err
        assert before and printed.startswith("prog: ")
        quiet = _QuietReader(kd)
        assert quiet.read2(t.symbols["hz"], 4) == t.variables["hz"]
        with pytest.raises(FaultError) as exc:
            quiet.read2(t.holes[1], 4)
        assert str(exc.value) == f"invalid address (0x{t.holes[1]:x})"
        assert kd.geterr() == before and capsys.readouterr().err == ""
