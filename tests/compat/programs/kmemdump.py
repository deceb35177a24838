#!/usr/bin/env python3
"""kmemdump: hex-dump kernel memory of a crash dump through libkvm (ctypes).

usage: kmemdump.py kernel core symbol|0xaddress nbytes [int]

Looks a symbol up with kvm_nlist, reads nbytes at its address (or at the given
address) with kvm_read into a create_string_buffer and prints 16 bytes a line.  With
"int" it also reads the first 4 bytes into a c_int through byref(), as tools that
read a kernel variable do.  A failing read prints libkvm's error.
"""

# ruff: noqa: UP031 - written the way FreeBSD's Python tools are: printf-style formats

import ctypes
import ctypes.util
import sys

O_RDONLY = 0


class nlist(ctypes.Structure):
    _fields_ = [
        ("n_name", ctypes.c_char_p),
        ("n_type", ctypes.c_ubyte),
        ("n_other", ctypes.c_char),
        ("n_desc", ctypes.c_short),
        ("n_value", ctypes.c_ulong),
    ]


libkvm = ctypes.CDLL(ctypes.util.find_library("kvm"), use_errno=True)
libkvm.kvm_openfiles.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p,
                                 ctypes.c_int, ctypes.c_char_p]
libkvm.kvm_openfiles.restype = ctypes.c_void_p
libkvm.kvm_nlist.argtypes = [ctypes.c_void_p, ctypes.POINTER(nlist)]
libkvm.kvm_read.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.c_void_p,
                            ctypes.c_size_t]
libkvm.kvm_read.restype = ctypes.c_ssize_t
libkvm.kvm_geterr.argtypes = [ctypes.c_void_p]
libkvm.kvm_geterr.restype = ctypes.c_char_p
libkvm.kvm_close.argtypes = [ctypes.c_void_p]


def die(msg):
    sys.stderr.write("kmemdump: %s\n" % msg)
    sys.exit(1)


def main(argv):
    if len(argv) not in (5, 6):
        sys.stderr.write(__doc__.split("\n\n")[1] + "\n")
        return 2
    kernel, core, what, nbytes = argv[1], argv[2], argv[3], int(argv[4], 0)
    errbuf = ctypes.create_string_buffer(2048)
    kd = libkvm.kvm_openfiles(kernel.encode(), core.encode(), None, O_RDONLY, errbuf)
    if kd is None:
        die(errbuf.value.decode())
    if what.startswith("0x"):
        addr = int(what, 16)
    else:
        nl = (nlist * 2)()
        nl[0].n_name = what.encode()
        if libkvm.kvm_nlist(kd, nl) != 0 or nl[0].n_type == 0:
            die("%s: symbol not found" % what)
        addr = nl[0].n_value
    buf = ctypes.create_string_buffer(nbytes)
    n = libkvm.kvm_read(kd, addr, buf, nbytes)
    if n < 0:
        die("kvm_read: %s" % libkvm.kvm_geterr(kd).decode())
    data = buf.raw[:n]
    for off in range(0, len(data), 16):
        print("%016x  %s" % (addr + off, data[off:off + 16].hex(" ")))
    if n != nbytes:
        print("short read: %d of %d" % (n, nbytes))
    if len(argv) == 6 and argv[5] == "int":
        value = ctypes.c_int()
        if libkvm.kvm_read(kd, addr, ctypes.byref(value), ctypes.sizeof(value)) != 4:
            die("kvm_read: %s" % libkvm.kvm_geterr(kd).decode())
        print("int %d" % value.value)
    libkvm.kvm_close(kd)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
