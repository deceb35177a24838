"""aarch64 (arm64) minidumps: versions 1-3, 4 KiB and 16 KiB pages (formats.md 3, 8).

Every kernel and dump here is built byte by byte from the layouts of
formats.md 3.1-3.3 and 8 (sys/arm64/include/minidump.h and the writer
sys/arm64/arm64/minidump_machdep.c), never with the reader's own code, and
opened through the public API.  A 16 KiB dump changes the page size of the
whole layout: header page, every section rounding, bit ids and page data.
"""

from __future__ import annotations

import struct
import sys
import time
from array import array
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pykvm
from pykvm.arch import aarch64 as aarch64_mod

EM_AARCH64 = 183
MAGIC = b"minidump FreeBSD/arm64"
KERNBASE = 0xFFFF000000000000  # VM_MIN_KERNEL_ADDRESS
DMAPBASE = 0xFFFFA00000000000  # DMAP_MIN_ADDRESS
DMAPEND = 0xFFFFFF0000000000  # DMAP_MAX_ADDRESS (the header holds the constant)
DMAPPHYS = 0x40000000  # DMAP_MIN_PHYSADDR: RAM starts at 1 GiB
SEG_A = (0x40000000, 0x44000000)
SEG_B = (0x48000000, 0x48800000)
DEVICE_PA = 0x09000000  # below the direct map (a UART, say)
HOLE_PA = 0x46000000  # between the dump_avail segments
ATTR_DEFAULT = 0x700  # ATTR_AF | ATTR_SH(ATTR_SH_IS)
L3_PAGE = 3
AP_RO = 1 << 7
DBM = 1 << 51
PXN = 1 << 53
UXN = 1 << 54
R, W, X = 1, 2, 4
MD = "_aarch64_minidump_vatop"


# --- builders (from the spec's byte layouts) ------------------------------------

def make_kernel(path: Path, *, machine: int = EM_AARCH64, e_type: int = 2, endian: str = "<",
                symbols: tuple[tuple[str, int], ...] = (("version", KERNBASE + 0x1000),)
                ) -> Path:
    """An ELF64 kernel: header, .symtab, .strtab, .shstrtab."""
    e = endian
    strtab = b"\0"
    syms = [bytes(24)]
    for name, value in symbols:
        syms.append(struct.pack(e + "IBBHQQ", len(strtab), 0x11, 0, 0xFFF1, value, 8))
        strtab += name.encode() + b"\0"
    symtab = b"".join(syms)
    shstr = b"\0.symtab\0.strtab\0.shstrtab\0"
    sym_off = 64
    str_off = sym_off + len(symtab)
    shs_off = str_off + len(strtab)
    sh_off = (shs_off + len(shstr) + 7) & ~7
    ident = b"\x7fELF" + bytes([2, 1 if e == "<" else 2, 1, 9]) + bytes(8)
    ehdr = ident + struct.pack(e + "HHIQQQIHHHHHH", e_type, machine, 1, KERNBASE + 0x800,
                               0, sh_off, 0, 64, 56, 0, 64, 4, 3)
    shdrs = [bytes(64),
             struct.pack(e + "IIQQQQIIQQ", 1, 2, 0, 0, sym_off, len(symtab), 2, 1, 8, 24),
             struct.pack(e + "IIQQQQIIQQ", 9, 3, 0, 0, str_off, len(strtab), 0, 0, 1, 0),
             struct.pack(e + "IIQQQQIIQQ", 17, 3, 0, 0, shs_off, len(shstr), 0, 0, 1, 0)]
    body = ehdr + symtab + strtab + shstr
    body += bytes(sh_off - len(body)) + b"".join(shdrs)
    path.write_bytes(body)
    return path


def fill(pa: int, ps: int, endian: str = "<") -> bytes:
    """Page contents: the 64-bit word at byte offset o holds ``pa + o``."""
    words = array("Q", range(pa, pa + ps, 8))
    if (endian == "<") != (sys.byteorder == "little"):
        words.byteswap()
    return words.tobytes()


def roundup(x: int, ps: int) -> int:
    return (x + ps - 1) // ps * ps


