"""Benchmarks of pykvm.image.layout: member lookups after the first, from CTF and DWARF.

CTF: the kernel-sized generated container of test_bench_ctf (40,000 types).  DWARF: a
kernel-shaped debug file made by gcc from many generated compile units (thousands of
structs, FreeBSD-shaped ones in the last unit), linked like a kernel (no relocations
left in the debug sections: pyelftools would otherwise apply them in Python first).
Target: a member lookup after the first under 5 us for both; the first lookups are
reported too.
"""

from __future__ import annotations

import json
import random
import shutil
import statistics
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from test_bench_ctf import generate

from pykvm.image.ctf import CtfFile
from pykvm.image.dwarf import DwarfFile
from pykvm.image.layout import KernelTypes

FIXTURE = Path(__file__).parent.parent / "image" / "fixtures" / "fbsd_types.c"
UNITS = 24
STRUCTS_PER_UNIT = 250


def report(name: str, **figures: object) -> None:
    print(f"\nBENCH {name} {json.dumps(figures)}")


def per_call_us(fn: Callable[[], object], n: int = 20_000, rounds: int = 5) -> float:
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter_ns()
        for _ in range(n):
            fn()
        times.append((time.perf_counter_ns() - t0) / n / 1000)
    return statistics.median(times)


def test_ctf_member_lookup() -> None:
    data, samples = generate(3, 40_000, seed=7)
    t0 = time.perf_counter()
    ctf = CtfFile.parse(data, pointer_size=8)
    kt = KernelTypes(byteorder="little", pointer_size=8, ctf=ctf)
    t1 = time.perf_counter()
    s0 = kt.struct("s0")
    first_struct_ms = (time.perf_counter() - t1) * 1e3
    parse_ms = (t1 - t0) * 1e3
    rng = random.Random(5)
    picks = rng.sample(samples, 2000)
    names = {sid: ctf.type(sid).name for sid, _, _ in picks}
    t0 = time.perf_counter()
    for sid, member, off in picks:
        assert kt.struct(names[sid]).member(member).bit_offset == off
    first_us = (time.perf_counter() - t0) / len(picks) * 1e6
    sid, member, _ = picks[0]
    layout = kt.struct(names[sid])
    again_us = per_call_us(lambda: layout.member(member))
    registry_us = per_call_us(lambda: kt.offsetof(names[sid], member))
    view = kt.view_from(layout, bytes(layout.size), 0)
    view_us = per_call_us(lambda: view[member])
    report("layout-ctf", types=ctf.ntypes, parse_ms=round(parse_ms, 1),
           first_struct_ms=round(first_struct_ms, 2), member_first_us=round(first_us, 1),
           member_again_us=round(again_us, 3), registry_offsetof_us=round(registry_us, 3),
           view_decode_us=round(view_us, 3), struct_s0_members=len(s0.fields))
    assert again_us < 5.0, f"member lookup {again_us:.2f} us after the first"
    assert registry_us < 5.0, f"offsetof {registry_us:.2f} us after the first"


@pytest.fixture(scope="module")
def kernel_debug(tmp_path_factory: pytest.TempPathFactory) -> Path:
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.fail("gcc not found: the DWARF benchmark compiles C with the host's gcc")
    d = tmp_path_factory.mktemp("bench-dwarf")
    rng = random.Random(11)
    objects = []
    kinds = ["int", "long", "char *", "unsigned short", "struct u0s0 *", "unsigned int"]
    for u in range(UNITS):
        lines = []
        for s in range(STRUCTS_PER_UNIT):
            members = [f"  {rng.choice(kinds)} m{u}_{s}_{j};" for j in range(rng.randint(4, 14))]
            members.append(f"  union {{ long a{u}_{s}; int b{u}_{s}; }};")
            lines.append(f"struct u{u}s{s} {{\n" + "\n".join(members) + "\n};")
            lines.append(f"struct u{u}s{s} v{u}s{s};")
        if u == 0:
            lines.insert(0, "struct u0s0;")
        src = d / f"unit{u}.c"
        src.write_text("\n".join(lines) + "\n")
        if u == UNITS - 1:
            src.write_text(src.read_text() + f'#include "{FIXTURE}"\n')
        obj = d / f"unit{u}.o"
        subprocess.run([gcc, "-g", "-fPIC", "-c", str(src), "-o", str(obj)], check=True,
                       timeout=600)
        objects.append(str(obj))
    out = d / "kernel.debug"
    subprocess.run([gcc, "-shared", "-nostdlib", "-o", str(out), *objects], check=True,
                   timeout=600)
    return out


def test_dwarf_member_lookup(kernel_debug: Path) -> None:
    t0 = time.perf_counter()
    dwarf = DwarfFile.open(kernel_debug)
    kt = KernelTypes(byteorder="little", pointer_size=8, dwarf=[dwarf])
    open_ms = (time.perf_counter() - t0) * 1e3
    t0 = time.perf_counter()
    proc = kt.struct("proc")  # defined in the last unit only
    first_proc_ms = (time.perf_counter() - t0) * 1e3
    scanned = len(dwarf._scans)
    t0 = time.perf_counter()
    thread = kt.struct("thread")  # same unit: answered from the index built on the way
    second_struct_ms = (time.perf_counter() - t0) * 1e3
    t0 = time.perf_counter()
    first = proc.member("p_rux.rux_runtime")
    member_first_us = (time.perf_counter() - t0) * 1e6
    again_us = per_call_us(lambda: proc.member("p_rux.rux_runtime"))
    registry_us = per_call_us(lambda: kt.offsetof("proc", "p_pid"))
    view = kt.view_from(proc, bytes(proc.size), 0)
    view_us = per_call_us(lambda: view.p_pid)
    t0 = time.perf_counter()
    mid = kt.struct(f"u{UNITS // 2}s7")
    middle_struct_ms = (time.perf_counter() - t0) * 1e3
    units = dwarf.summary()["units"]
    report("layout-dwarf", units=units, structs=UNITS * STRUCTS_PER_UNIT,
           debug_info_kib=dwarf.summary()["debug_info_bytes"] // 1024,
           open_ms=round(open_ms, 1), first_struct_ms=round(first_proc_ms, 1),
           units_read_for_it=scanned, same_unit_struct_ms=round(second_struct_ms, 2),
           other_unit_struct_ms=round(middle_struct_ms, 1),
           member_first_us=round(member_first_us, 1), member_again_us=round(again_us, 3),
           registry_offsetof_us=round(registry_us, 3), view_decode_us=round(view_us, 3))
    assert first.offset == proc.offsetof("p_rux") and thread.has("td_zombie")
    assert mid.has(f"a{UNITS // 2}_7")
    assert scanned == 1, "only the unit that defines struct proc is read"
    assert again_us < 5.0, f"member lookup {again_us:.2f} us after the first"
    assert registry_us < 5.0, f"offsetof {registry_us:.2f} us after the first"
