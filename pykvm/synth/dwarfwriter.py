"""Write minimal DWARF (version 4, or 5) describing a :class:`~.cmodel.TypeSet`.

The result is what a FreeBSD ``kernel.debug`` carries for the same types, reduced to the
three sections a type reader needs: ``.debug_abbrev``, ``.debug_info`` (one compile unit,
32-bit DWARF format, the target's byte order and address size) and ``.debug_str``.

Encodings (DWARF 4 standard, sections 7.5 "Format of Debugging Information" and 7.5.4
"Attribute Encodings"; DWARF 5 only changes the unit header):

* unit header: ``unit_length`` (4 bytes), ``version`` (2), then ``debug_abbrev_offset`` (4)
  and ``address_size`` (1) in version 4, or ``unit_type`` (1, ``DW_UT_compile``),
  ``address_size`` (1) and ``debug_abbrev_offset`` (4) in version 5;
* each DIE: ULEB128 abbreviation code, then its attribute values; a DIE with children is
  followed by them and a 0 code; abbreviations are shared by every DIE with the same tag,
  children flag and (attribute, form) list, numbered in first-use order;
* names are ``DW_FORM_strp`` offsets into ``.debug_str`` (each string once); type
  references are ``DW_FORM_ref4`` offsets from the start of the unit; sizes, offsets and
  counts use the smallest of ``DW_FORM_data1``/``data2``/``data4`` that holds the value;
  enumerator values are ``DW_FORM_sdata``; flags are ``DW_FORM_flag_present``.

The DIEs (all types are children of the compile unit, in TypeSet order):

* ``DW_TAG_base_type`` (name, ``DW_AT_encoding``, byte size) for integers and floats;
  ``void`` has no DIE: a reference to it is an absent ``DW_AT_type``;
* ``DW_TAG_pointer_type`` (byte size = the target's pointer size), ``DW_TAG_typedef``,
  ``DW_TAG_const_type``, ``DW_TAG_volatile_type``, ``DW_TAG_restrict_type``;
* ``DW_TAG_array_type`` with one ``DW_TAG_subrange_type`` child carrying ``DW_AT_count``
  (Clang's form; ``array_bound="upper_bound"`` writes GCC's ``DW_AT_upper_bound``) and
  referring to an index base type ``__ARRAY_SIZE_TYPE__`` as Clang does;
* ``DW_TAG_enumeration_type`` (byte size) with ``DW_TAG_enumerator`` children;
* ``DW_TAG_structure_type``/``DW_TAG_union_type`` with ``DW_AT_byte_size`` and
  ``DW_TAG_member`` children: ``DW_AT_data_member_location`` as a constant (struct
  members; union members omit it unless ``union_member_location=True``, as GCC does), and
  for a bit-field ``DW_AT_bit_size`` plus ``DW_AT_data_bit_offset`` (DWARF 4 style), or with
  ``bitfield_style="bit_offset"`` the DWARF 2/3 style ``DW_AT_byte_size``,
  ``DW_AT_bit_offset`` (from the storage unit's most significant bit) and the unit's
  ``DW_AT_data_member_location``; a forward declaration is the tag with ``DW_AT_name`` and
  ``DW_AT_declaration``;
* ``DW_TAG_subroutine_type`` (``DW_AT_prototyped``, return type) with
  ``DW_TAG_formal_parameter`` children and ``DW_TAG_unspecified_parameters`` for ``...``;
* ``DW_TAG_variable`` for each TypeSet variable (name, type, ``DW_AT_external``, and
  ``DW_AT_location`` = ``DW_OP_addr`` when the variable has an address).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Literal

from .cmodel import (
    ArrayType,
    CType,
    EnumType,
    FloatType,
    FunctionType,
    IntType,
    Member,
    PointerType,
    QualifiedType,
    StructType,
    TypedefType,
    TypeSet,
    VoidType,
    sizeof,
)

# tags (DWARF 4, figure 18)
DW_TAG_array_type = 0x01
DW_TAG_enumeration_type = 0x04
DW_TAG_formal_parameter = 0x05
DW_TAG_member = 0x0D
DW_TAG_pointer_type = 0x0F
DW_TAG_compile_unit = 0x11
DW_TAG_structure_type = 0x13
DW_TAG_subroutine_type = 0x15
DW_TAG_typedef = 0x16
DW_TAG_union_type = 0x17
DW_TAG_unspecified_parameters = 0x18
DW_TAG_subrange_type = 0x21
DW_TAG_base_type = 0x24
DW_TAG_const_type = 0x26
DW_TAG_enumerator = 0x28
DW_TAG_variable = 0x34
DW_TAG_volatile_type = 0x35
DW_TAG_restrict_type = 0x37

# attributes (figure 20)
DW_AT_location = 0x02
DW_AT_name = 0x03
DW_AT_byte_size = 0x0B
DW_AT_bit_offset = 0x0C
DW_AT_bit_size = 0x0D
DW_AT_language = 0x13
DW_AT_comp_dir = 0x1B
DW_AT_const_value = 0x1C
DW_AT_producer = 0x25
DW_AT_prototyped = 0x27
DW_AT_upper_bound = 0x2F
DW_AT_count = 0x37
DW_AT_data_member_location = 0x38
DW_AT_declaration = 0x3C
DW_AT_encoding = 0x3E
DW_AT_external = 0x3F
DW_AT_type = 0x49
DW_AT_data_bit_offset = 0x6B

# forms (figure 21)
DW_FORM_addr = 0x01
DW_FORM_data2 = 0x05
DW_FORM_data4 = 0x06
DW_FORM_data1 = 0x0B
DW_FORM_sdata = 0x0D
DW_FORM_strp = 0x0E
DW_FORM_udata = 0x0F
DW_FORM_ref4 = 0x13
DW_FORM_exprloc = 0x18
DW_FORM_flag_present = 0x19

# base type encodings (figure 25)
DW_ATE_boolean = 0x02
DW_ATE_float = 0x04
DW_ATE_signed = 0x05
DW_ATE_signed_char = 0x06
DW_ATE_unsigned = 0x07
DW_ATE_unsigned_char = 0x08

DW_LANG_C99 = 0x0C
DW_LANG_C11 = 0x1D
DW_UT_compile = 0x01
DW_OP_addr = 0x03

_QUAL_TAG = {
    "const": DW_TAG_const_type,
    "volatile": DW_TAG_volatile_type,
    "restrict": DW_TAG_restrict_type,
}

ARRAY_INDEX_TYPE = "__ARRAY_SIZE_TYPE__"


def uleb128(value: int) -> bytes:
    """Unsigned LEB128."""
    if value < 0:
        raise ValueError("uleb128 of a negative value")
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def sleb128(value: int) -> bytes:
    """Signed LEB128."""
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        done = (value == 0 and not byte & 0x40) or (value == -1 and byte & 0x40)
        out.append(byte if done else byte | 0x80)
        if done:
            return bytes(out)


@dataclass(frozen=True)
class DwarfSections:
    """The three section contents, ready to be placed in an ELF file."""

    debug_info: bytes
    debug_abbrev: bytes
    debug_str: bytes

    def as_dict(self) -> dict[str, bytes]:
        """``{section name: contents}``."""
        return {
            ".debug_info": self.debug_info,
            ".debug_abbrev": self.debug_abbrev,
            ".debug_str": self.debug_str,
        }


# An attribute value: an int (constant, flag, string offset), bytes (an exprloc payload)
# or a type object (DW_FORM_ref4, resolved to its DIE's offset).
_Value = object


@dataclass(eq=False)
class _Die:
    tag: int
    attrs: list[tuple[int, int, _Value]] = field(default_factory=list)  # (attr, form, value)
    children: list[_Die] = field(default_factory=list)
    has_children: bool = False
    offset: int = 0


class _Writer:
    def __init__(
        self,
        types: TypeSet,
        version: int,
        byteorder: str,
        producer: str,
        cu_name: str,
        union_member_location: bool,
        bitfield_style: str,
        array_bound: str,
    ) -> None:
        self.types = types
        self.target = types.target
        self.version = version
        self.e = "<" if byteorder == "little" else ">"
        self.union_member_location = union_member_location
        self.bitfield_style = bitfield_style
        self.array_bound = array_bound
        self.strings = bytearray()
        self._str: dict[str, int] = {}
        self.dies: dict[int, _Die] = {}  # id(type object) -> DIE
        self.cu = _Die(DW_TAG_compile_unit, has_children=True)
        self.cu.attrs += [
            (DW_AT_producer, DW_FORM_strp, self.strp(producer)),
            (DW_AT_language, DW_FORM_data2, DW_LANG_C11 if version >= 5 else DW_LANG_C99),
            (DW_AT_name, DW_FORM_strp, self.strp(cu_name)),
            (DW_AT_comp_dir, DW_FORM_strp, self.strp("/usr/obj/usr/src/sys/GENERIC")),
        ]
        self._index = IntType(ARRAY_INDEX_TYPE, 8, False)

    # -- helpers ---------------------------------------------------------------------

    def strp(self, s: str) -> int:
        if s not in self._str:
            self._str[s] = len(self.strings)
            self.strings += s.encode() + b"\0"
        return self._str[s]

    @staticmethod
    def const_form(value: int) -> int:
        if value < 0:
            return DW_FORM_sdata
        if value <= 0xFF:
            return DW_FORM_data1
        if value <= 0xFFFF:
            return DW_FORM_data2
        if value <= 0xFFFFFFFF:
            return DW_FORM_data4
        return DW_FORM_udata

    def const(self, attr: int, value: int) -> tuple[int, int, _Value]:
        return (attr, self.const_form(value), value)

    def type_attr(self, die: _Die, t: CType) -> None:
        if not isinstance(t, VoidType):
            die.attrs.append((DW_AT_type, DW_FORM_ref4, t))

    # -- DIE construction ------------------------------------------------------------

    def build(self) -> None:
        for t in self.types.types:
            die = self.type_die(t)
            if die is not None:
                self.dies[id(t)] = die
                self.cu.children.append(die)
        if any(isinstance(t, ArrayType) for t in self.types.types):
            index = self.type_die(self._index)
            assert index is not None
            self.dies[id(self._index)] = index
            self.cu.children.append(index)
        for v in self.types.variables:
            die = _Die(DW_TAG_variable)
            die.attrs.append((DW_AT_name, DW_FORM_strp, self.strp(v.name)))
            self.type_attr(die, v.type)
            die.attrs.append((DW_AT_external, DW_FORM_flag_present, 1))
            if v.address is not None:
                fmt = "Q" if self.target.ptr_size == 8 else "I"
                expr = bytes([DW_OP_addr]) + struct.pack(self.e + fmt, v.address)
                die.attrs.append((DW_AT_location, DW_FORM_exprloc, expr))
            self.cu.children.append(die)

    def type_die(self, t: CType) -> _Die | None:
        if isinstance(t, VoidType):
            return None
        if isinstance(t, IntType):
            if t.boolean:
                enc = DW_ATE_boolean
            elif t.char:
                enc = DW_ATE_signed_char if t.signed else DW_ATE_unsigned_char
            else:
                enc = DW_ATE_signed if t.signed else DW_ATE_unsigned
            return self.base_die(t.name, enc, t.size)
        if isinstance(t, FloatType):
            return self.base_die(t.name, DW_ATE_float, t.size)
        if isinstance(t, PointerType):
            die = _Die(DW_TAG_pointer_type)
            self.type_attr(die, t.target)
            die.attrs.append(self.const(DW_AT_byte_size, self.target.ptr_size))
            return die
        if isinstance(t, TypedefType):
            die = _Die(DW_TAG_typedef, [(DW_AT_name, DW_FORM_strp, self.strp(t.name))])
            self.type_attr(die, t.target)
            return die
        if isinstance(t, QualifiedType):
            die = _Die(_QUAL_TAG[t.qualifier])
            self.type_attr(die, t.target)
            return die
        if isinstance(t, ArrayType):
            die = _Die(DW_TAG_array_type, has_children=True)
            self.type_attr(die, t.element)
            sub = _Die(DW_TAG_subrange_type)
            sub.attrs.append((DW_AT_type, DW_FORM_ref4, self._index))
            if self.array_bound == "count":
                sub.attrs.append(self.const(DW_AT_count, t.count))
            elif t.count > 0:
                sub.attrs.append(self.const(DW_AT_upper_bound, t.count - 1))
            die.children.append(sub)
            return die
        if isinstance(t, EnumType):
            die = _Die(DW_TAG_enumeration_type, has_children=True)
            if t.name is not None:
                die.attrs.append((DW_AT_name, DW_FORM_strp, self.strp(t.name)))
            die.attrs.append(self.const(DW_AT_byte_size, t.size))
            for name, value in t.enumerators:
                die.children.append(_Die(DW_TAG_enumerator, [
                    (DW_AT_name, DW_FORM_strp, self.strp(name)),
                    (DW_AT_const_value, DW_FORM_sdata, value),
                ]))
            return die
        if isinstance(t, FunctionType):
            die = _Die(DW_TAG_subroutine_type, has_children=bool(t.params or t.varargs))
            die.attrs.append((DW_AT_prototyped, DW_FORM_flag_present, 1))
            self.type_attr(die, t.ret)
            for p in t.params:
                param = _Die(DW_TAG_formal_parameter)
                self.type_attr(param, p)
                die.children.append(param)
            if t.varargs:
                die.children.append(_Die(DW_TAG_unspecified_parameters))
            return die
        return self.aggregate_die(t)

    def base_die(self, name: str, encoding: int, size: int) -> _Die:
        return _Die(DW_TAG_base_type, [
            (DW_AT_name, DW_FORM_strp, self.strp(name)),
            (DW_AT_encoding, DW_FORM_data1, encoding),
            self.const(DW_AT_byte_size, size),
        ])

    def aggregate_die(self, t: StructType) -> _Die:
        tag = DW_TAG_structure_type if t.kind == "struct" else DW_TAG_union_type
        die = _Die(tag, has_children=t.complete and bool(t.members))
        if t.name is not None:
            die.attrs.append((DW_AT_name, DW_FORM_strp, self.strp(t.name)))
        if not t.complete:
            die.attrs.append((DW_AT_declaration, DW_FORM_flag_present, 1))
            return die
        die.attrs.append(self.const(DW_AT_byte_size, t.size))
        for m in t.members:
            die.children.append(self.member_die(t, m))
        return die

    def member_die(self, parent: StructType, m: Member) -> _Die:
        die = _Die(DW_TAG_member)
        if m.name:
            die.attrs.append((DW_AT_name, DW_FORM_strp, self.strp(m.name)))
        self.type_attr(die, m.type)
        in_union = parent.kind == "union"
        if m.bit_size is None:
            if not in_union or self.union_member_location:
                die.attrs.append(self.const(DW_AT_data_member_location, m.offset))
            return die
        if self.bitfield_style == "data_bit_offset":
            die.attrs.append(self.const(DW_AT_bit_size, m.bit_size))
            die.attrs.append(self.const(DW_AT_data_bit_offset, m.bit_offset))
            return die
        # DWARF 2/3: the storage unit is a naturally aligned object of the declared
        # type's size; DW_AT_bit_offset counts from its most significant bit.
        unit = sizeof(m.type, self.target)
        unit_start = m.bit_offset // (unit * 8) * unit
        within = m.bit_offset - unit_start * 8
        if self.e == "<":
            msb_offset = unit * 8 - within - m.bit_size
        else:
            msb_offset = within
        die.attrs.append(self.const(DW_AT_byte_size, unit))
        die.attrs.append(self.const(DW_AT_bit_size, m.bit_size))
        die.attrs.append(self.const(DW_AT_bit_offset, msb_offset))
        die.attrs.append(self.const(DW_AT_data_member_location, unit_start))
        return die

    # -- serialisation ---------------------------------------------------------------

    def value_size(self, form: int, value: _Value) -> int:
        if form in (DW_FORM_data1, DW_FORM_flag_present):
            return 1 if form == DW_FORM_data1 else 0
        if form == DW_FORM_data2:
            return 2
        if form in (DW_FORM_data4, DW_FORM_strp, DW_FORM_ref4):
            return 4
        if form == DW_FORM_udata:
            assert isinstance(value, int)
            return len(uleb128(value))
        if form == DW_FORM_sdata:
            assert isinstance(value, int)
            return len(sleb128(value))
        if form == DW_FORM_exprloc:
            assert isinstance(value, bytes)
            return len(uleb128(len(value))) + len(value)
        raise ValueError(f"form {form:#x}")

    def encode_value(self, form: int, value: _Value) -> bytes:
        if form == DW_FORM_ref4:
            die = self.dies[id(value)]
            return struct.pack(self.e + "I", die.offset)
        if form == DW_FORM_flag_present:
            return b""
        if form == DW_FORM_exprloc:
            assert isinstance(value, bytes)
            return uleb128(len(value)) + value
        assert isinstance(value, int)
        if form == DW_FORM_data1:
            return struct.pack("B", value)
        if form == DW_FORM_data2:
            return struct.pack(self.e + "H", value)
        if form in (DW_FORM_data4, DW_FORM_strp):
            return struct.pack(self.e + "I", value)
        if form == DW_FORM_udata:
            return uleb128(value)
        if form == DW_FORM_sdata:
            return sleb128(value)
        raise ValueError(f"form {form:#x}")

    def write(self) -> DwarfSections:
        self.build()
        abbrevs: dict[tuple[object, ...], int] = {}
        abbrev_bytes = bytearray()

        def code_of(die: _Die) -> int:
            key = (die.tag, die.has_children, tuple((a, f) for a, f, _ in die.attrs))
            if key not in abbrevs:
                abbrevs[key] = len(abbrevs) + 1
                abbrev_bytes.extend(uleb128(abbrevs[key]) + uleb128(die.tag))
                abbrev_bytes.append(1 if die.has_children else 0)
                for a, f, _ in die.attrs:
                    abbrev_bytes.extend(uleb128(a) + uleb128(f))
                abbrev_bytes.extend(b"\0\0")
            return abbrevs[key]

        header_size = 11 if self.version == 4 else 12

        def place(die: _Die, offset: int) -> int:
            die.offset = offset
            offset += len(uleb128(code_of(die)))
            offset += sum(self.value_size(f, v) for _, f, v in die.attrs)
            if die.has_children:
                for child in die.children:
                    offset = place(child, offset)
                offset += 1  # the null entry ending the children
            return offset

        end = place(self.cu, header_size)
        abbrev_bytes.append(0)

        body = bytearray()

        def emit(die: _Die) -> None:
            assert header_size + len(body) == die.offset
            body.extend(uleb128(code_of(die)))
            for _, f, v in die.attrs:
                body.extend(self.encode_value(f, v))
            if die.has_children:
                for child in die.children:
                    emit(child)
                body.append(0)

        emit(self.cu)
        assert header_size + len(body) == end
        asz = self.target.ptr_size
        if self.version == 4:
            header = struct.pack(self.e + "IHIB", end - 4, 4, 0, asz)
        else:
            header = struct.pack(self.e + "IHBBI", end - 4, 5, DW_UT_compile, asz, 0)
        return DwarfSections(
            debug_info=header + bytes(body),
            debug_abbrev=bytes(abbrev_bytes),
            debug_str=bytes(self.strings),
        )


def write_dwarf(
    types: TypeSet,
    *,
    version: int = 4,
    endian: str | None = None,
    producer: str = "FreeBSD clang version 18.1.6 (pykvm.synth)",
    cu_name: str = "kernel",
    union_member_location: bool = False,
    bitfield_style: Literal["data_bit_offset", "bit_offset"] = "data_bit_offset",
    array_bound: Literal["count", "upper_bound"] = "count",
) -> DwarfSections:
    """``.debug_info``, ``.debug_abbrev`` and ``.debug_str`` describing ``types``.

    ``endian`` defaults to the target's byte order.  See the module docstring for the
    options.
    """
    if version not in (4, 5):
        raise ValueError(f"DWARF version {version} is not written (4 or 5)")
    order = endian or types.target.byteorder
    if order not in ("little", "big"):
        raise ValueError(f"byte order {order!r}")
    writer = _Writer(
        types, version, order, producer, cu_name, union_member_location, bitfield_style,
        array_bound,
    )
    return writer.write()
