"""pykvm.synth.arch_mips: hand-worked bytes of every format, determinism, a struct-only
reader agreeing with the ground truth, the kernel ELF, options and limits.

Offsets and field positions below are worked out from formats.md 3.1-3.3 and 9.2 (and the
kernel's struct minidumphdr), never taken from the writer.
"""

from __future__ import annotations

import struct
import time
from pathlib import Path
from typing import Literal

import pytest
from synth_mips_reader import Kernel, Minidump

from pykvm import synth
from pykvm.synth import SynthDump
from pykvm.synth.arch_mips import FORMATS, build

PS = 4096
KERNBASE_PA = 0x100000  # KERNLOADADDR - KERNBASE: the image's physical address

# per ABI: (ELF class, EF_MIPS_ABI2 set, PTE bytes, NBPDR, VM_MIN_KERNEL_ADDRESS, KERNBASE,
#           PFN mask, sizeof(vm_paddr_t), sizeof(long), sizeof(struct msgbuf))
ABI = {
    "o32": (1, False, 4, 4 << 20, 0xC0000000, 0x80000000, 0x1FFFFFC0, 4, 4, 56),
    "n32": (1, True, 8, 2 << 20, 0xC0000000, 0x80000000, 0x3FFFFFFC0, 8, 4, 56),
    "n64": (2, False, 8, 2 << 20, 0xC000000000000000, 0xFFFFFFFF80000000, 0x3FFFFFFC0, 8, 8, 80),
}


def _parts(fmt: str) -> tuple[str, str, int]:
    p = fmt.split("-")
    return p[1], p[2], 1 if len(p) == 4 else 2


@pytest.fixture(scope="module")
def dumps(tmp_path_factory: pytest.TempPathFactory) -> dict[str, SynthDump]:
    out = {}
    for fmt in FORMATS:
        out[fmt] = build(tmp_path_factory.mktemp(fmt), 0, fmt, nkpt=1)
    return out


def test_formats() -> None:
    assert "mips" in synth.ARCHES
    assert len(FORMATS) == 12 and len(set(FORMATS)) == 12
    assert synth.default_format("mips") == "minidump-o32-be"
    for abi in ("o32", "n32", "n64"):
        for order in ("be", "le"):
            assert f"minidump-{abi}-{order}" in FORMATS
            assert f"minidump-{abi}-{order}-v1" in FORMATS


@pytest.mark.parametrize("fmt", FORMATS)
def test_hand_worked_bytes(dumps: dict[str, SynthDump], fmt: str) -> None:
    abi, order, version = _parts(fmt)
    cls, abi2, ptew, nbpdr, vm_min, kernbase, pfn_mask, _, _, msgbuf_struct = ABI[abi]
    e = ">" if order == "be" else "<"
    d = dumps[fmt]
    t = d.truth
    core = d.core.read_bytes()
    kern = d.kernel.read_bytes()

    # the header (struct minidumphdr): magic[24], u32 x4 at 24, u64 x3 at 40, u32 at 64
    assert core[:24] == b"minidump FreeBSD/mips\0\0\0"
    assert struct.unpack_from(e + "I", core, 24)[0] == version
    msgbufsize, bitmapsize, ptesize = struct.unpack_from(e + "III", core, 28)
    assert struct.unpack_from(e + "QQQ", core, 40) == (vm_min, 0, 0)
    dumpavailsize = struct.unpack_from(e + "I", core, 64)[0]
    header_end = 68 if version == 2 else 64
    assert dumpavailsize == (4096 if version == 2 else 0)
    assert core[header_end:PS] == bytes(PS - header_end)
    # 4 pages of kern.msgbufsize, less the struct msgbuf at their end
    assert msgbufsize == 4 * PS - msgbuf_struct
    # one page of PTEs per NBPDR of KVA
    assert ptesize == (t.kernel_vm_end - vm_min) // nbpdr * PS
    assert ptesize in (2 * PS, 3 * PS)  # nkpt=1 plus one or two grown page-table pages

    # section offsets, formats.md 3.1
    msgbuf_off = PS
    dump_avail_off = PS + 4 * PS  # round_page(msgbufsize)
    bitmap_off = dump_avail_off + (PS if version == 2 else 0)
    pte_off = bitmap_off + (bitmapsize + PS - 1) // PS * PS
    sparse_off = pte_off + ptesize
    assert len(core) == sparse_off + PS * t.dumped_pages
    assert t.layout["sparse_off"] == sparse_off and t.layout["pmap_off"] == pte_off
    assert t.layout["bitmap_off"] == bitmap_off

    # message buffer: the ring, then (to the end of the page) struct msgbuf
    assert core[msgbuf_off : msgbuf_off + msgbufsize] == t.msgbuf
    ptr = 8 if cls == 2 else 4
    tail = msgbuf_off + msgbufsize
    magic, size = struct.unpack_from(e + "II", core, tail + ptr)
    assert (magic, size) == (0x063062, msgbufsize)

    # dump_avail: u64 pairs in kernel byte order, a zero pair
    if version == 2:
        pairs = []
        off = dump_avail_off
        while True:
            s, end = struct.unpack_from(e + "QQ", core, off)
            off += 16
            if end == 0:
                break
            pairs.append((s, end))
        assert pairs == t.dump_avail and pairs[0][0] == 0
        assert core[off:bitmap_off] == bytes(bitmap_off - off)

    # the bitmap: the kernel's first page 0x100000 has bit id 256 in both versions (the
    # first range starts at 0); bits 0..255 (pages below it) are all set
    assert core[bitmap_off : bitmap_off + 32] == b"\xff" * 32
    word_bits = 64 if (cls == 2 and version == 2) else 32
    if order == "le":
        byte = bitmap_off + 32  # bit 256 = bit 0 of byte 32, whatever the word size
    elif word_bits == 32:
        byte = bitmap_off + 8 * 4 + 3  # word 8, its least significant byte last
    else:
        byte = bitmap_off + 4 * 8 + 7  # word 4
    assert core[byte] & 0x01
    # rank 256: the image's first page, as the kernel file has it
    image = sparse_off + 256 * PS
    assert core[image : image + PS] == kern[:PS]
    assert t.core_offset(KERNBASE_PA) == image

    # PTEs: slot 0 (the pcpu page) is PTE_G only; a mapped slot decodes by hand
    assert struct.unpack_from(e + ("I" if ptew == 4 else "Q"), core, pte_off)[0] == 0x1
    leaf = next(lf for lf in t.leaves if lf.pa < (1 << 32))
    idx = (leaf.va - vm_min) // PS
    pte = struct.unpack_from(e + ("I" if ptew == 4 else "Q"), core, pte_off + idx * ptew)[0]
    assert pte & 0x2 and pte == leaf.entry
    assert ((pte & pfn_mask) >> 6) << 12 == leaf.pa

    # the kernel ELF
    assert kern[4:6] == bytes([cls, 2 if order == "be" else 1])
    hdr = struct.unpack_from(e + "HH", kern, 16)
    assert hdr == (2, 8)  # ET_EXEC, EM_MIPS
    flags = struct.unpack_from(e + "I", kern, 48 if cls == 2 else 36)[0]
    assert bool(flags & 0x20) == abi2
    assert t.symbols["kernbase"] == kernbase == t.KERNBASE
    assert t.kernbase == t.vm_min_kernel_address == vm_min


