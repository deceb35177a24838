"""Opening descriptors: the order of checks and the exact texts (api.md 4, 14.4-14.7)."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import pytest

import pykvm
from pykvm import errors as E


def ehdr64(*, machine: int = 62, e_type: int = 2, ei_class: int = 2, ei_data: int = 1,
           ei_version: int = 1, osabi: int = 9) -> bytes:
    """A bare Elf64_Ehdr, little-endian, packed by hand (no pykvm code involved)."""
    ident = b"\x7fELF" + bytes([ei_class, ei_data, ei_version, osabi]) + bytes(8)
    return ident + struct.pack("<HHIQQQIHHHHHH", e_type, machine, 1, 0, 0, 0, 0, 64, 56, 0,
                               64, 0, 0)


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    text = tmp_path / "some-file"
    text.write_text("this is a text file")
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    core = tmp_path / "core"
    core.write_bytes(b"x" * 100)
    return {"text": text, "empty": empty, "core": core, "dir": tmp_path}


def err_of(fn, *args, **kw) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(pykvm.KvmError) as ei:
        fn(*args, **kw)
    return str(ei.value)


def test_nonexistent_corefile() -> None:
    # kvm_open2_negative_test_nonexistent_corefile / 14.7 first row
    assert err_of(pykvm.openfiles, None, "/nonexistent") == \
        "/nonexistent: No such file or directory"
    assert err_of(pykvm.open2, None, "/nonexistent", 0) == \
        "/nonexistent: No such file or directory"


def test_nonexistent_execfile_with_dev_zero() -> None:
    # kvm_open2_negative_test_nonexistent_execfile: /dev/zero is a dump, not live
    assert err_of(pykvm.open2, "/nonexistent", "/dev/zero", 0) == \
        "/nonexistent: No such file or directory"


@pytest.mark.parametrize("flags", [1, 3, os.O_WRONLY | 4, 0o2000000])
def test_bad_flags(files: dict[str, Path], flags: int) -> None:
    assert err_of(pykvm.open2, str(files["text"]), str(files["core"]), flags) == "bad flags arg"


def test_exec_name_length_checked_before_flags() -> None:
    assert err_of(pykvm.open2, "x" * 1024, "/nonexistent", 1) == "exec file name too long"
    # 1023 bytes passes the length check; the flags check then fails
    assert err_of(pykvm.open2, "x" * 1023, "/nonexistent", 1) == "bad flags arg"
    # the length is measured on the encoded bytes
    assert err_of(pykvm.open2, "é" * 512, "/nonexistent", 0) == "exec file name too long"


def test_live_corefiles_are_classified_and_refused_off_freebsd() -> None:
    with pytest.raises(pykvm.LiveUnsupportedError) as ei:
        pykvm.open2("x" * 1023, "/dev/null", 0)
    assert str(ei.value) == "/dev/null: live kernel access needs a FreeBSD host"
    if os.path.exists("/dev/mem"):
        with pytest.raises(pykvm.KvmError) as ei2:
            pykvm.openfiles(None, None)
        assert str(ei2.value) in ("/dev/kmem: live kernel access needs a FreeBSD host",
                                  "/dev/mem: Permission denied")


def test_symlink_to_dev_null_is_not_live(tmp_path: Path) -> None:
    link = tmp_path / "null"
    link.symlink_to("/dev/null")
    # a character device that is not literally /dev/null: treated as a dump
    assert err_of(pykvm.open2, "/nonexistent", str(link), 0) == \
        "/nonexistent: No such file or directory"


def test_empty_corefile(files: dict[str, Path]) -> None:
    assert err_of(pykvm.open2, str(files["text"]), str(files["empty"]), 0) == \
        "empty file: Invalid argument"


def test_kernel_is_not_elf(files: dict[str, Path]) -> None:
    assert err_of(pykvm.open2, str(files["text"]), str(files["core"]), 0) == \
        "kernel is not an ELF file"


def test_empty_and_directory_kernels(files: dict[str, Path]) -> None:
    assert err_of(pykvm.open2, str(files["empty"]), str(files["core"]), 0) == "Invalid argument"
    assert err_of(pykvm.open2, str(files["dir"]), str(files["core"]), 0) == "Invalid argument"


@pytest.mark.parametrize(("data", "text"), [
    (b"\x7fELF" + bytes(12), "kernel is not an ELF file"),          # exactly 16 bytes
    (ehdr64(ei_version=2), "Unknown ELF API version"),
    (ehdr64(ei_class=3), "Missing or malformed ELF header"),
    (ehdr64(ei_data=0), "Missing or malformed ELF header"),
    (ehdr64()[:40], "Missing or malformed ELF header"),             # truncated header
    (ehdr64(machine=0x1234), "unsupported architecture"),
    (ehdr64(e_type=3), "unsupported architecture"),                # amd64 kernels are ET_EXEC
    (ehdr64(ei_class=1)[:50], "Missing or malformed ELF header"),   # Elf32 header too short
    (ehdr64(ei_class=1), "unsupported architecture"),               # ELFCLASS32 x86-64
])
def test_kernel_header_classification(tmp_path: Path, files: dict[str, Path], data: bytes,
                                      text: str) -> None:
    k = tmp_path / "kernel"
    k.write_bytes(data)
    with pytest.raises(pykvm.FormatError) as ei:
        pykvm.open2(str(k), str(files["core"]), 0)
    assert str(ei.value) == text


def test_invalid_core_for_amd64_kernel(tmp_path: Path, files: dict[str, Path]) -> None:
    k = tmp_path / "kernel"
    k.write_bytes(ehdr64())
    # kvm_open2_negative_test_invalid_corefile: a text file as the core of an amd64 kernel
    assert err_of(pykvm.open2, str(k), str(files["text"]), 0) == "invalid core"
    # an ELF core of the wrong type or machine is "invalid core" as well
    c = tmp_path / "core"
    c.write_bytes(ehdr64(e_type=2))
    assert err_of(pykvm.open2, str(k), str(c), 0) == "invalid core"
    c.write_bytes(ehdr64(e_type=4, machine=3))
    assert err_of(pykvm.open2, str(k), str(c), 0) == "invalid core"
    c.write_bytes(ehdr64(e_type=4, ei_class=1) + bytes(64))
    assert err_of(pykvm.open2, str(k), str(c), 0) == "invalid core"


def test_minidump_magic_and_version(tmp_path: Path) -> None:
    k = tmp_path / "kernel"
    k.write_bytes(ehdr64())
    c = tmp_path / "core"
    c.write_bytes(b"minidump FreeBSD/i386\0\0\0" + bytes(100))
    assert err_of(pykvm.open2, str(k), str(c), 0) == "not a minidump for this platform"
    c.write_bytes(b"minidump FreeBSD/amd64\0\0" + struct.pack("<I", 4) + bytes(100))
    assert err_of(pykvm.open2, str(k), str(c), 0) == "wrong minidump version. expected 3 got 4"
    c.write_bytes(b"minidump FreeBSD/amd64\0\0" + struct.pack("<I", 0) + bytes(100))
    assert err_of(pykvm.open2, str(k), str(c), 0) == "wrong minidump version. expected 3 got 0"
    c.write_bytes(b"minidump FreeBSD/amd64\0\0" + bytes(20))
    assert err_of(pykvm.open2, str(k), str(c), 0) == "cannot read dump header"
    # a bitmap claimed far larger than the file: refused before anything is allocated
    hdr = b"minidump FreeBSD/amd64\0\0" + struct.pack("<IIIIQQQI4x", 3, 0, 0xFFFFF000, 4096,
                                                       0, 0, 0, 4096)
    c.write_bytes(hdr.ljust(8192, b"\0"))
    assert err_of(pykvm.open2, str(k), str(c), 0) == \
        "cannot read 4294963200 bytes for bitmap"


def test_kvm_open_prints_to_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    # kvm_open_negative_test_nonexistent_corefile, with and without a program name
    with pytest.raises(pykvm.KvmError) as ei:
        pykvm.open(None, "/nonexistent", None, 0, None)
    assert str(ei.value) == "/nonexistent: No such file or directory"
    assert capsys.readouterr().err == ""
    with pytest.raises(pykvm.KvmError):
        pykvm.open(None, "/nonexistent", None, 0, "prog")
    assert capsys.readouterr().err == "prog: /nonexistent: No such file or directory\n"
    with pytest.raises(pykvm.KvmError):
        pykvm.open("/nonexistent", "/dev/zero", None, 0, "")
    assert capsys.readouterr().err == ": /nonexistent: No such file or directory\n"


def test_strerror_is_freebsds() -> None:
    import errno

    assert E.strerror(errno.ENXIO) == "Device not configured"
    assert E.strerror(errno.EBUSY) == "Device busy"
    assert E.strerror(errno.ENODEV) == "Operation not supported by device"
    assert E.strerror(errno.ERANGE) == "Result too large"
    assert E.strerror(errno.EOVERFLOW) == "Value too large to be stored in data type"
    assert E.strerror(errno.EAGAIN) == "Resource temporarily unavailable"
    assert E.strerror(0) == "No error: 0"
    assert E.strerror(4321) == "Unknown error: 4321"
