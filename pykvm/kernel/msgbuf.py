"""The kernel message buffer (``msgbufp``; kernel-data.md 7A, a pykvm extension).

libkvm has no such call; kgdb and LLDB print the unread part when they open a dump and
``dmesg -M`` prints the whole ring.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import errors as E
from ..constants import MAX_MSGBUF, MSG_MAGIC
from ._common import fail, fmt, ptrsize, read_bytes, read_int, struct_at

if TYPE_CHECKING:
    from ..kvm import Kvm


def msgbuf(kd: Kvm) -> tuple[bytes, bytes]:
    """``(unread, whole)``: the unread text (``msg_rseq`` to ``msg_wseq``, both pieces when
    it wraps, as LLDB prints it) and the whole ring in dmesg order, NUL bytes dropped.

    Raises :class:`~pykvm.errors.KvmError`: ``unable to find msgbufp``,
    ``cannot read msgbufp``, a wrong ``msg_magic`` (the buffer is unusable), an absurd
    ``msg_size``, or an unreadable ring.
    """
    res = kd.nlist2(["_msgbufp"])
    sym = res["_msgbufp"].value
    if sym == 0:
        raise fail(kd, E.MSGBUF_NO_SYMBOL)
    ptr = read_int(kd, sym, ptrsize(kd))
    if ptr is None or ptr == 0:
        raise fail(kd, E.MSGBUF_READ_PTR)
    view = struct_at(kd, "msgbuf", ptr)
    if view is None:
        raise fail(kd, E.MSGBUF_READ_PTR)
    magic = int(view.msg_magic)
    if magic != MSG_MAGIC:
        raise fail(kd, E.cformat(E.MSGBUF_BAD_MAGIC, magic))
    size = int(view.msg_size)
    if size <= 0 or size > MAX_MSGBUF:
        raise fail(kd, E.cformat(E.MSGBUF_BAD_SIZE, size))
    ring_va = int(view.msg_ptr)
    ring = read_bytes(kd, ring_va, size)
    if ring is None:
        raise fail(kd, fmt(E.MSGBUF_READ, ring_va))
    rpos = int(view.msg_rseq) % size
    wpos = int(view.msg_wseq) % size
    if wpos >= rpos:
        unread = ring[rpos:wpos]
    else:
        unread = ring[rpos:] + ring[:wpos]
    whole = (ring[wpos:] + ring[:wpos]).replace(b"\0", b"")
    return unread, whole
