"""Kernel ELF image: header validation, sections, and the bulk symbol table.

Two libkvm behaviours live here:

* :func:`read_kernel_ehdr` mirrors ``_kvm_read_kernel_ehdr`` (lib/libkvm/kvm.c)
  together with the way elftoolchain's ``elf_begin``/``gelf_getehdr``
  classify a file, so that open failures carry the same texts (api.md 4.5).
* :meth:`KernelImage.fdnlist` mirrors libc's ``__elf_fdnlist``
  (lib/libc/gen/nlist.c): the first ``SHT_SYMTAB`` section is scanned in table
  order with the a.out leading-underscore rule, per-match counting and early
  stop, and ``n_type`` is derived as ``elf_sym_to_nlist`` does (api.md 10.3).

The symbol table is parsed once, in bulk (``struct.iter_unpack`` over the
section), into a name index; every later lookup is a dictionary probe.  Every
offset and size taken from the file is checked against the file's size first.
"""

from __future__ import annotations

import mmap
import os
import stat
import struct
import sys
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import accumulate

from .. import errors as E
from ..constants import (
    ELFCLASS32,
    ELFCLASS64,
    ELFDATA2LSB,
    ELFDATA2MSB,
    EV_CURRENT,
    N_ABS,
    N_BSS,
    N_DATA,
    N_EXT,
    N_FN,
    N_TEXT,
    N_UNDF,
    SHF_WRITE,
    SHN_ABS,
    SHN_COMMON,
    SHN_UNDEF,
    SHT_NOBITS,
    SHT_PROGBITS,
    SHT_SYMTAB,
    STB_GLOBAL,
    STB_WEAK,
    STT_FILE,
)
from ..errors import FormatError

ELF_MAGIC = b"\x7fELF"
EI_NIDENT = 16
#: Symbols per read() in __elf_fdnlist (``Elf_Sym sbuf[1024]``).
_FDNLIST_CHUNK = 1024


@dataclass(frozen=True)
class Ehdr:
    """The fields of an ELF header that libkvm and pykvm look at."""

    ei_class: int
    ei_data: int
    ei_version: int
    ei_osabi: int
    e_type: int
    e_machine: int
    e_version: int
    e_entry: int
    e_phoff: int
    e_shoff: int
    e_flags: int
    e_ehsize: int
    e_phentsize: int
    e_phnum: int
    e_shentsize: int
    e_shnum: int
    e_shstrndx: int

    @property
    def endian(self) -> str:
        """``"<"`` or ``">"``: the struct prefix for this file's byte order."""
        return "<" if self.ei_data == ELFDATA2LSB else ">"

    @property
    def is64(self) -> bool:
        """True for ELFCLASS64."""
        return self.ei_class == ELFCLASS64


_EHDR_TAIL = {ELFCLASS32: "HHIIIIIHHHHHH", ELFCLASS64: "HHIQQQIHHHHHH"}
_EHDR_SIZE = {ELFCLASS32: 52, ELFCLASS64: 64}


def parse_ehdr(data: bytes) -> Ehdr:
    """Decode an ELF header whose identification bytes are already known to be valid."""
    ei_class, ei_data, ei_version, ei_osabi = data[4], data[5], data[6], data[7]
    fmt = ("<" if ei_data == ELFDATA2LSB else ">") + _EHDR_TAIL[ei_class]
    (e_type, e_machine, e_version, e_entry, e_phoff, e_shoff, e_flags, e_ehsize,
     e_phentsize, e_phnum, e_shentsize, e_shnum, e_shstrndx) = struct.unpack_from(
        fmt, data, EI_NIDENT)
    return Ehdr(ei_class, ei_data, ei_version, ei_osabi, e_type, e_machine, e_version,
                e_entry, e_phoff, e_shoff, e_flags, e_ehsize, e_phentsize, e_phnum,
                e_shentsize, e_shnum, e_shstrndx)


def elf_begin_class(data: bytes, size: int) -> int:
    """What elftoolchain's ``elf_begin`` makes of a file: its ``EI_CLASS``.

    ``data`` holds at least the first 64 bytes of the file (or all of it when
    shorter) and ``size`` is the file's size.  Raises :class:`FormatError`
    with the text libkvm reports: ``kernel is not an ELF file`` when the file
    is 16 bytes or shorter or lacks the magic (libelf kind is not ELF),
    ``Unknown ELF API version`` for ``EI_VERSION`` > 1, ``Missing or
    malformed ELF header`` for a bad class or data encoding (elftoolchain
    ``_libelf_memory``; libkvm's own ``unsupported ELF data encoding`` text
    is unreachable behind it).
    """
    if size <= EI_NIDENT or data[:4] != ELF_MAGIC:
        raise FormatError(E.NOT_ELF_KERNEL)
    if data[6] > EV_CURRENT:
        raise FormatError(E.ELF_EVERSION)
    if data[5] not in (ELFDATA2LSB, ELFDATA2MSB) or data[4] not in (ELFCLASS32, ELFCLASS64):
        raise FormatError(E.ELF_EHEADER)
    return data[4]


