"""Identity samplers: registry sweep, exactness against brute force, determinism, CLI outputs."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from synthfr.samplers import REGISTRY, create_sampler, sample_identities
from synthfr.samplers._codes import code_bound, gold_code
from synthfr.samplers.geometry import (cross_nn, greedy_keep, pair_stats, rejection_sample, sampled_pair_stats,
                                        welch_bound)

FAST = {"hyperface": {"time_budget": 1.0, "progress": False},
        "hyperface-alg1": {"iterations": 30, "progress": False},
        "hyperface-alg2": {"iterations": 30, "batch_size": 50, "progress": False},
        "vigface": {"epochs": 3, "progress": False}, "vec2face": {"tau": 0.5}}


def brute_max(x):
    g = x.astype(np.float64) @ x.astype(np.float64).T
    np.fill_diagonal(g, -2)
    return g.max(), g.max(1)


def unit(n, d, seed=0):
    x = np.random.default_rng(seed).normal(size=(n, d))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@pytest.mark.parametrize("name", REGISTRY.list())
def test_every_sampler_contract(name):
    gal = unit(300, 32, 1)
    s = create_sampler(name, **FAST.get(name, {}))
    x, st = s.sample(120, gallery=gal, seed=3, labels=np.arange(300) // 3)
    assert x.shape == (120, 32) and x.dtype == np.float32
    assert np.allclose(np.linalg.norm(x, axis=1), 1, atol=1e-5)
    assert st["n"] == 120 and st["dim"] == 32 and st["method"] == name and "config" in st
    if name != "vigface":  # vigface needs a gallery; others also work without one
        x2, _ = create_sampler(name, **FAST.get(name, {})).sample(50, dim=16, seed=3)
        assert x2.shape == (50, 16)


@pytest.mark.parametrize("name", ["uniform", "vec2face", "vigface"])
def test_deterministic_for_a_seed(name):
    gal = unit(200, 16, 2)
    a, _ = create_sampler(name, **FAST.get(name, {})).sample(60, gallery=gal, seed=5)
    b, _ = create_sampler(name, **FAST.get(name, {})).sample(60, gallery=gal, seed=5)
    c, _ = create_sampler(name, **FAST.get(name, {})).sample(60, gallery=gal, seed=6)
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_pair_stats_matches_brute_force():
    x = unit(700, 24)
    st = pair_stats(x, chunk=128)
    m, nn = brute_max(x)
    assert st["max_cos"] == pytest.approx(m, abs=1e-5)
    assert np.allclose(st["nn_cos"], nn, atol=1e-5)
    i, j = st["argmax"]
    assert x[i] @ x[j] == pytest.approx(m, abs=1e-5)
    sp = sampled_pair_stats(x, k=100, chunk=64)
    assert sp["max_cos"] <= m + 1e-6 and sp["sampled"] == 100
    y = unit(50, 24, 1)
    v, idx = cross_nn(y, x, chunk=100)
    full = y @ x.T
    assert np.allclose(v, full.max(1), atol=1e-5) and np.array_equal(idx, full.argmax(1))


def test_greedy_keep_is_sequential_greedy():
    x = torch.as_tensor(unit(300, 8))
    g = x @ x.T
    keep = greedy_keep(g, 0.5).numpy()
    ref = []
    for i in range(300):
        if all(float(g[i, j]) <= 0.5 for j in ref):
            ref.append(i)
    assert np.flatnonzero(keep).tolist() == ref


@pytest.mark.parametrize("precision,dim,tau", [("fp32", 16, 0.5), ("bf16", 256, 0.2)])
def test_vec2face_exact_tau_guarantee_brute_force(precision, dim, tau):
    """Independent float64 brute-force check: no kept pair exceeds tau, and rejections happened."""
    gal = unit(400, dim, 3) * np.linspace(0.5, 1.5, dim)  # an anisotropic (PCA-elongated) gallery
    s = create_sampler("vec2face", tau=tau, precision=precision, block=256)
    x, st = s.sample(150 if dim == 16 else 500, gallery=gal, seed=0)
    m, _ = brute_max(x)
    assert m <= tau + 1e-6
    assert st["rejected"] > 0 and st["check_precision"] == precision
    assert st["rejected"] == st["rejected_vs_kept"] + st["rejected_in_block"]


def test_rejection_equals_sequential_greedy_stream():
    gen = torch.Generator().manual_seed(0)
    stream = torch.nn.functional.normalize(torch.randn(5000, 8, generator=gen), dim=1)
    pos = [0]

    def propose(m):
        out = stream[pos[0]:pos[0] + m]
        pos[0] += m
        return out
    kept, st = rejection_sample(propose, 40, 8, 0.6, block=64, precision="fp32")
    ref = []
    for v in stream:
        if all(float(v @ r) <= 0.6 for r in ref):
            ref.append(v)
        if len(ref) == 40:
            break
    assert torch.allclose(kept, torch.stack(ref))


def test_codes_certified_bound():
    for n, d in [(600, 128), (500, 512)]:
        x = gold_code(n, d, seed=1).numpy()
        m, _ = brute_max(x)
        assert m <= code_bound(d, n) + 1e-5
        assert np.allclose(np.linalg.norm(x, axis=1), 1, atol=1e-5)
    assert code_bound(100, 10) is None and code_bound(512, 10**7) == pytest.approx(0.125, abs=1e-3)


def test_hyperface_packs_better_than_uniform_and_alg1():
    u, _ = create_sampler("uniform").sample(400, dim=32, seed=0)
    # equal step counts (a time budget would make the test depend on the machine's load)
    h, st = create_sampler("hyperface", time_budget=None, iterations=150, progress=False,
                           init="random").sample(400, dim=32, seed=0)
    a1, _ = create_sampler("hyperface-alg1", iterations=150, progress=False).sample(400, dim=32, seed=0)
    mu, mh, ma = brute_max(u)[0], brute_max(h)[0], brute_max(a1)[0]
    assert mh < 0.8 * mu and mh < ma
    assert st["steps"] == 150 and mh >= 0.0  # > 2·D points: some pair has a non-negative cosine


def test_hyperface_regulariser_keeps_points_near_gallery():
    gal = unit(300, 16, 0) * np.linspace(0.3, 1.5, 16)  # a (standardised-like) anisotropic gallery
    gal /= np.linalg.norm(gal, axis=1, keepdims=True)
    near, sep = [], []
    for alpha in (0.0, 1.0, 5.0):
        x, _ = create_sampler("hyperface", alpha=alpha, iterations=60, time_budget=None,
                              progress=False).sample(100, gallery=gal, seed=0)
        near.append(cross_nn(x, gal)[0].mean())
        sep.append(brute_max(x)[0])
    assert near[0] < near[1] < near[2] and sep[0] < sep[2]


def test_hyperface_lsh_mode_improves_random_start():
    x0, _ = create_sampler("uniform").sample(3000, dim=24, seed=0)
    x, st = create_sampler("hyperface", init="random", dense_max=100, pairs_max=1000, large_mode="lsh", bucket_size=256,
                           iterations=8, time_budget=None, progress=False).sample(3000, dim=24, seed=0)
    assert st["mode"] == "lsh" and st["rounds"] == 8
    assert pair_stats(x)["mean_nn_cos"] < pair_stats(x0)["mean_nn_cos"]


def test_collect_pairs_matches_brute_force():
    from synthfr.samplers.hyperface import _collect_pairs

    x = unit(700, 16, 4)
    _, rows = brute_max(x)
    g = x.astype(np.float64) @ x.astype(np.float64).T
    want = {(i, j) for i, j in zip(*np.nonzero(np.triu(g, 1) > 0.5))}
    i, j, m, _ = _collect_pairs(torch.from_numpy(x), 0.5, torch.float32, rows=128, cols=256)
    assert set(zip(i.tolist(), j.tolist())) == want and len(i) == len(want)
    i2, j2, _, _ = _collect_pairs(torch.from_numpy(x), 0.5, torch.float32, rows=300, cols=64)  # rows > cols
    assert set(zip(i2.tolist(), j2.tolist())) == want and len(i2) == len(want)
    assert m == pytest.approx(rows.max(), abs=1e-5)


def test_hyperface_pairs_mode_beats_uniform():
    # neighbour-list mode: 2,000 points, exact re-listing passes, equal step count (no time budget)
    u, _ = create_sampler("uniform").sample(2000, dim=24, seed=0)
    x, st = create_sampler("hyperface", init="random", dense_max=100, pairs_max=400000, iterations=120, list_steps=40,
                           time_budget=None, progress=False).sample(2000, dim=24, seed=0)
    assert st["mode"] == "pairs" and st["steps"] == 120 and st["passes"] >= 3
    mx = brute_max(x)[0]
    # the returned iterate's maximum is the one its last measuring pass saw (up to float rounding)
    assert mx < 0.8 * brute_max(u)[0]
    assert mx == pytest.approx(min(h[2] for h in st["history"]), abs=1e-5)


def test_vigface_virtual_prototypes_avoid_real_classes():
    rng = np.random.default_rng(0)
    centres = unit(30, 16, 5)
    lab = np.repeat(np.arange(30), 10)
    emb = centres[lab] + 0.15 * rng.normal(size=(300, 16))
    x, st = create_sampler("vigface", epochs=30, progress=False).sample(20, gallery=emb.astype(np.float32), seed=0,
                                                                        labels=lab)
    assert np.mean(st["virtual_to_nearest_real_centre"]) < np.mean(st["real_to_nearest_real_centre"])


def test_sample_identities_outputs(tmp_path):
    gal = unit(500, 32, 0) + 3.0 * unit(1, 32, 1)  # dlib-like cap
    gal /= np.linalg.norm(gal, axis=1, keepdims=True)
    np.save(tmp_path / "gal.npy", gal.astype(np.float32))
    x, st = sample_identities("vec2face", 60, gallery=tmp_path / "gal.npy", seed=0, out=tmp_path / "ids.npy",
                              json_path=tmp_path / "s.json")
    for k in ("n", "dim", "max_cos", "mean_nn_cos", "seconds", "gallery_mean_nn_cos"):
        assert k in st
    assert st["max_cos"] <= 0.3 + 1e-6 and st["sampler"]["rejected"] >= 0
    from synthfr.spaces import EmbeddingSpace

    sp = EmbeddingSpace.load(tmp_path / "ids.npy")
    std = np.load(tmp_path / "ids.std.npy")
    assert np.allclose(sp.to_standard(np.load(tmp_path / "ids.npy")), std, atol=1e-4)
    assert (tmp_path / "ids.config.yaml").is_file() and json.loads((tmp_path / "s.json").read_text())["n"] == 60
    # mapped back into the gallery's cap
    assert (x @ gal.mean(0)).mean() > 0.5


def test_cli_sample(tmp_path):
    from synthfr.app.cli import main

    rc = main(["sample", "uniform", "--n", "50", "--dim", "8", "--out", str(tmp_path / "u.npy"),
               "--json", str(tmp_path / "u.json")])
    assert rc == 0 and np.load(tmp_path / "u.npy").shape == (50, 8)
    assert main(["sample", "uniform", "--n", "5"]) == 2  # usage error: no --dim: helpful error, not a traceback


# ---- HyperFace's paper algorithms (issue 14) ------------------------------------------------------------------
def test_row_adam_on_all_rows_is_torch_adam():
    from synthfr.samplers.hyperface_paper import RowAdam

    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(6, 5, generator=g)
    a, p = x0.clone(), torch.nn.Parameter(x0.clone())
    ref = torch.optim.Adam([p], lr=0.01)
    mine = RowAdam(6, 5, lr=0.01)
    for _ in range(7):
        grad = torch.randn(6, 5, generator=g)
        p.grad = grad.clone()
        ref.step()
        mine.step(a, None, grad)
    torch.testing.assert_close(a, p.detach(), rtol=1e-5, atol=1e-6)
    # on a subset of rows: those rows take exactly the update plain Adam would give them alone, the rest nothing
    b, q = x0.clone(), torch.nn.Parameter(x0[[1, 4]].clone())
    ref, mine = torch.optim.Adam([q], lr=0.01), RowAdam(6, 5, lr=0.01)
    for _ in range(3):
        grad = torch.randn(2, 5, generator=g)
        q.grad = grad.clone()
        ref.step()
        mine.step(b, torch.tensor([1, 4]), grad)
    torch.testing.assert_close(b[[1, 4]], q.detach(), rtol=1e-5, atol=1e-6)
    assert torch.equal(b[[0, 2, 3, 5]], x0[[0, 2, 3, 5]])


@pytest.mark.parametrize("gallery", [False, True])
def test_hyperface_alg2_rows_outside_the_batch_never_move(gallery):
    s = create_sampler("hyperface-alg2", iterations=40, batch_size=10, progress=False)
    seen: list = []
    moved_outside = []

    def hook(it, sub, x):
        if seen:
            prev = seen[-1]
            outside = torch.ones(len(x), dtype=torch.bool)
            outside[sub] = False
            moved_outside.append(int((x[outside] != prev[outside]).any(1).sum()))
            assert int((x[sub] != prev[sub]).any(1).sum()) > 0  # the batch itself does move
        seen.append(x.clone())

    s.on_step = hook
    s.sample(50, dim=16, gallery=unit(30, 16, 2) if gallery else None, seed=1)
    assert len(seen) == 40 and moved_outside == [0] * 39  # exactly equal, bit for bit, at every step


def test_hyperface_paper_defaults_and_cosine_regulariser():
    from synthfr.samplers.hyperface_paper import HyperFacePaperConfig

    c = HyperFacePaperConfig()
    assert c.iterations == 100000 and c.regularizer == "cosine"  # the paper's 100,000 iterations and distance
    assert (c.lr, c.lr_decay, c.lr_step, c.alpha) == (0.01, 0.75, 5000, 0.5)
    s = create_sampler("hyperface-alg1")
    xb = torch.nn.functional.normalize(torch.randn(4, 8), dim=1)
    gal = torch.nn.functional.normalize(torch.randn(3, 8), dim=1)
    nn = torch.tensor([2, 0, 0, 1])
    cos = float((xb[0] * xb[3]).sum() + 0.5 * (1 - (xb * gal[nn]).sum(1)).mean())
    assert float(s._loss(xb, 0, 3, gal, nn, 0.5)) == pytest.approx(cos, abs=1e-6)
    e = create_sampler("hyperface-alg1", regularizer="euclidean")
    euc = float((xb[0] * xb[3]).sum() + 0.5 * (xb - gal[nn]).norm(dim=1).mean())
    assert float(e._loss(xb, 0, 3, gal, nn, 0.5)) == pytest.approx(euc, abs=1e-6)
    with pytest.raises(ValueError, match="regularizer"):
        create_sampler("hyperface-alg1", regularizer="l1", iterations=1, progress=False).sample(5, dim=4)


def test_standardize_auto_centres_cap_galleries_only(tmp_path):
    """ArcFace-like galleries are used as they are (the papers); a dlib-like cap is centred; both are options."""
    arc = unit(400, 32, 5)                                   # mean cosine ≈ 0: ArcFace-like
    cap = unit(400, 32, 6) * 0.3 + np.eye(32)[0]             # all faces in a cap around e0: dlib-like
    cap = (cap / np.linalg.norm(cap, axis=1, keepdims=True)).astype(np.float32)
    _, st = sample_identities("uniform", 20, gallery=arc, seed=0)
    assert st["standardize"]["used"] == "none" and st["space"].startswith("identity")
    assert st["standardize"]["gallery_mean_norm"] < 0.5
    _, st = sample_identities("uniform", 20, gallery=cap, seed=0)
    assert st["standardize"]["used"] == "center" and st["standardize"]["gallery_mean_norm"] > 0.9
    _, st = sample_identities("uniform", 20, gallery=arc, seed=0, standardize="center")
    assert st["standardize"]["used"] == "center" and st["space"] == "standardised"
    _, st = sample_identities("uniform", 20, gallery=cap, seed=0, standardize=False)
    assert st["standardize"]["used"] == "none"
    with pytest.raises(ValueError, match="auto, center or none"):
        sample_identities("uniform", 20, gallery=cap, seed=0, standardize="zca")
    # the paper samplers see the raw ArcFace gallery: their gallery term equals the raw-space cosine
    x, st = sample_identities("hyperface-alg1", 30, gallery=arc, seed=0, iterations=5, progress=False)
    assert st["gallery_mean_nn_cos"] == pytest.approx(float(cross_nn(x, arc)[0].mean()), abs=1e-5)


def test_vec2face_proposal_pca_needs_a_gallery():
    gal = unit(300, 16, 3) * np.linspace(0.2, 2.0, 16)
    _, st = create_sampler("vec2face", proposal="pca", tau=0.9).sample(20, gallery=gal, seed=0)
    assert st["proposal"] == "pca-gaussian"
    _, st = create_sampler("vec2face", proposal="isotropic", tau=0.9).sample(20, gallery=gal, seed=0)
    assert st["proposal"] == "isotropic"
    with pytest.raises(ValueError, match="needs a gallery"):
        create_sampler("vec2face", proposal="pca").sample(20, dim=16, seed=0)


def test_time_budget_none_is_honoured_and_reproducible(monkeypatch):
    """`time_budget: null` (configs/cpu-experiment.yaml) runs every iteration whatever the clock says: the same
    identities on a slow or busy machine. It was once dropped as "unset", so the 60 s default's wall clock
    steered the schedule of the first steps and two identical runs differed by ~1e-3."""
    from synthfr.samplers.hyperface import _common

    def run():
        x, st = sample_identities("hyperface", 40, dim=8, seed=0, iterations=30, time_budget=None, progress=False)
        return x, st

    x0, st = run()
    assert st["sampler"]["config"]["time_budget"] is None
    t = [0.0]

    def slow() -> float:  # every clock reading 5 s later: a 60 s budget would steer the steps and stop early
        t[0] += 5.0
        return t[0]

    monkeypatch.setitem(_common.CLOCKS, "wall", slow)
    x1, _ = run()
    assert np.array_equal(x0, x1)
    x2, st2 = sample_identities("hyperface", 40, dim=8, seed=0, iterations=30, progress=False)  # the default: 60 s
    assert st2["sampler"]["config"]["time_budget"] == 60.0 and not np.array_equal(x0, x2)
