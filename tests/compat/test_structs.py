"""The ctypes records of libkvm, per FreeBSD ABI, against offsets worked out by hand.

Every number below is copied from api.md 1.3-1.6 and kernel-data.md 4.1 / 10.2 or
worked out by hand with the C rules of the target (noted next to it); none is computed
from the classes under test.
"""

from __future__ import annotations

import ctypes
import struct
import sys

import libkvm
import pytest
from libkvm.abi import ABIS, Abi, abi, structures
from spec_kinfo_proc import TABLE as KINFO_PROC_TABLE


def layout(cls: type[ctypes.Structure]) -> dict[str, tuple[int, int]]:
    """Named fields (padding left out) -> (offset, size)."""
    out = {}
    for name, *_ in cls._fields_:
        if not name.startswith("_pad"):
            f = getattr(cls, name)
            out[name] = (f.offset, f.size)
    return out


# ----------------------------------------------------------------- small records
# struct nlist (a.out): n_name, n_type (u_char), n_other (char), n_desc (short),
# n_value (u_long).  LP64: api.md 1.4 gives 0/8/9/10/16, size 24.  ILP32: the pointer
# is 4 bytes, so n_type 4, n_other 5, n_desc 6 (2-aligned), n_value 8 (4-aligned), 12.
NLIST_LP64 = {"n_name": (0, 8), "n_type": (8, 1), "n_other": (9, 1), "n_desc": (10, 2),
              "n_value": (16, 8)}
NLIST_ILP32 = {"n_name": (0, 4), "n_type": (4, 1), "n_other": (5, 1), "n_desc": (6, 2),
               "n_value": (8, 4)}
# struct kvm_nlist: LP64 api.md 1.3 (0/8/16, 24).  ILP32: n_value is kvaddr_t (64-bit):
# 4-aligned on i386 -> 8 anyway (n_type ends at 5, rounded to 8); arm/powerpc 8 -> 8.
KVM_NLIST_LP64 = {"n_name": (0, 8), "n_type": (8, 1), "n_value": (16, 8)}
KVM_NLIST_ILP32 = {"n_name": (0, 4), "n_type": (4, 1), "n_value": (8, 8)}
# struct kvm_page: LP64 api.md 1.5 (0, 8, 16, 24, 32, 40, 48; 56).
KVM_PAGE_LP64 = {"kp_version": (0, 4), "kp_paddr": (8, 8), "kp_kmap_vaddr": (16, 8),
                 "kp_dmap_vaddr": (24, 8), "kp_prot": (32, 1), "kp_offset": (40, 8),
                 "kp_len": (48, 8)}
# i386: 64-bit members 4-aligned: paddr 4, kmap 12, dmap 20, prot 28, offset 32 (29 -> 32),
# len (size_t, 4) 40; size 44.
KVM_PAGE_I386 = {"kp_version": (0, 4), "kp_paddr": (4, 8), "kp_kmap_vaddr": (12, 8),
                 "kp_dmap_vaddr": (20, 8), "kp_prot": (28, 1), "kp_offset": (32, 8),
                 "kp_len": (40, 4)}
# arm / powerpc: 64-bit members 8-aligned: paddr 8, kmap 16, dmap 24, prot 32, offset 40,
# len 48 (4 bytes), size rounded up to 8 -> 56.
KVM_PAGE_ILP32_A8 = {"kp_version": (0, 4), "kp_paddr": (8, 8), "kp_kmap_vaddr": (16, 8),
                     "kp_dmap_vaddr": (24, 8), "kp_prot": (32, 1), "kp_offset": (40, 8),
                     "kp_len": (48, 4)}
# struct kvm_swap: kernel-data.md 4.1, the same everywhere, 52 bytes.
KVM_SWAP = {"ksw_devname": (0, 32), "ksw_used": (32, 4), "ksw_total": (36, 4),
            "ksw_flags": (40, 4), "ksw_reserved1": (44, 4), "ksw_reserved2": (48, 4)}

SMALL = {
    # arch: (nlist, size), (kvm_nlist, size), (kvm_page, size)
    "amd64": ((NLIST_LP64, 24), (KVM_NLIST_LP64, 24), (KVM_PAGE_LP64, 56)),
    "aarch64": ((NLIST_LP64, 24), (KVM_NLIST_LP64, 24), (KVM_PAGE_LP64, 56)),
    "riscv": ((NLIST_LP64, 24), (KVM_NLIST_LP64, 24), (KVM_PAGE_LP64, 56)),
    "powerpc64": ((NLIST_LP64, 24), (KVM_NLIST_LP64, 24), (KVM_PAGE_LP64, 56)),
    "powerpc64le": ((NLIST_LP64, 24), (KVM_NLIST_LP64, 24), (KVM_PAGE_LP64, 56)),
    "i386": ((NLIST_ILP32, 12), (KVM_NLIST_ILP32, 16), (KVM_PAGE_I386, 44)),
    "arm": ((NLIST_ILP32, 12), (KVM_NLIST_ILP32, 16), (KVM_PAGE_ILP32_A8, 56)),
    "powerpc": ((NLIST_ILP32, 12), (KVM_NLIST_ILP32, 16), (KVM_PAGE_ILP32_A8, 56)),
}


