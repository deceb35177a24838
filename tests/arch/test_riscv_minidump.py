"""riscv (RV64, Sv39 and Sv48) minidumps: versions 1 and 2 (formats.md 3, 12).

Every kernel and dump here is built byte by byte from the layouts of
formats.md 3.1-3.3 and 12 (sys/riscv/include/minidump.h and the writer
sys/riscv/riscv/minidump_machdep.c), never with the reader's own code, and
opened through the public API.  Megapages appear in the page-table section
as the 512 fake PTEs ``l2e | (i << 10)`` the writer emits; gigapages map only
the direct map, which translates linearly.  pykvm takes the physical address
of a PTE from its PPN (bits 10-53), so bits 54-63 (reserved, Svpbmt, Svnapot)
never reach the address (formats.md 14 row 9).
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
from pykvm.arch import riscv as riscv_mod

EM_RISCV = 243
PS = 4096
MAGIC = b"minidump FreeBSD/riscv"
KERNBASE = 0xFFFFFFC000000000  # KERNBASE == VM_MIN_KERNEL_ADDRESS (Sv39 and Sv48)
DMAPBASE = 0xFFFFFFD000000000  # DMAP_MIN_ADDRESS
DMAPEND = 0xFFFFFFF000000000  # DMAP_MAX_ADDRESS (the header holds the constant)
DMAPPHYS = 0x80000000  # dmap_phys_base: RAM starts at 2 GiB
SEG_A = (0x80000000, 0x84000000)
SEG_B = (0x100000000, 0x100800000)  # in the direct map's third gigapage
DEVICE_PA = 0x10000000  # below the direct map (a UART, say)
HOLE_PA = 0x90000000  # between the dump_avail segments
V, R_, W_, X_, A, D = 1, 2, 4, 8, 0x40, 0x80
PBMT_IO = 2 << 61  # Svpbmt
NAPOT = 1 << 63  # Svnapot
RSVD = 1 << 54
R, W, X = 1, 2, 4
MD = "_riscv_minidump_vatop"


# --- builders (from the spec's byte layouts) ------------------------------------

def make_kernel(path: Path, *, machine: int = EM_RISCV, e_type: int = 2,
                symbols: tuple[tuple[str, int], ...] = (("version", KERNBASE + 0x1000),)
                ) -> Path:
    """An ELF64 little-endian kernel: header, .symtab, .strtab, .shstrtab."""
    strtab = b"\0"
    syms = [bytes(24)]
    for name, value in symbols:
        syms.append(struct.pack("<IBBHQQ", len(strtab), 0x11, 0, 0xFFF1, value, 8))
        strtab += name.encode() + b"\0"
    symtab = b"".join(syms)
    shstr = b"\0.symtab\0.strtab\0.shstrtab\0"
    sym_off = 64
    str_off = sym_off + len(symtab)
    shs_off = str_off + len(strtab)
    sh_off = (shs_off + len(shstr) + 7) & ~7
    ident = b"\x7fELF" + bytes([2, 1, 1, 9]) + bytes(8)
    ehdr = ident + struct.pack("<HHIQQQIHHHHHH", e_type, machine, 1, KERNBASE + 0x800,
                               0, sh_off, 0, 64, 56, 0, 64, 4, 3)
    shdrs = [bytes(64),
             struct.pack("<IIQQQQIIQQ", 1, 2, 0, 0, sym_off, len(symtab), 2, 1, 8, 24),
             struct.pack("<IIQQQQIIQQ", 9, 3, 0, 0, str_off, len(strtab), 0, 0, 1, 0),
             struct.pack("<IIQQQQIIQQ", 17, 3, 0, 0, shs_off, len(shstr), 0, 0, 1, 0)]
    body = ehdr + symtab + strtab + shstr
    body += bytes(sh_off - len(body)) + b"".join(shdrs)
    path.write_bytes(body)
    return path


def fill(pa: int) -> bytes:
    """Page contents: the 64-bit LE word at byte offset o holds ``pa + o``."""
    return struct.pack(f"<{PS // 8}Q", *range(pa, pa + PS, 8))


def roundup(x: int) -> int:
    return (x + PS - 1) // PS * PS


def bit_id(pa: int, avail: list[tuple[int, int]]) -> int:
    """formats.md 3.2: bit ids squeeze out the holes between dump_avail ranges."""
    adj = 0
    for start, end in avail:
        if pa < end:
            assert pa >= start
            return pa // PS - start // PS + adj
        adj += -(-end // PS) - start // PS
    raise AssertionError(hex(pa))


def pte(pa: int, bits: int) -> int:
    """A leaf PTE: PPN at bit 10 plus ``bits``."""
    return ((pa >> 12) << 10) | bits


@dataclass
class Dump:
    """A built core and what the test needs to know about it."""

    core: bytes
    offsets: dict[int, int]
    layout: dict[str, int] = field(default_factory=dict)


def build_minidump(*, version: int, entries: dict[int, int] | array[int], nentries: int,
                   dumped: set[int], msgbuf: bytes = b"", magic: bytes = MAGIC,
                   avail: list[tuple[int, int]] | None = None, tail_garbage: int = 0,
                   kernbase: int = KERNBASE, dmapbase: int = DMAPBASE,
                   dmapend: int = DMAPEND, dmapphys: int = DMAPPHYS) -> Dump:
    """A riscv minidump in formats.md 3.1 / 12.2-12.3 layout.

    Version 1 has no dump_avail section (the bitmap covers physical memory
    from 0; ``tail_garbage`` fills the unused dumpavailsize bytes); version 2
    has a one-page dump_avail.
    """
    segs = list(avail if avail is not None else [SEG_A, SEG_B])
    if version == 1:
        top = max(e for _s, e in segs)
        bitmapsize = roundup(-(-(top // PS) // 8))
        bits_avail = [(0, bitmapsize * 8 * PS)]
        dumpavailsize = tail_garbage
    else:
        nbits = sum(-(-e // PS) - s // PS for s, e in segs)
        bitmapsize = roundup(-(-nbits // 8))
        bits_avail = segs
        dumpavailsize = PS
    pmapsize = nentries * 8
    hdr = struct.pack("<24sIIIIQQQQI", magic, version, len(msgbuf), bitmapsize, pmapsize,
                      kernbase, dmapphys, dmapbase, dmapend, dumpavailsize)
    out = bytearray(hdr + bytes(PS - len(hdr)))
    out += msgbuf + bytes(roundup(len(msgbuf)) - len(msgbuf))
    layout = {"dump_avail_off": len(out)}
    if version == 2:
        da = b"".join(struct.pack("<QQ", s, e) for s, e in segs) + bytes(16)
        out += da + bytes(PS - len(da))
    layout["bitmap_off"] = len(out)
    words = [0] * (bitmapsize // 8)
    for pa in dumped:
        b = bit_id(pa, bits_avail)
        words[b >> 6] |= 1 << (b & 63)
    out += struct.pack(f"<{len(words)}Q", *words)
    layout["pmap_off"] = len(out)
    if isinstance(entries, array):
        pm = array("Q", entries)
    else:
        pm = array("Q", bytes(pmapsize))
        for idx, value in entries.items():
            pm[idx] = value
    if sys.byteorder != "little":
        pm.byteswap()
    raw = pm.tobytes()
    out += raw + bytes(roundup(len(raw)) - len(raw))
    layout["sparse_off"] = len(out)
    offsets = {}
    for pa in sorted(dumped, key=lambda p: bit_id(p, bits_avail)):
        offsets[pa] = len(out)
        out += fill(pa)
    layout.update(bitmapsize=bitmapsize, pmapsize=pmapsize)
    return Dump(bytes(out), offsets, layout)


def page_pa(k: int) -> int:
    return 0x80200000 + k * PS


MEGA = 0x80400000  # a 2 MiB-aligned megapage in segment A


def standard_entries() -> tuple[dict[int, int], int, set[int]]:
    """One real L3 table (indices 0-511), then a megapage's 512 fake PTEs.

    The writer copies ``l2e | (i << PTE_PPN0_S)`` for the megapage; this one
    carries Svpbmt and reserved bits above the PPN, as every fake PTE then does.
    """
    p = [page_pa(k) for k in range(16)]
    ent = {
        0: pte(p[0], V | R_ | W_ | A | D),
        1: pte(p[1], V | R_ | A),  # read-only
        2: pte(p[2], V | R_ | X_ | A),  # text
        3: pte(p[3], V | R_ | W_ | X_ | A | D | PBMT_IO),  # Svpbmt bits above the PPN
        4: pte(p[4], V | R_ | W_ | A | D | NAPOT | RSVD),  # bits 54 and 63
        5: 0,
        6: pte(p[6], R_ | W_ | A | D),  # V clear
        7: pte(p[7], V),  # a pointer to a next-level table, not a leaf
        8: pte(p[8], V | R_ | W_ | A | D),  # valid, page not dumped
        9: pte(DEVICE_PA, V | R_ | W_ | A | D | PBMT_IO),  # device, outside the dmap
        10: pte(SEG_B[0], V | R_ | W_ | A | D),
        11: pte(HOLE_PA, V | R_ | W_ | A | D),
        12: pte(p[12], V | W_ | A | D),  # W without R: libkvm accepts any of RWX
        13: pte(p[13] | (1 << 56), V | R_ | A),  # PPN bits past bit 53 (ignored)
    }
    l2e = pte(MEGA, V | R_ | W_ | X_ | A | D | PBMT_IO | RSVD)
    for i in range(512):
        ent[512 + i] = l2e | (i << 10)
    dumped = {p[0], p[1], p[2], p[3], p[4], p[12], p[13], SEG_B[0], MEGA, MEGA + PS,
              MEGA + 2 * PS, MEGA + 511 * PS}
    return ent, 1024, dumped


def write(tmp_path: Path, d: Dump, name: str = "vmcore") -> Path:
    core = tmp_path / name
    core.write_bytes(d.core)
    return core


def open_dump(kernel: Path, core: Path) -> pykvm.Kvm:
    return pykvm.open2(str(kernel), str(core), 0, pykvm.symtab_resolver(str(kernel)))


def word(kd: pykvm.Kvm, va: int) -> int:
    return int(struct.unpack("<Q", kd.read(va, 8))[0])


@pytest.fixture(scope="module")
def kernel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_kernel(tmp_path_factory.mktemp("k") / "kernel")


@pytest.fixture(scope="module", params=[1, 2], ids=["v1", "v2"])
def std(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
        kernel: Path) -> tuple[Path, Path, Dump, int]:
    version = request.param
    ent, n, dumped = standard_entries()
    d = build_minidump(version=version, entries=ent, nentries=n, dumped=dumped,
                       msgbuf=b"riscv boot\n" * 100, tail_garbage=0x7777)
    return kernel, write(tmp_path_factory.mktemp("std"), d), d, version


# --- reading -----------------------------------------------------------------------

def test_reads_kernel_map(std: tuple[Path, Path, Dump, int]) -> None:
    kernel, core, d, version = std
    with open_dump(kernel, core) as kd:
        for k in (0, 1, 2, 3, 4, 12):
            va = KERNBASE + k * PS
            assert word(kd, va) == page_pa(k)
            assert word(kd, va + PS - 8) == page_pa(k) + PS - 8
        # a PPN bit past bit 53 is not part of the address
        assert word(kd, KERNBASE + 13 * PS + 8) == page_pa(13) + 8
        assert word(kd, KERNBASE + 10 * PS) == SEG_B[0]
        assert kd.read(KERNBASE + 5, 6) == fill(page_pa(0))[5:11]
        info = kd.info()
        assert (info.arch, info.fmt, info.version, info.page_size, info.pages) == \
            ("riscv", "minidump", version, PS, 12)
        assert kd.msgbuf() == b"riscv boot\n" * 100


def test_reads_megapage(std: tuple[Path, Path, Dump, int]) -> None:
    kernel, core, _d, _version = std
    base = KERNBASE + (2 << 20)
    with open_dump(kernel, core) as kd:
        assert word(kd, base) == MEGA
        assert kd.read(base + 8, 3 * PS - 16) == \
            (fill(MEGA) + fill(MEGA + PS) + fill(MEGA + 2 * PS))[8:-8]
        assert word(kd, base + 511 * PS + PS - 8) == MEGA + 512 * PS - 8
        with pytest.raises(pykvm.FaultError) as ei:
            kd.read(base + 2 * PS, PS + 8)
        assert ei.value.chain == (f"{MD}: physical address 0x{MEGA + 3 * PS:x} not in minidump",
                                  f"invalid address (0x{base + 3 * PS:x})")


def test_reads_direct_map_gigapages(std: tuple[Path, Path, Dump, int]) -> None:
    """The direct map (built from gigapages) translates linearly from dmapphys."""
    kernel, core, _d, _version = std
    with open_dump(kernel, core) as kd:
        for pa in (page_pa(0), page_pa(4), MEGA + PS, SEG_B[0]):
            va = DMAPBASE + pa - DMAPPHYS
            assert word(kd, va) == pa
            assert word(kd, va + 0xFF8) == pa + 0xFF8
        # the third gigapage of the direct map
        assert DMAPBASE + SEG_B[0] - DMAPPHYS == DMAPBASE + (2 << 30)
        assert kd.read(KERNBASE + 10 * PS, PS) == kd.read(DMAPBASE + (2 << 30), PS)


def test_translation_messages(std: tuple[Path, Path, Dump, int]) -> None:
    kernel, core, _d, _version = std
    cases: list[tuple[int, str | None]] = [
        (KERNBASE + 5 * PS, f"{MD}: pte not valid"),
        (KERNBASE + 6 * PS + 0x10, f"{MD}: pte not valid"),
        (KERNBASE + 7 * PS + 0xFFF, f"{MD}: pte not valid"),
        (KERNBASE + 8 * PS, f"{MD}: physical address 0x{page_pa(8):x} not in minidump"),
        (KERNBASE + 9 * PS + 4, f"{MD}: physical address 0x{DEVICE_PA:x} not in minidump"),
        (KERNBASE + 11 * PS, f"{MD}: physical address 0x{HOLE_PA:x} not in minidump"),
        (KERNBASE + 1024 * PS, None),  # past the PTE array: no specific message
        (KERNBASE + (1 << 32), None),
        (DMAPBASE + 0x20000000, f"{MD}: direct map address "
                                f"0x{DMAPBASE + 0x20000000:x} not in minidump"),
        (DMAPEND - 8, f"{MD}: direct map address 0x{DMAPEND - 8:x} not in minidump"),
        (0x2000, f"{MD}: virtual address 0x2000 not minidumped"),
        (KERNBASE - 1, f"{MD}: virtual address 0x{KERNBASE - 1:x} not minidumped"),
    ]
    with open_dump(kernel, core) as kd:
        for va, hard in cases:
            with pytest.raises(pykvm.FaultError) as ei:
                kd.read(va, 1)
            soft = f"invalid address (0x{va:x})"
            assert str(ei.value) == soft
            assert ei.value.address == va
            assert ei.value.chain == ((hard, soft) if hard else (soft,))
            assert kd.geterr() == soft
        # past dmapend, above the direct map: not minidumped (kernbase is below)
        with pytest.raises(pykvm.FaultError) as ei:
            kd.read(DMAPEND, 8)
        assert ei.value.chain == (f"invalid address (0x{DMAPEND:x})",)


def test_high_bits_never_reach_the_address(tmp_path: Path, kernel: Path) -> None:
    """Bits 54-63 of a PTE are not address bits (formats.md 14 row 9).

    libkvm shifts the whole entry, so it would look for physical page
    ``0x2000000000000 | pa``-style addresses; pykvm reads the PPN's page,
    and the message of an absent page names the PPN's address.
    """
    ent = {0: pte(page_pa(0), V | R_ | W_ | A | D | (0x3FF << 54)),
           1: pte(page_pa(1), V | R_ | A | PBMT_IO)}
    d = build_minidump(version=2, entries=ent, nentries=512, dumped={page_pa(0)})
    with open_dump(kernel, write(tmp_path, d)) as kd:
        assert word(kd, KERNBASE) == page_pa(0)
        with pytest.raises(pykvm.FaultError) as ei:
            kd.read(KERNBASE + PS, 8)
        assert ei.value.chain[0] == f"{MD}: physical address 0x{page_pa(1):x} not in minidump"
        assert [r.paddr for r in kd.walk_pages()] == [page_pa(0), page_pa(1)]


@pytest.mark.parametrize("kernbase", [KERNBASE, 0xFFFF800000000000],
                         ids=["sv39-layout", "sv48-canonical"])
def test_kernbase_from_header(tmp_path: Path, kernel: Path, kernbase: int) -> None:
    """The reader takes kernbase from the header (FreeBSD uses one for Sv39 and Sv48)."""
    ent, n, dumped = standard_entries()
    d = build_minidump(version=2, entries=ent, nentries=n, dumped=dumped, kernbase=kernbase)
    with open_dump(kernel, write(tmp_path, d)) as kd:
        assert word(kd, kernbase + 2 * PS) == page_pa(2)
        assert word(kd, kernbase + (2 << 20) + PS) == MEGA + PS
        assert next(iter(kd.walk_pages())).kmap_vaddr == kernbase


def test_v1_without_dump_avail(tmp_path: Path, kernel: Path) -> None:
    ent, n, dumped = standard_entries()
    d = build_minidump(version=1, entries=ent, nentries=n, dumped=dumped,
                       tail_garbage=0x10000)
    assert d.layout["bitmap_off"] == PS  # no msgbuf, no dump_avail page
    with open_dump(kernel, write(tmp_path, d)) as kd:
        assert word(kd, KERNBASE) == page_pa(0)
        assert word(kd, DMAPBASE + SEG_B[0] - DMAPPHYS) == SEG_B[0]


# --- walk_pages ---------------------------------------------------------------------

def test_walk_pages_records(tmp_path: Path, kernel: Path) -> None:
    ent, n, dumped = standard_entries()
    d = build_minidump(version=2, entries=ent, nentries=n, dumped=dumped)
    off = d.offsets

    def rec(idx: int, pa: int, prot: int, dva: int | None = None) -> tuple[int, ...]:
        return (2, pa, KERNBASE + idx * PS, DMAPBASE + pa - DMAPPHYS if dva is None else dva,
                prot, off.get(pa, -1), PS)

    p = [page_pa(k) for k in range(16)]
    want = [
        rec(0, p[0], R | W),
        rec(1, p[1], R),
        rec(2, p[2], R | X),
        rec(3, p[3], R | W | X),
        rec(4, p[4], R | W),
        rec(8, p[8], R | W),
        rec(9, DEVICE_PA, R | W, 0),  # outside the direct map: no alias
        rec(10, SEG_B[0], R | W),
        rec(11, HOLE_PA, R | W),
        rec(12, p[12], R | W),
        rec(13, p[13], R),
    ]
    want += [rec(512 + i, MEGA + i * PS, R | W | X) for i in range(512)]
    with open_dump(kernel, write(tmp_path, d)) as kd:
        got = [(r.version, r.paddr, r.kmap_vaddr, r.dmap_vaddr, r.prot, r.offset, r.len)
               for r in kd.walk_pages()]
        assert got == want
        assert sum(1 for r in got if r[5] != -1) == 12
        assert kd.walk_pages_cb(lambda page: 0) == 0
        assert kd.walk_pages_cb(lambda page: 1) == 1


# --- open errors and selection -------------------------------------------------------

def _open_error(kernel: Path, core: Path) -> pykvm.KvmError:
    with pytest.raises(pykvm.KvmError) as ei:
        open_dump(kernel, core)
    return ei.value


def test_open_errors(tmp_path: Path, kernel: Path) -> None:
    ent, n, dumped = standard_entries()
    good = build_minidump(version=2, entries=ent, nentries=n, dumped=dumped)
    cases: list[tuple[dict[str, object], str]] = [
        ({"magic": b"minidump FreeBSD/arm64"}, "not a minidump for this platform"),
        ({"magic": b"minidump FreeBSD/riscv64"}, "not a minidump for this platform"),
        ({"version": 3}, "wrong minidump version. Expected 2 got 3"),
        ({"version": 0}, "wrong minidump version. Expected 2 got 0"),
        ({"version": 0x80000000}, "wrong minidump version. Expected 2 got -2147483648"),
    ]
    for i, (kw, text) in enumerate(cases):
        args: dict[str, object] = {"version": 2, "entries": ent, "nentries": n,
                                   "dumped": dumped}
        args.update(kw)
        core = write(tmp_path, build_minidump(**args), f"vmcore.{i}")  # type: ignore[arg-type]
        err = _open_error(kernel, core)
        assert isinstance(err, pykvm.FormatError)
        assert str(err) == text
    short = tmp_path / "short"
    for size in (8, 72, 79):
        short.write_bytes(good.core[:size])
        assert str(_open_error(kernel, short)) == "cannot read dump header"
    short.write_bytes(b"minidum")  # not even the magic: nobody claims it
    assert str(_open_error(kernel, short)) == "unsupported architecture"
    lay = good.layout
    short.write_bytes(good.core[: lay["bitmap_off"] + 1])
    assert str(_open_error(kernel, short)) == f"cannot read {lay['bitmapsize']} bytes for bitmap"
    short.write_bytes(good.core[: lay["pmap_off"] + 8])
    assert str(_open_error(kernel, short)) == \
        f"cannot read {lay['pmapsize']} bytes from offset {lay['pmap_off']} for page map"
    empty = write(tmp_path, build_minidump(version=2, entries=ent, nentries=n, dumped=set()),
                  "empty")
    assert str(_open_error(kernel, empty)).startswith("cannot map 0 bytes from fd ")


def test_selection(tmp_path: Path, kernel: Path) -> None:
    ent, n, dumped = standard_entries()
    core = write(tmp_path, build_minidump(version=2, entries=ent, nentries=n, dumped=dumped))
    assert str(_open_error(make_kernel(tmp_path / "dyn", e_type=3), core)) == \
        "unsupported architecture"
    elfcore = tmp_path / "elfcore"
    ident = b"\x7fELF" + bytes([2, 1, 1, 9]) + bytes(8)
    elfcore.write_bytes(ident + struct.pack("<HHIQQQIHHHHHH", 4, EM_RISCV, 1, 0, 64, 0, 0,
                                            64, 56, 0, 64, 0, 0) + bytes(4096))
    assert str(_open_error(kernel, elfcore)) == "unsupported architecture"
    # the aarch64 backend (probed first) claims a riscv minidump opened with an arm64 kernel
    arm = make_kernel(tmp_path / "arm", machine=183)
    assert str(_open_error(arm, core)) == "not a minidump for this platform"


def test_native_kerndisp(tmp_path: Path, kernel: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ent, n, dumped = standard_entries()
    core = write(tmp_path, build_minidump(version=2, entries=ent, nentries=n, dumped=dumped))
    with open_dump(kernel, core) as kd:
        assert kd.kerndisp() == 0
        for machine, order, want in [("riscv64", "little", True), ("riscv64", "big", False),
                                     ("aarch64", "little", False),
                                     ("x86_64", "little", False)]:
            monkeypatch.setattr(riscv_mod, "host_machine", lambda m=machine: m)
            monkeypatch.setattr(sys, "byteorder", order)
            assert kd.native() is want, (machine, order)
    monkeypatch.undo()
    monkeypatch.setattr(riscv_mod, "host_machine", lambda: "riscv64")
    with pykvm.openfiles(str(kernel), str(core)) as kd:
        assert word(kd, KERNBASE) == page_pa(0)


# --- hostile input ----------------------------------------------------------------------

TIME_BOUND = 5.0


@pytest.fixture(scope="module")
def tiny() -> dict[int, bytes]:
    ent, n, dumped = standard_entries()
    return {v: build_minidump(version=v, entries=ent, nentries=n, dumped=dumped,
                              msgbuf=b"boot\n").core for v in (1, 2)}


def exercise(kernel: Path, core: Path) -> None:
    """Open, read, walk; only KvmError may escape, within the time bound."""
    t0 = time.monotonic()
    try:
        with open_dump(kernel, core) as kd:
            for va in (KERNBASE, KERNBASE + 3 * PS, KERNBASE + (2 << 20), KERNBASE + 8 * PS,
                       DMAPBASE + SEG_B[0] - DMAPPHYS, 0x1000, (1 << 64) - 8):
                try:
                    assert len(kd.read(va, 2 * PS)) <= 2 * PS
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
def test_corrupt_or_truncated_core(tiny: dict[int, bytes], kernel: Path,
                                   tmp_path_factory: pytest.TempPathFactory,
                                   data: st.DataObject) -> None:
    raw = bytearray(tiny[data.draw(st.sampled_from([1, 2]))])
    action = data.draw(st.sampled_from(["truncate", "flip", "header"]))
    if action == "truncate":
        raw = raw[: data.draw(st.integers(0, len(raw)))]
    elif action == "flip":
        for _ in range(data.draw(st.integers(1, 16))):
            i = data.draw(st.integers(0, len(raw) - 1))
            raw[i] = data.draw(st.integers(0, 255))
    else:
        for _ in range(data.draw(st.integers(1, 8))):
            i = data.draw(st.integers(8, 79))
            raw[i] = data.draw(st.integers(0, 255))
    core = tmp_path_factory.mktemp("bad") / "vmcore"
    core.write_bytes(bytes(raw))
    exercise(kernel, core)
    assert core.read_bytes() == bytes(raw)
