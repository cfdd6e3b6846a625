"""EmbeddingSpace: centring/whitening, exact inverse, persistence (no pickles)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from synthfr.spaces import EmbeddingSpace, normalize_rows, space_paths


def dlib_like(n=2000, d=32, seed=0, cap_deg=20.0):
    """Unit vectors in a cap around a mean direction (like dlib's embedding space)."""
    rng = np.random.default_rng(seed)
    mu = normalize_rows(rng.normal(size=(1, d)))[0]
    t = rng.normal(size=(n, d))
    t -= (t @ mu)[:, None] * mu
    t = normalize_rows(t) * np.tan(np.radians(cap_deg)) * np.abs(rng.normal(1, 0.3, size=(n, 1)))
    return normalize_rows(mu + t), mu


def test_fit_centres_the_cap():
    g, mu = dlib_like()
    raw = g @ g.T
    assert raw[np.triu_indices(len(g), 1)].mean() > 0.8
    sp = EmbeddingSpace.fit(g)
    s = sp.to_standard(g)
    assert np.allclose(np.linalg.norm(s, axis=1), 1, atol=1e-5)
    assert abs((s @ s.T)[np.triu_indices(len(g), 1)].mean()) < 0.05
    assert sp.info["mean_norm"] > 0.9 and sp.info["std_mean_pair_cos"] < 0.05


@pytest.mark.parametrize("whiten", [False, True])
def test_from_standard_is_exact_inverse(whiten):
    g, _ = dlib_like(d=16, n=600)
    sp = EmbeddingSpace.fit(g, whiten=whiten)
    s = sp.to_standard(g)
    back = sp.from_standard(s)
    assert np.allclose(back, g, atol=2e-4)
    # arbitrary standardised directions map to unit vectors that map back to themselves
    u = normalize_rows(np.random.default_rng(1).normal(size=(100, 16)))
    x = sp.from_standard(u)
    assert np.allclose(np.linalg.norm(x, axis=1), 1, atol=1e-5)
    assert np.allclose(sp.to_standard(x), u, atol=2e-4)


def test_identity_space_and_save_load(tmp_path):
    g, _ = dlib_like(d=8, n=100)
    ident = EmbeddingSpace.identity(8)
    assert ident.is_identity and np.allclose(ident.to_standard(g), g, atol=1e-6)
    for sp in (ident, EmbeddingSpace.fit(g), EmbeddingSpace.fit(g, whiten=True)):
        j, n = sp.save(tmp_path / "ids.npy")
        assert j.name == "ids.space.json" and n.name == "ids.space.npz"
        doc = json.loads(j.read_text())
        assert doc["format"].startswith("synthfr.embedding-space")
        sp2 = EmbeddingSpace.load(tmp_path / "ids.npy")
        assert np.allclose(sp2.to_standard(g), sp.to_standard(g), atol=1e-6)
        with np.load(n, allow_pickle=False):  # loads without pickle
            pass


def test_errors_are_helpful(tmp_path):
    sp = EmbeddingSpace.identity(8)
    with pytest.raises(ValueError, match="dimension"):
        sp.to_standard(np.ones((2, 4)))
    with pytest.raises(FileNotFoundError, match="synthfr sample"):
        EmbeddingSpace.load(tmp_path / "missing.npy")
    assert space_paths("a/b.space.json")[1].name == "b.space.npz"
