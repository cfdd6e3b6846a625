"""Fault injection (issue 17): every bad input exits non-zero with one line (no traceback), leaves no folder that
blocks the corrected command, and the corrected command then works. Tiny inputs and the test generator only."""
from __future__ import annotations

import json
import os
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from synthfr.app.cli import main

SRC = str(Path(__file__).resolve().parents[1] / "src")


def _env(**kw):
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", ""), "PYTHONWARNINGS": "ignore"}
    env.pop("SYNTHFR_DEBUG", None)
    env.update(kw)
    return env


def _cli(args, cwd=None, timeout=240, **env):
    return subprocess.run([sys.executable, "-m", "synthfr.cli", *map(str, args)], cwd=cwd, env=_env(**env),
                          capture_output=True, text=True, timeout=timeout)


def _fails(capsys, argv, code, *needles):
    """main(argv) exits with ``code`` and one stderr line (no traceback) containing every needle."""
    capsys.readouterr()
    rc = main([str(a) for a in argv])
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert rc == code, (rc, err)
    assert len(lines) == 1 and "Traceback" not in err, err
    for n in needles:
        assert n in err, (n, err)
    return err


@pytest.fixture
def ids(tmp_path):
    from synthfr.samplers import sample_identities

    p = tmp_path / "ids.npy"
    sample_identities("uniform", 4, dim=16, seed=0, out=p)
    return p


def _gen(ids, out, *extra):
    return ["generate", "--identities", ids, "--generator", "test_pattern", "--images-per-id", "2", "--out", out,
            "--no-progress", *extra]


# -- 1. one error path --------------------------------------------------------------------------------------
@pytest.mark.parametrize("extra,needle", [
    (["--variation", "hyperface-noise:beta=abc"], "beta"),
    (["--variation", "nope"], "unknown variation"),
    (["--image-format", "gif"], "--image-format"),
    (["--num-identities", "-2"], "--num-identities"),
    (["--filter-min-sim", "5"], "--filter-min-sim"),
    (["--jpeg-quality", "500"], "--jpeg-quality"),
    (["--batch-size", "0"], "--batch-size"),
    (["--shard", "3/2"], "--shard"),
])
def test_bad_generate_flags_leave_no_folder(ids, tmp_path, capsys, extra, needle):
    out = tmp_path / "ds"
    _fails(capsys, _gen(ids, out, *extra), 2, needle)
    assert not out.exists()
    assert main([str(a) for a in _gen(ids, out)]) == 0  # the corrected command works
    assert (out / "manifest.jsonl").is_file() and (out / "README.md").is_file()


def test_out_that_is_a_file_and_cuda_without_cuda(ids, tmp_path, capsys):
    f = tmp_path / "file.txt"
    f.write_text("x")
    _fails(capsys, _gen(ids, f), 2, "is a file")
    _fails(capsys, _gen(ids, f / "sub"), 2, "is a file")
    import torch

    if not torch.cuda.is_available():
        _fails(capsys, _gen(ids, tmp_path / "c", "--device", "cuda"), 2, "CUDA is not available")
        assert not (tmp_path / "c").exists()


@pytest.mark.parametrize("kind", ["nan", "inf", "zero", "empty", "strings", "garbage", "3d"])
def test_bad_identity_arrays_name_file_and_row(ids, tmp_path, capsys, kind):
    a = np.load(ids)
    bad = tmp_path / f"{kind}.npy"
    if kind == "nan":
        a[2, 3] = np.nan
    elif kind == "inf":
        a[1, 0] = np.inf
    elif kind == "zero":
        a[3] = 0
    elif kind == "empty":
        a = a[:0]
    elif kind == "strings":
        a = np.array([["a", "b"]])
    elif kind == "3d":
        a = a[None]
    if kind == "garbage":
        bad.write_bytes(b"not a numpy file")
    else:
        np.save(bad, a)
    err = _fails(capsys, _gen(bad, tmp_path / "ds"), 1, bad.name)
    row = {"nan": "row 2", "inf": "row 1", "zero": "row 3", "empty": "0 identity"}.get(kind)
    if row:
        assert row in err
    assert not (tmp_path / "ds").exists()


def test_nan_gallery_and_nan_embeddings_are_refused(ids, tmp_path, capsys):
    gal = np.random.default_rng(0).standard_normal((50, 16)).astype(np.float32)
    gal[7] = np.nan
    np.save(tmp_path / "gal.npy", gal)
    _fails(capsys, ["sample", "vec2face", "--n", "3", "--gallery", tmp_path / "gal.npy", "--out", tmp_path / "o.npy"],
           1, "gal.npy", "row 7")
    assert not (tmp_path / "o.npy").exists()
    e = np.random.default_rng(1).standard_normal((12, 8)).astype(np.float32)
    e[5] = 0
    np.save(tmp_path / "e.npy", e)
    np.save(tmp_path / "e.labels.npy", np.repeat(np.arange(4), 3))
    _fails(capsys, ["quality", "--embeddings", tmp_path / "e.npy"], 1, "e.npy", "row 5")
    np.save(tmp_path / "e.labels.npy", np.arange(5))
    e[5] = 1
    np.save(tmp_path / "e.npy", e)
    _fails(capsys, ["quality", "--embeddings", tmp_path / "e.npy"], 1, "5 labels", "12 rows")


