"""Write a FreeBSD ``.SUNW_ctf`` section for a :class:`~.cmodel.TypeSet`.

The layout is the one FreeBSD's ``ctfconvert``/``ctfmerge`` produce
(cddl/contrib/opensolaris/tools/ctf/cvt/ctf.c, ``ctf_gen``), for version 2 (the Solaris
format, FreeBSD 13.0 and earlier) and version 3 (FreeBSD's 32-bit-ID format, sys/sys/ctf.h):

* a 36-byte ``ctf_header_t`` in the target byte order, never compressed: magic 0xcff1,
  version, flags (``CTF_F_COMPRESS``), parent label and parent name (string references),
  then the offsets of the label, object, function, type and string sections relative to
  the end of the header, and the string section's length;
* the label section (8-byte ``ctf_lblent`` records), padded to 2 bytes; the object section
  (one type ID per data symbol: 2 bytes in v2, 4 in v3), padded to 2; the function section
  (info word, return type, argument types, 0 for ``...``; no padding between records, as
  the writer emits them), padded to 4; the type section; the string section;
* type records in :attr:`TypeSet.types` order (type ID = position + 1, ID 0 is "none"),
  each a short ``ctf_stype`` or, when the size exceeds ``CTF_MAX_SIZE`` (0xfffe in v2,
  0xfffffffe in v3), a long ``ctf_type`` with the size split in ``lsizehi``/``lsizelo``;
  struct/union members as ``ctf_member`` records, or ``ctf_lmember`` records when the
  aggregate is at least ``CTF_LSTRUCT_THRESH`` bytes (8192 in v2, 2**29 in v3);
* the string section is ``ctfconvert``'s ``strtab``: a NUL at offset 0 (the empty name),
  then every distinct string once, in first-insertion order (parent label, parent name,
  labels, then each type's name followed by its members' or enumerators' names);
* with ``compress=True`` everything after the header is one zlib stream made the way
  ``write_compressed_buffer`` makes it: level 9, the data sections, a full flush, the
  string table, finish.

ctfconvert details reproduced here (they are what a reader meets in a real kernel):

* base-type names are normalised by ``die_base_name_parse``: ``signed char`` becomes
  ``char``, and the signedness comes from the *name* (``char`` is recorded as signed even
  on targets where it is unsigned); ``_Bool`` gets ``CTF_INT_SIGNED | CTF_INT_BOOL``;
* ``void`` is an INTEGER named ``void`` of size 0 and width 0 (``tdesc_intr_void``);
* every array's index type is the integer ``long`` (``tdesc_intr_long``), and an array
  record's size field is the array's total byte size (long form when it is large);
* an integer bit-field member refers to a non-root copy of its base integer with the
  reduced width (``tdesc_intr_clone``), named ``"<base> bitfield"`` by the current tool
  (version 3 default) and ``"<base>"`` by the older one (version 2 default); an enum
  bit-field keeps the enum type;
* a FORWARD record's type field is 0 (the tool does not record the tag's kind);
* the "isroot" flag is set on named typedefs, structs, unions and enums, base types and
  the declared types of variables; pointers, arrays, qualifiers, function types,
  anonymous aggregates, forwards and bit-field copies are not root.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

from .cmodel import (
    ArrayType,
    CType,
    EnumType,
    FloatType,
    FunctionType,
    IntType,
    PointerType,
    QualifiedType,
    StructType,
    TypedefType,
    TypeSet,
    VoidType,
    sizeof,
    strip_typedefs,
)

CTF_MAGIC = 0xCFF1
CTF_VERSION_2 = 2
CTF_VERSION_3 = 3
CTF_F_COMPRESS = 0x1
CTF_HEADER_SIZE = 36

CTF_K_UNKNOWN = 0
CTF_K_INTEGER = 1
CTF_K_FLOAT = 2
CTF_K_POINTER = 3
CTF_K_ARRAY = 4
CTF_K_FUNCTION = 5
CTF_K_STRUCT = 6
CTF_K_UNION = 7
CTF_K_ENUM = 8
CTF_K_FORWARD = 9
CTF_K_TYPEDEF = 10
CTF_K_VOLATILE = 11
CTF_K_CONST = 12
CTF_K_RESTRICT = 13

CTF_INT_SIGNED = 0x1
CTF_INT_CHAR = 0x2
CTF_INT_BOOL = 0x4

CTF_FP_SINGLE = 1
CTF_FP_DOUBLE = 2
CTF_FP_LDOUBLE = 6

_QUAL_KIND = {"const": CTF_K_CONST, "volatile": CTF_K_VOLATILE, "restrict": CTF_K_RESTRICT}


@dataclass(frozen=True)
class _Version:
    """What differs between CTF versions 2 and 3 (sys/sys/ctf.h)."""

    number: int
    id_fmt: str  # one type ID
    kind_shift: int
    root_bit: int
    max_vlen: int
    max_size: int  # largest size a short record holds; the next value is the sentinel
    lstruct_thresh: int
    child_bit: int
    max_type: int

    def info(self, kind: int, isroot: bool, vlen: int) -> int:
        """``CTF_V*_TYPE_INFO(kind, isroot, vlen)``."""
        if vlen > self.max_vlen:
            raise ValueError(f"vlen {vlen} exceeds CTF v{self.number} limit {self.max_vlen}")
        return (kind << self.kind_shift) | (self.root_bit if isroot else 0) | vlen

    @property
    def lsize_sent(self) -> int:
        return self.max_size + 1


V2 = _Version(2, "H", 11, 1 << 10, 0x3FF, 0xFFFE, 1 << 13, 0x8000, 0x7FFF)
V3 = _Version(3, "I", 26, 1 << 25, 0xFFFFFF, 0xFFFFFFFE, 1 << 29, 0x80000000, 0x7FFFFFFF)


@dataclass(frozen=True)
class CtfFunction:
    """A function-section entry: the typed signature of one function symbol."""

    ret: CType
    args: Sequence[CType] = ()
    varargs: bool = False


@dataclass(eq=False)
class _BitfieldInt:
    """A non-root copy of an integer with a reduced width (``tdesc_intr_clone``)."""

    base: IntType
    bits: int


_Record = CType | _BitfieldInt


def ctf_base_name(name: str) -> tuple[str, bool, bool] | None:
    """``die_base_name_parse``: (CTF name, signed, is-char) for a C integer type name.

    None for a name the parser does not recognise (``_Bool``, ``__int128``...), for which
    ctfconvert falls back to the DWARF encoding.
    """
    nlong = nshort = nchar = nint = 0
    sign = True
    for tok in name.split():
        if tok == "signed":
            sign = True
        elif tok == "unsigned":
            sign = False
        elif tok == "long":
            nlong += 1
        elif tok == "char":
            nchar += 1
        elif tok == "short":
            nshort += 1
        elif tok == "int":
            nint += 1
        else:
            return None
    if nchar > 1 or nshort > 1 or nint > 1 or nlong > 2:
        return None
    if nchar and (nlong or nshort or nint):
        return None
    if nshort and nlong:
        return None
    base = "char" if nchar else "short" if nshort else "long" if nlong else "int"
    new = ("" if sign else "unsigned ") + ("long " if nlong > 1 else "") + base
    return new, sign, bool(nchar)


class _StrTab:
    """ctfconvert's string table: NUL at 0, exact duplicates shared, insertion order."""

    def __init__(self) -> None:
        self._data = bytearray(b"\0")
        self._offsets: dict[str, int] = {}

    def insert(self, s: str | None) -> int:
        if not s:
            return 0
        if s not in self._offsets:
            self._offsets[s] = len(self._data)
            self._data += s.encode() + b"\0"
        return self._offsets[s]

    def bytes(self) -> bytes:
        return bytes(self._data)


