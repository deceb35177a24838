"""``struct kinfo_proc`` as FreeBSD lays it out, and the records libkvm's dump path builds.

The member list (:data:`KINFO_PROC`, with :data:`TIMEVAL`, :data:`RUSAGE`,
:data:`PRIORITY`, :data:`SIGSET`) is sys/sys/user.h (the FreeBSD 15.1 arrangement,
kernel-data.md 10.1-10.2); the compat layer's ctypes classes are derived from it too.

:func:`pack` turns one :class:`pykvm.kernel.procs.KinfoProc` (or any object with
attributes named like the C members minus ``ki_``) into the bytes
``kvm_proclist`` (lib/libkvm/kvm_proc.c) would have copied into its result array:
the record starts zeroed (``memset(kp, 0, sizeof *kp)`` at the top of every process,
which also clears the ``ki_structsize`` set once before the loop, so it is 0:
kernel-data.md 1.9 quirk 1), and only the fields of kernel-data.md 1.6 are set.
Fields the record object does not have are zero.  Integers are stored modulo
2**bits, as a C assignment does.  ``char`` arrays are copied as given and NUL-padded
(``ki_comm``/``ki_emul`` are written once into the zeroed record; a raw 17-byte
``ki_tdname`` that still carries a previous thread's tail is kept as is).

Attribute names: a member ``ki_X`` is attribute ``X``; ``sigset_t`` members are tuples
of four words; ``ki_groups`` a tuple of at most 16 gids (the rest zero); a leaf of
``ki_pri`` is its own name (``pri_level``); a leaf of ``ki_start``, ``ki_childtime``,
``ki_rusage`` or ``ki_rusage_ch`` is the path joined with ``_`` (``start_tv_sec``,
``rusage_ru_maxrss``, ``rusage_ru_utime_tv_usec``).  ``ki_tdev_freebsd11`` is the low
32 bits of ``tdev`` (``kp->ki_tdev_freebsd11 = kp->ki_tdev; /* truncate */``).
"""

from __future__ import annotations

import copy
import struct
from collections.abc import Callable, Iterable
from dataclasses import fields, is_dataclass
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from .model import Abi, Array, Leaf, Record, layout, struct_format
from .target import abi_for

if TYPE_CHECKING:
    from ..kvm import Kvm

__all__ = [
    "KINFO_PROC",
    "PRIORITY",
    "RUSAGE",
    "SIGSET",
    "TIMEVAL",
    "attribute_names",
    "pack",
    "pack_many",
    "records_bytes",
]

# sys/sys/user.h
WMESGLEN = 8
LOCKNAMELEN = 8
TDNAMLEN = 16
COMMLEN = 19
KI_EMULNAMELEN = 16
KI_NGROUPS = 16
LOGNAMELEN = 17
LOGINCLASSLEN = 17
MAXCOMLEN = 19
KI_NSPARE_INT = 2
KI_NSPARE_LONG = 12
KI_NSPARE_PTR = 4
#: ``ki_sparestrings`` of the FreeBSD 15.1 layout (46 before ki_reaper/ki_reapsubtree)
KI_NSPARE_STRINGS = 38
#: ``_SIG_WORDS`` of sys/sys/_sigset.h
SIG_WORDS = 4

#: ``sigset_t`` (sys/sys/_sigset.h)
SIGSET = Record("sigset_t", "Sigset", (("__bits", Array("uint", SIG_WORDS)),), flat=True)
#: ``struct timeval`` (sys/sys/_timeval.h)
TIMEVAL = Record("struct timeval", "Timeval", (("tv_sec", "time"), ("tv_usec", "long")))
#: ``struct priority`` (sys/sys/rtprio.h)
PRIORITY = Record("struct priority", "Priority", (
    ("pri_class", "uchar"),
    ("pri_level", "uchar"),
    ("pri_native", "uchar"),
    ("pri_user", "uchar"),
))
#: ``struct rusage`` (sys/sys/resource.h)
RUSAGE = Record("struct rusage", "Rusage", (
    ("ru_utime", TIMEVAL),
    ("ru_stime", TIMEVAL),
    *((name, "long") for name in (
        "ru_maxrss", "ru_ixrss", "ru_idrss", "ru_isrss", "ru_minflt", "ru_majflt",
        "ru_nswap", "ru_inblock", "ru_oublock", "ru_msgsnd", "ru_msgrcv",
        "ru_nsignals", "ru_nvcsw", "ru_nivcsw")),
))

