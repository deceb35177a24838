"""Shared helpers of the kernel-data tests: synthetic dumps with kernel data, opening
them (with the DWARF file when there is one), a resolver that moves symbols, and copies
of a core with bytes patched at a kernel virtual address."""

from __future__ import annotations

import shutil
import signal
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

from pykvm import kvm as K
from pykvm.synth import SynthDump, build_amd64
from pykvm.synth.cmodel import LayoutTruth
from pykvm.synth.kerneldata import KernelDataTruth

TYPES = ("ctf-v3", "ctf-v2", "dwarf")
ERAS = ("10", "11", "12", "13", "14", "15")
#: every type source with every era, and the ELF full-dump format once per source
CASES = [(t, e, "minidump-v3") for t in TYPES for e in ERAS] + [(t, "14", "elf") for t in TYPES]
#: an address no synthetic dump maps
UNMAPPED = 0xFFFFFFFF00000000 + 0x40000000 - 0x1000

_BUILT: dict[tuple[str, str, str, int, bool], SynthDump] = {}


def build(root: Path, types: str, era: str, fmt: str = "minidump-v3", seed: int = 7,
          cp_time_symbol: bool = False) -> SynthDump:
    """Build (once per session and root) the dump of one case."""
    key = (types, era, fmt, seed, cp_time_symbol)
    if key not in _BUILT:
        d = root / "-".join((types, era, fmt, str(seed), str(cp_time_symbol)))
        d.mkdir(parents=True, exist_ok=True)
        _BUILT[key] = build_amd64(d, seed=seed, fmt=fmt, types=types, era=era,
                                  small_kva=True, cp_time_symbol=cp_time_symbol)
    return _BUILT[key]


def open_dump(d: SynthDump, core: Path | None = None,
              resolver: K.Resolver | None = None) -> K.Kvm:
    """Open the dump (or a patched copy of its core) and attach its DWARF file.

    A non-amd64 dump is non-native on the test hosts, and libkvm's ``kvm_open2`` refuses
    a non-native kernel without a symbol resolver: those get one over the kernel's own
    symbols that, like libc's ``__fdnlist`` on an ELF kernel, drops one leading ``_``
    (libkvm hands a resolver the a.out names as given, api.md 10.4).
    """
    if resolver is None and d.arch != "amd64":
        resolver = _elf_names(K.symtab_resolver(d.kernel))
    kd = K.open2(d.kernel, core if core is not None else d.core, resolver=resolver)
    if d.debug is not None:
        kd.attach_debug(d.debug)
    return kd


def _elf_names(symtab: K.Resolver) -> K.Resolver:
    """A resolver taking a.out names (``_nprocs``) to the ELF symbols (``nprocs``)."""
    def resolve(name: str) -> int | None:
        r = symtab(name[1:] if name.startswith("_") else name)
        return r if isinstance(r, int) else None
    return resolve


def moved(d: SynthDump, overrides: Mapping[str, int]) -> K.Resolver:
    """A resolver answering from the kernel's symbols, with ``overrides`` (names without
    the leading underscore) moved to other addresses."""
    with open_dump(d) as base:
        def resolve(name: str) -> int | None:
            bare = name[1:] if name.startswith("_") else name
            if bare in overrides:
                return overrides[bare]
            e = base.nlist2([name]).entries[0]
            return e.value if e.type != 0 else None

        table: dict[str, int | None] = {}

        def cached(name: str) -> int | None:
            if name not in table:
                table[name] = resolve(name)
            return table[name]

        # resolve eagerly the names the calls use, while the base handle is open
        for n in ("averunnable", "fscale", "cp_time", "cpuid_to_pcpu", "mp_maxcpus",
                  "mp_ncpus", "__pcpu", "swtailq", "dmmax", "nsw_cluster_max", "nprocs",
                  "allproc", "zombproc", "ticks", "hz", "cpu_tick_frequency", "msgbufp",
                  "__start_set_pcpu", "__stop_set_pcpu", "dpcpu_off"):
            cached("_" + n)
    return lambda name: table.get(name) if name in table else None


def patched(d: SynthDump, dest: Path, patches: list[tuple[int, bytes]]) -> Path:
    """A copy of the dump's core with ``data`` written at each kernel address ``va``."""
    dest.mkdir(parents=True, exist_ok=True)
    out = dest / "vmcore.patched"
    shutil.copyfile(d.core, out)
    with open_dump(d) as kd:
        assert kd.backend is not None
        offsets = []
        for va, data in patches:
            off, n = kd.backend.kvatop(va)
            assert n >= len(data), hex(va)
            offsets.append((off, data))
    with out.open("r+b") as f:
        for off, data in offsets:
            f.seek(off)
            f.write(data)
    return out


