"""``replay``: compare pykvm (or compat) with recorded native results, on any host.

For every recorded instance the case is looked up by id and its fixture rebuilt from
the recorded spec (seed, format, options).  If the rebuilt files' hashes differ from the
recorded ones the instance is reported as *drift*.  Otherwise the backend runs the same
calls and every recorded key is compared with what it observes -- except the keys a
case overrides for that backend (a documented departure), which are checked against the
case's expectation instead.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from .backends.base import Backend
from .backends.golden_backend import drift_text
from .engine import Checker, Vars, hard_text, instances, resolve
from .fixtures import FixtureGap, FixtureStore, Host
from .golden import GoldenSet, Recording, to_golden
from .model import Case, CaseError, backends_of
from .runner import Result, StepDiff


def _result(rec: Recording, case: Case | None, backend: Backend, status: str, reason: str = "",
            diffs: list[StepDiff] | None = None, departure: str = "") -> Result:
    return Result(rec.iid, rec.case, case.area if case else "?", case.cite if case else "",
                  case.title if case else "", backend.name, status, reason, diffs or [],
                  departure, True, rec.fixture.key)


def replay(golden: GoldenSet, cases: Sequence[Case], backend: Backend, store: FixtureStore,
           host: Host, patterns: Sequence[str] = ()) -> Iterator[Result]:
    """Replay every recording (of the selected cases) on ``backend``."""
    import fnmatch

    by_id = {c.id: c for c in cases}
    why_not = backend.unavailable()
    for _, recs in sorted(golden.by_iid.items()):
        for rec in recs:
            if patterns and not any(fnmatch.fnmatchcase(rec.case, p) for p in patterns):
                continue
            case = by_id.get(rec.case)
            if case is None:
                yield _result(rec, None, backend, "not-run",
                              "the recorded case no longer exists")
                continue
            if why_not:
                yield _result(rec, case, backend, "not-run", why_not)
                continue
            yield _replay_one(rec, case, backend, store, host)


def _replay_one(rec: Recording, case: Case, backend: Backend, store: FixtureStore,
                host: Host) -> Result:
    found = [(i, p) for i, p in instances(case, [rec.fixture], store.prepare) if i.iid == rec.iid]
    if not found:
        gap = next((p for _, p in instances(case, [rec.fixture], store.prepare)
                    if isinstance(p, str)), "")
        return _result(rec, case, backend, "not-run" if gap else "drift",
                       gap or "the instance no longer exists for this fixture (items moved)")
    inst, prep = found[0]
    if rec.crash:
        return _result(rec, case, backend, "n/a", f"libkvm crashed when recorded: {rec.crash}")
    if isinstance(prep, str):
        return _result(rec, case, backend, "not-run", prep)
    drift = drift_text(rec, prep)
    if drift:
        if prep.spec.kind == "real":
            return _result(rec, case, backend, "not-run",
                           f"needs the recorded pair: {drift}")
        return _result(rec, case, backend, "drift", drift)
    v = Vars(prep, inst.item, host.arch)
    try:
        v.local["hard"] = hard_text(inst.item, v, inst.case.texts)
        steps = [resolve(s, v) for s in case.steps]
    except (FixtureGap, CaseError) as exc:
        return _result(rec, case, backend, "error", str(exc))
    na = backend.unsupported(inst, steps)
    if na:
        return _result(rec, case, backend, "n/a", na)
    ex = backend.execute(inst, prep, steps)
    resolver = next((s.args.get("resolver") for s in steps if s.call == "open"), None)
    checker = Checker(prep, v, resolver)
    diffs: list[StepDiff] = []
    for i, (st, recorded) in enumerate(zip(steps, rec.steps, strict=False)):
        if i >= len(ex.observations):
            diffs.append(StepDiff(i, st.call, st.shown, ["not observed"]))
            break
        mine = to_golden(ex.observations[i], prep)
        theirs: dict[str, Any] = dict(recorded.get("obs", {}))
        overridden: set[str] = set()
        for key, over in case.steps[i].expect_for.items():
            if backend.name in backends_of(key):
                overridden |= set(over)
        problems = []
        for key in sorted(set(theirs) | set(mine)):
            if key == "geterr_raised" or key in overridden:
                continue
            if theirs.get(key) != mine.get(key):
                problems.append(f"{key}: libkvm recorded {theirs.get(key)!r}, "
                                f"{backend.name} gives {mine.get(key)!r}")
        if overridden:
            exp = {k: val for k, val in inst.expectation(i, backend.name).items()
                   if k in overridden}
            problems += [f"(departure) {p}" for p in
                         checker.compare(exp, ex.observations[i], st.args)
                         if not p.startswith(("stderr:", "raised:"))
                         or p.split(":")[0] in overridden]
        if problems:
            diffs.append(StepDiff(i, st.call, st.shown, problems))
    return _result(rec, case, backend, "fail" if diffs else "pass", "", diffs,
                   inst.departure)
