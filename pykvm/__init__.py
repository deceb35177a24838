"""pykvm: FreeBSD's libkvm (kvm(3)) in pure Python, for crash dumps on any host.

The public API mirrors libkvm's descriptor calls::

    import pykvm
    with pykvm.openfiles("kernel", "vmcore.0") as kd:
        nl = kd.nlist2(["version"])
        print(kd.read(nl["version"].value, 80))

See :mod:`pykvm.kvm` for the calls, :mod:`pykvm.kernel` for the kernel-data calls
(also descriptor methods: ``kd.getprocs(pykvm.KERN_PROC_PROC)``), :mod:`pykvm.abi` for
the C records, :mod:`pykvm.errors` for the error texts and :mod:`pykvm.synth` for
synthetic kernels and dumps.
"""

from __future__ import annotations

from .arch.base import KvmPage
from .constants import (
    KERN_PROC_ALL,
    KERN_PROC_GID,
    KERN_PROC_INC_THREAD,
    KERN_PROC_PGRP,
    KERN_PROC_PID,
    KERN_PROC_PROC,
    KERN_PROC_RGID,
    KERN_PROC_RUID,
    KERN_PROC_SESSION,
    KERN_PROC_TTY,
    KERN_PROC_UID,
    LIBKVM_WALK_PAGES_VERSION,
    O_RDONLY,
    O_RDWR,
    O_WRONLY,
    SWIF_DEV_PREFIX,
    VM_PROT_EXECUTE,
    VM_PROT_NONE,
    VM_PROT_READ,
    VM_PROT_WRITE,
)
from .errors import (
    FaultError,
    FormatError,
    KvmError,
    LiveUnsupportedError,
    NotNativeError,
    SymbolError,
)
from .kvm import (
    DumpInfo,
    Kvm,
    NlistEntry,
    NlistResult,
    open,
    open2,
    openfiles,
    symtab_resolver,
)

__version__ = "0.1.0"

__all__ = [
    "DumpInfo",
    "FaultError",
    "FormatError",
    "Kvm",
    "KvmError",
    "KERN_PROC_ALL",
    "KERN_PROC_GID",
    "KERN_PROC_INC_THREAD",
    "KERN_PROC_PGRP",
    "KERN_PROC_PID",
    "KERN_PROC_PROC",
    "KERN_PROC_RGID",
    "KERN_PROC_RUID",
    "KERN_PROC_SESSION",
    "KERN_PROC_TTY",
    "KERN_PROC_UID",
    "KvmPage",
    "LIBKVM_WALK_PAGES_VERSION",
    "LiveUnsupportedError",
    "NlistEntry",
    "NlistResult",
    "NotNativeError",
    "O_RDONLY",
    "O_RDWR",
    "O_WRONLY",
    "SWIF_DEV_PREFIX",
    "SymbolError",
    "VM_PROT_EXECUTE",
    "VM_PROT_NONE",
    "VM_PROT_READ",
    "VM_PROT_WRITE",
    "open",
    "open2",
    "openfiles",
    "symtab_resolver",
    "__version__",
]