def member_va(d: SynthDump, struct: str, addr: int, path: str) -> int:
    """The address of ``struct.path`` of the structure at ``addr`` (from the truth)."""
    return addr + layout(d).structs[struct].member(path).offset


def le(value: int, size: int = 8) -> bytes:
    """``value`` as ``size`` little-endian bytes (amd64)."""
    return (value % (1 << (8 * size))).to_bytes(size, "little")


def kdata(d: SynthDump) -> KernelDataTruth:
    """The dump's kernel-data truth (built with types, so never None)."""
    assert d.truth.kernel_data is not None
    return d.truth.kernel_data


def layout(d: SynthDump) -> LayoutTruth:
    """The dump's type-layout truth."""
    assert d.truth.type_layout is not None
    return d.truth.type_layout


def ptr_size(d: SynthDump) -> int:
    """The target's pointer (and ``long``) size in bytes, from the truth."""
    return layout(d).target.ptr_size


def packed(d: SynthDump, value: int, size: int | None = None) -> bytes:
    """``value`` as ``size`` bytes (default: a pointer) in the dump's byte order."""
    n = ptr_size(d) if size is None else size
    big = layout(d).target.byteorder == "big"
    return (value % (1 << (8 * n))).to_bytes(n, "big" if big else "little")


def unmapped(d: SynthDump) -> int:
    """A kernel address of the target's width that the dump does not map (checked)."""
    va = UNMAPPED if ptr_size(d) == 8 else 0xDEAD0000
    with open_dump(d) as kd:
        assert kd.backend is not None and kd.backend.kvatop(va)[1] == 0, hex(va)
    return va


#: the dumps the corruption tests of other architectures damage (era 12: zombies on
#: zombproc): (architecture, format, type source)
CORRUPT_BASES = [
    ("powerpc64", "minidump-hpt", "ctf-v3"),  # 64-bit big-endian
    ("i386", "minidump-pae", "dwarf"),  # 32-bit little-endian
    ("powerpc", "elf", "ctf-v3"),  # 32-bit big-endian, ELF full dump
    ("mips", "minidump-o32-be", "ctf-v3"),  # 32-bit big-endian, minidump
]
CORRUPT_ERA = "12"


def corrupt_base(root: Path, case: tuple[str, str, str]) -> SynthDump:
    """The dump of one :data:`CORRUPT_BASES` case, written into ``root``."""
    from pykvm.synth import build as synth_build

    arch, fmt, types = case
    return synth_build(arch, root, 11, fmt, types=types, era=CORRUPT_ERA)


@contextmanager
def hang_alarm(seconds: int) -> Iterator[None]:
    """Fail (instead of hanging the suite) when the body runs longer than ``seconds``."""
    def stop(signum: int, frame: FrameType | None) -> None:
        raise AssertionError(f"no result after {seconds} s: a hang")

    old = signal.signal(signal.SIGALRM, stop)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


NODEV64 = (1 << 64) - 1


def check_record(k: Any, p: Any) -> None:
    """The process fields of a getprocs record ``k`` against the writer's ``ProcTruth``
    ``p`` (kernel-data.md 1.6; libkvm's 64-bit NODEV whatever the kernel's dev_t)."""
    assert k.paddr == p.addr
    assert (k.pid, k.ppid, k.pgid, k.sid) == (p.pid, p.ppid, p.pgid, p.sid)
    assert (k.uid, k.ruid, k.svuid, k.rgid, k.svgid) == (p.uid, p.ruid, p.svuid, p.rgid,
                                                        p.svgid)
    assert k.groups == p.groups and k.ngroups == len(p.groups)
    assert k.jid == p.jid
    assert k.comm == p.comm.encode()[:18]
    assert k.emul == p.emul.encode()[:15]
    assert k.login == p.login.encode()[:18].ljust(18, b"\0")
    assert (k.size, k.rssize, k.swrss, k.tsize, k.dsize, k.ssize) == (
        p.size, p.rssize, p.swrss, p.tsize, p.dsize, p.ssize)
    assert k.xstat == ((p.xexit << 8) | p.xsig)
    # kernel-data.md 1.10: pg_jobc where the kernel has it (FreeBSD <= 13), else -1
    assert k.jobc == (-1 if p.pg_jobc is None else p.pg_jobc)
    assert k.numthreads == len(p.threads)
    assert k.tdev == NODEV64 and k.tdev_freebsd11 == 0xFFFFFFFF
    if p.tty is not None:
        assert (k.tpgid, k.tsid) == (p.tty_pgid, p.tty_sid)
    else:
        assert (k.tpgid, k.tsid) == (0, 0)
    if not p.zombie:
        assert (k.flag, k.nice) == (p.flag, p.nice)
