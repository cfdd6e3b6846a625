"""A face-image quality score that needs no quality model: the certainty ratio (CR-FIQA, Boutros et al. 2023),
computed from a recognition network's embeddings and the dataset's identity centres.

For image ``i`` of identity ``c``::

    CCS_i   = cos(e_i, centre of c without image i)              (class-centre similarity, leave-one-out)
    NNCCS_i = max over m other identities j of cos(e_i, centre_j) (nearest negative class-centre similarity)
    CR_i    = CCS_i / (NNCCS_i + 1 + ε),  ε = 1e-9

A sharp, typical image of its identity sits close to its own centre and far from every other: high CR. A blurred,
occluded or ambiguous one drifts towards other identities: low CR. CR-FIQA learns to regress this ratio from
the image; here it is measured directly, which needs labels but no extra model. Two choices make figures of
different datasets comparable: the own centre leaves the image out (otherwise identities with few images look
better), and the nearest negative is taken among a fixed number ``m`` (default 100) of randomly drawn other
identities (the maximum over more identities is higher, so a larger dataset would otherwise look worse).
Identities with a single image get no score (NaN, counted).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from synthfr.quality import REGISTRY
from synthfr.quality._common import check_inputs, histogram

__all__ = ["certainty_ratio", "face_quality"]

EPS = 1e-9


def certainty_ratio(embeddings: Any, labels: Any, other_classes: int = 100, seed: int = 0
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(CR, CCS, NNCCS) per row (NaN where the identity has one image). Needs at least two identities."""
    e, lab = check_inputs(embeddings, labels)
    classes, inv = np.unique(lab, return_inverse=True)
    n_cls = len(classes)
    if n_cls < 2:
        raise ValueError(f"the face-quality score (certainty ratio) needs at least 2 identities, got {n_cls}")
    e64 = e.astype(np.float64)
    sums = np.zeros((n_cls, e.shape[1]))
    np.add.at(sums, inv, e64)
    counts = np.bincount(inv, minlength=n_cls)
    centres = sums / np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-12)
    loo = sums[inv] - e64
    loo_norm = np.linalg.norm(loo, axis=1)
    ccs = np.where(counts[inv] > 1, (e64 * loo).sum(1) / np.maximum(loo_norm, 1e-12), np.nan)
    nnccs = np.full(len(e), np.nan)
    rng = np.random.default_rng(seed)
    m = min(int(other_classes), n_cls - 1) if other_classes else n_cls - 1
    order = np.argsort(inv, kind="stable")
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    for c in range(n_cls):
        rows = order[starts[c]:starts[c] + counts[c]]
        others = np.delete(np.arange(n_cls), c)
        if m < len(others):
            others = rng.choice(others, size=m, replace=False)
        nnccs[rows] = (e64[rows] @ centres[others].T).max(1)
    cr = ccs / (nnccs + 1.0 + EPS)
    return cr, ccs, nnccs


@REGISTRY.register("face_quality")
def face_quality(embeddings: Any, labels: Any, other_classes: int = 100, seed: int = 0, bins: int = 100,
                 lowest: int = 16, max_per_image: int = 200_000, **_: Any) -> dict[str, Any]:
    """Certainty-ratio face-image quality (CR-FIQA's target, measured from embeddings): distribution + per image."""
    if len(np.unique(np.asarray(labels).reshape(-1))) < 2:
        return {"skipped": "the certainty ratio needs at least 2 identities"}
    cr, ccs, nn = certainty_ratio(embeddings, labels, other_classes=other_classes, seed=seed)
    ok = np.isfinite(cr)
    v = cr[ok]
    q = np.percentile(v, [5, 25, 50, 75, 95]).tolist() if len(v) else [float("nan")] * 5
    hi = float(max(1.0, np.ceil(v.max() * 10) / 10)) if len(v) else 1.0
    lo = float(min(0.0, np.floor(v.min() * 10) / 10)) if len(v) else 0.0
    return {"score": "certainty ratio CCS / (NNCCS + 1 + 1e-9)", "other_classes": int(other_classes),
            "scored": int(ok.sum()), "unscored_single_image": int((~ok).sum()),
            "mean": float(v.mean()) if len(v) else float("nan"), "p05": q[0], "p25": q[1], "median": q[2],
            "p75": q[3], "p95": q[4],
            "ccs_mean": float(np.nanmean(ccs)) if ok.any() else float("nan"),
            "nnccs_mean": float(np.nanmean(nn)) if ok.any() else float("nan"),
            "hist": histogram(v, lo=lo, hi=hi, bins=bins),
            # row indices of the lowest-scoring images (for a report's "worst images" strip)
            "lowest_rows": [int(i) for i in np.argsort(np.where(ok, cr, np.inf), kind="stable")[:min(lowest, ok.sum())]],
            "per_image": [float(x) if np.isfinite(x) else None for x in cr] if len(cr) <= max_per_image else None}