#: ``struct kinfo_proc`` (sys/sys/user.h, FreeBSD 15.1 arrangement of the spares)
KINFO_PROC = Record("struct kinfo_proc", "KinfoProc", (
    ("ki_structsize", "int"),
    ("ki_layout", "int"),
    ("ki_args", "ptr"),
    ("ki_paddr", "ptr"),
    ("ki_addr", "ptr"),
    ("ki_tracep", "ptr"),
    ("ki_textvp", "ptr"),
    ("ki_fd", "ptr"),
    ("ki_vmspace", "ptr"),
    ("ki_wchan", "ptr"),
    ("ki_pid", "int"),  # pid_t
    ("ki_ppid", "int"),
    ("ki_pgid", "int"),
    ("ki_tpgid", "int"),
    ("ki_sid", "int"),
    ("ki_tsid", "int"),
    ("ki_jobc", "short"),
    ("ki_spare_short1", "short"),
    ("ki_tdev_freebsd11", "uint"),  # uint32_t
    ("ki_siglist", SIGSET),
    ("ki_sigmask", SIGSET),
    ("ki_sigignore", SIGSET),
    ("ki_sigcatch", SIGSET),
    ("ki_uid", "uint"),  # uid_t
    ("ki_ruid", "uint"),
    ("ki_svuid", "uint"),
    ("ki_rgid", "uint"),  # gid_t
    ("ki_svgid", "uint"),
    ("ki_ngroups", "short"),
    ("ki_spare_short2", "short"),
    ("ki_groups", Array("uint", KI_NGROUPS)),
    ("ki_size", "ulong"),  # vm_size_t
    ("ki_rssize", "long"),  # segsz_t
    ("ki_swrss", "long"),
    ("ki_tsize", "long"),
    ("ki_dsize", "long"),
    ("ki_ssize", "long"),
    ("ki_xstat", "ushort"),
    ("ki_acflag", "ushort"),
    ("ki_pctcpu", "uint"),  # fixpt_t
    ("ki_estcpu", "uint"),
    ("ki_slptime", "uint"),
    ("ki_swtime", "uint"),
    ("ki_cow", "uint"),
    ("ki_runtime", "uint64"),
    ("ki_start", TIMEVAL),
    ("ki_childtime", TIMEVAL),
    ("ki_flag", "long"),
    ("ki_kiflag", "long"),
    ("ki_traceflag", "int"),
    ("ki_stat", "char"),
    ("ki_nice", "schar"),
    ("ki_lock", "char"),
    ("ki_rqindex", "char"),
    ("ki_oncpu_old", "uchar"),
    ("ki_lastcpu_old", "uchar"),
    ("ki_tdname", Array("char", TDNAMLEN + 1)),
    ("ki_wmesg", Array("char", WMESGLEN + 1)),
    ("ki_login", Array("char", LOGNAMELEN + 1)),
    ("ki_lockname", Array("char", LOCKNAMELEN + 1)),
    ("ki_comm", Array("char", COMMLEN + 1)),
    ("ki_emul", Array("char", KI_EMULNAMELEN + 1)),
    ("ki_loginclass", Array("char", LOGINCLASSLEN + 1)),
    ("ki_moretdname", Array("char", MAXCOMLEN - TDNAMLEN + 1)),
    ("ki_sparestrings", Array("char", KI_NSPARE_STRINGS)),
    ("ki_spareints", Array("int", KI_NSPARE_INT)),
    ("ki_reaper", "int"),
    ("ki_reapsubtree", "int"),
    ("ki_tdev", "uint64"),
    ("ki_oncpu", "int"),
    ("ki_lastcpu", "int"),
    ("ki_tracer", "int"),
    ("ki_flag2", "int"),
    ("ki_fibnum", "int"),
    ("ki_cr_flags", "uint"),
    ("ki_jid", "int"),
    ("ki_numthreads", "int"),
    ("ki_tid", "int"),  # lwpid_t
    ("ki_pri", PRIORITY),
    ("ki_rusage", RUSAGE),
    ("ki_rusage_ch", RUSAGE),
    ("ki_pcb", "ptr"),
    ("ki_kstack", "ptr"),
    ("ki_udata", "ptr"),
    ("ki_tdaddr", "ptr"),
    ("ki_pd", "ptr"),
    ("ki_uerrmsg", "ptr"),
    ("ki_spareptrs", Array("ptr", KI_NSPARE_PTR)),
    ("ki_sparelongs", Array("long", KI_NSPARE_LONG)),
    ("ki_sflag", "long"),
    ("ki_tdflags", "long"),
))


def _attr_names(leaves: list[Leaf]) -> list[str]:
    """The record attribute of each leaf (module docstring, "Attribute names")."""
    last = [leaf.path[-1] for leaf in leaves]
    out = []
    for leaf, name in zip(leaves, last, strict=True):
        if len(leaf.path) == 1 or last.count(name) == 1:
            out.append(name.removeprefix("ki_"))
        else:
            out.append("_".join(p.removeprefix("ki_") for p in leaf.path))
    return out


