"""The ``pykvm`` command: look inside a FreeBSD kernel crash dump from any host.

Subcommands::

    pykvm demo  [--json]
    pykvm info  KERNEL CORE [--json]
    pykvm nlist KERNEL CORE NAME... [--json]
    pykvm read  KERNEL CORE ADDR|SYMBOL[+OFF] LEN [--raw | --json]
    pykvm pages KERNEL CORE [--limit N] [--json]
    pykvm types KERNEL [STRUCT] [--debug FILE]... [--core CORE] [--json]
    pykvm ps       KERNEL CORE [--threads] [--args] [--debug FILE]... [--json]
    pykvm swapinfo KERNEL CORE [-h] [--json]
    pykvm loadavg  KERNEL CORE [--json]
    pykvm cptime   KERNEL CORE [--json]
    pykvm pcpu     KERNEL CORE [--json]
    pykvm dmesg    KERNEL CORE [--all] [--json]

The engine returns plain data (``DumpInfo``, ``NlistResult``, ``KvmPage``, bytes);
the kernel-data calls of :mod:`pykvm.kernel` return records (``KinfoProc``,
``KvmSwap``, lists of numbers, bytes); this module only turns them into text or JSON.
Every ``collect_*`` function gathers data into JSON-ready dictionaries, every
``format_*`` function turns such data into lines of text; ``demo`` reuses both.

Errors are printed as ``pykvm: <libkvm's text>`` on stderr with exit status 1;
usage errors exit with 2, as argparse does.  No traceback reaches the user.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shlex
import shutil
import sys
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pykvm
import pykvm.errors
from pykvm.constants import KERN_PROC_INC_THREAD, KERN_PROC_PROC, SWIF_DEV_PREFIX
from pykvm.image.layout import (
    KERNEL_STRUCTS,
    KernelTypes,
    Member,
    SourceInfo,
    StructLayout,
    parse_type_name,
)

__all__ = ["main", "build_parser", "hexdump", "parse_target", "Target"]

PROG = "pykvm"

#: JSON-ready document: str keys, values are ints, strings, bools, None, lists, dicts.
Doc = dict[str, Any]

# The demo dump: a fixed recipe, so that every run shows the same thing.
DEMO_SEED = 0
DEMO_FMT = "minidump-v3"
# Type information (CTF) in the demo kernel, for the kernel-data commands (ps...).
DEMO_TYPES = "ctf-v3"
DEMO_SYMBOLS = ("version", "hz", "kernbase", "KPML4phys")
DEMO_PAGES = 5
DEMO_META = "demo.json"

N_UNDF = 0x00
_U64 = (1 << 64) - 1
# MACHINE_ARCH names of the 32-bit FreeBSD architectures (addresses shown as 8 hex digits).
_ARCH32 = frozenset({"i386", "arm", "armv6", "armv7", "mips", "mipsel", "mipshf", "powerpc"})

_NUMBER = re.compile(r"0[xX][0-9a-fA-F]+|[0-9]+")


class CliError(Exception):
    """A failure the CLI reports itself (its text is printed after ``pykvm: ``)."""


class UsageError(Exception):
    """A usage error found after parsing (exit status 2)."""


# --------------------------------------------------------------------------- parsing


def parse_number(text: str) -> int | None:
    """``0x``-prefixed hex or plain decimal, or None when ``text`` is neither."""
    if not _NUMBER.fullmatch(text):
        return None
    return int(text, 16) if text[:2].lower() == "0x" else int(text, 10)


def _uint_arg(text: str) -> int:
    value = parse_number(text)
    if value is None:
        raise argparse.ArgumentTypeError(f"not a number (use 0x hex or decimal): {text!r}")
    return value


@dataclass(frozen=True)
class Target:
    """What ``pykvm read`` reads: an address, or a symbol plus an offset."""

    address: int | None = None
    symbol: str | None = None
    offset: int = 0

    def __str__(self) -> str:
        if self.symbol is None:
            return f"{self.address:#x}"
        return f"{self.symbol}+{self.offset:#x}" if self.offset else self.symbol


def parse_target(text: str) -> Target:
    """Parse ``ADDR`` (0x hex or decimal) or ``SYMBOL[+OFF]`` (OFF 0x hex or decimal)."""
    value = parse_number(text)
    if value is not None:
        if value > _U64:
            raise argparse.ArgumentTypeError(f"address does not fit in 64 bits: {text!r}")
        return Target(address=value)
    symbol, plus, off_text = text.rpartition("+")
    if not plus:
        symbol, off_text = text, ""
    offset = parse_number(off_text) if plus else 0
    if not symbol or offset is None or symbol[0].isdigit():
        raise argparse.ArgumentTypeError(
            f"not an address or SYMBOL[+OFF] (addresses are 0x hex or decimal): {text!r}"
        )
    return Target(symbol=symbol, offset=offset)


def _name_arg(text: str) -> str:
    if not text:
        # kvm_nlist2 ends its list at the first empty name.
        raise argparse.ArgumentTypeError("symbol names must not be empty")
    return text


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser of the ``pykvm`` command."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Read FreeBSD kernel crash dumps (a pure-Python libkvm).",
        epilog="Run 'pykvm demo' to see every subcommand on a synthetic dump.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="print one JSON document")
    files = argparse.ArgumentParser(add_help=False)
    files.add_argument("kernel", metavar="KERNEL", help="the kernel image (ELF)")
    files.add_argument("core", metavar="CORE", help="the crash dump (minidump or ELF core)")

    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    sub.add_parser(
        "demo",
        parents=[common],
        help="build a synthetic dump (cached) and show what pykvm does on it",
        description="Build a synthetic FreeBSD/amd64 kernel and minidump once into the user's "
        "cache directory and run the other subcommands on it.",
    )
    sub.add_parser(
        "info",
        parents=[files, common],
        help="format, architecture, version, page size and page count of a dump",
    )
    p_nlist = sub.add_parser(
        "nlist",
        parents=[files, common],
        help="look symbols up in the kernel (kvm_nlist2); exit 1 if any is missing",
    )
    p_nlist.add_argument("names", metavar="NAME", nargs="+", type=_name_arg)
    p_read = sub.add_parser(
        "read",
        parents=[files, common],
        help="read kernel virtual memory (kvm_read2) and hexdump it",
        description="Read LEN bytes of kernel virtual memory at ADDR (0x hex or decimal) or "
        "at SYMBOL[+OFF] and show them like 'hexdump -C', with kernel addresses.",
    )
    p_read.add_argument("target", metavar="ADDR|SYMBOL[+OFF]", type=parse_target)
    p_read.add_argument("length", metavar="LEN", type=_uint_arg, help="bytes (0x hex or decimal)")
    p_read.add_argument("--raw", action="store_true", help="write the bytes themselves to stdout")
    p_pages = sub.add_parser(
        "pages",
        parents=[files, common],
        help="list the dump's page mappings (kvm_walk_pages)",
    )
    p_pages.add_argument("--limit", metavar="N", type=_uint_arg, help="stop after N records")
    p_types = sub.add_parser(
        "types",
        parents=[common],
        help="show the kernel's type information: sources, struct sizes, member offsets",
        description="Show where pykvm finds the layout of kernel structures (CTF, else DWARF, "
        "else the offsets the kernel exports for debuggers) and, for STRUCT, its size and "
        "every member's offset, size and type.  Without STRUCT, list the structures the "
        "libkvm calls need.",
    )
    p_types.add_argument("kernel", metavar="KERNEL", help="the kernel image (ELF)")
    p_types.add_argument("struct", metavar="STRUCT", nargs="?",
                         help="a struct or union: proc, 'struct proc', 'union u'")
    p_types.add_argument("--debug", metavar="FILE", action="append", default=[],
                         help="a separate debug file (kernel.debug) with DWARF; repeatable")
    p_types.add_argument("--core", metavar="CORE",
                         help="a crash dump of this kernel (exported offsets are then read "
                         "from it)")
    _add_kdata_parsers(sub, files, common)
    return parser


def _add_kdata_parsers(sub: Any, files: argparse.ArgumentParser,
                       common: argparse.ArgumentParser) -> None:
    """The subcommands over the kernel's data (they need its type information)."""
    p_ps = sub.add_parser(
        "ps",
        parents=[files, common],
        help="list the processes (kvm_getprocs), like 'ps -axl'",
        description="List the dump's processes as 'ps -axl' does: UID PID PPID CPU PRI NI "
        "VSZ RSS MWCHAN STAT TT TIME COMMAND.  PRI is the raw pri_level, CPU the last CPU, "
        "TT the controlling terminal's name from the dump as ps shows it (3 for pts/3, - "
        "without one).",
    )
    p_ps.add_argument("--threads", action="store_true",
                      help="one line per thread (KERN_PROC_INC_THREAD)")
    p_ps.add_argument("--args", action="store_true",
                      help="COMMAND from the kernel's cached arguments (p_args) where it "
                      "kept them (a pykvm extension: libkvm reads no arguments from a dump)")
    p_ps.add_argument("--debug", metavar="FILE", action="append", default=[],
                      help="a separate debug file (kernel.debug) with DWARF; repeatable")
    p_swap = sub.add_parser(
        "swapinfo",
        parents=[files, common],
        add_help=False,
        help="swap devices and their use (kvm_getswapinfo), like swapinfo(8)",
    )
    p_swap.add_argument("--help", action="help", help="show this help message and exit")
    p_swap.add_argument("-h", dest="human", action="store_true",
                        help="human-readable sizes (B, K, M, G, T)")
    sub.add_parser("loadavg", parents=[files, common],
                   help="the 1, 5 and 15 minute load averages (kvm_getloadavg)")
    sub.add_parser("cptime", parents=[files, common],
                   help="the CPU time counters in ticks (kvm_getcptime)")
    sub.add_parser("pcpu", parents=[files, common],
                   help="the CPUs and their struct pcpu addresses (kvm_getpcpu)")
    p_dmesg = sub.add_parser(
        "dmesg",
        parents=[files, common],
        help="the kernel message buffer: the unread text, or with --all the whole ring",
    )
    p_dmesg.add_argument("--all", action="store_true", help="the whole ring, oldest first")


