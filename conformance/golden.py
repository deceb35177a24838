"""Golden results: native libkvm's observations recorded on a FreeBSD host, replayed anywhere.

Layout: ``conformance/golden/<host-id>/<fixture>.json``, one file per fixture (a
synthetic dump, the special files, or one real vmcore), holding the host's facts, the
libkvm library's path and hash, the fixture's file hashes, and per case instance the
calls made and what libkvm returned.

Privacy: nothing of kernel memory is stored wholesale.  Bytes a read returned are kept
as their length and sha256; walk records as their count, sha256 and first 16 records;
paths of the user's files are replaced by ``{kernel}``, ``{vmcore}`` and ``{workdir}``.
Error texts, return values and symbol values are stored as they are.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .engine import Obs, digest, records_digest
from .fixtures import Host, Prepared, path_tokens, sha256_file
from .model import FixtureSpec

GOLDEN_DIR = Path(__file__).resolve().parent / "golden"
FORMAT = "pykvm-conformance-golden/1"


def host_id(h: Host) -> str:
    """The directory name of a host's recordings, e.g. ``freebsd-14.1-RELEASE-amd64``."""
    raw = f"{h.system}-{h.release}-{h.arch}".lower().replace("release", "RELEASE")
    return re.sub(r"[^A-Za-z0-9._-]+", "_", raw)


def fixture_file(spec: FixtureSpec, prep: Prepared | None) -> str:
    """The file name of a fixture's recordings."""
    if spec.kind == "real" and prep is not None and prep.vmcore:
        return f"real-{prep.store.sha256(prep.vmcore)[:16]}.json"
    return re.sub(r"[^A-Za-z0-9._=-]+", "_", spec.key) + ".json"


def freebsd_facts(lib_path: str) -> dict[str, str]:
    """FreeBSD version and the libkvm library used (path and sha256) for a recording."""
    facts: dict[str, str] = {}
    try:
        out = subprocess.run(["freebsd-version", "-ku"], capture_output=True, text=True,
                             timeout=10, check=False)
        facts["freebsd_version"] = " ".join(out.stdout.split())
    except (OSError, subprocess.SubprocessError):
        pass
    candidates = [lib_path] if os.path.isabs(lib_path) else [
        os.path.join(d, lib_path) for d in ("/lib", "/usr/lib", "/usr/local/lib")]
    for c in candidates:
        if os.path.exists(c):
            real = os.path.realpath(c)
            facts.update(libkvm_path=real, libkvm_sha256=sha256_file(real))
            break
    else:
        facts["libkvm_path"] = lib_path
    return facts


def to_golden(obs: Obs, prep: Prepared) -> dict[str, Any]:
    """An observation in recorded form (digests for bytes and records, paths tokenised)."""
    tokens = path_tokens(prep)
    out: dict[str, Any] = {}
    for k, v in obs.items():
        if k == "data" and isinstance(v, (bytes, bytearray)):
            out[k] = digest(bytes(v))
        elif k == "records" and isinstance(v, list):
            out[k] = records_digest(v)
        elif isinstance(v, str):
            for path, token in tokens:
                v = v.replace(path, token)
            out[k] = v
        else:
            out[k] = v
    return out


def from_golden(obs: Mapping[str, Any], prep: Prepared) -> Obs:
    """A recorded observation with this run's paths put back."""
    tokens = path_tokens(prep)
    out: Obs = {}
    for k, v in obs.items():
        if isinstance(v, str):
            for path, token in tokens:
                v = v.replace(token, path)
        out[k] = v
    return out


@dataclass
class Recording:
    """One recorded instance."""

    iid: str
    case: str
    fixture: FixtureSpec
    hashes: dict[str, str]
    steps: list[dict[str, Any]]
    crash: str = ""
    host: dict[str, str] = field(default_factory=dict)
    source: str = ""
    path: str = ""


class GoldenSet:
    """Every recording under a golden directory, by instance id (and by host)."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = GOLDEN_DIR if root is None else root
        self.by_iid: dict[str, list[Recording]] = {}
        if not self.root.is_dir():
            return
        for path in sorted(self.root.glob("*/*.json")):
            doc = json.loads(path.read_text(encoding="utf-8"))
            if doc.get("format") != FORMAT:
                continue
            spec = FixtureSpec.from_json(doc["fixture"])
            hashes = {k: v for k, v in doc["fixture"].items() if k.endswith("_sha256")}
            for iid, rec in doc.get("instances", {}).items():
                self.by_iid.setdefault(iid, []).append(Recording(
                    iid, rec["case"], spec, hashes, rec["steps"], rec.get("crash", ""),
                    doc.get("host", {}), doc.get("source", ""), str(path)))

    def __len__(self) -> int:
        return sum(len(v) for v in self.by_iid.values())


def write_recordings(root: Path, hid: str, host_facts: dict[str, str], source: str,
                     per_fixture: Mapping[str, tuple[FixtureSpec, Prepared, dict[str, Any]]],
                     ) -> list[Path]:
    """Write (merging with what is there) one JSON file per fixture; return the paths."""
    out_dir = root / hid
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, (spec, prep, instances) in sorted(per_fixture.items()):
        path = out_dir / name
        doc: dict[str, Any] = {}
        if path.exists():
            doc = json.loads(path.read_text(encoding="utf-8"))
        fixture = spec.as_json()
        fixture.update(prep.hashes())
        if spec.kind == "real":
            fixture["options"] = {}
        merged = dict(doc.get("instances", {})) if doc.get("fixture") == fixture else {}
        merged.update(instances)
        doc = {
            "format": FORMAT,
            "recorded": datetime.datetime.now(datetime.timezone.utc).isoformat(
                timespec="seconds"),
            "source": source,
            "host": host_facts,
            "fixture": fixture,
            "instances": dict(sorted(merged.items())),
        }
        path.write_text(json.dumps(doc, indent=1, sort_keys=False) + "\n", encoding="utf-8")
        written.append(path)
    return written
