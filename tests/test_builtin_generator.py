"""The built-in generator (synthfr-small): architecture, per-image determinism, trainer resume, loading."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from synthfr.genmodel.model import FaceGenerator, GenModelConfig, PatchDiscriminator

TINY = GenModelConfig(width=32, depth=1, heads=2, z_dim=8, dec_channels=(16, 8, 8), dec_residual=(False, True, False),
                      enc_channels=(8, 8, 16, 16), chunk=4)


def _unit(n, d=128, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.nn.functional.normalize(torch.randn(n, d, generator=g), dim=1)


def test_forward_backward_shapes():
    torch.manual_seed(0)
    g = FaceGenerator(TINY)
    c = _unit(3)
    x = torch.rand(3, 3, 112, 112)
    y, aux = g.forward_train(c, x, torch.tensor([0.5, 0.75, 1.0]), torch.randn(3, 8), torch.rand(3, 49))
    assert y.shape == (3, 3, 112, 112) and float(y.detach().min()) >= 0 and float(y.detach().max()) <= 1
    loss = (y - x).abs().mean() + aux["kl"].mean() + PatchDiscriminator()(y).mean()
    loss.backward()
    assert g.cond_proj.weight.grad is not None and g.encoder.body[0].weight.grad is not None
    assert torch.isfinite(g.cond_proj.weight.grad).all()
    # conditions without an image: fully masked, gradients reach the condition vector
    c2 = _unit(2).requires_grad_(True)
    y2, _ = g.forward_train(c2, None, torch.ones(2), torch.randn(2, 8), None)
    y2.mean().backward()
    assert c2.grad is not None and float(c2.grad.abs().sum()) > 0


def test_fully_masked_training_pass_is_the_generation_pass():
    torch.manual_seed(0)
    g = FaceGenerator(TINY)
    c, z = _unit(2), torch.randn(2, 8)
    a, _ = g.forward_train(c, None, torch.ones(2), z, None)
    assert torch.equal(a, g.generate_from_z(c, z))
    # with an image, unmasked tokens come from the image: 50 % and 100 % masking differ
    x, mn = torch.rand(2, 3, 112, 112), torch.rand(2, 49)
    half, _ = g.forward_train(c, x, torch.full((2,), 0.5), z, mn)
    full, _ = g.forward_train(c, x, torch.ones(2), z, mn)
    assert not torch.equal(half, full)


def test_generation_depends_only_on_vector_and_seed():
    torch.manual_seed(0)
    g = FaceGenerator(TINY, with_encoder=False).eval()
    c = _unit(7)
    seeds = [11, 12, 13, 14, 15, 16, 17]
    with torch.no_grad():
        full = g.generate_tensor(c, seeds)
        one = g.generate_tensor(c[3:4], seeds[3:4])
        shuffled = g.generate_tensor(c[[5, 3, 0]], [seeds[5], seeds[3], seeds[0]])
        other_seed = g.generate_tensor(c[3:4], [99])
    assert torch.equal(full[3], one[0])
    assert torch.equal(full[3], shuffled[1]) and torch.equal(full[5], shuffled[0])
    assert not torch.equal(full[3], other_seed[0])


def _tiny_data(root: Path, n_ids: int = 5, per_id: int = 4) -> Path:
    from PIL import Image

    rng = np.random.default_rng(0)
    for i in range(n_ids):
        d = root / f"id{i}"
        d.mkdir(parents=True)
        base = rng.integers(0, 255, (14, 14, 3), dtype=np.uint8)
        for k in range(per_id):
            im = np.kron(base, np.ones((8, 8, 1), np.uint8)).astype(np.int16) + rng.integers(-20, 20, (112, 112, 3))
            Image.fromarray(np.clip(im, 0, 255).astype(np.uint8)).save(d / f"{k}.png")
    return root


def _cfg(tmp_path, out, **kw):
    from synthfr.genmodel.trainer import GenTrainConfig

    base = dict(data=[str(tmp_path / "faces")], out=str(out), data_cache=str(tmp_path / "cache"),
                embedder="tiny-test", device="cpu", model=TINY, batch_size=3, id_start=1, gan_start=2,
                synth_start=2, synth_frac=0.67, warmup_steps=2, sample_every=3, log_every=1, val_identities=1,
                ckpt_minutes=1e9)
    base.update(kw)
    return GenTrainConfig(**base)


def test_trainer_resume_is_exact(tmp_path):
    from safetensors.torch import load_file

    from synthfr.genmodel.trainer import train_generator

    _tiny_data(tmp_path / "faces")
    a = train_generator(_cfg(tmp_path, tmp_path / "a", max_steps=4), progress=False)
    assert a["step"] == 4
    train_generator(_cfg(tmp_path, tmp_path / "b", max_steps=3), progress=False)
    b = train_generator(_cfg(tmp_path, tmp_path / "b", max_steps=4), resume=True, progress=False)
    assert b["step"] == 4

    def weights(run):
        info = json.loads((run / "latest.json").read_text())
        return load_file(str(run / info["tensors"]))

    wa, wb = weights(tmp_path / "a"), weights(tmp_path / "b")
    assert wa.keys() == wb.keys() and any(k.startswith("optD.") for k in wa)
    for k in wa:
        assert torch.equal(wa[k], wb[k]), k
    # logs: one row per step, no duplicates after the resume; a sample grid and held-out fidelity were written
    rows = (tmp_path / "b" / "log.csv").read_text().strip().splitlines()
    assert [int(r.split(",")[0]) for r in rows[1:]] == [1, 2, 3, 4]
    assert (tmp_path / "b" / "samples" / "step-00000003.png").is_file()
    assert (tmp_path / "b" / "val.csv").is_file()
    # a finished run refuses to be overwritten without --resume
    with pytest.raises(ValueError, match="--resume"):
        train_generator(_cfg(tmp_path, tmp_path / "a", max_steps=6), progress=False)
    # CPU time goes on across the resume; a checkpoint from before it was recorded counts from its step on
    assert b["cpu_s"] > 0 and b["cpu_s_from_step"] == 0
    info = json.loads((tmp_path / "b" / "latest.json").read_text())
    state = json.loads((tmp_path / "b" / info["state"]).read_text())
    assert state["cpu_s"] >= b["cpu_s"] - 1.0 and state["cpu_s_from_step"] == 0
    for k in ("cpu_s", "cpu_s_from_step"):
        del state[k]
    (tmp_path / "b" / info["state"]).write_text(json.dumps(state))
    c = train_generator(_cfg(tmp_path, tmp_path / "b", max_steps=5), resume=True, progress=False)
    assert c["step"] == 5 and c["cpu_s_from_step"] == 4


def _write_tiny_weights(folder: Path, **extra) -> None:
    from safetensors.torch import save_file

    torch.manual_seed(0)
    g = FaceGenerator(TINY, with_encoder=False)
    g.cond_mean.copy_(0.8 * _unit(1, seed=7)[0])  # like a real embedding space: faces share a mean direction
    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in g.state_dict().items()}, str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps({"generator": "synthfr-small", "embedder": "dlib-torch",
                                                    "dim": 128, "model": TINY.to_json(), **extra}))


def test_id_gain_extrapolates_away_from_the_mean(tmp_path):
    from synthfr.generators import create_generator

    _write_tiny_weights(tmp_path / "w", id_gain=1.5)
    assert create_generator("synthfr-small", weights=tmp_path / "w").id_gain == 1.5  # recorded with the weights
    plain = create_generator("synthfr-small", weights=tmp_path / "w", id_gain=1.0)
    gained = create_generator("synthfr-small", weights=tmp_path / "w", id_gain=2.0)
    assert gained.options()["id_gain"] == 2.0
    c = _unit(3)
    mu = plain.model.cond_mean
    moved = torch.nn.functional.normalize(mu + 2.0 * (c - mu), dim=1)
    with torch.no_grad():
        a, b, same = gained.generate_tensor(c, [1, 2, 3]), plain.generate_tensor(moved, [1, 2, 3]), \
            plain.generate_tensor(c, [1, 2, 3])
    assert torch.allclose(a, b, atol=1e-6) and not torch.allclose(a, same, atol=1e-3)
    with pytest.raises(ValueError, match="id_gain"):
        create_generator("synthfr-small", weights=tmp_path / "w", id_gain=0)


def test_builtin_missing_weights_is_a_clear_error(tmp_path, monkeypatch):
    import synthfr.genmodel.export as export
    from synthfr.generators import create_generator

    monkeypatch.setattr(export, "default_weights_dir", lambda name="synthfr-small": tmp_path / "nothing-here")
    with pytest.raises(FileNotFoundError, match="no trained weights.*train-generator"):
        create_generator("synthfr-small")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        create_generator("synthfr-small", weights=tmp_path / "elsewhere")


def test_builtin_loads_package_folder_and_is_per_image_deterministic(tmp_path, monkeypatch):
    import synthfr.genmodel.export as export
    from synthfr.generators import create_generator

    _write_tiny_weights(tmp_path / "synthfr-small")
    monkeypatch.setattr(export, "default_weights_dir", lambda name="synthfr-small": tmp_path / name)
    gen = create_generator("synthfr-small")
    assert gen.embedder == "dlib-torch" and gen.dim == 128 and gen.differentiable
    c = _unit(6).numpy()
    seeds = np.array([5, 6, 7, 8, 9, 10], dtype=np.int64)
    imgs = gen.generate(c, seeds)
    assert imgs.shape == (6, 112, 112, 3) and imgs.dtype == np.uint8
    np.testing.assert_array_equal(imgs[2:3], gen.generate(c[2:3], seeds[2:3]))
    np.testing.assert_array_equal(imgs[[4, 1]], gen.generate(c[[4, 1]], seeds[[4, 1]]))
    assert gen.weights_sha256 and len(gen.weights_sha256) == 64
    # differentiable path: gradients reach the condition vectors
    ct = torch.from_numpy(c[:2]).requires_grad_(True)
    gen.generate_tensor(ct, seeds[:2]).mean().backward()
    assert float(ct.grad.abs().sum()) > 0


def test_export_then_load(tmp_path):
    from synthfr.generators import create_generator
    from synthfr.genmodel.export import export_generator
    from synthfr.genmodel.trainer import load_checkpoint_model, train_generator

    _tiny_data(tmp_path / "faces")
    train_generator(_cfg(tmp_path, tmp_path / "run", max_steps=2, sample_every=0), progress=False)
    out = export_generator(tmp_path / "run", tmp_path / "w", half=True)
    gen = create_generator("synthfr-small", weights=out)
    ref = load_checkpoint_model(tmp_path / "run")
    c = _unit(2)
    with torch.no_grad():
        a = gen.generate_tensor(c, [1, 2])
        b = ref.generate_tensor(c, [1, 2])
    assert float((a - b).abs().max()) < 2e-2  # float16 storage
    assert json.loads((out / "config.json").read_text())["trained_steps"] == 2


def test_cli_train_resume_and_export(tmp_path):
    from synthfr.app.cli import main
    from synthfr.generators import create_generator

    _tiny_data(tmp_path / "faces")
    common = ["--out", str(tmp_path / "run"), "--data-cache", str(tmp_path / "cache"), "--device", "cpu",
              "--batch-size", "2", "--no-progress", "--sample-every", "0", "--set", "embedder=tiny-test",
              "model.width=32", "model.depth=1", "model.heads=2", "model.z_dim=8", "model.dec_channels=[16,8,8]",
              "model.enc_channels=[8,8,16,16]", "val_identities=1"]
    assert main(["train-generator", "--data", str(tmp_path / "faces"), "--max-steps", "1", *common]) == 0
    assert main(["train-generator", "--resume", "--max-steps", "2", *common]) == 0
    state = json.loads((tmp_path / "run" / "latest.json").read_text())
    assert state["step"] == 2
    assert main(["train-generator", "--out", str(tmp_path / "run"), "--export-to", str(tmp_path / "w"),
                 "--id-gain", "1.25"]) == 0
    gen = create_generator("synthfr-small", weights=tmp_path / "w")
    assert gen.generate(_unit(1).numpy(), [3]).shape == (1, 112, 112, 3) and gen.id_gain == 1.25
    assert main(["train-generator", "--out", str(tmp_path / "x"), "--set", "nonsense=1", "--data", "y"]) == 2  # usage


def test_init_from_and_centred_identity(tmp_path):
    from synthfr.genmodel.trainer import load_checkpoint_model, train_generator

    _tiny_data(tmp_path / "faces")
    train_generator(_cfg(tmp_path, tmp_path / "a", max_steps=2, sample_every=0), progress=False)
    train_generator(_cfg(tmp_path, tmp_path / "c", max_steps=0, sample_every=0, init_from=str(tmp_path / "a")),
                    progress=False)
    a, c = load_checkpoint_model(tmp_path / "a"), load_checkpoint_model(tmp_path / "c")
    for (k, va), vc in zip(a.state_dict().items(), c.state_dict().values()):
        assert torch.equal(va, vc), k
    out = train_generator(_cfg(tmp_path, tmp_path / "d", max_steps=3, sample_every=0, id_space="centred",
                               init_from=str(tmp_path / "a")), progress=False)
    assert out["step"] == 3 and np.isfinite(out["last"]["id"]) and "syn_id" in out["last"]
    # the export records the whole chain of runs, so the card's training time is the total
    from synthfr.genmodel.export import export_generator

    cfg = json.loads((export_generator(tmp_path / "d", tmp_path / "dw") / "config.json").read_text())
    assert [(r["run"], r["steps"]) for r in cfg["lineage"]] == [("a", 2), ("d", 3)]
    assert cfg["trained_steps"] == 3 and cfg["total_steps"] == 5 and cfg["lineage"][1]["id_space"] == "centred"
    # CPU time, not wall time, is the training budget: counted from step 0 here, and never more than the wall
    # time times the threads the process may use
    assert cfg["lineage"][0]["training_cpu_hours"] is not None and "cpu_hours_from_step" not in cfg
    assert 0 <= cfg["training_cpu_hours"] <= cfg["training_hours"] * (os.cpu_count() or 1) + 1e-3
    with pytest.raises(ValueError, match="id_space"):
        train_generator(_cfg(tmp_path, tmp_path / "e", max_steps=2, sample_every=0, id_space="nope"), progress=False)


def test_shipped_weights_load_from_the_package():
    from synthfr.generators import create_generator
    from synthfr.genmodel.export import default_weights_dir

    if not (default_weights_dir() / "model.safetensors").is_file():
        pytest.skip("synthfr-small weights are not shipped in this checkout")
    assert (default_weights_dir() / "model.safetensors").stat().st_size <= 30 * 2**20
    gen = create_generator("synthfr-small")
    assert gen.meta["trained_steps"] > 0 and gen.meta["embedder"] == "dlib-torch"
    imgs = gen.generate(_unit(2).numpy(), [0, 1])
    assert imgs.shape == (2, 112, 112, 3) and imgs.std() > 5  # not a constant image


def test_z_scale_recorded_with_the_weights(tmp_path):
    from synthfr.generators import create_generator

    _write_tiny_weights(tmp_path / "w", z_scale=2.0)
    _write_tiny_weights(tmp_path / "plain")
    rec = create_generator("synthfr-small", weights=tmp_path / "w")
    assert rec.z_scale == 2.0 and rec.options()["z_scale"] == 2.0
    assert create_generator("synthfr-small", weights=tmp_path / "plain").z_scale == 1.0  # not recorded: 1.0
    given = create_generator("synthfr-small", weights=tmp_path / "plain", z_scale=2.0)
    c = _unit(3)
    with torch.no_grad():
        assert torch.equal(rec.generate_tensor(c, [1, 2, 3]), given.generate_tensor(c, [1, 2, 3]))
        zero = create_generator("synthfr-small", weights=tmp_path / "w", z_scale=0)
        assert zero.z_scale == 0.0 and torch.equal(zero.generate_tensor(c[:1].repeat(2, 1), [1, 2])[0],
                                                   zero.generate_tensor(c[:1].repeat(2, 1), [1, 2])[1])
    with pytest.raises(ValueError, match="z_scale"):
        create_generator("synthfr-small", weights=tmp_path / "w", z_scale=-1)
