"""Errors and the one message catalogue of pykvm.

Every text libkvm can leave in a descriptor's error buffer (or print as
``program: text``) is defined here once, as a ``str.format``-free constant or a
``printf``-style format that :func:`cformat` expands exactly as C would.  The
FreeBSD ``strerror`` table lives here too: messages must read as they do on
FreeBSD (``Device not configured``), never as the host's C library words them.

Mirrors: lib/libkvm/kvm_private.c (``_kvm_err``, ``_kvm_syserr``),
lib/libc/gen/errlst.c (``sys_errlist``), contrib/elftoolchain/libelf/elf_errmsg.c.
"""

from __future__ import annotations

import errno as _errno

__all__ = [
    "KvmError",
    "FaultError",
    "FormatError",
    "SymbolError",
    "NotNativeError",
    "LiveUnsupportedError",
    "strerror",
    "strerror_name",
    "cformat",
]


class KvmError(Exception):
    """An error libkvm would report; ``str()`` is exactly libkvm's text.

    ``chain`` holds every message the failing call produced, in order (libkvm
    overwrites its single buffer, so only the last survives there; the earlier,
    more specific ones are kept here for Python callers).
    """

    #: what a call had already stored in the caller's buffer when libkvm gave up (the
    #: per-CPU sums of ``kvm_getcptime``, the rows of ``kvm_getswapinfo``), else None
    partial: object = None

    def __init__(self, message: str, chain: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.chain: tuple[str, ...] = chain or (message,)

    def __str__(self) -> str:
        return self.message


class FaultError(KvmError):
    """A read or write that libkvm answers with -1: an address did not translate.

    ``address`` is the kernel virtual address of the chunk that failed (not
    necessarily the start of the request, as in kvm_read2).
    """

    def __init__(self, message: str, address: int, chain: tuple[str, ...] = ()) -> None:
        super().__init__(message, chain)
        self.address = address


class FormatError(KvmError):
    """The kernel or the core file is not what its format says (open failures)."""


class SymbolError(KvmError):
    """A symbol the caller asked for by name is not in the kernel."""


class NotNativeError(KvmError):
    """A call libkvm refuses on a dump of another architecture."""


class LiveUnsupportedError(KvmError):
    """A live-kernel corefile (``/dev/mem``, ``/dev/null``) on a host that cannot serve it."""


# --- FreeBSD strerror (lib/libc/gen/errlst.c), keyed by errno name -------------

_FREEBSD_ERRNO: tuple[tuple[str, int, str], ...] = (
    ("EPERM", 1, "Operation not permitted"),
    ("ENOENT", 2, "No such file or directory"),
    ("ESRCH", 3, "No such process"),
    ("EINTR", 4, "Interrupted system call"),
    ("EIO", 5, "Input/output error"),
    ("ENXIO", 6, "Device not configured"),
    ("E2BIG", 7, "Argument list too long"),
    ("ENOEXEC", 8, "Exec format error"),
    ("EBADF", 9, "Bad file descriptor"),
    ("ECHILD", 10, "No child processes"),
    ("EDEADLK", 11, "Resource deadlock avoided"),
    ("ENOMEM", 12, "Cannot allocate memory"),
    ("EACCES", 13, "Permission denied"),
    ("EFAULT", 14, "Bad address"),
    ("ENOTBLK", 15, "Block device required"),
    ("EBUSY", 16, "Device busy"),
    ("EEXIST", 17, "File exists"),
    ("EXDEV", 18, "Cross-device link"),
    ("ENODEV", 19, "Operation not supported by device"),
    ("ENOTDIR", 20, "Not a directory"),
    ("EISDIR", 21, "Is a directory"),
    ("EINVAL", 22, "Invalid argument"),
    ("ENFILE", 23, "Too many open files in system"),
    ("EMFILE", 24, "Too many open files"),
    ("ENOTTY", 25, "Inappropriate ioctl for device"),
    ("ETXTBSY", 26, "Text file busy"),
    ("EFBIG", 27, "File too large"),
    ("ENOSPC", 28, "No space left on device"),
    ("ESPIPE", 29, "Illegal seek"),
    ("EROFS", 30, "Read-only file system"),
    ("EMLINK", 31, "Too many links"),
    ("EPIPE", 32, "Broken pipe"),
    ("EDOM", 33, "Numerical argument out of domain"),
    ("ERANGE", 34, "Result too large"),
    ("EAGAIN", 35, "Resource temporarily unavailable"),
    ("EINPROGRESS", 36, "Operation now in progress"),
    ("EALREADY", 37, "Operation already in progress"),
    ("ENOTSOCK", 38, "Socket operation on non-socket"),
    ("EDESTADDRREQ", 39, "Destination address required"),
    ("EMSGSIZE", 40, "Message too long"),
    ("EPROTOTYPE", 41, "Protocol wrong type for socket"),
    ("ENOPROTOOPT", 42, "Protocol not available"),
    ("EPROTONOSUPPORT", 43, "Protocol not supported"),
    ("ESOCKTNOSUPPORT", 44, "Socket type not supported"),
    ("EOPNOTSUPP", 45, "Operation not supported"),
    ("EPFNOSUPPORT", 46, "Protocol family not supported"),
    ("EAFNOSUPPORT", 47, "Address family not supported by protocol family"),
    ("EADDRINUSE", 48, "Address already in use"),
    ("EADDRNOTAVAIL", 49, "Can't assign requested address"),
    ("ENETDOWN", 50, "Network is down"),
    ("ENETUNREACH", 51, "Network is unreachable"),
    ("ENETRESET", 52, "Network dropped connection on reset"),
    ("ECONNABORTED", 53, "Software caused connection abort"),
    ("ECONNRESET", 54, "Connection reset by peer"),
    ("ENOBUFS", 55, "No buffer space available"),
    ("EISCONN", 56, "Socket is already connected"),
    ("ENOTCONN", 57, "Socket is not connected"),
    ("ESHUTDOWN", 58, "Can't send after socket shutdown"),
    ("ETOOMANYREFS", 59, "Too many references: can't splice"),
    ("ETIMEDOUT", 60, "Operation timed out"),
    ("ECONNREFUSED", 61, "Connection refused"),
    ("ELOOP", 62, "Too many levels of symbolic links"),
    ("ENAMETOOLONG", 63, "File name too long"),
    ("EHOSTDOWN", 64, "Host is down"),
    ("EHOSTUNREACH", 65, "No route to host"),
    ("ENOTEMPTY", 66, "Directory not empty"),
    ("EPROCLIM", 67, "Too many processes"),
    ("EUSERS", 68, "Too many users"),
    ("EDQUOT", 69, "Disc quota exceeded"),
    ("ESTALE", 70, "Stale NFS file handle"),
    ("EREMOTE", 71, "Too many levels of remote in path"),
    ("EBADRPC", 72, "RPC struct is bad"),
    ("ERPCMISMATCH", 73, "RPC version wrong"),
    ("EPROGUNAVAIL", 74, "RPC prog. not avail"),
    ("EPROGMISMATCH", 75, "Program version wrong"),
    ("EPROCUNAVAIL", 76, "Bad procedure for program"),
    ("ENOLCK", 77, "No locks available"),
    ("ENOSYS", 78, "Function not implemented"),
    ("EFTYPE", 79, "Inappropriate file type or format"),
    ("EAUTH", 80, "Authentication error"),
    ("ENEEDAUTH", 81, "Need authenticator"),
    ("EIDRM", 82, "Identifier removed"),
    ("ENOMSG", 83, "No message of desired type"),
    ("EOVERFLOW", 84, "Value too large to be stored in data type"),
    ("ECANCELED", 85, "Operation canceled"),
    ("EILSEQ", 86, "Illegal byte sequence"),
    ("ENOATTR", 87, "Attribute not found"),
    ("EDOOFUS", 88, "Programming error"),
    ("EBADMSG", 89, "Bad message"),
    ("EMULTIHOP", 90, "Multihop attempted"),
    ("ENOLINK", 91, "Link has been severed"),
    ("EPROTO", 92, "Protocol error"),
    ("ENOTCAPABLE", 93, "Capabilities insufficient"),
    ("ECAPMODE", 94, "Not permitted in capability mode"),
    ("ENOTRECOVERABLE", 95, "State not recoverable"),
    ("EOWNERDEAD", 96, "Previous owner died"),
    ("EINTEGRITY", 97, "Integrity check failed"),
)

#: FreeBSD's text for each errno name.
FREEBSD_STRERROR: dict[str, str] = {name: text for name, _, text in _FREEBSD_ERRNO}
#: FreeBSD's number for each errno name.
FREEBSD_ERRNO: dict[str, int] = {name: num for name, num, _ in _FREEBSD_ERRNO}
# Host aliases that FreeBSD spells differently.
_ALIASES = {"EWOULDBLOCK": "EAGAIN", "ENOTSUP": "EOPNOTSUPP", "EDEADLOCK": "EDEADLK"}


def strerror_name(name: str) -> str:
    """FreeBSD's ``strerror`` text for an errno given by symbolic name."""
    name = _ALIASES.get(name, name)
    text = FREEBSD_STRERROR.get(name)
    if text is None:
        return f"Unknown error: {FREEBSD_ERRNO.get(name, -1)}"
    return text


def strerror(errnum: int) -> str:
    """FreeBSD's ``strerror`` text for a *host* errno number.

    The host number is mapped to its symbolic name (``errno.errorcode``) and
    from there to FreeBSD's wording, so ``ENXIO`` reads ``Device not
    configured`` on Linux too.  0 is ``No error: 0``; a number the host does not
    name is ``Unknown error: n`` as FreeBSD prints it.
    """
    if errnum == 0:
        return "No error: 0"
    name = _errno.errorcode.get(errnum)
    if name is None:
        return f"Unknown error: {errnum}"
    name = _ALIASES.get(name, name)
    text = FREEBSD_STRERROR.get(name)
    if text is None:
        return f"Unknown error: {errnum}"
    return text


def cformat(fmt: str, *args: int | str) -> str:
    """Expand a C ``printf`` format the way FreeBSD's libc would for libkvm's texts.

    Only the conversions libkvm's messages use are needed: ``%s``, ``%d``,
    ``%u``, ``%zu``, ``%ju``, ``%jd``, ``%llu``, ``%x``, ``%lx``, ``%jx``,
    ``%%``.  Python's ``%`` operator already implements these once the C
    length modifiers are removed; unsigned conversions of negative numbers are
    not needed by any caller.
    """
    for mod in ("zu", "ju", "jd", "llu", "lu", "jx", "lx"):
        fmt = fmt.replace("%" + mod, "%" + mod[-1])
    return fmt % args if args else fmt


# --- The message catalogue (api.md 13, formats.md 3-5, 14) ---------------------
# Open (kvm.c: _kvm_open, _kvm_read_kernel_ehdr)
EXEC_TOO_LONG = "exec file name too long"
BAD_FLAGS = "bad flags arg"
EMPTY_FILE = "empty file"  # syserr with EINVAL: "empty file: Invalid argument"
UNSUPPORTED_LIBELF = "Unsupported libelf"
NOT_ELF_KERNEL = "kernel is not an ELF file"
BAD_ELF_DATA = "unsupported ELF data encoding for kernel"  # unreachable with elftoolchain
UNSUPPORTED_ARCH = "unsupported architecture"
NEEDS_RESOLVER = "non-native kernel requires a symbol resolver"
# libelf texts (contrib/elftoolchain/libelf/elf_errmsg.c)
ELF_EINVAL = "Invalid argument"
ELF_EHEADER = "Missing or malformed ELF header"
ELF_EVERSION = "Unknown ELF API version"
ELF_EIO = "I/O error"
# Reading and writing (kvm.c: kvm_read2, kvm_write)
INVALID_ADDRESS = "invalid address (0x%jx)"
INVALID_ADDRESS_WRITE = "invalid address (%lx)"
KVM_READ = "kvm_read"  # syserr
KVM_WRITE = "kvm_write"  # syserr
SHORT_READ = "short read"
SHORT_WRITE = "short write"
DEV_MEM = "/dev/mem"  # syserr on a failed seek in the dump read loop
WRITE_DEAD = "kvm_write not implemented for dead kernels"
# Symbols (kvm.c: kvm_nlist; kvm_private.c: _kvm_nlist)
KVM_NLIST = "kvm_nlist"  # syserr
NLIST_NON_NATIVE = "kvm_nlist of non-native vmcore"
NLIST_NOMEM = "cannot allocate memory"
# Shared minidump machinery (kvm_private.c: _kvm_pt_init, _kvm_pmap_init)
CANNOT_ALLOCATE_VM = "cannot allocate vm"
CANNOT_READ_DUMP_HEADER = "cannot read dump header"
NOT_A_MINIDUMP = "not a minidump for this platform"
WRONG_VERSION_LC = "wrong minidump version. expected %d got %d"
WRONG_VERSION_UC = "wrong minidump version. Expected %d got %d"
BITMAP_ALLOC = "cannot allocate %zu bytes for bitmap"
BITMAP_READ = "cannot read %zu bytes for bitmap"
POPCOUNT_BINS = "cannot allocate popcount bins"
SPARSE_MAP = "cannot map %llu bytes from fd %d offset %jd for sparse map: %s"
PMAP_ALLOC = "cannot allocate %u bytes for page map"
PMAP_READ = "cannot read %d bytes from offset %jd for page map"
# ELF full cores (kvm_private.c: _kvm_read_core_phdrs)
INVALID_CORE = "invalid core"
PHDR_ALLOC = "failed to allocate phdrs"
# amd64 minidump (kvm_minidump_amd64.c)
AMD64_MD_PDE_INVALID = "_amd64_minidump_vatop: pde not valid"
AMD64_MD_PTE_INVALID = "_amd64_minidump_vatop: pte not valid"
AMD64_MD_NO_PT = "cannot find page table entry for %ju"
AMD64_MD_READ_PT = "cannot read page table entry for %ju"
AMD64_MD_PA_ABSENT = "_amd64_minidump_vatop: physical address 0x%jx not in minidump"
AMD64_MD_DMAP_ABSENT = "_amd64_minidump_vatop: direct map address 0x%jx not in minidump"
AMD64_MD_NOT_DUMPED = "_amd64_minidump_vatop: virtual address 0x%jx not minidumped"
AMD64_MD1_PTE_INVALID = "_amd64_minidump_vatop_v1: pte not valid"
AMD64_MD1_PA_ABSENT = "_amd64_minidump_vatop_v1: physical address 0x%jx not in minidump"
AMD64_MD1_DMAP_ABSENT = "_amd64_minidump_vatop_v1: direct map address 0x%jx not in minidump"
AMD64_MD1_NOT_DUMPED = "_amd64_minidump_vatop_v1: virtual address 0x%jx not minidumped"
# amd64 full dump (kvm_amd64.c)
AMD64_NO_KERNBASE = "bad namelist - no kernbase"
AMD64_NO_KPML4PHYS = "bad namelist - no KPML4phys"
AMD64_READ_KPML4PHYS = "cannot read KPML4phys"
AMD64_ALLOC_PML4 = "cannot allocate PML4"
AMD64_BOOTSTRAP = "_amd64_vatop: bootstrap data not in dump"
AMD64_PML4E_INVALID = "_amd64_vatop: pml4e not valid"
AMD64_PDPE_PA = "_amd64_vatop: pdpe_pa not found"
AMD64_READ_PDPE = "_amd64_vatop: read pdpe"  # syserr
AMD64_PDPE_INVALID = "_amd64_vatop: pdpe not valid"
AMD64_1GB_ABSENT = "_amd64_vatop: 1GB page address not in dump"
AMD64_PDE_PA = "_amd64_vatop: pde_pa not found"  # syserr
AMD64_READ_PDE = "_amd64_vatop: read pde"  # syserr
AMD64_PDE_INVALID = "_amd64_vatop: pde not valid"
AMD64_2MB_ABSENT = "_amd64_vatop: 2MB page address not in dump"
AMD64_PTE_PA = "_amd64_vatop: pte_pa not found"
AMD64_READ_PTE = "_amd64_vatop: read"  # syserr
AMD64_PTE_INVALID = "_amd64_vatop: pte not valid"
AMD64_ADDR_ABSENT = "_amd64_vatop: address not in dump"
# pykvm's own texts (no libkvm counterpart; worded in libkvm's style)
LIVE_NOT_FREEBSD = "%s: live kernel access needs a FreeBSD host"
LIVE_NOT_IMPLEMENTED = "%s: live kernel access is not implemented yet"
DESCRIPTOR_CLOSED = "descriptor is closed"
# mips minidump (kvm_minidump_mips.c, libkvm of FreeBSD 14 and earlier)
MIPS_MD_PTE_INVALID = "_mips_minidump_kvatop: pte not valid"
MIPS_MD_NOT_DUMPED = "_mips_minidump_kvatop: virtual address 0x%jx not minidumped"
MIPS_MD_PA_ABSENT = "_mips_minidump_kvatop: physical address 0x%jx not in minidump"
# aarch64 minidump (kvm_minidump_aarch64.c)
AARCH64_MD_PAGE_SIZE_FLAG = "unknown page size flag %x"
AARCH64_MD_DMAP_ABSENT = "_aarch64_minidump_vatop: direct map address 0x%jx not in minidump"
AARCH64_MD_PDE_INVALID = "_aarch64_minidump_vatop: pde not valid"
AARCH64_MD_PA_ABSENT = "_aarch64_minidump_vatop: physical address 0x%jx not in minidump"
AARCH64_MD_NOT_DUMPED = "_aarch64_minidump_vatop: virtual address 0x%jx not minidumped"
# riscv minidump (kvm_minidump_riscv.c)
RISCV_MD_DMAP_ABSENT = "_riscv_minidump_vatop: direct map address 0x%jx not in minidump"
RISCV_MD_PTE_INVALID = "_riscv_minidump_vatop: pte not valid"
RISCV_MD_PA_ABSENT = "_riscv_minidump_vatop: physical address 0x%jx not in minidump"
RISCV_MD_NOT_DUMPED = "_riscv_minidump_vatop: virtual address 0x%jx not minidumped"
# arm minidump (kvm_minidump_arm.c)
ARM_MD_PTE_INVALID = "_arm_minidump_kvatop: pte not valid"
ARM_MD_PTE_UNSUPPORTED = "_arm_minidump_kvatop: pte not supported"
ARM_MD_PA_ABSENT = "_arm_minidump_kvatop: physical address 0x%jx not in minidump"
ARM_MD_NOT_DUMPED = "_arm_minidump_kvatop: virtual address 0x%jx not minidumped"
# arm full dump (kvm_arm.c)
ARM_RAW_DUMPS = "raw dumps not supported on arm"
ARM_NO_KERNBASE = "cannot resolve kernbase"
ARM_NO_PHYSADDR = "couldn't get phys addr"
ARM_BAD_NAMELIST = "bad namelist"
ARM_READ_KERNEL_L1PA = "cannot read kernel_l1pa"
ARM_ALLOC_L1PT = "cannot allocate l1pt"
ARM_READ_L1PT = "cannot read l1pt"
ARM_PREAD = "_arm_kvatop: pread"  # syserr
ARM_INVALID_ADDRESS = "Invalid address (%jx)"  # soft; capital I, no 0x
# i386 minidump (kvm_minidump_i386.c)
I386_MD_PTE_INVALID = "_i386_minidump_vatop: pte not valid"
I386_MD_PA_ABSENT = "_i386_minidump_vatop: physical address 0x%jx not in minidump"
I386_MD_NOT_DUMPED = "_i386_minidump_vatop: virtual address 0x%jx not minidumped"
I386_MDPAE_PTE_INVALID = "_i386_minidump_vatop_pae: pte not valid"
I386_MDPAE_PA_ABSENT = "_i386_minidump_vatop_pae: physical address 0x%jx not in minidump"
I386_MDPAE_NOT_DUMPED = "_i386_minidump_vatop_pae: virtual address 0x%jx not minidumped"
# i386 full dump (kvm_i386.c: _i386_initvtop, _i386_vatop, _i386_vatop_pae)
I386_NO_KERNBASE = "cannot resolve kernbase"
I386_READ_IDLEPDPT = "cannot read IdlePDPT"
I386_READ_PDPT_ENTRY = "Cannot read PDPT"
I386_READ_PDPT = "cannot read PDPT"
I386_ALLOC_PTD = "cannot allocate PTD"  # an allocation failure: never raised by pykvm
I386_BAD_NAMELIST = "bad namelist"
I386_READ_IDLEPTD = "cannot read IdlePTD"
I386_READ_PTD = "cannot read PTD"
I386_BOOTSTRAP = "_i386_vatop: bootstrap data not in dump"
I386_PAE_BOOTSTRAP = "_i386_vatop_pae: bootstrap data not in dump"  # unreachable in libkvm
I386_PDE_INVALID = "_i386_vatop: pde not valid"
I386_4MB_ABSENT = "_i386_vatop: 4MB page address not in dump"
I386_PTE_PA = "_i386_vatop: pte_pa not found"
I386_PREAD = "_i386_vatop: pread"  # syserr
I386_PTE_INVALID = "_kvm_kvatop: pte not valid"
I386_ADDR_ABSENT = "_i386_vatop: address not in dump"
I386_PAE_PDE_INVALID = "_kvm_kvatop_pae: pde not valid"
I386_2MB_ABSENT = "_i386_vatop: 2MB page address not in dump"
I386_PAE_PTE_PA = "_i386_vatop_pae: pdpe_pa not found"
I386_PAE_READ = "_i386_vatop_pae: read"  # syserr
I386_PAE_PTE_INVALID = "_i386_vatop_pae: pte not valid"
I386_PAE_ADDR_ABSENT = "_i386_vatop_pae: address not in dump"
# CTF reader (pykvm/image/ctf.py; checks of ctf_bufopen/init_types and pykvm's own)
CTF_SHORT = "CTF: section of %d bytes is shorter than the %d-byte header"
CTF_BAD_MAGIC = "CTF: bad magic 0x%04x (expected 0xcff1)"
CTF_WRONG_ENDIAN = "CTF: data is %s-endian but the kernel is %s-endian"
CTF_BAD_VERSION = "CTF: unsupported version %d (versions 2 and 3 are known)"
CTF_BAD_HEADER = "CTF: bad header: %s"
CTF_TRUNCATED = "CTF: %d bytes follow the header but it declares %d"
CTF_ZLIB = "CTF: bad zlib stream: %s"
CTF_ZLIB_SIZE = "CTF: zlib stream inflates to %s bytes but the header declares %d"
CTF_ZLIB_RATIO = "CTF: header declares %d bytes of data, impossible from %d compressed bytes"
CTF_BAD_KIND = "CTF: type %d at offset %d has unknown kind %d"
CTF_RECORD_OVERRUN = "CTF: type %d at offset %d runs past the end of the type section"
CTF_TOO_MANY_TYPES = "CTF: %d types, more than version %d type ids can address (%d)"
CTF_BAD_NAME = "CTF: string offset %d is outside string table %d (%d bytes)"
CTF_UNTERMINATED = "CTF: string at offset %d of string table %d is not NUL-terminated"
CTF_NO_EXT_STRTAB = "CTF: name reference 0x%x needs the ELF string table, which was not given"
CTF_BAD_ID = "CTF: type id %d is out of range (the container has %d types)"
CTF_NO_PARENT = "CTF: type %d belongs to the parent container %s, which is not loaded"
CTF_CYCLE = "CTF: cycle in the type chain of type %d"
CTF_NOT_SOU = "CTF: type %d (%s) is not a struct or union"
CTF_NO_SIZE = "CTF: type %d has no size: %s"
CTF_INCOMPLETE = "CTF: type %d (%s) is a forward declaration with no definition"
CTF_ANON_LIMIT = "CTF: anonymous members of type %d nest too deep or expand to too many members"
CTF_LABELS = "CTF: label section of %d bytes is not a whole number of 8-byte labels"
CTF_NO_POINTER_SIZE = "CTF: pointer size unknown (no 'long' base type); pass pointer_size"
CTF_NO_SYMTAB = "CTF: no symbol table given; object types need one"
CTF_OBJECT_OVERRUN = "CTF: object entry at offset %d runs past the end of the data"
# powerpc and powerpc64 full dumps (kvm_powerpc.c, kvm_powerpc64.c: powerpc_maphdrs,
# _powerpc_kvatop, _powerpc64_kvatop)
PPC_CANNOT_MAP_CORE = "cannot map corefile"
PPC_INVALID_CORE = "invalid corefile"
PPC_CANNOT_MAP_HEADERS = "cannot map corefile headers"
PPC_RAW_CORE = "Raw corefile not supported"
# powerpc64 minidump (kvm_minidump_powerpc64.c: _powerpc64_minidump_initvtop)
PPC64_CANNOT_READ_HEADER = "cannot read minidump header"
PPC64_UNSUPPORTED_MMU = "unsupported MMU: %s"
# powerpc64 HPT back end (kvm_minidump_powerpc64_hpt.c)
PPC64_HPT_ALLOC_DATA = "cannot allocate MMU data"  # an allocation failure: never raised by pykvm
PPC64_HPT_ALLOC_SLBS = "cannot allocate slbs"  # an allocation failure: never raised by pykvm
PPC64_HPT_NO_SEGMENT_EA = "slb_search: segment not found for EA 0x%jx"
PPC64_HPT_PTE_NOT_FOUND = "pte_search: pte not found"
PPC64_HPT_PTE_INVALID = "ppc64mmu_hpt_kvatop: pte not valid"
PPC64_HPT_DMAP_ABSENT = "ppc64mmu_hpt_kvatop: direct map address 0x%jx not in minidump"
PPC64_HPT_PA_ABSENT = "ppc64mmu_hpt_kvatop: physical address 0x%jx not in minidump"
PPC64_HPT_NOT_DUMPED = "ppc64mmu_hpt_kvatop: virtual address 0x%jx not minidumped"
PPC64_HPT_NO_SEGMENT_VSID = "slb_vsid_search: segment not found for VSID 0x%jx"
# powerpc64 radix back end (kvm_minidump_powerpc64_radix.c)
PPC64_RADIX_NO_PMAP = "radix minidump does not contain a page map"
PPC64_RADIX_PMAP_SIZE = "unexpected radix page map size: %u"
PPC64_RADIX_NOT_DUMPED = "radix page table page at 0x%jx was not dumped"
PPC64_RADIX_32BIT_HOST = "walking powerpc64 radix pages requires a 64-bit host"  # never on Python
# DWARF reader (pykvm/image/dwarf.py); every text about corrupt data starts "DWARF:"
DWARF_CORRUPT = "DWARF: corrupt debugging information (%s: %s)"
DWARF_NONE = "%s: no DWARF debugging information (no .debug_info section)"
DWARF_NOT_ELF = "%s: not an ELF file"
DWARF_BAD_EXPR = "DWARF: bad expression: %s"
DWARF_BAD_ATTR = "DWARF: attribute %s has unexpected form %s"
DWARF_BAD_HANDLE = "DWARF: no DIE for type handle 0x%x"
DWARF_CYCLE = "DWARF: cycle in the type chain of DIE 0x%x"
DWARF_BAD_MEMBER = "DWARF: member %s has an unsupported location (%s)"
# Layout model and typed views (pykvm/image/layout.py)
LAYOUT_NO_MEMBER = "%s has no member %s (%s)"
LAYOUT_NOT_AGGREGATE = "%s: member %s is %s, not a struct or union (%s)"
LAYOUT_NO_INFO = "%s: no type information (%s)"
LAYOUT_ANON_DEPTH = "%s: anonymous members nest too deep or in a cycle (%s)"
LAYOUT_TYPE_CYCLE = "%s: cycle or excessive depth in the type chain of type %d"
LAYOUT_SECTION_OUTSIDE = "%s section lies outside the kernel file"
VIEW_NO_MEMORY = "%s: no kernel memory to read from (no dump attached)"
VIEW_SHORT = "%s at %s: short read (%d of %d bytes)"
VIEW_OUTSIDE = "member %s lies outside %s (%d bytes)"
VIEW_NULL = "cannot dereference a NULL %s"
VIEW_NO_DEREF = "cannot dereference %s"
VIEW_TOO_LARGE = "%s: %d bytes is too large to read as one structure"
# Kernel-data calls (pykvm/kernel/; kernel-data.md Appendix A, and pykvm's own texts)
PROCS_NON_NATIVE = "cannot read procs from non-native core"
NO_SUCH_SYMBOL = "%s: no such symbol"
CANT_READ_VAR = "can't read %s"
CANT_READ_LIST = "cannot read %s"
CANT_READ_AT = "can't read %s at %p"
NPROCS_CORRUPT = "nprocs corrupt"
DEAD_USER_SPACE = "cannot read user space from dead kernel"
LOADAVG_NON_NATIVE = "cannot read loadavg from non-native core"
CANT_READ_AVERUNNABLE = "can't read averunnable"
SWAP_NON_NATIVE = "cannot read swapinfo from non-native core"
SWAP_NO_SWTAILQ = "unable to find swtailq"
SWAP_NO_DMMAX = "unable to find dmmax"
SWAP_READ_DMMAX = "cannot read _dmmax"
SWAP_READ_SWTAILQ = "cannot read _swtailq"
SWAP_READ_SWINFO = "cannot read swinfo"
SWAP_CYCLE = "swtailq corrupt: more than %d swap devices or a cycle"
CPTIME_NON_NATIVE = "cannot read cp_time from non-native core"
CPTIME_READ = "cannot read cp_time array"
PCPU_NOT_FOUND = "unable to find %s"
PCPU_CANT_READ = "cannot read %s"
PCPU_OOM = "out of memory"
PCPU_READ_ARRAY = "cannot read cpuid_to_pcpu array"
PCPU_READ_DATA = "unable to read per-CPU data"
DPCPU_INIT_FAILED = "kvm_dpcpu_setcpu: init failed"
DPCPU_NOT_INIT = "_kvm_dpcpu_setcpu: not initialized"
DPCPU_TOO_BIG = "_kvm_dpcpu_setcpu: CPU %u too big"
DPCPU_NOT_FOUND = "_kvm_dpcpu_setcpu: CPU %u not found"
PROC_CYCLE = "%s corrupt: a cycle or more than %d processes"
THREAD_CYCLE = "thread list of the process at %p corrupt: a cycle or more than %d threads"
MSGBUF_NO_SYMBOL = "unable to find msgbufp"
MSGBUF_READ_PTR = "cannot read msgbufp"
MSGBUF_READ = "cannot read the message buffer at %p"
MSGBUF_BAD_MAGIC = "message buffer magic 0x%x is not 0x63062: the buffer is unusable"
MSGBUF_BAD_SIZE = "message buffer size %u is not usable"
# VNET (lib/libkvm/kvm_vnet.c: _kvm_vnet_selectpid; kernel-data.md 7.1, Appendix A)
VNET_SEL_DUMPTID = "_kvm_vnet_selectpid: dumptid"
VNET_SEL_PROC = "_kvm_vnet_selectpid: proc"
VNET_SEL_NOT_FOUND = "_kvm_vnet_selectpid: pid/tid not found"
VNET_SEL_CRED = "_kvm_vnet_selectpid: cred"
VNET_SEL_NO_JAIL = "_kvm_vnet_selectpid: no jail"
VNET_SEL_PRISON = "_kvm_vnet_selectpid: prison"
VNET_SEL_NO_VNET = "_kvm_vnet_selectpid: no vnet"
VNET_SEL_VNET = "_kvm_vnet_selectpid: vnet"
VNET_SEL_MAGIC = "_kvm_vnet_selectpid: invalid vnet magic#"
# VNET selection extension (pykvm/kernel/vnet.py; kernel-data.md Appendix B row 6)
VNET_NOT_VIMAGE = "no VNET support in this kernel (%s: no such symbol)"
VNET_SELECT_ARGS = "vnet_select: give exactly one of vnet, jid or pid"
VNET_NO_PID = "no process with pid %d"
VNET_NO_JID = "no jail with jid %d"
VNET_NO_CRED = "process %d has no credentials"
VNET_PRISON_NO_VNET = "prison at %p has no vnet"
VNET_READ = "can't read vnet at %p"
VNET_BAD_MAGIC = "vnet at %p: invalid vnet magic# 0x%x"
VNET_LIST_CYCLE = "%s corrupt: a cycle or more than %d entries"

# kvm_private.c _kvm_malloc: calloc failed (kvm_getprocs with a negative capacity)
KVM_MALLOC_FAILED = "can't allocate %zu bytes: %s"

# pykvm: kvm_nlist returned -1 and left no text of its own (kernel-data calls)
NLIST_FAILED = "kvm_nlist failed"
# pykvm: the kernel's type information gives struct loadavg fewer than three averages
LOADAVG_LAYOUT = "struct loadavg has %d load averages, not 3"

# pykvm: kernel objects never overlap; a dump whose lists make them do is corrupt (bounds
# kvm_getprocs by the dump's size; libkvm would list the same bytes again and again)
PROC_OVERLAP = "%s corrupt: the struct proc at %p overlaps another"
THREAD_OVERLAP = ("thread list of the process at %p corrupt: the struct thread at %p "
                  "overlaps another or is listed twice")
