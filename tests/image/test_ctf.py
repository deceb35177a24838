"""pykvm.image.ctf on hand-assembled CTF (kernel-data.md 11).

The containers are packed in the tests (ctf_asm.py, straight from the spec's
record tables); every expected offset, size and value below was worked out by
hand from those tables and is written next to the assertion.
"""

from __future__ import annotations

import struct
import zlib

import pytest
from ctf_asm import (
    INT_CHAR,
    INT_SIGNED,
    K_CONST,
    K_ENUM,
    K_FLOAT,
    K_INTEGER,
    K_POINTER,
    K_RESTRICT,
    K_STRUCT,
    K_TYPEDEF,
    K_UNION,
    K_VOLATILE,
    STT_FUNC,
    STT_OBJECT,
    Asm,
    header,
)

from pykvm.errors import FormatError
from pykvm.image.ctf import CtfFile, Kind, Member

SHN_ABS = 0xFFF1
GLOBAL_OBJECT = 1 << 4 | STT_OBJECT  # st_info of a global STT_OBJECT


def small(version: int, endian: str) -> Asm:
    """The small container every basic test decodes (ids on the left).

    Record lengths (bytes) follow spec 11.7: fixed part 8 (v2) / 12 (v3); vlen
    data: INTEGER/FLOAT 4, ARRAY 8/12, ENUM 8 each, FUNCTION 2 each + pad to 4
    (v2) / 4 each (v3), members 8 (v2) / 12 (v3).
    """
    a = Asm(version, endian)
    assert a.integer("int", 4, 32, INT_SIGNED) == 1           # v2 @0   v3 @0
    assert a.integer("long", 8, 64, INT_SIGNED) == 2          # v2 @12  v3 @16
    assert a.integer("unsigned int", 4, 32) == 3              # v2 @24  v3 @32
    assert a.integer("unsigned int", 4, 3, root=False) == 4   # v2 @36  v3 @48 (bit-field)
    assert a.ref(K_TYPEDEF, 1, "pid_t") == 5                  # v2 @48  v3 @64
    assert a.integer("char", 1, 8, INT_SIGNED | INT_CHAR) == 6  # v2 @56  v3 @76
    assert a.array(6, 2, 20, 20) == 7                         # v2 @68  v3 @92  char[20]
    assert a.enum("p_states", 4, [("PRS_NEW", 0), ("PRS_NORMAL", 1), ("PRS_ZOMBIE", 2),
                                  ("PRS_NEG", -5)]) == 8      # v2 @84  v3 @116
    assert a.forward("vnode") == 9                            # v2 @124 v3 @160
    assert a.ref(K_POINTER, 9) == 10                          # v2 @132 v3 @172
    assert a.union("", 8, [("u_a", 2, 0), ("u_b", 1, 0)]) == 11  # v2 @140 v3 @184
    assert a.struct_("proc", 80, [                            # v2 @164 v3 @220
        ("p_pid", 5, 0),         # byte 0
        ("p_bits", 4, 32),       # byte 4, 3-bit field
        ("", 11, 64),            # byte 8: anonymous union {u_a, u_b}
        ("p_comm", 7, 128),      # byte 16, char[20]
        ("p_state", 8, 320),     # byte 40
        ("p_vp", 10, 384),       # byte 48
        ("p_next", 13, 448),     # byte 56
        ("p_sigqueue", 19, 512),  # byte 64
    ]) == 12
    assert a.ref(K_POINTER, 12) == 13                         # v2 @236 v3 @328
    assert a.ref(K_CONST, 5) == 14                            # v2 @244 v3 @340
    assert a.ref(K_VOLATILE, 14) == 15                        # v2 @252 v3 @352
    assert a.function(1, [13, 2, 0]) == 16                    # v2 @260 v3 @364 (variadic)
    assert a.ref(K_RESTRICT, 13) == 17                        # v2 @276 v3 @388
    assert a.integer("double", 8, 64, 2, kind=K_FLOAT) == 18  # v2 @284 v3 @400
    assert a.struct_("sigqueue", 16, [("sq_flags", 1, 0), ("sq_list", 2, 64)]) == 19
    #                                                           v2 @296 v3 @416
    assert a.ref(K_TYPEDEF, 12, "proc_t") == 20               # v2 @320 v3 @452
    return a                                                  # end: v2 328, v3 464


RECORD_OFFSETS = {
    2: [0, 12, 24, 36, 48, 56, 68, 84, 124, 132, 140, 164, 236, 244, 252, 260, 276, 284,
        296, 320],
    3: [0, 16, 32, 48, 64, 76, 92, 116, 160, 172, 184, 220, 328, 340, 352, 364, 388, 400,
        416, 452],
}
TYPE_SECTION_SIZE = {2: 328, 3: 464}

