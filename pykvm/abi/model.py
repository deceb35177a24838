"""The C ABI model: FreeBSD targets, C record member lists as data, and their layout.

A record (:class:`Record`) is one member list, written once in the order of the C
header.  :func:`layout` lays it out with the C rules of one target (:class:`Abi`):
every member at the next multiple of its alignment, the record padded to the
alignment of its strictest member.  Both consumers derive from that one result:
the engine's ``struct.Struct`` packers (:func:`struct_format`) and the compat
layer's ctypes classes (``compat/libkvm/abi.py``).

Mirrors the type definitions of sys/<arch>/include/_types.h (``__time_t``,
``__segsz_t``, ``__vm_size_t``, ``__int64_t`` alignment) for the architectures
FreeBSD has shipped; see :data:`ABIS`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Literal

__all__ = [
    "ABIS",
    "ALIASES",
    "Abi",
    "Array",
    "Field",
    "Leaf",
    "Record",
    "RecordLayout",
    "SCALARS",
    "flat_leaves",
    "layout",
    "lookup",
    "scalar",
    "struct_format",
]


@dataclass(frozen=True)
class Abi:
    """What the C layout of libkvm's records depends on, for one FreeBSD target."""

    name: str
    #: ``sizeof(void *)``; also ``size_t``, ``vm_size_t``
    pointer_size: int
    #: ``sizeof(long)``; also ``segsz_t``, ``suseconds_t``
    long_size: int
    #: alignment of ``int64_t``/``uint64_t`` (4 on i386, 8 elsewhere)
    int64_align: int
    #: ``sizeof(time_t)`` (4 only on i386)
    time_size: int
    big_endian: bool

    @property
    def byteorder(self) -> Literal["little", "big"]:
        """``"big"`` or ``"little"``, as ``int.from_bytes`` spells it."""
        return "big" if self.big_endian else "little"

    @property
    def endian(self) -> str:
        """``">"`` or ``"<"``: the ``struct`` prefix of this byte order."""
        return ">" if self.big_endian else "<"

    @property
    def kinfo_proc_size(self) -> int:
        """``KINFO_PROC_SIZE`` of the target (kernel-data.md 10.3; sys/<arch>/include/proc.h)."""
        if self.pointer_size == 8:
            return 1088
        return 768 if self.time_size == 4 else 816


def _lp64(name: str, big: bool = False) -> Abi:
    return Abi(name, 8, 8, 8, 8, big)


def _ilp32(name: str, big: bool = False, time_size: int = 8, int64_align: int = 8) -> Abi:
    return Abi(name, 4, 4, int64_align, time_size, big)


#: FreeBSD ABIs by pykvm's architecture name (kernel-data.md 10.2-10.3).
#:
#: 32-bit MIPS (o32 and n32): sys/mips/include/_types.h declares ``__time_t`` as
#: ``__int64_t`` for every MIPS ABI (not only n64), and both ABIs align 64-bit
#: integers to 8 bytes, so o32 and n32 lay records out like 32-bit arm/powerpc
#: (``KINFO_PROC_SIZE`` 816); n32 has 32-bit pointers and ``long`` (ILP32).
ABIS: dict[str, Abi] = {
    a.name: a
    for a in (
        _lp64("amd64"),
        _lp64("aarch64"),
        _lp64("riscv"),
        _lp64("powerpc64", big=True),
        _lp64("powerpc64le"),
        _lp64("mips64", big=True),
        _lp64("mips64el"),
        _lp64("sparc64", big=True),
        _ilp32("i386", time_size=4, int64_align=4),
        _ilp32("arm"),
        _ilp32("armeb", big=True),
        _ilp32("powerpc", big=True),
        _ilp32("powerpcspe", big=True),
        _ilp32("mips", big=True),
        _ilp32("mipsel"),
        _ilp32("mipsn32", big=True),
        _ilp32("mipsn32el"),
    )
}