@pytest.mark.parametrize("arch", sorted(SMALL))
def test_small_records(arch: str) -> None:
    s = structures(arch)
    (nl, nl_size), (knl, knl_size), (page, page_size) = SMALL[arch]
    assert layout(s.Nlist) == nl
    assert ctypes.sizeof(s.Nlist) == nl_size
    assert layout(s.KvmNlist) == knl
    assert ctypes.sizeof(s.KvmNlist) == knl_size
    assert layout(s.KvmPage) == page
    assert ctypes.sizeof(s.KvmPage) == page_size
    assert layout(s.KvmSwap) == KVM_SWAP
    assert ctypes.sizeof(s.KvmSwap) == 52


# ------------------------------------------------------------------ kinfo_proc
# kernel-data.md 10.2, row by row: name, amd64 (off, size), i386 (off, size),
# arm/powerpc 32-bit (off, size).
KINFO_PROC = KINFO_PROC_TABLE
COLUMN = {"amd64": 1, "i386": 3, "arm": 5}
# which column of the table each ABI follows, and its KINFO_PROC_SIZE (10.3)
KINFO_ARCHES = {
    "amd64": ("amd64", 1088), "aarch64": ("amd64", 1088), "riscv": ("amd64", 1088),
    "powerpc64": ("amd64", 1088), "powerpc64le": ("amd64", 1088),
    "mips64": ("amd64", 1088), "i386": ("i386", 768), "arm": ("arm", 816),
    "armeb": ("arm", 816), "powerpc": ("arm", 816), "mips": ("arm", 816),
}


@pytest.mark.parametrize("arch", sorted(KINFO_ARCHES))
def test_kinfo_proc(arch: str) -> None:
    column, size = KINFO_ARCHES[arch]
    col = COLUMN[column]
    expected = {row[0]: (row[col], row[col + 1]) for row in KINFO_PROC}
    kp = structures(arch).KinfoProc
    assert layout(kp) == expected
    assert ctypes.sizeof(kp) == size
    assert libkvm.abi.KINFO_PROC_SIZES[arch] == size


# sub-records (kernel-data.md 10.2, "Sub-structures")
TIMEVAL = {"amd64": ({"tv_sec": (0, 8), "tv_usec": (8, 8)}, 16),
           "i386": ({"tv_sec": (0, 4), "tv_usec": (4, 4)}, 8),
           "arm": ({"tv_sec": (0, 8), "tv_usec": (8, 4)}, 16)}
RUSAGE_LONGS = ("ru_maxrss", "ru_ixrss", "ru_idrss", "ru_isrss", "ru_minflt", "ru_majflt",
                "ru_nswap", "ru_inblock", "ru_oublock", "ru_msgsnd", "ru_msgrcv",
                "ru_nsignals", "ru_nvcsw", "ru_nivcsw")
# (stime offset, first long, long size, total)
RUSAGE = {"amd64": (16, 32, 8, 144), "i386": (8, 16, 4, 72), "arm": (16, 32, 4, 88)}


@pytest.mark.parametrize("arch", ["amd64", "i386", "arm", "powerpc"])
def test_sub_records(arch: str) -> None:
    column = KINFO_ARCHES[arch][0]
    s = structures(arch)
    fields, size = TIMEVAL[column]
    assert layout(s.Timeval) == fields
    assert ctypes.sizeof(s.Timeval) == size
    stime, first, lsize, total = RUSAGE[column]
    expected = {"ru_utime": (0, size), "ru_stime": (stime, size)}
    expected.update({name: (first + i * lsize, lsize) for i, name in enumerate(RUSAGE_LONGS)})
    assert layout(s.Rusage) == expected
    assert ctypes.sizeof(s.Rusage) == total
    assert layout(s.Priority) == {"pri_class": (0, 1), "pri_level": (1, 1),
                                  "pri_native": (2, 1), "pri_user": (3, 1)}
    assert layout(s.Sigset) == {"__bits": (0, 16)}


