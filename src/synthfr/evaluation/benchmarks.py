"""Folder benchmarks: LFW-style ``ROOT/Name/Name_0001.jpg`` images + a ``pairs.txt``, faces aligned on load.

The file formats (``.bin``, ``pairs.txt``) and :class:`~synthfr.data.benchmarks.Benchmark` live in
:mod:`synthfr.data.benchmarks`; this module adds what needs the face models: images that are not 112×112 are
aligned with :mod:`synthfr.face.align` (``align="auto"``) as they are decoded.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from synthfr.data.benchmarks import Benchmark, kfold_assignment, load_bin, parse_pairs
from synthfr.utils.images import IMAGE_EXTENSIONS
from synthfr.face.load import load_face_file

__all__ = ["load_pairs_folder", "load_benchmark"]


def _find_image(root: Path, name: str, idx: int) -> Path:
    stem = f"{name}_{idx:04d}"
    for ext in IMAGE_EXTENSIONS + tuple(e.upper() for e in IMAGE_EXTENSIONS):
        p = root / name / (stem + ext)
        if p.is_file():
            return p
    raise FileNotFoundError(f"image {name}/{stem}.jpg listed in the pairs file is missing under {root}")


def load_pairs_folder(root: str | os.PathLike, pairs: str | os.PathLike | None = None, align: str = "auto",
                      name: str | None = None, folds: int | None = None) -> Benchmark:
    """Load an LFW-style folder: ``ROOT/Name/Name_0001.jpg`` + ``pairs.txt`` (default ``ROOT/pairs.txt``).

    ``align``: ``"auto"`` aligns images that are not 112×112 with :mod:`synthfr.face.align` (those are taken as
    already aligned), ``"always"`` aligns every image, ``"never"`` refuses non-112 images. Alignment failures fall
    back to a centre crop and are listed in :attr:`Benchmark.align_failures`. ``folds`` overrides the sets of
    ``pairs.txt`` with contiguous k-fold.
    """
    root = Path(root)
    if root.is_file():
        pairs, root = root, root.parent
    if not root.is_dir():
        raise FileNotFoundError(f"benchmark folder {root} not found")
    pairs_path = Path(pairs) if pairs is not None else root / "pairs.txt"
    if align not in ("auto", "always", "never"):
        raise ValueError(f"align must be 'auto', 'always' or 'never', got {align!r}")
    pf = parse_pairs(pairs_path)
    index: dict[Path, int] = {}
    sources: list[Path] = []
    pair_idx = np.empty((len(pf.pairs), 2), dtype=np.int64)
    for k, (n1, i1, n2, i2) in enumerate(pf.pairs):
        for c, (nm, ii) in enumerate(((n1, i1), (n2, i2))):
            p = _find_image(root, nm, ii)
            j = index.get(p)
            if j is None:
                j = index[p] = len(sources)
                sources.append(p)
            pair_idx[k, c] = j
    fold_ids = pf.folds if folds is None else kfold_assignment(len(pf.issame), folds)
    if name is None:
        name = root.name if pairs is None or Path(pairs).name == "pairs.txt" else Path(pairs).stem
    return Benchmark(name=name, sources=sources, pairs=pair_idx, issame=pf.issame, folds=fold_ids, path=root,
                     align=align, read_face=load_face_file)


def load_benchmark(path: str | os.PathLike, align: str = "auto", pairs: str | os.PathLike | None = None
                   ) -> Benchmark:
    """A ``.bin`` file, an LFW-style folder (with ``pairs.txt``, or the pairs file ``pairs``) or a ``pairs.txt``
    file inside such a folder."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"benchmark {path} not found: pass an insightface .bin (e.g. lfw.bin) or a folder "
                                "of Name/Name_0001.jpg images with a pairs.txt")
    if path.is_file() and path.suffix.lower() != ".txt":
        return load_bin(path)
    if path.is_dir() and pairs is None and not (path / "pairs.txt").is_file():
        raise FileNotFoundError(f"{path} is a folder without a pairs.txt; an LFW-style benchmark needs one "
                                "(or pass the pairs file with --pairs)")
    return load_pairs_folder(path, pairs=pairs if path.is_dir() else None, align=align)

