"""A synthetic FreeBSD kernel ELF image, written the way the linker and loader lay it out.

The kernel is described by a :class:`~pykvm.synth.spec.KernelSpec`: an ELF file of the
spec's class, byte order, ``e_machine``, ``e_type`` (``ET_EXEC``, or ``ET_DYN`` for
powerpc), ``EI_OSABI`` and ``e_flags``, linked at ``kernbase + load_offset`` (amd64:
``KERNBASE + KERNLOAD`` = 0xffffffff80200000, like sys/conf/ldscript.amd64).  Its first
``PT_LOAD`` starts at file offset 0, so the ELF header itself is mapped at the image's
first virtual page, exactly as with a real kernel; the file offset of every loadable byte
equals its distance from the image start, which is what the loader copies to physical
memory (so file bytes == memory bytes for .text, .rodata and .data).  ``.bss`` occupies no
file space; in memory it is zero except for the variables the synthetic machine sets
(amd64: ``KPML4phys``, ``kernphys``, ``dumptid``).

Sections: ``.text`` (AX), ``.rodata`` (A), ``.data`` (WA), ``.bss`` (NOBITS, WA),
``.symtab`` (``sh_link`` = ``.strtab``, ``sh_info`` = index of the first non-local
symbol), ``.strtab`` and ``.shstrtab``.  The symbol table carries every kind of symbol
libc's ``__fdnlist`` distinguishes: section symbols (empty names, skipped by nlist),
``STT_FILE`` symbols (``SHN_ABS``), locals, a duplicated local name, an absolute
``kernbase``, functions, read-only data, data, bss, a weak symbol, an undefined
(``SHN_UNDEF``) symbol, a common (``SHN_COMMON``) symbol, and names with and without a
leading underscore (``synth_pair`` / ``_synth_pair``, in a seed-chosen order).

Variables, in ``.data``: ``version``, ``ostype``, ``osrelease``, ``hz`` (int),
``mp_maxcpus`` (int), the spec's ``data_vars``, ``kernel_vm_end`` (pointer), ``physmem``
(long), ``dump_avail`` (32 ``vm_paddr_t``), ``synth_pair``, ``_synth_pair`` (u64); in
``.bss``: the spec's ``bss_vars``, ``dumptid`` (int), ``bootverbose`` (int).  Every value
is stored in the kernel's byte order and word size (:meth:`SynthKernel.set_int`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from . import elfwriter as ew
from ._prng import Rng
from .spec import KernelSpec

# a.out n_type values (sys/sys/nlist_aout.h) produced by libc's elf_sym_to_nlist
N_UNDF = 0x00
N_ABS = 0x02
N_TEXT = 0x04
N_DATA = 0x06
N_BSS = 0x08
N_FN = 0x1E
N_EXT = 0x01

# section indexes of the synthetic kernel
SEC_TEXT = 1
SEC_RODATA = 2
SEC_DATA = 3
SEC_BSS = 4
SEC_SYMTAB = 5
SEC_STRTAB = 6
SEC_SHSTRTAB = 7

_SECTION_KIND = {
    # index: (sh_type, sh_flags)
    SEC_TEXT: (ew.SHT_PROGBITS, ew.SHF_ALLOC | ew.SHF_EXECINSTR),
    SEC_RODATA: (ew.SHT_PROGBITS, ew.SHF_ALLOC),
    SEC_DATA: (ew.SHT_PROGBITS, ew.SHF_ALLOC | ew.SHF_WRITE),
    SEC_BSS: (ew.SHT_NOBITS, ew.SHF_ALLOC | ew.SHF_WRITE),
}

DUMP_AVAIL_SLOTS = 32  # vm_paddr_t words reserved for the dump_avail array variable


@dataclass(frozen=True)
class SymbolEntry:
    """One ``ElfN_Sym`` of the synthetic kernel, as written (table order is meaningful)."""

    name: str
    value: int
    size: int
    bind: int
    type: int
    shndx: int

    @property
    def nlist_type(self) -> int:
        """The a.out ``n_type`` libc's ``__fdnlist`` derives for this symbol.

        Computed from what the writer knows about its own sections (never by parsing the
        file): ``SHN_UNDF``/``SHN_COMMON`` give N_UNDF; ``SHN_ABS`` gives N_FN for
        ``STT_FILE`` and N_ABS otherwise; a writable PROGBITS section N_DATA, a read-only
        one N_TEXT, NOBITS N_BSS, anything else N_UNDF; then N_EXT for global and weak
        bindings.
        """
        if self.shndx in (ew.SHN_UNDEF, ew.SHN_COMMON):
            base = N_UNDF
        elif self.shndx == ew.SHN_ABS:
            base = N_FN if self.type == ew.STT_FILE else N_ABS
        elif self.shndx in _SECTION_KIND:
            sh_type, flags = _SECTION_KIND[self.shndx]
            if sh_type == ew.SHT_PROGBITS:
                base = N_DATA if flags & ew.SHF_WRITE else N_TEXT
            elif sh_type == ew.SHT_NOBITS:
                base = N_BSS
            else:
                base = N_UNDF
        else:
            base = N_UNDF
        if self.bind in (ew.STB_GLOBAL, ew.STB_WEAK):
            base |= N_EXT
        return base


@dataclass(frozen=True)
class SectionInfo:
    """Where one allocated section of the synthetic kernel lives."""

    name: str
    index: int
    addr: int
    offset: int
    size: int


@dataclass
class _Var:
    name: str
    section: int
    offset: int  # from the section start
    size: int
    bind: int
    type: int


class SynthKernel:
    """The synthetic kernel: section layout, symbols, variable values, file and memory image.

    Construction decides everything that depends only on the spec and the seed (section
    sizes, the symbol table, text and read-only contents).  The machine model then fills
    in the variables whose values depend on the machine (amd64's ``nkpt``,
    ``dump_avail``, ...) with :meth:`set_int`, :meth:`set_array`,
    :meth:`set_dump_avail` or :meth:`set_var`, may add absolute symbols with
    :meth:`add_symbol`, and calls :meth:`finalize`; then :meth:`file_bytes` is the
    kernel file and :meth:`memory_image` what the loader leaves in RAM.
    """

    def __init__(
        self,
        spec: KernelSpec,
        seed: int,
        extra_symbols: int = 0,
        *,
        extra_bss: Sequence[tuple[str, int]] = (),
    ) -> None:
        """Plan the kernel for target ``spec`` of machine ``seed``.

        ``extra_symbols`` adds that many filler symbols (alternately functions and data).
        ``extra_bss`` adds global ``.bss`` variables ``(name, size)``, 8-byte aligned and
        contiguous, after the standard ones (no random draws: without it the kernel is
        byte-identical to one built before the option existed).
        """
        if extra_symbols < 0:
            raise ValueError("extra_symbols must be >= 0")
        rng = Rng(seed, "kernel")
        self.spec = spec
        self.seed = seed
        ps = spec.page_size
        self.page_size = ps
        self.image_va = spec.image_va
        self.text_off = spec.text_off
        self.text_size = rng.between(0x5000, 0xB000) + 16 * rng.below(0x100)
        self.rodata_off = ew.align(self.text_off + self.text_size, ps)
        self.rodata_size = rng.between(0x1800, 0x3800)
        self.data_off = ew.align(self.rodata_off + self.rodata_size, ps)

        release = rng.choice(("13.3-RELEASE", "14.1-STABLE", "15.0-CURRENT"))
        day = rng.between(1, 28)
        self.version_string = (
            f"FreeBSD {release} #0 synth-{seed}: Mon Mar {day:2d} 12:34:56 UTC 2025\n"
            f"    root@synth.example.org:/usr/obj/usr/src/{spec.objdir}/sys/SYNTH\n"
        )
        self.osrelease = release
        self.hz = rng.choice((100, 1000, 1000))
        self.mp_maxcpus = rng.choice((64, 256, 1024))
        self.dumptid = 100000 + rng.below(5000)

        self._file: bytes | None = None
        #: when set, called with the symbol table (in order) to give ``.SUNW_ctf``
        self.ctf_section: Callable[[Sequence[SymbolEntry]], bytes] | None = None
        self._symbols: list[SymbolEntry] | None = None
        self._vars: dict[str, _Var] = {}
        self._values: dict[str, bytes] = {}
        self._locals: list[SymbolEntry] = []
        self._globals: list[SymbolEntry] = []

        # ---- .data variables, placed in order with random gaps of filler bytes
        ptr = spec.ptr_size
        data_vars: list[tuple[str, int]] = [
            ("version", len(self.version_string) + 1),
            ("ostype", 8),
            ("osrelease", 32),
            ("hz", 4),
            ("mp_maxcpus", 4),
            *spec.data_vars,
            ("kernel_vm_end", ptr),
            ("physmem", ptr),
            ("dump_avail", spec.paddr_bytes * DUMP_AVAIL_SLOTS),
            ("synth_pair", 8),
            ("_synth_pair", 8),
        ]
        bss_vars = [*spec.bss_vars, ("dumptid", 4), ("bootverbose", 4)]
        names = [name for name, _ in data_vars + bss_vars + list(extra_bss)]
        if len(set(names)) != len(names):
            raise ValueError("duplicate kernel variable names in the spec")
        cursor = 0x40 + 8 * rng.below(16)
        for name, size in data_vars:
            self._vars[name] = _Var(name, SEC_DATA, cursor, size, ew.STB_GLOBAL, ew.STT_OBJECT)
            cursor = ew.align(cursor + size, 8) + 8 * rng.below(12)
        self._local_data_counter = cursor
        cursor += 8 + 8 * rng.below(8)
        self.data_size = ew.align(cursor + rng.between(0x400, 0x1800), 8)
        self.bss_off = ew.align(self.data_off + self.data_size, 64)

        # ---- .bss variables
        cursor = 8 * rng.below(8)
        for name, size in bss_vars:
            self._vars[name] = _Var(name, SEC_BSS, cursor, size, ew.STB_GLOBAL, ew.STT_OBJECT)
            cursor = ew.align(cursor + size, 8) + 8 * rng.below(6)
        self._local_bss_counter = cursor
        cursor += 8 + 8 * rng.below(4)
        self._local_static_buf = cursor
        cursor += 256
        for name, size in extra_bss:
            cursor = ew.align(cursor, 8)
            self._vars[name] = _Var(name, SEC_BSS, cursor, size, ew.STB_GLOBAL, ew.STT_OBJECT)
            cursor += size
        self.bss_size = ew.align(cursor + rng.between(0x2000, 0x6000), 8)
        self.image_len = ew.align(self.bss_off + self.bss_size, ps)

        # ---- contents of the loadable sections
        self._text = bytearray(rng.randbytes(self.text_size))
        self._rodata = bytearray(rng.randbytes(self.rodata_size))
        self._data = bytearray(rng.randbytes(self.data_size))
        copyright_text = (
            b"Copyright (c) 1992-2025 The FreeBSD Project.\n"
            b"Copyright (c) 1979, 1980, 1983, 1986, 1988, 1989, 1991, 1992, 1993, 1994\n"
            b"\tThe Regents of the University of California. All rights reserved.\n\0"
        )
        copyright_off = 16 * rng.below(32)
        self._rodata[copyright_off : copyright_off + len(copyright_text)] = copyright_text

        functions = [
            "panic",
            "doadump",
            "cpu_minidumpsys",
            "dumpsys_generic",
            "weak_hook",
            "sysinit_helper",
        ]
        func_offsets = sorted(
            16 * x for x in rng.sample(range(4, self.text_size // 16 - 64), len(functions))
        )
        func_at = dict(zip(functions, func_offsets, strict=True))
        prologue = spec.func_prologue  # amd64: push %rbp; mov %rsp,%rbp
        for off in func_offsets:
            self._text[off : off + len(prologue)] = prologue

        self._set_initial_values()

        # ---- symbol table, locals first (sh_info = first global index)
        def addr(section: int, off: int) -> int:
            base = {
                SEC_TEXT: self.text_off,
                SEC_RODATA: self.rodata_off,
                SEC_DATA: self.data_off,
                SEC_BSS: self.bss_off,
            }[section]
            return self.image_va + base + off

        loc = self._locals
        for sec in (SEC_TEXT, SEC_RODATA, SEC_DATA, SEC_BSS):
            loc.append(SymbolEntry("", addr(sec, 0), 0, ew.STB_LOCAL, ew.STT_SECTION, sec))
        loc.append(SymbolEntry("locore.S", 0, 0, ew.STB_LOCAL, ew.STT_FILE, ew.SHN_ABS))
        loc.append(
            SymbolEntry(
                "sysinit_helper",
                addr(SEC_TEXT, func_at["sysinit_helper"]),
                0x40,
                ew.STB_LOCAL,
                ew.STT_FUNC,
                SEC_TEXT,
            )
        )
        loc.append(
            SymbolEntry(
                "counter",
                addr(SEC_DATA, self._local_data_counter),
                8,
                ew.STB_LOCAL,
                ew.STT_OBJECT,
                SEC_DATA,
            )
        )
        loc.append(SymbolEntry("kern_synth.c", 0, 0, ew.STB_LOCAL, ew.STT_FILE, ew.SHN_ABS))
        loc.append(
            SymbolEntry(
                "counter",
                addr(SEC_BSS, self._local_bss_counter),
                8,
                ew.STB_LOCAL,
                ew.STT_OBJECT,
                SEC_BSS,
            )
        )
        loc.append(
            SymbolEntry(
                "static_buf",
                addr(SEC_BSS, self._local_static_buf),
                256,
                ew.STB_LOCAL,
                ew.STT_OBJECT,
                SEC_BSS,
            )
        )

        glob = self._globals
        text_end = addr(SEC_TEXT, self.text_size)
        data_end = addr(SEC_DATA, self.data_size)
        bss_end = addr(SEC_BSS, self.bss_size)
        glob.append(
            SymbolEntry("kernbase", spec.kernbase, 0, ew.STB_GLOBAL, ew.STT_NOTYPE, ew.SHN_ABS)
        )
        glob.append(
            SymbolEntry("btext", addr(SEC_TEXT, 0), 0, ew.STB_GLOBAL, ew.STT_NOTYPE, SEC_TEXT)
        )
        for name in ("panic", "doadump", "cpu_minidumpsys", "dumpsys_generic"):
            glob.append(
                SymbolEntry(
                    name,
                    addr(SEC_TEXT, func_at[name]),
                    0x40 + 16 * rng.below(8),
                    ew.STB_GLOBAL,
                    ew.STT_FUNC,
                    SEC_TEXT,
                )
            )
        glob.append(
            SymbolEntry(
                "weak_hook",
                addr(SEC_TEXT, func_at["weak_hook"]),
                0x20,
                ew.STB_WEAK,
                ew.STT_FUNC,
                SEC_TEXT,
            )
        )
        glob.append(SymbolEntry("etext", text_end, 0, ew.STB_GLOBAL, ew.STT_NOTYPE, SEC_TEXT))
        glob.append(
            SymbolEntry(
                "copyright",
                addr(SEC_RODATA, copyright_off),
                len(copyright_text),
                ew.STB_GLOBAL,
                ew.STT_OBJECT,
                SEC_RODATA,
            )
        )
        pair_first = rng.chance(1, 2)
        for var in self._vars.values():
            if var.name in ("synth_pair", "_synth_pair"):
                continue
            glob.append(
                SymbolEntry(
                    var.name,
                    addr(var.section, var.offset),
                    var.size,
                    var.bind,
                    var.type,
                    var.section,
                )
            )
        pair = [self._vars["synth_pair"], self._vars["_synth_pair"]]
        if not pair_first:
            pair.reverse()
        for var in pair:
            glob.append(
                SymbolEntry(
                    var.name,
                    addr(var.section, var.offset),
                    var.size,
                    var.bind,
                    var.type,
                    var.section,
                )
            )
        glob.append(SymbolEntry("edata", data_end, 0, ew.STB_GLOBAL, ew.STT_NOTYPE, SEC_DATA))
        glob.append(SymbolEntry("end", bss_end, 0, ew.STB_GLOBAL, ew.STT_NOTYPE, SEC_BSS))
        glob.append(SymbolEntry("_end", bss_end, 0, ew.STB_GLOBAL, ew.STT_NOTYPE, SEC_BSS))
        glob.append(SymbolEntry("undefined_hook", 0, 0, ew.STB_GLOBAL, ew.STT_NOTYPE, ew.SHN_UNDEF))
        glob.append(SymbolEntry("common_area", 16, 64, ew.STB_GLOBAL, ew.STT_OBJECT, ew.SHN_COMMON))
        self._added: list[SymbolEntry] = []
        self._extra = extra_symbols
        self.sections = (
            SectionInfo(".text", SEC_TEXT, addr(SEC_TEXT, 0), self.text_off, self.text_size),
            SectionInfo(
                ".rodata", SEC_RODATA, addr(SEC_RODATA, 0), self.rodata_off, self.rodata_size
            ),
            SectionInfo(".data", SEC_DATA, addr(SEC_DATA, 0), self.data_off, self.data_size),
            SectionInfo(".bss", SEC_BSS, addr(SEC_BSS, 0), self.bss_off, self.bss_size),
        )

    # ------------------------------------------------------------------ variables
    def _set_initial_values(self) -> None:
        self.set_var("version", self.version_string.encode() + b"\0")
        self.set_var("ostype", b"FreeBSD\0")
        self.set_var("osrelease", self.osrelease.encode().ljust(32, b"\0"))
        self.set_int("hz", self.hz, signed=True)
        self.set_int("mp_maxcpus", self.mp_maxcpus)
        self.set_int("synth_pair", 0x5EED0000_00000001)
        self.set_int("_synth_pair", 0x5EED0000_00000002)
        self.set_int("dumptid", self.dumptid, signed=True)
        for name, var in self._vars.items():  # the machine fills these in later
            if name not in self._values:
                self.set_var(name, bytes(var.size))

    def variable_names(self) -> list[str]:
        """Names of every variable, ``.data`` ones first, in address order."""
        return list(self._vars)

    def var_size(self, name: str) -> int:
        """Size in bytes of variable ``name``."""
        return self._vars[name].size

    def set_int(self, name: str, value: int, *, signed: bool = False) -> None:
        """Store ``value`` in variable ``name`` (its whole size, kernel byte order)."""
        self.set_var(name, self.spec.int_bytes(value, self._vars[name].size, signed=signed))

    def set_array(self, name: str, values: Sequence[int], size: int) -> None:
        """Store consecutive ``size``-byte values (kernel byte order) at the start of ``name``."""
        self.set_var(name, self.spec.array(values, size))

    def set_dump_avail(self, ranges: Sequence[tuple[int, int]]) -> None:
        """Store the ``dump_avail`` pairs as ``vm_paddr_t`` values (zero terminated)."""
        words: list[int] = []
        for start, end in ranges:
            words += [start, end]
        if len(words) + 2 > DUMP_AVAIL_SLOTS:
            raise ValueError("too many dump_avail ranges for the variable")
        self.set_array("dump_avail", words, self.spec.paddr_bytes)

    def set_var(self, name: str, value: bytes) -> None:
        """Give variable ``name`` its in-memory value (padded with zeros to its size)."""
        var = self._vars[name]
        if len(value) > var.size:
            raise ValueError(f"value too long for {name}")
        if self._file is not None:
            raise RuntimeError("the kernel file has already been built")
        raw = value.ljust(var.size, b"\0")
        self._values[name] = raw
        if var.section == SEC_DATA:
            self._data[var.offset : var.offset + var.size] = raw

    def var_address(self, name: str) -> int:
        """Return the link-time virtual address of variable ``name``."""
        var = self._vars[name]
        base = self.data_off if var.section == SEC_DATA else self.bss_off
        return self.image_va + base + var.offset

    def var_values(self) -> dict[str, bytes]:
        """Return the in-memory bytes of every variable the machine knows the value of."""
        return dict(self._values)

    # ------------------------------------------------------------------ symbols
    def add_symbol(
        self,
        name: str,
        value: int,
        *,
        size: int = 0,
        bind: int = ew.STB_GLOBAL,
        type: int = ew.STT_NOTYPE,
        shndx: int = ew.SHN_ABS,
    ) -> None:
        """Append a global symbol (default: absolute) after the standard ones.

        For architecture symbols whose value the machine decides, such as arm's
        ``physaddr``; call it before the symbol table is first used.
        """
        if self._symbols is not None:
            raise RuntimeError("the symbol table has already been built")
        self._added.append(SymbolEntry(name, value, size, bind, type, shndx))

    def symbols(self) -> list[SymbolEntry]:
        """Return the whole symbol table in table order, without the null entry 0."""
        if self._symbols is None:
            self._symbols = self._locals + self._globals + self._added + list(self._extra_symbols())
        return list(self._symbols)

    def _extra_symbols(self) -> Iterable[SymbolEntry]:
        text_base = self.image_va + self.text_off
        data_base = self.image_va + self.data_off
        for i in range(self._extra):
            if i % 2 == 0:
                yield SymbolEntry(
                    f"synth_extra_{i:06d}",
                    text_base + (i * 16) % self.text_size,
                    16,
                    ew.STB_GLOBAL,
                    ew.STT_FUNC,
                    SEC_TEXT,
                )
            else:
                yield SymbolEntry(
                    f"synth_extra_{i:06d}",
                    data_base + (i * 8) % self.data_size,
                    8,
                    ew.STB_GLOBAL,
                    ew.STT_OBJECT,
                    SEC_DATA,
                )

    # ------------------------------------------------------------------ images
    def loadable_bytes(self) -> bytes:
        """Return file bytes ``[0, data_off + data_size)``: headers, text, rodata, data."""
        return self.file_bytes()[: self.data_off + self.data_size]

    def memory_image(self) -> bytes:
        """Return the ``image_len`` bytes the loader leaves at physical ``kernphys``.

        File bytes up to the end of ``.data``, then ``.bss`` (zero except the variables
        set by the machine), then zeros to the page boundary.
        """
        image = bytearray(self.image_len)
        loadable = self.loadable_bytes()
        image[: len(loadable)] = loadable
        for var in self._vars.values():
            if var.section == SEC_BSS:
                start = self.bss_off + var.offset
                image[start : start + var.size] = self._values[var.name]
        return bytes(image)

    def finalize(self) -> bytes:
        """Freeze the variable values and build the kernel ELF file; return its bytes."""
        if self._file is None:
            self._file = self._build_file()
        return self._file

    def file_bytes(self) -> bytes:
        """Return the complete kernel ELF file (building it on first use)."""
        return self.finalize()

    def _build_file(self) -> bytes:
        loadable_end = self.data_off + self.data_size
        out = bytearray(loadable_end)
        out[self.text_off : self.text_off + self.text_size] = self._text
        out[self.rodata_off : self.rodata_off + self.rodata_size] = self._rodata
        out[self.data_off : loadable_end] = self._data

        spec = self.spec
        elf = spec.elf
        image_va = self.image_va
        ps = self.page_size
        # symbol and string tables
        strtab = ew.StringTable()
        syms = self.symbols()
        sym_size = elf.sym_size
        symtab = bytearray(sym_size * (len(syms) + 1))
        pack_into = elf.sym_packer()
        for i, sym in enumerate(syms, start=1):
            pack_into(
                symtab,
                i * sym_size,
                strtab.add(sym.name),
                (sym.bind << 4) | sym.type,
                0,
                sym.shndx,
                sym.value,
                sym.size,
            )
        first_global = 1 + len(self._locals)
        strdata = strtab.data()

        shstr = ew.StringTable()
        names = [".text", ".rodata", ".data", ".bss", ".symtab", ".strtab", ".shstrtab"]
        ctf = None if self.ctf_section is None else self.ctf_section(syms)
        if ctf is not None:
            names.append(".SUNW_ctf")
        name_off = {n: shstr.add(n) for n in names}
        shstrdata = shstr.data()

        symtab_off = ew.align(len(out), 8)
        out += bytes(symtab_off - len(out)) + symtab
        strtab_off = len(out)
        out += strdata
        shstrtab_off = len(out)
        out += shstrdata
        ctf_off = 0
        if ctf is not None:
            ctf_off = ew.align(len(out), 4)
            out += bytes(ctf_off - len(out)) + ctf
        shoff = ew.align(len(out), 8)
        out += bytes(shoff - len(out))

        def sec(name: str, index: int, size: int, offset: int) -> ew.Shdr:
            sh_type, flags = _SECTION_KIND[index]
            align = 64 if index == SEC_BSS else 16
            return ew.Shdr(
                name_off[name], sh_type, flags, image_va + offset, offset, size, 0, 0, align, 0
            )

        shdrs = [
            ew.Shdr(0, ew.SHT_NULL, 0, 0, 0, 0, 0, 0, 0, 0),
            sec(".text", SEC_TEXT, self.text_size, self.text_off),
            sec(".rodata", SEC_RODATA, self.rodata_size, self.rodata_off),
            sec(".data", SEC_DATA, self.data_size, self.data_off),
            sec(".bss", SEC_BSS, self.bss_size, self.bss_off),
            ew.Shdr(
                name_off[".symtab"],
                ew.SHT_SYMTAB,
                0,
                0,
                symtab_off,
                len(symtab),
                SEC_STRTAB,
                first_global,
                elf.addr_size,
                sym_size,
            ),
            ew.Shdr(name_off[".strtab"], ew.SHT_STRTAB, 0, 0, strtab_off, len(strdata), 0, 0, 1, 0),
            ew.Shdr(
                name_off[".shstrtab"], ew.SHT_STRTAB, 0, 0, shstrtab_off, len(shstrdata), 0, 0, 1, 0
            ),
        ]
        if ctf is not None:  # not loaded, after .shstrtab (section indexes stay put)
            shdrs.append(
                ew.Shdr(
                    name_off[".SUNW_ctf"], ew.SHT_PROGBITS, 0, 0, ctf_off, len(ctf), 0, 0, 4, 0
                )
            )
        for shdr in shdrs:
            out += shdr.pack(elf)

        paddr = spec.first_paddr
        phdrs = [
            ew.Phdr(
                ew.PT_LOAD,
                ew.PF_R | ew.PF_X,
                0,
                image_va,
                paddr,
                self.data_off,
                self.data_off,
                ps,
            ),
            ew.Phdr(
                ew.PT_LOAD,
                ew.PF_R | ew.PF_W,
                self.data_off,
                image_va + self.data_off,
                paddr + self.data_off,
                self.data_size,
                self.bss_off + self.bss_size - self.data_off,
                ps,
            ),
        ]
        ehdr = ew.Ehdr(
            osabi=spec.osabi,
            e_type=spec.e_type,
            e_machine=spec.e_machine,
            e_version=ew.EV_CURRENT,
            e_entry=image_va + self.text_off,
            e_phoff=elf.ehdr_size,
            e_shoff=shoff,
            e_flags=spec.e_flags,
            e_phnum=len(phdrs),
            e_shnum=len(shdrs),
            e_shstrndx=SEC_SHSTRTAB,
        )
        out[0 : elf.ehdr_size] = ehdr.pack(elf)
        for i, phdr in enumerate(phdrs):
            start = elf.ehdr_size + i * elf.phdr_size
            out[start : start + elf.phdr_size] = phdr.pack(elf)
        return bytes(out)
