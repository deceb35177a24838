"""FreeBSD CTF (``.SUNW_ctf``) reader: versions 2 and 3, zlib-compressed or not.

What the kernel's CTF gives pykvm is the layout of the structures libkvm reads
(kernel-data.md 9 and 11): sizes, member bit offsets (through anonymous members),
enum values, integer encodings, and the declared type of kernel variables.

Mirrors, in ``cddl/contrib/opensolaris/common/ctf/``:

* ``ctf_bufopen`` (ctf_open.c): header validation, decompression; the same
  checks, plus the bounds checks libctf leaves out (an uncompressed section
  shorter than its header says, records running into the string section).
* ``init_types`` (ctf_open.c) and ``ctf_get_ctt_size``/``ctf_get_ctm_info``
  (ctf_types.c): the record walk, short and long (``LSIZE_SENT``) fixed parts,
  small and large member records, the child-container test.
* ``init_symtab`` (ctf_open.c) and ``ctf_lookup_by_symbol`` (ctf_lookup.c):
  which ELF symbols own a data-object entry.
* ``ctf_lookup_by_name`` (ctf_lookup.c) and ``ctf_hash_insert``/
  ``ctf_hash_define`` (ctf_hash.c): which record a name finds.
* ``ctf_type_resolve`` and ``ctf_type_size`` (ctf_types.c).

Record layouts are those of ``sys/sys/ctf.h``.

Cost model: :meth:`CtfFile.parse` validates the header, inflates the body and
walks the type section once, recording each type's word offset and kind in two
arrays.  Names, members and everything else are decoded on demand and cached;
the name tables are built in one pass on the first lookup by name.

Name lookup rule (documented departure from libctf, kernel-data.md 11.8):
libctf ignores the ``isroot`` flag when it builds its tables; pykvm prefers a
root-visible record over a non-root one and otherwise follows libctf exactly:
the last STRUCT/UNION/ENUM definition of a tag wins, a FORWARD counts only when
there is no definition (the first FORWARD then); TYPEDEF, POINTER, qualifiers and
FUNCTION resolve to the last record of a name; INTEGER and FLOAT to the first
(unless that one has zero bits, libctf's SOS8 work-around).
"""

from __future__ import annotations

import struct
import sys
import zlib
from array import array
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import IntEnum
from itertools import accumulate
from typing import NamedTuple

from .. import errors as E
from ..errors import FormatError

__all__ = [
    "CTF_MAGIC",
    "CTF_F_COMPRESS",
    "CTF_HEADER_SIZE",
    "INT_SIGNED",
    "INT_CHAR",
    "INT_BOOL",
    "INT_VARARGS",
    "Kind",
    "Member",
    "Enumerator",
    "ArrayInfo",
    "Encoding",
    "Label",
    "CtfType",
    "CtfFile",
    "SymbolEntry",
]

CTF_MAGIC = 0xCFF1
CTF_F_COMPRESS = 0x1
#: ``sizeof (ctf_header_t)``: the preamble (4 bytes) and eight u32 fields.
CTF_HEADER_SIZE = 36
_ENUM_INT_SIZE = 4  # libctf reports an enum's size as ctd_int: 4 in ILP32 and LP64
_SHN_UNDEF = 0
_SHN_ABS = 0xFFF1
_STT_OBJECT = 1
#: zlib cannot inflate by more than about 1032:1; a header that declares more
#: than this multiple of the compressed bytes is lying (checked before inflating).
_ZLIB_MAX_RATIO = 1032
#: Anonymous members may nest this deep (C code never comes near).
_ANON_DEPTH = 64
#: Sizes above this are not sizes (array products are checked against it).
_MAX_SIZE = 1 << 64

# Integer encoding flags (CTF_INT_*).
INT_SIGNED = 0x1
INT_CHAR = 0x2
INT_BOOL = 0x4
INT_VARARGS = 0x8


class Kind(IntEnum):
    """``CTF_K_*``: the kind of a type record."""

    UNKNOWN = 0
    INTEGER = 1
    FLOAT = 2
    POINTER = 3
    ARRAY = 4
    FUNCTION = 5
    STRUCT = 6
    UNION = 7
    ENUM = 8
    FORWARD = 9
    TYPEDEF = 10
    VOLATILE = 11
    CONST = 12
    RESTRICT = 13


_K_UNKNOWN, _K_INTEGER, _K_FLOAT, _K_POINTER, _K_ARRAY, _K_FUNCTION = 0, 1, 2, 3, 4, 5
_K_STRUCT, _K_UNION, _K_ENUM, _K_FORWARD, _K_TYPEDEF = 6, 7, 8, 9, 10
_K_VOLATILE, _K_CONST, _K_RESTRICT = 11, 12, 13
_QUALS = frozenset((_K_TYPEDEF, _K_VOLATILE, _K_CONST, _K_RESTRICT))
_REFS = frozenset((_K_POINTER, _K_TYPEDEF, _K_VOLATILE, _K_CONST, _K_RESTRICT))
_SOU = frozenset((_K_STRUCT, _K_UNION))
_KIND_WORDS = {_K_STRUCT: "struct", _K_UNION: "union", _K_ENUM: "enum"}
#: C keywords ``ctf_lookup_by_name`` skips (its ``isqualifier`` table).
_C_QUALIFIERS = frozenset(("static", "volatile", "auto", "extern", "const", "register",
                           "restrict", "_Restrict"))