def gelf_getehdr(data: bytes, size: int) -> Ehdr:
    """``gelf_getehdr`` after a successful ``elf_begin``: the header, or ``Missing or
    malformed ELF header`` when the file is shorter than a whole Elf32/Elf64 header."""
    need = _EHDR_SIZE[data[4]]
    if size < need or len(data) < need:
        raise FormatError(E.ELF_EHEADER)
    return parse_ehdr(data)


def classify_elf(data: bytes, size: int) -> Ehdr:
    """``elf_begin`` then ``gelf_getehdr``, as ``_kvm_read_kernel_ehdr`` does (api.md 4.5)."""
    elf_begin_class(data, size)
    return gelf_getehdr(data, size)


@dataclass(frozen=True)
class Section:
    """One section header (only the fields pykvm uses)."""

    index: int
    name: int
    type: int
    flags: int
    addr: int
    offset: int
    size: int
    link: int
    info: int
    addralign: int
    entsize: int


_SHDR = {ELFCLASS32: ("IIIIIIIIII", 40), ELFCLASS64: ("IIQQQQIIQQ", 64)}
_SYM = {ELFCLASS32: 16, ELFCLASS64: 24}


class SymbolTable:
    """The first ``SHT_SYMTAB`` of a kernel, parsed in one bulk pass.

    Columns (``value``, ``info``, ``shndx``) are parallel lists indexed by
    symbol number, cut out of the section with strided array views (no
    per-symbol unpacking).  Names resolve through one split of the string
    table; :meth:`indices` answers "which symbols carry this name", in table
    order.  ``usable`` is the number of symbols libc's reader would see: whole
    1024-symbol chunks up to the end of the file (``__elf_fdnlist`` stops at
    the first short ``read``).
    """

    def __init__(self, names: list[bytes | None], value: list[int], info: list[int],
                 shndx: list[int], usable: int) -> None:
        self.value = value
        self.info = info
        self.shndx = shndx
        self.usable = usable
        n = len(names)
        # name -> last and first symbol carrying it, built at C speed
        self._last: dict[bytes | None, int] = dict(zip(names, range(n), strict=True))
        self._first: dict[bytes | None, int] = dict(
            zip(reversed(names), range(n - 1, -1, -1), strict=True))
        self._last.pop(None, None)
        self._last.pop(b"", None)
        self._dups: dict[bytes, list[int]] | None = None
        self._names = names

    def indices(self, name: bytes) -> list[int]:
        """Indices of the symbols named ``name``, in table order."""
        last = self._last.get(name)
        if last is None:
            return []
        if self._first[name] == last:
            return [last]
        if self._dups is None:
            multi = {k for k, v in self._last.items() if k is not None and self._first[k] != v}
            dups: dict[bytes, list[int]] = {k: [] for k in multi}
            for i, nm in enumerate(self._names):
                if nm in multi:
                    dups[nm].append(i)
            self._dups = dups
        return self._dups[name]

    def __len__(self) -> int:
        return len(self.value)


def _columns(raw: bytes, ei_class: int, swap: bool) -> tuple[list[int], list[int], list[int],
                                                              list[int]]:
    """(st_name, st_value, st_info, st_shndx) columns of a symbol-table image."""
    def col(code: str, stride: int, index: int) -> list[int]:
        arr = array(code, raw)
        if swap and arr.itemsize > 1:
            arr.byteswap()
        return arr[index::stride].tolist()

    if ei_class == ELFCLASS64:  # name u32 @0, info u8 @4, shndx u16 @6, value u64 @8
        return col("I", 6, 0), col("Q", 3, 1), col("B", 24, 4), col("H", 12, 3)
    # ELF32: name u32 @0, value u32 @4, info u8 @12, shndx u16 @14
    return col("I", 4, 0), col("I", 4, 1), col("B", 16, 12), col("H", 8, 7)


