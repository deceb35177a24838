"""Fixtures: synthetic dumps built from a seed, special files, derived (damaged) cores,
a real kernel + vmcore pair, the host's facts, and what the ground truth says about an
address (where it lies, which physical page libkvm would read instead).

Nothing here calls pykvm's readers: synthetic fixtures come from :mod:`pykvm.synth`
(which shares no code with them), symbol tables are read with pyelftools, and libkvm's
arithmetic (``_kvm_pa_bit_id``) is written out from formats.md 3.2.
"""

from __future__ import annotations

import hashlib
import os
import platform
import struct
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .model import FixtureSpec

# ----------------------------------------------------------------------------- host


@dataclass(frozen=True)
class Host:
    """Facts about the machine running the suite (recorded with golden results)."""

    system: str
    release: str
    version: str
    machine: str
    arch: str
    python: str

    @property
    def freebsd(self) -> bool:
        """Whether this is a FreeBSD host (where native libkvm exists)."""
        return self.system == "FreeBSD"

    def as_json(self) -> dict[str, str]:
        """The host as recorded in golden files."""
        return {"system": self.system, "release": self.release, "version": self.version,
                "machine": self.machine, "arch": self.arch, "python": self.python}


_MACHINE_ARCH = {
    "x86_64": "amd64", "amd64": "amd64", "i386": "i386", "i486": "i386", "i586": "i386",
    "i686": "i386", "aarch64": "aarch64", "arm64": "aarch64", "riscv64": "riscv",
    "ppc64": "powerpc64", "ppc64le": "powerpc64", "powerpc64": "powerpc64",
    "powerpc64le": "powerpc64", "powerpc": "powerpc", "ppc": "powerpc", "armv6l": "arm",
    "armv7l": "arm", "armv7": "arm", "arm": "arm", "mips": "mips", "mips64": "mips",
}


def host() -> Host:
    """The running host's facts, with the machine named as pykvm names architectures."""
    u = platform.uname()
    return Host(u.system, u.release, u.version, u.machine,
                _MACHINE_ARCH.get(u.machine.lower(), u.machine.lower()),
                platform.python_version())


# ----------------------------------------------------------------------- ELF facts
_EM_ARCH = {62: "amd64", 3: "i386", 40: "arm", 183: "aarch64", 243: "riscv", 8: "mips",
            20: "powerpc", 21: "powerpc64"}


def elf_arch(path: str) -> str:
    """pykvm's architecture name of an ELF file (its ``e_machine``), "" if not ELF."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(20)
    except OSError:
        return ""
    if len(head) < 20 or head[:4] != b"\x7fELF" or head[5] not in (1, 2):
        return ""
    (machine,) = struct.unpack_from("<H" if head[5] == 1 else ">H", head, 18)
    return _EM_ARCH.get(machine, "")


def read_symtab(path: str) -> list[tuple[str, int]]:
    """``(name, st_value)`` of the first ``SHT_SYMTAB`` section, in table order.

    Read with pyelftools, independently of pykvm's ELF reader.  Empty for a file
    without a symbol table.
    """
    from elftools.elf.elffile import ELFFile
    from elftools.elf.sections import SymbolTableSection

    out: list[tuple[str, int]] = []
    with open(path, "rb") as fh:
        elf = ELFFile(fh)
        for sec in elf.iter_sections():
            if sec["sh_type"] == "SHT_SYMTAB" and isinstance(sec, SymbolTableSection):
                for sym in sec.iter_symbols():
                    if sym.name:
                        out.append((sym.name, int(sym["st_value"])))
                break
    return out


def sha256_file(path: str | Path) -> str:
    """The hex sha256 of a file's contents."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# -------------------------------------------------------------------- special files
def ehdr64(*, machine: int = 62, e_type: int = 2, ei_class: int = 2, ei_data: int = 1,
           ei_version: int = 1, osabi: int = 9) -> bytes:
    """A bare little-endian ``Elf64_Ehdr`` packed by hand."""
    ident = b"\x7fELF" + bytes([ei_class, ei_data, ei_version, osabi]) + bytes(8)
    return ident + struct.pack("<HHIQQQIHHHHHH", e_type, machine, 1, 0, 0, 0, 0, 64, 56, 0,
                               64, 0, 0)


def _minidump(magic: bytes, *fields: int, fmt: str = "<I", size: int = 4096) -> bytes:
    return (magic.ljust(24, b"\0") + struct.pack(fmt, *fields)).ljust(size, b"\0")


