"""Checks of the synthetic kernel ELF, decoded by hand with struct."""

from __future__ import annotations

import struct
from pathlib import Path

from pykvm.synth import build_amd64

IMAGE_VA = 0xFFFFFFFF80200000
SHN_ABS = 0xFFF1
SHN_COMMON = 0xFFF2


def sections(data: bytes) -> list[tuple[str, tuple[int, ...]]]:
    shoff = struct.unpack_from("<Q", data, 40)[0]
    shnum, shstrndx = struct.unpack_from("<HH", data, 60)
    raw = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * 64) for i in range(shnum)]
    str_off = raw[shstrndx][4]

    def name(off: int) -> str:
        end = data.index(b"\0", str_off + off)
        return data[str_off + off : end].decode()

    return [(name(sh[0]), sh) for sh in raw]


def test_kernel_elf_header(tmp_path: Path) -> None:
    dump = build_amd64(tmp_path, seed=7, fmt="minidump-v3", small_kva=True)
    data = dump.kernel.read_bytes()
    assert data[:8] == b"\x7fELF\x02\x01\x01\x09"  # ELF64, LE, EV_CURRENT, FreeBSD ABI
    e_type, e_machine, e_version = struct.unpack_from("<HHI", data, 16)
    assert (e_type, e_machine, e_version) == (2, 62, 1)
    assert struct.unpack_from("<Q", data, 32)[0] == 64  # e_phoff
    assert struct.unpack_from("<HHH", data, 52) == (64, 56, 2)
    # two PT_LOADs: text+rodata from offset 0 (R|X) and data+bss (R|W), linked at KERNBASE+2M
    ph0 = struct.unpack_from("<IIQQQQQQ", data, 64)
    ph1 = struct.unpack_from("<IIQQQQQQ", data, 120)
    assert ph0[:5] == (1, 5, 0, IMAGE_VA, 0x200000)
    assert ph1[0:2] == (1, 6) and ph1[3] == IMAGE_VA + ph1[2]
    assert ph1[6] > ph1[5]  # memsz covers .bss


