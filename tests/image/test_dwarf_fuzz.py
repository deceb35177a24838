"""Corrupt DWARF: byte flips in a compiled object's .debug_info (and .debug_abbrev).

Whatever the bytes say, the DWARF reader and the layouts and views built on it answer
or raise FormatError ("DWARF: ..." from the reader); never another exception, and
never take long.  The objects come from gcc (tests/image/fixtures/fbsd_types.c).
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile
from gcc_build import compile_object, link_shared
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pykvm.errors import FormatError
from pykvm.image.dwarf import DwarfFile
from pykvm.image.layout import KernelTypes

NAMES = ("proc", "thread", "vnode", "vm_map", "pargs", "sysentvec")
#: Longest one example may take (a flip must never send the reader into a long walk).
LIMIT_S = 10


class Hang(BaseException):
    """Raised by the alarm: a BaseException, so that no ``except Exception`` eats it."""


@contextmanager
def time_limit(seconds: int) -> Iterator[None]:
    def ring(signum: int, frame: object) -> None:
        raise Hang(f"still running after {seconds} s")

    old = signal.signal(signal.SIGALRM, ring)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def sections(data: bytes, *names: str) -> dict[str, tuple[int, int]]:
    """File offset and size of the named sections."""
    import io

    elf = ELFFile(io.BytesIO(data))
    out = {}
    for name in names:
        sec = elf.get_section_by_name(name)
        assert sec is not None, name
        out[name] = (sec["sh_offset"], sec["sh_size"])
    return out


@pytest.fixture(scope="module")
def objects(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """Two linked files (no relocations: each example is cheap) and one relocatable
    object (pyelftools applies its .rel.debug_info first)."""
    d = tmp_path_factory.mktemp("fuzz")
    out = {}
    for name, flags in (("dwarf4", ["-gdwarf-4", "-fPIC"]), ("dwarf5", ["-gdwarf-5", "-fPIC"])):
        obj = compile_object(d, flags, name=f"{name}.o")
        out[name] = link_shared(d, [obj], flags, f"{name}.so").read_bytes()
    flags = ["-gdwarf-4", "-fdebug-types-section", "-fPIC"]
    obj = compile_object(d, flags, name="typeunits4.o")
    out["typeunits4"] = link_shared(d, [obj], flags, "typeunits4.so").read_bytes()
    out["m32-dwarf2"] = compile_object(d, ["-m32", "-gdwarf-2"], name="m32.o").read_bytes()
    return out


def exercise(data: bytes) -> None:
    """Everything a reader of kernel types does; only FormatError may escape."""
    try:
        dwarf = DwarfFile.from_bytes(data, "fuzz")
    except FormatError as exc:
        assert str(exc).startswith("DWARF:") or "DWARF" in str(exc)
        return
    kt = KernelTypes(byteorder="little", pointer_size=dwarf.address_size, dwarf=[dwarf])
    for name in NAMES:
        try:
            handle = dwarf.find("struct", name)
            if handle is not None:
                dwarf.type(handle)
                dwarf.sizeof(handle)
                dwarf.resolve(handle)
            layout = kt.find_struct(name)
            if layout is None:
                continue
            paths = []
            for path, m, _depth in layout.walk():
                _ = (m.type_name, m.type.layout, m.type.target, m.kind)
                if path:
                    paths.append(path)
                if len(paths) > 5000:
                    break
            if 0 < layout.size <= 1 << 16:
                view = kt.view_from(layout, bytes(range(256)) * (layout.size // 256 + 1), 0)
                for path in paths:
                    if layout.get(path) is None:
                        continue  # a corrupt name with a "." in it is no path
                    try:
                        view[path]
                    except FormatError:
                        pass
        except FormatError as exc:
            assert str(exc), "an empty message"
    for enum in ("p_states", "signed_thing"):
        try:
            h = dwarf.find("enum", enum)
            if h is not None:
                dwarf.type(h)
        except FormatError:
            pass
    for var in ("version", "allproc", "cpuid_to_pcpu"):
        try:
            kt.variable(var)
        except FormatError:
            pass
    try:
        dwarf.summary()
    except FormatError:
        pass
    dwarf.close()


def mutate(data: bytes, start: int, size: int, flips: list[tuple[int, int]]) -> bytes:
    b = bytearray(data)
    for pos, value in flips:
        b[start + pos % size] = value
    return bytes(b)


def test_unmodified_objects_read(objects: dict[str, bytes]) -> None:
    for data in objects.values():
        exercise(data)
        with DwarfFile.from_bytes(data) as dwarf:
            kt = KernelTypes(byteorder="little", pointer_size=dwarf.address_size, dwarf=[dwarf])
            assert kt.struct("proc").has("p_rux.rux_runtime")


@pytest.mark.parametrize("variant", ["dwarf4", "dwarf5", "typeunits4", "m32-dwarf2"])
@pytest.mark.parametrize("section", [".debug_info", ".debug_abbrev"])
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                    HealthCheck.data_too_large])
@given(flips=st.lists(st.tuples(st.integers(0, 1 << 20), st.integers(0, 255)),
                      min_size=1, max_size=8))
def test_flips_give_format_errors_only(objects: dict[str, bytes], variant: str, section: str,
                                       flips: list[tuple[int, int]]) -> None:
    data = objects[variant]
    start, size = sections(data, section)[section]
    with time_limit(LIMIT_S):
        exercise(mutate(data, start, size, flips))


#: Flips that once sent pyelftools' child iteration into an endless loop (a
#: DW_AT_sibling pointing backwards), on the gcc of the machines CI runs on.
KNOWN = [
    ("dwarf5", ".debug_info", [(92, 101), (284, 27), (2408, 105), (1094, 86)]),
    ("typeunits4", ".debug_abbrev", [(122, 206), (340, 64), (320, 112), (609, 101),
                                     (542, 130), (181, 80)]),
    ("dwarf5", ".debug_abbrev", [(414, 93)]),  # a negative DW_AT_bit_size
]


@pytest.mark.parametrize("variant,section,flips", KNOWN)
def test_known_bad_flips(objects: dict[str, bytes], variant: str, section: str,
                         flips: list[tuple[int, int]]) -> None:
    data = objects[variant]
    start, size = sections(data, section)[section]
    t0 = time.perf_counter()
    with time_limit(LIMIT_S):
        exercise(mutate(data, start, size, flips))
    assert time.perf_counter() - t0 < LIMIT_S


def test_truncated_and_garbage_files(objects: dict[str, bytes], tmp_path: Path) -> None:
    data = objects["dwarf4"]
    start, size = sections(data, ".debug_info")[".debug_info"]
    for cut in (4, 16, 64, size // 2, size - 1):  # .debug_info zeroed from `cut` on
        b = bytearray(data)
        b[start + cut:start + size] = bytes(size - cut)
        exercise(bytes(b))
    for junk in (b"", b"\x7fELF", b"\x7fELF" + bytes(60), data[:200]):
        with pytest.raises(FormatError):
            DwarfFile.from_bytes(junk)
    path = tmp_path / "short.debug"
    path.write_bytes(data[:start])
    with pytest.raises(FormatError):
        DwarfFile.open(path).find("struct", "proc")
