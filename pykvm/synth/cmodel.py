"""A small model of C types for a target, laid out with the target's C ABI rules.

This is the producer's side of type information: :mod:`pykvm.synth.kerneltypes` builds
FreeBSD kernel structures with it, and :mod:`pykvm.synth.ctfwriter` /
:mod:`pykvm.synth.dwarfwriter` serialise the same model as CTF and DWARF.  Nothing here reads
a file, and nothing imports pykvm's readers.

The model
---------
Types are plain objects compared by identity (two ``unsigned int`` objects would be two
types, exactly as two DWARF DIEs would be).  :class:`TypeSpace` hands them out memoized (one
``struct proc *``, one ``u_int`` typedef), records their creation order (the order the
writers emit them in) and lays out aggregates:

* every ordinary member is placed at the next multiple of its alignment;
* a bit-field of declared type ``T`` and width ``w`` is placed at the next free bit unless
  that would make it straddle a ``sizeof(T)`` storage unit, in which case it starts the next
  unit (the System V rule GCC and Clang follow); a named bit-field contributes
  ``alignof(T)`` to the aggregate's alignment; a zero-width bit-field only aligns;
* a union places every member at offset 0;
* the aggregate's alignment is the largest member alignment (or an explicit
  ``__aligned(N)``), its size the end of the last member rounded up to that alignment.

Bit positions are counted in *allocation order* from the start of the aggregate: on a
little-endian target bit 0 is the least significant bit of byte 0, on a big-endian target
the most significant.  That is the number DWARF 4's ``DW_AT_data_bit_offset`` and CTF's
member offset both carry, so one ground truth serves both byte orders.

Names
-----
:func:`c_type_name` spells a type the way a C declaration would with the declarator
removed: ``struct proc *``, ``char [20]``, ``const char *``, ``struct mtx *volatile``,
``void (*)(int)``, ``struct {...}`` for an anonymous aggregate.  Ground-truth member type
names use it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, TypeAlias, TypeVar

ByteOrder = Literal["little", "big"]
Qualifier = Literal["const", "volatile", "restrict"]
AggregateKind = Literal["struct", "union"]

T = TypeVar("T")


# --------------------------------------------------------------------------- targets


@dataclass(frozen=True)
class Target:
    """The C ABI facts of one FreeBSD architecture that type layout depends on."""

    name: str
    ptr_size: int
    byteorder: ByteOrder
    long_size: int
    int64_align: int  # alignment of 8-byte integers inside structures (4 on i386)
    char_signed: bool  # plain ``char`` is signed on x86, unsigned on arm/powerpc/riscv
    elf_machine: int  # e_machine of the target's ELF files (used by the test ELF wrapper)
    maxcpu: int  # MAXCPU of a GENERIC kernel (only sizes per-CPU arrays)

    @property
    def is64(self) -> bool:
        """True for an LP64 target."""
        return self.ptr_size == 8


AMD64 = Target("amd64", 8, "little", 8, 8, True, 62, 256)
I386 = Target("i386", 4, "little", 4, 4, True, 3, 32)
AARCH64 = Target("aarch64", 8, "little", 8, 8, False, 183, 256)
ARMV7 = Target("armv7", 4, "little", 4, 8, False, 40, 4)
#: MAXCPU is 256 for 32- and 64-bit powerpc alike (sys/powerpc/include/param.h of FreeBSD 14
#: and main; FreeBSD 10 had 32 for both)
POWERPC = Target("powerpc", 4, "big", 4, 8, False, 20, 256)
POWERPC64 = Target("powerpc64", 8, "big", 8, 8, False, 21, 256)
RISCV64 = Target("riscv64", 8, "little", 8, 8, False, 243, 16)
#: the byte-order twins and the MIPS ABIs (FreeBSD <= 13; ``char`` is signed on MIPS)
ARMV7EB = Target("armeb", 4, "big", 4, 8, False, 40, 4)
POWERPC64LE = Target("powerpc64le", 8, "little", 8, 8, False, 21, 256)
MIPS_O32 = Target("mips", 4, "big", 4, 8, True, 8, 32)
MIPSEL_O32 = Target("mipsel", 4, "little", 4, 8, True, 8, 32)
MIPS_N32 = Target("mipsn32", 4, "big", 4, 8, True, 8, 32)
MIPSEL_N32 = Target("mipsn32el", 4, "little", 4, 8, True, 8, 32)
MIPS64 = Target("mips64", 8, "big", 8, 8, True, 8, 32)
MIPS64EL = Target("mips64el", 8, "little", 8, 8, True, 8, 32)

TARGETS: Mapping[str, Target] = {
    t.name: t
    for t in (
        AMD64, I386, AARCH64, ARMV7, POWERPC, POWERPC64, RISCV64,
        ARMV7EB, POWERPC64LE, MIPS_O32, MIPSEL_O32, MIPS_N32, MIPSEL_N32, MIPS64, MIPS64EL,
    )
}


# --------------------------------------------------------------------------- type nodes


@dataclass(eq=False)
class IntType:
    """A C integer base type (``DW_TAG_base_type`` / CTF INTEGER)."""

    name: str
    size: int
    signed: bool
    char: bool = False
    boolean: bool = False


@dataclass(eq=False)
class FloatType:
    """A C floating-point base type."""

    name: str
    size: int


@dataclass(eq=False)
class VoidType:
    """``void`` (only ever the target of a pointer or a function's return type)."""

    name: str = "void"


@dataclass(eq=False)
class PointerType:
    """``T *``."""

    target: CType


@dataclass(eq=False)
class ArrayType:
    """``T [count]`` (one dimension; nest for more)."""

    element: CType
    count: int


@dataclass(eq=False)
class TypedefType:
    """``typedef T name``."""

    name: str
    target: CType


@dataclass(eq=False)
class QualifiedType:
    """``const T``, ``volatile T`` or ``restrict T``."""

    qualifier: Qualifier
    target: CType


@dataclass(eq=False)
class EnumType:
    """``enum name { ... }`` (``name`` None for an anonymous enum)."""

    name: str | None
    enumerators: list[tuple[str, int]]
    size: int = 4


@dataclass(eq=False)
class FunctionType:
    """A function type (the target of a function pointer or of a function typedef)."""

    ret: CType
    params: list[CType]
    varargs: bool = False


@dataclass(eq=False)
class Member:
    """One laid-out member of a struct or union."""

    name: str  # "" for an anonymous struct/union member
    type: CType
    bit_offset: int  # from the start of the aggregate, in allocation order
    bit_size: int | None = None  # width of a bit-field, None for an ordinary member

    @property
    def offset(self) -> int:
        """Byte offset of the byte holding the member's first bit."""
        return self.bit_offset // 8


@dataclass(eq=False)
class StructType:
    """A struct or union; ``complete`` False means only a forward declaration exists."""

    kind: AggregateKind
    name: str | None
    members: list[Member] = field(default_factory=list)
    size: int = 0
    align: int = 1
    complete: bool = False


CType: TypeAlias = (
    IntType
    | FloatType
    | VoidType
    | PointerType
    | ArrayType
    | TypedefType
    | QualifiedType
    | EnumType
    | FunctionType
    | StructType
)


@dataclass(frozen=True)
class Field:
    """A member to lay out: name, declared type and (for a bit-field) its width."""

    name: str
    type: CType
    bits: int | None = None
    align: int | None = None  # ``__aligned(N)`` on the member


@dataclass(frozen=True)
class Variable:
    """A kernel variable: its symbol name, declared type and (optionally) address."""

    name: str
    type: CType
    address: int | None = None


# --------------------------------------------------------------------------- helpers


def strip_typedefs(t: CType) -> CType:
    """Follow typedefs and qualifiers down to the underlying type."""
    while isinstance(t, (TypedefType, QualifiedType)):
        t = t.target
    return t


def sizeof(t: CType, target: Target) -> int:
    """``sizeof`` on ``target`` (raises ValueError for void, functions, incomplete types)."""
    if isinstance(t, (IntType, FloatType, EnumType)):
        return t.size
    if isinstance(t, PointerType):
        return target.ptr_size
    if isinstance(t, ArrayType):
        return t.count * sizeof(t.element, target)
    if isinstance(t, (TypedefType, QualifiedType)):
        return sizeof(t.target, target)
    if isinstance(t, StructType):
        if not t.complete:
            raise ValueError(f"sizeof incomplete type {c_type_name(t)}")
        return t.size
    raise ValueError(f"sizeof {c_type_name(t)}")


def alignof(t: CType, target: Target) -> int:
    """``_Alignof`` of a member of type ``t`` inside a structure on ``target``."""
    if isinstance(t, IntType):
        return min(t.size, target.int64_align) if t.size >= 8 else max(t.size, 1)
    if isinstance(t, FloatType):
        return min(t.size, target.int64_align) if t.size >= 8 else t.size
    if isinstance(t, EnumType):
        return t.size
    if isinstance(t, PointerType):
        return target.ptr_size
    if isinstance(t, ArrayType):
        return alignof(t.element, target)
    if isinstance(t, (TypedefType, QualifiedType)):
        return alignof(t.target, target)
    if isinstance(t, StructType):
        if not t.complete:
            raise ValueError(f"alignof incomplete type {c_type_name(t)}")
        return t.align
    raise ValueError(f"alignof {c_type_name(t)}")


def _roundup(value: int, align: int) -> int:
    return (value + align - 1) // align * align


def _join(base: str, decl: str) -> str:
    return f"{base} {decl}" if decl else base


def c_type_name(t: CType, decl: str = "") -> str:
    """Spell ``t`` as a C abstract declarator (see the module docstring for examples)."""
    if isinstance(t, (IntType, FloatType, VoidType, TypedefType)):
        return _join(t.name, decl)
    if isinstance(t, EnumType):
        return _join(f"enum {t.name}" if t.name else "enum {...}", decl)
    if isinstance(t, StructType):
        return _join(f"{t.kind} {t.name}" if t.name else f"{t.kind} {{...}}", decl)
    if isinstance(t, PointerType):
        return _pointer_name(t.target, "*" + decl)
    if isinstance(t, QualifiedType):
        if isinstance(t.target, PointerType):
            return _pointer_name(t.target.target, f"*{t.qualifier}" + (f" {decl}" if decl else ""))
        return f"{t.qualifier} " + c_type_name(t.target, decl)
    if isinstance(t, ArrayType):
        return c_type_name(t.element, f"{decl}[{t.count}]")
    params = ", ".join(c_type_name(p) for p in t.params)
    if t.varargs:
        params = f"{params}, ..." if params else "..."
    return c_type_name(t.ret, f"{decl}({params or 'void'})")


def _pointer_name(pointee: CType, decl: str) -> str:
    if isinstance(pointee, (ArrayType, FunctionType)):
        return c_type_name(pointee, f"({decl})")
    return c_type_name(pointee, decl)


# --------------------------------------------------------------------------- layout


def layout(
    kind: AggregateKind, fields: Sequence[Field], target: Target, min_align: int = 1
) -> tuple[list[Member], int, int]:
    """Lay out ``fields`` by the System V rules: ``(members, size, align)``."""
    members: list[Member] = []
    align = min_align
    pos = 0  # next free bit (struct) / largest member end in bits (union)
    for f in fields:
        falign = max(alignof(f.type, target), f.align or 1)
        if f.bits is not None:
            unit = sizeof(f.type, target) * 8
            if not 0 <= f.bits <= unit:
                raise ValueError(f"bad width {f.bits} for {f.name}")
            if f.bits == 0:
                if kind == "struct":
                    pos = _roundup(pos, falign * 8)
                continue
            start = 0
            if kind == "struct":
                start = pos
                if start // unit != (start + f.bits - 1) // unit:
                    start = _roundup(start, unit)
            members.append(Member(f.name, f.type, start, f.bits))
            if f.name:
                align = max(align, falign)
            end = start + f.bits
        else:
            fsize = sizeof(f.type, target)
            start = 0 if kind == "union" else _roundup(pos, falign * 8)
            members.append(Member(f.name, f.type, start))
            align = max(align, falign)
            end = start + fsize * 8
        pos = max(pos, end) if kind == "union" else end
    return members, _roundup((pos + 7) // 8, align), align


# --------------------------------------------------------------------------- type space


class TypeSpace:
    """Creates, memoizes and lays out the types of one target, in a recorded order."""

    def __init__(self, target: Target) -> None:
        """Start an empty space for ``target`` with its base types defined."""
        self.target = target
        self.types: list[CType] = []
        self._base: dict[str, CType] = {}
        self._typedefs: dict[str, TypedefType] = {}
        self._tags: dict[tuple[str, str], StructType] = {}
        self._enums: dict[str, EnumType] = {}
        self._pointers: dict[int, PointerType] = {}
        self._quals: dict[tuple[str, int], QualifiedType] = {}
        self._arrays: dict[tuple[int, int], ArrayType] = {}
        self._anon: dict[tuple[object, ...], StructType] = {}
        lng = target.long_size
        self._base_specs: dict[str, tuple[int, bool, bool, bool]] = {
            # name: (size, signed, char, boolean)
            "char": (1, target.char_signed, True, False),
            "signed char": (1, True, True, False),
            "unsigned char": (1, False, True, False),
            "short": (2, True, False, False),
            "unsigned short": (2, False, False, False),
            "int": (4, True, False, False),
            "unsigned int": (4, False, False, False),
            "long": (lng, True, False, False),
            "unsigned long": (lng, False, False, False),
            "long long": (8, True, False, False),
            "unsigned long long": (8, False, False, False),
            "_Bool": (1, False, False, True),
        }

    def _remember(self, t: T) -> T:
        self.types.append(t)  # type: ignore[arg-type]
        return t

    def _add_base(self, t: IntType | VoidType | FloatType) -> None:
        self._base[t.name] = self._remember(t)

    # -- simple constructors -------------------------------------------------------

    def base(self, name: str) -> CType:
        """A base type by its C name (``int``, ``unsigned long``, ``void``, ``_Bool``...).

        Base types are created on first use, so they appear in :attr:`types` where they
        are first needed.
        """
        if name not in self._base:
            if name == "void":
                self._add_base(VoidType())
            else:
                size, signed, char, boolean = self._base_specs[name]
                self._add_base(IntType(name, size, signed, char, boolean))
        return self._base[name]

    def float_type(self, name: str, size: int) -> CType:
        """Define (once) a floating-point base type."""
        if name not in self._base:
            self._add_base(FloatType(name, size))
        return self._base[name]

    def typedef(self, name: str, target: CType | None = None) -> TypedefType:
        """``typedef target name`` (defined on first use; later calls look it up)."""
        if name in self._typedefs:
            existing = self._typedefs[name]
            if target is not None and existing.target is not target:
                raise ValueError(f"typedef {name} redefined")
            return existing
        if target is None:
            raise KeyError(f"typedef {name} is not defined")
        return self._remember_typedef(TypedefType(name, target))

    def _remember_typedef(self, t: TypedefType) -> TypedefType:
        self._typedefs[t.name] = self._remember(t)
        return t

    def has_typedef(self, name: str) -> bool:
        """True when ``name`` is a defined typedef."""
        return name in self._typedefs

    def ptr(self, t: CType) -> PointerType:
        """``t *`` (one object per pointee)."""
        key = id(t)
        if key not in self._pointers:
            self._pointers[key] = self._remember(PointerType(t))
        return self._pointers[key]

    def qual(self, qualifier: Qualifier, t: CType) -> QualifiedType:
        """``qualifier t``."""
        key = (qualifier, id(t))
        if key not in self._quals:
            self._quals[key] = self._remember(QualifiedType(qualifier, t))
        return self._quals[key]

    def const(self, t: CType) -> QualifiedType:
        """``const t``."""
        return self.qual("const", t)

    def volatile(self, t: CType) -> QualifiedType:
        """``volatile t``."""
        return self.qual("volatile", t)

    def array(self, t: CType, count: int) -> ArrayType:
        """``t [count]``."""
        key = (id(t), count)
        if key not in self._arrays:
            self._arrays[key] = self._remember(ArrayType(t, count))
        return self._arrays[key]

    def func(self, ret: CType, params: Sequence[CType], varargs: bool = False) -> FunctionType:
        """A function type (not memoized: each use is its own type, as in DWARF)."""
        return self._remember(FunctionType(ret, list(params), varargs))

    def enum(self, name: str | None, enumerators: Sequence[tuple[str, int]]) -> EnumType:
        """``enum name { ... }`` (named enums are defined once)."""
        if name is not None and name in self._enums:
            return self._enums[name]
        t = self._remember(EnumType(name, list(enumerators)))
        if name is not None:
            self._enums[name] = t
        return t

    # -- aggregates ----------------------------------------------------------------

    def tag(self, kind: AggregateKind, name: str) -> StructType:
        """The struct/union with tag ``name``: a forward declaration until defined."""
        key = (kind, name)
        if key not in self._tags:
            self._tags[key] = self._remember(StructType(kind, name))
        return self._tags[key]

    def struct(self, name: str) -> StructType:
        """``struct name`` (forward until :meth:`define` is called)."""
        return self.tag("struct", name)

    def union(self, name: str) -> StructType:
        """``union name`` (forward until :meth:`define` is called)."""
        return self.tag("union", name)

    def anonymous(
        self, kind: AggregateKind, fields: Sequence[Field], key: tuple[object, ...] | None = None
    ) -> StructType:
        """An anonymous struct/union; ``key`` memoizes identical macro expansions."""
        if key is not None and key in self._anon:
            return self._anon[key]
        t = self._remember(StructType(kind, None))
        self.define(t, fields)
        if key is not None:
            self._anon[key] = t
        return t

    def define(
        self, t: StructType, fields: Sequence[Field], *, min_align: int = 1
    ) -> StructType:
        """Lay out ``fields`` as the members of ``t`` (``min_align``: ``__aligned(N)``)."""
        if t.complete:
            raise ValueError(f"{c_type_name(t)} defined twice")
        t.members, t.size, t.align = layout(t.kind, fields, self.target, min_align)
        t.complete = True
        return t

    def measure(
        self, kind: AggregateKind, fields: Sequence[Field], *, min_align: int = 1
    ) -> tuple[int, int]:
        """``(sizeof, alignof)`` the aggregate would have, without defining anything."""
        _, size, align = layout(kind, fields, self.target, min_align)
        return size, align

    # -- BSD queue(3) macros, expanded as the kernel's headers expand them ----------

    def list_head(self, name: str | None, elem: StructType) -> StructType:
        """``LIST_HEAD(name, elem)``: ``{ struct elem *lh_first; }``."""
        fields = [Field("lh_first", self.ptr(elem))]
        if name is None:
            return self.anonymous("struct", fields, ("LIST_HEAD", id(elem)))
        t = self.struct(name)
        return t if t.complete else self.define(t, fields)

    def list_entry(self, elem: StructType) -> StructType:
        """``LIST_ENTRY(elem)``: ``{ struct elem *le_next; struct elem **le_prev; }``."""
        p = self.ptr(elem)
        return self.anonymous(
            "struct", [Field("le_next", p), Field("le_prev", self.ptr(p))], ("LIST_ENTRY", id(elem))
        )

    def tailq_head(self, name: str | None, elem: StructType) -> StructType:
        """``TAILQ_HEAD(name, elem)``: ``{ struct elem *tqh_first; struct elem **tqh_last; }``."""
        p = self.ptr(elem)
        fields = [Field("tqh_first", p), Field("tqh_last", self.ptr(p))]
        if name is None:
            return self.anonymous("struct", fields, ("TAILQ_HEAD", id(elem)))
        t = self.struct(name)
        return t if t.complete else self.define(t, fields)

    def tailq_entry(self, elem: StructType) -> StructType:
        """``TAILQ_ENTRY(elem)``: ``{ struct elem *tqe_next; struct elem **tqe_prev; }``."""
        p = self.ptr(elem)
        return self.anonymous(
            "struct",
            [Field("tqe_next", p), Field("tqe_prev", self.ptr(p))],
            ("TAILQ_ENTRY", id(elem)),
        )

    def stailq_entry(self, elem: StructType) -> StructType:
        """``STAILQ_ENTRY(elem)``: ``{ struct elem *stqe_next; }``."""
        return self.anonymous(
            "struct", [Field("stqe_next", self.ptr(elem))], ("STAILQ_ENTRY", id(elem))
        )

    def stailq_head(self, name: str | None, elem: StructType) -> StructType:
        """``STAILQ_HEAD(name, elem)``: ``{ elem *stqh_first; elem **stqh_last; }``."""
        p = self.ptr(elem)
        fields = [Field("stqh_first", p), Field("stqh_last", self.ptr(p))]
        if name is None:
            return self.anonymous("struct", fields, ("STAILQ_HEAD", id(elem)))
        t = self.struct(name)
        return t if t.complete else self.define(t, fields)

    def slist_head(self, name: str | None, elem: StructType) -> StructType:
        """``SLIST_HEAD(name, elem)``: ``{ struct elem *slh_first; }``."""
        fields = [Field("slh_first", self.ptr(elem))]
        if name is None:
            return self.anonymous("struct", fields, ("SLIST_HEAD", id(elem)))
        t = self.struct(name)
        return t if t.complete else self.define(t, fields)

    # -- queries -------------------------------------------------------------------

    def named_aggregates(self) -> Iterator[StructType]:
        """Every named struct/union, defined or forward, in creation order."""
        for t in self.types:
            if isinstance(t, StructType) and t.name is not None:
                yield t

    def lookup_tag(self, kind: AggregateKind, name: str) -> StructType | None:
        """The aggregate with this tag, or None."""
        return self._tags.get((kind, name))

    def lookup_enum(self, name: str) -> EnumType | None:
        """The named enum, or None."""
        return self._enums.get(name)


# --------------------------------------------------------------------------- ground truth


@dataclass(frozen=True)
class MemberTruth:
    """Where a member lives: what a correct CTF/DWARF reader must report for it."""

    name: str
    offset: int  # bytes, of the byte holding the first bit
    bit_offset: int  # bits from the start of the (outermost) aggregate
    bit_size: int | None  # bit-field width, None for an ordinary member
    size: int  # sizeof the declared type
    type_name: str  # C spelling of the declared type (see c_type_name)


@dataclass(frozen=True)
class StructTruth:
    """Size and members of one named struct or union.

    ``members`` are the direct members in declaration order (anonymous ones have the name
    ""); ``paths`` maps every dotted access path to its member with offsets measured from
    the start of this aggregate: ``p_list.le_next``, ``vm_pmap.pm_stats.resident_count``,
    and members of anonymous structs/unions under their own names (``v_rdev``).
    """

    name: str
    kind: AggregateKind
    size: int
    align: int
    members: tuple[MemberTruth, ...]
    paths: Mapping[str, MemberTruth]

    def member(self, path: str) -> MemberTruth:
        """The member at a dotted path (KeyError when absent)."""
        return self.paths[path]

    def has(self, path: str) -> bool:
        """True when the dotted path exists."""
        return path in self.paths


def _member_truth(m: Member, name: str, base_bits: int, target: Target) -> MemberTruth:
    bits = base_bits + m.bit_offset
    return MemberTruth(
        name=name,
        offset=bits // 8,
        bit_offset=bits,
        bit_size=m.bit_size,
        size=sizeof(m.type, target),
        type_name=c_type_name(m.type),
    )


def _collect_paths(
    t: StructType, prefix: str, base_bits: int, target: Target, out: dict[str, MemberTruth]
) -> None:
    for m in t.members:
        inner = strip_typedefs(m.type)
        if m.name:
            path = prefix + m.name
            out.setdefault(path, _member_truth(m, path, base_bits, target))
            if isinstance(inner, StructType) and inner.complete:
                _collect_paths(inner, path + ".", base_bits + m.bit_offset, target, out)
        elif isinstance(inner, StructType) and inner.complete:
            _collect_paths(inner, prefix, base_bits + m.bit_offset, target, out)


def struct_truth(t: StructType, target: Target) -> StructTruth:
    """The ground truth of one complete aggregate."""
    if not t.complete:
        raise ValueError(f"{c_type_name(t)} is only declared")
    paths: dict[str, MemberTruth] = {}
    _collect_paths(t, "", 0, target, paths)
    return StructTruth(
        name=t.name or "",
        kind=t.kind,
        size=t.size,
        align=t.align,
        members=tuple(_member_truth(m, m.name, 0, target) for m in t.members),
        paths=paths,
    )


# --------------------------------------------------------------------------- TypeSet


@dataclass
class TypeSet:
    """Everything the CTF and DWARF writers serialise, plus the facts behind it.

    ``types`` is the emission order (CTF type IDs are positions + 1); ``variables`` are
    the kernel variables whose declared types the writers describe (CTF object section,
    ``DW_TAG_variable``); ``features`` records per-seed layout choices, such as whether
    ``struct proc`` has ``p_pd`` (key ``"proc.p_pd"``).
    """

    target: Target
    types: list[CType]
    variables: list[Variable] = field(default_factory=list)
    features: dict[str, bool] = field(default_factory=dict)
    era: str = ""
    seed: int | None = None

    @classmethod
    def from_space(
        cls,
        space: TypeSpace,
        variables: Sequence[Variable] = (),
        features: Mapping[str, bool] | None = None,
        era: str = "",
        seed: int | None = None,
    ) -> TypeSet:
        """Freeze a :class:`TypeSpace` into a TypeSet."""
        return cls(
            target=space.target,
            types=list(space.types),
            variables=list(variables),
            features=dict(features or {}),
            era=era,
            seed=seed,
        )

    def aggregates(self) -> Iterator[StructType]:
        """Every named, complete struct/union."""
        for t in self.types:
            if isinstance(t, StructType) and t.name is not None and t.complete:
                yield t

    def find(self, name: str, kind: AggregateKind = "struct") -> StructType:
        """The complete aggregate with this tag (KeyError if absent or only declared)."""
        for t in self.aggregates():
            if t.name == name and t.kind == kind:
                return t
        raise KeyError(f"{kind} {name}")

    def variable(self, name: str) -> Variable:
        """The variable called ``name``."""
        for v in self.variables:
            if v.name == name:
                return v
        raise KeyError(name)

    def truth(self) -> LayoutTruth:
        """The ground truth a reader of the written CTF/DWARF must reproduce."""
        structs: dict[str, StructTruth] = {}
        for agg in self.aggregates():
            key = f"{agg.name}" if agg.kind == "struct" else f"union {agg.name}"
            structs.setdefault(key, struct_truth(agg, self.target))
        enums: dict[str, dict[str, int]] = {}
        for t in self.types:
            if isinstance(t, EnumType) and t.name is not None:
                enums[t.name] = dict(t.enumerators)
        return LayoutTruth(
            target=self.target,
            era=self.era,
            structs=structs,
            enums=enums,
            variables={v.name: c_type_name(v.type) for v in self.variables},
            features=dict(self.features),
        )


@dataclass(frozen=True)
class LayoutTruth:
    """Ground truth of a TypeSet: struct layouts, enums, variable types, feature choices.

    ``structs`` is keyed by struct tag (``"proc"``) and, for unions, ``"union <tag>"``.
    """

    target: Target
    era: str
    structs: Mapping[str, StructTruth]
    enums: Mapping[str, Mapping[str, int]]
    variables: Mapping[str, str]
    features: Mapping[str, bool]

    def offset(self, struct: str, path: str) -> int:
        """Byte offset of ``struct.path`` (KeyError when absent)."""
        return self.structs[struct].member(path).offset

    def size(self, struct: str) -> int:
        """``sizeof(struct <name>)``."""
        return self.structs[struct].size


# --------------------------------------------------------------------------- randomness


class Rand:
    """Deterministic choices from a seed (BLAKE2b in counter mode).

    Python's :mod:`random` is avoided on purpose: its algorithms may change between
    releases, and a kernel built from a seed must be identical on every interpreter.
    """

    def __init__(self, seed: int, stream: str) -> None:
        """Start the stream ``stream`` for ``seed``."""
        self._key = hashlib.blake2b(f"{stream}\0{seed}".encode(), digest_size=32).digest()
        self._n = 0

    def below(self, n: int) -> int:
        """An integer in ``[0, n)``."""
        if n <= 0:
            raise ValueError("below() needs a positive bound")
        self._n += 1
        block = hashlib.blake2b(self._n.to_bytes(8, "little"), key=self._key, digest_size=16)
        return int.from_bytes(block.digest(), "little") % n

    def between(self, lo: int, hi: int) -> int:
        """An integer in ``[lo, hi]``."""
        return lo + self.below(hi - lo + 1)

    def chance(self, num: int, den: int) -> bool:
        """True with probability ``num / den``."""
        return self.below(den) < num

    def choice(self, items: Sequence[T]) -> T:
        """One element of a non-empty sequence."""
        return items[self.below(len(items))]
