"""libkvm for Python on any host: FreeBSD's C names and conventions over pykvm.

Code written against libkvm runs by changing one import::

    import libkvm
    errbuf = ctypes.create_string_buffer(libkvm._POSIX2_LINE_MAX)
    kd = libkvm.kvm_openfiles(b"kernel", b"vmcore.0", None, libkvm.O_RDONLY, errbuf)
    if kd is None:
        sys.exit(errbuf.value.decode())
    nl = (libkvm.Nlist * 2)()
    nl[0].n_name = b"_hz"
    libkvm.kvm_nlist(kd, nl)
    hz = ctypes.c_int()
    libkvm.kvm_read(kd, nl[0].n_value, ctypes.byref(hz), ctypes.sizeof(hz))

or without changing anything: ``python -m libkvm.run prog.py`` runs a program that
loads ``libkvm.so.7`` through ctypes against pykvm (:mod:`libkvm.run`), and
:func:`load` returns a ctypes-shaped library, the real one on FreeBSD
(:mod:`libkvm.cdll`).

The module-level functions accept ctypes arguments and plain Python values alike
(``str`` paths, ``bytearray`` buffers, Python callables); they return a
:class:`KvmHandle` (an ``int`` handle) or None from the opens, ``str`` from
``kvm_geterr``, and ints elsewhere.  Through :func:`load` the results follow the
declared restypes instead (``bytes`` errors, ``int`` handles), as with ctypes.

Record classes: :data:`Nlist`, :data:`KvmNlist`, :data:`KvmPage`, :data:`KvmSwap` and
:data:`KinfoProc` are the host's; :func:`structures` gives them for any FreeBSD ABI.
"""

from __future__ import annotations

from ._defs import (
    _POSIX2_LINE_MAX,
    LIBKVM_WALK_PAGES_VERSION,
    MAXPATHLEN,
    N_ABS,
    N_BSS,
    N_COMM,
    N_DATA,
    N_EXT,
    N_FN,
    N_INDR,
    N_SETA,
    N_SETB,
    N_SETD,
    N_SETT,
    N_SETV,
    N_SIZE,
    N_STAB,
    N_TEXT,
    N_TYPE,
    N_UNDF,
    N_WARN,
    O_RDONLY,
    O_RDWR,
    O_WRONLY,
    SWIF_DEV_PREFIX,
    VM_PROT_EXECUTE,
    VM_PROT_NONE,
    VM_PROT_READ,
    VM_PROT_WRITE,
    VRS_KEY,
    VRS_SYM,
)
from .abi import (
    ABIS,
    Abi,
    KinfoProc,
    KvmNlist,
    KvmPage,
    KvmSwap,
    Nlist,
    Structures,
    host_abi,
    structures,
)
from .calls import (
    IMPLEMENTED,
    PENDING,
    KvmHandle,
    _kvm_err,
    errno,
    get_errno,
    kvm_close,
    kvm_counter_u64_fetch,
    kvm_dpcpu_setcpu,
    kvm_getargv,
    kvm_getcptime,
    kvm_getenvv,
    kvm_geterr,
    kvm_getloadavg,
    kvm_getmaxcpu,
    kvm_getncpus,
    kvm_getpcpu,
    kvm_getprocs,
    kvm_getswapinfo,
    kvm_kerndisp,
    kvm_native,
    kvm_nlist,
    kvm_nlist2,
    kvm_open,
    kvm_open2,
    kvm_openfiles,
    kvm_read,
    kvm_read2,
    kvm_read_zpcpu,
    kvm_walk_pages,
    kvm_write,
    set_errno,
)
from .cdll import (
    ENV,
    LIBKVM_SONAME,
    RESOLVER_T,
    SIGNATURES,
    WALK_PAGES_CB_T,
    EmulatedLibkvm,
    declare,
    load,
)

__all__ = [
    "ABIS",
    "ENV",
    "IMPLEMENTED",
    "LIBKVM_SONAME",
    "LIBKVM_WALK_PAGES_VERSION",
    "MAXPATHLEN",
    "N_ABS",
    "N_BSS",
    "N_COMM",
    "N_DATA",
    "N_EXT",
    "N_FN",
    "N_INDR",
    "N_SETA",
    "N_SETB",
    "N_SETD",
    "N_SETT",
    "N_SETV",
    "N_SIZE",
    "N_STAB",
    "N_TEXT",
    "N_TYPE",
    "N_UNDF",
    "N_WARN",
    "O_RDONLY",
    "O_RDWR",
    "O_WRONLY",
    "PENDING",
    "RESOLVER_T",
    "SIGNATURES",
    "SWIF_DEV_PREFIX",
    "VM_PROT_EXECUTE",
    "VM_PROT_NONE",
    "VM_PROT_READ",
    "VM_PROT_WRITE",
    "VRS_KEY",
    "VRS_SYM",
    "WALK_PAGES_CB_T",
    "_POSIX2_LINE_MAX",
    "Abi",
    "EmulatedLibkvm",
    "KinfoProc",
    "KvmHandle",
    "KvmNlist",
    "KvmPage",
    "KvmSwap",
    "Nlist",
    "Structures",
    "_kvm_err",
    "declare",
    "errno",
    "get_errno",
    "host_abi",
    "kvm_close",
    "kvm_counter_u64_fetch",
    "kvm_dpcpu_setcpu",
    "kvm_getargv",
    "kvm_getcptime",
    "kvm_getenvv",
    "kvm_geterr",
    "kvm_getloadavg",
    "kvm_getmaxcpu",
    "kvm_getncpus",
    "kvm_getpcpu",
    "kvm_getprocs",
    "kvm_getswapinfo",
    "kvm_kerndisp",
    "kvm_native",
    "kvm_nlist",
    "kvm_nlist2",
    "kvm_open",
    "kvm_open2",
    "kvm_openfiles",
    "kvm_read",
    "kvm_read2",
    "kvm_read_zpcpu",
    "kvm_walk_pages",
    "kvm_write",
    "load",
    "set_errno",
    "structures",
]
