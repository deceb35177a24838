"""Reports: a readable Markdown diff report, JUnit XML, and a one-screen summary."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import Counter, defaultdict
from collections.abc import Sequence

from .runner import STATUSES, Result


def counts(results: Sequence[Result]) -> dict[str, Counter[str]]:
    """Per backend, how many results of each status."""
    out: dict[str, Counter[str]] = defaultdict(Counter)
    for r in results:
        out[r.backend][r.status] += 1
    return dict(out)


def summary(results: Sequence[Result]) -> str:
    """A few lines: one per backend with its counts, and the failing ids."""
    lines = []
    for backend, c in counts(results).items():
        parts = [f"{c[s]} {s}" for s in STATUSES if c[s]]
        lines.append(f"{backend:8} " + ", ".join(parts))
        reasons = Counter(r.reason for r in results
                          if r.backend == backend and r.status == "not-run")
        if reasons and not c["pass"] and not c["fail"]:
            lines.append(f"         not run: {reasons.most_common(1)[0][0]}")
    bad = [r for r in results if r.counts_as_failure]
    for r in bad[:40]:
        lines.append(f"FAIL {r.backend}: {r.iid}" + (f" ({r.reason})" if r.reason else ""))
    if len(bad) > 40:
        lines.append(f"... and {len(bad) - 40} more")
    return "\n".join(lines)


def _md(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def markdown(results: Sequence[Result], title: str = "pykvm conformance report",
             facts: dict[str, str] | None = None) -> str:
    """The Markdown report: totals, then every failing result with its step diffs."""
    out = [f"# {title}", ""]
    for k, v in (facts or {}).items():
        out.append(f"- **{k}**: {v}")
    if facts:
        out.append("")
    out += ["| backend | " + " | ".join(STATUSES) + " |",
            "|---|" + "---|" * len(STATUSES)]
    for backend, c in counts(results).items():
        out.append(f"| {backend} | " + " | ".join(str(c[s]) for s in STATUSES) + " |")
    out.append("")
    by_area: dict[str, Counter[str]] = defaultdict(Counter)
    for r in results:
        by_area[r.area][f"{r.backend}:{r.status}"] += 1
    backends = list(counts(results))
    out += ["## By area", "", "| area | " + " | ".join(backends) + " |",
            "|---|" + "---|" * len(backends)]
    for area in sorted(by_area):
        c = by_area[area]
        cells = []
        for b in backends:
            cells.append(" ".join(f"{c[f'{b}:{s}']} {s}" for s in STATUSES if c[f"{b}:{s}"]))
        out.append(f"| {area} | " + " | ".join(cells) + " |")
    out.append("")
    failing = [r for r in results if r.status in ("fail", "error", "drift")]
    out += [f"## Failures ({len(failing)})", ""]
    if not failing:
        out += ["None.", ""]
    for r in failing:
        tag = "" if r.must_pass else " (informative)"
        out.append(f"### {r.backend}: `{r.iid}` — {r.status}{tag}")
        out.append("")
        out.append(f"- cites: {r.cite}")
        if r.title:
            out.append(f"- what: {r.title}")
        if r.departure:
            out.append(f"- departure: {r.departure}")
        if r.reason:
            out.append(f"- {r.reason}")
        for d in r.diffs:
            out.append(f"- step {d.index} `{d.call}` {_md(d.args)}:")
            for p in d.problems:
                out.append(f"  - {_md(p)}")
            if d.observed:
                out.append(f"  - observed: `{_md(d.observed)}`")
        out.append("")
    known = [r for r in results if r.status == "known"]
    if known:
        out += [f"## Known failures ({len(known)})", "", "| backend | instance | reason |",
                "|---|---|---|"]
        for r in known[:200]:
            out.append(f"| {r.backend} | `{r.iid}` | {_md(r.reason)} |")
        out.append("")
    fixed = [r for r in results if r.status == "pass" and r.reason.startswith("passes although")]
    if fixed:
        out += [f"## Known entries that pass now ({len(fixed)}): remove them from known.toml",
                ""] + [f"- {r.backend}: `{r.iid}`" for r in fixed[:100]] + [""]
    notrun = Counter((r.backend, r.reason) for r in results if r.status == "not-run")
    if notrun:
        out += ["## Not run", "", "| backend | reason | instances |", "|---|---|---|"]
        for (b, reason), n in sorted(notrun.items()):
            out.append(f"| {b} | {_md(reason)} | {n} |")
        out.append("")
    departures = sorted({(r.iid, r.departure) for r in results if r.departure})
    if departures:
        out += [f"## Departures pinned ({len(departures)} instances)", ""]
        by_ref: dict[str, int] = Counter(dep for _, dep in departures)
        for ref, n in sorted(by_ref.items()):
            out.append(f"- {ref}: {n}")
        out.append("")
    return "\n".join(out)


def junit(results: Sequence[Result]) -> str:
    """JUnit XML: one testsuite per backend, one testcase per instance."""
    root = ET.Element("testsuites", name="pykvm-conformance")
    grouped: dict[str, list[Result]] = defaultdict(list)
    for r in results:
        grouped[r.backend].append(r)
    for backend, rs in grouped.items():
        c = Counter(r.status for r in rs)
        suite = ET.SubElement(
            root, "testsuite", name=f"conformance.{backend}", tests=str(len(rs)),
            failures=str(sum(1 for r in rs if r.status in ("fail", "drift") and r.must_pass)),
            errors=str(c["error"]), skipped=str(c["not-run"] + c["n/a"]))
        for r in rs:
            tc = ET.SubElement(suite, "testcase", classname=f"{backend}.{r.area}", name=r.iid)
            detail = "\n".join(
                [f"cites: {r.cite}"] + ([f"departure: {r.departure}"] if r.departure else [])
                + ([r.reason] if r.reason else [])
                + [f"step {d.index} {d.call} {d.args}: " + "; ".join(d.problems)
                   for d in r.diffs])
            if r.status in ("fail", "drift"):
                tag = "failure" if r.must_pass else "system-out"
                el = ET.SubElement(tc, tag, message=f"{r.status}: {r.reason or 'differs'}"[:200])
                el.text = detail
            elif r.status == "error":
                el = ET.SubElement(tc, "error", message=r.reason[:200])
                el.text = detail
            elif r.status in ("not-run", "n/a", "known"):
                ET.SubElement(tc, "skipped", message=f"{r.status}: {r.reason}"[:200])
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"
