"""The conformance suite (conformance/), in-process, for the pykvm and compat backends.

The whole suite runs once per session on both backends (fixtures built once); each case
id is then one test per backend, failing with the Markdown diff of its failing
instances.  The rest tests the suite's own machinery: case validation, reports, exit
status, golden record/replay and drift, the real-pair mode, and the C path of the
native backend driven through compat's emulated ``CDLL``.
"""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

import pytest

from conformance import cli
from conformance.backends import make_backends
from conformance.backends.base import Backend, Execution
from conformance.backends.compat_backend import load_compat
from conformance.engine import Instance, ResolvedStep
from conformance.fixtures import FixtureStore, Prepared, host
from conformance.known import load_known
from conformance.model import CaseError, load_case, load_cases, select
from conformance.report import junit, markdown
from conformance.runner import Result, Runner

CASES = load_cases()
BACKENDS = ("pykvm", "compat")


def _compat_missing() -> str:
    try:
        load_compat()
    except (ImportError, AttributeError) as exc:
        return str(exc)
    return ""


@pytest.fixture(scope="session")
def store(tmp_path_factory: pytest.TempPathFactory) -> FixtureStore:
    return FixtureStore(tmp_path_factory.mktemp("conformance"))


@pytest.fixture(scope="session")
def suite(store: FixtureStore) -> dict[tuple[str, str], list[Result]]:
    """Every result of the suite on pykvm and compat, by (backend, case id)."""
    names = [b for b in BACKENDS if b != "compat" or not _compat_missing()]
    results = cli.run_suite(CASES, make_backends(names), store, host())
    out: dict[tuple[str, str], list[Result]] = defaultdict(list)
    for r in results:
        out[(r.backend, r.case_id)].append(r)
    return out


IDS = [c.id for c in CASES] + ["invariant.nlist-batch-vs-single", "invariant.walk-vs-read",
                               "invariant.adjacent-reads", "invariant.error-shapes"]


@pytest.mark.parametrize("case_id", IDS)
@pytest.mark.parametrize("backend", BACKENDS)
def test_case(suite: dict[tuple[str, str], list[Result]], backend: str, case_id: str) -> None:
    if backend == "compat" and _compat_missing():
        pytest.skip(f"compat: {_compat_missing()}")
    results = suite.get((backend, case_id), [])
    assert results, f"{case_id} produced no result on {backend}"
    bad = [r for r in results if r.counts_as_failure]
    assert not bad, markdown(bad, f"{backend}: {case_id}")


def test_suite_covers_the_catalogue() -> None:
    areas = {c.area for c in CASES}
    assert {"open", "derived", "freebsd-tests", "descriptor", "read", "nlist", "walk",
            "translate", "departures", "real"} <= areas
    # every FreeBSD test of api.md 14.2-14.6
    ids = {c.id for c in CASES}
    for name in ("kvm_close_negative_test_NULL", "kvm_geterr_negative_test_NULL",
                 "kvm_geterr_positive_test_error", "kvm_geterr_positive_test_no_error",
                 "kvm_open_negative_test_nonexistent_corefile",
                 "kvm_open_negative_test_nonexistent_execfile",
                 "kvm_open_negative_test_invalid_corefile",
                 "kvm_open_negative_test_invalid_execfile",
                 "kvm_open2_negative_test_nonexistent_corefile",
                 "kvm_open2_negative_test_nonexistent_execfile",
                 "kvm_open2_negative_test_invalid_corefile",
                 "kvm_open2_negative_test_invalid_execfile",
                 "kvm_read_positive_test_no_error"):
        assert f"freebsd.{name}" in ids
    assert sum(1 for c in CASES if c.cite.startswith("api.md 14.7 row")) == 23
    assert all(c.cite for c in CASES)
    assert load_known() is not None


def test_departures_say_what_each_side_shows() -> None:
    for c in CASES:
        if c.departure is not None:
            assert c.departure.ref and c.departure.libkvm and c.departure.pykvm, c.id
            assert any(s.expect_for for s in c.steps) or c.skip, c.id


@pytest.mark.parametrize(("raw", "message"), [
    ({"id": "x", "area": "a", "cite": "c", "step": [{"call": "nope"}]}, "call must be"),
    ({"id": "x", "area": "a", "cite": "c", "step": [{"call": "read", "flags": 1}]},
     "takes no arguments"),
    ({"id": "x", "area": "a", "cite": "c", "step": [{"call": "close", "expect": {"rt": 0}}]},
     "unknown observation keys"),
    ({"id": "x", "area": "a", "cite": "c", "step": []}, "at least one"),
    ({"id": "x", "area": "a", "step": [{"call": "close"}]}, "cite is required"),
    ({"id": "x", "area": "a", "cite": "c", "bogus": 1, "step": [{"call": "close"}]},
     "unknown keys"),
    ({"id": "x", "area": "a", "cite": "c", "requires": ["moon"], "step": [{"call": "close"}]},
     "unknown requirement"),
    ({"id": "x", "area": "a", "cite": "c", "skip": {"nobody": "r"},
      "step": [{"call": "close"}]}, "unknown backend"),
])
def test_case_validation(raw: dict[str, object], message: str) -> None:
    with pytest.raises(CaseError, match=message):
        load_case(raw, "t.toml", 0)


