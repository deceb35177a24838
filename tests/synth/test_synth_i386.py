"""pykvm.synth's i386 writer: hand-worked bytes, determinism, a struct-only reader, options.

Offsets and field values are worked out here from formats.md (3.1-3.3, 4.1, 6) and the
FreeBSD sources, never taken from the writer's own layout computations.
"""

from __future__ import annotations

import struct
import time
from pathlib import Path

import pytest
from synth_i386_reader import ElfCore, Minidump, kernel_symbols

from pykvm import synth
from pykvm.synth import SynthDump, WalkPage
from pykvm.synth.arch_i386 import FORMATS, build_i386

PS = 4096
MIB = 1 << 20

#: (format, era) of every kernel/dump combination the writer supports
COMBOS = [
    ("minidump-pae", 13),
    ("minidump-nopae", 13),
    ("minidump-v1-pae", 11),
    ("minidump-v1-pae", 12),
    ("minidump-v1-nopae", 11),
    ("minidump-v1-nopae", 12),
    ("elf-pae", 13),
    ("elf-nopae", 13),
    ("elf-pae", 12),
    ("elf-nopae", 12),
    ("elf-pae", 11),
    ("elf-nopae", 11),
]


def u32(data: bytes, off: int) -> int:
    return int(struct.unpack_from("<I", data, off)[0])


def u64(data: bytes, off: int) -> int:
    return int(struct.unpack_from("<Q", data, off)[0])


def rup(x: int) -> int:
    return (x + 4095) // 4096 * 4096


def build(tmp_path: Path, fmt: str, era: int, seed: int = 0, **kw: object) -> SynthDump:
    d = tmp_path / f"{fmt}-{era}-{seed}"
    d.mkdir()
    return build_i386(d, seed, fmt, era=era, **kw)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------- minidumps