class CtfWriter:
    """Serialises one TypeSet as a CTF container (see the module docstring)."""

    def __init__(
        self,
        types: TypeSet,
        *,
        version: int = CTF_VERSION_3,
        byteorder: str | None = None,
        bitfield_suffix: bool | None = None,
        parent_name: str | None = None,
        parent_label: str | None = None,
    ) -> None:
        """Prepare the type records; ``parent_name`` makes this a child container."""
        if version not in (CTF_VERSION_2, CTF_VERSION_3):
            raise ValueError(f"CTF version {version} is not written (2 or 3)")
        self.types = types
        self.v = V2 if version == CTF_VERSION_2 else V3
        order = byteorder or types.target.byteorder
        if order not in ("little", "big"):
            raise ValueError(f"byte order {order!r}")
        self.byteorder = order
        self._e = "<" if order == "little" else ">"
        if bitfield_suffix is None:
            bitfield_suffix = version == CTF_VERSION_3
        self.bitfield_suffix = bitfield_suffix
        self.parent_name = parent_name
        self.parent_label = parent_label
        self.child = parent_name is not None
        self.records: list[_Record] = []
        self._ids: dict[int, int] = {}
        self._clones: dict[tuple[int, int], _BitfieldInt] = {}
        self._member_types: dict[tuple[int, int], _Record] = {}
        self._roots: set[int] = {id(v.type) for v in types.variables}
        for t in types.types:
            self._add(t)
        # tdesc_intr_long: every array's index type is the integer "long" (made when the
        # first array is met, so only containers with arrays have it)
        longs = [t for t in types.types if isinstance(t, IntType) and t.name == "long"]
        self._index_long = longs[0] if longs else IntType("long", types.target.ptr_size, True)
        if any(isinstance(t, ArrayType) for t in types.types):
            self._add(self._index_long)
        for t in types.types:
            if isinstance(t, StructType) and t.complete:
                for i, m in enumerate(t.members):
                    self._member_types[(id(t), i)] = self._member_record(m.type, m.bit_size)

    # -- IDs -------------------------------------------------------------------------

    def _add(self, rec: _Record) -> None:
        if id(rec) in self._ids:
            return
        self.records.append(rec)
        index = len(self.records)
        if index > self.v.max_type:
            raise ValueError(f"CTF v{self.v.number} holds at most {self.v.max_type} types")
        self._ids[id(rec)] = index | (self.v.child_bit if self.child else 0)

    def type_id(self, t: CType | _BitfieldInt) -> int:
        """The CTF type ID written for ``t`` (with the child bit in a child container)."""
        return self._ids[id(t)]

    def _member_record(self, t: CType, bits: int | None) -> _Record:
        if bits is None:
            return t
        base = strip_typedefs(t)
        if not isinstance(base, IntType) or base.size * 8 == bits:
            return t  # enum bit-fields and full-width fields keep their declared type
        key = (id(base), bits)
        if key not in self._clones:
            self._clones[key] = _BitfieldInt(base, bits)
            self._add(self._clones[key])
        return self._clones[key]

    # -- records ---------------------------------------------------------------------

    def _isroot(self, t: _Record) -> bool:
        if id(t) in self._roots:
            return True
        if isinstance(t, (IntType, FloatType, VoidType, TypedefType)):
            return True
        if isinstance(t, (StructType, EnumType)):
            return t.name is not None and (not isinstance(t, StructType) or t.complete)
        return False

    def _pack(self, fmt: str, *values: int) -> bytes:
        return struct.pack(self._e + fmt, *values)

    def _sized(self, name: int, info: int, size: int) -> bytes:
        """``write_sized_type_rec``: short record, or long with the size split in two."""
        st = "IHH" if self.v is V2 else "III"
        if size > self.v.max_size:
            return self._pack(st + "II", name, info, self.v.lsize_sent, size >> 32,
                              size & 0xFFFFFFFF)
        return self._pack(st, name, info, size)

    def _unsized(self, name: int, info: int, ref: int) -> bytes:
        return self._pack("IHH" if self.v is V2 else "III", name, info, ref)

    def _ref(self, t: CType) -> int:
        return self.type_id(t)

    def _int_record(self, st: _StrTab, rec: IntType | _BitfieldInt, isroot: bool) -> bytes:
        base = rec.base if isinstance(rec, _BitfieldInt) else rec
        parsed = ctf_base_name(base.name)
        if parsed is not None:
            cname, signed, is_char = parsed
            enc = (CTF_INT_SIGNED if signed else 0) | (CTF_INT_CHAR if is_char else 0)
        elif base.boolean:  # die_base_from_dwarf, DW_ATE_boolean
            cname, enc = base.name, CTF_INT_SIGNED | CTF_INT_BOOL
        else:  # die_base_from_dwarf, DW_ATE_(un)signed(_char)
            cname = base.name
            enc = (CTF_INT_SIGNED if base.signed else 0) | (CTF_INT_CHAR if base.char else 0)
        bits = rec.bits if isinstance(rec, _BitfieldInt) else base.size * 8
        if isinstance(rec, _BitfieldInt) and self.bitfield_suffix:
            cname = f"{cname} bitfield"
        name = st.insert(cname)
        out = self._sized(name, self.v.info(CTF_K_INTEGER, isroot, 1), base.size)
        return out + self._pack("I", (enc << 24) | bits)

    def _record(self, st: _StrTab, rec: _Record) -> bytes:
        v = self.v
        isroot = self._isroot(rec)
        if isinstance(rec, (IntType, _BitfieldInt)):
            return self._int_record(st, rec, isroot)
        if isinstance(rec, VoidType):
            name = st.insert("void")
            out = self._sized(name, v.info(CTF_K_INTEGER, isroot, 1), 0)
            return out + self._pack("I", CTF_INT_SIGNED << 24)
        if isinstance(rec, FloatType):
            name = st.insert(rec.name)
            fmt = {4: CTF_FP_SINGLE, 8: CTF_FP_DOUBLE}.get(rec.size, CTF_FP_LDOUBLE)
            out = self._sized(name, v.info(CTF_K_FLOAT, isroot, 1), rec.size)
            return out + self._pack("I", (fmt << 24) | rec.size * 8)
        if isinstance(rec, PointerType):
            return self._unsized(0, v.info(CTF_K_POINTER, isroot, 0), self._ref(rec.target))
        if isinstance(rec, TypedefType):
            name = st.insert(rec.name)
            return self._unsized(name, v.info(CTF_K_TYPEDEF, isroot, 0), self._ref(rec.target))
        if isinstance(rec, QualifiedType):
            kind = _QUAL_KIND[rec.qualifier]
            return self._unsized(0, v.info(kind, isroot, 0), self._ref(rec.target))
        if isinstance(rec, ArrayType):
            size = sizeof(rec, self.types.target)
            out = self._sized(0, v.info(CTF_K_ARRAY, isroot, 1), size)
            afmt = "HHI" if v is V2 else "III"
            index = self.type_id(self._index_long)
            return out + self._pack(afmt, self._ref(rec.element), index, rec.count)
        if isinstance(rec, EnumType):
            name = st.insert(rec.name)
            entries = rec.enumerators[: v.max_vlen]
            out = self._sized(name, v.info(CTF_K_ENUM, isroot, len(entries)), rec.size)
            for ename, value in entries:
                out += self._pack("Ii", st.insert(ename), value)
            return out
        if isinstance(rec, FunctionType):
            args = [self._ref(a) for a in rec.params] + ([0] if rec.varargs else [])
            out = self._unsized(0, v.info(CTF_K_FUNCTION, isroot, len(args)), self._ref(rec.ret))
            if v is V2:
                if len(args) % 2:
                    args.append(0)  # keep the vlen data 4-byte aligned
                return out + self._pack("H" * len(args), *args)
            return out + self._pack("I" * len(args), *args)
        return self._aggregate(st, rec, isroot)

    def _aggregate(self, st: _StrTab, t: StructType, isroot: bool) -> bytes:
        v = self.v
        name = st.insert(t.name)
        if not t.complete:
            return self._unsized(name, v.info(CTF_K_FORWARD, isroot, 0), 0)
        kind = CTF_K_STRUCT if t.kind == "struct" else CTF_K_UNION
        out = bytearray(self._sized(name, v.info(kind, isroot, len(t.members)), t.size))
        large = t.size >= v.lstruct_thresh
        for i, m in enumerate(t.members):
            mname = st.insert(m.name)
            mtype = self.type_id(self._member_types[(id(t), i)])
            if v is V2:
                if large:
                    out += self._pack("IHHII", mname, mtype, 0, m.bit_offset >> 32,
                                      m.bit_offset & 0xFFFFFFFF)
                else:
                    if m.bit_offset > 0xFFFF:
                        raise ValueError(f"member {m.name} offset overflows a ctf_member")
                    out += self._pack("IHH", mname, mtype, m.bit_offset)
            elif large:
                out += self._pack("IIII", mname, mtype, m.bit_offset >> 32,
                                  m.bit_offset & 0xFFFFFFFF)
            else:
                out += self._pack("III", mname, mtype, m.bit_offset)
        return bytes(out)

    # -- the container ---------------------------------------------------------------

    def write(
        self,
        *,
        compress: bool = True,
        objects: Sequence[str | None] = (),
        functions: Sequence[CtfFunction | None] = (),
        label: str | None = None,
    ) -> bytes:
        """The whole section (header + possibly compressed body).

        ``objects`` lists, in symbol-table order, the data symbols that get an object
        record (a variable name of the TypeSet, or None for "no type information": ID 0);
        ``functions`` likewise for function symbols (None: a one-word pad record);
        ``label`` adds one label covering every type (``ctfmerge -L``).
        """
        v = self.v
        st = _StrTab()
        parlabel = st.insert(self.parent_label)
        parname = st.insert(self.parent_name)
        body = bytearray()
        lbloff = 0
        if label is not None:
            body += self._pack("II", st.insert(label), len(self.records))
        _pad(body, 2)
        objtoff = len(body)
        for obj in objects:
            body += self._pack(v.id_fmt, 0 if obj is None else self.type_id(
                self.types.variable(obj).type))
        _pad(body, 2)
        funcoff = len(body)
        for fn in functions:
            if fn is None:
                body += self._pack(v.id_fmt, 0)
                continue
            args = [self.type_id(a) for a in fn.args] + ([0] if fn.varargs else [])
            words = [v.info(CTF_K_FUNCTION, True, len(args)), self.type_id(fn.ret), *args]
            body += self._pack(v.id_fmt * len(words), *words)
        _pad(body, 4)
        typeoff = len(body)
        for rec in self.records:
            body += self._record(st, rec)
        strtab = st.bytes()
        stroff = len(body)
        header = self._pack(
            "HBBIIIIIIII",
            CTF_MAGIC,
            v.number,
            CTF_F_COMPRESS if compress else 0,
            parlabel,
            parname,
            lbloff,
            objtoff,
            funcoff,
            typeoff,
            stroff,
            len(strtab),
        )
        if not compress:
            return header + bytes(body) + strtab
        z = zlib.compressobj(zlib.Z_BEST_COMPRESSION)
        data = z.compress(bytes(body)) + z.flush(zlib.Z_FULL_FLUSH)
        data += z.compress(strtab) + z.flush(zlib.Z_FINISH)
        return header + data


def _pad(buf: bytearray, align: int) -> None:
    buf += bytes(-len(buf) % align)


def write_ctf(
    types: TypeSet,
    *,
    version: int = CTF_VERSION_3,
    compress: bool = True,
    endian: str | None = None,
    symbols: Sequence[str | None] = (),
    functions: Sequence[CtfFunction | None] = (),
    label: str | None = None,
    parent_label: str | None = None,
    parent_name: str | None = None,
    bitfield_suffix: bool | None = None,
) -> bytes:
    """The ``.SUNW_ctf`` section contents for ``types``.

    ``endian`` ("little"/"big") defaults to the target's byte order; ``symbols`` are the
    object-section entries (see :meth:`CtfWriter.write`); ``parent_name`` /
    ``parent_label`` make a child container whose own type IDs carry the child bit.
    """
    writer = CtfWriter(
        types,
        version=version,
        byteorder=endian,
        bitfield_suffix=bitfield_suffix,
        parent_name=parent_name,
        parent_label=parent_label,
    )
    return writer.write(compress=compress, objects=symbols, functions=functions, label=label)
