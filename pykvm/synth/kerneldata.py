"""Kernel data for synthetic dumps: a process table, swap, load, CPU time, per-CPU areas.

:func:`lay_out_kernel_data` writes, with the offsets of one :class:`~.cmodel.LayoutTruth`
(so they move from seed to seed), what libkvm's kernel-data calls read (kernel-data.md
sections 1, 3-6 and 7A): ``allproc`` (and ``zombproc`` in eras that have it) with
processes, threads, credentials, process groups, sessions, a tty, a zombie, vmspaces and
a ``sysentvec``; ``averunnable``/``fscale``; ``swtailq`` with ``struct swdevt`` entries,
their vnodes and cdevs, ``dmmax`` (era <= 11) and ``nsw_cluster_max``; per-CPU
``struct pcpu`` (``cpuid_to_pcpu``, ``__pcpu``, ``mp_ncpus``), DPCPU regions
(``dpcpu_off``, the ``set_pcpu`` template between ``__start_set_pcpu`` and
``__stop_set_pcpu``); ``msgbufp``; ``proc0``; optionally the old ``cp_time`` array.

It is architecture-neutral: the caller supplies an :class:`Arena` (kernel-map memory that
is mapped and dumped), the kernel variables' addresses and a way to set their bytes.
The values written are returned as a :class:`KernelDataTruth`, computed here, never by
reading the dump back.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from . import elfwriter as ew
from ._prng import Rng
from .cmodel import ByteOrder, LayoutTruth, StructTruth
from .kernel import SEC_BSS, SynthKernel

MSG_MAGIC = 0x063062
P_CONTROLT = 0x00002
P_SYSTEM = 0x00200
P_KPROC = 0x00004
P_EXEC = 0x04000
P_INMEM = 0x10000000
CRED_FLAG_CAPMODE = 0x1
PRS_NORMAL = 1
PRS_ZOMBIE = 2
TDS_INHIBITED = 1
TDS_CAN_RUN = 2
TDS_RUNQ = 3
TDS_RUNNING = 4
TDI_SLEEPING = 0x0002
VREG = 1
VCHR = 4
SW_CLOSING = 0x04
CPUSTATES = 5
FSCALE = 2048
#: ``sv_name`` of the native ``sysentvec`` (``elf64_freebsd_sysvec`` / ``elf32_...``)
EMUL_NAME = "FreeBSD ELF64"
EMUL_NAME_32 = "FreeBSD ELF32"
#: DPCPU variables of the synthetic kernel: name (without ``pcpu_entry_``), size
DPCPU_ENTRIES: tuple[tuple[str, int], ...] = (("synth_counter", 8), ("synth_stats", 32))
#: VNET variables of the synthetic VIMAGE kernel: name (without ``vnet_entry_``), size
VNET_ENTRIES: tuple[tuple[str, int], ...] = (("synth_ifcnt", 4), ("synth_table", 32))
#: ``VNET_MAGIC_N`` (sys/net/vnet.h)
VNET_MAGIC_N = 0x3E0D8F29
#: ``vnet_state`` of a vnet whose SYSINITs have all run (``SI_SUB_VNET_DONE``)
VNET_STATE_DONE = 0xDC00000


class Arena(Protocol):
    """Kernel-map memory that is mapped and dumped."""

    def alloc(self, size: int, align: int = 16) -> int:
        """Reserve ``size`` bytes; return their kernel virtual address."""

    def write(self, va: int, data: bytes) -> None:
        """Store ``data`` at ``va`` (inside an allocation)."""


@dataclass(frozen=True)
class ThreadTruth:
    """One thread as written."""

    addr: int
    tid: int
    name: str
    state: int
    inhibitors: int
    priority: int
    base_pri: int
    oncpu: int
    lastcpu: int
    wmesg: str | None
    wchan: int


@dataclass(frozen=True)
class ProcTruth:
    """One process as written (raw kernel values, not kinfo_proc derivations)."""

    addr: int
    pid: int
    ppid: int
    pptr: int
    pgid: int
    sid: int
    session_leader: int
    uid: int
    ruid: int
    svuid: int
    rgid: int
    svgid: int
    egid: int
    #: the groups as libkvm's ki_groups gives them (effective gid first)
    groups: tuple[int, ...]
    cr_ngroups: int
    jid: int
    comm: str
    state: int
    flag: int
    nice: int
    xexit: int
    xsig: int
    login: str
    tty: str | None
    tty_pgid: int
    tty_sid: int
    emul: str
    size: int
    rssize: int
    swrss: int
    tsize: int
    dsize: int
    ssize: int
    zombie: bool
    list_name: str
    threads: tuple[ThreadTruth, ...]
    #: the argv cached in ``p_args`` (``struct pargs``), None when ``p_args`` is NULL
    args: tuple[str, ...] | None = None
    #: the process group's ``pg_jobc`` (None: the kernel has no such member, FreeBSD 14+)
    pg_jobc: int | None = None
    #: ``cr_flags`` of the credential (``CRED_FLAG_CAPMODE`` for the jailed daemon)
    cr_flags: int = 0
    #: ``p_tracevp`` (0, or the vnode a ktrace writes to; kernels with that member)
    tracevp: int = 0


@dataclass(frozen=True)
class SwapTruth:
    """One ``struct swdevt`` as written (``dev`` is NODEV for a swap file)."""

    addr: int
    name: str
    dev: int
    nblks: int
    used: int
    flags: int


@dataclass(frozen=True)
class MsgbufTruth:
    """``*msgbufp`` and what a reader derives from it."""

    addr: int
    ring: int
    size: int
    wseq: int
    rseq: int
    seqmod: int
    unread: bytes
    whole: bytes


@dataclass(frozen=True)
class VnetInstanceTruth:
    """One ``struct vnet`` as written, with its copy of the ``set_vnet`` variables."""

    addr: int
    #: ``vnet_data_mem``: where this vnet's copy of the set lies
    data_mem: int
    #: ``vnet_data_base`` = ``data_mem - __start_set_vnet`` (modulo the pointer size)
    data_base: int
    #: ``pr_id`` of every prison whose ``pr_vnet`` is this vnet (0: prison0)
    jids: tuple[int, ...]
    #: ``vnet_entry_<name>`` -> the bytes of this vnet's copy of that variable
    data: Mapping[str, bytes]


@dataclass(frozen=True)
class VnetTruth:
    """The VNET layout of a VIMAGE kernel (kernel-data.md section 7)."""

    #: ``__start_set_vnet`` / ``__stop_set_vnet``
    start: int
    stop: int
    #: ``vnet_entry_<name>`` -> (template address, size)
    entries: Mapping[str, tuple[int, int]]
    #: the template's bytes of each variable (what ``.bss`` holds at the symbol)
    template: Mapping[str, bytes]
    #: the vnets in ``vnet_head`` order (newest first: the jail's, then ``vnet0``)
    vnets: tuple[VnetInstanceTruth, ...]
    #: ``vnet0`` (the host's), which libkvm selects on a crash dump (proc0 -> prison0)
    vnet0: int
    #: the vnet libkvm's ``_kvm_vnet_selectpid`` selects on this dump
    selected: int
    prison0: int
    jail_prison: int
    jail_id: int

    def vnet(self, addr: int) -> VnetInstanceTruth:
        """The vnet written at ``addr``."""
        return next(v for v in self.vnets if v.addr == addr)


@dataclass(frozen=True)
class KernelDataTruth:
    """Everything laid out, as written (see the module docstring)."""

    layout: LayoutTruth
    era: str
    #: processes in list-walk order: ``allproc`` first, then ``zombproc``
    procs: tuple[ProcTruth, ...]
    allproc: tuple[int, ...]
    zombproc: tuple[int, ...] | None
    nprocs: int
    ticks: int
    hz: int
    cpu_tick_frequency: int
    ldavg: tuple[int, int, int]
    fscale: int
    swap: tuple[SwapTruth, ...]
    dmmax: int | None
    nsw_cluster_max: int
    #: the ``cp_time`` symbol's value when the kernel has one (else None)
    cp_time_symbol: tuple[int, ...] | None
    cp_time: tuple[tuple[int, ...], ...]
    cp_time_sum: tuple[int, ...]
    maxcpu: int
    ncpus: int
    pcpu: tuple[int, ...]
    dpcpu_off: tuple[int, ...]
    dpcpu_start: int
    dpcpu_stop: int
    #: ``pcpu_entry_<name>`` -> (template address, size)
    dpcpu_entries: Mapping[str, tuple[int, int]]
    #: ``name`` -> per-CPU u64 value of the first word of that DPCPU variable
    dpcpu_values: Mapping[str, tuple[int, ...]]
    msgbuf: MsgbufTruth
    proc0: int
    dumptid: int
    #: symbols the machine must add to the kernel (``STT_NOTYPE`` in ``.bss``), e.g. the
    #: ``__start_set_pcpu``/``__stop_set_pcpu`` linker-set bounds
    symbols: Mapping[str, int] = field(default_factory=dict)
    #: the VNET layout (kernels with ``options VIMAGE``, era >= 12), else None
    vnet: VnetTruth | None = None

    def pids(self) -> list[int]:
        """The pids in list-walk order."""
        return [p.pid for p in self.procs]


def kernel_variables_of(layout: LayoutTruth, *, cp_time: bool) -> list[str]:
    """The TypeSet variables the kernel defines (``cp_time`` only when asked for)."""
    return [v for v in layout.variables if v != "cp_time" or cp_time]


class StructWriter:
    """Bytes of one struct, filled member by member through the layout's offsets."""

    def __init__(self, st: StructTruth, order: ByteOrder) -> None:
        self.st = st
        self.order = order
        self.buf = bytearray(st.size)

    def has(self, path: str) -> bool:
        return self.st.has(path)

    def set(self, path: str, value: int, index: int = 0, elem: int | None = None) -> None:
        """Store an integer at ``path`` (element ``index`` of ``elem`` bytes for arrays)."""
        m = self.st.member(path)
        if m.bit_size is not None:
            first = m.bit_offset // 8
            shift = m.bit_offset % 8
            nbytes = (shift + m.bit_size + 7) // 8
            cur = int.from_bytes(self.buf[first : first + nbytes], "little")
            mask = ((1 << m.bit_size) - 1) << shift
            cur = (cur & ~mask) | ((value << shift) & mask)
            self.buf[first : first + nbytes] = cur.to_bytes(nbytes, "little")
            return
        size = m.size if elem is None else elem
        off = m.offset + index * size
        if off + size > m.offset + m.size:
            raise ValueError(f"{self.st.name}.{path}[{index}] out of range")
        self.buf[off : off + size] = (value % (1 << (8 * size))).to_bytes(size, self.order)

    def set_if(self, path: str, value: int) -> None:
        if self.st.has(path):
            self.set(path, value)

    def set_bytes(self, path: str, data: bytes) -> None:
        m = self.st.member(path)
        if len(data) > m.size:
            raise ValueError(f"{self.st.name}.{path}: {len(data)} bytes do not fit")
        self.buf[m.offset : m.offset + len(data)] = data

    def offset(self, path: str) -> int:
        return self.st.member(path).offset

    def bytes(self) -> bytes:
        return bytes(self.buf)


