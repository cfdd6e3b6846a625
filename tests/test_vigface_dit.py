"""VIGFace stage 2 (issue 19): schedule, DiT training, checkpoints, the vigface-dit generator (tiny configs)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from synthfr.genmodel.dit.model import DIT_PRESETS, DiT, DiTConfig
from synthfr.genmodel.dit.schedule import (NoiseSchedule, cosine_alphas_cumprod, ddim_sample,
                                           rescale_zero_terminal_snr, trailing_timesteps)

ROOT = Path(__file__).resolve().parents[1]
TINY = {"preset": "test", "image_size": 16}


def _faces(root: Path, n_ids: int = 4, per_id: int = 3) -> Path:
    from PIL import Image

    rng = np.random.default_rng(0)
    for i in range(n_ids):
        d = root / f"id{i}"
        d.mkdir(parents=True)
        base = rng.integers(0, 255, (7, 7, 3), dtype=np.uint8)
        for k in range(per_id):
            im = np.kron(base, np.ones((16, 16, 1), np.uint8)).astype(np.int16) + rng.integers(-10, 10, (112, 112, 3))
            Image.fromarray(np.clip(im, 0, 255).astype(np.uint8)).save(d / f"{k}.png")
    return root


def _cfg(tmp_path: Path, out: str = "run", **kw):
    from synthfr.genmodel.dit.trainer import dit_config_from_dict

    if not (tmp_path / "faces").is_dir():
        _faces(tmp_path / "faces")
    base = dict(data=[str(tmp_path / "faces")], out=str(tmp_path / out), data_cache=str(tmp_path / "cache"),
                embedder="tiny-test", device="cpu", model=dict(TINY), virtual=3,
                prototype_options={"epochs": 3, "batch_size": 8}, batch_size=6, lr=2e-3, ema_decay=0.9,
                sample_every=0, ckpt_minutes=1e9, log_every=1)
    base.update(kw)
    return dit_config_from_dict(base)


# -- schedule --------------------------------------------------------------------------------------------
def test_zero_terminal_snr_and_trailing_steps():
    s = NoiseSchedule()
    ac = s.alphas_cumprod
    assert ac[-1] == 0.0 and s.snr()[-1] == 0.0                      # pure noise at t = T-1
    assert torch.isclose(ac[0], cosine_alphas_cumprod()[0])          # first step unchanged
    assert bool((ac[1:] < ac[:-1]).all())                            # strictly decreasing
    raw = cosine_alphas_cumprod()
    assert raw[-1] > 0                                               # the plain cosine schedule is not zero-SNR
    # Lin et al.'s rescale is affine in sqrt(ᾱ): brute-force check against the two endpoint conditions
    a, r = raw.sqrt(), rescale_zero_terminal_snr(raw).sqrt()
    k = (r[1] - r[0]) / (a[1] - a[0])
    assert torch.allclose(r, r[0] + k * (a - a[0]), atol=1e-12)
    ts = trailing_timesteps(1000, 50)
    assert ts[0] == 999 and ts[-1] == 19 and len(ts) == 50 and all(x - y == 20 for x, y in zip(ts, ts[1:]))
    # v-parameterisation round trip
    x0, eps = torch.randn(3, 3, 4, 4), torch.randn(3, 3, 4, 4)
    t = torch.tensor([0, 500, 999])
    xt = s.add_noise(x0, eps, t)
    x0b, epsb = s.x0_eps_from_v(xt, s.v_target(x0, eps, t), t)
    assert torch.allclose(x0b, x0, atol=1e-5) and torch.allclose(epsb[:2], eps[:2], atol=1e-4)
    assert torch.equal(xt[2], eps[2])                                # SNR 0: the input is the noise itself


def test_ddim_with_an_oracle_recovers_the_image():
    """With the exact v of a single known image, DDIM lands on that image (sampler maths, brute force)."""
    s = NoiseSchedule()
    target = torch.rand(2, 3, 4, 4) * 2 - 1

    def oracle(x, t, cond):
        ab = s.alphas_cumprod[t].float().view(-1, 1, 1, 1)
        eps = (x - ab.sqrt() * target) / (1 - ab).sqrt().clamp_min(1e-8)
        return ab.sqrt() * eps - (1 - ab).sqrt() * target

    out = ddim_sample(oracle, torch.randn(2, 3, 4, 4), s, steps=10)
    assert torch.allclose(out, target, atol=1e-4)


# -- network -----------------------------------------------------------------------------------------------
def test_dit_shapes_null_condition_and_landmarks():
    torch.manual_seed(0)
    m = DiT(DiTConfig(**{**DIT_PRESETS["test"], "landmarks": True, "cond_dim": 8}))
    with torch.no_grad():
        for p in m.parameters():
            p.add_(0.05 * torch.randn_like(p))
    x, t, c = torch.randn(2, 3, 16, 16), torch.tensor([5, 900]), torch.randn(2, 8)
    lm = torch.rand(2, 10) * 2 - 1
    keep = torch.ones(2, dtype=torch.bool)
    out = m(x, t, c, keep, lm)
    assert out.shape == x.shape
    assert not torch.allclose(out, m(x, t, c, keep, lm + 0.5))      # landmarks condition the output
    drop = torch.zeros(2, dtype=torch.bool)
    assert torch.allclose(m(x, t, c, drop, lm), m(x, t, -c, drop, -lm))  # unconditioned: condition ignored
    with pytest.raises(ValueError, match="landmarks"):
        m(x, t, c, keep)
    b4 = DIT_PRESETS["DiT-B/4"]
    assert (b4["hidden"], b4["depth"], b4["heads"], b4["patch"]) == (768, 12, 12, 4)


# -- training ---------------------------------------------------------------------------------------------
def _fixed_loss(model: DiT, run: Path, cfg) -> float:
    """v-MSE on a fixed batch, fixed t and noise (the same for every model compared)."""
    from synthfr.genmodel.dit.prototypes import load_prototypes
    from synthfr.genmodel.dit.trainer import _load_faces, _resize

    images, _, labels = _load_faces(cfg, "cpu", False)
    pr = load_prototypes(run / "stage1")
    x = _resize(images, cfg.model.image_size).float() / 127.5 - 1
    p = torch.from_numpy(pr.real)[torch.from_numpy(pr.class_index(labels))]
    g = torch.Generator().manual_seed(123)
    s = NoiseSchedule()
    losses = []
    for _ in range(8):
        t = torch.randint(0, 1000, (len(x),), generator=g)
        n = torch.randn(x.shape, generator=g)
        with torch.no_grad():
            losses.append(float((model(s.add_noise(x, n, t), t, p) - s.v_target(x, n, t)).pow(2).mean()))
    return float(np.mean(losses))


def test_training_reduces_the_loss_and_resume_is_exact(tmp_path):
    from safetensors.torch import load_file

    from synthfr.genmodel.dit.checkpoint import latest_checkpoint, load_checkpoint
    from synthfr.genmodel.dit.trainer import train_dit
    from synthfr.utils.seeds import derive_seed

    cfg = _cfg(tmp_path, max_steps=60)
    summary = train_dit(cfg, progress=False, log=lambda m: None)
    assert summary["step"] == 60
    run = Path(cfg.out)
    torch.manual_seed(derive_seed(cfg.seed, "init"))
    init = DiT(cfg.model)
    trained = DiT(cfg.model)
    load_checkpoint(latest_checkpoint(run), model=trained)
    before, after = _fixed_loss(init, run, cfg), _fixed_loss(trained, run, cfg)
    assert after < 0.8 * before, (before, after)
    assert (run / "log.csv").read_text().count("\n") == 61

    # 4 steps in one go == 2 steps, stop, resume 2 steps (bit for bit, optimiser state included)
    a = train_dit(_cfg(tmp_path, "a", max_steps=4), progress=False, log=lambda m: None)
    train_dit(_cfg(tmp_path, "b", max_steps=2), progress=False, log=lambda m: None)
    with pytest.raises(FileExistsError, match="--resume"):
        train_dit(_cfg(tmp_path, "b", max_steps=4), progress=False, log=lambda m: None)
    b = train_dit(_cfg(tmp_path, "b", max_steps=4), resume=True, progress=False, log=lambda m: None)
    assert a["step"] == b["step"] == 4
    ta = load_file(str(latest_checkpoint(tmp_path / "a").with_suffix(".safetensors")))
    tb = load_file(str(latest_checkpoint(tmp_path / "b").with_suffix(".safetensors")))
    assert ta.keys() == tb.keys() and any(k.startswith("opt.") for k in ta)
    for k in ta:
        assert torch.equal(ta[k], tb[k]), k

    # a run written before the shared layout (unpadded names, latest.json {"step", "name"}) resumes the same
    # way, and its new checkpoints are kept over the old ones (sorted by step, not by name)
    c = tmp_path / "c"
    train_dit(_cfg(tmp_path, "c", max_steps=2), progress=False, log=lambda m: None)
    for suf in (".safetensors", ".json"):
        (c / "ckpt" / f"step-00000002{suf}").rename(c / "ckpt" / f"step-2{suf}")
    (c / "ckpt" / "step-1.json").write_text("{}")  # an older one, to be pruned first
    (c / "ckpt" / "step-1.safetensors").write_bytes(b"")
    (c / "latest.json").write_text('{"step": 2, "name": "step-2"}\n')
    train_dit(_cfg(tmp_path, "c", max_steps=4), resume=True, progress=False, log=lambda m: None)
    kept = sorted(p.name for p in (c / "ckpt").glob("*.safetensors"))
    assert kept == ["step-00000004.safetensors", "step-2.safetensors"]
    tc = load_file(str(latest_checkpoint(c).with_suffix(".safetensors")))
    for k in ta:
        assert torch.equal(ta[k], tc[k]), k


def test_stage1_rows_are_what_the_vigface_sampler_gives(tmp_path):
    """The pipeline's `sample vigface` on RUN/stage1/gallery.npy (same seed, options) gives the DiT run's rows."""
    from synthfr.genmodel.dit.prototypes import train_prototypes
    from synthfr.samplers._api import sample_identities

    rng = np.random.default_rng(1)
    centre = rng.standard_normal(16)
    emb = centre + 0.5 * rng.standard_normal((30, 16))  # a dlib-like narrow cap: the gallery gets centred
    emb = (emb / np.linalg.norm(emb, axis=1, keepdims=True)).astype(np.float32)
    labels = [f"c{i % 7}" for i in range(30)]
    opts = {"epochs": 4, "batch_size": 8, "progress": False}
    pr = train_prototypes(emb, labels, 5, tmp_path / "stage1", seed=3, options=opts)
    assert pr.real.shape == (7, 16) and pr.virtual.shape == (5, 16) and pr.classes[0] == "c0"
    ids, _ = sample_identities("vigface", 5, gallery=str(tmp_path / "stage1" / "gallery.npy"), seed=3, **opts)
    assert np.allclose(ids, np.load(tmp_path / "stage1" / "virtual.npy"), atol=1e-6)
    # each real row sits nearest its own class mean
    std = pr.space.to_standard(emb)
    means = np.stack([std[[i for i, c in enumerate(labels) if c == k]].mean(0) for k in pr.classes])
    assert (np.argmax(pr.real @ means.T, axis=1) == np.arange(7)).all()


# -- checkpoint, generator ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    from synthfr.genmodel.dit.checkpoint import export_dit
    from synthfr.genmodel.dit.trainer import train_dit

    tmp = tmp_path_factory.mktemp("dit")
    cfg = _cfg(tmp, max_steps=3)
    train_dit(cfg, progress=False, log=lambda m: None)
    return Path(cfg.out), export_dit(cfg.out, tmp / "weights", defaults={"steps": 6})


def test_checkpoint_round_trips_through_safetensors(exported):
    from safetensors.torch import load_file

    from synthfr.genmodel.dit.checkpoint import latest_checkpoint, load_checkpoint
    from synthfr.generators import create_generator

    run, weights = exported
    assert sorted(p.name for p in weights.iterdir()) == ["config.json", "model.safetensors", "space.space.json",
                                                         "space.space.npz"]
    base = latest_checkpoint(run)
    ema = DiT(DiTConfig(**{**DIT_PRESETS["test"], "image_size": 16}))
    load_checkpoint(base, ema=ema)
    saved = load_file(str(base.with_suffix(".safetensors")))
    for k, v in ema.state_dict().items():
        assert torch.equal(v, saved["ema." + k])
    g = create_generator("vigface-dit", weights=str(weights))
    for k, v in g.loaded[0].state_dict().items():
        assert torch.equal(v, ema.state_dict()[k]), k
    assert g.options()["steps"] == 6 and g.dim == 128 and g.embedder == "tiny-test"


def test_generator_is_deterministic_per_seed_and_batch_invariant(exported):
    from synthfr.generators import create_generator

    _, weights = exported
    g = create_generator("vigface-dit", weights=str(weights), chunk=3)
    v = np.load(exported[0] / "stage1" / "virtual.npy")[[0, 1, 2, 0, 1]]
    seeds = np.array([10, 11, 12, 13, 14])
    full = g.generate(v, seeds)
    assert full.shape == (5, 112, 112, 3) and full.dtype == np.uint8
    assert np.array_equal(full, g.generate(v, seeds))                       # deterministic
    assert np.array_equal(full[[4, 1]], g.generate(v[[4, 1]], seeds[[4, 1]]))  # batch-invariant
    assert np.array_equal(full[2:3], g.generate(v[2:3], seeds[2:3]))
    assert not np.array_equal(full[0], full[3])                              # same identity, other seed
    other = create_generator("vigface-dit", weights=str(weights), chunk=5)
    assert np.array_equal(full, other.generate(v, seeds))                   # and the chunk size


def test_guidance_one_equals_the_conditional_model():
    from synthfr.genmodel.dit.sample import render
    from synthfr.generators import create_generator

    model, sched, _, _ = create_generator("test-vigface-dit").loaded  # a perturbed tiny DiT: conditions matter
    p = torch.nn.functional.normalize(torch.randn(3, 32, generator=torch.Generator().manual_seed(0)), dim=1)
    cond = render(model, sched, p, [1, 2, 3], steps=6, guidance=None, out_size=None)
    one = render(model, sched, p, [1, 2, 3], steps=6, guidance=1.0, out_size=None)
    two = render(model, sched, p, [1, 2, 3], steps=6, guidance=3.0, out_size=None)
    assert torch.allclose(cond, one, atol=1e-5)
    assert (cond - two).abs().max() > 1e-2                               # guidance does change the images


def test_vigface_dit_needs_weights_and_the_test_generator_needs_none(tmp_path):
    from synthfr.generators import create_generator

    with pytest.raises(FileNotFoundError, match="train-dit"):
        create_generator("vigface-dit")
    with pytest.raises(FileNotFoundError, match="lacks"):
        (tmp_path / "w").mkdir()
        create_generator("vigface-dit", weights=str(tmp_path / "w"))
    g = create_generator("test-vigface-dit")
    v = np.eye(32, dtype=np.float32)[:3]
    assert g.generate(v, [0, 1, 2]).shape == (3, 112, 112, 3)


@pytest.mark.parametrize("name", ["vigface.yaml", "vigface-cpu.yaml"])
def test_configs_hold_a_train_dit_section(name):
    from synthfr.app.commands.train_dit import load_dit_config
    from synthfr.app.pipeline import load_pipeline_config

    cfg = load_dit_config(str(ROOT / "configs" / name), {})
    load_pipeline_config(ROOT / "configs" / name)  # the same file is a valid pipeline config
    assert cfg.schedule["zero_terminal_snr"] and cfg.schedule["kind"] == "cosine"
    if name == "vigface.yaml":  # VIGFace's published settings
        m = cfg.model
        assert (m.hidden, m.depth, m.heads, m.patch) == (768, 12, 12, 4)
        assert cfg.batch_size == 512 and cfg.lr == 1e-4


def test_cli_train_resume_and_export(tmp_path):
    import yaml

    from synthfr.app.cli import main

    _faces(tmp_path / "faces")
    cfg = {"seed": 1, "dit": {"data": [str(tmp_path / "faces")], "embedder": "tiny-test", "device": "cpu",
                              "model": TINY, "virtual": 2, "prototype_options": {"epochs": 2}, "batch_size": 4,
                              "sample_every": 2, "sample_steps": 2}}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    run = tmp_path / "run"
    args = ["train-dit", "--config", str(tmp_path / "c.yaml"), "--out", str(run), "--no-progress",
            "--data-cache", str(tmp_path / "cache")]
    assert main(args + ["--max-steps", "2"]) == 0
    assert main(args + ["--max-steps", "3", "--resume"]) == 0
    assert (run / "samples" / "step-2.png").is_file() and (run / "stage1" / "virtual.npy").is_file()
    assert main(["train-dit", "--out", str(run), "--export-to", str(tmp_path / "w"), "--half", "--guidance", "3"]) == 0
    import json

    meta = json.loads((tmp_path / "w" / "config.json").read_text())
    assert meta["step"] == 3 and meta["sampling"]["guidance"] == 3.0 and meta["dtype"] == "float16"
