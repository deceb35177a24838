"""The FreeBSD kernel structures libkvm interprets, as a seeded :class:`~.cmodel.TypeSet`.

:func:`kernel_types` describes the structures of kernel-data.md section 9 (``struct proc``,
``thread``, ``ucred``, ``prison``, ``sigacts``, ``pgrp``, ``session``, ``tty``, ``cdev``,
``vmspace`` with ``vm_map`` and ``vm_pmap.pm_stats``, ``sysentvec``, ``__sigset`` /
``sigset_t``, ``pargs``, ``loadavg``, ``swdevt``, ``vnode``, ``pcpu``, ``vnet``, ``msgbuf``),
the structures they embed, the BSD queue heads and entries as the anonymous structs the
``queue.h`` macros expand to, the enums ``p_states``, ``td_states`` and ``vtype``, and the
kernel variables libkvm looks up (``allproc``, ``nprocs``, ``cpuid_to_pcpu``...), with the
real member names and C types, laid out for a :class:`~.cmodel.Target`.

What varies with the seed
-------------------------
* The **era** (``"10"`` ... ``"15"``, FreeBSD major versions), which decides the members the
  real kernel has added, removed or moved (all recorded in ``TypeSet.features``):

  ==========================  ==============================================================
  feature                     present when
  ==========================  ==============================================================
  ``proc.p_reaper``           era >= 11 (with ``p_reapsubtree``, ``p_reaplist``)
  ``proc.p_xexit``            era >= 11 (with ``p_xsig``); era 10 has ``p_xstat`` instead
  ``proc.p_xstat``            era 10
  ``proc.p_pd``               era >= 13
  ``proc.p_tracevp``          era <= 12 (later replaced by ``p_ktrioparms``)
  ``pgrp.pg_jobc``            era <= 13
  ``ucred.cr_gid``            era >= 15 (separate egid; ``cr_ngroups`` moves before ``cr_uid``)
  ``proc.p_states_named``     era >= 13 (``enum p_states``; before: an anonymous enum)
  ``thread.td_states_named``  era >= 13 (``enum td_states``; before: an anonymous enum)
  ``thread.td_oncpu_int``     era >= 11 (``int td_oncpu, td_lastcpu``; before: ``u_char``)
  ``thread.td_zombie``        era >= 13 (``td_slpq`` shares an anonymous union with it)
  ``vnode.v_type_bitfield``   era >= 13 (``enum vtype v_type:8``)
  ``vnode.v_rdev_anonymous``  era >= 13 (``v_rdev`` in an anonymous union; before:
                              ``v_un.vu_cdev``, ``v_rdev`` being only a macro)
  ``vm_map.lock_union``       era >= 13 (``lock``/``system_mtx`` share an anonymous union)
  ``pcpu.pc_zpcpu_offset``    era >= 12
  ``dev_t_64``                era >= 12 (``dev_t`` is 8 bytes; 4 before ino64)
  ``symbol.zombproc``         era <= 12 (the variable ``zombproc`` exists)
  ``symbol.dmmax``            era <= 11
  ``symbol.__pcpu_array``     amd64 and era <= 12: ``struct pcpu __pcpu[MAXCPU]`` (else a
                              pointer, on amd64 only)
  ``options.VIMAGE``          era >= 12 (GENERIC has ``options VIMAGE``): ``vnet_head``
                              exists and VNET variables live in ``set_vnet``
  ==========================  ==============================================================

* **Filler members** inserted at random places in most structures (``<prefix>_spareN``
  integers, pointers, ``uint64_t``, short ``char`` arrays, and groups of ``u_int``
  bit-fields ``<prefix>_xflagsN``), so every offset moves from seed to seed and no reader
  can hard-code one.  ABI-fixed structures (``__sigset``, ``loadavg``, the queue
  structures, ``timespec``...) are never padded.

The ground truth is ``kernel_types(...).truth()`` (:class:`~.cmodel.LayoutTruth`).

Sources: sys/sys/proc.h, ucred.h, jail.h, signalvar.h, tty.h, conf.h, vnode.h, pcpu.h,
msgbuf.h, resource.h, _sigset.h, queue.h, sysent.h; sys/vm/vm_map.h, swap_pager.h;
sys/net/vnet.h; sys/bsm/audit.h.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from .cmodel import (
    AMD64,
    CType,
    Field,
    Rand,
    StructType,
    Target,
    TypeSet,
    TypeSpace,
    Variable,
)

ERAS = ("10", "11", "12", "13", "14", "15")

MAXCOMLEN = 19
MAXLOGNAME = 33
MAXHOSTNAMELEN = 256
MAXPATHLEN = 1024
XU_NGROUPS = 16
SIG_WORDS = 4
SIG_MAXSIG = 128
CPUSTATES = 5
CACHE_LINE_SIZE = 64
LARGE_STRUCT_SIZE = 8192 + 640  # the synthetic large aggregate (CTF v2 lmember records)

F = Field


def kernel_types(seed: int, target: Target = AMD64, *, era: str | None = None) -> TypeSet:
    """The kernel types of seed ``seed`` on ``target`` (``era`` forces a FreeBSD version)."""
    rng = Rand(seed, f"kerneltypes/{target.name}")
    chosen = era if era is not None else rng.choice(ERAS)
    if chosen not in ERAS:
        raise ValueError(f"unknown era {chosen!r}; expected one of {ERAS}")
    target = era_target(target, int(chosen))
    builder = _KernelBuilder(target, rng, int(chosen))
    builder.build()
    return TypeSet.from_space(
        builder.space,
        variables=builder.variables,
        features=builder.features,
        era=chosen,
        seed=seed,
    )


#: MAXCPU of GENERIC kernels from FreeBSD 14 on (sys/amd64/include/param.h,
#: sys/arm64/include/param.h: 1024; 256 before)
MAXCPU_14 = {"amd64": 1024, "aarch64": 1024}


def era_target(target: Target, era: int) -> Target:
    """``target`` as a kernel of FreeBSD ``era`` sees it (MAXCPU grew in FreeBSD 14)."""
    if era >= 14 and target.name in MAXCPU_14:
        return dataclasses.replace(target, maxcpu=MAXCPU_14[target.name])
    return target


class _KernelBuilder:
    """Builds the structures in a fixed order so a seed always yields the same TypeSet."""

    def __init__(self, target: Target, rng: Rand, era: int) -> None:
        self.target = target
        self.rng = rng
        self.era = era
        self.space = TypeSpace(target)
        self.variables: list[Variable] = []
        e = era
        self.features: dict[str, bool] = {
            "proc.p_reaper": e >= 11,
            "proc.p_reapsubtree": e >= 11,
            "proc.p_xexit": e >= 11,
            "proc.p_xsig": e >= 11,
            "proc.p_xstat": e <= 10,
            "proc.p_pd": e >= 13,
            "proc.p_tracevp": e <= 12,
            "pgrp.pg_jobc": e <= 13,
            "ucred.cr_gid": e >= 15,
            "proc.p_states_named": e >= 13,
            "thread.td_states_named": e >= 13,
            "thread.td_oncpu_int": e >= 11,
            "thread.td_zombie": e >= 13,
            "vnode.v_type_bitfield": e >= 13,
            "vnode.v_rdev_anonymous": e >= 13,
            "vm_map.lock_union": e >= 13,
            "pcpu.pc_zpcpu_offset": e >= 12,
            "dev_t_64": e >= 12,
            "symbol.zombproc": e <= 12,
            "symbol.dmmax": e <= 11,
            "symbol.__pcpu_array": target.name == "amd64" and e <= 12,
            "options.VIMAGE": e >= 12,
        }
        self._spare = 0

    # -- shorthands ----------------------------------------------------------------

    def t(self, name: str) -> CType:
        """A typedef or base type by name."""
        if self.space.has_typedef(name):
            return self.space.typedef(name)
        return self.space.base(name)

    def p(self, t: CType) -> CType:
        return self.space.ptr(t)

    def sp(self, tag: str) -> CType:
        """``struct tag *``."""
        return self.space.ptr(self.space.struct(tag))

    def s(self, tag: str) -> StructType:
        return self.space.struct(tag)

    def arr(self, t: CType, n: int) -> CType:
        return self.space.array(t, n)

    def td(self, name: str, target: CType) -> CType:
        return self.space.typedef(name, target)

    def define(
        self, tag: str, fields: list[Field], *, fill: str | None = None, min_align: int = 1
    ) -> StructType:
        """Define ``struct tag``; ``fill`` names the filler prefix (None: no fillers)."""
        if fill is not None:
            fields = self.fill(fill, fields)
        return self.space.define(self.s(tag), fields, min_align=min_align)

    def fill(self, prefix: str, fields: Sequence[Field], most: int | None = None) -> list[Field]:
        """Insert 0..``most`` random filler members at random places.

        ``most`` defaults to one filler for every eight members (at least three).
        """
        out = list(fields)
        if most is None:
            most = max(3, len(out) // 8)
        for _ in range(self.rng.between(0, most)):
            at = self.rng.between(0, len(out))
            out[at:at] = self.filler(prefix)
        return out

    def filler(self, prefix: str) -> list[Field]:
        self._spare += 1
        name = f"{prefix}_spare{self._spare}"
        kind = self.rng.below(7)
        if kind == 0:
            return [F(name, self.t("int"))]
        if kind == 1:
            return [F(name, self.p(self.t("void")))]
        if kind == 2:
            return [F(name, self.t("uint64_t"))]
        if kind == 3:
            return [F(name, self.arr(self.t("char"), self.rng.between(1, 13)))]
        if kind == 4:
            return [F(name, self.t("u_char"))]
        if kind == 5:
            return [F(name, self.t("short"))]
        flags = f"{prefix}_xflags{self._spare}"
        return [
            F(f"{flags}a", self.t("u_int"), bits=self.rng.between(1, 7)),
            F(f"{flags}b", self.t("u_int"), bits=self.rng.between(1, 20)),
        ]

    # -- the whole kernel ----------------------------------------------------------

    def build(self) -> None:
        self.base_typedefs()
        self.common_structs()
        self.signals()
        self.vm_structs()
        self.cred_structs()
        self.prison()
        self.proc_group()
        self.tty_cdev()
        self.sysentvec()
        self.pargs_loadavg()
        self.vnode()
        self.swdevt()
        self.thread()
        self.proc()
        self.pcpu()
        self.vnet()
        self.msgbuf()
        self.large_struct()
        self.kernel_variables()
        self.kinfo_proc()

    def base_typedefs(self) -> None:
        tg, td, b = self.target, self.td, self.space.base
        i64 = b("long") if tg.long_size == 8 else b("long long")
        u64 = b("unsigned long") if tg.long_size == 8 else b("unsigned long long")
        td("__int8_t", b("signed char"))
        td("__uint8_t", b("unsigned char"))
        td("__int16_t", b("short"))
        td("__uint16_t", b("unsigned short"))
        i32 = td("__int32_t", b("int"))
        u32 = td("__uint32_t", b("unsigned int"))
        s64 = td("__int64_t", i64)
        x64 = td("__uint64_t", u64)
        sw = s64 if tg.is64 else i32
        uw = x64 if tg.is64 else u32
        td("__intptr_t", sw)
        td("__uintptr_t", uw)
        td("__register_t", sw)
        td("__size_t", uw)
        td("__time_t", i32 if tg.name == "i386" else s64)
        td("__vm_offset_t", uw)
        td("__vm_size_t", uw)
        td("__vm_ooffset_t", s64)
        td("__segsz_t", sw)
        td("__fixpt_t", u32)
        td("__pid_t", i32)
        td("__uid_t", u32)
        td("__gid_t", u32)
        td("__lwpid_t", i32)
        td("__dev_t", x64 if self.features["dev_t_64"] else u32)
        td("__mode_t", self.t("__uint16_t"))
        td("__off_t", s64)
        td("__rlim_t", s64)
        td("__suseconds_t", b("long"))
        td("__sbintime_t", s64)
        for short, full in (
            ("u_char", "unsigned char"),
            ("u_short", "unsigned short"),
            ("u_int", "unsigned int"),
            ("u_long", "unsigned long"),
        ):
            td(short, b(full))
        for n in ("int8_t", "uint8_t", "int16_t", "uint16_t", "int32_t", "uint32_t"):
            td(n, self.t(f"__{n}"))
        td("int64_t", s64)
        td("uint64_t", x64)
        td("u_int32_t", u32)
        td("u_int64_t", x64)
        for n in ("uintptr_t", "intptr_t", "register_t", "size_t", "time_t", "vm_offset_t",
                  "vm_size_t", "vm_ooffset_t", "segsz_t", "fixpt_t", "pid_t", "uid_t", "gid_t",
                  "lwpid_t", "dev_t", "mode_t", "off_t", "rlim_t", "suseconds_t", "sbintime_t"):
            td(n, self.t(f"__{n}"))
        td("caddr_t", self.p(b("char")))
        td("bool", b("_Bool"))
        td("seqc_t", self.t("uint32_t"))

    def common_structs(self) -> None:
        t, sp = self.t, self.sp
        self.define("lock_object", [
            F("lo_name", self.p(self.space.const(t("char")))),
            F("lo_flags", t("u_int")),
            F("lo_data", t("u_int")),
            F("lo_witness", sp("witness")),
        ])
        vup = self.space.volatile(t("uintptr_t"))
        self.define("mtx", [F("lock_object", self.s("lock_object")), F("mtx_lock", vup)])
        self.define("sx", [F("lock_object", self.s("lock_object")), F("sx_lock", vup)])
        self.define("lock", [
            F("lock_object", self.s("lock_object")),
            F("lk_lock", vup),
            F("lk_exslpfail", t("u_int")),
            F("lk_timo", t("int")),
            F("lk_pri", t("int")),
        ])
        self.define("timespec", [F("tv_sec", t("time_t")), F("tv_nsec", t("long"))])
        self.define("timeval", [F("tv_sec", t("time_t")), F("tv_usec", t("suseconds_t"))])
        self.define("itimerval", [F("it_interval", self.s("timeval")),
                                  F("it_value", self.s("timeval"))])
        ru = [F("ru_utime", self.s("timeval")), F("ru_stime", self.s("timeval"))]
        for n in ("maxrss", "ixrss", "idrss", "isrss", "minflt", "majflt", "nswap", "inblock",
                  "oublock", "msgsnd", "msgrcv", "nsignals", "nvcsw", "nivcsw"):
            ru.append(F(f"ru_{n}", t("long")))
        self.define("rusage", ru)
        self.define("rusage_ext", [
            F(f"rux_{n}", t("uint64_t"))
            for n in ("runtime", "uticks", "sticks", "iticks", "uu", "su", "tu")
        ])
        void = t("void")
        callout_func = self.td("callout_func_t", self.space.func(void, [self.p(void)]))
        links = self.space.anonymous("union", [
            F("le", self.space.list_entry(self.s("callout"))),
            F("sle", self.space.anonymous(
                "struct", [F("sle_next", sp("callout"))], ("SLIST_ENTRY", "callout"))),
            F("tqe", self.space.tailq_entry(self.s("callout"))),
        ])
        self.define("callout", [
            F("c_links", links),
            F("c_time", t("sbintime_t")),
            F("c_precision", t("sbintime_t")),
            F("c_arg", self.p(void)),
            F("c_func", self.p(callout_func)),
            F("c_lock", sp("lock_object")),
            F("c_flags", t("short")),
            F("c_iflags", t("short")),
            F("c_cpu", self.space.volatile(t("int"))),
        ])
        self.define("cv", [F("cv_description", self.p(self.space.const(t("char")))),
                           F("cv_waiters", t("int"))])
        self.define("osd", [
            F("osd_nslots", t("u_int")),
            F("osd_slots", self.p(self.p(void))),
            F("osd_next", self.space.list_entry(self.s("osd"))),
        ])
        task_fn = self.td("task_fn_t", self.space.func(void, [self.p(void), t("int")]))
        self.define("task", [
            F("ta_link", self.space.stailq_entry(self.s("task"))),
            F("ta_pending", t("uint16_t")),
            F("ta_priority", t("u_short")),
            F("ta_func", self.p(task_fn)),
            F("ta_context", self.p(void)),
        ])
        bits = self.target.long_size * 8
        self.define("_cpuset", [F("__bits", self.arr(t("long"), -(-self.target.maxcpu // bits)))])
        self.td("cpuset_t", self.s("_cpuset"))

    def signals(self) -> None:
        t = self.t
        self.define("__sigset", [F("__bits", self.arr(t("__uint32_t"), SIG_WORDS))])
        self.td("__sigset_t", self.s("__sigset"))
        self.td("sigset_t", self.t("__sigset_t"))
        handler = self.td("__sighandler_t", self.space.func(t("void"), [t("int")]))
        self.td("sig_t", self.p(handler))
        self.define("sigqueue", self.fill("sq", [
            F("sq_signals", t("sigset_t")),
            F("sq_kill", t("sigset_t")),
            F("sq_ptrace", t("sigset_t")),
            F("sq_list", self.space.tailq_head(None, self.s("ksiginfo"))),
            F("sq_proc", self.sp("proc")),
            F("sq_flags", t("int")),
        ], most=1))
        self.td("sigqueue_t", self.s("sigqueue"))
        sigset = t("sigset_t")
        fields = [
            F("ps_sigact", self.arr(t("sig_t"), SIG_MAXSIG)),
            F("ps_catchmask", self.arr(sigset, SIG_MAXSIG)),
        ]
        for n in ("sigonstack", "sigintr", "sigreset", "signodefer", "siginfo", "sigignore",
                  "sigcatch", "freebsd4", "osigset", "usertramp"):
            fields.append(F(f"ps_{n}", sigset))
        fields += [F("ps_flag", t("int")), F("ps_refcnt", t("u_int")),
                   F("ps_mtx", self.s("mtx"))]
        self.define("sigacts", fields, fill="ps")
        self.define("sigaltstack", [
            F("ss_sp", self.p(t("void"))),
            F("ss_size", t("__size_t")),
            F("ss_flags", t("int")),
        ])
        self.td("stack_t", self.s("sigaltstack"))

    def vm_structs(self) -> None:
        t, sp = self.t, self.sp
        self.td("vm_prot_t", t("u_char"))
        self.td("vm_inherit_t", t("char"))
        self.td("vm_eflags_t", t("int"))
        self.td("vm_flags_t", t("u_char"))
        obj = self.space.union("vm_map_object")
        self.space.define(obj, [F("vm_object", sp("vm_object")), F("sub_map", sp("vm_map"))])
        self.define("vm_map_entry", [
            F("left", sp("vm_map_entry")),
            F("right", sp("vm_map_entry")),
            F("start", t("vm_offset_t")),
            F("end", t("vm_offset_t")),
            F("next_read", t("vm_offset_t")),
            F("max_free", t("vm_size_t")),
            F("object", obj),
            F("offset", t("vm_ooffset_t")),
            F("eflags", t("vm_eflags_t")),
            F("protection", t("vm_prot_t")),
            F("max_protection", t("vm_prot_t")),
            F("inheritance", t("vm_inherit_t")),
            F("read_ahead", t("uint8_t")),
            F("wired_count", t("int")),
            F("cred", sp("ucred")),
            F("wiring_thread", sp("thread")),
        ], fill="vme")
        self.td("vm_map_entry_t", sp("vm_map_entry"))
        self.td("pmap_t", sp("pmap"))
        if self.features["vm_map.lock_union"]:
            locks = [F("", self.space.anonymous(
                "union", [F("lock", self.s("sx")), F("system_mtx", self.s("mtx"))]))]
        else:
            locks = [F("lock", self.s("sx")), F("system_mtx", self.s("mtx"))]
        self.define("vm_map", [
            F("header", self.s("vm_map_entry")),
            *locks,
            F("nentries", t("int")),
            F("size", t("vm_size_t")),
            F("timestamp", t("u_int")),
            F("needs_wakeup", t("u_char")),
            F("system_map", t("u_char")),
            F("flags", t("vm_flags_t")),
            F("root", t("vm_map_entry_t")),
            F("pmap", t("pmap_t")),
            F("anon_loc", t("vm_offset_t")),
            F("busy", t("int")),
        ], fill="vmm")
        self.define("pmap_statistics", [F("resident_count", t("long")),
                                        F("wired_count", t("long"))])
        self.define("pmap", [
            F("pm_mtx", self.s("mtx")),
            F("pm_pmltop", self.p(t("uint64_t"))),
            F("pm_cr3", t("uint64_t")),
            F("pm_pvchunk", self.space.tailq_head(None, self.s("pv_chunk"))),
            F("pm_active", t("cpuset_t")),
            F("pm_stats", self.s("pmap_statistics")),
            F("pm_eptgen", t("long")),
            F("pm_flags", t("int")),
        ], fill="pm")
        fields = [
            F("vm_map", self.s("vm_map")),
            F("vm_shm", sp("shmmap_state")),
            F("vm_swrss", t("segsz_t")),
            F("vm_tsize", t("segsz_t")),
            F("vm_dsize", t("segsz_t")),
            F("vm_ssize", t("segsz_t")),
            F("vm_taddr", t("caddr_t")),
            F("vm_daddr", t("caddr_t")),
            F("vm_maxsaddr", t("caddr_t")),
        ]
        if self.era >= 14:
            fields.append(F("vm_stacktop", t("vm_offset_t")))
        fields.append(F("vm_refcnt", t("u_int")))
        fields = self.fill("vm", fields)
        fields.append(F("vm_pmap", self.s("pmap")))  # "Keep the PMAP last"
        self.define("vmspace", fields)

    def cred_structs(self) -> None:
        t, sp = self.t, self.sp
        self.define("au_mask", [F("am_success", t("unsigned int")),
                                F("am_failure", t("unsigned int"))])
        self.define("au_tid_addr", [
            F("at_port", t("dev_t")),
            F("at_type", t("u_int32_t")),
            F("at_addr", self.arr(t("u_int32_t"), 4)),
        ])
        self.define("auditinfo_addr", [
            F("ai_auid", self.td("au_id_t", t("uid_t"))),
            F("ai_mask", self.td("au_mask_t", self.s("au_mask"))),
            F("ai_termid", self.td("au_tid_addr_t", self.s("au_tid_addr"))),
            F("ai_asid", self.td("au_asid_t", t("pid_t"))),
            F("ai_flags", self.td("au_asflgs_t", t("u_int64_t"))),
        ])
        ids = [F("cr_uid", t("uid_t")), F("cr_ruid", t("uid_t")), F("cr_svuid", t("uid_t"))]
        tail = [
            F("cr_rgid", t("gid_t")),
            F("cr_svgid", t("gid_t")),
            F("cr_uidinfo", sp("uidinfo")),
            F("cr_ruidinfo", sp("uidinfo")),
            F("cr_prison", sp("prison")),
            F("cr_loginclass", sp("loginclass")),
        ]
        groups = [F("cr_groups", self.p(t("gid_t"))), F("cr_agroups", t("int"))]
        spare = F("cr_pspare2", self.arr(self.p(t("void")), 2))
        label = F("cr_label", sp("label"))
        audit = F("cr_audit", self.s("auditinfo_addr"))
        ngroups = F("cr_ngroups", t("int"))
        smallgroups = F("cr_smallgroups", self.arr(t("gid_t"), XU_NGROUPS))
        if self.era <= 12:
            fields = [F("cr_ref", t("u_int")), *ids, ngroups, *tail,
                      F("cr_flags", t("u_int")), spare, label, audit, *groups]
            if self.era == 12:
                fields.append(smallgroups)
        else:
            head = [
                F("cr_mtx", self.s("mtx")),
                F("cr_ref", t("long") if self.era >= 14 else t("u_int")),
                F("cr_users", t("u_int")),
                F("cr_flags", t("u_int")),
                audit,
            ]
            if self.era >= 15:
                fields = [*head, ngroups, *ids, F("cr_gid", t("gid_t")), *tail]
            else:
                fields = [*head, *ids, ngroups, *tail]
            fields += [spare, label, *groups, smallgroups]
        self.define("ucred", fields, fill="cr")

    def prison(self) -> None:
        t, sp = self.t, self.sp
        ch = t("char")
        self.define("prison", [
            F("pr_list", self.space.tailq_entry(self.s("prison"))),
            F("pr_id", t("int")),
            F("pr_ref", self.space.volatile(t("u_int"))),
            F("pr_uref", self.space.volatile(t("u_int"))),
            F("pr_flags", t("unsigned int")),
            F("pr_children", self.space.list_head(None, self.s("prison"))),
            F("pr_sibling", self.space.list_entry(self.s("prison"))),
            F("pr_parent", sp("prison")),
            F("pr_mtx", self.s("mtx")),
            F("pr_task", self.s("task")),
            F("pr_osd", self.s("osd")),
            F("pr_cpuset", sp("cpuset")),
            F("pr_vnet", sp("vnet")),
            F("pr_root", sp("vnode")),
            F("pr_ip4s", t("int")),
            F("pr_ip6s", t("int")),
            F("pr_ip4", sp("in_addr")),
            F("pr_ip6", sp("in6_addr")),
            F("pr_prison_racct", sp("prison_racct")),
            F("pr_sparep", self.arr(self.p(t("void")), 3)),
            F("pr_childcount", t("int")),
            F("pr_childmax", t("int")),
            F("pr_allow", t("unsigned int")),
            F("pr_securelevel", t("int")),
            F("pr_enforce_statfs", t("int")),
            F("pr_devfs_rsnum", t("int")),
            F("pr_osreldate", t("int")),
            F("pr_hostid", t("unsigned long")),
            F("pr_name", self.arr(ch, MAXHOSTNAMELEN)),
            F("pr_path", self.arr(ch, MAXPATHLEN)),
            F("pr_hostname", self.arr(ch, MAXHOSTNAMELEN)),
            F("pr_domainname", self.arr(ch, MAXHOSTNAMELEN)),
            F("pr_hostuuid", self.arr(ch, 64)),
            F("pr_osrelease", self.arr(ch, 32)),
        ], fill="pr")

    def proc_group(self) -> None:
        t, sp = self.t, self.sp
        sigiolst = self.space.slist_head("sigiolst", self.s("sigio"))
        fields = [
            F("pg_hash", self.space.list_entry(self.s("pgrp"))),
            F("pg_members", self.space.list_head(None, self.s("proc"))),
            F("pg_session", sp("session")),
            F("pg_sigiolst", sigiolst),
            F("pg_id", t("pid_t")),
        ]
        if self.features["pgrp.pg_jobc"]:
            fields.append(F("pg_jobc", t("int")))
        fields.append(F("pg_mtx", self.s("mtx")))
        if self.era >= 13:
            fields.append(F("pg_flags", t("int")))
        if self.era >= 14:
            fields.append(F("pg_killsx", self.s("sx")))
        self.define("pgrp", fields, fill="pg")
        login = -(-MAXLOGNAME // self.target.long_size) * self.target.long_size
        self.define("session", [
            F("s_count", t("u_int")),
            F("s_leader", sp("proc")),
            F("s_ttyvp", sp("vnode")),
            F("s_ttydp", sp("cdev_priv")),
            F("s_ttyp", sp("tty")),
            F("s_sid", t("pid_t")),
            F("s_login", self.arr(t("char"), login)),
            F("s_mtx", self.s("mtx")),
        ], fill="s")

    def tty_cdev(self) -> None:
        t, sp = self.t, self.sp
        self.define("tty", [
            F("t_mtx", sp("mtx")),
            F("t_mtxobj", self.s("mtx")),
            F("t_list", self.space.tailq_entry(self.s("tty"))),
            F("t_drainwait", t("int")),
            F("t_flags", t("unsigned int")),
            F("t_revokecnt", t("int")),
            F("t_inlow", t("size_t")),
            F("t_outlow", t("size_t")),
            F("t_inwait", self.s("cv")),
            F("t_outwait", self.s("cv")),
            F("t_outserwait", self.s("cv")),
            F("t_bgwait", self.s("cv")),
            F("t_dcdwait", self.s("cv")),
            F("t_sigio", sp("sigio")),
            F("t_column", t("unsigned int")),
            F("t_writepos", t("unsigned int")),
            F("t_compatflags", t("int")),
            F("t_devsw", sp("ttydevsw")),
            F("t_hook", sp("ttyhook")),
            F("t_devswsoftc", self.p(t("void"))),
            F("t_hooksoftc", self.p(t("void"))),
            F("t_dev", sp("cdev")),
            F("t_sessioncnt", t("size_t")),
            F("t_pgrp", sp("pgrp")),
            F("t_session", sp("session")),
        ], fill="t")
        specnamelen = 63 if self.era <= 12 else 255
        snap = self.space.anonymous("union", [F("__sid_snapdata", sp("snapdata"))])
        self.define("cdev", [
            F("si_spare0", self.p(t("void"))),
            F("si_flags", t("u_int")),
            F("si_atime", self.s("timespec")),
            F("si_ctime", self.s("timespec")),
            F("si_mtime", self.s("timespec")),
            F("si_uid", t("uid_t")),
            F("si_gid", t("gid_t")),
            F("si_mode", t("mode_t")),
            F("si_cred", sp("ucred")),
            F("si_drv0", t("int")),
            F("si_refcount", t("int")),
            F("si_list", self.space.list_entry(self.s("cdev"))),
            F("si_clone", self.space.list_entry(self.s("cdev"))),
            F("si_children", self.space.list_head(None, self.s("cdev"))),
            F("si_siblings", self.space.list_entry(self.s("cdev"))),
            F("si_parent", sp("cdev")),
            F("si_mountpt", sp("mount")),
            F("si_drv1", self.p(t("void"))),
            F("si_drv2", self.p(t("void"))),
            F("si_devsw", sp("cdevsw")),
            F("si_iosize_max", t("int")),
            F("si_usecount", t("u_long")),
            F("si_threadcount", t("u_long")),
            F("__si_u", snap),
            F("si_name", self.arr(t("char"), specnamelen + 1)),
        ], fill="si")

    def sysentvec(self) -> None:
        t, sp = self.t, self.sp
        fixup = self.space.func(t("int"), [self.p(t("uintptr_t")), sp("image_params")])
        sendsig = self.space.func(
            t("void"), [t("sig_t"), sp("ksiginfo"), self.p(t("sigset_t"))])
        coredump = self.space.func(t("int"), [sp("thread"), sp("vnode"), t("off_t"),
                                              t("int")])
        self.define("sysentvec", [
            F("sv_size", t("int")),
            F("sv_table", sp("sysent")),
            F("sv_fixup", self.p(fixup)),
            F("sv_sendsig", self.p(sendsig)),
            F("sv_sigcode", self.p(t("char"))),
            F("sv_szsigcode", self.p(t("int"))),
            F("sv_sigcodeoff", t("int")),
            F("sv_name", self.p(t("char"))),
            F("sv_coredump", self.p(coredump)),
            F("sv_minsigstksz", t("int")),
            F("sv_minuser", t("vm_offset_t")),
            F("sv_maxuser", t("vm_offset_t")),
            F("sv_usrstack", t("vm_offset_t")),
            F("sv_psstrings", t("vm_offset_t")),
            F("sv_stackprot", t("int")),
            F("sv_flags", t("u_int")),
        ], fill="sv")

    def pargs_loadavg(self) -> None:
        t = self.t
        self.define("pargs", [
            F("ar_ref", t("u_int")),
            F("ar_length", t("u_int")),
            F("ar_args", self.arr(t("u_char"), 1)),
        ])
        self.define("loadavg", [F("ldavg", self.arr(t("fixpt_t"), 3)), F("fscale", t("long"))])

    def vnode(self) -> None:
        t, sp = self.t, self.sp
        vtype = self.space.enum("vtype", [
            (n, i) for i, n in enumerate(
                ("VNON", "VREG", "VDIR", "VBLK", "VCHR", "VLNK", "VSOCK", "VFIFO", "VBAD",
                 "VMARKER"))
        ])
        if self.features["vnode.v_rdev_anonymous"]:
            un = F("", self.space.anonymous("union", [
                F("v_mountedhere", sp("mount")),
                F("v_unpcb", sp("unpcb")),
                F("v_rdev", sp("cdev")),
                F("v_fifoinfo", sp("fifoinfo")),
            ]))
        else:
            un = F("v_un", self.space.anonymous("union", [
                F("vu_mount", sp("mount")),
                F("vu_socket", sp("socket")),
                F("vu_cdev", sp("cdev")),
                F("vu_fifoinfo", sp("fifoinfo")),
            ]))
        vop = self.p(self.space.const(self.s("vop_vector")))
        if self.features["vnode.v_type_bitfield"]:
            head = [
                F("v_type", vtype, bits=8),
                F("v_irflag", t("short")),
                F("v_seqc", t("seqc_t")),
                F("v_nchash", t("uint32_t")),
                F("v_hash", t("u_int")),
                F("v_op", vop),
            ]
        else:
            head = [
                F("v_type", vtype),
                F("v_tag", self.p(self.space.const(t("char")))),
                F("v_op", sp("vop_vector")),
            ]
        self.define("vnode", [
            *head,
            F("v_data", self.p(t("void"))),
            F("v_mount", sp("mount")),
            F("v_nmntvnodes", self.space.tailq_entry(self.s("vnode"))),
            un,
            F("v_hashlist", self.space.list_entry(self.s("vnode"))),
            F("v_cache_src", self.space.list_head(None, self.s("namecache"))),
            F("v_cache_dst", self.space.tailq_head(None, self.s("namecache"))),
            F("v_cache_dd", sp("namecache")),
            F("v_lock", self.s("lock")),
            F("v_interlock", self.s("mtx")),
            F("v_vnlock", sp("lock")),
            F("v_vnodelist", self.space.tailq_entry(self.s("vnode"))),
            F("v_lazylist", self.space.tailq_entry(self.s("vnode"))),
            F("v_pollinfo", sp("vpollinfo")),
            F("v_label", sp("label")),
            F("v_lockf", sp("lockf")),
            F("v_holdcnt", t("int")),
            F("v_usecount", t("int")),
            F("v_iflag", t("u_int")),
            F("v_vflag", t("u_int")),
            F("v_mflag", t("u_int")),
            F("v_dbatchcpu", t("int")),
            F("v_writecount", t("int")),
        ], fill="v")

    def swdevt(self) -> None:
        t, sp = self.t, self.sp
        void = t("void")
        strat = self.td("sw_strategy_t", self.space.func(void, [sp("buf"), sp("swdevt")]))
        close = self.td("sw_close_t", self.space.func(void, [sp("thread"), sp("swdevt")]))
        self.define("swdevt", [
            F("sw_flags", t("int")),
            F("sw_nblks", t("int")),
            F("sw_used", t("int")),
            F("sw_dev", t("dev_t")),
            F("sw_vp", sp("vnode")),
            F("sw_id", self.p(void)),
            F("sw_first", t("int64_t")),
            F("sw_end", t("int64_t")),
            F("sw_blist", sp("blist")),
            F("sw_list", self.space.tailq_entry(self.s("swdevt"))),
            F("sw_strategy", self.p(strat)),
            F("sw_close", self.p(close)),
        ], fill="sw")

    def thread(self) -> None:
        t, sp, ent = self.t, self.sp, self.space.tailq_entry
        thr = self.s("thread")
        era = self.era
        if self.features["thread.td_states_named"]:
            states_name: str | None = "td_states"
        else:
            states_name = None
        states = self.space.enum(states_name, [
            ("TDS_INACTIVE", 0), ("TDS_INHIBITED", 1), ("TDS_CAN_RUN", 2), ("TDS_RUNQ", 3),
            ("TDS_RUNNING", 4),
        ])
        if self.features["thread.td_zombie"]:
            slpq = [F("", self.space.anonymous(
                "union", [F("td_slpq", ent(thr)), F("td_zombie", ent(thr))]))]
        else:
            slpq = [F("td_slpq", ent(thr))]
        cpu = t("int") if self.features["thread.td_oncpu_int"] else t("u_char")
        self.define("syscall_args", [
            F("code", t("u_int")),
            F("original_code", t("u_int")),
            F("callp", sp("sysent")),
            F("args", self.arr(t("register_t"), 8)),
        ])
        self.define("mdthread", self.fill("md", [
            F("md_spinlock_count", t("int")),
            F("md_saved_flags", t("register_t")),
            F("md_spurflt_addr", t("register_t")),
        ]))
        retoff = self.space.anonymous("union", [
            F("tdu_retval", self.arr(t("register_t"), 2)),
            F("tdu_off", t("off_t")),
        ])
        wchan = self.p(self.space.const(t("void")) if era >= 13 else t("void"))
        cstr = self.p(self.space.const(t("char")))
        fields: list[Field] = [
            F("td_lock", self.space.volatile(sp("mtx"))),
            F("td_proc", sp("proc")),
            F("td_plist", ent(thr)),
            F("td_runq", ent(thr)),
            *slpq,
            F("td_lockq", ent(thr)),
            F("td_hash", self.space.list_entry(thr)),
            F("td_cpuset", sp("cpuset")),
            F("td_sel", sp("seltd")),
            F("td_sleepqueue", sp("sleepqueue")),
            F("td_turnstile", sp("turnstile")),
            F("td_rlqe", sp("rl_q_entry")),
            F("td_umtxq", sp("umtx_q")),
            F("td_tid", t("lwpid_t")),
            F("td_sigqueue", t("sigqueue_t")),
            F("td_lend_user_pri", t("u_char")),
        ]
        if era >= 13:
            fields += [F("td_allocdomain", t("u_char")), F("td_base_ithread_pri", t("u_char"))]
        fields += [F("td_flags", t("int"))]
        if era >= 14:
            fields.append(F("td_ast", t("int")))
        fields += [
            F("td_inhibitors", t("int")),
            F("td_pflags", t("int")),
            F("td_dupfd", t("int")),
            F("td_sqqueue", t("int")),
            F("td_wchan", wchan),
            F("td_wmesg", cstr),
            F("td_owepreempt", self.space.volatile(t("u_char"))),
            F("td_tsqueue", t("u_char")),
            F("td_locks", t("short")),
            F("td_rw_rlocks", t("short")),
            F("td_sx_slocks", t("short")),
            F("td_lk_slocks", t("short")),
            F("td_blocked", sp("turnstile")),
            F("td_lockname", cstr),
            F("td_contested", self.space.list_head(None, self.s("turnstile"))),
            F("td_sleeplocks", sp("lock_list_entry")),
            F("td_intr_nesting_level", t("int")),
            F("td_pinned", t("int")),
        ]
        if era >= 13:
            fields.append(F("td_realucred", sp("ucred")))
        fields += [
            F("td_ucred", sp("ucred")),
            F("td_limit", sp("plimit")),
            F("td_slptick", t("int")),
            F("td_blktick", t("int")),
            F("td_swvoltick", t("int")),
            F("td_swinvoltick", t("int")),
            F("td_cow", t("u_int")),
            F("td_ru", self.s("rusage")),
            F("td_rux", self.s("rusage_ext")),
            F("td_incruntime", t("uint64_t")),
            F("td_runtime", t("uint64_t")),
            F("td_pticks", t("u_int")),
            F("td_sticks", t("u_int")),
            F("td_iticks", t("u_int")),
            F("td_uticks", t("u_int")),
            F("td_intrval", t("int")),
            F("td_oldsigmask", t("sigset_t")),
            F("td_generation", self.space.volatile(t("u_int"))),
            F("td_sigstk", t("stack_t")),
            F("td_xsig", t("int")),
            F("td_profil_addr", t("u_long")),
            F("td_profil_ticks", t("u_int")),
            F("td_name", self.arr(t("char"), MAXCOMLEN + 1)),
            F("td_fpop", sp("file")),
            F("td_dbgflags", t("int")),
            F("td_ng_outbound", t("int")),
            F("td_osd", self.s("osd")),
            F("td_map_def_user", sp("vm_map_entry")),
            F("td_dbg_forked", t("pid_t")),
            F("td_vp_reserv", t("u_int")),
            F("td_no_sleeping", t("int")),
            F("td_su", self.p(t("void"))),
            F("td_sleeptimo", t("sbintime_t")),
            F("td_rtcgen", t("int")),
            F("td_errno", t("int")),
            F("td_vslock_sz", t("size_t")),
            F("td_sigmask", t("sigset_t")),
            F("td_rqindex", t("u_char")),
            F("td_base_pri", t("u_char")),
            F("td_priority", t("u_char")),
            F("td_pri_class", t("u_char")),
            F("td_user_pri", t("u_char")),
            F("td_base_user_pri", t("u_char")),
            F("td_rb_list", t("uintptr_t")),
            F("td_rbp_list", t("uintptr_t")),
            F("td_rb_inact", t("uintptr_t")),
            F("td_sa", self.s("syscall_args")),
            F("td_pcb", sp("pcb")),
            F("td_state", states),
            F("td_uretoff", retoff),
            F("td_cowgen", t("u_int")),
            F("td_slpcallout", self.s("callout")),
            F("td_frame", sp("trapframe")),
            F("td_kstack", t("vm_offset_t")),
            F("td_kstack_pages", t("int")),
            F("td_critnest", self.space.volatile(t("u_int"))),
            F("td_md", self.s("mdthread")),
            F("td_ar", sp("kaudit_record")),
            F("td_lprof", self.arr(self.space.list_head("lpohead", self.s("lock_profile_object")),
                                   2)),
            F("td_dtrace", sp("kdtrace_thread")),
            F("td_vnet", sp("vnet")),
            F("td_vnet_lpush", cstr),
            F("td_intr_frame", sp("trapframe")),
            F("td_rfppwait_p", sp("proc")),
            F("td_ma", self.p(sp("vm_page"))),
            F("td_ma_cnt", t("int")),
            F("td_emuldata", self.p(t("void"))),
            F("td_lastcpu", cpu),
            F("td_oncpu", cpu),
        ]
        self.define("thread", fields, fill="td")

    def proc(self) -> None:
        t, sp = self.t, self.sp
        proc = self.s("proc")
        le, lh = self.space.list_entry, self.space.list_head
        era, ft = self.era, self.features
        states = self.space.enum("p_states" if ft["proc.p_states_named"] else None, [
            ("PRS_NEW", 0), ("PRS_NORMAL", 1), ("PRS_ZOMBIE", 2),
        ])
        self.define("mdproc", self.fill("md", [
            F("md_ldt", sp("proc_ldt")),
            F("md_flags", t("int")),
        ], most=2))
        fields: list[Field] = [
            F("p_list", le(proc)),
            F("p_threads", self.space.tailq_head(None, self.s("thread"))),
            F("p_slock", self.s("mtx")),
            F("p_ucred", sp("ucred")),
            F("p_fd", sp("filedesc")),
        ]
        if ft["proc.p_pd"]:
            fields.append(F("p_pd", sp("pwddesc")))
        fields += [
            F("p_fdtol", sp("filedesc_to_leader")),
            F("p_stats", sp("pstats")),
            F("p_limit", sp("plimit")),
            F("p_limco", self.s("callout")),
            F("p_sigacts", sp("sigacts")),
            F("p_flag", t("int")),
            F("p_flag2", t("int")),
            F("p_state", states),
            F("p_pid", t("pid_t")),
            F("p_hash", le(proc)),
            F("p_pglist", le(proc)),
            F("p_pptr", sp("proc")),
            F("p_sibling", le(proc)),
            F("p_children", lh(None, proc)),
        ]
        if ft["proc.p_reaper"]:
            fields += [
                F("p_reaper", sp("proc")),
                F("p_reaplist", lh(None, proc)),
                F("p_reapsibling", le(proc)),
            ]
        fields += [
            F("p_mtx", self.s("mtx")),
            F("p_statmtx", self.s("mtx")),
            F("p_itimmtx", self.s("mtx")),
            F("p_profmtx", self.s("mtx")),
            F("p_ksi", sp("ksiginfo")),
            F("p_sigqueue", t("sigqueue_t")),
            F("p_oppid", t("pid_t")),
            F("p_vmspace", sp("vmspace")),
            F("p_swtick", t("u_int")),
            F("p_cowgen", t("u_int")),
            F("p_realtimer", self.s("itimerval")),
            F("p_ru", self.s("rusage")),
            F("p_rux", self.s("rusage_ext")),
            F("p_crux", self.s("rusage_ext")),
            F("p_profthreads", t("int")),
            F("p_exitthreads", self.space.volatile(t("int"))),
            F("p_traceflag", t("int")),
        ]
        if ft["proc.p_tracevp"]:
            fields += [F("p_tracevp", sp("vnode")), F("p_tracecred", sp("ucred"))]
        else:
            fields.append(F("p_ktrioparms", sp("ktr_io_params")))
        fields += [
            F("p_textvp", sp("vnode")),
            F("p_lock", t("u_int")),
            F("p_sigiolst", self.s("sigiolst")),
            F("p_sigparent", t("int")),
            F("p_sig", t("int")),
            F("p_aioinfo", sp("kaioinfo")),
            F("p_singlethread", sp("thread")),
            F("p_suspcount", t("int")),
            F("p_xthread", sp("thread")),
            F("p_boundary_count", t("int")),
            F("p_pendingcnt", t("int")),
            F("p_itimers", sp("itimers")),
            F("p_procdesc", sp("procdesc")),
            F("p_treeflag", t("u_int")),
            F("p_pendingexits", t("int")),
            F("p_filemon", sp("filemon")),
        ]
        if era >= 12:
            fields.append(F("p_pdeathsig", t("int")))
        fields += [
            F("p_magic", t("u_int")),
            F("p_osrel", t("int")),
        ]
        if era >= 13:
            fields.append(F("p_fctl0", t("uint32_t")))
        fields += [
            F("p_comm", self.arr(t("char"), MAXCOMLEN + 1)),
            F("p_sysent", sp("sysentvec")),
            F("p_args", sp("pargs")),
            F("p_cpulimit", t("rlim_t")),
            F("p_nice", t("signed char")),
            F("p_fibnum", t("int")),
        ]
        if ft["proc.p_reapsubtree"]:
            fields.append(F("p_reapsubtree", t("pid_t")))
        if ft["proc.p_xexit"]:
            fields += [F("p_xexit", t("u_int")), F("p_xsig", t("u_int"))]
        else:
            fields.append(F("p_xstat", t("u_short")))
        if era >= 13:
            fields += [F("p_elf_machine", t("uint16_t")), F("p_elf_flags", t("uint64_t"))]
        fields += [
            F("p_pgrp", sp("pgrp")),
            F("p_klist", sp("knlist")),
            F("p_numthreads", t("int")),
            F("p_md", self.s("mdproc")),
            F("p_itcallout", self.s("callout")),
            F("p_acflag", t("u_short")),
            F("p_peers", sp("proc")),
            F("p_leader", sp("proc")),
            F("p_emuldata", self.p(t("void"))),
            F("p_label", sp("label")),
            F("p_ktr", self.space.stailq_head(None, self.s("ktr_request"))),
            F("p_mqnotifier", lh(None, self.s("mqueue_notifier"))),
            F("p_dtrace", sp("kdtrace_proc")),
            F("p_pwait", self.s("cv")),
            F("p_prev_runtime", t("uint64_t")),
            F("p_racct", sp("racct")),
            F("p_throttled", t("int")),
            F("p_orphan", le(proc)),
            F("p_orphans", lh(None, proc)),
        ]
        self.define("proc", fields, fill="p")

    def pcpu(self) -> None:
        t, sp = self.t, self.sp
        fields: list[Field] = [
            F("pc_curthread", sp("thread")),
            F("pc_idlethread", sp("thread")),
            F("pc_fpcurthread", sp("thread")),
            F("pc_deadthread", sp("thread")),
            F("pc_curpcb", sp("pcb")),
            F("pc_sched", self.p(t("void"))),
            F("pc_switchtime", t("uint64_t")),
            F("pc_switchticks", t("int")),
            F("pc_cpuid", t("u_int")),
            F("pc_allcpu", self.space.stailq_entry(self.s("pcpu"))),
            F("pc_spinlocks", sp("lock_list_entry")),
            F("pc_cp_time", self.arr(t("long"), CPUSTATES)),
            F("pc_device", sp("_device")),
            F("pc_netisr", self.p(t("void"))),
            F("pc_unused1", t("int")),
            F("pc_domain", t("int")),
            F("pc_dynamic", t("uintptr_t")),
            F("pc_early_dummy_counter", t("uint64_t")),
        ]
        if self.features["pcpu.pc_zpcpu_offset"]:
            fields.append(F("pc_zpcpu_offset", t("uintptr_t")))
        fields = self.fill("pc", fields)
        # PCPU_MD_FIELDS: kept last, as the kernel does
        if self.target.name == "amd64":
            md = [
                F("pc_monitorbuf", self.arr(t("char"), 128), align=128),
                F("pc_prvspace", sp("pcpu")),
                F("pc_curpmap", sp("pmap")),
                F("pc_tssp", sp("amd64tss")),
                F("pc_kcr3", t("uint64_t")),
                F("pc_ucr3", t("uint64_t")),
                F("pc_saved_ucr3", t("uint64_t")),
                F("pc_rsp0", t("register_t")),
                F("pc_scratch_rsp", t("register_t")),
                F("pc_apic_id", t("u_int")),
                F("pc_acpi_id", t("u_int")),
            ]
            size, _ = self.space.measure("struct", fields + md, min_align=CACHE_LINE_SIZE)
            # amd64 pads struct pcpu to exactly one page (UMA_PCPU_ALLOC_SIZE)
            pad = 4096 - size
            md.append(F("__pad", self.arr(t("char"), pad)))
        else:
            md = [F("pc_md_spare", self.arr(self.p(t("void")), self.rng.between(2, 9)))]
        self.define("pcpu", fields + md, min_align=CACHE_LINE_SIZE)

    def vnet(self) -> None:
        t = self.t
        self.define("vnet", [
            F("vnet_le", self.space.list_entry(self.s("vnet"))),
            F("vnet_magic_n", t("u_int")),
            F("vnet_ifcnt", t("u_int")),
            F("vnet_sockcnt", t("u_int")),
            F("vnet_state", t("u_int")),
            F("vnet_data_mem", self.p(t("void"))),
            F("vnet_data_base", t("uintptr_t")),
            F("vnet_shutdown", t("bool")),
        ], fill="vnet", min_align=CACHE_LINE_SIZE)
        self.space.list_head("vnet_list_head", self.s("vnet"))

    def msgbuf(self) -> None:
        t = self.t
        self.define("msgbuf", [
            F("msg_ptr", self.p(t("char"))),
            F("msg_magic", t("u_int")),
            F("msg_size", t("u_int")),
            F("msg_wseq", t("u_int")),
            F("msg_rseq", t("u_int")),
            F("msg_cksum", t("u_int")),
            F("msg_seqmod", t("u_int")),
            F("msg_lastpri", t("int")),
            F("msg_flags", t("u_int")),
            F("msg_lock", self.s("mtx")),
        ], fill="msg")

    def large_struct(self) -> None:
        """A synthetic aggregate of more than 8 KiB.

        Real kernels have such structures (large driver softcs, statistics blocks) and CTF
        version 2 writes their members as ``ctf_lmember`` records; none of the structures
        libkvm needs is that large, so this one stands in for them.
        """
        t = self.t
        head = [F("sl_magic", t("u_int")), F("sl_owner", self.sp("proc"))]
        size, _ = self.space.measure("struct", head + [F("sl_tail", t("uint64_t"))])
        self.define("synth_large", [
            *head,
            F("sl_table", self.arr(t("char"), LARGE_STRUCT_SIZE - size)),
            F("sl_tail", t("uint64_t")),
        ])

    def kinfo_proc(self) -> None:
        """``struct kinfo_proc`` as the era's sys/sys/user.h declares it.

        Real kernels describe it in their CTF/DWARF because ``fill_kinfo_proc``
        (sys/kern/kern_proc.c) fills one; readers use it to tell which release's
        ``user.h`` (and so which libkvm) the dump belongs to.  Defined last and without
        fillers (an ABI-fixed structure), so the other types and the seed's random
        stream are unchanged.  Era <= 11: ``dev_t ki_tdev`` (32-bit) at the place of the
        later ``ki_tdev_freebsd11`` and no 64-bit ``ki_tdev``; era 10: ``u_char
        ki_oncpu, ki_lastcpu`` where later kernels have ``ki_oncpu_old``/``ki_lastcpu_old``
        (the ``int`` ones are spares); era >= 13: ``ki_pd`` (from ``ki_spareptrs``).  No
        era has ``ki_reaper``/``ki_reapsubtree`` (FreeBSD 15.1).
        """
        t, sp, b = self.t, self.sp, self.space.base
        era = self.era
        char = t("char")
        self.define("priority", [F(f"pri_{n}", t("u_char"))
                                 for n in ("class", "level", "native", "user")])
        void_p = self.p(t("void"))
        fields = [
            F("ki_structsize", t("int")),
            F("ki_layout", t("int")),
            F("ki_args", sp("pargs")),
            F("ki_paddr", sp("proc")),
            F("ki_addr", sp("user")),
            F("ki_tracep", sp("vnode")),
            F("ki_textvp", sp("vnode")),
            F("ki_fd", sp("filedesc")),
            F("ki_vmspace", sp("vmspace")),
            F("ki_wchan", self.p(self.space.const(t("void")))),
        ]
        fields += [F(f"ki_{n}", t("pid_t")) for n in ("pid", "ppid", "pgid", "tpgid", "sid",
                                                        "tsid")]
        fields += [
            F("ki_jobc", t("short")),
            F("ki_spare_short1", t("short")),
            F("ki_tdev", t("dev_t")) if era <= 11 else F("ki_tdev_freebsd11", t("uint32_t")),
        ]
        fields += [F(f"ki_{n}", t("sigset_t")) for n in ("siglist", "sigmask", "sigignore",
                                                         "sigcatch")]
        fields += [F(f"ki_{n}", t("uid_t")) for n in ("uid", "ruid", "svuid")]
        fields += [F(f"ki_{n}", t("gid_t")) for n in ("rgid", "svgid")]
        fields += [
            F("ki_ngroups", t("short")),
            F("ki_spare_short2", t("short")),
            F("ki_groups", self.arr(t("gid_t"), XU_NGROUPS)),
            F("ki_size", t("vm_size_t")),
        ]
        fields += [F(f"ki_{n}", t("segsz_t")) for n in ("rssize", "swrss", "tsize", "dsize",
                                                        "ssize")]
        fields += [
            F("ki_xstat", t("u_short")),
            F("ki_acflag", t("u_short")),
            F("ki_pctcpu", t("fixpt_t")),
        ]
        fields += [F(f"ki_{n}", t("u_int")) for n in ("estcpu", "slptime", "swtime", "cow")]
        fields += [
            F("ki_runtime", t("u_int64_t")),
            F("ki_start", self.s("timeval")),
            F("ki_childtime", self.s("timeval")),
            F("ki_flag", t("long")),
            F("ki_kiflag", t("long")),
            F("ki_traceflag", t("int")),
            F("ki_stat", char),
            F("ki_nice", b("signed char")),
            F("ki_lock", char),
            F("ki_rqindex", char),
        ]
        old = "" if era <= 10 else "_old"
        fields += [F(f"ki_oncpu{old}", t("u_char")), F(f"ki_lastcpu{old}", t("u_char"))]
        fields += [
            F("ki_tdname", self.arr(char, 17)),
            F("ki_wmesg", self.arr(char, 9)),
            F("ki_login", self.arr(char, 18)),
            F("ki_lockname", self.arr(char, 9)),
            F("ki_comm", self.arr(char, 20)),
            F("ki_emul", self.arr(char, 17)),
            F("ki_loginclass", self.arr(char, 18)),
        ]
        if era >= 12:
            fields += [F("ki_moretdname", self.arr(char, 4)),
                       F("ki_sparestrings", self.arr(char, 46)),
                       F("ki_spareints", self.arr(t("int"), 2)),
                       F("ki_tdev", t("uint64_t"))]
        else:
            fields += [F("ki_sparestrings", self.arr(char, 50)),
                       F("ki_spareints", self.arr(t("int"), 4 if era == 11 else 6))]
        if era >= 11:
            fields += [F("ki_oncpu", t("int")), F("ki_lastcpu", t("int"))]
        fields += [F(f"ki_{n}", t("int")) for n in ("tracer", "flag2", "fibnum")]
        fields += [
            F("ki_cr_flags", t("u_int")),
            F("ki_jid", t("int")),
            F("ki_numthreads", t("int")),
            F("ki_tid", t("lwpid_t")),
            F("ki_pri", self.s("priority")),
            F("ki_rusage", self.s("rusage")),
            F("ki_rusage_ch", self.s("rusage")),
            F("ki_pcb", sp("pcb")),
            F("ki_kstack", void_p),
            F("ki_udata", void_p),
            F("ki_tdaddr", sp("thread")),
        ]
        if era >= 13:
            fields += [F("ki_pd", sp("pwddesc")), F("ki_spareptrs", self.arr(void_p, 5))]
        else:
            fields += [F("ki_spareptrs", self.arr(void_p, 6))]
        fields += [
            F("ki_sparelongs", self.arr(t("long"), 12)),
            F("ki_sflag", t("long")),
            F("ki_tdflags", t("long")),
        ]
        self.define("kinfo_proc", fields)

    def kernel_variables(self) -> None:
        t, sp, ft = self.t, self.sp, self.features
        tg = self.target
        proclist = self.space.list_head("proclist", self.s("proc"))
        pcpu = self.s("pcpu")
        v = self.variables
        v += [
            Variable("nprocs", t("int")),
            Variable("allproc", proclist),
        ]
        if ft["symbol.zombproc"]:
            v.append(Variable("zombproc", proclist))
        v += [
            Variable("ticks", self.space.volatile(t("int"))),
            Variable("hz", t("int")),
            Variable("cpu_tick_frequency", t("uint64_t")),
            Variable("averunnable", self.s("loadavg")),
            Variable("fscale", t("int")),
            Variable("swtailq", self.space.tailq_head(None, self.s("swdevt"))),
            Variable("nsw_cluster_max", t("int")),
        ]
        if ft["symbol.dmmax"]:
            v.append(Variable("dmmax", t("int")))
        v += [
            Variable("cp_time", self.arr(t("long"), CPUSTATES)),
            Variable("cpuid_to_pcpu", self.arr(self.space.ptr(pcpu), tg.maxcpu)),
            Variable("mp_maxcpus", t("int")),
            Variable("mp_ncpus", t("int")),
            Variable("dpcpu_off", self.arr(t("uintptr_t"), tg.maxcpu)),
        ]
        if tg.name == "amd64":
            if ft["symbol.__pcpu_array"]:
                v.append(Variable("__pcpu", self.arr(pcpu, tg.maxcpu)))
            else:
                v.append(Variable("__pcpu", self.space.ptr(pcpu)))
        if ft["options.VIMAGE"]:  # sys/net/vnet.c is built only with options VIMAGE
            v.append(Variable("vnet_head", self.s("vnet_list_head")))
        v += [
            Variable("dumptid", t("lwpid_t")),
            Variable("proc0", self.s("proc")),
            Variable("msgbufp", sp("msgbuf")),
        ]
