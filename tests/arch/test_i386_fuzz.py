"""Damaged i386 dumps: truncations and corruptions end in correct data or a KvmError.

Small minidumps (PAE and non-PAE) and ELF full dumps are built once, then
hypothesis truncates them, flips bytes and overwrites header fields; every
session (open, reads, walk, info) must raise nothing but KvmError and finish
within a time bound.
"""

from __future__ import annotations

import struct
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_i386_build import (
    KERNBASE_LEGACY,
    MIB,
    PG_NX,
    PG_PS,
    PG_RW,
    PG_V,
    PS,
    FullDump,
    Minidump,
    fake_superpage,
    pages_at,
    pattern,
    write_kernel,
)

import pykvm

TIME_BOUND = 5.0
K = KERNBASE_LEGACY


def small_minidump(pae: bool, version: int) -> Minidump:
    md = Minidump(pae=pae, version=version, nptes=96, dump_avail=[(0, MIB)],
                  msgbuf=b"boot\n")
    md.ptes = {0: 0x10000 | PG_V | PG_RW, 1: 0x11000 | PG_V, 2: 0, 3: 0x30000 | PG_V,
               5: 0x12000 | PG_V | (PG_NX if pae else 0)}
    for k, v in enumerate(fake_superpage(0x40000, 16)):
        md.ptes[64 + k] = v
    md.pages = {pa: pattern(pa) for pa in (0x10000, 0x11000, 0x12000, 0x40000, 0x41000)}
    return md


def small_full(pae: bool) -> tuple[FullDump, dict[str, int]]:
    d = FullDump(segments=[(0, 0x30000), (0x40000, 0x2000)])
    if pae:
        d.put32(0x5000, 0x6000)
        d.table(0x6000, {i: (0x10000 + i * PS) | PG_V for i in range(4)}, 8)
        d.table(0x13000, {0: 0x14000 | 3, 1: 0x40000 | PG_V | PG_PS}, 8)
        d.table(0x14000, {0: 0x20000 | 3, 1: 0x21000 | 1 | PG_NX, 3: 0x90000 | 1}, 8)
        syms = {"kernbase": K, "IdlePDPT": 0xC0005000}
    else:
        d.put32(0x5000, 0x10000)
        d.table(0x10000, {0x300: 0x11000 | 3, 0x301: 0 | PG_V | PG_PS}, 4)
        d.table(0x11000, {0: 0x20000 | 3, 1: 0x21000 | 1, 3: 0x90000 | 1}, 4)
        syms = {"kernbase": K, "IdlePTD": 0xC0005000}
    pages_at(d, [0x20000, 0x21000, 0x40000])
    return d, syms


FORMATS = ["md-nopae-v2", "md-pae-v1", "md-pae-v2", "full-nopae", "full-pae"]
PROBES = [K, K + 0xFF8, K + PS, K + 2 * PS, K + 3 * PS, K + 5 * PS, K + 64 * PS + 12,
          K + 0x200000 - 4, K + 0x400000 - 4, K + 0x400000, 0xC03FFFF8, 0, K - 8,
          0xFFFFFFFF, 1 << 32, (1 << 64) - 8]


@pytest.fixture(scope="module")
def originals(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, bytes]]:
    out: dict[str, tuple[Path, bytes]] = {}
    for fmt in FORMATS:
        base = tmp_path_factory.mktemp(fmt)
        if fmt.startswith("md"):
            md = small_minidump("-pae" in fmt, int(fmt[-1]))
            kernel = write_kernel(base / "kernel", {"kernbase": K})
            core = md.write(base / "vmcore")
        else:
            d, syms = small_full(fmt.endswith("-pae"))
            kernel = write_kernel(base / "kernel", syms)
            core = d.write(base / "vmcore")
        out[fmt] = (kernel, core.read_bytes())
    return out


def session(kernel: Path, core: Path) -> None:
    """Open and exercise a descriptor; only KvmError may escape."""
    try:
        kd = pykvm.open2(str(kernel), str(core), 0, pykvm.symtab_resolver(str(kernel)))
    except pykvm.KvmError:
        return
    with kd:
        for va in PROBES:
            for size in (1, 8, PS + 3, 0x20000):
                try:
                    data = kd.read2(va, size)
                except pykvm.FaultError as exc:
                    assert str(exc).startswith("invalid address (0x")
                else:
                    assert len(data) <= size
        for n, page in enumerate(kd.walk_pages()):
            assert page.len == PS
            if n > 200_000:
                break
        kd.info()
        kd.msgbuf()


def test_originals_open_and_read(originals: dict[str, tuple[Path, bytes]],
                                 tmp_path: Path) -> None:
    for fmt, (kernel, image) in originals.items():
        core = tmp_path / fmt
        core.write_bytes(image)
        with pykvm.open2(str(kernel), str(core), 0, pykvm.symtab_resolver(str(kernel))) as kd:
            assert kd.read2(K, 8) in (struct.pack("<Q", 0x10000), struct.pack("<Q", 0x20000))
        session(kernel, core)


mutation = st.one_of(
    st.tuples(st.just("truncate"), st.integers(0, 1 << 20)),
    st.tuples(st.just("flip"), st.lists(st.tuples(st.integers(0, 5 * PS),
                                                  st.integers(0, 255)), min_size=1,
                                        max_size=8)),
    st.tuples(st.just("flip-anywhere"), st.lists(st.tuples(st.integers(0, 1 << 20),
                                                           st.integers(0, 255)),
                                                 min_size=1, max_size=8)),
    st.tuples(st.just("field"), st.tuples(st.sampled_from([24, 28, 32, 36, 40, 44, 48, 52,
                                                           56, 60, 64, 68, 72, 76, 80]),
                                          st.sampled_from([0, 1, 2, 3, 0xFFF, 0x1000,
                                                           0x7FFFFFFF, 0x80000000,
                                                           0xFFFFF000, 0xFFFFFFFF])
                                          | st.integers(0, 0xFFFFFFFF))),
)


@settings(max_examples=250, deadline=None, suppress_health_check=list(HealthCheck))
@given(fmt=st.sampled_from(FORMATS), muts=st.lists(mutation, min_size=1, max_size=3))
def test_damaged_dumps_fail_cleanly(originals: dict[str, tuple[Path, bytes]],
                                    tmp_path_factory: pytest.TempPathFactory, fmt: str,
                                    muts: list[tuple[str, object]]) -> None:
    kernel, image = originals[fmt]
    img = bytearray(image)
    for kind, arg in muts:
        if kind == "truncate":
            assert isinstance(arg, int)
            del img[arg % (len(img) + 1):]
        elif kind in ("flip", "flip-anywhere"):
            assert isinstance(arg, list)
            for pos, val in arg:
                if img:
                    img[pos % len(img)] ^= val or 0xFF
        else:
            assert isinstance(arg, tuple)
            off, val = arg
            if off + 4 <= len(img):
                struct.pack_into("<I", img, off, val)
    core = tmp_path_factory.mktemp("fuzz") / "vmcore"
    core.write_bytes(bytes(img))
    t0 = time.monotonic()
    if img:
        session(kernel, core)
    else:
        with pytest.raises(pykvm.KvmError):
            pykvm.open2(str(kernel), str(core), 0, pykvm.symtab_resolver(str(kernel)))
    assert time.monotonic() - t0 < TIME_BOUND
