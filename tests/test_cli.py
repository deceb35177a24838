"""The ``pykvm`` command against synthetic dumps built in tmp_path by pykvm.synth."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pykvm import cli
from pykvm.cli import Target, hexdump, main, parse_target

synth = pytest.importorskip("pykvm.synth")

FORMATS = ["minidump-v1", "minidump-v2", "minidump-v3", "elf"]


@dataclass(frozen=True)
class Dump:
    """A synthetic dump: the synth format, its files and its ground truth."""

    fmt: str
    kernel: Path
    core: Path
    truth: Any


def build(directory: Path, seed: int, fmt: str, types: str | None = None) -> Dump:
    d = synth.build_amd64(directory, seed=seed, fmt=fmt, types=types)
    return Dump(fmt=fmt, kernel=Path(d.kernel), core=Path(d.core), truth=d.truth)


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def v3(tmp_path_factory: pytest.TempPathFactory) -> Dump:
    return build(tmp_path_factory.mktemp("v3"), seed=0, fmt="minidump-v3")


@pytest.fixture(scope="module", params=FORMATS)
def anydump(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Dump:
    fmt: str = request.param
    return build(tmp_path_factory.mktemp(fmt), seed=1, fmt=fmt)


def files(d: Dump) -> list[str]:
    return [str(d.kernel), str(d.core)]


def plain_symbols(d: Dump) -> list[str]:
    """Names whose lookup in any list is unambiguous: defined, unique, no leading ``_``."""
    return sorted(
        name
        for name, ntype in d.truth.nlist_types.items()
        if ntype != 0 and name not in d.truth.duplicates and not name.startswith("_")
    )


def readable_symbol(d: Dump, size: int) -> tuple[str, int, bytes]:
    """A symbol whose first ``size`` bytes the dump holds, by the ground truth."""
    plain = plain_symbols(d)
    for name in ("version", "hz", "kernbase", *plain):
        if name not in plain:
            continue
        va = d.truth.symbols[name]
        data = d.truth.expect(va, size)
        if data is not None:
            return name, va, data
    pytest.fail("the synthetic dump has no readable symbol")


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


# --------------------------------------------------------------------------- info


def test_info_text(v3: Dump, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "info", *files(v3))
    assert (status, err) == (0, "")
    fields: dict[str, str] = {}
    for line in out.splitlines():
        key, value = line[:10].strip(), line[11:]
        fields[key] = value
    assert fields["kernel"] == str(v3.kernel)
    assert fields["core"] == str(v3.core)
    assert fields["format"] == "minidump"
    assert fields["version"] == "3"
    assert fields["arch"] == "amd64"
    assert fields["page size"] == "4096"
    assert int(fields["pages"]) == v3.truth.dumped_pages
    assert fields["native"] in ("yes", "no")


def test_info_json(anydump: Dump, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "info", "--json", *files(anydump))
    assert (status, err) == (0, "")
    doc = json.loads(out)
    expected_fmt, _, version = anydump.fmt.partition("-v")
    assert doc["format"] == expected_fmt
    assert doc["version"] == (int(version) if version else None)
    assert doc["arch"] == "amd64"
    assert doc["page_size"] == 4096
    assert doc["pages"] == anydump.truth.dumped_pages
    assert doc["kernel"] == str(anydump.kernel)
    assert doc["core"] == str(anydump.core)
    assert doc["kerndisp"] == 0


def test_nonexistent_core(v3: Dump, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "info", str(v3.kernel), "/nonexistent")
    assert status == 1
    assert out == ""
    assert err == "pykvm: /nonexistent: No such file or directory\n"


# --------------------------------------------------------------------------- nlist


def test_nlist_text_values_equal_truth(v3: Dump, capsys: pytest.CaptureFixture[str]) -> None:
    names = plain_symbols(v3)[:6]
    status, out, err = run(capsys, "nlist", *files(v3), *names)
    assert (status, err) == (0, "")
    lines = out.splitlines()
    assert lines[0].split() == ["NAME", "TYPE", "VALUE"]
    assert len(lines) == 1 + len(names)
    for name, line in zip(names, lines[1:], strict=True):
        got_name, got_type, got_value = line.split()
        assert got_name == name
        assert int(got_type, 16) == v3.truth.nlist_types[name]
        assert int(got_value, 16) == v3.truth.symbols[name]


def test_nlist_missing_name_exits_1(v3: Dump, capsys: pytest.CaptureFixture[str]) -> None:
    present = plain_symbols(v3)[0]
    status, out, err = run(capsys, "nlist", *files(v3), present, "no_such_symbol_here")
    assert status == 1
    assert err == ""
    lines = out.splitlines()
    assert lines[1].split()[0] == present
    assert int(lines[1].split()[2], 16) == v3.truth.symbols[present]
    assert lines[2].split(None, 2) == ["no_such_symbol_here", "-", "(not found)"]


def test_nlist_json(anydump: Dump, capsys: pytest.CaptureFixture[str]) -> None:
    names = [*plain_symbols(anydump)[:3], "no_such_symbol_here"]
    status, out, err = run(capsys, "nlist", "--json", *files(anydump), *names)
    assert (status, err) == (1, "")
    doc = json.loads(out)
    assert doc["missing"] == 1
    assert [s["name"] for s in doc["symbols"]] == names
    for sym in doc["symbols"][:3]:
        assert sym["found"] is True
        assert sym["value"] == anydump.truth.symbols[sym["name"]]
        assert sym["type"] == anydump.truth.nlist_types[sym["name"]]
    assert doc["symbols"][3] == {
        "name": "no_such_symbol_here",
        "type": 0,
        "value": 0,
        "found": False,
    }


# --------------------------------------------------------------------------- read


def expected_hexdump_line(address: int, row: bytes) -> str:
    """One ``hexdump -C`` line, spelled out independently of cli.hexdump."""
    left = " ".join(format(b, "02x") for b in row[:8])
    right = " ".join(format(b, "02x") for b in row[8:])
    text = "".join(chr(b) if 32 <= b <= 126 else "." for b in row)
    return f"{address:016x}  {left:<23}  {right:<23}  |{text}|"


def test_read_symbol_hexdump_exact(v3: Dump, capsys: pytest.CaptureFixture[str]) -> None:
    name, va, data = readable_symbol(v3, 20)
    status, out, err = run(capsys, "read", *files(v3), name, "20")
    assert (status, err) == (0, "")
    assert out.splitlines() == [
        expected_hexdump_line(va, data[:16]),
        expected_hexdump_line(va + 16, data[16:20]),
        f"{va + 20:016x}",
    ]


def test_read_address_and_offset_forms(v3: Dump, capsys: pytest.CaptureFixture[str]) -> None:
    name, va, data = readable_symbol(v3, 16)
    expected = [expected_hexdump_line(va + 4, data[4:12]), f"{va + 12:016x}"]
    for target, length in [
        (f"{name}+4", "8"),
        (f"{name}+0x4", "0x8"),
        (hex(va + 4), "8"),
        (str(va + 4), "8"),
    ]:
        status, out, err = run(capsys, "read", *files(v3), target, length)
        assert (status, err) == (0, ""), target
        assert out.splitlines() == expected, target


def test_read_raw_bytes(v3: Dump, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    name, va, data = readable_symbol(v3, 64)
    status = main(["read", "--raw", *files(v3), name, "64"])
    captured = capsysbinary.readouterr()
    assert status == 0
    assert captured.err == b""
    assert captured.out == data


def test_read_json(anydump: Dump, capsys: pytest.CaptureFixture[str]) -> None:
    name, va, data = readable_symbol(anydump, 32)
    status, out, err = run(capsys, "read", "--json", *files(anydump), f"{name}+1", "31")
    assert (status, err) == (0, "")
    assert json.loads(out) == {
        "address": va + 1,
        "symbol": name,
        "offset": 1,
        "length": 31,
        "data": data[1:].hex(),
    }


def test_read_hole_prints_libkvm_text(anydump: Dump, capsys: pytest.CaptureFixture[str]) -> None:
    assert anydump.truth.holes
    hole = anydump.truth.holes[0]
    status, out, err = run(capsys, "read", *files(anydump), hex(hole), "8")
    assert status == 1
    assert out == ""
    assert err == f"pykvm: invalid address ({hole:#x})\n"


def test_read_unknown_symbol(v3: Dump, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "read", *files(v3), "no_such_symbol_here", "8")
    assert (status, out) == (1, "")
    assert err == "pykvm: no_such_symbol_here: symbol not found\n"


@pytest.mark.parametrize(
    "argv",
    [
        ["read", "k", "c", "0xzz", "8"],
        ["read", "k", "c", "sym+zz", "8"],
        ["read", "k", "c", "sym", "-1"],
        ["read", "k", "c", "sym"],
        ["read", "--raw", "--json", "k", "c", "sym", "8"],
        ["nlist", "k", "c"],
        ["nlist", "k", "c", ""],
        ["pages", "k", "c", "--limit", "many"],
        ["frobnicate"],
        [],
    ],
)
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, *argv)
    assert status == 2
    assert out == ""
    assert "usage: pykvm" in err


def test_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "--help")
    assert status == 0
    for command in ("demo", "info", "nlist", "read", "pages"):
        assert command in out


# --------------------------------------------------------------------------- pages


def walk_record(record: Any) -> dict[str, int]:
    """A truth.walk record as a dict of kvm_page fields (objects, tuples or dicts)."""
    fields = ("version", "paddr", "kmap_vaddr", "dmap_vaddr", "prot", "offset", "len")
    if isinstance(record, dict):
        return {f: int(record[f]) for f in fields}
    if isinstance(record, tuple) and not hasattr(record, "paddr"):
        return dict(zip(fields, (int(v) for v in record), strict=True))
    return {f: int(getattr(record, f)) for f in fields}


def test_pages_limit_3(v3: Dump, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "pages", *files(v3), "--limit", "3")
    assert (status, err) == (0, "")
    lines = out.splitlines()
    assert lines[0].split() == ["PADDR", "KMAP_VADDR", "DMAP_VADDR", "PROT", "OFFSET", "LEN"]
    assert len(lines) == 4
    for line, record in zip(lines[1:], v3.truth.walk[:3], strict=True):
        want = walk_record(record)
        paddr, kmap, dmap, prot, offset, length = line.split()
        assert int(paddr, 16) == want["paddr"]
        assert int(kmap, 16) == want["kmap_vaddr"]
        assert int(dmap, 16) == want["dmap_vaddr"]
        assert prot == "".join(
            c if want["prot"] & bit else "-" for c, bit in (("r", 1), ("w", 2), ("x", 4))
        )
        assert (-1 if offset == "-" else int(offset, 16)) == want["offset"]
        assert int(length, 16) == want["len"]


def test_pages_json(v3: Dump, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "pages", "--json", *files(v3), "--limit", "3")
    assert (status, err) == (0, "")
    doc = json.loads(out)
    assert doc["pages"] == [walk_record(r) for r in v3.truth.walk[:3]]
    assert all(p["version"] == 2 for p in doc["pages"])


def test_pages_all(v3: Dump, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "pages", "--json", *files(v3))
    assert (status, err) == (0, "")
    assert json.loads(out)["pages"] == [walk_record(r) for r in v3.truth.walk]


def test_dump_of_another_architecture_opens_with_the_kernels_symtab(
    v3: Dump, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a non-amd64 host libkvm needs a resolver: the CLI supplies the kernel's own."""
    import pykvm.arch.amd64 as amd64

    monkeypatch.setattr(amd64, "amd64_native", lambda: False)
    name, va, data = readable_symbol(v3, 8)
    status, out, err = run(capsys, "info", "--json", *files(v3))
    assert (status, err) == (0, "")
    assert json.loads(out)["native"] is False
    status, out, err = run(capsys, "nlist", "--json", *files(v3), name)
    assert (status, err) == (0, "")
    # kvm_nlist2 through a resolver: N_DATA | N_EXT for every symbol found
    assert json.loads(out)["symbols"] == [{"name": name, "type": 7, "value": va, "found": True}]
    status, out, err = run(capsys, "read", "--json", *files(v3), name, "8")
    assert (status, err) == (0, "")
    assert json.loads(out)["data"] == data.hex()