#: ELF symbols in table order: (name, st_info, st_shndx, st_value).
SYMBOLS: list[tuple[str | bytes | None, int, int, int]] = [
    (None, 0, 0, 0),                    # symbol 0: st_name == 0, no record
    ("allproc", GLOBAL_OBJECT, 3, 0x1000),  # object entry 0 -> 13
    ("undef", GLOBAL_OBJECT, 0, 0),     # SHN_UNDEF: no record
    ("func", STT_FUNC, 1, 0x2000),      # a function: no object record
    ("_START_", GLOBAL_OBJECT, 3, 0x10),  # skipped by name
    ("absz", GLOBAL_OBJECT, SHN_ABS, 0),  # SHN_ABS with value 0: no record
    (b"abs1", GLOBAL_OBJECT, SHN_ABS, 5),  # object entry 1 -> 1
    ("nprocs", GLOBAL_OBJECT, 3, 0x1010),  # object entry 2 -> 1
    ("notype", GLOBAL_OBJECT, 3, 0x1020),  # object entry 3 -> 0 (no type)
    ("late", GLOBAL_OBJECT, 3, 0x1030),  # cursor reached cth_funcoff: no record
]
OBJECTS = [13, 1, 1, 0]


def build_small(version: int, endian: str, compress: bool = False) -> bytes:
    a = small(version, endian)
    # one v2 function record (info, return, one arg) rounded to 4 bytes; v3 likewise
    funcs = (a.p("HHHH", 5 << 11 | 1, 1, 13, 0) if version == 2
             else a.p("III", 5 << 26 | 1, 1, 13))
    return a.build(compress=compress, labels=[("base", 20)], objects=OBJECTS, funcs=funcs)


CASES = [(v, e, c) for v in (2, 3) for e in ("<", ">") for c in (False, True)]
IDS = [f"v{v}-{'le' if e == '<' else 'be'}{'-z' if c else ''}" for v, e, c in CASES]


@pytest.fixture(params=CASES, ids=IDS)
def case(request: pytest.FixtureRequest) -> tuple[int, str, bool]:
    return request.param  # type: ignore[no-any-return]


def open_small(version: int, endian: str, compress: bool, **kw: object) -> CtfFile:
    data = build_small(version, endian, compress)
    return CtfFile.parse(data, endian="little" if endian == "<" else "big",
                         symbols=SYMBOLS, **kw)  # type: ignore[arg-type]


# --------------------------------------------------------------------- header
def test_header_and_index(case: tuple[int, str, bool]) -> None:
    v, e, c = case
    ctf = open_small(v, e, c)
    assert ctf.version == v
    assert ctf.endian == ("little" if e == "<" else "big")
    assert ctf.compressed is c
    assert ctf.ntypes == 20 and len(ctf) == 20
    assert not ctf.is_child and ctf.parent_name is None and ctf.parent_label is None
    assert list(ctf.ids()) == list(range(1, 21))
    # the one-pass index: record offsets within the type section, worked out above
    assert [4 * r for r in ctf._rec] == RECORD_OFFSETS[v]
    assert [ctf.kind(t) for t in (1, 5, 7, 8, 9, 10, 11, 12, 14, 15, 16, 17, 18)] == [
        Kind.INTEGER, Kind.TYPEDEF, Kind.ARRAY, Kind.ENUM, Kind.FORWARD, Kind.POINTER,
        Kind.UNION, Kind.STRUCT, Kind.CONST, Kind.VOLATILE, Kind.FUNCTION, Kind.RESTRICT,
        Kind.FLOAT]
    assert ctf.labels == (("base", 20),)


def test_endian_detected_from_magic(case: tuple[int, str, bool]) -> None:
    v, e, c = case
    ctf = CtfFile.parse(build_small(v, e, c))
    assert ctf.endian == ("little" if e == "<" else "big")
    assert ctf.sizeof(ctf.lookup("struct proc") or 0) == 80


def test_wrong_endian_is_refused() -> None:
    data = build_small(3, "<")
    with pytest.raises(FormatError, match="CTF: data is little-endian but the kernel is big"):
        CtfFile.parse(data, endian="big")
    with pytest.raises(FormatError, match="data is big-endian"):
        CtfFile.parse(build_small(2, ">"), endian="<")


# ---------------------------------------------------------------------- types
def test_base_types(case: tuple[int, str, bool]) -> None:
    ctf = open_small(*case)
    t = ctf.type(1)
    assert (t.kind, t.name, t.size, t.isroot) == (Kind.INTEGER, "int", 4, True)
    assert t.encoding == (INT_SIGNED, 0, 32) and t.encoding is not None and t.encoding.signed
    t = ctf.type(3)
    assert t.encoding == (0, 0, 32) and t.encoding is not None and not t.encoding.signed
    t = ctf.type(4)  # the bit-field copy: non-root, 3 bits
    assert (t.name, t.isroot, t.size, t.encoding) == ("unsigned int", False, 4, (0, 0, 3))
    assert ctf.type(6).encoding == (INT_SIGNED | INT_CHAR, 0, 8)
    t = ctf.type(18)
    assert (t.kind, t.name, t.size, t.encoding) == (Kind.FLOAT, "double", 8, (2, 0, 64))


