"""Image-level quality metrics against independent formulas and brute-force loops on small inputs:
Fréchet distance, precision/recall/density/coverage, the certainty-ratio quality score, classical MDS."""
from __future__ import annotations

import numpy as np
import pytest

from synthfr.quality import REGISTRY
from synthfr.quality.evaluate import evaluate_quality
from synthfr.quality.face_quality import certainty_ratio
from synthfr.quality.identity_map import classical_mds
from synthfr.quality.image_metrics import frechet_distance, prdc_values


def unit(x):
    x = np.asarray(x, dtype=np.float64)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


# -- Fréchet distance ------------------------------------------------------------------------------------------
def fd_via_product_eigenvalues(x, y):
    """Independent route: Tr (Σx Σy)^½ = Σ √λ(Σx Σy) from the eigenvalues of the non-symmetric product."""
    sx, sy = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    lam = np.linalg.eigvals(sx @ sy)
    tr = np.sqrt(np.clip(lam.real, 0, None)).sum()
    d = x.mean(0) - y.mean(0)
    return d @ d + np.trace(sx) + np.trace(sy) - 2 * tr


@pytest.mark.parametrize("seed", range(4))
def test_frechet_matches_product_eigenvalue_formula(seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(60, 6)) @ rng.normal(size=(6, 6))
    y = rng.normal(size=(45, 6)) @ rng.normal(size=(6, 6)) + rng.normal(size=6)
    assert frechet_distance(x, y)["fd"] == pytest.approx(fd_via_product_eigenvalues(x, y), rel=1e-8)


def test_frechet_closed_forms():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 5))
    shift = np.array([1.0, -2.0, 0.5, 0.0, 3.0])
    assert frechet_distance(x, x)["fd"] == pytest.approx(0.0, abs=1e-9)
    out = frechet_distance(x, x + shift)  # same covariance: only the mean term
    assert out["fd"] == pytest.approx(shift @ shift) and out["cov_term"] == pytest.approx(0.0, abs=1e-9)
    # diagonal covariances (a whitened sample, scaled): FD = Σ (σx − σy)²
    a = np.diag([1.0, 4.0, 9.0])
    b = np.diag([4.0, 1.0, 1.0])
    z = rng.normal(size=(500, 3))
    z = (z - z.mean(0)) @ np.linalg.inv(np.linalg.cholesky(np.cov(z, rowvar=False)).T)  # exactly white sample
    assert frechet_distance(z @ np.sqrt(a), z @ np.sqrt(b))["fd"] == pytest.approx(
        ((np.sqrt(np.diag(a)) - np.sqrt(np.diag(b))) ** 2).sum(), rel=1e-8)


def test_frechet_metric_reports_split_half_floor():
    rng = np.random.default_rng(1)
    ref = unit(rng.normal(size=(200, 8)))
    near = unit(rng.normal(size=(150, 8)))
    far = unit(rng.normal(size=(150, 8)) + 2.0)
    f_near = REGISTRY.get("frechet")(near, np.arange(150), reference=ref)
    f_far = REGISTRY.get("frechet")(far, np.arange(150), reference=ref)
    assert f_far["fd"] > 5 * f_near["fd"] and f_near["reference_split_half_fd"] > 0
    assert REGISTRY.get("frechet")(near, np.arange(150))["skipped"]


# -- precision / recall / density / coverage ----------------------------------------------------------------
def prdc_loop(real, fake, k):
    """Direct loops over points, as written in Naeem et al. 2020 (strict inequalities)."""
    def dist(a, b):
        return float(np.sqrt(((a - b) ** 2).sum()))

    def radius(s, i):
        return sorted(dist(s[i], s[j]) for j in range(len(s)) if j != i)[k - 1]

    rr = [radius(real, i) for i in range(len(real))]
    fr = [radius(fake, j) for j in range(len(fake))]
    prec = np.mean([any(dist(f, real[i]) < rr[i] for i in range(len(real))) for f in fake])
    rec = np.mean([any(dist(r, fake[j]) < fr[j] for j in range(len(fake))) for r in real])
    dens = sum(dist(f, real[i]) < rr[i] for f in fake for i in range(len(real))) / (k * len(fake))
    cov = np.mean([min(dist(real[i], f) for f in fake) < rr[i] for i in range(len(real))])
    return prec, rec, dens, cov


