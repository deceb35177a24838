"""pykvm.abi.abi_for: the ABI of an open dump, on every architecture's synthetic dumps,
and the ABI table's names."""

from __future__ import annotations

from pathlib import Path

import pytest

import pykvm
from pykvm import synth
from pykvm.abi import ABIS, abi_for, abi_of, lookup
from pykvm.constants import ELFCLASS32, ELFCLASS64, ELFDATA2LSB, ELFDATA2MSB
from pykvm.errors import KvmError
from pykvm.image.elf import Ehdr

#: (architecture, dump format) -> the pykvm.abi name its records follow
CASES = {
    ("amd64", "minidump-v3"): "amd64",
    ("amd64", "elf"): "amd64",
    ("i386", "minidump-pae"): "i386",
    ("i386", "elf-nopae"): "i386",
    ("arm", "minidump"): "arm",
    ("arm", "minidump-be"): "armeb",
    ("arm", "elf-v4-be"): "armeb",
    ("aarch64", "minidump-v3"): "aarch64",
    ("riscv", "minidump-sv39"): "riscv",
    ("mips", "minidump-o32-be"): "mips",
    ("mips", "minidump-o32-le"): "mipsel",
    ("mips", "minidump-n32-be"): "mipsn32",
    ("mips", "minidump-n32-le"): "mipsn32el",
    ("mips", "minidump-n64-be"): "mips64",
    ("mips", "minidump-n64-le"): "mips64el",
    ("powerpc", "elf"): "powerpc",
    ("powerpc64", "minidump-hpt"): "powerpc64",
    ("powerpc64", "minidump-hpt-le"): "powerpc64le",
}


@pytest.mark.parametrize("case", sorted(CASES), ids=["-".join(c) for c in sorted(CASES)])
def test_abi_for_every_architecture(case: tuple[str, str], tmp_path: Path) -> None:
    arch, fmt = case
    d = synth.build(arch, tmp_path, 3, fmt)
    with pykvm.open2(str(d.kernel), str(d.core), 0,
                     pykvm.symtab_resolver(str(d.kernel))) as kd:
        got = abi_for(kd)
    want = ABIS[CASES[case]]
    assert got is want
    assert (got.pointer_size, got.big_endian) == (
        8 if CASES[case] in ("amd64", "aarch64", "riscv", "mips64", "mips64el", "powerpc64",
                             "powerpc64le") else 4,
        CASES[case] in ("armeb", "mips", "mipsn32", "mips64", "powerpc", "powerpc64"))


def _ehdr(cls: int, data: int, machine: int = 8, flags: int = 0) -> Ehdr:
    return Ehdr(cls, data, 1, 9, 2, machine, 1, 0, 0, 0, flags, 52, 32, 0, 40, 0, 0)


def test_abi_of_from_headers() -> None:
    assert abi_of("mips", _ehdr(ELFCLASS32, ELFDATA2MSB, flags=0x20)).name == "mipsn32"
    assert abi_of("mips", _ehdr(ELFCLASS32, ELFDATA2LSB)).name == "mipsel"
    assert abi_of("mips", _ehdr(ELFCLASS64, ELFDATA2LSB)).name == "mips64el"
    # a byte order FreeBSD never shipped keeps the layout and flips the order
    odd = abi_of("powerpc", _ehdr(ELFCLASS32, ELFDATA2LSB, 20))
    assert (odd.name, odd.big_endian, odd.kinfo_proc_size) == ("powerpc-le", False, 816)
    with pytest.raises(KvmError, match="^unsupported architecture$"):
        abi_of("vax", _ehdr(ELFCLASS32, ELFDATA2LSB))
    with pytest.raises(KvmError, match="^unsupported architecture$"):
        abi_of("amd64", _ehdr(ELFCLASS32, ELFDATA2LSB, 62))


def test_lookup_names() -> None:
    assert lookup("x86_64") is ABIS["amd64"]
    assert lookup("ARMv7") is ABIS["arm"]
    assert lookup("armv7eb") is ABIS["armeb"]
    assert lookup("ppc64le") is ABIS["powerpc64le"]
    assert lookup("mipsn32le") is ABIS["mipsn32el"]
    with pytest.raises(ValueError, match="unknown FreeBSD ABI 'vax'"):
        lookup("vax")
    # i386 is the only ABI with a 32-bit time_t and 4-byte aligned 64-bit integers
    assert [n for n, a in ABIS.items() if a.time_size == 4] == ["i386"]
    assert [n for n, a in ABIS.items() if a.int64_align == 4] == ["i386"]
