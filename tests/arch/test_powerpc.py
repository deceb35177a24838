"""32-bit powerpc "virtual" ELF full dumps (formats.md 10; lib/libkvm/kvm_powerpc.c).

Kernels and cores are built here byte by byte from the layouts of formats.md
1.1, 4.1 and 10 (never with the reader's code) and opened through the public
API with a resolver, as a non-native dump must be.
"""

from __future__ import annotations

import random
import struct
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pykvm
from pykvm.arch import powerpc as ppc_mod

EM_PPC = 20
EM_PPC64 = 21
ET_EXEC, ET_DYN, ET_CORE = 2, 3, 4
PS = 4096
ALL32 = 0xFFFFFFFF


# --- builders ---------------------------------------------------------------------

def make_kernel(path: Path, *, cls: int = 1, endian: str = ">", machine: int = EM_PPC,
                e_type: int = ET_DYN,
                symbols: tuple[tuple[str, int], ...] = (("kernbase", 0x100100),)) -> Path:
    """A kernel ELF: header, .symtab, .strtab, .shstrtab (formats.md 0, api.md 10.3)."""
    e = endian
    is64 = cls == 2
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
    shfmt = e + ("IIQQQQIIQQ" if is64 else "IIIIIIIIII")
    shdrs = [
        struct.pack(shfmt, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0),
        struct.pack(shfmt, 1, 2, 0, 0, sym_off, len(symtab), 2, 1, 8 if is64 else 4, symsize),
        struct.pack(shfmt, 9, 3, 0, 0, str_off, len(strtab), 0, 0, 1, 0),
        struct.pack(shfmt, 17, 3, 0, 0, shs_off, len(shstr), 0, 0, 1, 0),
    ]
    ident = b"\x7fELF" + bytes([cls, 1 if e == "<" else 2, 1, 9]) + b"\0" * 8
    tail = "HHIQQQIHHHHHH" if is64 else "HHIIIIIHHHHHH"
    hdr = ident + struct.pack(e + tail, e_type, machine, 1, 0, 0, sh_off, 0, ehsize,
                              56 if is64 else 32, 0, shentsize, 4, 3)
    blob = hdr + symtab + strtab + shstr
    blob += b"\0" * (sh_off - len(blob)) + b"".join(shdrs)
    path.write_bytes(blob)
    return path


def kerneldumpheader(arch: bytes, magic: bytes = b"FreeBSD Kernel Dump") -> bytes:
    """struct kerneldumpheader (formats.md 1.1): 512 bytes, big-endian fields."""
    h = bytearray(512)
    h[0:len(magic)] = magic
    h[20:20 + len(arch)] = arch
    struct.pack_into(">II", h, 32, 4, 1)
    return bytes(h)


def pattern(tag: int, n: int) -> bytes:
    """Recognisable bytes for one segment."""
    return random.Random(tag).randbytes(n)


@dataclass
class Seg:
    vaddr: int
    data: bytes
    paddr: int = ALL32


