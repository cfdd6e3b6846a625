"""`synthfr combine --counts`: per-identity subsets (long-tailed sets, a few real identities × images)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from synthfr.data.combine import combine_datasets, read_counts
from synthfr.data.imagefolder import open_dataset
from synthfr.data.manifest import read_manifest
from synthfr.generation import GenerateConfig, generate_dataset


def _gen(ids: Path, out: Path, **kw) -> Path:
    base = dict(identities=str(ids), generator="test_pattern", images_per_id=6, seed=3, out=str(out), fsync=False,
                device="cpu", workers=1, variation="hyperface-noise:beta=0.01")
    base.update(kw)
    generate_dataset(GenerateConfig(**base), progress=False)
    return out


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    root = tmp_path_factory.mktemp("counts")
    v = np.random.default_rng(1).standard_normal((4, 16)).astype(np.float32)
    np.save(root / "ids.npy", v / np.linalg.norm(v, axis=1, keepdims=True))
    return root, _gen(root / "ids.npy", root / "k6")


def test_subset_equals_generating_fewer_images(big, tmp_path):
    root, k6 = big
    s = combine_datasets([k6], tmp_path / "lt", counts=[6, 3, 1, 2])
    assert s["mode"] == "subset" and s["identities"] == 4 and s["images"] == 12
    man = read_manifest(tmp_path / "lt" / "manifest.jsonl")
    assert [sum(r["identity"] == i for r in man) for i in range(4)] == [6, 3, 1, 2]
    assert all(r["label"] == r["identity"] for r in man)
    # image k of identity i has the same seed at any count: the subset is what generating 3 per identity gives
    k3 = _gen(root / "ids.npy", tmp_path / "k3", images_per_id=3)
    ref = {(r["identity"], r["index"]): r for r in read_manifest(k3 / "manifest.jsonl")}
    for r in man:
        if r["index"] < 3:
            assert (tmp_path / "lt" / r["path"]).read_bytes() == (k3 / ref[(r["identity"], r["index"])]["path"]).read_bytes()
            assert r["seed"] == ref[(r["identity"], r["index"])]["seed"]
    np.testing.assert_array_equal(np.load(tmp_path / "lt" / "identities.npy"), np.load(k6 / "identities.npy"))
    ds = open_dataset(tmp_path / "lt")
    assert ds.num_classes == 4 and len(ds) == 12
    import yaml

    cfg = yaml.safe_load((tmp_path / "lt" / "config.yaml").read_text())
    assert cfg["combined"]["counts"]["images_per_identity"] == [6, 3, 1, 2]


def test_zero_counts_drop_and_renumber(big, tmp_path):
    _, k6 = big
    combine_datasets([k6], tmp_path / "two", counts=[0, 2, 0, 4])
    man = read_manifest(tmp_path / "two" / "manifest.jsonl")
    assert sorted({r["identity"] for r in man}) == [0, 1] and len(man) == 6
    src = read_manifest(k6 / "manifest.jsonl")
    np.testing.assert_array_equal(np.load(tmp_path / "two" / "identities.npy"), np.load(k6 / "identities.npy")[[1, 3]])
    # renumbered row 1 is source identity 3: same bytes as its first four images
    for r in (r for r in man if r["identity"] == 1):
        orig = next(o for o in src if o["identity"] == 3 and o["index"] == r["index"])
        assert (tmp_path / "two" / r["path"]).read_bytes() == (k6 / orig["path"]).read_bytes()
    assert open_dataset(tmp_path / "two").num_classes == 2


def test_real_folder_by_name(tmp_path):
    """A labelled ImageFolder (real faces): pick identities by folder name, the first n images of each."""
    real = tmp_path / "real"
    rng = np.random.default_rng(0)
    for name in ("7001", "7002", "7003"):
        (real / name).mkdir(parents=True)
        for k in range(4):
            Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(real / name / f"{k:03d}.png")
    (tmp_path / "c.json").write_text(json.dumps({"7003": 2, "7001": 3}))
    from synthfr.app.cli import main

    assert main(["combine", str(real), "--counts", str(tmp_path / "c.json"), "--out", str(tmp_path / "sub")]) == 0
    man = read_manifest(tmp_path / "sub" / "manifest.jsonl")
    assert [(r["identity"], Path(r["path"]).name) for r in man] == [(0, "0.png"), (0, "1.png"), (0, "2.png"),
                                                                    (1, "0.png"), (1, "1.png")]
    assert (tmp_path / "sub" / man[3]["path"]).read_bytes() == (real / "7003" / "000.png").read_bytes()
    assert open_dataset(tmp_path / "sub").num_classes == 2


def test_counts_errors(big, tmp_path):
    root, k6 = big
    with pytest.raises(ValueError, match="has 6 images, counts asks for 7"):
        combine_datasets([k6], tmp_path / "a", counts=[7, 1, 1, 1])
    with pytest.raises(ValueError, match="3 entries but the result has 4"):
        combine_datasets([k6], tmp_path / "b", counts=[1, 1, 1])
    with pytest.raises(ValueError, match="not in the datasets"):
        combine_datasets([k6], tmp_path / "c", counts={"nobody": 2})
    with pytest.raises(ValueError, match="integers >= 0"):
        read_counts([1, -1])
    with pytest.raises(ValueError, match="at least two"):
        combine_datasets([k6], tmp_path / "d")
    mix = _gen(root / "ids.npy", tmp_path / "mix", images_per_id=4, variation="mixup:phi_min=0.5,phi_max=0.5")
    with pytest.raises(ValueError, match="soft label naming identity"):
        combine_datasets([mix], tmp_path / "e", counts=[4, 0, 0, 0])