# --------------------------------------------------------------------------- data


def _version() -> str:
    return pykvm.__version__


def open_dump(kernel: str, core: str) -> pykvm.Kvm:
    """Open a dump read-only, as ``kvm_openfiles(kernel, core, NULL, O_RDONLY)``.

    libkvm opens a dump of another architecture only through ``kvm_open2`` with a
    symbol resolver; the CLI then uses one built from the kernel's own symbol table,
    so that any dump opens on any host.
    """
    try:
        return pykvm.openfiles(kernel, core)
    except pykvm.NotNativeError:
        pass
    return pykvm.open2(kernel, core, resolver=pykvm.symtab_resolver(kernel))


def addr_digits(arch: str) -> int:
    """Hex digits of a kernel address on ``arch``: 8 on 32-bit machines, else 16."""
    return 8 if arch in _ARCH32 else 16


def collect_info(kd: pykvm.Kvm) -> Doc:
    """``kd.info()`` and ``kd.kerndisp()`` as a JSON-ready dictionary."""
    info = kd.info()
    return {
        "kernel": str(info.kernel),
        "core": str(info.core),
        "format": info.fmt,
        "version": info.version,
        "arch": info.arch,
        "native": bool(info.native),
        "page_size": info.page_size,
        "pages": info.pages,
        "kerndisp": kd.kerndisp(),
    }


