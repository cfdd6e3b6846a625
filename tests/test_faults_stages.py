"""Fault injection (issue 17), stage by stage: train (--val checked first, SIGTERM checkpoint, resume without
duplicate steps), corrupt RecordIO, the onnx embedder spec, ecosystem exports and sharding, the dataset card.
Inputs and locks: tests/test_faults.py."""
from __future__ import annotations

import json
import signal
import struct
import subprocess
import sys
import time

import numpy as np
import pytest

from _faults import _env, _fails, _gen, ids  # noqa: F401  (ids: a fixture)
from synthfr.app.cli import main


# -- 3. train: --val at start, SIGTERM checkpoint, resume without duplicate rows ----------------------------------
@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    from synthfr.training.toy import make_toy_dataset

    return make_toy_dataset(tmp_path_factory.mktemp("toy") / "data", classes=6, per_class=4, size=32)


def _train_args(toy, run, epochs):
    return ["train", "--data", toy, "--out", run, "--backbone", "test_tiny", "--embedding-size", "16",
            "--epochs", str(epochs), "--batch-size", "8", "--lr", "0.05", "--workers", "0", "--log-every", "1",
            "--device", "cpu", "--seed", "1", "--input-size", "32", "--quiet"]


def test_train_checks_val_before_training(toy, tmp_path, capsys):
    run = tmp_path / "run"
    _fails(capsys, [*_train_args(toy, run, 1), "--val", tmp_path / "nope" / "lfw.bin"], 2, "lfw.bin")
    assert not run.exists()
    (tmp_path / "bad.bin").write_bytes(b"\x80\x04garbage")
    _fails(capsys, [*_train_args(toy, run, 1), "--val", tmp_path / "bad.bin"], 1, "bad.bin")
    assert not run.exists()


def test_sigterm_checkpoints_and_resume_has_no_duplicate_steps(toy, tmp_path):
    run = tmp_path / "run"
    args = _train_args(toy, run, 400)  # 3 steps per epoch: far more than the test waits for
    p = subprocess.Popen([sys.executable, "-m", "synthfr.cli", *map(str, args)], env=_env(),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    t0 = time.time()
    while not (run / "log.csv").is_file() or len((run / "log.csv").read_text().splitlines()) < 6:
        assert p.poll() is None, p.communicate()
        assert time.time() - t0 < 180
        time.sleep(0.05)
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 128 + signal.SIGTERM and "Traceback" not in err and "--resume" in err
    ck = sorted((run / "checkpoints").iterdir())
    assert ck and not (run / "model.safetensors").exists()
    stopped = int(ck[-1].name.split("_")[1])
    total = stopped + 4
    assert main([str(a) for a in [*_train_args(toy, run, 400), "--resume", "--max-steps", str(total)]]) == 0
    import csv

    steps = [int(r["step"]) for r in csv.DictReader(open(run / "log.csv"))]
    assert steps == list(range(1, total + 1))  # every step once, in order


# -- 5. RecordIO ------------------------------------------------------------------------------------------------
def test_corrupt_rec_records_are_reported_and_skipped(ids, tmp_path, capsys):
    from synthfr.data.recordio import RecordIOReader

    ds = tmp_path / "ds"
    assert main([str(a) for a in _gen(ids, ds)]) == 0
    rec = tmp_path / "t.rec"
    assert main(["convert", str(ds), str(rec), "--quiet"]) == 0
    r = RecordIOReader(rec)
    off = r._offsets[3]
    r.close()
    raw = bytearray(rec.read_bytes())
    lrec = struct.unpack_from("<I", raw, off + 4)[0]
    for name, length in (("long", len(raw)), ("short", (lrec & ((1 << 29) - 1)) - 100)):
        bad = tmp_path / f"{name}.rec"
        b = bytearray(raw)
        struct.pack_into("<I", b, off + 4, (lrec & ~((1 << 29) - 1)) | length)
        bad.write_bytes(bytes(b))
        for ext in (".idx", ".lst"):
            bad.with_suffix(ext).write_bytes(rec.with_suffix(ext).read_bytes())
        capsys.readouterr()
        assert main(["convert", str(bad), str(tmp_path / name), "--quiet"]) == 0
        err = capsys.readouterr().err
        assert "1 corrupt records skipped" in err and "record 3" in err and "Traceback" not in err
        files = [p for p in (tmp_path / name).rglob("*.jpg")]
        assert len(files) == 7 and max(p.stat().st_size for p in files) < 20000
    # every record corrupt: refused
    junk = tmp_path / "junk.rec"
    junk.write_bytes(struct.pack("<II", 0xCED7230A, 10_000) + b"x" * 16)
    _fails(capsys, ["convert", junk, tmp_path / "junk", "--quiet"], 1, "junk.rec")


# -- 6. onnx embedder spec ------------------------------------------------------------------------------------------
def test_onnx_embedder_takes_its_path_in_embed_and_eval(tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    import warnings

    import torch

    from test_eval import make_fake_bin  # the benchmark maker of the evaluation tests

    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 8, stride=8), torch.nn.Flatten(),
                                torch.nn.Linear(4 * 14 * 14, 8))
    onnx = tmp_path / "m.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model.eval(), (torch.zeros(1, 3, 112, 112),), str(onnx), input_names=["data"],
                          output_names=["emb"], dynamic_axes={"data": {0: "n"}, "emb": {0: "n"}}, dynamo=False)
    faces = tmp_path / "faces" / "a"
    faces.mkdir(parents=True)
    from PIL import Image

    for i in range(3):
        px = np.random.default_rng(i).integers(0, 255, (112, 112, 3), dtype=np.uint8)
        Image.fromarray(px).save(faces / f"{i}.png")
    spec = f"onnx:path={onnx}"
    assert main(["embed", str(tmp_path / "faces"), "--embedder", spec, "--out", str(tmp_path / "e.npy"),
                 "--quiet"]) == 0
    assert np.load(tmp_path / "e.npy").shape == (3, 8)
    binp = make_fake_bin(tmp_path / "f.bin", pairs=10)
    assert main(["eval", "--embedder", spec, "--benchmark", str(binp), "--quiet", "--json",
                 str(tmp_path / "v.json")]) == 0
    assert json.loads((tmp_path / "v.json").read_text())["benchmarks"]


