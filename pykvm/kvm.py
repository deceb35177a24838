"""The libkvm descriptor: open, close, geterr, native, read, write, nlist, kerndisp, walk.

Mirrors lib/libkvm/kvm.c (``kvm_open``, ``kvm_openfiles``, ``kvm_open2``,
``_kvm_open``, ``kvm_close``, ``kvm_geterr``, ``kvm_native``, ``kvm_read``,
``kvm_read2``, ``kvm_write``, ``kvm_nlist``, ``kvm_nlist2``,
``kvm_kerndisp``, ``kvm_walk_pages``), the error primitives and the symbol
engine of lib/libkvm/kvm_private.c (``_kvm_err``, ``_kvm_syserr``,
``_kvm_nlist``, ``kvm_fdnlist``, ``kvm_fdnlist_prefix``), the DPCPU
symbol relocation of lib/libkvm/kvm_pcpu.c and the VNET selection and relocation
of lib/libkvm/kvm_vnet.c (``_kvm_vnet_selectpid``, ``_kvm_vnet_initialized``,
``_kvm_vnet_validaddr``).  The contract is api.md.

pykvm additions: :attr:`Kvm.types` (struct layouts from the kernel's CTF, a
``kernel.debug`` given to :meth:`Kvm.attach_debug`, the kernel's own DWARF, or the
offsets the kernel exports for debuggers; see :mod:`pykvm.image.layout`) and
:meth:`Kvm.struct`, a typed view of one kernel structure.

Python shape: where libkvm returns -1 with a message, pykvm raises a
:class:`~pykvm.errors.KvmError` whose ``str()`` is that message (and
:meth:`Kvm.geterr` returns it too); where libkvm returns a short count, pykvm
returns the shorter bytes.
"""

from __future__ import annotations

import errno
import mmap
import os
import stat
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Literal, Union

from . import errors as E
from .arch import select_backend
from .arch.base import Backend, KvmPage
from .constants import (
    DEFAULT_BOOTFILE,
    DPCPU_SYMPREFIX,
    ELFCLASS64,
    MAX_PROC_WALK,
    MAXPATHLEN,
    MINIDUMP_PREFIX,
    N_DATA,
    N_EXT,
    N_UNDF,
    O_RDWR,
    PATH_DEVNULL,
    PATH_DEVVMM,
    PATH_FWMEM,
    PATH_KMEM,
    PATH_MEM,
    POSIX2_LINE_MAX,
    VNET_MAGIC_N,
    VNET_SYMPREFIX,
)
from .core.corefile import CoreFile
from .errors import FaultError, FormatError, KvmError, LiveUnsupportedError, NotNativeError
from .image.elf import KernelImage

if TYPE_CHECKING:
    from .image.dwarf import DwarfFile
    from .image.layout import KernelTypes, StructView
    from .kernel.procs import KinfoProc
    from .kernel.swap import KvmSwap
    from .kernel.vnet import VnetInfo

U64 = (1 << 64) - 1
#: ``unsigned long`` of the host, for kvm_read/kvm_write/kvm_nlist narrowing.
ULONG = (1 << (8 * (8 if sys.maxsize > 2**32 else 4))) - 1
#: pykvm's bound on ``mp_maxcpus`` read from a dump (FreeBSD's MAXCPU is at most 1024).
MAX_DPCPU = 65536
#: Translation-cache entries kept before the cache is emptied.
TCACHE_LIMIT = 1 << 20

PathArg = Union[str, bytes, "os.PathLike[str]", "os.PathLike[bytes]", None]
Resolver = Callable[[str], int | None | tuple[int, int]]


@dataclass(frozen=True)
class NlistEntry:
    """One looked-up name: what libkvm leaves in ``struct kvm_nlist``/``struct nlist``."""

    name: str
    type: int
    value: int


@dataclass(frozen=True)
class NlistResult:
    """Result of :meth:`Kvm.nlist2` / :meth:`Kvm.nlist`.

    ``missing`` is libkvm's return value: the number of names not found as
    libkvm counts them (per match, see api.md 10.3), or -1 when the kernel's
    symbol table could not be read.  ``entries`` has one entry per name, up to
    (not including) the first empty name, which ends a C list.
    """

    entries: list[NlistEntry]
    missing: int

    def __getitem__(self, name: str) -> NlistEntry:
        """The entry for ``name`` (the first, if the name was given twice)."""
        for e in self.entries:
            if e.name == name:
                return e
        raise KeyError(name)

    def found(self, name: str) -> bool:
        """Whether ``name`` was given a type (n_type != 0), as callers of nlist test it."""
        return self[name].type != N_UNDF


@dataclass(frozen=True)
class DumpInfo:
    """What kind of dump a descriptor reads (a pykvm extension)."""

    arch: str
    fmt: str
    version: int | None
    native: bool
    page_size: int
    pages: int
    kernel: str
    core: str


class _Ent:
    """A mutable ``struct kvm_nlist`` entry used inside the symbol engine."""

    __slots__ = ("name", "type", "value")

    def __init__(self, name: bytes, ntype: int = 0, value: int = 0) -> None:
        self.name = name
        self.type = ntype
        self.value = value


def _fspath(p: PathArg) -> str | None:
    """A path argument as ``str`` (bytes decoded with surrogateescape), None for NULL."""
    if p is None:
        return None
    v = os.fspath(p)
    return os.fsdecode(v) if isinstance(v, bytes) else v


