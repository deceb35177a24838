"""pykvm's libkvm conformance suite: cases as data, run against every implementation.

``python -m conformance run`` runs the TOML cases of ``conformance/cases/`` (and the
invariants of :mod:`conformance.invariants`) against the backends ``pykvm`` (the Python
API), ``compat`` (the ``libkvm`` drop-in), ``native`` (FreeBSD's libkvm through ctypes),
``fvc`` (libfbsdvmcore) and ``golden`` (recorded native results).  See README.md in this
directory for the case schema and the commands.
"""

from __future__ import annotations

from .model import Case, CaseError, load_cases, select
from .runner import Result

__all__ = ["Case", "CaseError", "Result", "load_cases", "select"]
