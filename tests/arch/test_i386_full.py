"""i386 ELF full dumps: PAE and non-PAE, old and new kernels (formats.md 6.6, 14 rows 6 and 16).

The cores are ELF32 ET_CORE EM_386 files built byte by byte in test_i386_build
(``PT_LOAD`` with ``p_vaddr = p_paddr``, data page-aligned after the headers,
segments back to back), opened through the public API with a resolver.
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from test_i386_build import (
    KERNBASE_LEGACY,
    KERNBASE_MODERN,
    PG_NX,
    PG_PS,
    PG_RW,
    PG_V,
    PS,
    FullDump,
    kernel_elf,
    pages_at,
    pattern,
    phys_bytes,
    write_kernel,
)

import pykvm
from pykvm.arch import i386 as i386_mod
from pykvm.arch import select_backend
from pykvm.image.elf import parse_ehdr

INV = "invalid address (0x%x)"
BOOT = "_i386_vatop: bootstrap data not in dump"
SP4M = PG_V | PG_RW | PG_PS
LEGACY_SYMS = {"kernbase": KERNBASE_LEGACY}


def legacy_nopae() -> tuple[FullDump, dict[str, int]]:
    """A FreeBSD <= 11 non-PAE dump: IdlePTD at VA 0xc0005000 (PA 0x5000).

    PDE 0x300 (va 0xc0000000): 4 MiB page at PA 0x400000, cut by the end of
    segment 0 at 0x600000; 0x301: page table at 0x11000; 0x302: page table
    outside the dump; 0x303: invalid; 0x304: 4 MiB page outside the dump;
    0x305: page table in segment 2, which the truncated file lacks.
    """
    d = FullDump(segments=[(0, 0x600000), (0x800000, 0x100000), (0x900000, PS)])
    d.truncate_at = d.offsets()[2]
    d.put32(0x5000, 0x10000)
    d.table(0x10000, {0x300: 0x400000 | SP4M, 0x301: 0x11000 | 3, 0x302: 0x650000 | 1,
                      0x303: 0, 0x304: 0xC00000 | PG_V | PG_PS, 0x305: 0x900000 | 1}, 4)
    d.table(0x11000, {0: 0x20000 | 3, 1: 0x30000 | 1, 2: 0, 3: 0x700000 | 1,
                      4: 0x800000 | 1}, 4)
    pages_at(d, [0x20000, 0x30000, 0x800000, 0x400000, 0x401000, 0x5FF000])
    return d, {**LEGACY_SYMS, "IdlePTD": 0xC0005000}


def legacy_pae() -> tuple[FullDump, dict[str, int]]:
    """A FreeBSD <= 11 PAE dump: IdlePDPT at VA 0xc0005000 holds the PDPT address 0x6000.

    The four directory pages are 0x10000-0x13000.  Index 0x600 (va
    0xc0000000): 2 MiB page at 0x400000, cut by the end of segment 0 at
    0x500000; 0x601: page table 0x14000; 0x602: table outside the dump; 0x603:
    invalid; 0x604: 2 MiB page outside; 0x605: table in the missing segment 2.
    Index 2 (page 0; va 0x400000) maps PA 0 with a 2 MiB page and index 517
    (page 1; va 0x40a00000) uses table 0x14000 too.
    """
    d = FullDump(segments=[(0, 0x500000), (0x800000, 0x100000), (0x900000, PS)])
    d.truncate_at = d.offsets()[2]
    d.put32(0x5000, 0x6000)
    d.table(0x6000, {i: (0x10000 + i * PS) | PG_V for i in range(4)}, 8)
    d.table(0x10000, {2: 0 | SP4M}, 8)
    d.table(0x11000, {5: 0x14000 | 3}, 8)
    d.table(0x12000, {}, 8)
    d.table(0x13000, {0: 0x400000 | SP4M, 1: 0x14000 | 3, 2: 0x650000 | 1, 3: 0,
                      4: 0xC00000 | PG_V | PG_PS, 5: 0x900000 | 1}, 8)
    d.table(0x14000, {0: 0x20000 | 3, 1: 0x30000 | 1 | PG_NX, 2: 0, 3: 0x700000 | 1,
                      4: (1 << 32) | 1}, 8)
    pages_at(d, [0x20000, 0x30000, 0x400000, 0x401000, 0x4FF000])
    return d, {**LEGACY_SYMS, "IdlePDPT": 0xC0005000}


def modern(pae_mode: int | None, *, pae_tables: bool) -> tuple[FullDump, dict[str, int]]:
    """A FreeBSD 12+ dump: KERNBASE == KERNLOAD == 8 MiB and the kernel at VA == PA.

    With ``pae_mode`` set the kernel has both pmaps (FreeBSD 13+): ``IdlePDPT``,
    ``IdlePTD_pae``, ``IdlePTD_nopae`` and ``pae_mode`` all exist; None gives a
    FreeBSD 12 kernel with one pmap (``IdlePDPT`` only when ``pae_tables``).
    """
    d = FullDump(segments=[(0, 0xA00000)])
    syms = {"kernbase": KERNBASE_MODERN}
    if pae_tables:
        d.put32(0x900000, 0x6000)  # IdlePDPT
        d.table(0x6000, {i: (0x10000 + i * PS) | PG_V for i in range(4)}, 8)
        d.table(0x10000, {4: 0x800000 | SP4M}, 8)  # va 8 MiB: 2 MiB identity page
        d.table(0x13000, {0: 0x14000 | 3}, 8)  # va 0xc0000000
        d.table(0x14000, {0: 0x20000 | 3}, 8)
        syms["IdlePDPT"] = 0x900000
    else:
        d.put32(0x900000, 0)  # IdlePDPT of a kernel with both pmaps that runs without PAE
        d.table(0x10000, {2: 0x800000 | SP4M, 0x300: 0x11000 | 3}, 4)
        d.table(0x11000, {0: 0x20000 | 3}, 4)
    d.put32(0x900008, 0x10000 if not pae_tables else 0x7000000)
    if pae_mode is not None:
        d.put32(0x900004, pae_mode)
        syms.update({"pae_mode": 0x900004, "IdlePTD_nopae": 0x900008,
                     "IdlePTD_pae": 0x90000C, "IdlePDPT": 0x900000})
    elif not pae_tables:
        syms["IdlePTD"] = 0x900008
    pages_at(d, [0x20000])
    return d, syms


def open_dump(tmp_path: Path, d: FullDump, syms: dict[str, int]) -> pykvm.Kvm:
    kernel = write_kernel(tmp_path / "kernel", syms)
    core = d.write(tmp_path / "vmcore")
    return pykvm.open2(str(kernel), str(core), 0, pykvm.symtab_resolver(str(kernel)))


def open_error(tmp_path: Path, d: FullDump, syms: dict[str, int]) -> pykvm.KvmError:
    with pytest.raises(pykvm.KvmError) as ei:
        open_dump(tmp_path, d, syms)
    assert isinstance(ei.value, pykvm.FormatError)
    return ei.value


def fault(kd: pykvm.Kvm, va: int, size: int = 8) -> pykvm.FaultError:
    with pytest.raises(pykvm.FaultError) as ei:
        kd.read2(va, size)
    assert str(ei.value) == kd.geterr()
    return ei.value


def file_bytes(tmp_path: Path, d: FullDump, pa: int, size: int) -> bytes:
    """What the core file holds for physical [pa, pa + size) (one segment)."""
    off = d.file_offset(pa)
    return (tmp_path / "vmcore").read_bytes()[off:off + size]


# --- non-PAE -------------------------------------------------------------------------------

@pytest.fixture
def nopae(tmp_path: Path):  # type: ignore[no-untyped-def]
    d, syms = legacy_nopae()
    with open_dump(tmp_path, d, syms) as kd:
        yield d, kd


def test_nopae_reads(nopae, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    d, kd = nopae
    assert kd.read2(0xC0400000, 8) == struct.pack("<Q", 0x20000)
    assert kd.read2(0xC0401010, 8) == struct.pack("<Q", 0x30010)
    assert kd.read2(0xC0404008, 8) == struct.pack("<Q", 0x800008)  # segment 1
    # across a 4 KiB page boundary into a page elsewhere in memory
    assert kd.read2(0xC0400FF8, 16) == phys_bytes(0x20FF8, 8) + phys_bytes(0x30000, 8)
    # inside the 4 MiB page, several pages at once (one translation serves them)
    assert kd.read2(0xC0000FF0, 3 * PS) == file_bytes(tmp_path, d, 0x400FF0, 3 * PS)
    assert kd.read2(0xC01FF000, PS) == pattern(0x5FF000)


def test_nopae_large_page_clamped_to_segment(nopae) -> None:  # type: ignore[no-untyped-def]
    """formats.md 14 row 6: libkvm would return 4 MiB - offset and read segment 1's bytes."""
    _, kd = nopae
    assert kd.read2(0xC01FFFF8, 8) == struct.pack("<Q", 0x5FFFF8)
    err = fault(kd, 0xC01FFFF8, 16)
    assert err.address == 0xC0200000
    assert err.chain == ("_i386_vatop: 4MB page address not in dump", INV % 0xC0200000)


