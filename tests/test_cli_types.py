"""``pykvm types``: where the kernel's type information comes from, and struct layouts.

The kernels are a gcc-compiled object carrying FreeBSD-shaped structs in its own DWARF
(tests/image/fixtures/fbsd_types.c) and a synthetic kernel from pykvm.synth (no type
information at all), with the object as its ``--debug`` file.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from pykvm.cli import layout_doc, main
from pykvm.image.elf import KernelImage
from pykvm.image.layout import KERNEL_STRUCTS, KernelTypes
from pykvm.synth import SynthDump, build_amd64

FIXTURE = Path(__file__).parent / "image" / "fixtures" / "fbsd_types.c"


def gcc_object(directory: Path, flags: list[str]) -> Path:
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.fail("gcc not found: these tests compile C with the host's gcc", pytrace=False)
    out = directory / "fbsd_types.o"
    subprocess.run([gcc, *flags, "-c", str(FIXTURE), "-o", str(out)], check=True,
                   capture_output=True, timeout=300)
    return out


@pytest.fixture(scope="module")
def obj(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return gcc_object(tmp_path_factory.mktemp("cli-types"), ["-g"])


@pytest.fixture(scope="module")
def dump(tmp_path_factory: pytest.TempPathFactory) -> SynthDump:
    return build_amd64(tmp_path_factory.mktemp("cli-types-dump"), seed=4, fmt="minidump-v3",
                       small_kva=True)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def api_types(kernel: Path) -> tuple[KernelTypes, Any]:
    fd = os.open(kernel, os.O_RDONLY)
    image = KernelImage(str(kernel), fd)
    return KernelTypes.for_kernel(image), (image, fd)


def test_list_with_the_kernels_own_dwarf(obj: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "types", str(obj))
    assert status == 0 and err == ""
    lines = out.splitlines()
    assert lines[0] == f"kernel  {obj}"
    assert lines[1] == "type information, in order of precedence:"
    assert lines[2].split() == ["CTF", "no", "no", ".SUNW_ctf"]
    assert lines[3].split()[:2] == ["DWARF", "yes"] and "(the kernel itself)" in lines[3]
    assert lines[4].split()[:3] == ["exported", "offsets", "yes"]
    assert "proc_off_p_pid" in lines[4] and "read from the kernel file" in lines[4]
    kt, (image, fd) = api_types(obj)
    try:
        rows = {line.split()[0]: line.split()[1:] for line in lines[6:]}
        assert list(rows)[0] == "STRUCT" and len(rows) == len(KERNEL_STRUCTS) + 1
        proc = kt.struct("proc")
        assert rows["proc"] == [str(proc.size), "DWARF"]
        assert rows["tty"] == ["-", "(no", "type", "information)"]
    finally:
        kt.close()
        image.close()
        os.close(fd)


def test_struct_text(obj: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "types", str(obj), "proc")
    assert status == 0 and err == ""
    kt, (image, fd) = api_types(obj)
    try:
        proc = kt.struct("proc")
        lines = out.splitlines()
        head = lines.index(f"struct proc: {proc.size} bytes, from DWARF")
        assert lines[head + 1].split() == ["OFFSET", "SIZE", "TYPE", "MEMBER"]
        rows = lines[head + 2:]
        assert len(rows) == sum(1 for _ in proc.walk())
        assert rows[0].split() == ["0x0", "16", "struct", "{...}", "p_list"]
        assert rows[1].split() == ["0x0", "8", "struct", "proc", "*", "le_next"]
        assert rows[1].endswith("  le_next") and not rows[0].endswith("  p_list ")
        m = proc.member("p_sflags")
        sflags = next(r for r in rows if r.endswith(" p_sflags"))
        assert sflags.split() == [f"{m.offset:#x}.{m.bit_offset % 8}", ":3", "int", "p_sflags"]
        assert any(r.split()[-2:] == ["(anonymous", "union)"] for r in rows)
    finally:
        kt.close()
        image.close()
        os.close(fd)


def test_struct_json_is_the_api_layout(obj: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "types", str(obj), "struct thread", "--json")
    assert status == 0 and err == ""
    doc = json.loads(out)
    kt, (image, fd) = api_types(obj)
    try:
        assert doc["struct"] == layout_doc(kt.struct("thread"))
        assert doc["struct"]["source"] == "DWARF" and doc["struct"]["complete"] is True
        by_path = {m["path"]: m for m in doc["struct"]["members"]}
        zombie = by_path["td_zombie"]
        assert zombie["type"] == "struct thread *" and zombie["kind"] == "pointer"
        assert zombie["offset"] == kt.struct("thread").offsetof("td_slpq")
        assert by_path["td_name"]["count"] == 20
        assert [s["name"] for s in doc["sources"]] == ["CTF", "DWARF", "exported offsets"]
    finally:
        kt.close()
        image.close()
        os.close(fd)


def test_list_json(obj: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "types", "--json", str(obj))
    assert status == 0
    doc = json.loads(out)
    rows = {r["name"]: r for r in doc["structs"]}
    assert list(rows) == list(KERNEL_STRUCTS)
    assert rows["proc"]["found"] and rows["proc"]["source"] == "DWARF"
    assert not rows["cdev"]["found"] and rows["cdev"]["size"] is None


def test_debug_file_for_a_kernel_without_types(dump: SynthDump, obj: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "types", str(dump.kernel), "proc")
    assert (status, out) == (1, "")
    assert err == ("pykvm: struct proc: no type information "
                   "(no .SUNW_ctf, no DWARF, no exported offsets)\n")
    status, out, err = run(capsys, "types", str(dump.kernel), "proc", "--debug", str(obj),
                           "--json")
    assert status == 0 and err == ""
    doc = json.loads(out)
    assert doc["sources"][1] == {"name": "DWARF", "available": True, "detail": str(obj),
                                 "error": None}
    assert doc["struct"]["name"] == "struct proc" and doc["struct"]["source"] == "DWARF"


def test_with_a_core(dump: SynthDump, obj: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "types", str(dump.kernel), "vnode", "--core",
                           str(dump.core), "--debug", str(obj), "--json")
    assert status == 0 and err == ""
    doc = json.loads(out)
    assert doc["struct"]["source"] == "DWARF"
    v_type = next(m for m in doc["struct"]["members"] if m["path"] == "v_type")
    assert (v_type["bit_size"], v_type["type"]) == (8, "enum vtype")


def test_errors(dump: SynthDump, obj: Path, tmp_path: Path,
                capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "types", str(dump.kernel), "--debug", "/nonexistent.debug")
    assert (status, out) == (1, "")
    assert err == "pykvm: /nonexistent.debug: No such file or directory\n"
    text = tmp_path / "notes.txt"
    text.write_text("not ELF\n")
    status, out, err = run(capsys, "types", str(dump.kernel), "--debug", str(text))
    assert (status, err) == (1, f"pykvm: {text}: not an ELF file\n")
    status, out, err = run(capsys, "types", str(dump.kernel), "--debug", str(dump.kernel))
    assert status == 1
    assert err == (f"pykvm: {dump.kernel}: no DWARF debugging information "
                   "(no .debug_info section)\n")
    status, out, err = run(capsys, "types", "/nonexistent-kernel")
    assert (status, err) == (1, "pykvm: /nonexistent-kernel: No such file or directory\n")
    status, out, err = run(capsys, "types", str(obj), "struct a b")
    assert status == 2 and "not a struct or union name" in err
    status, out, err = run(capsys, "types", str(obj), "p_nope_struct")
    assert status == 1 and err == ("pykvm: struct p_nope_struct: no type information "
                                   "(no .SUNW_ctf, not in DWARF, not among the exported "
                                   "offsets)\n")
