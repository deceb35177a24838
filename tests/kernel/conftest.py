"""Fixtures of the kernel-data tests (pykvm/kernel/)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from kdata_helpers import CASES, build, open_dump

from pykvm import kvm as K
from pykvm.synth import SynthDump


@pytest.fixture(scope="session")
def kroot(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("kdata")


@pytest.fixture(scope="session", params=CASES, ids=["-".join(c) for c in CASES])
def kdump(request: pytest.FixtureRequest, kroot: Path) -> SynthDump:
    """Each (type source, era, format) case in turn."""
    types, era, fmt = request.param
    return build(kroot, types, era, fmt)


@pytest.fixture
def kd(kdump: SynthDump) -> Iterator[K.Kvm]:
    """A fresh handle on the case's dump."""
    with open_dump(kdump) as h:
        yield h
