"""Invariants that need no recorded results: checked on any kernel + vmcore pair.

With ``run --kernel K --vmcore V`` they run on the user's dump; without, on a few
synthetic dumps (so that they are themselves tested).  Each backend is checked against
itself and against the vmcore file:

* ``invariant.nlist-batch-vs-single``: kvm_nlist2 of N unique names in one list gives,
  entry by entry, what N one-name lists give (api.md 10.3-10.4);
* ``invariant.walk-vs-read``: for sampled kvm_walk_pages records, the page at
  ``kp_offset`` in the vmcore equals kvm_read of ``kp_kmap_vaddr`` (or of
  ``kp_dmap_vaddr``); records with ``kp_offset == -1`` do not read (api.md 12, 8.3);
* ``invariant.adjacent-reads``: a read equals the concatenation of reads of its two
  halves, split off a page boundary (api.md 8.4);
* ``invariant.error-shapes``: kvm_write fails with libkvm's dead-kernel text, a missing
  symbol is counted without touching kvm_geterr, a zero-length read returns 0, and a read
  running into an unmapped page fails naming that page (api.md 8.3, 9, 10.5).

Process-list invariants will join when kvm_getprocs lands.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from .backends.base import Backend
from .engine import Instance, Obs, ResolvedStep, Vars, make_resolver, unique_names
from .fixtures import Host, Prepared
from .model import Case, FixtureDef, FixtureSpec
from .runner import Result, StepDiff

#: architectures whose translators name the failing chunk as ``invalid address (0x..)``
SHAPE_ARCHES = ("amd64", "i386", "aarch64", "riscv", "arm")
NO_SUCH_SYMBOL = "pykvm_conformance_no_such_symbol"
WALK_LIMIT = 200_000


def open_step(prep: Prepared, host: Host) -> ResolvedStep:
    """kvm_openfiles on a native dump, else kvm_open2 with the kernel's symbol table."""
    native = prep.arch == host.arch
    resolver = None if native else make_resolver("symtab", Vars(prep, None, host.arch))[0]
    args = {"variant": "kvm_openfiles" if native else "kvm_open2", "exec": prep.kernel,
            "core": prep.vmcore, "swap": None, "flags": 0, "errstr": None,
            "errbuf": "buffer", "resolver": resolver}
    return ResolvedStep("open", args, {"variant": args["variant"]})


def _step(call: str, **args: Any) -> ResolvedStep:
    shown = {k: (hex(v) if k == "addr" else v) for k, v in args.items() if k != "data"}
    return ResolvedStep(call, dict(args), shown)


def _spread(seq: Sequence[Any], n: int) -> list[Any]:
    if len(seq) <= n:
        return list(seq)
    return [seq[int(i * len(seq) / n)] for i in range(n)]


