"""Distribution metrics of a generated set against a real reference, in one network's embedding space.

* ``frechet`` — Fréchet distance between Gaussians fitted to the two sets of embeddings (FID's formula, in a
  face-recognition embedding space instead of Inception's):
  ``FD = |μ_g − μ_r|² + Tr(Σ_g + Σ_r − 2 (Σ_g Σ_r)^½)``. It mixes realism and diversity into one number and is
  biased upwards for small sets, so the split-half FD of the reference (two random halves of the real set) is
  reported beside it as the floor a set of that size reaches.
* ``prdc`` — precision, recall, density and coverage (Kynkäänniemi et al. 2019; Naeem et al. 2020) on k-NN
  manifolds: each point's ball has the radius of its k-th nearest neighbour in its own set. Precision: fraction
  of generated points inside some real ball (realism); recall: fraction of real points inside some generated
  ball (diversity); density: mean number of real balls holding a generated point, over k (realism robust to
  outliers; 1 for a set distributed like the real one); coverage: fraction of real balls holding at least one
  generated point (diversity robust to outliers). The larger set is subsampled to the smaller one's size by
  default, as in Naeem et al.

Both run on the network's own unit embeddings (``raw_space``), not on a space fitted to one dataset, so
figures of different datasets against one reference are comparable. Both are pure measurements: no network
is trained with them (SFace, the judge, never enters a loss).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from synthfr.errors import InputError, UsageError
from synthfr.quality import REGISTRY

__all__ = ["frechet_distance", "prdc", "check_reference"]


def check_reference(embeddings: Any, reference: Any, need: int, metric: str, hint: str = "") -> tuple[np.ndarray,
                                                                                                   np.ndarray]:
    """float64 copies of both sets; one-line errors for mismatched dimensions and too few reference rows."""
    x = np.asarray(embeddings, dtype=np.float64)
    r = np.asarray(reference, dtype=np.float64)
    if r.ndim != 2 or len(r) == 0:
        raise InputError(f"{metric}: the reference must be an M×D embedding matrix, got shape {r.shape}")
    if x.ndim != 2 or len(x) == 0:
        raise InputError(f"{metric}: the dataset must be an N×D embedding matrix, got shape {x.shape}")
    if r.shape[1] != x.shape[1]:
        raise InputError(f"{metric}: reference embeddings are {r.shape[1]}-D but the dataset's are {x.shape[1]}-D; "
                         "embed both with the same network (a reference .npy must come from the --embedder given)")
    for what, a in (("reference", r), ("dataset", x)):
        if len(a) < need:
            raise InputError(f"{metric}: the {what} has {len(a)} faces but needs at least {need}{hint}")
    return x, r


def frechet_distance(x: Any, y: Any) -> dict[str, float]:
    """Fréchet distance between Gaussians fitted to rows of ``x`` and ``y`` (float64; covariances with ddof=1).

    ``Tr (Σ_x Σ_y)^½`` is computed as ``Σ √λ`` over the eigenvalues of the symmetric PSD matrix
    ``Σ_x^½ Σ_y Σ_x^½``, which has the same spectrum as ``Σ_x Σ_y`` (no complex square roots, no scipy).
    Returns ``{"fd", "mean_term", "cov_term"}`` (``fd = mean_term + cov_term``).
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    mu = x.mean(0) - y.mean(0)
    sx, sy = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    sx, sy = np.atleast_2d(sx), np.atleast_2d(sy)
    w, v = np.linalg.eigh(sx)
    root = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    m = root @ sy @ root
    ev = np.linalg.eigvalsh((m + m.T) / 2)
    tr_sqrt = float(np.sqrt(np.clip(ev, 0, None)).sum())
    mean_term = float(mu @ mu)
    cov_term = float(np.trace(sx) + np.trace(sy) - 2 * tr_sqrt)
    return {"fd": mean_term + max(cov_term, 0.0), "mean_term": mean_term, "cov_term": max(cov_term, 0.0)}


