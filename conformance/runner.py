"""Running cases against backends and turning what they observe into results."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from .backends.base import Backend, Execution
from .engine import Checker, Instance, ResolvedStep, Vars, hard_text, instances, resolve
from .fixtures import FixtureGap, FixtureStore, Host, Prepared, synth_arches
from .model import Case, CaseError, FixtureSpec

#: result statuses; only "fail", "error" and "drift" count against a backend
STATUSES = ("pass", "fail", "error", "drift", "known", "not-run", "n/a")
FAILING = ("fail", "error", "drift")


@dataclass
class StepDiff:
    """How one step of an instance differed from its expectation."""

    index: int
    call: str
    args: dict[str, Any]
    problems: list[str]
    observed: dict[str, Any] = field(default_factory=dict)


@dataclass
class Result:
    """The verdict of one backend on one instance."""

    iid: str
    case_id: str
    area: str
    cite: str
    title: str
    backend: str
    status: str
    reason: str = ""
    diffs: list[StepDiff] = field(default_factory=list)
    departure: str = ""
    must_pass: bool = True
    fixture: str = ""

    @property
    def counts_as_failure(self) -> bool:
        """Whether this result makes the run exit non-zero."""
        return self.must_pass and self.status in FAILING


#: ``requires`` entries decided by the fixture's architecture and the host alone
_ARCH_ONLY = ("native-host", "non-native-host", "host:", "host-not:", "arch:", "arch-not:",
              "freebsd", "not-freebsd")


def requirement_unmet(req: str, prep: Prepared, host: Host) -> str:
    """Why a ``requires`` entry is not met ("" when it is)."""
    arch = prep.arch
    if req == "native-host":
        return "" if arch and arch == host.arch else f"needs a {arch or 'dump'} host"
    if req == "non-native-host":
        return "" if arch and arch != host.arch else "needs a dump of another architecture"
    if req.startswith("host:"):
        return "" if host.arch == req[5:] else f"needs a {req[5:]} host"
    if req.startswith("host-not:"):
        return "" if host.arch != req[9:] else f"not meaningful on a {req[9:]} host"
    if req.startswith("arch:"):
        return "" if arch in req[5:].split(",") else f"needs a dump of {req[5:]}"
    if req.startswith("arch-not:"):
        return "" if arch not in req[9:].split(",") else f"not meaningful for {arch} dumps"
    if req == "freebsd":
        return "" if host.freebsd else "needs FreeBSD"
    if req == "not-freebsd":
        return "" if not host.freebsd else "not meaningful on FreeBSD"
    if not prep.vmcore:
        return f"{req}: needs a dump"
    is_minidump = _is_minidump(prep.vmcore)
    if req == "minidump":
        return "" if is_minidump else "needs a minidump"
    if req == "full-dump":
        return "" if not is_minidump else "needs a full dump"
    if not prep.synthetic:
        return f"{req}: needs a synthetic fixture"
    t = prep.truth
    if req == "walker":
        return "" if t.walk else "the format has no page walker"
    if req == "no-walker":
        return "" if not t.walk else "the format has a page walker"
    if req == "dump-avail":
        return "" if t.layout.get("dumpavailsize") else "the format has no dump_avail"
    raise CaseError(f"unknown requirement {req!r}")


def _is_minidump(path: str) -> bool:
    try:
        with open(path, "rb") as fh:
            return fh.read(8) == b"minidump"
    except OSError:
        return False


@dataclass
class Ran:
    """Everything about one backend's run of one instance (for recording)."""

    inst: Instance
    prep: Prepared | None
    backend: Backend
    steps: list[ResolvedStep]
    execution: Execution | None
    result: Result


