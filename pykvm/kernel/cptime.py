"""``kvm_getcptime`` on dumps (lib/libkvm/kvm_cptime.c; kernel-data.md 5)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import errors as E
from ..constants import CPUSTATES
from ..errors import KvmError
from ._common import (
    byteorder,
    check_native,
    current_error,
    fail,
    honours_strict,
    ptrsize,
    read_bytes,
)
from .pcpu import getmaxcpu, pcpu_view

if TYPE_CHECKING:
    from ..kvm import Kvm


@honours_strict
def getcptime(kd: Kvm, *, strict: bool = False) -> list[int]:
    """``kvm_getcptime``: the five ``long`` counters (user, nice, system, interrupt, idle).

    From the old ``cp_time`` array when the kernel has one, else the sum of every
    present CPU's ``pc_cp_time``.  Raises :class:`~pykvm.errors.KvmError` with
    ``cannot read cp_time array``, a per-CPU text (section 6), or (strict)
    ``cannot read cp_time from non-native core``.
    """
    check_native(kd, strict, E.CPTIME_NON_NATIVE)
    res = kd.nlist2(["_cp_time"])
    if res.missing < 0:
        raise current_error(kd, E.NLIST_FAILED)
    addr = res["_cp_time"].value
    lsize = ptrsize(kd)
    if addr != 0:
        raw = read_bytes(kd, addr, CPUSTATES * lsize)
        if raw is None:
            raise fail(kd, E.CPTIME_READ)
        order = byteorder(kd)
        return [int.from_bytes(raw[i * lsize:(i + 1) * lsize], order, signed=True)
                for i in range(CPUSTATES)]
    maxcpu = getmaxcpu(kd, strict=strict)
    total = [0] * CPUSTATES
    lmask = (1 << (8 * lsize)) - 1
    half = 1 << (8 * lsize - 1)

    def signed() -> list[int]:
        return [v - (1 << (8 * lsize)) if v >= half else v for v in total]

    for cpu in range(maxcpu):
        try:
            view = pcpu_view(kd, cpu, strict=strict)
        except KvmError as exc:
            exc.partial = signed()  # libkvm zeroed cp_time, then added the CPUs before
            raise
        if view is None:
            continue
        for k, v in enumerate(tuple(view.pc_cp_time)[:CPUSTATES]):
            total[k] = (total[k] + int(v)) & lmask
    return signed()