def test_nopae_messages(nopae) -> None:  # type: ignore[no-untyped-def]
    _, kd = nopae
    cases = {
        0xC0C00000: "_i386_vatop: pde not valid",
        0xC1000005: "_i386_vatop: 4MB page address not in dump",
        0xC0800000: "_i386_vatop: pte_pa not found",
        0xC0402123: "_kvm_kvatop: pte not valid",
        0xC0403000: "_i386_vatop: address not in dump",
        0xC1400000: "_i386_vatop: pread: No error: 0",
        0xFFFFFFFF: "_i386_vatop: pde not valid",
        0x0: "_i386_vatop: pde not valid",
    }
    for va, text in cases.items():
        assert fault(kd, va, 1).chain == (text, INV % va), hex(va)


@pytest.mark.parametrize("va", [1 << 32, (1 << 32) + 0xC0000000, (1 << 64) - 4096])
def test_nopae_addresses_above_4gib(nopae, va: int) -> None:  # type: ignore[no-untyped-def]
    """formats.md 14 row 16: libkvm indexes past its 1024-entry copy of PTD."""
    _, kd = nopae
    err = fault(kd, va)
    assert err.chain == (INV % va,)
    assert err.address == va


def test_nopae_read_running_off_the_end(nopae) -> None:  # type: ignore[no-untyped-def]
    _, kd = nopae
    err = fault(kd, 0xC0401FF0, 0x20)
    assert err.address == 0xC0402000
    assert err.chain == ("_kvm_kvatop: pte not valid", INV % 0xC0402000)


