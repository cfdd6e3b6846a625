"""Where optional real data lives. Users pass paths explicitly; this only serves tests and benchmarks."""
from __future__ import annotations

import os
from pathlib import Path

__all__ = ["shared_data_dir", "walk_files"]


def shared_data_dir() -> Path | None:
    """``$SYNTHFR_DATA`` if set, else ``../shared/data`` next to a source checkout, else ``None``."""
    env = os.environ.get("SYNTHFR_DATA")
    if env:
        p = Path(env)
        return p if p.is_dir() else None
    repo = Path(__file__).resolve().parents[3]
    p = repo.parent / "shared" / "data"
    return p if p.is_dir() else None


def walk_files(root: str | os.PathLike, extensions) -> list[Path]:
    """Files under ``root`` whose suffix (lower-cased) is in ``extensions``: recursive, sorted, hidden entries
    skipped. The one rule for every image source (align, embed, train, convert): symlinked folders and
    files are followed like real ones (datasets are often assembled from links); a folder reached twice
    through links (a loop) is read once."""
    root = Path(root)
    exts = {e.lower() for e in extensions}
    out: list[Path] = []
    seen: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen:
            dirnames[:] = []
            continue
        seen.add(real)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for f in sorted(filenames):
            if not f.startswith(".") and os.path.splitext(f)[1].lower() in exts:
                out.append(Path(dirpath) / f)
    return sorted(out)