#: ``uname -m``/``-p`` and toolchain spellings of the names in :data:`ABIS`
ALIASES: dict[str, str] = {
    "x86_64": "amd64",
    "x64": "amd64",
    "arm64": "aarch64",
    "riscv64": "riscv",
    "i486": "i386",
    "i586": "i386",
    "i686": "i386",
    "x86": "i386",
    "ppc64": "powerpc64",
    "ppc64le": "powerpc64le",
    "powerpc64el": "powerpc64le",
    "ppc": "powerpc",
    "armv6": "arm",
    "armv7": "arm",
    "armv6l": "arm",
    "armv7l": "arm",
    "armv6eb": "armeb",
    "armv7eb": "armeb",
    "mips64le": "mips64el",
    "mipsle": "mipsel",
    "mipsn32le": "mipsn32el",
    "mipsn64": "mips64",
    "mipsn64el": "mips64el",
    "mipso32": "mips",
    "mipso32el": "mipsel",
}


def lookup(name: str) -> Abi:
    """The :class:`Abi` called ``name`` (pykvm's names or an alias); ValueError if unknown."""
    key = name.lower()
    key = ALIASES.get(key, key)
    try:
        return ABIS[key]
    except KeyError:
        raise ValueError(f"unknown FreeBSD ABI {name!r}; expected one of "
                         f"{', '.join(sorted(ABIS))}") from None


# ------------------------------------------------------------------ C types as data
#: scalar kinds: name -> (signed, description).  Sizes come from :func:`scalar`.
SCALARS: dict[str, tuple[bool, str]] = {
    "char": (True, "char"),
    "schar": (True, "signed char"),
    "uchar": (False, "u_char"),
    "short": (True, "short"),
    "ushort": (False, "u_short"),
    "int": (True, "int (also pid_t, lwpid_t)"),
    "uint": (False, "u_int (also uid_t, gid_t, fixpt_t, uint32_t)"),
    "int64": (True, "int64_t (also off_t)"),
    "uint64": (False, "uint64_t (also kvaddr_t, kpaddr_t, dev_t)"),
    "long": (True, "long (also segsz_t, suseconds_t)"),
    "ulong": (False, "u_long (also vm_size_t)"),
    "size_t": (False, "size_t"),
    "ptr": (False, "a data pointer"),
    "cstr": (False, "char *"),
    "time": (True, "time_t"),
}


def scalar(kind: str, abi: Abi) -> tuple[int, int]:
    """``(sizeof, alignof)`` of scalar ``kind`` on ``abi``."""
    if kind in ("char", "schar", "uchar"):
        return 1, 1
    if kind in ("short", "ushort"):
        return 2, 2
    if kind in ("int", "uint"):
        return 4, 4
    if kind in ("int64", "uint64"):
        return 8, abi.int64_align
    if kind in ("long", "ulong"):
        return abi.long_size, abi.long_size
    if kind in ("size_t", "ptr", "cstr"):
        return abi.pointer_size, abi.pointer_size
    if kind == "time":
        return abi.time_size, (abi.int64_align if abi.time_size == 8 else abi.time_size)
    raise ValueError(f"unknown scalar kind {kind!r}")


@dataclass(frozen=True)
class Array:
    """``elem[count]`` (``elem`` a scalar kind or a :class:`Record`)."""

    elem: CType
    count: int


@dataclass(frozen=True)
class Record:
    """A C ``struct``: its C name, the Python class name compat gives it, its members.

    ``flat`` marks a record that the engine's packers treat as its only member
    (``sigset_t`` is ``struct { uint32_t __bits[4]; }``: a record attribute holds the
    four words).
    """

    cname: str
    pyname: str
    members: tuple[tuple[str, CType], ...]
    flat: bool = False


CType = str | Array | Record


@dataclass(frozen=True)
class Field:
    """One member of a laid-out record."""

    name: str
    offset: int
    size: int
    ctype: CType


@dataclass(frozen=True)
class RecordLayout:
    """A record laid out for one ABI: members with offsets, total size, alignment."""

    record: Record
    abi: Abi
    fields: tuple[Field, ...]
    size: int
    align: int

    def offsets(self) -> dict[str, tuple[int, int]]:
        """``member -> (offset, size)``."""
        return {f.name: (f.offset, f.size) for f in self.fields}


