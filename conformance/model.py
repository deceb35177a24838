"""Cases as data: the TOML schema, its validation, and the fixtures a case expands to.

A case file (``conformance/cases/*.toml``) holds ``[[case]]`` tables.  Each case names
its source (``cite``), the fixture it runs on, the call sequence (``[[case.step]]``) and
what every call must return.  The schema is documented in ``conformance/README.md``;
this module turns the TOML into frozen dataclasses and rejects anything it does not
know, so that a typo in a case file is an error, never a silently skipped check.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]

#: every call a step may make (backend-neutral names; see README.md "Calls")
CALLS = (
    "open",
    "close",
    "close_null",
    "geterr",
    "geterr_null",
    "native",
    "kerndisp",
    "read",
    "read2",
    "write",
    "nlist",
    "nlist2",
    "walk_pages",
    "err_hook",
    # kernel-data calls (kernel-data.md 1-6)
    "getprocs",
    "getargv",
    "getenvv",
    "getloadavg",
    "getcptime",
    "getswapinfo",
    "getmaxcpu",
    "getncpus",
    "getpcpu",
    "dpcpu_setcpu",
    "read_zpcpu",
    "counter_u64_fetch",
)
#: the calls that interpret kernel data (the pykvm backend runs them in strict mode)
KDATA_CALLS = CALLS[CALLS.index("getprocs"):]
OPEN_VARIANTS = ("kvm_open", "kvm_openfiles", "kvm_open2")
#: the keys an observation (and therefore an expectation) may have
OBS_KEYS = (
    "ret",
    "errbuf",
    "stderr",
    "geterr",
    "errno",
    "data",
    "entries",
    "records",
    "count",
    "raised",
    "values",
)
#: the argument names each call accepts
CALL_ARGS: dict[str, frozenset[str]] = {
    "open": frozenset({"variant", "exec", "core", "swap", "flags", "errstr", "errbuf",
                       "resolver"}),
    "close": frozenset(),
    "close_null": frozenset(),
    "geterr": frozenset(),
    "geterr_null": frozenset(),
    "native": frozenset(),
    "kerndisp": frozenset(),
    "read": frozenset({"addr", "size"}),
    "read2": frozenset({"addr", "size"}),
    "write": frozenset({"addr", "size", "hex"}),
    "nlist": frozenset({"names"}),
    "nlist2": frozenset({"names"}),
    "walk_pages": frozenset({"stop_after"}),
    "err_hook": frozenset({"text"}),
    "getprocs": frozenset({"op", "arg"}),
    "getargv": frozenset({"nchr"}),
    "getenvv": frozenset({"nchr"}),
    "getloadavg": frozenset({"nelem"}),
    "getcptime": frozenset(),
    "getswapinfo": frozenset({"max", "flags"}),
    "getmaxcpu": frozenset(),
    "getncpus": frozenset(),
    "getpcpu": frozenset({"cpu", "size"}),
    "dpcpu_setcpu": frozenset({"cpu"}),
    "read_zpcpu": frozenset({"base", "size", "cpu"}),
    "counter_u64_fetch": frozenset({"base"}),
}
BACKENDS = ("pykvm", "compat", "native", "fvc", "golden")
#: names usable in ``expect_for`` and ``skip`` besides the backend names
GROUPS: dict[str, tuple[str, ...]] = {
    "emulation": ("pykvm", "compat"),
    "libkvm": ("native", "golden"),
}
FIXTURE_KINDS = ("files", "synth", "real")
FOR_EACH = ("hole", "region", "symbol")
#: conditions a case may require of the host and fixture (README.md "requires")
REQUIRE_RE = re.compile(
    r"native-host|non-native-host|host:[a-z0-9]+|host-not:[a-z0-9]+|freebsd|not-freebsd"
    r"|walker|no-walker|minidump|full-dump|dump-avail|arch:[a-z0-9,]+|arch-not:[a-z0-9,]+"
)
_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]*")


class CaseError(ValueError):
    """A case file that does not follow the schema."""


def backends_of(name: str) -> tuple[str, ...]:
    """The backend names a key of ``expect_for``/``skip`` stands for."""
    if name in GROUPS:
        return GROUPS[name]
    if name in BACKENDS:
        return (name,)
    raise CaseError(f"unknown backend or group {name!r}")


@dataclass(frozen=True)
class Step:
    """One call of a case, with what libkvm returns (``expect``) and per-backend overrides."""

    call: str
    args: Mapping[str, Any]
    expect: Mapping[str, Any]
    expect_for: Mapping[str, Mapping[str, Any]]
    note: str = ""

    def expectation(self, backend: str, quirk: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The expectation ``backend`` must meet: ``expect`` merged with its overrides.

        ``quirk`` (libkvm's behaviour on an address where it departs, see
        :class:`QuirkRule`) replaces ``expect`` for libkvm backends before overrides.
        """
        out = dict(self.expect)
        if quirk is not None and backend in GROUPS["libkvm"]:
            out.update(quirk)
        for key, over in self.expect_for.items():
            if backend in backends_of(key):
                out.update(over)
        return out