def collect_nlist(kd: pykvm.Kvm, names: Sequence[str]) -> Doc:
    """``kvm_nlist2`` over ``names``: every entry, whether found, and libkvm's count."""
    result = kd.nlist2(list(names))
    symbols: list[Doc] = []
    for entry in result.entries:
        symbols.append(
            {
                "name": entry.name,
                "type": entry.type,
                "value": entry.value,
                # kvm_nlist(3): an entry that was not found is left N_UNDF (type 0, value 0).
                "found": result.missing != -1 and entry.type != N_UNDF,
            }
        )
    return {"missing": result.missing, "symbols": symbols}


def resolve_target(kd: pykvm.Kvm, target: Target) -> int:
    """The kernel virtual address of ``target``; a symbol goes through ``kvm_nlist2``."""
    if target.symbol is None:
        assert target.address is not None
        return target.address
    doc = collect_nlist(kd, [target.symbol])
    if doc["missing"] == -1:
        raise CliError("kernel symbol table unreadable")
    entry = doc["symbols"][0]
    if not entry["found"]:
        raise CliError(f"{target.symbol}: symbol not found")
    # kvm_read2 takes a kvaddr_t: the sum wraps modulo 2**64, as in C.
    return (int(entry["value"]) + target.offset) & _U64


def read_cstring(kd: pykvm.Kvm, address: int, page_size: int, limit: int = 4096) -> bytes:
    """The bytes of the NUL-terminated string at ``address`` (without the NUL).

    Reads page by page so that a string ending just before a hole still reads.
    """
    out = bytearray()
    page_size = max(page_size, 1)
    while len(out) < limit:
        want = min(page_size - address % page_size, limit - len(out))
        chunk = kd.read(address, want)
        nul = chunk.find(b"\0")
        if nul >= 0:
            out += chunk[:nul]
            break
        out += chunk
        if len(chunk) < want:
            break
        address = (address + want) & _U64
    return bytes(out)


def page_doc(page: pykvm.KvmPage) -> Doc:
    """One ``struct kvm_page`` as a dictionary, fields in kvm.h's order."""
    return {
        "version": page.version,
        "paddr": page.paddr,
        "kmap_vaddr": page.kmap_vaddr,
        "dmap_vaddr": page.dmap_vaddr,
        "prot": page.prot,
        "offset": page.offset,
        "len": page.len,
    }


def iter_pages(kd: pykvm.Kvm, limit: int | None) -> Iterator[Doc]:
    """The first ``limit`` records of ``kvm_walk_pages`` (all when ``limit`` is None)."""
    if limit == 0:
        return
    walk = kd.walk_pages()
    try:
        for count, page in enumerate(walk, 1):
            yield page_doc(page)
            if limit is not None and count >= limit:
                break
    finally:
        close = getattr(walk, "close", None)
        if callable(close):
            close()


def source_doc(info: SourceInfo) -> Doc:
    """One source of type information as a dictionary."""
    return {"name": info.name, "available": info.available, "detail": info.detail,
            "error": info.error}


def member_doc(path: str, member: Member, depth: int) -> Doc:
    """One member of a struct as a dictionary (offsets in bytes and bits)."""
    return {
        "path": path,
        "depth": depth,
        "offset": member.offset,
        "size": member.size,
        "bit_offset": member.bit_offset,
        "bit_size": member.bit_size,
        "type": member.type_name,
        "kind": member.kind,
        "count": member.count,
    }


def layout_doc(layout: StructLayout) -> Doc:
    """A struct's layout: size, source, and every member (nested ones too)."""
    return {
        "name": layout.title,
        "size": layout.size,
        "source": layout.source,
        "complete": layout.complete,
        "exact_size": layout.exact_size,
        "members": [member_doc(path, m, depth) for path, m, depth in layout.walk()],
    }


def collect_types(types: KernelTypes, kernel: str, struct: str | None) -> Doc:
    """What ``pykvm types`` shows: the sources, then one struct or the kernel-data ones."""
    doc: Doc = {"kernel": kernel, "sources": [source_doc(s) for s in types.sources]}
    if struct is not None:
        doc["struct"] = layout_doc(types.struct(struct))
        return doc
    rows: list[Doc] = []
    for name in KERNEL_STRUCTS:
        try:
            layout = types.find_struct(name)
        except pykvm.KvmError as exc:
            rows.append({"name": name, "found": False, "size": None, "source": None,
                         "error": str(exc)})
            continue
        if layout is None:
            rows.append({"name": name, "found": False, "size": None, "source": None,
                         "error": None})
        else:
            rows.append({"name": name, "found": True, "size": layout.size,
                         "source": layout.source, "error": None,
                         "complete": layout.complete})
    doc["structs"] = rows
    return doc


def _cstr(raw: bytes) -> str:
    """A fixed-size C string field as text (up to its first NUL)."""
    return raw.split(b"\0", 1)[0].decode("utf-8", "replace")


_NODEV = _U64
_PS_STATE = {1: "I", 2: "R", 3: "S", 4: "T", 5: "Z", 6: "W", 7: "L"}  # SIDL ... SLOCK


def proc_doc(kp: Any, page_size: int) -> Doc:
    """One ``KinfoProc`` record as the fields ``ps -axl`` shows (sizes in KiB)."""
    from pykvm.constants import KI_CTTY, KI_LOCKBLOCK, KI_SLEADER, NOCPU, P_CONTROLT

    wmesg = _cstr(kp.wmesg)
    lockname = _cstr(kp.lockname)
    if kp.kiflag & KI_LOCKBLOCK and lockname:
        mwchan = "*" + lockname
    else:
        mwchan = wmesg if wmesg else ("-" if kp.wchan == 0 else f"{kp.wchan:x}")
    state = _PS_STATE.get(kp.stat, "?")
    if kp.nice < 0:
        state += "<"
    elif kp.nice > 0:
        state += "N"
    if kp.kiflag & KI_SLEADER:
        state += "s"
    if kp.flag & P_CONTROLT and kp.pgid == kp.tpgid:
        state += "+"
    return {
        "uid": kp.uid,
        "pid": kp.pid,
        "ppid": kp.ppid,
        "cpu": kp.lastcpu if kp.oncpu == NOCPU else kp.oncpu,
        "pri": kp.pri_level,
        "nice": kp.nice,
        "vsz": kp.size // 1024,
        "rss": kp.rssize * page_size // 1024,
        "mwchan": mwchan,
        "wchan": kp.wchan,
        "stat": state,
        "tty": None if kp.tdev == _NODEV else kp.tdev,
        "ttyname": kp.extra.get("ttyname"),
        "ctty": bool(kp.kiflag & KI_CTTY),
        "runtime_us": kp.runtime,
        "command": _cstr(kp.comm),
        "tid": kp.tid,
        "thread": _cstr(kp.tdname),
        "numthreads": kp.numthreads,
        "paddr": kp.paddr,
    }


