"""The eval and embed commands end to end: a fake pixel embedder on fake and real benchmark files, the CLI's
JSON and errors, then the real dlib-torch embedder on insightface's small LFW and raw LFW folders. The metrics
themselves against brute force: tests/test_eval_metrics.py."""
from __future__ import annotations

import io
import json

import numpy as np
import pytest

from synthfr.data.benchmarks import write_bin


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
