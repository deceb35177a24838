"""``python -m conformance``: run, record, replay, list.

``run``     runs the cases (and the invariants) on the chosen backends; writes a Markdown
            diff report and JUnit XML on request; exits 1 when a backend fails a case it
            must pass.
``record``  (FreeBSD) runs the cases on native libkvm and stores the results, with file
            hashes and host facts, under ``conformance/golden/<host-id>/``.
``replay``  compares pykvm (or compat) with the recorded results, on any host.
``list``    lists the cases.
"""

from __future__ import annotations

import argparse
import fnmatch
import sys
import tempfile
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .backends import make_backends
from .backends.base import Backend
from .fixtures import FixtureStore, Host, host, is_freebsd
from .golden import (
    GOLDEN_DIR,
    GoldenSet,
    fixture_file,
    freebsd_facts,
    host_id,
    to_golden,
    write_recordings,
)
from .invariants import Invariants, default_fixtures
from .known import apply_known, load_known
from .model import BACKENDS, Case, CaseError, load_cases, select
from .report import junit, markdown, summary
from .runner import Result, Runner

DEFAULT_BACKENDS = ",".join(BACKENDS)


def _backend_names(values: Sequence[str]) -> list[str]:
    names: list[str] = []
    for v in values or [DEFAULT_BACKENDS]:
        for n in v.split(","):
            n = n.strip()
            if n and n not in names:
                if n not in BACKENDS:
                    raise SystemExit(f"conformance: unknown backend {n!r} (one of {BACKENDS})")
                names.append(n)
    return names


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--case", action="append", default=[], metavar="PATTERN",
                   help="run only cases whose id or area matches (glob; repeatable)")
    p.add_argument("--kernel", help="a real kernel (with --vmcore)")
    p.add_argument("--vmcore", help="a real vmcore (with --kernel)")
    p.add_argument("--workdir", help="where fixtures are built (default: a temporary dir)")
    p.add_argument("--golden-dir", type=Path, default=GOLDEN_DIR, help="recorded results")
    p.add_argument("-q", "--quiet", action="store_true", help="print only the summary")


def parser() -> argparse.ArgumentParser:
    """The command-line parser."""
    ap = argparse.ArgumentParser(prog="python -m conformance",
                                 description="pykvm's libkvm conformance suite")
    sub = ap.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run cases on backends")
    _common(run)
    run.add_argument("--backend", action="append", default=[],
                     help=f"backends, comma separated (default {DEFAULT_BACKENDS})")
    run.add_argument("--report-md", type=Path, help="write the Markdown report here")
    run.add_argument("--junit", type=Path, help="write JUnit XML here")
    run.add_argument("--no-invariants", action="store_true", help="skip the invariants")
    run.add_argument("--strict-fvc", action="store_true",
                     help="make libfbsdvmcore failures fail the run")
    run.add_argument("--invariant-symbols", type=int, default=128, metavar="N",
                     help="symbols the nlist invariant compares (default 128)")
    rec = sub.add_parser("record", help="record native libkvm results (FreeBSD)")
    _common(rec)
    rec.add_argument("--host-id", help="directory name under golden/ (default from uname)")
    rec.add_argument("--dry-run", action="store_true", help="show what would be recorded")
    rec.add_argument("--source", default="native", choices=("native", "pykvm"),
                     help=argparse.SUPPRESS)  # pykvm: to test the format off FreeBSD
    rep = sub.add_parser("replay", help="compare pykvm with recorded results")
    _common(rep)
    rep.add_argument("--backend", action="append", default=[],
                     help="pykvm (default) and/or compat")
    rep.add_argument("--report-md", type=Path)
    rep.add_argument("--junit", type=Path)
    lst = sub.add_parser("list", help="list the cases")
    lst.add_argument("--case", action="append", default=[], metavar="PATTERN")
    return ap


def _store(args: argparse.Namespace, tmp: str) -> FixtureStore:
    real = None
    if bool(args.kernel) != bool(args.vmcore):
        raise SystemExit("conformance: --kernel and --vmcore go together")
    if args.kernel:
        for p in (args.kernel, args.vmcore):
            if not Path(p).is_file():
                raise SystemExit(f"conformance: {p}: not a file")
        real = (str(Path(args.kernel).resolve()), str(Path(args.vmcore).resolve()))
    return FixtureStore(args.workdir or tmp, real)


def _cases(args: argparse.Namespace) -> list[Case]:
    try:
        cases = select(load_cases(), args.case)
    except CaseError as exc:
        raise SystemExit(f"conformance: {exc}") from None
    if args.command == "run" and getattr(args, "kernel", None):
        cases = [c for c in cases if c.fixture.kind == "real"]
    elif args.command == "run" or (args.command == "record" and not args.kernel):
        cases = [c for c in cases if c.fixture.kind != "real"]
    return cases  # record with a pair: the real-pair cases and all the others


def _progress(quiet: bool) -> Any:
    if quiet or not sys.stderr.isatty():
        return None
    return lambda iid: print(f"\r\033[K{iid[:100]}", end="", file=sys.stderr, flush=True)


def _write_reports(args: argparse.Namespace, results: list[Result], facts: dict[str, str],
                   title: str) -> None:
    if getattr(args, "report_md", None):
        args.report_md.write_text(markdown(results, title, facts), encoding="utf-8")
    if getattr(args, "junit", None):
        args.junit.write_text(junit(results), encoding="utf-8")