def sizeof(ctype: CType, abi: Abi) -> tuple[int, int]:
    """``(sizeof, alignof)`` of any C type of the model."""
    if isinstance(ctype, str):
        return scalar(ctype, abi)
    if isinstance(ctype, Array):
        size, align = sizeof(ctype.elem, abi)
        return size * ctype.count, align
    lay = layout(ctype, abi)
    return lay.size, lay.align


@cache
def layout(record: Record, abi: Abi) -> RecordLayout:
    """Lay ``record`` out with the C rules of ``abi`` (natural alignment, tail padding)."""
    fields: list[Field] = []
    off = 0
    align = 1
    for name, ctype in record.members:
        size, a = sizeof(ctype, abi)
        off += -off % a
        fields.append(Field(name, off, size, ctype))
        off += size
        align = max(align, a)
    off += -off % align
    return RecordLayout(record, abi, tuple(fields), off, align)


@dataclass(frozen=True)
class Leaf:
    """A scalar (or scalar array) at the bottom of a record, for the packers.

    ``path`` is the member names from the top record down; ``count`` is 0 for a
    scalar, else the array length.
    """

    path: tuple[str, ...]
    offset: int
    size: int
    kind: str
    count: int


def flat_leaves(record: Record, abi: Abi, base: int = 0,
                prefix: tuple[str, ...] = ()) -> list[Leaf]:
    """Every scalar leaf of ``record`` in offset order (nested records expanded)."""
    out: list[Leaf] = []
    for f in layout(record, abi).fields:
        path = prefix + (f.name,)
        ctype = f.ctype
        if isinstance(ctype, str):
            out.append(Leaf(path, base + f.offset, f.size, ctype, 0))
        elif isinstance(ctype, Record):
            if ctype.flat:
                (_, inner), = ctype.members
                assert isinstance(inner, Array) and isinstance(inner.elem, str)
                out.append(Leaf(path, base + f.offset, f.size, inner.elem, inner.count))
            else:
                out.extend(flat_leaves(ctype, abi, base + f.offset, path))
        elif isinstance(ctype.elem, str):
            out.append(Leaf(path, base + f.offset, f.size, ctype.elem, ctype.count))
        else:
            assert isinstance(ctype.elem, Record)  # no arrays of arrays in these headers
            esize = f.size // ctype.count
            for i in range(ctype.count):
                out.extend(flat_leaves(ctype.elem, abi, base + f.offset + i * esize,
                                       path + (str(i),)))
    return out


_CODES = {1: "B", 2: "H", 4: "I", 8: "Q"}


def struct_format(record: Record, abi: Abi, *, signed: bool = False,
                  keep: Callable[[Leaf], bool] | None = None) -> tuple[str, list[Leaf]]:
    """The ``struct`` format of ``record`` on ``abi`` and the leaves it packs, in order.

    Integers are unsigned codes (a packer then stores values modulo 2**bits, as a C
    assignment does), or with ``signed`` the C type's own signedness; ``char`` arrays
    are ``Ns`` (NUL-padded, truncated); padding is ``x``.  Leaves ``keep`` rejects are
    padding too (zero bytes, no argument).  ``struct.calcsize`` of the result equals
    :func:`layout`'s size.
    """
    parts = [abi.endian]
    kept = []
    off = 0
    for leaf in flat_leaves(record, abi):
        if keep is not None and not keep(leaf):
            continue
        kept.append(leaf)
        if leaf.offset > off:
            parts.append(f"{leaf.offset - off}x")
        if leaf.kind == "char" and leaf.count:
            parts.append(f"{leaf.count}s")
        else:
            code = _CODES[leaf.size // max(leaf.count, 1)]
            if signed and SCALARS[leaf.kind][0]:
                code = code.lower()
            parts.append(f"{leaf.count}{code}" if leaf.count else code)
        off = leaf.offset + leaf.size
    total = layout(record, abi).size
    if total > off:
        parts.append(f"{total - off}x")
    return "".join(parts), kept
