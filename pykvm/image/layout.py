"""One layout model for the kernel structures pykvm reads (kernel-data.md 9 and 11).

libkvm compiles the layout of ``struct proc`` and friends into itself; pykvm learns
it at run time from the kernel, from one of three sources, in this order of
precedence (per structure: the first source that defines a structure describes
all of it):

1. **CTF**: the kernel's ``.SUNW_ctf`` section (:mod:`pykvm.image.ctf`).
2. **DWARF**: a separate ``kernel.debug`` (:meth:`KernelTypes.add_dwarf`,
   ``Kvm.attach_debug``), else the kernel's own ``.debug_info``
   (:mod:`pykvm.image.dwarf`).
3. **Exported offsets**: the ``const int`` variables FreeBSD defines for
   debuggers in ``sys/kern/kern_proc.c`` (``proc_off_p_comm``, ...,
   ``thread_off_td_plist``) and ``sys/kern/kern_mib.c`` (``pcb_size``), read from
   kernel memory (through the descriptor, or from the kernel file when there is
   no dump).  They describe a handful of members of ``struct proc`` and
   ``struct thread`` and the size of ``struct pcb``; the member types are the
   kernel's (``pid_t``, ``char [MAXCOMLEN + 1]``, queue links), as kgdb and LLDB
   assume them.

The model:

* :class:`CType` describes a type: its kind after typedefs and qualifiers
  (``int``, ``bool``, ``float``, ``enum``, ``pointer``, ``array``, ``struct``,
  ``union``, ``function``, ``void``, ``unknown``), its C spelling as declared
  (``pid_t``, ``struct proc *``, ``char [20]``), size, signedness, array length,
  pointer target or array element, and for structs and unions their
  :class:`StructLayout` (built on first use).
* :class:`Member` is one member: byte offset, size of its declared type, type,
  bit offset from the start of the aggregate and, for a bit-field, its width.
* :class:`StructLayout` is one struct or union: its size, the source that
  described it, its direct members, and lookups by dotted path
  (``p_rux.rux_runtime``, ``p_list.le_next``) that descend through nested
  members and through anonymous struct/union members transparently.
* :class:`KernelTypes` chooses the source per structure and caches the layouts.
* :class:`StructView` reads a structure from kernel memory once and decodes
  members from the bytes: integers (signedness and byte order from the type),
  bit-fields, :class:`Pointer` values (``int`` with ``deref()``), char arrays up
  to their NUL, other arrays as tuples, nested structs as views of the same
  bytes.

Bit positions follow DWARF 4's ``DW_AT_data_bit_offset`` convention, which is
also CTF's: least significant bit first on little-endian targets, most
significant bit first on big-endian ones.

CTF does not record the width of an enum bit-field (ctfconvert keeps the whole
enum type, kernel-data.md 11.7).  When an enum member of a struct is not byte
aligned, or the next member starts before the enum's full width, pykvm reports
it as a bit-field whose width is the number of bits its enumerators need,
rounded up to whole bytes when it starts on a byte (``enum vtype v_type:8``),
and never more than the room before the next member.  The values an enum field
holds always decode correctly that way; the width shown may be narrower than
the declaration's.
"""

from __future__ import annotations

import struct as _struct
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

from .. import errors as E
from ..constants import ELFCLASS64, ELFDATA2LSB, SHT_NOBITS, SHT_SYMTAB
from ..errors import FaultError, FormatError, KvmError
from .ctf import INT_BOOL, CtfFile, Enumerator, Kind, SymbolEntry
from .dwarf import DwarfFile
from .elf import KernelImage

__all__ = [
    "KERNEL_STRUCTS",
    "EXPORTED_OFFSETS",
    "CType",
    "Member",
    "StructLayout",
    "KernelTypes",
    "SourceInfo",
    "StructView",
    "Pointer",
    "Memory",
    "MemberError",
    "parse_type_name",
    "SRC_CTF",
    "SRC_DWARF",
    "SRC_OFFSETS",
]

SRC_CTF = "CTF"
SRC_DWARF = "DWARF"
SRC_OFFSETS = "exported offsets"

#: The structures the libkvm calls read (kernel-data.md 9), plus ``pcb``.
KERNEL_STRUCTS: tuple[str, ...] = (
    "proc", "thread", "ucred", "prison", "sigacts", "pgrp", "session", "tty", "cdev",
    "vmspace", "sysentvec", "pargs", "loadavg", "swdevt", "vnode", "pcpu", "vnet", "msgbuf",
    "pcb",
)

#: The debugger symbols of sys/kern/kern_proc.c and kern_mib.c: symbol -> (struct,
#: member), the member "" standing for ``sizeof`` (all are ``const int``).
EXPORTED_OFFSETS: Mapping[str, tuple[str, str]] = {
    "proc_off_p_pid": ("proc", "p_pid"),
    "proc_off_p_comm": ("proc", "p_comm"),
    "proc_off_p_list": ("proc", "p_list"),
    "proc_off_p_hash": ("proc", "p_hash"),
    "proc_off_p_threads": ("proc", "p_threads"),
    "thread_off_td_tid": ("thread", "td_tid"),
    "thread_off_td_name": ("thread", "td_name"),
    "thread_off_td_oncpu": ("thread", "td_oncpu"),
    "thread_off_td_pcb": ("thread", "td_pcb"),
    "thread_off_td_plist": ("thread", "td_plist"),
    "pcb_size": ("pcb", ""),
}

MAXCOMLEN = 19
_AGGREGATES = frozenset(("struct", "union"))
_QUALIFIERS = frozenset(("typedef", "const", "volatile", "restrict", "atomic"))
_SCALARS = frozenset(("int", "bool", "enum"))
#: Anonymous members nest at most this deep; type chains at most this long.
_MAX_DEPTH = 64
_MAX_CHAIN = 64
#: Longest string :meth:`Pointer.string` reads by default.
_STRING_LIMIT = 4096
_STRING_CHUNK = 256
#: Largest structure a view reads (kernel structures are kilobytes; this is corruption).
_MAX_VIEW = 1 << 26


class MemberError(KvmError, AttributeError):
    """A struct has no member of that name (also an AttributeError, for ``hasattr``)."""


class Memory(Protocol):
    """What a view reads through: a descriptor's ``read2``."""

    def read2(self, addr: int, size: int) -> bytes:
        """``size`` bytes at kernel virtual address ``addr`` (shorter at the end)."""


# ----------------------------------------------------------------------------- model


