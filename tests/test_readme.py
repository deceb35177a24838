"""The README's Quick start is what a new user types and what CI runs: keep them one."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
CI_RUN = ROOT / ".ci" / "run"


def quick_start_section() -> str:
    text = README.read_text(encoding="utf-8")
    titles = re.findall(r"^## Quick start$", text, re.M)
    assert titles == ["## Quick start"]
    match = re.search(r"^## Quick start\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert match is not None
    return match.group(1)


def quick_start_commands() -> list[str]:
    section = quick_start_section()
    fences = re.findall(r"^```(\w*)$", section, re.M)
    # one block: an opening ```sh and a closing ```
    assert fences == ["sh", ""]
    block = re.search(r"^```sh\n(.*?)^```$", section, re.M | re.S)
    assert block is not None
    return block.group(1).splitlines()


def test_quick_start_has_exactly_two_single_line_commands() -> None:
    commands = quick_start_commands()
    assert len(commands) == 2
    for command in commands:
        assert command.strip() == command
        assert command
        assert not command.endswith("\\")
        assert not command.startswith("#")


def test_quick_start_commands_are_the_agreed_ones() -> None:
    first, second = quick_start_commands()
    assert first == "pip install . && pykvm demo"
    assert first.endswith("pykvm demo")
    assert second == "pip install '.[test]' && python -m pytest"


def test_readme_names_the_distribution_and_the_import() -> None:
    text = README.read_text(encoding="utf-8")
    intro = text.split("## ", 1)[0]
    assert "`freebsd-kvm`" in intro
    assert "`pykvm`" in intro
    assert "## Where pykvm departs from libkvm" in text


def test_ci_run_is_an_executable_strict_bash_script() -> None:
    text = CI_RUN.read_text(encoding="utf-8")
    assert text.startswith("#!/usr/bin/env bash\n")
    assert "set -euo pipefail" in text
    assert os.access(CI_RUN, os.X_OK)
    # pytest's "no tests collected" must fail CI
    assert '"$status" -eq 5' in text
    # it runs the README's commands as extracted, not copies of them
    assert "demo_cmd=$(readme_command 1)" in text
    assert "test_cmd=$(readme_command 2)" in text
    assert 'eval "$demo_cmd"' in text
    assert 'eval "$test_cmd"' in text
    assert "python3 -m venv" in text


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_ci_run_extracts_the_readme_commands() -> None:
    """Run .ci/run's own extraction function and compare with the README."""
    script = CI_RUN.read_text(encoding="utf-8")
    function = re.search(r"^readme_command\(\) \{\n.*?^\}\n", script, re.M | re.S)
    assert function is not None
    program = function.group(0) + "readme_command 1\nreadme_command 2\n"
    result = subprocess.run(
        ["bash", "-c", program], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == quick_start_commands()
