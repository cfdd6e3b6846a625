"""Shared helpers of the quality metrics: validation, class centres, chunked similarity."""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

__all__ = ["check_inputs", "class_centres", "histogram", "max_offdiag_per_row", "reference_points"]


def check_inputs(embeddings: Any, labels: Any) -> tuple[np.ndarray, np.ndarray]:
    """Unit float32 rows and int64 labels of the same length (labels remapped to 0..C-1 order-preserving)."""
    e = np.asarray(embeddings, dtype=np.float32)
    if e.ndim != 2 or len(e) == 0:
        raise ValueError(f"embeddings must be a non-empty N×D array, got shape {e.shape}")
    lab = np.asarray(labels).reshape(-1)
    if len(lab) != len(e):
        raise ValueError(f"{len(lab)} labels for {len(e)} embeddings; give one label per embedding row")
    e = e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)
    return e, lab


def class_centres(e: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(classes, inverse index per row, normalised class-mean centres C×D)."""
    classes, inv = np.unique(labels, return_inverse=True)
    c = np.zeros((len(classes), e.shape[1]), dtype=np.float64)
    np.add.at(c, inv, e.astype(np.float64))
    c /= np.maximum(np.linalg.norm(c, axis=1, keepdims=True), 1e-12)
    return classes, inv, c.astype(np.float32)


def reference_points(reference: Any, reference_labels: Any, dim: int, where: str
                     ) -> tuple[np.ndarray, np.ndarray, bool]:
    """(ids, unit points, labelled) of a reference set: identity centres when ``reference_labels`` are given,
    else the embeddings themselves (ids 0..M-1); the dimension must be the dataset's ``dim``."""
    from synthfr.errors import InputError

    r = np.asarray(reference, dtype=np.float32)
    if r.ndim != 2 or r.shape[1] != dim:
        raise InputError(f"{where}: reference embeddings are {r.shape[-1]}-D but the dataset's are {dim}-D; "
                         "embed both with the same network")
    r = r / np.maximum(np.linalg.norm(r, axis=1, keepdims=True), 1e-12)
    if reference_labels is None:
        return np.arange(len(r)), r, False
    rcls, _, rc = class_centres(r, np.asarray(reference_labels).reshape(-1))
    return rcls, rc, True


@torch.no_grad()
def max_offdiag_per_row(c: np.ndarray, chunk: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """For each row: the largest cosine to another row and its index (exact, chunked)."""
    x = torch.as_tensor(c)
    n = len(x)
    best = np.full(n, -2.0, dtype=np.float32)
    arg = np.zeros(n, dtype=np.int64)
    for a in range(0, n, chunk):
        g = x[a:a + chunk] @ x.T
        r = torch.arange(g.shape[0])
        g[r, r + a] = -2.0
        v, i = g.max(1)
        best[a:a + len(v)] = v.numpy()
        arg[a:a + len(v)] = i.numpy()
    return best, arg


def histogram(values: np.ndarray, lo: float = -1.0, hi: float = 1.0, bins: int = 100) -> dict[str, list[float]]:
    counts, edges = np.histogram(np.asarray(values, dtype=np.float64), bins=bins, range=(lo, hi))
    return {"edges": edges.tolist(), "counts": counts.astype(float).tolist()}
