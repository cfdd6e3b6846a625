"""Where optional real data lives. Users pass paths explicitly; this only serves tests and benchmarks."""
from __future__ import annotations

import os
from pathlib import Path

__all__ = ["shared_data_dir"]


def shared_data_dir() -> Path | None:
    """``$SYNTHFR_DATA`` if set, else ``../shared/data`` next to a source checkout, else ``None``."""
    env = os.environ.get("SYNTHFR_DATA")
    if env:
        p = Path(env)
        return p if p.is_dir() else None
    repo = Path(__file__).resolve().parents[3]
    p = repo.parent / "shared" / "data"
    return p if p.is_dir() else None
