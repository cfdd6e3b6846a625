"""`synthfr quality` against a reference folder with two networks: every figure equals the metric recomputed
from the embeddings it wrote, attributes per identity, the HTML sections, and one-line errors for bad inputs."""
from __future__ import annotations

import base64
import json
import re

import numpy as np
import pytest
from PIL import Image

from synthfr.quality.attributes_report import attribute_stats, per_identity_std, wasserstein_1d
from synthfr.quality.image_metrics import frechet_distance, prdc_values


class _Fake:
    """Deterministic fake network: grey (or colour) average-pool -> fixed random projection -> unit vector."""

    name, dim, pool, colour = "fake-a", 24, 8, False

    def __init__(self, device=None, seed=0):
        feat = self.pool * self.pool * (3 if self.colour else 1)
        self.proj = np.random.default_rng(seed + self.dim).normal(size=(feat, self.dim))

    def embed(self, images, batch_size=64):
        x = np.asarray(images, dtype=np.float64)
        if not self.colour:
            x = x.mean(-1, keepdims=True)
        s = 112 // self.pool
        x = x.reshape(len(x), self.pool, s, self.pool, s, -1).mean((2, 4)).reshape(len(x), -1)
        e = (x - x.mean(1, keepdims=True)) @ self.proj
        return (e / np.linalg.norm(e, axis=1, keepdims=True)).astype(np.float32)


class FakeA(_Fake):
    pass


class FakeB(_Fake):
    name, dim, pool, colour = "fake-b", 16, 4, True


def _faces(root, n_ids, per_id, seed, flat=False):
    """Identity = a smooth random colour field; its images = that field + noise and a brightness change."""
    rng = np.random.default_rng(seed)
    for i in range(n_ids):
        base = rng.integers(40, 215, (7, 7, 3)).astype(np.uint8)
        field = np.asarray(Image.fromarray(base).resize((112, 112), Image.BILINEAR), dtype=np.float64)
        d = root if flat else root / f"id{i:03d}"
        d.mkdir(parents=True, exist_ok=True)
        for k in range(per_id):
            img = field * rng.uniform(0.8, 1.2) + rng.normal(0, 12, field.shape)
            name = f"id{i:03d}_{k}.png" if flat else f"{k}.png"
            Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(d / name)
    return root


@pytest.fixture
def fakes(monkeypatch):
    """Register the fakes under the judges' names, so the default ('auto') judges run without model files."""
    from synthfr.face.embedders import REGISTRY

    REGISTRY._discover()
    monkeypatch.setitem(REGISTRY._entries, "sface", FakeA)
    monkeypatch.setitem(REGISTRY._entries, "dlib-torch", FakeB)


def _pngs(page):
    return re.findall(r'src="data:image/png;base64,([^"]+)"', page)


def test_quality_against_reference_folder_with_both_networks(tmp_path, fakes):
    from synthfr.app.cli import main

    ds = _faces(tmp_path / "gen", 8, 4, seed=1)
    ref = _faces(tmp_path / "real", 10, 4, seed=2)
    out = tmp_path / "out"
    rc = main(["quality", str(ds), "--reference", str(ref), "--embedder", "sface", "--json", str(out / "q.json"),
               "--html", str(out / "q.html"), "--quiet", "--prdc-k", "3", "--attribute-images", "20"])
    assert rc == 0
    q = json.loads((out / "q.json").read_text())
    assert q["embedder"] == "sface" and list(q["networks"]) == ["sface", "dlib-torch"]  # auto: both judges
    for net, stem in (("sface", "quality_embeddings"), ("dlib-torch", "quality_embeddings.dlib-torch")):
        e = np.load(out / f"{stem}.npy")
        r = np.load(out / f"quality_embeddings.reference.{net}.npy")
        assert e.shape[0] == 32 and r.shape[0] == 40
        res = q if net == "sface" else q["judges"][net]
        # the figures equal the metrics recomputed here from the written embeddings (PRDC balanced: 32 each)
        assert res["frechet"]["fd"] == pytest.approx(frechet_distance(e, r)["fd"], rel=1e-6)
        assert q["networks"][net]["dataset"]["Fréchet distance"] == res["frechet"]["fd"]
        pick = np.sort(np.random.default_rng(0).permutation(40)[:32])
        direct = prdc_values(r[pick].astype(np.float64), e.astype(np.float64), k=3)
        for k in ("precision", "recall", "density", "coverage"):
            assert res["prdc"][k] == pytest.approx(direct[k]), (net, k)
        # the real set's own identity figures, as a baseline
        assert q["networks"][net]["reference"]["EER"] is not None
        assert q["reference"]["networks"][net]["consistency"]["mean_cos_to_centre"] > 0
    assert q["reference"]["identities"] == 10 and q["reference"]["kind"] == "folder"
    a = q["attributes"]
    assert a["dataset"]["identities"] == 5 and a["reference"]["faces"] == 20  # whole identities up to 20 faces
    assert {"yaw", "yaw_net", "pitch_net", "sharpness", "brightness"} <= set(a["attributes"])
    assert 0 <= a["dataset"]["detection_rate"] <= 1 and a["units"]["yaw"] == "degrees"
    assert a["dataset"]["stats"]["brightness"]["per_identity_std"] > 0
    assert a["comparison"]["brightness"]["wasserstein"] >= 0
    w = q["worst_identities"]["lowest_consistency"][0]
    assert w["name"].startswith("id") and q["face_quality"]["lowest_paths"][0].endswith(".png")
    assert len(q["identity_map"]["dataset"]) == 8 and len(q["identity_map"]["reference"]) == 10
    page = (out / "q.html").read_text()
    for title in ("Networks side by side", "Attribute distributions", "Face-image quality",
                  "Map of identity centres", "Worst identities", "Realism and diversity"):
        assert title in page, title
    assert all(base64.b64decode(p)[:4] == b"\x89PNG" for p in _pngs(page)) and len(_pngs(page)) >= 8
    assert page.count("data:image/jpeg;base64,") >= 3  # worst identities and lowest-quality strips