def test_refs_arrays_enums_functions(case: tuple[int, str, bool]) -> None:
    ctf = open_small(*case)
    assert ctf.type(5).ref == 1 and ctf.type(5).name == "pid_t"
    assert ctf.type(10).ref == 9 and ctf.type(10).name == ""
    assert ctf.type(14).ref == 5 and ctf.type(15).ref == 14 and ctf.type(17).ref == 13
    arr = ctf.type(7)
    assert arr.array == (6, 2, 20) and arr.size == 20
    en = ctf.type(8)
    assert en.name == "p_states" and en.size == 4
    assert en.enumerators == (("PRS_NEW", 0), ("PRS_NORMAL", 1), ("PRS_ZOMBIE", 2),
                              ("PRS_NEG", -5))
    fn = ctf.type(16)  # int (*)(struct proc *, long, ...)
    assert (fn.kind, fn.ref, fn.args, fn.variadic, fn.vlen) == (Kind.FUNCTION, 1, (13, 2),
                                                               True, 3)
    fw = ctf.type(9)
    assert (fw.kind, fw.name, fw.forward_kind) == (Kind.FORWARD, "vnode", Kind.STRUCT)


def test_struct_members_raw_and_flattened(case: tuple[int, str, bool]) -> None:
    ctf = open_small(*case)
    proc = ctf.type(12)
    assert (proc.name, proc.size, proc.vlen) == ("proc", 80, 8)
    assert proc.members == (
        ("p_pid", 0, 5), ("p_bits", 32, 4), ("", 64, 11), ("p_comm", 128, 7),
        ("p_state", 320, 8), ("p_vp", 384, 10), ("p_next", 448, 13), ("p_sigqueue", 512, 19))
    # the anonymous union at bit 64 contributes u_a and u_b at bit 64
    assert ctf.members(12) == [
        ("p_pid", 0, 5), ("p_bits", 32, 4), ("u_a", 64, 2), ("u_b", 64, 1),
        ("p_comm", 128, 7), ("p_state", 320, 8), ("p_vp", 384, 10), ("p_next", 448, 13),
        ("p_sigqueue", 512, 19)]
    assert ctf.members(20) == ctf.members(12)  # through the typedef proc_t
    assert ctf.members(11) == [("u_a", 0, 2), ("u_b", 0, 1)]
    assert ctf.member(12, "u_b") == Member("u_b", 64, 1)
    assert ctf.member(12, "p_vp") == ("p_vp", 384, 10)
    # p_sigqueue (bit 512) . sq_list (bit 64): 576 bits = byte 72, type long
    assert ctf.member(20, "p_sigqueue.sq_list") == ("p_sigqueue.sq_list", 576, 2)
    assert ctf.member(12, "p_bits") == ("p_bits", 32, 4)
    assert ctf.member(12, "nope") is None
    assert ctf.member(12, "p_next.p_pid") is None  # a pointer has no members
    assert ctf.member(12, "p_sigqueue.nope") is None
    with pytest.raises(FormatError, match=r"CTF: type 5 \(int\) is not a struct or union"):
        ctf.members(5)
    with pytest.raises(FormatError, match="not a struct or union"):
        ctf.member(1, "x")


def test_resolve_and_sizeof(case: tuple[int, str, bool]) -> None:
    ctf = open_small(*case, pointer_size=8)
    assert ctf.resolve(15) == 1  # volatile -> const -> pid_t -> int
    assert ctf.resolve(20) == 12
    assert ctf.resolve(13) == 13  # a pointer is not followed
    sizes = {1: 4, 2: 8, 5: 4, 6: 1, 7: 20, 8: 4, 10: 8, 11: 8, 12: 80, 13: 8, 14: 4, 15: 4,
             16: 0, 17: 8, 18: 8, 19: 16, 20: 80}
    assert {t: ctf.sizeof(t) for t in sizes} == sizes
    with pytest.raises(FormatError, match=r"CTF: type 9 \(struct vnode\) is a forward"):
        ctf.sizeof(9)


def test_pointer_size_from_long_or_given(case: tuple[int, str, bool]) -> None:
    assert open_small(*case).pointer_size == 8  # long is 8 bytes
    ctf = open_small(*case, pointer_size=4)
    assert ctf.sizeof(13) == 4 and ctf.sizeof(17) == 4
    with pytest.raises(ValueError):
        open_small(*case, pointer_size=5)


