"""The training loop: exact resume after a kill, mixups and virtual classes in the loss, augmentations,
schedules, run-dir outputs, the ``checkpoint`` embedder and ONNX export."""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from synthfr.errors import UsageError
from synthfr.training.config import AugmentConfig, TrainConfig
from synthfr.training.loop import train
from synthfr.training.schedule import lr_at
from synthfr.training.toy import make_toy_dataset


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    return make_toy_dataset(tmp_path_factory.mktemp("toy") / "data", classes=6, per_class=4, size=32)


def _cfg(data, out, **kw):
    base = dict(data=str(data), out=str(out), backbone="test_tiny", embedding_size=16, head="arcface",
                head_kwargs={"s": 16.0, "m": 0.3}, epochs=2, batch_size=8, lr=0.05, num_workers=0, log_every=1,
                progress=False, device="cpu", seed=1, input_size=32)
    base.update(kw)
    return TrainConfig(**base)


def _losses(run):
    return [float(r["loss"]) for r in csv.DictReader(open(run / "log.csv"))]


def test_kill_mid_epoch_and_resume_gives_identical_weights(toy, tmp_path):
    aug = AugmentConfig(flip=0.5, erase=0.5, rescale=0.5, jitter=0.5, blur=0.5)
    # one thread in both processes: a float sum split over another thread count differs in the last bit
    common = dict(epochs=3, checkpoint_every=2, augment=aug, sample_rate=0.5, head="adaface",
                  head_kwargs={"s": 16.0}, backbone_kwargs={}, threads=1)
    ref = train(_cfg(toy, tmp_path / "ref", **common))  # 3 steps/epoch, 9 steps
    # the same run, SIGKILLed after step 5 (mid-epoch 2; checkpoints at steps 3 (epoch end) and 4), in a subprocess with a
    # DataLoader worker, then resumed here without workers
    run = tmp_path / "killed"
    cmd = [sys.executable, "-m", "synthfr.cli", "train", "--data", str(toy), "--out", str(run),
           "--backbone", "test_tiny", "--embedding-size", "16", "--head", "adaface", "--scale", "16",
           "--epochs", "3", "--batch-size", "8", "--lr", "0.05", "--workers", "1", "--log-every", "1",
           "--device", "cpu", "--seed", "1", "--checkpoint-every", "2", "--input-size", "32",
           "--sample-rate", "0.5", "--quiet", "--threads", "1",
           "--aug-flip", "0.5", "--aug-erase", "0.5", "--aug-rescale", "0.5", "--aug-jitter", "0.5",
           "--aug-blur", "0.5"]
    env = {**os.environ, "SYNTHFR_KILL_AT_STEP": "5", "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == -9, proc.stderr[-2000:]
    assert not (run / "model.safetensors").exists()
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step_00000003", "step_00000004"]
    train(_cfg(toy, run, resume=True, **common))
    for f in ("model.safetensors", "head.safetensors"):
        a, b = load_file(str(ref / f)), load_file(str(run / f))
        assert a.keys() == b.keys()
        for k in a:
            assert torch.equal(a[k], b[k]), f"{f}:{k} differs after resume"
    # the log has every step once per attempt; the resumed part equals the reference
    assert _losses(run)[-4:] == _losses(ref)[-4:]


def test_soft_labels_from_manifest_change_the_loss(tmp_path):
    data = make_toy_dataset(tmp_path / "mix", classes=4, per_class=4, size=32, soft_every=2)
    from synthfr.data.imagefolder import open_dataset

    ds = open_dataset(data)
    assert ds.has_soft_labels and ds.num_classes == 4
    _, labels, weights, _ = ds[0]
    assert labels.tolist() == [0, 1] and weights.tolist() == pytest.approx([0.7, 0.3])
    a = train(_cfg(data, tmp_path / "soft", epochs=1))
    b = train(_cfg(data, tmp_path / "hard", epochs=1, soft_labels=False))
    la, lb = _losses(a), _losses(b)
    assert len(la) == 2 and all(np.isfinite(la))
    assert abs(la[0] - lb[0]) > 1e-3  # same init, same batch: only the soft labels differ
    # SynFace's mixed margin logits: the run records the choice, and the loss differs from per-target's
    c = train(_cfg(data, tmp_path / "mixed", epochs=1, soft_label_logits="mixed"))
    assert json.loads((c / "config.json").read_text())["config"]["soft_label_logits"] == "mixed"
    assert abs(_losses(c)[0] - la[0]) > 1e-4 and all(np.isfinite(_losses(c)))
    with pytest.raises(UsageError, match="--soft-label-logits synface: use one of per-target, mixed"):
        train(_cfg(data, tmp_path / "bad", soft_label_logits="synface"))


def test_domain_mixup_mixes_pixels_and_labels(toy, tmp_path):
    from synthfr.training.mixup import domain_mixup

    xs, xr = torch.rand(2, 3, 4, 4), torch.rand(2, 3, 4, 4)
    x, lab, w = domain_mixup(xs, torch.tensor([[0, 1], [2, 2]]), torch.tensor([[0.7, 0.3], [1.0, 0.0]]), xr,
                             torch.tensor([10, 11]), 0.8)
    torch.testing.assert_close(x, 0.8 * xs + 0.2 * xr)
    assert lab.tolist() == [[0, 1, 10], [2, 2, 11]]
    torch.testing.assert_close(w, torch.tensor([[0.56, 0.24, 0.2], [0.8, 0.0, 0.2]]))

    real = make_toy_dataset(tmp_path / "real", classes=3, per_class=4, size=32, seed=5)
    mixed = train(_cfg(toy, tmp_path / "dm", epochs=1, domain_mixup=str(real), domain_mixup_ratio=0.6))
    plain = train(_cfg(toy, tmp_path / "nodm", epochs=1))
    meta = json.loads((mixed / "config.json").read_text())
    assert meta["classes"] == {"data": 6, "real": 3, "virtual": 0} and meta["num_classes"] == 9
    assert abs(_losses(mixed)[0] - _losses(plain)[0]) > 1e-3
    assert load_file(str(mixed / "head.safetensors"))["weight"].shape == (9, 16)


def test_domain_mixup_psi_is_drawn_per_batch_from_the_21_values(toy, tmp_path):
    from synthfr.training.mixup import psi_at, psi_grid

    grid = psi_grid()
    assert len(grid) == 21 and grid[0] == 0.0 and grid[-1] == 1.0
    np.testing.assert_allclose(np.diff(grid), 0.05)
    draws = [psi_at(3, s) for s in range(2000)]
    assert set(draws) == set(grid.tolist())  # every value of the set, nothing else
    assert draws == [psi_at(3, s) for s in range(2000)]  # seeded by (seed, step)
    assert psi_at(3, 5, ratio=0.8) == 0.8  # the fixed option
    with pytest.raises(ValueError, match="divide 1"):
        psi_grid(0.3)

    real = make_toy_dataset(tmp_path / "real", classes=3, per_class=4, size=32, seed=5)
    run = train(_cfg(toy, tmp_path / "dm", epochs=4, domain_mixup=str(real)))  # 3 steps/epoch, 12 steps
    psis = [float(r["psi"]) for r in csv.DictReader(open(run / "log.csv"))]
    assert len(psis) == 12 and set(psis) <= set(grid.tolist()) and len(set(psis)) > 3
    assert psis == [psi_at(1, s) for s in range(12)]
    fixed = train(_cfg(toy, tmp_path / "dm8", epochs=1, domain_mixup=str(real), domain_mixup_ratio=0.8))
    assert {float(r["psi"]) for r in csv.DictReader(open(fixed / "log.csv"))} == {0.8}


def test_virtual_classes_are_trained_and_exported(toy, tmp_path):
    run = train(_cfg(toy, tmp_path / "v", epochs=1, virtual_classes=5))
    plain = train(_cfg(toy, tmp_path / "nv", epochs=1))
    v = np.load(run / "virtual_identities.npy")
    assert v.shape == (5, 16) and np.allclose(np.linalg.norm(v, axis=1), 1, atol=1e-5)
    w = load_file(str(run / "head.safetensors"))["weight"]
    assert w.shape == (11, 16)
    np.testing.assert_allclose(v, torch.nn.functional.normalize(w[6:], dim=1).numpy(), atol=1e-6)
    assert _losses(run)[0] > _losses(plain)[0]  # five extra negatives in the softmax from the first step
    assert not (plain / "virtual_identities.npy").exists()
    # a single process never initialises torch.distributed
    assert not (torch.distributed.is_available() and torch.distributed.is_initialized())


def test_lr_schedules():
    cfg = TrainConfig(lr=0.1, warmup_epochs=1, milestones=[0.5, 0.75], schedule="multistep")
    lrs = [lr_at(cfg, s, 10, 40) for s in range(40)]
    assert lrs[0] == pytest.approx(0.01) and lrs[9] == pytest.approx(0.1)
    assert lrs[19] == pytest.approx(0.1) and lrs[20] == pytest.approx(0.01) and lrs[30] == pytest.approx(0.001)
    cfg.schedule = "poly"
    assert lr_at(cfg, 10, 10, 40) == pytest.approx(0.1) and lr_at(cfg, 25, 10, 40) == pytest.approx(0.1 * 0.5 ** 2)
    cfg.milestones = [2, 3]
    cfg.schedule = "multistep"
    assert lr_at(cfg, 19, 10, 40) == pytest.approx(0.1) and lr_at(cfg, 20, 10, 40) == pytest.approx(0.01)


def test_augmentations_fire_and_are_seeded():
    from synthfr.training.augment import Augment, motion_blur_kernel

    img = torch.rand(3, 112, 112)
    for name in ("flip", "erase", "rescale", "jitter", "blur"):
        aug = Augment(AugmentConfig(**{"flip": 0.0, name: 1.0}))
        a = aug(img.clone(), np.random.default_rng(3))
        b = aug(img.clone(), np.random.default_rng(3))
        assert a.shape == img.shape and torch.equal(a, b), name
        assert not torch.allclose(a, img), f"{name} did nothing"
        assert a.min() >= 0 and a.max() <= 1
    none = Augment(AugmentConfig(flip=0))
    assert torch.equal(none(img.clone(), np.random.default_rng(0)), img)
    assert torch.equal(Augment(AugmentConfig(flip=1))(img.clone(), np.random.default_rng(0)), img.flip(-1))
    k = motion_blur_kernel(5, 0.0)
    assert k.sum() == pytest.approx(1) and torch.equal(k[2], torch.full((5,), 0.2))


def test_vigface_augmentation_option():
    """Erasing with a constant fill (0 in [-1, 1] = 0.5 in [0, 1]) over 2-33 % of the area; rescaling 0.2-1.0 with
    one of five OpenCV interpolations; the default augmentation is unchanged."""
    from synthfr.training.augment import CV2_INTERPS, Augment

    img = torch.rand(3, 40, 40)
    er = Augment(AugmentConfig(flip=0.0, erase=1.0, erase_value=0.0))
    fracs = []
    for s in range(50):
        out = er(img.clone(), np.random.default_rng(s))
        changed = (out != img).any(0)
        assert torch.all(out[:, changed] == 0.5)  # the fill, nothing else touched
        ys, xs = torch.nonzero(changed, as_tuple=True)
        assert changed.sum() == (ys.max() - ys.min() + 1) * (xs.max() - xs.min() + 1)  # one rectangle
        fracs.append(float(changed.float().mean()))
    assert 0.015 <= min(fracs) and max(fracs) <= 0.35 and max(fracs) - min(fracs) > 0.1
    assert Augment(AugmentConfig(flip=0.0, erase=1.0, erase_value=-1.0))(img.clone(), np.random.default_rng(0)
                                                                         ).min() == 0.0  # black

    import cv2

    rs = Augment(AugmentConfig(flip=0.0, rescale=1.0, rescale_min=0.2, rescale_interpolations=list(CV2_INTERPS)))
    assert len(CV2_INTERPS) == 5
    out = rs(img.clone(), np.random.default_rng(3))
    # reference: the same draws by hand
    rng = np.random.default_rng(3)
    rng.random(5)
    side = int(40 * rng.uniform(0.2, 1.0))
    flags = [cv2.INTER_NEAREST, cv2.INTER_LINEAR, cv2.INTER_CUBIC, cv2.INTER_AREA, cv2.INTER_LANCZOS4]
    down, up = flags[rng.integers(5)], flags[rng.integers(5)]
    a = img.permute(1, 2, 0).numpy()
    ref = cv2.resize(cv2.resize(a, (side, side), interpolation=down), (40, 40), interpolation=up).clip(0, 1)
    np.testing.assert_allclose(out.permute(1, 2, 0).numpy(), ref, atol=1e-6)
    used = set()
    for s in range(200):
        r = np.random.default_rng(s)
        r.random(5)
        r.uniform(0.2, 1.0)
        used.add(int(r.integers(5)))
    assert used == set(range(5))
    with pytest.raises(ValueError, match="unknown rescale interpolation"):
        Augment(AugmentConfig(rescale=1.0, rescale_interpolations=["cubic"]))(img.clone(), np.random.default_rng(0))
    # AdaFace's crop: a box of >= 20 % of the area kept in place, black elsewhere
    cr = Augment(AugmentConfig(flip=0.0, crop=1.0, crop_area=0.2))
    for s in range(30):
        out = cr(img.clone(), np.random.default_rng(s))
        kept = (out == img).all(0)
        assert torch.all(out[:, ~kept] == 0)
        ys, xs = torch.nonzero(kept, as_tuple=True)
        assert kept.sum() == (ys.max() - ys.min() + 1) * (xs.max() - xs.min() + 1) and kept.float().mean() >= 0.18
    # the default (noise fill, torch interpolations, no crop draw) did not change
    d = Augment(AugmentConfig(flip=0.0, erase=1.0))(img.clone(), np.random.default_rng(0))
    assert len(torch.unique(d[:, (d != img).any(0)])) > 100


def test_checkpoint_embedder_eval_and_onnx(toy, tmp_path):
    run = train(_cfg(toy, tmp_path / "run", epochs=1, max_steps=1, input_size=112, backbone="test_iresnet"))
    from synthfr.face.embedders import create_embedder

    emb = create_embedder("checkpoint", path=str(run), device="cpu")
    imgs = np.random.default_rng(0).integers(0, 256, (3, 112, 112, 3), dtype=np.uint8)
    e = emb.embed(imgs)
    assert e.shape == (3, 16) and np.allclose(np.linalg.norm(e, axis=1), 1, atol=1e-5)
    # embedder == backbone on the documented normalisation
    from synthfr.training.export import load_backbone

    model, _ = load_backbone(run)
    x = torch.from_numpy(imgs).permute(0, 3, 1, 2).float().div(255).sub(0.5).div(0.5)
    ref = torch.nn.functional.normalize(model(x), dim=1).detach().numpy()
    np.testing.assert_allclose(e, ref, atol=1e-5)
    # NHWC on CPU by default (as training), the same embeddings as NCHW
    nchw = create_embedder("checkpoint", path=str(run), device="cpu", memory_format="contiguous")
    conv = next(m.weight for m in emb.model.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()
    np.testing.assert_allclose(nchw.embed(imgs), e, atol=1e-5)
    # differentiable forward in [0, 1]
    xin = torch.from_numpy(imgs).permute(0, 3, 1, 2).float().div(255).requires_grad_(True)
    emb(xin).sum().backward()
    assert xin.grad is not None and torch.isfinite(xin.grad).all()

    from synthfr.app.cli import main

    assert main(["export-onnx", str(run), str(tmp_path / "m.onnx"), "--json", str(tmp_path / "o.json")]) == 0
    import onnxruntime as ort

    sess = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"input": x.numpy()})[0]
    np.testing.assert_allclose(got, model(x).detach().numpy(), atol=1e-4, rtol=1e-4)
    assert json.loads((tmp_path / "o.json").read_text())["max_abs_diff"] < 1e-4