class CType:
    """A type as the layout model sees it (see the module docstring).

    ``kind`` is the kind after typedefs and qualifiers; ``name`` the C spelling
    of the type as declared.  ``target`` is a pointer's pointee or an array's
    element.  ``tag`` is the struct/union/enum tag ("" when anonymous, None for
    other kinds).  ``layout`` is the StructLayout of a struct or union (None
    when the type is only declared).
    """

    __slots__ = ("kind", "name", "size", "signed", "count", "target", "tag",
                 "enumerators", "_layout", "_resolver")

    def __init__(self, kind: str, name: str, size: int | None, *, signed: bool = False,
                 count: int | None = None, target: CType | None = None,
                 tag: str | None = None, enumerators: Mapping[str, int] | None = None,
                 layout: StructLayout | None = None,
                 resolver: Callable[[], StructLayout | None] | None = None) -> None:
        self.kind = kind
        self.name = name
        self.size = size
        self.signed = signed
        self.count = count
        self.target = target
        self.tag = tag
        self.enumerators = enumerators
        self._layout = layout
        self._resolver = resolver

    @property
    def layout(self) -> StructLayout | None:
        """The layout of a struct or union (built on first use); None otherwise."""
        if self._layout is None and self._resolver is not None:
            self._layout = self._resolver()
            self._resolver = None
        return self._layout

    @property
    def is_string(self) -> bool:
        """An array of one-byte integers (``char [20]``): decoded as bytes up to the NUL."""
        t = self.target
        return self.kind == "array" and t is not None and t.kind == "int" and t.size == 1

    def renamed(self, name: str) -> CType:
        """The same type under another spelling (a typedef or qualified type)."""
        c = CType(self.kind, name, self.size, signed=self.signed, count=self.count,
                  target=self.target, tag=self.tag, enumerators=self.enumerators)
        c._layout, c._resolver = self._layout, self._resolver
        if c._layout is None and c._resolver is not None:
            c._resolver = self._share_layout
        return c

    def _share_layout(self) -> StructLayout | None:
        return self.layout

    def __repr__(self) -> str:
        return f"<CType {self.kind} {self.name!r} size={self.size}>"


VOID = CType("void", "void", None)


