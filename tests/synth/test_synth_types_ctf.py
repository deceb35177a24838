"""The CTF writer: hand-worked bytes of a tiny container, v2/v3 record shapes, compression,
and a walk of whole synthetic kernels by a small CTF decoder written here from
sys/sys/ctf.h (independent of pykvm's reader), checked against the ground truth."""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

import pytest

from pykvm.synth.cmodel import (
    AMD64,
    I386,
    POWERPC,
    POWERPC64,
    Field,
    Target,
    TypeSet,
    TypeSpace,
    Variable,
)
from pykvm.synth.ctfwriter import CtfFunction, CtfWriter, ctf_base_name, write_ctf
from pykvm.synth.kerneltypes import kernel_types


def tiny(target: Target = AMD64) -> TypeSet:
    """int (ID 1), struct pt { int x; int y; } (ID 2), struct pt * (ID 3)."""
    sp = TypeSpace(target)
    i = sp.base("int")
    pt = sp.define(sp.struct("pt"), [Field("x", i), Field("y", i)])
    sp.ptr(pt)
    return TypeSet.from_space(sp, variables=[Variable("origin", pt)])


# strings: "\0" "L\0" "int\0" "pt\0" "x\0" "y\0" -> offsets 1, 3, 7, 10, 12; length 14
TINY_STRTAB = b"\0L\0int\0pt\0x\0y\0"


def test_tiny_v3_little_endian_bytes() -> None:
    data = write_ctf(tiny(), version=3, compress=False, symbols=["origin"], label="L")
    header = struct.unpack_from("<HBBIIIIIIII", data)
    #        magic  ver flags parlabel parname lbloff objtoff funcoff typeoff stroff strlen
    assert header == (0xCFF1, 3, 0, 0, 0, 0, 8, 12, 12, 76, 14)
    assert data[:4] == b"\xf1\xcf\x03\x00"
    body = data[36:]
    assert body[0:8] == struct.pack("<II", 1, 3)  # label "L" covers types 1..3
    assert body[8:12] == struct.pack("<I", 2)  # origin: struct pt
    # int: name 3, INTEGER root vlen 1 (1<<26 | 1<<25 | 1), size 4, SIGNED 32 bits
    assert body[12:28] == struct.pack("<IIII", 3, 0x06000001, 4, 0x01000020)
    # struct pt: name 7, STRUCT root vlen 2, size 8; members (name, type, bit offset)
    assert body[28:40] == struct.pack("<III", 7, 0x1A000002, 8)
    assert body[40:64] == struct.pack("<IIIIII", 10, 1, 0, 12, 1, 32)
    # struct pt *: unnamed, POINTER, not root, type 2
    assert body[64:76] == struct.pack("<III", 0, 0x0C000000, 2)
    assert body[76:] == TINY_STRTAB
    assert len(data) == 36 + 76 + 14


def test_tiny_v2_big_endian_bytes() -> None:
    data = write_ctf(tiny(POWERPC), version=2, compress=False, symbols=["origin"], label="L")
    assert data[:4] == b"\xcf\xf1\x02\x00"
    header = struct.unpack_from(">HBBIIIIIIII", data)
    # objects are 2 bytes: 8..10; the function section is empty; types pad to 12
    assert header == (0xCFF1, 2, 0, 0, 0, 0, 8, 10, 12, 56, 14)
    body = data[36:]
    assert body[8:12] == b"\x00\x02\x00\x00"
    assert body[12:24] == struct.pack(">IHHI", 3, 0x0C01, 4, 0x01000020)
    assert body[24:32] == struct.pack(">IHH", 7, 0x3402, 8)
    assert body[32:48] == struct.pack(">IHHIHH", 10, 1, 0, 12, 1, 32)
    assert body[48:56] == struct.pack(">IHH", 0, 0x1800, 2)
    assert body[56:] == TINY_STRTAB


def test_header_parent_and_child_ids() -> None:
    data = write_ctf(tiny(), version=2, compress=False, parent_name="kernel",
                     parent_label="PARENT")
    h = struct.unpack_from("<HBBIIIIIIII", data)
    strtab = data[36 + h[9]:]
    assert strtab[h[3]:].split(b"\0")[0] == b"PARENT"
    assert strtab[h[4]:].split(b"\0")[0] == b"kernel"
    body = data[36:]
    # the pointer (last record) refers to struct pt through a child-bit ID
    assert struct.unpack_from("<H", body, h[9] - 2)[0] == 0x8002


def test_function_section_records() -> None:
    ts = tiny()
    i = ts.types[0]
    pt_ptr = ts.types[2]
    for version, fmt in ((2, "<H"), (3, "<I")):
        w = CtfWriter(ts, version=version)
        data = w.write(compress=False, functions=[CtfFunction(i, [pt_ptr], varargs=True), None])
        h = struct.unpack_from("<HBBIIIIIIII", data)
        size = struct.calcsize(fmt)
        words = [struct.unpack_from(fmt, data, 36 + h[7] + k * size)[0] for k in range(5)]
        info = (5 << 11 | 1 << 10 | 2) if version == 2 else (5 << 26 | 1 << 25 | 2)
        assert words == [info, 1, 3, 0, 0]  # info, returns int, (struct pt *, ...), pad
        assert h[8] == (h[7] + 5 * size + 3) // 4 * 4


