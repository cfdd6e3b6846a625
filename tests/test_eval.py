"""Verification metrics against brute-force references, and the eval/embed commands end to end."""
from __future__ import annotations

import io
import json
import math

import numpy as np
import pytest

from synthfr.data.benchmarks import kfold_assignment, write_bin
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


# ---------------------------------------------------------------------------------------------------------------
# fake embedder + end to end
# ---------------------------------------------------------------------------------------------------------------
class PixelEmbedder:
    """Deterministic fake: 8×8 grey average-pool -> fixed random projection -> unit vector."""

    name = "test-pixels"
    dim = 32
    differentiable = False

    def __init__(self, device=None, seed=0):
        self.proj = np.random.default_rng(seed).normal(size=(64, self.dim))
        self.calls = 0

    def embed(self, images, batch_size=64):
        from synthfr.face.embedders import Embedder

        x = Embedder.check_images(images).astype(np.float64).mean(-1)  # N×112×112
        x = x.reshape(len(x), 8, 14, 8, 14).mean((2, 4)).reshape(len(x), 64)
        x = x - x.mean(1, keepdims=True)
        e = x @ self.proj
        self.calls += 1
        return (e / np.linalg.norm(e, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture
def pixel_embedder(monkeypatch):
    from synthfr.face.embedders import REGISTRY

    REGISTRY._discover()
    monkeypatch.setitem(REGISTRY._entries, "test-pixels", PixelEmbedder)
    return "test-pixels"


def _jpeg(img):
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=95)
    return buf.getvalue()


def make_fake_bin(path, pairs=40, seed=0, as_array=False):
    """Identities are random smooth images; a 'same' pair is the identity plus small noise."""
    rng = np.random.default_rng(seed)
    ids = [np.kron(rng.integers(0, 256, (8, 8, 3)), np.ones((14, 14, 1))) for _ in range(pairs + 1)]
    images, issame = [], []
    for k in range(pairs):
        same = k % 20 < 10  # folds of matched then mismatched, like LFW
        a = ids[k]
        b = ids[k] if same else ids[k + 1]
        for im in (a, b):
            im = np.clip(im + rng.normal(0, 8, im.shape), 0, 255).astype(np.uint8)
            data = _jpeg(im)
            images.append(np.frombuffer(data, np.uint8).copy() if as_array else data)
        issame.append(same)
    return write_bin(path, images, issame)


def test_evaluate_embedder_on_fake_bin(tmp_path):
    from synthfr.data.benchmarks import load_bin
    from synthfr.evaluation import evaluate_embedder

    b = load_bin(make_fake_bin(tmp_path / "fake.bin", pairs=40))
    emb = PixelEmbedder()
    res = evaluate_embedder(emb, b, progress=False)
    assert res["pairs"] == 40 and res["accuracy"] > 0.9
    res_flip = evaluate_embedder(emb, b, flip=True, progress=False)
    assert res_flip["pairs"] == 40 and 0 <= res_flip["accuracy"] <= 1


def test_flip_sums_and_renormalises():
    from synthfr.evaluation.evaluate import embed_images

    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, (3, 112, 112, 3), dtype=np.uint8)
    emb = PixelEmbedder()
    a = emb.embed(imgs)
    b = emb.embed(imgs[:, :, ::-1].copy())
    ref = (a + b) / np.linalg.norm(a + b, axis=1, keepdims=True)
    np.testing.assert_allclose(embed_images(emb, imgs, flip=True), ref, atol=1e-6)


def test_small_lfw_end_to_end(tmp_path):
    from conftest import shared_file

    from synthfr.evaluation import run_eval

    path = shared_file("insightface", "small_lfw.bin")
    res = run_eval(embedder=PixelEmbedder(), benchmarks=[path], json_path=tmp_path / "e.json", progress=False)
    r = res["benchmarks"]["small_lfw"]
    assert r["pairs"] == 10 and r["positives"] == 10 and r["negatives"] == 0
    assert 0 <= r["accuracy"] <= 1
    data = json.loads((tmp_path / "e.json").read_text())
    assert data["benchmarks"]["small_lfw"]["eer"] is None  # undefined without negatives


def test_cli_eval_json_shape(tmp_path, pixel_embedder, capsys):
    from synthfr.app.cli import main

    binp = make_fake_bin(tmp_path / "fake.bin", pairs=40)
    out = tmp_path / "out.json"
    roc = tmp_path / "roc"
    rc = main(["eval", "--embedder", pixel_embedder, "--benchmark", str(binp), "--json", str(out),
               "--roc", str(roc), "--quiet"])
    assert rc == 0
    data = json.loads(out.read_text())
    assert set(data) >= {"benchmarks", "embedder"} and data["embedder"] == "test-pixels"
    r = data["benchmarks"]["fake"]
    for k in ("accuracy", "std", "threshold", "eer"):
        assert type(r[k]) is float
    assert set(r["tpr_at_fpr"]) == {"1e-3", "1e-4"} and all(type(v) is float for v in r["tpr_at_fpr"].values())
    assert r["pairs"] == 40 and type(r["pairs"]) is int and r["negatives"] == 20
    assert (roc / "fake.roc.png").stat().st_size > 1000 and (roc / "fake.roc.csv").is_file()
    assert "fake" in capsys.readouterr().out


