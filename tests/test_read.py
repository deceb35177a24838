"""Reading dumps: kvm_read/kvm_read2/kvm_write semantics on every amd64 format.

Expected bytes come from the synthetic machine's ground truth (pykvm.synth),
never from pykvm's readers.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

import pykvm
from pykvm.kvm import _kvm_err
from pykvm.synth import SynthDump


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def opened(d: SynthDump) -> pykvm.Kvm:
    return pykvm.openfiles(str(d.kernel), str(d.core))


def test_regions_read_back(amd64_dump: SynthDump) -> None:
    with opened(amd64_dump) as kd:
        assert kd.geterr() == ""
        assert len(amd64_dump.truth.regions) >= 8
        for va, data in amd64_dump.truth.regions:
            assert kd.read(va, len(data)) == data, hex(va)
            # unaligned slices inside the region, across page boundaries
            if len(data) > 5000:
                assert kd.read2(va + 4090, 20) == data[4090:4110]


def test_version_symbol(amd64_dump: SynthDump) -> None:
    t = amd64_dump.truth
    with opened(amd64_dump) as kd:
        nl = kd.nlist2(["version", "_version"])
        assert nl.missing == 0
        assert nl["version"].value == t.symbols["version"]
        assert nl["_version"].value == t.symbols["version"]  # a.out underscore rule
        text = kd.read(nl["version"].value, 64)
        assert text.startswith(b"FreeBSD ")
        assert text == t.expect(t.symbols["version"], 64)


def test_holes_fail_with_libkvm_text(amd64_dump: SynthDump) -> None:
    holes = amd64_dump.truth.holes
    assert len(holes) >= 5
    with opened(amd64_dump) as kd:
        for va in holes:
            assert amd64_dump.truth.expect(va, 1) is None
            with pytest.raises(pykvm.FaultError) as ei:
                kd.read(va, 8)
            assert str(ei.value) == f"invalid address (0x{va:x})"
            assert kd.geterr() == f"invalid address (0x{va:x})"
            assert ei.value.address == va
            assert len(ei.value.chain) >= 1 and ei.value.chain[-1] == str(ei.value)


def _good_then_hole(d: SynthDump) -> int:
    t = d.truth
    for va, data in t.regions:
        end = (va + len(data) + 4095) & ~4095
        if t.expect(end - 4096, 4096) is not None and t.expect(end, 1) is None:
            return end - 4096
    raise AssertionError("no page followed by a hole in the synthetic machine")


def test_read_running_into_hole_names_the_hole(amd64_dump: SynthDump) -> None:
    start = _good_then_hole(amd64_dump)
    with opened(amd64_dump) as kd:
        with pytest.raises(pykvm.FaultError) as ei:
            kd.read(start + 100, 8000)
        assert kd.geterr() == f"invalid address (0x{start + 4096:x})"
        assert ei.value.address == start + 4096
        # the good page alone reads fine
        assert kd.read(start, 4096) == amd64_dump.truth.expect(start, 4096)


def test_errors_persist_and_zero_reads(amd64_dump: SynthDump) -> None:
    t = amd64_dump.truth
    with opened(amd64_dump) as kd:
        _kvm_err(kd, None, "that ends well")  # kvm_geterr_positive_test_no_error
        assert kd.read(t.symbols["hz"], 4) == t.expect(t.symbols["hz"], 4)
        assert kd.read(t.holes[0], 0) == b""
        assert kd.geterr() == "that ends well"
        with pytest.raises(pykvm.FaultError):
            kd.read(t.holes[0], 1)
        assert kd.read(t.symbols["hz"], 4) == t.expect(t.symbols["hz"], 4)
        assert kd.geterr() == f"invalid address (0x{t.holes[0]:x})"


def test_write_refused_on_dumps(amd64_dump: SynthDump) -> None:
    with pykvm.openfiles(str(amd64_dump.kernel), str(amd64_dump.core), None, os.O_RDWR) as kd:
        with pytest.raises(pykvm.KvmError) as ei:
            kd.write(amd64_dump.truth.symbols["hz"], b"\0\0\0\0")
        assert str(ei.value) == "kvm_write not implemented for dead kernels"
        assert kd.geterr() == "kvm_write not implemented for dead kernels"


def test_hard_errors_go_to_stderr_with_a_program(amd64_dump: SynthDump,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    va = amd64_dump.truth.holes[0]
    kd = pykvm.open(str(amd64_dump.kernel), str(amd64_dump.core), None, 0, "prog")
    with kd:
        with pytest.raises(pykvm.FaultError):
            kd.read(va, 4)
        err = capsys.readouterr().err
        assert err.startswith("prog: ") and err.endswith("\n")
        assert f"invalid address (0x{va:x})" not in err  # the soft text is stored, not printed
        assert kd.geterr() == f"invalid address (0x{va:x})"
        with pytest.raises(pykvm.KvmError):
            kd.write(va, b"x")
        assert capsys.readouterr().err == "prog: kvm_write not implemented for dead kernels\n"
        assert kd.geterr() == f"invalid address (0x{va:x})"


def test_native_kerndisp_info(amd64_dump: SynthDump) -> None:
    with opened(amd64_dump) as kd:
        assert kd.native() is (os.uname().machine in ("x86_64", "amd64"))
        assert kd.kerndisp() == 0
        info = kd.info()
        assert info.arch == "amd64"
        assert info.fmt == ("elf" if amd64_dump.fmt == "elf" else "minidump")
        assert info.version == (None if amd64_dump.fmt == "elf"
                                else int(amd64_dump.fmt[-1]))
        assert info.pages == amd64_dump.truth.dumped_pages
        if amd64_dump.fmt != "elf":
            assert kd.msgbuf() == amd64_dump.truth.msgbuf


def test_walk_pages(amd64_dump: SynthDump) -> None:
    with opened(amd64_dump) as kd:
        got = list(kd.walk_pages())
        want = [(w.version, w.paddr, w.kmap_vaddr, w.dmap_vaddr, w.prot, w.offset, w.len)
                for w in amd64_dump.truth.walk]
        assert [(p.version, p.paddr, p.kmap_vaddr, p.dmap_vaddr, p.prot, p.offset, p.len)
                for p in got] == want
        if amd64_dump.fmt in ("elf", "minidump-v1"):
            assert got == []
            assert kd.walk_pages_cb(lambda p: 1) == 0
        else:
            assert len(got) > 100
            assert kd.walk_pages_cb(lambda p: 1) == 1
            seen = []
            assert kd.walk_pages_cb(lambda p: seen.append(p) or len(seen) < 3) == 0
            assert len(seen) == 3


def test_walk_pages_agree_with_reads(amd64_dump: SynthDump) -> None:
    if amd64_dump.fmt in ("elf", "minidump-v1"):
        return
    with opened(amd64_dump) as kd:
        core = amd64_dump.core.read_bytes()
        for p in list(kd.walk_pages())[::37]:
            va = p.kmap_vaddr or p.dmap_vaddr
            if p.offset >= 0:
                assert kd.read(va, 4096) == core[p.offset:p.offset + 4096]
            else:
                with pytest.raises(pykvm.FaultError):
                    kd.read(va, 4096)


def test_close_rules(amd64_dump: SynthDump) -> None:
    kd = opened(amd64_dump)
    assert kd.close() == 0
    assert kd.close() == -1
    with pytest.raises(ValueError):
        kd.read(0, 1)
    with pytest.raises(ValueError):
        kd.nlist2(["version"])


def test_files_unchanged(amd64_dump: SynthDump) -> None:
    before = (sha256(amd64_dump.kernel), sha256(amd64_dump.core))
    with opened(amd64_dump) as kd:
        for va, data in amd64_dump.truth.regions[:20]:
            kd.read(va, len(data))
        list(kd.walk_pages())
        kd.nlist2(["version", "hz", "nonexistent"])
    with pykvm.openfiles(str(amd64_dump.kernel), str(amd64_dump.core), None, os.O_RDWR) as kd:
        with pytest.raises(pykvm.KvmError):
            kd.write(amd64_dump.truth.symbols["hz"], b"\1\2\3\4")
    assert (sha256(amd64_dump.kernel), sha256(amd64_dump.core)) == before


def test_truncated_core_gives_short_read(tmp_path: Path, amd64_dumps: dict[str, SynthDump]) -> None:
    d = amd64_dumps["minidump-v3"]
    t = d.truth
    data = d.core.read_bytes()
    # cut the core in the middle of the last dumped page
    cut = tmp_path / "vmcore"
    cut.write_bytes(data[: len(data) - 2048])
    with pykvm.openfiles(str(d.kernel), str(cut)) as kd:
        kd_full = pykvm.openfiles(str(d.kernel), str(d.core))
        with kd_full:
            last = [p for p in kd_full.walk_pages() if p.offset == len(data) - 4096]
        assert last, "the last page of the core is reachable through the walk"
        va = last[0].kmap_vaddr or last[0].dmap_vaddr
        got = kd.read(va, 4096)
        assert got == data[len(data) - 4096: len(data) - 2048]
        assert kd.geterr() == ""
        assert t.dumped_pages > 0
