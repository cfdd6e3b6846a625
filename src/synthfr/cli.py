"""``python -m synthfr.cli`` (the form torchrun needs: ``torchrun ... -m synthfr.cli train ...``): the command
line itself is :mod:`synthfr.app.cli`."""
from __future__ import annotations

import sys

from synthfr.app.cli import main

__all__ = ["main"]

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