class Member(NamedTuple):
    """One member of a struct or union: name, offset in **bits**, type id."""

    name: str
    offset: int
    type: int


class Enumerator(NamedTuple):
    """One ``ctf_enum`` record: name and signed 32-bit value."""

    name: str
    value: int


class ArrayInfo(NamedTuple):
    """``ctf_array``: element type, index type, element count."""

    contents: int
    index_type: int
    nelems: int


class Encoding(NamedTuple):
    """The u32 after an INTEGER or FLOAT record: format/flags, bit offset, width."""

    format: int
    offset: int
    bits: int

    @property
    def signed(self) -> bool:
        """``CTF_INT_SIGNED`` (meaningful for integers)."""
        return bool(self.format & INT_SIGNED)


class Label(NamedTuple):
    """``ctf_lblent``: a label and the last type index it covers."""

    name: str
    typeidx: int


@dataclass(frozen=True, slots=True)
class CtfType:
    """One type record, decoded.

    ``size`` is the record's size field (long form included) for INTEGER, FLOAT,
    ARRAY, STRUCT, UNION, ENUM and UNKNOWN, else None; use :meth:`CtfFile.sizeof`
    for the size libctf reports.  ``ref`` is the referenced type of POINTER,
    TYPEDEF, VOLATILE, CONST, RESTRICT, and the return type of FUNCTION, else None.
    ``members`` are the raw member records (anonymous ones included, not
    flattened; offsets in bits).
    """

    tid: int
    kind: Kind
    name: str
    isroot: bool
    vlen: int
    size: int | None = None
    ref: int | None = None
    members: tuple[Member, ...] = ()
    enumerators: tuple[Enumerator, ...] = ()
    array: ArrayInfo | None = None
    encoding: Encoding | None = None
    args: tuple[int, ...] = ()
    variadic: bool = False
    forward_kind: Kind | None = None


#: One ELF symbol in table order: ``(name, st_info, st_shndx)`` or
#: ``(name, st_info, st_shndx, st_value)``.  ``st_info`` may be the whole byte
#: or just the type (``ELF_ST_TYPE``); a None or empty name stands for
#: ``st_name == 0``.  Without ``st_value`` the ``SHN_ABS``-with-value-0 rule of
#: ``init_symtab`` cannot apply (the symbol is taken to have a nonzero value).
SymbolEntry = (tuple[str | bytes | None, int, int]
               | tuple[str | bytes | None, int, int, int])


@dataclass(frozen=True)
class _Format:
    """The version-dependent constants of sys/sys/ctf.h."""

    version: int
    idwidth: int  # bytes in a type ID (object section, function section)
    child_bit: int
    index_mask: int
    lsize_sent: int
    lstruct_thresh: int
    max_types: int  # the largest type index a container can address


_V2 = _Format(2, 2, 0x8000, 0x7FFF, 0xFFFF, 1 << 13, 0x7FFF)
_V3 = _Format(3, 4, 0x80000000, 0x7FFFFFFF, 0xFFFFFFFF, 1 << 29, 0x7FFFFFFF)


def _fail(fmt: str, *args: int | str) -> FormatError:
    return FormatError(E.cformat(fmt, *args))