def test_lookup(case: tuple[int, str, bool]) -> None:
    ctf = open_small(*case)
    assert ctf.lookup("struct proc") == 12
    assert ctf.lookup("  struct   proc ") == 12
    assert ctf.lookup("struct proc *") == 13
    assert ctf.lookup("struct proc*") == 13
    assert ctf.lookup("proc_t *") == 13  # via the resolved struct, as libctf does
    assert ctf.lookup("struct vnode") == 9  # forward only
    assert ctf.lookup("struct vnode *") == 10
    assert ctf.lookup("struct sigqueue") == 19
    assert ctf.lookup("enum p_states") == 8
    assert ctf.lookup("pid_t") == 5
    assert ctf.lookup("const pid_t") == 5  # qualifier keywords are skipped
    assert ctf.lookup("int") == 1
    assert ctf.lookup("unsigned int") == 3  # the root one, not the bit-field copy
    assert ctf.lookup("long") == 2 and ctf.lookup("double") == 18
    assert ctf.lookup("proc") is None  # a tag is not an ordinary name
    assert ctf.lookup("union proc") is None and ctf.lookup("struct") is None
    assert ctf.lookup("int *") is None  # no pointer to int in this container
    assert ctf.lookup("") is None


def test_object_types(case: tuple[int, str, bool]) -> None:
    ctf = open_small(*case)
    assert ctf.object_type("allproc") == 13
    assert ctf.object_type("abs1") == 1
    assert ctf.object_type("nprocs") == 1
    for name in ("notype", "late", "absz", "undef", "func", "_START_", "missing"):
        assert ctf.object_type(name) is None, name
    assert ctf.object_type_at(1) == 13 and ctf.object_type_at(7) == 1
    assert ctf.object_type_at(0) is None


def test_object_types_need_symbols() -> None:
    ctf = CtfFile.parse(build_small(3, "<"))
    with pytest.raises(FormatError, match="CTF: no symbol table given"):
        ctf.object_type("allproc")
    ctf.set_symbols([("allproc", STT_OBJECT, 1)])  # three-field entries are accepted
    assert ctf.object_type("allproc") == 13


def test_objects_without_st_value_keep_abs_symbols() -> None:
    # Without st_value, an SHN_ABS object is taken to have a nonzero value.
    ctf = CtfFile.parse(build_small(2, "<"),
                        symbols=[("absz", STT_OBJECT, SHN_ABS), ("x", STT_OBJECT, 2)])
    assert ctf.object_type("absz") == 13 and ctf.object_type("x") == 1


# ------------------------------------------------------------- large records
@pytest.mark.parametrize("endian", ["<", ">"])
def test_v2_large_sizes_and_members(endian: str) -> None:
    a = Asm(2, endian)
    assert a.integer("int", 4, 32, INT_SIGNED) == 1                  # @0, 12 bytes
    # struct pcpu __pcpu[256]-like array of 1 MiB: long form (16 + 8 bytes)
    assert a.struct_("pcpu", 4096, [("pc_cpuid", 1, 0)]) == 2        # @12, 8 + 8
    assert a.array(2, 1, 256, 256 * 4096) == 3                      # @28, 16 + 8
    # size 8191: short form, small members
    assert a.struct_("s8191", 8191, [("a", 1, 0), ("z", 1, 8191 * 8 - 32)]) == 4  # @52
    # size 8192: short form, large members (16 bytes each)
    assert a.struct_("s8192", 8192, [("a", 1, 0), ("z", 1, 65504)]) == 5  # @76, 8 + 32
    # size 2^33: long form + large members; a member at bit 2^34 needs offset-hi
    assert a.struct_("huge", 1 << 33, [("a", 1, 0), ("far", 1, 1 << 34),
                                       ("farther", 1, (1 << 34) + 32)]) == 6  # @116, 16 + 48
    assert a.union("u", 70000, [("x", 1, 0), ("y", 6, 0)]) == 7     # @180, 16 + 32
    assert a.ref(K_TYPEDEF, 7, "after") == 8                        # @228 (walk in step)
    ctf = CtfFile.parse(a.build(), pointer_size=8)
    assert [4 * r for r in ctf._rec] == [0, 12, 28, 52, 76, 116, 180, 228]
    assert ctf.type(3).size == 1 << 20 and ctf.sizeof(3) == 1 << 20
    assert ctf.type(3).array == (2, 1, 256)
    assert ctf.members(4) == [("a", 0, 1), ("z", 65496, 1)]
    assert ctf.members(5) == [("a", 0, 1), ("z", 65504, 1)]
    assert ctf.sizeof(6) == 1 << 33
    assert ctf.members(6) == [("a", 0, 1), ("far", 1 << 34, 1), ("farther", (1 << 34) + 32, 1)]
    assert ctf.sizeof(7) == 70000 and ctf.members(7) == [("x", 0, 1), ("y", 0, 6)]
    assert ctf.type(8).name == "after" and ctf.sizeof(8) == 70000


