"""The generation pipeline: exactness under batching, SIGKILL + resume, shards + merge, torchrun, filter."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from synthfr.generation import GenerateConfig, generate_dataset, image_seed, merge_shards
from synthfr.registry import parse_spec
from synthfr.data.shards import parse_shard, shard_rows
from synthfr.data.manifest import read_manifest

PY = sys.executable


def _ids(path: Path, n: int = 12, d: int = 64, seed: int = 0) -> Path:
    v = np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    np.save(path, v)
    return path


def _tree(root: Path, skip=("logs",)) -> dict[str, bytes]:
    """Every file under root (relative path -> bytes), except run logs."""
    out = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root)
        if p.is_file() and rel.parts[0] not in skip:
            out[rel.as_posix()] = p.read_bytes()
    return out


def _cfg(ids: Path, out: Path, **kw) -> GenerateConfig:
    base = dict(identities=str(ids), generator="test_pattern", images_per_id=3, seed=7, out=str(out),
                fsync=False, device="cpu")
    base.update(kw)
    return GenerateConfig(**base)


def _cli(*args: str, env=None, **kw):
    e = dict(os.environ, OMP_NUM_THREADS="1", **(env or {}))
    return subprocess.run([PY, "-m", "synthfr.cli", *args], env=e, capture_output=True, text=True, **kw)


# -- small pieces -----------------------------------------------------------------------------------------
def test_parse_spec_and_shard():
    assert parse_spec("noise:beta=0.1,mode=fixed,n=3") == ("noise", {"beta": 0.1, "mode": "fixed", "n": 3})
    assert parse_spec(None) == (None, {})
    with pytest.raises(ValueError):
        parse_spec("noise:beta")
    assert parse_shard("1/4") == (1, 4)
    for bad in ("4/4", "x", "1/0"):
        with pytest.raises(ValueError):
            parse_shard(bad)
    for mode in ("strided", "contiguous"):
        parts = [shard_rows(11, i, 3, mode) for i in range(3)]
        assert sorted(np.concatenate(parts).tolist()) == list(range(11))  # a partition
    assert shard_rows(7, 1, 3, "strided").tolist() == [1, 4]
    assert shard_rows(7, 0, 3, "contiguous").tolist() == [0, 1, 2]


def test_layout_manifest_and_batch_independence(tmp_path):
    ids = _ids(tmp_path / "ids.npy")
    a = generate_dataset(_cfg(ids, tmp_path / "a", batch_size=64), progress=False)
    b = generate_dataset(_cfg(ids, tmp_path / "b", batch_size=5, workers=1), progress=False)
    assert a["images"] == 36 and a["complete"]
    ta, tb = _tree(tmp_path / "a"), _tree(tmp_path / "b")
    assert ta == tb  # batch size and worker count never change a byte
    assert {"config.yaml", "identities.npy", "manifest.jsonl", "images/000000/0.jpg", "images/000011/2.jpg"} <= set(ta)
    assert not (tmp_path / "a" / "parts").exists() and not (tmp_path / "a" / ".tmp").exists()
    recs = read_manifest(tmp_path / "a" / "manifest.jsonl")
    assert [(r["identity"], r["index"]) for r in recs] == [(i, k) for i in range(12) for k in range(3)]
    r = recs[4]
    assert r["path"] == "images/000001/1.jpg" and r["seed"] == image_seed(7, 1, 1) and r["label"] == 1
    assert r["generator"] == "test_pattern" and len(r["weights_sha256"]) == 64
    assert np.array_equal(np.load(tmp_path / "a" / "identities.npy"), np.load(ids))
    # the image shows its identity: decoding it gives the identity vector back
    from PIL import Image
    from synthfr.face.embedders.testing import PatternDecoder

    img = np.asarray(Image.open(tmp_path / "a" / "images" / "000005" / "2.jpg"))
    assert img.shape == (112, 112, 3)
    e = PatternDecoder(64).embed(img[None])[0]
    assert float(e @ np.load(ids)[5]) > 0.97


def test_refuses_to_overwrite_and_checks_settings(tmp_path):
    ids = _ids(tmp_path / "ids.npy")
    generate_dataset(_cfg(ids, tmp_path / "o"), progress=False)
    with pytest.raises(ValueError, match="--resume"):
        generate_dataset(_cfg(ids, tmp_path / "o"), progress=False)
    with pytest.raises(ValueError, match="different settings"):
        generate_dataset(_cfg(ids, tmp_path / "o", seed=8, resume=True), progress=False)
    s = generate_dataset(_cfg(ids, tmp_path / "o", resume=True), progress=False)  # nothing left to do
    assert s["identities_generated"] == 0 and s["complete"]
    with pytest.raises(FileNotFoundError, match="synthfr sample"):
        generate_dataset(_cfg(tmp_path / "nope.npy", tmp_path / "p"), progress=False)


def test_sigkill_then_resume_is_byte_identical(tmp_path):
    ids = _ids(tmp_path / "ids.npy", n=40)
    ref = tmp_path / "ref"
    generate_dataset(_cfg(ids, ref, generator="test_pattern:delay=0.01", images_per_id=4, batch_size=4),
                     progress=False)
    out = tmp_path / "killed"
    args = ["generate", "--identities", str(ids), "--generator", "test_pattern:delay=0.01", "--images-per-id", "4",
            "--seed", "7", "--out", str(out), "--batch-size", "4", "--device", "cpu", "--no-fsync", "--no-progress"]
    proc = subprocess.Popen([PY, "-m", "synthfr.cli", *args], env=dict(os.environ, OMP_NUM_THREADS="1"),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 60
    while time.time() < deadline:
        n = len(list((out / "parts").glob("*.jsonl"))) if (out / "parts").is_dir() else 0
        if n >= 8 or proc.poll() is not None:
            break
        time.sleep(0.02)
    assert proc.poll() is None, "generation finished before it could be killed: " + proc.stderr.read().decode()
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = len(list((out / "parts").glob("*.jsonl")))
    assert 8 <= done < 40 and not (out / "manifest.jsonl").exists()
    res = _cli(*args, "--resume", "--json", str(tmp_path / "s.json"))
    assert res.returncode == 0, res.stderr
    s = json.loads((tmp_path / "s.json").read_text())
    assert s["identities_skipped"] >= done and s["identities_generated"] == 40 - s["identities_skipped"]
    assert _tree(out) == _tree(ref)
    assert not (out / ".tmp").exists()


def test_two_shards_merged_equal_single_run(tmp_path):
    ids = _ids(tmp_path / "ids.npy", n=9)
    generate_dataset(_cfg(ids, tmp_path / "single"), progress=False)
    for i in range(2):
        s = generate_dataset(_cfg(ids, tmp_path / f"s{i}", shard=f"{i}/2"), progress=False)
        assert s["identities"] == len(range(i, 9, 2)) and s["complete"]
    with pytest.raises(ValueError, match="cover"):
        merge_shards([tmp_path / "s0"], tmp_path / "bad")
    res = _cli("merge", str(tmp_path / "s1"), str(tmp_path / "s0"), "--out", str(tmp_path / "merged"))
    assert res.returncode == 0, res.stderr
    assert _tree(tmp_path / "merged") == _tree(tmp_path / "single")


def test_torchrun_two_ranks_equal_single_run(tmp_path):
    pytest.importorskip("torch.distributed.run")
    ids = _ids(tmp_path / "ids.npy", n=10)
    generate_dataset(_cfg(ids, tmp_path / "single", shard_mode="contiguous"), progress=False)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [PY, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "synthfr.cli", "generate", "--identities", str(ids), "--images-per-id", "3", "--seed", "7",
           "--generator", "test_pattern", "--out", str(tmp_path / "tr"), "--device", "cpu", "--no-fsync",
           "--no-progress"]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-3000:]
    assert len(list((tmp_path / "tr" / "logs").glob("run-*-of-2-0.yaml"))) == 2  # both ranks ran
    t_tr, t_single = _tree(tmp_path / "tr"), _tree(tmp_path / "single")
    assert t_tr == t_single


def test_identity_filter_drops_and_regenerates_planted_bad_images(tmp_path):
    from synthfr.face.embedders.testing import PatternDecoder
    from synthfr.generators.testing import is_planted_bad

    ids = _ids(tmp_path / "ids.npy", n=10)
    cfg = _cfg(ids, tmp_path / "f", generator="test_flaky:bad_fraction=0.3", images_per_id=6,
               filter_min_sim=0.5, embedder="test-pattern", max_attempts=4, batch_size=7)
    s = generate_dataset(cfg, progress=False)
    recs = read_manifest(tmp_path / "f" / "manifest.jsonl")
    # brute force: walk every slot's attempts with the generator's own rule for planted bad seeds
    exp_dropped, exp_failed = 0, 0
    for r in recs:
        i, k = r["identity"], r["index"]
        a = 0
        while a < 4 and is_planted_bad(image_seed(7, i, k, a), 0.3):
            a += 1
        if a == 4:
            exp_failed += 1
            exp_dropped += 3
            assert r["passed"] is False and r["dropped"] == 3
        else:
            exp_dropped += a
            assert r["attempt"] == a and r["dropped"] == a and r["passed"] is True
            assert r["seed"] == image_seed(7, i, k, a) and r["similarity"] >= 0.5
    assert exp_dropped > 5  # the test does plant bad images
    assert s["dropped"] == exp_dropped == sum(r["dropped"] for r in recs) and s["failed_filter"] == exp_failed
    # every kept image that passed really is close to its identity on disk
    from PIL import Image

    v = np.load(ids)
    dec = PatternDecoder(64)
    for r in recs:
        img = np.asarray(Image.open(tmp_path / "f" / r["path"]))
        sim = float(dec.embed(img[None])[0] @ v[r["identity"]])
        assert (sim >= 0.5) == r["passed"]


def test_rec_format(tmp_path):
    from synthfr.data.insightface_rec import read_insightface_rec

    ids = _ids(tmp_path / "ids.npy", n=5)
    generate_dataset(_cfg(ids, tmp_path / "r", format="rec"), progress=False)
    assert (tmp_path / "r" / "train.rec").is_file() and not (tmp_path / "r" / "images").exists()
    reader, keys, ranges = read_insightface_rec(tmp_path / "r" / "train.rec")
    assert len(keys) == 15 and len(ranges) == 5
    header, data = reader.read(keys[4])
    assert int(np.asarray(header.label).reshape(-1)[0]) == 1 and data[:2] == b"\xff\xd8"


def test_cli_config_file_and_list(tmp_path):
    import yaml

    ids = _ids(tmp_path / "ids.npy", n=3)
    (tmp_path / "g.yaml").write_text(yaml.safe_dump({"identities": str(ids), "generator": "test_pattern",
                                                     "images_per_id": 2, "seed": 7, "out": str(tmp_path / "x"),
                                                     "fsync": False}))
    res = _cli("generate", "--config", str(tmp_path / "g.yaml"), "--images-per-id", "3", "--no-progress",
               "--json", str(tmp_path / "s.json"))
    assert res.returncode == 0, res.stderr
    assert json.loads((tmp_path / "s.json").read_text())["images"] == 9  # the flag overrides the file
    res = _cli("list", "generators")
    assert "test_pattern" in res.stdout and "test_flaky" in res.stdout


def test_batch_dependent_generators_get_per_identity_batches(tmp_path):
    """A generator that is not batch-invariant is fed one identity per call, cut identically in every run."""
    from synthfr.generators import create_generator

    calls = []

    def make():
        g = create_generator("test_flaky", bad_fraction=0.3)
        g.batch_invariant = False
        orig = g._generate

        def spy(c, s):
            calls.append(len(s))
            return orig(c, s)

        g._generate = spy
        return g

    ids = _ids(tmp_path / "ids.npy", n=7)
    kw = dict(generator="test_flaky:bad_fraction=0.3", images_per_id=5, batch_size=3, filter_min_sim=0.5,
              embedder="test-pattern")
    generate_dataset(_cfg(ids, tmp_path / "single", **kw), generator=make(), progress=False)
    assert max(calls) <= 3 and calls[:2] == [3, 2]  # identity 0: images 0-2, then 3-4 (never mixed with 1)
    for i in range(2):
        generate_dataset(_cfg(ids, tmp_path / f"s{i}", shard=f"{i}/2", **kw), generator=make(), progress=False)
    merge_shards([tmp_path / "s0", tmp_path / "s1"], tmp_path / "m")
    assert _tree(tmp_path / "m") == _tree(tmp_path / "single")
    import yaml

    assert yaml.safe_load((tmp_path / "single" / "config.yaml").read_text())["config"]["batch_size"] == 3


def test_variation_in_standardised_space_and_space_carried(tmp_path):
    from synthfr.spaces import EmbeddingSpace
    from synthfr.utils.seeds import derive_seed
    from synthfr.variations import create_variation
    from synthfr.face.embedders.testing import PatternDecoder
    from PIL import Image

    d = 64
    rng = np.random.default_rng(1)
    gallery = rng.standard_normal((200, d)).astype(np.float32) + 2.0  # an off-centre cap, like dlib's space
    gallery /= np.linalg.norm(gallery, axis=1, keepdims=True)
    space = EmbeddingSpace.fit(gallery)
    std_ids = rng.standard_normal((6, d)).astype(np.float32)
    std_ids /= np.linalg.norm(std_ids, axis=1, keepdims=True)
    ids = np.asarray(space.from_standard(std_ids), dtype=np.float32)
    np.save(tmp_path / "ids.npy", ids)
    space.save(tmp_path / "ids.npy")
    out = tmp_path / "v"
    generate_dataset(_cfg(tmp_path / "ids.npy", out, variation="hyperface-noise:beta=0.2", images_per_id=4),
                     progress=False)
    back = EmbeddingSpace.load(out / "identities.npy")  # the space travels with the dataset
    assert np.allclose(back.to_standard(ids), space.to_standard(ids), atol=1e-5)
    recs = read_manifest(out / "manifest.jsonl")
    assert {r["variation"] for r in recs} == {"hyperface-noise"} and recs[0]["params"]["beta"] == 0.2
    # brute force: the conditions the images show are the variation's, applied in the standardised space
    var = create_variation("hyperface-noise", beta=0.2)
    res = var.apply_to(space.to_standard(ids), np.arange(6), 4, derive_seed(7, "variation"))
    cond = np.asarray(space.from_standard(res.conditions), dtype=np.float32)
    dec = PatternDecoder(d)
    for j, r in enumerate(recs):
        img = np.asarray(Image.open(out / r["path"]))
        e = dec.embed(img[None])[0]
        # it shows the varied condition, clearly not the plain identity vector
        assert float(e @ cond[j]) > 0.99 and float(e @ cond[j]) - float(e @ ids[r["identity"]]) > 0.03


def test_rec_shards_merged_equal_single_rec_run(tmp_path):
    ids = _ids(tmp_path / "ids.npy", n=5)
    generate_dataset(_cfg(ids, tmp_path / "single", format="rec"), progress=False)
    for i in range(2):
        generate_dataset(_cfg(ids, tmp_path / f"s{i}", shard=f"{i}/2", format="rec"), progress=False)
        assert (tmp_path / f"s{i}" / "images").is_dir()  # shards stay folders until the merge
    merge_shards([tmp_path / "s0", tmp_path / "s1"], tmp_path / "m", format="rec")
    assert _tree(tmp_path / "m") == _tree(tmp_path / "single")


class _HashAlignCheck:
    """A stand-in landmark checker: a pseudo-random 'error' in [0, 10) px from the image bytes."""

    def errors(self, images):
        import zlib

        return np.array([zlib.crc32(np.ascontiguousarray(im).tobytes()) % 1000 / 100.0 for im in images])


def test_alignment_check_regenerates_within_the_bound(tmp_path):
    from synthfr.generators import create_generator

    ids = _ids(tmp_path / "ids.npy", n=6)
    chk = _HashAlignCheck()
    s = generate_dataset(_cfg(ids, tmp_path / "a", align_check=4.0, max_attempts=3, images_per_id=4),
                         align_checker=chk, progress=False)
    recs = read_manifest(tmp_path / "a" / "manifest.jsonl")
    g = create_generator("test_pattern")
    v = np.load(ids)
    exp_drop = exp_fail = 0
    for r in recs:  # brute force: regenerate each slot's attempts one by one
        errs = [float(chk.errors(g.generate(v[r["identity"]][None], [image_seed(7, r["identity"], r["index"], a)]))[0])
                for a in range(3)]
        ok = [e <= 4.0 for e in errs]
        if any(ok):
            a = ok.index(True)
            assert r["attempt"] == a and r["passed"] and r["align_error"] == round(errs[a], 4)
            exp_drop += a
        else:
            exp_fail += 1
            exp_drop += 2
            assert not r["passed"] and r["align_error"] == round(min(errs), 4)
    assert exp_drop > 0 and s["dropped"] == s["dropped_alignment"] == exp_drop and s["failed_filter"] == exp_fail


def test_landmark_alignment_check_finds_no_face_in_a_pattern():
    from synthfr.generation import LandmarkAlignmentCheck
    from synthfr.generators import create_generator

    try:
        chk = LandmarkAlignmentCheck()
    except (FileNotFoundError, ImportError, RuntimeError) as e:
        pytest.skip(f"dlib models unavailable: {e}")
    img = create_generator("test_pattern").generate(np.ones((1, 8), np.float32), [0])
    assert np.isinf(chk.errors(img)).all()


def test_identities_from_a_sampler_spec(tmp_path):
    out = tmp_path / "spec"
    s = generate_dataset(_cfg("uniform:n=4,dim=32,seed=3", out, images_per_id=2), progress=False)
    assert s["images"] == 8 and (out / "sampled" / "ids.npy").is_file()
    v = np.load(out / "identities.npy")
    assert v.shape == (4, 32) and np.allclose(np.linalg.norm(v, axis=1), 1, atol=1e-5)
    s2 = generate_dataset(_cfg("uniform:n=4,dim=32,seed=3", out, images_per_id=2, resume=True), progress=False)
    assert s2["identities_generated"] == 0  # the sampled file is reused, the settings match
    with pytest.raises(ValueError, match="sampler spec"):
        generate_dataset(_cfg("nosuchsampler:n=3", tmp_path / "bad"), progress=False)


def test_auto_device_under_torchrun_uses_local_rank_gpu(monkeypatch):
    """No GPU needed: fake CUDA with 4 devices; under torchrun (LOCAL_RANK) 'auto' is cuda:LOCAL_RANK, so every
    rank of a generation job (generator + filter embedder both resolve through resolve_device) gets its own GPU."""
    import torch

    from synthfr.generators import create_generator
    from synthfr.utils.device import resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    assert resolve_device("auto") == torch.device("cuda")  # plain run: current device, as before
    assert resolve_device("cuda") == torch.device("cuda")
    for lr in range(4):
        monkeypatch.setenv("LOCAL_RANK", str(lr))
        assert resolve_device("auto") == torch.device("cuda", lr)
        assert resolve_device(None) == torch.device("cuda", lr)
        assert resolve_device("cuda") == torch.device("cuda", lr)
        assert create_generator("test_pattern", device="auto").device == torch.device("cuda", lr)
    monkeypatch.setenv("LOCAL_RANK", "2")
    assert resolve_device("cuda:1") == torch.device("cuda", 1)  # explicit choices are kept
    assert resolve_device("cpu") == torch.device("cpu")
    monkeypatch.setenv("LOCAL_RANK", "5")  # more ranks than visible GPUs: wrap around
    assert resolve_device("auto") == torch.device("cuda", 1)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)  # one GPU bound per process by the launcher
    assert resolve_device("auto") == torch.device("cuda", 0)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # no CUDA: LOCAL_RANK does not matter
    if getattr(torch.backends, "mps", None) is not None:
        monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")


def test_default_generator_is_the_builtin_face_generator():
    """Omitting --generator gives the built-in face generator, never the test_pattern fixture (issue 13)."""
    from synthfr.generators import REGISTRY

    assert GenerateConfig().generator == "synthfr-v2" and {"synthfr-v2", "synthfr-small"} <= set(REGISTRY.list())
    assert REGISTRY.get("builtin") is REGISTRY.get("synthfr-v2")
