"""Symbol lookup: kvm_nlist2 / kvm_nlist on dumps (api.md 10.3-10.5, 10.8, 10.9)."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

import pykvm
from pykvm.synth import SynthDump


@pytest.fixture(scope="module")
def dump(amd64_dumps: dict[str, SynthDump]) -> SynthDump:
    return amd64_dumps["minidump-v3"]


def test_every_symbol_value_and_type(dump: SynthDump) -> None:
    t = dump.truth
    dups = getattr(t, "duplicates", {})
    names = [n for n in t.nlist_types if n not in dups]
    assert len(names) >= 15
    with pykvm.openfiles(str(dump.kernel), str(dump.core)) as kd:
        for name in names:
            # one name at a time: the first matching symbol fills it and ends the scan
            res = kd.nlist2([name])
            e = res.entries[0]
            if name.startswith("_") and name[1:] in t.symbols:
                continue  # two symbols match this entry; covered below
            assert (e.type, e.value) == (t.nlist_types[name], t.symbols[name]), name
            assert res.missing == 0


def test_scan_stops_when_the_count_reaches_zero(dump: SynthDump) -> None:
    t = dump.truth
    pair = [n for n in t.symbols if n.startswith("_") and n[1:] in t.symbols]
    assert pair, "the synthetic kernel has both _x and x"
    name = pair[0]
    with pykvm.openfiles(str(dump.kernel), str(dump.core)) as kd:
        # "_x" matches symbol "_x" and symbol "x": both count, so a list of "_x" and a
        # missing name reports 0 missing, and "_x" holds whichever symbol came last
        # in the table among those scanned before the count reached 0.
        res = kd.nlist2([name, "no_such_symbol"])
        assert res.missing == 0
        assert res[name].value in (t.symbols[name], t.symbols[name[1:]])
        assert res["no_such_symbol"].value == 0


def test_type_kinds_present(dump: SynthDump) -> None:
    kinds = set(dump.truth.nlist_types.values())
    # text, data, bss, abs, file, undefined: with and without N_EXT
    for want in (0x05, 0x07, 0x09, 0x02 | 0x01, 0x1E):
        assert want in kinds or (want | 1) in kinds or (want & ~1) in kinds, hex(want)
    assert dump.truth.nlist_types["kernbase"] & 0x1E == 0x02


def test_missing_and_terminator(dump: SynthDump) -> None:
    t = dump.truth
    with pykvm.openfiles(str(dump.kernel), str(dump.core)) as kd:
        res = kd.nlist2(["hz", "no_such_symbol", "_also_missing", "", "version"])
        assert [e.name for e in res.entries] == ["hz", "no_such_symbol", "_also_missing"]
        assert res.missing == 2
        assert res["no_such_symbol"].type == 0 and res["no_such_symbol"].value == 0
        assert res["hz"].value == t.symbols["hz"]
        empty = kd.nlist2([])
        assert empty.missing == 0 and empty.entries == []
        assert kd.nlist([]).missing == 0


def test_duplicate_entries_count_per_match(dump: SynthDump) -> None:
    t = dump.truth
    with pykvm.openfiles(str(dump.kernel), str(dump.core)) as kd:
        # the same name twice plus one missing: both copies match "hz" -> 3 - 2 = 1
        res = kd.nlist2(["hz", "hz", "no_such_symbol"])
        assert res.missing == 1
        assert res.entries[0].value == res.entries[1].value == t.symbols["hz"]
        dups = getattr(t, "duplicates", {})
        assert dups, "the synthetic kernel carries a duplicated symbol name"
        name, values = next(iter(dups.items()))
        # two symbols match one entry: the later one wins, and the count drops twice,
        # ending the scan early and under-reporting the missing name
        res = kd.nlist2([name, "no_such_symbol"])
        assert res[name].value == values[-1]
        assert res.missing == 0


def test_aout_nlist(dump: SynthDump) -> None:
    t = dump.truth
    with pykvm.openfiles(str(dump.kernel), str(dump.core)) as kd:
        res = kd.nlist(["_hz", "no_such_symbol"])
        assert res.missing == 1
        assert res["_hz"].value == t.symbols["hz"]
        assert res["_hz"].type == t.nlist_types["hz"]


def test_resolver_path(dump: SynthDump) -> None:
    calls: list[str] = []

    def resolver(name: str) -> int | None:
        calls.append(name)
        return 0x1234 if name == "foo" else None

    with pykvm.open2(str(dump.kernel), str(dump.core), 0, resolver) as kd:
        res = kd.nlist2(["foo", "_foo"])
        assert res.missing == 1
        assert (res["foo"].type, res["foo"].value) == (0x07, 0x1234)
        assert (res["_foo"].type, res["_foo"].value) == (0, 0)
        assert "foo" in calls and "_foo" in calls  # names passed exactly as given


def test_resolver_exceptions_and_c_style(dump: SynthDump) -> None:
    def resolver(name: str) -> tuple[int, int]:
        if name == "boom":
            raise RuntimeError("resolver failed")
        return (0, 0x99) if name == "yes" else (1, 0)

    with pykvm.open2(str(dump.kernel), str(dump.core), 0, resolver) as kd:
        res = kd.nlist2(["boom", "yes", "no"])
        assert res.missing == 2
        assert res["yes"].value == 0x99 and res["yes"].type == 0x07


def test_stripped_kernel_gives_minus_one(tmp_path: Path, dump: SynthDump) -> None:
    data = bytearray(dump.kernel.read_bytes())
    # turn the SHT_SYMTAB section header into SHT_PROGBITS (offsets from the ELF64 header)
    e_shoff, = struct.unpack_from("<Q", data, 40)
    e_shnum, = struct.unpack_from("<H", data, 60)
    for i in range(e_shnum):
        off = e_shoff + i * 64
        if struct.unpack_from("<I", data, off + 4)[0] == 2:
            struct.pack_into("<I", data, off + 4, 1)
    k = tmp_path / "kernel.stripped"
    k.write_bytes(bytes(data))
    with pykvm.openfiles(str(k), str(dump.core)) as kd:
        res = kd.nlist2(["version", "hz"])
        assert res.missing == -1
        assert [(e.type, e.value) for e in res.entries] == [(0, 0), (0, 0)]
        assert kd.geterr() == ""


def test_non_native_rules(monkeypatch: pytest.MonkeyPatch, dump: SynthDump) -> None:
    import pykvm.arch.amd64 as amd64

    monkeypatch.setattr(amd64, "host_machine", lambda: "aarch64")
    with pytest.raises(pykvm.NotNativeError) as ei:
        pykvm.openfiles(str(dump.kernel), str(dump.core))
    assert str(ei.value) == "non-native kernel requires a symbol resolver"
    resolver = pykvm.symtab_resolver(str(dump.kernel))
    with pykvm.open2(str(dump.kernel), str(dump.core), 0, resolver) as kd:
        assert kd.native() is False
        res = kd.nlist2(["version"])
        assert (res["version"].type, res["version"].value) == (0x07, dump.truth.symbols["version"])
        assert kd.read(res["version"].value, 8) == b"FreeBSD "
        with pytest.raises(pykvm.NotNativeError) as ei2:
            kd.nlist(["version"])
        assert str(ei2.value) == "kvm_nlist of non-native vmcore"
        assert kd.geterr() == "kvm_nlist of non-native vmcore"


def test_resolver_used_by_elf_core_init(amd64_dumps: dict[str, SynthDump]) -> None:
    d = amd64_dumps["elf"]
    asked: list[str] = []
    sym = pykvm.symtab_resolver(str(d.kernel))

    def resolver(name: str) -> int | None:
        asked.append(name)
        return sym(name)

    with pykvm.open2(str(d.kernel), str(d.core), 0, resolver) as kd:
        assert asked[:2] == ["kernbase", "KPML4phys"]
        assert kd.read(d.truth.symbols["version"], 8) == b"FreeBSD "

    def no_kpml4(name: str) -> int | None:
        return None if name == "KPML4phys" else sym(name)

    with pytest.raises(pykvm.KvmError) as ei:
        pykvm.open2(str(d.kernel), str(d.core), 0, no_kpml4)
    assert str(ei.value) == "bad namelist - no KPML4phys"
    with pytest.raises(pykvm.KvmError) as ei:
        pykvm.open2(str(d.kernel), str(d.core), 0, lambda n: None)
    assert str(ei.value) == "bad namelist - no kernbase"