def test_compression_flag_and_body() -> None:
    ts = kernel_types(7, AMD64)
    for version in (2, 3):
        plain = write_ctf(ts, version=version, compress=False)
        packed = write_ctf(ts, version=version, compress=True)
        assert plain[3] == 0 and packed[3] == 1
        assert packed[:3] == plain[:3] and packed[4:36] == plain[4:36]
        assert zlib.decompress(packed[36:]) == plain[36:]
        assert len(packed) < len(plain)
        h = struct.unpack_from("<HBBIIIIIIII", plain)
        assert len(plain) - 36 == h[9] + h[10]


def test_determinism_per_seed() -> None:
    a = write_ctf(kernel_types(3, AMD64), version=3)
    b = write_ctf(kernel_types(3, AMD64), version=3)
    assert a == b
    assert write_ctf(kernel_types(4, AMD64), version=3) != a


def test_base_name_normalisation() -> None:
    assert ctf_base_name("signed char") == ("char", True, True)
    assert ctf_base_name("char") == ("char", True, True)
    assert ctf_base_name("unsigned char") == ("unsigned char", False, True)
    assert ctf_base_name("long unsigned int") == ("unsigned long", False, False)
    assert ctf_base_name("long long int") == ("long long", True, False)
    assert ctf_base_name("short unsigned int") == ("unsigned short", False, False)
    assert ctf_base_name("_Bool") is None


# -- an independent decoder (sys/sys/ctf.h), just enough to check the writer ------------


@dataclass
class Rec:
    kind: int
    name: str
    isroot: bool
    vlen: int
    size_or_type: int
    size: int  # decoded (long form applied)
    data: bytes  # the vlen data
    long_form: bool


class MiniCtf:
    def __init__(self, blob: bytes) -> None:
        e = "<" if blob[:2] == b"\xf1\xcf" else ">"
        assert struct.unpack_from(e + "H", blob)[0] == 0xCFF1
        self.e = e
        (_, self.version, flags, _, _, self.lbloff, self.objtoff, self.funcoff, self.typeoff,
         self.stroff, self.strlen) = struct.unpack_from(e + "HBBIIIIIIII", blob)
        body = zlib.decompress(blob[36:]) if flags & 1 else blob[36:]
        assert len(body) == self.stroff + self.strlen
        self.body = body
        v3 = self.version == 3
        self.idsz = 4 if v3 else 2
        self.recs: dict[int, Rec] = {}
        off, tid = self.typeoff, 1
        sfmt = e + ("III" if v3 else "IHH")
        while off < self.stroff:
            name, info, st = struct.unpack_from(sfmt, body, off)
            if v3:
                kind, isroot, vlen = info >> 26, bool(info & 1 << 25), info & 0xFFFFFF
                sent = 0xFFFFFFFF
            else:
                kind, isroot, vlen = info >> 11, bool(info & 1 << 10), info & 0x3FF
                sent = 0xFFFF
            off += struct.calcsize(sfmt)
            size, long_form = st, False
            if st == sent and kind not in (3, 9, 10, 11, 12, 13, 5):
                hi, lo = struct.unpack_from(e + "II", body, off)
                size, long_form = hi << 32 | lo, True
                off += 8
            if kind in (1, 2):
                n = 4
            elif kind == 4:
                n = 12 if v3 else 8
            elif kind == 5:
                n = vlen * self.idsz + (0 if v3 or vlen % 2 == 0 else 2)
            elif kind in (6, 7):
                big = size >= (1 << 29 if v3 else 8192)
                n = vlen * (16 if big else (12 if v3 else 8))
            elif kind == 8:
                n = vlen * 8
            else:
                n = 0
            self.recs[tid] = Rec(kind, self.string(name), isroot, vlen, st, size,
                                 body[off:off + n], long_form)
            off += n
            tid += 1
        assert off == self.stroff

    def string(self, ref: int) -> str:
        assert ref >> 31 == 0
        start = self.stroff + ref
        return self.body[start:self.body.index(b"\0", start)].decode()

    def members(self, rec: Rec) -> list[tuple[str, int, int]]:
        v3, e = self.version == 3, self.e
        big = rec.size >= (1 << 29 if v3 else 8192)
        out = []
        for k in range(rec.vlen):
            if v3 and not big:
                n, t, o = struct.unpack_from(e + "III", rec.data, 12 * k)
            elif v3:
                n, t, hi, lo = struct.unpack_from(e + "IIII", rec.data, 16 * k)
                o = hi << 32 | lo
            elif not big:
                n, t, o = struct.unpack_from(e + "IHH", rec.data, 8 * k)
            else:
                n, t, _, hi, lo = struct.unpack_from(e + "IHHII", rec.data, 16 * k)
                o = hi << 32 | lo
            out.append((self.string(n), t, o))
        return out

    def resolve(self, tid: int) -> Rec:
        rec = self.recs[tid]
        while rec.kind in (10, 11, 12, 13):
            rec = self.recs[rec.size_or_type]
        return rec

    def sizeof(self, tid: int, ptr_size: int) -> int:
        rec = self.resolve(tid)
        if rec.kind == 3:
            return ptr_size
        if rec.kind == 4:
            elem, _, n = struct.unpack_from(self.e + ("III" if self.version == 3 else "HHI"),
                                            rec.data)
            assert rec.size == n * self.sizeof(elem, ptr_size)
            return rec.size
        return rec.size

    def find(self, kind: int, name: str) -> Rec:
        found = [r for r in self.recs.values() if r.kind == kind and r.name == name]
        assert len(found) == 1, (kind, name, len(found))
        return found[0]


