"""mips minidumps: o32, n32 and n64 kernels, both byte orders (formats.md 9).

Every kernel and dump here is built byte by byte from the layouts of
formats.md 3 and 9 (sys/mips/include/minidump.h, minidump_machdep.c), never
with the reader's own code, and opened through the public API.
"""

from __future__ import annotations

import struct
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pykvm
from pykvm.arch import mips as mips_mod

PS = 4096
ABIS = ("o32", "n32", "n64")
ENDIANS = ("<", ">")
KERNBASE32 = 0xC0000000
KERNBASE64 = 0xC000000000000000
MB = 1 << 20
EM_MIPS = 8
EF_MIPS_ABI2 = 0x20

MD = "_mips_minidump_kvatop"


# --- builders (from the spec's byte layouts) ------------------------------------

def make_kernel(path: Path, *, abi: str, endian: str, e_type: int = 2,
                symbols: tuple[tuple[str, int], ...] = (("kernbase", KERNBASE32),)) -> Path:
    """A mips kernel ELF: header of the ABI's class and flags, .symtab, .strtab, .shstrtab."""
    is64 = abi == "n64"
    e = endian
    cls = 2 if is64 else 1
    data = 1 if endian == "<" else 2
    flags = EF_MIPS_ABI2 if abi == "n32" else 0
    ehsize, shentsize, symsize = (64, 64, 24) if is64 else (52, 40, 16)
    strtab = b"\0"
    syms = [b"\0" * symsize]
    for name, value in symbols:
        off = len(strtab)
        strtab += name.encode() + b"\0"
        if is64:
            syms.append(struct.pack(e + "IBBHQQ", off, 0x11, 0, 0xFFF1, value, 8))
        else:
            syms.append(struct.pack(e + "IIIBBH", off, value, 4, 0x11, 0, 0xFFF1))
    symtab = b"".join(syms)
    shstr = b"\0.symtab\0.strtab\0.shstrtab\0"
    sym_off = ehsize
    str_off = sym_off + len(symtab)
    shs_off = str_off + len(strtab)
    sh_off = (shs_off + len(shstr) + 7) & ~7
    if is64:
        shfmt = e + "IIQQQQIIQQ"
    else:
        shfmt = e + "IIIIIIIIII"
    shdrs = [
        struct.pack(shfmt, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0),
        struct.pack(shfmt, 1, 2, 0, 0, sym_off, len(symtab), 2, 1, 8 if is64 else 4, symsize),
        struct.pack(shfmt, 9, 3, 0, 0, str_off, len(strtab), 0, 0, 1, 0),
        struct.pack(shfmt, 17, 3, 0, 0, shs_off, len(shstr), 0, 0, 1, 0),
    ]
    ident = b"\x7fELF" + bytes([cls, data, 1, 9]) + b"\0" * 8
    if is64:
        hdr = ident + struct.pack(e + "HHIQQQIHHHHHH", e_type, EM_MIPS, 1, 0, 0, sh_off,
                                  flags, ehsize, 56, 0, shentsize, 4, 3)
    else:
        hdr = ident + struct.pack(e + "HHIIIIIHHHHHH", e_type, EM_MIPS, 1, 0, 0, sh_off,
                                  flags, ehsize, 32, 0, shentsize, 4, 3)
    blob = hdr + symtab + strtab + shstr
    blob += b"\0" * (sh_off - len(blob)) + b"".join(shdrs)
    path.write_bytes(blob)
    return path