@pytest.mark.parametrize("fmt", FORMATS)
def test_kernel_symbols_and_variables(dumps: dict[str, SynthDump], fmt: str) -> None:
    abi, order, _ = _parts(fmt)
    _, _, _, _, _, kernbase, _, paddr, long, _ = ABI[abi]
    d = dumps[fmt]
    t = d.truth
    k = Kernel(d.kernel.read_bytes())
    assert {n: t.symbols[n] for n in k.symbols} == k.symbols
    assert set(k.symbols) == set(t.symbols)
    bo: Literal["big", "little"] = "big" if order == "be" else "little"
    # the image is linked at KERNLOADADDR = KERNBASE + 1 MiB, in KSEG0
    assert t.symbols["btext"] == kernbase + KERNBASE_PA + (128 if long == 4 else 176)
    da = t.variables["dump_avail"]
    pairs = [int.from_bytes(da[i : i + paddr], bo) for i in range(0, 2 * paddr * 8, paddr)]
    flat = [x for r in t.dump_avail for x in r]
    assert pairs[: len(flat)] == flat and pairs[len(flat) : len(flat) + 2] == [0, 0]
    assert int.from_bytes(t.variables["kernel_vm_end"], bo) == t.kernel_vm_end
    assert len(t.variables["kernel_vm_end"]) == long
    assert int.from_bytes(t.variables["physmem"], bo) == t.physmem // PS
    segmap = int.from_bytes(t.variables["kernel_segmap"], bo)
    assert segmap == t.extras["kernel_segmap"]
    # the segment table is read through KSEG0 / XKPHYS and points at page-table pages
    assert t.expect(segmap, PS) is not None
    msgbufp = int.from_bytes(t.variables["msgbufp"], bo)
    raw = t.expect(msgbufp, long + 8)
    assert raw is not None
    assert int.from_bytes(raw[long : long + 4], bo) == 0x063062
    ring = int.from_bytes(raw[:long], bo)
    assert t.expect(ring, 64) == t.msgbuf[:64]


def test_determinism_and_seeds(tmp_path: Path) -> None:
    digests = []
    for name, seed in (("a", 5), ("b", 5), ("c", 6)):
        d = tmp_path / name
        d.mkdir()
        dump = build(d, seed, "minidump-n64-be")
        digests.append((dump.kernel.read_bytes(), dump.core.read_bytes(), dump.truth.dump_avail))
    assert digests[0] == digests[1]
    assert digests[0][1] != digests[2][1] and digests[0][2] != digests[2][2]


