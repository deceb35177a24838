"""The drop-in's calls: return conventions and error routing (api.md 3-12, 14.7, 16).

Expected values come from the synthetic dumps' ground truth and from the texts api.md
derives; the calls are made the way C (through ctypes) makes them.
"""

from __future__ import annotations

import ctypes
import errno
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import libkvm
import pytest

import pykvm
from pykvm.synth import SynthDump

ENOENT_TEXT = "No such file or directory"


@pytest.fixture(scope="module")
def dump(amd64_dumps: dict[str, SynthDump]) -> SynthDump:
    return amd64_dumps["minidump-v3"]


@pytest.fixture
def kd(dump: SynthDump) -> Iterator[libkvm.KvmHandle]:
    h = libkvm.kvm_openfiles(str(dump.kernel), str(dump.core), None, libkvm.O_RDONLY, None)
    assert h is not None
    yield h
    if not libkvm.calls._descs[int(h)].closed:
        assert libkvm.kvm_close(h) == 0


def errbuf(fill: bytes = b"") -> ctypes.Array[ctypes.c_char]:
    buf = ctypes.create_string_buffer(libkvm._POSIX2_LINE_MAX)
    buf.value = fill
    return buf


def open2_error(execfile: Any, corefile: Any, flags: int = 0, resolver: Any = None) -> str:
    buf = errbuf()
    assert libkvm.kvm_open2(execfile, corefile, flags, buf, resolver) is None
    return buf.value.decode()


def elf64(machine: int) -> bytes:
    """An Elf64 little-endian ET_EXEC header for ``machine``, packed by hand."""
    ident = b"\x7fELF" + bytes([2, 1, 1, 9]) + bytes(8)
    return ident + struct.pack("<HHIQQQIHHHHHH", 2, machine, 1, 0, 0, 0, 0, 64, 56, 0, 64,
                               0, 0)


# ------------------------------------------------------------ opening (4, 14.7)
def test_openfiles_nonexistent_core() -> None:
    buf = errbuf()
    assert libkvm.kvm_openfiles(None, "/nonexistent", None, 0, buf) is None
    assert buf.value == f"/nonexistent: {ENOENT_TEXT}".encode()


def test_open2_nonexistent_execfile_with_dev_zero() -> None:
    assert open2_error("/nonexistent", "/dev/zero") == f"/nonexistent: {ENOENT_TEXT}"


@pytest.mark.parametrize("flags", [1, 3, 4])
def test_bad_flags(dump: SynthDump, flags: int) -> None:
    assert open2_error(str(dump.kernel), str(dump.core), flags) == "bad flags arg"


def test_exec_name_checked_before_flags() -> None:
    assert open2_error("x" * 1024, "/nonexistent", 1) == "exec file name too long"
    assert open2_error(b"x" * 1023, "/nonexistent", 0) == f"/nonexistent: {ENOENT_TEXT}"


def test_open_file_kinds(tmp_path: Path, dump: SynthDump) -> None:
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    text = tmp_path / "some-file"
    text.write_text("this is a text file")
    core = tmp_path / "core"
    core.write_bytes(b"x" * 100)
    assert open2_error(str(dump.kernel), str(empty)) == "empty file: Invalid argument"
    assert open2_error(str(text), str(core)) == "kernel is not an ELF file"
    assert open2_error(str(empty), str(core)) == "Invalid argument"
    odd = tmp_path / "odd-kernel"
    odd.write_bytes(elf64(0x1234))
    assert open2_error(str(odd), str(dump.core)) == "unsupported architecture"


def test_non_native_needs_a_resolver(tmp_path: Path, dump: SynthDump) -> None:
    from pykvm.image.elf import host_machine

    # an aarch64 kernel header (riscv on an aarch64 host)
    machine = 243 if host_machine() in ("aarch64", "arm64") else 183
    data = bytearray(dump.kernel.read_bytes())
    struct.pack_into("<H", data, 18, machine)
    kernel = tmp_path / "kernel"
    kernel.write_bytes(bytes(data))
    assert open2_error(str(kernel), str(dump.core)) == \
        "non-native kernel requires a symbol resolver"