# -- 7. ecosystem --------------------------------------------------------------------------------------------------
def test_export_hf_parquet_round_trips_with_datasets(ids, tmp_path, monkeypatch):
    datasets = pytest.importorskip("datasets")
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    ds = tmp_path / "ds"
    assert main([str(a) for a in _gen(ids, ds, "--variation", "mixup")]) == 0
    out = tmp_path / "hf"
    assert main(["export-hf", str(ds), str(out), "--rows-per-file", "3", "--quiet"]) == 0
    assert len(list((out / "data").glob("*.parquet"))) == 3
    loaded = datasets.load_dataset("parquet", data_files=str(out / "data" / "*.parquet"), split="train")
    assert loaded.features["image"].__class__.__name__ == "Image"
    raw = loaded.cast_column("image", datasets.Image(decode=False))
    man = [json.loads(ln) for ln in (ds / "manifest.jsonl").read_text().splitlines()]
    assert len(raw) == len(man) == 8
    for row, m in zip(raw, man):
        assert row["image"]["bytes"] == (ds / m["path"]).read_bytes()
        assert row["label"] == m["label"] and row["path"] == m["path"]
        assert row.get("soft_label") == m.get("soft_label")
    from PIL import Image

    assert np.array_equal(np.asarray(loaded[0]["image"]), np.asarray(Image.open(ds / man[0]["path"])))
    card = (out / "README.md").read_text()
    assert card.startswith("---\n") and "data/train-*.parquet" in card and "# Synthetic face dataset" in card


def test_shard_auto_reads_slurm_and_torchrun(monkeypatch):
    from synthfr.data.shards import auto_shard

    for k in ("SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT", "SLURM_ARRAY_TASK_MIN", "RANK", "WORLD_SIZE"):
        monkeypatch.delenv(k, raising=False)
    assert auto_shard() == (0, 1)
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "5")
    monkeypatch.setenv("SLURM_ARRAY_TASK_COUNT", "4")
    monkeypatch.setenv("SLURM_ARRAY_TASK_MIN", "3")
    assert auto_shard() == (2, 4)
    monkeypatch.setenv("SLURM_ARRAY_TASK_MIN", "0")
    with pytest.raises(ValueError, match="not in 0..3"):
        auto_shard()
    for k in ("SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT"):
        monkeypatch.delenv(k)
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "3")
    assert auto_shard() == (1, 3) and auto_shard(torchrun=False) is None


