"""Dataset-quality metrics on labelled embeddings (in a standardised space, where 0.3/0.4/0.7 mean what the
Vec2Face/HyperFace papers mean).

* ``separability`` — inter-class separability: fraction of identities whose centre has no other centre with
  cosine > 0.4, and the curve of that fraction vs number of identities (Vec2Face Fig. 5).
* ``noise`` — inter-class noise: identity-centre pairs with cosine > 0.7.
* ``consistency`` — intra-class consistency: fraction of images whose cosine to their own identity centre is
  < 0.3, and the distribution of that cosine.
* ``verification`` — genuine and impostor similarity distributions and the equal error rate (computed by
  :func:`synthfr.verification.equal_error_rate`, the single EER implementation).

Identity centre = the L2-normalised mean of the identity's embeddings (the image itself included).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from synthfr.quality import REGISTRY
from synthfr.quality._common import check_inputs, class_centres, histogram, max_offdiag_per_row


@REGISTRY.register("separability")
def separability(embeddings: Any, labels: Any, threshold: float = 0.4, curve_points: int = 12, seed: int = 0,
                 repeats: int = 5, **_: Any) -> dict[str, Any]:
    """Inter-class separability: fraction of identity centres with no other centre above ``threshold`` (+ curve)."""
    e, lab = check_inputs(embeddings, labels)
    classes, _, c = class_centres(e, lab)
    n = len(c)
    nn, _ = max_offdiag_per_row(c)
    frac = float((nn <= threshold).mean()) if n > 1 else 1.0
    # curve: random subsets of identities (``repeats`` random orders, nested within each), mean fraction
    # separable inside each subset
    rng = np.random.default_rng(seed)
    sizes = np.unique(np.clip(np.round(np.geomspace(min(2, n), n, curve_points)).astype(int), 1, n))
    acc = np.zeros(len(sizes))
    for _ in range(max(1, repeats)):
        perm = rng.permutation(n)
        for t, s in enumerate(sizes):
            if s < 2:
                acc[t] += 1.0
                continue
            m, _ = max_offdiag_per_row(c[perm[:s]])
            acc[t] += float((m <= threshold).mean())
    curve = (acc / max(1, repeats)).tolist()
    return {"separability": frac, "threshold": float(threshold), "identities": int(n),
            "centre_nn_cos_mean": float(nn.mean()) if n > 1 else float("nan"),
            "centre_nn_cos": nn.tolist(), "curve_n": sizes.astype(int).tolist(), "curve_fraction": curve}


@REGISTRY.register("noise")
def noise(embeddings: Any, labels: Any, threshold: float = 0.7, max_pairs: int = 1000, **_: Any) -> dict[str, Any]:
    """Inter-class noise: identity-centre pairs with cosine above ``threshold`` (likely the same person twice)."""
    e, lab = check_inputs(embeddings, labels)
    classes, _, c = class_centres(e, lab)
    x = torch.as_tensor(c)
    pairs: list[tuple[int, int, float]] = []
    count = 0
    involved = np.zeros(len(c), dtype=bool)
    for a in range(0, len(c), 4096):
        g = x[a:a + 4096] @ x.T
        i, j = (g > threshold).nonzero(as_tuple=True)
        keep = (i + a) < j
        i, j = i[keep] + a, j[keep]
        count += len(i)
        involved[i.numpy()] = True
        involved[j.numpy()] = True
        if len(pairs) < max_pairs:
            v = (x[i] * x[j]).sum(1)
            for ii, jj, vv in zip(i.tolist(), j.tolist(), v.tolist()):
                pairs.append((ii, jj, vv))
    pairs.sort(key=lambda p: -p[2])
    npairs = len(c) * (len(c) - 1) // 2
    return {"noise_pairs": int(count), "noise_pair_fraction": float(count / max(npairs, 1)),
            "noise_identity_fraction": float(involved.mean()), "threshold": float(threshold),
            "pairs": [{"a": classes[a].item(), "b": classes[b].item(), "cos": v} for a, b, v in pairs[:max_pairs]]}


@REGISTRY.register("consistency")
def consistency(embeddings: Any, labels: Any, threshold: float = 0.3, bins: int = 100, **_: Any) -> dict[str, Any]:
    """Intra-class consistency: fraction of images whose cosine to their own centre is below ``threshold``."""
    e, lab = check_inputs(embeddings, labels)
    classes, inv, c = class_centres(e, lab)
    cos = (e * c[inv]).sum(1)
    per_id = np.bincount(inv, weights=(cos < threshold).astype(float), minlength=len(classes)) / np.bincount(inv)
    return {"inconsistent_fraction": float((cos < threshold).mean()), "threshold": float(threshold),
            "mean_cos_to_centre": float(cos.mean()), "median_cos_to_centre": float(np.median(cos)),
            "identities_with_outliers": float((per_id > 0).mean()),
            "cos_to_centre_hist": histogram(cos, bins=bins)}


def _sample_pairs(inv: np.ndarray, max_pairs: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray,
                                                                                       np.ndarray, np.ndarray, bool]:
    """Genuine pairs (all, or a uniform sample) and as many random impostor pairs."""
    order = np.argsort(inv, kind="stable")
    counts = np.bincount(inv)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    total_gen = int((counts * (counts - 1) // 2).sum())
    gi, gj = [], []
    if total_gen <= max_pairs:
        for s, k in zip(starts, counts):
            if k >= 2:
                a, b = np.triu_indices(k, 1)
                gi.append(order[s + a])
                gj.append(order[s + b])
        gi = np.concatenate(gi) if gi else np.zeros(0, np.int64)
        gj = np.concatenate(gj) if gj else np.zeros(0, np.int64)
        sampled = False
    else:  # uniform over genuine pairs: pick a class by its pair count, then two distinct members
        w = counts * (counts - 1) / 2.0
        cls = rng.choice(len(counts), size=max_pairs, p=w / w.sum())
        a = rng.integers(0, counts[cls])
        b = rng.integers(0, counts[cls] - 1)
        b = b + (b >= a)
        gi, gj = order[starts[cls] + a], order[starts[cls] + b]
        sampled = True
    n = len(inv)
    m = max(len(gi), min(max_pairs, n * (n - 1) // 2))
    ii = rng.integers(0, n, size=3 * m + 10)
    jj = rng.integers(0, n, size=3 * m + 10)
    ok = inv[ii] != inv[jj]
    ii, jj = ii[ok][:m], jj[ok][:m]
    return gi, gj, ii, jj, sampled


def eer(genuine: np.ndarray, impostor: np.ndarray) -> tuple[float, float]:
    """Equal error rate and its threshold, ``(eer, threshold)``, from genuine and impostor scores.

    A thin alias of :func:`synthfr.verification.eer_from_scores`, i.e. the single EER implementation
    :func:`~synthfr.verification.equal_error_rate`: the exact point of the ROC where FAR = FRR
    (pairs with ``score >= threshold`` are accepted), linearly interpolated between the two ROC points that
    bracket it; ``threshold`` is the first ROC point with FAR >= FRR, so
    ``FAR(threshold) >= eer >= FRR(threshold)``. NaN, NaN when either set is empty.
    """
    from synthfr.verification import eer_from_scores

    return eer_from_scores(genuine, impostor)


@REGISTRY.register("verification")
def verification(embeddings: Any, labels: Any, max_pairs: int = 200000, seed: int = 0, bins: int = 100,
                 **_: Any) -> dict[str, Any]:
    """Genuine/impostor cosine distributions (all genuine pairs up to ``max_pairs``, as many impostors) and EER."""
    e, lab = check_inputs(embeddings, labels)
    _, inv, _ = class_centres(e, lab)
    rng = np.random.default_rng(seed)
    gi, gj, ii, jj, sampled = _sample_pairs(inv, max_pairs, rng)
    gen = (e[gi] * e[gj]).sum(1)
    imp = (e[ii] * e[jj]).sum(1)
    rate, thr = eer(gen, imp)
    return {"eer": rate, "eer_threshold": thr, "genuine_pairs": int(len(gen)), "impostor_pairs": int(len(imp)),
            "genuine_sampled": bool(sampled),
            "genuine_mean": float(gen.mean()) if len(gen) else float("nan"),
            "impostor_mean": float(imp.mean()) if len(imp) else float("nan"),
            "genuine_hist": histogram(gen, bins=bins), "impostor_hist": histogram(imp, bins=bins)}