# --------------------------------------------------------------------------- output problems


class _BrokenStdout:
    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")

    def flush(self) -> None:
        pass

    def fileno(self) -> int:
        raise OSError("no file descriptor")


def test_broken_pipe_is_quiet(
    v3: Dump, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdout", _BrokenStdout())
    status = main(["pages", *files(v3)])
    monkeypatch.undo()
    captured = capsys.readouterr()
    assert status == 1
    assert captured.err == ""


def test_python_dash_m(v3: Dump) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pykvm", "info", str(v3.kernel), "/nonexistent"],
        capture_output=True,
        text=True,
        check=False,
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == "pykvm: /nonexistent: No such file or directory\n"


# --------------------------------------------------------------------------- demo


def version_string(d: Dump) -> str:
    va = d.truth.symbols["version"]
    size = 1
    while True:
        data = d.truth.expect(va, size)
        assert data is not None
        if data.endswith(b"\0"):
            return data[:-1].decode()
        size += 1


@pytest.fixture
def demo_truth(tmp_path_factory: pytest.TempPathFactory) -> Dump:
    return build(tmp_path_factory.mktemp("demo-truth"), seed=cli.DEMO_SEED, fmt=cli.DEMO_FMT,
                 types=cli.DEMO_TYPES)


def test_demo_builds_once(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    demo_truth: Dump,
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    status, out, err = run(capsys, "demo")
    assert (status, err) == (0, "")
    (directory,) = (tmp_path / "pykvm").iterdir()
    assert directory.name == f"demo-{cli._version()}"
    kernel, core = directory / demo_truth.kernel.name, directory / demo_truth.core.name
    assert f"  kernel: {kernel}" in out.splitlines()
    assert f"  core:   {core}" in out.splitlines()
    assert "built just now" in out.splitlines()[0]
    for line in version_string(demo_truth).splitlines():
        assert f"  {line}" in out.splitlines()
    hole = demo_truth.truth.holes[0]
    assert f"pykvm: invalid address ({hole:#x})" in out.splitlines()
    assert f"$ pykvm info {kernel} {core}" in out.splitlines()
    assert core.read_bytes() == demo_truth.core.read_bytes()
    mtimes = {p.name: p.stat().st_mtime_ns for p in directory.iterdir()}

    status, again, err = run(capsys, "demo")
    assert (status, err) == (0, "")
    assert "cached" in again.splitlines()[0]
    assert again.splitlines()[1:] == out.splitlines()[1:]
    assert {p.name: p.stat().st_mtime_ns for p in directory.iterdir()} == mtimes
    # nothing left behind by the atomic build
    assert [p.name for p in (tmp_path / "pykvm").iterdir()] == [directory.name]


def test_demo_rebuilds_when_incomplete(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    directory = tmp_path / "pykvm" / f"demo-{cli._version()}"
    directory.mkdir(parents=True)
    (directory / "vmcore").write_bytes(b"half a dump")
    status, out, err = run(capsys, "demo")
    assert (status, err) == (0, "")
    assert "built just now" in out.splitlines()[0]
    assert (directory / cli.DEMO_META).is_file()
    assert (directory / "vmcore").stat().st_size > len(b"half a dump")


def test_demo_json(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    demo_truth: Dump,
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    status, out, err = run(capsys, "demo", "--json")
    assert (status, err) == (0, "")
    doc = json.loads(out)
    assert doc["built"] is True
    assert doc["info"]["format"] == "minidump"
    assert doc["info"]["version"] == 3
    symbols = {s["name"]: s["value"] for s in doc["nlist"]["symbols"] if s["found"]}
    for name, value in symbols.items():
        assert value == demo_truth.truth.symbols[name]
    assert doc["version"]["text"] == version_string(demo_truth)
    assert doc["version"]["address"] == demo_truth.truth.symbols["version"]
    assert doc["pages"] == [walk_record(r) for r in demo_truth.truth.walk[: cli.DEMO_PAGES]]
    hole = demo_truth.truth.holes[0]
    assert doc["fault"] == {"address": hole, "length": 16, "error": f"invalid address ({hole:#x})"}


# --------------------------------------------------------------------------- units


def test_parse_target() -> None:
    assert parse_target("0xffffffff80000000") == Target(address=0xFFFFFFFF80000000)
    assert parse_target("4096") == Target(address=4096)
    assert parse_target("version") == Target(symbol="version")
    assert parse_target("version+0x10") == Target(symbol="version", offset=16)
    assert parse_target("version+10") == Target(symbol="version", offset=10)
    assert parse_target("_start") == Target(symbol="_start")


@pytest.mark.skipif(shutil.which("hexdump") is None, reason="needs hexdump(1)")
@pytest.mark.parametrize("size", [0, 1, 15, 16, 17, 100, 333])
def test_hexdump_matches_hexdump_c(size: int, tmp_path: Path) -> None:
    rng = __import__("random").Random(size)
    data = bytes(rng.randrange(256) for _ in range(size // 3))
    data += bytes(size // 3) + bytes(rng.randrange(256) for _ in range(size - 2 * (size // 3)))
    path = tmp_path / "data"
    path.write_bytes(data)
    env = {**os.environ, "LC_ALL": "C"}
    want = subprocess.run(
        ["hexdump", "-C", str(path)], capture_output=True, text=True, check=True, env=env
    ).stdout
    assert "\n".join(hexdump(data, 0, 8)) + ("\n" if data else "") == want


def test_hexdump_squeezes_and_uses_kernel_addresses() -> None:
    data = bytes(48) + b"ABC"
    assert list(hexdump(data, 0xFFFFFFFF80001000, 16)) == [
        "ffffffff80001000  00 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00  |................|",
        "*",
        "ffffffff80001030  41 42 43" + " " * 42 + "|ABC|",
        "ffffffff80001033",
    ]
