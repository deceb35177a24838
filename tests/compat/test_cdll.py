"""The ctypes face: ``EmulatedLibkvm`` behaves as ``ctypes.CDLL("libkvm.so.7")``."""

from __future__ import annotations

import ctypes
import errno
import sys
from collections.abc import Iterator
from typing import Any

import libkvm
import pytest
from libkvm.cdll import EmulatedLibkvm

from pykvm.synth import SynthDump


@pytest.fixture(scope="module")
def dump(amd64_dumps: dict[str, SynthDump]) -> SynthDump:
    return amd64_dumps["minidump-v3"]


@pytest.fixture
def lib(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.delenv(libkvm.ENV, raising=False)
    if sys.platform.startswith("freebsd"):
        monkeypatch.setenv(libkvm.ENV, "emulated")
    return libkvm.load()


@pytest.fixture
def kd(lib: Any, dump: SynthDump) -> Iterator[int]:
    h = lib.kvm_open2(str(dump.kernel).encode(), str(dump.core).encode(), 0, None, None)
    assert isinstance(h, int) and type(h) is int
    yield h
    lib.kvm_close(h)


def test_load_chooses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(libkvm.ENV, "emulated")
    assert isinstance(libkvm.load(), EmulatedLibkvm)
    monkeypatch.setenv(libkvm.ENV, "bogus")
    with pytest.raises(ValueError, match="PYKVM_LIBKVM"):
        libkvm.load()
    assert isinstance(libkvm.load("emulated"), EmulatedLibkvm)
    if not sys.platform.startswith("freebsd"):
        monkeypatch.delenv(libkvm.ENV)
        assert isinstance(libkvm.load(), EmulatedLibkvm)
        monkeypatch.setenv(libkvm.ENV, "native")
        with pytest.raises(OSError):
            libkvm.load()


def test_declared_prototypes(lib: Any) -> None:
    for name, sig in libkvm.SIGNATURES.items():
        func = getattr(lib, name)
        assert func.restype is sig.restype
        assert list(func.argtypes) == sig.argtypes
    assert lib.kvm_open2.argtypes[4] is libkvm.RESOLVER_T
    assert lib.kvm_walk_pages.argtypes[1] is libkvm.WALK_PAGES_CB_T


def test_same_surface_results(lib: Any, kd: int, dump: SynthDump) -> None:
    assert lib.kvm_geterr(None) == b""
    assert lib.kvm_geterr(kd) == b""
    hole = dump.truth.holes[0]
    buf = ctypes.create_string_buffer(8)
    assert lib.kvm_read(kd, hole, buf, 8) == -1
    assert lib.kvm_geterr(kd) == f"invalid address (0x{hole:x})".encode()
    va, data = dump.truth.regions[0]
    buf = ctypes.create_string_buffer(len(data))
    assert lib.kvm_read2(kd, va, buf, len(data)) == len(data)
    assert buf.raw == data
    assert lib.kvm_native(kd) in (0, 1)
    assert lib.kvm_kerndisp(kd) == 0
    errbuf = ctypes.create_string_buffer(2048)
    assert lib.kvm_openfiles(None, b"/nonexistent", None, 0, errbuf) is None
    assert errbuf.value == b"/nonexistent: No such file or directory"


def test_errno_reaches_ctypes(lib: Any) -> None:
    ctypes.set_errno(0)
    assert lib.kvm_close(None) == -1
    assert ctypes.get_errno() == errno.EINVAL


def test_argtypes_are_enforced(lib: Any) -> None:
    with pytest.raises(ctypes.ArgumentError, match="argument 2"):
        lib.kvm_openfiles(None, "/nonexistent", None, 0, None)  # str is not char *
    with pytest.raises(TypeError, match="takes at least 5 arguments"):
        lib.kvm_openfiles(None, b"/nonexistent")
    with pytest.raises(ctypes.ArgumentError):
        lib.kvm_read(0x10000, 0, bytearray(4), 4)  # bytearray is not void *


def test_python_function_becomes_c_callback(lib: Any, dump: SynthDump) -> None:
    """With RESOLVER_T declared, a Python function gets C's arguments, as in ctypes."""
    asked: list[bytes] = []

    def resolver(name: bytes, addr: Any) -> int:
        asked.append(name)
        if name != b"foo":
            return 1
        addr[0] = 0xABC
        return 0

    h = lib.kvm_open2(str(dump.kernel).encode(), str(dump.core).encode(), 0, None, resolver)
    assert h
    nl = (libkvm.KvmNlist * 2)(libkvm.KvmNlist(b"foo"))
    assert lib.kvm_nlist2(h, nl) == 0
    assert (nl[0].n_type, nl[0].n_value) == (7, 0xABC)
    assert asked[0] == b"foo"
    pages: list[int] = []

    def visit(page: Any, closure: Any) -> int:
        pages.append(page.contents.kp_paddr)
        return len(pages) < 3

    assert lib.kvm_walk_pages(h, visit, None) == 0
    assert pages == [w.paddr for w in dump.truth.walk[:3]]
    assert lib.kvm_close(h) == 0


def test_raw_library_defaults_like_ctypes(dump: SynthDump) -> None:
    raw = EmulatedLibkvm("libkvm.so.7")
    assert raw.kvm_open2.restype is ctypes.c_int
    assert raw.kvm_open2.argtypes is None
    h = raw.kvm_open2(str(dump.kernel).encode(), str(dump.core).encode(), 0, None, None)
    assert isinstance(h, int) and h > 0  # a kvm_t * squeezed into c_int still works
    raw.kvm_geterr.restype = ctypes.c_void_p
    addr = raw.kvm_geterr(h)
    assert isinstance(addr, int) and ctypes.string_at(addr) == b""
    raw.kvm_read.restype = ctypes.c_ssize_t
    assert raw.kvm_read(h, dump.truth.holes[0], ctypes.create_string_buffer(4), 4) == -1
    assert ctypes.string_at(raw.kvm_geterr(h)).startswith(b"invalid address (0x")
    raw.kvm_geterr.restype = ctypes.POINTER(ctypes.c_char)
    assert raw.kvm_geterr(h)[0] == b"i"
    raw.kvm_geterr.restype = ctypes.c_char_p
    assert raw.kvm_geterr(None) == b""
    raw.kvm_close.restype = None
    assert raw.kvm_close(h) is None


def test_errcheck_and_restype_callable(dump: SynthDump) -> None:
    raw = EmulatedLibkvm("libkvm.so.7")
    seen: list[Any] = []

    def check(result: Any, func: Any, args: tuple[Any, ...]) -> Any:
        seen.append((result, func.__name__, args))
        return "checked"

    raw.kvm_close.errcheck = check
    assert raw.kvm_close(None) == "checked"
    assert seen == [(-1, "kvm_close", (None,))]
    raw.kvm_native.restype = lambda value: ("native", value)
    h = raw.kvm_open2(str(dump.kernel).encode(), str(dump.core).encode(), 0, None, None)
    assert raw.kvm_native(h)[0] == "native"
    raw.kvm_close.errcheck = None
    assert raw.kvm_close(h) == 0


def test_symbols(lib: Any) -> None:
    assert lib.kvm_open is lib.kvm_open  # cached like CDLL attributes
    assert lib["kvm_open"] is not lib["kvm_open"]
    with pytest.raises(AttributeError, match="undefined symbol: kvm_nosuch"):
        lib.kvm_nosuch  # noqa: B018
    assert lib.kvm_getswapinfo(None, None, 0, 0) == 0  # libkvm's clear-cache call
    assert "EmulatedLibkvm" in repr(lib)
    assert "kvm_read" in repr(lib.kvm_read)