def collect_ps(kd: pykvm.Kvm, threads: bool, with_args: bool = False) -> Doc:
    """``kvm_getprocs(KERN_PROC_PROC)`` (with threads: ``| KERN_PROC_INC_THREAD``);
    ``with_args`` adds each process's arguments from the kernel's ``p_args`` cache
    (``args``: a list of strings, or None where the kernel kept none)."""
    from pykvm.kernel.procs import getargv, getprocs

    op = KERN_PROC_PROC | (KERN_PROC_INC_THREAD if threads else 0)
    page_size = int(kd.info().page_size)
    docs = []
    for kp in getprocs(kd, op):
        doc = proc_doc(kp, page_size)
        if with_args:
            try:
                argv = getargv(kd, kp, pargs=True)
            except pykvm.KvmError:
                argv = None
            doc["args"] = None if argv is None else [
                a.decode("utf-8", "replace") for a in argv]
        docs.append(doc)
    return {"threads": threads, "procs": docs}


def collect_swapinfo(kd: pykvm.Kvm) -> Doc:
    """``kvm_getswapinfo`` with ``SWIF_DEV_PREFIX``, sizes in 1K blocks, total last."""
    from pykvm.kernel.swap import getswapinfo

    page_kb = int(kd.info().page_size) // 1024
    rows = getswapinfo(kd, 1024, SWIF_DEV_PREFIX)

    def row(sw: Any) -> Doc:
        total, used = sw.total * page_kb, sw.used * page_kb
        return {"device": sw.devname, "blocks": total, "used": used,
                "avail": total - used, "flags": sw.flags}

    devices = [row(sw) for sw in rows[:-1]]
    total = row(rows[-1]) if rows else {"device": "Total", "blocks": 0, "used": 0,
                                        "avail": 0, "flags": 0}
    total["device"] = "Total"
    return {"devices": devices, "total": total}


def collect_loadavg(kd: pykvm.Kvm) -> Doc:
    """``kvm_getloadavg``: the 1, 5 and 15 minute averages."""
    from pykvm.kernel.loadavg import getloadavg

    return {"loadavg": getloadavg(kd, 3)}


CPUSTATES = ("user", "nice", "system", "interrupt", "idle")


def collect_cptime(kd: pykvm.Kvm) -> Doc:
    """``kvm_getcptime``: the five counters, in ticks, by name."""
    from pykvm.kernel.cptime import getcptime

    return {"cp_time": dict(zip(CPUSTATES, getcptime(kd), strict=False))}


def collect_pcpu(kd: pykvm.Kvm) -> Doc:
    """``kvm_getmaxcpu``, ``kvm_getncpus`` and every CPU's ``struct pcpu`` address."""
    from pykvm.kernel.pcpu import getmaxcpu, getncpus, pcpu_init

    maxcpu = getmaxcpu(kd)
    ncpus = getncpus(kd)
    table = pcpu_init(kd).table
    cpus = [{"cpu": i, "pcpu": addr} for i, addr in enumerate(table[:maxcpu]) if addr]
    return {"maxcpu": maxcpu, "ncpus": ncpus, "cpus": cpus}


def collect_dmesg(kd: pykvm.Kvm, whole: bool) -> Doc:
    """The message buffer's unread text, or (``whole``) the whole ring."""
    from pykvm.kernel.msgbuf import msgbuf

    unread, ring = msgbuf(kd)
    return {"all": whole, "text": (ring if whole else unread).decode("utf-8", "replace")}


# --------------------------------------------------------------------------- presentation


def yes_no(flag: bool) -> str:
    return "yes" if flag else "no"


def format_info(doc: Doc) -> list[str]:
    """``pykvm info`` text: one ``field  value`` line each."""
    version = doc["version"]
    rows = [
        ("kernel", doc["kernel"]),
        ("core", doc["core"]),
        ("format", doc["format"]),
        ("version", "-" if version is None else str(version)),
        ("arch", doc["arch"]),
        ("native", yes_no(doc["native"])),
        ("page size", str(doc["page_size"])),
        ("pages", str(doc["pages"])),
        ("kerndisp", f"{doc['kerndisp']:#x}" if doc["kerndisp"] else "0"),
    ]
    return [f"{name:<10} {value}" for name, value in rows]


def format_nlist(doc: Doc, digits: int = 16) -> list[str]:
    """``pykvm nlist`` text: NAME, TYPE (hex), VALUE (hex); missing names marked."""
    symbols: list[Doc] = doc["symbols"]
    width = max([4, *(len(s["name"]) for s in symbols)])
    lines = [f"{'NAME':<{width}}  TYPE  VALUE"]
    for sym in symbols:
        if sym["found"]:
            lines.append(
                f"{sym['name']:<{width}}  {sym['type']:#04x}  {sym['value']:#0{digits + 2}x}"
            )
        else:
            lines.append(f"{sym['name']:<{width}}  -     (not found)")
    return lines


def _printable(byte: int) -> str:
    return chr(byte) if 0x20 <= byte < 0x7F else "."