@dataclass
class _Proc:
    pid: int
    comm: str
    uid: int
    gid: int
    groups: list[int]
    parent: int | None  # index
    pgrp: int  # index
    nthreads: int
    zombie: bool = False
    ctty: bool = False
    jail: bool = False


#: processes of the fixed plan (``extra_procs`` come after them)
_FIXED_PROCS = 7
#: commands of the extra processes (one of MAXCOMLEN + 1 characters)
_EXTRA_NAMES = ("httpd", "postgres", "cron", "syslogd", "python3.11", "node", "bash",
                "sshd", "nginx", "redis-server", "worker_proc_long_nm")
#: extra processes per session and per process group
_PER_SESSION = 25
_PER_PGRP = 5


def _extra_plan(rng: Rng, count: int, plan: list[_Proc], pg_leader: list[int],
                pg_session: list[int], sessions: list[int], ttys: dict[int, str],
                args: dict[int, tuple[str, ...]], logins: list[str]) -> None:
    """Append ``count`` ordinary processes to the plan: sessions of 25 processes (every
    other one with its own pseudo-terminal ``pts/N`` as controlling tty), process groups
    of 5, one user a session (credentials shared within a session, as fork shares
    them), two threads each; two processes of three have an argv in ``p_args``."""
    pid = 2000 + rng.below(500)
    for k in range(count):
        i = len(plan)
        if k % _PER_SESSION == 0:
            si = len(sessions)
            sessions.append(i)
            user = 1001 + rng.below(40)
            logins.append(f"u{user}")
            if si % 2 == 0:
                ttys[si] = f"pts/{10 + len(ttys)}"
            groups = ([user], [user, 0], [user, 5, 920])[rng.below(3)]
            leader = i
        if k % _PER_PGRP == 0:
            pg_leader.append(i)
            pg_session.append(len(sessions) - 1)
        comm = _EXTRA_NAMES[rng.below(len(_EXTRA_NAMES))]
        plan.append(_Proc(pid, comm, user, user, list(groups), 1 if i == leader else leader,
                          len(pg_leader) - 1, 2, ctty=len(sessions) - 1 in ttys))
        if k % 3 != 2:
            args[i] = (f"/usr/local/bin/{comm}", "-c", f"/etc/{comm}.conf", f"--id={k}")
        pid += 1 + rng.below(3)


