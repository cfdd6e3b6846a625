"""HyperFace packer at scale (issue 18): LSH neighbour lists vs brute force, the sampled check, chunking
invariance, determinism, the device-generic (bfloat16 Gram) path and the dense mode's polish."""
from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from synthfr.samplers import create_sampler, sample_stats
from synthfr.samplers.geometry import pair_stats, sampled_pair_stats
from synthfr.samplers.hyperface import _lsh, _pairs
from synthfr.samplers.hyperface._common import list_threshold, split_keys
from synthfr.samplers.hyperface._lsh import bucket_pairs, lsh_codes, lsh_table


def unit(n, d, seed=0):
    x = np.random.default_rng(seed).normal(size=(n, d))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def brute_pairs(x, t):
    g = x.astype(np.float64) @ x.astype(np.float64).T
    i, j = np.nonzero(np.triu(g, 1) > t)
    return set(zip(i.tolist(), j.tolist())), g


def test_lsh_tables_find_the_true_close_pairs():
    # 4,000 points in 16-D: the 0.3 % closest pairs (cos > t) by brute force; 40 LSH tables of 64-point runs
    # (1/62 of the all-pairs work each) must find nearly all of them, and never report a pair below t
    x = torch.from_numpy(unit(4000, 16, 1))
    g = x.double() @ x.double().T
    t = float(torch.quantile(g[torch.triu_indices(4000, 4000, 1).unbind()].float()[::7], 0.997))
    want, _ = brute_pairs(x.numpy(), t)
    gen = torch.Generator().manual_seed(0)
    keys = torch.unique(torch.cat([lsh_table(x, t, (8, 2), 64, gen) for _ in range(40)]))
    i, j = split_keys(keys, 4000)
    got = set(zip(i.tolist(), j.tolist()))
    assert got <= want  # exact float32 blocks: every reported pair is above t
    recall = len(got) / len(want)
    assert recall > 0.9, recall
    # far better than the same work spent on random pairs (40 × 64/4000 ≈ 0.64 of pairs at most)
    one = torch.unique(lsh_table(x, t, (8, 2), 64, torch.Generator().manual_seed(1)))
    assert len(one) / len(want) > 5 * 64 / 4000


