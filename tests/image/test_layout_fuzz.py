"""Corrupt CTF under the layout model: byte flips in a hand-assembled container.

Whatever the bytes say, layouts, member walks and views built from the CTF answer or
raise FormatError; never another exception.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_layout import proc_ctf

from pykvm.errors import FormatError
from pykvm.image.ctf import CtfFile
from pykvm.image.layout import KernelTypes

BASE = {version: proc_ctf(version) for version in (2, 3)}


def exercise(data: bytes) -> None:
    try:
        ctf = CtfFile.parse(data, pointer_size=8)
    except FormatError:
        return
    kt = KernelTypes(byteorder="little", pointer_size=8, ctf=ctf)
    for name in ("proc", "rusage_ext", "pgrp", "union proc"):
        try:
            layout = kt.find_struct(name)
            if layout is None:
                continue
            paths = [p for p, m, _d in layout.walk() if p and (m.type_name, m.type.layout)]
            if 0 < layout.size <= 1 << 16:
                view = kt.view_from(layout, bytes(range(256)) * (layout.size // 256 + 1), 0)
                for path in paths:
                    if layout.get(path) is not None:
                        try:
                            view[path]
                        except FormatError:
                            pass
        except FormatError:
            pass
    for enum in ("p_states", "vtype"):
        try:
            kt.enum(enum)
        except FormatError:
            pass
        except Exception as exc:  # "no type information" is a KvmError, not a crash
            assert type(exc).__name__ == "KvmError", exc


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(version=st.sampled_from([2, 3]),
       flips=st.lists(st.tuples(st.integers(36, 4096), st.integers(0, 255)), min_size=1,
                      max_size=6))
def test_flips_in_ctf_give_format_errors_only(version: int,
                                              flips: list[tuple[int, int]]) -> None:
    b = bytearray(BASE[version])
    for pos, value in flips:
        b[36 + (pos - 36) % (len(b) - 36)] = value
    exercise(bytes(b))