def getbootfile() -> str:
    """libc ``getbootfile``: ``kern.bootfile`` on FreeBSD, else ``/boot/kernel/kernel``."""
    if sys.platform.startswith("freebsd"):
        try:
            import ctypes
            import ctypes.util

            libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
            buf = ctypes.create_string_buffer(MAXPATHLEN)
            size = ctypes.c_size_t(MAXPATHLEN)
            if libc.sysctlbyname(b"kern.bootfile", buf, ctypes.byref(size), None, 0) == 0:
                return buf.value.decode(errors="surrogateescape")
        except (OSError, AttributeError):
            pass
    return DEFAULT_BOOTFILE


class Kvm:
    """A kvm descriptor (``kvm_t``) on a crash dump.

    Create it with :func:`open`, :func:`openfiles` or :func:`open2`.  It is a
    context manager; :meth:`close` releases the files.
    """

    def __init__(self, program: str | None) -> None:
        self.program = program
        self._errbuf = b""
        self._chain: list[str] = []
        self._closed = False
        self.core: CoreFile
        self.kernel: KernelImage
        self._corefd = -1
        self._kernfd = -1
        self._core_opened = False
        self._kernel_opened = False
        self.resolver: Resolver | None = None
        self.rawdump = False
        self.writable = False
        self.backend: Backend | None = None
        self.corepath = ""
        self.execpath = ""
        self._tc: dict[int, int] = {}
        self._caching = False
        self._fault_va = 0
        self._pshift = 12
        self._psize = 4096
        self._pmask = 4095
        self._mm: mmap.mmap | None = None
        #: FreeBSD-strict mode (kernel-data.md Appendix B): refuse what libkvm refuses,
        #: e.g. DPCPU and VNET initialisation on non-native dumps.  Default: pykvm's
        #: deviations (every target works).  Set by ``open*(..., strict=True)``.
        self.strict = False
        # VNET state (kvm_vnet.c)
        self._vnet_ready = False
        self._vnet_start = 0
        self._vnet_stop = 0
        self._vnet_current = 0
        self._vnet_base = 0
        # DPCPU state (kvm_pcpu.c)
        self._dpcpu_ready = False
        self._dpcpu_start = 0
        self._dpcpu_stop = 0
        self._dpcpu_off: list[int] = []
        self._dpcpu_curcpu = 0
        self._dpcpu_curoff = 0
        # type information (pykvm/image/layout.py), built on first use
        self._types: KernelTypes | None = None
        self._debug: list[DwarfFile] = []

    # -- error primitives (kvm_private.c) ---------------------------------------
    def err(self, program: str | None, text: str) -> None:
        """``_kvm_err``: ``program: text`` on stderr, or store ``text`` (2047 bytes at most)."""
        self._chain.append(text)
        if program is not None:
            sys.stderr.write(f"{program}: {text}\n")
            sys.stderr.flush()
        else:
            self._errbuf = text.encode(errors="surrogateescape")[: POSIX2_LINE_MAX - 1]

    def syserr(self, program: str | None, text: str, errnum: int) -> None:
        """``_kvm_syserr``: as :meth:`err`, with ``: <FreeBSD strerror>`` appended."""
        self.err(program, f"{text}: {E.strerror(errnum)}")

    def geterr(self) -> str:
        """``kvm_geterr``: the last stored error text (never cleared by successes)."""
        return self._errbuf.decode(errors="surrogateescape")

    def _check(self) -> None:
        if self._closed:
            raise ValueError(E.DESCRIPTOR_CLOSED)
        self._chain = []

    # -- context manager and close ----------------------------------------------
    def __enter__(self) -> Kvm:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if not self._closed:
            self.close()

    def close(self) -> int:
        """``kvm_close``: release everything; 0, or -1 if already closed (EBADF)."""
        if self._closed:
            return -1
        self._closed = True
        rc = 0
        self._tc = {}
        self._mm = None
        self.backend = None
        if self._types is not None:
            self._types.close()
            self._types = None
        for dwarf in self._debug:
            dwarf.close()
        self._debug = []
        if self._core_opened:
            self.core.close()
        if self._kernel_opened:
            self.kernel.close()
        for fd in (self._corefd, self._kernfd):
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    rc = -1
        self._corefd = self._kernfd = -1
        return rc

    # -- native, kerndisp, info -------------------------------------------------
    def _backend(self) -> Backend:
        self._check()
        assert self.backend is not None
        return self.backend

    def native(self) -> bool:
        """``kvm_native``: whether the dump is of the host's own architecture."""
        return self._backend().native()

    def kerndisp(self) -> int:
        """``kvm_kerndisp``: the kernel displacement (0 unless the backend has one)."""
        return self._backend().kerndisp()

    def info(self) -> DumpInfo:
        """Format, architecture, header version and page counts of the dump (pykvm)."""
        b = self._backend()
        return DumpInfo(b.arch, b.fmt, b.version(), b.native(), b.page_size, b.dumped_pages(),
                        self.execpath, self.corepath)

    def msgbuf(self) -> bytes:
        """The raw message-buffer section of a minidump; b"" for other formats (pykvm)."""
        return self._backend().msgbuf()

    # -- translation and reading --------------------------------------------------
    def _translate(self, va: int) -> tuple[int, int]:
        """``ka_kvatop`` behind pykvm's per-page translation cache."""
        off_in = va & self._pmask
        base = self._tc.get(va >> self._pshift)
        if base is not None:
            return base + off_in, self._psize - off_in
        assert self.backend is not None
        off, n = self.backend.kvatop(va)
        if n >= self._psize - off_in and self._caching:
            if len(self._tc) >= TCACHE_LIMIT:
                self._tc.clear()
            self._tc[va >> self._pshift] = off - off_in
        return off, n

    def _read(self, addr: int, size: int) -> bytes | None:
        """The dump branch of ``kvm_read2``: bytes (maybe short), or None for -1.

        Chunks that lie wholly inside a mapped core and follow each other in
        the file are copied as one run; a chunk that reaches past the end of the
        file (or a core that is not mapped) is read on its own so that the loop
        stops exactly where libkvm's does.
        """
        core = self.core
        limit = core.size if core.map is not None else -1
        chunks: list[bytes] = []
        got = 0
        va = addr
        run_off = run_len = 0
        while got < size:
            off, n = self._translate(va)
            if n <= 0:
                self._fault_va = va
                return None
            n = min(n, size - got)
            if off < 0 or off >= 1 << 63:
                self.err(None, f"{PATH_MEM}: {E.strerror(errno.EINVAL)}")
                break
            if off + n <= limit:
                if run_len and off == run_off + run_len:
                    run_len += n
                else:
                    if run_len:
                        chunks.append(core.pread(run_off, run_len))
                    run_off, run_len = off, n
                got += n
                va = (va + n) & U64
                continue
            if run_len:
                chunks.append(core.pread(run_off, run_len))
                run_len = 0
            data = core.pread(off, n)
            if not data:
                break  # end of the core: stop without a message
            chunks.append(data)
            got += len(data)
            va = (va + len(data)) & U64
        if run_len:
            chunks.append(core.pread(run_off, run_len))
        return b"".join(chunks)

    def read2(self, addr: int, size: int) -> bytes:
        """``kvm_read2``: ``size`` bytes at kernel virtual address ``addr``.

        Raises :class:`FaultError` (``geterr()`` then names the failing chunk's
        address) where libkvm returns -1: any page of the range that does not
        translate.  Returns fewer bytes where libkvm returns a short count
        (the core ends, or a seek fails).
        """
        self._check()
        if size < 0:
            raise ValueError("size must not be negative")
        addr &= U64
        off_in = addr & self._pmask
        mm = self._mm
        if mm is not None:
            tc = self._tc
            page = addr >> self._pshift
            base = tc.get(page)
            if base is not None:
                o = base + off_in
                if off_in + size > self._psize:
                    # pages whose translations are cached and follow each other in the
                    # core: one slice (else the general loop below)
                    psize = self._psize
                    last = (addr + size - 1) >> self._pshift
                    nb = base
                    while page < last:
                        page += 1
                        nb += psize
                        if tc.get(page) != nb:
                            o = -1
                            break
                if o >= 0:
                    data = mm[o:o + size]
                    if len(data) == size:
                        return data
        if size == 0:
            return b""
        data_or_none = self._read(addr, size)
        if data_or_none is None:
            raise FaultError(self.geterr(), self._fault_va, tuple(self._chain))
        return data_or_none

    def read(self, addr: int, size: int) -> bytes:
        """``kvm_read``: :meth:`read2` with the address narrowed to ``unsigned long``."""
        return self.read2(addr & ULONG, size)

    def read_bootstrap(self, addr: int, size: int) -> bytes | None:
        """``kvm_read2`` as a backend's initialisation calls it: None where it returns -1."""
        return self._read(addr & U64, size)

    # -- writing ------------------------------------------------------------------
    def write(self, addr: int, data: bytes) -> int:
        """``kvm_write``: dumps are never writable (``kvm_write not implemented for
        dead kernels``, raised as :class:`KvmError`), raw memory devices are."""
        self._check()
        if not self.writable:
            self.err(self.program, E.WRITE_DEAD)
            raise KvmError(self.geterr() if self.program is None else E.WRITE_DEAD,
                           tuple(self._chain))
        va = addr & ULONG
        done = 0
        while done < len(data):
            off, n = self._translate(va)
            if n <= 0:
                raise FaultError(self.geterr(), va, tuple(self._chain))
            n = min(n, len(data) - done)
            try:
                w = os.pwrite(self._corefd, data[done:done + n], off)
            except OSError as exc:
                self.syserr(self.program, E.KVM_WRITE, exc.errno or 0)
                break
            if w == 0:
                break
            done += w
            va = (va + w) & U64
        return done

    # -- symbols ------------------------------------------------------------------
    def _call_resolver(self, name: bytes) -> int | None:
        assert self.resolver is not None
        try:
            r = self.resolver(name.decode(errors="surrogateescape"))
        except Exception:  # a resolver that raises has failed to resolve
            return None
        if isinstance(r, tuple):
            rc, value = r
            return None if rc != 0 else int(value) & U64
        if r is None or isinstance(r, bool):
            return None
        return int(r) & U64

    def _fdnlist(self, ents: list[_Ent]) -> int:
        """``kvm_fdnlist``: the resolver, or libc's ``__fdnlist`` on the kernel."""
        if self.resolver is None:
            count, res = self.kernel.fdnlist([e.name for e in ents])
            for e, (ntype, value) in zip(ents, res, strict=True):
                e.type, e.value = ntype, value
            return count
        nfail = 0
        for e in ents:
            resolved = self._call_resolver(e.name)
            if resolved is None:
                nfail += 1
                e.value, e.type = 0, 0
            else:
                e.value, e.type = resolved, N_DATA | N_EXT
        return nfail

    def _fdnlist_prefix(self, ents: list[_Ent], missing: int, prefix: bytes,
                        validate: Callable[[int], int]) -> int:
        """``kvm_fdnlist_prefix``: retry the unresolved names as ``prefix`` + name."""
        pending = [e for e in ents if e.type == N_UNDF]
        if not pending:
            return 0
        reduced = [_Ent(prefix + (e.name[1:] if prefix and e.name[:1] == b"_" else e.name))
                   for e in pending]
        origin = [e.name for e in pending]
        unresolved = self._fdnlist(reduced)
        if 0 <= unresolved < missing:
            fresh = [(r, o) for r, o in zip(reduced, origin, strict=True) if r.type != N_UNDF]
            k = 0
            for p in ents:
                if k >= len(fresh):
                    break
                if p.type != N_UNDF:
                    continue
                r, o = fresh[k]
                if o != p.name:
                    continue
                p.type = r.type
                p.value = validate(r.value)
                k += 1
        return unresolved

    def _kvm_nlist(self, ents: list[_Ent], initialize: bool) -> int:
        """``_kvm_nlist`` for dumps: lookup, then the VNET and DPCPU retries."""
        error = self._fdnlist(ents)
        if error <= 0:
            return error
        if self._vnet_initialized(initialize):
            error = self._fdnlist_prefix(ents, error, VNET_SYMPREFIX.encode(),
                                         self._vnet_validaddr)
        if error > 0 and self._dpcpu_initialized(initialize):
            error = self._fdnlist_prefix(ents, error, DPCPU_SYMPREFIX.encode(),
                                         self._dpcpu_validaddr)
        return error

    @staticmethod
    def _names(names: Iterable[str | bytes | None]) -> list[bytes]:
        out = []
        for n in names:
            if n is None:
                break
            b = n.encode(errors="surrogateescape") if isinstance(n, str) else bytes(n)
            if not b:
                break
            out.append(b)
        return out

    def nlist2(self, names: Iterable[str | bytes | None]) -> NlistResult:
        """``kvm_nlist2``: look names up in the kernel (or through the resolver).

        The list ends at the first empty name or None.  Found entries carry the
        a.out ``n_type`` libc derives (0x07 through a resolver); missing ones
        are 0/0.  ``missing`` is libkvm's return value (api.md 10.3-10.5).
        """
        self._check()
        ents = [_Ent(n) for n in self._names(names)]
        count = self._kvm_nlist(ents, True)
        return NlistResult([NlistEntry(e.name.decode(errors="surrogateescape"), e.type,
                                       e.value) for e in ents], count)

    def nlist(self, names: Iterable[str | bytes | None]) -> NlistResult:
        """``kvm_nlist``: the a.out interface; refuses non-native dumps.

        Raises :class:`NotNativeError` (``kvm_nlist of non-native vmcore``) for a
        dump of another architecture.  Values are narrowed to ``unsigned long``.
        """
        self._check()
        if not self._backend().native():
            self.err(self.program, E.NLIST_NON_NATIVE)
            raise NotNativeError(E.NLIST_NON_NATIVE, tuple(self._chain))
        bnames = self._names(names)
        if not bnames:
            return NlistResult([], 0)
        res = self.nlist2(bnames)
        return NlistResult([NlistEntry(e.name, e.type, e.value & ULONG) for e in res.entries],
                           res.missing)

    def nlist2_values(self, names: Sequence[str]) -> tuple[int, list[int]]:
        """``kvm_nlist2`` on a throw-away list, as a backend's initialisation uses it."""
        ents = [_Ent(n.encode()) for n in names]
        count = self._kvm_nlist(ents, True)
        return count, [e.value for e in ents]

    # -- VNET and DPCPU (kvm_vnet.c, kvm_pcpu.c) -----------------------------------
    def _refuses_foreign(self) -> bool:
        """libkvm's "native only" guard of the DPCPU and VNET initialisers: in strict mode
        a non-native dump is refused; by default every target works (Appendix B row 1)."""
        return self.backend is None or (self.strict and not self.backend.native())

    def _vnet_initialized(self, initialize: bool) -> bool:
        """``_kvm_vnet_initialized``: select the caller's vnet on demand when allowed
        (``_kvm_vnet_selectpid(kd, getpid())``); a failure is retried on the next call."""
        if self._vnet_ready or not initialize:
            return self._vnet_ready
        self._vnet_selectpid(os.getpid())
        return self._vnet_ready

    def _vnet_selectpid(self, pid: int) -> int:
        """``_kvm_vnet_selectpid`` (kernel-data.md 7.1): 0, or -1 with libkvm's text.

        Looks up ``__start_set_vnet``, ``__stop_set_vnet``, ``vnet_head``, ``allproc``,
        ``dumptid`` and ``proc0`` (any missing: -1, silently: a kernel without VIMAGE).
        A crash dump (``dumptid > 0``) starts at ``proc0`` looking for pid 0, anything
        else at the address of ``allproc`` (read as a ``struct proc`` whose successor is
        the first process) looking for ``pid``; then ``p_ucred`` -> ``cr_prison`` ->
        ``pr_vnet``, checking ``vnet_magic_n``.  Structures are read whole, with the
        target kernel's layouts.  pykvm bounds the walk: a cycle (or more than
        ``MAX_PROC_WALK`` entries) ends it as the list's end does.  A kernel without
        type information for these structures leaves the layout's error text.
        """
        if self._refuses_foreign():
            return -1
        nl = [_Ent(n) for n in (b"___start_set_vnet", b"___stop_set_vnet", b"vnet_head",
                                b"allproc", b"dumptid", b"proc0")]
        if self._kvm_nlist(nl, False) != 0:
            return -1
        start, stop, _head, allproc, dumptid_va, proc0 = (e.value for e in nl)
        order: Literal["little", "big"] = "little" if self.kernel.ehdr.ei_data == 1 else "big"
        dumptid = 0
        if dumptid_va:
            raw = self._read(dumptid_va & ULONG, 4)
            if raw is None or len(raw) != 4:
                self.err(self.program, E.VNET_SEL_DUMPTID)
                return -1
            dumptid = int.from_bytes(raw, order, signed=True)  # lwpid_t
        try:
            found = self._vnet_of_pid(allproc, proc0, pid, dumptid)
        except KvmError as exc:  # no type information, or a layout that cannot be decoded
            self.err(self.program, exc.message)
            return -1
        if isinstance(found, str):
            self.err(self.program, found)
            return -1
        vnet_addr, data_base = found
        self._vnet_ready = True
        self._vnet_start = start
        self._vnet_stop = stop
        self._vnet_current = vnet_addr
        self._vnet_base = data_base
        return 0

    def _vnet_of_pid(self, allproc: int, proc0: int, pid: int,
                     dumptid: int) -> tuple[int, int] | str:
        """The walk of ``_kvm_vnet_selectpid``: ``(vnet, vnet_data_base)`` or the error text."""
        procp = allproc
        if dumptid > 0:  # VMCORE_VNET_OF_PROC0
            procp, pid = proc0, 0
        credp = 0
        seen: set[int] = set()
        while procp != 0:
            if procp in seen or len(seen) >= MAX_PROC_WALK:
                break  # pykvm: a cycle ends the walk (libkvm would loop for ever)
            seen.add(procp)
            proc = self._kread("proc", procp)
            if proc is None:
                return E.VNET_SEL_PROC
            if int(proc.p_pid) == pid:
                credp = int(proc.p_ucred)
            if credp != 0:
                break
            procp = int(proc["p_list.le_next"])
        if credp == 0:
            return E.VNET_SEL_NOT_FOUND
        cred = self._kread("ucred", credp)
        if cred is None:
            return E.VNET_SEL_CRED
        prisonp = int(cred.cr_prison)
        if prisonp == 0:
            return E.VNET_SEL_NO_JAIL
        prison = self._kread("prison", prisonp)
        if prison is None:
            return E.VNET_SEL_PRISON
        vnetp = int(prison.pr_vnet)
        if vnetp == 0:
            return E.VNET_SEL_NO_VNET
        vnet = self._kread("vnet", vnetp)
        if vnet is None:
            return E.VNET_SEL_VNET
        if int(vnet.vnet_magic_n) != VNET_MAGIC_N:
            return E.VNET_SEL_MAGIC
        return vnetp, int(vnet.vnet_data_base)

    def _kread(self, struct: str, addr: int) -> StructView | None:
        """``KREAD``: the whole target ``struct`` at ``addr`` as a view, None when any byte
        of it cannot be read (libkvm's failed or short ``kvm_read``).  Missing type
        information raises :class:`KvmError`."""
        types = self._kernel_types()
        layout = types.struct(struct)
        data = self._read(addr & ULONG, layout.size)
        if data is None or len(data) != layout.size:
            return None
        return types.view_from(layout, data, addr & ULONG, self)

    def _vnet_validaddr(self, value: int) -> int:
        """``_kvm_vnet_validaddr``: add the selected vnet's ``vnet_data_base`` to a value
        inside ``[__start_set_vnet, __stop_set_vnet)``; anything else is unchanged."""
        if value == 0 or not self._vnet_ready:
            return value
        if value < self._vnet_start or value >= self._vnet_stop:
            return value
        return (self._vnet_base + value) & U64

    def nlist2_noinit(self, names: Iterable[str | bytes | None]) -> NlistResult:
        """``_kvm_nlist(kd, nl, 0)``: :meth:`nlist2` without starting VNET or DPCPU
        initialisation (already initialised support still retries), as libkvm's own
        initialisers look symbols up (pykvm's kernel-data modules use it too)."""
        self._check()
        ents = [_Ent(n) for n in self._names(names)]
        count = self._kvm_nlist(ents, False)
        return NlistResult([NlistEntry(e.name.decode(errors="surrogateescape"), e.type,
                                       e.value) for e in ents], count)

    def _vnet_set(self, start: int, stop: int, vnet: int, data_base: int) -> None:
        """Select a vnet for later ``vnet_entry_`` lookups (pykvm's extension,
        :mod:`pykvm.kernel.vnet`); the state ``_kvm_vnet_selectpid`` records."""
        self._vnet_ready = True
        self._vnet_start, self._vnet_stop = start, stop
        self._vnet_current, self._vnet_base = vnet, data_base

    @property
    def vnet_current(self) -> int | None:
        """The selected vnet's address (libkvm's ``vnet_current``), None while VNET
        translation is off (pykvm)."""
        return self._vnet_current if self._vnet_ready else None

    def vnet_select(self, *, vnet: int | None = None, jid: int | None = None,
                    pid: int | None = None) -> int:
        """Make later ``nlist`` lookups of ``vnet_entry_`` symbols relocate into another
        vnet, chosen by ``struct vnet`` address, jail id or process id (pykvm extension,
        kernel-data.md Appendix B row 6; see :func:`pykvm.kernel.vnet.vnet_select`).
        Returns the vnet's address; raises :class:`KvmError` when it cannot be chosen."""
        from .kernel import vnet as _vnet

        return _vnet.vnet_select(self, vnet=vnet, jid=jid, pid=pid)

    def vnets(self) -> list[VnetInfo]:
        """The kernel's vnets in ``vnet_head`` order, with the jails using each (pykvm
        extension; see :func:`pykvm.kernel.vnet.vnets`)."""
        from .kernel import vnet as _vnet

        return _vnet.vnets(self)

    def _dpcpu_initialized(self, initialize: bool) -> bool:
        """``_kvm_dpcpu_initialized``: initialise on demand when allowed."""
        if self._dpcpu_ready or not initialize:
            return self._dpcpu_ready
        self._dpcpu_init()
        return self._dpcpu_ready

    def _dpcpu_init(self) -> bool:
        """``_kvm_dpcpu_init``: ``__start/__stop_set_pcpu``, ``dpcpu_off``, ``mp_maxcpus``.

        libkvm refuses non-native dumps here; pykvm does so only in strict mode
        (:attr:`strict`), reading ``mp_maxcpus`` and ``dpcpu_off`` in the target's byte
        order and word size otherwise."""
        if self._refuses_foreign():
            return False
        ents = [_Ent(n) for n in (b"___start_set_pcpu", b"___stop_set_pcpu", b"_dpcpu_off",
                                  b"_mp_maxcpus")]
        if self._kvm_nlist(ents, False) != 0:
            return False
        order: Literal["little", "big"] = "little" if self.kernel.ehdr.ei_data == 1 else "big"
        raw = self._read(ents[3].value, 4)
        if raw is None or len(raw) != 4:
            return False
        maxcpus = int.from_bytes(raw, order)
        if maxcpus > MAX_DPCPU:
            return False
        ptr = 8 if self.kernel.ehdr.ei_class == ELFCLASS64 else 4
        raw = self._read(ents[2].value, maxcpus * ptr) if maxcpus else b""
        if raw is None or len(raw) != maxcpus * ptr:
            return False
        self._dpcpu_start = ents[0].value
        self._dpcpu_stop = ents[1].value
        self._dpcpu_off = [int.from_bytes(raw[i:i + ptr], order)
                           for i in range(0, len(raw), ptr)]
        self._dpcpu_ready = True
        if self._dpcpu_off and self._dpcpu_off[0] != 0:
            self._dpcpu_curcpu = 0
            self._dpcpu_curoff = self._dpcpu_off[0]
        return True

    def _dpcpu_validaddr(self, value: int) -> int:
        """``_kvm_dpcpu_validaddr``: add the current CPU's offset inside ``set_pcpu``."""
        if value == 0 or not self._dpcpu_ready:
            return value
        if value < self._dpcpu_start or value >= self._dpcpu_stop:
            return value
        return (self._dpcpu_curoff + value) & U64

    # -- type information (pykvm) --------------------------------------------------
    def attach_debug(self, path: str | os.PathLike[str]) -> None:
        """Use a separate debug file (``kernel.debug``) for type information.

        Its DWARF is asked after the kernel's CTF and before the kernel's own
        DWARF (see :mod:`pykvm.image.layout`).  Raises :class:`KvmError`
        (``path: strerror``) when the file cannot be opened and
        :class:`FormatError` when it is not ELF or has no DWARF.
        """
        from .image.dwarf import DwarfFile

        self._check()
        dwarf = DwarfFile.open(path)
        self._debug.append(dwarf)
        if self._types is not None:
            self._types.add_dwarf(dwarf)

    @property
    def types(self) -> KernelTypes:
        """The kernel's type information: struct layouts from CTF, DWARF or the
        exported offsets (:class:`~pykvm.image.layout.KernelTypes`)."""
        self._check()
        return self._kernel_types()

    def _kernel_types(self) -> KernelTypes:
        """:attr:`types` without starting a new call (the error chain is kept), for the
        descriptor's own structure reads (VNET selection)."""
        if self._types is None:
            from .image.layout import KernelTypes

            self._types = KernelTypes.for_kernel(self.kernel, debug=self._debug, memory=self,
                                                 offsets_memory=_QuietReader(self))
        return self._types

    def struct(self, name: str, addr: int) -> StructView:
        """Read ``struct name`` at kernel address ``addr`` (its whole size, once) and
        return a typed view of it: ``kd.struct("proc", p).p_pid``.

        Raises :class:`FaultError` when the structure cannot be read in full and
        :class:`KvmError` when no source describes it.
        """
        types = self.types
        return types.view(types.struct(name), addr & U64, self)

    # -- walk_pages ---------------------------------------------------------------
    def walk_pages(self) -> Iterator[KvmPage]:
        """``kvm_walk_pages`` as an iterator of :class:`KvmPage` records.

        Empty where libkvm returns 0 without calling back (full dumps, amd64
        minidump version 1).
        """
        it = self._backend().walk_pages()
        return iter(()) if it is None else it

    def walk_pages_cb(self, cb: Callable[[KvmPage], int]) -> int:
        """``kvm_walk_pages`` with a callback: 1 after a complete walk, 0 otherwise."""
        it = self._backend().walk_pages()
        if it is None:
            return 0
        while True:
            try:
                page = next(it)
            except StopIteration as stop:
                # a walker that ends early (powerpc64) returns False, as libkvm returns 0
                return 0 if stop.value is False else 1
            if not cb(page):
                return 0

    # -- kernel-data calls (pykvm.kernel; imported when first used) --------------------
    def getprocs(self, op: int, arg: int = 0, *, strict: bool = False) -> list[KinfoProc]:
        """``kvm_getprocs``: :func:`pykvm.kernel.procs.getprocs` on this descriptor."""
        from .kernel import procs

        return procs.getprocs(self, op, arg, strict=strict)

    def getargv(self, kp: KinfoProc, nchr: int = 0, *, pargs: bool = False) -> list[bytes]:
        """``kvm_getargv``: :func:`pykvm.kernel.procs.getargv`."""
        from .kernel import procs

        return procs.getargv(self, kp, nchr, pargs=pargs)

    def getenvv(self, kp: KinfoProc, nchr: int = 0) -> list[bytes]:
        """``kvm_getenvv``: :func:`pykvm.kernel.procs.getenvv`."""
        from .kernel import procs

        return procs.getenvv(self, kp, nchr)

    def getloadavg(self, nelem: int = 3, *, strict: bool = False) -> list[float]:
        """``kvm_getloadavg``: :func:`pykvm.kernel.loadavg.getloadavg`."""
        from .kernel import loadavg

        return loadavg.getloadavg(self, nelem, strict=strict)

    def getcptime(self, *, strict: bool = False) -> list[int]:
        """``kvm_getcptime``: :func:`pykvm.kernel.cptime.getcptime`."""
        from .kernel import cptime

        return cptime.getcptime(self, strict=strict)

    def getswapinfo(self, maxswap: int, flags: int = 0, *,
                    strict: bool = False) -> list[KvmSwap]:
        """``kvm_getswapinfo``: :func:`pykvm.kernel.swap.getswapinfo`."""
        from .kernel import swap

        return swap.getswapinfo(self, maxswap, flags, strict=strict)

    def getmaxcpu(self, *, strict: bool = False) -> int:
        """``kvm_getmaxcpu``: :func:`pykvm.kernel.pcpu.getmaxcpu`."""
        from .kernel import pcpu

        return pcpu.getmaxcpu(self, strict=strict)

    def getncpus(self, *, strict: bool = False) -> int:
        """``kvm_getncpus``: :func:`pykvm.kernel.pcpu.getncpus`."""
        from .kernel import pcpu

        return pcpu.getncpus(self, strict=strict)

    def getpcpu(self, cpu: int, *, strict: bool = False) -> bytes | None:
        """``kvm_getpcpu``: :func:`pykvm.kernel.pcpu.getpcpu` (the ``struct pcpu`` bytes)."""
        from .kernel import pcpu

        return pcpu.getpcpu(self, cpu, strict=strict)

    def dpcpu_setcpu(self, cpu: int, *, strict: bool = False) -> int:
        """``kvm_dpcpu_setcpu``: :func:`pykvm.kernel.pcpu.dpcpu_setcpu`."""
        from .kernel import pcpu

        return pcpu.dpcpu_setcpu(self, cpu, strict=strict)

    def read_zpcpu(self, base: int, size: int, cpu: int, *, strict: bool = False) -> bytes:
        """``kvm_read_zpcpu``: :func:`pykvm.kernel.pcpu.read_zpcpu`."""
        from .kernel import pcpu

        return pcpu.read_zpcpu(self, base, size, cpu, strict=strict)

    def counter_u64_fetch(self, base: int, *, strict: bool = False) -> int:
        """``kvm_counter_u64_fetch``: :func:`pykvm.kernel.pcpu.counter_u64_fetch`."""
        from .kernel import pcpu

        return pcpu.counter_u64_fetch(self, base, strict=strict)


