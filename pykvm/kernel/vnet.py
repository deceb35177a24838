"""Choosing the VNET that ``vnet_entry_`` symbols relocate into (pykvm extension).

libkvm (lib/libkvm/kvm_vnet.c, kernel-data.md 7.1) selects one virtual network stack
the first time ``kvm_nlist`` leaves names unresolved: on a crash dump always ``vnet0``
(proc0 -> prison0 -> vnet0), on a live kernel the calling process's.  The descriptor
(:meth:`pykvm.kvm.Kvm._vnet_selectpid`) does exactly that.  There is no public libkvm call
to choose another stack; kernel-data.md Appendix B row 6 allows this extension:

* :func:`vnets` lists the kernel's ``struct vnet``s (walking ``vnet_head``) with their
  ``vnet_data_base`` and the jails using each (prisons found through ``prison0``,
  ``allprison`` and the processes' credentials);
* :func:`vnet_select` selects one by ``struct vnet`` address, jail id or pid; later
  ``nlist`` lookups that go through the ``vnet_entry_`` retry give that stack's copy.

Every list is walked with a bound (a seen-set and ``MAX_PROC_WALK``) and structures are
read whole through the layout model.  Failures raise :class:`~pykvm.errors.KvmError`
and store the text (``kd.geterr()``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .. import errors as E
from ..constants import MAX_PROC_WALK, VNET_MAGIC_N
from ._common import fail, fmt, ptrsize, read_int, struct_at

if TYPE_CHECKING:
    from ..image.layout import StructView
    from ..kvm import Kvm


@dataclass(frozen=True)
class VnetInfo:
    """One ``struct vnet`` of the kernel."""

    addr: int
    #: ``vnet_data_base``: a ``vnet_entry_`` symbol's copy is at ``symbol + data_base``
    data_base: int
    #: ``vnet_data_mem``: where this stack's copy of ``set_vnet`` starts
    data_mem: int
    #: ``pr_id`` of the prisons found using this stack (0 is prison0, the host)
    jails: tuple[int, ...]
    #: whether ``vnet_entry_`` lookups currently relocate into this stack
    selected: bool


def _set_bounds(kd: Kvm) -> tuple[int, int, int]:
    """``__start_set_vnet``, ``__stop_set_vnet`` and ``&vnet_head``, as libkvm looks them up
    (one extra leading underscore on the set bounds); raise on a kernel without VIMAGE."""
    names = ["___start_set_vnet", "___stop_set_vnet", "vnet_head"]
    res = kd.nlist2_noinit(names)
    for e in res.entries:
        if e.type == 0 or e.value == 0:
            bare = e.name[1:] if e.name.startswith("_") else e.name
            raise fail(kd, E.cformat(E.VNET_NOT_VIMAGE, bare))
    start, stop, head = (e.value for e in res.entries)
    return start, stop, head


def _symbol(kd: Kvm, name: str) -> int:
    """The value of a kernel symbol, 0 when it is absent."""
    e = kd.nlist2_noinit(["_" + name]).entries[0]
    return e.value if e.type != 0 else 0


def _walk(kd: Kvm, listname: str, first: int, struct: str, link: str) -> Iterator[StructView]:
    """The structures of one kernel list (``first``, then member ``link``), bounded."""
    seen: set[int] = set()
    p = first
    while p != 0:
        if p in seen or len(seen) >= MAX_PROC_WALK:
            raise fail(kd, E.cformat(E.VNET_LIST_CYCLE, listname, MAX_PROC_WALK))
        seen.add(p)
        view = struct_at(kd, struct, p)
        if view is None:
            raise fail(kd, fmt(E.CANT_READ_AT, struct, p))
        yield view
        p = int(view[link])


def _head(kd: Kvm, addr: int, listname: str) -> int:
    """The first pointer of a list head at ``addr`` (``lh_first`` / ``tqh_first``)."""
    first = read_int(kd, addr, ptrsize(kd))
    if first is None:
        raise fail(kd, E.cformat(E.CANT_READ_LIST, listname))
    return first


def _procs(kd: Kvm) -> Iterator[StructView]:
    """Every process of ``allproc`` (and ``zombproc`` where the kernel has it)."""
    for listname in ("allproc", "zombproc"):
        addr = _symbol(kd, listname)
        if addr == 0:
            continue
        yield from _walk(kd, listname, _head(kd, addr, listname), "proc", "p_list.le_next")


def _prisons(kd: Kvm) -> dict[int, StructView]:
    """Prisons by address: ``prison0``, the ``allprison`` list and every process's
    ``cr_prison`` (kernels differ in which of the two symbols they have)."""
    found: dict[int, StructView] = {}

    def add(addr: int) -> None:
        if addr == 0 or addr in found:
            return
        view = struct_at(kd, "prison", addr)
        if view is None:
            raise fail(kd, fmt(E.CANT_READ_AT, "prison", addr))
        found[addr] = view

    add(_symbol(kd, "prison0"))
    allprison = _symbol(kd, "allprison")
    if allprison:
        first = _head(kd, allprison, "allprison")
        for pr in _walk(kd, "allprison", first, "prison", "pr_list.tqe_next"):
            found.setdefault(pr.address, pr)
    for proc in _procs(kd):
        credp = int(proc.p_ucred)
        if credp == 0:
            continue
        cred = struct_at(kd, "ucred", credp)
        if cred is None:
            raise fail(kd, fmt(E.CANT_READ_AT, "ucred", credp))
        add(int(cred.cr_prison))
    return found


def _checked_vnet(kd: Kvm, addr: int) -> StructView:
    """``struct vnet`` at ``addr``, read whole, with a valid ``vnet_magic_n``."""
    view = struct_at(kd, "vnet", addr)
    if view is None:
        raise fail(kd, fmt(E.VNET_READ, addr))
    magic = int(view.vnet_magic_n)
    if magic != VNET_MAGIC_N:
        raise fail(kd, fmt(E.VNET_BAD_MAGIC, addr, magic))
    return view


def vnets(kd: Kvm) -> list[VnetInfo]:
    """The kernel's vnets in ``vnet_head`` order (newest first, ``vnet0`` last).

    Raises with ``no VNET support in this kernel (...)`` on a kernel without VIMAGE,
    ``can't read vnet at %p`` / ``vnet at %p: invalid vnet magic# 0x%x`` on a bad entry
    and ``vnet_head corrupt: a cycle or more than %d entries`` on a cyclic list.
    """
    _start, _stop, head = _set_bounds(kd)
    users: dict[int, list[int]] = {}
    for addr, pr in _prisons(kd).items():
        del addr
        users.setdefault(int(pr.pr_vnet), []).append(int(pr.pr_id))
    current = kd.vnet_current
    out: list[VnetInfo] = []
    seen: set[int] = set()
    v = _head(kd, head, "vnet_head")
    while v != 0:
        if v in seen or len(seen) >= MAX_PROC_WALK:
            raise fail(kd, E.cformat(E.VNET_LIST_CYCLE, "vnet_head", MAX_PROC_WALK))
        seen.add(v)
        view = _checked_vnet(kd, v)
        out.append(VnetInfo(v, int(view.vnet_data_base), int(view.vnet_data_mem),
                            tuple(sorted(users.get(v, []))), current == v))
        v = int(view["vnet_le.le_next"])
    return out


def _vnet_of_prison(kd: Kvm, pr: StructView) -> int:
    addr = int(pr.pr_vnet)
    if addr == 0:
        raise fail(kd, fmt(E.VNET_PRISON_NO_VNET, pr.address))
    return addr


def _vnet_of_jid(kd: Kvm, jid: int) -> int:
    for pr in _prisons(kd).values():
        if int(pr.pr_id) == jid:
            return _vnet_of_prison(kd, pr)
    raise fail(kd, E.cformat(E.VNET_NO_JID, jid))


def _vnet_of_pid(kd: Kvm, pid: int) -> int:
    for proc in _procs(kd):
        if int(proc.p_pid) != pid:
            continue
        credp = int(proc.p_ucred)
        if credp == 0:
            raise fail(kd, E.cformat(E.VNET_NO_CRED, pid))
        cred = struct_at(kd, "ucred", credp)
        if cred is None:
            raise fail(kd, fmt(E.CANT_READ_AT, "ucred", credp))
        prisonp = int(cred.cr_prison)
        pr = struct_at(kd, "prison", prisonp) if prisonp else None
        if pr is None:
            raise fail(kd, fmt(E.CANT_READ_AT, "prison", prisonp))
        return _vnet_of_prison(kd, pr)
    raise fail(kd, E.cformat(E.VNET_NO_PID, pid))


def vnet_select(kd: Kvm, *, vnet: int | None = None, jid: int | None = None,
                pid: int | None = None) -> int:
    """Select the vnet later ``vnet_entry_`` lookups relocate into; return its address.

    Exactly one of ``vnet`` (a ``struct vnet`` address), ``jid`` (the jail's
    ``pr_id``; 0 is prison0, the host) or ``pid`` (a process in ``allproc`` or
    ``zombproc``) chooses it.  The selection replaces libkvm's automatic one (which
    then no longer runs); values already returned by ``nlist`` are not recomputed.
    """
    given = [x for x in (vnet, jid, pid) if x is not None]
    if len(given) != 1:
        raise fail(kd, E.VNET_SELECT_ARGS)
    start, stop, _head_addr = _set_bounds(kd)
    if vnet is not None:
        addr = vnet
    elif jid is not None:
        addr = _vnet_of_jid(kd, jid)
    else:
        assert pid is not None
        addr = _vnet_of_pid(kd, pid)
    view = _checked_vnet(kd, addr)
    kd._vnet_set(start, stop, addr, int(view.vnet_data_base))
    return addr
