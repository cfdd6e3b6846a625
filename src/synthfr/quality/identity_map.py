"""Pictures of the identity structure: a 2-D map of identity centres and the worst identities.

* ``identity_map`` — classical (Torgerson) multidimensional scaling of identity centres, as SynFace's Fig. 3:
  the chord distance ``‖a − b‖ = √(2 − 2 cos)`` between unit centres is Euclidean, so classical MDS is the
  exact PCA of the centres and the 2-D map keeps as much of their geometry as two axes can (the fraction is
  reported). With a reference, its identity centres (or, unlabelled, its faces) share the map, so one sees
  whether the synthetic identities spread over the real ones or sit in a corner.
* ``worst_identities`` — the identities a person should look at first (VIGFace's appendix): the lowest
  consistency (lowest mean cosine of an identity's images to its centre) and the lowest separability (highest
  cosine of its centre to another identity's centre, with that neighbour).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from synthfr.quality import REGISTRY
from synthfr.quality._common import check_inputs, class_centres, max_offdiag_per_row, reference_points

__all__ = ["classical_mds", "identity_map", "worst_identities"]


def classical_mds(distances: Any, dims: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Classical MDS: ``(coordinates N×dims, all eigenvalues in descending order)`` of ``B = −½ J D² J``.

    For distances between points of a Euclidean space the coordinates reproduce the configuration up to a
    rotation, reflection and translation (centred at the origin)."""
    d = np.asarray(distances, dtype=np.float64)
    if d.ndim != 2 or d.shape[0] != d.shape[1]:
        raise ValueError(f"classical MDS needs a square distance matrix, got shape {d.shape}")
    n = len(d)
    j = np.eye(n) - 1.0 / n
    b = -0.5 * j @ (d ** 2) @ j
    w, v = np.linalg.eigh((b + b.T) / 2)
    order = np.argsort(w)[::-1]
    w, v = w[order], v[:, order]
    k = min(dims, n)
    coords = v[:, :k] * np.sqrt(np.clip(w[:k], 0, None))
    if k < dims:
        coords = np.pad(coords, ((0, 0), (0, dims - k)))
    return coords, w


def _subsample(n: int, m: int, rng: np.random.Generator) -> np.ndarray:
    return np.arange(n) if n <= m else np.sort(rng.choice(n, size=m, replace=False))


@REGISTRY.register("identity_map")
def identity_map(embeddings: Any, labels: Any, reference: Any = None, reference_labels: Any = None,
                 max_points: int = 300, seed: int = 0, **_: Any) -> dict[str, Any]:
    """2-D classical-MDS map of identity centres (and the reference's centres or faces) from chord distances."""
    e, lab = check_inputs(embeddings, labels)
    classes, _, c = class_centres(e, lab)
    rng = np.random.default_rng(seed)
    pick = _subsample(len(c), max_points, rng)
    pts, ids = [c[pick]], classes[pick]
    ref_kind, ref_ids = None, []
    if reference is not None:
        rcls, rc, labelled = reference_points(reference, reference_labels, e.shape[1], "identity map")
        ref_kind = "identity centres" if labelled else "faces (unlabelled)"
        rp = _subsample(len(rc), max_points, rng)
        pts.append(rc[rp])
        ref_ids = rcls[rp]
    x = np.concatenate(pts).astype(np.float64)
    cos = np.clip(x @ x.T, -1.0, 1.0)
    coords, w = classical_mds(np.sqrt(np.maximum(2.0 - 2.0 * cos, 0.0)), 2)
    pos = w[w > 0]
    n_ds = len(pick)
    out: dict[str, Any] = {"method": "classical MDS of chord distances sqrt(2 - 2 cos) between identity centres",
                           "explained": float(pos[:2].sum() / pos.sum()) if pos.sum() > 0 else float("nan"),
                           "dataset_identities": [i.item() for i in ids],
                           "dataset": coords[:n_ds].round(6).tolist()}
    if ref_kind:
        out.update(reference_kind=ref_kind, reference_items=[i.item() for i in ref_ids],
                   reference=coords[n_ds:].round(6).tolist())
    return out


@REGISTRY.register("worst_identities")
def worst_identities(embeddings: Any, labels: Any, n: int = 8, **_: Any) -> dict[str, Any]:
    """The ``n`` least consistent identities and the ``n`` least separable ones (with their nearest neighbour)."""
    e, lab = check_inputs(embeddings, labels)
    classes, inv, c = class_centres(e, lab)
    cos = (e * c[inv]).sum(1).astype(np.float64)
    counts = np.bincount(inv, minlength=len(classes))
    mean_cos = np.bincount(inv, weights=cos, minlength=len(classes)) / np.maximum(counts, 1)
    order = np.argsort(mean_cos, kind="stable")
    multi = order[counts[order] > 1]  # a single image is its own centre: cos 1, nothing to show
    low_cons = [{"identity": classes[i].item(), "mean_cos_to_centre": float(mean_cos[i]), "images": int(counts[i])}
                for i in multi[:n]]
    low_sep: list[dict[str, Any]] = []
    if len(classes) > 1:
        nn, arg = max_offdiag_per_row(c)
        seen: set[tuple[int, int]] = set()
        for i in np.argsort(-nn, kind="stable"):
            pair = (min(i, arg[i]), max(i, arg[i]))
            if pair in seen:  # mutual nearest neighbours: list the pair once
                continue
            seen.add(pair)
            if len(low_sep) >= n:
                break
            low_sep.append({"identity": classes[i].item(), "nearest": classes[arg[i]].item(),
                            "centre_cos": float(nn[i])})
    return {"lowest_consistency": low_cons, "lowest_separability": low_sep}