class _QuietReader:
    """Reads for pykvm's own bookkeeping (the exported offsets): ``kvm_read2``
    semantics, but the descriptor's error buffer and stderr are left alone, so
    that ``geterr()`` still shows the caller's last error."""

    def __init__(self, kd: Kvm) -> None:
        self.kd = kd

    def read2(self, addr: int, size: int) -> bytes:
        kd = self.kd
        saved = kd._errbuf, kd._chain, kd.program
        kd.program = None
        try:
            data = kd.read_bootstrap(addr, size)
        finally:
            kd._errbuf, kd._chain, kd.program = saved
        if data is None:
            raise FaultError(E.cformat(E.INVALID_ADDRESS, addr), addr)
        return data


def _kvm_err(kd: Kvm, program: str | None, text: str) -> None:
    """The ``_kvm_err`` hook FreeBSD's geterr test calls (api.md 14.3, 16.1)."""
    kd.err(program, text)


# -- opening (kvm.c: _kvm_open) -----------------------------------------------------
def _is_minidump(kd: Kvm) -> bool:
    """``_kvm_is_minidump``: not raw, and the core starts with ``minidump``."""
    if kd.rawdump:
        return False
    return kd.core.pread(0, 8) == MINIDUMP_PREFIX


def _fail(kd: Kvm, text: str, cls: type[KvmError] = KvmError) -> KvmError:
    """Report a hard open error as libkvm does and build the exception to raise."""
    kd.err(kd.program, text)
    return cls(text, tuple(kd._chain))