def bit_id(pa: int, avail: list[tuple[int, int]], ps: int) -> int:
    """formats.md 3.2: bit ids squeeze out the holes between dump_avail ranges."""
    adj = 0
    for start, end in avail:
        if pa < end:
            assert pa >= start
            return pa // ps - start // ps + adj
        adj += -(-end // ps) - start // ps
    raise AssertionError(hex(pa))


@dataclass
class Dump:
    """A built core and what the test needs to know about it."""

    core: bytes
    ps: int
    offsets: dict[int, int]  # physical page -> file offset of its data
    layout: dict[str, int] = field(default_factory=dict)


def build_minidump(*, version: int, ps: int, entries: dict[int, int] | array[int],
                   nentries: int, dumped: set[int], flags: int | None = None,
                   msgbuf: bytes = b"", avail: list[tuple[int, int]] | None = None,
                   magic: bytes = MAGIC, endian: str = "<", tail_garbage: int = 0,
                   kernbase: int = KERNBASE, dmapphys: int = DMAPPHYS,
                   dmapbase: int = DMAPBASE, dmapend: int = DMAPEND) -> Dump:
    """A minidump in formats.md 3.1 / 8.2-8.3 layout with page size ``ps``.

    Version 1 has no dump_avail section (the bitmap covers physical memory
    from 0); versions 2 and 3 have a one-page dump_avail; version 3 has flags.
    ``tail_garbage`` fills the header bytes a version does not define.
    """
    segs = list(avail if avail is not None else [SEG_A, SEG_B])
    if version == 1:
        top = max(e for _s, e in segs)
        bitmapsize = roundup(-(-(top // ps) // 8), ps)
        bits_avail = [(0, bitmapsize * 8 * ps)]
        dumpavailsize = 0
    else:
        nbits = sum(-(-e // ps) - s // ps for s, e in segs)
        bitmapsize = roundup(-(-nbits // 8), ps)
        bits_avail = segs
        dumpavailsize = ps
    if flags is None:
        flags = {4096: 0, 16384: 1}[ps]
    pmapsize = nentries * 8
    fields = struct.pack(endian + "24sIIIIQQQQ", magic, version, len(msgbuf), bitmapsize,
                         pmapsize, kernbase, dmapphys, dmapbase, dmapend)
    if version == 1:
        fields += struct.pack(endian + "II", tail_garbage, tail_garbage)
    elif version == 2:
        fields += struct.pack(endian + "II", dumpavailsize, tail_garbage)
    else:
        fields += struct.pack(endian + "II", dumpavailsize, flags)
    out = bytearray(fields)
    out += bytes(ps - len(out))
    out += msgbuf + bytes(roundup(len(msgbuf), ps) - len(msgbuf))
    layout = {"dump_avail_off": len(out)}
    if version >= 2:
        da = b"".join(struct.pack(endian + "QQ", s, e) for s, e in segs) + bytes(16)
        out += da + bytes(ps - len(da))
    layout["bitmap_off"] = len(out)
    # a BITSET of 64-bit longs in the kernel's byte order (formats.md 3.3)
    words = [0] * (bitmapsize // 8)
    for pa in dumped:
        b = bit_id(pa, bits_avail, ps)
        words[b >> 6] |= 1 << (b & 63)
    out += struct.pack(f"{endian}{len(words)}Q", *words)
    layout["pmap_off"] = len(out)
    if isinstance(entries, array):
        pm = array("Q", entries)
    else:
        pm = array("Q", bytes(pmapsize))
        for idx, value in entries.items():
            pm[idx] = value
    if (endian == "<") != (sys.byteorder == "little"):
        pm.byteswap()
    raw = pm.tobytes()
    out += raw + bytes(roundup(len(raw), ps) - len(raw))
    layout["sparse_off"] = len(out)
    offsets = {}
    for pa in sorted(dumped, key=lambda p: bit_id(p, bits_avail, ps)):
        offsets[pa] = len(out)
        out += fill(pa, ps, endian)
    layout.update(bitmapsize=bitmapsize, pmapsize=pmapsize)
    return Dump(bytes(out), ps, offsets, layout)


def page_pa(k: int, ps: int) -> int:
    """The k-th page of the kernel-map test pages (in segment A)."""
    return 0x40100000 + k * ps


def block_pa(ps: int) -> int:
    """An L2-block-aligned physical address in segment A (2 MiB or 32 MiB)."""
    return 0x40200000 if ps == 4096 else 0x42000000


def standard_entries(ps: int) -> tuple[dict[int, int], int, set[int]]:
    """The L3 array of the standard scenario: one real L3 table, one L2 block.

    Indices 0..E-1 copy an L3 table (E entries a page); E..2E-1 are the fake
    entries the writer emits for an L2 block (``(pa + i*PS) | ATTR_DEFAULT |
    L3_PAGE``).  Returns (entries, nentries, dumped physical pages).
    """
    n = ps // 8
    p = [page_pa(k, ps) for k in range(12)]
    ent = {
        0: p[0] | ATTR_DEFAULT | L3_PAGE,
        1: p[1] | ATTR_DEFAULT | L3_PAGE | AP_RO,
        2: p[2] | ATTR_DEFAULT | L3_PAGE | AP_RO | DBM,
        3: p[3] | ATTR_DEFAULT | L3_PAGE | UXN,
        4: p[4] | ATTR_DEFAULT | L3_PAGE | UXN | PXN,
        5: 0,
        6: p[6] | ATTR_DEFAULT | 1,  # block type at level 3: invalid
        7: p[7] | ATTR_DEFAULT | 2,  # type 2: invalid
        8: p[8] | ATTR_DEFAULT | L3_PAGE,  # valid, page not dumped
        9: DEVICE_PA | ATTR_DEFAULT | L3_PAGE | PXN | UXN,  # device, outside the dmap
        10: SEG_B[0] | ATTR_DEFAULT | L3_PAGE,
        11: HOLE_PA | ATTR_DEFAULT | L3_PAGE,  # between dump_avail ranges
    }
    blk = block_pa(ps)
    for i in range(n):
        ent[n + i] = (blk + i * ps) | ATTR_DEFAULT | L3_PAGE
    dumped = {p[0], p[1], p[2], p[3], p[4], SEG_B[0], blk, blk + ps, blk + 2 * ps,
              blk + (n - 1) * ps}
    return ent, 2 * n, dumped


def write(tmp_path: Path, d: Dump, name: str = "vmcore") -> Path:
    core = tmp_path / name
    core.write_bytes(d.core)
    return core


def open_dump(kernel: Path, core: Path) -> pykvm.Kvm:
    return pykvm.open2(str(kernel), str(core), 0, pykvm.symtab_resolver(str(kernel)))


def word(kd: pykvm.Kvm, va: int) -> int:
    return int(struct.unpack("<Q", kd.read(va, 8))[0])


VERSIONS = [(1, 4096), (2, 4096), (3, 4096), (3, 16384)]


@pytest.fixture(scope="module")
def kernel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_kernel(tmp_path_factory.mktemp("k") / "kernel")


@pytest.fixture(scope="module", params=VERSIONS, ids=[f"v{v}-{p // 1024}k" for v, p in VERSIONS])
def std(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
        kernel: Path) -> tuple[Path, Path, Dump, int]:
    version, ps = request.param
    ent, n, dumped = standard_entries(ps)
    d = build_minidump(version=version, ps=ps, entries=ent, nentries=n, dumped=dumped,
                       msgbuf=b"<6>hello from arm64\n" * 300, tail_garbage=0x5A5A5A5B)
    return kernel, write(tmp_path_factory.mktemp("std"), d), d, version


# --- reading -----------------------------------------------------------------------

def test_reads_kernel_map_pages(std: tuple[Path, Path, Dump, int]) -> None:
    kernel, core, d, version = std
    ps = d.ps
    with open_dump(kernel, core) as kd:
        for k in range(5):
            va = KERNBASE + k * ps
            assert word(kd, va) == page_pa(k, ps)
            assert word(kd, va + ps - 8) == page_pa(k, ps) + ps - 8
            assert word(kd, va + 0x18) == page_pa(k, ps) + 0x18
        assert word(kd, KERNBASE + 10 * ps + 0x40) == SEG_B[0] + 0x40
        # an unaligned read inside a page
        assert kd.read(KERNBASE + 3, 8) == fill(page_pa(0, ps), ps)[3:11]
        info = kd.info()
        assert (info.arch, info.fmt, info.version, info.page_size) == \
            ("aarch64", "minidump", version, ps)
        assert info.pages == 10
        assert kd.msgbuf() == b"<6>hello from arm64\n" * 300


def test_reads_l2_block(std: tuple[Path, Path, Dump, int]) -> None:
    kernel, core, d, _version = std
    ps = d.ps
    n = ps // 8
    blk = block_pa(ps)
    base = KERNBASE + n * ps  # the L2 block starts one L2 step after kernbase
    with open_dump(kernel, core) as kd:
        assert word(kd, base) == blk
        assert word(kd, base + 2 * ps + 16) == blk + 2 * ps + 16
        assert word(kd, base + (n - 1) * ps + ps - 8) == blk + n * ps - 8
        # a read across three contiguous pages of the block
        want = fill(blk, ps) + fill(blk + ps, ps) + fill(blk + 2 * ps, ps)
        assert kd.read(base + 100, 3 * ps - 200) == want[100:3 * ps - 100]
        # the page after the dumped ones is mapped but absent
        with pytest.raises(pykvm.FaultError) as ei:
            kd.read(base + ps, 3 * ps)
        assert ei.value.address == base + 3 * ps
        assert ei.value.chain == (
            f"{MD}: physical address 0x{blk + 3 * ps:x} not in minidump",
            f"invalid address (0x{base + 3 * ps:x})")


def test_reads_direct_map(std: tuple[Path, Path, Dump, int]) -> None:
    kernel, core, d, _version = std
    ps = d.ps
    with open_dump(kernel, core) as kd:
        for pa in (page_pa(0, ps), page_pa(4, ps), block_pa(ps) + ps, SEG_B[0]):
            va = DMAPBASE + pa - DMAPPHYS
            assert word(kd, va) == pa
            assert word(kd, va + ps - 8) == pa + ps - 8
        # the same bytes through both maps
        assert kd.read(KERNBASE + 2 * ps, ps) == \
            kd.read(DMAPBASE + page_pa(2, ps) - DMAPPHYS, ps)


def test_translation_messages(std: tuple[Path, Path, Dump, int]) -> None:
    kernel, core, d, _version = std
    ps = d.ps
    n = ps // 8
    cases: list[tuple[int, str | None]] = [
        (KERNBASE + 5 * ps + 8, f"{MD}: pde not valid"),
        (KERNBASE + 6 * ps, f"{MD}: pde not valid"),
        (KERNBASE + 7 * ps + ps - 1, f"{MD}: pde not valid"),
        (KERNBASE + 8 * ps + 0x10,
         f"{MD}: physical address 0x{page_pa(8, ps):x} not in minidump"),
        (KERNBASE + 9 * ps, f"{MD}: physical address 0x{DEVICE_PA:x} not in minidump"),
        (KERNBASE + 11 * ps, f"{MD}: physical address 0x{HOLE_PA:x} not in minidump"),
        (KERNBASE + 2 * n * ps, None),  # past the L3 array: no specific message
        (KERNBASE + 2 * n * ps + 12345 * ps, None),
        (DMAPBASE + 0x5000000 + 0x123, f"{MD}: direct map address "
                                       f"0x{DMAPBASE + 0x5000000 + 0x123:x} not in minidump"),
        (DMAPBASE + 0x100000000, f"{MD}: direct map address "
                                 f"0x{DMAPBASE + 0x100000000:x} not in minidump"),
        (0x1000, f"{MD}: virtual address 0x1000 not minidumped"),
        (KERNBASE - 8, f"{MD}: virtual address 0x{KERNBASE - 8:x} not minidumped"),
    ]
    with open_dump(kernel, core) as kd:
        for va, hard in cases:
            with pytest.raises(pykvm.FaultError) as ei:
                kd.read(va, 8)
            soft = f"invalid address (0x{va:x})"
            assert str(ei.value) == soft
            assert ei.value.address == va
            assert ei.value.chain == ((hard, soft) if hard else (soft,))
            assert kd.geterr() == soft


def test_hard_messages_go_to_stderr_with_a_program_name(
        tmp_path: Path, kernel: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    ent, n, dumped = standard_entries(4096)
    core = write(tmp_path, build_minidump(version=3, ps=4096, entries=ent, nentries=n,
                                          dumped=dumped))
    monkeypatch.setattr(aarch64_mod, "host_machine", lambda: "aarch64")
    monkeypatch.setattr(sys, "byteorder", "little")
    with pykvm.open(str(kernel), str(core), None, 0, "prog") as kd:
        assert kd.native()
        with pytest.raises(pykvm.FaultError):
            kd.read(KERNBASE + 5 * 4096, 4)
        assert capsys.readouterr().err == f"prog: {MD}: pde not valid\n"
        assert kd.geterr() == f"invalid address (0x{KERNBASE + 5 * 4096:x})"
        with pytest.raises(pykvm.FaultError):
            kd.read(0x4000, 4)
        assert capsys.readouterr().err == f"prog: {MD}: virtual address 0x4000 not minidumped\n"


# --- the whole layout in 16 KiB pages -------------------------------------------------

def test_16k_layout_offsets(tmp_path: Path, kernel: Path) -> None:
    """Every section is rounded to 16 KiB, the header page included."""
    ent, n, dumped = standard_entries(16384)
    d = build_minidump(version=3, ps=16384, entries=ent, nentries=n, dumped=dumped,
                       msgbuf=b"x" * 5000)
    lay = d.layout
    assert lay["dump_avail_off"] == 16384 * 2
    assert lay["bitmap_off"] == 16384 * 3
    assert lay["pmap_off"] == 16384 * 4  # bitmap: 8192 bits + ... fits one page
    assert lay["sparse_off"] == lay["pmap_off"] + 2 * 16384
    core = write(tmp_path, d)
    with open_dump(kernel, core) as kd:
        assert kd.info().page_size == 16384
        assert kd.msgbuf() == b"x" * 5000
        # a 16 KiB page is one translation: a read of the whole page works
        assert kd.read(KERNBASE, 16384) == fill(page_pa(0, 16384), 16384)
        # and the page after it is the next L3 entry (l3 shift 14)
        assert word(kd, KERNBASE + 16384) == page_pa(1, 16384)


def test_flags_high_bits_ignored(tmp_path: Path, kernel: Path) -> None:
    ent, n, dumped = standard_entries(16384)
    d = build_minidump(version=3, ps=16384, entries=ent, nentries=n, dumped=dumped,
                       flags=0xFFFFFFF1)
    with open_dump(kernel, write(tmp_path, d)) as kd:
        assert kd.info().page_size == 16384
        assert word(kd, KERNBASE) == page_pa(0, 16384)


def test_l1_block(tmp_path: Path, kernel: Path) -> None:
    """A 1 GiB L1 block: the writer emits Ln_ENTRIES fake L3 pages in a row."""
    ps = 4096
    n = 512
    first = n * n  # the block maps the second GiB of KVA
    pm = array("Q", bytes(8 * 2 * first))
    pm[0] = page_pa(0, ps) | ATTR_DEFAULT | L3_PAGE
    for j in range(first):
        pm[first + j] = (0x40000000 + j * ps) | ATTR_DEFAULT | L3_PAGE
    dumped = {page_pa(0, ps), 0x40000000, 0x40001000, 0x43FFF000, SEG_B[0] + ps}
    d = build_minidump(version=3, ps=ps, entries=pm, nentries=2 * first, dumped=dumped)
    base = KERNBASE + (1 << 30)
    with open_dump(kernel, write(tmp_path, d)) as kd:
        assert word(kd, KERNBASE) == page_pa(0, ps)
        assert word(kd, base) == 0x40000000
        assert kd.read(base + 8, 2 * ps - 16) == \
            (fill(0x40000000, ps) + fill(0x40001000, ps))[8:-8]
        assert word(kd, base + 0x3FFF000 + 0xFF8) == 0x43FFFFF8
        assert word(kd, base + 0x8001000) == SEG_B[0] + ps
        for off in (0x2000, 0x5000000, (1 << 30) - ps):
            with pytest.raises(pykvm.FaultError) as ei:
                kd.read(base + off, 8)
            assert ei.value.chain[0] == \
                f"{MD}: physical address 0x{0x40000000 + off:x} not in minidump"
        with pytest.raises(pykvm.FaultError) as ei:
            kd.read(base + (1 << 30), 8)
        assert ei.value.chain == (f"invalid address (0x{base + (1 << 30):x})",)
        records = list(kd.walk_pages())
        assert len(records) == 1 + first
        assert records[-1].kmap_vaddr == base + (1 << 30) - ps
        assert records[-1].paddr == 0x40000000 + (1 << 30) - ps
        assert records[-1].dmap_vaddr == DMAPBASE + (1 << 30) - ps
        assert records[-1].offset == -1
        assert records[1].offset == d.offsets[0x40000000]


def test_v1_bitmap_covers_memory_from_zero(tmp_path: Path, kernel: Path) -> None:
    """Version 1: no dump_avail, the bitmap is linear from physical 0."""
    ent, n, dumped = standard_entries(4096)
    d = build_minidump(version=1, ps=4096, entries=ent, nentries=n, dumped=dumped)
    assert d.layout["bitmap_off"] == 4096  # header page only: no msgbuf, no dump_avail
    with open_dump(kernel, write(tmp_path, d)) as kd:
        assert word(kd, KERNBASE) == page_pa(0, 4096)
        # the hole between the ranges is just "not dumped" memory here
        with pytest.raises(pykvm.FaultError) as ei:
            kd.read(KERNBASE + 11 * 4096, 8)
        assert ei.value.chain[0] == f"{MD}: physical address 0x{HOLE_PA:x} not in minidump"


def test_big_endian_kernel_decodes_in_kernel_order(tmp_path: Path) -> None:
    """pykvm decodes in the kernel's byte order (libkvm always uses le*toh)."""
    kernel = make_kernel(tmp_path / "kernel.be", endian=">")
    ent, n, dumped = standard_entries(4096)
    d = build_minidump(version=3, ps=4096, entries=ent, nentries=n, dumped=dumped, endian=">")
    with open_dump(kernel, write(tmp_path, d)) as kd:
        assert kd.read(KERNBASE, 8) == struct.pack(">Q", page_pa(0, 4096))
        assert kd.read(DMAPBASE + SEG_B[0] - DMAPPHYS, 8) == struct.pack(">Q", SEG_B[0])


# --- walk_pages ---------------------------------------------------------------------

@pytest.mark.parametrize("ps", [4096, 16384])
def test_walk_pages_records(tmp_path: Path, kernel: Path, ps: int) -> None:
    ent, n, dumped = standard_entries(ps)
    d = build_minidump(version=3, ps=ps, entries=ent, nentries=n, dumped=dumped)
    off = d.offsets

    def dmap(pa: int) -> int:
        return DMAPBASE + pa - DMAPPHYS

    def rec(idx: int, pa: int, prot: int, dva: int | None = None) -> tuple[int, ...]:
        return (2, pa, KERNBASE + idx * ps, dmap(pa) if dva is None else dva, prot,
                off.get(pa, -1), ps)

    p = [page_pa(k, ps) for k in range(12)]
    want = [
        rec(0, p[0], R | W | X),
        rec(1, p[1], R | X),  # AP read-only
        rec(2, p[2], R | W | X),  # read-only but DBM: writable, clean
        rec(3, p[3], R | W | X),  # UXN alone does not stop the kernel executing
        rec(4, p[4], R | W),  # PXN
        rec(8, p[8], R | W | X),  # not dumped: offset -1
        rec(9, DEVICE_PA, R | W, 0),  # outside the direct map: no alias
        rec(10, SEG_B[0], R | W | X),
        rec(11, HOLE_PA, R | W | X),
    ]
    blk = block_pa(ps)
    want += [rec(n // 2 + i, blk + i * ps, R | W | X) for i in range(n // 2)]
    with open_dump(kernel, write(tmp_path, d)) as kd:
        got = [(r.version, r.paddr, r.kmap_vaddr, r.dmap_vaddr, r.prot, r.offset, r.len)
               for r in kd.walk_pages()]
        assert got == want
        assert [r[5] for r in got if r[5] != -1] == \
            [off[p[0]], off[p[1]], off[p[2]], off[p[3]], off[p[4]], off[SEG_B[0]], off[blk],
             off[blk + ps], off[blk + 2 * ps], off[blk + (n // 2 - 1) * ps]]
        seen: list[int] = []
        assert kd.walk_pages_cb(lambda page: seen.append(page.paddr) or len(seen) < 3) == 0
        assert len(seen) == 3
        assert kd.walk_pages_cb(lambda page: 1) == 1


def test_walk_pages_every_version(std: tuple[Path, Path, Dump, int]) -> None:
    kernel, core, d, _version = std
    with open_dump(kernel, core) as kd:
        records = list(kd.walk_pages())
        assert len(records) == 9 + d.ps // 8
        assert all(r.len == d.ps for r in records)


# --- open errors and selection -------------------------------------------------------

def _open_error(kernel: Path, core: Path) -> pykvm.KvmError:
    with pytest.raises(pykvm.KvmError) as ei:
        open_dump(kernel, core)
    return ei.value


def test_open_errors(tmp_path: Path, kernel: Path) -> None:
    ent, n, dumped = standard_entries(4096)

    def core_with(**kw: object) -> Path:
        args: dict[str, object] = {"version": 3, "ps": 4096, "entries": ent, "nentries": n,
                                   "dumped": dumped}
        args.update(kw)
        name = f"vmcore.{len(list(tmp_path.iterdir()))}"
        return write(tmp_path, build_minidump(**args), name)  # type: ignore[arg-type]

    good = build_minidump(version=3, ps=4096, entries=ent, nentries=n, dumped=dumped)
    cases: list[tuple[Path, str]] = [
        (core_with(magic=b"minidump FreeBSD/amd64"), "not a minidump for this platform"),
        (core_with(magic=b"minidump FreeBSD/arm64x"), "not a minidump for this platform"),
        (core_with(version=4), "wrong minidump version. Expected 3 got 4"),
        (core_with(version=0), "wrong minidump version. Expected 3 got 0"),
        (core_with(version=0xFFFFFFFF), "wrong minidump version. Expected 3 got -1"),
        (core_with(flags=2), "unknown page size flag 2"),
        (core_with(flags=0x13), "unknown page size flag 3"),
    ]
    for core, text in cases:
        err = _open_error(kernel, core)
        assert isinstance(err, pykvm.FormatError)
        assert str(err) == text
    short = tmp_path / "short"
    for size in (8, 40, 79):
        short.write_bytes(good.core[:size])
        assert str(_open_error(kernel, short)) == "cannot read dump header"
    lay = good.layout
    short.write_bytes(good.core[: lay["bitmap_off"] + 10])
    assert str(_open_error(kernel, short)) == f"cannot read {lay['bitmapsize']} bytes for bitmap"
    short.write_bytes(good.core[: lay["pmap_off"] + 100])
    assert str(_open_error(kernel, short)) == \
        f"cannot read {lay['pmapsize']} bytes from offset {lay['pmap_off']} for page map"
    empty = core_with(dumped=set())
    assert str(_open_error(kernel, empty)).startswith("cannot map 0 bytes from fd ")


def test_selection(tmp_path: Path, kernel: Path) -> None:
    ent, n, dumped = standard_entries(4096)
    core = write(tmp_path, build_minidump(version=3, ps=4096, entries=ent, nentries=n,
                                          dumped=dumped))
    # an ET_DYN arm64 kernel is not claimed
    dyn = make_kernel(tmp_path / "dyn", e_type=3)
    assert str(_open_error(dyn, core)) == "unsupported architecture"
    # no aarch64 full-dump reader: an ELF core of an arm64 kernel is unsupported
    elfcore = tmp_path / "elfcore"
    ident = b"\x7fELF" + bytes([2, 1, 1, 9]) + bytes(8)
    elfcore.write_bytes(ident + struct.pack("<HHIQQQIHHHHHH", 4, EM_AARCH64, 1, 0, 64, 0, 0,
                                            64, 56, 0, 64, 0, 0) + bytes(4096))
    assert str(_open_error(kernel, elfcore)) == "unsupported architecture"
    # the riscv backend claims an arm64 minidump opened with a riscv kernel
    rv = make_kernel(tmp_path / "rv", machine=243)
    assert str(_open_error(rv, core)) == "not a minidump for this platform"
    # without a resolver a non-native dump is refused
    with pytest.raises(pykvm.NotNativeError) as ei:
        pykvm.openfiles(str(kernel), str(core))
    assert str(ei.value) == "non-native kernel requires a symbol resolver"


def test_native_kerndisp_nlist(tmp_path: Path, kernel: Path,
                               monkeypatch: pytest.MonkeyPatch) -> None:
    ent, n, dumped = standard_entries(4096)
    core = write(tmp_path, build_minidump(version=3, ps=4096, entries=ent, nentries=n,
                                          dumped=dumped))
    with open_dump(kernel, core) as kd:
        assert kd.kerndisp() == 0
        assert kd.nlist2(["version"]).missing == 0
        for machine, order, want in [("aarch64", "little", True), ("arm64", "little", True),
                                     ("aarch64", "big", False), ("x86_64", "little", False),
                                     ("riscv64", "little", False), ("armv7l", "little", False)]:
            monkeypatch.setattr(aarch64_mod, "host_machine", lambda m=machine: m)
            monkeypatch.setattr(sys, "byteorder", order)
            assert kd.native() is want, (machine, order)
    monkeypatch.undo()
    monkeypatch.setattr(aarch64_mod, "host_machine", lambda: "aarch64")
    with pykvm.openfiles(str(kernel), str(core)) as kd:  # native: no resolver needed
        assert word(kd, KERNBASE) == page_pa(0, 4096)


# --- hostile input ----------------------------------------------------------------------

TIME_BOUND = 5.0


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    out = {}
    for version, ps in VERSIONS:
        ent, n, dumped = standard_entries(ps)
        d = build_minidump(version=version, ps=ps, entries=ent, nentries=n, dumped=dumped,
                           msgbuf=b"boot\n")
        out[f"v{version}-{ps}"] = d.core
    return out


def exercise(kernel: Path, core: Path, ps: int) -> None:
    """Open, read, walk; only KvmError may escape, within the time bound."""
    t0 = time.monotonic()
    try:
        with open_dump(kernel, core) as kd:
            for va in (KERNBASE, KERNBASE + 3 * ps, KERNBASE + (ps // 8) * ps,
                       KERNBASE + 8 * ps, DMAPBASE + SEG_B[0] - DMAPPHYS, 0x1000,
                       (1 << 64) - 8):
                try:
                    got = kd.read(va, 2 * ps)
                    assert len(got) <= 2 * ps
                except pykvm.FaultError:
                    pass
            for _i, _p in zip(range(20000), kd.walk_pages(), strict=False):
                pass
            kd.info()
            kd.msgbuf()
    except pykvm.KvmError as exc:
        assert str(exc)
    assert time.monotonic() - t0 < TIME_BOUND


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_corrupt_or_truncated_core(tiny: dict[str, bytes], kernel: Path,
                                   tmp_path_factory: pytest.TempPathFactory,
                                   data: st.DataObject) -> None:
    name = data.draw(st.sampled_from(sorted(tiny)))
    ps = int(name.split("-")[1])
    raw = bytearray(tiny[name])
    action = data.draw(st.sampled_from(["truncate", "flip", "header"]))
    if action == "truncate":
        raw = raw[: data.draw(st.integers(0, len(raw)))]
    elif action == "flip":
        for _ in range(data.draw(st.integers(1, 16))):
            i = data.draw(st.integers(0, len(raw) - 1))
            raw[i] = data.draw(st.integers(0, 255))
    else:  # the header, where the sizes live
        for _ in range(data.draw(st.integers(1, 8))):
            i = data.draw(st.integers(8, 79))
            raw[i] = data.draw(st.integers(0, 255))
    core = tmp_path_factory.mktemp("bad") / "vmcore"
    core.write_bytes(bytes(raw))
    exercise(kernel, core, ps)
    assert core.read_bytes() == bytes(raw)