def test_lsh_codes_deterministic_and_balanced():
    x = torch.from_numpy(unit(5000, 32, 2))
    a = lsh_codes(x, (16, 4), torch.Generator().manual_seed(3))
    b = lsh_codes(x, (16, 4), torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and int(a.max()) < 32 * 8
    assert len(torch.unique(a)) > 100  # the codes spread the points over many buckets


def test_bucket_pairs_chunking_invariant():
    # memory-bounded batching (block = buckets per batched product) gives exactly the unbatched result
    x = torch.from_numpy(unit(1000, 12, 3))
    order = torch.randperm(1000, generator=torch.Generator().manual_seed(0))
    ref = torch.sort(bucket_pairs(x, order, 0.4, 70, block=10_000)).values
    for block in (1, 3, 7):
        assert torch.equal(torch.sort(bucket_pairs(x, order, 0.4, 70, block=block)).values, ref)
    # and equals brute force inside every run of 70 consecutive points (the remainder run included)
    g = x.double() @ x.double().T
    want = set()
    for a in range(0, 1000, 70):
        run = order[a:a + 70].tolist()
        for p in range(len(run)):
            for q in range(p + 1, len(run)):
                if g[run[p], run[q]] > 0.4:
                    want.add((min(run[p], run[q]), max(run[p], run[q])))
    i, j = split_keys(ref, 1000)
    assert set(zip(i.tolist(), j.tolist())) == want


def test_list_threshold_matches_brute_force_count():
    x = torch.from_numpy(unit(2000, 16, 4))
    t = list_threshold(x, 3.0, seed=0, rows=2000)  # every row sampled: exact
    want, _ = brute_pairs(x.numpy(), t)
    assert abs(len(want) - 3.0 * 2000) <= 2


def test_hinge_steps_chunking_invariant(monkeypatch):
    x0 = torch.from_numpy(unit(800, 16, 5))
    pi, pj, _, _ = _pairs.collect_pairs(x0, 0.5, torch.float32)
    cfg = create_sampler("hyperface").config
    outs = []
    for chunk in (1 << 18, 37):
        monkeypatch.setattr(_pairs, "PAIR_CHUNK", chunk)
        x = x0.clone()
        _pairs.hinge_steps(cfg, x, pi, pj, floor=0.4, max_steps=10, gap_at=lambda s: 0.05,
                           stop=lambda s: False, steps=0)
        outs.append(x)
    assert torch.allclose(outs[0], outs[1], atol=1e-6)
    assert not torch.equal(outs[0], x0)
    moved = (outs[0] - x0).norm(dim=1) > 0
    listed = torch.zeros(800, dtype=torch.bool)
    listed[pi] = listed[pj] = True
    assert not bool((moved & ~listed).any())  # only listed points move


def test_sampled_check_equals_brute_force_when_sample_is_everything():
    x = unit(600, 16, 6)
    full = pair_stats(x)
    st = sampled_pair_stats(x, k=600, seed=3, chunk=97)
    assert st["max_cos"] == pytest.approx(full["max_cos"], abs=1e-6)
    assert np.allclose(np.sort(st["nn_cos"]), np.sort(full["nn_cos"]), atol=1e-6)
    out = sample_stats(x, check="sampled", sample_k=600, seed=3, neighbour_list_max=0.1)
    assert out["max_cos"] == pytest.approx(full["max_cos"], abs=1e-6) and out["sampled_max_cos"] == out["max_cos"]
    assert "neighbour-list" in out["check"] and "randperm" in out["check_sample"]
    out = sample_stats(x, check="sampled", sample_k=50, seed=3, neighbour_list_max=2.0)
    assert out["max_cos"] == 2.0 and out["neighbour_list_max_cos"] == 2.0  # the larger of the two


def _lsh_sampler(**kw):
    opts = dict(init="random", dense_max=10, pairs_max=100, large_mode="lsh", bucket_size=64, lsh_dims=(8, 2), lsh_tables=3,
                lsh_steps=10, iterations=6, time_budget=None, progress=False)
    opts.update(kw)
    return create_sampler("hyperface", **opts)


def test_lsh_mode_deterministic_per_seed_and_improves():
    a, st = _lsh_sampler().sample(3000, dim=16, seed=0)
    b, _ = _lsh_sampler().sample(3000, dim=16, seed=0)
    c, _ = _lsh_sampler().sample(3000, dim=16, seed=1)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert st["mode"] == "lsh" and st["rounds"] == 6 and st["tables"] == 18 and st["steps"] > 0
    u, _ = create_sampler("uniform").sample(3000, dim=16, seed=0)
    pa, pu = pair_stats(a), pair_stats(u)
    assert pa["max_cos"] < pu["max_cos"] and np.quantile(pa["nn_cos"], 0.99) < np.quantile(pu["nn_cos"], 0.99)
    # the reported neighbour-list maximum is exact for the returned vectors and below the all-pairs maximum
    assert st["neighbour_list_max_cos"] <= pa["max_cos"] + 1e-6


def test_lsh_mode_bfloat16_gram_path():
    # the path `--device cuda` takes (bfloat16 Gram blocks, tensors on x's device), run on the CPU
    x, st = _lsh_sampler(gram_dtype="bfloat16", device="cpu").sample(2000, dim=32, seed=0)
    assert st["mode"] == "lsh" and st["device"] == "cpu" and np.isfinite(st["neighbour_list_max_cos"])
    assert np.allclose(np.linalg.norm(x, axis=1), 1, atol=1e-5)
    y, _ = create_sampler("hyperface", init="random", dense_max=3000, gram_dtype="bfloat16", iterations=20,
                          time_budget=None, progress=False).sample(500, dim=32, seed=0)
    assert pair_stats(y)["max_cos"] < pair_stats(create_sampler("uniform").sample(500, dim=32, seed=0)[0])["max_cos"]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_modes_on_cuda():
    for kw in ({"dense_max": 3000}, {"dense_max": 10, "pairs_max": 3000}, {"dense_max": 10, "pairs_max": 100}):
        x, st = create_sampler("hyperface", init="random", device="cuda", iterations=6, time_budget=None,
                               progress=False, **kw).sample(2000, dim=64, seed=0)
        assert st["device"] == "cuda" and x.shape == (2000, 64)


def test_dense_polish_phase_and_lsh_sample_identities(tmp_path):
    # dense + polish: steps add up to the iteration count and the result is at least as good as its dense part
    x, st = create_sampler("hyperface", init="random", iterations=120, time_budget=None, polish=0.5,
                           list_steps=20, progress=False).sample(600, dim=24, seed=0)
    assert st["mode"] == "dense+polish" and st["steps"] == 120 and st["dense_steps"] == 60
    assert pair_stats(x)["max_cos"] <= st["dense_max_cos"] + 1e-5
    # the JSON of `synthfr sample ... --check sampled` names the sample and adds the neighbour-list maximum
    _, out = __import__("synthfr.samplers", fromlist=["sample_identities"]).sample_identities(
        "hyperface", 2000, dim=16, seed=0, check="sampled", sample_k=300, init="random", dense_max=10,
        pairs_max=100, large_mode="lsh", bucket_size=64, lsh_dims=[8, 2], iterations=3, time_budget=None, progress=False)
    assert out["sampler"]["mode"] == "lsh" and "neighbour_list_max_cos" in out
    assert out["max_cos"] == max(out["sampled_max_cos"], out["neighbour_list_max_cos"])


def test_lsh_module_has_no_all_pairs_product():
    # the LSH mode must never form an N × N or N × chunk product: only batched bucket blocks and row samples
    import inspect

    src = inspect.getsource(_lsh.run_lsh)
    assert "collect_pairs" not in src and "max_cos(" not in src.replace("neighbour_list_max_cos", "")


def test_gap_schedules():
    from synthfr.samplers.hyperface._dense import gap_schedule

    for kind in ("linear", "geometric"):
        cfg = create_sampler("hyperface", gap_schedule=kind).config
        assert gap_schedule(cfg, 0.0) == pytest.approx(cfg.gap) and gap_schedule(cfg, 1.0) == pytest.approx(cfg.final_gap)
    geo = create_sampler("hyperface", gap_schedule="geometric").config
    assert gap_schedule(geo, 0.5) < gap_schedule(create_sampler("hyperface").config, 0.5)
    with pytest.raises(ValueError, match="gap_schedule"):
        gap_schedule(create_sampler("hyperface", gap_schedule="cosine").config, 0.5)
    x, st = create_sampler("hyperface", init="random", gap_schedule="geometric", iterations=30, time_budget=None,
                           progress=False).sample(300, dim=16, seed=0)
    assert st["steps"] == 30 and pair_stats(x)["max_cos"] < pair_stats(unit(300, 16))["max_cos"]


def test_progress_bar_redraws_sparingly_and_ends_at_100(capsys):
    from synthfr.samplers.hyperface._common import Bar

    bar = Bar(True, "pack")
    for i in range(5000):
        bar.show(0.5 + i * 1e-6, max_cos=0.1)  # the percentage does not move: no redraw per call
    bar.show(0.99)
    bar.close()
    err = capsys.readouterr().err
    assert err.count("\r") < 20 and "100/100" in err.replace(" ", "")


def test_convergence_benchmark_runs_the_dense_mode(tmp_path):
    """benchmarks/hyperface_convergence.py (issue 18's asymptote study): the Welch bound, and more steps of the
    package's dense mode from the same start end lower."""
    path = Path(__file__).resolve().parent.parent / "benchmarks" / "hyperface_convergence.py"
    spec = importlib.util.spec_from_file_location("hyperface_convergence", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.welch(10_000, 512) == pytest.approx(0.0431, abs=1e-4)
    out = tmp_path / "conv.json"
    assert mod.main(["--n", "120", "--dim", "8", "--steps", "3", "200", "--json", str(out)]) == 0
    runs = json.loads(out.read_text())["runs"]
    assert [r["steps"] for r in runs] == [3, 200]
    assert runs[1]["max_cos"] < runs[0]["max_cos"] - 0.02
    assert runs[1]["ratio_to_welch"] == pytest.approx(runs[1]["max_cos"] / mod.welch(120, 8))
    assert all(math.isfinite(r["cpu_seconds"]) for r in runs)