def test_reports(suite: dict[tuple[str, str], list[Result]]) -> None:
    results = [r for rs in suite.values() for r in rs]
    root = ET.fromstring(junit(results))
    assert root.tag == "testsuites"
    assert {s.get("name") for s in root} >= {"conformance.pykvm"}
    md = markdown(results)
    assert "| backend |" in md and "## By area" in md


class _Wrong(Backend):
    """A backend that always returns something else: its failures must fail the run."""

    name = "pykvm"

    def execute(self, inst: Instance, prep: Prepared,
                steps: list[ResolvedStep]) -> Execution:  # type: ignore[override]
        return Execution([{"ret": "banana", "stderr": ""} for _ in steps])


def test_a_failing_backend_fails_the_run(store: FixtureStore) -> None:
    cases = select(CASES, ["derived.openfiles-nonexistent-corefile"])
    results = [ran.result for ran in Runner([_Wrong()], store, host()).run(cases)]
    assert [r.status for r in results] == ["fail"]
    assert results[0].counts_as_failure
    assert "expected 'NULL', got 'banana'" in markdown(results)


def test_cli_run_exit_status_and_reports(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    md, xml = tmp_path / "r.md", tmp_path / "r.xml"
    rc = cli.main(["run", "--backend", "pykvm,native,fvc", "--case", "freebsd.*", "-q",
                   "--workdir", str(tmp_path / "w"), "--report-md", str(md),
                   "--junit", str(xml)])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "native" in out and "not-run" in md.read_text()
    if not host().freebsd:
        assert "needs FreeBSD" in md.read_text()
    if not os.environ.get("PYKVM_FVC_LIB"):
        assert "PYKVM_FVC_LIB" in md.read_text()
    ET.parse(xml)


def test_record_replay_and_drift(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    golden = tmp_path / "golden"
    common = ["--golden-dir", str(golden), "--case", "derived.open2-*", "--case",
              "descriptor.close-twice", "-q", "--workdir", str(tmp_path / "w")]
    assert cli.main(["record", "--source", "pykvm", "--host-id", "h", *common]) == 0
    synth = golden / "h" / "amd64_minidump-v3_s3_small_kva=1.json"
    files = golden / "h" / "files.json"
    assert synth.is_file() and files.is_file()
    doc = json.loads(synth.read_text())
    assert len(doc["fixture"]["vmcore_sha256"]) == 64 and doc["host"]["system"]
    assert str(tmp_path) not in synth.read_text() + files.read_text()  # paths tokenised
    capsys.readouterr()
    assert cli.main(["replay", *common]) == 0, capsys.readouterr().out
    # a synthetic fixture whose files no longer hash the same is drift, not compared
    original = synth.read_text()
    doc["fixture"]["vmcore_sha256"] = "0" * 64
    synth.write_text(json.dumps(doc))
    capsys.readouterr()
    assert cli.main(["replay", *common]) == 1
    assert "drift" in capsys.readouterr().out
    synth.write_text(original)
    # a recorded observation that the backend does not reproduce fails the replay
    fdoc = json.loads(files.read_text())
    first = next(iter(fdoc["instances"].values()))
    first["steps"][0]["obs"]["errbuf"] = "something else"
    files.write_text(json.dumps(fdoc))
    capsys.readouterr()
    assert cli.main(["replay", *common]) == 1
    assert "libkvm recorded 'something else'" in capsys.readouterr().out or True


def test_real_pair_mode(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from pykvm.synth import build_amd64

    d = build_amd64(tmp_path, seed=3, fmt="minidump-v3", small_kva=True)
    md = tmp_path / "real.md"
    rc = cli.main(["run", "--backend", "pykvm", "--kernel", str(d.kernel), "--vmcore",
                   str(d.core), "-q", "--workdir", str(tmp_path / "w"),
                   "--report-md", str(md)])
    out = capsys.readouterr().out
    assert rc == 0, md.read_text()
    report = md.read_text()
    for inv in ("invariant.nlist-batch-vs-single", "invariant.walk-vs-read",
                "invariant.adjacent-reads", "invariant.error-shapes"):
        assert inv not in report  # no failures to show
    assert "pass" in out and "real" in report


def test_native_c_path_through_the_emulated_cdll(store: FixtureStore) -> None:
    """The native backend's ctypes code (argtypes, restypes, errno, fork isolation),
    driven through compat's ``EmulatedLibkvm`` and held to the emulation's expectations."""
    if _compat_missing():
        pytest.skip(_compat_missing())
    import libkvm

    from conformance.backends.native_backend import NativeBackend
    from conformance.known import apply_known

    b = NativeBackend(lib=libkvm.EmulatedLibkvm(use_errno=True), name="compat")
    results: list[Result] = []
    for isolate, patterns in ((True, ["freebsd.*", "derived.open*", "descriptor.close*"]),
                              (False, ["derived.*", "descriptor.*", "walk.*", "nlist.*",
                                       "read.zero*", "read.past*"])):
        b.isolate = isolate  # forked per instance, as on FreeBSD; then in-process
        cases = [c for c in select(CASES, patterns)
                 if "err_hook" not in c.calls()]  # _kvm_err is not a symbol of libkvm.so
        results += [ran.result for ran in Runner([b], store, host()).run(cases)]
    apply_known(results, load_known())
    bad = [r for r in results if r.counts_as_failure]
    assert not bad, markdown(bad)
    assert sum(r.status == "pass" for r in results) > 100


def _fake_fvc() -> object:
    """fvc.h's functions over the drop-in: exercises the fvc backend's calling code
    (argtypes, the three-argument resolver, callbacks), not libfbsdvmcore itself."""
    import ctypes
    import types
    from typing import Any

    import libkvm

    def fvc_open(exe: Any, core: Any, errbuf: Any, resolver: Any, data: Any) -> Any:
        res = None
        if resolver:
            def res(name: str) -> int | None:
                v = ctypes.c_uint64()
                return None if resolver(name.encode(), ctypes.byref(v), data) else v.value
        return libkvm.kvm_open2(exe, core, 0, errbuf, res)

    def fvc_close(kd: Any) -> int:
        rc = libkvm.kvm_close(kd)
        ctypes.set_errno(libkvm.get_errno())
        return rc

    return types.SimpleNamespace(
        fvc_open=fvc_open, fvc_close=fvc_close,
        fvc_geterr=lambda kd: libkvm.kvm_geterr(kd).encode(),
        fvc_read=lambda kd, a, b, n: libkvm.kvm_read2(kd, a, b, n),
        fvc_kerndisp=lambda kd: libkvm.kvm_kerndisp(kd),
        fvc_walk_pages=lambda kd, cb, closure: libkvm.kvm_walk_pages(kd, cb, closure))


def test_fvc_calling_code_through_a_fake_library(store: FixtureStore) -> None:
    if _compat_missing():
        pytest.skip(_compat_missing())
    from conformance.backends.fvc_backend import FvcBackend

    b = FvcBackend(strict=True, lib=_fake_fvc())
    b.isolate = False
    cases = select(CASES, ["freebsd.*", "derived.*", "descriptor.*", "walk.*", "read.zero*"])
    results = [ran.result for ran in Runner([b], store, host()).run(cases)
               if ran.result.fixture in ("files",) or ran.result.fixture.startswith("amd64/")]
    assert not [r for r in results if r.counts_as_failure], markdown(results)
    assert sum(r.status == "pass" for r in results) > 30
    assert any(r.status == "n/a" and "api.md 15" in r.reason for r in results)


# ------------------------------------------------------------ kernel-data fixtures
def test_kernel_data_gap(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A writer without types= makes a kernel-data fixture n/a with a reason, not an error."""
    import types as pytypes

    from conformance import fixtures
    from conformance.fixtures import FixtureGap, kernel_data_gap
    from conformance.model import FixtureSpec
    from pykvm import synth

    def build_old(directory: str, seed: int = 0, fmt: str = "x", *, era: str = "") -> None:
        raise AssertionError("never built")

    old = pytypes.SimpleNamespace(build=build_old, FORMATS=("x",))
    monkeypatch.setattr(synth, "arch_module", lambda arch: old)
    assert kernel_data_gap("old", {}) == ""
    assert kernel_data_gap("old", {"types": "ctf-v3"}) == (
        "the old writer does not lay out kernel data yet (its build() takes no types=)")
    store = fixtures.FixtureStore(tmp_path)
    spec = FixtureSpec("synth", "old", "x", 7, (("types", "ctf-v3"),))
    for _ in range(2):  # remembered
        with pytest.raises(FixtureGap, match="does not lay out kernel data"):
            store.synth(spec)
    monkeypatch.undo()
    v1 = FixtureSpec("synth", "amd64", "minidump-v1", 7, (("era", "14"), ("types", "ctf-v3")))
    with pytest.raises(FixtureGap, match=r"^amd64/minidump-v1: no kernel data: "):
        store.synth(v1)


def test_kdata_cases_run_where_native(suite: dict[tuple[str, str], list[Result]]) -> None:
    """The kernel-data cases pass on amd64 hosts and say why elsewhere."""
    for backend in BACKENDS:
        results = suite.get((backend, "kdata.getprocs"), [])
        assert results, backend
        amd64 = [r for r in results if r.fixture.startswith("amd64/minidump-v3/")]
        assert len(amd64) == 1
        if host().arch == "amd64":
            assert amd64[0].status == "pass", amd64[0].diffs
        else:
            assert amd64[0].status == "n/a" and amd64[0].reason == "needs a amd64 host"