def _open_fd(path: str, flags: int) -> int:
    return os.open(path, flags | getattr(os, "O_CLOEXEC", 0))


def _kvm_open(kd: Kvm, execfile: str | None, corefile: str | None, flags: int,
              resolver: Resolver | None) -> Kvm:
    """``_kvm_open``: the common steps, in libkvm's order (api.md 4.4)."""
    kd.resolver = resolver
    if execfile is None:
        execfile = getbootfile()
    elif len(os.fsencode(execfile)) >= MAXPATHLEN:
        raise _fail(kd, E.EXEC_TOO_LONG)
    if flags & ~O_RDWR:
        raise _fail(kd, E.BAD_FLAGS)
    if corefile is None:
        corefile = PATH_MEM
    kd.corepath, kd.execpath = corefile, execfile
    mode = os.O_RDWR if flags == O_RDWR else os.O_RDONLY
    try:
        kd._corefd = _open_fd(corefile, mode)
        st = os.fstat(kd._corefd)
    except OSError as exc:
        raise _fail(kd, f"{corefile}: {E.strerror(exc.errno or 0)}") from None
    if stat.S_ISREG(st.st_mode) and st.st_size <= 0:
        raise _fail(kd, f"{E.EMPTY_FILE}: {E.strerror(errno.EINVAL)}")
    if stat.S_ISCHR(st.st_mode) and corefile in (PATH_DEVNULL, PATH_MEM):
        # LIVE-NULL / LIVE-KMEM (api.md 4.6); pykvm reads live kernels only on FreeBSD.
        where = corefile if corefile == PATH_DEVNULL else PATH_KMEM
        fmt = E.LIVE_NOT_IMPLEMENTED if sys.platform.startswith("freebsd") else E.LIVE_NOT_FREEBSD
        text = E.cformat(fmt, where)
        kd.err(kd.program, text)
        raise LiveUnsupportedError(text, tuple(kd._chain))
    try:
        kd._kernfd = _open_fd(execfile, os.O_RDONLY)
    except OSError as exc:
        raise _fail(kd, f"{execfile}: {E.strerror(exc.errno or 0)}") from None
    kd.core = CoreFile(corefile, kd._corefd)
    kd._core_opened = True
    try:
        kd.kernel = KernelImage(execfile, kd._kernfd)
    except KvmError as exc:
        raise _fail(kd, exc.message, type(exc)) from None
    kd._kernel_opened = True
    if corefile.startswith(PATH_FWMEM) or corefile.startswith(PATH_DEVVMM):
        kd.rawdump = kd.writable = True
    backend_cls = select_backend(kd.kernel.ehdr, _is_minidump(kd))
    if backend_cls is None:
        raise _fail(kd, E.UNSUPPORTED_ARCH, FormatError)
    backend = backend_cls(kd)
    kd.backend = backend
    if not backend.native() and resolver is None:
        raise _fail(kd, E.NEEDS_RESOLVER, NotNativeError)
    try:
        backend.initvtop()
    except KvmError as exc:
        raise _fail(kd, exc.message, type(exc)) from None
    # the page size may come from the dump's header (aarch64 16 KiB kernels)
    kd._psize = backend.page_size
    kd._pshift = backend.page_size.bit_length() - 1
    kd._pmask = backend.page_size - 1
    # a backend refuses the page cache when one page could translate two ways
    kd._caching = backend.cacheable()
    kd._tc.clear()
    kd._mm = kd.core.map
    return kd


