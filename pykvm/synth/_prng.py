"""Deterministic pseudo-random numbers and page contents for the synthetic machines.

Everything a synthetic machine contains is a pure function of its seed.  Python's
:mod:`random` module is deliberately not used: its algorithms are allowed to change
between Python releases, and a fixture built on one interpreter must be byte-identical
on another.  Instead this module derives everything from :mod:`hashlib` (BLAKE2b for
scalar choices, SHAKE-128 for bulk bytes), whose outputs are fixed by their standards.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import TypeVar

T = TypeVar("T")

PAGE_SIZE = 4096

_PAGE_TAG = b"pykvm.synth.page\0"


class Rng:
    """A small counter-mode generator: BLAKE2b(key = seed and stream name, counter).

    Separate *streams* (for example ``"phys"`` and ``"kernel"``) keep unrelated choices
    independent, so adding a draw to one part of the machine does not reshuffle another.
    """

    def __init__(self, seed: int, stream: str) -> None:
        """Start the stream ``stream`` of the machine with seed ``seed``."""
        self._key = hashlib.blake2b(f"{stream}\0{seed}".encode(), digest_size=32).digest()
        self._counter = 0

    def _block(self) -> bytes:
        self._counter += 1
        return hashlib.blake2b(
            self._counter.to_bytes(8, "little"), key=self._key, digest_size=16
        ).digest()

    def u64(self) -> int:
        """Return the next uniformly distributed 64-bit unsigned integer."""
        return int.from_bytes(self._block()[:8], "little")

    def below(self, n: int) -> int:
        """Return an integer in ``[0, n)`` (``n`` must be positive)."""
        if n <= 0:
            raise ValueError("below() needs a positive bound")
        # 128 bits of entropy make the modulo bias negligible for our small bounds.
        return int.from_bytes(self._block(), "little") % n

    def between(self, lo: int, hi: int) -> int:
        """Return an integer in the closed interval ``[lo, hi]``."""
        return lo + self.below(hi - lo + 1)

    def chance(self, numerator: int, denominator: int) -> bool:
        """Return True with probability ``numerator / denominator``."""
        return self.below(denominator) < numerator

    def choice(self, items: Sequence[T]) -> T:
        """Return one element of a non-empty sequence."""
        return items[self.below(len(items))]

    def sample(self, items: Sequence[T], k: int) -> list[T]:
        """Return ``k`` distinct elements of ``items`` in random order (partial shuffle)."""
        pool = list(items)
        if k > len(pool):
            raise ValueError("sample larger than population")
        for i in range(k):
            j = i + self.below(len(pool) - i)
            pool[i], pool[j] = pool[j], pool[i]
        return pool[:k]

    def randbytes(self, n: int) -> bytes:
        """Return ``n`` pseudo-random bytes (one SHAKE-128 squeeze)."""
        self._counter += 1
        return hashlib.shake_128(self._key + self._counter.to_bytes(8, "little")).digest(n)


def page_bytes(seed: int, pa: int, page_size: int = PAGE_SIZE) -> bytes:
    """Return the pseudo-random bytes of the ordinary RAM page at physical ``pa``.

    The content depends only on ``(seed, trunc_page(pa))`` so pages can be produced lazily
    and in any order, which is what lets a 64 GiB machine exist without materialising it.
    A page larger than 4 KiB (``page_size`` 16384 on some aarch64 kernels) is the
    concatenation of the 4 KiB pages it covers, so the bytes at a physical address never
    depend on the page size of the machine that holds them.
    """
    if page_size != PAGE_SIZE:
        if page_size % PAGE_SIZE or page_size & (page_size - 1):
            raise ValueError("page_size must be a power-of-two multiple of 4096")
        base = pa & ~(page_size - 1)
        return b"".join(page_bytes(seed, base + i) for i in range(0, page_size, PAGE_SIZE))
    frame = pa & ~(PAGE_SIZE - 1)
    tag = _PAGE_TAG + str(seed).encode() + b"\0" + frame.to_bytes(8, "little")
    return hashlib.shake_128(tag).digest(PAGE_SIZE)
