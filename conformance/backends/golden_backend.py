"""The ``golden`` backend: results recorded from native libkvm, played back.

A recording is checked against the case's libkvm expectations exactly like a live
native run.  Synthetic fixtures are rebuilt from their seed; when the rebuilt files'
hashes differ from the recorded ones the instance is reported as *drift* (pykvm.synth
changed, the recording no longer describes these files), never compared.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..engine import Instance, ResolvedStep
from ..fixtures import Prepared
from ..golden import GoldenSet, Recording, from_golden
from .base import Backend, Execution


def drift_text(rec: Recording, prep: Prepared) -> str:
    """Why a recording does not describe the fixture built now ("" when it does)."""
    now = prep.hashes()
    bad = [k for k, v in rec.hashes.items() if now.get(k) != v]
    if not bad:
        return ""
    what = ", ".join(f"{k.removesuffix('_sha256')} {rec.hashes[k][:12]} -> "
                     f"{now.get(k, 'missing')[:12]}" for k in bad)
    if prep.spec.kind == "synth":
        return f"pykvm.synth builds different files than were recorded ({what})"
    return f"the files differ from the recorded ones ({what})"


class GoldenBackend(Backend):
    """Recorded native results (conformance/golden/)."""

    name = "golden"

    def __init__(self, golden: GoldenSet, host_filter: str = "") -> None:
        self.golden = golden
        self.host_filter = host_filter

    def unavailable(self) -> str:
        return "" if len(self.golden) else f"no recorded results under {self.golden.root}"

    def recording(self, inst: Instance) -> Recording | None:
        """The recording of an instance (the first host's, or the filtered host's)."""
        for rec in self.golden.by_iid.get(inst.iid, []):
            if not self.host_filter or self.host_filter in rec.path:
                return rec
        return None

    def execute(self, inst: Instance, prep: Prepared,
                steps: Sequence[ResolvedStep]) -> Execution:
        rec = self.recording(inst)
        if rec is None:
            return Execution(not_run="no recording of this instance")
        drift = drift_text(rec, prep)
        if drift:
            return Execution(drift=drift)
        if len(rec.steps) > len(steps) or (not rec.crash and len(rec.steps) != len(steps)) or any(
                r.get("call") != s.call for r, s in zip(rec.steps, steps, strict=False)):
            return Execution(not_run="the recording is stale: the case's calls changed")
        obs = [from_golden(r.get("obs", {}), prep) for r in rec.steps]
        return Execution(obs, crash=rec.crash)
