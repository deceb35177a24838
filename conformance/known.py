"""Known failures: results a backend is known to get wrong, each with its reason.

``conformance/known.toml`` lists ``[[known]]`` entries (instance-id globs, the backends
or groups they concern, and why).  A matching failure is reported as ``known`` and does
not fail the run; a matching instance that now passes is reported in the Markdown
report so that the entry can be removed.  Keep the list short: an entry is a bug
report, not a waiver.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .model import CaseError, backends_of, read_toml
from .runner import Result

KNOWN_FILE = Path(__file__).resolve().parent / "known.toml"


@dataclass(frozen=True)
class Known:
    """One known failure."""

    instances: tuple[str, ...]
    backends: tuple[str, ...]
    reason: str

    def matches(self, r: Result) -> bool:
        """Whether ``r`` is covered by this entry."""
        return (any(r.backend in backends_of(b) for b in self.backends)
                and any(fnmatch.fnmatchcase(r.iid, p) for p in self.instances))


def load_known(path: Path | None = None) -> list[Known]:
    """The entries of ``known.toml`` (none when the file does not exist)."""
    p = KNOWN_FILE if path is None else path
    if not p.is_file():
        return []
    doc = read_toml(p)
    out = []
    for i, k in enumerate(doc.get("known", [])):
        if set(k) - {"instances", "backends", "reason"} or not k.get("reason"):
            raise CaseError(f"{p.name} entry {i}: needs instances, backends, reason")
        inst = k.get("instances", [])
        out.append(Known(tuple(inst if isinstance(inst, list) else [inst]),
                         tuple(k.get("backends", ["emulation"])), str(k["reason"])))
        for b in out[-1].backends:
            backends_of(b)
    return out


def apply_known(results: Sequence[Result], known: Sequence[Known]) -> None:
    """Mark failures covered by ``known`` as ``known``; flag known entries that pass."""
    for r in results:
        entry = next((k for k in known if k.matches(r)), None)
        if entry is None:
            continue
        if r.status in ("fail", "error"):
            r.status = "known"
            r.reason = f"known: {entry.reason}" + (f" ({r.reason})" if r.reason else "")
        elif r.status == "pass":
            r.reason = f"passes although known.toml lists it: {entry.reason}"
