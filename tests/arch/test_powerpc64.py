"""powerpc64 dumps: virtual ELF full dumps (BE, LE), HPT and radix minidumps (formats.md 11).

Kernels and cores are built here byte by byte from the layouts of formats.md
3, 4.1 and 11 and from the kernel's side of the hashed page table and radix
tree (the PTEs a kernel would write for each mapping), never with the
reader's code, and opened through the public API with a resolver.
"""

from __future__ import annotations

import random
import struct
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pykvm
from pykvm import VM_PROT_EXECUTE as X
from pykvm import VM_PROT_READ as R
from pykvm import VM_PROT_WRITE as W
from pykvm.arch import powerpc64 as ppc64_mod

EM_PPC64 = 21
ET_EXEC, ET_DYN, ET_CORE = 2, 3, 4
PS = 4096
MB = 1 << 20
SEG = 1 << 28
U64 = (1 << 64) - 1
ALL64 = U64
PPC64_KERNBASE = 0x100100


def signed64(v: int) -> int:
    """A C ``kssize_t``: kvm_kerndisp's type."""
    v &= U64
    return v - (1 << 64) if v >> 63 else v
MAGIC = b"minidump FreeBSD/powerpc64"
HPT = "ppc64mmu_hpt_kvatop"


# --- kernel ---------------------------------------------------------------------

def make_kernel(path: Path, *, endian: str = ">", e_type: int = ET_DYN,
                symbols: tuple[tuple[str, int], ...] = ()) -> Path:
    """A powerpc64 kernel ELF (ELFCLASS64, ET_DYN, EM_PPC64) with .symtab/.strtab."""
    e = endian
    strtab = b"\0"
    syms = [b"\0" * 24]
    for name, value in symbols:
        off = len(strtab)
        strtab += name.encode() + b"\0"
        syms.append(struct.pack(e + "IBBHQQ", off, 0x11, 0, 0xFFF1, value, 8))
    symtab = b"".join(syms)
    shstr = b"\0.symtab\0.strtab\0.shstrtab\0"
    sym_off = 64
    str_off = sym_off + len(symtab)
    shs_off = str_off + len(strtab)
    sh_off = (shs_off + len(shstr) + 7) & ~7
    shfmt = e + "IIQQQQIIQQ"
    shdrs = [
        struct.pack(shfmt, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0),
        struct.pack(shfmt, 1, 2, 0, 0, sym_off, len(symtab), 2, 1, 8, 24),
        struct.pack(shfmt, 9, 3, 0, 0, str_off, len(strtab), 0, 0, 1, 0),
        struct.pack(shfmt, 17, 3, 0, 0, shs_off, len(shstr), 0, 0, 1, 0),
    ]
    ident = b"\x7fELF" + bytes([2, 1 if e == "<" else 2, 1, 9]) + b"\0" * 8
    hdr = ident + struct.pack(e + "HHIQQQIHHHHHH", e_type, EM_PPC64, 1, 0, 0, sh_off, 0,
                              64, 56, 0, 64, 4, 3)
    blob = hdr + symtab + strtab + shstr
    blob += b"\0" * (sh_off - len(blob)) + b"".join(shdrs)
    path.write_bytes(blob)
    return path


def open_dump(kernel: Path, core: Path) -> pykvm.Kvm:
    return pykvm.open2(str(kernel), str(core), 0, pykvm.symtab_resolver(str(kernel)))


def pattern(tag: int, n: int = PS) -> bytes:
    return random.Random(tag).randbytes(n)


def page_data(pa: int) -> bytes:
    """The contents of dumped physical page ``pa``."""
    return pattern(pa)


# --- full dumps (formats.md 4.1, 11.6) -------------------------------------------

KVA = 0xE000000000000000


def kerneldumpheader(arch: bytes) -> bytes:
    h = bytearray(512)
    h[0:19] = b"FreeBSD Kernel Dump"
    h[20:20 + len(arch)] = arch
    struct.pack_into(">II", h, 32, 4, 1)
    return bytes(h)


def make_core64(path: Path, segs: list[tuple[int, bytes, int]], *, endian: str = ">",
                data_enc: int | None = None, prefix: bytes = b"", osabi: int = 255,
                e_type: int = ET_CORE) -> Path:
    """An ELF64 core: (p_vaddr, data, p_paddr) per PT_LOAD, in ``endian``."""
    e = endian
    enc = data_enc if data_enc is not None else (1 if e == "<" else 2)
    n = len(segs)
    hdrsz = 64 + n * 56
    fileofs = (hdrsz + PS - 1) // PS * PS
    ident = b"\x7fELF" + bytes([2, enc, 1, osabi]) + b"\0" * 8
    body = bytearray(ident + struct.pack(e + "HHIQQQIHHHHHH", e_type, EM_PPC64, 1, 0, 64, 0,
                                         0, 64, 56, n, 64, 0, 0))
    for vaddr, data, paddr in segs:
        body += struct.pack(e + "IIQQQQQQ", 1, 4, fileofs, vaddr, paddr, len(data),
                            len(data), PS)
        fileofs += len(data)
    body += b"\0" * (fileofs - sum(len(s[1]) for s in segs) - len(body))
    for _, data, _ in segs:
        body += data
    path.write_bytes(prefix + bytes(body))
    return path


SEGS64 = [
    (0xC000000000100000, pattern(11, 2 * PS), ALL64),
    (KVA, pattern(12, 3 * PS), ALL64),
    (KVA + 3 * PS, pattern(13, PS), ALL64),
    (0xFFFFFFFFFFFFF000, pattern(14, PS), ALL64),
]


@pytest.mark.parametrize("endian", [">", "<"])
@pytest.mark.parametrize("prefix", [b"", b"powerpc64", b"powerpc64le"])
def test_full_dump_reads(tmp_path: Path, endian: str, prefix: bytes) -> None:
    kernel = make_kernel(tmp_path / "kernel", endian=endian)
    core = make_core64(tmp_path / "vmcore", SEGS64, endian=endian,
                       prefix=kerneldumpheader(prefix) if prefix else b"")
    with open_dump(kernel, core) as kd:
        assert kd.read2(0xC000000000100000 + 8, 100) == SEGS64[0][1][8:108]
        assert kd.read2(KVA + 3 * PS - 5, 10) == SEGS64[1][1][-5:] + SEGS64[2][1][:5]
        assert kd.read2(0xFFFFFFFFFFFFF000, PS) == SEGS64[3][1]
        with pytest.raises(pykvm.FaultError):
            kd.read2(0xD000000000000000, 1)
        assert kd.geterr() == ""
        assert kd.kerndisp() == 0
        assert list(kd.walk_pages()) == []
        info = kd.info()
        assert (info.arch, info.fmt, info.version, info.pages) == ("powerpc64", "elf", None, 7)
        cls = ppc64_mod.Powerpc64ElfCore if endian == ">" else ppc64_mod.Powerpc64leElfCore
        assert type(kd.backend) is cls