class Invariants:
    """Runs the invariants of one fixture on one backend."""

    def __init__(self, backend: Backend, prep: Prepared, host: Host, symbols: int = 128,
                 pages: int = 64) -> None:
        self.b = backend
        self.prep = prep
        self.host = host
        self.symbols = symbols
        self.pages = pages
        self._records: list[list[int]] | None = None

    def _case(self, cid: str, cite: str, title: str) -> Case:
        return Case(cid, "invariants", cite, title, "invariants.py", FixtureDef("real"), ())

    def _exec(self, case: Case, steps: list[ResolvedStep]) -> tuple[list[Obs], str]:
        inst = Instance(case, self.prep.spec)
        na = self.b.unsupported(inst, steps)
        if na:
            return [], f"n/a:{na}"
        ex = self.b.execute(inst, self.prep, steps)
        if ex.not_run or ex.not_applicable:
            return [], f"n/a:{ex.not_run or ex.not_applicable}"
        if ex.crash:
            return ex.observations, f"crashed: {ex.crash}"
        if not ex.observations or ex.observations[0].get("ret") != "descriptor":
            first = ex.observations[0] if ex.observations else {}
            return ex.observations, f"open failed: {first.get('errbuf') or first}"
        return ex.observations, ""

    def records(self) -> list[list[int]]:
        """The walk's records (up to :data:`WALK_LIMIT`), fetched once."""
        if self._records is None:
            case = self._case("invariant.walk", "api.md 12", "")
            steps = [open_step(self.prep, self.host), _step("walk_pages", stop_after=WALK_LIMIT),
                     _step("close")]
            obs, why = self._exec(case, steps)
            self._records = [] if why else list(obs[1].get("records", []))
        return self._records

    def run(self) -> list[Result]:
        """Every invariant's result."""
        checks: list[tuple[str, str, str, Callable[[Case], tuple[str, list[StepDiff]]]]] = [
            ("invariant.nlist-batch-vs-single", "api.md 10.3-10.4",
             "kvm_nlist2 of N names at once equals N one-name lookups", self.nlist),
            ("invariant.walk-vs-read", "api.md 12; formats.md 3.6",
             "kp_offset bytes equal kvm_read of the record's address", self.walk_vs_read),
            ("invariant.adjacent-reads", "api.md 8.3-8.4",
             "a read equals the concatenation of reads of its parts", self.adjacent),
            ("invariant.error-shapes", "api.md 8.3, 9, 10.5, 13",
             "failures keep libkvm's return values and texts", self.error_shapes),
        ]
        out = []
        for cid, cite, title, fn in checks:
            case = self._case(cid, cite, title)
            try:
                status, diffs = fn(case)
            except Exception as exc:  # a broken fixture or backend: reported, not fatal
                status, diffs = f"error:{type(exc).__name__}: {exc}", []
            reason = ""
            if status.startswith("error:"):
                status, reason = "error", status[6:]
            if status.startswith("n/a:"):
                status, reason = "n/a", status[4:]
            elif status.startswith("fail:"):
                status, reason = "fail", status[5:]
            iid = f"{cid}[{self.prep.spec.key}]"
            out.append(Result(iid, cid, "invariants", cite, title, self.b.name, status, reason,
                              diffs, "", self.b.must_pass, self.prep.spec.key))
        return out

    # ---------------------------------------------------------------- the checks
    def nlist(self, case: Case) -> tuple[str, list[StepDiff]]:
        names = _spread(sorted(unique_names(self.prep)), self.symbols)
        if not names:
            return "n/a:the kernel has no symbol table", []
        steps = [open_step(self.prep, self.host), _step("nlist2", names=names)]
        steps += [_step("nlist2", names=[n]) for n in names] + [_step("close")]
        obs, why = self._exec(case, steps)
        if why:
            return (why if why.startswith("n/a:") else f"fail:{why}"), []
        batch = obs[1]
        diffs = []
        if batch.get("ret") != 0:
            diffs.append(StepDiff(1, "nlist2", {"names": f"{len(names)} names"},
                                  [f"ret: expected 0, got {batch.get('ret')}"]))
        entries = batch.get("entries", [])
        for i, name in enumerate(names):
            single = obs[2 + i]
            got = single.get("entries", [[None, None]])[0]
            want = entries[i] if i < len(entries) else None
            if single.get("ret") != 0 or got != want:
                diffs.append(StepDiff(2 + i, "nlist2", {"names": [name]}, [
                    f"one-name lookup gives ret {single.get('ret')} {got}, the list gave "
                    f"{want}"]))
        return ("fail" if diffs else "pass"), diffs[:20]

    def _core_bytes(self, offset: int, size: int) -> bytes:
        with open(self.prep.vmcore, "rb") as fh:
            fh.seek(offset)
            return fh.read(size)

    def walk_vs_read(self, case: Case) -> tuple[str, list[StepDiff]]:
        recs = self.records()
        if not recs:
            return "n/a:no kvm_walk_pages records (full dump, or no walker)", []
        ps = min(r[6] for r in recs)
        present = [r for r in recs if r[5] >= 0 and (r[2] or r[3])]
        absent = [r for r in recs if r[5] < 0 and r[2]]
        picked = _spread(present, self.pages) + _spread(absent, max(1, self.pages // 4))
        steps = [open_step(self.prep, self.host)]
        for r in picked:
            steps.append(_step("read2", addr=r[2] or r[3], size=ps))
        steps.append(_step("close"))
        obs, why = self._exec(case, steps)
        if why:
            return (why if why.startswith("n/a:") else f"fail:{why}"), []
        diffs = []
        for i, r in enumerate(picked):
            o = obs[1 + i]
            va = r[2] or r[3]
            if r[5] >= 0:
                want = self._core_bytes(r[5], ps)
                if o.get("ret") != ps or o.get("data") != want:
                    diffs.append(StepDiff(1 + i, "read2", {"addr": hex(va), "size": ps}, [
                        f"record {r}: read gives ret {o.get('ret')}, data "
                        f"{'equal' if o.get('data') == want else 'different'} to the core's "
                        f"bytes at {r[5]}"]))
            elif o.get("ret") != -1:
                diffs.append(StepDiff(1 + i, "read2", {"addr": hex(va), "size": ps}, [
                    f"record {r} is not in the dump but the read returned {o.get('ret')}"]))
        return ("fail" if diffs else "pass"), diffs[:20]

    def _pair(self) -> tuple[int, int] | None:
        """(va, length) of two adjacent dumped kernel-map pages, from the walk."""
        recs = self.records()
        if not recs:
            return None
        ps = min(r[6] for r in recs)
        pages = {r[2]: r for r in recs if r[2] and r[5] >= 0 and r[6] == ps}
        for va in sorted(pages):
            if va + ps in pages:
                return va, 2 * ps
        return None

    def adjacent(self, case: Case) -> tuple[str, list[StepDiff]]:
        pair = self._pair()
        if pair is None:
            syms = self.prep.symbols()
            if "version" not in syms:
                return "n/a:neither a walk nor a version symbol to read", []
            va, n = syms["version"], 256
        else:
            va, n = pair
        half = n // 2
        cuts = [(0, n), (0, half - 100), (half - 100, n - (half - 100)), (0, 1), (1, n - 1)]
        steps = [open_step(self.prep, self.host)]
        steps += [_step("read2", addr=va + a, size=s) for a, s in cuts] + [_step("close")]
        obs, why = self._exec(case, steps)
        if why:
            return (why if why.startswith("n/a:") else f"fail:{why}"), []
        whole = obs[1]
        diffs = []
        if whole.get("ret") != n:
            return "fail", [StepDiff(1, "read2", {"addr": hex(va), "size": n},
                                     [f"expected {n} bytes, got ret {whole.get('ret')}"])]
        for x, y in ((2, 3), (4, 5)):
            joined = (obs[x].get("data") or b"") + (obs[y].get("data") or b"")
            if joined != whole.get("data"):
                diffs.append(StepDiff(x, "read2", steps[x].shown, [
                    f"reads {x} and {y} do not concatenate to read 1"]))
        return ("fail" if diffs else "pass"), diffs

    def _gap(self) -> int | None:
        """A kernel-map address right after a walked mapping that nothing maps."""
        recs = self.records()
        kmap = sorted((r[2], r[2] + r[6], r[5]) for r in recs if r[2])
        dmap = [(r[3], r[3] + r[6]) for r in recs if r[3]]
        lo = min((a for a, _ in dmap), default=0)
        hi = max((b for _, b in dmap), default=0)
        for (_, end, off), nxt in zip(kmap, kmap[1:] + [(1 << 64, 0, 0)], strict=False):
            if off >= 0 and nxt[0] > end and not lo <= end < hi and end < 1 << 64:
                return end
        return None

    def error_shapes(self, case: Case) -> tuple[str, list[StepDiff]]:
        steps = [open_step(self.prep, self.host), _step("write", addr=0, data=b"\0"),
                 _step("nlist2", names=[NO_SUCH_SYMBOL]), _step("read2", addr=0, size=0)]
        expects: list[dict[str, Any]] = [
            {"ret": "descriptor"},
            {"ret": -1, "geterr": "kvm_write not implemented for dead kernels"},
            {"ret": 1, "entries": [[0, 0]],
             "geterr": "kvm_write not implemented for dead kernels"},
            {"ret": 0},
        ]
        gap = self._gap() if self.prep.arch in SHAPE_ARCHES else None
        if gap is not None:
            text = f"invalid address (0x{gap:x})"
            steps += [_step("read2", addr=gap, size=8), _step("read2", addr=gap - 8, size=16)]
            expects += [{"ret": -1, "geterr": text}, {"ret": -1, "geterr": text}]
        steps.append(_step("close"))
        expects.append({"ret": 0})
        obs, why = self._exec(case, steps)
        if why and not obs:
            return (why if why.startswith("n/a:") else f"fail:{why}"), []
        diffs = []
        for i, want in enumerate(expects):
            got = obs[i] if i < len(obs) else {}
            bad = [f"{k}: expected {v!r}, got {got.get(k)!r}" for k, v in want.items()
                   if got.get(k) != v]
            if got.get("stderr"):
                bad.append(f"stderr: expected nothing, got {got['stderr']!r}")
            if bad:
                diffs.append(StepDiff(i, steps[i].call, steps[i].shown, bad))
        return ("fail" if diffs else "pass"), diffs


def default_fixtures() -> list[FixtureSpec]:
    """The synthetic fixtures invariants run on when no real pair is given."""
    from .fixtures import synth_arches

    arches, formats_of = synth_arches()
    out = []
    for arch in arches:
        opts = (("small_kva", True),) if arch == "amd64" else ()
        for fmt in formats_of(arch):
            out.append(FixtureSpec("synth", arch, fmt, 3, opts))
    return out