#: special files a case names as ``{file[NAME]}``: their contents
SPECIAL_FILES: dict[str, Callable[[], bytes]] = {
    "text": lambda: b"this is a text file",  # kvm_open_test.c, kvm_open2_test.c
    "empty": lambda: b"",
    "nonempty": lambda: b"x" * 100,
    "elf-16-bytes": lambda: b"\x7fELF" + bytes(12),
    "elf-bad-version": lambda: ehdr64(ei_version=2),
    "elf-bad-class": lambda: ehdr64(ei_class=3),
    "elf-bad-data": lambda: ehdr64(ei_data=0),
    "elf-truncated": lambda: ehdr64()[:40],
    "elf32-truncated": lambda: ehdr64(ei_class=1)[:50],
    "elf32-x86-64": lambda: ehdr64(ei_class=1),
    "elf-unknown-machine": lambda: ehdr64(machine=0x1234),
    "elf-amd64-dyn": lambda: ehdr64(e_type=3),
    "kernel-amd64-header": lambda: ehdr64(),
    "kernel-aarch64-header": lambda: ehdr64(machine=183),
    "core-elf-exec": lambda: ehdr64(e_type=2),
    "core-elf-i386": lambda: ehdr64(e_type=4, machine=3),
    "core-elf32": lambda: ehdr64(e_type=4, ei_class=1) + bytes(64),
    "minidump-i386-magic": lambda: _minidump(b"minidump FreeBSD/i386", fmt="", size=124),
    "minidump-amd64-v4": lambda: _minidump(b"minidump FreeBSD/amd64", 4, size=124),
    "minidump-amd64-v0": lambda: _minidump(b"minidump FreeBSD/amd64", 0, size=124),
    "minidump-amd64-short": lambda: _minidump(b"minidump FreeBSD/amd64", fmt="", size=44),
    "minidump-amd64-huge-bitmap": lambda: _minidump(
        b"minidump FreeBSD/amd64", 3, 0, 0xFFFFF000, 4096, 0, 0, 0, 4096,
        fmt="<IIIIQQQI4x", size=8192),
    "minidump-arm64-v9": lambda: _minidump(b"minidump FreeBSD/arm64", 9),
    "minidump-other-magic": lambda: _minidump(b"minidump FreeBSD/sparc64", 1),
}


# ------------------------------------------------------------------------- points
class FixtureGap(LookupError):
    """The fixture lacks something a case needs (a point, a derived file): not applicable."""


def _pick_straddle(t: Any) -> int | None:
    ps = t.page_size
    for va in t.holes:
        edge = va & ~(ps - 1)
        if edge >= 16 and t.expect(edge - 16, 16) is not None and t.expect(edge, 1) is None:
            return int(edge)
    return None


def _last_dumped_pa(t: Any) -> int | None:
    ps = t.page_size
    for start, end in sorted(t.dump_avail, reverse=True):
        pa = (end - 1) & ~(ps - 1)
        while pa >= start:
            if t.core_offset(pa) is not None:
                return int(pa)
            pa -= ps
    return None


def _superpage_ram_end(t: Any) -> int | None:
    ends = sorted(e for _, e in t.dump_avail)
    for leaf in t.leaves:
        if leaf.size <= t.page_size:
            continue
        for e in ends:
            if leaf.pa < e < leaf.pa + leaf.size:
                va = leaf.va + (e - leaf.pa)
                if t.expect(va - 16, 16) is not None and t.expect(va, 1) is None:
                    return int(va)
    return None


def _amd64_version_pde(dump: Any) -> tuple[int, int] | None:
    """(pmap entry index, PDE) of the page table mapping ``version`` (amd64 v2/v3)."""
    t = dump.truth
    if dump.arch != "amd64" or t.version not in (2, 3):
        return None
    va = t.symbols["version"]
    idx = (va - t.kernbase) >> 21
    with open(dump.core, "rb") as fh:
        fh.seek(t.layout["pmap_off"] + idx * 8)
        (pde,) = struct.unpack("<Q", fh.read(8))
    if not pde & 1 or pde & 0x80:
        return None
    return int(idx), int(pde)


