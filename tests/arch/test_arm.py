"""arm (32-bit) backends: minidumps (v1, v2; MMU formats V4, V6) and ELF full dumps.

Every kernel and dump is built here with ``struct`` from the byte layouts of
formats.md section 7 (and 3, 4), in both byte orders: little-endian arm and
big-endian armeb.  Expected bytes come from the physical memory the test wrote,
never from pykvm's readers.
"""

from __future__ import annotations

import struct
import sys
import time
from array import array
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pykvm
import pykvm.arch.arm as armmod
from pykvm.arch.arm import ArmElfCore, ArmMinidump
from pykvm.errors import FaultError, FormatError, KvmError

PAGE = 4096
KB = 0xC0000000  # KERNBASE
EM_ARM = 40
EM_386 = 3
PT_LOAD = 1
PT_DUMP_DELTA = 0x6FB5D000
ENDIANS = ["<", ">"]
EID = {"<": "le", ">": "be"}

READ, WRITE, EXEC = 1, 2, 4


def rpage(n: int) -> int:
    return (n + PAGE - 1) // PAGE * PAGE


def pad(b: bytes) -> bytes:
    return b + b"\0" * (rpage(len(b)) - len(b))


# -- kernel ELF -------------------------------------------------------------------
def write_kernel(path: Path, endian: str, symbols: dict[str, int], *, machine: int = EM_ARM,
                 ei_class: int = 1, e_type: int = 2) -> Path:
    """An ELF32 ``ET_EXEC`` kernel with .text, .symtab, .strtab, .shstrtab."""
    e = endian
    shstr = b"\0.text\0.symtab\0.strtab\0.shstrtab\0"
    n_text, n_symtab, n_strtab, n_shstr = 1, 7, 15, 23
    text = b"\0" * 64
    strtab = b"\0"
    syms = [b"\0" * 16]
    for name, value in symbols.items():
        syms.append(struct.pack(e + "IIIBBH", len(strtab), value & 0xFFFFFFFF, 4,
                                (1 << 4) | 1, 0, 1))  # STB_GLOBAL, STT_OBJECT, .text
        strtab += name.encode() + b"\0"
    symtab = b"".join(syms)
    off_text = 52
    off_sym = off_text + len(text)
    off_str = off_sym + len(symtab)
    off_shstr = off_str + len(strtab)
    off_sh = (off_shstr + len(shstr) + 3) // 4 * 4
    sh = b"\0" * 40
    sh += struct.pack(e + "10I", n_text, 1, 6, KB, off_text, len(text), 0, 0, 4, 0)
    sh += struct.pack(e + "10I", n_symtab, 2, 0, 0, off_sym, len(symtab), 3, 1, 4, 16)
    sh += struct.pack(e + "10I", n_strtab, 3, 0, 0, off_str, len(strtab), 0, 0, 1, 0)
    sh += struct.pack(e + "10I", n_shstr, 3, 0, 0, off_shstr, len(shstr), 0, 0, 1, 0)
    ident = b"\x7fELF" + bytes([ei_class, 1 if e == "<" else 2, 1, 9]) + b"\0" * 8
    ehdr = ident + struct.pack(e + "HHIIIIIHHHHHH", e_type, machine, 1, KB, 0, off_sh, 0,
                               52, 32, 0, 40, 5, 4)
    body = ehdr + text + symtab + strtab + shstr
    body += b"\0" * (off_sh - len(body))
    path.write_bytes(body + sh)
    return path


# -- physical memory ----------------------------------------------------------------
class Phys:
    """Physical memory: segments filled with each word's own address (kernel order)."""

    def __init__(self, endian: str, segs: Iterable[tuple[int, int]]) -> None:
        self.e = endian
        self.segs: list[tuple[int, bytearray]] = []
        for base, size in segs:
            words = array("I", range(base, base + size, 4))
            if (endian == "<") != (sys.byteorder == "little"):
                words.byteswap()
            self.segs.append((base, bytearray(words.tobytes())))

    def _find(self, pa: int, n: int) -> tuple[bytearray, int]:
        for base, buf in self.segs:
            if base <= pa and pa + n <= base + len(buf):
                return buf, pa - base
        raise KeyError(hex(pa))

    def write(self, pa: int, data: bytes) -> None:
        buf, i = self._find(pa, len(data))
        buf[i:i + len(data)] = data

    def w32(self, pa: int, value: int) -> None:
        self.write(pa, struct.pack(self.e + "I", value))

    def read(self, pa: int, n: int) -> bytes:
        buf, i = self._find(pa, n)
        return bytes(buf[i:i + n])


def write_core(path: Path, endian: str, phys: Phys, *, delta: tuple[int, int] | None = None,
               machine: int = EM_ARM, truncate_last: bool = False) -> Path:
    """An ELF32 ``ET_CORE``: one PT_LOAD per segment, then the optional PT_DUMP_DELTA."""
    e = endian
    phnum = len(phys.segs) + (1 if delta else 0)
    data_off = rpage(52 + phnum * 32)
    phdrs = b""
    off = data_off
    for base, buf in phys.segs:
        phdrs += struct.pack(e + "8I", PT_LOAD, off, base, base, len(buf), len(buf), 4, PAGE)
        off += len(buf)
    if delta:
        phdrs += struct.pack(e + "8I", PT_DUMP_DELTA, 0, delta[0], delta[1], 0, 0, 4, PAGE)
    ident = b"\x7fELF" + bytes([1, 1 if e == "<" else 2, 1, 255]) + b"\0" * 8
    ehdr = ident + struct.pack(e + "HHIIIIIHHHHHH", 4, machine, 1, 0, 52, 0, 0, 52, 32,
                               phnum, 40, 0, 0)
    head = ehdr + phdrs
    blob = head + b"\0" * (data_off - len(head)) + b"".join(bytes(b) for _, b in phys.segs)
    if truncate_last:
        blob = blob[: len(blob) - len(phys.segs[-1][1])]
    path.write_bytes(blob)
    return path


