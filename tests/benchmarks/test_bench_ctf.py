"""Benchmark of pykvm.image.ctf on a generated kernel-sized CTF container.

The generator below packs records straight from kernel-data.md 11.7 (it shares
nothing with pykvm or with any other writer): base integers, then groups of a
struct with 6-24 members (some of them bit-fields and anonymous unions), a
typedef of it, a pointer to it and an array of it.  Targets: parse under 1 s,
a member lookup after the first under 5 us.
"""

from __future__ import annotations

import json
import random
import statistics
import struct
import time
import zlib

import pytest

from pykvm.image.ctf import CtfFile

K_INTEGER, K_POINTER, K_ARRAY, K_STRUCT, K_UNION, K_TYPEDEF = 1, 3, 4, 6, 7, 10


class Gen:
    """Packs one CTF container of the given version (little-endian)."""

    def __init__(self, version: int) -> None:
        self.v = version
        self.strs = bytearray(b"\0")
        self.types: list[bytes] = []

    def name(self, s: str) -> int:
        off = len(self.strs)
        self.strs += s.encode() + b"\0"
        return off

    def fixed(self, name: int, kind: int, vlen: int, st: int, root: bool = True) -> bytes:
        if self.v == 2:
            return struct.pack("<IHH", name, kind << 11 | (root << 10) | vlen, st)
        return struct.pack("<III", name, kind << 26 | (root << 25) | vlen, st)

    def add(self, blob: bytes) -> int:
        self.types.append(blob)
        return len(self.types)

    def integer(self, name: str, size: int, bits: int, root: bool = True) -> int:
        return self.add(self.fixed(self.name(name), K_INTEGER, 1, size, root)
                        + struct.pack("<I", 1 << 24 | bits))

    def sou(self, kind: int, name: int, size: int, members: list[tuple[int, int, int]]) -> int:
        fmt = "<IHH" if self.v == 2 else "<III"
        data = b"".join(struct.pack(fmt, n, t, o) for n, t, o in members)
        return self.add(self.fixed(name, kind, len(members), size) + data)

    def ref(self, kind: int, target: int, name: int = 0) -> int:
        return self.add(self.fixed(name, kind, 0, target))

    def array(self, contents: int, index: int, n: int, size: int) -> int:
        fmt = "<HHI" if self.v == 2 else "<III"
        return self.add(self.fixed(0, K_ARRAY, 1, size) + struct.pack(fmt, contents, index, n))

    def build(self) -> bytes:
        types = b"".join(self.types)
        body = types + bytes(self.strs)
        hdr = struct.pack("<HBBIIIIIIII", 0xCFF1, self.v, 1, 0, 0, 0, 0, 0, 0, len(types),
                          len(self.strs))
        return hdr + zlib.compress(body)


def generate(version: int, ntypes: int, seed: int) -> tuple[bytes, list[tuple[int, str, int]]]:
    """A container of about ``ntypes`` types, and (struct id, member, bit offset) samples."""
    rng = random.Random(seed)
    g = Gen(version)
    ints = [g.integer("char", 1, 8), g.integer("short", 2, 16), g.integer("int", 4, 32),
            g.integer("long", 8, 64)]
    sizes = {ints[0]: 1, ints[1]: 2, ints[2]: 4, ints[3]: 8}
    bitfield = g.integer("unsigned int", 4, 3, root=False)
    samples: list[tuple[int, str, int]] = []
    structs: list[int] = []
    i = 0
    while len(g.types) + 5 <= ntypes:
        members: list[tuple[int, int, int]] = []
        pending: list[tuple[str, int]] = []  # (member name, bit offset) of this struct
        off = 0
        for j in range(rng.randint(6, 24)):
            choice = rng.random()
            mname = f"m{i}_{j}"
            if choice < 0.08:
                members.append((g.name(mname), bitfield, off))
                off += 32
                continue
            if choice < 0.12 and off % 64 == 0:  # anonymous union of two longs
                u = g.sou(K_UNION, 0, 8, [(g.name(mname + "a"), ints[3], 0),
                                          (g.name(mname + "b"), ints[2], 0)])
                members.append((0, u, off))
                pending.append((mname + "b", off))
                off += 64
                continue
            t = rng.choice(ints) if choice < 0.7 or not structs else len(g.types) + 1
            if t == len(g.types) + 1:  # a pointer to an earlier struct
                t = g.ref(K_POINTER, rng.choice(structs))
                size = 8
            else:
                size = sizes[t]
            off = (off + size * 8 - 1) // (size * 8) * (size * 8)
            members.append((g.name(mname), t, off))
            pending.append((mname, off))
            off += size * 8
        nbytes = (off + 63) // 64 * 8
        sid = g.sou(K_STRUCT, g.name(f"s{i}"), nbytes, members)
        samples += [(sid, n, o) for n, o in pending]
        structs.append(sid)
        g.ref(K_TYPEDEF, sid, g.name(f"s{i}_t"))
        g.ref(K_POINTER, sid)
        g.array(sid, ints[3], 4, 4 * nbytes)
        i += 1
    return g.build(), samples


def report(name: str, **figures: object) -> None:
    print(f"\nBENCH {name} {json.dumps(figures)}")


@pytest.mark.parametrize("version,ntypes", [(3, 40_000), (2, 32_000)])
def test_ctf_parse_and_member_lookup(version: int, ntypes: int) -> None:
    data, samples = generate(version, ntypes, seed=7)
    parse_s = []
    for _ in range(5):
        t0 = time.perf_counter()
        ctf = CtfFile.parse(data, pointer_size=8)
        parse_s.append(time.perf_counter() - t0)
    assert ctf.ntypes >= 30_000
    t0 = time.perf_counter()
    sid = ctf.lookup("struct s0")
    first_lookup_s = time.perf_counter() - t0
    assert sid == samples[0][0]
    rng = random.Random(3)
    picks = [rng.choice(samples) for _ in range(20_000)]
    # first lookups: decode the struct, flatten anonymous members, index by name
    t0 = time.perf_counter()
    for s, name, off in picks:
        m = ctf.member(s, name)
        assert m is not None and m.offset == off
    first_pass_us = (time.perf_counter() - t0) / len(picks) * 1e6
    member = ctf.member
    rounds = []
    for _ in range(5):
        t0 = time.perf_counter_ns()
        for s, name, _off in picks:
            member(s, name)
        rounds.append((time.perf_counter_ns() - t0) / len(picks) / 1000)
    again_us = statistics.median(rounds)
    t0 = time.perf_counter_ns()
    for s, _name, _off in picks:
        ctf.sizeof(s)
    sizeof_us = (time.perf_counter_ns() - t0) / len(picks) / 1000
    report(f"ctf-v{version}", types=ctf.ntypes, compressed_bytes=len(data),
           parse_ms=round(statistics.median(parse_s) * 1e3, 1),
           parse_best_ms=round(min(parse_s) * 1e3, 1),
           first_name_lookup_ms=round(first_lookup_s * 1e3, 1),
           member_first_us=round(first_pass_us, 2), member_again_us=round(again_us, 3),
           sizeof_cached_us=round(sizeof_us, 3))
    assert statistics.median(parse_s) < 1.0, f"parse {statistics.median(parse_s):.3f} s"
    assert again_us < 5.0, f"member lookup {again_us:.2f} us after the first"