def kernel_data_span(layout: LayoutTruth, extra_procs: int = 0) -> int:
    """Bytes of arena :func:`lay_out_kernel_data` needs at most (the fixed plan fits in
    2 MiB; every extra process adds its structures, a share of its group's, session's
    and tty's, its argv and the allocators' alignment)."""
    size = layout.structs
    per = (size["proc"].size + 2 * size["thread"].size + size["vmspace"].size + 5 * 64
           + (size["pgrp"].size + 64) // _PER_PGRP
           + (size["session"].size + size["tty"].size + size["cdev"].size
              + size["vnode"].size + 4 * 64) // _PER_SESSION + 128)
    creds = -(-extra_procs // _PER_SESSION) * (size["ucred"].size + 64 + 64)
    return (2 << 20) + extra_procs * per + creds


def lay_out_kernel_data(
    layout: LayoutTruth,
    arena: Arena,
    *,
    seed: int,
    var_address: Callable[[str], int],
    set_var: Callable[[str, bytes], None],
    hz: int,
    dumptid: int,
    msgbuf_ring_va: int,
    msgbuf: bytes,
    cp_time_symbol: bool = False,
    extra_procs: int = 0,
) -> KernelDataTruth:
    """Write the kernel data of machine ``seed`` into ``arena`` and the kernel variables.

    ``extra_procs`` adds that many ordinary processes (two threads each, see
    :func:`_extra_plan`) after the fixed plan; 0 writes exactly the fixed plan.  The
    arena must then be large enough (:func:`kernel_data_span`).
    """
    rng = Rng(seed, "kerneldata")
    target = layout.target
    order = target.byteorder
    ptr = target.ptr_size
    long_size = target.long_size
    era = layout.era
    ft = layout.features
    structs = layout.structs

    def new(name: str) -> StructWriter:
        return StructWriter(structs[name], order)

    def word(value: int, size: int = ptr) -> bytes:
        return (value % (1 << (8 * size))).to_bytes(size, order)

    def string(text: str) -> int:
        data = text.encode() + b"\0"
        va = arena.alloc(len(data), 1)
        arena.write(va, data)
        return va

    def var_bytes(name: str, data: bytes) -> None:
        set_var(name, data)

    def alloc(name: str) -> int:
        return arena.alloc(structs[name].size, 64)

    #: extra kernel symbols (name -> value): linker-set bounds and the like
    symbols: dict[str, int] = {}
    dev64 = ft.get("dev_t_64", True)
    nodev = (1 << 64) - 1 if dev64 else (1 << 32) - 1
    ncpus = rng.between(2, 4)
    maxcpu = target.maxcpu

    # ---------------------------------------------------------------- the process plan
    long_name = "a_very_long_comm_nm"  # MAXCOMLEN (19) characters
    assert len(long_name) == 19
    base_pid = 600 + rng.below(300)
    uid = 1001 + rng.below(50)
    gid = 1001 + rng.below(50)
    plan = [
        _Proc(0, "kernel", 0, 0, [0], None, 0, 3),
        _Proc(1, "init", 0, 0, [0], 0, 1, 1),
        _Proc(base_pid, "sshd", 0, 0, [0, 5], 1, 2, 1),
        _Proc(base_pid + 7, "sh", uid, gid, [gid, 0, 5, 920], 2, 3, 1, ctty=True),
        _Proc(base_pid + 9, long_name, uid, gid, [gid, 0, 5, 920], 3, 4, 3, ctty=True),
        _Proc(base_pid + 12, "sleep", uid, gid, [gid], 3, 4, 1, zombie=True, ctty=True),
        _Proc(base_pid + 20, "nginx", 80, 80, [80], 1, 5, 2, jail=True),
    ]
    nproc = len(plan)
    # process groups: (pgid = leader pid, session index); sessions: leader proc index
    pg_leader = [0, 1, 2, 3, 4, 6]
    pg_session = [0, 1, 2, 3, 3, 4]
    sessions = [0, 1, 2, 3, 6]
    # extra processes: their own sessions (some with a tty) and groups; argv in p_args
    xrng = Rng(seed, "kerneldata-extra")
    x_ttys: dict[int, str] = {}  # session index -> tty name
    x_args: dict[int, tuple[str, ...]] = {}  # proc index -> argv
    x_logins: list[str] = []
    if extra_procs:
        _extra_plan(xrng, extra_procs, plan, pg_leader, pg_session, sessions, x_ttys,
                    x_args, x_logins)
        nproc = len(plan)

    # ---------------------------------------------------------------- addresses
    proc0_va = var_address("proc0")
    proc_va = [proc0_va] + [alloc("proc") for _ in range(nproc - 1)]
    thread_va = [[alloc("thread") for _ in range(p.nthreads)] for p in plan]
    cred_va = [alloc("ucred") for _ in range(min(nproc, _FIXED_PROCS))]
    shared_cred: dict[tuple[int, ...], int] = {}  # extras share credentials, as fork does
    for p in plan[_FIXED_PROCS:]:
        key = (p.uid, p.gid, int(p.jail), *p.groups)
        if key not in shared_cred:
            shared_cred[key] = alloc("ucred")
        cred_va.append(shared_cred[key])
    vm_va = [alloc("vmspace") for _ in range(nproc)]
    pgrp_va = [alloc("pgrp") for _ in pg_leader]
    sess_va = [alloc("session") for _ in sessions]
    tty_va = alloc("tty")
    tty_cdev_va = alloc("cdev")
    ttyvp_va = alloc("vnode")
    x_tty_va = {si: (alloc("tty"), alloc("cdev"), alloc("vnode")) for si in x_ttys}
    pargs_va: dict[int, int] = {}
    ar_args_off = structs["pargs"].member("ar_args").offset if x_args else 0
    for i, argv in x_args.items():
        argblob = b"".join(a.encode() + b"\0" for a in argv)
        pargs_va[i] = arena.alloc(ar_args_off + len(argblob), 8)
        w = new("pargs")
        w.set("ar_ref", 1)
        w.set("ar_length", len(argblob))
        arena.write(pargs_va[i], w.bytes()[:ar_args_off] + argblob)
    sigacts_va = alloc("sigacts")
    prison0_va = alloc("prison")
    prison_jail_va = alloc("prison")
    sysent_va = alloc("sysentvec")
    emul_name = EMUL_NAME if ptr == 8 else EMUL_NAME_32
    emul_va = string(emul_name)
    wmesgs = {m: string(m) for m in ("select", "nanslp", "wait", "ttyin", "-", "kqread")}
    lockname_va = string("sleep mutex")

    # prisons: prison0 and one jail
    jail_id = 2 + rng.below(20)
    for va, pr_id, pr_name in ((prison0_va, 0, b"0"), (prison_jail_va, jail_id, b"web")):
        w = new("prison")
        w.set("pr_id", pr_id)
        w.set_bytes("pr_name", pr_name)
        arena.write(va, w.bytes())

    # sysentvec
    w = new("sysentvec")
    w.set("sv_name", emul_va)
    w.set_if("sv_flags", 0x100)
    arena.write(sysent_va, w.bytes())

    # sigacts (shared by everyone: fine for a dump)
    w = new("sigacts")
    w.set("ps_sigignore", 1 << (13 - 1), 0, 4)  # SIGPIPE
    w.set("ps_sigcatch", 1 << (2 - 1), 0, 4)  # SIGINT
    arena.write(sigacts_va, w.bytes())

    # tty, its cdev and the session's tty vnode
    tty_name = f"pts/{rng.below(8)}"
    tty_udev = 0x5C + rng.below(0x40)
    w = new("cdev")
    w.set_bytes("si_name", tty_name.encode())
    w.set_if("si_drv0", tty_udev)
    arena.write(tty_cdev_va, w.bytes())
    tty_pg = 4  # the foreground process group (the long-named job)
    w = new("tty")
    w.set("t_dev", tty_cdev_va)
    w.set("t_pgrp", pgrp_va[tty_pg])
    w.set("t_session", sess_va[3])
    w.set_if("t_sessioncnt", 1)
    arena.write(tty_va, w.bytes())
    w = new("vnode")
    w.set("v_type", VCHR)
    w.set("v_rdev" if w.has("v_rdev") else "v_un.vu_cdev", tty_cdev_va)
    arena.write(ttyvp_va, w.bytes())
    # session index -> (tty name, foreground process group index)
    sess_tty: dict[int, tuple[str, int]] = {3: (tty_name, tty_pg)}
    for si, (xt_va, xc_va, xv_va) in x_tty_va.items():
        fg = pg_session.index(si)
        sess_tty[si] = (x_ttys[si], fg)
        w = new("cdev")
        w.set_bytes("si_name", x_ttys[si].encode())
        arena.write(xc_va, w.bytes())
        w = new("tty")
        w.set("t_dev", xc_va)
        w.set("t_pgrp", pgrp_va[fg])
        w.set("t_session", sess_va[si])
        w.set_if("t_sessioncnt", 1)
        arena.write(xt_va, w.bytes())
        w = new("vnode")
        w.set("v_type", VCHR)
        w.set("v_rdev" if w.has("v_rdev") else "v_un.vu_cdev", xc_va)
        arena.write(xv_va, w.bytes())

    # sessions
    logins = ["", "root", "root", "user" + "x" * 13 + "yz", "www"]  # index 3: 19 chars
    logins += x_logins
    for si, leader in enumerate(sessions):
        w = new("session")
        w.set("s_count", 1)
        w.set("s_leader", proc_va[leader])
        w.set("s_sid", plan[leader].pid)
        w.set_bytes("s_login", logins[si].encode())
        if si == 3:
            w.set("s_ttyp", tty_va)
            w.set("s_ttyvp", ttyvp_va)
        elif si in x_tty_va:
            w.set("s_ttyp", x_tty_va[si][0])
            w.set("s_ttyvp", x_tty_va[si][2])
        arena.write(sess_va[si], w.bytes())

    # process groups: pg_members lists
    members: list[list[int]] = [[] for _ in pg_leader]
    member_pos: dict[int, int] = {}
    for i, p in enumerate(plan):
        member_pos[i] = len(members[p.pgrp])
        members[p.pgrp].append(i)
    for gi, leader in enumerate(pg_leader):
        w = new("pgrp")
        w.set("pg_id", plan[leader].pid)
        w.set("pg_session", sess_va[pg_session[gi]])
        w.set("pg_members.lh_first", proc_va[members[gi][0]])
        # pg_jobc (kernels <= 13): the members qualifying the group for job control;
        # here simply its size
        w.set_if("pg_jobc", len(members[gi]))
        arena.write(pgrp_va[gi], w.bytes())
    has_jobc = structs["pgrp"].has("pg_jobc")

    # ---------------------------------------------------------------- procs and threads
    separate_egid = structs["ucred"].has("cr_gid")
    list_has_zomb = bool(ft.get("symbol.zombproc", False))
    # allproc: LIST_INSERT_HEAD, so newest (highest index) first; proc0 last
    live = [i for i in range(nproc) if not (plan[i].zombie and list_has_zomb)]
    all_order = sorted(live, reverse=True)
    zomb_order = [i for i in range(nproc) if plan[i].zombie and list_has_zomb]

    position = {idx: pos for lst_ in (all_order, zomb_order) for pos, idx in enumerate(lst_)}
    zomb_set = set(zomb_order)

    def link_prev(order_list: list[int], head_va: int, idx: int) -> int:
        pos = position[idx]
        if pos == 0:
            return head_va
        return proc_va[order_list[pos - 1]] + structs["proc"].member("p_list.le_next").offset

    allproc_va = var_address("allproc")
    zombproc_va = var_address("zombproc") if list_has_zomb else 0
    tid_next = 100000 + rng.below(1000)
    written_creds: set[int] = set()
    procs: list[ProcTruth] = []
    proc_truth: dict[int, ProcTruth] = {}
    td_sizes = structs["thread"]
    # a shorter name after a longer one: libkvm's ki_tdname keeps the longer one's tail
    thread_names = {0: ["swapper", "thread taskq", "softirq_0"]}
    for i, p in enumerate(plan):
        pw = new("proc")
        lst, head = (zomb_order, zombproc_va) if i in zomb_set else (all_order, allproc_va)
        pos = position[i]
        pw.set("p_list.le_next", proc_va[lst[pos + 1]] if pos + 1 < len(lst) else 0)
        pw.set("p_list.le_prev", link_prev(lst, head, i))
        pw.set("p_pid", p.pid)
        pw.set("p_state", PRS_ZOMBIE if p.zombie else PRS_NORMAL)
        # the long-named job is being ktrace'd to its terminal (kernels with p_tracevp)
        tracevp = ttyvp_va if i == 4 and pw.has("p_tracevp") else 0
        pw.set_if("p_tracevp", tracevp)
        flag = P_INMEM | (P_SYSTEM | P_KPROC if i == 0 else P_EXEC if i > 1 else 0)
        if p.ctty:
            flag |= P_CONTROLT
        pw.set("p_flag", flag)
        nice = 0 if i < 4 else (rng.below(41) - 20)
        pw.set("p_nice", nice)
        pw.set_bytes("p_comm", p.comm.encode())
        pw.set("p_ucred", cred_va[i])
        pw.set("p_sigacts", sigacts_va)
        pw.set("p_pptr", proc_va[p.parent] if p.parent is not None else 0)
        pw.set("p_pgrp", pgrp_va[p.pgrp])
        pw.set("p_vmspace", vm_va[i])
        pw.set("p_sysent", sysent_va)
        pw.set("p_numthreads", p.nthreads)
        if i in pargs_va:
            pw.set("p_args", pargs_va[i])
        pw.set_if("p_reaper", proc_va[1] if i > 1 else proc_va[0])
        pw.set_if("p_reapsubtree", 1 if i > 1 else 0)
        pw.set_if("p_swtick", 100 + i)
        xexit, xsig = (3, 0) if p.zombie else (0, 0)
        if pw.has("p_xexit"):
            pw.set("p_xexit", xexit)
            pw.set("p_xsig", xsig)
        elif pw.has("p_xstat"):
            pw.set("p_xstat", (xexit << 8) | xsig)
        mbrs = members[p.pgrp]
        nxt = member_pos[i] + 1
        pw.set("p_pglist.le_next", proc_va[mbrs[nxt]] if nxt < len(mbrs) else 0)
        # threads
        tds = thread_va[i]
        pw.set("p_threads.tqh_first", tds[0])
        pw.set(
            "p_threads.tqh_last",
            tds[-1] + td_sizes.member("td_plist.tqe_next").offset,
        )
        threads: list[ThreadTruth] = []
        for t, tva in enumerate(tds):
            tw = new("thread")
            tw.set("td_proc", proc_va[i])
            tw.set("td_plist.tqe_next", tds[t + 1] if t + 1 < len(tds) else 0)
            prev = (
                proc_va[i] + pw.offset("p_threads.tqh_first")
                if t == 0
                else tds[t - 1] + td_sizes.member("td_plist.tqe_next").offset
            )
            tw.set("td_plist.tqe_prev", prev)
            tid = tid_next
            tid_next += 1 + rng.below(3)
            if i == 0 and t == 0:
                tid = 100000  # proc0's first thread
            names = thread_names.get(i)
            tdname = names[t] if names else (p.comm if t == 0 else f"{p.comm[:12]}-w{t}")
            running = (i == 4 and t == 0) or (i == 0 and t == 0)
            if p.zombie:
                state, inhib, wm = TDS_INHIBITED, 0, None
            elif running:
                state, inhib, wm = TDS_RUNNING, 0, None
            elif i == 6 and t == 1:
                state, inhib, wm = TDS_RUNQ, 0, None
            else:
                state, inhib = TDS_INHIBITED, TDI_SLEEPING
                wm = ("select", "nanslp", "wait", "ttyin", "kqread")[(i + t) % 5]
            prio = 120 + rng.below(100)
            base = prio - rng.below(4)
            oncpu = (t % ncpus) if state == TDS_RUNNING else -1
            lastcpu = rng.below(ncpus)
            wchan = (proc_va[i] + 0x10) if wm else 0
            tw.set("td_tid", tid)
            tw.set_bytes("td_name", tdname.encode()[:19])
            tw.set("td_state", state)
            tw.set("td_inhibitors", inhib)
            tw.set("td_priority", prio)
            tw.set("td_base_pri", base)
            tw.set("td_oncpu", oncpu)
            tw.set("td_lastcpu", lastcpu)
            tw.set("td_wchan", wchan)
            tw.set("td_wmesg", wmesgs[wm] if wm else 0)
            tw.set("td_ucred", cred_va[i])
            if i == 4 and t == 2:
                tw.set("td_blocked", proc_va[i] + 0x20)
                tw.set("td_lockname", lockname_va)
            tw.set("td_sigmask", 1 << 1, 0, 4)
            arena.write(tva, tw.bytes())
            if td_sizes.member("td_oncpu").size == 1:  # era 10: u_char, NOCPU is 0xff
                oncpu %= 256
            threads.append(
                ThreadTruth(tva, tid, tdname[:19], state, inhib, prio, base, oncpu, lastcpu,
                            wm, wchan)
            )
        # credentials
        cw = new("ucred")
        ruid = p.uid
        svuid = p.uid
        rgid = p.gid
        svgid = p.gid
        cw.set("cr_uid", p.uid)
        cw.set("cr_ruid", ruid)
        cw.set("cr_svuid", svuid)
        cw.set("cr_rgid", rgid)
        cw.set("cr_svgid", svgid)
        cw.set("cr_prison", prison_jail_va if p.jail else prison0_va)
        # the jailed daemon runs in capability mode (CRED_FLAG_CAPMODE)
        cr_flags = CRED_FLAG_CAPMODE if p.jail else 0
        cw.set("cr_flags", cr_flags)
        cw.set_if("cr_ref", 1)
        if separate_egid:
            supp = p.groups[1:]
            cw.set("cr_gid", p.gid)
        else:
            supp = p.groups
        cw.set("cr_ngroups", len(supp))
        groups_va = cred_va[i] + cw.offset("cr_smallgroups") if cw.has("cr_smallgroups") else 0
        if i >= _FIXED_PROCS and cred_va[i] in written_creds:
            pass  # a shared credential already written
        elif groups_va and len(supp) <= structs["ucred"].member("cr_smallgroups").size // 4:
            for gi2, g in enumerate(supp):
                cw.set("cr_smallgroups", g, gi2, 4)
        else:
            groups_va = arena.alloc(4 * max(len(supp), 1), 4)
            arena.write(groups_va, b"".join(word(g, 4) for g in supp))
        if not (i >= _FIXED_PROCS and cred_va[i] in written_creds):
            written_creds.add(cred_va[i])
            cw.set("cr_groups", groups_va)
            cw.set_if("cr_agroups", max(len(supp), 1))
            arena.write(cred_va[i], cw.bytes())
        # vmspace (pages)
        vw = new("vmspace")
        tsize = 10 + rng.below(200)
        dsize = 5 + rng.below(500)
        ssize = 2 + rng.below(30)
        size = (tsize + dsize + ssize + rng.below(1000)) * 4096
        rss = rng.below(size // 4096)
        swrss = rng.below(50)
        vw.set("vm_map.size", size)
        vw.set("vm_pmap.pm_stats.resident_count", rss)
        vw.set("vm_swrss", swrss)
        vw.set("vm_tsize", tsize)
        vw.set("vm_dsize", dsize)
        vw.set("vm_ssize", ssize)
        vw.set_if("vm_refcnt", 1)
        arena.write(vm_va[i], vw.bytes())
        ldr = sessions[pg_session[p.pgrp]]
        pt = ProcTruth(
            addr=proc_va[i],
            pid=p.pid,
            ppid=plan[p.parent].pid if p.parent is not None else 0,
            pptr=proc_va[p.parent] if p.parent is not None else 0,
            pgid=plan[pg_leader[p.pgrp]].pid,
            sid=plan[ldr].pid,
            session_leader=proc_va[ldr],
            uid=p.uid,
            ruid=ruid,
            svuid=svuid,
            rgid=rgid,
            svgid=svgid,
            egid=p.gid,
            groups=tuple(p.groups),
            cr_ngroups=len(supp),
            jid=jail_id if p.jail else 0,
            comm=p.comm,
            state=PRS_ZOMBIE if p.zombie else PRS_NORMAL,
            flag=flag,
            nice=nice,
            xexit=xexit,
            xsig=xsig,
            login=logins[pg_session[p.pgrp]],
            tty=sess_tty[pg_session[p.pgrp]][0] if p.ctty else None,
            tty_pgid=plan[pg_leader[sess_tty[pg_session[p.pgrp]][1]]].pid if p.ctty else 0,
            tty_sid=plan[sessions[pg_session[p.pgrp]]].pid if p.ctty else 0,
            emul=emul_name,
            size=size,
            rssize=rss,
            swrss=swrss,
            tsize=tsize,
            dsize=dsize,
            ssize=ssize,
            zombie=p.zombie,
            list_name="zombproc" if i in zomb_set else "allproc",
            threads=tuple(threads),
            args=x_args.get(i),
            pg_jobc=len(members[p.pgrp]) if has_jobc else None,
            cr_flags=cr_flags,
            tracevp=tracevp,
        )
        proc_truth[i] = pt
        if i == 0:
            var_bytes("proc0", pw.bytes())
        else:
            arena.write(proc_va[i], pw.bytes())
    procs = [proc_truth[i] for i in all_order + zomb_order]

    var_bytes("allproc", word(proc_va[all_order[0]]))
    if list_has_zomb:
        var_bytes("zombproc", word(proc_va[zomb_order[0]]) if zomb_order else word(0))
    var_bytes("nprocs", word(nproc, 4))
    ticks = hz * (3600 + rng.below(100000))
    ticks = ticks % (1 << 31)
    var_bytes("ticks", word(ticks, 4))
    cpu_tick_frequency = 2_400_000_000 + 1000 * rng.below(1_000_000)
    var_bytes("cpu_tick_frequency", word(cpu_tick_frequency, 8))

    # ---------------------------------------------------------------- loadavg
    ldavg = (rng.below(8 * FSCALE), rng.below(6 * FSCALE), rng.below(4 * FSCALE))
    lw = new("loadavg")
    for k, v in enumerate(ldavg):
        lw.set("ldavg", v, k, 4)
    lw.set("fscale", FSCALE)
    var_bytes("averunnable", lw.bytes())
    var_bytes("fscale", word(FSCALE, 4))

    # ---------------------------------------------------------------- swap
    swap: list[SwapTruth] = []
    sw_specs = [
        (f"ada0p{2 + rng.below(3)}", 0x70 + rng.below(0x40), 0),
        ("swapfile0", nodev, 0),
        (f"nvd{rng.below(2)}p3", 0xA0 + rng.below(0x20), SW_CLOSING),
    ]
    sw_va = [alloc("swdevt") for _ in sw_specs]
    tq_next = structs["swdevt"].member("sw_list.tqe_next").offset
    swtailq_va = var_address("swtailq")
    for k, (name, dev, flags) in enumerate(sw_specs):
        ww = new("swdevt")
        nblks = (1 + rng.below(64)) * 32768
        used = rng.below(nblks // 4)
        vp = alloc("vnode")
        vn = new("vnode")
        if dev == nodev:
            vn.set("v_type", VREG)
        else:
            cdev = alloc("cdev")
            cw2 = new("cdev")
            cw2.set_bytes("si_name", name.encode())
            arena.write(cdev, cw2.bytes())
            vn.set("v_type", VCHR)
            vn.set("v_rdev" if vn.has("v_rdev") else "v_un.vu_cdev", cdev)
        arena.write(vp, vn.bytes())
        ww.set("sw_flags", flags)
        ww.set("sw_nblks", nblks)
        ww.set("sw_used", used)
        ww.set("sw_dev", dev)
        ww.set("sw_vp", vp)
        ww.set("sw_list.tqe_next", sw_va[k + 1] if k + 1 < len(sw_specs) else 0)
        ww.set("sw_list.tqe_prev", swtailq_va if k == 0 else sw_va[k - 1] + tq_next)
        arena.write(sw_va[k], ww.bytes())
        swap.append(SwapTruth(sw_va[k], name if dev != nodev else "[NFS swap]", dev, nblks,
                              used, flags))
    var_bytes("swtailq", word(sw_va[0]) + word(sw_va[-1] + tq_next))
    dmmax = None
    if "dmmax" in layout.variables:
        dmmax = 32
        var_bytes("dmmax", word(dmmax, 4))
    nsw_cluster_max = 16 * (1 + rng.below(4))
    var_bytes("nsw_cluster_max", word(nsw_cluster_max, 4))

    # ---------------------------------------------------------------- per-CPU
    pcpu_size = structs["pcpu"].size
    pcpu_is_array = layout.variables.get("__pcpu", "").endswith("]")
    if pcpu_is_array:
        base = var_address("__pcpu")
        pcpu_va = [base + c * pcpu_size for c in range(ncpus)]
    else:
        base = arena.alloc(pcpu_size * ncpus, 4096)
        pcpu_va = [base + c * pcpu_size for c in range(ncpus)]
        if "__pcpu" in layout.variables:
            var_bytes("__pcpu", word(base))
    dstart = var_address("pcpu_entry_" + DPCPU_ENTRIES[0][0])
    entries: dict[str, tuple[int, int]] = {}
    cursor = dstart
    for name, size in DPCPU_ENTRIES:
        entries["pcpu_entry_" + name] = (cursor, size)
        cursor += size
    dstop = cursor
    dsize = dstop - dstart
    dpcpu_off: list[int] = []
    dvalues: dict[str, list[int]] = {name: [] for name, _ in DPCPU_ENTRIES}
    cp_time: list[tuple[int, ...]] = []
    pcpu_array = bytearray(pcpu_size * ncpus) if pcpu_is_array else None
    for c in range(ncpus):
        region = arena.alloc(dsize, 64)
        off = (region - dstart) % (1 << (8 * ptr))
        dpcpu_off.append(off)
        blob = bytearray()
        for name, size in DPCPU_ENTRIES:
            val = (c + 1) * 1000 + rng.below(1000)
            dvalues[name].append(val)
            blob += word(val, 8) + bytes(size - 8)
        arena.write(region, bytes(blob))
        pw2 = new("pcpu")
        times = tuple(rng.below(10_000_000) for _ in range(CPUSTATES))
        cp_time.append(times)
        for k, v in enumerate(times):
            pw2.set("pc_cp_time", v, k, long_size)
        pw2.set("pc_cpuid", c)
        pw2.set("pc_dynamic", off)
        pw2.set_if("pc_prvspace", pcpu_va[c])
        pw2.set_if("pc_curthread", thread_va[0][0] if c == 0 else thread_va[4][0])
        pw2.set_if("pc_apic_id", 2 * c)
        pw2.set_if("pc_zpcpu_offset", c * 4096)
        if pcpu_array is not None:
            pcpu_array[c * pcpu_size : (c + 1) * pcpu_size] = pw2.bytes()
        else:
            arena.write(pcpu_va[c], pw2.bytes())
    if pcpu_array is not None:
        var_bytes("__pcpu", bytes(pcpu_array))
    var_bytes("cpuid_to_pcpu", b"".join(word(v) for v in pcpu_va))
    var_bytes("dpcpu_off", b"".join(word(v) for v in dpcpu_off))
    var_bytes("mp_ncpus", word(ncpus, 4))
    # the template's values (CPU-independent)
    template = b"".join(word(7, 8) + bytes(size - 8) for _, size in DPCPU_ENTRIES)
    for name, size in DPCPU_ENTRIES:
        start = entries["pcpu_entry_" + name][0] - dstart
        var_bytes("pcpu_entry_" + name, template[start : start + size])
    cp_sum = tuple(sum(t[k] for t in cp_time) for k in range(CPUSTATES))
    cp_sym = None
    if cp_time_symbol:
        cp_sym = cp_sum
        var_bytes("cp_time", b"".join(word(v, long_size) for v in cp_sum))

    # linker-set bounds the kernel must define (machines add them as STT_NOTYPE symbols)
    symbols["__start_set_pcpu"] = dstart
    symbols["__stop_set_pcpu"] = dstop

    # ---------------------------------------------------------------- VNET (VIMAGE)
    vnet = lay_out_vnets(layout, arena, seed=seed, var_address=var_address, set_var=set_var,
                         prison0=prison0_va, jail_prison=prison_jail_va, jail_id=jail_id,
                         dumptid=dumptid, symbols=symbols)

    # ---------------------------------------------------------------- msgbuf
    size = len(msgbuf)
    text_end = msgbuf.find(b"\0")
    wpos = size if text_end < 0 else text_end
    lines = [k + 1 for k, b in enumerate(msgbuf[:wpos]) if b == 0x0A]
    rpos = lines[len(lines) * 2 // 3] if len(lines) > 3 else 0
    seqmod = size * 16
    wraps = rng.below(3)
    wseq = (wraps * size + wpos) % seqmod
    rseq = (wraps * size + rpos) % seqmod
    mw = new("msgbuf")
    mw.set("msg_ptr", msgbuf_ring_va)
    mw.set("msg_magic", MSG_MAGIC)
    mw.set("msg_size", size)
    mw.set("msg_wseq", wseq)
    mw.set("msg_rseq", rseq)
    mw.set_if("msg_seqmod", seqmod)
    mw.set_if("msg_cksum", sum(msgbuf) & 0xFFFFFFFF)
    msg_va = arena.alloc(structs["msgbuf"].size, 64)
    arena.write(msg_va, mw.bytes())
    var_bytes("msgbufp", word(msg_va))
    wp = wseq % size
    whole = (msgbuf[wp:] + msgbuf[:wp]).replace(b"\0", b"")
    unread = msgbuf[rpos:wpos]

    return KernelDataTruth(
        layout=layout,
        era=era,
        procs=tuple(procs),
        allproc=tuple(plan[i].pid for i in all_order),
        zombproc=tuple(plan[i].pid for i in zomb_order) if list_has_zomb else None,
        nprocs=nproc,
        ticks=ticks,
        hz=hz,
        cpu_tick_frequency=cpu_tick_frequency,
        ldavg=ldavg,
        fscale=FSCALE,
        swap=tuple(swap),
        dmmax=dmmax,
        nsw_cluster_max=nsw_cluster_max,
        cp_time_symbol=cp_sym,
        cp_time=tuple(cp_time),
        cp_time_sum=cp_sum,
        maxcpu=maxcpu,
        ncpus=ncpus,
        pcpu=tuple(pcpu_va),
        dpcpu_off=tuple(dpcpu_off),
        dpcpu_start=dstart,
        dpcpu_stop=dstop,
        dpcpu_entries=entries,
        dpcpu_values={k: tuple(v) for k, v in dvalues.items()},
        msgbuf=MsgbufTruth(msg_va, msgbuf_ring_va, size, wseq, rseq, seqmod, unread, whole),
        proc0=proc0_va,
        dumptid=dumptid,
        symbols=symbols,
        vnet=vnet,
    )


def bss_variables(layout: LayoutTruth, *, cp_time: bool, existing: Sequence[str]) -> list[
    tuple[str, int]
]:
    """``(name, size)`` of the kernel variables to add to ``.bss`` (DPCPU entries last)."""
    out: list[tuple[str, int]] = []
    for name in kernel_variables_of(layout, cp_time=cp_time):
        if name in existing:
            continue
        out.append((name, _var_size(layout, name)))
    out += [("pcpu_entry_" + n, s) for n, s in DPCPU_ENTRIES]
    if has_vimage(layout):
        out += [("vnet_entry_" + n, s) for n, s in VNET_ENTRIES]
    return out


def has_vimage(layout: LayoutTruth) -> bool:
    """Whether the kernel has ``options VIMAGE`` (era >= 12: ``vnet_head`` exists)."""
    return bool(layout.features.get("options.VIMAGE", False)) and "vnet_head" in layout.variables


def lay_out_vnets(
    layout: LayoutTruth,
    arena: Arena,
    *,
    seed: int,
    var_address: Callable[[str], int],
    set_var: Callable[[str, bytes], None],
    prison0: int,
    jail_prison: int,
    jail_id: int,
    dumptid: int,
    symbols: dict[str, int],
) -> VnetTruth | None:
    """Lay out the VNET state of a VIMAGE kernel, as sys/net/vnet.c leaves it.

    The ``vnet_entry_*`` variables (already in ``.bss``, 8-byte aligned and contiguous)
    form the ``set_vnet`` template between ``__start_set_vnet`` and ``__stop_set_vnet``
    (added to ``symbols``).  ``vnet_alloc`` gives each vnet its own copy of the set
    (``vnet_data_mem``) and ``vnet_data_base = vnet_data_mem - __start_set_vnet``, and
    inserts it at the head of ``vnet_head`` (``LIST_INSERT_HEAD``): ``vnet0`` first, the
    jail's own vnet later, so the list reads jail vnet, ``vnet0``.  ``prison0.pr_vnet``
    is ``vnet0``, the jail's ``pr_vnet`` its own vnet.  Without VIMAGE nothing is
    written (``pr_vnet`` stays NULL) and None is returned.
    """
    if not has_vimage(layout):
        return None
    rng = Rng(seed, "vnet")
    target = layout.target
    order = target.byteorder
    ptr = target.ptr_size
    structs = layout.structs
    mask = (1 << (8 * ptr)) - 1

    def word(value: int, size: int = ptr) -> bytes:
        return (value % (1 << (8 * size))).to_bytes(size, order)

    entries: dict[str, tuple[int, int]] = {}
    for name, size in VNET_ENTRIES:
        entries["vnet_entry_" + name] = (var_address("vnet_entry_" + name), size)
    start = min(a for a, _ in entries.values())
    stop = max(a + s for a, s in entries.values())
    # the template: what the linker put in set_vnet (the initial values)
    template: dict[str, bytes] = {}
    for sym, (_addr, size) in entries.items():
        template[sym] = bytes((0xA0 + k) % 256 for k in range(size))
        set_var(sym, template[sym])

    # vnet0 first (the host's), then the jail's (created when the jail starts)
    owners = ((prison0, 0), (jail_prison, jail_id))
    vnet_va = [arena.alloc(structs["vnet"].size, 64) for _ in owners]
    head_order = list(reversed(vnet_va))  # LIST_INSERT_HEAD: newest first
    vnet_head = var_address("vnet_head")
    le_next = structs["vnet"].member("vnet_le.le_next").offset
    instances: dict[int, VnetInstanceTruth] = {}
    for k, ((prison, jid), va) in enumerate(zip(owners, vnet_va, strict=True)):
        mem = arena.alloc(stop - start, 64)
        base = (mem - start) & mask
        data: dict[str, bytes] = {}
        blob = bytearray(stop - start)
        for sym, (addr, size) in entries.items():
            if size == 4:  # vnet_entry_synth_ifcnt: a small per-vnet counter
                value = word(10 * (k + 1) + rng.below(10), 4)
            else:
                value = word(0x5EED0000 + 0x100 * (k + 1) + rng.below(0x100), 8)
                value += rng.randbytes(size - 8)
            data[sym] = value
            blob[addr - start : addr - start + size] = value
        arena.write(mem, bytes(blob))
        w = StructWriter(structs["vnet"], order)
        pos = head_order.index(va)
        w.set("vnet_le.le_next", head_order[pos + 1] if pos + 1 < len(head_order) else 0)
        w.set("vnet_le.le_prev", vnet_head if pos == 0 else head_order[pos - 1] + le_next)
        w.set("vnet_magic_n", VNET_MAGIC_N)
        w.set("vnet_ifcnt", 1 + k)
        w.set("vnet_sockcnt", rng.below(40))
        w.set("vnet_state", VNET_STATE_DONE)
        w.set("vnet_data_mem", mem)
        w.set("vnet_data_base", base)
        arena.write(va, w.bytes())
        pr_vnet = structs["prison"].member("pr_vnet").offset
        arena.write(prison + pr_vnet, word(va))
        instances[va] = VnetInstanceTruth(va, mem, base, (jid,), data)
    set_var("vnet_head", word(head_order[0]))
    symbols["__start_set_vnet"] = start
    symbols["__stop_set_vnet"] = stop
    return VnetTruth(
        start=start,
        stop=stop,
        entries=entries,
        template=template,
        vnets=tuple(instances[va] for va in head_order),
        vnet0=vnet_va[0],
        # a crash dump (dumptid > 0) selects proc0's: proc0 -> prison0 -> vnet0
        selected=vnet_va[0] if dumptid > 0 else 0,
        prison0=prison0,
        jail_prison=jail_prison,
        jail_id=jail_id,
    )


def _var_size(layout: LayoutTruth, name: str) -> int:
    sizes = _VAR_SIZES.get(name)
    if sizes is not None:
        return sizes(layout)
    raise KeyError(name)


def _ptr(lt: LayoutTruth) -> int:
    return lt.target.ptr_size


_VAR_SIZES: dict[str, Callable[[LayoutTruth], int]] = {
    "nprocs": lambda lt: 4,
    "allproc": _ptr,
    "zombproc": _ptr,
    "ticks": lambda lt: 4,
    "hz": lambda lt: 4,
    "cpu_tick_frequency": lambda lt: 8,
    "averunnable": lambda lt: lt.size("loadavg"),
    "fscale": lambda lt: 4,
    "swtailq": lambda lt: 2 * lt.target.ptr_size,
    "nsw_cluster_max": lambda lt: 4,
    "dmmax": lambda lt: 4,
    "cp_time": lambda lt: CPUSTATES * lt.target.long_size,
    "cpuid_to_pcpu": lambda lt: lt.target.maxcpu * lt.target.ptr_size,
    "mp_maxcpus": lambda lt: 4,
    "mp_ncpus": lambda lt: 4,
    "dpcpu_off": lambda lt: lt.target.maxcpu * lt.target.ptr_size,
    "__pcpu": lambda lt: (
        lt.target.maxcpu * lt.size("pcpu")
        if lt.variables.get("__pcpu", "").endswith("]")
        else lt.target.ptr_size
    ),
    "vnet_head": lambda lt: lt.target.ptr_size,
    "dumptid": lambda lt: 4,
    "proc0": lambda lt: lt.size("proc"),
    "msgbufp": _ptr,
}


class PageArena:
    """An :class:`Arena` over ``npages`` pages of kernel VA from ``base``, mapped on demand.

    ``map_page(va)`` is called once per page the first time something is written to or
    allocated in it and must return the physical page it maps to; :meth:`pages` gives
    ``(pa, bytes)`` for the machine to place.  Allocation is a bump pointer (deterministic).
    """

    def __init__(
        self, base: int, npages: int, page_size: int, map_page: Callable[[int], int]
    ) -> None:
        self.base = base
        self.limit = base + npages * page_size
        self.page_size = page_size
        self.cursor = base
        self._map_page = map_page
        self._pages: dict[int, tuple[int, bytearray]] = {}

    def _page(self, va: int) -> bytearray:
        page_va = va - (va % self.page_size)
        hit = self._pages.get(page_va)
        if hit is None:
            hit = (self._map_page(page_va), bytearray(self.page_size))
            self._pages[page_va] = hit
        return hit[1]

    def alloc(self, size: int, align: int = 16) -> int:
        va = self.cursor + (-self.cursor % align)
        end = va + max(size, 1)
        if end > self.limit:
            raise RuntimeError("kernel-data arena exhausted")
        self.cursor = end
        for page in range(va - va % self.page_size, end, self.page_size):
            self._page(page)
        return va

    def write(self, va: int, data: bytes) -> None:
        pos = 0
        while pos < len(data):
            cur = va + pos
            off = cur % self.page_size
            n = min(len(data) - pos, self.page_size - off)
            self._page(cur)[off : off + n] = data[pos : pos + n]
            pos += n

    def pages(self) -> list[tuple[int, int, bytes]]:
        """``(va, pa, contents)`` of every page used, by va."""
        return [(va, pa, bytes(buf)) for va, (pa, buf) in sorted(self._pages.items())]


def install_kernel_data(
    kernel: SynthKernel,
    layout: LayoutTruth,
    arena: PageArena,
    place: Callable[[int, bytes], None],
    *,
    seed: int,
    msgbuf_ring_va: int,
    msgbuf: bytes,
    cp_time_symbol: bool = False,
    extra_procs: int = 0,
) -> KernelDataTruth:
    """What every machine does with its arena: ``mp_maxcpus`` = MAXCPU of the layout's
    target, :func:`lay_out_kernel_data` with the kernel's variables, each arena page given
    to ``place(pa, contents)``, and :attr:`KernelDataTruth.symbols` added to the kernel
    (``STT_NOTYPE`` in ``.bss``, like the linker-set bounds ``ld`` defines)."""
    maxcpu = layout.target.maxcpu
    kernel.mp_maxcpus = maxcpu
    kernel.set_int("mp_maxcpus", maxcpu)
    kdata = lay_out_kernel_data(
        layout,
        arena,
        seed=seed,
        var_address=kernel.var_address,
        set_var=kernel.set_var,
        hz=kernel.hz,
        dumptid=kernel.dumptid,
        msgbuf_ring_va=msgbuf_ring_va,
        msgbuf=msgbuf,
        cp_time_symbol=cp_time_symbol,
        extra_procs=extra_procs,
    )
    for _va, pa, data in arena.pages():
        place(pa, data)
    for name, value in kdata.symbols.items():
        kernel.add_symbol(name, value, shndx=SEC_BSS, type=ew.STT_NOTYPE)
    return kdata