def hexdump(data: bytes, address: int = 0, digits: int = 8) -> Iterator[str]:
    """Lines as ``hexdump -C`` prints them, the first column being ``address + offset``.

    Like ``hexdump -C``, a run of lines equal to the one before is shown as one
    ``*``, and the last line is the address just past the data.
    """
    if not data:
        return
    previous: bytes | None = None
    starred = False
    for start in range(0, len(data), 16):
        row = data[start : start + 16]
        if row == previous and len(row) == 16:
            if not starred:
                yield "*"
                starred = True
            continue
        previous, starred = row, False
        cells = [f"{b:02x}" for b in row] + ["  "] * (16 - len(row))
        hexpart = " ".join(cells[:8]) + "  " + " ".join(cells[8:])
        text = "".join(_printable(b) for b in row)
        yield f"{(address + start) & _U64:0{digits}x}  {hexpart}  |{text}|"
    yield f"{(address + len(data)) & _U64:0{digits}x}"


def _prot(prot: int) -> str:
    return ("r" if prot & 1 else "-") + ("w" if prot & 2 else "-") + ("x" if prot & 4 else "-")


PAGES_HEADER = f"{'PADDR':<18} {'KMAP_VADDR':<18} {'DMAP_VADDR':<18} PROT {'OFFSET':>12} LEN"


def format_page(doc: Doc) -> str:
    """One ``kvm_walk_pages`` record: addresses in hex, prot as rwx, offset ``-`` if absent."""
    offset = "-" if doc["offset"] < 0 else f"{doc['offset']:#x}"
    return (
        f"{doc['paddr']:#018x} {doc['kmap_vaddr']:#018x} {doc['dmap_vaddr']:#018x} "
        f"{_prot(doc['prot']):<4} {offset:>12} {doc['len']:#x}"
    )


def format_sources(sources: Sequence[Doc]) -> list[str]:
    """The type-information sources, in order of precedence."""
    width = max([6, *(len(s["name"]) for s in sources)])
    lines = ["type information, in order of precedence:"]
    for src in sources:
        if src["error"]:
            state, detail = "error", src["error"]
        else:
            state, detail = yes_no(src["available"]), src["detail"]
        lines.append(f"  {src['name']:<{width}}  {state:<5}  {detail}")
    return lines


def format_types(doc: Doc) -> list[str]:
    """``pykvm types`` text: sources, then a struct's members or the struct table."""
    lines = [f"kernel  {doc['kernel']}"]
    lines += format_sources(doc["sources"])
    lines.append("")
    if "struct" in doc:
        lines += format_layout(doc["struct"])
        return lines
    rows: list[Doc] = doc["structs"]
    width = max([6, *(len(r["name"]) for r in rows)])
    lines.append(f"{'STRUCT':<{width}}  {'SIZE':>6}  SOURCE")
    for r in rows:
        if r["found"]:
            note = "" if r.get("complete", True) else " (some members only)"
            lines.append(f"{r['name']:<{width}}  {r['size']:>6}  {r['source']}{note}")
        else:
            why = r["error"] or "no type information"
            lines.append(f"{r['name']:<{width}}  {'-':>6}  ({why})")
    return lines


def _offset_text(m: Doc) -> str:
    if m["bit_size"] is None:
        return f"{m['offset']:#x}"
    return f"{m['offset']:#x}.{m['bit_offset'] % 8}"


def format_layout(doc: Doc) -> list[str]:
    """A struct's members: offset (``0x1a4``, bit-fields ``0x1a4.3``), size (bit-fields
    ``:3``), type and member path, nested members indented under their parent."""
    exact = "" if doc["exact_size"] else " (extent of the known members)"
    lines = [f"{doc['name']}: {doc['size']} bytes{exact}, from {doc['source']}"]
    members: list[Doc] = doc["members"]
    if not members:
        lines.append("(no members known)")
        return lines
    types = [m["type"] for m in members]
    twidth = min(40, max([4, *(len(t) for t in types)]))
    owidth = max([6, *(len(_offset_text(m)) for m in members)])
    lines.append(f"{'OFFSET':<{owidth}}  {'SIZE':>5}  {'TYPE':<{twidth}}  MEMBER")
    for m in members:
        size = f":{m['bit_size']}" if m["bit_size"] is not None else (
            "-" if m["size"] is None else str(m["size"]))
        name = m["path"].rpartition(".")[2] if m["path"] else f"(anonymous {m['kind']})"
        indent = "  " * m["depth"]
        lines.append(f"{_offset_text(m):<{owidth}}  {size:>5}  {m['type']:<{twidth}}  "
                     f"{indent}{name}")
    return lines


def _ps_time(usec: int) -> str:
    """``ps``'s TIME: minutes, seconds and hundredths."""
    secs, rest = divmod(usec, 1_000_000)
    return f"{secs // 60}:{secs % 60:02d}.{rest // 10_000:02d}"


def tname(name: str, ctty: bool) -> str:
    """``ps``'s TT (bin/ps/print.c ``tname``): the terminal's name without a ``tty`` or
    ``cua`` and then a ``pts/`` prefix, ``-`` appended when the session's tty vnode is
    gone (no ``KI_CTTY``); pykvm takes the name from the dump (``extra["ttyname"]``)."""
    if name.startswith(("tty", "cua")):
        name = name[3:]
    if name.startswith("pts/"):
        name = name[4:]
    return name if ctty else name + "-"


PS_COLUMNS = ("UID", "PID", "PPID", "CPU", "PRI", "NI", "VSZ", "RSS", "MWCHAN", "STAT",
              "TT", "TIME", "COMMAND")


