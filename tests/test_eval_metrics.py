"""Verification metrics (k-fold accuracy, best threshold, EER, TPR@FPR, ROC) against deliberately naive
brute-force references and insightface's own protocol. The eval/embed commands end to end: tests/test_eval.py."""
from __future__ import annotations

import math

import numpy as np
import pytest

from synthfr.data.benchmarks import kfold_assignment
from synthfr.evaluation.verification import (
    best_threshold, cosine_similarities, equal_error_rate, evaluate_embeddings, kfold_accuracy, roc_curve,
    tpr_at_fpr,
)


# ---------------------------------------------------------------------------------------------------------------
# brute-force references (deliberately naive: python loops, direct counting)
# ---------------------------------------------------------------------------------------------------------------
def brute_candidates(s):
    u = sorted(set(float(v) for v in s))
    cands = [u[0]]
    for a, b in zip(u[:-1], u[1:]):
        m = (a + b) / 2
        cands.append(m if m > a else b)
    cands.append(float(np.nextafter(u[-1], np.inf)))
    return cands


def brute_best_threshold(s, y):
    best_t, best_c = None, -1
    for t in brute_candidates(s):
        c = sum(1 for v, l in zip(s, y) if (v >= t) == l)
        if c > best_c or (c == best_c and t > best_t):
            best_t, best_c = t, c
    return best_t, best_c


def brute_kfold(s, y, folds):
    ids = np.concatenate([np.full(len(part), k) for k, part in enumerate(np.array_split(np.arange(len(s)), folds))])
    accs, thrs = [], []
    for k in range(folds):
        tr = [i for i in range(len(s)) if ids[i] != k]
        te = [i for i in range(len(s)) if ids[i] == k]
        t, _ = brute_best_threshold([s[i] for i in tr], [y[i] for i in tr])
        accs.append(sum(1 for i in te if (s[i] >= t) == y[i]) / len(te))
        thrs.append(t)
    return accs, thrs


def brute_roc_points(s, y):
    P, N = sum(y), len(y) - sum(y)
    pts = [(0.0, 0.0)]
    for t in sorted(set(s), reverse=True):
        tp = sum(1 for v, l in zip(s, y) if v >= t and l)
        fp = sum(1 for v, l in zip(s, y) if v >= t and not l)
        pts.append((fp / N, tp / P))
    return pts


def brute_eer(s, y):
    """Walk the ROC segments; intersect each with the line FPR = 1 - TPR."""
    pts = brute_roc_points(s, y)
    for (f0, t0), (f1, t1) in zip(pts[:-1], pts[1:]):
        g0, g1 = f0 - (1 - t0), f1 - (1 - t1)
        if g0 <= 0 <= g1 and g1 != g0:
            if g0 == 0:
                return f0
            lam = -g0 / (g1 - g0)
            return f0 + lam * (f1 - f0)
        if g0 == 0:
            return f0
    raise AssertionError("no crossing")


def brute_tpr_at_fpr(s, y, f):
    P, N = sum(y), len(y) - sum(y)
    allowed = math.floor(f * N + 1e-9)
    best = 0.0
    for t in sorted(set(s)) + [math.inf]:
        fp = sum(1 for v, l in zip(s, y) if v >= t and not l)
        if fp <= allowed:
            best = max(best, sum(1 for v, l in zip(s, y) if v >= t and l) / P)
    return best


def random_pairs(rng, n, quantise=None):
    y = rng.random(n) < 0.5
    s = np.where(y, rng.normal(0.6, 0.2, n), rng.normal(0.2, 0.2, n))
    if quantise:
        s = np.round(s * quantise) / quantise  # lots of ties
    return s.astype(np.float64), y


# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed,n,folds,quantise", [(0, 60, 10, None), (1, 83, 10, None), (2, 40, 5, 10),
                                                     (3, 57, 10, 20), (4, 30, 3, 4)])
def test_kfold_matches_brute_force(seed, n, folds, quantise):
    rng = np.random.default_rng(seed)
    s, y = random_pairs(rng, n, quantise)
    res = kfold_accuracy(s, y, folds)
    accs, thrs = brute_kfold(list(s), list(y), folds)
    np.testing.assert_allclose(res["fold_accuracies"], accs, rtol=0, atol=1e-12)
    np.testing.assert_allclose(res["fold_thresholds"], thrs, rtol=0, atol=0)
    assert res["accuracy"] == pytest.approx(np.mean(accs), abs=1e-12)
    assert res["std"] == pytest.approx(np.std(accs), abs=1e-12)
    assert res["threshold"] == pytest.approx(np.mean(thrs), abs=1e-12)


def test_best_threshold_is_optimal_over_any_threshold():
    rng = np.random.default_rng(7)
    for quantise in (None, 10):
        s, y = random_pairs(rng, 200, quantise)
        t, correct = best_threshold(s, y)
        assert correct == int(np.sum((s >= t) == y))
        grid = np.concatenate([np.linspace(s.min() - 0.1, s.max() + 0.1, 2001), s])
        assert max(int(np.sum((s >= g) == y)) for g in grid) == correct


def test_threshold_midpoints_with_adjacent_floats():
    a = 0.5
    b = float(np.nextafter(a, 1.0))
    s = np.array([a, b, b])
    y = np.array([False, True, True])
    t, c = best_threshold(s, y)
    assert c == 3 and a < t <= b