def make_core32(path: Path, segs: list[Seg], *, prefix: bytes = b"", osabi: int = 255,
                e_type: int = ET_CORE, machine: int = EM_PPC, cls: int = 1, data_enc: int = 2,
                version: int = 1, phnum: int | None = None, phoff: int = 52) -> Path:
    """A powerpc ELF32 core as dumpsys_generic writes it (formats.md 4.1, 10.3)."""
    n = len(segs)
    hdrsz = phoff + n * 32
    fileofs = (hdrsz + PS - 1) // PS * PS
    ident = b"\x7fELF" + bytes([cls, data_enc, version, osabi]) + b"\0" * 8
    eh = ident + struct.pack(">HHIIIIIHHHHHH", e_type, machine, 1, 0, phoff, 0, 0, 52, 32,
                             n if phnum is None else phnum, 40, 0, 0)
    body = bytearray(eh)
    body += b"\0" * (phoff - len(body))
    for s in segs:
        body += struct.pack(">IIIIIIII", 1, fileofs, s.vaddr, s.paddr, len(s.data),
                            len(s.data), 4, PS)
        fileofs += len(s.data)
    body += b"\0" * ((hdrsz + PS - 1) // PS * PS - len(body))
    for s in segs:
        body += s.data
    path.write_bytes(prefix + bytes(body))
    return path


KVA = 0xC0000000
SEGS = [
    Seg(0x00100000, pattern(1, 3 * PS)),          # the kernel image (KERNBASE region)
    Seg(KVA, pattern(2, 2 * PS)),
    Seg(KVA + 2 * PS, pattern(3, PS)),            # adjacent: a read crosses into it
    Seg(0xFFFFE000, pattern(4, 2 * PS)),          # ends at the top of the address space
]


def open_dump(kernel: Path, core: Path) -> pykvm.Kvm:
    return pykvm.open2(str(kernel), str(core), 0, pykvm.symtab_resolver(str(kernel)))


@pytest.fixture
def kernel(tmp_path: Path) -> Path:
    return make_kernel(tmp_path / "kernel")


@pytest.mark.parametrize("prefixed", [False, True])
def test_reads_known_addresses(tmp_path: Path, kernel: Path, prefixed: bool) -> None:
    prefix = kerneldumpheader(b"powerpc") if prefixed else b""
    core = make_core32(tmp_path / "vmcore", SEGS, prefix=prefix)
    with open_dump(kernel, core) as kd:
        assert kd.read2(0x00100000, 16) == SEGS[0].data[:16]
        assert kd.read2(0x00100000 + 5000, 300) == SEGS[0].data[5000:5300]
        assert kd.read2(KVA + 100, 8) == SEGS[1].data[100:108]
        # across the end of one segment into the next one
        want = SEGS[1].data[-10:] + SEGS[2].data[:30]
        assert kd.read2(KVA + 2 * PS - 10, 40) == want
        # a segment that ends exactly at 2**32
        assert kd.read2(0xFFFFF000, PS) == SEGS[3].data[PS:]
        assert kd.kerndisp() == 0
        assert list(kd.walk_pages()) == []
        assert kd.walk_pages_cb(lambda p: 1) == 0
        info = kd.info()
        assert (info.arch, info.fmt, info.version, info.page_size, info.pages) == \
            ("powerpc", "elf", None, 4096, 8)
        assert not kd.native()


def test_symbol_read_through_kernel_image(tmp_path: Path) -> None:
    kernel = make_kernel(tmp_path / "kernel", symbols=(("answer", 0x00100000 + 0x1234),))
    core = make_core32(tmp_path / "vmcore", SEGS)
    with open_dump(kernel, core) as kd:
        res = kd.nlist2(["answer"])
        assert res.missing == 0
        assert kd.read2(res["answer"].value, 4) == SEGS[0].data[0x1234:0x1238]


def test_outside_every_segment_is_silent(tmp_path: Path, kernel: Path) -> None:
    core = make_core32(tmp_path / "vmcore", SEGS)
    with open_dump(kernel, core) as kd:
        with pytest.raises(pykvm.FaultError) as ei:
            kd.read2(0x50000000, 4)
        assert kd.geterr() == ""  # libkvm stores no message at all (api.md 8.3)
        assert str(ei.value) == ""
        # a read running off the end of a segment into a hole fails as a whole
        with pytest.raises(pykvm.FaultError):
            kd.read2(KVA + 3 * PS - 4, 8)
        assert kd.geterr() == ""
        # beyond 32 bits nothing matches
        with pytest.raises(pykvm.FaultError):
            kd.read2(1 << 32, 1)


def test_raw_corefile_not_supported(tmp_path: Path, kernel: Path) -> None:
    # debug.minidump=0: p_vaddr all-ones, p_paddr = the physical address
    segs = [Seg(ALL32, pattern(5, PS), paddr=0x1000)]
    core = make_core32(tmp_path / "vmcore", segs)
    with open_dump(kernel, core) as kd:
        with pytest.raises(pykvm.FaultError) as ei:
            kd.read2(0x1000, 4)
        assert str(ei.value) == "Raw corefile not supported"
        assert ei.value.chain == ("Raw corefile not supported",)
        assert kd.geterr() == "Raw corefile not supported"


def test_raw_message_goes_to_stderr_with_program(tmp_path: Path, kernel: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    segs = [Seg(KVA, pattern(5, PS), paddr=0x1000)]
    core = make_core32(tmp_path / "vmcore", segs)
    kd = pykvm.Kvm("prog")
    with pykvm.kvm._run_open(kd, str(kernel), str(core), 0,
                             pykvm.symtab_resolver(str(kernel))):
        with pytest.raises(pykvm.FaultError):
            kd.read2(KVA, 4)
    assert capsys.readouterr().err == "prog: Raw corefile not supported\n"


@pytest.mark.parametrize("change", [
    {"osabi": 9}, {"e_type": ET_EXEC}, {"machine": EM_PPC64}, {"cls": 2},
    {"data_enc": 1}, {"version": 0},
])
def test_invalid_corefile(tmp_path: Path, kernel: Path, change: dict[str, int]) -> None:
    core = make_core32(tmp_path / "vmcore", SEGS, **change)  # type: ignore[arg-type]
    with pytest.raises(pykvm.FormatError) as ei:
        open_dump(kernel, core)
    assert str(ei.value) == "invalid corefile"


@pytest.mark.parametrize("prefix", [
    kerneldumpheader(b"powerpc64"),
    kerneldumpheader(b"powerpcX"),
    kerneldumpheader(b"powerpc", magic=b"FreeBSD Text Dump"),
    kerneldumpheader(b"powerpc", magic=b"Cleared Kernel Dump"),
])
def test_invalid_dump_header(tmp_path: Path, kernel: Path, prefix: bytes) -> None:
    core = make_core32(tmp_path / "vmcore", SEGS, prefix=prefix)
    with pytest.raises(pykvm.FormatError) as ei:
        open_dump(kernel, core)
    assert str(ei.value) == "invalid corefile"


def test_dump_header_then_bad_elf(tmp_path: Path, kernel: Path) -> None:
    core = make_core32(tmp_path / "vmcore", SEGS, prefix=kerneldumpheader(b"powerpc"), osabi=0)
    with pytest.raises(pykvm.FormatError) as ei:
        open_dump(kernel, core)
    assert str(ei.value) == "invalid corefile"


def test_tiny_and_non_elf_cores(tmp_path: Path, kernel: Path) -> None:
    for blob in (b"x", b"\x7fELF", b"minidump" + b"\0" * 100):
        core = tmp_path / "vmcore"
        core.write_bytes(blob)
        with pytest.raises(pykvm.FormatError) as ei:
            open_dump(kernel, core)
        assert str(ei.value) == "invalid corefile"


def test_cannot_map_headers(tmp_path: Path, kernel: Path) -> None:
    # no program headers at offset 0: libkvm's second mmap has length 0
    core = make_core32(tmp_path / "vmcore", [], phoff=0)
    with pytest.raises(pykvm.FormatError) as ei:
        open_dump(kernel, core)
    assert str(ei.value) == "cannot map corefile headers"
    # headers announced past the end of the file
    core = make_core32(tmp_path / "vmcore", SEGS[:1], phnum=2000)
    with pytest.raises(pykvm.FormatError) as ei:
        open_dump(kernel, core)
    assert str(ei.value) == "cannot map corefile headers"


def test_no_program_headers_reads_nothing(tmp_path: Path, kernel: Path) -> None:
    # e_phnum 0 with a non-zero e_phoff: libkvm still looks at the "first" header
    core = make_core32(tmp_path / "vmcore", [])
    with open_dump(kernel, core) as kd:
        with pytest.raises(pykvm.FaultError):
            kd.read2(KVA, 1)
        assert kd.geterr() == "Raw corefile not supported"


def test_truncated_data_gives_short_read(tmp_path: Path, kernel: Path) -> None:
    core = make_core32(tmp_path / "vmcore", SEGS)
    blob = core.read_bytes()
    core.write_bytes(blob[: PS + 100])  # headers, then 100 bytes of the first segment
    with open_dump(kernel, core) as kd:
        assert kd.read2(0x00100000, 200) == SEGS[0].data[:100]


@pytest.mark.parametrize(("kind", "expect"), [
    ({"e_type": ET_EXEC}, "unsupported architecture"),
    ({"endian": "<"}, "unsupported architecture"),
])
def test_probe(tmp_path: Path, kind: dict[str, object], expect: str) -> None:
    kernel = make_kernel(tmp_path / "kernel", **kind)  # type: ignore[arg-type]
    core = make_core32(tmp_path / "vmcore", SEGS)
    with pytest.raises(pykvm.KvmError) as ei:
        open_dump(kernel, core)
    assert str(ei.value) == expect


def test_probe_rules() -> None:
    from pykvm.arch import select_backend
    from pykvm.image.elf import Ehdr

    def eh(cls: int, data: int, e_type: int, machine: int) -> Ehdr:
        return Ehdr(cls, data, 1, 0, e_type, machine, 1, 0, 0, 0, 0, 52, 32, 0, 40, 0, 0)

    assert select_backend(eh(1, 2, ET_DYN, EM_PPC), False) is ppc_mod.PowerpcElfCore
    # libkvm's powerpc probe does not exclude minidumps
    assert select_backend(eh(1, 2, ET_DYN, EM_PPC), True) is ppc_mod.PowerpcElfCore
    assert select_backend(eh(1, 1, ET_DYN, EM_PPC), False) is None
    assert select_backend(eh(1, 2, ET_EXEC, EM_PPC), False) is None


def test_native(tmp_path: Path, kernel: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    core = make_core32(tmp_path / "vmcore", SEGS)
    with open_dump(kernel, core) as kd:
        for machine, want in (("ppc", True), ("powerpc", True), ("ppc64", False),
                              ("ppc64le", False), ("x86_64", False), ("aarch64", False)):
            monkeypatch.setattr(ppc_mod, "host_machine", lambda m=machine: m)
            for order in ("big", "little"):
                monkeypatch.setattr(sys, "byteorder", order)
                assert kd.native() is want
        # FreeBSD calls every powerpc "powerpc": the interpreter's word size decides
        monkeypatch.setattr(ppc_mod, "host_machine", lambda: "powerpc")
        monkeypatch.setattr(sys, "platform", "freebsd15")
        assert not kd.native()
        monkeypatch.setattr(sys, "maxsize", 2**31 - 1)
        assert kd.native()


def test_non_native_needs_resolver(tmp_path: Path, kernel: Path) -> None:
    core = make_core32(tmp_path / "vmcore", SEGS)
    with pytest.raises(pykvm.NotNativeError) as ei:
        pykvm.openfiles(str(kernel), str(core))
    assert str(ei.value) == "non-native kernel requires a symbol resolver"


# --- damaged inputs ---------------------------------------------------------------

TIME_BOUND = 5.0


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_damaged_cores_fail_cleanly(tmp_path_factory: pytest.TempPathFactory,
                                    data: st.DataObject) -> None:
    d = tmp_path_factory.mktemp("fuzz")
    kernel = make_kernel(d / "kernel")
    prefixed = data.draw(st.booleans())
    core = make_core32(d / "vmcore", SEGS,
                       prefix=kerneldumpheader(b"powerpc") if prefixed else b"")
    blob = bytearray(core.read_bytes())
    hdr_end = (512 if prefixed else 0) + 52 + len(SEGS) * 32
    if data.draw(st.booleans()):
        blob = blob[: data.draw(st.integers(1, len(blob)))]
    for _ in range(data.draw(st.integers(0, 8))):
        at = data.draw(st.integers(0, min(len(blob), hdr_end + 16) - 1))
        blob[at] ^= data.draw(st.integers(1, 255))
    core.write_bytes(bytes(blob))
    start = time.monotonic()
    try:
        with open_dump(kernel, core) as kd:
            for va in (0x00100000, KVA, KVA + 2 * PS - 10, 0xFFFFF000, 0x50000000):
                try:
                    kd.read2(va, data.draw(st.integers(0, 3 * PS)))
                except pykvm.KvmError:
                    pass
            list(kd.walk_pages())
    except pykvm.KvmError:
        pass
    assert time.monotonic() - start < TIME_BOUND


def test_segments_sharing_a_page(tmp_path: Path, kernel: Path) -> None:
    # two segments meet inside a page, and their data are not contiguous in the file
    a = Seg(KVA, pattern(21, 0x800))
    b = Seg(KVA + 0x800, pattern(22, 0x1000))
    core = make_core32(tmp_path / "vmcore", [b, a])
    with open_dump(kernel, core) as kd:
        assert kd.backend is not None and not kd.backend.cacheable()
        kd._caching = False  # what the descriptor must do for such a backend
        assert kd.read2(KVA + 0x900, 8) == b.data[0x100:0x108]
        assert kd.read2(KVA + 0x100, 8) == a.data[0x100:0x108]
        assert kd.read2(KVA + 0x7FC, 8) == a.data[-4:] + b.data[:4]
    core = make_core32(tmp_path / "vmcore", SEGS)
    with open_dump(kernel, core) as kd:
        assert kd.backend is not None and kd.backend.cacheable()