@pytest.mark.parametrize("endian", ["<", ">"])
def test_v3_large_sizes_and_members(endian: str) -> None:
    a = Asm(3, endian)
    assert a.integer("int", 4, 32, INT_SIGNED) == 1                   # @0, 16
    thresh = 1 << 29
    # just under the threshold: 12-byte members
    assert a.struct_("under", thresh - 1, [("a", 1, 0), ("b", 1, 0xFFFFFF00)]) == 2  # @16, 12+24
    # at the threshold, short form: 16-byte members
    assert a.struct_("at", thresh, [("a", 1, 0), ("b", 1, 1 << 32)]) == 3  # @52, 12 + 32
    # 0xFFFFFFFF is the sentinel: long form (20 bytes) holds 2^32 - 1 itself
    assert a.struct_("sent", 0xFFFFFFFF, [("a", 1, (1 << 35) + 8)], long=True) == 4  # @96
    assert a.struct_("big", 1 << 40, [("a", 1, 1 << 42)]) == 5        # @132, 20 + 16
    assert a.array(1, 1, 3, 0) == 6                                   # @168, 12+12 (size 0)
    assert a.ref(K_TYPEDEF, 5, "after") == 7                          # @192
    ctf = CtfFile.parse(a.build(), pointer_size=8)
    assert [4 * r for r in ctf._rec] == [0, 16, 52, 96, 132, 168, 192]
    assert ctf.members(2) == [("a", 0, 1), ("b", 0xFFFFFF00, 1)]
    assert ctf.members(3) == [("a", 0, 1), ("b", 1 << 32, 1)]
    assert ctf.sizeof(4) == 0xFFFFFFFF and ctf.members(4) == [("a", (1 << 35) + 8, 1)]
    assert ctf.sizeof(7) == 1 << 40 and ctf.member(7, "a") == ("a", 1 << 42, 1)
    assert ctf.sizeof(6) == 12  # recorded size 0: count x element size (ctf_type_size)


def test_array_recorded_size_wins_over_product() -> None:
    # ctf_type_size returns ctt_size when it is nonzero
    a = Asm(3, "<")
    a.integer("int", 4, 32, INT_SIGNED)
    a.array(1, 1, 10, 36)
    assert CtfFile.parse(a.build()).sizeof(2) == 36


def test_many_types_v3_and_v2_limit() -> None:
    a = Asm(3, "<")
    a.integer("int", 4, 32, INT_SIGNED)
    for i in range(40000):
        if i % 2 == 0:
            a.struct_(f"s{i}", 8, [("x", 1, 0), ("y", 1, 32)])
        else:
            a.ref(K_POINTER, i + 1)
    ctf = CtfFile.parse(a.build(compress=True))
    assert ctf.ntypes == 40001
    # i even: struct s{i} is id i + 2; i odd: a pointer (id i + 2) to id i + 1
    assert ctf.lookup("struct s39998") == 40000
    assert ctf.lookup("struct s39998 *") == 40001
    assert ctf.member(40000, "y") == ("y", 32, 1)
    b = Asm(2, "<")
    b.integer("int", 4, 32)
    for _ in range(32767):
        b.ref(K_POINTER, 1)
    with pytest.raises(FormatError, match="CTF: 32768 types, more than version 2"):
        CtfFile.parse(b.build())


def test_v2_max_vlen_struct() -> None:
    a = Asm(2, ">")
    a.integer("char", 1, 8, INT_SIGNED | INT_CHAR)
    a.struct_("wide", 1023, [(f"m{i}", 1, 8 * i) for i in range(1023)])  # vlen 1023
    a.ref(K_TYPEDEF, 2, "wide_t")
    ctf = CtfFile.parse(a.build())
    assert len(ctf.members(3)) == 1023 and ctf.member(3, "m1022") == ("m1022", 8176, 1)


# ------------------------------------------------------------- name choices
def test_name_table_rules() -> None:
    a = Asm(3, "<")
    assert a.integer("int", 4, 0) == 1                       # zero bits: replaced (SOS8 rule)
    assert a.integer("int", 4, 32, INT_SIGNED) == 2
    assert a.integer("int", 4, 16, INT_SIGNED) == 3          # later same name: first wins
    assert a.forward("s") == 4
    assert a.struct_("s", 4, [("a", 2, 0)], root=False) == 5  # a non-root definition
    assert a.struct_("s", 8, [("a", 2, 0)]) == 6             # root definition
    assert a.struct_("s", 12, [("a", 2, 0)]) == 7            # last root definition wins
    assert a.struct_("s", 16, [("a", 2, 0)], root=False) == 8  # non-root never beats root
    assert a.ref(K_TYPEDEF, 2, "t") == 9
    assert a.ref(K_TYPEDEF, 3, "t") == 10                    # typedefs: last wins
    assert a.forward("only") == 11
    assert a.forward("only") == 12                           # first forward stays
    assert a.forward("e", K_ENUM) == 13
    assert a.forward("u", K_UNION) == 14
    assert a.forward("odd", 99 & 0x3F) == 15                 # unknown tag kind: struct
    assert a.ref(K_POINTER, 7) == 16
    assert a.ref(K_POINTER, 7) == 17                         # pointer table: last wins
    assert a.ref(K_TYPEDEF, 7) == 18                         # anonymous typedef of s
    assert a.ref(K_POINTER, 18) == 19                        # ... so 19 also points to 7
    ctf = CtfFile.parse(a.build())
    assert ctf.lookup("int") == 2
    assert ctf.lookup("struct s") == 7
    assert ctf.lookup("t") == 10
    assert ctf.lookup("struct only") == 11
    assert ctf.lookup("enum e") == 13 and ctf.lookup("union u") == 14
    assert ctf.lookup("struct odd") == 15 and ctf.type(15).forward_kind == Kind.STRUCT
    assert ctf.lookup("struct s *") == 19


