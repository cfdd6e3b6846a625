"""Training on several datasets: disjoint class ids per source, weighted epoch order, domain mixup with a source."""
from __future__ import annotations

import json

import numpy as np
import pytest
from safetensors.torch import load_file

from synthfr.data.multisource import MultiSourceDataset, epoch_order, open_datasets, source_counts
from synthfr.training.config import TrainConfig
from synthfr.training.loop import train
from synthfr.training.schedule import StepBatchSampler
from synthfr.training.toy import make_toy_dataset


@pytest.fixture(scope="module")
def two(tmp_path_factory):
    root = tmp_path_factory.mktemp("multi")
    syn = make_toy_dataset(root / "syn", classes=3, per_class=4, size=32, soft_every=3)  # manifest, soft labels
    real = make_toy_dataset(root / "real", classes=2, per_class=4, size=32, seed=7)      # plain ImageFolder
    return syn, real


def test_labels_of_sources_never_collide(two):
    syn, real = two
    ds = open_datasets([syn, real], input_size=32)
    assert isinstance(ds, MultiSourceDataset) and len(ds) == 20 and ds.num_classes == 5
    assert ds.class_offsets == [0, 3, 5]
    seen = {}
    for i in range(len(ds)):
        _, labels, weights, idx = ds[i]
        s, j = ds.locate(i)
        own = ds.datasets[s]
        assert idx == i
        # the source's own labels, shifted by the classes of the sources before it
        assert labels.tolist() == [own.labels_a[j] + 3 * s, own.labels_b[j] + 3 * s]
        seen.setdefault(s, set()).update(labels.tolist())
    assert seen[0] <= {0, 1, 2} and seen[1] == {3, 4}
    assert ds.has_soft_labels  # the soft labels of source 0 stay inside its class range
    assert open_datasets([syn], input_size=32).num_classes == 3  # one source: a plain dataset
    ds.label_offset = 10  # e.g. as the real partner of domain mixup
    assert ds[19][1].tolist() == [14, 14] and ds[0][1].min() >= 10


def test_weighted_epoch_order():
    sizes = [12, 8]
    plain = epoch_order(sizes, None, seed=0, epoch=0)
    assert sorted(plain.tolist()) == list(range(20))  # concatenation: every image once
    assert source_counts(sizes, [0.75, 0.25]).tolist() == [15, 5]
    assert source_counts(sizes, None).tolist() == [12, 8]
    w = epoch_order(sizes, [0.75, 0.25], seed=0, epoch=0)
    assert len(w) == 20
    a, b = w[w < 12], w[w >= 12]
    assert len(a) == 15 and set(a.tolist()) == set(range(12))  # over-sampled: all 12, then 3 repeats
    assert len(b) == 5 and len(set(b.tolist())) == 5  # under-sampled: without replacement
    assert np.array_equal(w, epoch_order(sizes, [0.75, 0.25], seed=0, epoch=0))
    assert not np.array_equal(w, epoch_order(sizes, [0.75, 0.25], seed=0, epoch=1))
    # the batch sampler follows it
    sm = StepBatchSampler(20, 4, 0, 0, 5, sizes=sizes, weights=[0.75, 0.25])
    assert [i for st in range(5) for i, _ in sm.batch(st)] == w.tolist()
    with pytest.raises(ValueError, match="one weight per"):
        source_counts(sizes, [1.0])


def _cfg(data, out, **kw):
    base = dict(data=data, out=str(out), backbone="test_tiny", embedding_size=16, head="arcface",
                head_kwargs={"s": 16.0, "m": 0.3}, epochs=1, batch_size=4, lr=0.05, num_workers=0, log_every=1,
                progress=False, device="cpu", seed=1, input_size=32)
    base.update(kw)
    return TrainConfig(**base)


def test_train_on_synthetic_plus_real(two, tmp_path):
    syn, real = two
    run = train(_cfg([str(syn), str(real)], tmp_path / "mix", data_weights=[0.5, 0.5]))
    meta = json.loads((run / "config.json").read_text())
    assert meta["num_classes"] == 5 and meta["classes"] == {"data": 5, "real": 0, "virtual": 0}
    assert [s["class_offset"] for s in meta["sources"]] == [0, 3]
    assert [s["weight"] for s in meta["sources"]] == [0.5, 0.5]
    assert load_file(str(run / "head.safetensors"))["weight"].shape == (5, 16)
    # domain mixup with one of the sources keeps its classes (no new rows) ...
    run = train(_cfg([str(syn), str(real)], tmp_path / "mixdm", domain_mixup=str(real)))
    assert json.loads((run / "config.json").read_text())["num_classes"] == 5
    # ... a separate real set gets new ones
    run = train(_cfg(str(syn), tmp_path / "dm", domain_mixup=str(real)))
    assert json.loads((run / "config.json").read_text())["num_classes"] == 5
    with pytest.raises(ValueError, match="needs several"):
        train(_cfg(str(syn), tmp_path / "bad", data_weights=[1.0]))


def test_cli_several_data(two, tmp_path):
    from synthfr.app.cli import main

    syn, real = two
    out = tmp_path / "cli"
    assert main(["train", "--data", str(syn), str(real), "--data-weights", "3", "1", "--out", str(out),
                 "--backbone", "test_tiny", "--embedding-size", "16", "--batch-size", "4", "--max-steps", "2",
                 "--workers", "0", "--input-size", "32", "--device", "cpu", "--quiet"]) == 0
    meta = json.loads((out / "config.json").read_text())
    assert meta["config"]["data"] == [str(syn), str(real)] and meta["config"]["data_weights"] == [3.0, 1.0]
    assert [s["weight"] for s in meta["sources"]] == [0.75, 0.25]


def test_pipeline_extra_data(two, tmp_path):
    from synthfr.config import from_dict
    from synthfr.app.pipeline import PipelineConfig, run_pipeline

    _, real = two
    d = {"out": str(tmp_path / "p"), "seed": 3, "device": "cpu",
         "sample": {"method": "uniform", "n": 4, "dim": 16},
         "generate": {"generator": "test_pattern", "images_per_id": 2, "options": {"workers": 1, "fsync": False}},
         "train": {"enabled": True, "extra_data": [str(real)],
                   "config": {"backbone": "test_tiny", "embedding_size": 16, "batch_size": 4, "epochs": 1,
                              "max_steps": 1, "num_workers": 0, "progress": False, "input_size": 32,
                              "data_weights": [1, 1]}}}
    run_pipeline(from_dict(PipelineConfig, d), log=lambda m: None)
    meta = json.loads((tmp_path / "p" / "train" / "run" / "config.json").read_text())
    assert meta["num_classes"] == 4 + 2 and [s["images"] for s in meta["sources"]] == [8, 8]
