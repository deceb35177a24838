"""``struct kvm_swap`` (lib/libkvm/kvm.h): the record ``kvm_getswapinfo`` fills.

52 bytes on every architecture (kernel-data.md 4.1): ``ksw_devname[32]`` then five
32-bit integers, no padding.  :func:`pack` is what ``kvm_getswapinfo_kvm`` leaves in
one ``swap_ary`` slot: the name as ``strlcpy`` copies it (at most 31 bytes, then NULs)
and the reserved words zero.
"""

from __future__ import annotations

import struct
from functools import cache

from .model import Abi, Array, Record, layout, struct_format

__all__ = ["KVM_SWAP", "KVM_SWAP_SIZE", "pack"]

#: ``sizeof(ksw_devname)``
DEVNAME_LEN = 32

#: ``struct kvm_swap``
KVM_SWAP = Record("struct kvm_swap", "KvmSwap", (
    ("ksw_devname", Array("char", DEVNAME_LEN)),
    ("ksw_used", "uint"),
    ("ksw_total", "uint"),
    ("ksw_flags", "int"),
    ("ksw_reserved1", "uint"),
    ("ksw_reserved2", "uint"),
))

#: ``sizeof(struct kvm_swap)`` (the same for every ABI)
KVM_SWAP_SIZE = 52


@cache
def _struct(big_endian: bool) -> struct.Struct:
    # the layout has no ABI-dependent member: any ABI of this byte order will do
    abi = Abi("be" if big_endian else "le", 4, 4, 4, 4, big_endian)
    fmt, _ = struct_format(KVM_SWAP, abi)
    s = struct.Struct(fmt)
    assert s.size == layout(KVM_SWAP, abi).size == KVM_SWAP_SIZE
    return s


def pack(devname: bytes, used: int, total: int, flags: int, abi: Abi | bool) -> bytes:
    """One ``struct kvm_swap`` in the byte order of ``abi`` (or ``big_endian``).

    ``devname`` is truncated to 31 bytes and NUL-padded (``strlcpy`` into a zeroed
    record); integers are stored modulo 2**32.
    """
    big = abi.big_endian if isinstance(abi, Abi) else bool(abi)
    return _struct(big).pack(devname[:DEVNAME_LEN - 1], used & 0xFFFFFFFF,
                             total & 0xFFFFFFFF, flags & 0xFFFFFFFF, 0, 0)
