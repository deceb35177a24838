"""From a case and a prepared fixture to concrete calls, and from observations to verdicts.

* :func:`instances` expands a case over its fixtures and ``for_each`` items;
* :func:`resolve` turns a step's arguments (templates, address expressions, resolver
  specs) into concrete values every backend receives alike;
* :func:`compare` checks one observation against one expectation and says how they differ.

Observations are C-shaped whatever the backend: ``ret`` is the C return value
(``"descriptor"``/``"NULL"`` for the open calls), ``errbuf`` the caller's buffer,
``stderr`` what was printed, ``geterr`` kvm_geterr() after the call, ``data`` the bytes
a read returned, ``entries`` the (n_type, n_value) pairs of an nlist, ``records`` the
kvm_page records of a walk, ``raised`` an exception a Python API raised instead.
"""

from __future__ import annotations

import errno as errno_mod
import hashlib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .fixtures import FixtureGap, LazyMap, Prepared, libkvm_quirk_pa
from .model import KDATA_CALLS, Case, CaseError, FixtureSpec, Step

Obs = dict[str, Any]
ResolverFn = Callable[[str], "int | None"]


@dataclass(frozen=True)
class Item:
    """One element a ``for_each`` case runs over (a hole, a region, a symbol)."""

    kind: str
    index: int
    label: str
    vars: Mapping[str, Any]
    quirk: bool = False


@dataclass(frozen=True)
class Instance:
    """A case on one fixture (and one item): the unit that passes or fails."""

    case: Case
    fixture: FixtureSpec
    item: Item | None = None

    @property
    def iid(self) -> str:
        """The instance id: case id, fixture key, item label."""
        out = self.case.id
        if self.fixture.kind == "synth":
            out += f"[{self.fixture.key}]"
        if self.item is not None:
            out += f"[{self.item.label}]"
        return out

    @property
    def departure(self) -> str:
        """The departure reference this instance pins down ("" when none)."""
        if self.item is not None and self.item.quirk and self.case.quirk is not None:
            return self.case.quirk.departure
        return self.case.departure.ref if self.case.departure else ""

    def expectation(self, step_index: int, backend: str) -> dict[str, Any]:
        """What ``backend`` must observe at step ``step_index``."""
        step = self.case.steps[step_index]
        quirk = None
        q = self.case.quirk
        if q is not None and self.item is not None and self.item.quirk and q.step == step_index:
            quirk = q.expect
        return step.expectation(backend, quirk)


@dataclass
class ResolvedStep:
    """A step with concrete arguments (paths, integers, bytes, a resolver callable)."""

    call: str
    args: dict[str, Any]
    #: JSON-able description of the arguments (recorded with golden results)
    shown: dict[str, Any] = field(default_factory=dict)


# ------------------------------------------------------------------------ templates
class Vars:
    """The template variables of one instance (README.md "Templates")."""

    def __init__(self, prep: Prepared, item: Item | None, host_arch: str) -> None:
        self.prep = prep
        self.item = item
        self.host_arch = host_arch
        self.local: dict[str, Any] = {}

    def mapping(self) -> dict[str, Any]:
        """The mapping ``str.format_map`` sees."""
        p = self.prep
        m: dict[str, Any] = {
            "kernel": p.kernel,
            "vmcore": p.vmcore,
            "file": LazyMap(p.file),
            "derived": LazyMap(p.derived),
            "point": LazyMap(p.point),
            "sym": LazyMap(self._sym),
            "dup": LazyMap(self._dup),
            "duptype": LazyMap(self._duptype),
            "arch": p.arch,
            "host_arch": self.host_arch,
            "host_native": 1 if p.arch and p.arch == self.host_arch else 0,
            "kdata": LazyMap(self._kdata),
        }
        if p.synthetic:
            t = p.truth
            m.update(fmt=t.fmt, version=t.version, page_size=t.page_size, kerndisp=t.kerndisp,
                     dmapbase=t.dmapbase, kernbase=t.kernbase)
        if self.item is not None:
            m.update(self.item.vars)
        m.update(self.local)
        m["hard_stderr"] = self.hard_stderr()
        return m

    def _kdata(self, name: str) -> int:
        """A number the fixture's kernel-data truth gives (``{kdata[NAME]}``)."""
        return kdata_scalar(self.prep, name)

    def _sym(self, name: str) -> int:
        syms = self.prep.symbols()
        if name not in syms:
            raise FixtureGap(f"the kernel has no symbol {name!r}")
        return syms[name]

    def _dup(self, name: str) -> list[int]:
        values = [v for n, v in self.prep.symtab() if n == name]
        if len(values) < 2:
            raise FixtureGap(f"the kernel has no duplicated symbol {name!r}")
        return values

    def _duptype(self, name: str) -> list[int]:
        types = [int(s.nlist_type) for s in self.prep.truth.symbol_table if s.name == name]
        if len(types) < 2:
            raise FixtureGap(f"the kernel has no duplicated symbol {name!r}")
        return types

    def hard_stderr(self) -> str:
        """What kvm_open's program prints for the item's hard message ("" if none)."""
        hard = self.local.get("hard", "")
        return f"{self.local.get('errstr', '')}: {hard}\n" if hard else ""

    def fmt(self, text: str) -> str:
        """Expand ``{...}`` fields of ``text`` (``{{`` for a literal brace)."""
        try:
            return text.format_map(self.mapping())
        except FixtureGap:
            raise
        except (KeyError, IndexError, ValueError, AttributeError) as exc:
            raise CaseError(f"template {text!r}: {exc!r}") from None


