"""`synthfr combine`: datasets of two runs with different settings, concatenated or per-identity replaced."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from synthfr.data.combine import combine_datasets
from synthfr.data.imagefolder import open_dataset
from synthfr.data.manifest import read_manifest
from synthfr.generation import GenerateConfig, generate_dataset


def _gen(ids: Path, out: Path, **kw) -> Path:
    base = dict(identities=str(ids), generator="test_pattern", images_per_id=5, seed=7, out=str(out), fsync=False,
                device="cpu", workers=1)
    base.update(kw)
    generate_dataset(GenerateConfig(**base), progress=False)
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("combine")
    v = np.random.default_rng(0).standard_normal((4, 16)).astype(np.float32)
    np.save(root / "ids.npy", v / np.linalg.norm(v, axis=1, keepdims=True))
    # two runs of the same identities with different settings (variation, seed, images per identity)
    a = _gen(root / "ids.npy", root / "a", variation="hyperface-noise:beta=0.01")
    b = _gen(root / "ids.npy", root / "b", variation="mixup:phi_min=0.3,phi_max=0.7,phi_step=0.1", images_per_id=4,
             seed=11)
    return root, a, b


def test_replace_n_of_k_per_identity(runs, tmp_path):
    _, a, b = runs
    s = combine_datasets([a, b], tmp_path / "pose", replace=3, seed=1)
    assert s["identities"] == 4 and s["images"] == 20 and s["from_sources"] == [8, 12]
    man = read_manifest(tmp_path / "pose" / "manifest.jsonl")
    ma = {(r["identity"], r["index"]): r for r in read_manifest(a / "manifest.jsonl")}
    mb = {(r["identity"], r["index"]): r for r in read_manifest(b / "manifest.jsonl")}
    for row in range(4):
        lines = [r for r in man if r["identity"] == row]
        assert [r["index"] for r in lines] == list(range(5)) and {r["label"] for r in lines} == {row}
        assert sum(r["source"] == 1 for r in lines) == 3  # 3 of 5 from the second run
        for r in lines:
            orig = (ma if r["source"] == 0 else mb)[(row, r["source_index"])]
            src_dir = a if r["source"] == 0 else b
            assert (tmp_path / "pose" / r["path"]).read_bytes() == (src_dir / orig["path"]).read_bytes()
            assert r["variation"] == orig["variation"] and r["seed"] == orig["seed"]
        assert len({r["source_index"] for r in lines if r["source"] == 1}) == 3
    # the replaced slots differ between identities (seeded per identity) and are reproducible
    slots = [tuple(r["index"] for r in man if r["identity"] == row and r["source"] == 1) for row in range(4)]
    assert len(set(slots)) > 1
    combine_datasets([a, b], tmp_path / "again", replace=3, seed=1)
    again = (tmp_path / "again" / "manifest.jsonl").read_bytes()
    assert again == (tmp_path / "pose" / "manifest.jsonl").read_bytes()
    # the config records both sources with their own settings
    doc = yaml.safe_load((tmp_path / "pose" / "config.yaml").read_text())["combined"]
    assert doc["mode"] == "replace" and doc["replace"] == {"n": 3, "pick": "random", "seed": 1}
    assert [x["images"] for x in doc["sources"]] == [20, 16]
    assert doc["sources"][0]["config"]["config"]["variation"] == "hyperface-noise:beta=0.01"
    assert doc["sources"][1]["config"]["config"]["variation"] == "mixup:phi_min=0.3,phi_max=0.7,phi_step=0.1"
    assert np.array_equal(np.load(tmp_path / "pose" / "identities.npy"), np.load(a / "identities.npy"))
    ds = open_dataset(tmp_path / "pose")
    assert ds.num_classes == 4 and len(ds) == 20
    card = (tmp_path / "pose" / "README.md").read_text()
    assert card.startswith("---\n") and "inherited-from-sources" in card and "3 images of source 0 replaced" in card
    assert "## Source 0: `a`" in card and "## Source 1: `b`" in card
    # pick=last: the last 3 slots from the second run's first 3 images
    combine_datasets([a, b], tmp_path / "last", replace=3, pick="last")
    man = read_manifest(tmp_path / "last" / "manifest.jsonl")
    assert [(r["source"], r["source_index"]) for r in man if r["identity"] == 0] == \
        [(0, 0), (0, 1), (1, 0), (1, 1), (1, 2)]
    with pytest.raises(ValueError, match="needs >= 5 images"):
        combine_datasets([a, b], tmp_path / "x", replace=5)


def test_concat_keeps_classes_apart(runs, tmp_path):
    _, a, b = runs
    s = combine_datasets([a, b], tmp_path / "cat", format="folder")
    assert s["identities"] == 8 and s["images"] == 36 and s["from_sources"] == [20, 16]
    man = read_manifest(tmp_path / "cat" / "manifest.jsonl")
    assert {r["label"] for r in man if r["source"] == 0} == {0, 1, 2, 3}
    assert {r["label"] for r in man if r["source"] == 1} == {4, 5, 6, 7}
    soft = [r for r in man if r.get("soft_label")]
    assert soft and all(4 <= r["soft_label"][0] < 8 and 4 <= r["soft_label"][1] < 8 for r in soft)
    ds = open_dataset(tmp_path / "cat")
    assert ds.num_classes == 8 and len(ds) == 36 and ds.has_soft_labels
    assert np.load(tmp_path / "cat" / "identities.npy").shape == (8, 16)


def test_combine_cli_and_errors(runs, tmp_path):
    from synthfr.app.cli import main

    root, a, b = runs
    assert main(["combine", str(a), str(b), "--replace", "2", "--out", str(tmp_path / "c"), "--format", "rec",
                 "--json", str(tmp_path / "s.json")]) == 0
    assert json.loads((tmp_path / "s.json").read_text())["from_sources"] == [12, 8]
    assert (tmp_path / "c" / "train.rec").is_file() and open_dataset(tmp_path / "c").num_classes == 4
    v = np.load(root / "ids.npy")
    np.save(root / "other.npy", v[::-1].copy())
    c = _gen(root / "other.npy", root / "c", images_per_id=3)
    with pytest.raises(ValueError, match="identities.npy .* differ"):
        combine_datasets([a, c], tmp_path / "bad", replace=2)
    combine_datasets([a, c], tmp_path / "ok", replace=2, check_identities=False)
    with pytest.raises(ValueError, match="not empty"):
        combine_datasets([a, b], tmp_path / "ok")
