"""Benchmark of ``struct kinfo_proc`` packing (run by ``tox -e bench``).

Target: packing the 20,000 records of a ``kvm_getprocs`` call into the C array costs
well under the walk that produced them: less than 8 microseconds a record (median of
batches, CPU time of this process; about 3.3-5.7 us measured on a quiet 2-core machine).
"""

from __future__ import annotations

import copy
import json
import statistics
import time

import pytest

from pykvm.abi import ABIS, kinfo_proc
from pykvm.kernel.procs import KinfoProc

TARGET_US = 8.0
COUNT = 20_000


def _record(psize: int) -> KinfoProc:
    ptr = 0xFFFFF80001234000 if psize == 8 else 0xC1234000
    return KinfoProc(
        paddr=ptr, args=ptr, textvp=ptr, fd=ptr, pd=ptr, vmspace=ptr, wchan=ptr, pid=123,
        ppid=1, pgid=123, sid=123, tpgid=-1, jobc=-1, tdev=(1 << 64) - 1,
        siglist=(1, 0, 0, 0), sigmask=(2, 0, 0, 0), groups=(0, 5, 20), ngroups=3,
        uid=1001, ruid=1001, size=1 << 22, rssize=400, runtime=123456, flag=0x10004000,
        stat=3, nice=-4, lastcpu=-1, oncpu=-1, lastcpu_old=255, oncpu_old=255,
        tdname=b"sshd", wmesg=b"select\0\0", comm=b"sshd", emul=b"FreeBSD ELF64",
        numthreads=1, tid=100100, pri_level=120, pri_native=120)


@pytest.mark.parametrize("name", ["amd64", "i386", "arm", "powerpc64"])
def test_pack_many_20000(name: str) -> None:
    a = ABIS[name]
    records = [copy.copy(_record(a.pointer_size)) for _ in range(COUNT)]
    kinfo_proc.pack_many(records[:10], a)  # compile the packers
    times = []
    for _ in range(5):
        t0 = time.process_time_ns()
        data = kinfo_proc.pack_many(records, a)
        times.append((time.process_time_ns() - t0) / COUNT / 1000)
    assert len(data) == COUNT * a.kinfo_proc_size
    median = statistics.median(times)
    print(f"\nBENCH kinfo_proc_pack_many {json.dumps({'abi': name, 'us': round(median, 3)})}")
    assert median < TARGET_US
