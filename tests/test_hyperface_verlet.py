"""HyperFace Verlet mode (issue 18): the listing pass and re-scans against brute force, the rounding margin, the
path bound and the certificate (an upper bound of the exact all-pairs maximum)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from synthfr.samplers import create_sampler, sample_stats
from synthfr.samplers.geometry import pair_stats
from synthfr.samplers.hyperface._common import gram_margin, tile_hits
from synthfr.samplers.hyperface._lsh import split_keys
from synthfr.samplers.hyperface._pairs import hinge_steps
from synthfr.samplers.hyperface._verlet import GramCopy, scan_rows, scan_upper


def unit(n, d, seed=0):
    x = np.random.default_rng(seed).normal(size=(n, d))
    return torch.from_numpy((x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32))


def brute(x, t):
    g = (x.double() @ x.double().T).float()
    i, j = torch.triu_indices(len(x), len(x), 1)
    keep = g[i, j] > t
    return set(zip(i[keep].tolist(), j[keep].tolist()))


def as_set(keys, n):
    i, j = split_keys(keys, n)
    return set(zip(i.tolist(), j.tolist()))


@pytest.mark.parametrize("cols", [64, 128, 100, 640])
def test_tile_hits_equal_a_plain_scan(cols):
    g = torch.randn(37, cols)
    for t in (1.5, 2.5, 9.0):
        r, c = tile_hits(g, t)
        nz = (g > t).nonzero()
        assert torch.equal(r, nz[:, 0]) and torch.equal(c, nz[:, 1])  # same entries, same (row-major) order


def test_scan_upper_and_scan_rows_equal_brute_force():
    x = unit(900, 12, 1)
    t = 0.6
    want = brute(x, t)
    for rows, cols in ((64, 128), (100, 64), (2048, 16384)):
        keys, done = scan_upper(x, t, rows, cols)
        assert done == 900 and as_set(keys, 900) == want and torch.equal(keys, torch.sort(keys).values)
    # an early stop covers exactly the rows it reports (their pairs with every later row)
    calls = []
    keys, done = scan_upper(x, t, 128, 256, stop=lambda: len(calls) >= 3, on_rows=calls.append)
    assert done == 384 and as_set(keys, 900) == {p for p in want if p[0] < 384}
    idx = torch.tensor([5, 17, 400, 899])
    got = as_set(torch.unique(scan_rows(x, idx, t, 3, 128)), 900)
    assert got == {p for p in want if p[0] in idx.tolist() or p[1] in idx.tolist()}


def test_gram_margin_bounds_the_bfloat16_error():
    x = unit(2000, 512, 2)
    exact = x.double() @ x.double().T
    xb = x.to(torch.bfloat16)
    err = float(((xb @ xb.T).double() - exact).abs().max())
    assert err <= gram_margin(torch.bfloat16, 512)
    assert gram_margin(torch.float32, 512) < 1e-4 < gram_margin(torch.bfloat16, 512) < 0.02


def test_int8_copy_margin_is_rigorous_and_its_scans_complete():
    x = unit(1500, 256, 4)
    gc = GramCopy(x, "int8")
    q = gc.q.int()
    approx = (q @ q.T).double() / gc.s ** 2
    exact = x.double() @ x.double().T
    assert float((approx - exact).abs().max()) <= gc.margin < 0.05
    t = 0.2
    keys, done = scan_upper(gc, t, 256, 512)
    got = as_set(keys, 1500)
    assert brute(x, t + gc.margin) <= got  # every pair surely above t is listed ...
    assert all(exact[i, j] > t - gc.margin for i, j in got)  # ... and none surely below it
    # rows that move are re-quantised: the margin still bounds them (a row past the scale is clipped)
    x[:10] = torch.nn.functional.normalize(x[:10] + torch.eye(256)[:10] * 3, dim=1)
    gc.update(torch.arange(10))
    q = gc.q.int()
    assert float(((q @ q.T).double() / gc.s ** 2 - x.double() @ x.double().T).abs().max()) <= gc.margin
    idx = torch.tensor([0, 3, 700])
    rows = as_set(torch.unique(scan_rows(gc, idx, t, 2, 256)), 1500)
    assert {p for p in brute(x, t + gc.margin) if p[0] in idx.tolist() or p[1] in idx.tolist()} <= rows


def test_hinge_steps_path_bounds_every_displacement():
    x = unit(400, 8, 3)
    x0 = x.clone()
    cfg = create_sampler("hyperface").config
    i, j = torch.triu_indices(400, 400, 1)
    c = (x[i] * x[j]).sum(1)
    top = c > 0.8
    path = torch.zeros(400)
    steps, _ = hinge_steps(cfg, x, i[top], j[top], floor=0.5, max_steps=30, gap_at=lambda s: 0.05,
                           stop=lambda s: False, steps=0, path=path)
    moved = (x - x0).norm(dim=1)
    assert steps > 0 and bool((moved <= path + 1e-6).all()) and float(moved.max()) > 0
    assert bool((path[moved == 0] == 0).all())  # rows outside the list neither move nor gain path


def _verlet(**kw):
    opts = dict(init="random", dense_max=10, pairs_max=100, iterations=6, time_budget=None, progress=False,
                verlet_steps=20, verlet_pairs=8.0)
    opts.update(kw)
    return create_sampler("hyperface", **opts)


@pytest.mark.parametrize("n,d,kind", [(3000, 16, "float32"), (4000, 64, "float32"), (3000, 256, "bfloat16"),
                                      (3000, 256, "int8")])
def test_verlet_certificate_bounds_the_exact_maximum(n, d, kind):
    x, st = _verlet(verlet_dtype=kind).sample(n, dim=d, seed=0)
    exact = pair_stats(x)["max_cos"]
    assert st["mode"] == "verlet" and st["pass_complete"] and st["steps"] > 0
    assert st["neighbour_list_max_cos"] <= exact + 1e-6 <= st["certified_max_cos"] + 2e-6
    u = pair_stats(create_sampler("uniform").sample(n, dim=d, seed=0)[0])["max_cos"]
    assert exact < u


def test_verlet_deterministic_and_reported_by_sample_identities():
    a, _ = _verlet().sample(2000, dim=32, seed=0)
    b, _ = _verlet().sample(2000, dim=32, seed=0)
    c, _ = _verlet().sample(2000, dim=32, seed=1)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    _, out = __import__("synthfr.samplers", fromlist=["sample_identities"]).sample_identities(
        "hyperface", 2000, dim=32, seed=0, check="sampled", sample_k=300, init="random", dense_max=10,
        pairs_max=100, iterations=3, time_budget=None, progress=False)
    assert out["sampler"]["mode"] == "verlet"
    assert out["certified_max_cos"] >= out["max_cos"] >= out["sampled_max_cos"]
    assert "upper bound" in out["certified"]
    assert sample_stats(np.eye(3, dtype=np.float32), check="none", certified_max=0.5)["certified_max_cos"] == 0.5


def test_verlet_pass_cut_by_the_budget_certifies_nothing():
    _, st = _verlet(iterations=None, time_budget=1e-9).sample(3000, dim=16, seed=0)
    assert not st["pass_complete"] and "certified_max_cos" not in st and st["steps"] == 0


def test_large_mode_validated():
    with pytest.raises(ValueError, match="large_mode"):
        _verlet(large_mode="faiss").sample(300, dim=8, seed=0)