@pytest.mark.parametrize("argv,needle", [
    (["sample", "uniform", "--n", "4", "--dim", "0"], "--dim"),
    (["sample", "uniform", "--n", "-2", "--dim", "8"], "--n"),
    (["sample", "vec2face", "--n", "4", "--dim", "8", "--tau", "2"], "--tau"),
    (["sample", "uniform", "--n", "4"], "--dim"),
    (["generate", "--identities", "nope.npy", "--out", "x"], "nope.npy"),
    (["embed", ".", "--embedder", "dlib-torch", "--out", "e.npy", "--batch-size", "0"], "--batch-size"),
    (["embed", ".", "--embedder", "onnx", "--out", "e.npy"], "onnx:path="),
    (["embed", ".", "--embedder", "onnx:path=missing.onnx", "--out", "e.npy"], "missing.onnx"),
    (["eval", "--embedder", "nope", "--benchmark", "x.bin"], "nope"),
    (["sample", "uniform", "--n", "abc"], "invalid int"),
])
def test_usage_errors_exit_2_in_one_line(tmp_path, capsys, monkeypatch, argv, needle):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "img").mkdir()
    if argv[0] == "eval":
        from test_eval import make_fake_bin

        make_fake_bin(tmp_path / "x.bin", pairs=10)
    try:
        _fails(capsys, argv, 2, needle)
    except SystemExit as e:  # argparse errors: exit 2, one line
        assert e.code == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and needle in err


def test_corrupt_benchmark_is_one_line(tmp_path, capsys):
    (tmp_path / "x.bin").write_bytes(b"\x80\x04garbage")
    _fails(capsys, ["eval", "--embedder", "dlib-torch", "--benchmark", tmp_path / "x.bin"], 2, "x.bin")


def test_yaml_tags_syntax_and_types_in_pipeline(ids, tmp_path, capsys):
    tag = tmp_path / "tag.yaml"
    tag.write_text("out: x\nsample: !!python/object/apply:os.system [echo hacked]\n")
    _fails(capsys, ["pipeline", tag], 2, "tag.yaml")
    syn = tmp_path / "syn.yaml"
    syn.write_text("out: [1, 2\n")
    _fails(capsys, ["pipeline", syn], 2, "syn.yaml", "line")
    out = tmp_path / "p"
    cfg = tmp_path / "p.yaml"
    base = (f"out: {out}\nsample: {{method: uniform, n: 3, dim: 16}}\nquality: {{enabled: false}}\n"
            "generate: {generator: test_pattern, images_per_id: IPI}\n")
    cfg.write_text(base.replace("IPI", '"3"'))
    _fails(capsys, ["pipeline", cfg], 2, "images_per_id", "'3'")
    assert not out.exists()
    cfg.write_text(base.replace("IPI", "3"))
    _fails(capsys, ["pipeline", cfg, "--set", "generate.variation=hyperface-noise:beta=abc"], 2, "beta")
    _fails(capsys, ["pipeline", cfg, "--set", "generate.options={image_format: gif}"], 2, "image-format")
    assert not out.exists()
    assert main(["pipeline", str(cfg)]) == 0
    assert (out / "generate" / "dataset" / "README.md").is_file()


def test_corrupt_weights_disk_full_and_debug(ids, tmp_path, capsys, monkeypatch):
    import synthfr.app.commands.generate as gen_cmd

    w = tmp_path / "w"
    w.mkdir()
    from synthfr.weights import __file__ as wfile

    (w / "config.json").write_bytes((Path(wfile).parent / "synthfr-small" / "config.json").read_bytes())
    (w / "model.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{garbage")
    ids128 = tmp_path / "ids128.npy"
    np.save(ids128, np.random.default_rng(0).standard_normal((2, 128)).astype(np.float32))
    argv = ["generate", "--identities", ids128, "--generator", "synthfr-small", "--weights", w, "--out",
            tmp_path / "g", "--no-progress"]
    _fails(capsys, argv, 1)
    assert not (tmp_path / "g").exists()

    def disk_full(*a, **k):
        raise OSError(28, "No space left on device", str(tmp_path / "ds" / "x.jpg"))

    monkeypatch.setattr("synthfr.generation.generate_dataset", disk_full)
    _fails(capsys, _gen(ids, tmp_path / "ds"), 1, "disk full", "x.jpg")
    with pytest.raises(OSError):
        main([str(a) for a in _gen(ids, tmp_path / "ds", "--debug")])
    with pytest.raises(OSError):
        main(["--debug", *[str(a) for a in _gen(ids, tmp_path / "ds")]])
    assert gen_cmd  # the command module is the one patched through