def format_ps(doc: Doc) -> list[str]:
    """``pykvm ps`` text: the columns of ``ps -axl``, numbers right-aligned."""
    rows: list[list[str]] = []
    for p in doc["procs"]:
        command = p["command"]
        if p.get("args"):  # --args: the kernel's cached argument strings
            command = " ".join(p["args"])
        if doc["threads"] and p["thread"] and p["thread"] != command:
            command = f"{command}/{p['thread']}"
        tty = tname(p.get("ttyname"), p.get("ctty", True)) if p.get("ttyname") else (
            "-" if p["tty"] is None else f"{p['tty']:#x}")
        rows.append([str(p["uid"]), str(p["pid"]), str(p["ppid"]), str(p["cpu"]),
                     str(p["pri"]), str(p["nice"]), str(p["vsz"]), str(p["rss"]),
                     p["mwchan"][:8], p["stat"], tty, _ps_time(p["runtime_us"]), command])
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(PS_COLUMNS)]
    left = {"MWCHAN", "STAT", "TT", "COMMAND"}

    def line(cells: Sequence[str]) -> str:
        out = [c.ljust(w) if h in left else c.rjust(w)
               for c, w, h in zip(cells, widths, PS_COLUMNS, strict=True)]
        return " ".join(out[:-1]) + " " + cells[-1]

    return [line(PS_COLUMNS), *(line(r) for r in rows)]


def humanize(kbytes: int) -> str:
    """A size given in KiB as ``humanize_number`` shows it: ``512K``, ``1.4G``."""
    value = float(kbytes) * 1024
    for unit in ("B", "K", "M", "G", "T", "P"):
        if value < 1024 or unit == "P":
            if unit == "B" or value >= 10:
                return f"{value:.0f}{unit}"
            return f"{value:.1f}{unit}"
        value /= 1024
    raise AssertionError("unreachable")


def format_swapinfo(doc: Doc, human: bool = False) -> list[str]:
    """``swapinfo(8)`` text: one line per device, a Total line when there are several."""
    rows: list[Doc] = list(doc["devices"])
    if len(rows) > 1:
        rows.append(doc["total"])
    width = max([15, *(len(r["device"]) for r in rows)])
    size = "Size" if human else "1K-blocks"
    lines = [f"{'Device':<{width}} {size:>9} {'Used':>8} {'Avail':>8} Capacity"]
    for r in rows:
        cap = r["used"] * 100.0 / r["blocks"] if r["blocks"] else 0.0
        nums = [humanize(r[k]) if human else str(r[k]) for k in ("blocks", "used", "avail")]
        lines.append(f"{r['device']:<{width}} {nums[0]:>9} {nums[1]:>8} {nums[2]:>8} "
                     f"{cap:5.0f}%")
    return lines


def format_loadavg(doc: Doc) -> list[str]:
    """``load averages: 0.52, 0.41, 0.38`` (1, 5 and 15 minutes), as uptime(1) prints."""
    return ["load averages: " + ", ".join(f"{v:.2f}" for v in doc["loadavg"])]


def format_cptime(doc: Doc) -> list[str]:
    """The CPU time counters: one ``state  ticks  percent`` line each."""
    counters: dict[str, int] = doc["cp_time"]
    total = sum(counters.values())
    width = max(len(str(v)) for v in [*counters.values(), "TICKS"])
    lines = [f"{'STATE':<9}  {'TICKS':>{width}}  PERCENT"]
    for name, ticks in counters.items():
        pct = ticks * 100.0 / total if total else 0.0
        lines.append(f"{name:<9}  {ticks:>{width}}  {pct:6.2f}%")
    return lines


def format_pcpu(doc: Doc, digits: int = 16) -> list[str]:
    """The CPUs: ``maxcpu``/``ncpus``, then ``CPU  PCPU`` per CPU present."""
    lines = [f"maxcpu {doc['maxcpu']}, ncpus {doc['ncpus']}", "CPU  PCPU"]
    lines += [f"{c['cpu']:>3}  {c['pcpu']:#0{digits + 2}x}" for c in doc["cpus"]]
    return lines


def format_dmesg(doc: Doc) -> list[str]:
    """The message-buffer text, line by line."""
    text: str = doc["text"]
    return text.splitlines()


# --------------------------------------------------------------------------- output


class Output:
    """Where a command writes: text lines, one JSON document, or raw bytes."""

    def __init__(self) -> None:
        self.stream = sys.stdout

    def lines(self, lines: Iterable[str]) -> None:
        write = self.stream.write
        for line in lines:
            write(line)
            write("\n")

    def line(self, text: str = "") -> None:
        self.stream.write(text + "\n")

    def json(self, doc: Doc) -> None:
        self.stream.write(json.dumps(doc, indent=2) + "\n")

    def raw(self, data: bytes) -> None:
        self.stream.flush()
        buffer = getattr(self.stream, "buffer", None)
        if buffer is None:
            raise CliError("--raw needs a binary standard output")
        buffer.write(data)
        buffer.flush()


def error(message: str) -> None:
    sys.stderr.write(f"{PROG}: {message}\n")
    sys.stderr.flush()


# --------------------------------------------------------------------------- commands


def cmd_info(args: argparse.Namespace, out: Output) -> int:
    with open_dump(args.kernel, args.core) as kd:
        doc = collect_info(kd)
    if args.json:
        out.json(doc)
    else:
        out.lines(format_info(doc))
    return 0


def cmd_nlist(args: argparse.Namespace, out: Output) -> int:
    with open_dump(args.kernel, args.core) as kd:
        digits = addr_digits(kd.info().arch)
        doc = collect_nlist(kd, args.names)
    unreadable = doc["missing"] == -1
    any_missing = doc["missing"] != 0 or not all(s["found"] for s in doc["symbols"])
    if args.json:
        out.json(doc)
    elif not unreadable:
        out.lines(format_nlist(doc, digits))
    if unreadable:
        error("kernel symbol table unreadable")
    return 1 if any_missing else 0


def cmd_read(args: argparse.Namespace, out: Output) -> int:
    if args.raw and args.json:
        raise UsageError("read: --raw and --json exclude each other")
    target: Target = args.target
    length: int = args.length
    with open_dump(args.kernel, args.core) as kd:
        digits = addr_digits(kd.info().arch)
        address = resolve_target(kd, target)
        data = kd.read(address, length)
    if args.raw:
        out.raw(data)
    elif args.json:
        out.json(
            {
                "address": address,
                "symbol": target.symbol,
                "offset": target.offset,
                "length": length,
                "data": data.hex(),
            }
        )
    else:
        out.lines(hexdump(data, address, digits))
    if len(data) < length:
        out.stream.flush()
        error(f"short read ({len(data)} of {length} bytes)")
        return 1
    return 0


