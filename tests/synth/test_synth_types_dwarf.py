"""The DWARF writer, read back by pyelftools (an independent reader): every struct's size
and every member's offset, bit-field position, size and type name must match the ground
truth, for both byte orders and both pointer sizes."""

from __future__ import annotations

import io
from typing import Any

import pytest
from elftools.elf.elffile import ELFFile

from pykvm.synth.cmodel import (
    AMD64,
    I386,
    POWERPC,
    POWERPC64,
    Field,
    LayoutTruth,
    Target,
    TypeSet,
    TypeSpace,
    Variable,
)
from pykvm.synth.debugelf import DebugSymbol, write_debug_elf
from pykvm.synth.dwarfwriter import sleb128, uleb128, write_dwarf
from pykvm.synth.kerneltypes import kernel_types

Die = Any  # elftools.dwarf.die.DIE


class DwarfTypes:
    """Types of one compile unit, named the way cmodel.c_type_name spells them."""

    def __init__(self, elf_bytes: bytes) -> None:
        self.elf = ELFFile(io.BytesIO(elf_bytes))
        self.dwarf = self.elf.get_dwarf_info()
        cus = list(self.dwarf.iter_CUs())
        assert len(cus) == 1
        self.cu = cus[0]
        self.top = self.cu.get_top_DIE()
        self.by_offset: dict[int, Die] = {}
        self.children: list[Die] = []
        for die in self.top.iter_children():
            self.children.append(die)
            self.by_offset[die.offset] = die

    @staticmethod
    def name(die: Die) -> str | None:
        attr = die.attributes.get("DW_AT_name")
        return None if attr is None else attr.value.decode()

    def ref(self, die: Die) -> Die | None:
        attr = die.attributes.get("DW_AT_type")
        if attr is None:
            return None
        assert attr.form == "DW_FORM_ref4"
        return self.by_offset[attr.value + self.cu.cu_offset]

    def count(self, die: Die) -> int:
        (sub,) = die.iter_children()
        if "DW_AT_count" in sub.attributes:
            return int(sub.attributes["DW_AT_count"].value)
        return int(sub.attributes["DW_AT_upper_bound"].value) + 1

    def tname(self, die: Die | None, decl: str = "") -> str:
        def join(base: str) -> str:
            return f"{base} {decl}" if decl else base

        if die is None:
            return join("void")
        tag = die.tag
        if tag in ("DW_TAG_base_type", "DW_TAG_typedef"):
            return join(self.name(die) or "?")
        if tag == "DW_TAG_enumeration_type":
            return join(f"enum {self.name(die)}" if self.name(die) else "enum {...}")
        if tag in ("DW_TAG_structure_type", "DW_TAG_union_type"):
            kw = "struct" if tag == "DW_TAG_structure_type" else "union"
            return join(f"{kw} {self.name(die)}" if self.name(die) else f"{kw} {{...}}")
        if tag == "DW_TAG_pointer_type":
            return self.pointer(self.ref(die), "*" + decl)
        if tag in ("DW_TAG_const_type", "DW_TAG_volatile_type", "DW_TAG_restrict_type"):
            q = tag[len("DW_TAG_"):-len("_type")]
            target = self.ref(die)
            if target is not None and target.tag == "DW_TAG_pointer_type":
                return self.pointer(self.ref(target), f"*{q}" + (f" {decl}" if decl else ""))
            return f"{q} " + self.tname(target, decl)
        if tag == "DW_TAG_array_type":
            return self.tname(self.ref(die), f"{decl}[{self.count(die)}]")
        assert tag == "DW_TAG_subroutine_type", tag
        params = [self.tname(self.ref(p)) for p in die.iter_children()
                  if p.tag == "DW_TAG_formal_parameter"]
        if any(p.tag == "DW_TAG_unspecified_parameters" for p in die.iter_children()):
            params.append("...")
        return self.tname(self.ref(die), f"{decl}({', '.join(params) or 'void'})")

    def pointer(self, pointee: Die | None, decl: str) -> str:
        if pointee is not None and pointee.tag in ("DW_TAG_array_type",
                                                   "DW_TAG_subroutine_type"):
            return self.tname(pointee, f"({decl})")
        return self.tname(pointee, decl)

    def sizeof(self, die: Die | None) -> int:
        while die is not None and die.tag in ("DW_TAG_typedef", "DW_TAG_const_type",
                                              "DW_TAG_volatile_type", "DW_TAG_restrict_type"):
            die = self.ref(die)
        assert die is not None
        if die.tag == "DW_TAG_array_type":
            return self.count(die) * self.sizeof(self.ref(die))
        return int(die.attributes["DW_AT_byte_size"].value)

    def aggregate(self, kind: str, name: str) -> Die:
        tag = "DW_TAG_structure_type" if kind == "struct" else "DW_TAG_union_type"
        found = [d for d in self.children if d.tag == tag and self.name(d) == name
                 and "DW_AT_declaration" not in d.attributes]
        assert len(found) == 1, (kind, name)
        return found[0]

    def members(self, agg: Die, little: bool) -> list[tuple[str, int, int | None, int, str]]:
        out = []
        for m in agg.iter_children():
            assert m.tag == "DW_TAG_member"
            a = m.attributes
            loc = int(a["DW_AT_data_member_location"].value) if (
                "DW_AT_data_member_location" in a) else 0
            bits = int(a["DW_AT_bit_size"].value) if "DW_AT_bit_size" in a else None
            if "DW_AT_data_bit_offset" in a:
                bit_offset = int(a["DW_AT_data_bit_offset"].value)
            elif "DW_AT_bit_offset" in a:  # DWARF 2/3: counted from the unit's MSB
                assert bits is not None
                unit = int(a["DW_AT_byte_size"].value) * 8
                msb = int(a["DW_AT_bit_offset"].value)
                bit_offset = loc * 8 + (unit - msb - bits if little else msb)
            else:
                bit_offset = loc * 8
            mtype = self.ref(m)
            out.append((self.name(m) or "", bit_offset, bits, self.sizeof(mtype),
                        self.tname(mtype)))
        return out


