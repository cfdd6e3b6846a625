"""Quality metrics against brute-force references; leakage finds a planted duplicate; CLI + HTML report."""
from __future__ import annotations

import base64
import json
import re

import numpy as np
import pytest

from synthfr.quality import REGISTRY
from synthfr.quality.evaluate import evaluate_quality
from synthfr.quality.leakage import clean_leaked
from synthfr.quality.metrics import eer


def dataset(c=25, k=6, d=16, spread=0.8, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(c, d))
    lab = np.repeat(np.arange(c), k)
    e = centres[lab] + spread * rng.normal(size=(c * k, d))
    return (e / np.linalg.norm(e, axis=1, keepdims=True)).astype(np.float32), lab * 3 + 1  # non-contiguous labels


def brute_centres(e, lab):
    cls = sorted(set(lab.tolist()))
    cs = []
    for c in cls:
        m = e[lab == c].astype(np.float64).sum(0)
        cs.append(m / np.linalg.norm(m))
    return cls, np.array(cs)


@pytest.mark.parametrize("name", REGISTRY.list())
def test_every_metric_returns_plain_json(name):
    e, lab = dataset()
    out = REGISTRY.get(name)(e, lab, reference=e[:10])
    json.dumps(out)  # plain floats / lists only


def test_separability_brute_force():
    e, lab = dataset(spread=1.5, d=8)
    out = REGISTRY.get("separability")(e, lab, threshold=0.4)
    _, c = brute_centres(e, lab)
    sep = []
    for i in range(len(c)):
        sep.append(all(c[i] @ c[j] <= 0.4 for j in range(len(c)) if j != i))
    assert out["separability"] == pytest.approx(np.mean(sep))
    assert 0 < out["separability"] < 1
    assert out["curve_n"][-1] == len(c) and out["curve_fraction"][-1] == pytest.approx(np.mean(sep))
    assert len(out["curve_n"]) == len(out["curve_fraction"])


def test_noise_brute_force():
    e, lab = dataset(d=4, spread=0.5)
    out = REGISTRY.get("noise")(e, lab, threshold=0.7)
    cls, c = brute_centres(e, lab)
    pairs = [(cls[i], cls[j]) for i in range(len(c)) for j in range(i + 1, len(c)) if c[i] @ c[j] > 0.7]
    assert out["noise_pairs"] == len(pairs) > 0
    assert {(p["a"], p["b"]) for p in out["pairs"]} == set(pairs)


def test_consistency_brute_force():
    e, lab = dataset(spread=2.0)
    out = REGISTRY.get("consistency")(e, lab, threshold=0.3)
    cls, c = brute_centres(e, lab)
    cos = np.array([e[r] @ c[cls.index(lab[r])] for r in range(len(e))])
    assert out["inconsistent_fraction"] == pytest.approx(np.mean(cos < 0.3))
    assert out["mean_cos_to_centre"] == pytest.approx(cos.mean(), abs=1e-5)
    assert sum(out["cos_to_centre_hist"]["counts"]) == len(e)


def brute_sweep_eer(g, im):
    """Naive threshold sweep: accept score >= t for t in {+inf} ∪ every score (descending); the EER is where
    FAR - FRR changes sign, linearly interpolated between the two bracketing thresholds' (FAR, FRR) points."""
    g, im = [float(v) for v in g], [float(v) for v in im]
    pts = []
    for t in [float("inf")] + sorted(set(g + im), reverse=True):
        far = sum(1 for v in im if v >= t) / len(im)
        frr = sum(1 for v in g if v < t) / len(g)
        pts.append((t, far, frr))
    for k, (t, far, frr) in enumerate(pts):
        if far >= frr:
            if far == frr:
                return far, t, pts
            _, far0, frr0 = pts[k - 1]
            lam = (frr0 - far0) / ((far - frr) - (far0 - frr0))
            return far0 + lam * (far - far0), t, pts
    raise AssertionError("FAR never reaches FRR")


def _eer_cases():
    rng = np.random.default_rng(0)
    cases = []
    for n_g, n_i, quant in [(30, 50, None), (17, 23, 5), (40, 40, 3), (5, 70, None), (25, 11, 2), (1, 1, None)]:
        g, im = rng.normal(1.0, 1.0, n_g), rng.normal(-0.3, 1.0, n_i)
        if quant:
            g, im = np.round(g * quant) / quant, np.round(im * quant) / quant  # many ties, also across classes
        cases.append((g, im))
    cases.append((np.array([0.9, 0.8, 0.8]), np.array([0.1, 0.2, 0.2, 0.3])))  # perfectly separable
    cases.append((np.array([0.5, 0.5]), np.array([0.5, 0.5, 0.5])))  # all tied
    cases.append((np.array([0.1, 0.2]), np.array([0.8, 0.9])))  # perfectly inverted
    cases.append((np.array([0.9, 0.5]), np.array([0.6, 0.1])))  # one crossing: EER 0.5
    return cases