_EXPR_RE = re.compile(r"\s*([+-]?)\s*(0x[0-9a-fA-F]+|\d+)\s*")


def int_expr(value: Any, v: Vars) -> int:
    """An integer argument: an int, or a template expanding to ``a +/- b +/- ...``."""
    if isinstance(value, bool):
        raise CaseError(f"expected an integer, got {value!r}")
    if isinstance(value, int):
        return value
    if not isinstance(value, str):
        raise CaseError(f"expected an integer or an expression, got {value!r}")
    text = v.fmt(value)
    pos, total = 0, 0
    while pos < len(text):
        m = _EXPR_RE.match(text, pos)
        if m is None or (pos and not m.group(1)):
            raise CaseError(f"bad integer expression {value!r} -> {text!r}")
        n = int(m.group(2), 0)
        total += -n if m.group(1) == "-" else n
        pos = m.end()
    return total


def path_arg(value: Any, v: Vars) -> str | None:
    """A path argument: omitted = NULL, a template, or {prefix, repeat, count, suffix}."""
    if value is None:
        return None
    if isinstance(value, str):
        return v.fmt(value)
    if isinstance(value, dict) and set(value) <= {"prefix", "repeat", "count", "suffix"}:
        return (v.fmt(str(value.get("prefix", ""))) + str(value.get("repeat", "")) *
                int(value.get("count", 0)) + v.fmt(str(value.get("suffix", ""))))
    raise CaseError(f"bad path argument {value!r}")


def make_resolver(spec: Any, v: Vars) -> tuple[ResolverFn | None, Any]:
    """A resolver callable from its case spec (README.md "Resolvers"), and its description.

    ``"none"`` (NULL), ``"symtab"`` (exact names from the kernel's symbol table, first
    wins, as libfbsdvmcore's built-in resolver), ``"reject"`` (every lookup fails), or a
    table ``{kind = "symtab"|"table", names = {name = addr}, drop = [names]}``.
    """
    if spec in (None, "none"):
        return None, "none"
    if isinstance(spec, str):
        spec = {"kind": spec}
    if not isinstance(spec, dict) or set(spec) - {"kind", "names", "drop"}:
        raise CaseError(f"bad resolver {spec!r}")
    kind = spec.get("kind", "table")
    table: dict[str, int] = {}
    if kind == "symtab":
        table = v.prep.symbols()
    elif kind not in ("table", "reject"):
        raise CaseError(f"unknown resolver kind {kind!r}")
    table = dict(table)
    for name, value in dict(spec.get("names", {})).items():
        table[str(name)] = int_expr(value, v) & ((1 << 64) - 1)
    for name in spec.get("drop", []):
        table.pop(str(name), None)
    if kind == "reject":
        table = {}
    frozen = dict(table)

    def resolve(name: str) -> int | None:
        return frozen.get(name)

    shown = {"kind": kind, "names": {str(k): hex(frozen[str(k)]) for k in sorted(spec.get(
        "names", {})) if str(k) in frozen}, "drop": list(spec.get("drop", []))}
    return resolve, shown


