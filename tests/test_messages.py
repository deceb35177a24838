"""Every libkvm message reachable on amd64 dumps, with its exact text.

Translation failures keep libkvm's whole chain in ``FaultError.chain`` (the
hard, backend-specific text first, then the soft ``invalid address``); with a
program name the hard text goes to stderr exactly as libkvm prints it.
"""

from __future__ import annotations

import re
import struct
from pathlib import Path

import pytest

import pykvm
from pykvm.synth import SynthDump, build_amd64

MD = "_amd64_minidump_vatop"
MD1 = "_amd64_minidump_vatop_v1"
PHYSICAL_KINDS = {"superpage-hole", "pte-to-physical-hole", "pte-to-nodump-page",
                  "1g-page-hole"}


def minidump_text(d: SynthDump, va: int, kind: str) -> str | None:
    """The hard message kvm_minidump_amd64.c prints for a hole (formats.md 5.4, 5.5)."""
    t = d.truth
    fn = MD1 if t.version == 1 else MD
    if va >= t.kernbase:
        step = 12 if t.version == 1 else 21
        if (va - t.kernbase) >> step >= t.layout["pmapsize"] // 8:
            return None  # past the page-table section: no specific message
        if kind in PHYSICAL_KINDS:
            pa = t.translate(va)
            assert pa is not None
            return f"{fn}: physical address 0x{pa & ~0xFFF:x} not in minidump"
        if kind == "invalid-pte" or t.version == 1:
            return f"{fn}: pte not valid"
        return f"{fn}: pde not valid"
    if t.dmapbase <= va < t.dmapend:
        return f"{fn}: direct map address 0x{va:x} not in minidump"
    return f"{fn}: virtual address 0x{va:x} not minidumped"


ELF_TEXTS = {
    "invalid-pde": "_amd64_vatop: pde not valid",
    "unmapped-kva-gib": "_amd64_vatop: pdpe not valid",
    "above-kva": "_amd64_vatop: pdpe not valid",
    "dmap-beyond-ram": "_amd64_vatop: pdpe not valid",
    "user": "_amd64_vatop: pml4e not valid",
    "kernel-half-unmapped": "_amd64_vatop: pml4e not valid",
    "between-dmap-and-kva": "_amd64_vatop: pml4e not valid",
    "superpage-hole": "_amd64_vatop: 2MB page address not in dump",
    "invalid-pte": "_amd64_vatop: pte not valid",
    "pte-to-physical-hole": "_amd64_vatop: address not in dump",
    "1g-page-hole": "_amd64_vatop: 1GB page address not in dump",
}


def elf_text(d: SynthDump, va: int, kind: str) -> str:
    if kind == "dmap-physical-hole":  # the direct map's first GiB uses 2 MiB pages
        small = va - d.truth.dmapbase < 1 << 30
        return "_amd64_vatop: 2MB page address not in dump" if small else \
            "_amd64_vatop: 1GB page address not in dump"
    return ELF_TEXTS[kind]


@pytest.mark.parametrize("seed", [3, 11])
@pytest.mark.parametrize("fmt", ["minidump-v1", "minidump-v2", "minidump-v3", "elf"])
def test_hole_messages(tmp_path: Path, fmt: str, seed: int,
                       capsys: pytest.CaptureFixture[str]) -> None:
    d = build_amd64(tmp_path, seed=seed, fmt=fmt)
    assert len(d.truth.hole_kinds) == len(d.truth.holes) >= 10
    kd = pykvm.open(str(d.kernel), str(d.core), None, 0, "prog")
    with kd, pykvm.openfiles(str(d.kernel), str(d.core)) as kd2:
        for va, kind in zip(d.truth.holes, d.truth.hole_kinds, strict=True):
            hard = elf_text(d, va, kind) if fmt == "elf" else minidump_text(d, va, kind)
            with pytest.raises(pykvm.FaultError) as ei:
                kd.read(va, 8)
            soft = f"invalid address (0x{va:x})"
            assert str(ei.value) == soft
            assert ei.value.chain == ((hard, soft) if hard else (soft,)), kind
            assert capsys.readouterr().err == (f"prog: {hard}\n" if hard else ""), kind
            assert kd.geterr() == soft
            # without a program every text lands in the buffer; the last one stays
            with pytest.raises(pykvm.FaultError):
                kd2.read(va, 8)
            assert kd2.geterr() == soft
            assert capsys.readouterr().err == ""