def run_suite(cases: Sequence[Case], backends: Sequence[Backend], store: FixtureStore,
              h: Host, invariants: bool = True, invariant_symbols: int = 128,
              progress: Any = None) -> list[Result]:
    """Run cases and invariants in-process; the results of every backend."""
    runner = Runner(backends, store, h, progress)
    results = [ran.result for ran in runner.run(cases)]
    if invariants:
        from .model import FixtureSpec

        specs = [FixtureSpec("real")] if store.real else default_fixtures()
        for spec in specs:
            try:
                prep = store.prepare(spec)
            except Exception:
                continue  # the cases report fixtures that cannot be built
            for b in backends:
                why = runner._why[b.name]
                if why:
                    continue
                results += Invariants(b, prep, h, invariant_symbols).run()
    apply_known(results, load_known())
    return results


def cmd_run(args: argparse.Namespace) -> int:
    names = _backend_names(args.backend)
    h = host()
    with tempfile.TemporaryDirectory(prefix="pykvm-conformance-") as tmp:
        store = _store(args, tmp)
        cases = _cases(args)
        backends = make_backends(names, golden_dir=args.golden_dir, strict_fvc=args.strict_fvc)
        inv = not args.no_invariants and (not args.case or any(
            fnmatch.fnmatchcase("invariants", p) or p.startswith("invariant")
            for p in args.case))
        results = run_suite(cases, backends, store, h, inv, args.invariant_symbols,
                            _progress(args.quiet))
    if _progress(args.quiet):
        print("\r\033[K", end="", file=sys.stderr)
    facts = {"host": f"{h.system} {h.release} {h.machine}", "python": h.python,
             "cases": str(len(cases))}
    if store.real:
        facts["kernel"], facts["vmcore"] = store.real
    _write_reports(args, results, facts, "pykvm conformance report")
    print(summary(results))
    return 1 if any(r.counts_as_failure for r in results) else 0


def cmd_record(args: argparse.Namespace) -> int:
    h = host()
    if args.source == "native" and not is_freebsd():
        print("conformance: record runs FreeBSD's libkvm, so it needs a FreeBSD host "
              "(replay works anywhere)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="pykvm-conformance-") as tmp:
        store = _store(args, tmp)
        cases = _cases(args)
        backends = make_backends([args.source], golden_dir=args.golden_dir)
        why = backends[0].unavailable()
        if why:
            print(f"conformance: {args.source}: {why}", file=sys.stderr)
            return 2
        facts = h.as_json()
        if args.source == "native":
            from .backends.native_backend import libkvm_path

            facts.update(freebsd_facts(libkvm_path()))
        hid = args.host_id or host_id(h) + ("" if args.source == "native" else "-pykvm")
        per_fixture: dict[str, Any] = {}
        stats: Counter[str] = Counter()
        runner = Runner(backends, store, h, _progress(args.quiet))
        for ran in runner.run(cases):
            stats[ran.result.status] += 1
            if ran.execution is None or ran.prep is None or ran.execution.not_run:
                continue
            prep = ran.prep
            name = fixture_file(ran.inst.fixture, prep)
            entry = per_fixture.setdefault(name, (ran.inst.fixture, prep, {}))
            steps = []
            for st, obs in zip(ran.steps, ran.execution.observations, strict=False):
                steps.append({"call": st.call, "args": to_golden(st.shown, prep),
                              "obs": to_golden(obs, prep)})
            entry[2][ran.inst.iid] = {"case": ran.inst.case.id, "cite": ran.inst.case.cite,
                                      "status": ran.result.status, "crash": ran.execution.crash,
                                      "steps": steps}
        n = sum(len(e[2]) for e in per_fixture.values())
        print(f"recorded {n} case instances on {len(per_fixture)} fixtures "
              f"({', '.join(f'{v} {k}' for k, v in stats.items())})")
        print("stored per call: return values, error texts, errno names, symbol values; "
              "bytes read only as length + sha256; walk records as count + sha256 + the "
              "first 16; your paths as {kernel}/{vmcore}")
        if args.dry_run:
            print(f"dry run: nothing written (would write under {args.golden_dir / hid})")
            return 0
        paths = write_recordings(args.golden_dir, hid, facts, args.source, per_fixture)
    for p in paths:
        print(f"wrote {p}")
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    from .replay import replay

    h = host()
    golden = GoldenSet(args.golden_dir)
    if not len(golden):
        print(f"conformance: no recorded results under {args.golden_dir}", file=sys.stderr)
        return 2
    names = _backend_names(args.backend or ["pykvm"])
    cases = load_cases()
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="pykvm-conformance-") as tmp:
        store = _store(args, tmp)
        for b in make_backends(names, golden_dir=args.golden_dir):
            results += replay(golden, cases, b, store, h, args.case)
    _write_reports(args, results, {"host": f"{h.system} {h.release} {h.machine}",
                                   "recordings": str(len(golden))},
                   "pykvm conformance replay")
    print(summary(results))
    return 1 if any(r.counts_as_failure for r in results) else 0


def cmd_list(args: argparse.Namespace) -> int:
    cases = select(load_cases(), args.case)
    for c in cases:
        dep = f"  [departure: {c.departure.ref}]" if c.departure else ""
        print(f"{c.id:60} {c.area:12} {c.cite}{dep}")
    areas = Counter(c.area for c in cases)
    print(f"\n{len(cases)} cases: " + ", ".join(f"{a} {n}" for a, n in sorted(areas.items())))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m conformance``."""
    args = parser().parse_args(argv)
    handler = {"run": cmd_run, "record": cmd_record, "replay": cmd_replay,
               "list": cmd_list}[args.command]
    return handler(args)
