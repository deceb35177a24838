"""``kvm_getloadavg`` on dumps (lib/libkvm/kvm_getloadavg.c; kernel-data.md 3)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from .. import errors as E
from ._common import check_native, fail, honours_strict, read_int, struct_at

if TYPE_CHECKING:
    from ..kvm import Kvm


def _div(value: int, scale: int) -> float:
    """``(double)value / scale`` with C's IEEE results for a zero scale (no exception)."""
    if scale == 0:
        return math.nan if value == 0 else math.copysign(math.inf, value)
    return value / scale


@honours_strict
def getloadavg(kd: Kvm, nelem: int = 3, *, strict: bool = False) -> list[float]:
    """``kvm_getloadavg``: up to three load averages (1, 5 and 15 minutes).

    Reads ``struct loadavg averunnable``; an ``int fscale`` symbol (old kernels) replaces
    the struct's ``fscale``.  ``nelem`` is clamped to 3; a negative ``nelem`` gives an
    empty list (libkvm returns it unchanged and stores nothing).  Raises
    :class:`~pykvm.errors.KvmError` with ``_averunnable: no such symbol`` or
    ``can't read averunnable`` (and, strict, ``cannot read loadavg from non-native core``).
    """
    check_native(kd, strict, E.LOADAVG_NON_NATIVE)
    res = kd.nlist2(["_averunnable", "_fscale"])
    if res.missing != 0 and not res.found("_averunnable"):
        raise fail(kd, E.cformat(E.NO_SUCH_SYMBOL, "_averunnable"))
    view = struct_at(kd, "loadavg", res["_averunnable"].value)
    if view is None:
        raise fail(kd, E.CANT_READ_AVERUNNABLE)
    ldavg: tuple[int, ...] = tuple(view.ldavg)
    if len(ldavg) < 3:
        raise fail(kd, E.cformat(E.LOADAVG_LAYOUT, len(ldavg)))
    fscale = int(view.fscale)
    if res.found("_fscale"):
        value = read_int(kd, res["_fscale"].value, 4, signed=True)
        if value is not None:
            fscale = value
    nelem = min(nelem, 3)
    return [_div(ldavg[i], fscale) for i in range(max(nelem, 0))]