# ------------------------------------------------------------------ byte order
def test_big_endian_bytes() -> None:
    s = structures("powerpc64")
    kp = s.KinfoProc()
    kp.ki_structsize = 1088
    kp.ki_pid = 0x01020304
    kp.ki_runtime = 0x1122334455667788
    kp.ki_start.tv_usec = 5
    kp.ki_comm = b"init"
    raw = bytes(kp)
    assert raw[0:4] == bytes.fromhex("00000440")
    assert raw[72:76] == bytes.fromhex("01020304")
    assert raw[328:336] == bytes.fromhex("1122334455667788")
    assert raw[336 + 8:336 + 16] == struct.pack(">q", 5)
    assert raw[447:452] == b"init\0"
    swap = s.KvmSwap(b"ada0p3", 10, 20, 1)
    assert bytes(swap) == b"ada0p3".ljust(32, b"\0") + struct.pack(">IIiII", 10, 20, 1, 0, 0)


def test_powerpc32_and_i386_bytes() -> None:
    kp = structures("powerpc").KinfoProc()
    kp.ki_flag = -2
    kp.ki_tdflags = 7
    raw = bytes(kp)
    assert len(raw) == 816
    assert raw[312:316] == struct.pack(">i", -2)
    assert raw[812:816] == struct.pack(">i", 7)
    page = structures("i386").KvmPage(2, 0x1_0000_2000, 0xC0001000, 0, 3, -1, 4096)
    assert bytes(page) == struct.pack("<IQQQBxxxqI", 2, 0x1_0000_2000, 0xC0001000, 0, 3,
                                      -1, 4096)


def test_amd64_page_bytes() -> None:
    page = structures("amd64").KvmPage(2, 0x2000, 0xFFFFFFFF80202000, 0xFFFFF80000002000,
                                       5, 8192, 4096)
    assert bytes(page) == struct.pack("<I4xQQQB7xqQ", 2, 0x2000, 0xFFFFFFFF80202000,
                                      0xFFFFF80000002000, 5, 8192, 4096)


# ---------------------------------------------------------------- ABIs, host
def test_abi_names() -> None:
    assert abi("x86_64") is ABIS["amd64"]
    assert abi("arm64") is ABIS["aarch64"]
    assert abi("ppc64le") is ABIS["powerpc64le"]
    assert abi(None) is libkvm.host_abi()
    assert abi("host") is libkvm.host_abi()
    with pytest.raises(ValueError, match="unknown FreeBSD ABI"):
        abi("vax")
    custom = Abi("toy", 4, 4, 4, 4, True)
    assert ctypes.sizeof(structures(custom).KinfoProc) == 768
    assert structures("amd64") is structures("x86_64")


def test_host_records_are_the_module_classes() -> None:
    host = structures()
    assert libkvm.Nlist is host.Nlist
    assert libkvm.KvmNlist is host.KvmNlist
    assert libkvm.KvmPage is host.KvmPage
    assert libkvm.KvmSwap is host.KvmSwap
    assert libkvm.KinfoProc is host.KinfoProc
    # a name is a real char * on the host: it takes bytes
    nl = (libkvm.Nlist * 2)()
    nl[0].n_name = b"_hz"
    assert nl[0].n_name == b"_hz"
    assert nl[1].n_name is None


def test_host_records_match_a_naive_ctypes_definition() -> None:
    """On the host, a ctypes program's own definitions lay out the same bytes."""

    class nlist(ctypes.Structure):
        _fields_ = [("n_name", ctypes.c_char_p), ("n_type", ctypes.c_ubyte),
                    ("n_other", ctypes.c_char), ("n_desc", ctypes.c_short),
                    ("n_value", ctypes.c_ulong)]

    class kvm_page(ctypes.Structure):
        _fields_ = [("kp_version", ctypes.c_uint), ("kp_paddr", ctypes.c_uint64),
                    ("kp_kmap_vaddr", ctypes.c_uint64), ("kp_dmap_vaddr", ctypes.c_uint64),
                    ("kp_prot", ctypes.c_ubyte), ("kp_offset", ctypes.c_int64),
                    ("kp_len", ctypes.c_size_t)]

    if libkvm.host_abi().name == "host":
        pytest.skip("host has no FreeBSD ABI")
    if sys.platform == "win32":
        pytest.skip("LLP64 long")
    assert layout(libkvm.Nlist) == layout(nlist)
    assert ctypes.sizeof(libkvm.Nlist) == ctypes.sizeof(nlist)
    assert layout(libkvm.KvmPage) == layout(kvm_page)
    assert ctypes.sizeof(libkvm.KvmPage) == ctypes.sizeof(kvm_page)


def test_foreign_pointers_are_integers() -> None:
    host = libkvm.host_abi()
    other = "i386" if host.pointer_size == 8 else "amd64"
    nl = structures(other).Nlist()
    nl.n_name = 0x1234
    assert nl.n_name == 0x1234
    be = "powerpc64" if sys.byteorder == "little" else "powerpc64le"
    kp = structures(be).KinfoProc()
    kp.ki_paddr = 0xFFFFF80001234000
    assert kp.ki_paddr == 0xFFFFF80001234000
