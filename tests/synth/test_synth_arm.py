"""Synthetic arm kernels and dumps: hand-worked bytes of every format, determinism, the
kernel ELF, options, and a test-local reader (synth_arm_reader, from formats.md 7)
reading every region back and failing every hole."""

from __future__ import annotations

import struct
import time
from pathlib import Path

import pytest
from synth_arm_reader import ArmFullDump, ArmMinidump, Kernel, open_dump

from pykvm.synth import SynthDump
from pykvm.synth.arch_arm import FORMATS, build_arm

PS = 4096
KERNBASE = 0xC0000000
PT_DUMP_DELTA = 0x6FB5D000
MINIDUMPS = [f for f in FORMATS if f.startswith("minidump")]
ELFS = [f for f in FORMATS if f.startswith("elf")]


def rp(x: int) -> int:
    return (x + PS - 1) // PS * PS


def endian(fmt: str) -> str:
    return ">" if fmt.endswith("-be") else "<"


@pytest.fixture(scope="module")
def dumps(tmp_path_factory: pytest.TempPathFactory) -> dict[str, SynthDump]:
    out = {}
    for fmt in FORMATS:
        out[fmt] = build_arm(tmp_path_factory.mktemp(fmt), 5, fmt)
    return out


# ---------------------------------------------------------------------------- minidumps
@pytest.mark.parametrize("fmt", MINIDUMPS)
def test_minidump_bytes_by_hand(dumps: dict[str, SynthDump], fmt: str) -> None:
    d = dumps[fmt]
    t = d.truth
    core = d.core.read_bytes()
    kfile = d.kernel.read_bytes()
    e = endian(fmt)
    v4 = "-v4" in fmt
    version = 2 if fmt in ("minidump", "minidump-be") else 1
    # header: magic, then u32 fields in the kernel's byte order at literal offsets
    assert core[:24] == b"minidump FreeBSD/arm\0\0\0\0"
    (ver,) = struct.unpack_from(e + "I", core, 24)
    (msgbufsize,) = struct.unpack_from(e + "I", core, 28)
    (bitmapsize,) = struct.unpack_from(e + "I", core, 32)
    (ptesize,) = struct.unpack_from(e + "I", core, 36)
    (kernbase,) = struct.unpack_from(e + "I", core, 40)
    (arch,) = struct.unpack_from(e + "I", core, 44)
    (mmu,) = struct.unpack_from(e + "I", core, 48)
    (davail,) = struct.unpack_from(e + "I", core, 52)
    assert ver == version and kernbase == KERNBASE
    assert (arch, mmu) == ((5, 1) if v4 else (7, 2))
    assert davail == (4096 if version == 2 else 0)
    assert core[56:PS] == bytes(PS - 56)
    assert msgbufsize == len(t.msgbuf)
    # one 32-bit entry per page from KERNBASE to kernel_vm_end
    assert ptesize == 4 * ((t.kernel_vm_end - KERNBASE) // PS)
    # bitmap: one bit per page (32-bit words), ids compressed over dump_avail (v2) or
    # linear from physical 0 (v1)
    if version == 2:
        nbits = sum(-(-end // PS) - s // PS for s, end in t.dump_avail)
    else:
        nbits = -(-t.dump_avail[-1][1] // PS)
    assert bitmapsize == rp(-(-nbits // 32) * 4)
    # section offsets from formats.md 3.1, the PTE section unpadded (7.3)
    msgbuf_off = PS
    dump_avail_off = PS + rp(msgbufsize)
    bitmap_off = dump_avail_off + (PS if version == 2 else 0)
    pmap_off = bitmap_off + rp(bitmapsize)
    sparse_off = pmap_off + ptesize
    assert t.layout["sparse_off"] == sparse_off and t.layout["pmap_off"] == pmap_off
    assert core[msgbuf_off:msgbuf_off + msgbufsize] == t.msgbuf
    if version == 2:
        pairs = [struct.unpack_from(e + "QQ", core, dump_avail_off + 16 * i)
                 for i in range(len(t.dump_avail) + 1)]
        assert pairs == [*t.dump_avail, (0, 0)]
    # the kernel's first page: its bit, its rank, its bytes
    kp = t.kernphys
    if version == 2:
        seg = next(i for i, (s, end) in enumerate(t.dump_avail) if s <= kp < end)
        bit = sum(-(-end // PS) - s // PS for s, end in t.dump_avail[:seg])
        bit += kp // PS - t.dump_avail[seg][0] // PS
    else:
        bit = kp // PS
    (word,) = struct.unpack_from(e + "I", core, bitmap_off + 4 * (bit // 32))
    assert word >> (bit % 32) & 1
    words = struct.unpack_from(f"{e}{bit // 32}I", core, bitmap_off)
    rank = sum(bin(w).count("1") for w in words) + bin(word & ((1 << bit % 32) - 1)).count("1")
    assert core[sparse_off + rank * PS:sparse_off + (rank + 1) * PS] == kfile[:PS]
    # one PTE by hand: the image's first page
    image_va = t.extras["kernvirtaddr"]
    (pte,) = struct.unpack_from(e + "I", core, pmap_off + 4 * ((image_va - KERNBASE) // PS))
    if v4:  # a 64 KiB page of pmap_map_chunk: L2_TYPE_L | B | C | AP_W x 4 sub-pages
        assert pte == kp | 0x1 | 0xC | 0x550
    else:  # a section, as pmap_dump_kextract gives it: pa | PTE2_A | PTE2_S | PTE2_V
        assert pte == kp | 0x10 | 0x400 | 0x2
    assert len(core) == sparse_off + PS * t.dumped_pages


# ---------------------------------------------------------------------------- full dumps
@pytest.mark.parametrize("fmt", ELFS)
def test_full_dump_headers_by_hand(dumps: dict[str, SynthDump], fmt: str) -> None:
    d = dumps[fmt]
    t = d.truth
    core = d.core.read_bytes()
    e = endian(fmt)
    delta = fmt != "elf-nodelta"
    assert core[:7] == b"\x7fELF\x01" + bytes([2 if e == ">" else 1]) + b"\x01"
    assert core[7] == 255  # ELFOSABI_STANDALONE
    e_type, e_machine, e_version, e_entry, e_phoff, e_shoff, e_flags = struct.unpack_from(
        e + "HHIIIII", core, 16
    )
    assert (e_type, e_machine, e_version, e_entry, e_phoff, e_shoff, e_flags) == (
        4, 40, 0, 0, 52, 0, 0)
    e_ehsize, e_phentsize, e_phnum, _, e_shnum, _ = struct.unpack_from(e + "6H", core, 40)
    nseg = len(t.dump_avail)
    assert (e_ehsize, e_phentsize, e_phnum, e_shnum) == (52, 32, nseg + delta, 0)
    offset = rp(52 + e_phnum * 32)  # 4096
    for i, (s, end) in enumerate(t.dump_avail):
        ph = struct.unpack_from(e + "8I", core, 52 + 32 * i)
        assert ph == (1, offset, s, s, end - s, end - s, 4, PS)  # PT_LOAD, PF_R
        assert core[offset:offset + 16] == t.phys_expect(s, 16)
        offset += end - s
    assert len(core) == offset
    if delta:
        ph = struct.unpack_from(e + "8I", core, 52 + 32 * nseg)
        assert ph == (PT_DUMP_DELTA, 0, t.extras["kernvirtaddr"], t.kernphys, 0, 0, 4, PS)
    assert [p.p_type for p in t.phdrs] == [1] * nseg + [PT_DUMP_DELTA] * delta
    # kernel_l1pa: a KVA on pmap-v6 kernels, the physical address on the v4 pmap
    l1 = t.extras["l1pt_va"] if "-v4" not in fmt else t.extras["l1pt_pa"]
    assert t.extras["kernel_l1pa"] == l1
    var = t.symbols["kernel_l1pa"] - KERNBASE + t.extras["physaddr"]
    assert t.phys_expect(var, 4) == struct.pack(e + "I", l1)
    # the L1 entry of the image's MiB, by hand
    pa_l1 = t.extras["l1pt_pa"] + 4 * (t.extras["kernvirtaddr"] >> 20)
    (pd,) = struct.unpack(e + "I", t.phys_expect(pa_l1, 4) or b"")
    if "-v4" in fmt:  # coarse: L1_TYPE_C | L1_C_IMP2
        assert pd & 0x3FF == 0x11
    else:  # section PTE1_KERN(kernphys, KRW): V | A | S
        assert pd == t.kernphys | 0x2 | 0x400 | 0x10000


# ---------------------------------------------------------------------------- reader
@pytest.mark.parametrize("fmt", FORMATS)
def test_local_reader_round_trip(dumps: dict[str, SynthDump], fmt: str) -> None:
    d = dumps[fmt]
    t = d.truth
    r = open_dump(d.kernel.read_bytes(), d.core.read_bytes())
    for va, data in t.regions:
        assert r.read(va, len(data)) == data, hex(va)
    for va, kind in zip(t.holes, t.hole_kinds, strict=True):
        assert r.read(va, 1) is None, (kind, hex(va))
    for leaf in t.leaves:
        for va in (leaf.va - 1, leaf.va, leaf.va + leaf.size - 1, leaf.va + leaf.size):
            if 0 <= va < 1 << 32:
                assert r.read(va, 1) == t.expect(va, 1), hex(va)
    for s, end in t.dump_avail:
        for pa in (s, end - 1):
            hits = [leaf.va + pa - leaf.pa for leaf in t.leaves
                    if leaf.pa <= pa < leaf.pa + leaf.size]
            for va in hits[:2]:
                assert r.read(va, 1) == t.expect(va, 1), hex(va)
    if isinstance(r, ArmMinidump):
        got = r.walk()
        assert len(got) == len(t.walk)
        for a, b in zip(got, t.walk, strict=True):
            assert (a.version, a.paddr, a.kmap_vaddr, a.dmap_vaddr, a.prot, a.offset,
                    a.len) == (b.version, b.paddr, b.kmap_vaddr, b.dmap_vaddr, b.prot,
                               b.offset, b.len)
        assert r.npages == t.dumped_pages
    else:
        assert isinstance(r, ArmFullDump) and t.walk == []
        assert r.l1pa == t.extras["l1pt_pa"]


def test_hole_and_mapping_kinds(dumps: dict[str, SynthDump]) -> None:
    md = set(dumps["minidump-v4"].truth.hole_kinds)
    assert {"fault-descriptor", "pte-to-physical-hole", "superpage-hole", "above-kva",
            "above-4gib", "below-kernbase", "large-page-hole", "supersection-hole"} <= md
    elf = dumps["elf"].truth
    assert "below-kernbase" not in elf.hole_kinds or elf.expect(0xBFC00010, 1) is None
    sizes = {leaf.size for leaf in dumps["elf-v4"].truth.leaves}
    assert sizes == {PS, 64 << 10, 1 << 20, 16 << 20}
    assert {leaf.size for leaf in elf.leaves} == {PS, 1 << 20}
    # pmap-v6's recursive PT2MAP is visible in full dumps only
    assert any(0xBFC00000 <= leaf.va < KERNBASE for leaf in elf.leaves)
    assert any(0xBFC00000 <= va < KERNBASE for va, _ in elf.regions)
    assert not any(va < KERNBASE for va, _ in dumps["minidump"].truth.regions)


# ---------------------------------------------------------------------------- kernel ELF
@pytest.mark.parametrize("fmt", ["minidump", "minidump-be", "elf-v4", "elf-v4-be"])
def test_kernel_elf(dumps: dict[str, SynthDump], fmt: str) -> None:
    t = dumps[fmt].truth
    k = dumps[fmt].kernel.read_bytes()
    e = endian(fmt)
    assert k[:7] == b"\x7fELF\x01" + bytes([2 if e == ">" else 1]) + b"\x01"
    assert k[7] == 9  # ELFOSABI_FREEBSD
    e_type, e_machine = struct.unpack_from(e + "HH", k, 16)
    (e_entry,) = struct.unpack_from(e + "I", k, 24)
    (e_flags,) = struct.unpack_from(e + "I", k, 36)
    assert (e_type, e_machine) == (2, 40)
    v4 = "-v4" in fmt
    assert e_flags == (0x05000000 if v4 else (0x05800400 if e == ">" else 0x05000400))
    assert e_entry == KERNBASE + (0x100000 if v4 else 0) + 0x100
    syms = Kernel.parse(k).symbols
    for name, value in t.symbols.items():
        if name != "counter":
            assert syms[name] == value, name
    assert syms["kernbase"] == KERNBASE
    assert syms["physaddr"] == t.extras["physaddr"]
    assert t.variables["kernel_l1pa"] == struct.pack(e + "I", t.extras["kernel_l1pa"])
    assert t.variables["kernel_vm_end"] == struct.pack(e + "I", t.kernel_vm_end)
    words = struct.unpack_from(f"{e}{2 * len(t.dump_avail) + 2}I", t.variables["dump_avail"])
    assert list(zip(words[::2], words[1::2], strict=True)) == [*t.dump_avail, (0, 0)]


# ---------------------------------------------------------------------------- determinism
@pytest.mark.parametrize("fmt", ["minidump", "minidump-v4-be", "elf", "elf-v4"])
def test_determinism_and_seeds(tmp_path: Path, fmt: str) -> None:
    a, b, c = (tmp_path / x for x in "abc")
    for p in (a, b, c):
        p.mkdir()
    da, db, dc = build_arm(a, 7, fmt), build_arm(b, 7, fmt), build_arm(c, 8, fmt)
    assert da.kernel.read_bytes() == db.kernel.read_bytes()
    assert da.core.read_bytes() == db.core.read_bytes()
    assert da.core.read_bytes() != dc.core.read_bytes()
    assert da.truth.dump_avail != dc.truth.dump_avail
    assert da.truth.regions == db.truth.regions


# ---------------------------------------------------------------------------- options
@pytest.mark.parametrize("fmt", ["minidump", "minidump-v1", "minidump-v4"])
@pytest.mark.parametrize("tail", [1, 3])
def test_unaligned_kva_is_written_unpadded(tmp_path: Path, fmt: str, tail: int) -> None:
    d = build_arm(tmp_path, 2, fmt, kva_tail_mib=tail)
    t = d.truth
    assert (t.kernel_vm_end - KERNBASE) % (4 << 20) == tail << 20
    ptesize = t.layout["pmapsize"]
    assert ptesize % PS == tail * 1024
    assert t.layout["sparse_off"] == t.layout["pmap_off"] + ptesize
    assert d.core.stat().st_size == t.layout["sparse_off"] + PS * t.dumped_pages
    r = open_dump(d.kernel.read_bytes(), d.core.read_bytes())
    for va, data in t.regions:
        assert r.read(va, len(data)) == data, hex(va)


def test_kernel_l1pa_option(tmp_path: Path) -> None:
    for i, (opt, key) in enumerate([("physical", "l1pt_pa"), ("virtual", "l1pt_va")]):
        for fmt in ("elf", "elf-v4"):
            d = tmp_path / f"{i}{fmt}"
            d.mkdir()
            t = build_arm(d, 3, fmt, kernel_l1pa=opt).truth
            assert t.extras["kernel_l1pa"] == t.extras[key]


def test_options_and_limits(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown arm dump format"):
        build_arm(tmp_path, 0, "minidump-v3")
    with pytest.raises(ValueError):
        build_arm(tmp_path, 0, "minidump", kva_tail_mib=4)
    with pytest.raises(ValueError):
        build_arm(tmp_path, 0, "elf", kernel_l1pa="both")
    with pytest.raises(TypeError):
        build_arm(tmp_path, 0, "elf", bogus=1)  # type: ignore[call-arg]
    d = build_arm(tmp_path, 0, "minidump", kernel_name="k", core_name="c", extra_symbols=40)
    assert d.kernel.name == "k" and d.core.name == "c"
    assert "synth_extra_000039" in d.truth.symbols
    for fmt in FORMATS:
        sub = tmp_path / fmt
        sub.mkdir()
        start = time.perf_counter()
        dump = build_arm(sub, 11, fmt)
        assert time.perf_counter() - start < 1.5
        assert dump.core.stat().st_size < 32 << 20
        assert dump.truth.physmem < 32 << 20