@pytest.mark.parametrize("endian", [">", "<"])
def test_full_dump_raw_and_invalid(tmp_path: Path, endian: str) -> None:
    kernel = make_kernel(tmp_path / "kernel", endian=endian)
    core = make_core64(tmp_path / "vmcore", [(ALL64, pattern(1), 0x2000)], endian=endian)
    with open_dump(kernel, core) as kd:
        with pytest.raises(pykvm.FaultError) as ei:
            kd.read2(0x2000, 8)
        assert ei.value.chain == ("Raw corefile not supported",)
    other = "<" if endian == ">" else ">"
    for kwargs in ({"osabi": 0}, {"e_type": ET_EXEC}, {"endian": other},
                   {"prefix": kerneldumpheader(b"powerpc")}):
        args = {"endian": endian, **kwargs}
        core = make_core64(tmp_path / "vmcore", SEGS64, **args)  # type: ignore[arg-type]
        with pytest.raises(pykvm.FormatError) as fe:
            open_dump(kernel, core)
        assert str(fe.value) == "invalid corefile"


def test_full_dump_core_data_encoding_is_not_the_byte_order(tmp_path: Path) -> None:
    # valid_elf_header accepts either EI_DATA and reads the fields in the kernel's order
    kernel = make_kernel(tmp_path / "kernel", endian=">")
    core = make_core64(tmp_path / "vmcore", SEGS64, endian=">", data_enc=1)
    with open_dump(kernel, core) as kd:
        assert kd.read2(KVA, 4) == SEGS64[1][1][:4]


