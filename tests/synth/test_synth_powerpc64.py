"""The powerpc64 writer: hand-worked minidump and ELF bytes, determinism, a struct reader.

Field offsets come from sys/powerpc/include/minidump.h as laid out in formats.md 11.2
(144-byte header in the kernel's byte order), section offsets from formats.md 3.1, PTE
formats from formats.md 11.3/11.4 and sys/powerpc/include/pte.h, all worked out here by
hand rather than taken from the writer.
"""

from __future__ import annotations

import struct
import time
from pathlib import Path

import pytest
from synth_powerpc_reader import Fault, FullCore, Kernel, Minidump, kernel_vsid

from pykvm.synth import SynthDump
from pykvm.synth.arch_powerpc64 import FORMATS, POWERPC64_PHYS_FORMATS, build

PS = 4096
MINIDUMPS = ("minidump-hpt", "minidump-hpt-le", "minidump-radix", "minidump-radix-le")
ELFS = ("elf", "elf-le", "elf-kdh", "elf-le-kdh")
#: the message buffer's KVA: guard page + 4 kernel-stack pages after VM_MIN_KERNEL_ADDRESS
MSGBUF_VA = 0xC008000000000000 + 5 * PS


def rp(x: int) -> int:
    return (x + PS - 1) // PS * PS


@pytest.fixture(scope="module")
def dumps(tmp_path_factory: pytest.TempPathFactory) -> dict[str, SynthDump]:
    out = {}
    for fmt in FORMATS + POWERPC64_PHYS_FORMATS:
        out[fmt] = build(tmp_path_factory.mktemp(fmt), 21, fmt)
    return out


def test_formats() -> None:
    assert FORMATS == MINIDUMPS + ELFS
    assert POWERPC64_PHYS_FORMATS == ("elf-phys", "elf-le-phys")


