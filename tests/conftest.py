"""Shared fixtures: synthetic amd64 kernels and dumps, built once per session."""

from __future__ import annotations

import pytest

from pykvm.synth import AMD64_FORMATS, SynthDump, build_amd64

SEED = 20261126


@pytest.fixture(scope="session")
def amd64_dumps(tmp_path_factory: pytest.TempPathFactory) -> dict[str, SynthDump]:
    """One synthetic dump of each amd64 format, same seed."""
    out = {}
    for fmt in AMD64_FORMATS:
        d = tmp_path_factory.mktemp(fmt)
        out[fmt] = build_amd64(d, seed=SEED, fmt=fmt)
    return out


@pytest.fixture(scope="session", params=AMD64_FORMATS)
def amd64_dump(request: pytest.FixtureRequest,
               amd64_dumps: dict[str, SynthDump]) -> SynthDump:
    """Each amd64 format in turn."""
    return amd64_dumps[request.param]
