"""Training on several datasets at once (synthetic + real, or synthetic sets of different runs).

:class:`MultiSourceDataset` concatenates :class:`~synthfr.data.imagefolder.FaceDataset` sources. Class ids never
collide: source ``s`` keeps its own labels shifted by the number of classes of the sources before it (soft labels
too), so ``num_classes`` is the sum over the sources and the class of an image says which source it came from.

:func:`epoch_order` decides which images an epoch visits. Without weights it is one permutation of all images
(plain concatenation, as Vec2Face's Table 2 trains on HSFace + real data). With per-source weights ``w_s`` an
epoch still has ``N = Σ n_s`` images but ``round(N·w_s / Σw)`` of them come from source ``s`` (drawn without
replacement, cycling through fresh permutations when a small source is over-sampled), then all are shuffled.
Every draw is seeded by ``(seed, epoch, source)``, so resuming and the process count never change the order.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from synthfr.utils.seeds import derive_seed

__all__ = ["MultiSourceDataset", "open_datasets", "epoch_order", "source_counts"]


class MultiSourceDataset(torch.utils.data.Dataset):
    """Several :class:`FaceDataset` sources as one dataset with disjoint class ranges (see the module docstring)."""

    kind = "multi"

    def __init__(self, datasets: Sequence, paths: Sequence[str | Path]):
        if not datasets:
            raise ValueError("no training data: give at least one dataset")
        self.datasets = list(datasets)
        self.paths = [str(p) for p in paths]
        self.sizes = [len(d) for d in self.datasets]
        self.starts = np.concatenate([[0], np.cumsum(self.sizes)]).astype(np.int64)
        self.class_offsets = [int(x) for x in np.concatenate([[0], np.cumsum([d.num_classes for d in self.datasets])])]
        self.num_classes = self.class_offsets[-1]
        self._offset = 0
        self.label_offset = 0

    @property
    def label_offset(self) -> int:
        """Shift of every label (the sources' own shifts are added to it)."""
        return self._offset

    @label_offset.setter
    def label_offset(self, value: int) -> None:
        self._offset = int(value)
        for d, off in zip(self.datasets, self.class_offsets):
            d.label_offset = self._offset + off

    def __len__(self) -> int:
        return int(self.starts[-1])

    def locate(self, i: int) -> tuple[int, int]:
        """``(source, index inside that source)`` of global image ``i``."""
        s = int(np.searchsorted(self.starts, i, side="right") - 1)
        return s, int(i - self.starts[s])

    @property
    def has_soft_labels(self) -> bool:
        return any(d.has_soft_labels for d in self.datasets)

    @property
    def class_names(self) -> list[str] | None:
        """``"<source>:<name>"`` for every class (``None`` when a source has no names, e.g. a manifest)."""
        names = []
        for s, d in enumerate(self.datasets):
            if d.class_names is None:
                return None
            names += [f"{s}:{n}" for n in d.class_names]
        return names

    def image(self, i: int) -> np.ndarray:
        s, j = self.locate(int(i))
        return self.datasets[s].image(j)

    def __getitem__(self, item):
        if isinstance(item, (tuple, list)):
            i, seed = int(item[0]), int(item[1])
            s, j = self.locate(i)
            x, labels, weights, _ = self.datasets[s][(j, seed)]
        else:
            i = int(item)
            s, j = self.locate(i)
            x, labels, weights, _ = self.datasets[s][j]
        return x, labels, weights, i

    def describe(self, weights: Sequence[float] | None = None) -> list[dict]:
        """One record per source for the run's ``config.json``."""
        w = normalised_weights(self.sizes, weights)
        return [{"path": p, "images": n, "classes": d.num_classes, "class_offset": off, "weight": float(ws)}
                for p, n, d, off, ws in zip(self.paths, self.sizes, self.datasets, self.class_offsets, w)]


def normalised_weights(sizes: Sequence[int], weights: Sequence[float] | None) -> np.ndarray:
    """Per-source sampling shares summing to 1 (proportional to the sizes when ``weights`` is empty)."""
    sizes = np.asarray(sizes, dtype=np.float64)
    if not weights:
        return sizes / sizes.sum()
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != sizes.shape:
        raise ValueError(f"{len(w)} data weights for {len(sizes)} datasets: give one weight per --data source")
    if np.any(w < 0) or w.sum() <= 0:
        raise ValueError(f"data weights {list(weights)} must be >= 0 with a positive sum")
    return w / w.sum()


def source_counts(sizes: Sequence[int], weights: Sequence[float] | None) -> np.ndarray:
    """Images per source in one epoch of ``Σ sizes`` images (largest-remainder rounding of the shares)."""
    n = int(np.sum(sizes))
    exact = normalised_weights(sizes, weights) * n
    counts = np.floor(exact).astype(np.int64)
    rest = n - int(counts.sum())
    counts[np.argsort(-(exact - counts), kind="stable")[:rest]] += 1
    return counts


def epoch_order(sizes: Sequence[int], weights: Sequence[float] | None, seed: int, epoch: int) -> np.ndarray:
    """Global image indices visited by ``epoch`` (see the module docstring)."""
    n = int(np.sum(sizes))
    if not weights:
        return np.random.default_rng(derive_seed(seed, "order", epoch)).permutation(n)
    counts = source_counts(sizes, weights)
    starts = np.concatenate([[0], np.cumsum(sizes)])
    parts = []
    for s, (size, c) in enumerate(zip(sizes, counts)):
        if c == 0:
            continue
        rng = np.random.default_rng(derive_seed(seed, "order", epoch, "source", s))
        reps = -(-int(c) // int(size))
        idx = np.concatenate([rng.permutation(int(size)) for _ in range(reps)])[:c]
        parts.append(idx + starts[s])
    order = np.concatenate(parts)
    return order[np.random.default_rng(derive_seed(seed, "order", epoch, "mix")).permutation(len(order))]


def open_datasets(paths: str | Path | Sequence[str | Path], input_size: int = 112, augment=None,
                  soft_labels: bool = True):
    """One path -> a :class:`FaceDataset`; several -> a :class:`MultiSourceDataset` (disjoint class ranges)."""
    from synthfr.data.imagefolder import open_dataset

    if isinstance(paths, (str, Path)):
        paths = [paths]
    paths = [p for p in paths if str(p)]
    if len(paths) == 1:
        return open_dataset(paths[0], input_size, augment, soft_labels)
    return MultiSourceDataset([open_dataset(p, input_size, augment, soft_labels) for p in paths], paths)
