"""The symbol and page records of libkvm's API (lib/libkvm/kvm.h, sys/sys/nlist_aout.h).

Member lists only: ``struct nlist`` (a.out, for ``kvm_nlist``), ``struct kvm_nlist``
(``kvm_nlist2``) and ``struct kvm_page`` (``kvm_walk_pages``); api.md 1.3-1.5.  The
compat layer derives its ctypes classes from them.
"""

from __future__ import annotations

from .model import Record

__all__ = ["KVM_NLIST", "KVM_PAGE", "NLIST"]

#: ``struct nlist`` (a.out): ``union { char *n_name; long n_strx; }`` has the size of a
#: pointer, so the member list names the pointer only
NLIST = Record("struct nlist", "Nlist", (
    ("n_name", "cstr"),
    ("n_type", "uchar"),
    ("n_other", "char"),
    ("n_desc", "short"),
    ("n_value", "ulong"),
))

#: ``struct kvm_nlist``
KVM_NLIST = Record("struct kvm_nlist", "KvmNlist", (
    ("n_name", "cstr"),
    ("n_type", "uchar"),
    ("n_value", "uint64"),  # kvaddr_t
))

#: ``struct kvm_page``
KVM_PAGE = Record("struct kvm_page", "KvmPage", (
    ("kp_version", "uint"),
    ("kp_paddr", "uint64"),  # kpaddr_t
    ("kp_kmap_vaddr", "uint64"),  # kvaddr_t
    ("kp_dmap_vaddr", "uint64"),
    ("kp_prot", "uchar"),  # vm_prot_t
    ("kp_offset", "int64"),  # off_t
    ("kp_len", "size_t"),
))
