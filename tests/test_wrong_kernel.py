"""A kernel of one architecture with a dump of another fails with libkvm's text.

The expected text follows libkvm's probe: the kernel's ELF header picks the
backend (api.md 4.7) and that backend's initialisation rejects the core.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import pykvm
from pykvm import synth
from pykvm.synth import SynthDump

#: (arch, format) pairs: one minidump and, where libkvm reads them, one full dump.
PAIRS = [("amd64", "minidump-v3"), ("amd64", "elf"), ("i386", "minidump-pae"),
         ("i386", "elf-pae"), ("arm", "minidump"), ("arm", "elf-v4"),
         ("aarch64", "minidump-v3"), ("riscv", "minidump-sv39"), ("mips", "minidump-n64-le"),
         ("powerpc", "elf"), ("powerpc64", "minidump-hpt"), ("powerpc64", "elf")]
#: kernels whose full-dump backend rejects any other core with this text
ELF_BACKEND_TEXT = {"amd64": "invalid core", "i386": "invalid core", "arm": "invalid core",
                    "powerpc": "invalid corefile", "powerpc64": "invalid corefile"}


@pytest.fixture(scope="module")
def dumps(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], SynthDump]:
    return {(a, f): synth.build(a, tmp_path_factory.mktemp(f"{a}-{f}"), 3, f)
            for a, f in PAIRS}


def expected(kernel_arch: str, core_fmt: str) -> str:
    if core_fmt.startswith("minidump"):
        if kernel_arch == "powerpc":  # the 32-bit powerpc probe does not exclude minidumps
            return "invalid corefile"
        return "not a minidump for this platform"
    if kernel_arch in ELF_BACKEND_TEXT:
        return ELF_BACKEND_TEXT[kernel_arch]
    return "unsupported architecture"  # aarch64, riscv, mips: no full-dump reader


@pytest.mark.parametrize("kernel", PAIRS, ids=lambda p: f"{p[0]}-{p[1]}")
def test_kernel_of_another_architecture(dumps: dict[tuple[str, str], SynthDump],
                                        kernel: tuple[str, str], tmp_path: Path) -> None:
    k = dumps[kernel].kernel
    resolver = pykvm.symtab_resolver(str(k))
    for (arch, fmt), d in dumps.items():
        if arch == kernel[0]:
            continue
        with pytest.raises(pykvm.KvmError) as ei:
            pykvm.open2(str(k), str(d.core), 0, resolver)
        assert str(ei.value) == expected(kernel[0], fmt), (kernel, arch, fmt)


def test_right_pairs_open(dumps: dict[tuple[str, str], SynthDump]) -> None:
    for (arch, fmt), d in dumps.items():
        with pykvm.open2(str(d.kernel), str(d.core), 0,
                         pykvm.symtab_resolver(str(d.kernel))) as kd:
            assert kd.info().arch == arch, fmt
            assert kd.native() is (arch == "amd64")
            va, blob = d.truth.regions[0]
            assert kd.read(va, len(blob)) == blob