@REGISTRY.register("frechet")
def frechet(embeddings: Any, labels: Any, reference: Any = None, seed: int = 0, **_: Any) -> dict[str, Any]:
    """Fréchet distance between the dataset's and the reference's embeddings (+ the reference's split-half FD)."""
    if reference is None:
        return {"skipped": "no reference set given (--reference REAL_DIR or R.npy)"}
    x, r = check_reference(embeddings, reference, 2, "Fréchet distance")
    out: dict[str, Any] = {**frechet_distance(x, r), "n_dataset": int(len(x)), "n_reference": int(len(r))}
    if len(r) >= 4:  # the noise floor: two random halves of the real set
        perm = np.random.default_rng(seed).permutation(len(r))
        h = len(r) // 2
        out["reference_split_half_fd"] = frechet_distance(r[perm[:h]], r[perm[h:2 * h]])["fd"]
    return out


@torch.no_grad()
def _kth_radius(a: torch.Tensor, k: int, chunk: int = 2048) -> torch.Tensor:
    """Distance of every row of ``a`` to its k-th nearest other row (the row itself, at 0, is the first)."""
    out = torch.empty(len(a), dtype=a.dtype)
    for s in range(0, len(a), chunk):
        d = torch.cdist(a[s:s + chunk], a)
        out[s:s + len(d)] = d.kthvalue(k + 1, dim=1).values
    return out


@torch.no_grad()
def prdc_values(real: Any, fake: Any, k: int = 5, chunk: int = 2048) -> dict[str, float]:
    """Precision, recall, density, coverage of ``fake`` against ``real`` (Naeem et al. 2020's definitions, with
    strict ``distance < radius`` as in their reference code); float64, chunked so memory stays O(chunk·N)."""
    r = torch.as_tensor(np.asarray(real, dtype=np.float64))
    f = torch.as_tensor(np.asarray(fake, dtype=np.float64))
    rr, fr = _kth_radius(r, k, chunk), _kth_radius(f, k, chunk)
    fake_in_real = torch.zeros(len(f), dtype=torch.bool)
    fake_count = torch.zeros(len(f), dtype=torch.float64)
    real_in_fake = torch.zeros(len(r), dtype=torch.bool)
    covered = torch.zeros(len(r), dtype=torch.bool)
    for s in range(0, len(r), chunk):
        d = torch.cdist(r[s:s + chunk], f)  # real chunk × fake
        inside = d < rr[s:s + chunk, None]
        fake_in_real |= inside.any(0)
        fake_count += inside.sum(0)
        real_in_fake[s:s + len(d)] = (d < fr[None, :]).any(1)
        covered[s:s + len(d)] = d.min(1).values < rr[s:s + chunk]
    return {"precision": float(fake_in_real.double().mean()), "recall": float(real_in_fake.double().mean()),
            "density": float(fake_count.mean() / k), "coverage": float(covered.double().mean())}


@REGISTRY.register("prdc")
def prdc(embeddings: Any, labels: Any, reference: Any = None, k: int = 5, balance: bool = True, seed: int = 0,
         **_: Any) -> dict[str, Any]:
    """Precision / recall / density / coverage of the dataset against the reference (k-NN manifolds, k=5)."""
    if reference is None:
        return {"skipped": "no reference set given (--reference REAL_DIR or R.npy)"}
    k = int(k)
    if k < 1:
        raise UsageError(f"precision/recall: k must be >= 1, got {k}")
    x, r = check_reference(embeddings, reference, k + 1, "precision/recall (k-NN)",
                           f" (more than k={k}); give a larger set, a smaller k (--prdc-k) or "
                           "leave prdc out (--metrics)")
    n = min(len(x), len(r))
    if balance and len(x) != len(r):  # equal sizes, as Naeem et al. recommend: recall/coverage depend on them
        rng = np.random.default_rng(seed)  # only the larger set is subsampled
        if len(x) > n:
            x = x[np.sort(rng.permutation(len(x))[:n])]
        else:
            r = r[np.sort(rng.permutation(len(r))[:n])]
    return {**prdc_values(r, x, k), "k": k, "n_dataset": int(len(x)), "n_reference": int(len(r)),
            "balanced": bool(balance)}


frechet.raw_space = True  # type: ignore[attr-defined]
prdc.raw_space = True  # type: ignore[attr-defined]
