"""A tiny CTF assembler for the tests, written from kernel-data.md 11.2-11.7.

Every record is packed with :mod:`struct` exactly as the spec's tables lay it
out; nothing here shares code with pykvm or with any other CTF writer.  The
caller says which form to use (short or long fixed part, small or large member
records) when a test wants to force one; otherwise the spec's rules choose.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field

MAGIC = 0xCFF1
K_UNKNOWN, K_INTEGER, K_FLOAT, K_POINTER, K_ARRAY, K_FUNCTION = 0, 1, 2, 3, 4, 5
K_STRUCT, K_UNION, K_ENUM, K_FORWARD, K_TYPEDEF = 6, 7, 8, 9, 10
K_VOLATILE, K_CONST, K_RESTRICT = 11, 12, 13
INT_SIGNED, INT_CHAR, INT_BOOL = 1, 2, 4
STT_OBJECT, STT_FUNC = 1, 2


@dataclass
class Asm:
    """Collects strings and type records of one container, then lays it out."""

    version: int = 3
    endian: str = "<"
    strings: bytearray = field(default_factory=lambda: bytearray(b"\0"))
    records: list[bytes] = field(default_factory=list)
    _offsets: dict[str, int] = field(default_factory=dict)

    # -- layout constants of the two versions (spec 11.7 table) --
    @property
    def sent(self) -> int:
        return 0xFFFF if self.version == 2 else 0xFFFFFFFF

    @property
    def thresh(self) -> int:
        return 8192 if self.version == 2 else 1 << 29

    @property
    def child_bit(self) -> int:
        return 0x8000 if self.version == 2 else 0x80000000

    def p(self, fmt: str, *vals: int) -> bytes:
        return struct.pack(self.endian + fmt, *vals)

    def s(self, name: str) -> int:
        """Name reference of ``name`` in the CTF string section (0 for "")."""
        if not name:
            return 0
        if name not in self._offsets:
            self._offsets[name] = len(self.strings)
            self.strings += name.encode() + b"\0"
        return self._offsets[name]

    # -- fixed part --
    def fixed(self, name: str | int, kind: int, vlen: int, st: int, *, root: bool = True,
              long: bool | None = None) -> bytes:
        """ctf_stype / ctf_type: long form when asked, or when ``st`` needs it."""
        ref = name if isinstance(name, int) else self.s(name)
        if long is None:
            long = st >= self.sent
        if self.version == 2:
            info = kind << 11 | (1 << 10 if root else 0) | vlen
            if long:
                return self.p("IHHII", ref, info, 0xFFFF, st >> 32, st & 0xFFFFFFFF)
            return self.p("IHH", ref, info, st)
        info = kind << 26 | (1 << 25 if root else 0) | vlen
        if long:
            return self.p("IIIII", ref, info, 0xFFFFFFFF, st >> 32, st & 0xFFFFFFFF)
        return self.p("III", ref, info, st)

    def add(self, blob: bytes) -> int:
        """Append a record; its type id (index from 1, no child bit)."""
        self.records.append(blob)
        return len(self.records)

    # -- kinds --
    def integer(self, name: str, size: int, bits: int, flags: int = 0, offset: int = 0,
                *, root: bool = True, kind: int = K_INTEGER) -> int:
        return self.add(self.fixed(name, kind, 1, size, root=root)
                        + self.p("I", flags << 24 | offset << 16 | bits))

    def ref(self, kind: int, target: int, name: str = "", *, root: bool = True) -> int:
        return self.add(self.fixed(name, kind, 0, target, root=root))

    def forward(self, name: str, tag_kind: int = K_STRUCT) -> int:
        return self.add(self.fixed(name, K_FORWARD, 0, tag_kind))

    def array(self, contents: int, index: int, nelems: int, size: int, *,
              long: bool | None = None) -> int:
        data = (self.p("HHI", contents, index, nelems) if self.version == 2
                else self.p("III", contents, index, nelems))
        return self.add(self.fixed("", K_ARRAY, 1, size, long=long) + data)

    def enum(self, name: str, size: int, values: list[tuple[str, int]]) -> int:
        data = b"".join(self.p("Ii", self.s(n), v) for n, v in values)
        return self.add(self.fixed(name, K_ENUM, len(values), size) + data)

    def function(self, ret: int, args: list[int], name: str = "") -> int:
        if self.version == 2:
            data = b"".join(self.p("H", a) for a in args)
            if len(args) % 2:
                data += self.p("H", 0)  # keeps the vlen data 4-byte aligned
        else:
            data = b"".join(self.p("I", a) for a in args)
        return self.add(self.fixed(name, K_FUNCTION, len(args), ret) + data)

    def sou(self, kind: int, name: str, size: int, members: list[tuple[str, int, int]], *,
            root: bool = True, long: bool | None = None, large: bool | None = None) -> int:
        """A STRUCT/UNION; ``members`` are (name, type id, bit offset)."""
        if large is None:
            large = size >= self.thresh
        data = b""
        for mname, mtype, off in members:
            ref = self.s(mname)
            if self.version == 2:
                data += (self.p("IHHII", ref, mtype, 0, off >> 32, off & 0xFFFFFFFF) if large
                         else self.p("IHH", ref, mtype, off))
            else:
                data += (self.p("IIII", ref, mtype, off >> 32, off & 0xFFFFFFFF) if large
                         else self.p("III", ref, mtype, off))
        return self.add(self.fixed(name, kind, len(members), size, root=root, long=long) + data)

    def struct_(self, name: str, size: int, members: list[tuple[str, int, int]], *,
                root: bool = True, long: bool | None = None, large: bool | None = None) -> int:
        return self.sou(K_STRUCT, name, size, members, root=root, long=long, large=large)

    def union(self, name: str, size: int, members: list[tuple[str, int, int]]) -> int:
        return self.sou(K_UNION, name, size, members)

    # -- container --
    def build(self, *, compress: bool = False, labels: Sequence[tuple[str, int]] = (),
              objects: Sequence[int] = (), funcs: bytes = b"", parname: str = "",
              parlabel: str = "", flags: int = 0) -> bytes:
        """Header + labels + objects + functions + types + strings (spec 11.2).

        The function section is padded with zero bytes so that the type section
        starts 4-byte aligned, as ``ctf_bufopen`` requires.
        """
        lbl = b"".join(self.p("II", self.s(n), t) for n, t in labels)
        pname, plabel = self.s(parname), self.s(parlabel)
        width = "H" if self.version == 2 else "I"
        obj = b"".join(self.p(width, t) for t in objects)
        if (len(obj) + len(funcs)) % 4:
            funcs += b"\0" * (4 - (len(obj) + len(funcs)) % 4)
        types = b"".join(self.records)
        objtoff = len(lbl)
        funcoff = objtoff + len(obj)
        typeoff = funcoff + len(funcs)
        stroff = typeoff + len(types)
        body = lbl + obj + funcs + types + bytes(self.strings)
        hdr = self.p("HBBIIIIIIII", MAGIC, self.version, flags | (1 if compress else 0),
                     plabel, pname, 0, objtoff, funcoff, typeoff, stroff, len(self.strings))
        return hdr + (zlib.compress(body) if compress else body)


def header(version: int, endian: str, offsets: tuple[int, ...], flags: int = 0,
           parlabel: int = 0, parname: int = 0, magic: int = MAGIC) -> bytes:
    """A raw 36-byte header: offsets = (lbloff, objtoff, funcoff, typeoff, stroff, strlen)."""
    return struct.pack(endian + "HBBIIIIIIII", magic, version, flags, parlabel, parname,
                       *offsets)