def test_live_null_follows_the_engine() -> None:
    """/dev/null: the drop-in reports what pykvm reports (no live kernels off FreeBSD)."""
    try:
        pykvm.open2("x" * 1023, "/dev/null", 0).close()
        expected = None
    except pykvm.KvmError as exc:
        expected = str(exc)
    buf = errbuf()
    h = libkvm.kvm_open2("x" * 1023, "/dev/null", 0, buf, None)
    if expected is None:
        assert h is not None and buf.value == b""
        libkvm.kvm_close(h)
    else:
        assert h is None and buf.value.decode() == expected


def test_errbuf_only_written_on_failure(dump: SynthDump) -> None:
    buf = errbuf(b"sentinel")
    h = libkvm.kvm_openfiles(str(dump.kernel), str(dump.core), None, 0, buf)
    assert h is not None
    assert buf.value == b"sentinel"
    assert libkvm.kvm_geterr(h) == ""
    assert libkvm.kvm_close(h) == 0
    h = libkvm.kvm_open2(str(dump.kernel), str(dump.core), 0, buf, None)
    assert h is not None and buf.value == b"sentinel"
    libkvm.kvm_close(h)


def test_null_errbuf_gets_nothing() -> None:
    assert libkvm.kvm_openfiles(None, "/nonexistent", None, 0, None) is None
    assert libkvm.kvm_open2(None, "/nonexistent", 0, ctypes.c_void_p(), None) is None


def test_errbuf_truncation() -> None:
    path = "/" + "a" * 3000
    text = f"{path}: File name too long".encode()
    buf = errbuf()
    assert libkvm.kvm_openfiles(None, path, None, 0, buf) is None
    assert buf.raw[:2047] == text[:2047]
    assert buf.raw[2047] == 0
    small = ctypes.create_string_buffer(16)
    assert libkvm.kvm_openfiles(None, "/nonexistent", None, 0, small) is None
    assert small.raw == b"/nonexistent: N\0"
    plain = bytearray(b"\xff" * 32)
    assert libkvm.kvm_openfiles(None, "/nonexistent", None, 0, plain) is None
    assert plain == f"/nonexistent: {ENOENT_TEXT}"[:31].encode() + b"\0"


def test_errbuf_by_address() -> None:
    buf = errbuf()
    assert libkvm.kvm_openfiles(None, "/nonexistent", None, 0, ctypes.addressof(buf)) is None
    assert buf.value == f"/nonexistent: {ENOENT_TEXT}".encode()
    with pytest.raises(TypeError):
        libkvm.kvm_openfiles(None, "/nonexistent", None, 0, b"\0" * 2048)


def test_kvm_open_prints_to_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    assert libkvm.kvm_open(None, "/nonexistent", None, 0, "prog") is None
    assert capsys.readouterr().err == f"prog: /nonexistent: {ENOENT_TEXT}\n"
    assert libkvm.kvm_open(None, b"/nonexistent", None, 0, b"") is None
    assert capsys.readouterr().err == f": /nonexistent: {ENOENT_TEXT}\n"
    assert libkvm.kvm_open(None, "/nonexistent", None, 0, None) is None
    assert capsys.readouterr().err == ""
    # kvm_open never writes into errstr, even when it is a buffer (kvm_read_test)
    buf = errbuf()
    assert libkvm.kvm_open(None, "/nonexistent", None, 0, buf) is None
    assert buf.value == b""
    assert capsys.readouterr().err == f": /nonexistent: {ENOENT_TEXT}\n"


def test_kvm_open_hard_errors_go_to_stderr_later(
        dump: SynthDump, capsys: pytest.CaptureFixture[str]) -> None:
    h = libkvm.kvm_open(str(dump.kernel), str(dump.core), None, 0, "prog")
    assert h is not None
    assert libkvm.kvm_write(h, 0, b"x", 1) == -1
    assert capsys.readouterr().err == "prog: kvm_write not implemented for dead kernels\n"
    assert libkvm.kvm_geterr(h) == ""  # hard errors were printed, not stored
    # soft errors are stored even with a program
    hole = dump.truth.holes[0]
    assert libkvm.kvm_read(h, hole, bytearray(4), 4) == -1
    assert libkvm.kvm_geterr(h) == f"invalid address (0x{hole:x})"
    assert libkvm.kvm_close(h) == 0


def test_swapfile_never_looked_at(dump: SynthDump) -> None:
    h = libkvm.kvm_openfiles(str(dump.kernel), str(dump.core), object(), 0, None)
    assert h is not None
    libkvm.kvm_close(h)