def test_shard_auto_slurm_array_then_merge_equals_one_run(ids, tmp_path, monkeypatch):
    for k in ("RANK", "WORLD_SIZE"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("SLURM_ARRAY_TASK_COUNT", "2")
    for i in range(2):
        monkeypatch.setenv("SLURM_ARRAY_TASK_ID", str(i))
        assert main([str(a) for a in _gen(ids, tmp_path / f"s{i}", "--shard", "auto")]) == 0
    assert main(["merge", str(tmp_path / "s0"), str(tmp_path / "s1"), "--out", str(tmp_path / "m")]) == 0
    for k in ("SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT"):
        monkeypatch.delenv(k)
    assert main([str(a) for a in _gen(ids, tmp_path / "one")]) == 0
    for f in ("manifest.jsonl", "identities.npy", "config.yaml", "README.md"):
        assert (tmp_path / "m" / f).read_bytes() == (tmp_path / "one" / f).read_bytes(), f


# -- 8. dataset card --------------------------------------------------------------------------------------------
def test_card_figures_equal_quality_json(ids, tmp_path, capsys, monkeypatch):
    from synthfr.data.card import flatten_figures
    from synthfr.face.embedders import REGISTRY

    class Pixels:  # a tiny deterministic embedder: the mean colour of 8 tiles
        name, dim = "test-faults-pixels", 24

        def __init__(self, **kw):
            pass

        def embed(self, images, batch_size=64):
            x = np.asarray(images, dtype=np.float32).reshape(len(images), 8, 14, 112, 3).mean(axis=(2, 3))
            x = x.reshape(len(images), -1) - 127.0
            return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)

    monkeypatch.setitem(REGISTRY._entries, "test-faults-pixels", Pixels)
    ds = tmp_path / "ds"
    assert main([str(a) for a in _gen(ids, ds)]) == 0
    card = (ds / "README.md").read_text()
    assert card.startswith("---\n") and "license: other" in card and "Not measured yet" in card
    assert "test_pattern" in card and "--seed 0" in card
    assert main(["quality", str(ds / "images"), "--embedder", "test-faults-pixels", "--json", str(tmp_path / "q.json"),
                 "--quiet", "--embeddings-out", str(tmp_path / "qe.npy")]) == 0
    q = json.loads((tmp_path / "q.json").read_text())
    card = (ds / "README.md").read_text()
    figs = flatten_figures(q)
    assert figs and "verification.eer" in figs
    table = card[card.index("| figure | value |"):].split("\n\n", 1)[0].splitlines()[2:]
    rows = dict(ln[2:-2].split(" | ", 1) for ln in table)
    for k, v in figs.items():
        assert json.loads(rows[k]) == v, k  # exactly the figure of `synthfr quality`
    assert "Not measured with: dlib-torch, sface" in card


def test_card_names_inherited_licences_of_the_builtin_generator(tmp_path):
    import yaml

    from synthfr.data.card import render_dataset_card

    d = tmp_path / "d"
    (d / "images" / "0").mkdir(parents=True)
    (d / "config.yaml").write_text(yaml.safe_dump({"config": {"generator": "synthfr-small", "images_per_id": 1},
                                                   "seed": 0, "generator": {"name": "synthfr-small",
                                                                            "weights_sha256": "ab" * 32}}))
    (d / "manifest.jsonl").write_text(json.dumps({"identity": 0, "index": 0, "path": "images/0/0.jpg",
                                                  "label": 0}) + "\n")
    card = render_dataset_card(d)
    assert "CelebA" in card and "UTKFace" in card and "non-commercial" in card
    front = yaml.safe_load(card.split("---\n")[1])
    assert front["source_datasets"] == ["CelebA", "UTKFace"] and front["license"] == "other"