def _insightface_calculate_roc_accuracy(emb1, emb2, issame, nrof_folds=10):
    """insightface recognition/eval/verification.py calculate_roc (accuracy part), verbatim logic."""
    thresholds = np.arange(0, 4, 0.01)
    nrof_pairs = len(issame)
    dist = np.sum(np.square(emb1 - emb2), 1)
    accuracy = np.zeros(nrof_folds)
    indices = np.arange(nrof_pairs)
    for fold_idx, test_set in enumerate(np.array_split(indices, nrof_folds)):
        train_set = np.setdiff1d(indices, test_set)

        def acc(th, d, a):
            pred = np.less(d, th)
            tp = np.sum(np.logical_and(pred, a))
            tn = np.sum(np.logical_and(~pred, ~a))
            return float(tp + tn) / d.size

        acc_train = np.array([acc(t, dist[train_set], issame[train_set]) for t in thresholds])
        best = np.argmax(acc_train)
        accuracy[fold_idx] = acc(thresholds[best], dist[test_set], issame[test_set])
    return accuracy


def test_matches_insightface_protocol_on_lattice_data():
    # cosines on a lattice whose distances 2-2c sit half-way between insightface's 0.01 grid points: the fixed
    # grid is then exact too, and both protocols must give identical fold accuracies.
    rng = np.random.default_rng(11)
    n = 600
    y = rng.random(n) < 0.5
    d = np.where(y, rng.integers(2, 12, n), rng.integers(6, 18, n)) * 0.1 + 0.005
    c = 1 - d / 2
    e1 = np.tile([1.0, 0.0], (n, 1))
    e2 = np.stack([c, np.sqrt(1 - c**2)], 1)
    ours = evaluate_embeddings(e1, e2, y, folds=10)
    theirs = _insightface_calculate_roc_accuracy(e1, e2, y)
    np.testing.assert_allclose(ours["fold_accuracies"], theirs, atol=1e-12)
    assert ours["accuracy"] == pytest.approx(theirs.mean()) and ours["std"] == pytest.approx(theirs.std())


@pytest.mark.parametrize("seed,quantise", [(0, None), (1, 10), (2, 5), (3, None)])
def test_eer_and_tpr_at_fpr_match_brute_force(seed, quantise):
    rng = np.random.default_rng(seed)
    s, y = random_pairs(rng, 150, quantise)
    eer, eer_t = equal_error_rate(s, y)
    assert eer == pytest.approx(brute_eer(list(s), list(y)), abs=1e-12)
    # the EER threshold is a realisable operating point bracketing the EER: FAR >= EER >= FRR there
    assert np.mean(s[~y] >= eer_t) >= eer - 1e-12 and np.mean(s[y] < eer_t) <= eer + 1e-12
    from synthfr.quality.metrics import eer as quality_eer  # the same implementation, genuine/impostor form

    assert quality_eer(s[y], s[~y]) == (eer, eer_t)
    for f in (0.0, 1e-3, 0.02, 0.05, 0.1, 0.5, 1.0):
        tpr, t = tpr_at_fpr(s, y, f)
        assert tpr == pytest.approx(brute_tpr_at_fpr(list(s), list(y), f), abs=1e-12)
        # the reported threshold realises that operating point
        assert np.mean(s[y] >= t) == pytest.approx(tpr)
        assert np.sum(s[~y] >= t) <= math.floor(f * (~y).sum() + 1e-9)
    fpr, tpr_c, thr = roc_curve(s, y)
    pts = brute_roc_points(list(s), list(y))
    np.testing.assert_allclose(np.stack([fpr, tpr_c], 1), np.array(pts), atol=1e-12)
    assert thr[0] == np.inf and np.all(np.diff(thr[1:]) < 0)


def test_eer_exact_cases():
    # perfectly separated: EER 0; fully inverted: EER 1; symmetric overlap
    s = np.array([0.9, 0.8, 0.2, 0.1])
    y = np.array([True, True, False, False])
    assert equal_error_rate(s, y)[0] == 0.0
    assert equal_error_rate(s, ~y)[0] == 1.0
    s2 = np.array([0.9, 0.5, 0.6, 0.1])  # one positive below one negative
    assert equal_error_rate(s2, y)[0] == pytest.approx(0.5)
    # no negatives: undefined
    assert math.isnan(equal_error_rate(s, np.ones(4, bool))[0])


def test_evaluate_embeddings_fields_and_cosine():
    rng = np.random.default_rng(5)
    n = 200
    e1 = rng.normal(size=(n, 16))
    y = np.arange(n) % 2 == 0
    e2 = np.where(y[:, None], e1 + 0.5 * rng.normal(size=(n, 16)), rng.normal(size=(n, 16))) * 3.0  # unnormalised
    res = evaluate_embeddings(e1, e2, y, folds=10)
    for k in ("accuracy", "std", "threshold", "eer"):
        assert isinstance(res[k], float)
    assert set(res["tpr_at_fpr"]) == {"1e-3", "1e-4"}
    assert res["pairs"] == n and res["positives"] == 100 and res["negatives"] == 100 and res["folds"] == 10
    s = cosine_similarities(e1, e2)
    ref = np.sum(e1 * e2, 1) / np.linalg.norm(e1, axis=1) / np.linalg.norm(e2, axis=1)
    np.testing.assert_allclose(s, ref, atol=1e-12)
    assert res["accuracy"] > 0.9
    # explicit fold ids equal the integer form
    res2 = evaluate_embeddings(e1, e2, y, folds=kfold_assignment(n, 10))
    assert res2["fold_accuracies"] == res["fold_accuracies"]


def test_kfold_assignment_matches_sklearn_sizes():
    for n, k in [(6000, 10), (83, 10), (10, 10), (7, 3)]:
        ids = kfold_assignment(n, k)
        ref = np.concatenate([np.full(len(p), i) for i, p in enumerate(np.array_split(np.arange(n), k))])
        assert np.array_equal(ids, ref)
