"""The architecture-independent pieces of a FreeBSD minidump, written from the kernel's side.

Sources followed (read, not copied): the ``cpu_minidumpsys`` of every architecture
(sys/*/*/minidump_machdep.c), sys/vm/vm_dumpset.h (``vm_page_dump_pa_bit_id``, the
``BITSET`` of dumped pages) and formats.md 3.1-3.3.

File layout, ``PS`` = the dump's page size (4096, or 16384 for 16 KiB aarch64 kernels):

======================  ===================================================================
header page             the architecture's header struct (bytes passed in), zero padded
                        to PS
message buffer          ``msgbufsize`` bytes, padded to PS
dump_avail              only in header versions that have ``dumpavailsize``: u64
                        ``(start, end)`` pairs in the kernel's byte order ended by a zero
                        pair, padded to ``dumpavailsize`` (one page by default)
bitmap                  ``bitmapsize`` = round_page(BITSET_SIZE(pages)): a ``BITSET`` of
                        ``long`` words (W = 64 or 32 bits) in the kernel's byte order; bit n
                        is bit n % W of word n / W (for little-endian kernels: bit n % 8 of
                        byte n / 8, whatever W); bit ids compress the holes between the
                        dump_avail ranges; without a dump_avail section they number pages
                        from physical 0 (``pa / PS``)
page tables             ``pmapsize`` bytes (the architecture's), padded to PS unless
                        ``pad_pmap`` is False (32-bit arm writes it unpadded)
page data               one PS page per set bit, ascending bit order
======================  ===================================================================

An architecture builds its header with a callable that receives the section sizes
(:class:`Sizes`), so the header and the sections can never disagree.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from .elfwriter import ByteOrder
from .truth import runs


def round_page(value: int, page_size: int = 4096) -> int:
    """Round ``value`` up to a multiple of ``page_size``."""
    return (value + page_size - 1) & ~(page_size - 1)


class BitIds:
    """The kernel's page numbering for the dump bitmap (vm_dumpset.h ``vm_page_dump_pa_bit_id``).

    Over ranges ``(s_k, e_k)`` each range contributes ``howmany(e_k, PS) - s_k / PS`` bits,
    in order, so holes between ranges take no bits.  Dumps without a dump_avail section
    use the single range ``(0, end)``.  An address outside every range has no bit id.
    """

    def __init__(self, ranges: Sequence[tuple[int, int]], page_size: int = 4096) -> None:
        """Number the pages of ``ranges`` (sorted, disjoint)."""
        self.ranges = list(ranges)
        self.page_size = page_size
        self._shift = page_size.bit_length() - 1
        self._starts = [s for s, _ in self.ranges]
        self._first_bit: list[int] = []
        total = 0
        for s, e in self.ranges:
            self._first_bit.append(total)
            total += -(-e // page_size) - s // page_size
        self.nbits = total

    def bit_id(self, pa: int) -> int | None:
        """Return the bit id of physical ``pa`` or None when it lies in no range."""
        i = bisect_right(self._starts, pa) - 1
        if i < 0 or pa >= self.ranges[i][1]:
            return None
        return (pa >> self._shift) - (self.ranges[i][0] >> self._shift) + self._first_bit[i]

    def bit_pa(self, bit: int) -> int | None:
        """Return the page address of bit id ``bit`` or None when past the last range."""
        i = bisect_right(self._first_bit, bit) - 1
        if i < 0 or bit >= self.nbits:
            return None
        return ((self.ranges[i][0] >> self._shift) + bit - self._first_bit[i]) << self._shift


def bitmap_size(nbits: int, word_bits: int = 64, page_size: int = 4096) -> int:
    """``round_page(BITSET_SIZE(nbits))``: bytes of the bitmap section."""
    word = word_bits // 8
    return round_page(-(-nbits // word_bits) * word, page_size)


def bitmap_bytes(
    bits: Iterable[int],
    size: int,
    *,
    word_bits: int = 64,
    byteorder: ByteOrder = "little",
) -> bytes:
    """The ``size``-byte bitmap with ``bits`` set: a BITSET of ``word_bits``-bit ``long``s.

    Bit n lives in word ``n // W`` at bit ``n % W``, each word stored in ``byteorder``
    (formats.md 3.3).  For a big-endian kernel that is the little-endian layout with the
    bytes of every word reversed.
    """
    if word_bits not in (32, 64) or size % (word_bits // 8):
        raise ValueError("word_bits must be 32 or 64 and divide the bitmap size")
    out = bytearray(size)
    for bit in bits:
        out[bit >> 3] |= 1 << (bit & 7)
    if byteorder == "big":
        w = word_bits // 8
        swapped = bytearray(size)
        for k in range(w):
            swapped[k::w] = out[w - 1 - k :: w]
        out = swapped
    elif byteorder != "little":
        raise ValueError("byteorder must be 'little' or 'big'")
    return bytes(out)


def dump_avail_bytes(
    ranges: Sequence[tuple[int, int]], size: int = 4096, byteorder: ByteOrder = "little"
) -> bytes:
    """The dump_avail section: u64 ``(start, end)`` pairs, a zero pair, zeros to ``size``."""
    raw = b"".join(s.to_bytes(8, byteorder) + e.to_bytes(8, byteorder) for s, e in ranges)
    raw += bytes(16)
    if len(raw) > size:
        raise ValueError("dump_avail does not fit its section")
    return raw.ljust(size, b"\0")


@dataclass(frozen=True)
class Sizes:
    """The size fields a minidump header carries (what the header callable receives)."""

    msgbufsize: int
    bitmapsize: int
    pmapsize: int
    #: 0 when the dump has no dump_avail section
    dumpavailsize: int
    page_size: int


@dataclass(frozen=True)
class MinidumpPlan:
    """Everything a minidump file contains except the page data bytes themselves."""

    version: int
    #: the header page (header struct zero padded to the page size)
    header: bytes
    msgbuf: bytes
    #: the dump_avail section (empty without one)
    dump_avail_page: bytes
    bitmap: bytes
    pmap: bytes
    #: sorted page frame numbers (``pa // page_size``) of the dumped pages, in file order
    pfns: list[int]
    #: the numbering a reader uses: dump_avail's, or ``(0, bitmapsize * 8 * PS)`` without it
    bits: BitIds
    layout: dict[str, int]
    page_size: int = 4096
    pad_pmap: bool = True

    def offset_of(self, pa: int) -> int:
        """File offset of the dumped page holding ``pa``, or -1 when it is not dumped."""
        pfn = pa // self.page_size
        i = bisect_left(self.pfns, pfn)
        if i < len(self.pfns) and self.pfns[i] == pfn:
            return self.layout["sparse_off"] + i * self.page_size
        return -1

    def readable(self) -> list[tuple[int, int]]:
        """Physical ``(start, end)`` intervals whose bytes the file holds."""
        return runs(self.pfns, self.page_size)


def plan_minidump(
    *,
    header: Callable[[Sizes], bytes],
    msgbuf: bytes,
    ranges: Sequence[tuple[int, int]],
    pages: Iterable[int],
    pmap: bytes,
    with_dump_avail: bool = True,
    dumpavailsize: int | None = None,
    page_size: int = 4096,
    word_bits: int = 64,
    byteorder: ByteOrder = "little",
    pad_pmap: bool = True,
    version: int = 0,
) -> MinidumpPlan:
    """Compute every section of a minidump.

    Arguments:
        header: builds the header struct from the section sizes (at most one page).
        msgbuf: the message buffer contents (``msgbufsize`` = its length).
        ranges: the ranges the kernel numbers bits over: dump_avail, or for header
            versions without it ``[(0, end of RAM)]`` (linear bit ids ``pa / PS``).
        pages: physical addresses (any address inside the page) of the pages to dump;
            each must lie in ``ranges``.
        pmap: the page-table section (``pmapsize`` = its length).
        with_dump_avail: write the dump_avail section (``ranges`` as u64 pairs).
        dumpavailsize: its size (default one page, ``round_page(sizeof(dump_avail))``).
        page_size, word_bits, byteorder: the dump's page size and the kernel's ``long``
            width and byte order (bitmap words, dump_avail entries).
        pad_pmap: pad the page-table section to a page (False for 32-bit arm).
        version: the header version, recorded in the plan.
    """
    ps = page_size
    numbering = BitIds(ranges, ps)
    ids: dict[int, int] = {}
    for pa in pages:
        bit = numbering.bit_id(pa)
        if bit is None:
            raise ValueError(f"page {pa:#x} is outside the dump's ranges")
        ids[pa // ps] = bit
    order = sorted(ids, key=ids.__getitem__)
    bitmapsize = bitmap_size(numbering.nbits, word_bits, ps)
    bitmap = bitmap_bytes(ids.values(), bitmapsize, word_bits=word_bits, byteorder=byteorder)
    if with_dump_avail:
        davail_size = ps if dumpavailsize is None else dumpavailsize
        davail = dump_avail_bytes(ranges, round_page(davail_size, ps), byteorder)
        bits = numbering
    else:
        davail_size = 0
        davail = b""
        # readers synthesise dump_avail = [0, bitmapsize * 8 * PS] (formats.md 3.2)
        bits = BitIds([(0, bitmapsize * 8 * ps)], ps)
    sizes = Sizes(len(msgbuf), bitmapsize, len(pmap), davail_size, ps)
    head = header(sizes)
    if len(head) > ps:
        raise ValueError("minidump header larger than a page")
    msgbuf_off = ps
    dump_avail_off = msgbuf_off + round_page(len(msgbuf), ps)
    bitmap_off = dump_avail_off + len(davail)
    pmap_off = bitmap_off + bitmapsize
    sparse_off = pmap_off + (round_page(len(pmap), ps) if pad_pmap else len(pmap))
    layout = {
        "msgbufsize": len(msgbuf),
        "bitmapsize": bitmapsize,
        "pmapsize": len(pmap),
        "dumpavailsize": davail_size,
        "msgbuf_off": msgbuf_off,
        "dump_avail_off": dump_avail_off,
        "bitmap_off": bitmap_off,
        "pmap_off": pmap_off,
        "sparse_off": sparse_off,
        "file_size": sparse_off + ps * len(order),
    }
    return MinidumpPlan(
        version=version,
        header=head.ljust(ps, b"\0"),
        msgbuf=msgbuf,
        dump_avail_page=davail,
        bitmap=bitmap,
        pmap=pmap,
        pfns=order,
        bits=bits,
        layout=layout,
        page_size=ps,
        pad_pmap=pad_pmap,
    )


def write_minidump(path: str, plan: MinidumpPlan, page: Callable[[int], bytes]) -> None:
    """Write the minidump of ``plan``; ``page(pfn)`` returns the bytes of page ``pfn``."""
    ps = plan.page_size
    pmap = plan.pmap
    if plan.pad_pmap:
        pmap = pmap.ljust(round_page(len(pmap), ps), b"\0")
    with open(path, "wb") as f:
        f.write(plan.header)
        f.write(plan.msgbuf.ljust(round_page(len(plan.msgbuf), ps), b"\0"))
        f.write(plan.dump_avail_page)
        f.write(plan.bitmap)
        f.write(pmap)
        batch: list[bytes] = []
        for pfn in plan.pfns:
            batch.append(page(pfn))
            if len(batch) == 256:
                f.write(b"".join(batch))
                batch.clear()
        f.write(b"".join(batch))


__all__ = [
    "BitIds",
    "MinidumpPlan",
    "Sizes",
    "bitmap_bytes",
    "bitmap_size",
    "dump_avail_bytes",
    "plan_minidump",
    "round_page",
    "write_minidump",
]
