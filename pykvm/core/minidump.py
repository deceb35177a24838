"""Shared minidump machinery: dump_avail, the page bitmap, and the rank index.

Mirrors lib/libkvm/kvm_private.c: ``_kvm_pt_init`` (bitmap and popcount
bins), ``_kvm_pa_bit_id`` / ``_kvm_bit_id_pa`` (bit identifiers that squeeze
out the holes between dump_avail ranges), ``_kvm_pt_find`` (physical address
to file offset) and ``_kvm_pmap_init`` (the page-table section), with the
section layout of formats.md 3.1.

pykvm departures (formats.md 14, rows 2 and 3): an address below the start of
its dump_avail range is absent (libkvm gives it an earlier range's bit), and
the bitmap is decoded with the kernel's word size and byte order rather than
as host-order 64-bit words.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from itertools import accumulate

from .. import errors as E
from ..errors import FormatError
from .corefile import CoreFile

#: Bits per rank bin (libkvm caches a running count every 1024 bits).
RANK_BITS = 4096
_RANK_BYTES = RANK_BITS // 8


def round_page(x: int, page: int) -> int:
    """``round_page``: ``x`` rounded up to a multiple of ``page``."""
    return (x + page - 1) // page * page


class SparsePages:
    """The bitmap of dumped pages and the rank function over it.

    ``find(pa)`` is ``_kvm_pt_find``: the core-file offset of the dumped copy
    of the page holding ``pa``, or -1.
    """

    def __init__(self, core: CoreFile, *, dump_avail: list[tuple[int, int]],
                 bitmap: bytes, sparse_off: int, page_size: int) -> None:
        self.core = core
        self.page_size = page_size
        self.page_shift = page_size.bit_length() - 1
        self.bitmap = bitmap
        self.nbits = len(bitmap) * 8
        self.sparse_off = sparse_off
        self.dump_avail = dump_avail
        # Per segment: (start, end, first page number, bit id of the first page)
        segs: list[tuple[int, int, int, int]] = []
        adj = 0
        for start, end in dump_avail:
            first = start >> self.page_shift
            segs.append((start, end, first, adj))
            adj += -(-end // page_size) - first
        self._segs = segs
        counts = [int.from_bytes(bitmap[i:i + _RANK_BYTES], "little").bit_count()
                  for i in range(0, len(bitmap), _RANK_BYTES)]
        self._rank = [0, *accumulate(counts)]
        self.npages = self._rank[-1]

    # -- bit identifiers (_kvm_pa_bit_id, _kvm_bit_id_pa) -----------------------
    def pa_bit_id(self, pa: int) -> int:
        """Bit id of the page holding ``pa``; -1 when it is in no dump_avail range."""
        for start, end, first, adj in self._segs:
            if pa < end:
                if pa < start:
                    return -1
                return (pa >> self.page_shift) - first + adj
        return -1

    def bit_id_pa(self, bit: int) -> int:
        """Physical address of bit id ``bit``; -1 past the last range."""
        for _start, end, first, _adj in self._segs:
            n = -(-end // self.page_size) - first
            if bit < n:
                return (first << self.page_shift) + bit * self.page_size
            bit -= n
        return -1

    def is_set(self, bit: int) -> bool:
        """Whether bit ``bit`` of the dump bitmap is set."""
        return 0 <= bit < self.nbits and bool(self.bitmap[bit >> 3] >> (bit & 7) & 1)

    def rank(self, bit: int) -> int:
        """Number of set bits with an id below ``bit``."""
        b = bit >> 12  # RANK_BITS == 4096
        byte = bit >> 3
        lo = b * _RANK_BYTES
        n = self._rank[b]
        if byte > lo:
            n += int.from_bytes(self.bitmap[lo:byte], "little").bit_count()
        if bit & 7:
            n += (self.bitmap[byte] & ((1 << (bit & 7)) - 1)).bit_count()
        return n

    def find(self, pa: int) -> int:
        """``_kvm_pt_find``: file offset of the dumped page holding ``pa``, or -1."""
        bit = self.pa_bit_id(pa)
        if bit < 0 or bit >= self.nbits or not (self.bitmap[bit >> 3] >> (bit & 7)) & 1:
            return -1
        count = self.rank(bit)
        if count >= self.npages:
            return -1
        return self.sparse_off + count * self.page_size

    def set_bits(self, bitmap: bytes | bytearray | None = None) -> Iterator[int]:
        """Ids of the set bits of ``bitmap`` (default: the dump's), ascending."""
        bm = self.bitmap if bitmap is None else bitmap
        for i, byte in enumerate(bm):
            if byte:
                base = i << 3
                for j in range(8):
                    if byte >> j & 1:
                        yield base + j


def read_dump_avail(core: CoreFile, offset: int, size: int, endian: str,
                    page_size: int, bitmapsize: int) -> list[tuple[int, int]]:
    """The dump_avail pairs of a minidump (formats.md 3.2).

    With ``size`` 0 (older headers) the implied array ``[0, bitmapsize * 8 *
    page_size]`` is used.  Pairs are read until one whose end is 0, within the
    section; a section cut short by the end of the file ends the list there.
    """
    if size == 0:
        return [(0, bitmapsize * 8 * page_size)]
    raw = core.pread(offset, size)
    raw = raw[: len(raw) // 16 * 16]
    out = []
    for start, end in struct.iter_unpack(endian + "QQ", raw):
        if end == 0:
            break
        out.append((start, end))
    return out


def normalise_bitmap(raw: bytes, word_bits: int, big_endian: bool) -> bytes:
    """Bitmap bytes in little-endian bit order (bit n = bit n%8 of byte n//8).

    The kernel stores a ``BITSET`` of ``long`` words in its own byte order; on
    a big-endian kernel bit n sits in word n/W at bit n%W, so the bytes of each
    W-bit word are reversed here once (formats.md 3.3).
    """
    if not big_endian:
        return raw
    w = word_bits // 8
    n = len(raw) // w * w
    out = bytearray(raw)
    src = raw[:n]
    for k in range(w):
        out[k:n:w] = src[w - 1 - k:n:w]
    return bytes(out)


def init_sparse(core: CoreFile, *, dumpavailsize: int, dump_avail_off: int,
                bitmapsize: int, bitmap_off: int, sparse_off: int, page_size: int,
                endian: str, word_bits: int) -> SparsePages:
    """``_kvm_pt_init``: read dump_avail and the bitmap, build the rank index.

    Raises :class:`FormatError` with libkvm's texts: ``cannot read %zu bytes
    for bitmap`` when the bitmap runs past the end of the file (checked before
    anything is allocated, so a hostile ``bitmapsize`` costs nothing), and
    ``cannot map ... for sparse map: Invalid argument`` when no page is dumped
    (libkvm's zero-length ``mmap`` fails).
    """
    avail = read_dump_avail(core, dump_avail_off, dumpavailsize, endian, page_size,
                            bitmapsize)
    if bitmap_off + bitmapsize > core.size or bitmapsize < 0:
        raise FormatError(E.cformat(E.BITMAP_READ, bitmapsize))
    raw = core.pread(bitmap_off, bitmapsize)
    if len(raw) != bitmapsize:
        raise FormatError(E.cformat(E.BITMAP_READ, bitmapsize))
    bitmap = normalise_bitmap(raw, word_bits, endian == ">")
    pages = SparsePages(core, dump_avail=avail, bitmap=bitmap, sparse_off=sparse_off,
                        page_size=page_size)
    if pages.npages == 0:
        raise FormatError(E.cformat(E.SPARSE_MAP, 0, core.fd, sparse_off,
                                    E.strerror_name("EINVAL")))
    return pages


def read_pmap(core: CoreFile, size: int, offset: int) -> bytes:
    """``_kvm_pmap_init``: the whole page-table section, or ``cannot read ...``."""
    # pmap_size is a uint32_t printed with %d: C shows large sizes as negative.
    shown = size - (1 << 32) if size >= 1 << 31 else size
    if offset + size > core.size:
        raise FormatError(E.cformat(E.PMAP_READ, shown, offset))
    data = core.pread(offset, size)
    if len(data) != size:
        raise FormatError(E.cformat(E.PMAP_READ, shown, offset))
    return data