def _run_open(kd: Kvm, execfile: PathArg, corefile: PathArg, flags: int,
              resolver: Resolver | None) -> Kvm:
    try:
        return _kvm_open(kd, _fspath(execfile), _fspath(corefile), flags, resolver)
    except BaseException:
        kd.close()
        raise


def open(execfile: PathArg, corefile: PathArg, swapfile: PathArg = None,  # noqa: A001
         flags: int = 0, errstr: str | None = None, *, strict: bool = False) -> Kvm:
    """``kvm_open``: hard errors go to stderr as ``errstr: text`` when ``errstr`` is set.

    On failure raises :class:`KvmError` whose ``str()`` is libkvm's text (the
    part after ``errstr: `` on stderr).  ``swapfile`` is ignored, as in libkvm.
    ``strict=True`` sets :attr:`Kvm.strict` (FreeBSD-strict descriptor behaviour).
    """
    del swapfile
    return _run_open(_new(errstr, strict), execfile, corefile, flags, None)


def openfiles(execfile: PathArg, corefile: PathArg, swapfile: PathArg = None,
              flags: int = 0, *, strict: bool = False) -> Kvm:
    """``kvm_openfiles``: on failure raises :class:`KvmError` with the text libkvm
    copies into the caller's buffer.  ``swapfile`` is ignored, as in libkvm.
    ``strict=True`` sets :attr:`Kvm.strict`."""
    del swapfile
    return _run_open(_new(None, strict), execfile, corefile, flags, None)


