"""Damaged CTF: truncations and byte flips of the hand-built containers.

Whatever the damage, pykvm.image.ctf answers with data or a FormatError --
never another exception, never a hang (each example runs under a time bound).
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable

from ctf_asm import INT_SIGNED, K_POINTER, K_TYPEDEF, Asm, header
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_ctf import SYMBOLS, build_small, parent_and_child

from pykvm.errors import FormatError
from pykvm.image.ctf import CtfFile

#: Seconds one damaged container may take: parse plus every query below.
TIME_BOUND = 2.0
NAMES = ("struct proc", "struct proc *", "union u", "enum p_states", "int", "unsigned int",
         "pid_t", "proc_t *", "long", "struct kid", "struct base")
PATHS = ("p_sigqueue.sq_list", "u_a", "p_vp", "b.y", "x", "a")


def large_v2() -> bytes:
    a = Asm(2, ">")
    a.integer("int", 4, 32, INT_SIGNED)
    a.struct_("pcpu", 4096, [("pc_cpuid", 1, 0)])
    a.array(2, 1, 256, 256 * 4096)
    a.struct_("huge", 1 << 33, [("a", 1, 0), ("far", 1, 1 << 34)])
    a.union("u", 70000, [("x", 1, 0), ("y", 4, 0)])
    a.ref(K_TYPEDEF, 5, "u_t")
    a.ref(K_POINTER, 6)
    return a.build(objects=[5, 4], labels=[("L", 7)])


def plain_bodies() -> list[tuple[int, str, bytes]]:
    """(version, endian, uncompressed container) of every base container."""
    out = [(v, e, build_small(v, e)) for v in (2, 3) for e in ("<", ">")]
    out.append((2, ">", large_v2()))
    for v in (2, 3):
        parent, child = parent_and_child(v, "<")
        out += [(v, "<", parent), (v, "<", child)]
    return out


BASES = plain_bodies()
PARENTS = {v: CtfFile.parse(parent_and_child(v, "<")[0]) for v in (2, 3)}


def exercise(data: bytes, version: int) -> None:
    """Open ``data`` and ask everything of it; only FormatError may escape a step."""
    t0 = time.monotonic()
    try:
        ctf = CtfFile.parse(data, symbols=SYMBOLS, strtab=b"\0int\0")
    except FormatError:
        return
    steps: list[Callable[[], object]] = [
        lambda: ctf.labels, lambda: ctf.parent_name, lambda: ctf.parent_label,
        lambda: ctf.pointer_size, lambda: repr(ctf),
    ]
    steps += [lambda n=n: ctf.lookup(n) for n in NAMES]
    steps += [lambda n=n: ctf.object_type(n) for n in ("allproc", "nprocs", "abs1", "x")]
    if ctf.is_child:
        steps.append(lambda: ctf.import_parent(PARENTS[version]))
    for tid in list(ctf.ids())[:64]:
        steps += [lambda t=tid: ctf.type(t), lambda t=tid: ctf.kind(t),
                  lambda t=tid: ctf.resolve(t), lambda t=tid: ctf.sizeof(t),
                  lambda t=tid: ctf.members(t)]
        steps += [lambda t=tid, p=p: ctf.member(t, p) for p in PATHS]
    steps += [lambda n=n: ctf.lookup(n) for n in NAMES]  # again, after the parent
    for step in steps:
        try:
            step()
        except FormatError:
            pass
    assert time.monotonic() - t0 < TIME_BOUND


def recompress(data: bytes) -> bytes:
    """The same container with CTF_F_COMPRESS set and its body zlib-compressed."""
    hdr = bytearray(data[:36])
    hdr[3] |= 1
    return bytes(hdr) + zlib.compress(data[36:])


base_index = st.integers(0, len(BASES) - 1)
flips = st.lists(st.tuples(st.integers(0, 1 << 16), st.integers(0, 255)), min_size=1,
                 max_size=8)
FUZZ = settings(max_examples=400, deadline=None,
                suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(base_index, st.integers(0, 1 << 16), st.booleans())
def test_truncations(i: int, cut: int, compress: bool) -> None:
    v, _, data = BASES[i]
    data = recompress(data) if compress else data
    exercise(data[:cut % (len(data) + 1)], v)


@FUZZ
@given(base_index, flips, st.booleans())
def test_byte_flips(i: int, changes: list[tuple[int, int]], compress: bool) -> None:
    """Flips land in the (uncompressed) container, which is then compressed or not."""
    v, _, data = BASES[i]
    buf = bytearray(data)
    for pos, val in changes:
        buf[pos % len(buf)] = val
    exercise(recompress(bytes(buf)) if compress else bytes(buf), v)


@FUZZ
@given(base_index, flips)
def test_flips_after_compression(i: int, changes: list[tuple[int, int]]) -> None:
    v, _, data = BASES[i]
    buf = bytearray(recompress(data))
    for pos, val in changes:
        buf[pos % len(buf)] = val
    exercise(bytes(buf), v)


@FUZZ
@given(st.sampled_from([2, 3]), st.sampled_from(["<", ">"]), st.binary(max_size=512),
       st.integers(0, 3))
def test_random_type_sections(version: int, endian: str, body: bytes, shift: int) -> None:
    """A valid header around arbitrary type-section bytes (and a tiny string table)."""
    strs = b"\0int\0s\0"
    types = body[:len(body) - len(body) % 4]
    data = header(version, endian, (0, 0, 0, 0, len(types), len(strs) - shift)) + types + strs
    exercise(data, version)


@FUZZ
@given(st.integers(0, 1 << 32), st.integers(0, 1 << 32), st.integers(0, 7))
def test_hostile_header_sizes(stroff: int, strlen: int, flags: int) -> None:
    """Absurd declared sizes never turn into allocations."""
    stroff &= 0xFFFFFFFC
    strlen &= 0xFFFFFFFF
    data = header(3, "<", (0, 0, 0, 0, stroff, strlen), flags) + zlib.compress(b"\0" * 64)
    exercise(data, 3)



def test_bases_are_sound() -> None:
    """The undamaged bases answer the queries exercise() asks."""
    for _v, _e, data in BASES:
        ctf = CtfFile.parse(data, symbols=SYMBOLS)
        for tid in ctf.ids():
            ctf.type(tid)
    ctf = CtfFile.parse(build_small(3, "<"), symbols=SYMBOLS)
    assert ctf.object_type("allproc") == 13 and ctf.member(12, "u_a") == ("u_a", 64, 2)