# -- minidump -----------------------------------------------------------------------
def bit_id(avail: list[tuple[int, int]], pa: int) -> int:
    """formats.md 3.2: the bit of the page holding ``pa``."""
    adj = 0
    for s, e in avail:
        if s <= pa < e:
            return (pa >> 12) - (s >> 12) + adj
        adj += -(-e // PAGE) - (s >> 12)
    raise KeyError(hex(pa))


@dataclass
class Mini:
    kernel: Path
    core: Path
    endian: str
    phys: Phys
    offsets: dict[int, int] = field(default_factory=dict)  # dumped page pa -> file offset


def write_minidump(path: Path, endian: str, *, ptes: list[int], pages: list[int],
                   phys: Phys, avail: list[tuple[int, int]] | None, version: int = 2,
                   mmuformat: int = 2, magic: bytes = b"minidump FreeBSD/arm",
                   msgbuf: bytes = b"", bitmapsize: int = PAGE,
                   dumpavailsize_field: int | None = None,
                   pad_ptes: bool = True) -> dict[int, int]:
    """formats.md 7.2/7.3: header page, msgbuf, dump_avail (v2), bitmap, PTEs, pages.

    ``pad_ptes=False`` writes the PTE section as the kernel does (cpu_minidumpsys:
    no padding, the pages follow right after it); True pads it to a page.
    """
    e = endian
    ptesize = 4 * len(ptes)
    if avail is None:  # v1: the implied dump_avail [0, bitmapsize * 8 * PAGE]
        da = b""
        avail_used = [(0, bitmapsize * 8 * PAGE)]
        dasize = 0 if dumpavailsize_field is None else dumpavailsize_field
    else:
        raw = b"".join(struct.pack(e + "QQ", s, t) for s, t in avail) + b"\0" * 16
        da = pad(raw)
        avail_used = avail
        dasize = len(da) if dumpavailsize_field is None else dumpavailsize_field
    hdr = struct.pack(e + "24sIIIIIIII", magic, version, len(msgbuf), bitmapsize, ptesize,
                      KB, 7, mmuformat, dasize)
    bits = sorted({bit_id(avail_used, pa) for pa in pages})
    if e == "<":
        bm = bytearray(bitmapsize)
        for b in bits:
            bm[b >> 3] |= 1 << (b & 7)
    else:  # BITSET of 32-bit longs in big-endian order
        words = [0] * (bitmapsize // 4)
        for b in bits:
            words[b // 32] |= 1 << (b % 32)
        bm = bytearray(struct.pack(f">{len(words)}I", *words))
    pte_raw = struct.pack(f"{e}{len(ptes)}I", *ptes)
    head = pad(hdr) + pad(msgbuf) + da + bytes(bm) + (pad(pte_raw) if pad_ptes else pte_raw)
    by_bit = {bit_id(avail_used, pa): pa for pa in pages}
    offsets = {}
    body = []
    for rank, b in enumerate(bits):
        pa = by_bit[b]
        offsets[pa] = len(head) + rank * PAGE
        body.append(phys.read(pa, PAGE))
    path.write_bytes(head + b"".join(body))
    return offsets


# Minidump scenario (formats.md 7.4/7.5): PTE index -> entry
MD_AVAIL = [(0x80000000, 0x80100000), (0x90000000, 0x90010000)]


def md_ptes() -> list[int]:
    ptes = [0] * 64
    ptes[0] = 0x80000000 | 0x2 | 0x10          # small page, writable, executable
    ptes[1] = 0x80001000 | 0x3                 # small page with XN (type 3 on V6)
    ptes[2] = 0x80002000 | 0x2 | 0x80          # small page, read-only (TEX1)
    ptes[3] = 0                                # invalid
    ptes[4] = 0x80004000 | 0x10                # type 0 with stray bits: invalid
    ptes[5] = 0x80005000 | 0x2                 # not dumped
    ptes[6] = 0x90000000 | 0x2                 # second dump_avail range
    ptes[7] = 0x88000000 | 0x2                 # hole between the ranges
    ptes[8] = 0x80003000 | 0x2
    for k in range(16):
        ptes[16 + k] = 0x80010000 | 0x1                     # 64 KiB page, executable
        ptes[32 + k] = 0x80020000 | 0x1 | 0x8000 | 0x2000   # 64 KiB page, XN, read-only
    return ptes


MD_PAGES = ([0x80000000, 0x80001000, 0x80002000, 0x80003000, 0x80004000, 0x90000000]
            + [0x80010000 + k * PAGE for k in range(32)])


def md_phys(endian: str) -> Phys:
    return Phys(endian, [(0x80000000, 0x100000), (0x90000000, 0x10000)])


def build_md(d: Path, endian: str, **kw: object) -> Mini:
    d.mkdir(parents=True, exist_ok=True)
    phys = md_phys(endian)
    kernel = write_kernel(d / "kernel", endian, {"version": KB + 0x100})
    opts: dict[str, object] = {"ptes": md_ptes(), "pages": MD_PAGES, "avail": MD_AVAIL,
                               "msgbuf": b"hello, arm\n"}
    opts.update(kw)
    offsets = write_minidump(d / "vmcore", endian, phys=phys, **opts)  # type: ignore[arg-type]
    return Mini(kernel, d / "vmcore", endian, phys, offsets)


def open_mini(m: Mini) -> pykvm.Kvm:
    return pykvm.open2(str(m.kernel), str(m.core), 0, pykvm.symtab_resolver(m.kernel))


@pytest.fixture(scope="module", params=ENDIANS, ids=lambda e: EID[e])
def md(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Mini:
    return build_md(tmp_path_factory.mktemp("md"), request.param)


# -- minidump tests -----------------------------------------------------------------
def test_minidump_selected_and_described(md: Mini) -> None:
    with open_mini(md) as kd:
        assert isinstance(kd.backend, ArmMinidump)
        info = kd.info()
        assert (info.arch, info.fmt, info.version, info.page_size) == ("arm", "minidump", 2,
                                                                       PAGE)
        assert info.pages == len(MD_PAGES)
        assert kd.kerndisp() == 0
        assert kd.msgbuf() == b"hello, arm\n"
        assert kd.geterr() == ""


def test_minidump_reads(md: Mini) -> None:
    p = md.phys
    with open_mini(md) as kd:
        assert kd.read(KB + 0x10, 16) == p.read(0x80000010, 16)
        assert kd.read(KB + PAGE + 0x20, 8) == p.read(0x80001020, 8)
        assert kd.read(KB + 2 * PAGE, PAGE) == p.read(0x80002000, PAGE)
        # across a page boundary
        assert kd.read(KB + 0xFF8, 16) == p.read(0x80000FF8, 8) + p.read(0x80001000, 8)
        assert kd.read(KB + 6 * PAGE + 4, 4) == p.read(0x90000004, 4)
        assert kd.read(KB + 8 * PAGE, 12) == p.read(0x80003000, 12)
        # 64 KiB large pages: each 4 KiB step reaches the matching sub-page
        assert kd.read(KB + 21 * PAGE + 0x123, 100) == p.read(0x80015123, 100)
        assert kd.read(KB + 16 * PAGE, 32 * PAGE) == p.read(0x80010000, 32 * PAGE)


def test_minidump_translation_returns_rest_of_page(md: Mini) -> None:
    with open_mini(md) as kd:
        assert kd.backend is not None
        off, n = kd.backend.kvatop(KB + 17 * PAGE + 0x10)
        assert (off, n) == (md.offsets[0x80011000] + 0x10, PAGE - 0x10)


@pytest.mark.parametrize(("va", "chain"), [
    (KB + 3 * PAGE, ("_arm_minidump_kvatop: pte not valid", "invalid address (0xc0003000)")),
    (KB + 4 * PAGE + 8, ("_arm_minidump_kvatop: pte not valid",
                         "invalid address (0xc0004008)")),
    (KB + 5 * PAGE, ("_arm_minidump_kvatop: physical address 0x80005000 not in minidump",
                     "invalid address (0xc0005000)")),
    (KB + 7 * PAGE + 1, ("_arm_minidump_kvatop: physical address 0x88000000 not in minidump",
                         "invalid address (0xc0007001)")),
    (KB - PAGE, ("_arm_minidump_kvatop: virtual address 0xbffff000 not minidumped",
                 "invalid address (0xbffff000)")),
    (0x1000, ("_arm_minidump_kvatop: virtual address 0x1000 not minidumped",
              "invalid address (0x1000)")),
    (KB + 64 * PAGE, ("invalid address (0xc0040000)",)),
    (1 << 32, ("invalid address (0x100000000)",)),
])
def test_minidump_fault_messages(md: Mini, va: int, chain: tuple[str, ...]) -> None:
    with open_mini(md) as kd:
        with pytest.raises(FaultError) as ei:
            kd.read2(va, 4)
        assert ei.value.chain == chain
        assert str(ei.value) == chain[-1]
        assert kd.geterr() == chain[-1]
        assert ei.value.address == va


def test_minidump_fault_names_failing_chunk(md: Mini) -> None:
    with open_mini(md) as kd:
        with pytest.raises(FaultError) as ei:
            kd.read2(KB + 3 * PAGE - 16, 32)
        assert str(ei.value) == "invalid address (0xc0003000)"
        assert ei.value.address == KB + 3 * PAGE


def test_minidump_walk_pages_v6(md: Mini) -> None:
    off = md.offsets

    def rec(idx: int, pa: int, prot: int) -> tuple[int, ...]:
        return (2, pa, KB + idx * PAGE, 0, prot, off.get(pa, -1), PAGE)

    want = [rec(0, 0x80000000, READ | WRITE | EXEC), rec(1, 0x80001000, READ | WRITE),
            rec(2, 0x80002000, READ | EXEC), rec(5, 0x80005000, READ | WRITE | EXEC),
            rec(6, 0x90000000, READ | WRITE | EXEC), rec(7, 0x88000000, READ | WRITE | EXEC),
            rec(8, 0x80003000, READ | WRITE | EXEC)]
    # 64 KiB pages: XN is bit 15 and read-only bit 13 there (formats.md 14 row 15)
    want += [rec(16 + k, 0x80010000 + k * PAGE, READ | WRITE | EXEC) for k in range(16)]
    want += [rec(32 + k, 0x80020000 + k * PAGE, READ) for k in range(16)]
    with open_mini(md) as kd:
        got = [(p.version, p.paddr, p.kmap_vaddr, p.dmap_vaddr, p.prot, p.offset, p.len)
               for p in kd.walk_pages()]
        assert got == want
        seen: list[int] = []
        assert kd.walk_pages_cb(lambda p: seen.append(p.paddr) or len(seen) < 3) == 0
        assert len(seen) == 3
        assert kd.walk_pages_cb(lambda p: 1) == 1


@pytest.mark.parametrize("endian", ENDIANS, ids=lambda e: EID[e])
def test_minidump_v4_format(tmp_path: Path, endian: str) -> None:
    m = build_md(tmp_path, endian, mmuformat=1)
    with open_mini(m) as kd:
        assert kd.read(KB, 8) == m.phys.read(0x80000000, 8)
        with pytest.raises(FaultError) as ei:
            kd.read2(KB + PAGE + 4, 4)
        assert ei.value.chain == ("_arm_minidump_kvatop: pte not supported",
                                  "invalid address (0xc0001004)")
        recs = [(p.kmap_vaddr, p.paddr, p.prot) for p in kd.walk_pages()]
        # tiny pages skipped; V4 write permission is AP0 (0x10); ARMv4/v5 have no
        # execute-never bit, so every page is executable (libkvm: never EXECUTE)
        assert KB + PAGE not in [va for va, _, _ in recs]
        assert recs[:3] == [(KB, 0x80000000, READ | WRITE | EXEC),
                            (KB + 2 * PAGE, 0x80002000, READ | EXEC),
                            (KB + 5 * PAGE, 0x80005000, READ | EXEC)]
        assert all(p & (READ | EXEC) == READ | EXEC for _, _, p in recs)
        # 64 KiB pages: bits 15 and 13 mean nothing to ARMv4/v5 (V6 keeps XN/RO there)
        prots = {va: prot for va, _, prot in recs}
        assert {prots[KB + (16 + k) * PAGE] for k in range(32)} == {READ | EXEC}
        assert len(recs) == 6 + 32


@pytest.mark.parametrize("endian", ENDIANS, ids=lambda e: EID[e])
def test_minidump_unknown_mmu_format_is_v6(tmp_path: Path, endian: str) -> None:
    m = build_md(tmp_path, endian, mmuformat=0)
    with open_mini(m) as kd:
        assert kd.read(KB + PAGE, 8) == m.phys.read(0x80001000, 8)
        prots = {p.kmap_vaddr: p.prot for p in kd.walk_pages()}
        assert prots[KB + PAGE] == READ | WRITE


@pytest.mark.parametrize("endian", ENDIANS, ids=lambda e: EID[e])
def test_minidump_v1_implied_dump_avail(tmp_path: Path, endian: str) -> None:
    phys = Phys(endian, [(0x100000, 0x10000)])
    ptes = [0x100000 | 0x2, 0x103000 | 0x2, 0x104000 | 0x2]
    kernel = write_kernel(tmp_path / "kernel", endian, {})
    # a v1 header: the dumpavailsize slot is not read (garbage here)
    offsets = write_minidump(tmp_path / "vmcore", endian, ptes=ptes, phys=phys, avail=None,
                             pages=[0x100000, 0x103000], version=1,
                             dumpavailsize_field=0x7777)
    m = Mini(kernel, tmp_path / "vmcore", endian, phys, offsets)
    with open_mini(m) as kd:
        assert kd.info().version == 1
        assert kd.read(KB + 0x10, 8) == phys.read(0x100010, 8)
        assert kd.read(KB + PAGE, 8) == phys.read(0x103000, 8)
        with pytest.raises(FaultError) as ei:
            kd.read2(KB + 2 * PAGE, 1)
        assert ei.value.chain[0] == ("_arm_minidump_kvatop: physical address 0x104000 "
                                     "not in minidump")
        assert [(p.paddr, p.offset) for p in kd.walk_pages()] == [
            (0x100000, offsets[0x100000]), (0x103000, offsets[0x103000]), (0x104000, -1)]


def test_minidump_pte_section_not_multiple_of_page(tmp_path: Path) -> None:
    # 3 PTEs = 12 bytes of PTE section: the page data starts at round_page(12) after it
    phys = Phys("<", [(0x80000000, 0x10000)])
    kernel = write_kernel(tmp_path / "kernel", "<", {})
    ptes = [0x80002000 | 2, 0x80000000 | 2, 0x80001000 | 2]
    offsets = write_minidump(tmp_path / "vmcore", "<", ptes=ptes, phys=phys,
                             avail=[(0x80000000, 0x80010000)],
                             pages=[0x80000000, 0x80001000, 0x80002000])
    m = Mini(kernel, tmp_path / "vmcore", "<", phys, offsets)
    assert offsets[0x80000000] % PAGE == 0
    with open_mini(m) as kd:
        assert kd.read(KB, 3 * PAGE) == b"".join(
            phys.read(pa, PAGE) for pa in (0x80002000, 0x80000000, 0x80001000))


# The kernel's layout: the PTE section unpadded (64 PTEs = 256 bytes), pages right after.
@pytest.mark.parametrize("endian", ENDIANS, ids=lambda e: EID[e])
@pytest.mark.parametrize("mmuformat", [2, 1], ids=["v6", "v4"])
def test_minidump_unpadded_pte_section(tmp_path: Path, endian: str, mmuformat: int) -> None:
    m = build_md(tmp_path, endian, pad_ptes=False, mmuformat=mmuformat)
    pte_off = 4 * PAGE
    assert min(m.offsets.values()) == pte_off + 256
    assert m.core.stat().st_size == pte_off + 256 + len(MD_PAGES) * PAGE
    p = m.phys
    with open_mini(m) as kd:
        assert kd.read(KB + 0x10, 16) == p.read(0x80000010, 16)
        assert kd.read(KB + 6 * PAGE + 4, 4) == p.read(0x90000004, 4)
        assert kd.read(KB + 16 * PAGE, 32 * PAGE) == p.read(0x80010000, 32 * PAGE)
        assert kd.backend is not None
        assert kd.backend.kvatop(KB + 17 * PAGE + 0x10) == (m.offsets[0x80011000] + 0x10,
                                                             PAGE - 0x10)
        walk = [(p.paddr, p.offset) for p in kd.walk_pages()]
        assert walk and all(off == m.offsets.get(pa, -1) for pa, off in walk)


@pytest.mark.parametrize("endian", ENDIANS, ids=lambda e: EID[e])
def test_minidump_unpadded_truncated(tmp_path: Path, endian: str) -> None:
    """A core cut short (savecore out of space) keeps the kernel's layout."""
    m = build_md(tmp_path, endian, pad_ptes=False)
    raw = m.core.read_bytes()
    m.core.write_bytes(raw[: rpage(len(raw)) - 8 * PAGE])  # block-aligned cut
    p = m.phys
    with open_mini(m) as kd:
        assert kd.read(KB + 0x10, 16) == p.read(0x80000010, 16)
        assert kd.read(KB + 8 * PAGE, 12) == p.read(0x80003000, 12)
        assert kd.read(KB + 16 * PAGE, 16 * PAGE) == p.read(0x80010000, 16 * PAGE)
        # the last pages lie (partly) past the end of the file: a short read
        assert len(kd.read2(KB + 47 * PAGE, PAGE)) < PAGE


@pytest.mark.parametrize("endian", ENDIANS, ids=lambda e: EID[e])
def test_minidump_unpadded_with_trailing_bytes(tmp_path: Path, endian: str) -> None:
    """Zeros appended up to the padded layout's size (a copy rounded to a page) do not
    make it a padded dump: the padding would be the first page's non-zero bytes."""
    m = build_md(tmp_path, endian, pad_ptes=False)
    raw = m.core.read_bytes()
    m.core.write_bytes(raw + b"\0" * (rpage(len(raw)) - len(raw)))
    with open_mini(m) as kd:
        assert kd.read(KB, 16) == m.phys.read(0x80000000, 16)
        assert kd.read(KB + 16 * PAGE, 32 * PAGE) == m.phys.read(0x80010000, 32 * PAGE)


@pytest.mark.parametrize("endian", ENDIANS, ids=lambda e: EID[e])
def test_minidump_padded_pte_section_still_read(tmp_path: Path, endian: str) -> None:
    """A writer that pads the PTE section to a page (formats.md 3.1) is read as such."""
    m = build_md(tmp_path, endian, pad_ptes=True)
    assert min(m.offsets.values()) == 5 * PAGE
    with open_mini(m) as kd:
        assert kd.read(KB + 16 * PAGE, 32 * PAGE) == m.phys.read(0x80010000, 32 * PAGE)
        assert [(p.paddr, p.offset) for p in kd.walk_pages()][:2] == [
            (0x80000000, m.offsets[0x80000000]), (0x80001000, m.offsets[0x80001000])]


class FakeCore:
    def __init__(self, size: int, gap: bytes = b"", gap_at: int = 0) -> None:
        self.size, self.gap, self.gap_at = size, gap, gap_at

    def pread(self, offset: int, size: int) -> bytes:
        assert offset == self.gap_at
        return self.gap[:size]


@pytest.mark.parametrize(("ptesize", "size", "gap", "want"), [
    (2 * PAGE, 10 * PAGE + 2 * PAGE + 3 * PAGE, b"", 10 * PAGE + 2 * PAGE),  # whole pages
    (1024, 10 * PAGE + 1024 + 3 * PAGE, b"", 10 * PAGE + 1024),              # kernel's
    (1024, 10 * PAGE + PAGE + 3 * PAGE, bytes(3072), 10 * PAGE + PAGE),      # padded
    (1024, 10 * PAGE + PAGE + 3 * PAGE, b"\1" + bytes(3071), 10 * PAGE + 1024),
    (1024, 10 * PAGE + PAGE + 3 * PAGE, bytes(100), 10 * PAGE + 1024),       # short gap
    (1024, 10 * PAGE + 1024 + PAGE, bytes(3072), 10 * PAGE + 1024),          # truncated
    (1024, 10 * PAGE + PAGE + 2 * PAGE, bytes(3072), 10 * PAGE + 1024),      # truncated
    (1024, 10 * PAGE + PAGE + 4 * PAGE, bytes(3072), 10 * PAGE + 1024),      # longer
    (3072, 0, b"", 10 * PAGE + 3072),                                        # no size
])
def test_page_data_offset_rule(ptesize: int, size: int, gap: bytes, want: int) -> None:
    core = FakeCore(size, gap, 10 * PAGE + ptesize)
    assert armmod.page_data_offset(core, 10 * PAGE, ptesize, 3) == want  # type: ignore[arg-type]


def test_minidump_empty_bitmap_reports_libkvm_offset(tmp_path: Path) -> None:
    """libkvm's text names its own (page-rounded) page-data offset."""
    m = build_md(tmp_path, "<", pad_ptes=False, pages=[])
    with pytest.raises(FormatError) as ei:
        open_mini(m)
    assert f"offset {5 * PAGE} for sparse map" in str(ei.value)


def minidump_open_error(tmp_path: Path, core: bytes, endian: str = "<") -> str:
    kernel = write_kernel(tmp_path / "kernel", endian, {})
    (tmp_path / "vmcore").write_bytes(core)
    with pytest.raises(FormatError) as ei:
        pykvm.open2(str(kernel), str(tmp_path / "vmcore"), 0, pykvm.symtab_resolver(kernel))
    return str(ei.value)


@pytest.mark.parametrize("endian", ENDIANS, ids=lambda e: EID[e])
def test_minidump_open_errors(tmp_path: Path, endian: str) -> None:
    m = build_md(tmp_path / "good", endian)
    good = m.core.read_bytes()
    assert minidump_open_error(tmp_path, good[:40], endian) == "cannot read dump header"
    bad = good[:20] + b"6" + good[21:]  # "minidump FreeBSD/arm6..."
    assert minidump_open_error(tmp_path, bad, endian) == "not a minidump for this platform"
    bad = b"M" + good[1:]  # no longer a minidump: the full-dump backend claims it
    assert minidump_open_error(tmp_path, bad, endian) == "invalid core"
    for v, shown in ((3, 3), (0, 0), (0xFFFFFFFF, -1)):
        bad = good[:24] + struct.pack(endian + "I", v) + good[28:]
        assert minidump_open_error(tmp_path, bad, endian) == (
            f"wrong minidump version. Expected 2 got {shown}")
    # bitmap cut short: header page + msgbuf page + dump_avail page + part of the bitmap
    assert minidump_open_error(tmp_path, good[: 3 * PAGE + 100], endian) == (
        "cannot read 4096 bytes for bitmap")
    # PTE section cut short (it starts after the bitmap page)
    assert minidump_open_error(tmp_path, good[: 4 * PAGE + 100], endian) == (
        f"cannot read 256 bytes from offset {4 * PAGE} for page map")


def test_minidump_header_in_kernel_byte_order(tmp_path: Path) -> None:
    """A big-endian header read as little-endian would give version 0x02000000."""
    m = build_md(tmp_path / "be", ">")
    kernel_le = write_kernel(tmp_path / "kle", "<", {})
    with pytest.raises(FormatError) as ei:
        pykvm.open2(str(kernel_le), str(m.core), 0, pykvm.symtab_resolver(kernel_le))
    assert str(ei.value) == "wrong minidump version. Expected 2 got 33554432"


# -- full dumps ---------------------------------------------------------------------
SEG_A = (0x80000000, 0x200000)
SEG_B = (0x90000000, 0x10000)
SEG_C = (0x98000000, 0x1000)
SEG_D = (0x81000000, 0x2000)
SEG_E = (0x81100000, 0x1000)
SEG_G = (0x88000000, 0x1000)  # last in the file, and cut off the file
L1PA = 0x80004000
L2PA = 0x80008000
SUPERSEC = 1 << 18


def full_phys(endian: str, l1pa_value: int = L1PA,
              extra: tuple[tuple[int, int], ...] = ()) -> Phys:
    p = Phys(endian, [SEG_A, SEG_B, SEG_C, SEG_D, SEG_E, *extra, SEG_G])
    p.w32(0x80001000, l1pa_value)    # kernel_l1pa (VA 0xc0001000)
    p.w32(0x80001004, 0x801FF000)    # a bad L1 address: 16 KiB run past segment A
    p.w32(0x80001008, 0x7F000000)    # an L1 address outside every segment
    l1 = {0xC00: 0x80000000 | 0xC00 | 0x2,   # 1 MiB section
          0xC01: L2PA | 0x1,                 # coarse table
          0xC02: 0x80100000 | 0x2,
          0xC03: 0x90000000 | 0x2,           # section over a 64 KiB segment
          0xC05: L2PA | 0x10,                # fault (type 0) whose other bits name a table
          0xC06: 0xA0000000 | 0x1,           # L2 table outside every segment
          0xC07: SEG_G[0] | 0x1,             # L2 table in the truncated segment
          0xC08: 0xA0000000 | 0x2}           # section outside every segment
    for k in range(16):
        l1[0xC10 + k] = 0x81000000 | SUPERSEC | 0x2                  # 16 MiB supersection
        l1[0xC20 + k] = 0x82000000 | (1 << 20) | SUPERSEC | 0x2      # above 4 GiB
    for idx, pd in l1.items():
        p.w32(L1PA + idx * 4, pd)
    for i in range(4096):
        if i not in l1:
            p.w32(L1PA + i * 4, 0)
    l2 = {0: 0x80180000 | 0x2,
          1: 0x80181000 | 0x3,               # small page with XN
          3: 0x80183000 | 0x30,              # fault with stray bits
          4: 0xA0000000 | 0x2,               # outside every segment
          5: 0x801FF000 | 0x2}
    for k in range(16):
        l2[16 + k] = 0x80190000 | 0x1        # 64 KiB large page
        l2[48 + k] = SEG_C[0] | 0x1          # 64 KiB page over a 4 KiB segment
    for i in range(256):
        p.w32(L2PA + i * 4, l2.get(i, 0))
    return p


@dataclass
class Full:
    kernel: Path
    core: Path
    endian: str
    phys: Phys


def build_full(d: Path, endian: str, *, delta: tuple[int, int] | None = None,
               symbols: dict[str, int] | None = None, l1pa_value: int = L1PA,
               extra: tuple[tuple[int, int], ...] = (), **kw: object) -> Full:
    d.mkdir(parents=True, exist_ok=True)
    phys = full_phys(endian, l1pa_value, extra)
    if symbols is None:
        symbols = {"kernbase": KB, "physaddr": 0x80000000, "kernel_l1pa": KB + 0x1000}
    kernel = write_kernel(d / "kernel", endian, symbols)
    core = write_core(d / "vmcore", endian, phys, delta=delta, truncate_last=True,
                      **kw)  # type: ignore[arg-type]
    return Full(kernel, core, endian, phys)


def open_full(f: Full, resolver: pykvm.kvm.Resolver | None = None) -> pykvm.Kvm:
    return pykvm.open2(str(f.kernel), str(f.core), 0,
                       resolver or pykvm.symtab_resolver(f.kernel))


@pytest.fixture(scope="module", params=[(e, dl) for e in ENDIANS for dl in (False, True)],
                ids=lambda p: EID[p[0]] + ("-delta" if p[1] else "-symbols"))
def full(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Full:
    endian, with_delta = request.param
    d = tmp_path_factory.mktemp("full")
    if with_delta:
        return build_full(d, endian, delta=(KB, 0x80000000),
                          symbols={"kernel_l1pa": KB + 0x1000})
    return build_full(d, endian)


def test_full_selected_and_described(full: Full) -> None:
    with open_full(full) as kd:
        assert isinstance(kd.backend, ArmElfCore)
        info = kd.info()
        assert (info.arch, info.fmt, info.version) == ("arm", "elf", None)
        assert info.pages == sum(s[1] for s in (SEG_A, SEG_B, SEG_C, SEG_D, SEG_E, SEG_G)) // PAGE
        assert kd.kerndisp() == 0
        assert list(kd.walk_pages()) == []
        assert kd.walk_pages_cb(lambda p: 1) == 0
        assert kd.msgbuf() == b""


def test_full_sections(full: Full) -> None:
    p = full.phys
    with open_full(full) as kd:
        assert kd.read(KB + 0x100, 64) == p.read(0x80000100, 64)
        assert kd.read(KB + 0x1000, 4) == struct.pack(full.endian + "I", L1PA)
        assert kd.read(0xC0212345, 100) == p.read(0x80112345, 100)
        assert kd.read(0xC0200000, 0x100000) == p.read(0x80100000, 0x100000)
        # from the end of a section into the coarse table's first page
        assert kd.read(0xC00FFFF0, 32) == p.read(0x800FFFF0, 16) + p.read(0x80180000, 16)
        assert kd.backend is not None
        off, n = kd.backend.kvatop(0xC0200000)
        assert n == 0x100000
        off2, n2 = kd.backend.kvatop(0xC0280010)
        assert (off2 - off, n2) == (0x80010, 0x80000 - 0x10)


def test_full_section_clamped_to_segment(full: Full) -> None:
    with open_full(full) as kd:
        assert kd.backend is not None
        assert kd.backend.kvatop(0xC0300000)[1] == 0x10000  # libkvm: 0x100000
        assert kd.read(0xC030FFF0, 16) == full.phys.read(0x9000FFF0, 16)
        with pytest.raises(FaultError):
            kd.read2(0xC030FFF8, 16)  # segment C follows B in the file


def test_full_coarse_small_and_large_pages(full: Full) -> None:
    p = full.phys
    with open_full(full) as kd:
        assert kd.read(0xC0100010, 8) == p.read(0x80180010, 8)
        assert kd.read(0xC0101000, PAGE) == p.read(0x80181000, PAGE)
        assert kd.read(0xC0105ABC, 16) == p.read(0x801FFABC, 16)
        assert kd.read(0xC0110000, 0x10000) == p.read(0x80190000, 0x10000)
        assert kd.read(0xC011FFF0, 16) == p.read(0x8019FFF0, 16)
        assert kd.backend is not None
        assert kd.backend.kvatop(0xC0110000)[1] == 0x10000
        assert kd.backend.kvatop(0xC0118000)[1] == 0x8000
        assert kd.backend.kvatop(0xC0105ABC)[1] == PAGE - 0xABC
        # a 64 KiB page over a 4 KiB segment is clamped to the segment
        assert kd.backend.kvatop(0xC0130000)[1] == PAGE
        assert kd.read(0xC0130FF8, 8) == p.read(SEG_C[0] + 0xFF8, 8)
        with pytest.raises(FaultError):
            kd.read2(0xC0130FF8, 16)


def test_full_supersections(full: Full) -> None:
    p = full.phys
    with open_full(full) as kd:
        assert kd.read(0xC1000010, 16) == p.read(0x81000010, 16)
        assert kd.read(0xC1001FF0, 16) == p.read(0x81001FF0, 16)
        # 1 MiB into the supersection: physical 0x81100000 (libkvm: 0x81000000)
        assert kd.read(0xC1100020, 16) == p.read(0x81100020, 16)
        assert kd.backend is not None
        assert kd.backend.kvatop(0xC1000000)[1] == SEG_D[1]


@pytest.mark.parametrize(("va", "chain"), [
    (0xD0000000, ("Invalid address (d0000000)",)),            # L1 entry 0
    (0xC0500000, ("Invalid address (c0500000)",)),            # L1 fault with stray bits
    (0xC0600010, ("Invalid address (c0600010)",)),            # L2 table outside segments
    (0xC0700000, ("_arm_kvatop: pread: No error: 0", "Invalid address (c0700000)")),
    (0xC0102000, ("Invalid address (c0102000)",)),            # L2 entry 0
    (0xC0103004, ("Invalid address (c0103004)",)),            # L2 fault with stray bits
    (0x100000000, ("Invalid address (100000000)",)),          # beyond 32 bits
])
def test_full_invalid_messages(full: Full, va: int, chain: tuple[str, ...]) -> None:
    with open_full(full) as kd:
        with pytest.raises(FaultError) as ei:
            kd.read2(va, 4)
        assert ei.value.chain == chain
        assert str(ei.value) == chain[-1]
        assert kd.geterr() == chain[-1]
        assert ei.value.address == va


@pytest.mark.parametrize("va", [0xC0800000, 0xC0104000, 0xC2000000, 0xC0130FF8 + 8,
                                0xC0310000])
def test_full_silent_failures(full: Full, va: int) -> None:
    """A physical address outside every segment fails with no message (errbuf unchanged)."""
    with open_full(full) as kd:
        with pytest.raises(FaultError):
            kd.read2(0xD0000000, 1)
        assert kd.geterr() == "Invalid address (d0000000)"
        with pytest.raises(FaultError) as ei:
            kd.read2(va, 4)
        assert ei.value.address == va
        assert kd._chain == []
        assert kd.geterr() == "Invalid address (d0000000)"
        assert kd.backend is not None
        assert kd.backend.kvatop(va) == (0, 0)


def test_full_resolver_use(tmp_path: Path) -> None:
    """With PT_DUMP_DELTA only kernel_l1pa is looked up (api.md 4.9)."""
    for delta, names in (((KB, 0x80000000), ["kernel_l1pa"]),
                         (None, ["kernbase", "physaddr", "kernel_l1pa"])):
        f = build_full(tmp_path / str(bool(delta)), "<", delta=delta)
        asked: list[str] = []
        base = pykvm.symtab_resolver(f.kernel)

        def resolver(name: str, base: pykvm.kvm.Resolver = base,
                     asked: list[str] = asked) -> int | None | tuple[int, int]:
            asked.append(name)
            return base(name)

        with open_full(f, resolver):
            pass
        assert asked == names


@pytest.mark.parametrize("endian", ENDIANS, ids=lambda e: EID[e])
def test_full_delta_wins_over_symbols(tmp_path: Path, endian: str) -> None:
    wrong = {"kernbase": KB, "physaddr": 0x70000000, "kernel_l1pa": KB + 0x1000}
    f = build_full(tmp_path / "nodelta", endian, symbols=wrong)
    with pytest.raises(FormatError) as ei:
        open_full(f)
    assert str(ei.value) == "cannot read kernel_l1pa"
    # KERNVIRTADDR need not be KERNBASE: kernel_l1pa - p_vaddr + p_paddr
    f = build_full(tmp_path / "delta", endian, symbols=wrong, delta=(KB + 0x100000, 0x80100000))
    with open_full(f) as kd:
        assert kd.read(0xC0200000, 16) == f.phys.read(0x80100000, 16)


def full_open_error(f: Full) -> str:
    with pytest.raises(FormatError) as ei:
        open_full(f)
    return str(ei.value)


@pytest.mark.parametrize("endian", ENDIANS, ids=lambda e: EID[e])
def test_full_open_errors(tmp_path: Path, endian: str,
                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(armmod, "host_machine", lambda: "x86_64")
    base = {"kernbase": KB, "physaddr": 0x80000000, "kernel_l1pa": KB + 0x1000}

    def without(name: str) -> dict[str, int]:
        return {k: v for k, v in base.items() if k != name}

    assert full_open_error(build_full(tmp_path / "a", endian, symbols=without("kernbase"))) \
        == "cannot resolve kernbase"
    assert full_open_error(build_full(tmp_path / "b", endian, symbols=without("physaddr"))) \
        == "couldn't get phys addr"
    assert full_open_error(build_full(tmp_path / "c", endian,
                                      symbols=without("kernel_l1pa"))) == "bad namelist"
    assert full_open_error(build_full(tmp_path / "d", endian,
                                      symbols={**base, "kernel_l1pa": KB + 0xF00000})) \
        == "cannot read kernel_l1pa"
    assert full_open_error(build_full(tmp_path / "e", endian,
                                      symbols={**base, "kernel_l1pa": KB + 0x1004})) \
        == "cannot read l1pt"
    assert full_open_error(build_full(tmp_path / "f", endian,
                                      symbols={**base, "kernel_l1pa": KB + 0x1008})) \
        == "cannot read l1pt"
    assert full_open_error(build_full(tmp_path / "g", endian, machine=EM_386)) == "invalid core"
    f = build_full(tmp_path / "h", endian)
    f.core.write_bytes(f.core.read_bytes()[:10])
    assert full_open_error(f) == "invalid core"
    # an ELF64 core for an ELF32 kernel
    raw = bytearray(build_full(tmp_path / "i", endian).core.read_bytes())
    raw[4] = 2
    f.core.write_bytes(bytes(raw))
    assert full_open_error(f) == "invalid core"


def test_full_kernbase_fallback_on_arm_host(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """libkvm built for arm uses its compiled KERNBASE when the symbol is missing."""
    monkeypatch.setattr(armmod, "host_machine", lambda: "armv7l")
    f = build_full(tmp_path, "<", symbols={"physaddr": 0x80000000, "kernel_l1pa": KB + 0x1000})
    with open_full(f) as kd:
        assert kd.read(KB + 0x100, 8) == f.phys.read(0x80000100, 8)


def test_full_raw_dump_refused() -> None:
    class Stub:
        program = None
        rawdump = True

    with pytest.raises(FormatError) as ei:
        ArmElfCore(Stub()).initvtop()  # type: ignore[arg-type]
    assert str(ei.value) == "raw dumps not supported on arm"


def test_full_kernel_l1pa_in_kernel_byte_order(tmp_path: Path) -> None:
    """formats.md 14 row 5: a big-endian kernel's kernel_l1pa is big-endian."""
    f = build_full(tmp_path, ">")
    with open_full(f) as kd:
        assert kd.backend is not None
        assert kd.backend.l1pa == L1PA  # type: ignore[attr-defined]


# -- kernel_l1pa holding the L1 table's virtual address (pmap-v6) -------------------
L1VA = KB + (L1PA - 0x80000000)  # KERNEL_P2V(L1PA) with KERNBASE at 0x80000000
SEG_HIGH = (0xC0000000, 0x10000)  # RAM at a physical address that is also a KVA


def build_l1_case(d: Path, endian: str, value: int, *,
                  delta: tuple[int, int] | None = (KB, 0x80000000),
                  extra: tuple[tuple[int, int], ...] = (),
                  copy_to: int | None = None) -> Full:
    """The full-dump scenario with ``kernel_l1pa`` = ``value``; ``copy_to``: a copy of
    the L1 table at that physical address whose entry 0xC02 maps another section."""
    d.mkdir(parents=True, exist_ok=True)
    phys = full_phys(endian, value, extra)
    if copy_to is not None:
        phys.write(copy_to, phys.read(L1PA, 0x4000))
        phys.w32(copy_to + 0xC02 * 4, 0x80000000 | 0x2)
    symbols = {"kernel_l1pa": KB + 0x1000}
    if delta is None:
        symbols.update(kernbase=KB, physaddr=0x80000000)
    kernel = write_kernel(d / "kernel", endian, symbols)
    core = write_core(d / "vmcore", endian, phys, delta=delta, truncate_last=True)
    return Full(kernel, core, endian, phys)


@pytest.mark.parametrize("delta", [(KB, 0x80000000), None], ids=["delta", "symbols"])
@pytest.mark.parametrize("endian", ENDIANS, ids=lambda e: EID[e])
def test_full_kernel_l1pa_virtual(tmp_path: Path, endian: str,
                                  delta: tuple[int, int] | None) -> None:
    """pmap-v6 stores kernel_l1pa = (vm_paddr_t)kern_pt1, a KVA: moved by the delta."""
    f = build_l1_case(tmp_path, endian, L1VA, delta=delta)
    p = f.phys
    with open_full(f) as kd:
        assert kd.backend is not None
        assert kd.backend.kernel_l1pa == L1VA  # type: ignore[attr-defined]
        assert kd.backend.l1pa == L1PA  # type: ignore[attr-defined]
        assert kd.read(KB + 0x100, 64) == p.read(0x80000100, 64)
        assert kd.read(0xC0200000, 16) == p.read(0x80100000, 16)
        assert kd.read(0xC0110000, 64) == p.read(0x80190000, 64)
        assert kd.read(0xC1000010, 16) == p.read(0x81000010, 16)
        with pytest.raises(FaultError) as ei:
            kd.read2(0xD0000000, 4)
        assert str(ei.value) == "Invalid address (d0000000)"


@pytest.mark.parametrize("endian", ENDIANS, ids=lambda e: EID[e])
def test_full_kernel_l1pa_virtual_kernvirtaddr(tmp_path: Path, endian: str) -> None:
    """PT_DUMP_DELTA names KERNVIRTADDR (here KERNBASE + 1 MiB): the same delta applies."""
    f = build_l1_case(tmp_path, endian, L1VA, delta=(KB + 0x100000, 0x80100000))
    with open_full(f) as kd:
        assert kd.backend is not None
        assert kd.backend.l1pa == L1PA  # type: ignore[attr-defined]
        assert kd.read(0xC0212345, 16) == f.phys.read(0x80112345, 16)


@pytest.mark.parametrize("endian", ENDIANS, ids=lambda e: EID[e])
def test_full_kernel_l1pa_virtual_also_ram(tmp_path: Path, endian: str) -> None:
    """A KVA that is also a RAM address: the table that maps kernel_l1pa where it was
    read wins (the RAM at 0xc0004000 holds no valid descriptors here)."""
    f = build_l1_case(tmp_path, endian, L1VA, extra=(SEG_HIGH,))
    with open_full(f) as kd:
        assert kd.backend is not None
        assert kd.backend.l1pa == L1PA  # type: ignore[attr-defined]
        assert kd.read(0xC0200000, 16) == f.phys.read(0x80100000, 16)


@pytest.mark.parametrize("endian", ENDIANS, ids=lambda e: EID[e])
def test_full_kernel_l1pa_physical_at_kva(tmp_path: Path, endian: str) -> None:
    """A physical L1 address at or above kernbase (RAM at 0xc0000000, v4 pmap): the
    value as is, when the table moved by the delta does not map the kernel."""
    f = build_l1_case(tmp_path, endian, 0xC0008000, extra=(SEG_HIGH,), copy_to=0xC0008000)
    with open_full(f) as kd:
        assert kd.backend is not None
        assert kd.backend.l1pa == 0xC0008000  # type: ignore[attr-defined]
        assert kd.read(0xC0200000, 16) == f.phys.read(0x80000000, 16)  # the copy's 0xC02


@pytest.mark.parametrize("endian", ENDIANS, ids=lambda e: EID[e])
def test_full_kernel_l1pa_both_fit(tmp_path: Path, endian: str) -> None:
    """Both readings give a table that maps the kernel: libkvm's (physical) is kept."""
    f = build_l1_case(tmp_path, endian, L1VA, extra=(SEG_HIGH,), copy_to=L1VA)
    with open_full(f) as kd:
        assert kd.backend is not None
        assert kd.backend.l1pa == L1VA  # type: ignore[attr-defined]
        assert kd.read(0xC0200000, 16) == f.phys.read(0x80000000, 16)


@pytest.mark.parametrize("endian", ENDIANS, ids=lambda e: EID[e])
def test_full_kernel_l1pa_virtual_unreadable(tmp_path: Path, endian: str) -> None:
    """Neither reading lies in the dump: libkvm's text."""
    # KB + 0x1FF000 -> 0x801FF000: 16 KiB run past segment A; 0xc01ff000 is no RAM
    f = build_l1_case(tmp_path, endian, KB + 0x1FF000)
    assert full_open_error(f) == "cannot read l1pt"
    f = build_l1_case(tmp_path / "hi", endian, 0xF0000000, extra=(SEG_HIGH,))
    assert full_open_error(f) == "cannot read l1pt"


# -- native() -----------------------------------------------------------------------
@pytest.mark.parametrize(("machine", "order", "endian", "native"), [
    ("x86_64", "little", "<", False), ("aarch64", "little", "<", False),
    ("arm64", "little", "<", False), ("armv7l", "little", "<", True),
    ("armv6l", "little", "<", True), ("armv7l", "little", ">", False),
    ("armv7b", "big", ">", True), ("armeb", "big", "<", False),
    ("arm", "little", "<", True), ("i386", "little", "<", False),
])
def test_native(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, machine: str, order: str,
                endian: str, native: bool) -> None:
    m = build_md(tmp_path / "md", endian)
    f = build_full(tmp_path / "full", endian)
    with open_mini(m) as kd1, open_full(f) as kd2:
        monkeypatch.setattr(armmod, "host_machine", lambda: machine)
        monkeypatch.setattr(sys, "byteorder", order)
        assert kd1.native() is native
        assert kd2.native() is native


def test_probes() -> None:
    from pykvm.image.elf import Ehdr
    eh = Ehdr(1, 1, 1, 9, 2, EM_ARM, 1, 0, 0, 0, 0, 52, 32, 0, 40, 0, 0)
    assert ArmMinidump.probe(eh, True) and not ArmMinidump.probe(eh, False)
    assert ArmElfCore.probe(eh, False) and not ArmElfCore.probe(eh, True)
    for bad in (Ehdr(2, 1, 1, 9, 2, EM_ARM, 1, 0, 0, 0, 0, 52, 32, 0, 40, 0, 0),
                Ehdr(1, 1, 1, 9, 3, EM_ARM, 1, 0, 0, 0, 0, 52, 32, 0, 40, 0, 0),
                Ehdr(1, 1, 1, 9, 2, EM_386, 1, 0, 0, 0, 0, 52, 32, 0, 40, 0, 0)):
        assert not ArmMinidump.probe(bad, True) and not ArmElfCore.probe(bad, False)


# -- hostile input ----------------------------------------------------------------------
TIME_BOUND = 5.0


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, bytes]]:
    out = {}
    for e in ENDIANS:
        m = build_md(tmp_path_factory.mktemp("tmd"), e)
        out["md" + e] = (m.kernel, m.core.read_bytes())
        m1 = build_md(tmp_path_factory.mktemp("tmd4"), e, mmuformat=1)
        out["md4" + e] = (m1.kernel, m1.core.read_bytes())
        # a small full dump: only segment A's first 64 KiB plus tables
        d = tmp_path_factory.mktemp("tfull")
        p = Phys(e, [(0x80000000, 0x10000)])
        p.w32(0x80001000, L1PA)
        for i in range(4096):
            p.w32(L1PA + i * 4, 0)
        p.w32(L1PA + 0xC00 * 4, 0x80000000 | 2)
        p.w32(L1PA + 0xC01 * 4, L2PA | 1)
        for i in range(256):
            p.w32(L2PA + i * 4, (0x80000000 + i * PAGE) | (1 if 16 <= i < 32 else 2)
                  if i < 48 else 0)
        k = write_kernel(d / "kernel", e, {"kernel_l1pa": KB + 0x1000})
        c = write_core(d / "vmcore", e, p, delta=(KB, 0x80000000))
        out["full" + e] = (k, c.read_bytes())
    return out


PROBE_VAS = [KB, KB + 0x10, KB + PAGE, KB + 16 * PAGE, KB + 40 * PAGE, 0xC0100000,
             0xC0110000, 0xC0120000, KB - PAGE, 0xFFFFF000]


def exercise(kernel: Path, core: Path) -> None:
    t0 = time.monotonic()
    try:
        with pykvm.open2(str(kernel), str(core), 0, pykvm.symtab_resolver(kernel)) as kd:
            for va in PROBE_VAS:
                try:
                    got = kd.read2(va, 64)
                    assert len(got) <= 64
                except FaultError:
                    pass
            try:
                kd.read2(KB, 3 * PAGE)
            except FaultError:
                pass
            for _i, _p in zip(range(20000), kd.walk_pages(), strict=False):
                pass
            kd.info()
            kd.msgbuf()
    except KvmError as exc:
        assert str(exc) or exc.chain
    assert time.monotonic() - t0 < TIME_BOUND


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_hostile_cores(tiny: dict[str, tuple[Path, bytes]],
                       tmp_path_factory: pytest.TempPathFactory, data: st.DataObject) -> None:
    kernel, good = tiny[data.draw(st.sampled_from(sorted(tiny)))]
    raw = bytearray(good)
    action = data.draw(st.sampled_from(["truncate", "flip", "header", "tables"]))
    if action == "truncate":
        raw = raw[: data.draw(st.integers(0, len(raw)))]
    elif action == "flip":
        for _ in range(data.draw(st.integers(1, 16))):
            raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    elif action == "header":  # sizes, offsets, program headers
        for _ in range(data.draw(st.integers(1, 8))):
            raw[data.draw(st.integers(0, 255))] = data.draw(st.integers(0, 255))
    else:  # PTE section, L1/L2 tables
        for _ in range(data.draw(st.integers(1, 24))):
            raw[data.draw(st.integers(0, min(len(raw), 6 * PAGE) - 1))] = data.draw(
                st.integers(0, 255))
    core = tmp_path_factory.mktemp("hostile") / "vmcore"
    core.write_bytes(bytes(raw))
    exercise(kernel, core)
    assert core.read_bytes() == bytes(raw)