def page_bytes(pa: int) -> bytes:
    """Recognisable contents of physical page ``pa``: (pa, index) pairs."""
    return b"".join(struct.pack(">QQ", pa, i) for i in range(PS // 16))


def round_page(n: int) -> int:
    return (n + PS - 1) // PS * PS


def bit_id(avail: list[tuple[int, int]], pa: int) -> int:
    """formats.md 3.2: the bit of the page holding ``pa`` (pa inside a range)."""
    adj = 0
    for s, e in avail:
        if pa < e:
            assert pa >= s
            return pa // PS - s // PS + adj
        adj += -(-e // PS) - s // PS
    raise AssertionError(f"pa {pa:#x} outside dump_avail")


def pte_of(abi: str, pa: int, ro: bool = False) -> int:
    """A kernel PTE for ``pa``: PFN in bits 6.., V (0x2), D (0x4) unless read-only."""
    pte = ((pa >> 12) << 6) | 0x2
    if ro:
        pte |= 1 << (29 if abi == "o32" else 55)
    else:
        pte |= 0x4
    return pte


@dataclass
class Dump:
    kernel: Path
    core: Path
    abi: str
    endian: str
    kernbase: int
    offsets: dict[int, int] = field(default_factory=dict)  # pa -> file offset
    sparse_off: int = 0


def make_dump(tmp: Path, *, abi: str, endian: str, ptes: dict[int, int],
              pages: list[int], avail: list[tuple[int, int]] | None = None,
              version: int = 2, msgbuf: bytes = b"mips msgbuf\n",
              bitmapsize: int = PS, pte_pages: int = 1, word_bits: int | None = None,
              kernbase: int | None = None, name: str = "") -> Dump:
    """A minidump laid out as formats.md 3.1 / 9.3 describe it."""
    is64 = abi == "n64"
    e = endian
    if kernbase is None:
        kernbase = KERNBASE64 if is64 else KERNBASE32
    if avail is None:
        avail = [(0, 16 * MB)]
    if version == 1:
        avail = [(0, bitmapsize * 8 * PS)]
    width = 4 if abi == "o32" else 8
    # version 2: a BITSET of long words; version 1 (FreeBSD <= 12): uint32_t words on every ABI
    w = word_bits or (64 if is64 and version == 2 else 32)
    # bitmap in kernel byte order
    words = [0] * (bitmapsize * 8 // w)
    ids = {pa: bit_id(avail, pa) for pa in pages}
    for b in ids.values():
        words[b // w] |= 1 << (b % w)
    bitmap = struct.pack(e + ("Q" if w == 64 else "I") * len(words), *words)
    ptesize = pte_pages * PS
    nptes = ptesize // width
    arr = [0] * nptes
    for i, v in ptes.items():
        arr[i] = v
    ptebytes = struct.pack(e + ("I" if width == 4 else "Q") * nptes, *arr)
    availbytes = b"".join(struct.pack(e + "QQ", s, en) for s, en in avail) + b"\0" * 16
    dumpavailsize = PS if version == 2 else 0
    hdr = struct.pack(e + "24sIIIIQQQI", b"minidump FreeBSD/mips", version, len(msgbuf),
                      bitmapsize, ptesize, kernbase, 0, 0, dumpavailsize)
    out = bytearray(hdr.ljust(PS, b"\0"))
    out += msgbuf.ljust(round_page(len(msgbuf)), b"\0")
    if version == 2:
        out += availbytes.ljust(PS, b"\0")
    out += bitmap.ljust(round_page(bitmapsize), b"\0")
    out += ptebytes.ljust(round_page(ptesize), b"\0")
    sparse_off = len(out)
    offsets = {}
    for pa in sorted(pages, key=lambda p: ids[p]):
        offsets[pa] = len(out)
        out += page_bytes(pa)
    tag = name or f"{abi}{'le' if endian == '<' else 'be'}"
    kernel = make_kernel(tmp / f"kernel.{tag}", abi=abi, endian=endian,
                         symbols=(("kernbase", kernbase), ("hz", kernbase + 0x100)))
    core = tmp / f"vmcore.{tag}"
    core.write_bytes(bytes(out))
    return Dump(kernel, core, abi, endian, kernbase, offsets, sparse_off)


# The standard layout used by most tests (formats.md 9.6):
#   dump_avail [0, 8 MiB) and [16 MiB, 24 MiB) with a hole between them.
#   PTE 0 -> 0x400000 (rw), PTE 1 -> 0x1002000 (ro, second range), PTE 2 invalid,
#   PTE 3 -> 0x500000 (valid, page not dumped), PTE 4 -> 0x900000 (in the hole),
#   PTE 5 -> 0x401000 (rw) so that PTE 0..1 and 5 give cross-page reads.
#   Low pages 0x1000 and 0x3000 are dumped (reached through KSEG0/KSEG1/XKPHYS).
AVAIL = [(0, 8 * MB), (16 * MB, 24 * MB)]
PAGES = [0x1000, 0x3000, 0x400000, 0x401000, 0x1002000]


def std_ptes(abi: str) -> dict[int, int]:
    return {0: pte_of(abi, 0x400000), 1: pte_of(abi, 0x1002000, ro=True),
            2: 0x4 | (0x123 << 6),  # frame and dirty but no V
            3: pte_of(abi, 0x500000), 4: pte_of(abi, 0x900000), 5: pte_of(abi, 0x401000)}


def std_dump(tmp: Path, abi: str, endian: str, **kw: object) -> Dump:
    return make_dump(tmp, abi=abi, endian=endian, ptes=std_ptes(abi), pages=PAGES,
                     avail=AVAIL, **kw)  # type: ignore[arg-type]


def kseg0(abi: str) -> int:
    return 0xFFFFFFFF80000000 if abi == "n64" else 0x80000000


def kseg1(abi: str) -> int:
    return 0xFFFFFFFFA0000000 if abi == "n64" else 0xA0000000


def open_dump(d: Dump) -> pykvm.Kvm:
    return pykvm.open2(str(d.kernel), str(d.core), 0, pykvm.symtab_resolver(str(d.kernel)))


def fault(kd: pykvm.Kvm, va: int, size: int = 8) -> pykvm.FaultError:
    with pytest.raises(pykvm.FaultError) as ei:
        kd.read2(va, size)
    return ei.value


ABI_ENDIAN = [(a, e) for a in ABIS for e in ENDIANS]
IDS = [f"{a}-{'le' if e == '<' else 'be'}" for a, e in ABI_ENDIAN]


# --- reading ----------------------------------------------------------------------

@pytest.mark.parametrize(("abi", "endian"), ABI_ENDIAN, ids=IDS)
def test_mapped_kernel_addresses(tmp_path: Path, abi: str, endian: str) -> None:
    d = std_dump(tmp_path, abi, endian)
    kb = d.kernbase
    with open_dump(d) as kd:
        assert kd.read2(kb, 16) == page_bytes(0x400000)[:16]
        assert kd.read2(kb + 0x123, 40) == page_bytes(0x400000)[0x123:0x123 + 40]
        assert kd.read2(kb + 0x1000, PS) == page_bytes(0x1002000)
        assert kd.read2(kb + 0x5FF0, 16) == page_bytes(0x401000)[-16:]
        # across a page boundary: two PTEs, two physical pages far apart
        assert kd.read2(kb + 0xFF8, 16) == page_bytes(0x400000)[-8:] + page_bytes(0x1002000)[:8]
        # again, now through the translation cache
        assert kd.read2(kb + 0xFF8, 16) == page_bytes(0x400000)[-8:] + page_bytes(0x1002000)[:8]
        info = kd.info()
        assert (info.arch, info.fmt, info.version, info.page_size, info.pages) == \
            ("mips", "minidump", 2, PS, len(PAGES))
        assert kd.msgbuf() == b"mips msgbuf\n"
        assert kd.kerndisp() == 0
        assert kd.nlist2(["hz"])["hz"].value == kb + 0x100


@pytest.mark.parametrize(("abi", "endian"), ABI_ENDIAN, ids=IDS)
def test_direct_segments(tmp_path: Path, abi: str, endian: str) -> None:
    d = std_dump(tmp_path, abi, endian)
    with open_dump(d) as kd:
        for base in (kseg0(abi), kseg1(abi)):
            assert kd.read2(base + 0x1000, PS) == page_bytes(0x1000)
            assert kd.read2(base + 0x3010, 16) == page_bytes(0x3000)[0x10:0x20]
            # KSEG windows reach up to 512 MiB of physical memory
            assert kd.read2(base + 16 * MB + 0x2000, 8) == page_bytes(0x1002000)[:8]
        if abi == "n64":
            for cca in (2, 3, 5):  # uncached, cached, cached-coherent XKPHYS windows
                xk = (2 << 62) | (cca << 59)
                assert kd.read2(xk + 0x1000, 32) == page_bytes(0x1000)[:32]
                assert kd.read2(xk + 0x400000, 8) == page_bytes(0x400000)[:8]
            # XKPHYS keeps 40 bits of physical address (MIPS_XKPHYS_PHYS_MASK)
            assert kd.read2(0x8000FF0000001000, 8) == page_bytes(0x1000)[:8]


@pytest.mark.parametrize(("abi", "endian"), ABI_ENDIAN, ids=IDS)
def test_file_offsets(tmp_path: Path, abi: str, endian: str) -> None:
    """Page data sits in ascending bit order after the rounded sections (formats.md 3.1)."""
    d = std_dump(tmp_path, abi, endian)
    with open_dump(d) as kd:
        backend = kd.backend
        assert backend is not None
        for pa, off in d.offsets.items():
            assert backend.kvatop(kseg0(abi) + pa + 5) == (off + 5, PS - 5)
        assert backend.kvatop(d.kernbase + 0x1008) == (d.offsets[0x1002000] + 8, PS - 8)
        assert d.offsets[0x1000] == d.sparse_off


# --- messages ---------------------------------------------------------------------

@pytest.mark.parametrize(("abi", "endian"), ABI_ENDIAN, ids=IDS)
def test_hole_messages(tmp_path: Path, abi: str, endian: str) -> None:
    d = std_dump(tmp_path, abi, endian)
    kb = d.kernbase
    with open_dump(d) as kd:
        # invalid PTE: the page-aligned address is printed, not the one asked for
        f = fault(kd, kb + 0x2345)
        assert f.chain == (f"{MD}: pte not valid", f"invalid address (0x{kb + 0x2000:x})")
        assert str(f) == kd.geterr() == f"invalid address (0x{kb + 0x2000:x})"
        assert f.address == kb + 0x2345  # the chunk that failed, as the read loop saw it
        # valid PTE to a page that was not dumped
        f = fault(kd, kb + 0x3FFF, 1)
        assert f.chain == (f"{MD}: physical address 0x500000 not in minidump",
                           f"invalid address (0x{kb + 0x3000:x})")
        # valid PTE into the hole between the dump_avail ranges
        f = fault(kd, kb + 0x4010)
        assert f.chain == (f"{MD}: physical address 0x900000 not in minidump",
                           f"invalid address (0x{kb + 0x4000:x})")
        # beyond the PTE array: only the soft message
        nptes = PS // (4 if abi == "o32" else 8)
        va = kb + nptes * PS
        f = fault(kd, va + 0x10)
        assert f.chain == (f"invalid address (0x{va:x})",)
        # a direct-segment page that was not dumped
        f = fault(kd, kseg0(abi) + 0x2468)
        assert f.chain == (f"{MD}: physical address 0x2000 not in minidump",
                           f"invalid address (0x{kseg0(abi) + 0x2000:x})")
        f = fault(kd, kseg1(abi) + 0x1FFFFFF8)  # last page of KSEG1
        assert f.chain == (f"{MD}: physical address 0x1ffff000 not in minidump",
                           f"invalid address (0x{kseg1(abi) + 0x1FFFF000:x})")
        # below kernbase, in no direct segment: the hard text alone, page-aligned
        f = fault(kd, 0x400123)
        text = f"{MD}: virtual address 0x400000 not minidumped"
        assert f.chain == (text,)
        assert str(f) == kd.geterr() == text
        # a read that starts well and fails on its second page
        f = fault(kd, kb + 0x1FF0, 0x20)
        assert f.chain == (f"{MD}: pte not valid", f"invalid address (0x{kb + 0x2000:x})")
        assert f.address == kb + 0x2000


def test_segment_choice_follows_the_kernel_class(tmp_path: Path) -> None:
    """32-bit KSEG addresses mean nothing to an n64 kernel, and 64-bit ones to o32/n32."""
    d64 = std_dump(tmp_path, "n64", ">")
    with open_dump(d64) as kd:
        f = fault(kd, 0x80001000)
        assert f.chain == (f"{MD}: virtual address 0x80001000 not minidumped",)
        f = fault(kd, 0xA0001000)
        assert f.chain == (f"{MD}: virtual address 0xa0001000 not minidumped",)
        f = fault(kd, 0x0000000100000000)
        assert f.chain == (f"{MD}: virtual address 0x100000000 not minidumped",)
    for abi in ("o32", "n32"):
        d = std_dump(tmp_path, abi, ">")
        with open_dump(d) as kd:
            # above kernbase: taken as an index into the PTE array, far past its end
            for va in (0xFFFFFFFF80001000, 0x9800000000001000):
                f = fault(kd, va)
                assert f.chain == (f"invalid address (0x{va:x})",)


def test_kvm_open_prints_hard_messages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    """With a program name, hard texts go to stderr and only the soft one is stored."""
    d = std_dump(tmp_path, "o32", "<")
    monkeypatch.setattr(mips_mod, "host_mips_abi", lambda: "o32")
    monkeypatch.setattr(sys, "byteorder", "little")
    kd = pykvm.open(str(d.kernel), str(d.core), None, 0, "prog")
    with kd:
        assert kd.native()
        fault(kd, KERNBASE32 + 0x2004)
        assert capsys.readouterr().err == f"prog: {MD}: pte not valid\n"
        assert kd.geterr() == "invalid address (0xc0002000)"
        fault(kd, 0x1234)
        assert capsys.readouterr().err == f"prog: {MD}: virtual address 0x1000 not minidumped\n"
        assert kd.geterr() == "invalid address (0xc0002000)"  # nothing new stored


def test_o32_frame_is_not_truncated(tmp_path: Path) -> None:
    """An o32 PTE frame above 4 GiB names that address (libkvm would cut it to 32 bits)."""
    ptes = {0: pte_of("o32", 0x400000), 1: (0x7FFFFF << 6) | 0x6, 2: (0x100001 << 6) | 0x6}
    d = make_dump(tmp_path, abi="o32", endian=">", ptes=ptes, pages=[0x400000, 0x1000])
    with open_dump(d) as kd:
        f = fault(kd, KERNBASE32 + 0x1000)
        assert f.chain[0] == f"{MD}: physical address 0x7fffff000 not in minidump"
        f = fault(kd, KERNBASE32 + 0x2000)
        assert f.chain[0] == f"{MD}: physical address 0x100001000 not in minidump"
        pages = list(kd.walk_pages())
        assert [p.paddr for p in pages] == [0x400000, 0x7FFFFF000, 0x100001000]


def test_pfn_masks(tmp_path: Path) -> None:
    """Bits outside the PFN field (software bits, cache attributes) do not reach the address."""
    junk32 = 0xE0000000 | 0x3F  # RO/W/MANAGED software bits, C, D, V, G
    junk64 = (0x1FF << 55) | (0xFFFFF << 34) | 0x3F
    d = make_dump(tmp_path, abi="o32", endian="<", ptes={0: pte_of("o32", 0x3000) | junk32},
                  pages=[0x3000], name="o32m")
    with open_dump(d) as kd:
        assert kd.read2(KERNBASE32, 8) == page_bytes(0x3000)[:8]
    for abi in ("n32", "n64"):
        d = make_dump(tmp_path, abi=abi, endian=">", ptes={0: pte_of(abi, 0x3000) | junk64},
                      pages=[0x3000], name=abi + "m")
        with open_dump(d) as kd:
            assert kd.read2(d.kernbase, 8) == page_bytes(0x3000)[:8]


# --- bitmaps ------------------------------------------------------------------------

@pytest.mark.parametrize("abi", ["o32", "n32"])
def test_big_endian_32bit_bitmap_words(tmp_path: Path, abi: str) -> None:
    """A BE 32-bit kernel's bitmap is 32-bit BE words (formats.md 3.3)."""
    pages = [0x1000, 0x9000, 0x21000, 0x3F000, 0x40000, 0x7F000]  # bits 1, 9, 33, 63, 64, 127
    d = make_dump(tmp_path, abi=abi, endian=">", ptes={}, pages=pages, name=abi + "w32")
    raw = d.core.read_bytes()
    bm = raw[2 * PS + PS: 2 * PS + PS + 16]  # header, msgbuf, dump_avail, bitmap
    # bit 1 lives in the last byte of the first 32-bit BE word, not the first byte
    assert bm[3] == 0x02 and bm[0] == 0
    with open_dump(d) as kd:
        for pa in pages:
            assert kd.read2(kseg0(abi) + pa, 16) == page_bytes(pa)[:16]
        assert kd.info().pages == len(pages)
        f = fault(kd, kseg0(abi) + 0x2000)
        assert f.chain[0] == f"{MD}: physical address 0x2000 not in minidump"


def test_big_endian_64bit_bitmap_words(tmp_path: Path) -> None:
    pages = [0x1000, 0x21000, 0x3F000, 0x40000]  # bits 1, 33, 63, 64
    d = make_dump(tmp_path, abi="n64", endian=">", ptes={}, pages=pages, name="w64")
    with open_dump(d) as kd:
        for pa in pages:
            assert kd.read2(kseg0("n64") + pa, 16) == page_bytes(pa)[:16]


def test_bitmap_with_the_wrong_word_size_is_misread(tmp_path: Path) -> None:
    """Written with 64-bit words, a BE o32 bitmap names other pages: the reader uses 32."""
    d = make_dump(tmp_path, abi="o32", endian=">", ptes={}, pages=[0x1000, 0x5000],
                  word_bits=64, name="wrongw")
    with open_dump(d) as kd:
        # 64-bit BE words put bit 1 in byte 7 = the last byte of the second 32-bit word:
        # read as 32-bit words that is bit 33, and bit 5 is bit 37
        assert kd.read2(0x80021000, 8) == page_bytes(0x1000)[:8]
        assert kd.read2(0x80025000, 8) == page_bytes(0x5000)[:8]
        fault(kd, 0x80001000)


@pytest.mark.parametrize("endian", ENDIANS)
def test_little_endian_equivalence_and_ranks(tmp_path: Path, endian: str) -> None:
    """Many pages across a rank boundary, both byte orders, n32 (64-bit PTEs, 32-bit words)."""
    pages = [(i * 7 + 1) * PS for i in range(700)]  # bits up to ~4900
    ptes = {i: pte_of("n32", pa) for i, pa in enumerate(pages[:512])}
    d = make_dump(tmp_path, abi="n32", endian=endian, ptes=ptes, pages=pages,
                  avail=[(0, 32 * MB)], name="rank" + endian.replace("<", "le").replace(">", "be"))
    with open_dump(d) as kd:
        for i in range(0, 512, 37):
            assert kd.read2(KERNBASE32 + i * PS + 8, 8) == page_bytes(pages[i])[8:16]
        for pa in pages[::50]:
            assert kd.read2(0xA0000000 + pa, 8) == page_bytes(pa)[:8]


# --- walk_pages ---------------------------------------------------------------------

@pytest.mark.parametrize(("abi", "endian"), ABI_ENDIAN, ids=IDS)
def test_walk_pages(tmp_path: Path, abi: str, endian: str) -> None:
    d = std_dump(tmp_path, abi, endian)
    kb = d.kernbase
    rwx, rx = 7, 5
    expect = [
        pykvm.KvmPage(2, 0x400000, kb, 0, rwx, d.offsets[0x400000], PS),
        pykvm.KvmPage(2, 0x1002000, kb + 0x1000, 0, rx, d.offsets[0x1002000], PS),
        pykvm.KvmPage(2, 0x500000, kb + 0x3000, 0, rwx, -1, PS),
        pykvm.KvmPage(2, 0x900000, kb + 0x4000, 0, rwx, -1, PS),
        pykvm.KvmPage(2, 0x401000, kb + 0x5000, 0, rwx, d.offsets[0x401000], PS),
    ]
    with open_dump(d) as kd:
        got = list(kd.walk_pages())
        assert got == expect
        for p in got:
            assert (p.version, p.dmap_vaddr, p.len) == (2, 0, PS)
        seen: list[pykvm.KvmPage] = []
        assert kd.walk_pages_cb(lambda p: seen.append(p) or len(seen) < 2) == 0
        assert seen == expect[:2]
        assert kd.walk_pages_cb(lambda p: 1) == 1


def test_walk_pages_last_entry_and_high_kernbase(tmp_path: Path) -> None:
    nptes = 2 * PS // 8
    ptes = {nptes - 1: pte_of("n64", 0x3000, ro=True)}
    d = make_dump(tmp_path, abi="n64", endian="<", ptes=ptes, pages=[0x3000], pte_pages=2,
                  kernbase=0xFFFFFFFFC0000000, name="wrap")
    with open_dump(d) as kd:
        va = 0xFFFFFFFFC0000000 + (nptes - 1) * PS
        assert list(kd.walk_pages()) == [pykvm.KvmPage(2, 0x3000, va, 0, 5, d.offsets[0x3000],
                                                       PS)]
        assert kd.read2(va, 8) == page_bytes(0x3000)[:8]


# --- versions and open errors -------------------------------------------------------

@pytest.mark.parametrize(("abi", "endian"), ABI_ENDIAN, ids=IDS)
def test_version_1(tmp_path: Path, abi: str, endian: str) -> None:
    """Version 1: no dump_avail; the bitmap covers physical memory from 0."""
    pages = [0x1000, 0x400000, 0x1002000]
    ptes = {0: pte_of(abi, 0x1002000), 1: pte_of(abi, 0x2000)}
    d = make_dump(tmp_path, abi=abi, endian=endian, ptes=ptes, pages=pages, version=1)
    with open_dump(d) as kd:
        assert kd.info().version == 1
        assert kd.read2(d.kernbase + 4, 8) == page_bytes(0x1002000)[4:12]
        assert kd.read2(kseg0(abi) + 0x400000, 8) == page_bytes(0x400000)[:8]
        f = fault(kd, d.kernbase + 0x1000)
        assert f.chain[0] == f"{MD}: physical address 0x2000 not in minidump"


def patch_core(d: Dump, offset: int, data: bytes) -> None:
    raw = bytearray(d.core.read_bytes())
    raw[offset:offset + len(data)] = data
    d.core.write_bytes(bytes(raw))


def open_error(d: Dump) -> pykvm.KvmError:
    with pytest.raises(pykvm.KvmError) as ei:
        open_dump(d)
    return ei.value


@pytest.mark.parametrize("endian", ENDIANS)
def test_open_errors(tmp_path: Path, endian: str) -> None:
    d = std_dump(tmp_path, "o32", endian)
    good = d.core.read_bytes()
    e = endian
    for version, shown in ((0, 0), (3, 3), (0xFFFFFFFF, -1), (0x80000000, -2147483648)):
        patch_core(d, 24, struct.pack(e + "I", version))
        err = open_error(d)
        assert isinstance(err, pykvm.FormatError)
        assert str(err) == f"wrong minidump version. Expected 2 got {shown}"
    # the version in the other byte order is another number
    patch_core(d, 24, struct.pack("<I" if e == ">" else ">I", 2))
    assert str(open_error(d)) == f"wrong minidump version. Expected 2 got {2 << 24}"
    d.core.write_bytes(good)
    for magic in (b"minidump FreeBSD/mipsel\0", b"minidump FreeBSD/amd64\0\0",
                  b"minidump FreeBSD/mip\0\0\0\0", b"minidump FreeBSD/mips" + b"x\0\0"):
        patch_core(d, 0, magic)
        assert str(open_error(d)) == "not a minidump for this platform"
    d.core.write_bytes(good[:71])
    assert str(open_error(d)) == "cannot read dump header"
    d.core.write_bytes(good[:72])  # header complete, bitmap missing
    assert str(open_error(d)) == "cannot read 4096 bytes for bitmap"
    d.core.write_bytes(good[: 4 * PS + 100])  # bitmap present, PTE page cut
    assert str(open_error(d)) == f"cannot read 4096 bytes from offset {4 * PS} for page map"
    d.core.write_bytes(good[: 5 * PS])  # no page data at all: reads stop at the end
    with open_dump(d) as kd:
        assert kd.read2(KERNBASE32, 4) == b""
    d.core.write_bytes(good)
    with open_dump(d) as kd:
        assert kd.read2(KERNBASE32, 4) == page_bytes(0x400000)[:4]


def test_no_pages_dumped(tmp_path: Path) -> None:
    d = make_dump(tmp_path, abi="n64", endian=">", ptes={}, pages=[])
    err = open_error(d)
    assert str(err).startswith("cannot map 0 bytes from fd ")
    assert str(err).endswith(f" offset {5 * PS} for sparse map: Invalid argument")


def test_truncated_page_data(tmp_path: Path) -> None:
    """Pages past the end of the file read short, as libkvm's loop stops at EOF."""
    d = std_dump(tmp_path, "n32", "<")
    last = max(d.offsets.values())
    pa = next(p for p, o in d.offsets.items() if o == last)
    d.core.write_bytes(d.core.read_bytes()[: last + 100])
    with open_dump(d) as kd:
        assert kd.read2(0x80000000 + pa, 200) == page_bytes(pa)[:100]
        assert kd.read2(0x80000000 + pa + 4000, 50) == b""


@pytest.mark.parametrize("e_type", [1, 2, 3, 4])
def test_probe_accepts_any_e_type(tmp_path: Path, e_type: int) -> None:
    d = std_dump(tmp_path, "n64", "<")
    make_kernel(d.kernel, abi="n64", endian="<", e_type=e_type,
                symbols=(("kernbase", KERNBASE64),))
    with open_dump(d) as kd:
        assert kd.read2(KERNBASE64, 8) == page_bytes(0x400000)[:8]


def test_full_dumps_and_other_machines_are_unsupported(tmp_path: Path) -> None:
    d = std_dump(tmp_path, "o32", ">")
    elfcore = tmp_path / "elfcore"
    elfcore.write_bytes(b"\x7fELF" + bytes([1, 2, 1, 255]) + b"\0" * 600)
    with pytest.raises(pykvm.FormatError) as ei:
        pykvm.open2(str(d.kernel), str(elfcore), 0, lambda n: None)
    assert str(ei.value) == "unsupported architecture"
    raw = bytearray(d.kernel.read_bytes())
    raw[18:20] = struct.pack(">H", 10)  # EM_MIPS_RS3_LE is not EM_MIPS
    d.kernel.write_bytes(bytes(raw))
    with pytest.raises(pykvm.FormatError) as ei:
        pykvm.open2(str(d.kernel), str(d.core), 0, lambda n: None)
    assert str(ei.value) == "unsupported architecture"


def test_non_native_needs_a_resolver(tmp_path: Path) -> None:
    d = std_dump(tmp_path, "n64", ">")
    with pytest.raises(pykvm.NotNativeError) as ei:
        pykvm.openfiles(str(d.kernel), str(d.core))
    assert str(ei.value) == "non-native kernel requires a symbol resolver"


# --- native -------------------------------------------------------------------------

NATIVE_CASES = [
    # host machine, pointer bits, ABI hints, byte order, kernel abi, kernel endian, native
    ("x86_64", 64, "", "little", "n64", "<", False),
    ("aarch64", 64, "", "little", "o32", "<", False),
    ("mips64", 64, "mips64-unknown-freebsd13.0", "big", "n64", ">", True),
    ("mips64", 64, "", "big", "n64", "<", False),
    ("mips64", 64, "", "little", "n64", "<", True),
    ("mips64", 64, "", "big", "n32", ">", False),
    ("mips64", 64, "", "big", "o32", ">", False),
    ("mips", 32, "mipsel-linux-gnu", "little", "o32", "<", True),
    ("mips", 32, "mipsel-linux-gnu", "little", "n32", "<", False),
    ("mips", 32, "mipsel-linux-gnu", "little", "o32", ">", False),
    ("mips64", 32, "mips64el-linux-gnuabin32", "little", "n32", "<", True),
    ("mips64", 32, "mips64el-linux-gnuabin32", "little", "o32", "<", False),
    ("mips", 32, "mipsn32", "big", "n32", ">", True),
    ("mips", 32, "mipsn32", "big", "n64", ">", False),
]


@pytest.mark.parametrize(("machine", "bits", "hints", "order", "abi", "endian", "native"),
                         NATIVE_CASES)
def test_native(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, machine: str, bits: int,
                hints: str, order: str, abi: str, endian: str, native: bool) -> None:
    d = std_dump(tmp_path, abi, endian)
    with open_dump(d) as kd:
        monkeypatch.setattr(mips_mod, "host_machine", lambda: machine)
        monkeypatch.setattr(mips_mod, "_pointer_bits", lambda: bits)
        monkeypatch.setattr(mips_mod, "_abi_hints", lambda: hints)
        monkeypatch.setattr(sys, "byteorder", order)
        assert kd.native() is native


def test_not_native_here(tmp_path: Path) -> None:
    for abi, endian in ABI_ENDIAN:
        d = std_dump(tmp_path, abi, endian)
        with open_dump(d) as kd:
            assert kd.native() is False
            assert kd.info().native is False


# --- damaged inputs -----------------------------------------------------------------

TIME_BOUND = 5.0


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Dump]:
    out = {}
    for abi, endian in (("o32", ">"), ("n32", "<"), ("n64", ">"), ("n64", "<")):
        d = std_dump(tmp_path_factory.mktemp(f"tiny{abi}"), abi, endian)
        out[f"{abi}{endian}"] = d
    return out


def exercise(kernel: Path, core: Path, d: Dump) -> None:
    """Open, read, walk; only KvmError may escape."""
    t0 = time.monotonic()
    try:
        with pykvm.open2(str(kernel), str(core), 0, lambda n: None) as kd:
            for va in (d.kernbase, d.kernbase + 0xFF8, d.kernbase + 0x2000,
                       kseg0(d.abi) + 0x1000, kseg1(d.abi) + 0x3000, 0x1000,
                       d.kernbase + 0x10000000):
                try:
                    got = kd.read2(va, 64)
                    assert len(got) <= 64
                except pykvm.FaultError:
                    pass
            for _i, _p in zip(range(20000), kd.walk_pages(), strict=False):
                pass
            kd.info()
            kd.msgbuf()
    except pykvm.KvmError as exc:
        assert isinstance(str(exc), str)
    assert time.monotonic() - t0 < TIME_BOUND


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_damaged_core(tiny: dict[str, Dump], tmp_path_factory: pytest.TempPathFactory,
                      data: st.DataObject) -> None:
    d = tiny[data.draw(st.sampled_from(sorted(tiny)))]
    raw = bytearray(d.core.read_bytes())
    action = data.draw(st.sampled_from(["truncate", "flip", "header", "sizes"]))
    if action == "truncate":
        raw = raw[: data.draw(st.integers(0, len(raw)))]
    elif action == "flip":
        for _ in range(data.draw(st.integers(1, 16))):
            raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    elif action == "header":
        for _ in range(data.draw(st.integers(1, 8))):
            raw[data.draw(st.integers(0, 95))] = data.draw(st.integers(0, 255))
    else:  # msgbufsize, bitmapsize, ptesize, kernbase, dumpavailsize
        off = data.draw(st.sampled_from([28, 32, 36, 40, 64]))
        width = 8 if off == 40 else 4
        raw[off:off + width] = data.draw(st.binary(min_size=width, max_size=width))
    core = tmp_path_factory.mktemp("bad") / "vmcore"
    core.write_bytes(bytes(raw))
    exercise(d.kernel, core, d)
    assert core.read_bytes() == bytes(raw)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_damaged_kernel(tiny: dict[str, Dump], tmp_path_factory: pytest.TempPathFactory,
                        data: st.DataObject) -> None:
    d = tiny[data.draw(st.sampled_from(sorted(tiny)))]
    raw = bytearray(d.kernel.read_bytes())
    if data.draw(st.booleans()):
        raw = raw[: data.draw(st.integers(0, len(raw)))]
    else:
        for _ in range(data.draw(st.integers(1, 12))):
            raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    kernel = tmp_path_factory.mktemp("badk") / "kernel"
    kernel.write_bytes(bytes(raw))
    exercise(kernel, d.core, d)
