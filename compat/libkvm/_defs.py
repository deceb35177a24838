"""The constants of ``kvm.h`` and the headers it leans on, as a C program sees them.

Strings are ``bytes`` (what a ``char *`` holds in ctypes); numbers are FreeBSD's values,
never the host's.  Mirrors: lib/libkvm/kvm.h, sys/sys/nlist_aout.h, sys/vm/vm.h,
sys/sys/fcntl.h, sys/sys/syslimits.h (api.md 1.1, 1.4, 1.5, 1.8).
"""

from __future__ import annotations

from pykvm import constants as _c

# kvm.h
VRS_SYM: bytes = _c.VRS_SYM.encode()
VRS_KEY: bytes = _c.VRS_KEY.encode()
SWIF_DEV_PREFIX: int = _c.SWIF_DEV_PREFIX
LIBKVM_WALK_PAGES_VERSION: int = _c.LIBKVM_WALK_PAGES_VERSION

# open flags libkvm accepts (FreeBSD numbering)
O_RDONLY: int = _c.O_RDONLY
O_WRONLY: int = _c.O_WRONLY
O_RDWR: int = _c.O_RDWR

# limits
_POSIX2_LINE_MAX: int = _c.POSIX2_LINE_MAX
MAXPATHLEN: int = _c.MAXPATHLEN

# a.out symbol types (sys/sys/nlist_aout.h)
N_UNDF: int = _c.N_UNDF
N_EXT: int = _c.N_EXT
N_ABS: int = _c.N_ABS
N_TEXT: int = _c.N_TEXT
N_DATA: int = _c.N_DATA
N_BSS: int = _c.N_BSS
N_INDR: int = _c.N_INDR
N_SIZE: int = _c.N_SIZE
N_COMM: int = _c.N_COMM
N_SETA: int = _c.N_SETA
N_SETT: int = _c.N_SETT
N_SETD: int = _c.N_SETD
N_SETB: int = _c.N_SETB
N_SETV: int = _c.N_SETV
N_FN: int = _c.N_FN
N_WARN: int = _c.N_WARN
N_TYPE: int = _c.N_TYPE
N_STAB: int = _c.N_STAB

# page protections (sys/vm/vm.h)
VM_PROT_NONE: int = _c.VM_PROT_NONE
VM_PROT_READ: int = _c.VM_PROT_READ
VM_PROT_WRITE: int = _c.VM_PROT_WRITE
VM_PROT_EXECUTE: int = _c.VM_PROT_EXECUTE

__all__ = [
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
    "SWIF_DEV_PREFIX",
    "VM_PROT_EXECUTE",
    "VM_PROT_NONE",
    "VM_PROT_READ",
    "VM_PROT_WRITE",
    "VRS_KEY",
    "VRS_SYM",
    "_POSIX2_LINE_MAX",
]