def test_sections_and_symtab_decode_to_truth(tmp_path: Path) -> None:
    dump = build_amd64(tmp_path, seed=8, fmt="minidump-v3", small_kva=True)
    t = dump.truth
    data = dump.kernel.read_bytes()
    secs = sections(data)
    names = [n for n, _ in secs]
    assert names == ["", ".text", ".rodata", ".data", ".bss", ".symtab", ".strtab", ".shstrtab"]
    by = dict(secs)
    assert by[".text"][1:3] == (1, 0x6)
    assert by[".rodata"][1:3] == (1, 0x2)
    assert by[".data"][1:3] == (1, 0x3)
    assert by[".bss"][1:3] == (8, 0x3)
    symtab = by[".symtab"]
    assert symtab[1] == 2 and symtab[6] == names.index(".strtab") and symtab[9] == 24

    # loaded sections: file bytes == memory bytes at their virtual addresses
    for sec in (".text", ".rodata", ".data"):
        sh = by[sec]
        assert t.expect(sh[3], sh[5]) == data[sh[4] : sh[4] + sh[5]]
    # .bss is zero except the variables the machine set
    bss = by[".bss"]
    mem = t.expect(bss[3], bss[5])
    assert mem is not None
    kpml4 = t.symbols["KPML4phys"] - bss[3]
    assert struct.unpack_from("<Q", mem, kpml4)[0] == t.kpml4phys
    assert mem.count(0) > len(mem) - 64

    str_off = by[".strtab"][4]
    first_global = symtab[7]
    decoded = []
    for i in range(1, symtab[5] // 24):
        st_name, st_info, _, st_shndx, st_value, st_size = struct.unpack_from(
            "<IBBHQQ", data, symtab[4] + i * 24
        )
        end = data.index(b"\0", str_off + st_name)
        decoded.append((data[str_off + st_name : end].decode(), st_info, st_shndx, st_value))
        assert (i >= first_global) == (st_info >> 4 != 0)  # locals first
    first: dict[str, int] = {}
    for name, _, _, value in decoded:
        if name:
            first.setdefault(name, value)
    assert first == t.symbols
    assert t.duplicates == {"counter": [v for n, _, _, v in decoded if n == "counter"]}
    assert len(t.duplicates["counter"]) == 2
    assert len(set(t.duplicates["counter"])) == 2

    info = {n: (i, s) for n, i, s, _ in decoded if n}
    assert info["kernbase"] == (0x10, SHN_ABS) and t.symbols["kernbase"] == 0xFFFFFFFF80000000
    assert info["locore.S"] == (0x04, SHN_ABS)
    assert info["undefined_hook"] == (0x10, 0)
    assert info["common_area"] == (0x11, SHN_COMMON)
    assert info["weak_hook"] == (0x22, 1)

    # n_type as libc's __fdnlist derives it (api.md 10.3)
    expected = {
        "kernbase": 0x03,
        "locore.S": 0x1E,
        "kern_synth.c": 0x1E,
        "panic": 0x05,
        "weak_hook": 0x05,
        "sysinit_helper": 0x04,
        "copyright": 0x05,
        "version": 0x07,
        "hz": 0x07,
        "KPML4phys": 0x09,
        "dumptid": 0x09,
        "static_buf": 0x08,
        "counter": 0x06,
        "undefined_hook": 0x01,
        "common_area": 0x01,
        "end": 0x09,
        "_end": 0x09,
        "etext": 0x05,
        "synth_pair": 0x07,
        "_synth_pair": 0x07,
    }
    for name, n_type in expected.items():
        assert t.nlist_types[name] == n_type, name
    assert set(t.nlist_types) == set(t.symbols)


def test_named_variables_in_memory(tmp_path: Path) -> None:
    dump = build_amd64(tmp_path, seed=9, fmt="elf")
    t = dump.truth
    version = t.expect(t.symbols["version"], 200)
    assert version is not None
    text = version.split(b"\0")[0].decode()
    assert text.startswith("FreeBSD ") and " #0 synth-9: " in text and text.endswith("\n")
    assert t.expect(t.symbols["ostype"], 8) == b"FreeBSD\0"
    hz = struct.unpack("<i", t.expect(t.symbols["hz"], 4) or b"")[0]
    assert hz in (100, 1000)
    maxcpus = struct.unpack("<I", t.expect(t.symbols["mp_maxcpus"], 4) or b"")[0]
    assert maxcpus in (64, 256, 1024)
    tid = struct.unpack("<i", t.expect(t.symbols["dumptid"], 4) or b"")[0]
    assert 100000 <= tid < 105000
    nkpt = struct.unpack("<i", t.expect(t.symbols["nkpt"], 4) or b"")[0]
    assert nkpt == t.nkpt
    words = struct.unpack("<32Q", t.expect(t.symbols["dump_avail"], 256) or b"")
    assert [(words[i], words[i + 1]) for i in range(0, 2 * len(t.dump_avail), 2)] == t.dump_avail
    assert t.variables["hz"] == struct.pack("<i", hz)
    # nlist of a single name stops at the first match, a leading underscore may be dropped
    found = t.nlist("_synth_pair")
    pair = [s for s in t.symbol_table if s.name in ("synth_pair", "_synth_pair")]
    assert found == (0x07, pair[0].value)
    assert t.nlist("_version") == (0x07, t.symbols["version"])
    assert t.nlist("no_such_symbol") is None


def test_extra_symbols(tmp_path: Path) -> None:
    dump = build_amd64(tmp_path, seed=1, fmt="minidump-v1", extra_symbols=60000)
    t = dump.truth
    extras = [n for n in t.symbols if n.startswith("synth_extra_")]
    assert len(extras) == 60000
    data = dump.kernel.read_bytes()
    symtab = dict(sections(data))[".symtab"]
    assert symtab[5] // 24 == len(t.symbol_table) + 1
    assert t.nlist_types["synth_extra_000000"] == 0x05
    assert t.nlist_types["synth_extra_000001"] == 0x07