def open2(execfile: PathArg, corefile: PathArg, flags: int = 0,
          resolver: Resolver | None = None, *, strict: bool = False) -> Kvm:
    """``kvm_open2``: as :func:`openfiles`, with an optional symbol resolver.

    ``resolver(name)`` returns the address (int) or None; it is the only way
    libkvm opens a dump of another architecture, and when given it answers
    every symbol lookup of the descriptor (api.md 4.9, 10.4).  See
    :func:`symtab_resolver` for one built from the kernel's own symbol table.
    ``strict=True`` sets :attr:`Kvm.strict`: the descriptor then refuses what
    libkvm refuses on non-native dumps (DPCPU and VNET initialisation) and every
    kernel-data call of :mod:`pykvm.kernel` runs in its strict mode.
    """
    return _run_open(_new(None, strict), execfile, corefile, flags, resolver)


def _new(program: str | None, strict: bool) -> Kvm:
    """A fresh descriptor in default or FreeBSD-strict mode."""
    kd = Kvm(program)
    kd.strict = bool(strict)
    return kd


def symtab_resolver(execfile: PathArg) -> Resolver:
    """A resolver answering from a kernel's own ``.symtab`` (pykvm).

    Lets :func:`open2` read dumps of any architecture on any host, the way
    libfbsdvmcore's built-in resolver does: the first symbol with exactly the
    requested name wins; failing that, a name with a leading underscore is looked up
    without it, as libc's ``__fdnlist`` does for ELF kernels, so that libkvm's own
    lookups (``_nprocs``, ``___start_set_pcpu``...) resolve.  Raises :class:`KvmError`
    if the file is not ELF.
    """
    path = _fspath(execfile)
    if path is None:
        path = getbootfile()
    try:
        fd = _open_fd(path, os.O_RDONLY)
    except OSError as exc:
        raise KvmError(f"{path}: {E.strerror(exc.errno or 0)}") from None
    try:
        image = KernelImage(path, fd)
        table = image.symtab()
        image.close()
    finally:
        os.close(fd)

    def resolve(name: str) -> int | None:
        if table is None:
            return None
        raw = name.encode(errors="surrogateescape")
        idxs = table.indices(raw)
        if not idxs and raw[:1] == b"_":
            idxs = table.indices(raw[1:])  # libkvm's own "_nprocs" style names
        return table.value[idxs[0]] if idxs else None

    return resolve
