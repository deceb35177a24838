"""DWARF 5 names given as string indexes (``DW_FORM_strx1``), the way clang writes them.

gcc on this machine writes ``DW_FORM_strp``; clang (FreeBSD's compiler) writes
``DW_FORM_strx*`` with ``DW_AT_str_offsets_base``.  The units here are assembled by
hand from the DWARF 5 standard (7.5.1.1 unit headers, 7.5.3 abbreviations, 7.26 string
offsets table), two compile units over one abbreviation table:

* unit A declares ``struct proc`` and defines ``struct alpha { int a_x; }``;
* unit B defines ``struct proc { int p_pid; int p_flag; }``.

The name lookup must read only the units whose slice of ``.debug_str_offsets`` holds
the name's string offset.
"""

from __future__ import annotations

import struct

import pytest

from pykvm.errors import FormatError
from pykvm.image.dwarf import DwarfFile
from pykvm.image.layout import KernelTypes
from pykvm.synth.cmodel import AMD64
from pykvm.synth.debugelf import write_debug_elf

# DW_TAG, DW_AT, DW_FORM values (DWARF 5, 7.5.3 and 7.5.4)
TAG_COMPILE_UNIT, TAG_STRUCT, TAG_MEMBER, TAG_BASE = 0x11, 0x13, 0x0D, 0x24
AT_NAME, AT_BYTE_SIZE, AT_TYPE, AT_LOCATION, AT_ENCODING = 0x03, 0x0B, 0x49, 0x38, 0x3E
AT_DECLARATION, AT_STR_OFFSETS_BASE = 0x3C, 0x72
FORM_STRX1, FORM_DATA1, FORM_REF4, FORM_SEC_OFFSET, FORM_FLAG_PRESENT = 0x25, 0x0B, 0x13, 0x17, \
    0x19
ATE_SIGNED = 0x05
AT_BIT_SIZE, AT_DATA_BIT_OFFSET, FORM_SDATA = 0x0D, 0x6B, 0x0D

ABBREVS = {  # code: (tag, children, [(attribute, form)])
    1: (TAG_COMPILE_UNIT, True, [(AT_NAME, FORM_STRX1), (AT_STR_OFFSETS_BASE, FORM_SEC_OFFSET)]),
    2: (TAG_STRUCT, True, [(AT_NAME, FORM_STRX1), (AT_BYTE_SIZE, FORM_DATA1)]),
    3: (TAG_MEMBER, False, [(AT_NAME, FORM_STRX1), (AT_TYPE, FORM_REF4),
                            (AT_LOCATION, FORM_DATA1)]),
    4: (TAG_BASE, False, [(AT_NAME, FORM_STRX1), (AT_ENCODING, FORM_DATA1),
                          (AT_BYTE_SIZE, FORM_DATA1)]),
    5: (TAG_STRUCT, False, [(AT_NAME, FORM_STRX1), (AT_DECLARATION, FORM_FLAG_PRESENT)]),
    6: (TAG_MEMBER, False, [(AT_NAME, FORM_STRX1), (AT_TYPE, FORM_REF4),
                            (AT_BIT_SIZE, FORM_SDATA), (AT_DATA_BIT_OFFSET, FORM_DATA1)]),
}


def abbrev_section() -> bytes:
    out = bytearray()
    for code, (tag, children, attrs) in ABBREVS.items():
        out += bytes([code, tag, 1 if children else 0])
        for at, form in attrs:
            out += bytes([at, form])
        out += b"\0\0"
    return bytes(out + b"\0")


class Strings:
    def __init__(self) -> None:
        self.data = bytearray(b"\0")
        self.offsets: dict[str, int] = {}

    def add(self, s: str) -> int:
        if s not in self.offsets:
            self.offsets[s] = len(self.data)
            self.data += s.encode() + b"\0"
        return self.offsets[s]