# --- PAE -----------------------------------------------------------------------------------

@pytest.fixture
def pae(tmp_path: Path):  # type: ignore[no-untyped-def]
    d, syms = legacy_pae()
    with open_dump(tmp_path, d, syms) as kd:
        yield d, kd


def test_pae_reads(pae, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    d, kd = pae
    assert kd.read2(0xC0200000, 8) == struct.pack("<Q", 0x20000)
    assert kd.read2(0xC0201000, 8) == struct.pack("<Q", 0x30000)
    assert kd.read2(0xC0200FFC, 8) == phys_bytes(0x20FFC, 4) + phys_bytes(0x30000, 4)
    assert kd.read2(0xC0000000, 2 * PS) == pattern(0x400000) + pattern(0x401000)
    assert kd.read2(0xC00FF000, PS) == pattern(0x4FF000)
    # directory page 0 (va 0x400000 -> PA 0) and page 1 (va 0x40a00000 -> table 0x14000)
    assert kd.read2(0x405000, 4) == struct.pack("<I", 0x6000)
    assert kd.read2(0x40A00000, 8) == struct.pack("<Q", 0x20000)
    assert kd.read2(0x400000 + 0x13000, 8) == file_bytes(tmp_path, d, 0x13000, 8)


def test_pae_large_page_clamped_to_segment(pae) -> None:  # type: ignore[no-untyped-def]
    _, kd = pae
    err = fault(kd, 0xC00FFFF8, 16)
    assert err.address == 0xC0100000
    assert err.chain == ("_i386_vatop: 2MB page address not in dump", INV % 0xC0100000)


def test_pae_messages(pae) -> None:  # type: ignore[no-untyped-def]
    _, kd = pae
    cases = {
        0xC0600000: "_kvm_kvatop_pae: pde not valid",
        0xC0800010: "_i386_vatop: 2MB page address not in dump",
        0xC0400000: "_i386_vatop_pae: pdpe_pa not found",
        0xC0202000: "_i386_vatop_pae: pte not valid",
        0xC0203000: "_i386_vatop_pae: address not in dump",
        0xC0204000: "_i386_vatop_pae: address not in dump",  # frame above 4 GiB
        0xC0A00000: "_i386_vatop_pae: read: No error: 0",
        0xFFFFF000: "_kvm_kvatop_pae: pde not valid",
    }
    for va, text in cases.items():
        assert fault(kd, va, 1).chain == (text, INV % va), hex(va)


@pytest.mark.parametrize("va", [1 << 32, (1 << 33) + 5, (1 << 64) - 1])
def test_pae_addresses_above_4gib(pae, va: int) -> None:  # type: ignore[no-untyped-def]
    _, kd = pae
    assert fault(kd, va, 1).chain == (INV % va,)


# --- FreeBSD 12 and later: VA == PA kernels, one or both pmaps -------------------------------

@pytest.mark.parametrize(("pae_mode", "pae_tables"), [(0, False), (1, True), (None, True),
                                                      (None, False)],
                         ids=["both-pmaps-nopae", "both-pmaps-pae", "fbsd12-pae",
                              "fbsd12-nopae"])
def test_modern_kernels(tmp_path: Path, pae_mode: int | None, pae_tables: bool) -> None:
    d, syms = modern(pae_mode, pae_tables=pae_tables)
    with open_dump(tmp_path, d, syms) as kd:
        assert kd.read2(0xC0000010, 8) == struct.pack("<Q", 0x20010)
        # kernel variables read at VA == PA through the identity superpage
        assert kd.read2(0x900000, 4) == struct.pack("<I", 0x6000 if pae_tables else 0)
        assert kd.read2(0x800000, 4) == bytes(4)
        assert kd.geterr() == ""
        big = "_kvm_kvatop_pae: pde not valid" if pae_tables else "_i386_vatop: pde not valid"
        assert fault(kd, 0xD0000000).chain == (big, INV % 0xD0000000)


def test_both_pmaps_without_nopae_directory_symbol(tmp_path: Path) -> None:
    d, syms = modern(0, pae_tables=False)
    del syms["IdlePTD_nopae"]
    assert open_error(tmp_path, d, syms).chain == ("bad namelist",)


def test_both_pmaps_pae_mode_unreadable_follows_libkvm(tmp_path: Path) -> None:
    """pae_mode outside the dump: libkvm's choice (PAE from IdlePDPT, here 0)."""
    d, syms = modern(0, pae_tables=False)
    syms["pae_mode"] = 0xF00000
    with open_dump(tmp_path, d, syms) as kd:
        assert fault(kd, 0xC0000000).chain == ("_kvm_kvatop_pae: pde not valid",
                                               INV % 0xC0000000)


def test_missing_kernbase_native_uses_compiled_kernbase(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch
                                                        ) -> None:
    """On i386 libkvm falls back to its own KERNBASE (8 MiB since FreeBSD 12)."""
    monkeypatch.setattr(i386_mod, "host_machine", lambda: "i386")
    d, syms = modern(None, pae_tables=False)
    del syms["kernbase"]
    with open_dump(tmp_path, d, syms) as kd:
        assert kd.native()
        assert kd.read2(0xC0000000, 8) == struct.pack("<Q", 0x20000)


# --- initialisation errors -----------------------------------------------------------------

def test_missing_kernbase(tmp_path: Path) -> None:
    d, syms = legacy_nopae()
    del syms["kernbase"]
    assert open_error(tmp_path, d, syms).chain == ("cannot resolve kernbase",)


def test_bad_namelist(tmp_path: Path) -> None:
    d, _ = legacy_nopae()
    assert open_error(tmp_path, d, dict(LEGACY_SYMS)).chain == ("bad namelist",)


def test_cannot_read_idlepdpt(tmp_path: Path) -> None:
    d, syms = legacy_pae()
    syms["IdlePDPT"] = 0xC0F00000
    err = open_error(tmp_path, d, syms)
    assert str(err) == "cannot read IdlePDPT"
    assert err.chain == (BOOT, INV % 0xF00000, "cannot read IdlePDPT")


def test_cannot_read_pdpt_entry(tmp_path: Path) -> None:
    d, syms = legacy_pae()
    d.put32(0x5000, 0x7000000)
    assert open_error(tmp_path, d, syms).chain == (BOOT, INV % 0x7000000, "Cannot read PDPT")


def test_cannot_read_pdpt_page(tmp_path: Path) -> None:
    d, syms = legacy_pae()
    d.table(0x6000, {0: 0x10000 | 1, 1: 0x11000 | 1, 2: 0x7000000 | 1, 3: 0x13000 | 1}, 8)
    assert open_error(tmp_path, d, syms).chain == (BOOT, INV % 0x7000000, "cannot read PDPT")


def test_pdpt_entries_above_4gib(tmp_path: Path) -> None:
    """The PDPT entry's frame is 52 bits wide; a frame above 4 GiB is in no ELF32 segment."""
    d, syms = legacy_pae()
    d.table(0x6000, {0: (5 << 32) | 0x10000 | 1}, 8)
    assert open_error(tmp_path, d, syms).chain == (BOOT, INV % ((5 << 32) | 0x10000),
                                                   "cannot read PDPT")


def test_cannot_read_idleptd(tmp_path: Path) -> None:
    d, syms = legacy_nopae()
    syms["IdlePTD"] = 0xC0F00000
    assert open_error(tmp_path, d, syms).chain == (BOOT, INV % 0xF00000, "cannot read IdlePTD")


def test_cannot_read_ptd(tmp_path: Path) -> None:
    d, syms = legacy_nopae()
    d.put32(0x5000, 0x7000000)
    assert open_error(tmp_path, d, syms).chain == (BOOT, INV % 0x7000000, "cannot read PTD")


def test_ptd_crossing_segment_end(tmp_path: Path) -> None:
    """Bootstrap reads are clamped to the segment too: the second chunk is not in the dump."""
    d, syms = legacy_nopae()
    d.put32(0x5000, 0x5FF800)
    assert open_error(tmp_path, d, syms).chain == (BOOT, INV % 0x600000, "cannot read PTD")


def test_ptd_in_truncated_part_of_core(tmp_path: Path) -> None:
    """The read loop stops silently at the end of the file; only the init text remains."""
    d, syms = legacy_nopae()
    d.put32(0x5000, 0x900000)
    assert open_error(tmp_path, d, syms).chain == ("cannot read PTD",)


def test_invalid_core(tmp_path: Path) -> None:
    kernel = write_kernel(tmp_path / "kernel", {**LEGACY_SYMS, "IdlePTD": 0xC0005000})
    core = tmp_path / "vmcore"
    for image in (b"not an ELF file at all" * 10,
                  b"\x7fELF" + bytes([2, 1, 1, 255]) + bytes(200)):
        core.write_bytes(image)
        with pytest.raises(pykvm.FormatError) as ei:
            pykvm.open2(str(kernel), str(core), 0, pykvm.symtab_resolver(str(kernel)))
        assert str(ei.value) == "invalid core"
    d, _ = legacy_nopae()
    d.machine = 62
    d.write(core)
    with pytest.raises(pykvm.FormatError) as ei:
        pykvm.open2(str(kernel), str(core), 0, pykvm.symtab_resolver(str(kernel)))
    assert str(ei.value) == "invalid core"


# --- API odds and ends ---------------------------------------------------------------------

def test_walk_kerndisp_info(nopae) -> None:  # type: ignore[no-untyped-def]
    _, kd = nopae
    assert list(kd.walk_pages()) == []
    called: list[pykvm.KvmPage] = []
    assert kd.walk_pages_cb(lambda p: called.append(p) or 1) == 0
    assert called == []
    assert kd.kerndisp() == 0
    info = kd.info()
    assert (info.arch, info.fmt, info.version, info.native) == ("i386", "elf", None, False)
    assert info.pages == (0x600000 + 0x100000 + PS) // PS
    assert kd.geterr() == ""


def test_probe_takes_full_dump_only() -> None:
    eh = parse_ehdr(kernel_elf({"kernbase": 0})[:52])
    assert select_backend(eh, False) is i386_mod.I386ElfCore
    assert select_backend(eh, True) is i386_mod.I386Minidump