def _available(cls: type) -> frozenset[str]:
    """The attributes every instance of ``cls`` has (dataclass fields, properties,
    class attributes)."""
    names = {n for n in dir(cls) if not n.startswith("__")}
    if is_dataclass(cls):
        names.update(f.name for f in fields(cls))
    return frozenset(names)


_Packer = Callable[[Any, int], bytes]
_PackerInto = Callable[[bytearray, int, Any, int], None]
#: what a fast packer may raise for a value it cannot store as given
_RETRY = (struct.error, TypeError, OverflowError, AttributeError, KeyError)


def _flush(run: list[str], args: list[str], env: dict[str, Any]) -> None:
    """Emit the pending run of instance-dict values as one ``itemgetter`` call."""
    if len(run) == 1:
        args.append(f"d[{run[0]!r}]")
    elif run:
        getter = f"_g{len(env)}"
        env[getter] = itemgetter(*run)
        args.append(f"*{getter}(d)")
    run.clear()


_COMPILED: dict[tuple[Abi, type], tuple[_Packer, _Packer, _PackerInto, _PackerInto]] = {}


def _packers(abi: Abi, cls: type) -> tuple[_Packer, _Packer, _PackerInto, _PackerInto]:
    """:func:`_compiled`, cached per (ABI, record class)."""
    key = (abi, cls)
    got = _COMPILED.get(key)
    if got is None:
        got = _COMPILED[key] = _compiled(abi, cls)
    return got


def _compiled(abi: Abi, cls: type) -> tuple[_Packer, _Packer, _PackerInto, _PackerInto]:
    """Two packers of ``struct kinfo_proc`` on ``abi`` for records of class ``cls``.

    Members the class has no attribute for are padding of the ``struct`` format (zero
    bytes, no argument).  The fast packer hands the values over as they are, with the
    C types' signedness; the careful one (used when the fast one refuses a value)
    masks every integer to its width, pads ``ki_groups`` and takes any byte string.
    Each is one generated function around one precompiled ``struct.Struct``; the
    last two are the same packers writing into a buffer at an offset.
    """
    generic = not is_dataclass(cls)  # attributes unknown until an instance is read
    have = _available(cls)
    # instance attributes the fast packer may read straight from the instance dict
    in_dict: frozenset[str] = frozenset()
    if is_dataclass(cls) and "__slots__" not in vars(cls):
        in_dict = frozenset(f.name for f in fields(cls))
    _, every = struct_format(KINFO_PROC, abi)
    name_of = dict(zip((leaf.path for leaf in every), _attr_names(every), strict=True))

    def wanted(leaf: Leaf) -> bool:
        name = name_of[leaf.path]
        return (generic or name in have or name == "structsize"
                or (name == "tdev_freebsd11" and "tdev" in have))

    out = []
    for careful in (False, True):
        fmt, leaves = struct_format(KINFO_PROC, abi, signed=not careful, keep=wanted)
        packer = struct.Struct(fmt)
        assert packer.size == layout(KINFO_PROC, abi).size == abi.kinfo_proc_size
        env: dict[str, Any] = {"_pack": packer.pack, "_pack_into": packer.pack_into}
        args: list[str] = []
        run: list[str] = []  # consecutive plain values from the instance dict

        for leaf in leaves:
            name = name_of[leaf.path]
            width = leaf.size // max(leaf.count, 1)
            mask = hex((1 << (8 * width)) - 1)
            plain = leaf.count == 0 or leaf.kind == "char"
            # C: ki_tdev_freebsd11 = ki_tdev, truncated
            derived = name == "tdev_freebsd11" and (generic or "tdev" in have)
            if not careful and plain and name in in_dict and not derived:
                run.append(name)
                continue
            _flush(run, args, env)
            default = "b''" if leaf.kind == "char" and leaf.count else "()" if leaf.count \
                else "0"
            if name == "structsize":
                value = "structsize"
            elif generic:
                value = f"getattr(kp, {'tdev' if derived else name!r}, {default})"
            elif derived:
                value = "d['tdev']" if "tdev" in in_dict and not careful else "kp.tdev"
            elif name in in_dict and not careful:
                value = f"d[{name!r}]"
            else:
                value = f"kp.{name}"
            if leaf.kind == "char" and leaf.count:
                args.append(f"bytes({value})" if careful else value)
            elif leaf.count:
                zeros = f"_z{leaf.count}"
                env[zeros] = (0,) * leaf.count
                if careful:
                    args.append(f"*[v & {mask} for v in (tuple({value}) + {zeros})"
                                f"[:{leaf.count}]]")
                elif name == "groups":  # ki_ngroups entries; the rest stays zero
                    args.append(f"*({value} + {zeros})[:{leaf.count}]")
                else:
                    args.append(f"*{value}")
            elif careful or name == "tdev_freebsd11":
                args.append(f"{value} & {mask}")
            else:
                args.append(value)
        _flush(run, args, env)
        body = ",\n        ".join(args)
        head = "    d = kp.__dict__\n" if in_dict and not careful else ""
        src = (f"def _f(kp, structsize):\n{head}    return _pack(\n        {body})\n"
               f"def _g(buf, off, kp, structsize):\n{head}"
               f"    _pack_into(buf, off,\n        {body})\n")
        ns: dict[str, Any] = {}
        exec(src, env, ns)  # generated once per (ABI, class), as dataclasses does
        out.append((ns["_f"], ns["_g"]))
    return out[0][0], out[1][0], out[0][1], out[1][1]