def test_reuse_embeddings_only_for_the_same_files(tmp_path):
    from synthfr.quality.networks import embed_folder

    class Counting(FakeA):
        calls = 0

        def embed(self, images, batch_size=64):
            Counting.calls += len(images)
            return super().embed(images, batch_size)

    ds = _faces(tmp_path / "gen", 3, 2, seed=1)
    first = embed_folder(ds, Counting(), tmp_path / "e.npy", progress=False)
    again = embed_folder(ds, Counting(), tmp_path / "e.npy", progress=False, reuse=True)
    assert Counting.calls == 6 and np.array_equal(first["embeddings"], again["embeddings"])
    assert again["classes"] == first["classes"] and np.array_equal(again["labels"], first["labels"])
    _faces(tmp_path / "gen", 4, 2, seed=1)  # one more identity: the files changed, so it embeds again
    assert len(embed_folder(ds, Counting(), tmp_path / "e.npy", progress=False, reuse=True)["embeddings"]) == 8
    assert Counting.calls == 14


def test_flat_reference_and_api_without_judges(tmp_path):
    from synthfr.quality.evaluate import quality_from_dataset

    ds = _faces(tmp_path / "gen", 6, 3, seed=1)
    ref = _faces(tmp_path / "flat", 8, 2, seed=3, flat=True)
    q = quality_from_dataset(ds, embedder=FakeA(), judges="none", reference=ref, progress=False, attributes=False,
                             embeddings_out=tmp_path / "e.npy", options={"prdc": {"k": 2}})
    assert list(q["networks"]) == ["fake-a"] and q["judges"] == {} and "attributes" not in q
    assert q["reference"]["identities"] is None and q["reference"]["networks"] == {}  # unlabelled: no baseline
    assert q["prdc"]["n_reference"] == 16 and q["identity_map"]["reference_kind"] == "faces (unlabelled)"
    q2 = quality_from_dataset(ds, embedder=FakeA(), judges=[FakeB()], progress=False, attributes=False,
                              embeddings_out=tmp_path / "e2.npy", metrics="consistency,frechet")
    assert set(q2["judges"]["fake-b"]) >= {"consistency", "frechet"} and q2["frechet"]["skipped"]


def test_bad_inputs_give_one_line_errors(tmp_path, fakes, capsys):
    from synthfr.app.cli import main

    rng = np.random.default_rng(0)
    e = rng.normal(size=(20, 8)).astype(np.float32)
    np.save(tmp_path / "e.npy", e)
    np.save(tmp_path / "e.labels.npy", np.repeat(np.arange(5), 4))
    np.save(tmp_path / "small.npy", e[:4])
    np.save(tmp_path / "wide.npy", rng.normal(size=(20, 16)).astype(np.float32))
    ds = _faces(tmp_path / "gen", 4, 3, seed=1)
    ref = _faces(tmp_path / "real", 4, 3, seed=2)
    (ref / "id001" / "broken.jpg").write_bytes(b"not an image")
    cases = [  # (arguments, message, exit code: 1 = bad input data, 2 = wrong command)
        (["--embeddings", str(tmp_path / "e.npy"), "--reference", str(tmp_path / "small.npy")],
         "reference has 4 faces but needs at least 6 (more than k=5)", 1),
        (["--embeddings", str(tmp_path / "e.npy"), "--reference", str(tmp_path / "wide.npy")],
         "reference embeddings are 16-D but the dataset's are 8-D", 1),
        ([str(ds), "--embedder", "sface", "--reference", str(ref)], "broken.jpg", 1),
        ([str(ds), "--embedder", "sface", "--judges", "no-such-net"], "'no-such-net' is not a registered embedder", 2),
        (["--embeddings", str(tmp_path / "e.npy"), "--reference", str(ref)], "needs DATASET_DIR --embedder", 2),
    ]
    for args, msg, code in cases:
        capsys.readouterr()
        rc = main(["quality", *args, "--quiet", "--json", str(tmp_path / "q.json"), "--no-attributes"])
        err = capsys.readouterr().err.strip()
        assert rc == code and msg in err and "\n" not in err and "Traceback" not in err, (args, err)


def test_attribute_summaries_against_direct_computation():
    rng = np.random.default_rng(0)
    v = rng.normal(10, 3, 30)
    v[[2, 17]] = np.nan
    lab = np.repeat(np.arange(6), 5)
    s = attribute_stats(v, lab, np.linspace(0, 20, 11))
    per_id = [np.nanstd(v[lab == c], ddof=1) for c in range(6)]
    assert s["per_identity_std"] == pytest.approx(np.mean(per_id)) and s["identities_measured"] == 6
    assert s["mean"] == pytest.approx(np.nanmean(v)) and s["measured"] == 28
    assert sum(s["hist"]["counts"]) == 28
    assert np.isnan(per_identity_std(np.arange(3.0), np.arange(3))[0])  # one face per identity: no spread


def test_wasserstein_1d_against_sorted_differences():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=50), rng.normal(1.0, 2.0, size=50)
    assert wasserstein_1d(a, b) == pytest.approx(np.abs(np.sort(a) - np.sort(b)).mean())  # equal sizes
    # unequal sizes: repeating every sample of b three times is the same distribution
    assert wasserstein_1d(a, np.repeat(b, 3)) == pytest.approx(wasserstein_1d(a, b))
    assert wasserstein_1d(a, a + 2.5) == pytest.approx(2.5)