# --------------------------------------------------- close, geterr, handles (5-7)
def test_close_null_and_twice(kd: libkvm.KvmHandle) -> None:
    libkvm.set_errno(0)
    assert libkvm.kvm_close(None) == -1
    assert libkvm.errno() == errno.EINVAL
    assert libkvm.get_errno() == errno.EINVAL
    assert libkvm.kvm_close(kd) == 0
    assert libkvm.kvm_close(kd) == -1
    assert libkvm.errno() == errno.EBADF
    with pytest.raises(ValueError):
        libkvm.kvm_read(kd, 0, bytearray(1), 1)
    with pytest.raises(ValueError):
        libkvm.kvm_geterr(kd)


def test_close_after_the_python_api_closed_it(dump: SynthDump) -> None:
    h = libkvm.kvm_open2(str(dump.kernel), str(dump.core), 0, None, None)
    assert h is not None
    assert h.kvm.close() == 0
    assert libkvm.kvm_close(h) == -1
    assert libkvm.errno() == errno.EBADF


def test_geterr_null() -> None:
    assert libkvm.kvm_geterr(None) == ""
    assert libkvm.kvm_geterr(0) == ""
    assert libkvm.kvm_geterr(ctypes.c_void_p()) == ""


def test_null_and_foreign_descriptors() -> None:
    with pytest.raises(TypeError):
        libkvm.kvm_read(None, 0, bytearray(1), 1)
    with pytest.raises(TypeError):
        libkvm.kvm_native(None)
    with pytest.raises(ValueError):
        libkvm.kvm_native(0x1234567)
    with pytest.raises(TypeError):
        libkvm.kvm_native("kd")


def test_handle_shapes(kd: libkvm.KvmHandle, dump: SynthDump) -> None:
    assert isinstance(kd, int)
    assert isinstance(kd.kvm, pykvm.Kvm)
    assert repr(kd).startswith("<kvm_t 0x")
    for same in (int(kd), ctypes.c_void_p(kd), kd.kvm):
        assert libkvm.kvm_native(same) == (1 if kd.kvm.native() else 0)
    assert libkvm.kvm_kerndisp(kd) == dump.truth.kerndisp == 0


def test_geterr_persists_and_kvm_err_hook(kd: libkvm.KvmHandle, dump: SynthDump) -> None:
    assert libkvm.kvm_geterr(kd) == ""
    libkvm._kvm_err(kd, None, "that ends well")
    va, data = dump.truth.regions[0]
    buf = bytearray(len(data))
    assert libkvm.kvm_read(kd, va, buf, len(data)) == len(data)
    assert libkvm.kvm_geterr(kd) == "that ends well"


# ------------------------------------------------------------- reading (8, 9)
def test_regions(kd: libkvm.KvmHandle, dump: SynthDump) -> None:
    for va, data in dump.truth.regions:
        buf = ctypes.create_string_buffer(len(data))
        assert libkvm.kvm_read(kd, va, buf, len(data)) == len(data)
        assert buf.raw == data
        out = bytearray(len(data))
        assert libkvm.kvm_read2(kd, va, out, len(data)) == len(data)
        assert out == data


def test_buffer_shapes(kd: libkvm.KvmHandle, dump: SynthDump) -> None:
    va = dump.truth.symbols["hz"]
    want = dump.truth.expect(va, 4)
    assert want is not None
    value = ctypes.c_int()
    assert libkvm.kvm_read(kd, va, ctypes.byref(value), 4) == 4
    assert struct.pack("<i", value.value) == want
    arr = (ctypes.c_uint8 * 8)()
    assert libkvm.kvm_read(kd, va, ctypes.pointer(arr), 4) == 4
    assert bytes(arr[:4]) == want
    buf = ctypes.create_string_buffer(8)
    assert libkvm.kvm_read(kd, va, ctypes.c_void_p(ctypes.addressof(buf)), 4) == 4
    assert buf.raw[:4] == want
    buf2 = ctypes.create_string_buffer(8)
    assert libkvm.kvm_read(kd, va, ctypes.addressof(buf2), 4) == 4
    assert buf2.raw[:4] == want
    mv = memoryview(bytearray(6))
    assert libkvm.kvm_read(kd, va, mv[2:], 4) == 4
    assert bytes(mv[2:]) == want
    assert libkvm.kvm_read(kd, va, ctypes.byref(buf, 4), 4) == 4
    assert buf.raw[4:] == want
    with pytest.raises(ValueError):
        libkvm.kvm_read(kd, va, ctypes.c_int(), 8)
    with pytest.raises(ValueError):
        libkvm.kvm_read(kd, va, ctypes.byref(buf, 6), 4)
    with pytest.raises(TypeError):
        libkvm.kvm_read(kd, va, b"1234", 4)
    with pytest.raises(TypeError):
        libkvm.kvm_read(kd, va, "1234", 4)


