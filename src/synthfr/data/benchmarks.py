"""Face-verification benchmarks: one :class:`Benchmark` from an insightface ``.bin`` or an LFW-style ``pairs.txt``.

* **insightface ``.bin``**: read safely by :mod:`synthfr.data.insightface_bin` (a pickle; only the globals the
  format needs are admitted); images ``2k`` and ``2k+1`` form pair ``k``, in 10 contiguous folds.
* **LFW-style folder**: ``ROOT/Name/Name_0001.jpg`` images and a ``pairs.txt`` (LFW View 2 format: a header
  ``FOLDS N``, then per fold ``N`` matched lines ``name i j`` followed by ``N`` mismatched lines
  ``name1 i name2 j``), parsed here by :func:`parse_pairs`. Reading its image files needs the face models
  (images that are not 112×112 are aligned), so folders are loaded by :mod:`synthfr.evaluation.benchmarks`,
  which hands the :class:`Benchmark` its face reader.

Images are decoded lazily, in batches (:meth:`Benchmark.iter_batches`), and identical images are stored once
(``lfw.bin`` holds 12,000 image slots but only 7,701 distinct images), so each distinct face is embedded once.
"""
from __future__ import annotations

import io
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np

from synthfr.data.insightface_bin import RestrictedUnpickler, UnsafePickleError, load_bin_raw, write_bin

__all__ = [
    "Benchmark", "UnsafePickleError", "RestrictedUnpickler", "load_bin", "load_bin_raw", "parse_pairs",
    "kfold_assignment", "decode_image", "write_bin", "IMAGE_SIZE",
]

IMAGE_SIZE = 112