def test_validation_each_epoch_on_a_bin(toy, tmp_path):
    from synthfr.data.benchmarks import write_bin
    from PIL import Image
    import io

    imgs = []
    for p in sorted(toy.rglob("*.jpg"))[:8]:
        b = io.BytesIO()
        Image.open(p).resize((112, 112)).save(b, format="JPEG")
        imgs.append(b.getvalue())
    write_bin(tmp_path / "tiny.bin", imgs, [True, False, True, False])
    run = train(_cfg(toy, tmp_path / "val", epochs=2, val=[str(tmp_path / "tiny.bin")]))
    rows = list(csv.DictReader(open(run / "val.csv")))
    assert [r["step"] for r in rows] == ["3", "6"] and all(0 <= float(r["accuracy"]) <= 1 for r in rows)


def test_train_cli_rejects_bad_input(tmp_path, capsys):
    from synthfr.app.cli import main

    assert main(["train", "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "o"),
                 "--backbone", "test_tiny"]) == 2  # a path given by the user: usage error
    assert "not found" in capsys.readouterr().err


def test_train_config_from_yaml_and_flags(tmp_path):
    import argparse

    from synthfr.app.commands.train import add_arguments, build_config

    (tmp_path / "r.yaml").write_text("backbone: iresnet50\nepochs: 7\naugment: {flip: 0.0, blur: 0.3}\n"
                                     "head_kwargs: {s: 30}\n")
    p = argparse.ArgumentParser()
    add_arguments(p)
    cfg = build_config(p.parse_args(["--config", str(tmp_path / "r.yaml"), "--epochs", "9", "--margin", "0.3",
                                     "--aug-erase", "0.1", "--val", "a.bin", "--val", "b.bin"]))
    assert cfg.backbone == "iresnet50" and cfg.epochs == 9.0
    assert cfg.head_kwargs == {"s": 30, "m": 0.3}
    assert (cfg.augment.flip, cfg.augment.blur, cfg.augment.erase) == (0.0, 0.3, 0.1)
    assert cfg.val == ["a.bin", "b.bin"] and cfg.lr == 0.1 and cfg.weight_decay == 5e-4 and cfg.momentum == 0.9