def attribute_names(abi: Abi) -> list[str]:
    """The record attributes :func:`pack` reads, in the order of their offsets."""
    _, leaves = struct_format(KINFO_PROC, abi)
    return _attr_names(leaves)


def _raw_tdname(kp: Any) -> Any:
    """``kp``, or a copy whose ``tdname`` is the raw ``ki_tdname`` array the walk kept in
    ``extra["tdname_raw"]`` (an earlier thread's name after the NUL, kernel-data.md 1.9
    quirk 6)."""
    extra = getattr(kp, "extra", None)
    if not extra or "tdname_raw" not in extra:
        return kp
    kp = copy.copy(kp)
    kp.tdname = extra["tdname_raw"]
    return kp


def pack(kp: Any, abi: Abi, *, structsize: int = 0) -> bytes:
    """The ``struct kinfo_proc`` bytes ``kvm_proclist`` builds for record ``kp`` on
    ``abi`` (``KINFO_PROC_SIZE`` bytes in the target's byte order).

    ``structsize`` is what lands in ``ki_structsize``: 0 as on libkvm's dump path; a
    caller imitating the live path (``sysctl kern.proc``) passes
    ``abi.kinfo_proc_size``.
    """
    kp = _raw_tdname(kp)
    fast, careful, _, _ = _packers(abi, type(kp))
    try:
        return fast(kp, structsize)
    except _RETRY:
        return careful(kp, structsize)


def pack_many(records: Iterable[Any], abi: Abi, *, structsize: int = 0) -> bytes:
    """:func:`pack` of every record, concatenated (libkvm's ``kd->procbase`` array)."""
    items = list(records)
    size = abi.kinfo_proc_size
    buf = bytearray(size * len(items))
    cls: type | None = None
    fast: _PackerInto | None = None
    careful: _PackerInto | None = None
    off = 0
    for kp in items:
        kp = _raw_tdname(kp)
        if type(kp) is not cls:
            cls = type(kp)
            _, _, fast, careful = _packers(abi, cls)
        assert fast is not None and careful is not None
        try:
            fast(buf, off, kp, structsize)
        except _RETRY:
            careful(buf, off, kp, structsize)
        off += size
    return bytes(buf)


def records_bytes(kd: Kvm, records: Iterable[Any], *, structsize: int = 0,
                  legacy: bool = False) -> bytes:
    """The records ``kvm_getprocs`` returned for ``kd`` as the C array libkvm hands out,
    laid out for the dump's architecture (:func:`pykvm.abi.abi_for`).

    ``legacy=True`` (pykvm extension, kernel-data.md 10.1): the bytes the libkvm of the
    dump's own release wrote.  For a kernel with a 32-bit ``dev_t`` (FreeBSD <= 11: its
    ``struct kinfo_proc`` has a 4-byte ``ki_tdev``, or its ``dev_t`` typedef is 4 bytes)
    the 64-bit ``ki_tdev`` did not exist -- those bytes were ``ki_spareints`` -- so they
    are zero and the device number is only the 32-bit field at the old ``ki_tdev``
    offset (``ki_tdev_freebsd11`` now).  Use it with records from
    ``getprocs(..., legacy=True)``.
    """
    abi = abi_for(kd)
    data = pack_many(records, abi, structsize=structsize)
    if not legacy or not data or not _dev_t_32(kd):
        return data
    off, size = layout(KINFO_PROC, abi).offsets()["ki_tdev"]
    buf = bytearray(data)
    zero = bytes(size)
    for base in range(0, len(buf), abi.kinfo_proc_size):
        buf[base + off:base + off + size] = zero
    return bytes(buf)


def _dev_t_32(kd: Kvm) -> bool:
    """Whether the dump's kernel has a 32-bit ``dev_t`` (sys/sys/types.h before
    FreeBSD 12's 64-bit inode change): the size of ``ki_tdev`` in the kernel's own
    ``struct kinfo_proc`` when its type information describes it, else of ``dev_t``."""
    from ..errors import KvmError

    kinfo = kd.types.find_struct("kinfo_proc")
    if kinfo is not None and kinfo.has("ki_tdev"):
        return kinfo.member("ki_tdev").size == 4
    try:
        return kd.types.type("dev_t").size == 4
    except KvmError:
        return False