# ------------------------------------------------------------- parent/child
def parent_and_child(version: int, endian: str) -> tuple[bytes, bytes]:
    p = Asm(version, endian)
    assert p.integer("int", 4, 32, INT_SIGNED) == 1
    assert p.struct_("base", 8, [("x", 1, 0), ("y", 1, 32)]) == 2
    parent = p.build(labels=[("L1", 2)])
    c = Asm(version, endian)
    cb = c.child_bit
    assert c.struct_("kid", 24, [("i", 1, 0), ("b", 2, 64), ("self", cb | 2, 128)]) == 1
    assert c.ref(K_POINTER, cb | 1) == 2
    assert c.ref(K_TYPEDEF, 2, "base_t") == 3  # a child typedef of a parent struct
    child = c.build(parname="kparent", parlabel="L1")
    return parent, child


@pytest.mark.parametrize("version", [2, 3])
@pytest.mark.parametrize("endian", ["<", ">"])
def test_child_container(version: int, endian: str) -> None:
    parent_data, child_data = parent_and_child(version, endian)
    cb = 0x8000 if version == 2 else 0x80000000
    child = CtfFile.parse(child_data, pointer_size=8)
    assert child.is_child and child.parent_name == "kparent" and child.parent_label == "L1"
    assert list(child.ids()) == [cb | 1, cb | 2, cb | 3]
    kid = child.lookup("struct kid")
    assert kid == cb | 1
    assert child.members(kid) == [("i", 0, 1), ("b", 64, 2), ("self", 128, cb | 2)]
    assert child.type(cb | 2).ref == cb | 1
    assert child.sizeof(kid) == 24 and child.sizeof(cb | 2) == 8
    # a parent type is needed: the error names the missing parent
    with pytest.raises(FormatError, match="CTF: type 1 belongs to the parent container "
                                          "'kparent', which is not loaded"):
        child.sizeof(1)
    with pytest.raises(FormatError, match="'kparent'"):
        child.member(kid, "b.y")
    with pytest.raises(FormatError, match="'kparent'"):
        child.resolve(cb | 3)
    assert child.lookup("struct base") is None
    parent = CtfFile.parse(parent_data)
    assert parent.labels == (("L1", 2),)
    child.import_parent(parent)
    assert child.parent is parent
    assert child.sizeof(1) == 4 and child.type(2).name == "base"
    assert child.member(kid, "b.y") == ("b.y", 96, 1)
    assert child.resolve(cb | 3) == 2 and child.sizeof(cb | 3) == 8
    assert child.lookup("struct base") == 2 and child.lookup("int") == 1
    # parse(parent=...) does the same
    again = CtfFile.parse(child_data, parent=parent)
    assert again.member(cb | 1, "b.x") == ("b.x", 64, 1)
    with pytest.raises(ValueError):
        parent.import_parent(parent)
    with pytest.raises(ValueError):
        parent.import_parent(again)  # again's parent is parent: a loop


@pytest.mark.parametrize("version", [2, 3])
def test_child_detected_from_references(version: int) -> None:
    # no cth_parname, but a pointer refers to a child-range id (init_types)
    a = Asm(version, "<")
    a.integer("int", 4, 32)
    a.ref(K_POINTER, a.child_bit | 1)
    ctf = CtfFile.parse(a.build())
    assert ctf.is_child and ctf.parent_name is None
    with pytest.raises(FormatError, match=r"parent container \(unnamed\)"):
        ctf.type(1)
    # ... or a member does
    b = Asm(version, ">")
    b.struct_("s", 4, [("a", b.child_bit | 1, 0)])
    assert CtfFile.parse(b.build()).is_child


def test_parent_container_strips_child_bit() -> None:
    # a parent reading a child-bit id in an array (not scanned) treats it as its own
    a = Asm(3, "<")
    a.integer("int", 4, 32)
    a.array(0x80000001, 1, 4, 0)
    ctf = CtfFile.parse(a.build())
    assert not ctf.is_child and ctf.type(2).array == (1, 1, 4) and ctf.sizeof(2) == 16