class KernelImage:
    """A kernel ELF file, mapped read-only.

    Mirrors what libkvm keeps of the execfile: the descriptor (``nlfd``), the
    ELF header (``nlehdr``), and, through libc's ``__fdnlist``, its symbol
    table.
    """

    def __init__(self, path: str, fd: int) -> None:
        self.path = path
        self.fd = fd
        st = os.fstat(fd)
        self.size = st.st_size if stat.S_ISREG(st.st_mode) else 0
        self._map: mmap.mmap | None = None
        if self.size > 0:
            self._map = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
        self.ehdr = self._read_ehdr(st)
        self._sections: list[Section] | None = None
        self._symtab: SymbolTable | None | bool = False

    # -- header ----------------------------------------------------------------
    def _read_ehdr(self, st: os.stat_result) -> Ehdr:
        """``_kvm_read_kernel_ehdr``: classify and decode the ELF header."""
        if stat.S_ISDIR(st.st_mode) or (stat.S_ISREG(st.st_mode) and st.st_size == 0):
            # elf_begin fails on an empty regular file or an unsupported file type.
            raise FormatError(E.ELF_EINVAL)
        if self._map is not None:
            return classify_elf(self._map[:64], self.size)
        try:  # a character device, FIFO or socket: read what it gives
            head = os.pread(self.fd, 64, 0)
        except OSError:
            head = b""
        return classify_elf(head, len(head))

    def bytes_at(self, offset: int, size: int) -> bytes:
        """The file's bytes at ``offset`` (shorter at the end of the file)."""
        if self._map is None or offset < 0 or size <= 0:
            return b""
        return self._map[offset:offset + size]

    # -- sections --------------------------------------------------------------
    def sections(self) -> list[Section]:
        """All section headers that lie inside the file (empty if none do)."""
        if self._sections is None:
            self._sections = self._read_sections()
        return self._sections

    def _read_sections(self) -> list[Section]:
        eh = self.ehdr
        fmt, entsize = _SHDR[eh.ei_class]
        count = eh.e_shnum
        if count == 0 or eh.e_shoff == 0:
            return []
        end = eh.e_shoff + count * entsize
        if eh.e_shoff < 0 or end > self.size:
            return []
        raw = self.bytes_at(eh.e_shoff, count * entsize)
        out = []
        for i, f in enumerate(struct.iter_unpack(eh.endian + fmt, raw)):
            out.append(Section(i, *f))
        return out

    def section_by_name(self, name: str) -> Section | None:
        """The section named ``name`` (via ``.shstrtab``), or None."""
        secs = self.sections()
        idx = self.ehdr.e_shstrndx
        if not (0 < idx < len(secs)):
            return None
        strs = secs[idx]
        want = name.encode()
        for s in secs:
            if _cstr(self.bytes_at(strs.offset, strs.size), s.name) == want:
                return s
        return None

    # -- symbols ---------------------------------------------------------------
    def symtab(self) -> SymbolTable | None:
        """The parsed first ``SHT_SYMTAB``, or None when libc could not map it."""
        if self._symtab is False:
            self._symtab = self._load_symtab()
        assert self._symtab is not True
        return self._symtab

    def _load_symtab(self) -> SymbolTable | None:
        secs = self.sections()
        sym = next((s for s in secs if s.type == SHT_SYMTAB), None)
        if sym is None or not (0 <= sym.link < len(secs)):
            return None  # nothing to map: the zero-length mmap fails
        strsec = secs[sym.link]
        if strsec.size == 0 or strsec.offset + strsec.size > self.size:
            return None
        strtab = self.bytes_at(strsec.offset, strsec.size)
        entsize = _SYM[self.ehdr.ei_class]
        if sym.offset == 0:
            return SymbolTable([], [], [], [], 0)
        avail = max(0, min(sym.size, self.size - sym.offset))
        chunk = _FDNLIST_CHUNK * entsize
        # __elf_fdnlist reads whole chunks and stops at the first short read.
        usable_bytes = 0
        remaining = sym.size
        while remaining > 0:
            cc = min(remaining, chunk)
            if usable_bytes + cc > avail:
                break
            usable_bytes += cc
            remaining -= cc
        nsyms = usable_bytes // entsize
        raw = self.bytes_at(sym.offset, nsyms * entsize)
        swap = (self.ehdr.ei_data == ELFDATA2LSB) != (sys.byteorder == "little")
        st_name, st_value, st_info, st_shndx = _columns(raw, self.ehdr.ei_class, swap)
        return SymbolTable(_symbol_names(strtab, st_name), st_value, st_info, st_shndx, nsyms)

    def sym_to_ntype(self, idx: int, table: SymbolTable) -> int:
        """``elf_sym_to_nlist``: the a.out ``n_type`` of symbol ``idx``."""
        shndx = table.shndx[idx]
        info = table.info[idx]
        if shndx in (SHN_UNDEF, SHN_COMMON):
            ntype = N_UNDF
        elif shndx == SHN_ABS:
            ntype = N_FN if (info & 0xF) == STT_FILE else N_ABS
        else:
            secs = self.sections()
            if shndx >= self.ehdr.e_shnum or shndx >= len(secs):
                ntype = N_UNDF
            else:
                sh = secs[shndx]
                if sh.type == SHT_PROGBITS:
                    ntype = N_DATA if sh.flags & SHF_WRITE else N_TEXT
                elif sh.type == SHT_NOBITS:
                    ntype = N_BSS
                else:
                    ntype = N_UNDF
        if (info >> 4) in (STB_GLOBAL, STB_WEAK):
            ntype |= N_EXT
        return ntype

    def fdnlist(self, names: Sequence[bytes]) -> tuple[int, list[tuple[int, int]]]:
        """libc ``__fdnlist`` on this kernel: ``(remaining, [(n_type, n_value), ...])``.

        ``remaining`` is -1 when the file is not an ELF object for this host
        (``__elf_is_okay__``) or its symbol table cannot be mapped; the
        entries are then all zero, as in libkvm's zeroed temporary list.
        Otherwise it is the entry count minus one per *match*, and the scan
        stops when it reaches 0 (api.md 10.3).
        """
        out = [(0, 0)] * len(names)
        if not host_elf_is_okay(self.ehdr):
            return -1, out
        table = self.symtab()
        if table is None:
            return -1, out
        nent = len(names)
        if nent == 0:
            return 0, out
        events: list[tuple[int, int]] = []
        for e, name in enumerate(names):
            keys = [name]
            if name[:1] == b"_":
                keys.append(name[1:])
            for key in keys:
                for idx in table.indices(key):
                    events.append((idx, e))
        events.sort()
        for idx, e in events:
            out[e] = (self.sym_to_ntype(idx, table), table.value[idx])
            nent -= 1
            if nent <= 0:
                break
        return nent, out

    def lookup(self, name: str) -> int | None:
        """Exact-name value of the first symbol called ``name`` (no a.out rule), or None."""
        table = self.symtab()
        if table is None:
            return None
        idxs = table.indices(name.encode())
        return table.value[idxs[0]] if idxs else None

    def close(self) -> None:
        """Unmap the file (the descriptor is closed by the owner)."""
        if self._map is not None:
            self._map.close()
            self._map = None