def _rank(bitmap: bytes, e: str, bit: int) -> tuple[bool, int]:
    """Whether ``bit`` is set in the 64-bit-word bitmap, and how many set bits precede it."""
    words = struct.unpack(f"{e}{len(bitmap) // 8}Q", bitmap)
    before = sum(bin(w).count("1") for w in words[: bit // 64])
    before += bin(words[bit // 64] & ((1 << (bit % 64)) - 1)).count("1")
    return bool(words[bit // 64] >> (bit % 64) & 1), before


@pytest.mark.parametrize("fmt", MINIDUMPS)
def test_minidump_by_hand(dumps: dict[str, SynthDump], fmt: str) -> None:
    d = dumps[fmt]
    core = d.core.read_bytes()
    kfile = d.kernel.read_bytes()
    t = d.truth
    e = "<" if fmt.endswith("-le") else ">"
    radix = "radix" in fmt
    assert core[:32] == b"minidump FreeBSD/powerpc64".ljust(32, b"\0")
    mmu = b"mmu_radix" if radix else b"mmu_phyp"
    assert core[32:64] == mmu.ljust(32, b"\0")
    version, msgbufsize, bitmapsize, pmapsize = struct.unpack_from(e + "IIII", core, 64)
    assert (version, msgbufsize) == (2, len(t.msgbuf))
    assert struct.unpack_from(e + "QQQQ", core, 80) == (
        0xC008000000000000,
        0xC0080007FFFFFFFF,
        0xC000000000000000,
        0xC007FFFFFFFFFFFF,
    )
    (hw_direct_map,) = struct.unpack_from(e + "i", core, 112)
    assert hw_direct_map == 1
    startkernel, endkernel, dumpavailsize = struct.unpack_from(e + "QQI", core, 120)
    k = Kernel(kfile)
    # the image's first byte (link 0x100000) is at physical kernphys, run from the DMAP
    assert startkernel == 0xC000000000000000 + t.kernphys + 0x100
    assert endkernel == startkernel - 0x100100 + k.symbols["end"]
    assert t.kerndisp == startkernel - 0x100100 - (1 << 64), "signed: negative"
    assert dumpavailsize == 4096 and core[140:4096] == bytes(4096 - 140)
    # section sizes and offsets (formats.md 3.1)
    pages = [-(-end // PS) - s // PS for s, end in t.dump_avail]
    nbits = sum(pages)
    assert bitmapsize == rp(-(-nbits // 64) * 8)
    if radix:
        assert pmapsize == 65536
    else:
        count, physpages = 0x1000, t.physmem // PS
        while count < physpages:
            count <<= 1
        assert pmapsize == 128 * (count >> 1)
    assert core[4096 : 4096 + msgbufsize] == t.msgbuf
    dump_avail_off = 4096 + rp(msgbufsize)
    bitmap_off = dump_avail_off + 4096
    pmap_off = bitmap_off + rp(bitmapsize)
    sparse_off = pmap_off + rp(pmapsize)
    assert t.layout["sparse_off"] == sparse_off
    for i, (s, end) in enumerate(t.dump_avail):
        assert struct.unpack_from(e + "QQ", core, dump_avail_off + 16 * i) == (s, end)
    assert struct.unpack_from(e + "QQ", core, dump_avail_off + 16 * len(t.dump_avail)) == (0, 0)
    bitmap = core[bitmap_off : bitmap_off + bitmapsize]
    total = sum(bin(w).count("1") for w in struct.unpack(f"{e}{bitmapsize // 8}Q", bitmap))
    assert len(core) == sparse_off + PS * total == sparse_off + PS * t.dumped_pages

    def page_of(pa: int) -> bytes:
        bit, left = 0, pa
        for (s, end), n in zip(t.dump_avail, pages, strict=True):
            if s <= left < end:
                bit += left // PS - s // PS
                break
            bit += n
        else:
            raise AssertionError(hex(pa))
        present, rank = _rank(bitmap, e, bit)
        assert present, hex(pa)
        return core[sparse_off + rank * PS : sparse_off + (rank + 1) * PS]

    # the kernel image's first page (ELF headers + start of .text) is in the dump
    assert page_of(t.kernphys) == kfile[:PS]
    # the page table entry of the message buffer's first page, decoded by hand
    if radix:
        root = core[pmap_off : pmap_off + 65536]
        (l1,) = struct.unpack_from(">Q", root, 8 * 4096)  # (0xc008... >> 39) & 8191 = 0x1000
        assert l1 >> 62 == 0b10 and l1 & 0x1F == 9, "valid directory, next level size 9"
        table = l1 & 0x00FFFFFFFFFFFF00
        for index in (0, 0):  # L2 index (va >> 30) & 511, L3 index (va >> 21) & 511
            (entry,) = struct.unpack_from(">Q", page_of(table), 8 * index)
            assert entry >> 62 == 0b10
            table = entry & 0x00FFFFFFFFFFFF00
        (pte,) = struct.unpack_from(">Q", page_of(table), 8 * 5)  # (va >> 12) & 511
        assert pte >> 62 == 0b11 and pte & 0xF == 0x8 | 0x4 | 0x2, "leaf: P, R, W"
        pa = pte & 0x00FFFFFFFFFFF000
    else:
        vsid = kernel_vsid(MSGBUF_VA >> 28)
        h = (vsid & 0x7FFFFFFFFF) ^ 5
        nptegs = pmapsize // 128
        found = []
        for hid, pteg in ((0, h & (nptegs - 1)), (2, ~h & (nptegs - 1))):
            for slot in range(8):
                hi, lo = struct.unpack_from(e + "QQ", core, pmap_off + pteg * 128 + slot * 16)
                if hi & 1 and hi & 2 == hid and hi >> 12 == vsid and (hi >> 7) & 0x1F == 0:
                    found.append((hi, lo))
        assert len(found) == 1
        hi, lo = found[0]
        assert hi & 0x10 and not hi & 4, "wired, 4 KiB"
        assert lo & 0x3 == 0x2 and not lo & 0x4, "pmap_kenter: read/write/execute"
        pa = lo & 0x0FFFFFFFFFFFF000
    assert page_of(pa)[:64] == t.msgbuf[:64]


@pytest.mark.parametrize("fmt", ELFS)
def test_elf_by_hand(dumps: dict[str, SynthDump], fmt: str) -> None:
    d = dumps[fmt]
    core = d.core.read_bytes()
    t = d.truth
    k = Kernel(d.kernel.read_bytes())
    little = "-le" in fmt
    e = "<" if little else ">"
    base = 512 if fmt.endswith("kdh") else 0
    if base:
        arch = b"powerpc64le" if little else b"powerpc64"
        assert core[:20] == b"FreeBSD Kernel Dump\0" and core[20:32] == arch.ljust(12, b"\0")
        assert struct.unpack_from(">IIQ", core, 32) == (4, 1, len(core) - 512)
    h = core[base:]
    assert h[:8] == b"\x7fELF\x02" + (b"\x01" if little else b"\x02") + b"\x01\xff"
    assert struct.unpack_from(e + "HHI", h, 16) == (4, 21, 0)
    assert struct.unpack_from(e + "QQQ", h, 24) == (0, 64, 0)
    assert struct.unpack_from(e + "IHHHHHH", h, 48) == (0, 64, 56, 3, 64, 0, 0)
    etext, end = k.symbols["etext"], k.symbols["end"]
    offset = rp(64 + 3 * 56)
    chunks = []
    for i in range(3):
        fields = struct.unpack_from(e + "IIQQQQQQ", h, 64 + 56 * i)
        p_type, p_flags, p_offset, p_vaddr, p_paddr, p_filesz, p_memsz, p_align = fields
        assert (p_type, p_flags, p_paddr, p_align) == (1, 4, (1 << 64) - 1, 4096)
        assert p_offset == offset and p_filesz == p_memsz
        chunks.append((p_vaddr, p_memsz))
        offset += p_memsz
    assert chunks[0] == (etext & ~0xFFF, rp(end) - (etext & ~0xFFF))
    # FreeBSD 12 KVA: guard page and 4 kernel-stack pages, then the message buffer
    assert chunks[1] == (0xE000000000000000 + 5 * PS, rp(len(t.msgbuf)))
    assert len(core) == base + offset
    at = base + 4096 + k.symbols["version"] - chunks[0][0]
    assert h[at - base : at - base + 8] == b"FreeBSD "
    assert t.kerndisp == 0 and t.walk == []


def test_physical_elf(dumps: dict[str, SynthDump]) -> None:
    d = dumps["elf-le-phys"]
    t = d.truth
    core = d.core.read_bytes()
    (phnum,) = struct.unpack_from("<H", core, 56)
    assert phnum == len(t.dump_avail)
    for i, (s, end) in enumerate(t.dump_avail):
        fields = struct.unpack_from("<IIQQQQQQ", core, 64 + 56 * i)
        assert fields[3:7] == ((1 << 64) - 1, s, end - s, end - s)
    assert t.regions == [] and set(t.hole_kinds) == {"raw-corefile"}
    reader = FullCore(core, Kernel(d.kernel.read_bytes()))
    with pytest.raises(Fault):
        reader.read(t.symbols["version"], 1)


def test_determinism_and_seeds(tmp_path: Path) -> None:
    dirs = [tmp_path / n for n in "abcd"]
    for p in dirs:
        p.mkdir()
    x = build(dirs[0], 4, "minidump-hpt-le")
    y = build(dirs[1], 4, "minidump-hpt-le")
    z = build(dirs[2], 5, "minidump-hpt-le")
    assert x.kernel.read_bytes() == y.kernel.read_bytes()
    assert x.core.read_bytes() == y.core.read_bytes()
    assert x.truth.walk == y.truth.walk and x.truth.regions == y.truth.regions
    assert x.core.read_bytes() != z.core.read_bytes() and x.truth.dump_avail != z.truth.dump_avail
    r = build(dirs[3], 4, "minidump-radix-le")
    assert r.truth.dump_avail == x.truth.dump_avail, "the same RAM under both MMUs"


def _check_reader(d: SynthDump) -> None:
    t = d.truth
    k = Kernel(d.kernel.read_bytes())
    reader = Minidump(d.core.read_bytes(), k)
    for va, data in t.regions:
        assert reader.read(va, len(data)) == data, hex(va)
    for va, kind in zip(t.holes, t.hole_kinds, strict=True):
        with pytest.raises(Fault):
            reader.read(va, 1)
        assert kind
    probes = []
    for leaf in t.leaves:
        probes += [leaf.va, leaf.va + leaf.size - 1, leaf.va + leaf.size, leaf.va - 1]
    for s, end in t.dump_avail:
        for pa in (s, end - 1, end, s - 1):
            probes += [0xC000000000000000 + pa, t.extras["startkernel"] - 0x100100 + pa]
    probes += [k.symbols[n] for n in ("version", "etext", "end", "btext")]
    for va in probes:
        va &= (1 << 64) - 1
        want = t.expect(va, 1)
        try:
            got: bytes | None = reader.read(va, 1)
        except Fault:
            got = None
        assert got == want, hex(va)
    walk = [(p.version, p.paddr, p.kmap_vaddr, p.dmap_vaddr, p.prot, p.offset, p.len)
            for p in t.walk]
    assert reader.walk() == walk


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("fmt", MINIDUMPS)
def test_struct_reader(tmp_path: Path, fmt: str, seed: int) -> None:
    _check_reader(build(tmp_path, seed, fmt))


@pytest.mark.parametrize(
    "fmt,options",
    [
        ("minidump-hpt", {"mmu": "mmu_g5"}),
        ("minidump-hpt-le", {"mmu": "mmu_g5"}),
        ("minidump-hpt", {"hw_direct_map": False}),
        ("minidump-hpt-le", {"mmu": "mmu_g5", "hw_direct_map": False}),
        ("minidump-hpt", {"pteg_count": 65536, "relocated": True}),
        ("minidump-radix", {"relocated": False}),
        ("minidump-radix-le", {"relocated": True}),
    ],
)
def test_struct_reader_options(tmp_path: Path, fmt: str, options: dict[str, object]) -> None:
    d = build(tmp_path, 9, fmt, **options)  # type: ignore[arg-type]
    _check_reader(d)
    t = d.truth
    core = d.core.read_bytes()
    e = "<" if fmt.endswith("-le") else ">"
    if "mmu" in options:
        assert core[32:40] == b"mmu_g5\0\0" and t.extras["mmu"] == 0
        assert t.extras["pmap_big_endian"] == 1
    if options.get("hw_direct_map") is False:
        assert struct.unpack_from(e + "i", core, 112) == (0,)
        assert t.extras["hw_direct_map"] == 0
        assert all(p.len == PS for p in t.walk if p.kmap_vaddr < 0xC008000000000000)
    if "pteg_count" in options:
        assert struct.unpack_from(e + "I", core, 76) == (65536 * 128,)
    if "relocated" in options:
        unrelocated = t.extras["startkernel"] == 0xC000000000100100
        assert unrelocated == (not options["relocated"])


@pytest.mark.parametrize("fmt", ELFS)
def test_struct_reader_elf(tmp_path: Path, fmt: str) -> None:
    for seed in (0, 1):
        (tmp_path / str(seed)).mkdir()
        d = build(tmp_path / str(seed), seed, fmt)
        t = d.truth
        reader = FullCore(d.core.read_bytes(), Kernel(d.kernel.read_bytes()))
        for va, data in t.regions:
            assert reader.read(va, len(data)) == data
        for va in t.holes:
            with pytest.raises(Fault):
                reader.read(va, 1)


def test_walk_contents(dumps: dict[str, SynthDump]) -> None:
    hpt = dumps["minidump-hpt"].truth
    sizes = {p.len for p in hpt.walk}
    assert sizes == {PS, 1 << 24}
    # the direct map's 16 MiB pages, vm_page_array, and kernel pages of every protection
    assert any(p.kmap_vaddr == 0xD000000000000000 and p.len == 1 << 24 for p in hpt.walk)
    assert {p.prot for p in hpt.walk if p.len == PS} >= {1 | 2, 1, 1 | 2 | 4}
    radix = dumps["minidump-radix"].truth
    assert {p.len for p in radix.walk} == {PS, 1 << 21, 1 << 30}
    assert all(p.kmap_vaddr >= 0xC008000000000000 for p in radix.walk)
    assert [p.kmap_vaddr for p in radix.walk] == sorted(p.kmap_vaddr for p in radix.walk)


def test_kernel_elf(dumps: dict[str, SynthDump]) -> None:
    for fmt, flags in (("minidump-hpt", 2), ("minidump-radix-le", 2), ("elf", 1), ("elf-le", 2)):
        d = dumps[fmt]
        raw = d.kernel.read_bytes()
        little = "-le" in fmt
        assert raw[:8] == b"\x7fELF\x02" + (b"\x01" if little else b"\x02") + b"\x01\x09"
        k = Kernel(raw)
        assert (k.e_type, k.e_machine, k.e_flags) == (3, 21, flags)
        t = d.truth
        assert k.symbols["kernbase"] == 0x100100 == t.KERNBASE and k.symbols["btext"] == 0x100100
        for name, value in t.symbols.items():
            assert k.symbols[name] == value, name
        order = "little" if little else "big"
        pairs = [int.from_bytes(t.variables["dump_avail"][i : i + 8], order)
                 for i in range(0, 256, 8)]
        got = [(pairs[i], pairs[i + 1]) for i in range(0, 32, 2) if pairs[i + 1]]
        assert got == t.dump_avail
        if fmt.startswith("minidump"):
            start = int.from_bytes(t.variables["__startkernel"], order)
            assert start == t.extras["startkernel"]
            assert t.expect(k.symbols["__startkernel"], 8) == t.variables["__startkernel"]
            assert int.from_bytes(t.variables["hw_direct_map"], order) == 1


def test_options_and_limits(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown powerpc64 dump format"):
        build(tmp_path, 0, "minidump")
    bad: list[tuple[str, dict[str, object]]] = [
        ("minidump-hpt", {"pteg_count": 1000}),
        ("minidump-hpt", {"pteg_count": 1024}),
        ("minidump-hpt", {"mmu": "mmu_radix"}),
        ("minidump-radix", {"mmu": "mmu_g5"}),
        ("minidump-radix", {"hw_direct_map": False}),
        ("elf", {"relocated": True}),
        ("elf", {"pteg_count": 4096}),
        ("elf", {"extra_symbols": -1}),
    ]
    for fmt, options in bad:
        with pytest.raises(ValueError):
            build(tmp_path, 0, fmt, **options)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        build(tmp_path, 0, "elf", no_such_option=1)  # type: ignore[call-arg]
    for fmt in MINIDUMPS + ("elf",):
        start = time.perf_counter()
        d = build(tmp_path, 3, fmt)
        assert time.perf_counter() - start < 1.0, fmt
        assert d.core.stat().st_size < 12 << 20, fmt