@dataclass(frozen=True)
class TextRule:
    """How the hard (backend-specific) message of a hole is worded; first match wins."""

    hard: str
    kinds: tuple[str, ...] = ()
    where: tuple[str, ...] = ()
    formats: tuple[str, ...] = ()

    def matches(self, kind: str, where: str, fmt: str) -> bool:
        """Whether this rule applies to a hole of ``kind`` at ``where`` in format ``fmt``."""
        return ((not self.kinds or kind in self.kinds)
                and (not self.where or where in self.where)
                and (not self.formats or fmt in self.formats))


@dataclass(frozen=True)
class QuirkRule:
    """libkvm's result for a hole where it departs from pykvm (e.g. formats.md 14 row 2)."""

    departure: str
    step: int
    expect: Mapping[str, Any]
    note: str = ""


@dataclass(frozen=True)
class Departure:
    """A deliberate difference between pykvm and libkvm that a case pins down."""

    ref: str
    libkvm: str
    pykvm: str


@dataclass(frozen=True)
class FixtureDef:
    """The fixture as a case writes it; it may expand to several :class:`FixtureSpec`."""

    kind: str
    arches: tuple[str, ...] = ()
    formats: tuple[str, ...] = ()
    seeds: tuple[int, ...] = (0,)
    options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def expand(self, arches: Sequence[str], formats_of: Any) -> list[FixtureSpec]:
        """Concrete fixtures: every arch x format x seed (``"*"`` = all known)."""
        if self.kind != "synth":
            return [FixtureSpec(self.kind)]
        out: list[FixtureSpec] = []
        want_arches = list(arches) if self.arches == ("*",) else list(self.arches)
        for arch in want_arches:
            if arch not in arches:
                continue  # no writer for this architecture yet
            have = tuple(formats_of(arch))
            fmts = have if self.formats in ((), ("*",)) else tuple(
                f for f in self.formats if f in have)
            opts = dict(self.options.get("all", {}))
            opts.update(self.options.get(arch, {}))
            items = tuple(sorted(opts.items()))
            for fmt in fmts:
                for seed in self.seeds:
                    out.append(FixtureSpec("synth", arch, fmt, seed, items))
        return out


@dataclass(frozen=True)
class FixtureSpec:
    """One concrete fixture: a synthetic dump (arch, format, seed, options) or not."""

    kind: str
    arch: str = ""
    fmt: str = ""
    seed: int = 0
    options: tuple[tuple[str, Any], ...] = ()

    @property
    def key(self) -> str:
        """A stable name usable as a directory name and in case-instance ids."""
        if self.kind != "synth":
            return self.kind
        opts = ",".join(f"{k}={_opt(v)}" for k, v in self.options)
        return f"{self.arch}/{self.fmt}/s{self.seed}" + (f"/{opts}" if opts else "")

    def as_json(self) -> dict[str, Any]:
        """The fixture as recorded in golden files."""
        return {"kind": self.kind, "arch": self.arch, "format": self.fmt, "seed": self.seed,
                "options": dict(self.options)}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> FixtureSpec:
        """Inverse of :meth:`as_json`."""
        return cls(str(d["kind"]), str(d.get("arch", "")), str(d.get("format", "")),
                   int(d.get("seed", 0)), tuple(sorted(dict(d.get("options", {})).items())))


def _opt(v: Any) -> str:
    if isinstance(v, bool):
        return "1" if v else "0"
    return str(v)


@dataclass(frozen=True)
class Case:
    """One case of the suite, as loaded from a case file."""

    id: str
    area: str
    cite: str
    title: str
    source: str
    fixture: FixtureDef
    steps: tuple[Step, ...]
    requires: tuple[str, ...] = ()
    for_each: str = ""
    limit: int = 0
    departure: Departure | None = None
    skip: Mapping[str, str] = field(default_factory=dict)
    texts: tuple[TextRule, ...] = ()
    quirk: QuirkRule | None = None

    def skip_reason(self, backend: str) -> str | None:
        """The case's own reason not to run on ``backend`` (None: run it)."""
        for key, reason in self.skip.items():
            if backend in backends_of(key):
                return reason
        return None

    def calls(self) -> set[str]:
        """The calls the case makes."""
        return {s.call for s in self.steps}


