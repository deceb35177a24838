"""C records as FreeBSD lays them out, per architecture (DESIGN.md ``pykvm/abi/``).

One member list per record (:mod:`.kinfo_proc`, :mod:`.kvm_swap`, :mod:`.nlist`), laid
out for a target :class:`Abi` by :func:`layout`; the engine packs records with
``struct.Struct`` formats derived from it and the compat layer builds its ctypes
classes from the same lists.  :func:`abi_for` gives the ABI of an open dump.
"""

from __future__ import annotations

from .model import ABIS, ALIASES, Abi, Array, Field, Record, RecordLayout, layout, lookup
from .target import abi_for, abi_of

__all__ = [
    "ABIS",
    "ALIASES",
    "Abi",
    "Array",
    "Field",
    "Record",
    "RecordLayout",
    "abi_for",
    "abi_of",
    "layout",
    "lookup",
]