def _rw_copy(d: SynthDump, tmp_path: Path) -> tuple[Path, bytearray]:
    data = bytearray(d.core.read_bytes())
    return tmp_path / "vmcore", data


def test_minidump_init_texts(tmp_path: Path) -> None:
    d = build_amd64(tmp_path, seed=5, fmt="minidump-v3", small_kva=True)
    lay = d.truth.layout
    core, data = _rw_copy(d, tmp_path)
    # the bitmap runs past the end of the file
    core.write_bytes(bytes(data[: lay["bitmap_off"] + 10]))
    with pytest.raises(pykvm.FormatError) as ei:
        pykvm.openfiles(str(d.kernel), str(core))
    assert str(ei.value) == f"cannot read {lay['bitmapsize']} bytes for bitmap"
    # the page map runs past the end of the file
    core.write_bytes(bytes(data[: lay["pmap_off"] + 100]))
    with pytest.raises(pykvm.FormatError) as ei:
        pykvm.openfiles(str(d.kernel), str(core))
    assert str(ei.value) == \
        f"cannot read {lay['pmapsize']} bytes from offset {lay['pmap_off']} for page map"
    # no page dumped at all: libkvm's zero-length mmap of the page data fails
    empty = bytearray(data)
    empty[lay["bitmap_off"]: lay["bitmap_off"] + lay["bitmapsize"]] = bytes(lay["bitmapsize"])
    core.write_bytes(bytes(empty))
    with pytest.raises(pykvm.KvmError) as ei:
        pykvm.openfiles(str(d.kernel), str(core))
    assert re.fullmatch(rf"cannot map 0 bytes from fd \d+ offset {lay['sparse_off']} "
                        r"for sparse map: Invalid argument", str(ei.value))


def _kernel_image_pde(d: SynthDump) -> tuple[int, int, int]:
    """(va, pmap entry index, PDE) of the page table mapping the kernel's ``version``."""
    t = d.truth
    va = t.symbols["version"]
    idx = (va - t.kernbase) >> 21
    pde, = struct.unpack_from("<Q", d.core.read_bytes(), t.layout["pmap_off"] + idx * 8)
    assert pde & 1 and not pde & 0x80
    return va, idx, pde


def test_page_table_page_missing_or_cut(tmp_path: Path) -> None:
    d = build_amd64(tmp_path, seed=5, fmt="minidump-v3", small_kva=True)
    va, idx, pde = _kernel_image_pde(d)
    core, data = _rw_copy(d, tmp_path)
    hole = 0xFFFF000  # far above the machine's RAM
    assert d.truth.phys_expect(hole, 1) is None
    bad = bytearray(data)
    struct.pack_into("<Q", bad, d.truth.layout["pmap_off"] + idx * 8, hole | (pde & 0xFFF))
    core.write_bytes(bytes(bad))
    with pykvm.openfiles(str(d.kernel), str(core)) as kd:
        with pytest.raises(pykvm.FaultError) as ei:
            kd.read(va, 4)
        assert ei.value.chain == (f"cannot find page table entry for {hole}",
                                  f"invalid address (0x{va:x})")
    # the page-table page is in the bitmap but the core ends before it
    pt_off = d.truth._offsets(pde & 0x000FFFFFFFFFF000) if d.truth._offsets else None
    assert pt_off is not None and pt_off > d.truth.layout["sparse_off"]
    core.write_bytes(bytes(data[: pt_off + 100]))
    with pykvm.openfiles(str(d.kernel), str(core)) as kd:
        with pytest.raises(pykvm.FaultError) as ei:
            kd.read(va, 4)
        pt = pde & 0x000FFFFFFFFFF000
        assert ei.value.chain == (f"cannot read page table entry for {pt}",
                                  f"invalid address (0x{va:x})")