def test_hole_is_minus_one_with_the_chunk_address(kd: libkvm.KvmHandle,
                                                  dump: SynthDump) -> None:
    for hole in dump.truth.holes:
        assert libkvm.kvm_read2(kd, hole, bytearray(8), 8) == -1
        assert libkvm.kvm_geterr(kd) == f"invalid address (0x{hole:x})"


def test_running_into_a_hole(kd: libkvm.KvmHandle, dump: SynthDump) -> None:
    """-1, the hole's page in the text, and the bytes before it already in buf."""
    t = dump.truth
    for hole in t.holes:
        page = hole & ~(t.page_size - 1)
        before = t.expect(page - 16, 16)
        if before is None or t.expect(page, 1) is not None:
            continue
        buf = ctypes.create_string_buffer(b"\xee" * 64, 64)
        assert libkvm.kvm_read(kd, page - 16, buf, 64) == -1
        assert libkvm.kvm_geterr(kd) == f"invalid address (0x{page:x})"
        assert buf.raw[:16] == before
        assert buf.raw[16:] == b"\xee" * 48
        return
    pytest.fail("no hole right after a readable page in this dump")


def test_address_narrowing(kd: libkvm.KvmHandle, dump: SynthDump) -> None:
    va, data = dump.truth.regions[0]
    buf = bytearray(8)
    assert libkvm.kvm_read2(kd, va + (1 << 64), buf, 8) == 8
    assert buf == data[:8]
    if pykvm.kvm.ULONG == (1 << 64) - 1:
        assert libkvm.kvm_read(kd, va - (1 << 64), buf, 8) == 8


def test_zero_and_null_buffers(kd: libkvm.KvmHandle, dump: SynthDump) -> None:
    va, _ = dump.truth.regions[0]
    assert libkvm.kvm_read(kd, va, None, 0) == 0
    assert libkvm.kvm_read(kd, dump.truth.holes[0], None, 0) == 0
    assert libkvm.kvm_geterr(kd) == ""
    # read(2) into NULL fails with EFAULT after the chunk translated: 0, hard syserr
    assert libkvm.kvm_read(kd, va, None, 8) == 0
    assert libkvm.kvm_geterr(kd) == "kvm_read: Bad address"
    assert libkvm.kvm_read(kd, dump.truth.holes[0], None, 8) == -1


def test_write_on_a_dump(kd: libkvm.KvmHandle) -> None:
    assert libkvm.kvm_write(kd, 0, None, 0) == -1
    assert libkvm.kvm_geterr(kd) == "kvm_write not implemented for dead kernels"
    assert libkvm.kvm_write(kd, 0xFFFFFFFF80200000, b"abcd", 4) == -1


# ---------------------------------------------------------------- nlist (10)
def test_kvm_nlist_fills_in_place(kd: libkvm.KvmHandle, dump: SynthDump) -> None:
    names = [b"_version", b"hz", b"nosuch", b"_mp_maxcpus"]
    nl = (libkvm.Nlist * 6)()
    for i, n in enumerate(names):
        nl[i].n_name = n
        nl[i].n_type = 0x55
        nl[i].n_other = b"\x03"
        nl[i].n_desc = 9
        nl[i].n_value = 77
    nl[5].n_type = 0x66  # after the terminator: never touched
    missing = libkvm.kvm_nlist(kd, nl)
    assert missing == 1
    for e, name in zip(nl, names, strict=False):
        hit = dump.truth.nlist(name.decode())
        assert (e.n_type, e.n_value) == (hit if hit else (0, 0))
        assert (e.n_other, e.n_desc) == (b"\0", 0)
        assert e.n_name == name
    assert (nl[4].n_type, nl[5].n_type) == (0, 0x66)


