"""`synthfr pipeline`: a tiny end-to-end run, resuming (skips), config-change errors, --force, shipped configs."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from synthfr.config import from_dict, load_yaml
from synthfr.app.pipeline import PipelineConfig, load_pipeline_config, parse_overrides, run_pipeline

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def _tiny(out: Path, train: bool = True) -> dict:
    return {
        "out": str(out), "seed": 3, "device": "cpu",
        "sample": {"method": "uniform", "n": 6, "dim": 16},
        "generate": {"generator": "test_pattern", "images_per_id": 2, "variation": "hyperface-noise:beta=0.01",
                     "options": {"workers": 1, "fsync": False}},
        "quality": {"enabled": True},
        "train": {"enabled": train, "config": {"backbone": "test_tiny", "embedding_size": 16, "batch_size": 4,
                                               "epochs": 1, "max_steps": 1, "num_workers": 0, "progress": False}},
    }


def _markers(out: Path) -> dict[str, float]:
    return {p.parent.name: p.stat().st_mtime_ns for p in out.glob("*/DONE.json")}


def test_pipeline_end_to_end_then_skips(tmp_path):
    out = tmp_path / "run"
    cfg = from_dict(PipelineConfig, _tiny(out))
    s1 = run_pipeline(cfg, log=lambda m: None)
    st = s1["stages"]
    assert [st[k]["status"] for k in ("sample", "generate", "quality", "train", "evaluate")] == \
        ["ran", "ran", "ran", "ran", "disabled"]
    ids = np.load(out / "sample" / "ids.npy")
    assert ids.shape == (6, 16)
    images = sorted((out / "generate" / "dataset" / "images").rglob("*.jpg"))
    assert len(images) == 12
    q = json.loads((out / "quality" / "quality.json").read_text())
    assert q["n_embeddings"] == 12 and q["n_identities"] == 6
    # test_pattern images decode back to their identity: consistency is near-perfect
    assert st["quality"]["summary"]["mean cos to own centre"] > 0.9
    assert (out / "quality" / "report.html").stat().st_size > 1000
    # the judges re-embed the images and stand side by side with the generator's own space (quality.judges=auto)
    assert list(q["networks"])[1:] == ["dlib-torch", "sface"] and set(q["judges"]) == {"dlib-torch", "sface"}
    assert q["judges"]["sface"]["n_embeddings"] == 12 and "sface: separability" in st["quality"]["summary"]
    assert "Networks side by side" in (out / "quality" / "report.html").read_text()
    assert (out / "train" / "run" / "model.safetensors").is_file()
    assert st["train"]["summary"]["final step"] == 1
    for stage in ("sample", "generate", "quality", "train"):
        marker = json.loads((out / stage / "DONE.json").read_text())
        assert marker["stage"] == stage and marker["config"] and "summary" in marker
    assert (out / "config.yaml").is_file()
    assert json.loads((out / "pipeline.json").read_text())["stages"]["train"]["status"] == "ran"

    before = _markers(out)
    mtime_img = images[0].stat().st_mtime_ns
    s2 = run_pipeline(from_dict(PipelineConfig, _tiny(out)), log=lambda m: None)
    assert {k: v["status"] for k, v in s2["stages"].items()} == \
        {"sample": "skipped", "generate": "skipped", "quality": "skipped", "train": "skipped", "evaluate": "disabled"}
    assert _markers(out) == before and images[0].stat().st_mtime_ns == mtime_img
    assert s2["stages"]["quality"]["summary"] == st["quality"]["summary"]

    # run-only settings never invalidate a stage
    d = _tiny(out)
    d["device"] = "auto"
    d["generate"]["options"]["workers"] = 2
    d["train"]["config"]["num_workers"] = 1
    s3 = run_pipeline(from_dict(PipelineConfig, d), log=lambda m: None)
    assert s3["stages"]["train"]["status"] == "skipped"

    # a changed completed stage is an error naming the stage and the change ...
    d = _tiny(out)
    d["generate"]["images_per_id"] = 3
    with pytest.raises(ValueError, match=r"generate.*images_per_id: 2 -> 3.*--force generate"):
        run_pipeline(from_dict(PipelineConfig, d), log=lambda m: None)
    assert _markers(out) == before  # nothing ran
    assert "images_per_id: 2" in (out / "config.yaml").read_text()  # the recorded config is still the run's
    # ... and --force re-runs it and every later stage, but not the earlier ones
    s4 = run_pipeline(from_dict(PipelineConfig, d), force=["generate"], log=lambda m: None)
    assert {k: v["status"] for k, v in s4["stages"].items()} == \
        {"sample": "skipped", "generate": "ran", "quality": "ran", "train": "ran", "evaluate": "disabled"}
    assert len(list((out / "generate" / "dataset" / "images").rglob("*.jpg"))) == 18


def test_pipeline_resumes_interrupted_stage_and_evaluates(tmp_path):
    """Generation without its marker resumes in place; evaluation with a registered embedder works on a .bin."""
    from synthfr.data.benchmarks import write_bin

    out = tmp_path / "run"
    d = _tiny(out, train=False)
    run_pipeline(from_dict(PipelineConfig, d), log=lambda m: None)
    (out / "generate" / "DONE.json").unlink()  # as if killed after the last identity
    mt = (out / "sample" / "DONE.json").stat().st_mtime_ns
    s = run_pipeline(from_dict(PipelineConfig, d), log=lambda m: None)
    assert s["stages"]["sample"]["status"] == "skipped" and s["stages"]["generate"]["status"] == "ran"
    assert s["stages"]["generate"]["summary"]["identities_skipped"] == 6  # per-identity resume
    assert s["stages"]["quality"]["status"] == "ran"  # downstream of a re-run stage
    assert (out / "sample" / "DONE.json").stat().st_mtime_ns == mt

    # a tiny benchmark built from the generated images (same identity = same folder)
    img = {p.parent.name: [] for p in (out / "generate" / "dataset" / "images").rglob("*.jpg")}
    for p in sorted((out / "generate" / "dataset" / "images").rglob("*.jpg")):
        img[p.parent.name].append(p.read_bytes())
    names = sorted(img)
    pairs, same = [], []
    for r in range(4):
        for i, n in enumerate(names):
            pairs += [img[n][0], img[n][1]]
            same.append(True)
            pairs += [img[n][r % 2], img[names[(i + 1 + r) % len(names)]][0]]
            same.append(False)
    bench = write_bin(tmp_path / "tiny.bin", pairs, same)
    d["evaluate"] = {"enabled": True, "benchmarks": [str(bench)], "embedder": "dlib-torch"}
    d["quality"]["enabled"] = False
    s = run_pipeline(from_dict(PipelineConfig, d), log=lambda m: None)
    assert s["stages"]["evaluate"]["status"] == "ran" and s["stages"]["quality"]["status"] == "disabled"
    res = json.loads((out / "evaluate" / "eval.json").read_text())
    assert res["benchmarks"]["tiny"]["pairs"] == len(same)
    assert 0.0 <= s["stages"]["evaluate"]["summary"]["tiny accuracy"] <= 1.0


def test_unknown_keys_and_overrides(tmp_path):
    base = _tiny(tmp_path / "o")
    with pytest.raises(KeyError, match="bogus"):
        from_dict(PipelineConfig, {**base, "bogus": 1})
    with pytest.raises(KeyError, match="sample.metod"):
        from_dict(PipelineConfig, {**base, "sample": {"metod": "uniform"}})
    with pytest.raises(KeyError, match="train.config.epoch"):
        from_dict(PipelineConfig, {**base, "train": {"config": {"epoch": 2}}})
    with pytest.raises(KeyError, match="generate.options.align_chek"):
        from_dict(PipelineConfig, {**base, "generate": {"options": {"align_chek": 2.0}}})
    with pytest.raises(KeyError, match="train.config.data.*set by the pipeline"):
        from_dict(PipelineConfig, {**base, "train": {"config": {"data": "x"}}})

    import yaml

    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(base))
    ov = parse_overrides(["train.config.epochs=2", "evaluate.benchmarks=[a.bin, b.bin]", "sample.options.tau=0.3",
                          "generate.variation=mixup:phi=0.2"])
    assert ov == {"train.config.epochs": 2, "evaluate.benchmarks": ["a.bin", "b.bin"], "sample.options.tau": 0.3,
                  "generate.variation": "mixup:phi=0.2"}
    cfg = load_pipeline_config(path, ov, out=str(tmp_path / "x"))
    assert cfg.train.config["epochs"] == 2 and cfg.train.config["backbone"] == "test_tiny"
    assert cfg.evaluate.benchmarks == ["a.bin", "b.bin"] and cfg.sample.options == {"tau": 0.3}
    assert cfg.out == str(tmp_path / "x")
    with pytest.raises(KeyError, match="sample.nn"):
        load_pipeline_config(path, {"sample.nn": 3})
    # evaluation without a benchmark fails before anything runs
    cfg = load_pipeline_config(path, {"evaluate.enabled": True})
    with pytest.raises(ValueError, match="evaluate.benchmarks"):
        run_pipeline(cfg, log=lambda m: None)
    assert not (tmp_path / "o").exists()


def test_cli(tmp_path, capsys):
    import yaml

    from synthfr.app.cli import main

    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(_tiny(tmp_path / "o", train=False)))
    assert main(["pipeline", str(path), "--out", str(tmp_path / "cli"), "--set", "quality.enabled=false",
                 "--json", str(tmp_path / "s.json")]) == 0
    s = json.loads((tmp_path / "s.json").read_text())
    assert s["stages"]["generate"]["status"] == "ran" and s["stages"]["quality"]["status"] == "disabled"
    assert (tmp_path / "cli" / "generate" / "DONE.json").is_file()


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_configs_parse(path):
    cfg = load_yaml(path, PipelineConfig)
    assert isinstance(cfg, PipelineConfig) and cfg.sample.n > 0 and cfg.generate.images_per_id > 0
    assert cfg.sample.dim is not None or cfg.sample.gallery is not None


def test_configs_exist():
    names = {p.name for p in CONFIGS.glob("*.yaml")}
    assert {"quickstart.yaml", "cpu-experiment.yaml", "hyperface-arc2face.yaml", "vec2face-hsface10k.yaml",
            "synface-mixup.yaml", "vigface.yaml"} <= names


@pytest.mark.slow
def test_pipeline_under_torchrun(tmp_path):
    """Two processes: generation and training split across ranks, the other stages on rank 0; resumable."""
    import shutil
    import subprocess
    import sys

    import yaml

    torchrun = Path(sys.executable).with_name("torchrun")
    if not torchrun.exists() and shutil.which("torchrun") is None:
        pytest.skip("torchrun not installed")
    out = tmp_path / "ddp"
    d = _tiny(out)
    d["train"]["config"]["max_steps"] = 2
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(d))
    cmd = [str(torchrun if torchrun.exists() else shutil.which("torchrun")), "--standalone", "--nproc_per_node", "2",
           "-m", "synthfr.cli", "pipeline", str(path)]
    subprocess.run(cmd, check=True, timeout=240, capture_output=True)
    logs = sorted((out / "generate" / "dataset" / "logs").glob("summary-*-of-2-*.json"))
    assert len(logs) == 2 and sum(json.loads(p.read_text())["identities_generated"] for p in logs) == 6
    assert len(list((out / "generate" / "dataset" / "images").rglob("*.jpg"))) == 12
    assert (out / "train" / "run" / "model.safetensors").is_file()
    before = _markers(out)
    subprocess.run(cmd, check=True, timeout=240, capture_output=True)
    assert _markers(out) == before
    assert {v["status"] for v in json.loads((out / "pipeline.json").read_text())["stages"].values()} == \
        {"skipped", "disabled"}


def test_quality_judges_none_measures_only_the_generators_space(tmp_path):
    d = _tiny(tmp_path / "run")
    d["quality"] = {**d.get("quality", {}), "judges": "none"}
    d["train"]["enabled"] = False
    s = run_pipeline(from_dict(PipelineConfig, d), log=lambda m: None)
    q = json.loads((tmp_path / "run" / "quality" / "quality.json").read_text())
    assert s["stages"]["quality"]["status"] == "ran" and "judges" not in q and "networks" not in q
    assert not any(k.startswith("sface:") for k in s["stages"]["quality"]["summary"])
