"""Targeted DWARF type lookups through pyelftools (kernel-data.md 11.10).

The DWARF of a FreeBSD kernel lives in its separate debug file
(``/usr/lib/debug/boot/kernel/kernel.debug``) or, for a kernel built without
stripping, in the kernel itself.  It is large (hundreds of megabytes, thousands
of compile units), and pykvm needs a few dozen structures from it, so nothing
here ever walks every DIE:

* A struct, union, enum, typedef, base type or variable is looked up **by name**.
  The compile units that may define it are found first with a byte search: the
  name's offsets in ``.debug_str`` (as a ``DW_FORM_strp`` value of the unit's
  offset size and byte order) or the name itself (``DW_FORM_string``) must occur
  in the unit's bytes.  Units whose names are string-table indexes
  (``DW_FORM_strx*``, DWARF 5, what clang writes) are candidates when their
  slice of ``.debug_str_offsets`` holds one of the name's string offsets.
  ``.debug_pubtypes``, when present, is asked first.
* Only the **top-level** DIEs of a candidate unit are read (a subtree is skipped
  through ``DW_AT_sibling`` when the producer wrote one), each unit
  resumably and at most once; every top-level name seen is indexed on the way,
  and the search stops at the first *definition* (not a declaration) of the name
  asked for.  A declaration that carries ``DW_AT_signature`` leads straight to
  its type unit.
* Types are then decoded one DIE at a time by following references, and cached
  by handle.

Handles are integers: the DIE's offset in ``.debug_info``; DIEs of
``.debug_types`` carry :data:`TU_BIT`; the inner dimensions of a
multi-dimensional array carry a dimension index in the bits from
:data:`DIM_SHIFT` up.  Handle 0 is ``void`` (no ``DW_AT_type``).

Member positions follow DWARF 4's ``DW_AT_data_bit_offset`` convention (and
CTF's): a member occupies bits ``[bit_offset, bit_offset + bit_size)`` counted
from the start of the aggregate, least significant bit first on little-endian
targets and most significant bit first on big-endian ones.  The DWARF 2/3 form
(``DW_AT_bit_offset`` from the most significant bit of a ``DW_AT_byte_size``
storage unit) is converted the way ctfconvert's ``die_sou_create`` does.

Every failure of pyelftools on corrupt data becomes a
:class:`~pykvm.errors.FormatError` whose text starts with ``DWARF:``.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, Any, Literal, TypeVar

from .. import errors as E
from ..errors import FormatError, KvmError

__all__ = [
    "DIM_SHIFT",
    "TU_BIT",
    "DwarfFile",
    "DwarfMember",
    "DwarfType",
]

#: Bit marking a handle as a DIE of ``.debug_types``.
TU_BIT = 1 << 55
#: Handles of inner array dimensions carry the dimension index from this bit up.
DIM_SHIFT = 56
_OFFSET_MASK = TU_BIT - 1
#: Longest typedef/qualifier chain or nesting followed before declaring a cycle.
_MAX_CHAIN = 256
#: Widest bit-field accepted (C allows the width of the declared integer type).
_MAX_BITS = 128
#: More strp targets than this for one name and the byte prefilter is skipped.
_MAX_NEEDLES = 256

# DW_ATE_* base type encodings (DWARF 5, 7.8)
_ATE_ADDRESS = 0x01
_ATE_BOOLEAN = 0x02
_ATE_COMPLEX_FLOAT = 0x03
_ATE_FLOAT = 0x04
_ATE_SIGNED = 0x05
_ATE_SIGNED_CHAR = 0x06
_ATE_UNSIGNED = 0x07
_ATE_UNSIGNED_CHAR = 0x08
_ATE_IMAGINARY_FLOAT = 0x09
_ATE_UTF = 0x10
_ATE_SIGNED_FIXED = 0x0D
_FLOATS = frozenset((_ATE_COMPLEX_FLOAT, _ATE_FLOAT, _ATE_IMAGINARY_FLOAT))
_SIGNED = frozenset((_ATE_SIGNED, _ATE_SIGNED_CHAR, _ATE_SIGNED_FIXED))

# DWARF expression opcodes a member location may use
_OP_CONSTU = 0x10
_OP_PLUS = 0x22
_OP_PLUS_UCONST = 0x23

#: Tags indexed by name, and the kind word a lookup uses for them.
_INDEX_KIND = {
    "DW_TAG_structure_type": "struct",
    "DW_TAG_class_type": "struct",
    "DW_TAG_union_type": "union",
    "DW_TAG_enumeration_type": "enum",
    "DW_TAG_typedef": "typedef",
    "DW_TAG_base_type": "base",
    "DW_TAG_variable": "variable",
}
_KINDS = frozenset(_INDEX_KIND.values())
_AGGREGATE_KINDS = frozenset(("struct", "union", "enum"))

_QUALIFIER_TAGS = {
    "DW_TAG_typedef": "typedef",
    "DW_TAG_const_type": "const",
    "DW_TAG_volatile_type": "volatile",
    "DW_TAG_restrict_type": "restrict",
    "DW_TAG_atomic_type": "atomic",
    "DW_TAG_immutable_type": "const",
    "DW_TAG_shared_type": "volatile",
}
_POINTER_TAGS = frozenset(("DW_TAG_pointer_type", "DW_TAG_reference_type",
                           "DW_TAG_rvalue_reference_type"))
_REF_FORMS = frozenset(("DW_FORM_ref1", "DW_FORM_ref2", "DW_FORM_ref4", "DW_FORM_ref8",
                        "DW_FORM_ref_udata", "DW_FORM_ref_addr", "DW_FORM_ref_sig8"))
_LOCAL_REF_FORMS = frozenset(("DW_FORM_ref1", "DW_FORM_ref2", "DW_FORM_ref4", "DW_FORM_ref8",
                              "DW_FORM_ref_udata"))
_CONST_FORMS = frozenset(("DW_FORM_data1", "DW_FORM_data2", "DW_FORM_data4",
                          "DW_FORM_data8", "DW_FORM_data16", "DW_FORM_udata",
                          "DW_FORM_sdata", "DW_FORM_implicit_const"))
_DATA_WIDTH = {"DW_FORM_data1": 1, "DW_FORM_data2": 2, "DW_FORM_data4": 4,
               "DW_FORM_data8": 8}
_BLOCK_FORMS = frozenset(("DW_FORM_exprloc", "DW_FORM_block", "DW_FORM_block1",
                          "DW_FORM_block2", "DW_FORM_block4"))
_STRX_FORMS = frozenset(("DW_FORM_strx", "DW_FORM_strx1", "DW_FORM_strx2",
                         "DW_FORM_strx3", "DW_FORM_strx4"))

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class DwarfMember:
    """One ``DW_TAG_member``: name ("" when anonymous), position in bits, type handle.

    ``bit_size`` is None for an ordinary member and the width of a bit-field.
    """

    name: str
    bit_offset: int
    type: int
    bit_size: int | None = None


@dataclass(frozen=True, slots=True)
class DwarfType:
    """One type DIE, decoded.

    ``kind`` is one of ``int``, ``bool``, ``float``, ``pointer``, ``array``,
    ``struct``, ``union``, ``enum``, ``typedef``, ``const``, ``volatile``,
    ``restrict``, ``atomic``, ``function``, ``void``, ``unknown``.  The members
    of a struct or union come from :meth:`DwarfFile.members` (decoded only when
    asked: a pointer to a struct never reads the struct's members).
    ``size`` is ``DW_AT_byte_size`` (pointers: the address size; arrays: count
    times element size when known), None when the DIE gives none.  ``ref`` is the
    referenced type (pointee, aliased or qualified type, array element, function
    return type; 0 for ``void``).  ``declaration`` marks an incomplete struct,
    union or enum (``DW_AT_declaration``).  ``count`` is the element count of an
    array dimension (None when unbounded).
    """

    handle: int
    kind: str
    name: str
    size: int | None = None
    ref: int = 0
    signed: bool = False
    encoding: int | None = None
    declaration: bool = False
    enumerators: tuple[tuple[str, int], ...] = ()
    count: int | None = None
    params: tuple[int, ...] = ()
    variadic: bool = False


def _fail(fmt: str, *args: int | str) -> FormatError:
    return FormatError(E.cformat(fmt, *args))


def _uleb(data: list[int] | bytes, pos: int) -> tuple[int, int]:
    """An unsigned LEB128 number at ``pos``: (value, next position)."""
    value = shift = 0
    while True:
        if pos >= len(data):
            raise _fail(E.DWARF_BAD_EXPR, "truncated LEB128")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos
        if shift > 70:
            raise _fail(E.DWARF_BAD_EXPR, "LEB128 too long")


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "surrogateescape")
    if isinstance(value, str):
        return value
    raise _fail(E.DWARF_BAD_ATTR, "DW_AT_name", type(value).__name__)


class _UnitScan:
    """The resumable walk over the top-level DIEs of one unit."""

    __slots__ = ("it", "done")

    def __init__(self, it: Iterator[Any]) -> None:
        self.it = it
        self.done = False


class DwarfFile:
    """The DWARF of one ELF file, for lookups by name.  Build with :meth:`open`
    or :meth:`from_bytes`; :meth:`close` releases the file."""

    def __init__(self, stream: IO[bytes], name: str, *, owned: bool = False) -> None:
        from elftools.elf.elffile import ELFFile

        self.name = name
        self._stream = stream
        self._owned = owned
        self.byteorder = "little"
        self.address_size = 8
        self._di: Any = None
        self._units: list[tuple[int, int]] | None = None  # (start, end) of each CU
        self._info_bytes: bytes | None = None
        self._str_bytes: bytes | None = None
        self._stroffs_bytes: bytes | None = None
        self._strx: list[tuple[int, int, int, int]] | None = None
        self._scans: dict[tuple[bool, int], _UnitScan] = {}
        self._defs: dict[tuple[str, str], int] = {}
        self._decls: dict[tuple[str, str], int] = {}
        self._misses: set[tuple[str, str]] = set()
        self._dies: dict[int, Any] = {}
        self._types: dict[int, DwarfType] = {}
        self._sizes: dict[int, int | None] = {}
        self._pubtypes: dict[str, list[int]] | None = None
        self._versions: set[int] = set()
        self._sig_units: dict[int, Any] | None = None
        self._aliases: dict[int, int] = {}  # skeleton DIE -> its type unit's DIE
        self._members_cache: dict[int, tuple[DwarfMember, ...]] = {}
        try:
            self._elf = ELFFile(stream)
            has_info = any(self._elf.get_section_by_name(n) is not None
                           for n in (".debug_info", ".zdebug_info"))
            self.byteorder = "little" if self._elf.little_endian else "big"
            self.address_size = 8 if self._elf.elfclass == 64 else 4
        except Exception as exc:
            self.close()
            raise _wrap(exc) from exc
        if not has_info:
            self.close()
            raise FormatError(E.cformat(E.DWARF_NONE, name))

    # ------------------------------------------------------------------ open
    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> DwarfFile:
        """Open ``path`` (a ``kernel.debug`` or an unstripped kernel).

        Raises :class:`KvmError` (``path: strerror``) when the file cannot be
        opened and :class:`FormatError` when it is not ELF or has no DWARF.
        """
        text = os.fspath(path)
        try:
            stream = open(text, "rb")  # noqa: SIM115 - kept open until close()
        except OSError as exc:
            raise KvmError(f"{text}: {E.strerror(exc.errno or 0)}") from None
        head = stream.read(4)
        stream.seek(0)
        if head != b"\x7fELF":
            stream.close()
            raise FormatError(E.cformat(E.DWARF_NOT_ELF, text))
        return cls(stream, text, owned=True)

    @classmethod
    def from_bytes(cls, data: bytes, name: str = "<bytes>") -> DwarfFile:
        """An ELF image held in memory."""
        if data[:4] != b"\x7fELF":
            raise FormatError(E.cformat(E.DWARF_NOT_ELF, name))
        return cls(io.BytesIO(data), name, owned=True)

    def close(self) -> None:
        """Drop everything and close the file if this object opened it."""
        self._di = None
        self._info_bytes = None
        self._dies.clear()
        self._scans.clear()
        if self._owned:
            self._stream.close()

    def __enter__(self) -> DwarfFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _guard(self, fn: Callable[[], T]) -> T:
        """Run ``fn``; any failure except a KvmError becomes ``FormatError("DWARF: ...")``."""
        try:
            return fn()
        except KvmError:
            raise
        except Exception as exc:
            raise _wrap(exc) from exc

    @property
    def info(self) -> Any:
        """pyelftools' ``DWARFInfo`` (read on first use)."""
        if self._di is None:
            def load() -> Any:
                return self._elf.get_dwarf_info(relocate_dwarf_sections=True,
                                                follow_links=False)
            self._di = self._guard(load)
        return self._di

    # ----------------------------------------------------------------- units
    def _unit_table(self) -> list[tuple[int, int]]:
        if self._units is None:
            def walk() -> list[tuple[int, int]]:
                out = []
                for cu in self.info.iter_CUs():
                    out.append((cu.cu_offset, cu.cu_offset + cu.size))
                    self._versions.add(int(cu["version"]))
                return out
            self._units = self._guard(walk)
        return self._units

    def summary(self) -> dict[str, Any]:
        """Units, DWARF versions, type units and section sizes (for ``pykvm types``)."""
        units = self._unit_table()

        def tus() -> int:
            return sum(1 for _ in self.info.iter_TUs()) if self.info.has_debug_types else 0
        sec = self.info.debug_info_sec
        return {
            "file": self.name,
            "units": len(units),
            "type_units": self._guard(tus),
            "versions": sorted(self._versions),
            "debug_info_bytes": int(sec.size) if sec is not None else 0,
            "byteorder": self.byteorder,
            "address_size": self.address_size,
        }

    # ------------------------------------------------------------- prefilter
    def _section(self, which: str) -> bytes:
        """The bytes of a DWARF section pyelftools has read (b"" when absent)."""
        sec = getattr(self.info, which, None)
        if sec is None:
            return b""
        stream = sec.stream
        if isinstance(stream, io.BytesIO):
            return stream.getvalue()
        stream.seek(0)
        return bytes(stream.read())

    def _candidates(self, name: str) -> list[int]:
        """Offsets of the units that may define ``name``, in section order."""
        units = self._unit_table()
        if not units:
            return []
        if self._info_bytes is None:
            self._info_bytes = self._guard(lambda: self._section("debug_info_sec"))
        if self._str_bytes is None:
            self._str_bytes = self._guard(lambda: self._section("debug_str_sec"))
        info, strs = self._info_bytes, self._str_bytes
        raw = name.encode("utf-8", "surrogateescape") + b"\0"
        targets: list[int] = []
        pos = strs.find(raw)
        while pos >= 0 and len(targets) <= _MAX_NEEDLES:
            targets.append(pos)
            pos = strs.find(raw, pos + 1)
        if len(targets) > _MAX_NEEDLES:
            return [s for s, _ in units]
        order: Literal["little", "big"] = "little" if self.byteorder == "little" else "big"
        needles = [raw] + [t.to_bytes(4, order) for t in targets if t < 1 << 32]
        needles += [t.to_bytes(8, order) for t in targets]
        # one C-level search per unit and needle, stopping at the first hit: a
        # frequent needle (a small string offset) costs no Python loop per hit
        chosen: set[int] = set()
        for start, end in units:
            for needle in needles:
                if info.find(needle, start, end) >= 0:
                    chosen.add(start)
                    break
        strx = self._strx_table()
        if strx:
            # units that name things by index: does their slice of .debug_str_offsets
            # hold one of the name's string offsets?
            if self._stroffs_bytes is None:
                self._stroffs_bytes = self._guard(
                    lambda: self._section("debug_str_offsets_sec"))
            table = self._stroffs_bytes
            for base, end, esize, start in strx:
                if start in chosen:
                    continue
                if base < 0 or any(_holds(table, n, base, end, esize)
                                   for n in needles[1:] if len(n) == esize):
                    chosen.add(start)  # (no base given: cannot tell)
        return sorted(chosen)

    def _strx_table(self) -> list[tuple[int, int, int, int]]:
        """``(base, end, entry size, unit)`` of each unit naming things through
        ``.debug_str_offsets`` (DWARF 5 ``DW_FORM_strx*``), base -1 when unknown."""
        if self._strx is not None:
            return self._strx
        out: list[tuple[int, int, int, int]] = []
        if self._versions and max(self._versions) >= 5:
            def collect() -> None:
                order: Literal["little", "big"] = \
                    "little" if self.byteorder == "little" else "big"
                table: bytes | None = None
                for start, _ in self._unit_table():
                    cu = self.info.get_CU_at(start)
                    if int(cu["version"]) < 5:
                        continue
                    top = cu.get_top_DIE()
                    attr = top.attributes.get("DW_AT_str_offsets_base")
                    if attr is None:
                        name = top.attributes.get("DW_AT_name")
                        if name is not None and name.form in _STRX_FORMS:
                            out.append((-1, -1, 4, start))
                        continue
                    if table is None:
                        table = self._section("debug_str_offsets_sec")
                    base = int(attr.value)
                    wide = cu.dwarf_format() == 64
                    esize = 8 if wide else 4
                    head = base - (12 if wide else 8)  # the contribution's unit_length
                    end = len(table)
                    if head >= 0:
                        length = int.from_bytes(table[head:head + esize], order)
                        if base <= head + esize + length <= len(table):
                            end = head + esize + length
                    out.append((base, end, esize, start))
            self._guard(collect)
        self._strx = out
        return out

    # ---------------------------------------------------------------- lookup
    def find(self, kind: str, name: str) -> int | None:
        """The handle of the first definition of ``kind`` ``name``, or None.

        ``kind`` is ``struct``, ``union``, ``enum``, ``typedef``, ``base`` or
        ``variable``.  For a variable only declared (``extern``) the declaration
        answers when no definition exists.
        """
        if kind not in _KINDS:
            raise ValueError(f"unknown DWARF lookup kind {kind!r}")
        key = (kind, name)
        hit = self._defs.get(key)
        if hit is not None:
            return hit
        if key not in self._misses:
            hit = self._guard(lambda: self._search(key))
            if hit is not None:
                return hit
            self._misses.add(key)
        return self._decls.get(key) if kind == "variable" else None

    def _search(self, key: tuple[str, str]) -> int | None:
        hit = self._from_pubtypes(key)
        if hit is not None:
            return hit
        for offset in self._candidates(key[1]):
            if self._scan_unit(False, offset, None, key):
                return self._defs[key]
        if self.info.has_debug_types:
            for tu in self.info.iter_TUs():
                if self._scan_unit(True, tu.cu_offset, tu, key):
                    return self._defs[key]
        return None

    def _from_pubtypes(self, key: tuple[str, str]) -> int | None:
        if key[0] == "variable":
            return None
        if self._pubtypes is None:
            self._pubtypes = {}
            lut = self.info.get_pubtypes()
            if lut is not None:
                for entry_name, entry in lut.items():
                    self._pubtypes.setdefault(_text(entry_name), []).append(
                        int(entry.die_ofs))
        for off in self._pubtypes.get(key[1], ()):
            die = self.info.get_DIE_from_refaddr(off)
            self._index_die(die)
            hit = self._defs.get(key)
            if hit is not None:
                return hit
        return None

    def _scan_unit(self, type_unit: bool, offset: int, unit: Any,
                   key: tuple[str, str]) -> bool:
        """Read top-level DIEs of a unit until ``key`` has a definition; True if it does."""
        state = self._scans.get((type_unit, offset))
        if state is None:
            if unit is None:
                unit = self.info.get_CU_at(offset)
            state = _UnitScan(self._children(unit.get_top_DIE()))
            self._scans[(type_unit, offset)] = state
        while key not in self._defs:
            if state.done:
                return False
            die = next(state.it, None)
            if die is None:
                state.done = True
                return False
            self._index_die(die)
        return True

    def _index_die(self, die: Any) -> None:
        """Remember a top-level DIE under its name."""
        kind = _INDEX_KIND.get(die.tag) if isinstance(die.tag, str) else None
        if kind is None:
            return
        attrs = die.attributes
        name_attr = attrs.get("DW_AT_name")
        target = die
        if name_attr is None and kind == "variable" and "DW_AT_specification" in attrs:
            spec = self._follow(die, "DW_AT_specification")
            name_attr = spec.attributes.get("DW_AT_name")
        if name_attr is None:
            return
        name = _text(name_attr.value)
        key = (kind, name)
        if attrs.get("DW_AT_declaration") is not None and attrs["DW_AT_declaration"].value:
            sig = attrs.get("DW_AT_signature")
            if sig is not None and kind in _AGGREGATE_KINDS:
                target = self._follow(die, "DW_AT_signature")
                decl = target.attributes.get("DW_AT_declaration")
                if decl is None or not decl.value:
                    self._defs.setdefault(key, self._register(target))
                    return
            if kind == "variable" and "DW_AT_type" not in attrs:
                return
            self._decls.setdefault(key, self._register(die))
            return
        if kind == "variable" and "DW_AT_type" not in attrs and "DW_AT_specification" not in attrs:
            return
        self._defs.setdefault(key, self._register(target))

    def _register(self, die: Any) -> int:
        """The handle of ``die`` (remembered, so that handles always resolve)."""
        from elftools.dwarf.typeunit import TypeUnit

        handle = int(die.offset)
        if isinstance(die.cu, TypeUnit):
            handle |= TU_BIT
        self._dies[handle] = die
        return handle

    def _die(self, handle: int) -> Any:
        base = handle & ((1 << DIM_SHIFT) - 1)
        die = self._dies.get(base)
        if die is None:
            if base & TU_BIT or base == 0:
                raise _fail(E.DWARF_BAD_HANDLE, handle)
            die = self.info.get_DIE_from_refaddr(base)
            self._dies[base] = die
        return die

    def _follow(self, die: Any, attr: str) -> Any:
        """The DIE an attribute of ``die`` refers to, DWARF 5 type units included
        (pyelftools looks signatures up in ``.debug_types`` only)."""
        value = die.attributes[attr]
        if value.form != "DW_FORM_ref_sig8":
            return die.get_DIE_from_attribute(attr)
        if self.info.has_debug_types:
            try:
                return die.get_DIE_from_attribute(attr)
            except KeyError:
                pass
        if self._sig_units is None:
            self._sig_units = {}
            for cu in self.info.iter_CUs():
                if cu.header.get("unit_type") in ("DW_UT_type", "DW_UT_split_type"):
                    self._sig_units[int(cu["type_signature"])] = cu
        unit = self._sig_units.get(int(value.value))
        if unit is None:
            raise _fail(E.DWARF_CORRUPT, "missing type unit",
                        f"signature 0x{int(value.value):016x}")
        return unit.get_DIE_from_refaddr(unit.cu_offset + int(unit["type_offset"]))

    def _children(self, die: Any) -> Iterator[Any]:
        """The children of ``die``, read so that corrupt data cannot loop.

        pyelftools' ``iter_children`` trusts ``DW_AT_sibling`` (a sibling that
        points backwards loops forever); here every step moves strictly forward
        and stays inside the unit: a sibling reference is taken only when it
        points ahead, otherwise the subtree is skipped DIE by DIE.
        """
        if not die.has_children:
            return
        from elftools.dwarf.die import DIE

        cu = die.cu
        stream = die.stream
        end = cu.cu_offset + cu.size
        off = die.offset + die.size
        while True:
            if off >= end:
                raise _fail(E.DWARF_CORRUPT, "DIE tree", "children run past the end of the unit")
            child = DIE(cu=cu, stream=stream, offset=off)
            if child.is_null():
                return
            yield child
            off = self._after(child, end)

    def _after(self, die: Any, end: int) -> int:
        """Offset of the DIE following ``die`` and its subtree."""
        from elftools.dwarf.die import DIE

        nxt = int(die.offset + die.size)
        if not die.has_children:
            return nxt
        sib = die.attributes.get("DW_AT_sibling")
        if sib is not None and sib.form in _LOCAL_REF_FORMS and isinstance(sib.value, int):
            target = int(sib.value) + int(die.cu.cu_offset)
            if nxt <= target < end:
                return target
        depth, off = 1, nxt
        while depth:
            if off >= end:
                raise _fail(E.DWARF_CORRUPT, "DIE tree", "children run past the end of the unit")
            d = DIE(cu=die.cu, stream=die.stream, offset=off)
            off += d.size
            if d.is_null():
                depth -= 1
            elif d.has_children:
                depth += 1
        return off

    def _ref(self, die: Any, attr: str = "DW_AT_type") -> int:
        value = die.attributes.get(attr)
        if value is None:
            return 0
        if value.form not in _REF_FORMS:
            raise _fail(E.DWARF_BAD_ATTR, attr, str(value.form))
        return self._register(self._follow(die, attr))

    # ----------------------------------------------------------------- types
    def type(self, handle: int) -> DwarfType:
        """The type DIE ``handle``, decoded (cached).  Handle 0 is ``void``."""
        t = self._types.get(handle)
        if t is None:
            t = self._guard(lambda: self._decode(handle))
            self._types[handle] = t
        return t

    def _decode(self, handle: int) -> DwarfType:
        if handle == 0:
            return DwarfType(0, "void", "void")
        die = self._die(handle)
        tag = die.tag
        attrs = die.attributes
        name = _text(attrs["DW_AT_name"].value) if "DW_AT_name" in attrs else ""
        size = self._int_attr(die, "DW_AT_byte_size")
        decl = bool(attrs["DW_AT_declaration"].value) if "DW_AT_declaration" in attrs else False
        if tag == "DW_TAG_base_type":
            enc = self._int_attr(die, "DW_AT_encoding")
            if enc in _FLOATS:
                kind = "float"
            elif enc == _ATE_BOOLEAN:
                kind = "bool"
            elif enc is None and size == 0:
                kind = "void"
            else:
                kind = "int"
            return DwarfType(handle, kind, name, size, signed=enc in _SIGNED, encoding=enc)
        if tag in _POINTER_TAGS:
            return DwarfType(handle, "pointer", name, size or die.cu["address_size"],
                             ref=self._ref(die))
        qual = _QUALIFIER_TAGS.get(tag)
        if qual is not None:
            return DwarfType(handle, qual, name, ref=self._ref(die))
        if tag in ("DW_TAG_structure_type", "DW_TAG_class_type", "DW_TAG_union_type"):
            kind = "union" if tag == "DW_TAG_union_type" else "struct"
            if "DW_AT_signature" in attrs:
                return self._decode_via(handle, die, "DW_AT_signature")
            return DwarfType(handle, kind, name, None if decl else size, declaration=decl)
        if tag == "DW_TAG_enumeration_type":
            if "DW_AT_signature" in attrs:
                return self._decode_via(handle, die, "DW_AT_signature")
            under = self._ref(die)
            signed = self.type(under).signed if under else False
            enums = self._enumerators(die, signed)
            if not under:
                signed = any(v < 0 for _, v in enums)
            return DwarfType(handle, "enum", name, size, ref=under, signed=signed,
                             declaration=decl, enumerators=enums)
        if tag == "DW_TAG_array_type":
            return self._array(handle, die, name)
        if tag == "DW_TAG_subroutine_type":
            params: list[int] = []
            variadic = False
            for child in self._children(die):
                if child.tag == "DW_TAG_formal_parameter":
                    params.append(self._ref(child))
                elif child.tag == "DW_TAG_unspecified_parameters":
                    variadic = True
            return DwarfType(handle, "function", name, ref=self._ref(die), params=tuple(params),
                             variadic=variadic)
        if tag == "DW_TAG_unspecified_type":
            return DwarfType(handle, "void", name or "void")
        return DwarfType(handle, "unknown", name or str(tag), size)

    def _decode_via(self, handle: int, die: Any, attr: str) -> DwarfType:
        target = self._register(self._follow(die, attr))
        if target == handle:
            raise _fail(E.DWARF_CYCLE, handle)
        t = self.type(target)
        self._aliases[handle] = target
        return DwarfType(handle, t.kind, t.name, t.size, t.ref, t.signed, t.encoding,
                         t.declaration, t.enumerators, t.count, t.params, t.variadic)

    def _int_attr(self, die: Any, attr: str) -> int | None:
        value = die.attributes.get(attr)
        if value is None:
            return None
        if value.form not in _CONST_FORMS and value.form != "DW_FORM_flag":
            raise _fail(E.DWARF_BAD_ATTR, attr, str(value.form))
        v = value.value
        if not isinstance(v, int):
            raise _fail(E.DWARF_BAD_ATTR, attr, str(value.form))
        return v

    def _enumerators(self, die: Any, signed: bool) -> tuple[tuple[str, int], ...]:
        out = []
        for child in self._children(die):
            if child.tag != "DW_TAG_enumerator":
                continue
            attrs = child.attributes
            if "DW_AT_name" not in attrs or "DW_AT_const_value" not in attrs:
                continue
            cv = attrs["DW_AT_const_value"]
            value = cv.value
            if not isinstance(value, int):
                raise _fail(E.DWARF_BAD_ATTR, "DW_AT_const_value", str(cv.form))
            width = _DATA_WIDTH.get(cv.form)
            if signed and width and value >> (8 * width - 1):
                value -= 1 << (8 * width)
            out.append((_text(attrs["DW_AT_name"].value), value))
        return tuple(out)

    def _array(self, handle: int, die: Any, name: str) -> DwarfType:
        dims: list[int | None] = []
        for child in self._children(die):
            if child.tag == "DW_TAG_subrange_type":
                dims.append(self._subrange_count(child))
            elif child.tag == "DW_TAG_enumeration_type":
                dims.append(len(self._enumerators(child, False)))
        if not dims:
            dims.append(None)
        level = handle >> DIM_SHIFT
        if level >= len(dims):
            raise _fail(E.DWARF_BAD_HANDLE, handle)
        base = handle & ((1 << DIM_SHIFT) - 1)
        element = base | ((level + 1) << DIM_SHIFT) if level + 1 < len(dims) else \
            self._ref(die)
        count = dims[level]
        esize = self.sizeof(element)
        size = count * esize if count is not None and esize is not None else None
        if size is None and level == 0 and count is not None:
            size = self._int_attr(die, "DW_AT_byte_size")
        return DwarfType(handle, "array", name, size, ref=element, count=count)

    def _subrange_count(self, sub: Any) -> int | None:
        attrs = sub.attributes
        if "DW_AT_count" in attrs:
            if attrs["DW_AT_count"].form not in _CONST_FORMS:
                return None  # a variable-length array
            return self._int_attr(sub, "DW_AT_count")
        if "DW_AT_upper_bound" in attrs:
            ub = attrs["DW_AT_upper_bound"]
            if ub.form not in _CONST_FORMS:
                return None
            upper = ub.value
            width = _DATA_WIDTH.get(ub.form)
            if width in (4, 8) and upper == (1 << (8 * width)) - 1:
                return 0  # older GCC's "[0]": upper bound -1 as an unsigned constant
            lower = self._int_attr(sub, "DW_AT_lower_bound") or 0
            if upper < lower - 1:
                return 0
            return int(upper) - lower + 1
        return None

    def members(self, handle: int) -> tuple[DwarfMember, ...]:
        """The members of the struct or union ``handle`` (empty for a declaration)."""
        got = self._members_cache.get(handle)
        if got is None:
            def decode() -> tuple[DwarfMember, ...]:
                t = self.type(handle)
                if t.kind not in ("struct", "union") or t.declaration:
                    return ()
                target = self._aliases.get(handle, handle)
                return self._members(self._die(target))
            got = self._guard(decode)
            self._members_cache[handle] = got
        return got

    def _members(self, die: Any) -> tuple[DwarfMember, ...]:
        out = []
        big = self.byteorder == "big"
        for child in self._children(die):
            if child.tag != "DW_TAG_member":
                continue
            attrs = child.attributes
            name = _text(attrs["DW_AT_name"].value) if "DW_AT_name" in attrs else ""
            mtype = self._ref(child)
            bit_size = self._int_attr(child, "DW_AT_bit_size")
            if bit_size is not None and not 0 < bit_size <= _MAX_BITS:
                raise _fail(E.DWARF_CORRUPT, f"member {name or '(anonymous)'}",
                            f"bit size {bit_size}")
            loc = self._member_location(child, name)
            if "DW_AT_data_bit_offset" in attrs:
                bit_offset = self._int_attr(child, "DW_AT_data_bit_offset") or 0
            elif "DW_AT_bit_offset" in attrs and bit_size is not None:
                storage = self._int_attr(child, "DW_AT_byte_size")
                if storage is None:
                    storage = self.sizeof(mtype) or 0
                msb = self._int_attr(child, "DW_AT_bit_offset") or 0
                form = attrs["DW_AT_bit_offset"].form
                width = _DATA_WIDTH.get(form)
                if width and msb >> (8 * width - 1):
                    msb -= 1 << (8 * width)  # DWARF 3: may be negative
                if big:
                    bit_offset = loc * 8 + msb
                else:
                    bit_offset = loc * 8 + storage * 8 - msb - bit_size
            else:
                bit_offset = loc * 8
            if bit_offset < 0:
                raise _fail(E.DWARF_BAD_MEMBER, name or "(anonymous)", "negative offset")
            out.append(DwarfMember(name, bit_offset, mtype, bit_size))
        return tuple(out)

    def _member_location(self, member: Any, name: str) -> int:
        value = member.attributes.get("DW_AT_data_member_location")
        if value is None:
            return 0
        if value.form in _CONST_FORMS:
            v = value.value
            if not isinstance(v, int):
                raise _fail(E.DWARF_BAD_MEMBER, name or "(anonymous)", str(value.form))
            return v
        if value.form in _BLOCK_FORMS:
            expr = value.value
            if not isinstance(expr, (list, bytes)) or not expr:
                raise _fail(E.DWARF_BAD_MEMBER, name or "(anonymous)", "empty expression")
            op = expr[0]
            if op in (_OP_PLUS_UCONST, _OP_CONSTU):
                off, pos = _uleb(expr, 1)
                if pos == len(expr) or (op == _OP_CONSTU and list(expr[pos:]) == [_OP_PLUS]):
                    return off
            raise _fail(E.DWARF_BAD_MEMBER, name or "(anonymous)",
                        "location expression " + bytes(expr).hex())
        raise _fail(E.DWARF_BAD_MEMBER, name or "(anonymous)", str(value.form))

    def resolve(self, handle: int) -> int:
        """Follow typedefs and qualifiers to the underlying type (0 for void)."""
        seen = 0
        t = handle
        while t:
            ty = self.type(t)
            if ty.kind not in ("typedef", "const", "volatile", "restrict", "atomic"):
                return t
            t = ty.ref
            seen += 1
            if seen > _MAX_CHAIN:
                raise _fail(E.DWARF_CYCLE, handle)
        return 0

    def sizeof(self, handle: int) -> int | None:
        """Bytes of storage of ``handle`` (None when DWARF does not say: void,
        functions, incomplete types, unbounded arrays)."""
        if handle in self._sizes:
            return self._sizes[handle]
        self._sizes[handle] = None  # a cycle reads as "unknown" instead of recursing
        t = self.resolve(handle)
        size: int | None = None
        if t:
            ty = self.type(t)
            if ty.kind == "enum" and ty.size is None:
                size = self.sizeof(ty.ref) if ty.ref else 4
            elif ty.kind not in ("function", "void"):
                size = ty.size
        self._sizes[handle] = size
        return size

    def variable(self, name: str) -> int | None:
        """The type handle of the kernel variable ``name`` (its definition when there
        is one, else a declaration), or None."""
        handle = self.find("variable", name)
        if handle is None:
            return None

        def typeof() -> int | None:
            die = self._die(handle)
            if "DW_AT_type" in die.attributes:
                return self._ref(die)
            if "DW_AT_specification" in die.attributes:
                spec = self._follow(die, "DW_AT_specification")
                return self._ref(spec) if "DW_AT_type" in spec.attributes else None
            return None
        return self._guard(typeof)

    def __repr__(self) -> str:
        return f"<DwarfFile {self.name!r} {self.byteorder}-endian>"


def _holds(table: bytes, needle: bytes, base: int, end: int, step: int) -> bool:
    """Whether ``needle`` is one of the ``step``-byte entries of ``table[base:end]``."""
    pos = table.find(needle, base, end)
    while pos >= 0:
        if (pos - base) % step == 0:
            return True
        pos = table.find(needle, pos + 1, end)
    return False


def _wrap(exc: BaseException) -> FormatError:
    """A pyelftools (or other) failure on corrupt data, as ``FormatError("DWARF: ...")``."""
    detail = str(exc).strip() or type(exc).__name__
    if len(detail) > 200:
        detail = detail[:200] + "..."
    return FormatError(E.cformat(E.DWARF_CORRUPT, type(exc).__name__, detail))