def compute_point(dump: Any, name: str) -> int | None:
    """A named address of a synthetic fixture (README.md "Addresses"), None if absent."""
    t = dump.truth
    if name == "straddle":
        return _pick_straddle(t)
    if name == "dmap-last-page":
        if not t.layout or not t.dmapend:
            return None
        pa = _last_dumped_pa(t)
        if pa is None:
            return None
        va = t.dmapbase + pa - t.extras.get("dmapphys", 0)
        if va + t.page_size > t.dmapend or t.translate(va) != pa:
            return None
        return int(va)
    if name == "superpage-ram-end":
        return _superpage_ram_end(t)
    if name == "version-pt-pa":
        hit = _amd64_version_pde(dump)
        return None if hit is None else hit[1] & 0x000FFFFFFFFFF000
    if name == "page-size":
        return int(t.page_size)
    if name == "half-page":
        return int(t.page_size) // 2
    if name == "dumped-pages":
        return int(t.dumped_pages)
    if name == "sparse-off":
        return t.layout.get("sparse_off") if t.layout else None
    if name in ("bitmapsize", "pmapsize", "pmap_off", "bitmap_off"):
        return t.layout.get(name) if t.layout else None
    if name == "kerndisp":
        return int(t.kerndisp)
    if name == "walk-records":
        return len(t.walk)
    return None