def test_mixed_precision_path_runs_on_cpu_bf16(toy, tmp_path):
    """The autocast path (fp16 + grad scaler on CUDA) exercised with bf16 on the CPU."""
    run = train(_cfg(toy, tmp_path / "amp", epochs=1, max_steps=2, amp="bf16", head="adaface", head_kwargs={}))
    assert all(np.isfinite(_losses(run)))
    w = load_file(str(run / "model.safetensors"))
    assert all(v.dtype in (torch.float32, torch.int64) for v in w.values())  # weights stay fp32


def test_memory_format_changes_layout_not_maths(toy, tmp_path, capsys):
    """channels_last (the CPU default) trains the same model as contiguous up to float rounding; checkpoints are
    stored contiguous either way; a bad value is one usage line."""
    from synthfr.app.cli import main
    from synthfr.training.loop import _channels_last

    from synthfr.utils.device import use_channels_last

    cpu, gpu = torch.device("cpu"), torch.device("cuda")
    # the one rule shared with the embedders (dlib-torch, SFace, checkpoint), which also take True/False/None
    assert [use_channels_last(f, d) for f in ("auto", None, "channels_last", True, "contiguous", False)
            for d in (cpu, gpu)] == [True, False, True, False, True, True, True, True, False, False, False, False]
    with pytest.raises(ValueError, match="'nhwc': use auto, channels_last or contiguous"):
        use_channels_last("nhwc", cpu)
    assert _channels_last(_cfg(toy, "x"), cpu) and not _channels_last(_cfg(toy, "x"), gpu)
    assert not _channels_last(_cfg(toy, "x", memory_format="contiguous"), cpu)
    assert _channels_last(_cfg(toy, "x", memory_format="channels_last"), gpu)
    runs = {f: train(_cfg(toy, tmp_path / f, epochs=1, threads=1, memory_format=f))
            for f in ("channels_last", "contiguous")}
    for f, run in runs.items():  # the run records the layout it used
        assert json.loads((run / "config.json").read_text())["memory_format"] == f
    a, b = (load_file(str(runs[f] / "model.safetensors")) for f in ("channels_last", "contiguous"))
    assert a.keys() == b.keys() and any(v.dim() == 4 for v in a.values())
    for k in a:
        assert a[k].is_contiguous() and torch.allclose(a[k].float(), b[k].float(), rtol=1e-4, atol=1e-5), k
    np.testing.assert_allclose(_losses(runs["channels_last"]), _losses(runs["contiguous"]), rtol=1e-4)
    assert main(["train", "--data", str(toy), "--out", str(tmp_path / "bad"), "--backbone", "test_tiny",
                 "--memory-format", "nhwc"]) == 2
    assert "--memory-format 'nhwc'" in capsys.readouterr().err