def _decode_str(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


class _StringTable:
    """A NUL-separated string table; offsets resolve through one split."""

    def __init__(self, data: bytes, stid: int) -> None:
        self.data = data
        self.stid = stid
        self._starts: dict[int, str] | None = None

    def get(self, off: int) -> str:
        starts = self._starts
        if starts is None:
            starts = self._starts = self._split()
        s = starts.get(off)
        if s is not None:
            return s
        data = self.data
        if off >= len(data):
            raise _fail(E.CTF_BAD_NAME, off, self.stid, len(data))
        end = data.find(b"\0", off)
        if end < 0:
            raise _fail(E.CTF_UNTERMINATED, off, self.stid)
        s = _decode_str(data[off:end])
        starts[off] = s
        return s

    def _split(self) -> dict[int, str]:
        data = self.data
        raw = data.split(b"\0")[:-1]  # the last piece is "" at len(data) or unterminated
        offs = accumulate((len(p) + 1 for p in raw), initial=0)
        if data.isascii():
            strs = data.decode("ascii").split("\0")[:-1]
        else:
            strs = [_decode_str(p) for p in raw]
        return dict(zip(offs, strs, strict=False))


class CtfFile:
    """One CTF container.  Build with :meth:`parse`.

    Type ids are the container's own: in a child container (``is_child``) its
    own types carry the child bit (0x8000 in v2, 0x80000000 in v3) and ids
    without it belong to the parent container (see :meth:`import_parent`).
    """

    # ------------------------------------------------------------------ open
    def __init__(self) -> None:  # use parse()
        self.version = 0
        self.endian = "little"
        self.compressed = False
        self.flags = 0
        self._fmt = _V3
        self._body = b""
        self._hdr: tuple[int, ...] = ()
        self._w = array("I")
        self._h = array("H")
        self._rec = array("I")
        self._kinds = bytearray()
        self._nmembers = 0
        self._child = False
        self._parent: CtfFile | None = None
        self._parname_ref = 0
        self._parlabel_ref = 0
        self._strtab = _StringTable(b"", 0)
        self._ext: _StringTable | None = None
        self._pointer_size: int | None = None
        self._cache: dict[int, CtfType] = {}
        self._resolved: dict[int, int] = {}
        self._sizes: dict[int, int] = {}
        self._flat: dict[int, tuple[Member, ...]] = {}
        self._mindex: dict[int, dict[str, Member]] = {}
        self._mpath: dict[tuple[int, str], Member | None] = {}
        self._tables: tuple[dict[str, int], dict[str, int], dict[str, int],
                            dict[str, int], dict[int, int]] | None = None
        self._symbols: list[SymbolEntry] | None = None
        self._objmap: tuple[dict[int, int], dict[str, int]] | None = None
        self._labels: tuple[Label, ...] | None = None

    @classmethod
    def parse(cls, data: bytes | bytearray | memoryview, *, endian: str | None = None,
              pointer_size: int | None = None, strtab: bytes | None = None,
              symbols: Iterable[SymbolEntry] | None = None,
              parent: CtfFile | None = None) -> CtfFile:
        """Open the raw bytes of a ``.SUNW_ctf`` section (ctf_bufopen).

        ``endian`` is the kernel's byte order (``"little"``/``"big"``, or ``"<"``
        /``">"``); None detects it from the magic.  ``pointer_size`` is the ELF
        class's pointer size (4 or 8); None infers it from the ``long`` base type.
        ``strtab`` is the ELF string table of the symbol table (names with
        string-table id 1 live there).  ``symbols`` is the ELF symbol table in
        table order (:data:`SymbolEntry`), needed only by :meth:`object_type`.
        ``parent`` is the parent container of a child container.
        """
        self = cls()
        self._open(bytes(data), endian)
        if pointer_size is not None:
            if pointer_size not in (4, 8):
                raise ValueError("pointer_size must be 4 or 8")
            self._pointer_size = pointer_size
        if strtab is not None:
            self._ext = _StringTable(bytes(strtab), 1)
        if symbols is not None:
            self.set_symbols(symbols)
        if parent is not None:
            self.import_parent(parent)
        return self

    def _open(self, data: bytes, endian: str | None) -> None:
        n = len(data)
        if n < CTF_HEADER_SIZE:
            raise _fail(E.CTF_SHORT, n, CTF_HEADER_SIZE)
        le, be = data[0] | data[1] << 8, data[0] << 8 | data[1]
        if endian in ("<", "little"):
            want: str | None = "little"
        elif endian in (">", "big"):
            want = "big"
        elif endian is None:
            want = None
        else:
            raise ValueError("endian must be 'little', 'big', '<', '>' or None")
        found = "little" if le == CTF_MAGIC else "big" if be == CTF_MAGIC else None
        if found is None:
            raise _fail(E.CTF_BAD_MAGIC, le if want == "little" else be)
        if want is not None and found != want:
            raise _fail(E.CTF_WRONG_ENDIAN, found, want)
        endian = found
        self.endian = endian
        version, flags = data[2], data[3]
        if version == 2:
            self._fmt = _V2
        elif version == 3:
            self._fmt = _V3
        else:
            raise _fail(E.CTF_BAD_VERSION, version)
        self.version, self.flags = version, flags
        pre = "<" if endian == "little" else ">"
        hdr = struct.unpack_from(pre + "8I", data, 4)
        parlabel, parname, lbloff, objtoff, funcoff, typeoff, stroff, strlen = hdr
        size = stroff + strlen
        # ctf_bufopen's checks (with exact arithmetic: libctf's 32-bit sum can wrap)
        if max(lbloff, objtoff, funcoff, typeoff, stroff) > size:
            raise _fail(E.CTF_BAD_HEADER, "a section starts past the end of the data")
        if not lbloff <= objtoff <= funcoff <= typeoff <= stroff:
            raise _fail(E.CTF_BAD_HEADER, "sections out of order")
        if lbloff & 3 or objtoff & 1 or funcoff & 1 or typeoff & 3:
            raise _fail(E.CTF_BAD_HEADER, "misaligned section offset")
        if flags & CTF_F_COMPRESS:
            self.compressed = True
            src = data[CTF_HEADER_SIZE:]
            if size > len(src) * _ZLIB_MAX_RATIO + 64:
                raise _fail(E.CTF_ZLIB_RATIO, size, len(src))
            d = zlib.decompressobj()
            try:
                body = d.decompress(src, size + 1)
            except zlib.error as exc:
                raise _fail(E.CTF_ZLIB, str(exc)) from None
            if len(body) > size:
                raise _fail(E.CTF_ZLIB_SIZE, f"more than {size}", size)
            if not d.eof:
                raise _fail(E.CTF_ZLIB, "stream is truncated")
            if len(body) != size:
                raise _fail(E.CTF_ZLIB_SIZE, str(len(body)), size)
        else:
            if n - CTF_HEADER_SIZE < size:
                raise _fail(E.CTF_TRUNCATED, n - CTF_HEADER_SIZE, size)
            body = data[CTF_HEADER_SIZE:CTF_HEADER_SIZE + size]
        self._body = body
        self._hdr = hdr
        self._parlabel_ref, self._parname_ref = parlabel, parname
        self._strtab = _StringTable(body[stroff:size], 0)
        self._child = parname != 0
        self._index(body, typeoff, stroff)

    def _index(self, body: bytes, typeoff: int, stroff: int) -> None:
        """One walk of the type section: word offset and kind of every record (init_types)."""
        nbytes = stroff - typeoff
        whole = nbytes - nbytes % 4
        w = array("I")
        w.frombytes(body[typeoff:typeoff + whole])
        swap = (self.endian == "little") != (sys.byteorder == "little")
        if swap:
            w.byteswap()
        self._w = w
        if self.version == 2:
            h = array("H")
            h.frombytes(body[typeoff:typeoff + whole])
            if swap:
                h.byteswap()
            self._h = h
            self._walk_v2(w, h)
        else:
            self._walk_v3(w)
        if whole != nbytes:  # 1-3 stray bytes cannot hold a record
            raise _fail(E.CTF_RECORD_OVERRUN, len(self._rec) + 1, typeoff + whole)
        if len(self._rec) > self._fmt.max_types:
            raise _fail(E.CTF_TOO_MANY_TYPES, len(self._rec), self.version,
                        self._fmt.max_types)

    def _overrun(self, i: int) -> FormatError:
        return _fail(E.CTF_RECORD_OVERRUN, len(self._rec) + 1, self._hdr[5] + 4 * i)

    def _walk_v3(self, w: array[int]) -> None:
        n = len(w)
        rec = self._rec
        kinds = self._kinds
        add_rec, add_kind = rec.append, kinds.append
        child = self._child
        nmembers = 0
        i = 0
        while i < n:
            if i + 3 > n:
                raise self._overrun(i)
            info = w[i + 1]
            size = st = w[i + 2]
            kind = info >> 26
            vlen = info & 0xFFFFFF
            if st == 0xFFFFFFFF:
                if i + 5 > n:
                    raise self._overrun(i)
                size = w[i + 3] << 32 | w[i + 4]
                v = i + 5
            else:
                v = i + 3
            if kind == _K_POINTER or kind == _K_TYPEDEF or kind == _K_CONST \
                    or kind == _K_VOLATILE or kind == _K_RESTRICT:
                end = v
                if st >> 31:
                    child = True
            elif kind == _K_FUNCTION:
                end = v + vlen
            elif kind == _K_STRUCT or kind == _K_UNION:
                step = 3 if size < 0x20000000 else 4
                end = v + step * vlen
                if end > n:
                    raise self._overrun(i)
                if vlen and not child and max(w[v + 1:end:step]) >> 31:
                    child = True
                nmembers += vlen
            elif kind == _K_ARRAY:
                end = v + 3
            elif kind == _K_INTEGER or kind == _K_FLOAT:
                end = v + 1
            elif kind == _K_ENUM:
                end = v + 2 * vlen
            elif kind == _K_FORWARD or kind == _K_UNKNOWN:
                end = v
            else:
                raise _fail(E.CTF_BAD_KIND, len(rec) + 1, self._hdr[5] + 4 * i, kind)
            if end > n:
                raise self._overrun(i)
            add_rec(i)
            add_kind(kind)
            i = end
        self._child = child
        self._nmembers = nmembers

    def _walk_v2(self, w: array[int], h: array[int]) -> None:
        n = len(w)
        rec = self._rec
        kinds = self._kinds
        add_rec, add_kind = rec.append, kinds.append
        child = self._child
        nmembers = 0
        i = 0
        while i < n:
            if i + 2 > n:
                raise self._overrun(i)
            info = h[2 * i + 2]
            size = st = h[2 * i + 3]
            kind = info >> 11
            vlen = info & 0x3FF
            if st == 0xFFFF:
                if i + 4 > n:
                    raise self._overrun(i)
                size = w[i + 2] << 32 | w[i + 3]
                v = i + 4
            else:
                v = i + 2
            if kind == _K_POINTER or kind == _K_TYPEDEF or kind == _K_CONST \
                    or kind == _K_VOLATILE or kind == _K_RESTRICT:
                end = v
                if st >> 15:
                    child = True
            elif kind == _K_FUNCTION:
                end = v + (vlen + 1) // 2
            elif kind == _K_STRUCT or kind == _K_UNION:
                step = 2 if size < 0x2000 else 4
                end = v + step * vlen
                if end > n:
                    raise self._overrun(i)
                if vlen and not child and max(h[2 * v + 2:2 * end:2 * step]) >> 15:
                    child = True
                nmembers += vlen
            elif kind == _K_ARRAY:
                end = v + 2
            elif kind == _K_INTEGER or kind == _K_FLOAT:
                end = v + 1
            elif kind == _K_ENUM:
                end = v + 2 * vlen
            elif kind == _K_FORWARD or kind == _K_UNKNOWN:
                end = v
            else:
                raise _fail(E.CTF_BAD_KIND, len(rec) + 1, self._hdr[5] + 4 * i, kind)
            if end > n:
                raise self._overrun(i)
            add_rec(i)
            add_kind(kind)
            i = end
        self._child = child
        self._nmembers = nmembers

    # ------------------------------------------------------------ properties
    @property
    def ntypes(self) -> int:
        """How many type records this container holds (its own, not the parent's)."""
        return len(self._rec)

    @property
    def is_child(self) -> bool:
        """True if ``cth_parname`` is set or a record refers to a child-range id."""
        return self._child

    @property
    def parent_name(self) -> str | None:
        """``cth_parname``: the parent container's name (None for a parent container)."""
        return self._str(self._parname_ref) if self._parname_ref else None

    @property
    def parent_label(self) -> str | None:
        """``cth_parlabel``: the parent's label this child was built against."""
        return self._str(self._parlabel_ref) if self._parlabel_ref else None

    @property
    def parent(self) -> CtfFile | None:
        """The imported parent container, if any."""
        return self._parent

    @property
    def pointer_size(self) -> int:
        """Bytes in a pointer: as given to :meth:`parse`, else the size of ``long``."""
        if self._pointer_size is None:
            if self._parent is not None:
                self._pointer_size = self._parent.pointer_size
            else:
                for name in ("long", "unsigned long", "long int", "long unsigned int"):
                    tid = self.lookup(name)
                    if tid is not None:
                        t = self.type(tid)
                        if t.kind == Kind.INTEGER and t.size in (4, 8):
                            self._pointer_size = t.size
                            break
                else:
                    raise _fail(E.CTF_NO_POINTER_SIZE)
        return self._pointer_size

    @property
    def labels(self) -> tuple[Label, ...]:
        """The label section (``ctf_lblent`` records), in order."""
        if self._labels is None:
            lbloff, objtoff = self._hdr[2], self._hdr[3]
            nbytes = objtoff - lbloff
            if nbytes % 8:
                raise _fail(E.CTF_LABELS, nbytes)
            pre = "<" if self.endian == "little" else ">"
            self._labels = tuple(Label(self._str(a), b) for a, b in struct.iter_unpack(
                pre + "II", self._body[lbloff:objtoff]))
        return self._labels

    def import_parent(self, parent: CtfFile) -> None:
        """Attach the parent container (ctf_import): ids without the child bit go there."""
        p: CtfFile | None = parent
        while p is not None:
            if p is self:
                raise ValueError("a CTF container cannot be its own ancestor")
            p = p._parent
        self._parent = parent

    def ids(self) -> range:
        """The ids of this container's own types, in record order."""
        bit = self._fmt.child_bit if self._child else 0
        n = len(self._rec)
        return range(1 | bit, (n + 1) | bit) if n else range(0)

    # --------------------------------------------------------------- strings
    def _str(self, ref: int) -> str:
        """ctf_strptr: the name a 32-bit name reference denotes."""
        if ref == 0:
            return ""
        if ref >> 31:
            ext = self._ext
            if ext is None:
                raise _fail(E.CTF_NO_EXT_STRTAB, ref)
            return ext.get(ref & 0x7FFFFFFF)
        return self._strtab.get(ref)

    # ----------------------------------------------------------------- types
    def _norm(self, ref: int) -> int:
        """A type reference as an id of this container's id space (ctf_lookup_by_id)."""
        return ref if self._child else ref & self._fmt.index_mask

    def _owner(self, tid: int) -> tuple[CtfFile, int]:
        """(container, record index 0-based) holding ``tid``; errors name what is missing."""
        fmt = self._fmt
        if not 0 < tid <= (fmt.child_bit | fmt.index_mask):
            raise _fail(E.CTF_BAD_ID, tid, len(self._rec))
        if self._child and not tid & fmt.child_bit:
            parent = self._parent
            if parent is None:
                raise _fail(E.CTF_NO_PARENT, tid,
                            repr(self.parent_name) if self._parname_ref else "(unnamed)")
            return parent._owner(tid)
        idx = tid & fmt.index_mask
        if not 1 <= idx <= len(self._rec):
            raise _fail(E.CTF_BAD_ID, tid, len(self._rec))
        return self, idx - 1

    def type(self, tid: int) -> CtfType:
        """The decoded record of type ``tid`` (cached)."""
        t = self._cache.get(tid)
        if t is None:
            owner, k = self._owner(tid)
            t = owner._decode(k) if owner is self else owner.type(tid)
            self._cache[tid] = t
        return t

    def kind(self, tid: int) -> Kind:
        """The kind of type ``tid`` without decoding the record."""
        owner, k = self._owner(tid)
        return Kind(owner._kinds[k])

    def _decode(self, k: int) -> CtfType:
        w, fmt = self._w, self._fmt
        i = self._rec[k]
        kind = self._kinds[k]
        tid = (k + 1) | (fmt.child_bit if self._child else 0)
        if self.version == 3:
            info, st, v = w[i + 1], w[i + 2], i + 3
            isroot, vlen = bool(info & 0x02000000), info & 0xFFFFFF
        else:
            h = self._h
            info, st, v = h[2 * i + 2], h[2 * i + 3], i + 2
            isroot, vlen = bool(info & 0x0400), info & 0x3FF
        ctype = st  # ctf_get_ctt_index reads ctt_type raw, whatever the form
        if st == fmt.lsize_sent:
            st = w[v] << 32 | w[v + 1]
            v += 2
        name = self._str(w[i])
        K = Kind(kind)
        if kind in _REFS:
            return CtfType(tid, K, name, isroot, vlen, ref=self._norm(ctype))
        if kind == _K_STRUCT or kind == _K_UNION:
            return CtfType(tid, K, name, isroot, vlen, size=st,
                           members=self._decode_members(v, vlen, st))
        if kind == _K_INTEGER or kind == _K_FLOAT:
            e = w[v]
            return CtfType(tid, K, name, isroot, vlen, size=st,
                           encoding=Encoding(e >> 24, (e >> 16) & 0xFF, e & 0xFFFF))
        if kind == _K_ARRAY:
            if self.version == 3:
                a = ArrayInfo(self._norm(w[v]), self._norm(w[v + 1]), w[v + 2])
            else:
                h = self._h
                a = ArrayInfo(self._norm(h[2 * v]), self._norm(h[2 * v + 1]), w[v + 1])
            return CtfType(tid, K, name, isroot, vlen, size=st, array=a)
        if kind == _K_ENUM:
            vals = w[v:v + 2 * vlen]
            enums = tuple(Enumerator(self._str(vals[j]), vals[j + 1] - ((vals[j + 1] >> 31) << 32))
                          for j in range(0, 2 * vlen, 2))
            return CtfType(tid, K, name, isroot, vlen, size=st, enumerators=enums)
        if kind == _K_FUNCTION:
            raw = w[v:v + vlen] if self.version == 3 else self._h[2 * v:2 * v + vlen]
            args = tuple(self._norm(a) for a in raw)
            variadic = bool(args) and args[-1] == 0
            if variadic:
                args = args[:-1]
            return CtfType(tid, K, name, isroot, vlen, ref=self._norm(ctype), args=args,
                           variadic=variadic)
        if kind == _K_FORWARD:
            fk = Kind(ctype) if ctype in (_K_STRUCT, _K_UNION, _K_ENUM) else Kind.STRUCT
            return CtfType(tid, K, name, isroot, vlen, forward_kind=fk)
        return CtfType(tid, K, name, isroot, vlen, size=st)  # UNKNOWN

    def _decode_members(self, v: int, vlen: int, size: int) -> tuple[Member, ...]:
        """ctf_get_ctm_info over ``vlen`` member records starting at word ``v``."""
        w, s, norm = self._w, self._str, self._norm
        if self.version == 3:
            if size < _V3.lstruct_thresh:
                end = v + 3 * vlen
                return tuple(Member(s(a), c, norm(b)) for a, b, c in
                             zip(w[v:end:3], w[v + 1:end:3], w[v + 2:end:3], strict=True))
            end = v + 4 * vlen
            return tuple(Member(s(a), hi << 32 | lo, norm(b)) for a, b, hi, lo in
                         zip(w[v:end:4], w[v + 1:end:4], w[v + 2:end:4], w[v + 3:end:4],
                             strict=True))
        h = self._h
        if size < _V2.lstruct_thresh:
            end = v + 2 * vlen
            return tuple(Member(s(a), c, norm(b)) for a, b, c in
                         zip(w[v:end:2], h[2 * v + 2:2 * end:4], h[2 * v + 3:2 * end:4],
                             strict=True))
        end = v + 4 * vlen
        return tuple(Member(s(a), hi << 32 | lo, norm(b)) for a, b, hi, lo in
                     zip(w[v:end:4], h[2 * v + 2:2 * end:8], w[v + 2:end:4], w[v + 3:end:4],
                         strict=True))

    def resolve(self, tid: int) -> int:
        """ctf_type_resolve: follow TYPEDEF/VOLATILE/CONST/RESTRICT to a base type.

        Returns 0 when the chain ends at ``void``.  A cycle is a FormatError.
        """
        r = self._resolved.get(tid)
        if r is not None:
            return r
        t = tid
        seen: set[int] = set()
        while t != 0:
            ty = self.type(t)
            if ty.kind not in _QUALS:
                break
            seen.add(t)
            t = ty.ref or 0
            if t in seen:
                raise _fail(E.CTF_CYCLE, tid)
        self._resolved[tid] = t
        return t

    def sizeof(self, tid: int) -> int:
        """ctf_type_size: bytes of storage for ``tid`` (after :meth:`resolve`).

        POINTER is the pointer size, FUNCTION 0, ENUM the size of ``int`` (4, as
        libctf reports it), ARRAY its recorded size or, when that is 0, count x
        element size.  ``void`` and forward-only tags raise FormatError.
        """
        r = self._sizes.get(tid)
        if r is not None:
            return r
        mult = 1
        t = self.resolve(tid)
        seen: set[int] = set()
        while True:
            if t == 0:
                raise _fail(E.CTF_NO_SIZE, tid, "void")
            ty = self.type(t)
            kind = ty.kind
            if kind == _K_ARRAY and not ty.size:
                assert ty.array is not None
                seen.add(t)
                mult *= ty.array.nelems
                if mult >= _MAX_SIZE:
                    raise _fail(E.CTF_NO_SIZE, tid, "array size overflows 64 bits")
                t = self.resolve(ty.array.contents)
                if t in seen:
                    raise _fail(E.CTF_CYCLE, tid)
                continue
            if kind == _K_POINTER:
                base = self.pointer_size
            elif kind == _K_FUNCTION:
                base = 0
            elif kind == _K_ENUM:
                base = _ENUM_INT_SIZE
            elif kind == _K_FORWARD:
                raise _fail(E.CTF_INCOMPLETE, t, self._describe(t))
            else:
                base = ty.size or 0
            break
        size = base * mult
        if size >= _MAX_SIZE:
            raise _fail(E.CTF_NO_SIZE, tid, "array size overflows 64 bits")
        self._sizes[tid] = size
        return size

    def _describe(self, tid: int) -> str:
        """A short human label for messages: ``struct proc``, ``int``, ``pointer``."""
        try:
            ty = self.type(tid)
        except FormatError:
            return f"type {tid}"
        if ty.kind == _K_FORWARD:
            assert ty.forward_kind is not None
            return f"{_KIND_WORDS[ty.forward_kind]} {ty.name or '(anonymous)'}"
        word = _KIND_WORDS.get(ty.kind)
        if word:
            return f"{word} {ty.name or '(anonymous)'}"
        return ty.name or ty.kind.name.lower()

    # --------------------------------------------------------------- members
    def members(self, tid: int) -> list[Member]:
        """Members of a struct or union (``tid`` is resolved first), offsets in bits.

        A member with no name whose type resolves to a struct or union stands for
        its own members, at its offset plus theirs, recursively (kernel-data.md
        11.8 step 4); other unnamed members (padding bit-fields) are left out.
        """
        return list(self._flatten(tid))

    def _flatten(self, tid: int) -> tuple[Member, ...]:
        t = self.resolve(tid)
        flat = self._flat.get(t)
        if flat is not None:
            return flat
        if t == 0 or self.type(t).kind not in _SOU:
            raise _fail(E.CTF_NOT_SOU, tid, self._describe(t) if t else "void")
        out: list[Member] = []
        budget = 4 * (self._nmembers + (self._parent._nmembers if self._parent else 0)) + 4096
        visits = 0
        stack: list[int] = []

        def walk(sou: int, base: int) -> None:
            nonlocal visits
            stack.append(sou)
            if len(stack) > _ANON_DEPTH:
                raise _fail(E.CTF_ANON_LIMIT, tid)
            mems = self.type(sou).members
            visits += len(mems)
            if visits > budget:  # bounds time and memory on crafted nesting
                raise _fail(E.CTF_ANON_LIMIT, tid)
            for m in mems:
                if m.name:
                    out.append(Member(m.name, base + m.offset, m.type) if base else m)
                    continue
                r = self.resolve(m.type)
                if r and self.type(r).kind in _SOU:
                    if r in stack:
                        raise _fail(E.CTF_CYCLE, r)
                    walk(r, base + m.offset)
            stack.pop()

        walk(t, 0)
        flat = self._flat[t] = tuple(out)
        return flat

    def member(self, tid: int, path: str) -> Member | None:
        """The member ``path`` (``"a.b.c"``) of struct/union ``tid``, or None.

        Each step searches the flattened members (anonymous members included);
        the result's offset is in bits from the start of ``tid`` and its name is
        ``path``.  Cached: a repeated lookup is one dictionary probe.
        """
        key = (tid, path)
        try:
            return self._mpath[key]
        except KeyError:
            pass
        cur, off = tid, 0
        found: Member | None = None
        for step in path.split("."):
            t = self.resolve(cur)
            if found is not None and (t == 0 or self.type(t).kind not in _SOU):
                found = None
                break
            index = self._mindex.get(t)
            if index is None:
                index = {}
                for fm in self._flatten(t):
                    index.setdefault(fm.name, fm)
                self._mindex[t] = index
            found = index.get(step)
            if found is None:
                break
            off += found.offset
            cur = found.type
        result = Member(path, off, found.type) if found is not None else None
        self._mpath[key] = result
        return result

    # ----------------------------------------------------------------- names
    def _build_tables(self) -> tuple[dict[str, int], dict[str, int], dict[str, int],
                                     dict[str, int], dict[int, int]]:
        """The struct, union, enum and ordinary-name tables, and the pointer table."""
        w, s = self._w, self._str
        bit = self._fmt.child_bit if self._child else 0
        tags: dict[int, dict[str, tuple[int, int]]] = {_K_STRUCT: {}, _K_UNION: {}, _K_ENUM: {}}
        names: dict[str, tuple[int, int]] = {}
        ptrs: dict[int, int] = {}
        v3 = self.version == 3
        h = self._h
        rootbit = 0x02000000 if v3 else 0x0400
        for k, (i, kind) in enumerate(zip(self._rec, self._kinds, strict=True)):
            tid = (k + 1) | bit
            if kind == _K_POINTER:
                st = w[i + 2] if v3 else h[2 * i + 3]
                ptrs[self._norm(st)] = tid
            ref = w[i]
            if ref == 0:
                continue
            name = s(ref)
            if not name:
                continue
            info = w[i + 1] if v3 else h[2 * i + 2]
            rank = 2 if info & rootbit else 1
            if kind == _K_STRUCT or kind == _K_UNION or kind == _K_ENUM:
                table = tags[kind]
                old = table.get(name)
                if old is None or rank >= old[1]:  # ctf_hash_define: last definition wins
                    table[name] = (tid, rank)
            elif kind == _K_FORWARD:
                st = w[i + 2] if v3 else h[2 * i + 3]
                table = tags[st if st in (_K_UNION, _K_ENUM) else _K_STRUCT]
                if name not in table:  # only when no definition or forward came first
                    table[name] = (tid, 0)
            elif kind == _K_INTEGER or kind == _K_FLOAT:
                old = names.get(name)
                if old is None or rank > old[1] or (rank == old[1] and self._zero_bits(old[0])):
                    names[name] = (tid, rank)
            elif kind in _REFS or kind == _K_FUNCTION:
                old = names.get(name)
                if old is None or rank >= old[1]:  # ctf_hash_insert prepends: last wins
                    names[name] = (tid, rank)
        # init_types' extra pass: a pointer to an anonymous typedef also points
        # to the typedef's target (own types only, in id order, overwriting).
        cb, mask = self._fmt.child_bit, self._fmt.index_mask
        for target in sorted(ptrs):
            if target == 0 or (self._child and not target & cb):
                continue
            k = (target & mask) - 1
            if k < len(self._rec) and self._kinds[k] == _K_TYPEDEF:
                i = self._rec[k]
                if w[i] == 0 or not s(w[i]):
                    st = w[i + 2] if v3 else h[2 * i + 3]
                    ptrs[self._norm(st)] = ptrs[target]
        return ({n: t for n, (t, _) in tags[_K_STRUCT].items()},
                {n: t for n, (t, _) in tags[_K_UNION].items()},
                {n: t for n, (t, _) in tags[_K_ENUM].items()},
                {n: t for n, (t, _) in names.items()},
                ptrs)

    def _zero_bits(self, tid: int) -> bool:
        ty = self.type(tid)
        return ty.encoding is not None and ty.encoding.bits == 0

    def lookup(self, name: str) -> int | None:
        """ctf_lookup_by_name: ``"struct proc"``, ``"union u"``, ``"enum e"``, a
        typedef or base-type name (``"unsigned long"``), each optionally followed
        by ``*`` for a pointer to it.  C qualifier keywords are ignored, as libctf
        does.  Falls back to the parent container when one is imported.
        """
        tables = self._tables
        if tables is None:
            tables = self._tables = self._build_tables()
        text = name.strip()
        stars = 0
        while text.endswith("*"):
            stars += 1
            text = text[:-1].rstrip()
        toks = [t for t in text.split() if t not in _C_QUALIFIERS]
        tid: int | None = None
        if toks:
            if toks[0] == "struct":
                tid = tables[0].get(" ".join(toks[1:]))
            elif toks[0] == "union":
                tid = tables[1].get(" ".join(toks[1:]))
            elif toks[0] == "enum":
                tid = tables[2].get(" ".join(toks[1:]))
            else:
                tid = tables[3].get(" ".join(toks))
        for _ in range(stars):
            if tid is None:
                break
            ptr = tables[4].get(tid)
            if ptr is None:
                ptr = tables[4].get(self.resolve(tid))
            tid = ptr
        if tid is None and self._parent is not None:
            return self._parent.lookup(name)
        return tid

    # --------------------------------------------------------------- objects
    def set_symbols(self, symbols: Iterable[SymbolEntry]) -> None:
        """Give the ELF symbol table (table order) for :meth:`object_type`."""
        self._symbols = list(symbols)
        self._objmap = None

    def _object_map(self) -> tuple[dict[int, int], dict[str, int]]:
        """init_symtab, objects only: symbol index -> object-section offset."""
        if self._objmap is not None:
            return self._objmap
        if self._symbols is None:
            raise _fail(E.CTF_NO_SYMTAB)
        objtoff, funcoff = self._hdr[3], self._hdr[4]
        width = self._fmt.idwidth
        cur = objtoff
        by_index: dict[int, int] = {}
        by_name: dict[str, int] = {}
        for idx, sym in enumerate(self._symbols):
            if cur >= funcoff:
                break  # every later object gets no record
            name, info, shndx = sym[0], sym[1], sym[2]
            if isinstance(name, bytes):
                name = _decode_str(name)
            if not name or shndx == _SHN_UNDEF or name == "_START_" or name == "_END_":
                continue
            if info & 0xF != _STT_OBJECT:
                continue
            if shndx == _SHN_ABS and len(sym) == 4 and sym[3] == 0:
                continue
            by_index[idx] = cur
            by_name.setdefault(name, idx)
            cur += width
        self._objmap = (by_index, by_name)
        return self._objmap

    def object_type_at(self, symidx: int) -> int | None:
        """ctf_lookup_by_symbol: the type of the data object at symbol index ``symidx``.

        None when the symbol has no object entry or its entry is 0 (no type).
        """
        off = self._object_map()[0].get(symidx)
        if off is None:
            return None
        width = self._fmt.idwidth
        if off + width > len(self._body):
            raise _fail(E.CTF_OBJECT_OVERRUN, off)
        pre = "<" if self.endian == "little" else ">"
        (tid,) = struct.unpack_from(pre + ("H" if width == 2 else "I"), self._body, off)
        return self._norm(tid) if tid else None

    def object_type(self, symbol_name: str) -> int | None:
        """The declared type of the kernel variable ``symbol_name``, or None.

        With several symbols of that name, the first in table order that owns an
        object entry answers.
        """
        idx = self._object_map()[1].get(symbol_name)
        return None if idx is None else self.object_type_at(idx)

    # ----------------------------------------------------------------- misc
    def __iter__(self) -> Iterator[int]:
        return iter(self.ids())

    def __len__(self) -> int:
        return len(self._rec)

    def __repr__(self) -> str:
        extra = (" compressed" if self.compressed else "") + (" child" if self._child else "")
        return f"<CtfFile v{self.version} {self.endian}-endian {len(self._rec)} types{extra}>"
