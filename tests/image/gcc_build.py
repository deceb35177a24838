"""Compile C with the host's gcc for the DWARF tests, and ask the compiler for the truth.

The tests need gcc (CI runs on machines that have it): when it is missing they fail
loudly, they are never skipped.  Two ways to learn a layout from the compiler itself:

* :func:`run_probes` builds and runs a tiny program that prints ``offsetof`` and
  ``sizeof`` of each member (native ABI only: the program must run here);
* :func:`data_probes` compiles the same questions as constant objects
  (``const unsigned long long probe_N = offsetof(...)``) and reads their bytes from
  the object file, which works for ``-m32`` without a 32-bit C library.

A bit-field has no ``offsetof``: both write -1 into it in an otherwise zero struct
and report which bits came out set (little-endian bit numbering, as DWARF's
``DW_AT_data_bit_offset`` counts on x86).
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

FIXTURES = Path(__file__).parent / "fixtures"
FIXTURE = FIXTURES / "fbsd_types.c"


def gcc() -> str:
    """Path of gcc; fails the test (never skips it) when there is none."""
    path = shutil.which("gcc")
    if path is None:
        pytest.fail("gcc not found: the DWARF tests compile C with the host's gcc "
                    "(CI machines have it)", pytrace=False)
    return path


def run(cmd: Sequence[str], cwd: Path) -> str:
    """Run a command, failing the test with its output when it fails."""
    proc = subprocess.run(list(cmd), cwd=cwd, capture_output=True, text=True, timeout=300,
                          check=False)
    if proc.returncode != 0:
        pytest.fail(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr}",
                    pytrace=False)
    return proc.stdout


def compile_object(directory: Path, flags: Sequence[str], source: Path = FIXTURE,
                   name: str = "fixture.o") -> Path:
    """``gcc <flags> -c source -o directory/name``."""
    out = directory / name
    run([gcc(), *flags, "-c", str(source), "-o", str(out)], directory)
    return out


def link_shared(directory: Path, objects: Iterable[Path], flags: Sequence[str],
                name: str = "fixture.so") -> Path:
    """Link objects into a shared object (merges COMDAT type units into one section)."""
    out = directory / name
    run([gcc(), *flags, "-shared", "-nostdlib", "-o", str(out), *map(str, objects)],
        directory)
    return out


@dataclass(frozen=True)
class Probe:
    """One question: ``sizeof(struct S)`` (path ""), a member's offset and size, or the
    bits a bit-field occupies."""

    struct: str
    path: str = ""
    bitfield: bool = False


def _prelude() -> str:
    return f'#define FBSD_TYPES_NO_OBJECTS\n#include "{FIXTURE}"\n'


def run_probes(directory: Path, probes: Sequence[Probe]) -> dict[Probe, tuple[int, int]]:
    """Ask a native program: ``(offset, size)``, or ``(bit_offset, bit_size)`` for a
    bit-field, or ``(0, sizeof)`` for a struct."""
    lines = [_prelude(), "int printf(const char *, ...);", "int main(void) {"]
    for i, p in enumerate(probes):
        s = f"struct {p.struct}"
        if not p.path:
            lines.append(f'  printf("{i} 0 %zu\\n", sizeof({s}));')
        elif not p.bitfield:
            lines.append(f'  printf("{i} %zu %zu\\n", __builtin_offsetof({s}, {p.path}), '
                         f"sizeof((({s} *)0)->{p.path}));")
        else:
            lines += [
                f"  {{ union {{ {s} s; unsigned char b[sizeof({s})]; }} u;",
                "    __builtin_memset(&u, 0, sizeof u);",
                f"    u.s.{p.path} = -1;",
                f'    printf("{i} bits");',
                '    for (unsigned k = 0; k < sizeof u.b; k++) printf(" %u", u.b[k]);',
                '    printf("\\n"); }',
            ]
    lines += ["  return 0;", "}"]
    src = directory / "probe.c"
    src.write_text("\n".join(lines) + "\n")
    exe = directory / "probe"
    run([gcc(), "-w", "-O0", str(src), "-o", str(exe)], directory)
    out: dict[Probe, tuple[int, int]] = {}
    for line in run([str(exe)], directory).splitlines():
        words = line.split()
        p = probes[int(words[0])]
        if words[1] == "bits":
            out[p] = bit_range(bytes(int(w) for w in words[2:]))
        else:
            out[p] = (int(words[1]), int(words[2]))
    return out


def data_probes(directory: Path, probes: Sequence[Probe], flags: Sequence[str],
                name: str = "probe_data") -> dict[Probe, tuple[int, int]]:
    """The same answers as :func:`run_probes`, compiled into constants (no linking)."""
    lines = [_prelude()]
    for i, p in enumerate(probes):
        s = f"struct {p.struct}"
        if not p.path:
            lines.append(f"const unsigned long long probe_{i}_a = 0;")
            lines.append(f"const unsigned long long probe_{i}_b = sizeof({s});")
        elif not p.bitfield:
            lines.append(f"const unsigned long long probe_{i}_a = "
                         f"__builtin_offsetof({s}, {p.path});")
            lines.append(f"const unsigned long long probe_{i}_b = sizeof((({s} *)0)->{p.path});")
        else:
            lines.append(f"const union {{ {s} s; unsigned char b[sizeof({s})]; }} "
                         f"probe_{i}_bits = {{ .s.{p.path} = -1 }};")
    src = directory / f"{name}.c"
    src.write_text("\n".join(lines) + "\n")
    obj = compile_object(directory, ["-w", *flags], src, f"{name}.o")
    blobs = symbol_bytes(obj, "probe_")
    out: dict[Probe, tuple[int, int]] = {}
    for i, p in enumerate(probes):
        if p.bitfield:
            out[p] = bit_range(blobs[f"probe_{i}_bits"])
        else:
            a = int.from_bytes(blobs[f"probe_{i}_a"], "little")
            b = int.from_bytes(blobs[f"probe_{i}_b"], "little")
            out[p] = (a, b)
    return out


def symbol_bytes(obj: Path, prefix: str) -> dict[str, bytes]:
    """The initial bytes of every defined data symbol whose name starts with ``prefix``."""
    out: dict[str, bytes] = {}
    with obj.open("rb") as f:
        elf = ELFFile(f)
        symtab = elf.get_section_by_name(".symtab")
        assert symtab is not None
        for sym in symtab.iter_symbols():
            if not sym.name.startswith(prefix) or not isinstance(sym["st_shndx"], int):
                continue
            sec = elf.get_section(sym["st_shndx"])
            start = sym["st_value"] - (sec["sh_addr"] if elf["e_type"] != "ET_REL" else 0)
            out[sym.name] = sec.data()[start:start + sym["st_size"]]
    return out


def bit_range(data: bytes) -> tuple[int, int]:
    """(first bit, width) of the one contiguous run of set bits, little-endian numbering."""
    value = int.from_bytes(data, "little")
    assert value, "no bit set"
    low = (value & -value).bit_length() - 1
    width = (value >> low).bit_length()
    assert value >> low == (1 << width) - 1, "set bits are not contiguous"
    return low, width