def unique_names(prep: Prepared) -> list[str]:
    """Symbol names that occur once and whose a.out lookup cannot match another symbol."""
    counts: dict[str, int] = {}
    for name, _ in prep.symtab():
        counts[name] = counts.get(name, 0) + 1
    out = []
    for name, n in counts.items():
        if n != 1 or not name or name.startswith("$"):
            continue
        if name.startswith("_") and name[1:] in counts:
            continue  # "_x" would match both "_x" and "x" (api.md 10.3 step 4)
        out.append(name)
    return out


def resolve(step: Step, v: Vars) -> ResolvedStep:
    """Concrete arguments of ``step`` for this instance."""
    a = step.args
    args: dict[str, Any] = {}
    shown: dict[str, Any] = {}
    if step.call == "open":
        args["variant"] = a.get("variant", "kvm_open2")
        for key in ("exec", "core", "swap"):
            args[key] = path_arg(a.get(key), v)
        args["flags"] = int_expr(a.get("flags", 0), v)
        args["errstr"] = None if a.get("errstr") is None else v.fmt(str(a["errstr"]))
        args["errbuf"] = a.get("errbuf", "buffer")
        if args["errbuf"] not in ("buffer", "null", "sentinel"):
            raise CaseError(f"errbuf must be buffer, null or sentinel, got {args['errbuf']!r}")
        if args["variant"] != "kvm_open2" and a.get("resolver") not in (None, "none"):
            raise CaseError("only kvm_open2 takes a resolver")
        args["resolver"], shown["resolver"] = make_resolver(a.get("resolver"), v)
        shown.update({k: args[k] for k in ("variant", "exec", "core", "swap", "flags",
                                             "errstr", "errbuf")})
        v.local.update(exec=args["exec"] or "", core=args["core"] or "",
                       errstr=args["errstr"] or "")
    elif step.call in ("read", "read2", "write"):
        args["addr"] = int_expr(a.get("addr", 0), v) & ((1 << 64) - 1)
        if step.call == "write" and "hex" in a:
            args["data"] = bytes.fromhex(str(a["hex"]))
        else:
            size = int_expr(a.get("size", 0), v)
            if size < 0:
                raise CaseError("size must not be negative")
            args["size"] = size
            if step.call == "write":
                args["data"] = bytes(size)
        shown = {"addr": hex(args["addr"])}
        shown.update({k: args[k] for k in ("size",) if k in args})
        if "data" in args:
            shown["data_len"] = len(args["data"])
        v.local.update(addr=args["addr"], size=args.get("size", len(args.get("data", b""))))
    elif step.call in ("nlist", "nlist2"):
        raw = a.get("names", [])
        if raw == "all-unique":
            names = unique_names(v.prep)
        elif isinstance(raw, list):
            names = [v.fmt(str(n)) for n in raw]
        else:
            raise CaseError(f"names must be a list or \"all-unique\", got {raw!r}")
        args["names"] = names
        shown = {"names": names if len(names) <= 16 else f"{len(names)} names"}
    elif step.call in KDATA_CALLS:
        for key in sorted(CALL_DEFAULTS[step.call]):
            args[key] = int_expr(a.get(key, CALL_DEFAULTS[step.call][key]), v)
        shown = dict(args)
    elif step.call == "walk_pages":
        args["stop_after"] = int(a.get("stop_after", 0))
        shown = dict(args)
    elif step.call == "err_hook":
        args["text"] = v.fmt(str(a.get("text", "")))
        shown = dict(args)
    return ResolvedStep(step.call, args, shown)


#: the integer arguments of the kernel-data calls and their defaults
CALL_DEFAULTS: dict[str, dict[str, int]] = {
    "getprocs": {"op": 0, "arg": 0},
    "getargv": {"nchr": 0},
    "getenvv": {"nchr": 0},
    "getloadavg": {"nelem": 3},
    "getcptime": {},
    "getswapinfo": {"max": 16, "flags": 0},
    "getmaxcpu": {},
    "getncpus": {},
    "getpcpu": {"cpu": 0, "size": 0},
    "dpcpu_setcpu": {"cpu": 0},
    "read_zpcpu": {"base": 0, "size": 8, "cpu": 0},
    "counter_u64_fetch": {"base": 0},
}


# ------------------------------------------------------------------- kernel data
def _kernel_data(prep: Prepared) -> Any:
    kd = prep.truth.kernel_data if prep.synthetic else None
    if kd is None:
        raise FixtureGap(f"fixture {prep.spec.key} has no kernel data (types= not given)")
    return kd