def _pml4_file_offset(d: SynthDump) -> int:
    pa = d.truth.kpml4phys
    for p in d.truth.phdrs:
        if p.p_type == 1 and p.p_paddr <= pa < p.p_paddr + p.p_memsz:
            return p.p_offset + pa - p.p_paddr
    raise AssertionError("PML4 page not in the dump")


@pytest.mark.parametrize(("level", "text"), [
    (0, "_amd64_vatop: pdpe_pa not found"),
])
def test_elf_table_page_outside_the_dump(tmp_path: Path, level: int, text: str) -> None:
    d = build_amd64(tmp_path, seed=5, fmt="elf")
    va = d.truth.symbols["version"]
    core, data = _rw_copy(d, tmp_path)
    off = _pml4_file_offset(d) + ((va >> 39) & 511) * 8
    entry, = struct.unpack_from("<Q", data, off)
    struct.pack_into("<Q", data, off, (0x7F0000000 & ~0xFFF) | (entry & 0xFFF))
    core.write_bytes(bytes(data))
    with pykvm.openfiles(str(d.kernel), str(core)) as kd:
        with pytest.raises(pykvm.FaultError) as ei:
            kd.read(va, 4)
        assert ei.value.chain == (text, f"invalid address (0x{va:x})")
    del level


def test_elf_init_cannot_read_kpml4phys(tmp_path: Path) -> None:
    d = build_amd64(tmp_path, seed=5, fmt="elf")
    sym = pykvm.symtab_resolver(str(d.kernel))
    kernbase = d.truth.symbols["kernbase"]
    far = kernbase + (0x7F0 << 24)  # physical 0x7f0000000 after the legacy subtraction

    def resolver(name: str) -> int | None:
        return far if name == "KPML4phys" else sym(name)

    with pytest.raises(pykvm.KvmError) as ei:
        pykvm.open2(str(d.kernel), str(d.core), 0, resolver)
    assert str(ei.value) == "cannot read KPML4phys"
    pa = far - kernbase
    assert ei.value.chain == ("_amd64_vatop: bootstrap data not in dump",
                              f"invalid address (0x{pa:x})", "cannot read KPML4phys")


def test_elf_core_with_truncated_program_headers(tmp_path: Path) -> None:
    d = build_amd64(tmp_path, seed=5, fmt="elf")
    core, data = _rw_copy(d, tmp_path)
    core.write_bytes(bytes(data[:64 + 20]))
    with pytest.raises(pykvm.KvmError) as ei:
        pykvm.openfiles(str(d.kernel), str(core))
    assert str(ei.value) == "Missing or malformed ELF header"


@pytest.mark.parametrize("kernphys", [0x200000, 0x1000000, 0x6000000])
def test_kernel_not_at_2mib_with_dump_delta(tmp_path: Path, kernphys: int) -> None:
    d = build_amd64(tmp_path, seed=9, fmt="elf", kernphys=kernphys, dump_delta=True)
    assert any(p.p_type == 0x6FB5D000 for p in d.truth.phdrs)
    with pykvm.openfiles(str(d.kernel), str(d.core)) as kd:
        for va, blob in d.truth.regions:
            assert kd.read(va, len(blob)) == blob


def test_kernel_not_at_2mib_without_dump_delta_is_misread(tmp_path: Path) -> None:
    # libkvm's legacy rule reads KPML4phys at VA - kernbase: the wrong page when the
    # kernel was loaded elsewhere; pykvm cannot know better and must not crash.
    d = build_amd64(tmp_path, seed=9, fmt="elf", kernphys=0x6000000)
    try:
        with pykvm.openfiles(str(d.kernel), str(d.core)) as kd:
            va = d.truth.symbols["version"]
            try:
                assert kd.read(va, 8) != d.truth.expect(va, 8)
            except pykvm.FaultError:
                pass
    except pykvm.KvmError as exc:
        assert str(exc) == "cannot read KPML4phys"