@pytest.mark.parametrize("seed", [0, 3])
@pytest.mark.parametrize("fmt", FORMATS)
def test_struct_reader(tmp_path: Path, fmt: str, seed: int) -> None:
    dump = build(tmp_path, seed, fmt)
    t = dump.truth
    r = Minidump(dump.core.read_bytes(), Kernel(dump.kernel.read_bytes()))
    assert r.npages == t.dumped_pages
    if r.version == 2:
        assert r.avail == t.dump_avail
    else:  # the implied linear range covers all RAM
        assert r.avail[0][0] == 0 and r.avail[0][1] >= t.dump_avail[-1][1]
    for va, data in t.regions:
        assert r.read(va, len(data)) == data, hex(va)
    for va, kind in zip(t.holes, t.hole_kinds, strict=True):
        assert r.read(va, 1) is None, (kind, hex(va))
    # probes around every leaf, every RAM range edge and the window edges
    probes: set[int] = set()
    for leaf in t.leaves:
        probes.update({leaf.va - 1, leaf.va, leaf.va + leaf.size - 4})
    ps = t.page_size
    for s, e in t.dump_avail:
        for pa in (s, s + ps, e - ps, e, e + ps):
            if pa < 0x20000000:
                probes.update({0x80000000 | pa, 0xA0000000 | pa})
                probes.update({0xFFFFFFFF80000000 | pa, 0xFFFFFFFFA0000000 | pa})
            probes.add(0x9800000000000000 | pa)
    probes.update({t.kernel_vm_end - 4, t.kernel_vm_end, t.vm_min_kernel_address - 4})
    for va in sorted(probes):
        va &= (1 << 64) - 1
        assert r.read(va, 4) == t.expect(va, 4), hex(va)
    assert r.walk() == [tuple(vars(p).values()) for p in t.walk]


def test_walk_and_kinds(dumps: dict[str, SynthDump]) -> None:
    t = dumps["minidump-o32-be"].truth
    assert {
        "pte-above-4g",
        "invalid-pte",
        "pte-to-physical-hole",
        "pte-to-nodump-page",
        "device-mapping",
        "dmap-not-dumped",
        "dmap-physical-hole",
        "user",
        "above-kva",
    } <= set(t.hole_kinds)
    # every valid PTE is one record, in index order; no direct-map alias
    assert [p.kmap_vaddr for p in t.walk] == sorted(leaf.va for leaf in t.leaves)
    assert all(p.dmap_vaddr == 0 and p.len == PS for p in t.walk)
    # read-only entries have no WRITE; READ|EXECUTE always
    prots = {p.prot for p in t.walk}
    assert prots == {0x5, 0x7}
    # the o32 frame above 4 GiB keeps its high bits
    above = [p for p in t.walk if p.paddr >= 1 << 32]
    assert len(above) == 1 and above[0].offset == -1
    n64 = dumps["minidump-n64-le"].truth
    assert "dmap-beyond-ram" in n64.hole_kinds and "pte-above-4g" not in n64.hole_kinds


def test_options(tmp_path: Path) -> None:
    for i, bad in enumerate(
        (
            {"nkpt": 0},
            {"nkpt": 33},
            {"load_offset": 0x1234},
            {"load_offset": 0},
            {"load_offset": 32 << 20},
            {"extra_symbols": -1},
        )
    ):
        d = tmp_path / f"bad{i}"
        d.mkdir()
        with pytest.raises(ValueError):
            build(d, 0, "minidump-o32-be", **bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown mips dump format"):
        build(tmp_path, 0, "minidump-o64-be")
    with pytest.raises(TypeError):
        synth.build("mips", tmp_path, 0, "minidump-o32-be", small_kva=True)
    d = tmp_path / "opts"
    d.mkdir()
    dump = build(
        d,
        2,
        "minidump-n32-le",
        nkpt=6,
        load_offset=0x1000,
        extra_symbols=40,
        kernel_name="k.debug",
        core_name="vmcore.3",
    )
    t = dump.truth
    assert dump.kernel.name == "k.debug" and dump.core.name == "vmcore.3"
    assert t.symbols["btext"] == 0x80001000 + 128 and t.kernphys == 0x1000
    assert t.extras["nkpt"] == 6 and t.layout["pmapsize"] in (7 * PS, 8 * PS)
    assert "synth_extra_000039" in t.symbols
    assert t.expect(t.symbols["version"], 8) == b"FreeBSD "


def test_limits(tmp_path: Path) -> None:
    for fmt in ("minidump-o32-be", "minidump-n64-be-v1"):
        d = tmp_path / fmt
        d.mkdir()
        start = time.perf_counter()
        dump = build(d, 9, fmt)
        assert time.perf_counter() - start < 1.0
        assert dump.core.stat().st_size < 4 << 20
        assert dump.kernel.stat().st_size < 256 << 10
