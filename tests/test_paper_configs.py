"""Every config docs/reproducing.md names runs its first training step on CPU with tiny settings.

Only sizes and hardware are overridden (as a user would with ``--set``): a handful of 16-D identities, the
``test_pattern`` generator instead of the GPU generators whose weights are not shipped, a tiny backbone, one
step. The recipe itself - sampler options, variation, head and margins, schedule, augmentation, mixups - runs as
written, so a key the code does not know, or a recipe option that fails, fails here.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from synthfr.app.pipeline import load_pipeline_config, run_pipeline

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "reproducing.md"
PAPER_CONFIGS = ["hyperface-arc2face.yaml", "vec2face-hsface10k.yaml", "synface-mixup.yaml", "vigface.yaml"]


def _named() -> list[str]:
    return sorted(set(re.findall(r"configs/([\w.-]+\.yaml)", DOC.read_text())) | set(PAPER_CONFIGS))


def _tiny_overrides(name: str, tmp: Path) -> dict:
    """Sizes and hardware only."""
    from synthfr.training.toy import make_toy_dataset

    rng = np.random.default_rng(0)
    gallery = rng.standard_normal((24, 16)).astype(np.float32)
    gallery /= np.linalg.norm(gallery, axis=1, keepdims=True)
    np.save(tmp / "gal.npy", gallery)
    np.save(tmp / "gal.labels.npy", np.repeat(np.arange(6), 4))
    ov = {
        "device": "cpu", "sample.n": 4, "sample.dim": 16,
        "generate.generator": "test_pattern", "generate.weights": None, "generate.images_per_id": 2,
        "generate.filter_min_sim": None, "generate.embedder": None,
        "generate.options.workers": 1, "generate.options.fsync": False,
        "quality.enabled": False, "evaluate.enabled": False,
        "train.config.backbone": "test_tiny", "train.config.embedding_size": 16, "train.config.batch_size": 4,
        "train.config.max_steps": 1, "train.config.num_workers": 0, "train.config.input_size": 32,
        "train.config.progress": False,
    }
    if name.startswith("hyperface") or name in ("quickstart.yaml", "cpu-experiment.yaml"):
        ov.update({"sample.gallery": str(tmp / "gal.npy"), "sample.options.iterations": 3,
                   "sample.options.time_budget": None})
        if name.startswith("hyperface"):
            ov["sample.options.device"] = "cpu"
    if name.startswith("vec2face"):
        ov["sample.gallery"] = str(tmp / "gal.npy")  # the paper's PCA proposal needs real features
    if name.startswith("vigface"):
        ov.update({"sample.gallery": str(tmp / "gal.npy"), "sample.options.epochs": 1,
                   "sample.options.device": "cpu"})
    if name.startswith("synface"):
        ov["train.config.domain_mixup"] = str(make_toy_dataset(tmp / "real", classes=3, per_class=4, size=32))
    return ov


@pytest.mark.parametrize("name", _named())
def test_config_runs_its_first_step(name, tmp_path):
    path = ROOT / "configs" / name
    assert path.is_file(), f"docs/reproducing.md names configs/{name}, which does not exist"
    cfg = load_pipeline_config(path, _tiny_overrides(name, tmp_path), out=str(tmp_path / "run"))
    recipe = dict(cfg.train.config)
    summary = run_pipeline(cfg, log=lambda m: None)
    assert summary["stages"]["train"]["status"] == "ran"
    meta = json.loads((tmp_path / "run" / "train" / "run" / "config.json").read_text())
    assert meta["final_step"] == 1
    ran = meta["config"]
    for key in ("head", "head_kwargs", "lr", "schedule", "milestones", "augment", "domain_mixup_ratio",
                "soft_label_logits",
                "momentum", "weight_decay", "warmup_epochs", "epochs"):
        if key in recipe:  # the recipe ran as written
            want = recipe[key]
            got = ran[key]
            if isinstance(want, dict):
                got = {k: got[k] for k in want}
            assert got == want, f"{name}: train.config.{key} ran as {got}, config says {want}"


def test_reproducing_names_the_paper_configs():
    named = set(re.findall(r"configs/([\w.-]+\.yaml)", DOC.read_text()))
    assert {"synface-mixup.yaml", "vigface.yaml"} <= named


@pytest.mark.parametrize("name", PAPER_CONFIGS)
def test_train_block_works_as_a_train_config_yaml(name, tmp_path):
    """The configs tell stage-by-stage users to pass their train.config block to `synthfr train --config`."""
    import argparse

    import yaml

    from synthfr.app.commands.train import add_arguments, build_config

    block = yaml.safe_load((ROOT / "configs" / name).read_text())["train"]["config"]
    (tmp_path / "t.yaml").write_text(yaml.safe_dump(block))
    p = argparse.ArgumentParser()
    add_arguments(p)
    cfg = build_config(p.parse_args(["--config", str(tmp_path / "t.yaml"), "--data", "d", "--out", "o"]))
    assert cfg.epochs == block["epochs"] and cfg.head_kwargs == block.get("head_kwargs", {})