def _cstr(buf: bytes, off: int) -> bytes:
    """The NUL-terminated string at ``off`` in ``buf`` (b"" when out of range)."""
    if off < 0 or off >= len(buf):
        return b""
    end = buf.find(b"\0", off)
    return buf[off:] if end < 0 else buf[off:end]


def _symbol_names(strtab: bytes, st_name: Sequence[int]) -> list[bytes | None]:
    """The name of each symbol (None for an empty name or one outside the table).

    String starts come from one ``split`` of the string table; only names that
    point into the middle of a string (suffix sharing) need a search.
    """
    pieces = strtab.split(b"\0")
    starts = dict(zip(accumulate((len(p) + 1 for p in pieces), initial=0), pieces,
                      strict=False))
    names: list[bytes | None] = list(map(starts.get, st_name))
    if None in names:
        for i, nm in enumerate(names):
            if nm is None:
                names[i] = _cstr(strtab, st_name[i]) or None
    return names


# --- the host, as libc's __elf_is_okay__ sees it ---------------------------------
_HOST_MACHINES = {
    "x86_64": (62, ELFCLASS64), "amd64": (62, ELFCLASS64),
    "i386": (3, ELFCLASS32), "i486": (3, ELFCLASS32), "i586": (3, ELFCLASS32),
    "i686": (3, ELFCLASS32),
    "aarch64": (183, ELFCLASS64), "arm64": (183, ELFCLASS64),
    "riscv64": (243, ELFCLASS64),
    "ppc64": (21, ELFCLASS64), "ppc64le": (21, ELFCLASS64),
    "powerpc64": (21, ELFCLASS64), "powerpc64le": (21, ELFCLASS64),
    "ppc": (20, ELFCLASS32), "powerpc": (20, ELFCLASS32),
    "armv6l": (40, ELFCLASS32), "armv7l": (40, ELFCLASS32), "armv7": (40, ELFCLASS32),
    "armv6": (40, ELFCLASS32),
}


def host_machine() -> str:
    """The host's machine name as ``uname -m`` gives it, lower-cased."""
    return os.uname().machine.lower()


def host_elf_identity() -> tuple[int, int, int] | None:
    """``(e_machine, class, data)`` of the host's own ELF objects, None if unknown."""
    m = _HOST_MACHINES.get(host_machine())
    if m is None:
        return None
    data = ELFDATA2LSB if sys.byteorder == "little" else ELFDATA2MSB
    return m[0], m[1], data


def host_elf_is_okay(eh: Ehdr) -> bool:
    """libc ``__elf_is_okay__``: class, data, version and machine of the host."""
    ident = host_elf_identity()
    if ident is None:
        return False
    mach, cls, data = ident
    return (eh.ei_class == cls and eh.ei_data == data and eh.ei_version == EV_CURRENT
            and eh.e_machine == mach and eh.e_version == EV_CURRENT)