@pytest.mark.parametrize("k,n_real,n_fake,shift", [(1, 20, 15, 0.0), (3, 30, 25, 0.5), (5, 18, 40, 1.5)])
def test_prdc_matches_direct_loops(k, n_real, n_fake, shift):
    rng = np.random.default_rng(k)
    real = rng.normal(size=(n_real, 4))
    fake = 1.3 * rng.normal(size=(n_fake, 4)) + shift
    got = prdc_values(real, fake, k=k, chunk=7)  # a chunk smaller than the sets exercises the chunking
    want = prdc_loop(real, fake, k)
    assert [got[n] for n in ("precision", "recall", "density", "coverage")] == pytest.approx(want, abs=1e-12)


def test_prdc_separates_realism_from_diversity():
    rng = np.random.default_rng(0)
    real = unit(rng.normal(size=(400, 6)))
    collapsed = unit(real[:20] + 0.01 * rng.normal(size=(20, 6)))[rng.integers(0, 20, 400)]  # realistic, no variety
    out = REGISTRY.get("prdc")(collapsed, np.arange(400), reference=real, k=5)
    assert out["precision"] > 0.9 and out["coverage"] < 0.3 and out["recall"] < 0.3
    same = REGISTRY.get("prdc")(unit(rng.normal(size=(400, 6))), np.arange(400), reference=real, k=5)
    assert min(same["precision"], same["recall"], same["coverage"]) > 0.6 and 0.6 < same["density"] < 1.5


def test_prdc_balances_set_sizes():
    rng = np.random.default_rng(0)
    out = REGISTRY.get("prdc")(rng.normal(size=(30, 4)), np.arange(30), reference=rng.normal(size=(90, 4)))
    assert out["n_dataset"] == out["n_reference"] == 30
    out = REGISTRY.get("prdc")(rng.normal(size=(30, 4)), np.arange(30), reference=rng.normal(size=(90, 4)),
                               balance=False)
    assert out["n_reference"] == 90


def test_reference_errors_are_one_line():
    rng = np.random.default_rng(0)
    e, lab = unit(rng.normal(size=(40, 8))), np.repeat(np.arange(10), 4)
    with pytest.raises(ValueError, match=r"reference has 5 faces but needs at least 6 \(more than k=5\)") as ei:
        REGISTRY.get("prdc")(e, lab, reference=e[:5])
    assert "\n" not in str(ei.value)
    with pytest.raises(ValueError, match="reference embeddings are 16-D but the dataset's are 8-D"):
        REGISTRY.get("frechet")(e, lab, reference=unit(rng.normal(size=(40, 16))))
    with pytest.raises(ValueError, match="512-D but the dataset's are 8-D") as ei:  # through the whole evaluation
        evaluate_quality(e, lab, reference=rng.normal(size=(20, 512)))
    assert "same network" in str(ei.value)
    with pytest.raises(ValueError, match="needs at least 2"):
        REGISTRY.get("frechet")(e, lab, reference=e[:1])


# -- certainty-ratio face quality ---------------------------------------------------------------------------
def cr_loop(e, lab, seed, m):
    """Per image, by hand: leave-one-out own centre; nearest of the same random other classes as the metric."""
    e = unit(e)
    classes = sorted(set(lab.tolist()))
    rng = np.random.default_rng(seed)
    centre = {c: unit(e[lab == c].sum(0, keepdims=True))[0] for c in classes}
    others_of = {}
    for ci, c in enumerate(classes):  # the same draw order as the implementation (one draw per class, in order)
        others = np.delete(np.arange(len(classes)), ci)
        others_of[c] = rng.choice(others, size=m, replace=False) if m < len(others) else others
    out = []
    for i in range(len(e)):
        c = lab[i]
        mates = [j for j in range(len(e)) if lab[j] == c and j != i]
        if not mates:
            out.append(np.nan)
            continue
        own = e[mates].sum(0)
        ccs = e[i] @ own / np.linalg.norm(own)
        nn = max(e[i] @ centre[classes[j]] for j in others_of[c])
        out.append(ccs / (nn + 1 + 1e-9))
    return np.array(out)


