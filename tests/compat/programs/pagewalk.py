#!/usr/bin/env python3
"""pagewalk: list the pages of a minidump with kvm_walk_pages (libkvm through ctypes).

usage: pagewalk.py kernel core [limit]

The callback is a CFUNCTYPE(c_int, POINTER(struct kvm_page), c_void_p); the closure is
a pointer to a C counter the callback increments.  With a limit the callback returns 0
after that many pages, which stops the walk.
"""

# ruff: noqa: UP031 - written the way FreeBSD's Python tools are: printf-style formats

import ctypes
import ctypes.util
import sys


class kvm_page(ctypes.Structure):  # <kvm.h>, version 2
    _fields_ = [
        ("kp_version", ctypes.c_uint),
        ("kp_paddr", ctypes.c_uint64),
        ("kp_kmap_vaddr", ctypes.c_uint64),
        ("kp_dmap_vaddr", ctypes.c_uint64),
        ("kp_prot", ctypes.c_ubyte),
        ("kp_offset", ctypes.c_int64),
        ("kp_len", ctypes.c_size_t),
    ]


class counter(ctypes.Structure):
    _fields_ = [("seen", ctypes.c_long), ("limit", ctypes.c_long)]


kvm_walk_pages_cb_t = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(kvm_page),
                                       ctypes.c_void_p)

kvm = ctypes.cdll.LoadLibrary("libkvm.so.7")
kvm.kvm_open2.restype = ctypes.c_void_p
kvm.kvm_open2.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                          ctypes.c_void_p]
kvm.kvm_walk_pages.argtypes = [ctypes.c_void_p, kvm_walk_pages_cb_t, ctypes.c_void_p]
kvm.kvm_walk_pages.restype = ctypes.c_int
kvm.kvm_close.argtypes = [ctypes.c_void_p]


@kvm_walk_pages_cb_t
def visit(page, closure):
    c = ctypes.cast(closure, ctypes.POINTER(counter)).contents
    p = page.contents
    if c.limit and c.seen >= c.limit:
        return 0
    c.seen += 1
    print("v%d pa %#x kmap %#x dmap %#x prot %d off %d len %d"
          % (p.kp_version, p.kp_paddr, p.kp_kmap_vaddr, p.kp_dmap_vaddr, p.kp_prot,
             p.kp_offset, p.kp_len))
    return 1


def main(argv):
    if len(argv) not in (3, 4):
        sys.stderr.write(__doc__.split("\n\n")[1] + "\n")
        return 2
    errbuf = ctypes.create_string_buffer(2048)
    kd = kvm.kvm_open2(argv[1].encode(), argv[2].encode(), 0, errbuf, None)
    if not kd:
        sys.stderr.write("pagewalk: %s\n" % errbuf.value.decode())
        return 1
    c = counter(0, int(argv[3]) if len(argv) == 4 else 0)
    rv = kvm.kvm_walk_pages(kd, visit, ctypes.byref(c))
    print("kvm_walk_pages %d, %d pages" % (rv, c.seen))
    kvm.kvm_close(kd)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
