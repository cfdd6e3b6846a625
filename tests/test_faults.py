"""Fault injection (issue 17), inputs and locks: every bad input exits non-zero with one line (no traceback),
leaves no folder that blocks the corrected command, and the corrected command then works. Tiny inputs and the
test generator only; training, RecordIO, embedders, ecosystem and the card: tests/test_faults_stages.py."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from _faults import _cli, _env, _fails, _gen, ids  # noqa: F401  (ids: a fixture)
from synthfr.app.cli import main


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