# --------------------------------------------------------------------------- loading
_CASE_KEYS = {"id", "area", "cite", "title", "fixture", "step", "requires", "for_each",
              "limit", "departure", "skip", "text", "quirk"}
_STEP_KEYS = {"call", "expect", "expect_for", "note"}
_FIXTURE_KEYS = {"kind", "arch", "format", "seed", "options"}


def _strs(v: Any, what: str) -> tuple[str, ...]:
    if isinstance(v, str):
        return (v,)
    if isinstance(v, list) and all(isinstance(x, str) for x in v):
        return tuple(v)
    raise CaseError(f"{what}: expected a string or a list of strings, got {v!r}")


def _table(v: Any, what: str) -> dict[str, Any]:
    if not isinstance(v, dict):
        raise CaseError(f"{what}: expected a table, got {v!r}")
    return v


def _check_expect(exp: Mapping[str, Any], what: str) -> None:
    bad = set(exp) - set(OBS_KEYS)
    if bad:
        raise CaseError(f"{what}: unknown observation keys {sorted(bad)}")


def _load_fixture(raw: Any, what: str) -> FixtureDef:
    d = _table(raw, what)
    bad = set(d) - _FIXTURE_KEYS
    if bad:
        raise CaseError(f"{what}: unknown keys {sorted(bad)}")
    kind = d.get("kind", "synth")
    if kind not in FIXTURE_KINDS:
        raise CaseError(f"{what}: kind must be one of {FIXTURE_KINDS}")
    if kind != "synth":
        if set(d) - {"kind"}:
            raise CaseError(f"{what}: a {kind!r} fixture takes no other keys")
        return FixtureDef(kind)
    seeds_raw = d.get("seed", 0)
    seeds = tuple(seeds_raw) if isinstance(seeds_raw, list) else (seeds_raw,)
    if not all(isinstance(s, int) for s in seeds):
        raise CaseError(f"{what}: seed must be an integer or a list of integers")
    options = _table(d.get("options", {}), f"{what}.options")
    for arch, opts in options.items():
        _table(opts, f"{what}.options.{arch}")
    return FixtureDef("synth", _strs(d.get("arch", "amd64"), f"{what}.arch"),
                      _strs(d.get("format", "*"), f"{what}.format"), seeds, options)


def _load_step(raw: Any, what: str) -> Step:
    d = _table(raw, what)
    call = d.get("call")
    if call not in CALLS:
        raise CaseError(f"{what}: call must be one of {CALLS}, got {call!r}")
    args = {k: v for k, v in d.items() if k not in _STEP_KEYS}
    bad = set(args) - CALL_ARGS[call]
    if bad:
        raise CaseError(f"{what}: {call} takes no arguments {sorted(bad)}")
    if call == "open" and args.get("variant", "kvm_open2") not in OPEN_VARIANTS:
        raise CaseError(f"{what}: variant must be one of {OPEN_VARIANTS}")
    expect = _table(d.get("expect", {}), f"{what}.expect")
    _check_expect(expect, f"{what}.expect")
    expect_for = _table(d.get("expect_for", {}), f"{what}.expect_for")
    for key, over in expect_for.items():
        backends_of(key)
        _check_expect(_table(over, f"{what}.expect_for.{key}"), f"{what}.expect_for.{key}")
    return Step(call, args, expect, expect_for, str(d.get("note", "")))