def test_cli_eval_checkpoint_errors(tmp_path, capsys):
    from synthfr.app.cli import main
    from synthfr.face.embedders import REGISTRY

    binp = make_fake_bin(tmp_path / "fake.bin", pairs=20)
    assert main(["eval", "--checkpoint", str(tmp_path / "nope"), "--benchmark", str(binp)]) == 2
    assert "not found" in capsys.readouterr().err
    if "checkpoint" not in REGISTRY:
        (tmp_path / "run").mkdir()
        assert main(["eval", "--checkpoint", str(tmp_path / "run"), "--benchmark", str(binp)]) == 1
        assert "not available" in capsys.readouterr().err
    assert main(["eval", "--embedder", "test-pixels", "--benchmark", str(tmp_path / "missing.bin")]) == 2
    assert "missing.bin" in capsys.readouterr().err


def test_cli_embed_folder_and_bin(tmp_path, pixel_embedder, monkeypatch):
    from PIL import Image

    from synthfr.app.cli import main
    import synthfr.face.load as B

    root = tmp_path / "faces"
    rng = np.random.default_rng(0)
    for ident in ("bob", "alice"):
        (root / ident).mkdir(parents=True)
        for k in range(2):
            Image.fromarray(rng.integers(0, 256, (112, 112, 3), dtype=np.uint8)).save(root / ident / f"{k}.png")
    Image.fromarray(rng.integers(0, 256, (150, 150, 3), dtype=np.uint8)).save(root / "alice" / "raw.jpg")
    Image.fromarray(rng.integers(0, 256, (150, 150, 3), dtype=np.uint8)).save(root / "bob" / "noface.jpg")
    (root / "bob" / "broken.jpg").write_bytes(b"not an image")

    def fake_align(img):
        return (img[:112, :112].copy(), None) if img[0, 0, 0] % 2 == 0 else (None, "no face detected")

    monkeypatch.setattr(B, "detect_align", fake_align)
    expect_ok = np.asarray(Image.open(root / "alice" / "raw.jpg"))[0, 0, 0] % 2 == 0
    out = tmp_path / "o" / "emb.npy"
    rc = main(["embed", str(root), "--embedder", pixel_embedder, "--out", str(out), "--json",
               str(tmp_path / "e.json"), "--quiet"])
    assert rc == 0
    summary = json.loads((tmp_path / "e.json").read_text())
    emb = np.load(out)
    paths = (tmp_path / "o" / "emb.paths.txt").read_text().splitlines()
    assert summary["images"] == 7 and emb.shape == (summary["embedded"], 32) and len(paths) == len(emb)
    failed = {f["path"] for f in summary["failed"]}
    assert "bob/broken.jpg" in failed
    assert ("alice/raw.jpg" in failed) != bool(expect_ok)
    assert "alice/0.png" in paths and "bob/1.png" in paths
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1, atol=1e-5)
    classes = (tmp_path / "o" / "emb.classes.txt").read_text().split()
    labels = np.load(tmp_path / "o" / "emb.labels.npy")
    assert classes == ["alice", "bob"]
    assert [classes[i] for i in labels] == [p.split("/")[0] for p in paths]
    # rows equal the embedder on the image itself
    ref = PixelEmbedder().embed(np.asarray(Image.open(root / "alice" / "0.png"))[None])
    np.testing.assert_allclose(emb[paths.index("alice/0.png")], ref[0], atol=1e-6)

    binp = make_fake_bin(tmp_path / "fake.bin", pairs=10)
    rc = main(["embed", str(binp), "--embedder", pixel_embedder, "--out", str(tmp_path / "b.npy"), "--quiet"])
    assert rc == 0
    eb = np.load(tmp_path / "b.npy")
    assert eb.shape == (20, 32)
    assert (tmp_path / "b.paths.txt").read_text().split() == [str(i) for i in range(20)]


def _real_embedder(name="dlib-torch"):
    from synthfr.face.embedders import REGISTRY, create_embedder

    if name not in REGISTRY:
        pytest.skip(f"embedder {name} not registered")
    try:
        return create_embedder(name, device="cpu") if name == "dlib-torch" else create_embedder(name)
    except (FileNotFoundError, ImportError) as e:
        pytest.skip(f"embedder {name} unavailable: {e}")


def test_small_lfw_with_dlib_torch(torch_threads):
    from conftest import shared_file

    from synthfr.evaluation import run_eval

    path = shared_file("insightface", "small_lfw.bin")
    res = run_eval(embedder=_real_embedder(), benchmarks=[path], progress=False)["benchmarks"]["small_lfw"]
    # insightface's sample holds 10 matched LFW pairs: dlib's descriptor puts them all well above 0.8
    assert res["pairs"] == 10 and res["accuracy"] >= 0.8 and res["threshold"] > 0.8


@pytest.mark.slow
def test_raw_lfw_folder_aligned_and_evaluated(tmp_path, torch_threads):
    """Raw 250×250 LFW images + a pairs.txt subset: detection, alignment, dlib-torch, 4-fold protocol."""
    from conftest import shared_file

    from synthfr.evaluation import run_eval

    raw = shared_file("lfw", "raw_sample")
    lines = shared_file("lfw", "pairs.txt").read_text().splitlines()
    matched, mismatched = lines[1:81], lines[301:381]  # the pairs whose images are in raw_sample
    out = ["4\t20"]
    for k in range(4):
        out += matched[20 * k: 20 * k + 20] + mismatched[20 * k: 20 * k + 20]
    pairs = tmp_path / "pairs.txt"
    pairs.write_text("\n".join(out) + "\n")
    res = run_eval(embedder=_real_embedder(), benchmarks=[raw], pairs=pairs, progress=False)
    r = res["benchmarks"]["raw_sample"]
    assert r["pairs"] == 160 and r["folds"] == 4 and r["images"] == 242
    assert r["accuracy"] >= 0.95 and "align_failures" not in r