@pytest.mark.parametrize(("fmt", "era"), [c for c in COMBOS if c[0].startswith("minidump")])
def test_minidump_header_and_sections_by_hand(tmp_path: Path, fmt: str, era: int) -> None:
    dump = build(tmp_path, fmt, era)
    t = dump.truth
    core = dump.core.read_bytes()
    kernel = dump.kernel.read_bytes()
    pae = fmt.endswith("-pae")
    v2 = "-v1-" not in fmt
    esize = 8 if pae else 4
    nbpdr = (2 if pae else 4) * MIB
    kernbase = 0xC0000000 if era == 11 else 0x800000
    # struct minidumphdr: magic[24], version, msgbufsize, bitmapsize, ptesize, kernbase,
    # paemode, dumpavailsize (v2 only) -- all u32 LE
    assert core[:24] == b"minidump FreeBSD/i386\0\0\0"
    version, msgbufsize, bitmapsize, ptesize, hkernbase, paemode = struct.unpack_from(
        "<6I", core, 24
    )
    assert version == (2 if v2 else 1)
    assert msgbufsize == len(t.msgbuf)
    assert hkernbase == kernbase == t.kernbase == t.KERNBASE
    assert paemode == (1 if pae else 0)
    # one PTE page per superpage step of [KERNBASE, kernel_vm_end)
    assert ptesize == (t.kernel_vm_end - kernbase) // nbpdr * PS
    if v2:
        assert u32(core, 48) == PS  # dumpavailsize = round_page(sizeof(dump_avail))
        assert core[52:PS] == bytes(PS - 52)
    else:
        assert core[48:PS] == bytes(PS - 48)
    # bitmap: a BITSET of 32-bit longs over the bit ids
    if v2:
        nbits = sum(-(-e // PS) - s // PS for s, e in t.dump_avail)
    else:
        nbits = t.dump_avail[-1][1] // PS  # linear ids up to the last range's end
    assert bitmapsize == rup(-(-nbits // 32) * 4)
    # sections (3.1)
    msgbuf_off = PS
    dump_avail_off = PS + rup(msgbufsize)
    bitmap_off = dump_avail_off + (PS if v2 else 0)
    pte_off = bitmap_off + bitmapsize
    sparse_off = pte_off + rup(ptesize)
    assert (t.layout["bitmap_off"], t.layout["pmap_off"], t.layout["sparse_off"]) == (
        bitmap_off,
        pte_off,
        sparse_off,
    )
    assert core[msgbuf_off : msgbuf_off + msgbufsize] == t.msgbuf
    assert len(core) == sparse_off + PS * t.dumped_pages
    if v2:
        pairs = [
            (u64(core, dump_avail_off + 16 * i), u64(core, dump_avail_off + 16 * i + 8))
            for i in range(len(t.dump_avail) + 1)
        ]
        assert pairs == [*t.dump_avail, (0, 0)]
    # the kernel's first page: its bit, its rank, and the file's first page there
    kernphys = (8 if era >= 12 else (2 if pae else 4)) * MIB
    assert t.kernphys == kernphys
    if v2:
        seg = next(i for i, (s, e) in enumerate(t.dump_avail) if s <= kernphys < e)
        before = sum(-(-e // PS) - s // PS for s, e in t.dump_avail[:seg])
        bit = kernphys // PS - t.dump_avail[seg][0] // PS + before
    else:
        bit = kernphys // PS
    word = u32(core, bitmap_off + bit // 32 * 4)
    assert word >> (bit % 32) & 1
    rank = sum(bin(b).count("1") for b in core[bitmap_off : bitmap_off + bit // 8])
    rank += bin(core[bitmap_off + bit // 8] & ((1 << (bit % 8)) - 1)).count("1")
    first = sparse_off + rank * PS
    assert core[first : first + PS] == kernel[:PS]
    assert t.core_offset(kernphys) == first
    # one PTE decoded by hand: the one mapping the image's first page
    image_va = kernbase if era >= 12 else kernbase + kernphys
    index = (image_va - kernbase) // PS
    raw = core[pte_off + index * esize : pte_off + (index + 1) * esize]
    pte = int.from_bytes(raw, "little")
    if era >= 12:  # a superpage: the writer's fake entry, PG_V|PG_RW|PG_A|PG_M
        assert pte == kernphys | 0x63
    else:  # locore's text mapping: read-only
        assert pte == kernphys | 0x1


@pytest.mark.parametrize("fmt", ["minidump-pae", "minidump-nopae"])
def test_minidump_walk_protections(tmp_path: Path, fmt: str) -> None:
    t = build(tmp_path, fmt, 13).truth
    kernbase = 0x800000
    first = t.walk[0]
    # the kernel superpage is the first step; its fake entries are read/write/execute
    assert (first.kmap_vaddr, first.paddr, first.prot, first.dmap_vaddr) == (
        kernbase,
        t.kernphys,
        7,
        0,
    )
    assert first.offset == t.core_offset(t.kernphys)
    assert all(p.len == PS and p.version == 2 for p in t.walk)
    assert [p.kmap_vaddr for p in t.walk] == sorted(p.kmap_vaddr for p in t.walk)
    assert any(p.offset == -1 for p in t.walk), "PTEs into holes report kp_offset -1"
    if fmt == "minidump-pae":
        assert any(p.prot == 3 for p in t.walk), "no-execute kmem pages (PG_NX)"
    else:
        assert all(p.prot & 4 for p in t.walk), "non-PAE entries have no NX bit"


# ---------------------------------------------------------------------------- full dumps
@pytest.mark.parametrize(("fmt", "era"), [c for c in COMBOS if c[0].startswith("elf")])
def test_elf_headers_by_hand(tmp_path: Path, fmt: str, era: int) -> None:
    dump = build(tmp_path, fmt, era)
    t = dump.truth
    core = dump.core.read_bytes()
    # Elf32_Ehdr: ident, e_type ET_CORE, e_machine EM_386, e_version 0 (never set)
    assert core[:16] == b"\x7fELF\x01\x01\x01\xff" + bytes(8)
    e_type, e_machine, e_version, e_entry, e_phoff, e_shoff, e_flags = struct.unpack_from(
        "<HHIIIII", core, 16
    )
    assert (e_type, e_machine, e_version, e_entry, e_phoff, e_shoff, e_flags) == (
        4,
        3,
        0,
        0,
        52,
        0,
        0,
    )
    ehsize, phentsize, phnum, shentsize, shnum = struct.unpack_from("<HHHHH", core, 40)
    assert (ehsize, phentsize, phnum, shentsize, shnum) == (52, 32, len(t.dump_avail), 40, 0)
    offset = rup(52 + 32 * phnum)
    assert offset == PS
    for i, (s, e) in enumerate(t.dump_avail):
        ph = struct.unpack_from("<8I", core, 52 + 32 * i)
        # p_type PT_LOAD, p_offset, p_vaddr = p_paddr = start, sizes, PF_R, page align
        assert ph == (1, offset, s, s, e - s, e - s, 4, PS)
        assert t.core_offset(s + 0x10) == offset + 0x10
        offset += e - s
    assert len(core) == offset == PS + t.physmem
    assert [p.p_offset for p in t.phdrs] == [
        PS + sum(e - s for s, e in t.dump_avail[:i]) for i in range(phnum)
    ]
    # the page-directory variable sits at physical VA - (kernbase & 0xff000000)
    syms = kernel_symbols(dump.kernel.read_bytes())
    name = {13: "IdlePTD_pae" if fmt == "elf-pae" else "IdlePTD_nopae"}.get(era, "IdlePTD")
    pa = syms[name] - (0xC0000000 if era == 11 else 0)
    off = t.core_offset(pa)
    assert off is not None and u32(core, off) == t.extras["IdlePTD"]
    if era == 13:
        pa = syms["pae_mode"]
        assert u32(core, t.core_offset(pa) or 0) == (1 if fmt == "elf-pae" else 0)


# ---------------------------------------------------------------------------- reader
def probe_addresses(t: object) -> list[int]:
    from pykvm.synth import GroundTruth

    assert isinstance(t, GroundTruth)
    out = []
    for leaf in t.leaves:
        out += [leaf.va, leaf.va + leaf.size - 8, leaf.va + leaf.size // 2 + 0x123]
        if leaf.size > PS:  # RAM edges inside superpages
            for s, e in t.dump_avail:
                for edge in (s, e):
                    if leaf.pa < edge < leaf.pa + leaf.size:
                        out += [leaf.va + edge - leaf.pa - 8, leaf.va + edge - leaf.pa]
    return [va for va in out if 0 <= va and va + 16 <= 1 << 32]


@pytest.mark.parametrize(("fmt", "era"), COMBOS)
@pytest.mark.parametrize("seed", [0, 3])
def test_reader_agrees_with_truth(tmp_path: Path, fmt: str, era: int, seed: int) -> None:
    dump = build(tmp_path, fmt, era, seed)
    t = dump.truth
    core = dump.core.read_bytes()
    r: Minidump | ElfCore
    if fmt.startswith("elf"):
        r = ElfCore(core, dump.kernel.read_bytes())
        assert r.ptd_pa == t.extras["IdlePTD"]
        assert r.pae == fmt.endswith("-pae")
    else:
        r = Minidump(core)
        assert r.npages == t.dumped_pages
        assert r.msgbuf() == t.msgbuf
        assert [WalkPage(**vars(p)) for p in r.walk()] == t.walk
    assert len(t.regions) >= 25
    for va, data in t.regions:
        assert r.read(va, len(data)) == data, hex(va)
    assert len(t.holes) >= 12
    for va in t.holes:
        assert r.read(va, 1) is None, hex(va)
    for va in probe_addresses(t):
        assert r.read(va, 16) == t.expect(va, 16), hex(va)


def test_holes_cover_the_kinds(tmp_path: Path) -> None:
    kinds: dict[str, set[str]] = {}
    for fmt, era in COMBOS:
        kinds[f"{fmt}/{era}"] = set(build(tmp_path, fmt, era).truth.hole_kinds)
    for name, got in kinds.items():
        assert {"invalid-pde", "invalid-pte", "pte-to-physical-hole", "superpage-hole"} <= got
        if name.startswith("minidump"):
            assert {"below-kernbase", "above-kva"} <= got, name
        else:
            assert "user" in got, name
    assert "pte-to-nodump-page" in kinds["minidump-pae/13"]
    assert "pte-to-nodump-page" not in kinds["elf-pae/13"]  # a full dump has every page
    assert "null-page" in kinds["elf-nopae/13"] and "low-memory-map" in kinds["elf-pae/13"]


# ---------------------------------------------------------------------------- machine facts
def test_page_sizes_and_high_memory(tmp_path: Path) -> None:
    pae = build(tmp_path, "minidump-pae", 13).truth
    nopae = build(tmp_path, "minidump-nopae", 13).truth
    assert {leaf.size for leaf in pae.leaves} == {PS, 2 * MIB}
    assert {leaf.size for leaf in nopae.leaves} == {PS, 4 * MIB}
    # PAE minidumps describe RAM above 4 GiB: a dump_avail range, PTEs and a superpage
    assert pae.dump_avail[-1][0] >= 1 << 32
    high = [leaf for leaf in pae.leaves if leaf.pa >= 1 << 32]
    assert {leaf.size for leaf in high} == {PS, 2 * MIB}
    assert any(va == leaf.va for leaf in high for va, _ in pae.regions)
    assert nopae.dump_avail[-1][1] < 1 << 32
    # the recursive mapping: PTmap + i * PAGE_SIZE maps the frame of PDE i
    ptmap = pae.extras["ptmap"]
    assert ptmap == 0xFF400000 and nopae.extras["ptmap"] == 0xFF800000
    rec = {leaf.va: leaf.pa for leaf in pae.leaves if leaf.va >= ptmap}
    assert rec[ptmap + 2042 * PS] == pae.extras["IdlePTD"]


def test_eras(tmp_path: Path) -> None:
    t13 = build(tmp_path, "elf-nopae", 13).truth
    assert {"IdlePTD_pae", "IdlePTD_nopae", "IdlePDPT", "pae_mode", "KPTphys"} <= set(t13.symbols)
    assert "IdlePTD" not in t13.symbols
    assert t13.symbols["kernbase"] == t13.symbols["kernload"] == 0x800000
    assert t13.symbols["btext"] & 0xFF000000 == 0  # loaded at VA - 0: VA = PA
    assert t13.variables["IdlePDPT"] == bytes(4) and t13.variables["IdlePTD_pae"] == bytes(4)
    assert u32(t13.variables["IdlePTD_nopae"], 0) == t13.extras["IdlePTD"]
    assert len(t13.variables["dump_avail"]) == 8 * 32  # vm_paddr_t is 64-bit
    t12 = build(tmp_path, "elf-pae", 12).truth
    assert {"IdlePTD", "IdlePDPT", "KPTmap"} <= set(t12.symbols)
    assert "pae_mode" not in t12.symbols and "IdlePTD_pae" not in t12.symbols
    t11 = build(tmp_path, "elf-nopae", 11).truth
    assert t11.symbols["kernbase"] == 0xC0000000 and t11.symbols["kernload"] == 4 * MIB
    assert t11.nlist_types["IdlePTD"] == 0x07  # locore.s .data: N_DATA | N_EXT
    assert "IdlePDPT" not in t11.symbols
    assert len(t11.variables["dump_avail"]) == 4 * 32  # 32-bit vm_paddr_t without PAE
    assert t11.vm_min_kernel_address == 0xBFEFF000  # VADDR(PTDPTDI, PTDPTDI)
    p11 = build(tmp_path, "minidump-v1-pae", 11).truth
    assert "IdlePDPT" in p11.symbols and p11.symbols["kernload"] == 2 * MIB
    assert len(p11.variables["dump_avail"]) == 8 * 32


# ---------------------------------------------------------------------------- kernel ELF
@pytest.mark.parametrize(("fmt", "era"), [("minidump-pae", 13), ("elf-nopae", 11)])
def test_kernel_elf(tmp_path: Path, fmt: str, era: int) -> None:
    dump = build(tmp_path, fmt, era, extra_symbols=10)
    t = dump.truth
    k = dump.kernel.read_bytes()
    assert k[:7] == b"\x7fELF\x01\x01\x01" and k[7] == 9  # ELFCLASS32, LSB, FreeBSD
    e_type, e_machine, _, e_entry = struct.unpack_from("<HHII", k, 16)
    assert (e_type, e_machine, u32(k, 36)) == (2, 3, 0)  # ET_EXEC, EM_386, e_flags
    image_va = 0x800000 if era >= 12 else 0xC0400000
    assert e_entry == image_va + 0x100  # .text right after the headers
    # the first PT_LOAD: offset 0, p_vaddr = p_paddr = the image address
    phoff = u32(k, 28)
    assert struct.unpack_from("<4I", k, phoff) == (1, 0, image_va, image_va)
    syms = kernel_symbols(k)
    assert {name: syms[name] for name in t.symbols} == t.symbols
    assert "synth_extra_000009" in syms
    assert u32(t.variables["kernel_vm_end"], 0) == t.kernel_vm_end
    paddr = 8 if era == 13 else 4
    da = t.variables["dump_avail"]
    for i, (s, e) in enumerate(t.dump_avail):
        assert int.from_bytes(da[2 * i * paddr : (2 * i + 1) * paddr], "little") == s
        assert int.from_bytes(da[(2 * i + 1) * paddr : (2 * i + 2) * paddr], "little") == e


# ---------------------------------------------------------------------------- determinism
def test_determinism_and_seeds(tmp_path: Path) -> None:
    a = build(tmp_path, "minidump-pae", 13, 7)
    again_dir = tmp_path / "again"
    again_dir.mkdir()
    again = build_i386(again_dir, 7, "minidump-pae")
    assert a.core.read_bytes() == again.core.read_bytes()
    assert a.kernel.read_bytes() == again.kernel.read_bytes()
    other = build(tmp_path, "minidump-pae", 13, 8)
    assert other.truth.dump_avail != a.truth.dump_avail
    assert other.core.read_bytes() != a.core.read_bytes()
    assert other.kernel.read_bytes() != a.kernel.read_bytes()


# ---------------------------------------------------------------------------- options
def test_options_and_errors(tmp_path: Path) -> None:
    assert synth.formats("i386") == FORMATS
    assert synth.default_format("i386") == "minidump-pae"
    with pytest.raises(ValueError, match="unknown i386 dump format"):
        build_i386(tmp_path, 0, "minidump-v3")
    with pytest.raises(ValueError, match="era must be"):
        build_i386(tmp_path, 0, "elf-pae", era=10)
    with pytest.raises(ValueError, match="version 2"):
        build_i386(tmp_path, 0, "minidump-pae", era=12)
    with pytest.raises(ValueError, match="version 1"):
        build_i386(tmp_path, 0, "minidump-v1-nopae", era=13)
    with pytest.raises(ValueError, match="highmem"):
        build_i386(tmp_path, 0, "elf-pae", highmem=True)
    with pytest.raises(ValueError, match="highmem"):
        build_i386(tmp_path, 0, "minidump-nopae", highmem=True)
    with pytest.raises(ValueError, match="extra_symbols"):
        build_i386(tmp_path, 0, "elf-pae", extra_symbols=-1)
    with pytest.raises(TypeError):
        synth.build("i386", tmp_path, fmt="elf-pae", no_such_option=1)
    low = build(tmp_path, "minidump-pae", 13, highmem=False).truth
    assert low.dump_avail[-1][1] < 1 << 32
    v1 = build(tmp_path, "minidump-v1-pae", 12, highmem=True).truth
    assert v1.dump_avail[-1][0] >= 1 << 32 and v1.version == 1
    named = tmp_path / "named"
    named.mkdir()
    d = build_i386(named, 0, "elf-nopae", kernel_name="k.full", core_name="vmcore.3")
    assert d.kernel.name == "k.full" and d.core.name == "vmcore.3"


def test_build_time_and_size(tmp_path: Path) -> None:
    for fmt in FORMATS:
        start = time.perf_counter()
        d = build(tmp_path, fmt, 11 if "-v1-" in fmt else 13)
        assert time.perf_counter() - start < 1.5, fmt
        limit = 40 * MIB if fmt.startswith("elf") else 16 * MIB
        assert d.core.stat().st_size < limit, fmt
        assert d.kernel.stat().st_size < 256 * 1024