def check_against_truth(dt: DwarfTypes, tr: LayoutTruth) -> int:
    little = tr.target.byteorder == "little"
    checked = 0
    for key, st in tr.structs.items():
        die = dt.aggregate(st.kind, st.name)
        assert int(die.attributes["DW_AT_byte_size"].value) == st.size, key
        want = [(m.name, m.bit_offset, m.bit_size, m.size, m.type_name) for m in st.members]
        assert dt.members(die, little) == want, key
        checked += len(want)
    # enums and variables
    for ename, values in tr.enums.items():
        (die,) = [d for d in dt.children if d.tag == "DW_TAG_enumeration_type"
                  and dt.name(d) == ename]
        got = {dt.name(e): e.attributes["DW_AT_const_value"].value for e in die.iter_children()}
        assert got == dict(values)
    variables = {dt.name(d): dt.tname(dt.ref(d)) for d in dt.children
                 if d.tag == "DW_TAG_variable"}
    assert variables == dict(tr.variables)
    return checked


TARGETS = [AMD64, I386, POWERPC, POWERPC64]  # both byte orders, both pointer sizes


@pytest.mark.parametrize("target", TARGETS, ids=lambda t: t.name)
def test_dwarf4_round_trip(target: Target) -> None:
    for seed in (0, 9):
        ts = kernel_types(seed, target)
        sections = write_dwarf(ts)
        elf = write_debug_elf(sections.as_dict(), target)
        dt = DwarfTypes(elf)
        assert dt.elf.little_endian == (target.byteorder == "little")
        assert dt.elf.elfclass == target.ptr_size * 8
        assert dt.cu["version"] == 4 and dt.cu["address_size"] == target.ptr_size
        assert dt.cu.dwarf_format() == 32
        assert check_against_truth(dt, ts.truth()) > 500


@pytest.mark.parametrize("target", [AMD64, POWERPC], ids=lambda t: t.name)
def test_dwarf5_and_old_style_bitfields(target: Target) -> None:
    ts = kernel_types(4, target, era="14")  # v_type:8 is an enum bit-field
    options: tuple[dict[str, Any], ...] = (
        {"version": 5},
        {"bitfield_style": "bit_offset", "union_member_location": True,
         "array_bound": "upper_bound"},
    )
    for kwargs in options:
        sections = write_dwarf(ts, **kwargs)
        dt = DwarfTypes(write_debug_elf(sections.as_dict(), target))
        assert dt.cu["version"] == kwargs.get("version", 4)
        check_against_truth(dt, ts.truth())


def test_forward_declarations_and_variable_addresses() -> None:
    sp = TypeSpace(I386)
    fwd = sp.struct("filedesc")
    i = sp.base("int")
    holder = sp.define(sp.struct("holder"), [Field("fd", sp.ptr(fwd)), Field("n", i)])
    ts = TypeSet.from_space(sp, variables=[Variable("the_holder", holder, address=0xC0DE0000)])
    sections = write_dwarf(ts)
    elf = write_debug_elf(sections.as_dict(), I386,
                          symbols=[DebugSymbol("the_holder", 0, 8)])
    dt = DwarfTypes(elf)
    (decl,) = [d for d in dt.children if dt.name(d) == "filedesc"]
    assert decl.tag == "DW_TAG_structure_type"
    assert decl.attributes["DW_AT_declaration"].value
    assert "DW_AT_byte_size" not in decl.attributes
    (var,) = [d for d in dt.children if d.tag == "DW_TAG_variable"]
    loc = var.attributes["DW_AT_location"]
    assert loc.form == "DW_FORM_exprloc" and loc.value == [0x03, 0x00, 0x00, 0xDE, 0xC0]
    symtab: Any = dt.elf.get_section_by_name(".symtab")
    assert [s.name for s in symtab.iter_symbols()] == ["", "the_holder"]


def test_determinism_and_leb128() -> None:
    a = write_dwarf(kernel_types(8, AMD64))
    assert a == write_dwarf(kernel_types(8, AMD64))
    assert uleb128(624485) == b"\xe5\x8e\x26"
    assert sleb128(-123456) == b"\xc0\xbb\x78"
    assert sleb128(63) == b"\x3f" and sleb128(64) == b"\xc0\x00" and sleb128(-64) == b"\x40"