def test_kvm_nlist_shapes(kd: libkvm.KvmHandle, dump: SynthDump) -> None:
    want = dump.truth.nlist("hz")
    one = libkvm.Nlist(b"hz")
    end = libkvm.Nlist()
    assert libkvm.kvm_nlist(kd, [one, end]) == 0
    assert (one.n_type, one.n_value) == want
    arr = (libkvm.Nlist * 2)(libkvm.Nlist(b"hz"))
    assert libkvm.kvm_nlist(kd, ctypes.byref(arr[0])) == 0
    assert (arr[0].n_type, arr[0].n_value) == want
    arr2 = (libkvm.Nlist * 2)(libkvm.Nlist(b"hz"))
    assert libkvm.kvm_nlist(kd, ctypes.cast(arr2, ctypes.POINTER(libkvm.Nlist))) == 0
    assert arr2[0].n_value == want[1]
    # an array without terminator stops at its end
    full = (libkvm.Nlist * 1)(libkvm.Nlist(b"hz"))
    assert libkvm.kvm_nlist(kd, full) == 0
    assert full[0].n_value == want[1]
    with pytest.raises(TypeError):
        libkvm.kvm_nlist(kd, None)


def test_kvm_nlist_empty_list(kd: libkvm.KvmHandle) -> None:
    nl = (libkvm.Nlist * 2)()
    nl[1].n_type = 5
    assert libkvm.kvm_nlist(kd, nl) == 0
    assert libkvm.kvm_nlist2(kd, (libkvm.KvmNlist * 1)()) == 0
    assert nl[1].n_type == 5
    assert libkvm.kvm_geterr(kd) == ""


def test_kvm_nlist2_writes_type_and_value_only(kd: libkvm.KvmHandle,
                                                dump: SynthDump) -> None:
    nl = (libkvm.KvmNlist * 3)()
    nl[0].n_name = b"version"
    nl[1].n_name = b"_hz"
    assert libkvm.kvm_nlist2(kd, nl) == 0
    assert (nl[0].n_type, nl[0].n_value) == dump.truth.nlist("version")
    assert (nl[1].n_type, nl[1].n_value) == dump.truth.nlist("_hz")
    assert [nl[0].n_name, nl[1].n_name, nl[2].n_name] == [b"version", b"_hz", None]


def test_kvm_nlist_non_native(monkeypatch: pytest.MonkeyPatch, dump: SynthDump) -> None:
    import pykvm.arch.amd64 as amd64

    monkeypatch.setattr(amd64, "host_machine", lambda: "aarch64")
    buf = errbuf()
    assert libkvm.kvm_openfiles(str(dump.kernel), str(dump.core), None, 0, buf) is None
    assert buf.value == b"non-native kernel requires a symbol resolver"
    kd = libkvm.kvm_open2(str(dump.kernel), str(dump.core), 0, buf,
                          pykvm.symtab_resolver(str(dump.kernel)))
    assert kd is not None
    assert libkvm.kvm_native(kd) == 0
    nl = (libkvm.Nlist * 2)(libkvm.Nlist(b"version", 0x33))
    assert libkvm.kvm_nlist(kd, nl) == -1
    assert libkvm.kvm_geterr(kd) == "kvm_nlist of non-native vmcore"
    assert (nl[0].n_type, nl[0].n_value) == (0x33, 0)
    nl2 = (libkvm.KvmNlist * 2)(libkvm.KvmNlist(b"version"))
    assert libkvm.kvm_nlist2(kd, nl2) == 0
    assert (nl2[0].n_type, nl2[0].n_value) == (0x07, dump.truth.symbols["version"])
    assert libkvm.kvm_close(kd) == 0


def c_resolver(table: dict[bytes, int], asked: list[bytes]) -> Any:
    @libkvm.RESOLVER_T
    def resolve(name: bytes, addr: Any) -> int:
        asked.append(name)
        if name not in table:
            return 1
        addr[0] = table[name]
        return 0
    return resolve


def test_resolver_c_and_python(dump: SynthDump) -> None:
    """14.7: a resolver accepting only "foo": foo -> 0x07, _foo -> 0/0, result 1."""
    asked: list[bytes] = []
    py_asked: list[str] = []

    def py_resolver(name: str) -> int | None:
        py_asked.append(name)
        return 0x1234 if name == "foo" else None

    for resolver in (c_resolver({b"foo": 0x1234}, asked), py_resolver):
        kd = libkvm.kvm_open2(str(dump.kernel), str(dump.core), 0, errbuf(), resolver)
        assert kd is not None
        nl = (libkvm.KvmNlist * 3)(libkvm.KvmNlist(b"foo", 9, 9), libkvm.KvmNlist(b"_foo", 9, 9))
        assert libkvm.kvm_nlist2(kd, nl) == 1
        assert [(e.n_type, e.n_value) for e in nl[:2]] == [(0x07, 0x1234), (0, 0)]
        assert libkvm.kvm_close(kd) == 0
    assert asked[:2] == [b"foo", b"_foo"]
    assert py_asked[:2] == ["foo", "_foo"]