def test_full_dump_native(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for endian, host_order in ((">", "big"), ("<", "little")):
        kernel = make_kernel(tmp_path / "kernel", endian=endian)
        core = make_core64(tmp_path / "vmcore", SEGS64, endian=endian)
        with open_dump(kernel, core) as kd:
            for machine in ("ppc64", "ppc64le", "powerpc64", "ppc", "x86_64", "aarch64"):
                monkeypatch.setattr(ppc64_mod, "host_machine", lambda m=machine: m)
                for order in ("big", "little"):
                    monkeypatch.setattr(sys, "byteorder", order)
                    want = machine in ("ppc64", "ppc64le", "powerpc64") and order == host_order
                    assert kd.native() is want, (endian, machine, order)


# --- minidumps (formats.md 3, 11.2) ------------------------------------------------

def round_page(n: int) -> int:
    return (n + PS - 1) // PS * PS


def bit_id(avail: list[tuple[int, int]], pa: int) -> int:
    adj = 0
    for s, e in avail:
        if pa < e:
            assert pa >= s
            return pa // PS - s // PS + adj
        adj += -(-e // PS) - s // PS
    raise AssertionError(f"{pa:#x} outside dump_avail")


@dataclass
class Minidump:
    kernel: Path
    core: Path
    offsets: dict[int, int]          # dumped pa -> file offset
    hdr: dict[str, int]
    expect_walk: list[tuple[int, int, int, int, int, int]] = field(default_factory=list)
    walk_ptex: list[int] = field(default_factory=list)   # HPT: each record's PTE index

    def offset(self, pa: int) -> int:
        return self.offsets.get(pa, -1)


def write_minidump(path: Path, *, endian: str, hdr_endian: str | None = None,
                   mmu: bytes, pmap: bytes, avail: list[tuple[int, int]],
                   pages: dict[int, bytes], kernbase: int, kernend: int, dmapbase: int,
                   dmapend: int, startkernel: int, hw_direct_map: int = 0, version: int = 2,
                   magic: bytes = MAGIC, msgbuf: bytes = b"<6>powerpc64 msgbuf\n",
                   pmapsize: int | None = None) -> tuple[dict[int, int], dict[str, int]]:
    """A powerpc64 minidump as cpu_minidumpsys writes it (formats.md 3.1, 11.2)."""
    he = hdr_endian or endian
    nbits = sum(-(-e // PS) - s // PS for s, e in avail)
    bitmapsize = round_page((nbits + 63) // 64 * 8)
    words = [0] * (bitmapsize // 8)
    bits = sorted((bit_id(avail, pa), pa) for pa in pages)
    for b, _ in bits:
        words[b // 64] |= 1 << (b % 64)
    bitmap = b"".join(struct.pack(endian + "Q", w) for w in words)
    dumpavail = b"".join(struct.pack(endian + "QQ", s, e) for s, e in avail)
    dumpavail = dumpavail.ljust(PS, b"\0")
    size_field = len(pmap) if pmapsize is None else pmapsize
    hdr = struct.pack(he + "32s32sIIIIQQQQi4xQQI4x", magic, mmu, version, len(msgbuf),
                      bitmapsize, size_field, kernbase, kernend, dmapbase, dmapend,
                      hw_direct_map, startkernel, startkernel + 0x1000000,
                      PS)  # written for version 1 too: the reader must ignore it there
    assert len(hdr) == 144
    out = bytearray(hdr.ljust(PS, b"\0"))
    out += msgbuf.ljust(round_page(len(msgbuf)), b"\0")
    if version == 2:
        out += dumpavail
    out += bitmap
    out += pmap.ljust(round_page(len(pmap)), b"\0")
    sparse_off = len(out)
    offsets = {}
    for rank, (_, pa) in enumerate(bits):
        offsets[pa] = sparse_off + rank * PS
        out += pages[pa]
    path.write_bytes(bytes(out))
    header = {"kernbase": kernbase, "dmapbase": dmapbase, "dmapend": dmapend,
              "startkernel": startkernel, "bitmapsize": bitmapsize, "sparse_off": sparse_off}
    return offsets, header


# --- HPT (formats.md 11.3, 11.7) ----------------------------------------------------

HASH_MASK = 0x7FFFFFFFFF
KVSID_BIT = 0x0000001000000000
BW, BR, NOEXEC = 0x2, 0x3, 0x4
DMAPBASE = 0xC000000000000000
DMAPEND = 0xC007FFFFFFFFFFFF
STARTKERNEL = 0xC000000000100100
NPTEGS = 2048


def kvsid(esid: int) -> int:
    return ((((esid << 8) | (esid >> 28)) * 0x13BB) & (KVSID_BIT - 1)) | KVSID_BIT


class Hpt:
    """A hashed page table filled the way the kernel's moea64 does it."""

    def __init__(self, nptegs: int = NPTEGS) -> None:
        self.n = nptegs
        self.ptes: list[tuple[int, int]] = [(0, 0)] * (nptegs * 8)

    def _place(self, hash_: int, hi: int, lo: int) -> int:
        pteg = hash_ & (self.n - 1)
        for ptex in range(pteg * 8, pteg * 8 + 8):
            if self.ptes[ptex] == (0, 0):
                self.ptes[ptex] = (hi, lo)
                return ptex
        raise AssertionError("PTEG full")

    def map(self, ea: int, pa: int, lo_bits: int, *, big: bool = False,
            secondary: bool = False) -> int:
        """Insert ea -> pa: 4 KiB (b = 12) or 16 MiB (b = 24, LPTEH_BIG) page."""
        vsid = kvsid(ea >> 28)
        b = 24 if big else 12
        va_page = (ea & 0x0FFFFFFF) >> b
        h = (vsid & HASH_MASK) ^ va_page
        if secondary:
            h = ~h & HASH_MASK
        ava = (va_page << 1) if big else (va_page >> 11)
        hi = (vsid << 12) | (ava << 7) | 0x1 | (0x2 if secondary else 0) | (0x4 if big else 0)
        return self._place(h, hi, pa | lo_bits)

    def raw(self, pteg: int, hi: int, lo: int) -> int:
        return self._place(pteg, hi, lo)

    def bytes(self, order: str = ">") -> bytes:
        """The table as the kernel dumps it: ``mmu_g5`` big-endian as in memory,
        ``mmu_phyp`` in the kernel's byte order (``mphyp_dump_pmap`` stores native words)."""
        return b"".join(struct.pack(order + "QQ", hi, lo) for hi, lo in self.ptes)


def hpt_prot(lo: int) -> int:
    prot = R
    if lo & 3 != 3:
        prot |= W
    if not lo & NOEXEC:
        prot |= X
    return prot


#: One extra mapping for :func:`build_hpt`: (ea, pa, pte_lo bits, 16 MiB page).
Extra = tuple[int, int, int, bool]


def build_hpt(tmp: Path, *, endian: str = ">", hdr_endian: str | None = None,
              version: int = 2, hw_direct_map: int = 0, startkernel: int = STARTKERNEL,
              mmu: bytes = b"mmu_phyp", stray_vsid: int | None = None,
              nptegs: int = NPTEGS, kernbase: int = KVA, kernend: int | None = None,
              extra: tuple[Extra, ...] = (), more_avail: tuple[tuple[int, int], ...] = (),
              more_dumped: tuple[int, ...] = ()) -> tuple[Minidump, dict[str, int]]:
    """The HPT minidump all HPT tests share; returns it and named addresses.

    ``extra`` mappings are entered after the shared ones; ``more_avail`` ranges
    and ``more_dumped`` pages extend ``dump_avail`` and the dumped pages;
    ``stray_vsid`` adds a PTE with that VSID (the walk cannot place it).
    """
    kb = kernbase
    if version == 1:
        avail = [(0, 0x12000000)]
    else:
        avail = [(0, 0x4000000), (0x10000000, 0x12000000)]
    avail += more_avail
    dumped = [0x100000, 0x101000, 0x102000, 0x103000, 0x200000, 0x5000, 0x300000, 0x7000,
              0x11000000, 0x11005000, 0x1000000, *more_dumped]
    pages = {pa: page_data(pa) for pa in dumped}
    hpt = Hpt(nptegs)
    addr = {
        "k0": kb, "k1": kb + 0x1000, "k2": kb + 0x2000, "k3": kb + 0x3000,
        "seg1": kb + SEG + 0x7654000, "big": kb + 2 * SEG + 0x1000000,
    }
    maps: list[tuple[int, int, int, int, int]] = []   # ptex, ea, pa, lo, len

    def add(ea: int, pa: int, lo: int, *, big: bool = False, secondary: bool = False) -> None:
        ptex = hpt.map(ea, pa, lo, big=big, secondary=secondary)
        maps.append((ptex, ea, pa, lo, 16 * MB if big else PS))

    add(addr["k0"], 0x200000, BW)
    add(addr["k1"], 0x5000, BW | NOEXEC)
    add(addr["k2"], 0x300000, BR | NOEXEC, secondary=True)
    add(addr["k3"], 0x3F00000, BR)                    # in dump_avail, not dumped
    add(addr["seg1"], 0x7000, BW)
    add(addr["big"], 0x11000000, BW, big=True)        # a 16 MiB page in a 4 KiB segment
    if hw_direct_map:
        add(DMAPBASE + 0x1000000, 0x1000000, BW | NOEXEC, big=True)
    for ea, pa, lo, big in extra:
        add(ea, pa, lo, big=big)
    # entries the walk skips: a user VSID and the VRMA
    hpt.raw(5, (0x123 << 12) | 1, 0x9000 | BW)
    hpt.raw(6, (0x1FFFFFF << 24) | 1, 0xA000 | BW)
    if stray_vsid is not None:
        # a kernel-looking VSID that no kernel segment has
        addr["stray"] = hpt.raw(7, (stray_vsid << 12) | 1, 0xB000 | BW)
    core = tmp / "vmcore"
    pte_order = endian if mmu == b"mmu_phyp" else ">"
    offsets, hdr = write_minidump(
        core, endian=endian, hdr_endian=hdr_endian, mmu=mmu, pmap=hpt.bytes(pte_order),
        avail=avail, pages=pages, kernbase=kb,
        kernend=kb + 4 * SEG - 1 if kernend is None else kernend, dmapbase=DMAPBASE,
        dmapend=DMAPEND, startkernel=startkernel, hw_direct_map=hw_direct_map,
        version=version)
    kernel = make_kernel(tmp / "kernel", endian=endian,
                         symbols=(("answer", PPC64_KERNBASE + 0x1F00),))
    md = Minidump(kernel, core, offsets, hdr)
    for ptex, ea, pa, lo, length in sorted(maps):
        md.expect_walk.append((pa, ea, (DMAPBASE + pa) & U64, hpt_prot(lo),
                               offsets.get(pa, -1), length))
        md.walk_ptex.append(ptex)
    return md, addr


@pytest.mark.parametrize("endian", [">", "<"])
def test_hpt_reads(tmp_path: Path, endian: str) -> None:
    md, a = build_hpt(tmp_path, endian=endian)
    with open_dump(md.kernel, md.core) as kd:
        assert kd.read2(a["k0"] + 16, 32) == page_data(0x200000)[16:48]
        # two 4 KiB pages: the second one's physical page is elsewhere
        assert kd.read2(a["k0"] + PS - 8, 16) == page_data(0x200000)[-8:] + page_data(0x5000)[:8]
        assert kd.read2(a["k2"], PS) == page_data(0x300000)          # secondary hash
        assert kd.read2(a["seg1"] + 100, 4) == page_data(0x7000)[100:104]
        # the 16 MiB page (pykvm finds it; libkvm's 4 KiB-only segment search does not)
        assert kd.read2(a["big"] + 0x5000 + 8, 8) == page_data(0x11005000)[8:16]
        # direct map: pa = va & ~dmapbase
        assert kd.read2(DMAPBASE + 0x5000 + 7, 9) == page_data(0x5000)[7:16]
        assert kd.read2(DMAPBASE + 0x11005000, 4) == page_data(0x11005000)[:4]
        assert kd.msgbuf() == b"<6>powerpc64 msgbuf\n"
        info = kd.info()
        assert (info.arch, info.fmt, info.version, info.pages) == ("powerpc64", "minidump", 2,
                                                                   11)


@pytest.mark.parametrize("endian", [">", "<"])
def test_hpt_relocated_kernel(tmp_path: Path, endian: str) -> None:
    md, _ = build_hpt(tmp_path, endian=endian)
    with open_dump(md.kernel, md.core) as kd:
        assert kd.kerndisp() == signed64(STARTKERNEL - PPC64_KERNBASE) == -(1 << 62)
        sym = kd.nlist2(["answer"])["answer"].value
        assert sym == PPC64_KERNBASE + 0x1F00
        # a kernel-file address is moved by startkernel - 0x100100 (formats.md 11.1)
        assert kd.read2(sym, 8) == page_data(0x102000)[0:8]
        assert kd.read2(sym + kd.kerndisp(), 8) == page_data(0x102000)[0:8]
        assert kd.read2(PPC64_KERNBASE, 16) == page_data(0x100000)[0x100:0x110]


def test_hpt_negative_kerndisp(tmp_path: Path) -> None:
    md, _ = build_hpt(tmp_path, startkernel=0x100000)
    with open_dump(md.kernel, md.core) as kd:
        assert kd.kerndisp() == -0x100


def test_hpt_messages(tmp_path: Path) -> None:
    md, a = build_hpt(tmp_path)

    def chain(va: int) -> tuple[str, ...]:
        with pytest.raises(pykvm.FaultError) as ei:
            kd.read2(va, 8)
        assert str(ei.value) == ei.value.chain[-1] == kd.geterr()
        return ei.value.chain

    with open_dump(md.kernel, md.core) as kd:
        va = DMAPBASE + 0x3F00000
        assert chain(va) == (f"{HPT}: direct map address {va:#x} not in minidump",
                             f"invalid address ({va:#x})")
        va = KVA + 8 * SEG + 0x10
        assert chain(va) == (f"slb_search: segment not found for EA {va:#x}",
                             f"{HPT}: pte not valid", f"invalid address ({va:#x})")
        va = KVA + 0x9000
        assert chain(va) == ("pte_search: pte not found", f"{HPT}: pte not valid",
                             f"invalid address ({va:#x})")
        va = a["k3"] + 0x10
        assert chain(va) == (f"{HPT}: physical address 0x3f00000 not in minidump",
                             f"invalid address ({va:#x})")
        va = 0xD000000000000000
        assert chain(va) == (f"{HPT}: virtual address {va:#x} not minidumped",
                             f"invalid address ({va:#x})")
        # an address below the direct map is relocated first, and printed relocated
        va = PPC64_KERNBASE + 0x5000000
        moved = va + STARTKERNEL - PPC64_KERNBASE
        assert chain(va) == (f"{HPT}: direct map address {moved:#x} not in minidump",
                             f"invalid address ({moved:#x})")
        with pytest.raises(pykvm.FaultError) as ei:
            kd.read2(va, 8)
        assert ei.value.address == va  # the chunk as the read loop saw it
        # a read failing on its second page names that page
        with pytest.raises(pykvm.FaultError) as ei:
            kd.read2(a["k2"] + PS - 4, 8)
        assert ei.value.chain[-1] == f"invalid address ({a['k3']:#x})"


def test_hpt_message_to_stderr_with_program(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    md, _ = build_hpt(tmp_path)
    kd = pykvm.Kvm("prog")
    with pykvm.kvm._run_open(kd, str(md.kernel), str(md.core), 0,
                             pykvm.symtab_resolver(str(md.kernel))):
        with pytest.raises(pykvm.FaultError):
            kd.read2(KVA + 0x9000, 8)
        assert kd.geterr() == f"invalid address ({KVA + 0x9000:#x})"
    assert capsys.readouterr().err == ("prog: pte_search: pte not found\n"
                                       f"prog: {HPT}: pte not valid\n")


def records(kd: pykvm.Kvm) -> tuple[list[tuple[int, ...]], object]:
    """The walk's records as tuples, and the walker's return value (libkvm's result)."""
    it = kd.walk_pages()
    out = []
    while True:
        try:
            p = next(it)
        except StopIteration as stop:
            return out, stop.value
        assert p.version == 2
        out.append((p.paddr, p.kmap_vaddr, p.dmap_vaddr, p.prot, p.offset, p.len))


@pytest.mark.parametrize("endian", [">", "<"])
@pytest.mark.parametrize("hw_direct_map", [0, 1])
def test_hpt_walk(tmp_path: Path, endian: str, hw_direct_map: int) -> None:
    md, _ = build_hpt(tmp_path, endian=endian, hw_direct_map=hw_direct_map)
    with open_dump(md.kernel, md.core) as kd:
        got, rc = records(kd)
        assert got == md.expect_walk
        assert rc is True
        assert kd.walk_pages_cb(lambda p: 1) == 1
        seen: list[int] = []
        assert kd.walk_pages_cb(lambda p: seen.append(p.kmap_vaddr) or len(seen) < 2) == 0
        assert len(seen) == 2


USER_ESID = 0xC00FFFFFF0000000 >> 28   # USER_ADDR (sys/powerpc/include/sr.h)


@pytest.mark.parametrize("vsid", [
    kvsid(USER_ESID),              # the user window: the kernel never gives it a kernel VSID
    KVSID_BIT | (1 << 40) | 0x123,  # KERNEL_VSID_BIT, but wider than any KERNEL_VSID
], ids=["user-window", "too-wide"])
def test_hpt_walk_unknown_vsid_stops(tmp_path: Path, vsid: int) -> None:
    md, a = build_hpt(tmp_path, stray_vsid=vsid)
    with open_dump(md.kernel, md.core) as kd:
        got, rc = records(kd)
        # the walk reports every mapping in table order up to the stray PTE, then stops
        pairs = zip(md.expect_walk, md.walk_ptex, strict=True)
        want = [r for r, ptex in pairs if ptex < a["stray"]]
        assert len(want) < len(md.expect_walk)
        assert got == want
        assert rc is False
        assert kd.geterr() == f"slb_vsid_search: segment not found for VSID {vsid:#x}"


# --- kernel segments libkvm's software SLB lacks (pykvm departure) -------------------
#
# A kernel-mode access to a segment missing from the SLB is filled in with
# KERNEL_VSID(esid) (sys/powerpc/aim/slb.c handle_kernel_slb_spill ->
# kernel_va_to_slbv), for every segment but USER_ADDR's; libkvm's slb_init only
# covers kernbase..kernend and the direct map up to dmapbase + bitmapsize * 8 * 4096.

PAGE_ARRAY = 0xD000000000000000   # mmu_oea64.c moea64_page_array_startup (NUMA)
NEW_KVA = 0xC008000000000000      # VM_MIN_KERNEL_ADDRESS, FreeBSD 13+
NEW_KVA_END = 0xC0080007FFFFFFFF  # VM_MAX_SAFE_KERNEL_ADDRESS


@pytest.mark.parametrize("endian", [">", "<"])
@pytest.mark.parametrize("kernbase", [NEW_KVA, KVA], ids=["kva-c008", "kva-e000"])
def test_hpt_vm_page_array_segment(tmp_path: Path, endian: str, kernbase: int) -> None:
    # vm_page_array mapped with a 16 MiB page in its own segment (moea64_map_range ->
    # moea64_kenter_large; kernel_va_to_slbv marks the segment SLBV_L)
    kernend = NEW_KVA_END if kernbase == NEW_KVA else None
    md, _ = build_hpt(tmp_path, endian=endian, kernbase=kernbase, kernend=kernend,
                      extra=((PAGE_ARRAY, 0x11000000, BW | NOEXEC, True),))
    with open_dump(md.kernel, md.core) as kd:
        assert kd.read2(PAGE_ARRAY + 0x5000 + 8, 8) == page_data(0x11005000)[8:16]
        assert kd.read2(PAGE_ARRAY + 0x10, 4) == page_data(0x11000000)[0x10:0x14]
        got, rc = records(kd)
        assert got == md.expect_walk and rc is True
        assert (0x11000000, PAGE_ARRAY, DMAPBASE + 0x11000000, R | W,
                md.offset(0x11000000), 16 * MB) in got

        def chain(va: int) -> tuple[str, ...]:
            with pytest.raises(pykvm.FaultError) as ei:
                kd.read2(va, 8)
            return ei.value.chain

        # inside the large page, a physical page that is not dumped: libkvm's PA message
        assert chain(PAGE_ARRAY + 0x1000) == (
            f"{HPT}: physical address 0x11001000 not in minidump",
            f"invalid address ({PAGE_ARRAY + 0x1000:#x})")
        # no PTE in the segment: libkvm's messages for an address it has no segment for
        va = PAGE_ARRAY + 3 * 16 * MB
        if kernbase == NEW_KVA:
            assert chain(va) == (f"slb_search: segment not found for EA {va:#x}",
                                 f"{HPT}: pte not valid", f"invalid address ({va:#x})")
        else:
            assert chain(va) == (f"{HPT}: virtual address {va:#x} not minidumped",
                                 f"invalid address ({va:#x})")


def test_hpt_segment_messages_unchanged_with_program(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # a successful translation in a segment libkvm lacks stores and prints nothing
    md, _ = build_hpt(tmp_path, kernbase=NEW_KVA, kernend=NEW_KVA_END,
                      extra=((PAGE_ARRAY, 0x11000000, BW, True),))
    kd = pykvm.Kvm("prog")
    with pykvm.kvm._run_open(kd, str(md.kernel), str(md.core), 0,
                             pykvm.symtab_resolver(str(md.kernel))):
        assert kd.read2(PAGE_ARRAY + 0x5000, 4) == page_data(0x11005000)[:4]
        assert kd.geterr() == ""
    assert capsys.readouterr().err == ""


def test_hpt_user_window_segment_is_not_a_kernel_segment(tmp_path: Path) -> None:
    # a PTE with KERNEL_VSID(USER_ADDR >> 28) is never used by the hardware
    ea = 0xC00FFFFFF0003000
    md, _ = build_hpt(tmp_path, kernbase=NEW_KVA, kernend=NEW_KVA_END,
                      extra=((ea, 0x7000, BW, False),))
    with open_dump(md.kernel, md.core) as kd:
        with pytest.raises(pykvm.FaultError) as ei:
            kd.read2(ea, 8)
        assert ei.value.chain == (f"slb_search: segment not found for EA {ea:#x}",
                                  f"{HPT}: pte not valid", f"invalid address ({ea:#x})")
        got, rc = records(kd)
        assert rc is False
        assert kd.geterr() == ("slb_vsid_search: segment not found for VSID "
                               f"{kvsid(USER_ESID):#x}")


HIGH = 0x200000000  # 8 GiB: far above dmapbase + bitmapsize * 8 * 4096


@pytest.mark.parametrize("endian", [">", "<"])
def test_hpt_walk_direct_map_above_bitmap_span(tmp_path: Path, endian: str) -> None:
    # version 2 bitmaps number only dump_avail pages (vm_dumpset.h), so libkvm's maxmem =
    # bitmapsize * 8 * 4096 is 128 MiB here; moea64_setup_direct_map maps RAM at 8 GiB
    # with 16 MiB pages (hw_direct_map), in a segment libkvm's SLB lacks
    md, _ = build_hpt(tmp_path, endian=endian, hw_direct_map=1,
                      more_avail=((HIGH, HIGH + 16 * MB),), more_dumped=(HIGH, HIGH + 0x3000),
                      extra=((DMAPBASE + HIGH, HIGH, BW | NOEXEC, True),))
    assert md.hdr["bitmapsize"] * 8 * PS < HIGH
    with open_dump(md.kernel, md.core) as kd:
        got, rc = records(kd)
        assert got == md.expect_walk and rc is True
        assert (HIGH, DMAPBASE + HIGH, DMAPBASE + HIGH, R | W, md.offset(HIGH),
                16 * MB) in got
        assert kd.read2(DMAPBASE + HIGH + 0x3004, 4) == page_data(HIGH + 0x3000)[4:8]


@pytest.mark.parametrize("endian", [">", "<"])
def test_hpt_walk_g5_identity_mapped_page_table(tmp_path: Path, endian: str) -> None:
    # mmu_g5 without a direct map enters its PTEG table at VA = PA
    # (moea64_native.c moea64_bootstrap_native: pmap_kenter(pa, pa)); these segments are
    # below the direct map, where libkvm has none.  A kernel-file address is relocated
    # first, so only the walk reaches them.
    table = 0x1000000
    extra = tuple((pa, pa, BW, False) for pa in range(table, table + 4 * PS, PS))
    # and one kernel PTE in a segment far from everything libkvm knows (ESID 0x500000000)
    extra += ((0x5000000000004000, 0x7000, BW | NOEXEC, False),)
    md, _ = build_hpt(tmp_path, endian=endian, mmu=b"mmu_g5", extra=extra)
    with open_dump(md.kernel, md.core) as kd:
        got, rc = records(kd)
        assert got == md.expect_walk and rc is True
        kmaps = {r[1] for r in got}
        assert {table, table + PS, table + 2 * PS, table + 3 * PS} <= kmaps
        assert 0x5000000000004000 in kmaps


def test_hpt_le_phyp_ptes_are_little_endian(tmp_path: Path) -> None:
    # mphyp_dump_pmap stores H_READ results as native integers: the same table read
    # big-endian (libkvm's be64toh) has no valid kernel entry at all
    md, a = build_hpt(tmp_path, endian="<")
    with open_dump(md.kernel, md.core) as kd:
        assert kd.backend is not None
        assert kd.backend.mmu.pte_order == "<"
        assert kd.read2(a["k0"], 8) == page_data(0x200000)[:8]
        got, rc = records(kd)
        assert got == md.expect_walk and rc is True
    # mmu_g5 on the same little-endian kernel: the table is big-endian as in memory
    md, a = build_hpt(tmp_path, endian="<", mmu=b"mmu_g5")
    with open_dump(md.kernel, md.core) as kd:
        assert kd.backend is not None
        assert kd.backend.mmu.pte_order == ">"
        assert kd.read2(a["k0"], 8) == page_data(0x200000)[:8]
        got, rc = records(kd)
        assert got == md.expect_walk and rc is True


def test_hpt_version1(tmp_path: Path) -> None:
    md, a = build_hpt(tmp_path, version=1)
    with open_dump(md.kernel, md.core) as kd:
        assert kd.info().version == 1
        assert kd.read2(a["k0"], 8) == page_data(0x200000)[:8]
        assert kd.read2(a["big"] + 0x5000, 8) == page_data(0x11005000)[:8]


def test_hpt_g5(tmp_path: Path) -> None:
    md, a = build_hpt(tmp_path, mmu=b"mmu_g5")
    with open_dump(md.kernel, md.core) as kd:
        assert kd.read2(a["k1"], 8) == page_data(0x5000)[:8]


def test_le_kernel_with_big_endian_header(tmp_path: Path) -> None:
    # formats.md 14 row 4: libkvm's be32toh header layout is accepted as a fallback
    md, a = build_hpt(tmp_path, endian="<", hdr_endian=">")
    with open_dump(md.kernel, md.core) as kd:
        assert kd.kerndisp() == signed64(STARTKERNEL - PPC64_KERNBASE) == -(1 << 62)
        assert kd.read2(a["k0"], 8) == page_data(0x200000)[:8]


def test_hpt_large_table_walk(tmp_path: Path) -> None:
    # 65536 PTEGs: the EA comes from the hash alone
    md, _ = build_hpt(tmp_path, nptegs=0x10000)
    with open_dump(md.kernel, md.core) as kd:
        got, rc = records(kd)
        assert got == md.expect_walk and rc is True


# --- minidump open errors ------------------------------------------------------------

def hpt_args(**kw: object) -> dict[str, object]:
    base: dict[str, object] = dict(
        endian=">", mmu=b"mmu_phyp", pmap=b"\0" * (NPTEGS * 128), avail=[(0, 0x100000)],
        pages={0x1000: page_data(0x1000)}, kernbase=KVA, kernend=KVA + SEG - 1,
        dmapbase=DMAPBASE, dmapend=DMAPEND, startkernel=STARTKERNEL)
    base.update(kw)
    return base


@pytest.mark.parametrize(("kw", "text"), [
    ({"magic": b"minidump FreeBSD/powerpc"}, "not a minidump for this platform"),
    ({"magic": b"minidump FreeBSD/amd64"}, "not a minidump for this platform"),
    ({"version": 3}, "wrong minidump version. Expected 2 got 3"),
    ({"version": 0}, "wrong minidump version. Expected 2 got 0"),
    ({"version": 0xFFFFFFFF}, "wrong minidump version. Expected 2 got -1"),
    ({"mmu": b"mmu_oea64"}, "unsupported MMU: mmu_oea64"),
    ({"mmu": b"mmu_phyp2"}, "unsupported MMU: mmu_phyp2"),
    ({"mmu": b""}, "unsupported MMU: "),
    ({"mmu": b"mmu_radix", "pmap": b""}, "radix minidump does not contain a page map"),
    ({"mmu": b"mmu_radix", "pmap": b"\0" * PS}, "unexpected radix page map size: 4096"),
    ({"pages": {}}, "cannot map 0 bytes from fd {fd} offset {sparse} for sparse map: "
                    "Invalid argument"),
])
def test_minidump_open_errors(tmp_path: Path, kw: dict[str, object], text: str) -> None:
    kernel = make_kernel(tmp_path / "kernel")
    core = tmp_path / "vmcore"
    _, hdr = write_minidump(core, **hpt_args(**kw))  # type: ignore[arg-type]
    with pytest.raises(pykvm.FormatError) as ei:
        open_dump(kernel, core)
    if "{fd}" in text:
        msg = str(ei.value)
        assert msg.startswith("cannot map 0 bytes from fd ")
        assert msg.endswith(f" offset {hdr['sparse_off']} for sparse map: Invalid argument")
    else:
        assert str(ei.value) == text


def test_minidump_truncations(tmp_path: Path) -> None:
    kernel = make_kernel(tmp_path / "kernel")
    core = tmp_path / "vmcore"
    write_minidump(core, **hpt_args())  # type: ignore[arg-type]
    blob = core.read_bytes()
    for cut, text in ((100, "cannot read minidump header"),
                      (143, "cannot read minidump header"),
                      (3 * PS + 10, "cannot read 4096 bytes for bitmap"),
                      (4 * PS + 10, f"cannot read {NPTEGS * 128} bytes from offset "
                                    f"{4 * PS} for page map")):
        core.write_bytes(blob[:cut])
        with pytest.raises(pykvm.FormatError) as ei:
            open_dump(kernel, core)
        assert str(ei.value) == text, cut


def test_minidump_probe(tmp_path: Path) -> None:
    from pykvm.arch import select_backend
    from pykvm.image.elf import Ehdr

    def eh(data: int, e_type: int = ET_DYN, machine: int = EM_PPC64) -> Ehdr:
        return Ehdr(2, data, 1, 0, e_type, machine, 1, 0, 0, 0, 0, 64, 56, 0, 64, 0, 0)

    for data in (1, 2):
        assert select_backend(eh(data), True) is ppc64_mod.Powerpc64Minidump
    assert select_backend(eh(2), False) is ppc64_mod.Powerpc64ElfCore
    assert select_backend(eh(1), False) is ppc64_mod.Powerpc64leElfCore
    assert select_backend(eh(2, ET_EXEC), True) is None
    assert select_backend(eh(2, ET_EXEC), False) is None
    # libkvm's minidump probe: class, type, machine and the magic, nothing else
    assert ppc64_mod.Powerpc64Minidump.probe(eh(2), True)
    assert not ppc64_mod.Powerpc64Minidump.probe(eh(2), False)
    assert not ppc64_mod.Powerpc64Minidump.probe(eh(2, machine=20), True)
    # an ET_EXEC powerpc64 kernel is not claimed by anyone
    kernel = make_kernel(tmp_path / "kernel", e_type=ET_EXEC)
    core = tmp_path / "vmcore"
    write_minidump(core, **hpt_args())  # type: ignore[arg-type]
    with pytest.raises(pykvm.FormatError) as ei:
        open_dump(kernel, core)
    assert str(ei.value) == "unsupported architecture"


def test_minidump_native(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    md, _ = build_hpt(tmp_path)
    with open_dump(md.kernel, md.core) as kd:
        assert not kd.native()
        for machine, want in (("ppc64", True), ("ppc64le", True), ("powerpc64", True),
                              ("powerpc64le", True), ("ppc", False), ("x86_64", False)):
            monkeypatch.setattr(ppc64_mod, "host_machine", lambda m=machine: m)
            for order in ("big", "little"):
                monkeypatch.setattr(sys, "byteorder", order)
                assert kd.native() is want
        monkeypatch.setattr(ppc64_mod, "host_machine", lambda: "powerpc")
        monkeypatch.setattr(sys, "platform", "freebsd15")
        assert kd.native()  # FreeBSD/powerpc64: uname -m says "powerpc"


# --- radix (formats.md 11.4, 11.7) ---------------------------------------------------

RKB = 0xC008000000000000
V, LEAF = 0x8000000000000000, 0x4000000000000000
ER, EW, EX = 0x4, 0x2, 0x1
RC = 0x180  # referenced and changed bits: not part of the frame


def build_radix(tmp: Path, *, endian: str = ">", missing_table: bool = True,
                startkernel: int = STARTKERNEL) -> Minidump:
    """Root -> 1 GiB-level -> 2 MiB-level -> PTE page, plus 2 MiB and 1 GiB leaves."""
    l2, l3, pt, absent = 0x10000, 0x11000, 0x12000, 0x14000
    root = [0] * 8192
    root[0] = V | LEAF | 0 | ER | EW               # a direct-map leaf: below kernbase
    root[(RKB >> 39) & 8191] = V | l2 | 9          # NLS bits in the low byte
    t2 = [0] * 512
    t2[0] = V | l3 | 9
    t2[1] = V | LEAF | 0x40000000 | ER | EW | EX | RC
    if missing_table:
        t2[2] = V | absent | 9
    t3 = [0] * 512
    t3[0] = V | pt | 9
    t3[1] = V | LEAF | 0x600000 | ER
    t4 = [0] * 512
    t4[0] = V | LEAF | 0x200000 | ER | EW | RC
    t4[1] = V | LEAF | 0x5000 | ER | EW | EX
    t4[2] = V | LEAF | 0x3F0000 | ER              # not dumped
    t4[3] = V | 0x7000                             # not a leaf at the last level
    t4[5] = V | LEAF | 0x7000 | EW

    def table(entries: list[int]) -> bytes:
        return b"".join(struct.pack(">Q", x) for x in entries)

    avail = [(0, 0x1000000), (0x40000000, 0x40100000)]
    pages = {pa: page_data(pa) for pa in (0x100000, 0x101000, 0x102000, 0x200000, 0x5000,
                                          0x7000, 0x600000, 0x601000, 0x40002000)}
    pages[l2], pages[l3], pages[pt] = table(t2), table(t3), table(t4)
    core = tmp / "vmcore"
    offsets, hdr = write_minidump(
        core, endian=endian, mmu=b"mmu_radix", pmap=table(root), avail=avail, pages=pages,
        kernbase=RKB, kernend=0xC00FFFFFFFFFFFFF, dmapbase=DMAPBASE, dmapend=DMAPEND,
        startkernel=startkernel)
    kernel = make_kernel(tmp / "kernel", endian=endian,
                         symbols=(("answer", PPC64_KERNBASE + 0x1F00),))
    md = Minidump(kernel, core, offsets, hdr)

    def rec(pa: int, va: int, prot: int, length: int) -> None:
        md.expect_walk.append((pa, va, DMAPBASE + pa, prot, offsets.get(pa, -1), length))

    rec(0x200000, RKB, R | W, PS)
    rec(0x5000, RKB + PS, R | W | X, PS)
    rec(0x3F0000, RKB + 2 * PS, R, PS)
    rec(0x7000, RKB + 5 * PS, R | W, PS)
    rec(0x600000, RKB + 2 * MB, R, 2 * MB)
    rec(0x40000000, RKB + (1 << 30), R | W | X, 1 << 30)
    return md


@pytest.mark.parametrize("endian", [">", "<"])
def test_radix_reads(tmp_path: Path, endian: str) -> None:
    md = build_radix(tmp_path, endian=endian)
    with open_dump(md.kernel, md.core) as kd:
        assert kd.read2(RKB + 16, 16) == page_data(0x200000)[16:32]
        assert kd.read2(RKB + PS - 8, 16) == page_data(0x200000)[-8:] + page_data(0x5000)[:8]
        assert kd.read2(RKB + 5 * PS, 4) == page_data(0x7000)[:4]
        assert kd.read2(RKB + 2 * MB + 0x1234, 8) == page_data(0x601000)[0x234:0x23C]
        assert kd.read2(RKB + (1 << 30) + 0x2008, 8) == page_data(0x40002000)[8:16]
        assert kd.read2(DMAPBASE + 0x200010, 8) == page_data(0x200000)[16:24]
        assert kd.kerndisp() == signed64(STARTKERNEL - PPC64_KERNBASE) == -(1 << 62)
        sym = kd.nlist2(["answer"])["answer"].value
        assert kd.read2(sym, 8) == page_data(0x102000)[:8]
        info = kd.info()
        assert (info.version, info.pages) == (2, 12)


def test_radix_messages(tmp_path: Path) -> None:
    md = build_radix(tmp_path)
    with open_dump(md.kernel, md.core) as kd:
        for va in (RKB + 2 * PS, RKB + 3 * PS, RKB + 4 * PS, RKB + 3 * (1 << 30),
                   RKB + (1 << 39), DMAPBASE + 0x900000, 0xC010000000000000):
            with pytest.raises(pykvm.FaultError) as ei:
                kd.read2(va + 4, 4)
            assert ei.value.chain == (f"invalid address ({va + 4:#x})",)
            assert ei.value.address == va + 4
        # a missing table page: only the hard message (api.md 8.3)
        with pytest.raises(pykvm.FaultError) as ei:
            kd.read2(RKB + 2 * (1 << 30), 4)
        assert ei.value.chain == ("radix page table page at 0x14000 was not dumped",)
        assert kd.geterr() == "radix page table page at 0x14000 was not dumped"
        # relocated, printed relocated
        va = PPC64_KERNBASE + 0x3000000
        moved = va + STARTKERNEL - PPC64_KERNBASE
        with pytest.raises(pykvm.FaultError) as ei:
            kd.read2(va, 4)
        assert ei.value.chain == (f"invalid address ({moved:#x})",)


@pytest.mark.parametrize("endian", [">", "<"])
def test_radix_ea_outside_the_kernel_tree_faults(tmp_path: Path, endian: str) -> None:
    # FreeBSD's radix tree covers 52 bits (mmu_radix.c RTS_SIZE); an effective address
    # with bits 52-61 set takes a segment interrupt (Power ISA 3.0).  libkvm indexes the
    # root with bits 39-51 only: these alias the direct map (root entry 0) or the
    # kernel map (root entry 4096) and would read page 0x200000.
    md = build_radix(tmp_path, endian=endian)
    with open_dump(md.kernel, md.core) as kd:
        assert kd.read2(DMAPBASE + 0x200000, 8) == page_data(0x200000)[:8]
        assert kd.read2(RKB, 8) == page_data(0x200000)[:8]
        for va in (0xC010000000200000, 0xD000000000200000, 0xC018000000000000,
                   0xFFF8000000000000):
            with pytest.raises(pykvm.FaultError) as ei:
                kd.read2(va, 8)
            assert ei.value.chain == (f"invalid address ({va:#x})",)
            assert kd.geterr() == f"invalid address ({va:#x})"


@pytest.mark.parametrize("endian", [">", "<"])
def test_radix_walk(tmp_path: Path, endian: str) -> None:
    md = build_radix(tmp_path, endian=endian, missing_table=False)
    with open_dump(md.kernel, md.core) as kd:
        got, rc = records(kd)
        assert got == md.expect_walk
        assert rc is True
        assert kd.walk_pages_cb(lambda p: 1) == 1


def test_radix_walk_missing_table_stops(tmp_path: Path) -> None:
    md = build_radix(tmp_path)
    with open_dump(md.kernel, md.core) as kd:
        got, rc = records(kd)
        assert got == md.expect_walk
        assert rc is False
        assert kd.geterr() == "radix page table page at 0x14000 was not dumped"


def test_radix_hostile_shared_tables_are_bounded(tmp_path: Path) -> None:
    # every entry of every level points at the same table page: 2**40 paths, no leaves
    loop = 0x10000
    root = [0] * 8192
    for i in range(4096, 8192):
        root[i] = V | loop
    page = b"".join(struct.pack(">Q", V | loop) for _ in range(512))
    core = tmp_path / "vmcore"
    write_minidump(core, endian=">", mmu=b"mmu_radix",
                   pmap=b"".join(struct.pack(">Q", x) for x in root), avail=[(0, 0x100000)],
                   pages={loop: page}, kernbase=RKB, kernend=0xC00FFFFFFFFFFFFF,
                   dmapbase=DMAPBASE, dmapend=DMAPEND, startkernel=STARTKERNEL)
    kernel = make_kernel(tmp_path / "kernel")
    with open_dump(kernel, core) as kd:
        start = time.monotonic()
        got, rc = records(kd)
        assert (got, rc) == ([], True)
        assert time.monotonic() - start < 5.0


# --- damaged inputs ----------------------------------------------------------------

TIME_BOUND = 5.0
BUILDERS = ("hpt", "hpt-le", "radix", "radix-le", "elf", "elf-le")


def build_any(kind: str, tmp: Path) -> tuple[Path, Path, list[int]]:
    le = kind.endswith("-le")
    e = "<" if le else ">"
    if kind.startswith("hpt"):
        md, a = build_hpt(tmp, endian=e)
        return md.kernel, md.core, [a["k0"], a["k2"], a["big"], DMAPBASE + 0x5000,
                                    PPC64_KERNBASE + 0x1F00]
    if kind.startswith("radix"):
        md = build_radix(tmp, endian=e)
        return md.kernel, md.core, [RKB, RKB + 2 * MB, RKB + (1 << 30) + 0x2000,
                                    DMAPBASE + 0x200000]
    kernel = make_kernel(tmp / "kernel", endian=e)
    core = make_core64(tmp / "vmcore", SEGS64, endian=e)
    return kernel, core, [KVA, 0xC000000000100000, 0xFFFFFFFFFFFFF000]


def mutate(data: st.DataObject, blob: bytearray) -> bytearray:
    if data.draw(st.booleans()):
        blob = blob[: data.draw(st.integers(1, len(blob)))]
    for _ in range(data.draw(st.integers(0, 12))):
        # headers and page tables are in the first pages; the rest is page data
        hot = data.draw(st.booleans())
        hi = min(len(blob), 6 * PS) if hot else len(blob)
        at = data.draw(st.integers(0, hi - 1))
        blob[at] ^= data.draw(st.integers(1, 255))
    return blob


def drain(it: Iterator[pykvm.KvmPage], limit: int = 100000) -> None:
    for n, _ in enumerate(it):
        if n >= limit:
            break


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_damaged_dumps_fail_cleanly(tmp_path_factory: pytest.TempPathFactory,
                                    data: st.DataObject) -> None:
    kind = data.draw(st.sampled_from(BUILDERS))
    tmp = tmp_path_factory.mktemp("fuzz")
    kernel, core, vas = build_any(kind, tmp)
    core.write_bytes(bytes(mutate(data, bytearray(core.read_bytes()))))
    start = time.monotonic()
    try:
        with open_dump(kernel, core) as kd:
            for va in vas:
                try:
                    kd.read2(va, data.draw(st.integers(0, 2 * PS)))
                except pykvm.KvmError:
                    pass
            drain(kd.walk_pages())
            kd.kerndisp()
            kd.info()
    except pykvm.KvmError:
        pass
    assert time.monotonic() - start < TIME_BOUND


def test_cacheable_only_when_page_aligned(tmp_path: Path) -> None:
    md, _ = build_hpt(tmp_path)
    with open_dump(md.kernel, md.core) as kd:
        assert kd.backend is not None and kd.backend.cacheable()
    # a relocation that is not a whole number of pages: a kernel-file page
    # straddles two physical pages
    md, _ = build_hpt(tmp_path, startkernel=STARTKERNEL + 0x80)
    with open_dump(md.kernel, md.core) as kd:
        assert kd.backend is not None and not kd.backend.cacheable()
        kd._caching = False
        sym = PPC64_KERNBASE + 0x1F00  # -> pa 0x102080
        assert kd.read2(sym, 8) == page_data(0x102000)[0x80:0x88]
        assert kd.read2(sym - 0x100, 8) == page_data(0x101000)[0xF80:0xF88]