# ----------------------------------------------------------------------------------------------------------------
# Decoding
# ----------------------------------------------------------------------------------------------------------------
def decode_image(data: bytes, size: int = IMAGE_SIZE, source: str = "") -> np.ndarray:
    """Decode JPEG/PNG bytes to ``uint8 size×size×3`` RGB (resized, as insightface does, when not that size)."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as im:
            im = im.convert("RGB")
            if im.size != (size, size):
                im = im.resize((size, size), Image.BILINEAR)
            return np.asarray(im, dtype=np.uint8)
    except Exception as e:  # PIL raises many types for corrupt data
        raise ValueError(f"cannot decode image {source or ''}: {e}") from e


def kfold_assignment(n: int, folds: int = 10) -> np.ndarray:
    """Fold id of each of ``n`` items for ``KFold(n_splits=folds, shuffle=False)`` (contiguous; the first
    ``n % folds`` folds are one longer), as in insightface's verification protocol."""
    if folds < 2 or folds > max(n, 2):
        raise ValueError(f"cannot split {n} pairs into {folds} folds")
    sizes = np.full(folds, n // folds, dtype=np.int64)
    sizes[: n % folds] += 1
    return np.repeat(np.arange(folds), sizes)


# ----------------------------------------------------------------------------------------------------------------
# Benchmark
# ----------------------------------------------------------------------------------------------------------------
@dataclass
class Benchmark:
    """A verification benchmark: distinct images, pairs of them, issame labels and a fold per pair.

    Attributes:
        name: short name ("lfw" from ``lfw.bin`` or from a folder ``lfw/``).
        sources: one entry per distinct image: encoded ``bytes`` (``.bin``) or a file path (folder).
        pairs: ``int64 n×2`` indices into ``sources``.
        issame: ``bool n``.
        folds: ``int64 n`` fold id of each pair (``.bin``: 10 contiguous folds; ``pairs.txt``: its sets).
        slots: for a ``.bin``, the distinct-image index of each of the ``2n`` images in file order.
        path: where it was read from.
        align: folders only: ``"auto"`` aligns images that are not 112×112, ``"never"`` refuses them,
            ``"always"`` aligns every image.
        align_failures: folders only: ``{"path", "reason"}`` of each image whose alignment failed (filled as
            images are decoded; such images are centre-cropped so that every pair is still scored).
        read_face: folders only: ``(path, align) -> (uint8 112×112×3 face, failure reason or None)``, given by
            the loader (:func:`synthfr.evaluation.benchmarks.load_pairs_folder` passes the face aligner).
    """

    name: str
    sources: list
    pairs: np.ndarray
    issame: np.ndarray
    folds: np.ndarray
    path: Path | None = None
    slots: np.ndarray | None = None
    align: str = "auto"
    align_failures: list = field(default_factory=list)
    read_face: Callable[[Path, str], tuple[np.ndarray, str | None]] | None = field(default=None, repr=False)
    _failed: set = field(default_factory=set, repr=False)

    def __len__(self) -> int:
        return len(self.issame)

    @property
    def num_pairs(self) -> int:
        return len(self.issame)

    @property
    def num_images(self) -> int:
        """Number of distinct images (each embedded once)."""
        return len(self.sources)

    @property
    def num_folds(self) -> int:
        return int(self.folds.max()) + 1 if len(self.folds) else 0

    def images(self, indices: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
        """Decoded distinct images ``uint8 k×112×112×3`` RGB (all of them when ``indices`` is None)."""
        idx = range(len(self.sources)) if indices is None else [int(i) for i in indices]
        out = np.empty((len(idx), IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.uint8)
        for j, i in enumerate(idx):
            out[j] = self._load(i)
        return out

    def iter_batches(self, batch_size: int = 256) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield ``(indices, images)`` over all distinct images, decoded ``batch_size`` at a time."""
        n = len(self.sources)
        for s in range(0, n, batch_size):
            idx = np.arange(s, min(n, s + batch_size))
            yield idx, self.images(idx)

    def _load(self, i: int) -> np.ndarray:
        src = self.sources[i]
        if isinstance(src, (bytes, bytearray)):
            return decode_image(src, source=f"{self.name}[{i}]")
        if self.read_face is None:
            raise ValueError(f"{self.name}: image files of a folder benchmark need a face reader; load the folder "
                             "with synthfr.evaluation.benchmarks.load_benchmark")
        img, reason = self.read_face(Path(src), self.align)
        if reason is not None and str(src) not in self._failed:
            self._failed.add(str(src))
            self.align_failures.append({"path": str(src), "reason": reason})
        return img

    def __repr__(self) -> str:
        return (f"Benchmark({self.name!r}, pairs={self.num_pairs}, positives={int(self.issame.sum())}, "
                f"images={self.num_images}, folds={self.num_folds}, path={str(self.path)!r})")


def _dedupe(items: Sequence[bytes]) -> tuple[list[bytes], np.ndarray]:
    index: dict[bytes, int] = {}
    uniq: list[bytes] = []
    slots = np.empty(len(items), dtype=np.int64)
    for k, b in enumerate(items):
        j = index.get(b)
        if j is None:
            j = index[b] = len(uniq)
            uniq.append(b)
        slots[k] = j
    return uniq, slots


def _name_from_path(path: Path) -> str:
    name = path.name
    for suf in (".bin",):
        if name.endswith(suf):
            name = name[: -len(suf)]
    return name


def load_bin(path: str | os.PathLike, folds: int = 10, name: str | None = None) -> Benchmark:
    """Load an insightface ``.bin`` safely (see :class:`RestrictedUnpickler`) as a :class:`Benchmark`.

    Pairs are ``(2k, 2k+1)``; folds follow insightface: ``KFold(folds, shuffle=False)`` over the pair order.
    """
    path = Path(path)
    raw, issame = load_bin_raw(path)
    uniq, slots = _dedupe(raw)
    pairs = slots.reshape(-1, 2)
    n = len(issame)
    fold_ids = kfold_assignment(n, folds) if n >= folds else np.arange(n, dtype=np.int64)
    return Benchmark(name=name or _name_from_path(path), sources=uniq, pairs=pairs, issame=issame,
                     folds=fold_ids, path=path, slots=slots)


# ----------------------------------------------------------------------------------------------------------------
# LFW-style folders
# ----------------------------------------------------------------------------------------------------------------
@dataclass
class _PairsFile:
    pairs: list  # [(name1, idx1, name2, idx2)]
    issame: np.ndarray
    folds: np.ndarray


def parse_pairs(path: str | os.PathLike) -> _PairsFile:
    """Parse an LFW ``pairs.txt``.

    Header ``S N`` (View 2: ``10 300``): ``S`` sets, each of ``N`` matched lines ``name i j`` followed by ``N``
    mismatched lines ``name1 i name2 j``; the set becomes the fold. A header with a single number ``N``
    (View 1 ``pairsDevTest.txt``) means one set of ``N`` matched then ``N`` mismatched lines; its folds are then
    10 contiguous tenths of each block (fold ``k`` = the ``k``-th tenth of the matched and of the mismatched
    pairs). Fields may be separated by tabs or spaces.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"pairs file {path} not found (an LFW-style benchmark needs a pairs.txt)")
    lines = [ln.split() for ln in path.read_text().splitlines() if ln.strip()]
    if not lines:
        raise ValueError(f"{path} is empty")
    head = lines[0]
    try:
        if len(head) == 2:
            sets, per = int(head[0]), int(head[1])
        elif len(head) == 1:
            sets, per = 1, int(head[0])
        else:
            raise ValueError
    except ValueError:
        raise ValueError(f"{path}: first line must be the header 'SETS PAIRS_PER_SET' (e.g. '10 300'), "
                         f"got {' '.join(head)!r}") from None
    body = lines[1:]
    if len(body) != sets * 2 * per:
        raise ValueError(f"{path}: header says {sets} sets x (2 x {per}) pairs = {sets * 2 * per} lines, "
                         f"found {len(body)}")
    pairs, issame, folds = [], [], []
    for ln_no, f in enumerate(body, start=2):
        k = (ln_no - 2) // (2 * per)
        want_same = ((ln_no - 2) % (2 * per)) < per
        try:
            if len(f) == 3:
                pairs.append((f[0], int(f[1]), f[0], int(f[2])))
                same = True
            elif len(f) == 4:
                pairs.append((f[0], int(f[1]), f[2], int(f[3])))
                same = False
            else:
                raise ValueError
        except ValueError:
            raise ValueError(f"{path}:{ln_no}: expected 'name i j' or 'name1 i name2 j', got {' '.join(f)!r}") \
                from None
        if same != want_same:
            raise ValueError(f"{path}:{ln_no}: a {'matched' if want_same else 'mismatched'} pair was expected here "
                             f"(each set lists {per} matched then {per} mismatched pairs)")
        issame.append(same)
        folds.append(k)
    issame_arr = np.array(issame, dtype=bool)
    folds_arr = np.array(folds, dtype=np.int64)
    if sets == 1 and per >= 10:
        # a single set (View 1 style): 10 folds, each with a contiguous tenth of the matched and of the
        # mismatched pairs, so every fold holds both kinds as in View 2
        folds_arr = np.concatenate([kfold_assignment(per, 10), kfold_assignment(per, 10)])
    return _PairsFile(pairs, issame_arr, folds_arr)