def load_case(raw: Any, source: str, index: int) -> Case:
    """Validate one ``[[case]]`` table."""
    d = _table(raw, f"{source} case #{index}")
    cid = d.get("id")
    if not isinstance(cid, str) or not _ID_RE.fullmatch(cid):
        raise CaseError(f"{source} case #{index}: id must match {_ID_RE.pattern}, got {cid!r}")
    what = f"{source} {cid}"
    bad = set(d) - _CASE_KEYS
    if bad:
        raise CaseError(f"{what}: unknown keys {sorted(bad)}")
    for key in ("area", "cite"):
        if not isinstance(d.get(key), str) or not d[key]:
            raise CaseError(f"{what}: {key} is required")
    steps = tuple(_load_step(s, f"{what} step {i}") for i, s in enumerate(d.get("step", [])))
    if not steps:
        raise CaseError(f"{what}: a case needs at least one [[case.step]]")
    requires = _strs(d.get("requires", []), f"{what}.requires")
    for r in requires:
        if not REQUIRE_RE.fullmatch(r):
            raise CaseError(f"{what}: unknown requirement {r!r}")
    for_each = d.get("for_each", "")
    if for_each and for_each not in FOR_EACH:
        raise CaseError(f"{what}: for_each must be one of {FOR_EACH}")
    dep = None
    if "departure" in d:
        dd = _table(d["departure"], f"{what}.departure")
        if set(dd) - {"ref", "libkvm", "pykvm"} or not dd.get("ref"):
            raise CaseError(f"{what}.departure: needs ref (and libkvm, pykvm texts) only")
        dep = Departure(str(dd["ref"]), str(dd.get("libkvm", "")), str(dd.get("pykvm", "")))
    skip = {str(k): str(v) for k, v in _table(d.get("skip", {}), f"{what}.skip").items()}
    for key in skip:
        backends_of(key)
    texts = []
    for i, t in enumerate(d.get("text", [])):
        tt = _table(t, f"{what} text {i}")
        if set(tt) - {"hard", "kinds", "where", "formats"} or "hard" not in tt:
            raise CaseError(f"{what} text {i}: needs hard, and only kinds/where/formats")
        texts.append(TextRule(str(tt["hard"]), _strs(tt.get("kinds", []), "kinds"),
                              _strs(tt.get("where", []), "where"),
                              _strs(tt.get("formats", []), "formats")))
    if texts and for_each != "hole":
        raise CaseError(f"{what}: [[case.text]] rules need for_each = \"hole\"")
    quirk = None
    if "quirk" in d:
        q = _table(d["quirk"], f"{what}.quirk")
        if set(q) - {"departure", "step", "expect", "note"} or "departure" not in q:
            raise CaseError(f"{what}.quirk: needs departure, step, expect")
        step = int(q.get("step", 0))
        if not 0 <= step < len(steps):
            raise CaseError(f"{what}.quirk: no step {step}")
        qe = _table(q.get("expect", {}), f"{what}.quirk.expect")
        _check_expect(qe, f"{what}.quirk.expect")
        quirk = QuirkRule(str(q["departure"]), step, qe, str(q.get("note", "")))
    limit = d.get("limit", 0)
    if not isinstance(limit, int) or limit < 0:
        raise CaseError(f"{what}: limit must be a non-negative integer")
    return Case(
        id=cid, area=d["area"], cite=d["cite"], title=str(d.get("title", "")), source=source,
        fixture=_load_fixture(d.get("fixture", {"kind": "files"}), f"{what}.fixture"),
        steps=steps, requires=requires, for_each=for_each, limit=limit, departure=dep,
        skip=skip, texts=tuple(texts), quirk=quirk,
    )


CASES_DIR = Path(__file__).resolve().parent / "cases"


def read_toml(path: Path) -> dict[str, Any]:
    """A TOML document (tomllib on 3.11+, tomli on 3.10); CaseError if malformed."""
    with path.open("rb") as fh:
        try:
            doc: dict[str, Any] = tomllib.load(fh)
        except tomllib.TOMLDecodeError as exc:
            raise CaseError(f"{path.name}: {exc}") from None
    return doc


def load_cases(directory: Path | None = None) -> list[Case]:
    """Every case of every ``*.toml`` file in ``directory`` (default: the suite's)."""
    root = CASES_DIR if directory is None else directory
    cases: list[Case] = []
    seen: dict[str, str] = {}
    for path in sorted(root.glob("*.toml")):
        doc = read_toml(path)
        if set(doc) - {"case"}:
            raise CaseError(f"{path.name}: only [[case]] tables belong in a case file")
        for i, raw in enumerate(doc.get("case", [])):
            case = load_case(raw, path.name, i)
            if case.id in seen:
                raise CaseError(f"{path.name}: duplicate id {case.id!r} (also in "
                                f"{seen[case.id]})")
            seen[case.id] = path.name
            cases.append(case)
    return cases


def select(cases: Sequence[Case], patterns: Sequence[str]) -> list[Case]:
    """Cases whose id or area matches any glob pattern (all cases when none is given)."""
    import fnmatch

    if not patterns:
        return list(cases)
    return [c for c in cases
            if any(fnmatch.fnmatchcase(c.id, p) or fnmatch.fnmatchcase(c.area, p)
                   for p in patterns)]