@pytest.mark.parametrize("m", [3, 100])
def test_certainty_ratio_matches_loop(m):
    rng = np.random.default_rng(2)
    lab = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2, 3, 4, 4, 5, 5, 5])
    e = rng.normal(size=(6, 5))[lab] + 0.7 * rng.normal(size=(len(lab), 5))
    cr, _, _ = certainty_ratio(e, lab, other_classes=m, seed=7)
    np.testing.assert_allclose(cr, cr_loop(e, lab, 7, m), rtol=1e-6, equal_nan=True)  # float32 rows
    assert np.isnan(cr[9]) and np.isfinite(np.delete(cr, 9)).all()  # identity 3 has one image


def test_certainty_ratio_ranks_ambiguous_image_last():
    """Toy case: a clean image near its centre scores high, one halfway to another identity scores lowest."""
    rng = np.random.default_rng(0)
    centres = unit(rng.normal(size=(20, 32)))
    lab = np.repeat(np.arange(20), 6)
    e = centres[lab] + 0.05 * rng.normal(size=(120, 32))
    e[0] = centres[0] + centres[1]  # identity 0's first image looks half like identity 1
    out = REGISTRY.get("face_quality")(e, lab)
    scores = np.array(out["per_image"], dtype=float)
    assert out["lowest_rows"][0] == 0 and scores[0] < 0.5 < np.median(scores[1:])
    assert out["scored"] == 120 and sum(out["hist"]["counts"]) == 120


# -- classical MDS and the identity map ---------------------------------------------------------------------
def test_classical_mds_recovers_known_configuration():
    rng = np.random.default_rng(0)
    pts = rng.normal(size=(12, 2)) * [3.0, 1.0]
    d = np.sqrt(((pts[:, None] - pts[None]) ** 2).sum(-1))
    coords, w = classical_mds(d, 2)
    d2 = np.sqrt(((coords[:, None] - coords[None]) ** 2).sum(-1))
    np.testing.assert_allclose(d2, d, atol=1e-9)  # same configuration up to rotation/reflection/translation
    assert np.abs(w[2:]).max() < 1e-9 and coords.mean(0) == pytest.approx([0, 0], abs=1e-9)
    # orthogonal Procrustes: the centred truth maps onto the coordinates by a rotation/reflection
    a = pts - pts.mean(0)
    u, _, vt = np.linalg.svd(a.T @ coords)
    np.testing.assert_allclose(a @ u @ vt, coords, atol=1e-9)


def test_identity_map_keeps_planar_centre_geometry():
    """Identity centres on a great circle (a 2-D plane through the origin): the map keeps every chord distance."""
    ang = np.linspace(0, 1.5, 7)
    basis = np.linalg.qr(np.random.default_rng(0).normal(size=(10, 2)))[0]
    centres = np.stack([np.cos(ang), np.sin(ang)], 1) @ basis.T
    lab = np.repeat(np.arange(7), 3)
    out = REGISTRY.get("identity_map")(centres[lab], lab, reference=centres[:3], reference_labels=[0, 1, 2])
    xy = np.array(out["dataset"] + out["reference"])
    allc = np.concatenate([centres, centres[:3]])
    chord = np.sqrt(np.maximum(2 - 2 * allc @ allc.T, 0))
    np.testing.assert_allclose(np.sqrt(((xy[:, None] - xy[None]) ** 2).sum(-1)), chord, atol=1e-5)
    assert out["explained"] == pytest.approx(1.0) and out["reference_kind"] == "identity centres"


def test_worst_identities_find_planted_ones():
    rng = np.random.default_rng(0)
    centres = unit(rng.normal(size=(15, 16)))
    centres[4] = unit(centres[9:10] + 0.05 * rng.normal(size=(1, 16)))[0]  # identity 4 ~ identity 9
    lab = np.repeat(np.arange(15), 5)
    e = centres[lab] + 0.1 * rng.normal(size=(75, 16))
    e[lab == 11] += 1.2 * rng.normal(size=(5, 16))  # identity 11: scattered images
    out = REGISTRY.get("worst_identities")(e, lab, n=3)
    assert out["lowest_consistency"][0]["identity"] == 11
    assert {out["lowest_separability"][0]["identity"], out["lowest_separability"][0]["nearest"]} == {4, 9}
