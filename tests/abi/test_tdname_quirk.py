"""``ki_tdname`` keeps an earlier thread's longer name after the NUL (kernel-data.md 1.9
quirk 6): the packed records of a synthetic dump whose kernel process has the threads
``swapper``, ``thread taskq``, ``softirq_0`` (in that order)."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from pykvm import kvm as K
from pykvm.abi import kinfo_proc
from pykvm.constants import KERN_PROC_ALL, KERN_PROC_PROC
from pykvm.kernel import procs
from pykvm.synth import SynthDump, build_amd64

#: amd64 offsets from kernel-data.md 10.2 (hand-copied): ki_tid, ki_tdname[17]
KI_TID = 600
KI_TDNAME = 394


@pytest.fixture(scope="module")
def dump(tmp_path_factory: pytest.TempPathFactory) -> SynthDump:
    d: Path = tmp_path_factory.mktemp("tdname")
    return build_amd64(d, seed=7, fmt="minidump-v3", types="ctf-v3", era="14",
                       small_kva=True)


def test_tail_survives(dump: SynthDump) -> None:
    kdata = dump.truth.kernel_data
    assert kdata is not None
    kernel = next(p for p in kdata.procs if p.pid == 0)
    assert [t.name for t in kernel.threads] == ["swapper", "thread taskq", "softirq_0"]
    with K.open2(dump.kernel, dump.core) as kd:
        recs = [r for r in procs.getprocs(kd, KERN_PROC_ALL) if r.pid == 0]
        raw = kinfo_proc.records_bytes(kd, recs)
    size = 1088
    got = [(struct.unpack_from("<i", raw, k * size + KI_TID)[0],
            raw[k * size + KI_TDNAME:k * size + KI_TDNAME + 17]) for k in range(len(recs))]
    # strlcpy over the previous thread's array; worked out by hand
    assert got == [
        (kernel.threads[0].tid, b"swapper" + bytes(10)),
        (kernel.threads[1].tid, b"thread taskq" + bytes(5)),
        (kernel.threads[2].tid, b"softirq_0\0kq" + bytes(5)),
    ]
    # the Python records keep the clean names; only the third carries the raw array
    assert [r.tdname for r in recs] == [b"swapper", b"thread taskq", b"softirq_0"]
    assert [r.extra.get("tdname_raw") for r in recs] == [None, None,
                                                         b"softirq_0\0kq" + bytes(5)]


def test_one_record_per_process_has_no_tail(dump: SynthDump) -> None:
    with K.open2(dump.kernel, dump.core) as kd:
        recs = procs.getprocs(kd, KERN_PROC_PROC)
    assert all("tdname_raw" not in r.extra for r in recs)