def cmd_pages(args: argparse.Namespace, out: Output) -> int:
    with open_dump(args.kernel, args.core) as kd:
        if args.json:
            out.json({"pages": list(iter_pages(kd, args.limit))})
        else:
            out.line(PAGES_HEADER)
            out.lines(format_page(doc) for doc in iter_pages(kd, args.limit))
    return 0


def _kernel_types(kernel: str, debug: Sequence[str]) -> tuple[KernelTypes, Any]:
    """The type information of a kernel without a dump: (types, closer)."""
    from pykvm.image.dwarf import DwarfFile
    from pykvm.image.elf import KernelImage

    try:
        fd = os.open(kernel, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise CliError(f"{kernel}: {pykvm.errors.strerror(exc.errno or 0)}") from None
    stack = contextlib.ExitStack()
    stack.callback(os.close, fd)
    try:
        image = KernelImage(kernel, fd)
        stack.callback(image.close)
        dwarfs = []
        for path in debug:
            dwarf = DwarfFile.open(path)
            stack.callback(dwarf.close)
            dwarfs.append(dwarf)
        types = KernelTypes.for_kernel(image, debug=dwarfs)
        stack.callback(types.close)
    except BaseException:
        stack.close()
        raise
    return types, stack


def cmd_types(args: argparse.Namespace, out: Output) -> int:
    if args.struct is not None:
        try:
            parse_type_name(args.struct)
        except ValueError as exc:
            raise UsageError(f"types: {exc}") from None
    if args.core is not None:
        with open_dump(args.kernel, args.core) as kd:
            for path in args.debug:
                kd.attach_debug(path)
            doc = collect_types(kd.types, args.kernel, args.struct)
    else:
        types, stack = _kernel_types(args.kernel, args.debug)
        with stack:
            doc = collect_types(types, args.kernel, args.struct)
    if args.json:
        out.json(doc)
    else:
        out.lines(format_types(doc))
    return 0


def _kdata_command(args: argparse.Namespace, out: Output, collect: Any,
                   present: Any) -> int:
    """Open the dump, ``collect(kd)`` a document, print it as JSON or ``present(doc, kd)``."""
    with open_dump(args.kernel, args.core) as kd:
        for path in getattr(args, "debug", []):
            kd.attach_debug(path)
        doc = collect(kd)
        if args.json:
            out.json(doc)
        else:
            out.lines(present(doc, kd))
    return 0


def cmd_ps(args: argparse.Namespace, out: Output) -> int:
    return _kdata_command(args, out, lambda kd: collect_ps(kd, args.threads, args.args),
                          lambda doc, kd: format_ps(doc))


def cmd_swapinfo(args: argparse.Namespace, out: Output) -> int:
    return _kdata_command(args, out, collect_swapinfo,
                          lambda doc, kd: format_swapinfo(doc, args.human))


def cmd_loadavg(args: argparse.Namespace, out: Output) -> int:
    return _kdata_command(args, out, collect_loadavg, lambda doc, kd: format_loadavg(doc))


def cmd_cptime(args: argparse.Namespace, out: Output) -> int:
    return _kdata_command(args, out, collect_cptime, lambda doc, kd: format_cptime(doc))


def cmd_pcpu(args: argparse.Namespace, out: Output) -> int:
    return _kdata_command(args, out, collect_pcpu,
                          lambda doc, kd: format_pcpu(doc, addr_digits(kd.info().arch)))


def cmd_dmesg(args: argparse.Namespace, out: Output) -> int:
    return _kdata_command(args, out, lambda kd: collect_dmesg(kd, args.all),
                          lambda doc, kd: format_dmesg(doc))


# --------------------------------------------------------------------------- demo


def cache_home() -> Path:
    """``$XDG_CACHE_HOME`` when set to an absolute path, else ``~/.cache``."""
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    if xdg and os.path.isabs(xdg):
        return Path(xdg)
    return Path.home() / ".cache"


def demo_dir() -> Path:
    return cache_home() / "pykvm" / f"demo-{_version()}"


@dataclass(frozen=True)
class DemoFiles:
    """A complete demo build in the cache."""

    directory: Path
    kernel: Path
    core: Path
    hole: int


def _load_demo(directory: Path) -> DemoFiles | None:
    """The demo in ``directory`` if it is complete (metadata written last), else None."""
    try:
        meta = json.loads((directory / DEMO_META).read_text(encoding="utf-8"))
        if (meta.get("seed") != DEMO_SEED or meta.get("fmt") != DEMO_FMT
                or meta.get("types") != DEMO_TYPES):
            return None
        files = DemoFiles(
            directory=directory,
            kernel=directory / str(meta["kernel"]),
            core=directory / str(meta["core"]),
            hole=int(meta["hole"]),
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    for path in (files.kernel, files.core):
        if not path.is_file() or path.stat().st_size == 0:
            return None
    return files


def ensure_demo(directory: Path) -> tuple[DemoFiles, bool]:
    """The cached demo dump, built first when missing or incomplete.

    The build happens in a temporary directory beside ``directory`` that is renamed
    into place only when complete, so an interrupted build never looks complete.
    Returns the files and whether they were built now.
    """
    found = _load_demo(directory)
    if found is not None:
        return found, False
    from pykvm.synth import build_amd64

    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    try:
        dump = build_amd64(tmp, seed=DEMO_SEED, fmt=DEMO_FMT, types=DEMO_TYPES)
        holes = list(dump.truth.holes)
        meta = {
            "pykvm": _version(),
            "seed": DEMO_SEED,
            "fmt": DEMO_FMT,
            "types": DEMO_TYPES,
            "kernel": Path(dump.kernel).name,
            "core": Path(dump.core).name,
            # An address the dump cannot serve, for the failing read.
            "hole": int(holes[0]) if holes else 0,
        }
        (tmp / DEMO_META).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        if directory.exists():
            # Incomplete leftovers (an interrupted build of another kind, or a
            # different recipe); a concurrent run may have just finished, though.
            if _load_demo(directory) is not None:
                return _load_demo_or_fail(directory), False
            shutil.rmtree(directory, ignore_errors=True)
        try:
            os.rename(tmp, directory)
        except OSError:
            # Another run won the race; use its build.
            return _load_demo_or_fail(directory), False
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return _load_demo_or_fail(directory), True


def _load_demo_or_fail(directory: Path) -> DemoFiles:
    found = _load_demo(directory)
    if found is None:
        raise CliError(f"{directory}: could not build the demo dump")
    return found


def _command(*words: object) -> str:
    return "$ " + " ".join(shlex.quote(str(w)) for w in (PROG, *words))


def cmd_demo(args: argparse.Namespace, out: Output) -> int:
    files, built = ensure_demo(demo_dir())
    kernel, core = str(files.kernel), str(files.core)
    with open_dump(kernel, core) as kd:
        info = collect_info(kd)
        digits = addr_digits(info["arch"])
        nlist = collect_nlist(kd, DEMO_SYMBOLS)
        version_entry = nlist["symbols"][0]
        if not version_entry["found"]:
            raise CliError("version: symbol not found in the demo kernel")
        vaddr = int(version_entry["value"])
        text = read_cstring(kd, vaddr, int(info["page_size"]))
        vlen = len(text) + 1
        vdata = kd.read(vaddr, vlen)
        pages = list(iter_pages(kd, DEMO_PAGES))
        ps = collect_ps(kd, threads=False)
        try:
            kd.read(files.hole, 16)
            fault = ""
        except pykvm.FaultError as exc:
            fault = str(exc)

    if args.json:
        out.json(
            {
                "kernel": kernel,
                "core": core,
                "cache": str(files.directory),
                "built": built,
                "info": info,
                "nlist": nlist,
                "version": {
                    "address": vaddr,
                    "text": text.decode("utf-8", "replace"),
                    "data": vdata.hex(),
                },
                "pages": pages,
                "ps": ps,
                "fault": {"address": files.hole, "length": 16, "error": fault},
            }
        )
        return 0

    state = "built just now" if built else "cached"
    out.lines(
        [
            f"pykvm {_version()} demo: a synthetic FreeBSD/amd64 kernel and {DEMO_FMT} "
            f"(seed {DEMO_SEED}, types {DEMO_TYPES}), {state}",
            f"  kernel: {kernel}",
            f"  core:   {core}",
            "Every command below can be run by hand on these two files.",
            "",
            _command("info", kernel, core),
        ]
    )
    out.lines(format_info(info))
    out.line()
    out.line(_command("nlist", kernel, core, *DEMO_SYMBOLS))
    out.lines(format_nlist(nlist, digits))
    out.line()
    out.line("The kernel's version string (the symbol 'version', read up to its NUL):")
    out.lines("  " + line for line in text.decode("utf-8", "replace").splitlines())
    out.line()
    out.line(_command("read", kernel, core, "version", vlen))
    out.lines(hexdump(vdata, vaddr, digits))
    out.line()
    out.line(_command("pages", kernel, core, "--limit", DEMO_PAGES))
    out.line(PAGES_HEADER)
    out.lines(format_page(doc) for doc in pages)
    out.line()
    out.line("The kernel's process table (kvm_getprocs, read through its CTF type information):")
    out.line(_command("ps", kernel, core))
    out.lines(format_ps(ps))
    out.line()
    out.line("A read of an address the dump does not hold fails with libkvm's error text:")
    out.line(_command("read", kernel, core, f"{files.hole:#x}", 16))
    out.line(f"{PROG}: {fault}" if fault else "(the read unexpectedly succeeded)")
    out.line("(exit status 1)" if fault else "")
    return 0


# --------------------------------------------------------------------------- main


COMMANDS = {
    "demo": cmd_demo,
    "info": cmd_info,
    "nlist": cmd_nlist,
    "read": cmd_read,
    "pages": cmd_pages,
    "types": cmd_types,
    "ps": cmd_ps,
    "swapinfo": cmd_swapinfo,
    "loadavg": cmd_loadavg,
    "cptime": cmd_cptime,
    "pcpu": cmd_pcpu,
    "dmesg": cmd_dmesg,
}


def _exit_status(code: object) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    sys.stderr.write(f"{code}\n")
    return 1


def _silence_stdout() -> None:
    """After EPIPE, point stdout at /dev/null so that the final flush stays quiet."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


def main(argv: list[str] | None = None) -> int:
    """Run the ``pykvm`` command with ``argv`` (default ``sys.argv[1:]``); return its status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return _exit_status(exc.code)
    out = Output()
    try:
        status = COMMANDS[args.command](args, out)
        out.stream.flush()
        return status
    except UsageError as exc:
        parser.print_usage(sys.stderr)
        error(str(exc))
        return 2
    except (pykvm.KvmError, CliError) as exc:
        with contextlib.suppress(OSError, ValueError):
            out.stream.flush()
        error(str(exc))
        return 1
    except BrokenPipeError:
        # The reader went away (``pykvm pages ... | head``): nothing left to say.
        _silence_stdout()
        return 1
    except OSError as exc:
        text = exc.strerror or str(exc)
        error(text if exc.filename is None else f"{exc.filename}: {text}")
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # an engine bug: report it in one line, not as a traceback
        if os.environ.get("PYKVM_TRACEBACK"):
            raise
        error(f"internal error: {type(exc).__name__}: {exc} (set PYKVM_TRACEBACK=1 for details)")
        return 1
