#!/usr/bin/env python3
"""resolver: kvm_open2 with a symbol resolver callback, then kvm_nlist2 (ctypes).

usage: resolver.py kernel core name=0xaddr ... -- lookup ...

The resolver, a CFUNCTYPE(c_int, c_char_p, POINTER(kvaddr_t)), answers only the names
given as name=address and logs every name libkvm asks for.  The lookups go through
kvm_nlist2 with an array of struct kvm_nlist; the program then says whether the dump is
native, reads 16 bytes at each symbol found with kvm_read2 (a resolver is how libkvm
reads dumps of other architectures) and tries the a.out kvm_nlist.
"""

# ruff: noqa: UP031 - written the way FreeBSD's Python tools are: printf-style formats

import ctypes
import ctypes.util
import sys

kvaddr_t = ctypes.c_uint64


class kvm_nlist(ctypes.Structure):
    _fields_ = [("n_name", ctypes.c_char_p), ("n_type", ctypes.c_ubyte),
                ("n_value", kvaddr_t)]


resolver_t = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_char_p, ctypes.POINTER(kvaddr_t))
lib = ctypes.CDLL("libkvm.so.7")
lib.kvm_open2.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                          resolver_t]
lib.kvm_open2.restype = ctypes.c_void_p
lib.kvm_nlist2.argtypes = [ctypes.c_void_p, ctypes.POINTER(kvm_nlist)]
lib.kvm_close.argtypes = [ctypes.c_void_p]
lib.kvm_native.argtypes = [ctypes.c_void_p]
lib.kvm_read2.argtypes = [ctypes.c_void_p, kvaddr_t, ctypes.c_void_p, ctypes.c_size_t]
lib.kvm_read2.restype = ctypes.c_ssize_t
lib.kvm_geterr.argtypes = [ctypes.c_void_p]
lib.kvm_geterr.restype = ctypes.c_char_p


class nlist(ctypes.Structure):
    _fields_ = [("n_name", ctypes.c_char_p), ("n_type", ctypes.c_ubyte),
                ("n_other", ctypes.c_char), ("n_desc", ctypes.c_short),
                ("n_value", ctypes.c_ulong)]


lib.kvm_nlist.argtypes = [ctypes.c_void_p, ctypes.POINTER(nlist)]

table = {}


def resolve(name, addr):
    print("resolve %s" % name.decode())
    if name not in table:
        return 1
    addr[0] = table[name]
    return 0


def main(argv):
    if "--" not in argv or len(argv) < 4:
        sys.stderr.write(__doc__.split("\n\n")[1] + "\n")
        return 2
    sep = argv.index("--")
    for pair in argv[3:sep]:
        name, value = pair.split("=")
        table[name.encode()] = int(value, 0)
    lookups = argv[sep + 1:]
    errbuf = ctypes.create_string_buffer(2048)
    kd = lib.kvm_open2(argv[1].encode(), argv[2].encode(), 0, errbuf, resolve)
    if not kd:
        sys.stderr.write("resolver: %s\n" % errbuf.value.decode())
        return 1
    nl = (kvm_nlist * (len(lookups) + 1))()
    for i, name in enumerate(lookups):
        nl[i].n_name = name.encode()
    rv = lib.kvm_nlist2(kd, nl)
    for e in nl[:len(lookups)]:
        print("%s type 0x%02x value 0x%x" % (e.n_name.decode(), e.n_type, e.n_value))
    print("kvm_nlist2 %d" % rv)
    print("kvm_native %d" % lib.kvm_native(kd))
    buf = ctypes.create_string_buffer(16)
    for e in nl[:len(lookups)]:
        if e.n_type:
            n = lib.kvm_read2(kd, e.n_value, buf, 16)
            print("%s: %d %s" % (e.n_name.decode(), n, buf.raw[:max(n, 0)].hex()))
    aout = (nlist * 2)()
    aout[0].n_name = lookups[0].encode()
    rv = lib.kvm_nlist(kd, aout)
    print("kvm_nlist %d %s" % (rv, lib.kvm_geterr(kd).decode() if rv == -1 else ""))
    lib.kvm_close(kd)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
