"""The 32-bit powerpc writer: hand-worked bytes, determinism, a struct reader, the kernel.

Offsets and field positions below are worked out by hand from formats.md 1.1, 4.1 and 10
(ELF32 big-endian: ``Elf32_Ehdr`` 52 bytes, ``Elf32_Phdr`` 32 bytes with ``p_flags``
seventh), not computed by the writer.
"""

from __future__ import annotations

import struct
import time
from pathlib import Path

import pytest
from synth_powerpc_reader import Fault, FullCore, Kernel

from pykvm.synth import SynthDump
from pykvm.synth.arch_powerpc import FORMATS, POWERPC_PHYS_FORMATS, SPEC, build

PS = 4096


def rp(x: int) -> int:
    return (x + PS - 1) // PS * PS


@pytest.fixture(scope="module")
def dumps(tmp_path_factory: pytest.TempPathFactory) -> dict[str, SynthDump]:
    out = {}
    for fmt in FORMATS + POWERPC_PHYS_FORMATS:
        out[fmt] = build(tmp_path_factory.mktemp(fmt), 11, fmt)
    return out


def test_formats() -> None:
    assert FORMATS == ("elf", "elf-kdh")
    assert POWERPC_PHYS_FORMATS == ("elf-phys", "elf-phys-kdh")


@pytest.mark.parametrize("fmt", ["elf", "elf-kdh"])
def test_virtual_core_by_hand(dumps: dict[str, SynthDump], fmt: str) -> None:
    d = dumps[fmt]
    core = d.core.read_bytes()
    k = Kernel(d.kernel.read_bytes())
    t = d.truth
    base = 512 if fmt == "elf-kdh" else 0
    if base:
        assert core[:20] == b"FreeBSD Kernel Dump\0"
        assert core[20:32] == b"powerpc".ljust(12, b"\0")
        version, archver, dumplength = struct.unpack_from(">IIQ", core, 32)
        assert (version, archver) == (4, 1)
        assert dumplength == len(core) - 512
        (extent,) = struct.unpack_from(">Q", core, 496)
        assert extent == dumplength
        acc = 0
        for (w,) in struct.iter_unpack(">I", core[:512]):
            acc ^= w
        assert acc == 0, "kerneldumpheader parity"
        assert core[128:128 + 7] == b"FreeBSD"
    h = core[base:]
    assert h[:8] == b"\x7fELF\x01\x02\x01\xff"  # ELF32, MSB, EV_CURRENT, STANDALONE
    e_type, e_machine, e_version = struct.unpack_from(">HHI", h, 16)
    assert (e_type, e_machine, e_version) == (4, 20, 0)
    e_entry, e_phoff, e_shoff, e_flags = struct.unpack_from(">IIII", h, 24)
    assert (e_entry, e_phoff, e_shoff, e_flags) == (0, 52, 0, 0)
    ehsize, phentsize, phnum, shentsize, shnum = struct.unpack_from(">HHHHH", h, 40)
    assert (ehsize, phentsize, phnum, shentsize, shnum) == (52, 32, 3, 40, 0)
    # chunk 1: trunc_page(_etext) .. round_page(_end); chunk 2: the message buffer
    etext, end = k.symbols["etext"], k.symbols["end"]
    msg_va = t.extras["msgbuf_va"]
    expect_first = [(etext & ~0xFFF, rp(end) - (etext & ~0xFFF)), (msg_va, rp(len(t.msgbuf)))]
    offset = rp(52 + 3 * 32)
    assert offset == 4096
    chunks = []
    for i in range(3):
        fields = struct.unpack_from(">IIIIIIII", h, 52 + 32 * i)
        p_type, p_offset, p_vaddr, p_paddr, p_filesz, p_memsz, p_flags, p_align = fields
        assert (p_type, p_flags, p_align, p_paddr) == (1, 4, 4096, 0xFFFFFFFF)
        assert p_offset == offset and p_filesz == p_memsz
        chunks.append((p_vaddr, p_memsz))
        offset += p_memsz
    assert chunks[:2] == expect_first
    assert chunks[2][0] == msg_va + rp(len(t.msgbuf)), "chunk 3 starts after the msgbuf"
    assert len(core) == base + offset
    # the version string at its link address, found through chunk 1 by hand
    version_va = k.symbols["version"]
    at = base + 4096 + version_va - chunks[0][0]
    assert core[at : at + 8] == b"FreeBSD "
    assert core[at : at + len(t.variables["version"])] == t.variables["version"]
    # the message buffer is chunk 2's first bytes
    at = base + 4096 + chunks[0][1]
    assert core[at : at + len(t.msgbuf)] == t.msgbuf
    assert t.phdrs and [p.p_vaddr for p in t.phdrs] == [c[0] for c in chunks]