# ------------------------------------------------------------- external names
def test_names_in_the_elf_string_table() -> None:
    a = Asm(3, "<")
    a.add(a.fixed(1 << 31 | 5, K_INTEGER, 1, 4) + a.p("I", 32))  # "int" at .strtab+5
    a.add(a.fixed(1 << 31 | 1, K_STRUCT, 1, 4)
          + a.p("III", 1 << 31 | 9, 1, 0))  # struct "abc" { int zz; }
    strtab = b"\0abc\0int\0zz\0"
    data = a.build()
    ctf = CtfFile.parse(data, strtab=strtab)
    assert ctf.lookup("int") == 1 and ctf.lookup("struct abc") == 2
    assert ctf.members(2) == [("zz", 0, 1)]
    with pytest.raises(FormatError, match="needs the ELF string table"):
        CtfFile.parse(data).type(1)
    with pytest.raises(FormatError, match=r"CTF: string offset 5 is outside string table 1 "
                                          r"\(5 bytes\)"):
        CtfFile.parse(data, strtab=b"\0abc\0").lookup("int")


# ------------------------------------------------------------------- errors
def raw(version: int, body: bytes, offsets: tuple[int, ...] | None = None, flags: int = 0,
        endian: str = "<") -> bytes:
    """Header + body with all sections empty but types [0, len(body))."""
    if offsets is None:
        offsets = (0, 0, 0, 0, len(body), 0)
    return header(version, endian, offsets, flags) + body


def err(data: bytes, pattern: str, **kw: object) -> None:
    with pytest.raises(FormatError, match=pattern):
        ctf = CtfFile.parse(data, **kw)  # type: ignore[arg-type]
        for t in ctf.ids():
            ctf.type(t)
            if ctf.type(t).kind in (Kind.STRUCT, Kind.UNION):
                ctf.members(t)
            ctf.sizeof(t)
        ctf.lookup("int")


def test_header_errors() -> None:
    good = build_small(3, "<")
    err(good[:35], r"CTF: section of 35 bytes is shorter than the 36-byte header")
    err(b"", "shorter than the 36-byte header")
    err(b"\x00\x00" + good[2:], r"CTF: bad magic 0x0000 \(expected 0xcff1\)")
    for v in (0, 1, 4, 255):
        err(good[:2] + bytes([v]) + good[3:], rf"CTF: unsupported version {v} ")
    # offsets beyond the data, out of order, misaligned (ctf_bufopen)
    err(raw(3, b"", (0, 0, 0, 8, 4, 0)), "CTF: bad header: a section starts past the end")
    err(raw(3, b"\0" * 16, (0, 8, 4, 8, 16, 0)), "CTF: bad header: sections out of order")
    err(raw(3, b"\0" * 16, (2, 2, 2, 4, 16, 0)), "CTF: bad header: misaligned")
    err(raw(3, b"\0" * 16, (0, 1, 2, 4, 16, 0)), "misaligned")
    err(raw(3, b"\0" * 16, (0, 0, 3, 4, 16, 0)), "misaligned")
    err(raw(3, b"\0" * 16, (0, 0, 0, 2, 16, 0)), "misaligned")
    # an uncompressed body shorter than the header declares
    err(good[:-1], r"CTF: \d+ bytes follow the header but it declares \d+")
    err(raw(2, b"", (0, 0, 0, 0, 0xFFFFFFF0, 0xFFFF)), "follow the header but it declares")
    with pytest.raises(ValueError):
        CtfFile.parse(good, endian="middle")


def test_compression_errors() -> None:
    a = small(3, "<")
    good = a.build(compress=True)
    hdr, z = good[:36], good[36:]
    err(hdr + b"garbage", "CTF: bad zlib stream: ")
    err(hdr + z[:-6], "CTF: bad zlib stream: stream is truncated")
    # the declared size must equal the inflated size
    lbl, objt, func, typ, stro, strl = struct.unpack_from("<6I", hdr, 12)
    short = hdr[:32] + struct.pack("<I", strl - 1)
    err(short + z, r"CTF: zlib stream inflates to more than \d+ bytes but the header")
    long_ = hdr[:32] + struct.pack("<I", strl + 1)
    err(long_ + z, r"CTF: zlib stream inflates to \d+ bytes but the header declares")
    # a declared size no zlib stream of this length can reach: refused before inflating
    huge = header(3, "<", (0, 0, 0, 0, 0, 0x7FFFFFFF), 1) + zlib.compress(b"\0" * 100)
    err(huge, r"CTF: header declares 2147483647 bytes of data, impossible from \d+ compressed")


