#!/usr/bin/env python3
"""kvm_ps: a tiny ps(1) + swapinfo + uptime over a crash dump, through libkvm.

usage: kvm_ps.py kernel core

Lists the processes (kvm_getprocs KERN_PROC_PROC) as PID, PPID, UID and command, the
swap devices (kvm_getswapinfo with SWIF_DEV_PREFIX; libkvm's text when it fails), and
the load averages (kvm_getloadavg).  Written as a FreeBSD Python tool is: ctypes over
libkvm.so.7 with its own prefix of struct kinfo_proc (sys/sys/user.h, LP64).
"""

# ruff: noqa: UP031 - written the way FreeBSD's Python tools are: printf-style formats

import ctypes
import ctypes.util
import sys

O_RDONLY = 0
KERN_PROC_PROC = 8
SWIF_DEV_PREFIX = 0x0002
KINFO_PROC_SIZE = 1088  # sys/amd64/include/proc.h
KI_COMM_OFFSET = 447  # offsetof(struct kinfo_proc, ki_comm) on LP64
COMMLEN = 19


class kinfo_proc_head(ctypes.Structure):
    """The first members of struct kinfo_proc (LP64), up to ki_uid."""

    _fields_ = [
        ("ki_structsize", ctypes.c_int),
        ("ki_layout", ctypes.c_int),
        ("ki_args", ctypes.c_void_p),
        ("ki_paddr", ctypes.c_void_p),
        ("ki_addr", ctypes.c_void_p),
        ("ki_tracep", ctypes.c_void_p),
        ("ki_textvp", ctypes.c_void_p),
        ("ki_fd", ctypes.c_void_p),
        ("ki_vmspace", ctypes.c_void_p),
        ("ki_wchan", ctypes.c_void_p),
        ("ki_pid", ctypes.c_int),
        ("ki_ppid", ctypes.c_int),
        ("ki_pgid", ctypes.c_int),
        ("ki_tpgid", ctypes.c_int),
        ("ki_sid", ctypes.c_int),
        ("ki_tsid", ctypes.c_int),
        ("ki_jobc", ctypes.c_short),
        ("ki_spare_short1", ctypes.c_short),
        ("ki_tdev_freebsd11", ctypes.c_uint32),
        ("ki_siglist", ctypes.c_uint32 * 4),
        ("ki_sigmask", ctypes.c_uint32 * 4),
        ("ki_sigignore", ctypes.c_uint32 * 4),
        ("ki_sigcatch", ctypes.c_uint32 * 4),
        ("ki_uid", ctypes.c_uint32),
    ]


class kvm_swap(ctypes.Structure):
    _fields_ = [
        ("ksw_devname", ctypes.c_char * 32),
        ("ksw_used", ctypes.c_uint),
        ("ksw_total", ctypes.c_uint),
        ("ksw_flags", ctypes.c_int),
        ("ksw_reserved1", ctypes.c_uint),
        ("ksw_reserved2", ctypes.c_uint),
    ]


lib = ctypes.CDLL(ctypes.util.find_library("kvm"))
lib.kvm_openfiles.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p,
                              ctypes.c_int, ctypes.c_char_p]
lib.kvm_openfiles.restype = ctypes.c_void_p
lib.kvm_close.argtypes = [ctypes.c_void_p]
lib.kvm_geterr.argtypes = [ctypes.c_void_p]
lib.kvm_geterr.restype = ctypes.c_char_p
lib.kvm_getprocs.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int,
                             ctypes.POINTER(ctypes.c_int)]
lib.kvm_getprocs.restype = ctypes.c_void_p
lib.kvm_getswapinfo.argtypes = [ctypes.c_void_p, ctypes.POINTER(kvm_swap), ctypes.c_int,
                                ctypes.c_int]
lib.kvm_getloadavg.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_double),
                               ctypes.c_int]


def main(argv):
    errbuf = ctypes.create_string_buffer(2048)
    kd = lib.kvm_openfiles(argv[1].encode(), argv[2].encode(), None, O_RDONLY, errbuf)
    if not kd:
        sys.stderr.write("kvm_openfiles: %s\n" % errbuf.value.decode())
        return 1
    cnt = ctypes.c_int(0)
    base = lib.kvm_getprocs(kd, KERN_PROC_PROC, 0, ctypes.byref(cnt))
    if not base:
        sys.stderr.write("kvm_getprocs: %s\n" % lib.kvm_geterr(kd).decode())
        return 1
    print("%5s %5s %5s %s" % ("PID", "PPID", "UID", "COMMAND"))
    for i in range(cnt.value):
        rec = base + i * KINFO_PROC_SIZE
        kp = kinfo_proc_head.from_address(rec)
        comm = ctypes.string_at(rec + KI_COMM_OFFSET, COMMLEN).split(b"\0")[0]
        print("%5d %5d %5d %s" % (kp.ki_pid, kp.ki_ppid, kp.ki_uid, comm.decode()))

    swaps = (kvm_swap * 16)()
    n = lib.kvm_getswapinfo(kd, swaps, 16, SWIF_DEV_PREFIX)
    if n < 0:
        print("kvm_getswapinfo: %s" % lib.kvm_geterr(kd).decode())
    else:
        for i in range(n + 1):
            name = swaps[i].ksw_devname.decode() if i < n else "Total"
            print("%-16s %9d %9d" % (name, swaps[i].ksw_total, swaps[i].ksw_used))

    loadavg = (ctypes.c_double * 3)()
    if lib.kvm_getloadavg(kd, loadavg, 3) == -1:
        print("kvm_getloadavg: %s" % lib.kvm_geterr(kd).decode())
    else:
        print("load averages: %.2f, %.2f, %.2f" % tuple(loadavg))
    lib.kvm_close(kd)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