# -------------------------------------------------------------------- derived files
def _derive(dump: Any, name: str) -> bytes | None:
    """The bytes of a damaged copy of a synthetic core (README.md "Derived files")."""
    t = dump.truth
    data = bytearray(Path(dump.core).read_bytes())
    lay = t.layout
    minidump = bool(lay) and "bitmap_off" in lay
    if name == "truncate-bitmap" and minidump:
        return bytes(data[: lay["bitmap_off"] + 10])
    if name == "truncate-pmap" and minidump:
        return bytes(data[: lay["pmap_off"] + 100])
    if name == "empty-bitmap" and minidump:
        data[lay["bitmap_off"]: lay["bitmap_off"] + lay["bitmapsize"]] = bytes(lay["bitmapsize"])
        return bytes(data)
    if name == "truncate-last-page" and minidump:
        return bytes(data[: len(data) - t.page_size // 2])
    if name == "truncate-phdrs" and t.phdrs:
        return bytes(data[: 64 + 20])
    if name in ("pde-far", "truncate-pt"):
        hit = _amd64_version_pde(dump)
        if hit is None:
            return None
        idx, pde = hit
        if name == "pde-far":
            struct.pack_into("<Q", data, lay["pmap_off"] + idx * 8, 0xFFFF000 | (pde & 0xFFF))
            return bytes(data)
        off = t.core_offset(pde & 0x000FFFFFFFFFF000)
        return None if off is None else bytes(data[: off + 100])
    if name == "pml4-far" and dump.arch == "amd64" and t.phdrs:
        pa = t.kpml4phys
        for p in t.phdrs:
            if p.p_type == 1 and p.p_paddr <= pa < p.p_paddr + p.p_memsz:
                va = t.symbols["version"]
                off = p.p_offset + pa - p.p_paddr + ((va >> 39) & 511) * 8
                (entry,) = struct.unpack_from("<Q", data, off)
                struct.pack_into("<Q", data, off, 0x7F0000000 | (entry & 0xFFF))
                return bytes(data)
    return None


# ---------------------------------------------------------------- libkvm arithmetic
def libkvm_quirk_pa(t: Any, pa: int | None) -> int | None:
    """The physical address libkvm reads instead of ``pa``, or None when it reads none.

    ``_kvm_pa_bit_id`` does not check the lower bound of a dump_avail range (formats.md
    3.2, 14 row 2): an address in a hole below range k gets a bit id of an earlier range;
    when that bit is set libkvm reads that other page.  Only minidumps with a dump_avail
    section can differ.
    """
    if pa is None or not t.layout or not t.layout.get("dumpavailsize"):
        return None
    ps = t.page_size
    adj = 0
    lens = [-(-e // ps) - s // ps for s, e in t.dump_avail]
    for (start, end), length in zip(t.dump_avail, lens, strict=True):
        if pa < end:
            if pa >= start:
                return None
            bit = pa // ps - start // ps + adj
            if bit < 0:
                return None
            for (s2, _), len2 in zip(t.dump_avail, lens, strict=True):
                if bit < len2:
                    other = (s2 // ps) * ps + bit * ps
                    return None if t.core_offset(other) is None else other + pa % ps
                bit -= len2
            return None
        adj += length
    return None


def amd64_where(t: Any, va: int) -> str:
    """Which branch of the amd64 translators an address takes (formats.md 5.4, 5.7)."""
    if t.fmt == "elf":
        if t.dmapbase <= va < t.dmapend:
            return "dmap-2m" if va - t.dmapbase < 1 << 30 else "dmap-1g"
        return "kva"
    if va >= t.kernbase:
        step = 12 if t.version == 1 else 21
        return "pmap" if (va - t.kernbase) >> step < t.layout["pmapsize"] // 8 else "past-pmap"
    if t.dmapbase <= va < t.dmapend:
        return "dmap"
    return "outside"


#: per architecture: which translator branch an address takes (for [[case.text]] rules)
WHERE: dict[str, Callable[[Any, int], str]] = {"amd64": amd64_where}


# -------------------------------------------------------------------------- store
@dataclass
class Prepared:
    """A fixture ready to run against: its files, its truth (synthetic) and facts."""

    spec: FixtureSpec
    store: FixtureStore
    kernel: str = ""
    vmcore: str = ""
    dump: Any = None
    arch: str = ""
    _symtab: list[tuple[str, int]] | None = field(default=None, repr=False)
    _points: dict[str, int | None] = field(default_factory=dict, repr=False)

    @property
    def synthetic(self) -> bool:
        """Whether the fixture has a ground truth."""
        return self.dump is not None

    @property
    def truth(self) -> Any:
        """The :class:`pykvm.synth.GroundTruth` (synthetic fixtures only)."""
        if self.dump is None:
            raise FixtureGap("this fixture has no ground truth")
        return self.dump.truth

    def symtab(self) -> list[tuple[str, int]]:
        """The kernel's symbols (name, value) in table order (pyelftools)."""
        if self._symtab is None:
            self._symtab = self.store.symtab(self.kernel) if self.kernel else []
        return self._symtab

    def symbols(self) -> dict[str, int]:
        """Name -> value of the first symbol of that name."""
        out: dict[str, int] = {}
        for name, value in self.symtab():
            out.setdefault(name, value)
        return out

    def point(self, name: str) -> int:
        """A named address (raises :class:`FixtureGap` when this fixture has none)."""
        if name not in self._points:
            self._points[name] = compute_point(self.dump, name) if self.dump else None
        v = self._points[name]
        if v is None:
            raise FixtureGap(f"fixture {self.spec.key} has no point {name!r}")
        return v

    def file(self, name: str) -> str:
        """The path of special file ``name`` (README.md "Special files")."""
        return self.store.special(name)

    def derived(self, name: str) -> str:
        """The path of a damaged copy of this fixture's core."""
        if self.dump is None:
            raise FixtureGap("derived files need a synthetic fixture")
        return self.store.derived(self.spec, self.dump, name)

    def where(self, va: int) -> str:
        """The translator branch ``va`` takes ("" when the architecture has no rule)."""
        fn = WHERE.get(self.arch)
        return fn(self.truth, va) if fn else ""

    def hashes(self) -> dict[str, str]:
        """sha256 of the kernel and the vmcore ({} for a fixture without them)."""
        out = {}
        if self.kernel:
            out["kernel_sha256"] = self.store.sha256(self.kernel)
        if self.vmcore:
            out["vmcore_sha256"] = self.store.sha256(self.vmcore)
        return out


class FixtureStore:
    """Builds and caches fixtures under one directory (one build per fixture per run)."""

    def __init__(self, root: str | Path, real: tuple[str, str] | None = None) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.real = real
        self._dumps: dict[str, Any] = {}
        self._hashes: dict[str, str] = {}
        self._derived: dict[tuple[str, str], str] = {}
        self._failed: dict[str, Exception] = {}
        self._symtabs: dict[str, list[tuple[str, int]]] = {}
        self._prepared: dict[str, Prepared] = {}

    def symtab(self, path: str) -> list[tuple[str, int]]:
        """Cached :func:`read_symtab` of a kernel."""
        if path not in self._symtabs:
            self._symtabs[path] = read_symtab(path)
        return self._symtabs[path]

    def sha256(self, path: str) -> str:
        """Cached file hash."""
        if path not in self._hashes:
            self._hashes[path] = sha256_file(path)
        return self._hashes[path]

    def special(self, name: str) -> str:
        """Create (once) and return the path of a special file."""
        files = self.root / "files"
        files.mkdir(exist_ok=True)
        if name == "dir":
            return str(files)
        if name == "symlink-devnull":
            link = files / "null-link"
            if not link.is_symlink():
                link.symlink_to("/dev/null")
            return str(link)
        maker = SPECIAL_FILES.get(name)
        if maker is None:
            raise FixtureGap(f"no special file {name!r}")
        path = files / name
        if not path.exists():
            path.write_bytes(maker())
        return str(path)

    def synth(self, spec: FixtureSpec) -> Any:
        """Build (once) the synthetic dump of ``spec`` (a failure is remembered too)."""
        failed = self._failed.get(spec.key)
        if failed is not None:
            raise failed
        if spec.key not in self._dumps:
            from pykvm import synth

            options = dict(spec.options)
            gap = kernel_data_gap(spec.arch, options)
            if gap:
                self._failed[spec.key] = FixtureGap(gap)
                raise self._failed[spec.key]
            d = self.root / "synth" / spec.key.replace("/", "_").replace(",", "_")
            d.mkdir(parents=True, exist_ok=True)
            try:
                self._dumps[spec.key] = synth.build(spec.arch, d, spec.seed, spec.fmt,
                                                    **options)
            except ValueError as exc:
                if not KERNEL_DATA_OPTIONS & set(options):
                    self._failed[spec.key] = exc
                    raise
                # a format or era that cannot carry kernel data: the builder says why
                self._failed[spec.key] = FixtureGap(
                    f"{spec.arch}/{spec.fmt}: no kernel data: {exc}")
                raise self._failed[spec.key] from None
            except TypeError as exc:
                if not (KERNEL_DATA_OPTIONS & set(options) and "keyword" in str(exc)):
                    self._failed[spec.key] = exc
                    raise
                self._failed[spec.key] = FixtureGap(
                    f"{spec.arch}/{spec.fmt}: no kernel data: {exc}")
                raise self._failed[spec.key] from None
            except Exception as exc:
                self._failed[spec.key] = exc
                raise
        return self._dumps[spec.key]

    def derived(self, spec: FixtureSpec, dump: Any, name: str) -> str:
        """Create (once) a damaged copy of a synthetic core."""
        key = (spec.key, name)
        if key not in self._derived:
            blob = _derive(dump, name)
            if blob is None:
                raise FixtureGap(f"fixture {spec.key} has no derived file {name!r}")
            path = Path(dump.core).parent / f"derived-{name}"
            path.write_bytes(blob)
            self._derived[key] = str(path)
        return self._derived[key]

    def prepare(self, spec: FixtureSpec) -> Prepared:
        """Materialise a fixture (raises :class:`FixtureGap` for a real one not given)."""
        if spec.kind == "files":
            return Prepared(spec, self)
        if spec.kind == "real":
            if self.real is None:
                raise FixtureGap("needs a real pair: run --kernel K --vmcore V")
            kernel, vmcore = self.real
            return Prepared(spec, self, kernel, vmcore, None, elf_arch(kernel))
        if spec.key not in self._prepared:
            dump = self.synth(spec)
            self._prepared[spec.key] = Prepared(spec, self, str(dump.kernel), str(dump.core),
                                                dump, spec.arch)
        return self._prepared[spec.key]


#: synth options that ask for a dump with kernel data (pykvm.synth's ``types=``/``era=``)
KERNEL_DATA_OPTIONS = frozenset({"types", "era"})


def kernel_data_gap(arch: str, options: Mapping[str, Any]) -> str:
    """Why ``arch``'s writer cannot build a dump with kernel data ("" when it can).

    A fixture asks for kernel data with ``types`` (and ``era``); an architecture whose
    ``build`` takes no ``types=`` does not lay kernel data out yet, so the fixture is not
    applicable there (skipped with this reason) rather than failed.  Which architectures
    can is read from the writers themselves, so new ones join without editing cases.
    """
    if not KERNEL_DATA_OPTIONS & set(options):
        return ""
    import inspect

    from pykvm import synth

    params = inspect.signature(synth.arch_module(arch).build).parameters
    if "types" in params or any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return ""
    return f"the {arch} writer does not lay out kernel data yet (its build() takes no types=)"


def synth_arches() -> tuple[tuple[str, ...], Callable[[str], tuple[str, ...]]]:
    """The architectures ``pykvm.synth`` can write, and its ``formats`` function."""
    from pykvm import synth

    return tuple(synth.ARCHES), synth.formats


class LazyMap(Mapping[str, Any]):
    """A read-only mapping computed on access (for ``str.format_map`` templates)."""

    def __init__(self, fn: Callable[[str], Any]) -> None:
        self._fn = fn

    def __getitem__(self, key: str) -> Any:
        return self._fn(key)

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


def is_freebsd() -> bool:
    """Whether the suite runs on FreeBSD."""
    return sys.platform.startswith("freebsd")


def path_tokens(prep: Prepared) -> list[tuple[str, str]]:
    """(concrete path, placeholder) pairs, longest first, to keep paths out of records."""
    pairs = []
    if prep.kernel:
        pairs.append((prep.kernel, "{kernel}"))
    if prep.vmcore:
        pairs.append((prep.vmcore, "{vmcore}"))
    root = str(prep.store.root)
    pairs.append((root, "{workdir}"))
    return sorted(pairs, key=lambda p: -len(p[0]))


def env_flag(name: str) -> bool:
    """Whether an environment variable is set to a true value."""
    return os.environ.get(name, "").lower() not in ("", "0", "no", "false")