@pytest.mark.parametrize("case", range(len(_eer_cases())))
def test_eer_matches_brute_force_sweep(case):
    from synthfr.evaluation.verification import equal_error_rate

    g, im = _eer_cases()[case]
    rate, thr = eer(g, im)
    ref_rate, ref_thr, pts = brute_sweep_eer(g, im)
    assert rate == pytest.approx(ref_rate, abs=1e-12) and thr == ref_thr
    # independent bounds from the sweep: no threshold does better than the EER on its worse error, and at the
    # returned threshold FAR >= EER >= FRR (a realisable operating point)
    lo, hi = max(min(far, frr) for _, far, frr in pts), min(max(far, frr) for _, far, frr in pts)
    assert lo - 1e-12 <= rate <= hi + 1e-12
    assert np.mean(im >= thr) >= rate - 1e-12 >= np.mean(g < thr) - 2e-12
    # the same single implementation behind both entry points, whatever the pair order
    s, y = np.concatenate([g, im]), np.r_[np.ones(len(g), bool), np.zeros(len(im), bool)]
    perm = np.random.default_rng(case).permutation(len(s))
    assert equal_error_rate(s[perm], y[perm]) == (rate, thr)


def test_eer_exact_values_and_empty():
    assert eer(np.array([1.0, 0.9]), np.array([0.1, 0.2])) == (0.0, 0.9)  # separable: lowest genuine score
    assert eer(np.array([0.1, 0.2]), np.array([0.8, 0.9]))[0] == 1.0
    assert eer(np.array([0.9, 0.5]), np.array([0.6, 0.1]))[0] == pytest.approx(0.5)
    assert all(np.isnan(eer(np.array([]), np.array([0.1]))))
    assert all(np.isnan(eer(np.array([0.1]), np.zeros(0))))


def test_verification_pairs_brute_force():
    e, lab = dataset(c=10, k=4)
    out = REGISTRY.get("verification")(e, lab, max_pairs=10_000)
    gen = [e[i] @ e[j] for i in range(len(e)) for j in range(i + 1, len(e)) if lab[i] == lab[j]]
    assert out["genuine_pairs"] == len(gen) and not out["genuine_sampled"]
    assert out["genuine_mean"] == pytest.approx(np.mean(gen), abs=1e-5)
    sampled = REGISTRY.get("verification")(e, lab, max_pairs=20)
    assert sampled["genuine_sampled"] and sampled["genuine_pairs"] == 20


def test_leakage_finds_planted_duplicate_and_cleans():
    e, lab = dataset(c=40, k=8, d=32, spread=0.6)
    # reference = other images of identities 4 and 10 (a "real" set that the synthetic set leaked)
    ref, rlab = dataset(c=40, k=8, d=32, spread=0.6, seed=0)
    rng = np.random.default_rng(5)
    keep = np.isin(rlab, [4 * 3 + 1, 10 * 3 + 1])
    ref = ref[keep] + 0.05 * rng.normal(size=ref[keep].shape).astype(np.float32)
    rl = rlab[keep] + 1000
    other = dataset(c=30, k=5, d=32, seed=7)
    ref = np.concatenate([ref, other[0]])
    rl = np.concatenate([rl, other[1] + 5000])
    out = REGISTRY.get("leakage")(e, lab, reference=ref, reference_labels=rl, threshold=0.8, top_k=5)
    assert sorted(out["leaked_identities"]) == [13, 31]
    assert out["top_pairs"][0]["cos"] > 0.8 and out["leaked_count"] == 2
    ce, cl, mask = clean_leaked(e, lab, out["leaked_identities"])
    assert len(ce) == len(e) - 16 and not np.isin(cl, [13, 31]).any()
    unlabelled = REGISTRY.get("leakage")(e, lab, reference=ref, threshold=0.8)
    assert unlabelled["reference_kind"] == "embeddings" and unlabelled["reference_items"] == len(ref)
    with pytest.raises(ValueError, match="leakage: reference embeddings are 16-D but the dataset's are 32-D"):
        REGISTRY.get("leakage")(e, lab, reference=ref[:, :16])


def test_evaluate_quality_and_cli_report(tmp_path):
    e, lab = dataset()
    np.save(tmp_path / "e.npy", e)
    np.save(tmp_path / "e.labels.npy", lab)
    np.save(tmp_path / "r.npy", e[lab == 1])  # 6 faces: enough for the k=5 nearest-neighbour metrics
    q = evaluate_quality(e, lab, reference=e[:12])
    assert {"separability", "noise", "consistency", "verification", "leakage", "space"} <= set(q)
    from synthfr.app.cli import main

    rc = main(["quality", "--embeddings", str(tmp_path / "e.npy"), "--reference", str(tmp_path / "r.npy"),
               "--json", str(tmp_path / "q.json"), "--html", str(tmp_path / "q.html"),
               "--clean-out", str(tmp_path / "clean.npy")])
    assert rc == 0
    q = json.loads((tmp_path / "q.json").read_text())
    assert q["leakage"]["leaked_count"] >= 1 and q["cleaned"]["rows_dropped"] >= 6
    page = (tmp_path / "q.html").read_text()
    imgs = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(imgs) >= 5 and all(base64.b64decode(i)[:4] == b"\x89PNG" for i in imgs)
    assert main(["quality", "--embeddings", str(tmp_path / "missing.npy")]) == 2  # usage error