def test_type_section_errors() -> None:
    a = Asm(3, "<")
    a.add(a.fixed("", 14, 0, 0))  # kind 14 is not defined
    err(a.build(), r"CTF: type 1 at offset 0 has unknown kind 14")
    b = Asm(2, ">")
    b.integer("int", 4, 32)
    b.add(b.fixed("", 31, 0, 0))
    err(b.build(), r"CTF: type 2 at offset 12 has unknown kind 31")
    # a struct whose members run into the string section
    c = Asm(3, "<")
    c.integer("int", 4, 32)
    c.add(c.fixed("s", K_STRUCT, 1000, 8) + c.p("III", 0, 1, 0))
    err(c.build(), r"CTF: type 2 at offset 16 runs past the end of the type section")
    # a long-form fixed part cut short, a short fixed part cut short
    d = Asm(2, "<")
    d.add(d.p("IHH", 0, K_STRUCT << 11, 0xFFFF))
    err(d.build(), r"CTF: type 1 at offset 0 runs past the end")
    err(raw(3, b"\0" * 8), r"CTF: type 1 at offset 0 runs past the end")
    err(raw(2, b"\0" * 10), r"CTF: type 2 at offset 8 runs past the end")  # 2 stray bytes


def test_reference_errors() -> None:
    a = Asm(3, "<")
    a.ref(K_TYPEDEF, 2, "a")  # 1 -> 2 -> 1
    a.ref(K_CONST, 1)
    a.ref(K_TYPEDEF, 3, "self")  # 3 -> 3
    a.ref(K_TYPEDEF, 99, "dangling")
    a.array(5, 5, 2, 0)  # an array of itself
    a.struct_("s", 8, [("", 7, 0)])  # 6: anonymous member of a struct that contains s
    a.struct_("t", 8, [("", 6, 0)])  # 7
    a.ref(K_TYPEDEF, 0, "v")  # 8: typedef void
    ctf = CtfFile.parse(a.build(), pointer_size=8)
    with pytest.raises(FormatError, match="CTF: cycle in the type chain of type 1"):
        ctf.resolve(1)
    with pytest.raises(FormatError, match="cycle in the type chain of type 3"):
        ctf.sizeof(3)
    with pytest.raises(FormatError, match=r"CTF: type id 99 is out of range \(the container "
                                          r"has 8 types\)"):
        ctf.resolve(4)
    with pytest.raises(FormatError, match="cycle"):
        ctf.sizeof(5)
    with pytest.raises(FormatError, match="cycle"):
        ctf.members(6)
    assert ctf.resolve(8) == 0
    with pytest.raises(FormatError, match="CTF: type 8 has no size: void"):
        ctf.sizeof(8)
    for bad in (0, -1, 9, 1 << 40):
        with pytest.raises(FormatError, match="out of range"):
            ctf.type(bad)


def test_anonymous_expansion_is_bounded() -> None:
    # 20 levels of structs, each holding its inner struct anonymously twice:
    # 2^20 members if expanded; refused instead
    a = Asm(3, "<")
    a.integer("int", 4, 32)
    a.struct_("s1", 8, [("x", 1, 0), ("y", 1, 32)])
    for i in range(2, 22):
        a.struct_(f"s{i}", 8, [("", i, 0), ("", i, 0)])
    ctf = CtfFile.parse(a.build())
    with pytest.raises(FormatError, match="CTF: anonymous members of type 22 nest too deep "
                                          "or expand to too many members"):
        ctf.members(22)


def test_string_errors() -> None:
    a = Asm(3, "<")
    a.add(a.fixed(500, K_INTEGER, 1, 4) + a.p("I", 32))
    err(a.build(), r"CTF: string offset 500 is outside string table 0")
    b = Asm(3, "<")
    b.integer("int", 4, 32)
    data = bytearray(b.build())
    assert data.endswith(b"int\0")
    data[-1:] = b"x"  # the last string loses its NUL
    err(bytes(data), r"CTF: string at offset 1 of string table 0 is not NUL-terminated")


def test_label_errors() -> None:
    body = b"\0" * 12
    bad = header(3, "<", (0, 12, 12, 12, 12, 0)) + body
    ctf = CtfFile.parse(bad)
    with pytest.raises(FormatError, match="CTF: label section of 12 bytes is not a whole"):
        _ = ctf.labels


def test_object_entry_past_the_end() -> None:
    # v3: objtoff 6, funcoff = typeoff = stroff = 8, strlen 0: the entry at 6 needs 4 bytes
    data = header(3, "<", (0, 6, 8, 8, 8, 0)) + b"\0" * 8
    ctf = CtfFile.parse(data, symbols=[("x", STT_OBJECT, 1, 1)])
    with pytest.raises(FormatError, match="CTF: object entry at offset 6 runs past the end"):
        ctf.object_type("x")


def test_unknown_kind_zero_records_are_padding() -> None:
    a = Asm(2, "<")
    a.add(a.fixed("", 0, 0, 0))  # CTF_K_UNKNOWN
    a.integer("int", 4, 32)
    ctf = CtfFile.parse(a.build())
    assert ctf.kind(1) == Kind.UNKNOWN and ctf.lookup("int") == 2 and ctf.sizeof(1) == 0

