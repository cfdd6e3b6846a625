"""Face-verification metrics: the standard 10-fold accuracy, EER, TPR at fixed FPR, ROC.

Pure maths on pair scores, shared by dataset quality (genuine/impostor EER), training (validation) and
evaluation, so it sits below all three on the journey (``synthfr.evaluation.verification`` is its old name).

Scores are **cosine similarities**; a pair is predicted "same" when ``similarity >= threshold``.

**k-fold accuracy** (insightface ``verification.py`` protocol). Pairs are split into ``folds`` contiguous folds
(``KFold(n_splits, shuffle=False)``; for ``pairs.txt`` benchmarks, its sets). For each fold, the threshold with
the best accuracy on the other folds is chosen and the accuracy on the held-out fold is recorded. Reported:
mean and (population, ``ddof=0``, as insightface) standard deviation of the fold accuracies, and
``threshold`` = mean of the chosen fold thresholds.

Unlike insightface's fixed distance grid (``np.arange(0, 4, 0.01)``), thresholds are chosen **exactly**: every
distinct decision on the training pairs is tried once — accept all (threshold = smallest similarity), accept the
values ``>= u_j`` (threshold = midpoint of the consecutive distinct similarities ``u_{j-1}``, ``u_j``) and accept
none (threshold just above the largest) — by one sort and cumulative sums, ``O(n log n)`` per fold. Ties in
training accuracy go to the **largest** threshold (the strictest), as insightface's ``argmax`` over ascending
distance thresholds does.

**ROC** (all pairs, no folds): one operating point per distinct similarity, from (0, 0) at ``+inf``.

**EER**: the point of the ROC where FPR = FNR (= 1 − TPR). It lies on the segment between the last ROC point
with FPR < FNR and the next one; linear interpolation along that segment (the ROC of a randomised classifier
between the two thresholds) gives the reported value, which is exact when an operating point has FPR = FNR.

**TPR at FPR = f**: the largest TPR of any threshold that accepts at most ``floor(f · negatives)`` negative
pairs (no interpolation; a conservative, achievable operating point). With 3,000 negatives (LFW),
``f = 1e-3`` allows 3 false accepts and ``f = 1e-4`` allows none, i.e. it is below the protocol's resolution and
equals TPR at FPR = 0: the ``negatives`` count is reported beside it so readers can judge.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

__all__ = [
    "cosine_similarities", "best_threshold", "kfold_accuracy", "roc_curve", "equal_error_rate", "eer_from_scores",
    "tpr_at_fpr",
    "evaluate_similarities", "evaluate_embeddings", "fpr_key", "save_roc", "DEFAULT_FPRS",
]

DEFAULT_FPRS: tuple[float, ...] = (1e-3, 1e-4)


def fpr_key(f: float) -> str:
    """``1e-3`` -> ``"1e-3"`` (the JSON key of a TPR@FPR entry)."""
    e = math.log10(f)
    if abs(e - round(e)) < 1e-9:
        return f"1e{int(round(e))}"
    return repr(float(f))


def cosine_similarities(emb1: np.ndarray, emb2: np.ndarray) -> np.ndarray:
    """Row-wise cosine similarity in float64 (rows are re-normalised; a zero row scores 0)."""
    a = np.asarray(emb1, dtype=np.float64)
    b = np.asarray(emb2, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"embeddings must be two N×D arrays of the same shape, got {a.shape} and {b.shape}")
    na = np.linalg.norm(a, axis=1)
    nb = np.linalg.norm(b, axis=1)
    denom = na * nb
    dots = np.einsum("ij,ij->i", a, b)
    return np.divide(dots, denom, out=np.zeros_like(dots), where=denom > 0)


def _candidates(sorted_unique: np.ndarray) -> np.ndarray:
    """Exact candidate thresholds for distinct ascending values ``u``: ``m + 1`` of them (see module doc)."""
    u = sorted_unique
    m = len(u)
    t = np.empty(m + 1, dtype=np.float64)
    t[0] = u[0]
    if m > 1:
        mid = (u[:-1] + u[1:]) / 2
        # with adjacent floats the midpoint may round onto the lower value; then u_j itself is exact
        mid = np.where(mid > u[:-1], mid, u[1:])
        t[1:m] = mid
    t[m] = np.nextafter(u[-1], np.inf)
    return t


def best_threshold(sims: np.ndarray, issame: np.ndarray) -> tuple[float, int]:
    """Exact accuracy-maximising threshold on ``sims`` (ties -> largest); returns ``(threshold, n_correct)``."""
    s = np.asarray(sims, dtype=np.float64)
    y = np.asarray(issame, dtype=bool)
    if len(s) == 0:
        raise ValueError("no pairs to choose a threshold on")
    order = np.argsort(s, kind="stable")
    s, y = s[order], y[order]
    u, start = np.unique(s, return_index=True)
    cpos = np.concatenate([[0], np.cumsum(y)])
    cneg = np.concatenate([[0], np.cumsum(~y)])
    bounds = np.concatenate([start, [len(s)]])  # candidate j accepts sorted positions >= bounds[j]
    correct = (cpos[-1] - cpos[bounds]) + cneg[bounds]
    best = correct.max()
    j = int(np.flatnonzero(correct == best)[-1])
    return float(_candidates(u)[j]), int(best)


def _fold_ids(n: int, folds: int | Sequence[int] | np.ndarray) -> np.ndarray:
    if isinstance(folds, (int, np.integer)):
        from synthfr.data.benchmarks import kfold_assignment

        if n < folds:
            raise ValueError(f"{n} pairs cannot be split into {folds} folds")
        return kfold_assignment(n, int(folds))
    ids = np.asarray(folds, dtype=np.int64)
    if ids.shape != (n,):
        raise ValueError(f"fold ids must have one entry per pair ({n}), got shape {ids.shape}")
    return ids


def kfold_accuracy(sims: np.ndarray, issame: np.ndarray, folds: int | Sequence[int] | np.ndarray = 10
                   ) -> dict[str, Any]:
    """The k-fold verification protocol; ``folds`` is a count (contiguous KFold) or one fold id per pair."""
    s = np.asarray(sims, dtype=np.float64)
    y = np.asarray(issame, dtype=bool)
    ids = _fold_ids(len(s), folds)
    accs, thrs = [], []
    for k in np.unique(ids):
        test = ids == k
        train = ~test
        if not train.any():
            raise ValueError("k-fold evaluation needs at least two folds")
        t, _ = best_threshold(s[train], y[train])
        accs.append(float(np.mean((s[test] >= t) == y[test])))
        thrs.append(t)
    a = np.array(accs)
    return {"accuracy": float(a.mean()), "std": float(a.std()), "threshold": float(np.mean(thrs)),
            "fold_accuracies": accs, "fold_thresholds": thrs}


def roc_curve(sims: np.ndarray, issame: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(fpr, tpr, thresholds)``: one point per distinct similarity (descending), starting at (0, 0, +inf).

    Point ``i`` is the rule ``similarity >= thresholds[i]``. With no positives (negatives), TPR (FPR) is NaN.
    """
    s = np.asarray(sims, dtype=np.float64)
    y = np.asarray(issame, dtype=bool)
    order = np.argsort(-s, kind="stable")
    s, y = s[order], y[order]
    last = np.flatnonzero(np.diff(s) != 0) if len(s) else np.array([], dtype=np.int64)
    last = np.concatenate([last, [len(s) - 1]]) if len(s) else last
    tps = np.cumsum(y)[last]
    fps = np.cumsum(~y)[last]
    P, N = int(y.sum()), int((~y).sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        tpr = np.concatenate([[0], tps]) / P if P else np.full(len(last) + 1, np.nan)
        fpr = np.concatenate([[0], fps]) / N if N else np.full(len(last) + 1, np.nan)
    thr = np.concatenate([[np.inf], s[last]])
    return fpr.astype(np.float64), tpr.astype(np.float64), thr


def equal_error_rate(sims: np.ndarray, issame: np.ndarray) -> tuple[float, float]:
    """Exact ROC-based equal error rate: ``(eer, threshold)``. **The** EER of synthfr (single implementation).

    Convention (a pair is accepted when ``similarity >= threshold``; FAR = FPR = accepted negatives / negatives,
    FRR = FNR = rejected positives / positives):

    * the ROC has one operating point per distinct similarity (:func:`roc_curve`), from ``(0, 0)`` at ``+inf``
      to ``(1, 1)``; along it FAR − FRR is non-decreasing from −1 to +1;
    * the EER is where the ROC meets the line FAR = FRR. It lies on the segment from the last point with
      FAR < FRR to the first point ``k`` with FAR >= FRR; the value is linearly interpolated along that segment
      (the ROC of a randomised classifier between the two thresholds), and is exact when a point has FAR = FRR
      (e.g. 0.0 for perfectly separable scores, 1.0 for perfectly inverted ones);
    * the returned ``threshold`` is that of point ``k`` — a realisable operating point with
      ``FAR(threshold) >= eer >= FRR(threshold)`` (for separable scores: the lowest positive score);
    * ties: all pairs with an equal similarity are accepted or rejected together (one ROC point per distinct
      value);
    * NaN, NaN when either class is empty.

    Args:
        sims: similarity (higher = more alike) per pair.
        issame: ``True`` for genuine (same-identity) pairs.

    :func:`synthfr.quality.metrics.eer` is the same computation on separate genuine/impostor score arrays.
    """
    fpr, tpr, thr = roc_curve(sims, issame)
    if np.isnan(fpr).any() or np.isnan(tpr).any():
        return math.nan, math.nan
    d = fpr - (1.0 - tpr)  # non-decreasing from -1 to +1
    i = int(np.argmax(d >= 0))
    if d[i] == 0 or i == 0:
        return float(fpr[i]), float(thr[i])
    a = -d[i - 1] / (d[i] - d[i - 1])
    return float(fpr[i - 1] + a * (fpr[i] - fpr[i - 1])), float(thr[i])


def eer_from_scores(genuine: np.ndarray, impostor: np.ndarray) -> tuple[float, float]:
    """:func:`equal_error_rate` on separate genuine and impostor score arrays: ``(eer, threshold)``."""
    g = np.asarray(genuine, dtype=np.float64).reshape(-1)
    im = np.asarray(impostor, dtype=np.float64).reshape(-1)
    if len(g) == 0 or len(im) == 0:
        return math.nan, math.nan
    return equal_error_rate(np.concatenate([g, im]),
                            np.concatenate([np.ones(len(g), dtype=bool), np.zeros(len(im), dtype=bool)]))


def tpr_at_fpr(sims: np.ndarray, issame: np.ndarray, target: float) -> tuple[float, float]:
    """``(tpr, threshold)``: best TPR with at most ``floor(target · negatives)`` false accepts (see module doc)."""
    s = np.asarray(sims, dtype=np.float64)
    y = np.asarray(issame, dtype=bool)
    pos, neg = s[y], s[~y]
    if len(pos) == 0 or len(neg) == 0:
        return math.nan, math.nan
    k = int(math.floor(target * len(neg) + 1e-9))
    if k >= len(neg):
        return 1.0, float(s.min())
    neg_desc = np.sort(neg)[::-1]
    cut = neg_desc[k]  # this negative (and everything tied with it) must be rejected
    above = s[s > cut]
    t = float(above.min()) if len(above) else float(np.nextafter(cut, np.inf))
    return float(np.mean(pos > cut)), t


def evaluate_similarities(sims: np.ndarray, issame: np.ndarray, folds: int | Sequence[int] | np.ndarray = 10,
                          fprs: Sequence[float] = DEFAULT_FPRS, with_roc: bool = False) -> dict[str, Any]:
    """All metrics from pair similarities: k-fold accuracy/std/threshold, EER, TPR@FPR, counts (+ ROC arrays)."""
    s = np.asarray(sims, dtype=np.float64)
    y = np.asarray(issame, dtype=bool)
    if s.shape != y.shape or s.ndim != 1:
        raise ValueError(f"need one similarity per pair: got {s.shape} similarities for {y.shape} labels")
    out = kfold_accuracy(s, y, folds)
    eer, eer_thr = equal_error_rate(s, y)
    tprs, tpr_thr = {}, {}
    for f in fprs:
        tprs[fpr_key(f)], tpr_thr[fpr_key(f)] = tpr_at_fpr(s, y, f)
    res = {
        "accuracy": out["accuracy"], "std": out["std"], "threshold": out["threshold"], "eer": eer,
        "tpr_at_fpr": tprs, "pairs": int(len(y)), "positives": int(y.sum()), "negatives": int((~y).sum()),
        "folds": len(out["fold_accuracies"]), "fold_accuracies": out["fold_accuracies"],
        "fold_thresholds": out["fold_thresholds"], "eer_threshold": eer_thr, "tpr_at_fpr_threshold": tpr_thr,
    }
    if with_roc:
        fpr, tpr, thr = roc_curve(s, y)
        res["roc"] = {"fpr": fpr, "tpr": tpr, "thresholds": thr}
    return res


def evaluate_embeddings(emb1: np.ndarray, emb2: np.ndarray, issame: np.ndarray,
                        folds: int | Sequence[int] | np.ndarray = 10, fprs: Sequence[float] = DEFAULT_FPRS,
                        with_roc: bool = False) -> dict[str, Any]:
    """Verification metrics for pairs ``(emb1[k], emb2[k])`` on cosine similarity (see module doc).

    Returns a dict with ``accuracy``, ``std``, ``threshold``, ``eer``, ``tpr_at_fpr`` (``{"1e-3": ..}``),
    ``pairs``, ``positives``, ``negatives``, ``folds``, per-fold accuracies and thresholds, and the thresholds of
    the EER and TPR@FPR operating points (plus ``roc`` arrays when ``with_roc``).
    """
    return evaluate_similarities(cosine_similarities(emb1, emb2), issame, folds=folds, fprs=fprs,
                                 with_roc=with_roc)


def save_roc(path_stem: str, fpr: np.ndarray, tpr: np.ndarray, thresholds: np.ndarray, title: str = "",
             png: bool = True) -> dict[str, str]:
    """Write ``<stem>.roc.csv`` (fpr, tpr, threshold) and, when ``png``, ``<stem>.roc.png`` (log FPR axis)."""
    from pathlib import Path

    stem = Path(path_stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    csv = stem.with_name(stem.name + ".roc.csv")
    rows = ["fpr,tpr,threshold"] + [f"{f!r},{t!r},{h!r}" for f, t, h in zip(fpr.tolist(), tpr.tolist(),
                                                                             thresholds.tolist())]
    csv.write_text("\n".join(rows) + "\n")
    out = {"csv": str(csv)}
    if png:
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(5, 4), dpi=120)
        pos = fpr > 0
        ax.plot(fpr[pos], tpr[pos], lw=1.5)
        ax.set_xscale("log")
        ax.set_xlabel("false positive rate")
        ax.set_ylabel("true positive rate")
        ax.set_ylim(min(0.5, float(np.nanmin(tpr[pos])) if pos.any() else 0.5), 1.0)
        ax.grid(True, which="both", alpha=0.3)
        ax.set_title(title or stem.name)
        fig.tight_layout()
        p = stem.with_name(stem.name + ".roc.png")
        fig.savefig(p)
        plt.close(fig)
        out["png"] = str(p)
    return out