@pytest.mark.parametrize("target", [AMD64, I386, POWERPC, POWERPC64], ids=lambda t: t.name)
@pytest.mark.parametrize("version", [2, 3])
def test_whole_kernel_walk_matches_truth(target: Target, version: int) -> None:
    for seed, era in ((1, "12"), (2, "15")):
        ts = kernel_types(seed, target, era=era)
        tr = ts.truth()
        names = [v.name for v in ts.variables]
        blob = write_ctf(ts, version=version, compress=True, symbols=names, label="FreeBSD")
        ctf = MiniCtf(blob)
        assert ctf.version == version
        psize = ts.target.ptr_size
        for key, st in tr.structs.items():
            kind = 7 if key.startswith("union ") else 6
            rec = ctf.find(kind, st.name)
            assert rec.isroot and rec.size == st.size, key
            got = ctf.members(rec)
            assert [(n, o) for n, _, o in got] == [(m.name, m.bit_offset) for m in st.members]
            for (_, tid, _), m in zip(got, st.members, strict=True):
                assert ctf.sizeof(tid, psize) == m.size, (key, m.name)
                if m.bit_size is not None:
                    member_rec = ctf.recs[tid]
                    if member_rec.kind == 1:  # narrowed integer copy
                        enc = struct.unpack_from(ctf.e + "I", member_rec.data)[0]
                        assert enc & 0xFFFF == m.bit_size and not member_rec.isroot
                        assert member_rec.name.endswith(" bitfield") == (version == 3)
                    else:  # enum bit-fields keep the enum
                        assert ctf.resolve(tid).kind == 8
        # enums by name and value
        for ename, values in tr.enums.items():
            rec = ctf.find(8, ename)
            got_values = {ctf.string(n): v for n, v in struct.iter_unpack(ctf.e + "Ii", rec.data)}
            assert got_values == dict(values)
        # the object section maps each listed symbol to its variable's type
        for k, var in enumerate(ts.variables):
            off = ctf.objtoff + k * ctf.idsz
            tid = struct.unpack_from(ctf.e + ("I" if version == 3 else "H"), ctf.body, off)[0]
            assert ctf.recs[tid].isroot
            if var.name == "allproc":
                assert ctf.recs[tid].kind == 6 and ctf.recs[tid].name == "proclist"
        assert ctf.funcoff == ctf.objtoff + len(names) * ctf.idsz + (
            (len(names) * ctf.idsz) % 2)
        # forwards: FORWARD records with type 0 and no root flag
        fwd = ctf.find(9, "filedesc")
        assert fwd.size_or_type == 0 and not fwd.isroot


def test_record_shapes_v2_versus_v3() -> None:
    ts = kernel_types(6, AMD64, era="12")  # amd64 era 12: struct pcpu __pcpu[256] (1 MiB)
    large = ts.truth().size("synth_large")
    assert large >= 8192
    for version in (2, 3):
        ctf = MiniCtf(write_ctf(ts, version=version, compress=False))
        rec = ctf.find(6, "synth_large")
        # v2 writes >= 8192-byte aggregates with 16-byte ctf_lmember records
        per_member = len(rec.data) // rec.vlen
        assert per_member == {2: 16, 3: 12}[version]
        assert [o for _, _, o in ctf.members(rec)][-1] == (large - 8) * 8
        pcpu_arrays = [r for r in ctf.recs.values() if r.kind == 4 and r.size == 256 * 4096]
        assert len(pcpu_arrays) == 1
        # a 1 MiB array needs the long form in v2 only
        assert pcpu_arrays[0].long_form == (version == 2)
        assert len(pcpu_arrays[0].data) == {2: 8, 3: 12}[version]
        # void is an INTEGER of size 0 and width 0; arrays index through "long"
        void = ctf.find(1, "void")
        assert void.size == 0 and struct.unpack_from(ctf.e + "I", void.data)[0] == 0x01000000
        idx = struct.unpack_from(ctf.e + ("III" if version == 3 else "HHI"),
                                 pcpu_arrays[0].data)[1]
        assert ctf.recs[idx].name == "long"
        # "signed char" is recorded as "char" (die_base_name_parse)
        assert not [r for r in ctf.recs.values() if r.name == "signed char"]