def _pcpu_layout(prep: Prepared) -> Any:
    tl = prep.truth.type_layout
    if tl is None or "pcpu" not in tl.structs:
        raise FixtureGap(f"fixture {prep.spec.key} has no struct pcpu")
    return tl.structs["pcpu"]


def kdata_scalar(prep: Prepared, name: str) -> int:
    """``{kdata[NAME]}``: counts and addresses from the kernel-data truth (README.md)."""
    t = _kernel_data(prep)
    if name in ("maxcpu", "ncpus", "fscale", "nprocs", "hz", "ticks"):
        return int(getattr(t, name))
    if name == "procs":
        return len(t.procs)
    if name == "threads":  # KERN_PROC_ALL: one record per thread, one per zombie
        return sum(1 if p.zombie else len(p.threads) for p in t.procs)
    if name == "mid_pid":
        return int(t.procs[len(t.procs) // 2].pid)
    if name == "pcpu0":
        return int(t.pcpu[0])
    if name == "pcpu_size":
        return int(_pcpu_layout(prep).size)
    if name == "pc_cp_time":
        return int(_pcpu_layout(prep).member("pc_cp_time").offset)
    if name == "cp_time0_sum":  # kvm_counter_u64_fetch(kd, offsetof(pc_cp_time))
        return sum(int(t.cp_time[c][0]) for c in range(t.ncpus)) % (1 << 64)
    if name == "dpcpu_slots":
        return len(t.dpcpu_off)
    if name == "swap_devices":
        return len(t.swap)
    raise CaseError(f"unknown kdata value {name!r}")


def kdata_values(prep: Prepared, name: str) -> list[Any]:
    """``values = "kdata:NAME"``: what a kernel-data call stores, from the truth."""
    t = _kernel_data(prep)
    if name == "loadavg":
        return [v / t.fscale for v in t.ldavg]
    if name == "cp_time":
        return list(t.cp_time_sum)
    if name == "pids":
        return [int(p.pid) for p in t.procs]
    if name in ("swap", "swap-prefix"):  # libkvm's names: devname(3) misses on a dump
        if t.dmmax is None:
            raise FixtureGap("the kernel has no dmmax")
        prefix = "/dev/" if name == "swap-prefix" else ""
        rows: list[Any] = []
        for s in t.swap:
            nodev = s.dev in (0xFFFFFFFF, (1 << 64) - 1)
            dev = "[NFS swap]" if nodev else prefix + "#C:" + (hex(s.dev) if s.dev else "0")
            rows.append([dev, s.used, s.nblks - t.dmmax, s.flags])
        rows.append(["", sum(s.used for s in t.swap), sum(s.nblks - t.dmmax for s in t.swap),
                     0])
        return rows
    raise CaseError(f"unknown kdata list {name!r}")


def kdata_bytes(prep: Prepared, spec: str, args: Mapping[str, Any]) -> bytes:
    """``data = "kdata:pcpu"`` (the CPU's struct pcpu) or ``"kdata:zpcpu"`` (libkvm's
    ``kvm_read_zpcpu`` slot: base [+ __pcpu on amd64] + sizeof(struct pcpu) * cpu)."""
    t = _kernel_data(prep)
    size = int(_pcpu_layout(prep).size)
    if spec == "kdata:pcpu":
        va, n = int(t.pcpu[args["cpu"]]), size
    elif spec == "kdata:zpcpu":
        extra = int(t.pcpu[0]) if prep.arch == "amd64" else 0
        va, n = (args["base"] + extra + size * args["cpu"]) % (1 << 64), args["size"]
    else:
        raise CaseError(f"bad data expectation {spec!r}")
    got = prep.truth.expect(va, n)
    if got is None:
        raise CaseError(f"truth has no bytes at {va:#x}+{n}")
    return bytes(got)


# ---------------------------------------------------------------------- expansion
def _spread(items: list[Item], limit: int) -> list[Item]:
    if not limit or len(items) <= limit:
        return items
    step = len(items) / limit
    return [items[int(i * step)] for i in range(limit)]


def items_of(case: Case, prep: Prepared) -> list[Item] | None:
    """The ``for_each`` items of ``case`` on ``prep`` (None when the case has none)."""
    if not case.for_each:
        return None
    t = prep.truth
    out: list[Item] = []
    if case.for_each == "hole":
        for i, (va, kind) in enumerate(zip(t.holes, t.hole_kinds, strict=True)):
            pa = t.translate(va)
            quirk_pa = libkvm_quirk_pa(t, pa)
            where = prep.where(va)
            rule = next((r for r in case.texts if r.matches(kind, where, t.fmt)), None)
            vars_: dict[str, Any] = {
                "addr": va, "kind": kind, "where": where,
                "pa": pa if pa is not None else -1,
                "pa_page": (pa & ~(t.page_size - 1)) if pa is not None else -1,
                "quirk_pa": quirk_pa if quirk_pa is not None else -1,
                "rule": rule,
            }
            out.append(Item("hole", i, f"{kind}@{va:#x}", vars_, quirk_pa is not None))
    elif case.for_each == "region":
        for i, (va, blob) in enumerate(t.regions):
            out.append(Item("region", i, f"region{i}@{va:#x}+{len(blob)}",
                            {"addr": va, "size": len(blob)}))
    elif case.for_each == "symbol":
        for i, name in enumerate(sorted(unique_names(prep))):
            out.append(Item("symbol", i, name, {"name": name}))
    return _spread(out, case.limit)


def hard_text(item: Item | None, v: Vars, rules: Sequence[Any] = ()) -> str:
    """The hard message the item's [[case.text]] rule gives (CaseError if none matches)."""
    if item is None or item.kind != "hole" or not rules:
        return ""
    rule = item.vars.get("rule")
    if rule is None:
        raise CaseError(f"no [[case.text]] rule for hole kind {item.vars['kind']!r} "
                        f"at {item.vars['where']!r}")
    return v.fmt(rule.hard)


# ---------------------------------------------------------------------- comparing
def errno_name(num: int) -> str:
    """The symbolic name of a host errno value ("" for 0)."""
    return errno_mod.errorcode.get(num, str(num)) if num else ""


def digest(data: bytes) -> dict[str, Any]:
    """How bytes are recorded: their length and sha256 (never the bytes themselves)."""
    return {"len": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def records_digest(records: Sequence[Sequence[int]]) -> dict[str, Any]:
    """How walk records are recorded: count, sha256 and the first 16."""
    h = hashlib.sha256()
    for r in records:
        h.update((",".join(str(x) for x in r) + "\n").encode())
    return {"count": len(records), "sha256": h.hexdigest(),
            "first": [list(r) for r in records[:16]]}


def _text_diff(want: str, got: str) -> str:
    """``expected X, got Y``; for long texts, where they first differ."""
    if len(want) <= 120 and len(got) <= 120:
        return f"expected {want!r}, got {got!r}"
    i = next((k for k, (a, b) in enumerate(zip(want, got, strict=False)) if a != b),
             min(len(want), len(got)))
    return (f"texts of {len(want)} and {len(got)} characters differ at {i}: expected "
            f"...{want[max(0, i - 20):i + 40]!r}, got ...{got[max(0, i - 20):i + 40]!r}")


def _short(x: Any, limit: int = 160) -> str:
    if isinstance(x, (bytes, bytearray)):
        s = bytes(x[:48]).hex() + ("..." if len(x) > 48 else "")
        return f"<{len(x)} bytes {s}>"
    s = repr(x)
    return s if len(s) <= limit else s[: limit - 3] + "..."


@dataclass
class Checker:
    """Compares observations with expectations for one instance."""

    prep: Prepared
    vars: Vars
    resolver: ResolverFn | None = None

    def expected_data(self, spec: Any, args: Mapping[str, Any]) -> bytes | None:
        """The bytes a read must return, or None (not checked)."""
        if spec == "any":
            return None
        if spec == "truth":
            got = self.prep.truth.expect(args["addr"], args["size"])
            if got is None:
                raise CaseError(f"truth has no bytes at {args['addr']:#x}+{args['size']}")
            return bytes(got)
        if spec == "truth-prefix":
            got = self.prep.truth.expect(args["addr"], args.get("got", args["size"]))
            if got is None:
                raise CaseError(f"truth has no bytes at {args['addr']:#x}")
            return bytes(got)
        if spec == "quirk":
            qpa = self.vars.mapping()["quirk_pa"]
            got = self.prep.truth.phys_expect(qpa, args["size"])
            if got is None:
                raise CaseError("quirk page crosses the end of its page")
            return bytes(got)
        if isinstance(spec, str) and spec.startswith("kdata:"):
            return kdata_bytes(self.prep, spec, args)
        if isinstance(spec, dict) and "hex" in spec:
            return bytes.fromhex(self.vars.fmt(str(spec["hex"])))
        if isinstance(spec, dict) and "ascii" in spec:
            return self.vars.fmt(str(spec["ascii"])).encode()
        raise CaseError(f"bad data expectation {spec!r}")

    def expected_entries(self, spec: Any, names: Sequence[str]) -> list[tuple[int, int]]:
        """The (n_type, n_value) pairs an nlist must leave (up to the first empty name)."""
        names = list(names)[: list(names).index("")] if "" in names else names
        if spec == "truth":
            t = self.prep.truth
            out = []
            for n in names:
                hit = t.nlist(n)
                out.append((0, 0) if hit is None else (int(hit[0]), int(hit[1])))
            return out
        if spec == "resolver":
            res = self.resolver
            out = []
            for n in names:
                val = res(n) if res else None
                out.append((0, 0) if val is None else (0x07, val))
            return out
        if isinstance(spec, list):
            pairs = []
            for e in spec:
                if isinstance(e, dict):
                    e = [e.get("type", 0), e.get("value", 0)]
                if not isinstance(e, list) or len(e) != 2:
                    raise CaseError(f"an entry is [type, value] or {{type, value}}: {e!r}")
                pairs.append((int_expr(e[0], self.vars), int_expr(e[1], self.vars)))
            return pairs
        raise CaseError(f"bad entries expectation {spec!r}")

    def text(self, spec: Any, got: Any) -> str | None:
        """Compare a text observation; None when it matches."""
        if spec == "any":
            return None
        if not isinstance(got, str):
            return f"expected text, got {_short(got)}"
        if isinstance(spec, dict):
            if "match" in spec:
                pattern = self.vars.fmt(str(spec["match"]))
                return None if re.fullmatch(pattern, got, re.S) else \
                    f"expected /{pattern}/, got {_short(got)}"
            if "nonempty" in spec:
                ok = bool(got) == bool(spec["nonempty"])
                return None if ok else f"expected {'non-' if spec['nonempty'] else ''}empty " \
                    f"text, got {_short(got)}"
            if "text" in spec:
                want = self.vars.fmt(str(spec["text"]))
                if "truncate" in spec:
                    want = want.encode(errors="surrogateescape")[: int(spec["truncate"])] \
                        .decode(errors="surrogateescape")
                return None if got == want else _text_diff(want, got)
            raise CaseError(f"bad text expectation {spec!r}")
        want = self.vars.fmt(str(spec))
        return None if got == want else _text_diff(want, got)

    def value(self, key: str, spec: Any, got: Any, args: Mapping[str, Any]) -> str | None:
        """Compare one observation key; None when it matches."""
        if spec == "any":
            return None
        if key == "data":
            if spec == "truth-prefix" and isinstance(got, (bytes, bytearray)):
                args = {**args, "got": len(got)}
            want = self.expected_data(spec, args)
            if want is None:
                return None
            if isinstance(got, dict):  # a recording keeps only the digest
                return None if got == digest(want) else \
                    f"expected {_short(want)} ({digest(want)['sha256'][:12]}), got {got}"
            return None if got == want else f"expected {_short(want)}, got {_short(got)}"
        if key == "entries":
            want_e = self.expected_entries(spec, args.get("names", []))
            got_e = [tuple(x) for x in got] if isinstance(got, list) else got
            if got_e == want_e:
                return None
            if isinstance(got_e, list) and len(got_e) == len(want_e):
                bad = [f"{args['names'][i]}: expected ({w[0]:#x}, {w[1]:#x}), got "
                       f"({g[0]:#x}, {g[1]:#x})"
                       for i, (w, g) in enumerate(zip(want_e, got_e, strict=True)) if w != g]
                return "; ".join(bad[:6]) + (f" (+{len(bad) - 6} more)" if len(bad) > 6 else "")
            return f"expected {_short(want_e)}, got {_short(got_e)}"
        if key == "records":
            want_r: list[tuple[int, ...]]
            if spec == "truth":
                stop = int(args.get("stop_after", 0))
                walk = self.prep.truth.walk
                want_r = [(w.version, w.paddr, w.kmap_vaddr, w.dmap_vaddr, w.prot, w.offset,
                           w.len) for w in (walk[:stop] if stop else walk)]
            elif isinstance(spec, list):
                want_r = [tuple(int_expr(x, self.vars) for x in r) for r in spec]
            else:
                raise CaseError(f"bad records expectation {spec!r}")
            if isinstance(got, dict):  # a recording keeps only the digest
                wd = records_digest(want_r)
                ok = (got.get("count"), got.get("sha256")) == (wd["count"], wd["sha256"])
                return None if ok else f"expected {wd['count']} records ({wd['sha256'][:12]})" \
                    f", recorded {got.get('count')} ({str(got.get('sha256'))[:12]})"
            got_r = [tuple(r) for r in got] if isinstance(got, list) else got
            if got_r == want_r:
                return None
            if isinstance(got_r, list):
                for i, (w, g) in enumerate(zip(want_r, got_r, strict=False)):
                    if w != g:
                        return f"record {i}: expected {w}, got {g}"
                return f"expected {len(want_r)} records, got {len(got_r)}"
            return f"expected records, got {_short(got)}"
        if key == "values":
            if isinstance(spec, str) and spec.startswith("kdata:"):
                want_v = kdata_values(self.prep, spec[6:])
            elif isinstance(spec, list):
                want_v = [int_expr(x, self.vars) if isinstance(x, str) else x for x in spec]
            else:
                raise CaseError(f"bad values expectation {spec!r}")
            return None if got == want_v else f"expected {_short(want_v)}, got {_short(got)}"
        if key in ("stderr", "errbuf", "geterr", "raised", "errno"):
            if spec is None or spec is False:
                return None if got in (None, "") else f"expected nothing, got {_short(got)}"
            return self.text(spec, got)
        # ret and count: ints or words ("descriptor", "NULL")
        if isinstance(got, int) and not isinstance(got, bool):
            want_i = int_expr(spec, self.vars) if not isinstance(spec, int) else spec
            return None if got == want_i else f"expected {want_i}, got {got}"
        return self.text(spec, got)

    def compare(self, exp: Mapping[str, Any], obs: Obs, args: Mapping[str, Any]) -> list[str]:
        """Every difference between one step's expectation and observation."""
        want = dict(exp)
        want.setdefault("stderr", "")
        want.setdefault("raised", None)
        diffs = []
        for key, spec in want.items():
            if key == "data" and isinstance(obs.get("ret"), int) and obs["ret"] < 0:
                continue  # nothing was read
            if key not in obs and key not in ("raised", "stderr"):
                if spec == "any":
                    continue
                diffs.append(f"{key}: not observed (expected {_short(spec)})")
                continue
            try:
                d = self.value(key, spec, obs.get(key), args)
            except FixtureGap as exc:
                d = f"cannot evaluate: {exc}"
            if d:
                diffs.append(f"{key}: {d}")
        return diffs


def instances(case: Case, fixtures: Sequence[FixtureSpec],
              prepare: Callable[[FixtureSpec], Prepared],
              unmet: Callable[[Case, Prepared], str] | None = None,
              ) -> list[tuple[Instance, Prepared | str]]:
    """Every instance of ``case`` with its prepared fixture, or the reason it has none.

    ``unmet(case, prep)`` says why the case's requirements fail on a fixture; such a
    fixture gives one not-applicable instance instead of one per item.
    """
    out: list[tuple[Instance, Prepared | str]] = []
    for spec in fixtures:
        try:
            prep = prepare(spec)
        except FixtureGap as exc:
            out.append((Instance(case, spec), str(exc)))
            continue
        except Exception as exc:  # a fixture writer that fails is reported, not fatal
            out.append((Instance(case, spec), f"error: building the fixture failed: "
                        f"{type(exc).__name__}: {exc}"))
            continue
        why = unmet(case, prep) if unmet else ""
        if why:
            out.append((Instance(case, spec), why))
            continue
        items = items_of(case, prep) if prep.synthetic else None
        if case.for_each and not prep.synthetic:
            out.append((Instance(case, spec), "for_each needs a synthetic fixture"))
            continue
        if items is None:
            out.append((Instance(case, spec), prep))
        else:
            out.extend((Instance(case, spec, it), prep) for it in items)
    return out
