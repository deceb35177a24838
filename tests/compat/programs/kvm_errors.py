#!/usr/bin/env python3
"""kvm_errors: libkvm's error paths, as a ctypes program sees them.

usage: kvm_errors.py [kernel core hole-address]

Opens a nonexistent core with kvm_openfiles (the text lands in a create_string_buffer),
with kvm_open2 and a NULL errbuf (nothing anywhere), with kvm_open and an errstr (libkvm
prints "errstr: text" on stderr); calls kvm_close(NULL) (-1, errno EINVAL) and
kvm_geterr(NULL) ("").  Given a kernel and core it also shows that a successful open
leaves errbuf alone, then fails a read, a write, and an open with bad flags.
"""

# ruff: noqa: UP031 - written the way FreeBSD's Python tools are: printf-style formats

import ctypes
import ctypes.util
import errno
import sys

O_RDONLY, O_WRONLY = 0, 1

lib = ctypes.CDLL(ctypes.util.find_library("kvm"), use_errno=True)
for name in ("kvm_open", "kvm_openfiles"):
    f = getattr(lib, name)
    f.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_int,
                  ctypes.c_char_p]
    f.restype = ctypes.c_void_p
resolver_t = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_char_p, ctypes.POINTER(ctypes.c_uint64))
lib.kvm_open2.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                          resolver_t]
lib.kvm_open2.restype = ctypes.c_void_p
lib.kvm_close.argtypes = [ctypes.c_void_p]
lib.kvm_close.restype = ctypes.c_int
lib.kvm_geterr.argtypes = [ctypes.c_void_p]
lib.kvm_geterr.restype = ctypes.c_char_p
lib.kvm_read.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.c_void_p, ctypes.c_size_t]
lib.kvm_read.restype = ctypes.c_ssize_t
lib.kvm_write.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.c_void_p, ctypes.c_size_t]
lib.kvm_write.restype = ctypes.c_ssize_t


def show(label, value):
    print("%s: %r" % (label, value))
    sys.stdout.flush()


def main(argv):
    errbuf = ctypes.create_string_buffer(2048)
    kd = lib.kvm_openfiles(None, b"/nonexistent", None, O_RDONLY, errbuf)
    show("kvm_openfiles", (kd, errbuf.value))

    errbuf.value = b""
    kd = lib.kvm_open2(None, b"/nonexistent", O_RDONLY, None, resolver_t())
    show("kvm_open2 NULL errbuf", (kd, errbuf.value))

    kd = lib.kvm_open(None, b"/nonexistent", None, O_RDONLY, b"kvm_errors")
    sys.stderr.flush()
    show("kvm_open", kd)

    ctypes.set_errno(0)
    rv = lib.kvm_close(None)
    show("kvm_close(NULL)", (rv, errno.errorcode.get(ctypes.get_errno())))
    show("kvm_geterr(NULL)", lib.kvm_geterr(None))

    if len(argv) == 4:
        kernel, core, hole = argv[1].encode(), argv[2].encode(), int(argv[3], 0)
        errbuf.value = b"untouched"
        kd = lib.kvm_openfiles(kernel, core, None, O_RDONLY, errbuf)
        show("open", (bool(kd), errbuf.value, lib.kvm_geterr(kd)))
        buf = ctypes.create_string_buffer(16)
        show("kvm_read hole", (lib.kvm_read(kd, hole, buf, 16), lib.kvm_geterr(kd)))
        show("kvm_write", (lib.kvm_write(kd, hole, buf, 16), lib.kvm_geterr(kd)))
        show("kvm_close", lib.kvm_close(kd))
        kd = lib.kvm_open2(kernel, core, O_WRONLY, errbuf, resolver_t())
        show("kvm_open2 O_WRONLY", (kd, errbuf.value))
        kd = lib.kvm_open(kernel, core, None, 3, b"kvm_errors")
        sys.stderr.flush()
        show("kvm_open flags 3", kd)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