def unit(strings: Strings, offsets: bytearray, dies: list[tuple[int, list[object]]],
         name: str) -> bytes:
    """One compile unit; ``dies`` are (abbrev code, values) with names as str and type
    references as ("ref", index of the target DIE); 0 closes a children list."""
    index: list[str] = []

    def strx(s: str) -> int:
        if s not in index:
            index.append(s)
        return index.index(s)

    base = len(offsets) + 8  # this unit's contribution: header, then 4-byte entries
    body = bytearray()
    starts: list[int] = []
    fixups: list[tuple[int, int]] = []
    header_size = 12  # unit_length 4, version 2, unit_type 1, address_size 1, abbrev 4
    body += bytes([1, strx(name)]) + struct.pack("<I", base)
    for code, values in dies:
        starts.append(header_size + len(body))
        if code == 0:
            body += b"\0"
            continue
        body.append(code)
        for v in values:
            if isinstance(v, str):
                body.append(strx(v))
            elif isinstance(v, tuple):
                fixups.append((len(body), int(v[1])))
                body += b"\0\0\0\0"
            elif v is not None:
                body.append(int(v))
    body += b"\0"
    for pos, target in fixups:
        struct.pack_into("<I", body, pos, starts[target])
    table = b"".join(struct.pack("<I", strings.add(s)) for s in index)
    offsets += struct.pack("<IHH", 4 + len(table), 5, 0) + table
    return struct.pack("<IHBBI", len(body) + 8, 5, 1, 8, 0) + bytes(body)


def build(bit_size: int = 3) -> tuple[bytes, list[int]]:
    strings = Strings()
    offsets = bytearray()
    a = unit(strings, offsets, [
        (4, ["int", ATE_SIGNED, 4]),       # 0
        (5, ["proc", None]),               # 1: struct proc; (a declaration)
        (2, ["alpha", 4]),                 # 2
        (3, ["a_x", ("ref", 0), 0]),       # 3
        (0, []),                           # 4
    ], "a.c")
    b = unit(strings, offsets, [
        (4, ["int", ATE_SIGNED, 4]),       # 0
        (2, ["proc", 8]),                  # 1
        (3, ["p_pid", ("ref", 0), 0]),     # 2
        (3, ["p_flag", ("ref", 0), 4]),    # 3
        (0, []),                           # 4
        (2, ["bits", 4]),                  # 5
        (6, ["b_low", ("ref", 0), bit_size & 0x7F, 2]),  # 6: int b_low:3 at bit 2
        (0, []),                           # 7
    ], "b.c")
    elf = write_debug_elf({".debug_info": a + b, ".debug_abbrev": abbrev_section(),
                           ".debug_str": bytes(strings.data),
                           ".debug_str_offsets": bytes(offsets)}, AMD64)
    return elf, [0, len(a)]


def test_strx_names_and_the_offsets_table_prefilter() -> None:
    elf, (unit_a, unit_b) = build()
    with DwarfFile.from_bytes(elf, "strx.debug") as dwarf:
        assert dwarf.summary()["versions"] == [5]
        assert dwarf._candidates("alpha") == [unit_a]
        assert dwarf._candidates("p_flag") == [unit_b]
        assert dwarf._candidates("proc") == [unit_a, unit_b]
        assert dwarf._candidates("absent_name") == []
        kt = KernelTypes(byteorder="little", pointer_size=8, dwarf=[dwarf])
        alpha = kt.struct("alpha")
        assert (alpha.size, alpha.offsetof("a_x"), alpha.member("a_x").type_name) == \
            (4, 0, "int")
        assert {off for _tu, off in dwarf._scans} == {unit_a}  # unit B never read
        proc = kt.struct("proc")  # declared in A, defined in B
        assert (proc.size, proc.offsetof("p_flag")) == (8, 4)
        assert proc.member("p_pid").type.signed


def test_bit_fields_and_bad_bit_sizes() -> None:
    elf, _ = build()
    with DwarfFile.from_bytes(elf) as dwarf:
        kt = KernelTypes(byteorder="little", pointer_size=8, dwarf=[dwarf])
        m = kt.struct("bits").member("b_low")
        assert (m.bit_offset, m.bit_size, m.size) == (2, 3, 4)
        assert kt.view_from("bits", bytes([0b10100, 0, 0, 0]), 0).b_low == -3  # 0b101
    for bad in (-3, 0):  # sdata -3 (0x7d) and 0: not a width
        elf, _ = build(bad)
        with DwarfFile.from_bytes(elf) as dwarf:
            kt = KernelTypes(byteorder="little", pointer_size=8, dwarf=[dwarf])
            with pytest.raises(FormatError) as exc:
                kt.struct("bits")
            assert str(exc.value) == ("DWARF: corrupt debugging information "
                                      f"(member b_low: bit size {bad})")