@dataclass(frozen=True, slots=True)
class Member:
    """One member of a struct or union, positioned from the start of the aggregate
    it was looked up in.

    ``offset`` is in bytes (for a bit-field: the byte holding its first bit);
    ``size`` is the size of the declared type (None when unknown); ``bit_offset``
    counts bits from the start; ``bit_size`` is the width of a bit-field, else None.
    """

    name: str
    offset: int
    size: int | None
    type: CType
    bit_offset: int
    bit_size: int | None = None

    @property
    def kind(self) -> str:
        """The member's type kind (after typedefs and qualifiers)."""
        return self.type.kind

    @property
    def type_name(self) -> str:
        """The C spelling of the member's declared type."""
        return self.type.name

    @property
    def count(self) -> int | None:
        """Element count when the member is an array."""
        return self.type.count

    @property
    def is_bitfield(self) -> bool:
        """True for a bit-field."""
        return self.bit_size is not None

    def at(self, name: str, bits: int) -> Member:
        """This member renamed ``name`` and moved ``bits`` further."""
        b = self.bit_offset + bits
        return Member(name, b // 8, self.size, self.type, b, self.bit_size)


class StructLayout:
    """One struct or union (see the module docstring).

    ``fields`` are the direct members in declaration order (anonymous members
    with name ""); lookups by path treat the members of anonymous members as
    members of this one.  ``complete`` is False when the source knows only some
    members (exported offsets); ``exact_size`` is False when ``size`` is only the
    extent of the known members.
    """

    def __init__(self, name: str, kind: str, size: int, source: str,
                 fields: Sequence[Member], *, complete: bool = True,
                 exact_size: bool = True) -> None:
        self.name = name
        self.kind = kind
        self.size = size
        self.source = source
        self.fields = tuple(fields)
        self.complete = complete
        self.exact_size = exact_size
        self._index: dict[str, Member] | None = None
        self._paths: dict[str, Member | None] = {}

    @property
    def title(self) -> str:
        """``struct proc``, or ``union {...}`` for an anonymous one."""
        return f"{self.kind} {self.name or '{...}'}"

    def _flat(self) -> dict[str, Member]:
        """Name -> member, members of anonymous members included (first name wins)."""
        index = self._index
        if index is None:
            index = {}
            self._flatten_into(index, 0, [self])
            self._index = index
        return index

    def _flatten_into(self, out: dict[str, Member], bits: int,
                      stack: list[StructLayout]) -> None:
        for m in self.fields:
            if m.name:
                if m.name not in out:
                    out[m.name] = m.at(m.name, bits) if bits else m
                continue
            inner = m.type.layout if m.type.kind in _AGGREGATES else None
            if inner is None:
                continue
            if inner in stack or len(stack) > _MAX_DEPTH:
                raise FormatError(E.cformat(E.LAYOUT_ANON_DEPTH, self.title, self.source))
            stack.append(inner)
            inner._flatten_into(out, bits + m.bit_offset, stack)
            stack.pop()

    def get(self, path: str) -> Member | None:
        """The member at ``path`` (``a.b.c``), positioned from the start of this
        aggregate and named ``path``; None when there is none."""
        try:
            return self._paths[path]
        except KeyError:
            pass
        found = self._walk_path(path)[0]
        self._paths[path] = found
        return found

    def _walk_path(self, path: str) -> tuple[Member | None, str]:
        """(member, "") or (None, reason) for :meth:`get` and :meth:`member`."""
        layout: StructLayout = self
        bits = 0
        m: Member | None = None
        for i, part in enumerate(path.split(".")):
            if m is not None:
                inner = m.type.layout if m.type.kind in _AGGREGATES else None
                if inner is None:
                    done = ".".join(path.split(".")[:i])
                    return None, E.cformat(E.LAYOUT_NOT_AGGREGATE, self.title, done,
                                           m.type.name, self.source)
                layout = inner
            step = layout._flat().get(part)
            if step is None:
                return None, E.cformat(E.LAYOUT_NO_MEMBER, self.title, path, self.source)
            bits += step.bit_offset
            m = step
        if m is None:
            return None, E.cformat(E.LAYOUT_NO_MEMBER, self.title, path, self.source)
        return Member(path, bits // 8, m.size, m.type, bits, m.bit_size), ""

    def member(self, path: str) -> Member:
        """The member at ``path``; :class:`MemberError` (a KvmError) naming the
        struct, the member and the source when there is none."""
        m = self.get(path)
        if m is None:
            raise MemberError(self._walk_path(path)[1])
        return m

    def has(self, path: str) -> bool:
        """Whether the member exists (optional members: never raises for a missing one)."""
        return self.get(path) is not None

    def offsetof(self, path: str) -> int:
        """Byte offset of the member at ``path``."""
        return self.member(path).offset

    def walk(self) -> Iterator[tuple[str, Member, int]]:
        """Every member, nested ones after their parent: ``(path, member, depth)``.

        Anonymous members appear with path ``""`` at their own depth, followed
        by their members under their plain names, one level deeper.
        """
        yield from self._walk("", 0, 0, [self])

    def _walk(self, prefix: str, bits: int, depth: int,
              stack: list[StructLayout]) -> Iterator[tuple[str, Member, int]]:
        for m in self.fields:
            path = prefix + m.name if m.name else ""
            yield path, m.at(path, bits), depth
            inner = m.type.layout if m.type.kind in _AGGREGATES else None
            if inner is None or inner in stack or len(stack) > _MAX_DEPTH:
                continue
            stack.append(inner)
            yield from inner._walk(path + "." if m.name else prefix, bits + m.bit_offset,
                                   depth + 1, stack)
            stack.pop()

    def __contains__(self, path: object) -> bool:
        return isinstance(path, str) and self.has(path)

    def __iter__(self) -> Iterator[Member]:
        return iter(self.fields)

    def __len__(self) -> int:
        return len(self.fields)

    def __repr__(self) -> str:
        return f"<StructLayout {self.title} size={self.size} from {self.source}>"


# ----------------------------------------------------------------- type-graph sources


class _RawMember(NamedTuple):
    name: str
    bit_offset: int
    type: int
    bit_size: int | None


class _Raw(NamedTuple):
    """One type record of a source, in the vocabulary the builder shares."""

    kind: str
    name: str = ""
    size: int | None = None
    ref: int = 0
    signed: bool = False
    nelems: int | None = None
    enumerators: tuple[tuple[str, int], ...] = ()
    params: tuple[int, ...] = ()
    variadic: bool = False
    incomplete: bool = False


_VOID_RAW = _Raw("void", "void")


def _join(base: str, decl: str) -> str:
    return f"{base} {decl}" if decl else base


class _Source(ABC):
    """A source of layouts: CTF, DWARF or exported offsets."""

    label = ""

    @abstractmethod
    def struct(self, kind: str, name: str) -> StructLayout | None:
        """The layout of ``kind name`` if this source defines it."""

    def enum(self, name: str) -> dict[str, int] | None:
        """Enumerators of ``enum name``."""
        return None

    def type(self, name: str) -> CType | None:
        """A typedef or base type by name."""
        return None

    def variable(self, name: str) -> CType | None:
        """The declared type of a kernel variable."""
        return None


class _GraphSource(_Source):
    """CTF and DWARF: types are records that refer to each other by handle."""

    def __init__(self, pointer_size: int) -> None:
        self.pointer_size = pointer_size
        self._ctypes: dict[int, CType] = {}
        self._layouts: dict[int, StructLayout] = {}
        self._names: dict[int, str] = {}
        self._building: set[int] = set()
        self._depth = 0

    @abstractmethod
    def raw(self, handle: int) -> _Raw:
        """The record of ``handle`` (never called with 0)."""

    @abstractmethod
    def members(self, handle: int) -> tuple[_RawMember, ...]:
        """The members of the struct or union ``handle`` (asked only by :meth:`layout`)."""

    @abstractmethod
    def lookup(self, kind: str, name: str) -> int | None:
        """Handle of the definition of ``kind`` (struct, union, enum, typedef, base)."""

    def _raw(self, handle: int) -> _Raw:
        return _VOID_RAW if handle == 0 else self.raw(handle)

    def resolve_handle(self, handle: int) -> int:
        """``handle`` after typedefs and qualifiers."""
        for _ in range(_MAX_CHAIN):
            r = self._raw(handle)
            if r.kind not in _QUALIFIERS:
                return handle
            handle = r.ref
        raise FormatError(E.cformat(E.LAYOUT_TYPE_CYCLE, self.label, handle))

    # -- names
    def spell(self, handle: int, decl: str = "") -> str:
        """The C spelling of ``handle`` as an abstract declarator around ``decl``."""
        if not decl:
            cached = self._names.get(handle)
            if cached is not None:
                return cached
        self._depth += 1
        try:
            if self._depth > _MAX_CHAIN:
                raise FormatError(E.cformat(E.LAYOUT_TYPE_CYCLE, self.label, handle))
            text = self._spell(handle, decl)
        finally:
            self._depth -= 1
        if not decl:
            self._names[handle] = text
        return text

    def _spell(self, handle: int, decl: str) -> str:
        r = self._raw(handle)
        k = r.kind
        if k == "enum":
            return _join(f"enum {r.name or '{...}'}", decl)
        if k in _AGGREGATES:
            return _join(f"{k} {r.name or '{...}'}", decl)
        if k == "pointer":
            return self._spell_pointer(r.ref, "*" + decl)
        if k in _QUALIFIERS and k != "typedef":
            word = "_Atomic" if k == "atomic" else k
            target = self._raw(r.ref)
            if target.kind == "pointer":
                return self._spell_pointer(target.ref, f"*{word}" + (f" {decl}" if decl else ""))
            return f"{word} " + self.spell(r.ref, decl)
        if k == "array":
            return self.spell(r.ref, f"{decl}[{'' if r.nelems is None else r.nelems}]")
        if k == "function":
            params = ", ".join(self.spell(p) for p in r.params)
            if r.variadic:
                params = f"{params}, ..." if params else "..."
            return self.spell(r.ref, f"{decl}({params or 'void'})")
        return _join(r.name or k, decl)

    def _spell_pointer(self, target: int, decl: str) -> str:
        if self._raw(target).kind in ("array", "function"):
            return self.spell(target, f"({decl})")
        return self.spell(target, decl)

    # -- types
    def ctype(self, handle: int) -> CType:
        """The :class:`CType` of ``handle`` (cached)."""
        c = self._ctypes.get(handle)
        if c is not None:
            return c
        if handle in self._building or len(self._building) > _MAX_CHAIN:
            raise FormatError(E.cformat(E.LAYOUT_TYPE_CYCLE, self.label, handle))
        self._building.add(handle)
        try:
            c = self._make(handle)
        finally:
            self._building.discard(handle)
        self._ctypes[handle] = c
        return c

    def _make(self, handle: int) -> CType:
        if handle == 0:
            return VOID
        r = self.raw(handle)
        k = r.kind
        name = self.spell(handle)
        if k in _QUALIFIERS:
            return self.ctype(r.ref).renamed(name)
        if k == "pointer":
            return CType("pointer", name, r.size or self.pointer_size, target=self.ctype(r.ref))
        if k == "array":
            el = self.ctype(r.ref)
            n = r.nelems
            size = n * el.size if n is not None and el.size is not None else None
            return CType("array", name, size, count=n, target=el)
        if k in _AGGREGATES or k == "enum":
            if r.incomplete:  # looked up only when needed: most are pointer targets
                return CType(k, name, None, tag=r.name,
                             resolver=lambda: self._definition_layout(k, r.name, handle))
            if k == "enum":
                return CType("enum", name, r.size or 4, signed=r.signed, tag=r.name,
                             enumerators=dict(r.enumerators))
            return CType(k, name, r.size, tag=r.name, resolver=lambda: self.layout(handle))
        if k in ("int", "bool", "float"):
            return CType(k, name, r.size, signed=r.signed)
        if k == "function":
            return CType("function", name, None)
        if k == "void":
            return CType("void", name, None)
        return CType("unknown", name, r.size)

    def _definition(self, kind: str, tag: str, handle: int) -> CType | None:
        """The complete type a declaration ``kind tag`` stands for, in this source."""
        if not tag:
            return None
        other = self.lookup(kind, tag)
        if other is None or other == handle or self._raw(other).incomplete:
            return None
        return self.ctype(other)

    def _definition_layout(self, kind: str, tag: str, handle: int) -> StructLayout | None:
        found = self._definition(kind, tag, handle)
        return None if found is None else found.layout

    def layout(self, handle: int) -> StructLayout:
        """The layout of the struct or union ``handle`` (cached)."""
        lay = self._layouts.get(handle)
        if lay is not None:
            return lay
        r = self.raw(handle)
        fields = []
        for rm in self.members(handle):
            t = self.ctype(rm.type)
            if t.size is None and t.tag and (t.kind in _AGGREGATES or t.kind == "enum"):
                # an embedded member of a type declared here, defined elsewhere
                found = self._definition(t.kind, t.tag, self.resolve_handle(rm.type))
                if found is not None:
                    t = found.renamed(t.name)
            fields.append(Member(rm.name, rm.bit_offset // 8, t.size, t, rm.bit_offset,
                                 rm.bit_size))
        lay = StructLayout(r.name, r.kind, r.size or 0, self.label, fields)
        self._layouts[handle] = lay
        return lay

    # -- _Source
    def struct(self, kind: str, name: str) -> StructLayout | None:
        handle = self.lookup(kind, name)
        if handle is None:
            return None
        r = self.raw(handle)
        if r.kind != kind or r.incomplete:
            return None
        return self.layout(handle)

    def enum(self, name: str) -> dict[str, int] | None:
        handle = self.lookup("enum", name)
        if handle is None:
            return None
        r = self.raw(handle)
        return None if r.incomplete or r.kind != "enum" else dict(r.enumerators)

    def type(self, name: str) -> CType | None:
        for kind in ("typedef", "base"):
            handle = self.lookup(kind, name)
            if handle is not None:
                return self.ctype(handle)
        return None


class _CtfSource(_GraphSource):
    """Layouts from a :class:`~pykvm.image.ctf.CtfFile`."""

    label = SRC_CTF

    def __init__(self, ctf: CtfFile, pointer_size: int,
                 symbols: Callable[[], list[SymbolEntry]] | None = None) -> None:
        super().__init__(pointer_size)
        self.ctf = ctf
        self._raws: dict[int, _Raw] = {}
        self._member_cache: dict[int, tuple[_RawMember, ...]] = {}
        self._symbols = symbols

    def lookup(self, kind: str, name: str) -> int | None:
        if kind in ("struct", "union", "enum"):
            tid = self.ctf.lookup(f"{kind} {name}")
        else:
            tid = self.ctf.lookup(name)
            if tid is not None:
                want = Kind.TYPEDEF if kind == "typedef" else None
                k = self.ctf.kind(tid)
                if (want is not None and k != want) or (
                        want is None and k not in (Kind.INTEGER, Kind.FLOAT)):
                    return None
        return tid

    def raw(self, handle: int) -> _Raw:
        r = self._raws.get(handle)
        if r is None:
            r = self._raws[handle] = self._convert(handle)
        return r

    def _convert(self, tid: int) -> _Raw:
        t = self.ctf.type(tid)
        k = t.kind
        if k == Kind.INTEGER:
            enc = t.encoding
            assert enc is not None
            if t.name == "void" and enc.bits == 0:
                return _Raw("void", "void")
            kind = "bool" if enc.format & INT_BOOL else "int"
            return _Raw(kind, t.name, t.size, signed=enc.signed)
        if k == Kind.FLOAT:
            return _Raw("float", t.name, t.size, signed=True)
        if k == Kind.POINTER:
            return _Raw("pointer", t.name, self.pointer_size, ref=t.ref or 0)
        if k == Kind.ARRAY:
            assert t.array is not None
            return _Raw("array", t.name, ref=t.array.contents, nelems=t.array.nelems)
        if k == Kind.FUNCTION:
            return _Raw("function", t.name, ref=t.ref or 0, params=t.args, variadic=t.variadic)
        if k in (Kind.STRUCT, Kind.UNION):
            kind = "struct" if k == Kind.STRUCT else "union"
            size = t.size or 0
            return _Raw(kind, t.name, size)
        if k == Kind.ENUM:
            return _Raw("enum", t.name, t.size or 4, signed=True,
                        enumerators=tuple((e.name, e.value) for e in t.enumerators))
        if k == Kind.FORWARD:
            fk = t.forward_kind or Kind.STRUCT
            word = {Kind.UNION: "union", Kind.ENUM: "enum"}.get(fk, "struct")
            return _Raw(word, t.name, incomplete=True)
        if k == Kind.TYPEDEF:
            return _Raw("typedef", t.name, ref=t.ref or 0)
        if k in (Kind.CONST, Kind.VOLATILE, Kind.RESTRICT):
            return _Raw(k.name.lower(), t.name, ref=t.ref or 0)
        return _Raw("unknown", t.name or "unknown", t.size)

    def members(self, handle: int) -> tuple[_RawMember, ...]:
        got = self._member_cache.get(handle)
        if got is None:
            t = self.ctf.type(handle)
            kind = "union" if t.kind == Kind.UNION else "struct"
            got = self._members(t.members, t.size or 0, kind)
            self._member_cache[handle] = got
        return got

    def _members(self, members: Sequence[Any], size: int, kind: str) -> tuple[_RawMember, ...]:
        ctf = self.ctf
        out: list[_RawMember] = []
        for i, m in enumerate(members):
            bit_offset, bit_size = m.offset, None
            r = ctf.resolve(m.type)
            if r:
                rk = ctf.kind(r)
                if rk == Kind.INTEGER:
                    enc = ctf.type(r).encoding
                    full = 8 * (ctf.type(r).size or 0)
                    if enc is not None and enc.bits and (enc.bits != full or enc.offset):
                        bit_offset += enc.offset
                        bit_size = enc.bits
                elif rk == Kind.ENUM and kind == "struct":
                    et = ctf.type(r)
                    full = 8 * (et.size or 4)
                    later = [n.offset for n in members[i + 1:] if n.offset > m.offset]
                    room = (min(later) if later else 8 * size) - m.offset
                    if m.offset % 8 or room < full:
                        bit_size = _enum_width(et.enumerators, m.offset, room, full)
            out.append(_RawMember(m.name, bit_offset, m.type, bit_size))
        return tuple(out)

    def variable(self, name: str) -> CType | None:
        if self._symbols is not None:
            self.ctf.set_symbols(self._symbols())
            self._symbols = None
        try:
            tid = self.ctf.object_type(name)
        except FormatError as exc:
            if exc.message == E.CTF_NO_SYMTAB:  # no symbol table: nothing to map
                return None
            raise
        return None if tid is None else self.ctype(tid)


def _enum_width(enumerators: Sequence[Enumerator], bit_offset: int, room: int,
                full: int) -> int:
    """The width CTF leaves out for an enum bit-field (see the module docstring):
    the bits its enumerators need, a whole number of bytes when the field starts
    on a byte, never more than the room before the next member."""
    values: list[int] = [e.value for e in enumerators]
    need = max([1, *(v.bit_length() + (1 if v < 0 else 0) for v in values)])
    if bit_offset % 8 == 0:
        need = (need + 7) // 8 * 8
    return max(1, min(need, room, full))


class _DwarfSource(_GraphSource):
    """Layouts from a :class:`~pykvm.image.dwarf.DwarfFile`."""

    label = SRC_DWARF

    def __init__(self, dwarf: DwarfFile) -> None:
        super().__init__(dwarf.address_size)
        self.dwarf = dwarf
        self._raws: dict[int, _Raw] = {}

    def lookup(self, kind: str, name: str) -> int | None:
        return self.dwarf.find(kind, name)

    def raw(self, handle: int) -> _Raw:
        r = self._raws.get(handle)
        if r is None:
            t = self.dwarf.type(handle)
            r = _Raw(t.kind, t.name, t.size, t.ref, t.signed, t.count, t.enumerators,
                     t.params, t.variadic, t.declaration)
            self._raws[handle] = r
        return r

    def members(self, handle: int) -> tuple[_RawMember, ...]:
        return tuple(_RawMember(m.name, m.bit_offset, m.type, m.bit_size)
                     for m in self.dwarf.members(handle))

    def variable(self, name: str) -> CType | None:
        handle = self.dwarf.variable(name)
        return None if handle is None else self.ctype(handle)


class _OffsetsSource(_Source):
    """Layouts of the few members FreeBSD exports for debuggers (kern_proc.c)."""

    label = SRC_OFFSETS

    def __init__(self, values: Mapping[str, int], pointer_size: int) -> None:
        self.values = dict(values)
        self.pointer_size = pointer_size
        self._layouts: dict[str, StructLayout] = {}

    def _queue(self, name: str, elem: str, first: str, second: str,
               tag: str = "") -> CType:
        ps = self.pointer_size
        one = CType("pointer", f"struct {elem} *", ps,
                    target=CType("struct", f"struct {elem}", None, tag=elem))
        two = CType("pointer", f"struct {elem} **", ps, target=one)
        lay = StructLayout(tag, "struct", 2 * ps, self.label,
                           [Member(first, 0, ps, one, 0), Member(second, ps, ps, two, 8 * ps)])
        return CType("struct", name, 2 * ps, tag=tag, layout=lay)

    def _member_type(self, struct: str, member: str) -> CType:
        int32 = CType("int", "int", 4, signed=True)
        char = CType("int", "char", 1, signed=True)
        comm = CType("array", f"char [{MAXCOMLEN + 1}]", MAXCOMLEN + 1, count=MAXCOMLEN + 1,
                     target=char)
        if member == "p_pid":
            return int32.renamed("pid_t")
        if member == "td_tid":
            return int32.renamed("lwpid_t")
        if member == "td_oncpu":
            return int32  # an int since FreeBSD 11, when the symbols appeared (kgdb reads 4)
        if member in ("p_comm", "td_name"):
            return comm
        if member in ("p_list", "p_hash"):
            return self._queue("struct {...}", "proc", "le_next", "le_prev")
        if member == "p_threads":
            return self._queue("struct threadqueue", "thread", "tqh_first", "tqh_last",
                               "threadqueue")
        if member == "td_plist":
            return self._queue("struct {...}", "thread", "tqe_next", "tqe_prev")
        if member == "td_pcb":
            return CType("pointer", "struct pcb *", self.pointer_size,
                         target=CType("struct", "struct pcb", None, tag="pcb"))
        raise AssertionError(member)

    def struct(self, kind: str, name: str) -> StructLayout | None:
        if kind != "struct":
            return None
        lay = self._layouts.get(name)
        if lay is not None:
            return lay
        fields: list[Member] = []
        size: int | None = None
        for sym, (sname, member) in EXPORTED_OFFSETS.items():
            if sname != name or sym not in self.values:
                continue
            value = self.values[sym]
            if not member:
                size = value
                continue
            t = self._member_type(sname, member)
            fields.append(Member(member, value, t.size, t, 8 * value))
        if not fields and size is None:
            return None
        fields.sort(key=lambda m: m.bit_offset)
        extent = max((m.offset + (m.size or 0) for m in fields), default=0)
        lay = StructLayout(name, "struct", size if size is not None else extent, self.label,
                           fields, complete=False, exact_size=size is not None)
        self._layouts[name] = lay
        return lay


# ------------------------------------------------------------------------ registry


@dataclass(frozen=True)
class SourceInfo:
    """One source of type information: whether it is there and what it is."""

    name: str
    available: bool
    detail: str
    error: str | None = None


def parse_type_name(text: str) -> tuple[str, str]:
    """``"proc"``, ``"struct proc"``, ``"union u"`` -> ``(kind, tag)``."""
    words = text.split()
    if len(words) == 2 and words[0] in ("struct", "union"):
        return words[0], words[1]
    if len(words) == 1:
        return "struct", words[0]
    raise ValueError(f"not a struct or union name: {text!r}")


class KernelTypes:
    """The type information of one kernel: layouts by name, CTF > DWARF > offsets.

    Build with :meth:`for_kernel`.  Sources are opened on first use; a source
    that turns out to be unreadable is skipped and its error is kept (see
    :attr:`sources`).
    """

    def __init__(self, *, byteorder: str, pointer_size: int,
                 ctf: Callable[[], CtfFile | None] | CtfFile | None = None,
                 dwarf: Sequence[DwarfFile] = (),
                 own_dwarf: Callable[[], DwarfFile | None] | None = None,
                 offsets: (Callable[[], tuple[Mapping[str, int], str]]
                           | Mapping[str, int] | None) = None,
                 memory: Memory | None = None,
                 symbols: Callable[[], list[SymbolEntry]] | None = None) -> None:
        if byteorder not in ("little", "big"):
            raise ValueError("byteorder must be 'little' or 'big'")
        self.byteorder = byteorder
        self.pointer_size = pointer_size
        self.memory = memory
        self._ctf_arg = ctf
        self._ctf: _CtfSource | None = None
        self._ctf_state: SourceInfo | None = None
        self._dwarf = [_DwarfSource(d) for d in dwarf]
        self._own_dwarf_arg = own_dwarf
        self._own_dwarf: _DwarfSource | None = None
        self._own_state: SourceInfo | None = None
        self._offsets_arg = offsets
        self._offsets: _OffsetsSource | None = None
        self._offsets_state: SourceInfo | None = None
        self._symbols = symbols
        self._structs: dict[tuple[str, str], StructLayout | None] = {}
        self._owned: list[DwarfFile] = []

    # -- construction
    @classmethod
    def for_kernel(cls, image: KernelImage, *, debug: Sequence[DwarfFile] = (),
                   memory: Memory | None = None,
                   offsets_memory: Memory | None = None) -> KernelTypes:
        """The types of a kernel (:class:`~pykvm.image.elf.KernelImage`).

        CTF comes from the kernel's ``.SUNW_ctf`` (byte order and pointer size
        from the ELF header, external names from the symbol table's string
        table, the symbol table itself for variable types).  ``debug`` are
        separate DWARF files, asked before the kernel's own ``.debug_info``.
        ``memory`` (the descriptor) is what views read; the exported offsets are
        read through ``offsets_memory`` (default ``memory``: the descriptor offers
        a reader that leaves its error buffer alone), and from the kernel file
        without one or when the dump cannot serve them.
        """
        eh = image.ehdr
        byteorder = "little" if eh.ei_data == ELFDATA2LSB else "big"
        psize = 8 if eh.is64 else 4

        def ctf() -> CtfFile | None:
            sec = image.section_by_name(".SUNW_ctf")
            if sec is None or sec.type == SHT_NOBITS or sec.size == 0:
                return None
            if sec.offset + sec.size > image.size:
                raise FormatError(E.cformat(E.LAYOUT_SECTION_OUTSIDE, ".SUNW_ctf"))
            strtab = _symtab_strings(image)
            return CtfFile.parse(image.bytes_at(sec.offset, sec.size), endian=byteorder,
                                 pointer_size=psize, strtab=strtab)

        def own_dwarf() -> DwarfFile | None:
            if all(image.section_by_name(n) is None for n in (".debug_info", ".zdebug_info")):
                return None
            return DwarfFile.open(image.path)

        def offsets() -> tuple[dict[str, int], str]:
            return _read_exported_offsets(
                image, offsets_memory if offsets_memory is not None else memory, byteorder)

        return cls(byteorder=byteorder, pointer_size=psize, ctf=ctf, dwarf=debug,
                   own_dwarf=own_dwarf, offsets=offsets, memory=memory,
                   symbols=lambda: _symbol_entries(image))

    def add_dwarf(self, dwarf: DwarfFile) -> None:
        """Ask ``dwarf`` (a ``kernel.debug``) after CTF and before the kernel's own DWARF."""
        self._dwarf.append(_DwarfSource(dwarf))
        self._structs = {k: v for k, v in self._structs.items() if v is not None}

    def close(self) -> None:
        """Close the DWARF files this object opened itself."""
        for d in self._owned:
            d.close()
        self._owned.clear()

    # -- sources
    def _ctf_source(self) -> _CtfSource | None:
        if self._ctf_state is None:
            arg = self._ctf_arg
            try:
                ctf = arg() if callable(arg) else arg
            except KvmError as exc:
                self._ctf_state = SourceInfo(SRC_CTF, False, "", exc.message)
                return None
            if ctf is None:
                self._ctf_state = SourceInfo(SRC_CTF, False, "no .SUNW_ctf")
                return None
            self._ctf = _CtfSource(ctf, self.pointer_size, self._symbols)
            detail = (f".SUNW_ctf version {ctf.version}"
                      f"{', compressed' if ctf.compressed else ''}, {len(ctf)} types")
            self._ctf_state = SourceInfo(SRC_CTF, True, detail)
        return self._ctf

    def _own_dwarf_source(self) -> _DwarfSource | None:
        if self._own_state is None:
            arg = self._own_dwarf_arg
            try:
                dw = arg() if arg is not None else None
            except KvmError as exc:
                self._own_state = SourceInfo(SRC_DWARF, False, "", exc.message)
                return None
            if dw is None:
                self._own_state = SourceInfo(SRC_DWARF, False, "no .debug_info in the kernel")
                return None
            self._owned.append(dw)
            self._own_dwarf = _DwarfSource(dw)
            self._own_state = SourceInfo(SRC_DWARF, True, f"{dw.name} (the kernel itself)")
        return self._own_dwarf

    def _offsets_source(self) -> _OffsetsSource | None:
        if self._offsets_state is None:
            arg = self._offsets_arg
            where = ""
            values: Mapping[str, int] | None
            try:
                if callable(arg):
                    values, where = arg()
                else:
                    values = arg
            except KvmError as exc:
                self._offsets_state = SourceInfo(SRC_OFFSETS, False, "", exc.message)
                return None
            if not values:
                self._offsets_state = SourceInfo(SRC_OFFSETS, False, "no exported offsets")
                return None
            self._offsets = _OffsetsSource(values, self.pointer_size)
            names = ", ".join(sorted(values))
            where = f", {where}" if where else ""
            self._offsets_state = SourceInfo(
                SRC_OFFSETS, True,
                f"{len(values)} of {len(EXPORTED_OFFSETS)} symbols ({names}){where}")
        return self._offsets

    def _graph_sources(self) -> Iterator[_GraphSource]:
        ctf = self._ctf_source()
        if ctf is not None:
            yield ctf
        yield from self._dwarf
        own = self._own_dwarf_source()
        if own is not None:
            yield own

    def _all_sources(self) -> Iterator[_Source]:
        yield from self._graph_sources()
        off = self._offsets_source()
        if off is not None:
            yield off

    @property
    def sources(self) -> list[SourceInfo]:
        """Every source in order of precedence, opened if not yet, with its state."""
        self._ctf_source()
        out: list[SourceInfo] = [self._ctf_state] if self._ctf_state else []
        for d in self._dwarf:
            out.append(SourceInfo(SRC_DWARF, True, d.dwarf.name))
        self._own_dwarf_source()
        if self._own_state is not None and (self._own_state.available
                                            or not self._dwarf):
            out.append(self._own_state)
        self._offsets_source()
        if self._offsets_state is not None:
            out.append(self._offsets_state)
        return out

    def _why_not(self) -> str:
        parts = []
        for info in self.sources:
            if info.error:
                parts.append(f"{info.name} unreadable: {info.error}")
            elif not info.available:
                parts.append({SRC_CTF: "no .SUNW_ctf", SRC_DWARF: "no DWARF",
                              SRC_OFFSETS: "no exported offsets"}[info.name])
            elif info.name == SRC_OFFSETS:
                parts.append("not among the exported offsets")
            else:
                parts.append(f"not in {info.name}")
        return ", ".join(dict.fromkeys(parts))

    # -- lookups
    def find_struct(self, name: str) -> StructLayout | None:
        """The layout of ``name`` (``proc``, ``struct proc``, ``union u``), or None."""
        key = parse_type_name(name)
        try:
            return self._structs[key]
        except KeyError:
            pass
        found: StructLayout | None = None
        for src in self._all_sources():
            found = src.struct(*key)
            if found is not None:
                break
        self._structs[key] = found
        return found

    def struct(self, name: str) -> StructLayout:
        """The layout of ``name``; a KvmError naming the struct and every source
        asked when none knows it."""
        found = self.find_struct(name)
        if found is None:
            kind, tag = parse_type_name(name)
            raise KvmError(E.cformat(E.LAYOUT_NO_INFO, f"{kind} {tag}", self._why_not()))
        return found

    def has_struct(self, name: str) -> bool:
        """Whether some source defines the struct."""
        return self.find_struct(name) is not None

    def has_member(self, struct: str, path: str) -> bool:
        """Whether ``struct`` has the member ``path`` (the struct itself must be known)."""
        return self.struct(struct).has(path)

    def member(self, struct: str, path: str) -> Member:
        """``struct(struct).member(path)``."""
        return self.struct(struct).member(path)

    def offsetof(self, struct: str, path: str) -> int:
        """Byte offset of ``struct.path``."""
        return self.struct(struct).member(path).offset

    def sizeof(self, struct: str) -> int:
        """Size of the struct (see :attr:`StructLayout.exact_size`)."""
        return self.struct(struct).size

    def enum(self, name: str) -> dict[str, int]:
        """The enumerators of ``enum name`` (``p_states``), from CTF or DWARF."""
        tag = name.split()[-1]
        for src in self._graph_sources():
            values = src.enum(tag)
            if values is not None:
                return values
        raise KvmError(E.cformat(E.LAYOUT_NO_INFO, f"enum {tag}", self._why_not()))

    def type(self, name: str) -> CType:
        """A typedef or base type by name (``segsz_t``, ``long``), from CTF or DWARF."""
        for src in self._graph_sources():
            t = src.type(name)
            if t is not None:
                return t
        raise KvmError(E.cformat(E.LAYOUT_NO_INFO, name, self._why_not()))

    def variable(self, name: str) -> CType | None:
        """The declared type of kernel variable ``name`` (CTF object section or
        DWARF ``DW_TAG_variable``), None when no source says."""
        for src in self._graph_sources():
            t = src.variable(name)
            if t is not None:
                return t
        return None

    # -- views
    def view(self, layout: StructLayout | str, address: int,
             memory: Memory | None = None) -> StructView:
        """Read the struct at ``address`` (one read of its whole size) and return a view."""
        lay = self.struct(layout) if isinstance(layout, str) else layout
        ctx = _ViewContext(self, memory if memory is not None else self.memory)
        return StructView(lay, ctx.read(lay, address), address, ctx)

    def view_from(self, layout: StructLayout | str, data: bytes, address: int,
                  memory: Memory | None = None) -> StructView:
        """A view over bytes already read (``data`` at least ``layout.size`` long)."""
        lay = self.struct(layout) if isinstance(layout, str) else layout
        if len(data) < lay.size:
            raise ValueError(f"{len(data)} bytes given, {lay.title} needs {lay.size}")
        return StructView(lay, bytes(data), address,
                          _ViewContext(self, memory if memory is not None else self.memory))


# ----------------------------------------------------------------------------- views


class _ViewContext:
    """What views share: the registry, the memory, byte order, pointer size."""

    __slots__ = ("types", "memory", "order", "psize", "_float")

    def __init__(self, types: KernelTypes, memory: Memory | None) -> None:
        self.types = types
        self.memory = memory
        self.order: Any = types.byteorder
        self.psize = types.pointer_size
        self._float = "<" if types.byteorder == "little" else ">"

    def read(self, layout: StructLayout, address: int) -> bytes:
        mem = self.memory
        if mem is None:
            raise KvmError(E.cformat(E.VIEW_NO_MEMORY, layout.title))
        if layout.size > _MAX_VIEW:  # a corrupt size: do not try to read gigabytes
            raise FormatError(E.cformat(E.VIEW_TOO_LARGE, layout.title, layout.size))
        data = mem.read2(address, layout.size)
        if len(data) < layout.size:
            raise FaultError(E.cformat(E.VIEW_SHORT, layout.title, f"0x{address:x}",
                                       len(data), layout.size), address)
        return data

    def decode(self, m: Member, t: CType, data: bytes, off: int, address: int,
               title: str) -> Any:
        size = t.size
        if m.bit_size is not None:
            return self.bits(m, t, data, off - m.offset, title)
        k = t.kind
        if size is None:
            if k == "array":
                return b"" if t.is_string else ()
            return b""
        end = off + size
        if end > len(data):
            raise FormatError(E.cformat(E.VIEW_OUTSIDE, m.name, title, len(data)))
        if k == "int" or k == "enum":
            return int.from_bytes(data[off:end], self.order, signed=t.signed)
        if k == "pointer":
            return Pointer(int.from_bytes(data[off:end], self.order), t.target or VOID, self)
        if k in _AGGREGATES:
            lay = t.layout
            if lay is None:
                return data[off:end]
            return StructView(lay, data, address, self, off)
        if k == "array":
            raw = data[off:end]
            if t.is_string:
                nul = raw.find(b"\0")
                return raw if nul < 0 else raw[:nul]
            el = t.target or VOID
            if el.size is None or el.size == 0 or t.count is None:
                return ()
            esz = el.size
            fake = Member(m.name, 0, esz, el, 0)
            return tuple(self.decode(fake, el, data, off + i * esz, address + i * esz, title)
                         for i in range(t.count))
        if k == "bool":
            return bool(int.from_bytes(data[off:end], self.order))
        if k == "float" and size in (4, 8):
            return _struct.unpack_from(self._float + ("f" if size == 4 else "d"), data, off)[0]
        return data[off:end]

    def bits(self, m: Member, t: CType, data: bytes, base: int, title: str) -> int:
        width = m.bit_size or 0
        first = base * 8 + m.bit_offset
        lo, hi = first // 8, (first + width + 7) // 8
        if width <= 0 or hi > len(data):
            raise FormatError(E.cformat(E.VIEW_OUTSIDE, m.name, title, len(data)))
        word = int.from_bytes(data[lo:hi], self.order)
        skip = first - 8 * lo
        shift = skip if self.order == "little" else 8 * (hi - lo) - skip - width
        value = (word >> shift) & ((1 << width) - 1)
        if t.signed and width and value >> (width - 1):
            value -= 1 << width
        if t.kind == "bool":
            return bool(value)
        return value


def _pointer_to(target: CType) -> str:
    """The spelling of a pointer to ``target``: ``struct proc *``, ``char **``."""
    name = target.name
    return name + "*" if name.endswith("*") else name + " *"


class Pointer(int):
    """A pointer read from kernel memory: an ``int`` that knows its target type.

    ``deref()`` reads what it points to: a :class:`StructView` for a struct or
    union (its layout looked up by tag, so the usual source precedence applies),
    else the decoded value.  ``string()`` reads a NUL-terminated string.
    """

    target: CType
    _ctx: _ViewContext

    def __new__(cls, value: int, target: CType, ctx: _ViewContext) -> Pointer:
        obj = super().__new__(cls, value)
        obj.target = target
        obj._ctx = ctx
        return obj

    @property
    def address(self) -> int:
        """The pointer's value as a plain int."""
        return int(self)

    def _need(self) -> Memory:
        mem = self._ctx.memory
        if mem is None:
            raise KvmError(E.cformat(E.VIEW_NO_MEMORY, self.target.name))
        if int(self) == 0:
            raise FaultError(E.cformat(E.VIEW_NULL, _pointer_to(self.target)), 0)
        return mem

    def deref(self) -> Any:
        """The object pointed to (see the class docstring)."""
        t = self.target
        if t.kind in _AGGREGATES:
            lay: StructLayout | None
            if t.tag:
                lay = self._ctx.types.struct(f"{t.kind} {t.tag}")
            else:
                lay = t.layout
            if lay is None:
                raise KvmError(E.cformat(E.VIEW_NO_DEREF, _pointer_to(t)))
            self._need()
            return StructView(lay, self._ctx.read(lay, int(self)), int(self), self._ctx)
        if t.size is None or t.kind in ("void", "function", "unknown"):
            raise KvmError(E.cformat(E.VIEW_NO_DEREF, _pointer_to(t)))
        mem = self._need()
        data = mem.read2(int(self), t.size)
        if len(data) < t.size:
            raise FaultError(E.cformat(E.VIEW_SHORT, t.name, f"0x{int(self):x}", len(data),
                                       t.size), int(self))
        fake = Member("*", 0, t.size, t, 0)
        return self._ctx.decode(fake, t, data, 0, int(self), t.name)

    def string(self, limit: int = _STRING_LIMIT) -> bytes:
        """The NUL-terminated string at this address (at most ``limit`` bytes),
        read in aligned 256-byte chunks (never across a page), so that a string
        ending just before an unreadable page still reads."""
        mem = self._need()
        out = bytearray()
        addr = int(self)
        while len(out) < limit:
            want = min(_STRING_CHUNK - addr % _STRING_CHUNK, limit - len(out))
            chunk = mem.read2(addr, want)
            nul = chunk.find(b"\0")
            if nul >= 0:
                out += chunk[:nul]
                break
            out += chunk
            if len(chunk) < want:
                break
            addr = (addr + want) & ((1 << 64) - 1)
        return bytes(out)

    def __repr__(self) -> str:
        return f"({_pointer_to(self.target)})0x{int(self):x}"


class StructView:
    """A struct read from kernel memory (see the module docstring).

    ``view.member`` and ``view["a.b.c"]`` decode members; ``address``,
    ``layout``, ``data`` describe the view itself.  Nested struct members are
    views of the same bytes (no further read).
    """

    __slots__ = ("_layout", "_data", "_base", "_address", "_ctx")

    def __init__(self, layout: StructLayout, data: bytes, address: int,
                 ctx: _ViewContext, base: int = 0) -> None:
        self._layout = layout
        self._data = data
        self._base = base
        self._address = address
        self._ctx = ctx

    @property
    def address(self) -> int:
        """Kernel virtual address of this struct."""
        return self._address

    @property
    def layout(self) -> StructLayout:
        """The struct's layout."""
        return self._layout

    @property
    def data(self) -> bytes:
        """The struct's bytes as read."""
        return self._data[self._base:self._base + self._layout.size]

    def __getitem__(self, path: str) -> Any:
        m = self._layout.get(path)
        if m is None:
            self._layout.member(path)  # raises MemberError with the reason
            raise AssertionError(path)
        return self._ctx.decode(m, m.type, self._data, self._base + m.offset,
                                self._address + m.offset, self._layout.title)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return self[name]

    def get(self, path: str, default: Any = None) -> Any:
        """The member's value, or ``default`` when the struct has no such member."""
        return self[path] if self._layout.has(path) else default

    def has(self, path: str) -> bool:
        """Whether the struct has the member (optional members)."""
        return self._layout.has(path)

    def member_address(self, path: str) -> int:
        """Kernel virtual address of a member."""
        return self._address + self._layout.member(path).offset

    def raw(self, path: str) -> bytes:
        """The bytes of a member (the storage bytes of a bit-field)."""
        m = self._layout.member(path)
        off = self._base + m.offset
        if m.bit_size is not None:
            end = self._base + (m.bit_offset + m.bit_size + 7) // 8
        else:
            end = off + (m.size or 0)
        return self._data[off:end]

    def __dir__(self) -> Iterable[str]:
        return sorted(set(super().__dir__()) | set(self._layout._flat()))

    def __repr__(self) -> str:
        return f"<{self._layout.title} at 0x{self._address:x}>"


# ----------------------------------------------------------------- the kernel file


def _symtab_strings(image: KernelImage) -> bytes | None:
    """The string table of the kernel's first ``SHT_SYMTAB`` (CTF's external names)."""
    secs = image.sections()
    sym = next((s for s in secs if s.type == SHT_SYMTAB), None)
    if sym is None or not 0 < sym.link < len(secs):
        return None
    strs = secs[sym.link]
    if strs.offset + strs.size > image.size:
        return None
    return image.bytes_at(strs.offset, strs.size)


def _symbol_entries(image: KernelImage) -> list[SymbolEntry]:
    """The whole first ``SHT_SYMTAB`` in table order, as CTF's object mapping wants it."""
    secs = image.sections()
    sym = next((s for s in secs if s.type == SHT_SYMTAB), None)
    strtab = _symtab_strings(image)
    if sym is None or strtab is None:
        return []
    eh = image.ehdr
    entsize = 24 if eh.ei_class == ELFCLASS64 else 16
    count = max(0, min(sym.size, image.size - sym.offset)) // entsize
    raw = image.bytes_at(sym.offset, count * entsize)
    out: list[SymbolEntry] = []
    if eh.ei_class == ELFCLASS64:
        rows = ((n, i, sh, v) for n, i, _o, sh, v, _s in
                _struct.iter_unpack(eh.endian + "IBBHQQ", raw))
    else:
        rows = ((n, i, sh, v) for n, v, _s, i, _o, sh in
                _struct.iter_unpack(eh.endian + "IIIBBH", raw))
    for name_off, info, shndx, value in rows:
        name: bytes | None = None
        if name_off and name_off < len(strtab):
            end = strtab.find(b"\0", name_off)
            name = strtab[name_off:end if end >= 0 else len(strtab)] or None
        out.append((name, info, shndx, value))
    return out


def _file_read(image: KernelImage, shndx: int, value: int, size: int) -> bytes | None:
    """The bytes of a symbol from its section in the file (``value`` is an address in
    an executable, an offset into the section in a relocatable object)."""
    secs = image.sections()
    if not 0 < shndx < len(secs):
        return None
    sec = secs[shndx]
    if sec.type == SHT_NOBITS or not sec.addr <= value <= value + size <= sec.addr + sec.size:
        return None
    data = image.bytes_at(sec.offset + value - sec.addr, size)
    return data if len(data) == size else None


def _read_exported_offsets(image: KernelImage, memory: Memory | None,
                           byteorder: str) -> tuple[dict[str, int], str]:
    """The values of the debugger symbols (``const int``), and where they came from.

    Read through ``memory`` (the dump) when given, else (or when the dump cannot
    serve one) from the kernel file.  Negative values are ignored, as LLDB does.
    """
    values: dict[str, int] = {}
    places: set[str] = set()
    order: Any = byteorder
    table = image.symtab()
    if table is None:
        return values, ""
    for name in EXPORTED_OFFSETS:
        idxs = table.indices(name.encode())
        if not idxs:
            continue
        addr, shndx = table.value[idxs[0]], table.shndx[idxs[0]]
        data: bytes | None = None
        if memory is not None:
            try:
                data = memory.read2(addr, 4)
            except KvmError:
                data = None
            if data is not None and len(data) == 4:
                places.add("read from the dump")
            else:
                data = None
        if data is None:
            data = _file_read(image, shndx, addr, 4)
            if data is not None:
                places.add("read from the kernel file")
        if data is None:
            continue
        value = int.from_bytes(data, order, signed=True)
        if value >= 0:
            values[name] = value
    return values, " and ".join(sorted(places))
