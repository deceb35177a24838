"""FreeBSD's own libkvm tests (lib/libkvm/tests), ported to dumps (api.md 14).

Tests that need a live FreeBSD kernel run here against a synthetic amd64 dump
instead; the assertions are the upstream ones, plus the exact texts api.md 14.7
derives.  ``kvm_close(NULL)`` and ``kvm_geterr(NULL)`` belong to the C-shaped
layer (compat/) and are not expressible on Python objects.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import pykvm
from pykvm.kvm import _kvm_err
from pykvm.synth import SynthDump


@pytest.fixture(scope="module")
def dump(amd64_dumps: dict[str, SynthDump]) -> SynthDump:
    return amd64_dumps["minidump-v3"]


def test_kvm_geterr_positive_test_error(dump: SynthDump) -> None:
    """Open, a failing kvm_write, a non-empty geterr, kvm_close returning 0."""
    kd = pykvm.open2(str(dump.kernel), str(dump.core), 0)
    assert kd.geterr() == ""
    with pytest.raises(pykvm.KvmError):
        kd.write(0, b"")
    assert kd.geterr() == "kvm_write not implemented for dead kernels"
    assert kd.close() == 0


def test_kvm_geterr_positive_test_no_error(dump: SynthDump) -> None:
    """A successful read leaves the last error ("that ends well") in place."""
    kd = pykvm.open2(str(dump.kernel), str(dump.core), 0)
    nl = kd.nlist(["_mp_maxcpus"])
    assert nl.missing != -1
    assert nl["_mp_maxcpus"].type != 0
    _kvm_err(kd, None, "that ends well")
    value = kd.read(nl["_mp_maxcpus"].value, 4)
    assert value == dump.truth.variables["mp_maxcpus"][:4]
    assert kd.geterr() == "that ends well"
    assert kd.close() == 0


def test_kvm_open_negative_test_nonexistent_corefile(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(pykvm.KvmError):
        pykvm.open(None, "/nonexistent", None, 0, None)
    with pytest.raises(pykvm.KvmError):
        pykvm.open(None, "/nonexistent", None, 0, "kvm_open_test")
    assert capsys.readouterr().err == \
        "kvm_open_test: /nonexistent: No such file or directory\n"


def test_kvm_open_negative_test_nonexistent_execfile(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(pykvm.KvmError):
        pykvm.open("/nonexistent", "/dev/zero", None, 0, None)
    with pytest.raises(pykvm.KvmError):
        pykvm.open("/nonexistent", "/dev/zero", None, 0, "kvm_open_test")
    assert capsys.readouterr().err == \
        "kvm_open_test: /nonexistent: No such file or directory\n"


def test_kvm_open_negative_test_invalid_corefile(tmp_path: Path, dump: SynthDump,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    # upstream opens the running (amd64) kernel with a text file as the core
    some = tmp_path / "some-file"
    some.write_text("this is a text file")
    with pytest.raises(pykvm.KvmError) as ei:
        pykvm.open(str(dump.kernel), str(some), None, 0, "kvm_open_test")
    assert str(ei.value) == "invalid core"
    assert capsys.readouterr().err == "kvm_open_test: invalid core\n"


def test_kvm_open_negative_test_invalid_execfile(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    some = tmp_path / "some-file"
    some.write_text("this is a text file")
    with pytest.raises(pykvm.KvmError) as ei:
        pykvm.open(str(some), "/bin/sh", None, 0, "kvm_open_test")
    assert str(ei.value) == "kernel is not an ELF file"
    assert capsys.readouterr().err == "kvm_open_test: kernel is not an ELF file\n"


def test_kvm_open2_negative_tests(tmp_path: Path, dump: SynthDump) -> None:
    # nonexistent corefile / execfile: the text the caller's buffer would receive
    for exe, core in ((None, "/nonexistent"), ("/nonexistent", "/dev/zero")):
        with pytest.raises(pykvm.KvmError) as ei:
            pykvm.open2(exe, core, 0)
        assert str(ei.value) == "/nonexistent: No such file or directory"
    some = tmp_path / "some-file"
    some.write_text("this is a text file")
    with pytest.raises(pykvm.KvmError) as ei:
        pykvm.open2(str(dump.kernel), str(some), 0)
    assert str(ei.value) == "invalid core"
    with pytest.raises(pykvm.KvmError) as ei:
        pykvm.open2(str(some), "/bin/sh", 0)
    assert str(ei.value) == "kernel is not an ELF file"


def test_kvm_read_positive_test_no_error(dump: SynthDump,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    """kvm_open with an empty program, nlist of _mp_maxcpus, read it, close: 0."""
    kd = pykvm.open(str(dump.kernel), str(dump.core), None, 0, "")
    nl = kd.nlist(["_mp_maxcpus"])
    assert nl.missing != -1 and nl["_mp_maxcpus"].type != 0
    raw = kd.read(nl["_mp_maxcpus"].value, 4)
    assert kd.close() == 0
    assert int.from_bytes(raw, "little") == \
        int.from_bytes(dump.truth.variables["mp_maxcpus"][:4], "little")
    assert capsys.readouterr().err == ""
