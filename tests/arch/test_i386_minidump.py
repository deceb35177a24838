"""i386 minidumps: versions 1 and 2, PAE and non-PAE (formats.md 6.2-6.5).

Every dump is built byte by byte in test_i386_build (never with the reader's
code) and opened through the public API with a resolver, as a non-native dump
must be on this host.
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from test_i386_build import (
    KERNBASE_LEGACY,
    KERNBASE_MODERN,
    MIB,
    PG_NX,
    PG_RW,
    PG_V,
    PS,
    Minidump,
    fake_superpage,
    pattern,
    phys_bytes,
    write_kernel,
)

import pykvm
from pykvm.arch import i386 as i386_mod

GIB = 1 << 30
VARIANTS = [(False, 1), (False, 2), (True, 1), (True, 2)]
IDS = ["nopae-v1", "nopae-v2", "pae-v1", "pae-v2"]


def standard(pae: bool, version: int, kernbase: int = KERNBASE_LEGACY) -> Minidump:
    """The reference dump of one variant.

    PTE index: 0 -> 0x100000 (RW), 1 -> 0x200000 (RO), 2 invalid, 3 -> 0x300000
    (not dumped), 4 -> 0x101000 (RW); from 1024 a superpage at 0x400000 written
    as the kernel's fake page-table page (4 MiB non-PAE, 2 MiB PAE) of which
    three pages are dumped.  PAE adds 5 -> 4 GiB (no-execute, second dump_avail
    range) and 6 -> 2 GiB (a hole between the ranges).
    """
    md = Minidump(pae=pae, version=version, kernbase=kernbase, nptes=2048,
                  msgbuf=b"kernel messages\n")
    md.ptes = {0: 0x100000 | PG_V | PG_RW, 1: 0x200000 | PG_V, 2: 0,
               3: 0x300000 | PG_V, 4: 0x101000 | PG_V | PG_RW}
    sp = 512 if pae else 1024
    for k, v in enumerate(fake_superpage(0x400000, sp)):
        md.ptes[1024 + k] = v
    pages = [0x100000, 0x101000, 0x200000, 0x400000, 0x401000, 0x400000 + (sp - 1) * PS]
    if pae:
        md.ptes[5] = (4 * GIB) | PG_V | PG_NX
        md.ptes[6] = (2 * GIB) | PG_V
        md.dump_avail = [(0, 16 * MIB), (4 * GIB, 4 * GIB + MIB)]
        pages.append(4 * GIB)
    md.pages = {pa: pattern(pa) for pa in pages}
    return md


def open_dump(kernel: Path, core: Path) -> pykvm.Kvm:
    return pykvm.open2(str(kernel), str(core), 0, pykvm.symtab_resolver(str(kernel)))


def build(tmp_path: Path, md: Minidump) -> tuple[Path, Path]:
    kernel = write_kernel(tmp_path / "kernel", {"kernbase": md.kernbase})
    return kernel, md.write(tmp_path / "vmcore")


def fault(kd: pykvm.Kvm, va: int, size: int = 8) -> pykvm.FaultError:
    with pytest.raises(pykvm.FaultError) as ei:
        kd.read2(va, size)
    return ei.value


def name(pae: bool) -> str:
    return "_i386_minidump_vatop_pae" if pae else "_i386_minidump_vatop"


@pytest.fixture(params=VARIANTS, ids=IDS)
def variant(request: pytest.FixtureRequest, tmp_path: Path):  # type: ignore[no-untyped-def]
    pae, version = request.param
    md = standard(pae, version)
    kernel, core = build(tmp_path, md)
    with open_dump(kernel, core) as kd:
        yield md, kd


# --- reading ----------------------------------------------------------------------------

def test_reads_known_addresses(variant) -> None:  # type: ignore[no-untyped-def]
    md, kd = variant
    k = md.kernbase
    assert kd.read2(k, 8) == struct.pack("<Q", 0x100000)
    assert kd.read2(k + 0x123, 5) == phys_bytes(0x100123, 5)
    assert kd.read2(k + PS, PS) == pattern(0x200000)
    assert kd.read2(k + 4 * PS + 0x10, 8) == struct.pack("<Q", 0x101010)
    # the superpage, through the fake page-table page
    assert kd.read2(k + 1024 * PS + 0x18, 8) == struct.pack("<Q", 0x400018)
    sp = 512 if md.pae else 1024
    last = 0x400000 + (sp - 1) * PS
    assert kd.read2(k + (1024 + sp - 1) * PS + 0xFF8, 8) == struct.pack("<Q", last + 0xFF8)


def test_read_across_page_boundary(variant) -> None:  # type: ignore[no-untyped-def]
    md, kd = variant
    k = md.kernbase
    # PTE 0 -> 0x100000, PTE 1 -> 0x200000: not adjacent physically or in the file
    assert kd.read2(k + PS - 8, 16) == phys_bytes(0x100FF8, 8) + phys_bytes(0x200000, 8)
    # superpage pages 0 and 1 are adjacent pages of the dump
    got = kd.read2(k + 1024 * PS + 100, 2 * PS - 100)
    assert got == phys_bytes(0x400000 + 100, 2 * PS - 100)


def test_read_running_into_hole_names_the_hole(variant) -> None:  # type: ignore[no-untyped-def]
    md, kd = variant
    k = md.kernbase
    err = fault(kd, k + PS + PS - 4, 16)  # page 1 ok, page 2 invalid PTE
    assert err.address == k + 2 * PS
    assert str(err) == f"invalid address ({hex(k + 2 * PS)})"
    assert err.chain == (f"{name(md.pae)}: pte not valid", f"invalid address ({hex(k + 2 * PS)})")
    assert kd.geterr() == str(err)


def test_messages(variant) -> None:  # type: ignore[no-untyped-def]
    md, kd = variant
    k = md.kernbase
    n = name(md.pae)
    inv = "invalid address (0x%x)"
    # invalid PTE
    assert fault(kd, k + 2 * PS + 7).chain == (f"{n}: pte not valid", inv % (k + 2 * PS + 7))
    # valid PTE, page not dumped
    va = k + 3 * PS + 1
    assert fault(kd, va).chain == (f"{n}: physical address 0x300000 not in minidump", inv % va)
    # a superpage page that was not dumped
    va = k + 1026 * PS
    assert fault(kd, va).chain == (f"{n}: physical address 0x402000 not in minidump",
                                   inv % va)
    # below kernbase
    va = k - 1
    assert fault(kd, va).chain == (f"{n}: virtual address {hex(va)} not minidumped", inv % va)
    assert fault(kd, 0).chain == (f"{n}: virtual address 0x0 not minidumped", inv % 0)
    # beyond the PTE array: only the soft message
    va = k + 2048 * PS
    assert fault(kd, va).chain == (inv % va,)
    va = (1 << 64) - 8
    assert fault(kd, va).chain == (inv % va,)


def test_pae_high_memory_and_holes(tmp_path: Path) -> None:
    md = standard(True, 2)
    with open_dump(*build(tmp_path, md)) as kd:
        k = md.kernbase
        assert kd.read2(k + 5 * PS + 8, 8) == struct.pack("<Q", 4 * GIB + 8)
        err = fault(kd, k + 6 * PS)
        assert err.chain[0] == ("_i386_minidump_vatop_pae: physical address 0x80000000 "
                                "not in minidump")


def test_pae_frame_mask_and_nopae_frame_mask(tmp_path: Path) -> None:
    """Bits above the frame are ignored: 52-bit frames with PAE, 32-bit without."""
    for pae in (False, True):
        d = tmp_path / str(pae)
        d.mkdir()
        md = standard(pae, 2)
        junk = (0x7FF << 52) if pae else 0
        md.ptes[0] = 0x100000 | PG_V | 0xF00 | junk
        with open_dump(*build(d, md)) as kd:
            assert kd.read2(md.kernbase, 8) == struct.pack("<Q", 0x100000)


def test_modern_kernbase(tmp_path: Path) -> None:
    md = standard(False, 2, kernbase=KERNBASE_MODERN)
    with open_dump(*build(tmp_path, md)) as kd:
        assert kd.read2(KERNBASE_MODERN + 8, 8) == struct.pack("<Q", 0x100008)
        assert fault(kd, 0x1000).chain[0] == ("_i386_minidump_vatop: virtual address 0x1000 "
                                              "not minidumped")


def test_version1_ignores_dumpavailsize_field(tmp_path: Path) -> None:
    md = standard(False, 1)
    md.dumpavailsize_v1 = 0x12345000  # garbage where version 2 keeps dumpavailsize
    with open_dump(*build(tmp_path, md)) as kd:
        assert kd.read2(md.kernbase, 8) == struct.pack("<Q", 0x100000)


def test_bitmap_rounding_and_msgbuf(tmp_path: Path) -> None:
    """A bitmap size that is not a page multiple: the sections are still page-rounded."""
    md = standard(False, 2)
    md.bitmapsize = 513
    md.msgbuf = b"x" * 5000
    with open_dump(*build(tmp_path, md)) as kd:
        assert kd.read2(md.kernbase + PS, 8) == struct.pack("<Q", 0x200000)
        assert kd.msgbuf() == b"x" * 5000


# --- walk_pages, kerndisp, info, native ------------------------------------------------

def expected_walk(md: Minidump) -> list[pykvm.KvmPage]:
    frame = 0x000FFFFFFFFFF000 if md.pae else 0xFFFFF000
    out = []
    for idx in sorted(md.ptes):
        pte = md.ptes[idx]
        if not pte & PG_V:
            continue
        pa = pte & frame
        prot = 1 | (2 if pte & PG_RW else 0) | (0 if pte & PG_NX else 4)
        offset = md.offset_of(pa) if pa in md.pages else -1
        out.append(pykvm.KvmPage(2, pa, md.kernbase + idx * PS, 0, prot, offset, PS))
    return out


def test_walk_pages_records(variant) -> None:  # type: ignore[no-untyped-def]
    md, kd = variant
    got = list(kd.walk_pages())
    want = expected_walk(md)
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert (g.version, g.paddr, g.kmap_vaddr, g.dmap_vaddr, g.prot, g.offset, g.len) == (
            w.version, w.paddr, w.kmap_vaddr, w.dmap_vaddr, w.prot, w.offset, w.len)
    # spot checks written out by hand
    k = md.kernbase
    assert got[0] == pykvm.KvmPage(2, 0x100000, k, 0, 7, md.offset_of(0x100000), PS)
    assert got[1] == pykvm.KvmPage(2, 0x200000, k + PS, 0, 5, md.offset_of(0x200000), PS)
    assert got[2] == pykvm.KvmPage(2, 0x300000, k + 3 * PS, 0, 5, -1, PS)
    if md.pae:
        high = [p for p in got if p.paddr == 4 * GIB]
        assert high == [pykvm.KvmPage(2, 4 * GIB, k + 5 * PS, 0, 1, md.offset_of(4 * GIB), PS)]


def test_walk_pages_callback_stops(variant) -> None:  # type: ignore[no-untyped-def]
    _, kd = variant
    seen: list[pykvm.KvmPage] = []

    def cb(p: pykvm.KvmPage) -> int:
        seen.append(p)
        return 0 if len(seen) == 3 else 1

    assert kd.walk_pages_cb(cb) == 0
    assert len(seen) == 3
    assert kd.walk_pages_cb(lambda p: 1) == 1


def test_kerndisp_info(variant) -> None:  # type: ignore[no-untyped-def]
    md, kd = variant
    assert kd.kerndisp() == 0
    info = kd.info()
    assert (info.arch, info.fmt, info.version, info.page_size) == ("i386", "minidump",
                                                                   md.version, PS)
    assert info.pages == len(md.pages)
    assert not info.native
    assert kd.geterr() == ""


@pytest.mark.parametrize(("machine", "order", "native"), [
    ("i386", "little", True), ("i686", "little", True), ("i586", "little", True),
    ("x86_64", "little", False), ("amd64", "little", False), ("aarch64", "little", False),
    ("i386", "big", False),
])
def test_native(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, machine: str, order: str,
                native: bool) -> None:
    kernel, core = build(tmp_path, standard(False, 2))
    with open_dump(kernel, core) as kd:
        monkeypatch.setattr(i386_mod, "host_machine", lambda: machine)
        monkeypatch.setattr(i386_mod.sys, "byteorder", order)
        assert kd.native() is native


def test_non_native_needs_resolver(tmp_path: Path) -> None:
    kernel, core = build(tmp_path, standard(False, 2))
    with pytest.raises(pykvm.NotNativeError) as ei:
        pykvm.open2(str(kernel), str(core), 0, None)
    assert str(ei.value) == "non-native kernel requires a symbol resolver"


# --- open errors ---------------------------------------------------------------------------

def open_error(tmp_path: Path, image: bytes) -> pykvm.KvmError:
    kernel = write_kernel(tmp_path / "kernel", {"kernbase": KERNBASE_LEGACY})
    core = tmp_path / "bad"
    core.write_bytes(image)
    with pytest.raises(pykvm.FormatError) as ei:
        open_dump(kernel, core)
    return ei.value


@pytest.mark.parametrize("magic", [
    b"minidump FreeBSD/amd64\0", b"minidump FreeBSD/i386X", b"minidump FreeBSD/arm\0",
    b"minidump FreeBSD/i38\0",
])
def test_wrong_magic(tmp_path: Path, magic: bytes) -> None:
    md = standard(False, 2)
    md.magic = magic
    assert str(open_error(tmp_path, md.image())) == "not a minidump for this platform"


@pytest.mark.parametrize(("version", "shown"), [(0, 0), (3, 3), (0xFFFFFFFF, -1),
                                                (0x80000000, -2147483648)])
def test_wrong_version(tmp_path: Path, version: int, shown: int) -> None:
    md = standard(False, 2)
    img = bytearray(md.image())
    struct.pack_into("<I", img, 24, version)
    err = open_error(tmp_path, bytes(img))
    assert str(err) == f"wrong minidump version. expected 2 got {shown}"


@pytest.mark.parametrize("size", [8, 24, 51])
def test_truncated_header(tmp_path: Path, size: int) -> None:
    img = standard(False, 2).image()[:size]
    assert str(open_error(tmp_path, img)) == "cannot read dump header"


def test_truncated_bitmap_then_pte_section(tmp_path: Path) -> None:
    md = standard(True, 2)
    lay = md.layout()
    img = md.image()
    err = open_error(tmp_path, img[:lay["bitmap"] + 100])
    assert str(err) == f"cannot read {lay['bitmapsize']} bytes for bitmap"
    err = open_error(tmp_path, img[:lay["pte"] + 100])
    assert str(err) == (f"cannot read {lay['ptesize']} bytes from offset {lay['pte']} "
                        "for page map")


def test_empty_bitmap(tmp_path: Path) -> None:
    md = standard(False, 2)
    md.pages = {}
    err = open_error(tmp_path, md.image())
    assert str(err).startswith("cannot map 0 bytes from fd ")
    assert str(err).endswith(" for sparse map: Invalid argument")


def test_amd64_kernel_does_not_claim_i386_dump(tmp_path: Path) -> None:
    """An ELFCLASS64 kernel never reaches the i386 backends."""
    kernel = write_kernel(tmp_path / "k64", {"kernbase": KERNBASE_LEGACY}, ei_class=2)
    core = standard(False, 2).write(tmp_path / "vmcore")
    with pytest.raises(pykvm.KvmError):
        open_dump(kernel, core)
