"""The kernel-data subcommands of ``pykvm`` (ps, swapinfo, loadavg, cptime, pcpu, dmesg)
against synthetic dumps with type information, checked against ``truth.kernel_data``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pykvm.cli import main

synth = pytest.importorskip("pykvm.synth")

SEED = 3
COMMLEN = 18  # KI_COMMLEN - 1: the characters of p_comm that kinfo_proc keeps


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.fixture(scope="module")
def dump(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return synth.build_amd64(tmp_path_factory.mktemp("kdata"), seed=SEED, fmt="minidump-v3",
                             types="ctf-v3")


@pytest.fixture(scope="module")
def untyped(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return synth.build_amd64(tmp_path_factory.mktemp("untyped"), seed=SEED, fmt="minidump-v3")


def files(d: Any) -> list[str]:
    return [str(d.kernel), str(d.core)]


def json_of(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    status, out, err = run(capsys, *argv, "--json")
    assert (status, err) == (0, "")
    return json.loads(out)


# --------------------------------------------------------------------------- ps


def test_ps_text(capsys: pytest.CaptureFixture[str], dump: Any) -> None:
    kdata = dump.truth.kernel_data
    status, out, err = run(capsys, "ps", *files(dump))
    assert (status, err) == (0, "")
    lines = out.splitlines()
    assert lines[0].split() == ["UID", "PID", "PPID", "CPU", "PRI", "NI", "VSZ", "RSS",
                                "MWCHAN", "STAT", "TT", "TIME", "COMMAND"]
    assert len(lines) == 1 + len(kdata.procs)
    for line, proc in zip(lines[1:], kdata.procs, strict=True):
        cells = line.split()
        assert int(cells[0]) == proc.uid
        assert int(cells[1]) == proc.pid
        assert int(cells[2]) == proc.ppid
        if not proc.zombie:  # kvm_proclist leaves a zombie's ki_nice 0
            assert int(cells[5]) == proc.nice
        assert int(cells[6]) == proc.size // 1024
        assert line.endswith(" " + proc.comm[:COMMLEN])


def test_ps_tt_column(capsys: pytest.CaptureFixture[str], dump: Any) -> None:
    """TT as bin/ps/print.c ``tname`` shows it: ``pts/N`` -> ``N``, ``-`` without a tty."""
    from pykvm.cli import tname

    kdata = dump.truth.kernel_data
    status, out, err = run(capsys, "ps", *files(dump))
    assert (status, err) == (0, "")
    lines = out.splitlines()
    tt = lines[0].index("TT")
    with_tty = 0
    for line, proc in zip(lines[1:], kdata.procs, strict=True):
        cell = line[tt:].split()[0]
        if proc.tty is None:
            assert cell == "-"
        else:
            assert proc.tty.startswith("pts/")
            assert cell == proc.tty[4:]  # the session keeps its tty vnode: KI_CTTY
            with_tty += 1
    assert with_tty == 3
    doc = json_of(capsys, "ps", *files(dump))
    assert [p["ttyname"] for p in doc["procs"]] == [p.tty for p in kdata.procs]
    assert (tname("pts/12", True), tname("ttyv0", True), tname("cuau1", False)) == (
        "12", "v0", "u1-")


def test_ps_json(capsys: pytest.CaptureFixture[str], dump: Any) -> None:
    kdata = dump.truth.kernel_data
    doc = json_of(capsys, "ps", *files(dump))
    assert doc["threads"] is False
    procs = doc["procs"]
    assert [p["pid"] for p in procs] == kdata.pids()
    assert [p["command"] for p in procs] == [p.comm[:COMMLEN] for p in kdata.procs]
    assert [p["ppid"] for p in procs] == [p.ppid for p in kdata.procs]
    assert [p["uid"] for p in procs] == [p.uid for p in kdata.procs]
    assert [p["stat"][0] for p in procs if p["pid"] in
            {q.pid for q in kdata.procs if q.zombie}] == ["Z"]


def test_ps_threads(capsys: pytest.CaptureFixture[str], dump: Any) -> None:
    kdata = dump.truth.kernel_data
    doc = json_of(capsys, "ps", *files(dump), "--threads")
    assert doc["threads"] is True
    expected = [p.pid for p in kdata.procs for _ in range(max(1, len(p.threads)))]
    assert [p["pid"] for p in doc["procs"]] == expected
    live = {t.tid for p in kdata.procs if not p.zombie for t in p.threads}
    assert live <= {p["tid"] for p in doc["procs"]}
    status, out, err = run(capsys, "ps", *files(dump), "--threads")
    assert (status, err) == (0, "")
    assert len(out.splitlines()) == 1 + len(expected)
    multi = next(p for p in kdata.procs if len(p.threads) > 1 and not p.zombie)
    names = {f"{multi.comm[:COMMLEN]}/{t.name}" for t in multi.threads
             if t.name != multi.comm[:COMMLEN]}
    assert names & {line.split()[-1] for line in out.splitlines()}


# --------------------------------------------------------------------------- swapinfo


def _swap_expect(dump: Any) -> tuple[list[str], list[int], list[int]]:
    kdata = dump.truth.kernel_data
    page_kb = 4
    skip = kdata.dmmax if kdata.dmmax is not None else kdata.nsw_cluster_max
    names = [s.name if s.name.startswith("[") else "/dev/" + s.name for s in kdata.swap]
    return (names, [(s.nblks - skip) * page_kb for s in kdata.swap],
            [s.used * page_kb for s in kdata.swap])


def test_swapinfo_text(capsys: pytest.CaptureFixture[str], dump: Any) -> None:
    names, blocks, used = _swap_expect(dump)
    status, out, err = run(capsys, "swapinfo", *files(dump))
    assert (status, err) == (0, "")
    lines = out.splitlines()
    assert lines[0].split() == ["Device", "1K-blocks", "Used", "Avail", "Capacity"]
    assert len(names) > 1
    assert len(lines) == 1 + len(names) + 1
    for line, name, b, u in zip(lines[1:-1], names, blocks, used, strict=True):
        assert line.startswith(name)
        assert line[len(name):].split()[:3] == [str(b), str(u), str(b - u)]
        assert line.endswith(f"{u * 100 / b:5.0f}%")
    total = lines[-1].split()
    assert total[:4] == ["Total", str(sum(blocks)), str(sum(used)), str(sum(blocks) - sum(used))]


def test_swapinfo_json_and_human(capsys: pytest.CaptureFixture[str], dump: Any) -> None:
    names, blocks, used = _swap_expect(dump)
    doc = json_of(capsys, "swapinfo", *files(dump))
    assert [d["device"] for d in doc["devices"]] == names
    assert [d["blocks"] for d in doc["devices"]] == blocks
    assert [d["used"] for d in doc["devices"]] == used
    assert doc["total"]["used"] == sum(used)
    assert doc["total"]["blocks"] == sum(blocks)
    status, out, err = run(capsys, "swapinfo", *files(dump), "-h")
    assert (status, err) == (0, "")
    assert out.splitlines()[0].split() == ["Device", "Size", "Used", "Avail", "Capacity"]
    assert all(line.split()[-2][-1] in "BKMGTP" for line in out.splitlines()[1:])


# --------------------------------------------------------------------------- the rest


def test_loadavg(capsys: pytest.CaptureFixture[str], dump: Any) -> None:
    kdata = dump.truth.kernel_data
    values = [v / kdata.fscale for v in kdata.ldavg]
    status, out, err = run(capsys, "loadavg", *files(dump))
    assert (status, err) == (0, "")
    assert out == "load averages: " + ", ".join(f"{v:.2f}" for v in values) + "\n"
    doc = json_of(capsys, "loadavg", *files(dump))
    assert doc["loadavg"] == pytest.approx(values)


def test_cptime(capsys: pytest.CaptureFixture[str], dump: Any) -> None:
    kdata = dump.truth.kernel_data
    doc = json_of(capsys, "cptime", *files(dump))
    assert list(doc["cp_time"].values()) == list(kdata.cp_time_sum)
    assert list(doc["cp_time"]) == ["user", "nice", "system", "interrupt", "idle"]
    status, out, err = run(capsys, "cptime", *files(dump))
    assert (status, err) == (0, "")
    for line, ticks in zip(out.splitlines()[1:], kdata.cp_time_sum, strict=True):
        assert int(line.split()[1]) == ticks


def test_pcpu(capsys: pytest.CaptureFixture[str], dump: Any) -> None:
    kdata = dump.truth.kernel_data
    doc = json_of(capsys, "pcpu", *files(dump))
    assert (doc["maxcpu"], doc["ncpus"]) == (kdata.maxcpu, kdata.ncpus)
    assert [c["pcpu"] for c in doc["cpus"]] == list(kdata.pcpu)
    status, out, err = run(capsys, "pcpu", *files(dump))
    assert (status, err) == (0, "")
    for i, addr in enumerate(kdata.pcpu):
        assert f"{i:>3}  {addr:#018x}" in out.splitlines()


def test_dmesg(capsys: pytest.CaptureFixture[str], dump: Any) -> None:
    mb = dump.truth.kernel_data.msgbuf
    status, out, err = run(capsys, "dmesg", *files(dump))
    assert (status, err) == (0, "")
    assert out.splitlines() == mb.unread.decode().splitlines()
    status, out, err = run(capsys, "dmesg", *files(dump), "--all")
    assert (status, err) == (0, "")
    assert out.splitlines() == mb.whole.decode().splitlines()
    doc = json_of(capsys, "dmesg", *files(dump), "--all")
    assert doc == {"all": True, "text": mb.whole.decode()}
    assert json_of(capsys, "dmesg", *files(dump))["text"] == mb.unread.decode()


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("command", "text"),
    [
        ("ps", "_nprocs: no such symbol"),
        ("swapinfo", "unable to find swtailq"),
        ("loadavg", "_averunnable: no such symbol"),
        ("cptime", "unable to find cpuid_to_pcpu"),
        ("pcpu", "unable to find cpuid_to_pcpu"),
        ("dmesg", "unable to find msgbufp"),
    ],
)
def test_kernel_without_types(capsys: pytest.CaptureFixture[str], untyped: Any,
                              command: str, text: str) -> None:
    for extra in ([], ["--json"]):
        status, out, err = run(capsys, command, *files(untyped), *extra)
        assert (status, out, err) == (1, "", f"pykvm: {text}\n")


def test_missing_core(capsys: pytest.CaptureFixture[str], dump: Any, tmp_path: Path) -> None:
    status, out, err = run(capsys, "ps", str(dump.kernel), str(tmp_path / "nothere"))
    assert status == 1 and out == ""
    assert err.startswith("pykvm: ") and err.count("\n") == 1


# --------------------------------------------------------------------------- other ABIs

FOREIGN = [("powerpc64", "minidump-hpt", "14"), ("i386", "minidump-pae", "13"),
           ("mips", "minidump-o32-be", "13"), ("aarch64", "minidump-v3", "15")]


@pytest.mark.parametrize(("arch", "fmt", "era"), FOREIGN, ids=[f[0] for f in FOREIGN])
def test_non_native_dumps(capsys: pytest.CaptureFixture[str], tmp_path: Path, arch: str,
                          fmt: str, era: str) -> None:
    """The CLI opens another architecture's dump through the kernel's own symbols and
    decodes its kernel data in that ABI's word size and byte order."""
    d = synth.build(arch, tmp_path, SEED, fmt, types="ctf-v3", era=era)
    kdata = d.truth.kernel_data
    doc = json_of(capsys, "ps", *files(d))
    assert [r["pid"] for r in doc["procs"]] == kdata.pids()
    assert [r["uid"] for r in doc["procs"]] == [p.uid for p in kdata.procs]
    assert [r["command"] for r in doc["procs"]] == [p.comm[:COMMLEN] for p in kdata.procs]
    doc = json_of(capsys, "loadavg", *files(d))
    assert doc["loadavg"] == pytest.approx([v / kdata.fscale for v in kdata.ldavg])
    doc = json_of(capsys, "cptime", *files(d))
    assert list(doc["cp_time"].values()) == list(kdata.cp_time_sum)
    doc = json_of(capsys, "pcpu", *files(d))
    assert [c["pcpu"] for c in doc["cpus"]] == list(kdata.pcpu)
    status, out, err = run(capsys, "swapinfo", *files(d))
    assert (status, err) == (0, "")
    assert [line.split("  ")[0] for line in out.splitlines()[1:-1]] == [
        s.name if s.name.startswith("[") else "/dev/" + s.name for s in kdata.swap]


def test_ps_args(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """``--args``: COMMAND from the kernel's ``p_args`` where it kept them."""
    d = synth.build_amd64(tmp_path, seed=SEED, fmt="minidump-v3", types="ctf-v3",
                          small_kva=True, extra_procs=6)
    kdata = d.truth.kernel_data
    doc = json_of(capsys, "ps", *files(d), "--args")
    want = [None if p.args is None else list(p.args) for p in kdata.procs]
    assert [r["args"] for r in doc["procs"]] == want
    assert any(w for w in want) and None in want
    status, out, err = run(capsys, "ps", *files(d), "--args")
    assert (status, err) == (0, "")
    for line, proc in zip(out.splitlines()[1:], kdata.procs, strict=True):
        tail = " ".join(proc.args) if proc.args else proc.comm[:COMMLEN]
        assert line.endswith(" " + tail)