class Runner:
    """Runs instances of cases on a list of backends."""

    def __init__(self, backends: Sequence[Backend], store: FixtureStore, host: Host,
                 progress: Callable[[str], None] | None = None) -> None:
        self.backends = list(backends)
        self.store = store
        self.host = host
        self.progress = progress
        self._why = {b.name: b.unavailable() for b in self.backends}

    def _result(self, inst: Instance, backend: Backend, status: str, reason: str = "",
                diffs: list[StepDiff] | None = None) -> Result:
        c = inst.case
        return Result(inst.iid, c.id, c.area, c.cite, c.title, backend.name, status, reason,
                      diffs or [], inst.departure, backend.must_pass, inst.fixture.key)

    def expand(self, cases: Sequence[Case]) -> Iterator[tuple[Instance, Prepared | str]]:
        """Every instance of the cases, with its prepared fixture or why it has none."""
        arches, formats_of = synth_arches()
        for case in cases:
            yield from instances(case, case.fixture.expand(arches, formats_of),
                                 self._preparer(case), self.unmet)

    def _preparer(self, case: Case) -> Callable[[FixtureSpec], Prepared]:
        """The store's ``prepare``, after the requirements that need only the fixture's
        architecture and the host (so a fixture that cannot run here is never built)."""
        early = [r for r in case.requires if r.startswith(_ARCH_ONLY)]

        def prepare(spec: FixtureSpec) -> Prepared:
            if early and spec.kind == "synth":
                light = Prepared(spec, self.store, arch=spec.arch)
                for req in early:
                    why = requirement_unmet(req, light, self.host)
                    if why:
                        raise FixtureGap(why)
            return self.store.prepare(spec)

        return prepare

    def unmet(self, case: Case, prep: Prepared) -> str:
        """Why ``case`` cannot run on ``prep`` on this host ("" when it can)."""
        try:
            for req in case.requires:
                why = requirement_unmet(req, prep, self.host)
                if why:
                    return why
        except FixtureGap as exc:
            return str(exc)
        return ""

    def run(self, cases: Sequence[Case]) -> Iterator[Ran]:
        """Run every instance of ``cases`` on every backend."""
        for inst, prep in self.expand(cases):
            yield from self.run_instance(inst, prep)

    def run_instance(self, inst: Instance, prep: Prepared | str) -> Iterator[Ran]:
        """Run one instance on every backend."""
        if self.progress:
            self.progress(inst.iid)
        if isinstance(prep, str):
            status = "error" if prep.startswith("error: ") else "n/a"
            for b in self.backends:
                yield Ran(inst, None, b, [], None, self._result(inst, b, status, prep))
            return
        why = ""
        status = "n/a"
        steps: list[ResolvedStep] = []
        v = Vars(prep, inst.item, self.host.arch)
        try:
            for req in inst.case.requires:
                why = requirement_unmet(req, prep, self.host)
                if why:
                    break
            if not why:
                v.local["hard"] = hard_text(inst.item, v, inst.case.texts)
                steps = [resolve(s, v) for s in inst.case.steps]
        except FixtureGap as exc:
            why = str(exc)
        except CaseError as exc:
            why, status = f"case error: {exc}", "error"
        if why:
            for b in self.backends:
                yield Ran(inst, prep, b, steps, None, self._result(inst, b, status, why))
            return
        resolver = next((s.args.get("resolver") for s in steps if s.call == "open"), None)
        checker = Checker(prep, v, resolver)
        for b in self.backends:
            yield self._run_on(inst, prep, b, steps, checker)

    def _run_on(self, inst: Instance, prep: Prepared, b: Backend, steps: list[ResolvedStep],
                checker: Checker) -> Ran:
        def done(status: str, reason: str = "", diffs: list[StepDiff] | None = None,
                 ex: Execution | None = None) -> Ran:
            return Ran(inst, prep, b, steps, ex, self._result(inst, b, status, reason, diffs))

        if self._why[b.name]:
            return done("not-run", self._why[b.name])
        skip = inst.case.skip_reason(b.name)
        if skip:
            return done("not-run", skip)
        na = b.unsupported(inst, steps)
        if na:
            return done("n/a", na)
        ex = b.execute(inst, prep, steps)
        if ex.not_run:
            return done("not-run", ex.not_run, ex=ex)
        if ex.not_applicable:
            return done("n/a", ex.not_applicable, ex=ex)
        if ex.drift:
            return done("drift", ex.drift, ex=ex)
        diffs: list[StepDiff] = []
        try:
            for i, st in enumerate(steps):
                if i >= len(ex.observations):
                    why = f"the process crashed ({ex.crash})" if ex.crash else "no observation"
                    diffs.append(StepDiff(i, st.call, st.shown, [f"not observed: {why}"]))
                    break
                obs = ex.observations[i]
                problems = checker.compare(inst.expectation(i, b.name), obs, st.args)
                if problems:
                    diffs.append(StepDiff(i, st.call, st.shown, problems, _summary(obs)))
                if st.call == "open" and obs.get("ret") == "NULL":
                    break  # nothing after a failed open was called (see run_steps)
        except CaseError as exc:
            return done("error", f"case error: {exc}", ex=ex)
        except FixtureGap as exc:
            return done("n/a", str(exc), ex=ex)
        if ex.crash and not diffs:
            diffs.append(StepDiff(len(ex.observations), "", {}, [f"crashed: {ex.crash}"]))
        return done("fail" if diffs else "pass", "", diffs, ex)


def _summary(obs: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in obs.items():
        if isinstance(v, (bytes, bytearray)):
            out[k] = f"<{len(v)} bytes {bytes(v[:16]).hex()}{'...' if len(v) > 16 else ''}>"
        elif isinstance(v, list) and len(v) > 4:
            out[k] = f"{v[:4]!r}... ({len(v)} items)"
        else:
            out[k] = v
    return out
