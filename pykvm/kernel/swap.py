"""``kvm_getswapinfo`` on dumps (lib/libkvm/kvm_getswapinfo.c; kernel-data.md 4)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from .. import errors as E
from ..abi.kvm_swap import pack as pack_kvm_swap
from ..constants import (
    NFS_SWAP_NAME,
    PATH_DEV,
    SWAP_DEVNAME_LEN,
    SWIF_DEV_PREFIX,
    VCHR,
)
from ..errors import KvmError
from ._common import (
    byteorder,
    cache,
    check_native,
    current_error,
    fail,
    honours_strict,
    ptrsize,
    read_bytes,
    read_int,
    struct_at,
)

if TYPE_CHECKING:
    from ..image.layout import StructView
    from ..kvm import Kvm

#: pykvm's bound on the swap device list (a cyclic ``swtailq`` would hang libkvm)
MAX_SWAP_DEVICES = 4096
_KEY = "swap.dmmax"


@dataclass(frozen=True)
class KvmSwap:
    """One ``struct kvm_swap`` (values in pages; ``used``/``total`` as the ``u_int`` C
    stores)."""

    devname: str
    used: int
    total: int
    flags: int

    def pack(self, order: Literal["little", "big"] = "little") -> bytes:
        """The 52 bytes of ``struct kvm_swap`` in byte order ``order`` (the layout is
        :data:`pykvm.abi.kvm_swap.KVM_SWAP`)."""
        return pack_kvm_swap(self.devname.encode(errors="surrogateescape"), self.used,
                             self.total, self.flags, order == "big")


def swap_bytes(kd: Kvm, records: list[KvmSwap]) -> bytes:
    """The records as libkvm's ``swap_ary`` (52 bytes each) in the dump's byte order."""
    order = byteorder(kd)
    return b"".join(r.pack(order) for r in records)


def _cint(v: int) -> int:
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v & 0x80000000 else v


def _dev_name(kd: Kvm, sw: StructView, dev: int, flags: int, strict: bool) -> str:
    """``GETSWDEVNAME``: ``[NFS swap]`` for NODEV, else the name (pykvm: from the dump)."""
    size = sw.layout.member("sw_dev").size or 8
    if dev == (1 << (8 * size)) - 1:
        name = NFS_SWAP_NAME
    else:
        prefix = PATH_DEV if flags & SWIF_DEV_PREFIX else ""
        name = prefix + (_dump_devname(kd, sw, strict) or ("#C:" + (hex(dev) if dev else "0")))
    return name.encode(errors="surrogateescape")[:SWAP_DEVNAME_LEN - 1].decode(
        errors="surrogateescape")


def _dump_devname(kd: Kvm, sw: StructView, strict: bool) -> str | None:
    """``sw_vp->v_rdev->si_name`` when ``sw_vp`` is a disk vnode (Appendix B row 4)."""
    if strict or not sw.has("sw_vp") or int(sw.sw_vp) == 0:
        return None
    try:
        vp = struct_at(kd, "vnode", int(sw.sw_vp))
        if vp is None or int(vp.v_type) != VCHR:
            return None
        rdev = vp.get("v_rdev") if vp.has("v_rdev") else vp.get("v_un.vu_cdev")
        if rdev is None or int(rdev) == 0:
            return None
        cdev = struct_at(kd, "cdev", int(rdev))
        if cdev is None:
            return None
        return bytes(cdev.si_name).decode(errors="surrogateescape")
    except KvmError:
        return None


def _dmmax(kd: Kvm, values: dict[str, int], strict: bool) -> int:
    c = cache(kd)
    if values["_dmmax"] == 0:
        if strict:
            raise fail(kd, E.SWAP_NO_DMMAX)
        # Appendix B row 3: FreeBSD >= 12 has no dmmax; vm.dmmax reports nsw_cluster_max
        res = kd.nlist2(["_nsw_cluster_max"])
        addr = res["_nsw_cluster_max"].value
        got = read_int(kd, addr, 4, signed=True) if addr else None
        return got if got is not None else 0
    if _KEY in c:
        return int(c[_KEY])
    got = read_int(kd, values["_dmmax"], 4, signed=True)
    if got is None:
        kd.err(kd.program, E.SWAP_READ_DMMAX)  # recorded; libkvm goes on with 0
        return 0
    c[_KEY] = got
    return got


@honours_strict
def getswapinfo(kd: Kvm, maxswap: int, flags: int = 0, *,
                strict: bool = False) -> list[KvmSwap]:
    """``kvm_getswapinfo``: one record per swap device (at most ``maxswap - 1``) and the
    total row last, in pages; the list has libkvm's return value + 1 entries (empty for
    ``maxswap <= 0``).

    ``flags`` may hold ``SWIF_DEV_PREFIX`` (names prefixed with ``/dev/``).  Raises
    :class:`~pykvm.errors.KvmError` with ``unable to find swtailq``, ``unable to find
    dmmax`` (strict only: by default ``nsw_cluster_max`` replaces the missing ``dmmax``),
    ``cannot read _swtailq``, ``cannot read swinfo``, pykvm's cycle text, or (strict)
    ``cannot read swapinfo from non-native core``.
    """
    check_native(kd, strict, E.SWAP_NON_NATIVE)
    res = kd.nlist2(["_swtailq", "_dmmax"])
    if res.missing < 0:
        raise current_error(kd, E.NLIST_FAILED)
    values = {e.name: e.value for e in res.entries}
    if values["_swtailq"] == 0:
        raise fail(kd, E.SWAP_NO_SWTAILQ)
    dmmax = _dmmax(kd, values, strict)
    psize = ptrsize(kd)
    head = read_bytes(kd, values["_swtailq"], 2 * psize)
    if head is None:
        raise fail(kd, E.SWAP_READ_SWTAILQ)
    sp = int.from_bytes(head[:psize], byteorder(kd))
    rows: list[KvmSwap] = []
    tot_used = tot_total = 0
    n = 0
    seen: set[int] = set()
    while sp != 0:
        if sp in seen or n >= MAX_SWAP_DEVICES:
            err = fail(kd, E.cformat(E.SWAP_CYCLE, MAX_SWAP_DEVICES))
            err.partial = list(rows)
            raise err
        seen.add(sp)
        sw = struct_at(kd, "swdevt", sp)
        if sw is None:
            err = fail(kd, E.SWAP_READ_SWINFO)
            err.partial = list(rows)  # the rows libkvm had already stored in swap_ary
            raise err
        ttl = _cint(int(sw.sw_nblks) - dmmax)
        used = _cint(int(sw.sw_used))
        if n < maxswap - 1:
            dev = int(sw.sw_dev)
            rows.append(KvmSwap(_dev_name(kd, sw, dev, flags, strict), used & 0xFFFFFFFF,
                                ttl & 0xFFFFFFFF, _cint(int(sw.sw_flags))))
        tot_total = (tot_total + ttl) & 0xFFFFFFFF
        tot_used = (tot_used + used) & 0xFFFFFFFF
        n += 1
        sp = int(sw["sw_list.tqe_next"])
    i = min(n, maxswap - 1)
    if i < 0:
        return []
    return rows[:i] + [KvmSwap("", tot_used, tot_total, 0)]