def test_quality_from_dataset_api_matches_cli(tmp_path):
    """The public API does all the work of `synthfr quality`: same metrics as the CLI's JSON, errors explained."""
    import synthfr
    from synthfr.app.cli import main

    e, lab = dataset(c=12, k=4)
    np.save(tmp_path / "e.npy", e)
    np.save(tmp_path / "e.labels.npy", lab)
    np.save(tmp_path / "r.npy", e[lab == 1][:2])
    assert synthfr.quality_from_dataset is synthfr.quality.evaluate.quality_from_dataset
    assert synthfr.evaluate_quality is evaluate_quality
    q = synthfr.quality_from_dataset(embeddings=tmp_path / "e.npy", reference=tmp_path / "r.npy",
                                     metrics="verification, leakage", max_pairs=50, seed=3, leak_threshold=0.6,
                                     top_k=4, clean_out=tmp_path / "c.npy")
    assert q["source"] == str(tmp_path / "e.npy") and {"verification", "leakage", "cleaned"} <= set(q)
    assert "separability" not in q and q["verification"]["genuine_pairs"] == 50
    assert len(q["leakage"]["top_pairs"]) <= 4 and q["leakage"]["threshold"] == 0.6
    assert main(["quality", "--embeddings", str(tmp_path / "e.npy"), "--reference", str(tmp_path / "r.npy"),
                 "--metrics", "verification,leakage", "--max-pairs", "50", "--seed", "3", "--leak-threshold", "0.6",
                 "--top-k", "4", "--clean-out", str(tmp_path / "c2.npy"), "--json", str(tmp_path / "q.json")]) == 0
    cli = json.loads((tmp_path / "q.json").read_text())
    for k in ("verification", "leakage", "space", "n_embeddings", "n_identities", "source"):
        assert cli[k] == json.loads(json.dumps(q[k])), k
    np.testing.assert_array_equal(np.load(tmp_path / "c.npy"), np.load(tmp_path / "c2.npy"))
    with pytest.raises(ValueError, match="either DATASET_DIR"):
        synthfr.quality_from_dataset()
    with pytest.raises(ValueError, match="--embedder"):
        synthfr.quality_from_dataset(tmp_path)
    with pytest.raises(FileNotFoundError, match="missing.npy"):
        synthfr.quality_from_dataset(embeddings=tmp_path / "missing.npy")


def test_cli_quality_on_image_folder_with_embedder(tmp_path):
    """The DATASET_DIR --embedder form on a tiny slice of the real CelebA subset (skips without shared data)."""
    from conftest import shared_file

    root = shared_file("celeba")
    ids = sorted(p for p in root.iterdir() if p.is_dir())[:3]
    ds = tmp_path / "ds"
    for d in ids:
        (ds / d.name).mkdir(parents=True)
        for f in sorted(d.glob("*.jpg"))[:3]:
            (ds / d.name / f.name).symlink_to(f)
    from synthfr.app.cli import main

    rc = main(["quality", str(ds), "--embedder", "dlib", "--json", str(tmp_path / "q.json"), "--quiet",
               "--metrics", "separability,consistency,verification"])
    assert rc == 0
    q = json.loads((tmp_path / "q.json").read_text())
    assert q["n_identities"] == 3 and q["dim"] == 128 and q["n_embeddings"] >= 6
    assert (tmp_path / "quality_embeddings.npy").is_file()


def test_report_builders_compose(tmp_path):
    from synthfr.report import html, plots
    from synthfr.report.samplers import sampler_sections
    from synthfr.samplers import sample_identities

    x, st = sample_identities("hyperface", 60, dim=8, time_budget=None, iterations=20, progress=False,
                              out=tmp_path / "ids.npy")
    secs = sampler_sections(st, np.load(tmp_path / "ids.std.npy"))
    png = plots.hist_png({"a": {"edges": [0, 0.5, 1], "counts": [1, 2]}}, title="t")
    doc = html.page("r", secs + [html.section("extra", html.figure(png, "cap"), html.table([[1, 0.5, "x"]]))])
    p = html.write_html(tmp_path / "r.html", doc)
    text = p.read_text()
    assert text.startswith("<!DOCTYPE html>") and text.count("data:image/png;base64,") >= 3
