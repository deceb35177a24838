"""``struct kerneldumpheader`` (sys/sys/kerneldump.h, formats.md 1.1), as the kernel writes it.

512 bytes; every integer big-endian ("dump byte order") whatever the machine; the last
word is chosen so that the XOR of all 128 32-bit words is zero.  savecore strips it, so
a vmcore normally has none, but a dump fetched another way starts with one, and the
powerpc full-dump readers skip it.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

KERNELDUMPMAGIC = "FreeBSD Kernel Dump"
TEXTDUMPMAGIC = "FreeBSD Text Dump"
KERNELDUMPMAGIC_CLEARED = "Cleared Kernel Dump"
KERNELDUMPVERSION = 4
KERNELDUMP_COMP_NONE = 0
KERNELDUMP_COMP_GZIP = 1
KERNELDUMP_COMP_ZSTD = 2
HEADER_SIZE = 512

#: magic, architecture, version, architectureversion, dumplength, dumptime, dumpkeysize,
#: blocksize, hostname, versionstring, panicstring, compression, dumpextent, unused, parity
_KDH = struct.Struct(">20s12sIIQQII64s192s175sBQ4sI")
assert _KDH.size == HEADER_SIZE


def parity(header: bytes) -> bytes:
    """The 4 bytes that make the XOR of all 32-bit words of ``header`` zero.

    ``header`` is the 512-byte header with a zero parity field.  XOR works column by
    column, so the result is the same whichever byte order the words are read in.
    """
    acc = bytearray(4)
    for i in range(0, len(header), 4):
        for j in range(4):
            acc[j] ^= header[i + j]
    return bytes(acc)


@dataclass(frozen=True)
class KernelDumpHeader:
    """The fields of a kerneldumpheader except the lengths, which come from the payload.

    ``architectureversion`` per architecture (kerneldump.h): aarch64 1, amd64 2, arm 1,
    i386 2, mips 1, powerpc 1, riscv 1.
    """

    architecture: str
    architectureversion: int = 1
    version: int = KERNELDUMPVERSION
    dumptime: int = 0
    dumpkeysize: int = 0
    blocksize: int = 512
    hostname: str = "synth.example.org"
    versionstring: str = ""
    panicstring: str = "synthetic crash"
    compression: int = KERNELDUMP_COMP_NONE
    magic: str = KERNELDUMPMAGIC

    def pack(self, dumplength: int, dumpextent: int | None = None) -> bytes:
        """Return the 512 bytes for a payload of ``dumplength`` bytes.

        ``dumpextent`` (bytes on the device) defaults to ``dumplength`` (no compression).
        """
        head = _KDH.pack(
            self.magic.encode(),
            self.architecture.encode(),
            self.version,
            self.architectureversion,
            dumplength,
            self.dumptime,
            self.dumpkeysize,
            self.blocksize,
            self.hostname.encode(),
            self.versionstring.encode()[:191],
            self.panicstring.encode()[:174],
            self.compression,
            dumplength if dumpextent is None else dumpextent,
            bytes(4),
            0,
        )
        return head[:-4] + parity(head)