def test_null_function_pointer_is_no_resolver(dump: SynthDump) -> None:
    kd = libkvm.kvm_open2(str(dump.kernel), str(dump.core), 0, None, libkvm.RESOLVER_T())
    assert kd is not None
    nl = (libkvm.KvmNlist * 2)(libkvm.KvmNlist(b"hz"))
    assert libkvm.kvm_nlist2(kd, nl) == 0
    assert nl[0].n_value == dump.truth.symbols["hz"]
    libkvm.kvm_close(kd)


# ----------------------------------------------------------- walk_pages (12)
def page_tuple(p: Any) -> tuple[int, ...]:
    return (p.kp_version, p.kp_paddr, p.kp_kmap_vaddr, p.kp_dmap_vaddr, p.kp_prot,
            p.kp_offset, p.kp_len)


def truth_tuple(w: Any) -> tuple[int, ...]:
    return (w.version, w.paddr, w.kmap_vaddr, w.dmap_vaddr, w.prot, w.offset, w.len)


def test_walk_pages_c_callback(kd: libkvm.KvmHandle, dump: SynthDump) -> None:
    seen: list[tuple[int, ...]] = []
    count = ctypes.c_int(0)

    @libkvm.WALK_PAGES_CB_T
    def cb(page: Any, closure: Any) -> int:
        ctypes.cast(closure, ctypes.POINTER(ctypes.c_int))[0] += 1
        seen.append(page_tuple(page.contents))
        return 1

    assert libkvm.kvm_walk_pages(kd, cb, ctypes.byref(count)) == 1
    assert seen == [truth_tuple(w) for w in dump.truth.walk]
    assert count.value == len(dump.truth.walk)


def test_walk_pages_stops_on_zero(kd: libkvm.KvmHandle, dump: SynthDump) -> None:
    calls: list[int] = []

    def cb(page: Any, closure: Any) -> int:
        calls.append(page.contents.kp_paddr)
        assert closure == "mine"
        return 0 if len(calls) == 5 else 1

    assert libkvm.kvm_walk_pages(kd, cb, "mine") == 0
    assert calls == [w.paddr for w in dump.truth.walk[:5]]


def test_walk_pages_callback_with_own_struct(kd: libkvm.KvmHandle, dump: SynthDump) -> None:
    class kvm_page(ctypes.Structure):
        _fields_ = [("kp_version", ctypes.c_uint), ("kp_paddr", ctypes.c_uint64),
                    ("kp_kmap_vaddr", ctypes.c_uint64), ("kp_dmap_vaddr", ctypes.c_uint64),
                    ("kp_prot", ctypes.c_ubyte), ("kp_offset", ctypes.c_int64),
                    ("kp_len", ctypes.c_size_t)]

    cb_t = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(kvm_page), ctypes.c_void_p)
    first: list[tuple[int, ...]] = []

    def visit(page: Any, closure: Any) -> int:
        assert closure is None
        first.append(page_tuple(page[0]))
        return 0

    assert libkvm.kvm_walk_pages(kd, cb_t(visit), None) == 0
    assert first == [truth_tuple(dump.truth.walk[0])]
    with pytest.raises(TypeError):
        libkvm.kvm_walk_pages(kd, None, None)


def test_walk_pages_elf_core(amd64_dumps: dict[str, SynthDump]) -> None:
    d = amd64_dumps["elf"]
    kd = libkvm.kvm_open2(str(d.kernel), str(d.core), 0, None, None)
    assert kd is not None
    called: list[int] = []
    assert libkvm.kvm_walk_pages(kd, lambda p, c: called.append(1) or 1, None) == 0
    assert called == []
    assert libkvm.kvm_geterr(kd) == ""
    libkvm.kvm_close(kd)


# ------------------------------------------------------------- every call
def test_no_pending_calls() -> None:
    assert libkvm.PENDING == frozenset()
    assert "kvm_getprocs" in libkvm.IMPLEMENTED
    for name in libkvm.PENDING | libkvm.IMPLEMENTED:
        assert callable(getattr(libkvm, name))
        assert name in libkvm.SIGNATURES
