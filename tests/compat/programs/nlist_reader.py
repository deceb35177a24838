#!/usr/bin/env python3
"""nlist_reader: print kernel symbols the way nlist(3)-based FreeBSD tools look them up.

usage: nlist_reader.py [-2] kernel core name ...

Loads libkvm through ctypes (as a FreeBSD Python tool does), opens the dump with
kvm_openfiles and resolves the names with kvm_nlist (struct nlist) or, with -2,
kvm_nlist2 (struct kvm_nlist).  Prints one line per name and the count libkvm returns.
"""

# ruff: noqa: UP031 - written the way FreeBSD's Python tools are: printf-style formats

import ctypes
import ctypes.util
import sys

_POSIX2_LINE_MAX = 2048
O_RDONLY = 0


class nlist(ctypes.Structure):  # <nlist.h>, struct nlist (a.out)
    _fields_ = [
        ("n_name", ctypes.c_char_p),
        ("n_type", ctypes.c_ubyte),
        ("n_other", ctypes.c_char),
        ("n_desc", ctypes.c_short),
        ("n_value", ctypes.c_ulong),
    ]


class kvm_nlist(ctypes.Structure):  # <kvm.h>, struct kvm_nlist
    _fields_ = [
        ("n_name", ctypes.c_char_p),
        ("n_type", ctypes.c_ubyte),
        ("n_value", ctypes.c_uint64),
    ]


lib = ctypes.CDLL(ctypes.util.find_library("kvm"))
lib.kvm_openfiles.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p,
                              ctypes.c_int, ctypes.c_char_p]
lib.kvm_openfiles.restype = ctypes.c_void_p
lib.kvm_nlist.argtypes = [ctypes.c_void_p, ctypes.POINTER(nlist)]
lib.kvm_nlist.restype = ctypes.c_int
lib.kvm_nlist2.argtypes = [ctypes.c_void_p, ctypes.POINTER(kvm_nlist)]
lib.kvm_nlist2.restype = ctypes.c_int
lib.kvm_geterr.argtypes = [ctypes.c_void_p]
lib.kvm_geterr.restype = ctypes.c_char_p
lib.kvm_close.argtypes = [ctypes.c_void_p]
lib.kvm_close.restype = ctypes.c_int


def main(argv):
    two = len(argv) > 1 and argv[1] == "-2"
    if two:
        argv = argv[:1] + argv[2:]
    if len(argv) < 4:
        sys.stderr.write(__doc__.split("\n\n")[1] + "\n")
        return 2
    kernel, core, names = argv[1], argv[2], argv[3:]
    errbuf = ctypes.create_string_buffer(_POSIX2_LINE_MAX)
    kd = lib.kvm_openfiles(kernel.encode(), core.encode(), None, O_RDONLY, errbuf)
    if not kd:
        sys.stderr.write("nlist_reader: %s\n" % errbuf.value.decode())
        return 1
    entry = kvm_nlist if two else nlist
    nl = (entry * (len(names) + 1))()
    for i, name in enumerate(names):
        nl[i].n_name = name.encode()
    rv = (lib.kvm_nlist2 if two else lib.kvm_nlist)(kd, nl)
    if rv == -1:
        sys.stderr.write("nlist_reader: kvm_nlist: %s\n" % lib.kvm_geterr(kd).decode())
        lib.kvm_close(kd)
        return 1
    for e in nl[:len(names)]:
        extra = "" if two else " other %d desc %d" % (ord(e.n_other), e.n_desc)
        print("%-20s type 0x%02x value 0x%016x%s"
              % (e.n_name.decode(), e.n_type, e.n_value, extra))
    print("missing %d" % rv)
    return 0 if lib.kvm_close(kd) == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