@pytest.mark.parametrize("fmt", ["elf-phys", "elf-phys-kdh"])
def test_physical_core_by_hand(dumps: dict[str, SynthDump], fmt: str) -> None:
    d = dumps[fmt]
    core = d.core.read_bytes()
    t = d.truth
    base = 512 if fmt.endswith("kdh") else 0
    h = core[base:]
    (phnum,) = struct.unpack_from(">H", h, 44)
    assert phnum == len(t.dump_avail)
    offset = rp(52 + 32 * phnum)
    for i, (s, e) in enumerate(t.dump_avail):
        fields = struct.unpack_from(">IIIIIIII", h, 52 + 32 * i)
        assert fields == (1, offset, 0xFFFFFFFF, s, e - s, e - s, 4, 4096)
        assert h[offset : offset + 64] == t.phys_expect(s, 64)
        offset += e - s
    assert len(core) == base + offset
    assert t.regions == [] and t.holes and set(t.hole_kinds) == {"raw-corefile"}
    assert t.dumped_pages == t.physmem // PS
    reader = FullCore(core, Kernel(d.kernel.read_bytes()))
    assert not reader.virtual
    for va in t.holes:
        with pytest.raises(Fault):
            reader.read(va, 1)


def test_determinism_and_seeds(tmp_path: Path) -> None:
    a, b, c = (tmp_path / n for n in "abc")
    for p in (a, b, c):
        p.mkdir()
    x, y, z = build(a, 4, "elf-kdh"), build(b, 4, "elf-kdh"), build(c, 5, "elf-kdh")
    assert x.kernel.read_bytes() == y.kernel.read_bytes()
    assert x.core.read_bytes() == y.core.read_bytes()
    assert x.truth.regions == y.truth.regions and x.truth.holes == y.truth.holes
    assert x.core.read_bytes() != z.core.read_bytes()
    assert x.truth.dump_avail != z.truth.dump_avail


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("fmt", ["elf", "elf-kdh"])
def test_struct_reader(tmp_path: Path, seed: int, fmt: str) -> None:
    d = build(tmp_path, seed, fmt)
    t = d.truth
    reader = FullCore(d.core.read_bytes(), Kernel(d.kernel.read_bytes()))
    assert reader.prefix == t.layout["prefix"]
    for va, data in t.regions:
        assert reader.read(va, len(data)) == data, hex(va)
    assert set(t.hole_kinds) >= {"text-not-dumped", "unmapped-kva", "kva-not-dumped", "user"}
    for va in t.holes:
        with pytest.raises(Fault):
            reader.read(va, 1)
    probes = []
    for leaf in t.leaves:
        probes += [leaf.va, leaf.va + leaf.size - 1, leaf.va + leaf.size]
    for p in t.phdrs:
        probes += [p.p_vaddr - 1, p.p_vaddr, p.p_vaddr + p.p_memsz - 1, p.p_vaddr + p.p_memsz]
    for va in probes:
        want = t.expect(va, 1)
        try:
            got: bytes | None = reader.read(va, 1)
        except Fault:
            got = None
        assert got == want, hex(va)


def test_kernel_elf(dumps: dict[str, SynthDump]) -> None:
    d = dumps["elf"]
    raw = d.kernel.read_bytes()
    assert raw[:8] == b"\x7fELF\x01\x02\x01\x09"
    k = Kernel(raw)
    assert (k.e_type, k.e_machine, k.e_flags) == (3, 20, 0)
    t = d.truth
    assert k.symbols["kernbase"] == 0x100100 == SPEC.kernbase == t.KERNBASE
    assert k.symbols["btext"] == 0x100100, ".text starts at kernbase"
    (entry,) = struct.unpack_from(">I", raw, 24)
    assert entry == 0x100100
    for name, value in t.symbols.items():
        assert k.symbols[name] == value, name
    pairs = struct.unpack(">32I", t.variables["dump_avail"])
    got = [(pairs[i], pairs[i + 1]) for i in range(0, 32, 2) if pairs[i + 1]]
    assert got == t.dump_avail
    (msgbuf_phys,) = struct.unpack(">I", t.variables["msgbuf_phys"])
    assert msgbuf_phys == t.extras["msgbuf_pa"]
    assert t.expect(k.symbols["msgbuf_phys"], 4) == t.variables["msgbuf_phys"]
    assert t.vm_min_kernel_address == 0xD0000000 and t.kernphys == 0x100000


def test_options_and_limits(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown powerpc dump format"):
        build(tmp_path, 0, "minidump")
    with pytest.raises(ValueError):
        build(tmp_path, 0, "elf", extra_symbols=-1)
    with pytest.raises(TypeError):
        build(tmp_path, 0, "elf", no_such_option=1)  # type: ignore[call-arg]
    start = time.perf_counter()
    d = build(tmp_path, 7, "elf", extra_symbols=500)
    assert time.perf_counter() - start < 1.0
    assert d.core.stat().st_size < 1 << 20
    assert Kernel(d.kernel.read_bytes()).symbols["synth_extra_000499"]
    start = time.perf_counter()
    p = build(tmp_path, 7, "elf-phys")
    assert time.perf_counter() - start < 2.0
    assert p.core.stat().st_size < 32 << 20
