"""``python -m pykvm``: the same command as the ``pykvm`` console script."""

from __future__ import annotations

import sys

from pykvm.cli import main

if __name__ == "__main__":
    sys.exit(main())
