"""Unmodified ctypes-over-libkvm programs under ``python -m libkvm.run``.

The programs in tests/compat/programs are written as FreeBSD Python tools call libkvm
(``ctypes.CDLL(ctypes.util.find_library("kvm"))`` with argtypes and restypes); they run
unchanged in a subprocess against synthetic dumps, and their output is checked against
the dumps' ground truth.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import libkvm
import pytest
from compat_helpers import PROGRAMS, child_env
from libkvm.cdll import EmulatedLibkvm
from libkvm.run import is_libkvm, patched

from pykvm.synth import SynthDump

Run = Callable[..., subprocess.CompletedProcess[str]]

pytestmark = pytest.mark.skipif(sys.platform.startswith("freebsd"),
                                reason="auto mode runs the real libkvm on FreeBSD")


@pytest.fixture(scope="module")
def dump(amd64_dumps: dict[str, SynthDump]) -> SynthDump:
    return amd64_dumps["minidump-v3"]


def ok(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


# ------------------------------------------------------------ in-process patching
def test_is_libkvm() -> None:
    for name in ("libkvm.so.7", "libkvm.so", "/lib/libkvm.so.7", b"libkvm.so.7", "libkvm",
                 "kvm", Path("/usr/lib/libkvm.so.7.1")):
        assert is_libkvm(name), name
    for other in (None, "libc.so.6", "libkvmx.so", "kvm.dll", 7):
        assert not is_libkvm(other), other


def test_patched_loaders() -> None:
    real_cdll, real_loader, real_find = ctypes.CDLL, ctypes.cdll, ctypes.util.find_library
    libc_name = ctypes.util.find_library("c")
    with patched():
        assert ctypes.util.find_library("kvm") == "libkvm.so.7"
        assert ctypes.util.find_library("c") == libc_name
        for lib in (ctypes.CDLL("libkvm.so.7"), ctypes.cdll.LoadLibrary("/lib/libkvm.so.7"),
                    ctypes.CDLL(ctypes.util.find_library("kvm"), use_errno=True)):
            assert isinstance(lib, EmulatedLibkvm)
        main = ctypes.CDLL(None)
        assert isinstance(main, real_cdll)
        assert not isinstance(main, EmulatedLibkvm)
        lib: Any = ctypes.CDLL("libkvm.so.7", use_errno=True)
        lib.kvm_close.argtypes = [ctypes.c_void_p]
        ctypes.set_errno(0)
        assert lib.kvm_close(None) == -1
        assert ctypes.get_errno() == 22
    assert ctypes.CDLL is real_cdll
    assert ctypes.cdll is real_loader
    assert ctypes.util.find_library is real_find


# --------------------------------------------------------------------- programs
NLIST_NAMES = ["_version", "hz", "nosuch", "_mp_maxcpus", "kernbase"]


def nlist_lines(dump: SynthDump, names: list[str], aout: bool) -> list[str]:
    out = []
    for name in names:
        ntype, value = dump.truth.nlist(name) or (0, 0)
        extra = " other 0 desc 0" if aout else ""
        out.append(f"{name:<20} type 0x{ntype:02x} value 0x{value:016x}{extra}")
    return out


def test_nlist_reader(run: Run, dump: SynthDump) -> None:
    stdout = ok(run("nlist_reader.py", dump.kernel, dump.core, *NLIST_NAMES))
    assert stdout.splitlines() == nlist_lines(dump, NLIST_NAMES, True) + ["missing 1"]
    stdout = ok(run("nlist_reader.py", "-2", dump.kernel, dump.core, *NLIST_NAMES))
    assert stdout.splitlines() == nlist_lines(dump, NLIST_NAMES, False) + ["missing 1"]


def test_nlist_reader_open_error(run: Run, dump: SynthDump, tmp_path: Path) -> None:
    proc = run("nlist_reader.py", dump.kernel, tmp_path / "missing.core", "hz")
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert proc.stderr == f"nlist_reader: {tmp_path / 'missing.core'}: " \
                          "No such file or directory\n"


def test_nlist_reader_as_module(dump: SynthDump, tmp_path: Path) -> None:
    env = child_env()
    env["PYTHONPATH"] = f"{PROGRAMS}:{env['PYTHONPATH']}"
    proc = subprocess.run([sys.executable, "-m", "libkvm.run", "-m", "nlist_reader",
                           str(dump.kernel), str(dump.core), "hz"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert ok(proc).splitlines() == nlist_lines(dump, ["hz"], True) + ["missing 0"]


def hexdump(addr: int, data: bytes) -> list[str]:
    return [f"{addr + off:016x}  {data[off:off + 16].hex(' ')}"
            for off in range(0, len(data), 16)]


def test_kmemdump_symbol(run: Run, dump: SynthDump) -> None:
    t = dump.truth
    va = t.symbols["version"]
    n = 100
    data = t.expect(va, n)
    assert data is not None
    assert ok(run("kmemdump.py", dump.kernel, dump.core, "version", n)).splitlines() == \
        hexdump(va, data)
    hz = int.from_bytes(t.variables["hz"][:4], "little", signed=True)
    stdout = ok(run("kmemdump.py", dump.kernel, dump.core, "_hz", 4, "int"))
    assert stdout.splitlines()[-1] == f"int {hz}"


def test_kmemdump_regions(run: Run, dump: SynthDump) -> None:
    # a range straddling a page boundary, and the last region (whatever kind it is)
    for va, data in (dump.truth.regions[3], dump.truth.regions[-1]):
        data = data[:256]
        stdout = ok(run("kmemdump.py", dump.kernel, dump.core, hex(va), len(data)))
        assert stdout.splitlines() == hexdump(va, data)


def test_kmemdump_hole(run: Run, dump: SynthDump) -> None:
    hole = dump.truth.holes[1]
    proc = run("kmemdump.py", dump.kernel, dump.core, hex(hole), 8)
    assert proc.returncode == 1
    assert proc.stderr == f"kmemdump: kvm_read: invalid address (0x{hole:x})\n"


def walk_line(w: Any) -> str:
    return (f"v{w.version} pa {w.paddr:#x} kmap {w.kmap_vaddr:#x} dmap {w.dmap_vaddr:#x} "
            f"prot {w.prot} off {w.offset} len {w.len}")


def test_pagewalk(run: Run, dump: SynthDump) -> None:
    walk = dump.truth.walk
    lines = ok(run("pagewalk.py", dump.kernel, dump.core)).splitlines()
    assert lines == [walk_line(w) for w in walk] + [f"kvm_walk_pages 1, {len(walk)} pages"]
    lines = ok(run("pagewalk.py", dump.kernel, dump.core, 5)).splitlines()
    assert lines == [walk_line(w) for w in walk[:5]] + ["kvm_walk_pages 0, 5 pages"]


def test_pagewalk_full_dump(run: Run, amd64_dumps: dict[str, SynthDump]) -> None:
    d = amd64_dumps["elf"]
    assert ok(run("pagewalk.py", d.kernel, d.core)) == "kvm_walk_pages 0, 0 pages\n"


def test_error_paths(run: Run, dump: SynthDump) -> None:
    hole = dump.truth.holes[0]
    proc = run("kvm_errors.py", dump.kernel, dump.core, hex(hole))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        "kvm_openfiles: (None, b'/nonexistent: No such file or directory')",
        "kvm_open2 NULL errbuf: (None, b'')",
        "kvm_open: None",
        "kvm_close(NULL): (-1, 'EINVAL')",
        "kvm_geterr(NULL): b''",
        "open: (True, b'untouched', b'')",
        f"kvm_read hole: (-1, b'invalid address (0x{hole:x})')",
        "kvm_write: (-1, b'kvm_write not implemented for dead kernels')",
        "kvm_close: 0",
        "kvm_open2 O_WRONLY: (None, b'bad flags arg')",
        "kvm_open flags 3: None",
    ]
    assert proc.stderr.splitlines() == [
        "kvm_errors: /nonexistent: No such file or directory",
        "kvm_errors: bad flags arg",
    ]


def test_resolver_program(run: Run, dump: SynthDump) -> None:
    stdout = ok(run("resolver.py", dump.kernel, dump.core, "foo=0x1234", "--", "foo",
                    "_foo"))
    lines = stdout.splitlines()
    # names reach the resolver exactly as given (no underscore stripping), in order
    assert lines[:2] == ["resolve foo", "resolve _foo"]
    i = lines.index("kvm_nlist2 1")
    assert lines[i - 2:i] == ["foo type 0x07 value 0x1234", "_foo type 0x00 value 0x0"]
    native = lines[i + 1]
    assert native in ("kvm_native 0", "kvm_native 1")
    if native == "kvm_native 1":  # a native dump: nothing mapped at 0x1234, kvm_nlist works
        assert lines[i + 2] == "foo: -1 "
        assert lines[-1] == "kvm_nlist 0 "


def test_resolver_program_non_native(run: Run, tmp_path: Path) -> None:
    """A dump of another architecture, through kvm_open2 and a resolver (api.md 4.8)."""
    from pykvm import synth
    from pykvm.image.elf import host_machine

    arch = "riscv" if host_machine() in ("aarch64", "arm64") else "aarch64"
    if arch not in synth.ARCHES:
        pytest.skip(f"no synthetic {arch} dumps")
    d = synth.build(arch, tmp_path, seed=5)
    t = d.truth
    va = t.symbols["version"]
    proc = run("nlist_reader.py", d.kernel, d.core, "version")
    assert proc.returncode == 1
    assert proc.stderr == "nlist_reader: non-native kernel requires a symbol resolver\n"
    stdout = ok(run("resolver.py", d.kernel, d.core, f"version={va:#x}", "--", "version",
                    "nosuch"))
    data = t.expect(va, 16)
    assert data is not None
    assert stdout.splitlines() == [
        "resolve version", "resolve nosuch",
        f"version type 0x07 value 0x{va:x}", "nosuch type 0x00 value 0x0",
        "kvm_nlist2 1", "kvm_native 0", f"version: 16 {data.hex()}",
        "kvm_nlist -1 kvm_nlist of non-native vmcore",
    ]


# ------------------------------------------------------------------ the runner
def test_usage(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "libkvm.run"], cwd=tmp_path,
                          env=child_env(), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.startswith("usage: python -m libkvm.run")


def test_argv_path_and_exit_status(tmp_path: Path) -> None:
    script = tmp_path / "prog.py"
    (tmp_path / "helper.py").write_text("VALUE = 41\n")
    script.write_text(
        "import sys, ctypes, ctypes.util\n"
        "import helper\n"
        "print(sys.argv, helper.VALUE + 1, ctypes.util.find_library('kvm'))\n"
        "sys.exit(3)\n")
    proc = subprocess.run([sys.executable, "-m", "libkvm.run", str(script), "a", "-b"],
                          cwd=Path("/"), env=child_env(), capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 3
    assert proc.stdout == f"[{str(script)!r}, 'a', '-b'] 42 libkvm.so.7\n"


def test_native_mode_patches_nothing(tmp_path: Path) -> None:
    script = tmp_path / "prog.py"
    script.write_text("import ctypes, ctypes.util\n"
                      "print(type(ctypes.CDLL).__name__, ctypes.CDLL.__module__,"
                      " ctypes.util.find_library('kvm') == 'libkvm.so.7')\n")
    proc = subprocess.run([sys.executable, "-m", "libkvm.run", str(script)], cwd=tmp_path,
                          env=child_env(PYKVM_LIBKVM="native"), capture_output=True,
                          text=True, timeout=60)
    assert ok(proc) == "type ctypes False\n"
    assert libkvm.ENV == "PYKVM_LIBKVM"