def test_no_traceback_in_a_subprocess(tmp_path):
    p = _cli(["generate", "--identities", tmp_path / "none.npy", "--out", tmp_path / "o"])
    assert p.returncode == 2 and "Traceback" not in p.stderr and len(p.stderr.strip().splitlines()) == 1
    p = _cli(["generate", "--identities", tmp_path / "none.npy", "--out", tmp_path / "o"], SYNTHFR_DEBUG="1")
    assert p.returncode != 0 and "Traceback" in p.stderr


# -- image sources: empty results, symlinks -----------------------------------------------------------------
def test_empty_sources_exit_nonzero(ids, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    _fails(capsys, ["align", empty, tmp_path / "aligned"], 1, "no images")
    assert not (tmp_path / "aligned").exists()
    bad = tmp_path / "bad" / "id0"
    bad.mkdir(parents=True)
    (bad / "a.jpg").write_bytes(b"not a jpeg")
    _fails(capsys, ["embed", tmp_path / "bad", "--embedder", "dlib-torch", "--out", tmp_path / "e.npy", "--quiet"],
           1, "0 of 1")
    assert not (tmp_path / "e.npy").exists()


def test_symlinked_identity_folders_are_followed_everywhere(tmp_path):
    from synthfr.data.imagefolder import scan_image_folder
    from synthfr.evaluation.embed import list_images as embed_list
    from synthfr.face.align import list_images as align_list

    real = tmp_path / "elsewhere" / "bob"
    real.mkdir(parents=True)
    (real / "1.jpg").write_bytes(b"x")
    root = tmp_path / "data"
    (root / "alice").mkdir(parents=True)
    (root / "alice" / "1.jpg").write_bytes(b"x")
    (root / "bob").symlink_to(real, target_is_directory=True)
    (root / "alice" / "loop").symlink_to(root, target_is_directory=True)  # a loop is read once
    want = ["alice/1.jpg", "bob/1.jpg"]
    assert sorted(str(p) for p in align_list(root)) == want
    assert sorted(p.relative_to(root).as_posix() for p in embed_list(root)) == want
    paths, labels, names = scan_image_folder(root)
    assert sorted(paths) == want and names == ["alice", "bob"]


# -- 2. locks -------------------------------------------------------------------------------------------------
def test_concurrent_generate_one_refuses_naming_the_lock(ids, tmp_path):
    from synthfr.utils.lock import lock_path

    out, ref = tmp_path / "ds", tmp_path / "ref"
    args = _gen(ids, out)
    args[args.index("2")] = "12"  # 4 x 12 images: long enough to overlap
    slow = subprocess.Popen([sys.executable, "-m", "synthfr.cli", *map(str, args), "--batch-size", "1"],
                            env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        t0 = time.time()
        while not lock_path(out).exists():
            assert slow.poll() is None, slow.communicate()
            assert time.time() - t0 < 120
            time.sleep(0.05)
        loser = _cli(args)
        assert loser.returncode == 1 and "Traceback" not in loser.stderr
        assert "in use" in loser.stderr and f"pid {slow.pid}" in loser.stderr and ".synthfr.lock" in loser.stderr
    finally:
        so, se = slow.communicate(timeout=240)
    assert slow.returncode == 0, se
    assert not lock_path(out).exists()
    ra = list(args)
    ra[ra.index(out)] = ref
    assert main([str(a) for a in ra]) == 0
    files = sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file() and "logs" not in p.parts)
    assert files == sorted(p.relative_to(ref) for p in ref.rglob("*") if p.is_file() and "logs" not in p.parts)
    for f in files:
        assert (out / f).read_bytes() == (ref / f).read_bytes(), f


def test_stale_lock_is_taken_over(tmp_path):
    import socket

    from synthfr.errors import LockedError
    from synthfr.utils.lock import FolderLock, lock_path

    d = tmp_path / "d"
    d.mkdir()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    lock_path(d).write_text(json.dumps({"pid": int(dead.stdout), "host": socket.gethostname(), "started": "then"}))
    with FolderLock(d, "test"):
        assert json.loads(lock_path(d).read_text())["pid"] == os.getpid()
        with pytest.raises(LockedError, match="in use"):
            FolderLock(d, "other").acquire()
    assert not lock_path(d).exists()
    lock_path(d).write_text(json.dumps({"pid": 1, "host": "another-host", "started": "then"}))
    with pytest.raises(LockedError, match="another-host"):
        FolderLock(d, "test").acquire()


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
