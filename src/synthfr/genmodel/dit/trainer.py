"""``synthfr train-dit``: VIGFace's two stages on aligned real faces, resumable, CPU or (multi-)GPU.

1. **Prototypes** (:mod:`~synthfr.genmodel.dit.prototypes`): the ``vigface`` classifier on the faces' labelled
   ``dlib-torch`` embeddings gives one row per real class and ``virtual`` rows for new identities.
2. **DiT**: every face is noised (cosine schedule with zero terminal SNR, ``t`` uniform in 0..T-1) and the
   network predicts ``v`` conditioned on its class row (+ optional 5-point landmarks); the condition is replaced
   by the learned null embedding with probability ``cond_drop`` (classifier-free guidance). Loss: MSE on v.
   AdamW, EMA of the weights, horizontal flips.

Everything random in step ``s`` comes from a generator seeded with ``derive_seed(seed, "step", s)`` and the data
order of epoch ``e`` from ``derive_seed(seed, "epoch", e)``, so ``--resume`` continues exactly where a checkpoint
left off (tested). Checkpoints every ``ckpt_minutes`` (+ at the end and on SIGTERM/SIGINT); ``log.csv`` holds the
losses, ``samples/step-N.png`` EMA renders of real (top) and virtual (bottom) rows.

Multi-GPU: ``torchrun --nproc_per_node 8 -m synthfr.cli train-dit ...`` — each rank takes its slice of every
global batch (DDP averages the gradients), rank 0 writes. ``amp: true`` runs the forward pass in bfloat16 on CUDA.
"""
from __future__ import annotations

import dataclasses
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F

from synthfr.genmodel.dit.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from synthfr.genmodel.dit.model import DiT, DiTConfig
from synthfr.genmodel.dit.schedule import NoiseSchedule
from synthfr.genmodel.run_config import TrainRunConfig
from synthfr.utils.io import write_json
from synthfr.utils.seeds import derive_seed

__all__ = ["DiTTrainConfig", "train_dit", "dit_config_from_dict"]


@dataclass
class DiTTrainConfig(TrainRunConfig):
    """VIGFace stage 1 + stage 2 training (``synthfr train-dit``)."""

    model: DiTConfig = field(default_factory=DiTConfig)
    """Architecture (``model.image_size`` is the training resolution; faces are resized from 112)."""
    virtual: int = 1000
    """Virtual prototypes made in stage 1 (the identities the DiT renders)."""
    prototype_options: dict = field(default_factory=lambda: {"epochs": 60})
    """Options of the ``vigface`` sampler for stage 1 (scale, margin, epochs, batch_size, lr, repel, device)."""
    landmarks: str | None = None
    """Optional N×5×2 .npy of 5-point landmarks (112-px coordinates, the data cache's order); needs model.landmarks."""
    schedule: dict = field(default_factory=lambda: {"T": 1000, "kind": "cosine", "zero_terminal_snr": True})
    """Noise schedule (see :class:`~synthfr.genmodel.dit.schedule.NoiseSchedule`)."""
    batch_size: int = 512
    """Global batch (all ranks together)."""
    lr: float = 1e-4
    """AdamW learning rate (VIGFace: 1e-4)."""
    weight_decay: float = 0.0
    """AdamW weight decay."""
    warmup_steps: int = 0
    """Linear learning-rate warm-up."""
    grad_clip: float = 1.0
    """Gradient-norm clip (0: off)."""
    ema_decay: float = 0.9999
    """EMA decay of the exported weights."""
    cond_drop: float = 0.1
    """Probability that an image is trained unconditioned (classifier-free guidance)."""
    flip: float = 0.5
    """Probability of a horizontal flip (the class row stays; landmarks are mirrored)."""
    amp: bool = True
    """bfloat16 autocast on CUDA (ignored on CPU)."""
    sample_every: int = 1000
    """Steps between sample grids (0: none)."""
    sample_steps: int = 25
    """DDIM steps of the training sample grids."""


def dit_config_from_dict(d: dict[str, Any]) -> DiTTrainConfig:
    """A :class:`DiTTrainConfig` from plain values (YAML/JSON); unknown keys are errors naming the key."""
    from synthfr.config import check_keys

    d = dict(d)
    check_keys(DiTTrainConfig, d)
    m = d.pop("model", {}) or {}
    if isinstance(m, DiTConfig):
        m = m.to_dict()
    m = dict(m)
    check_keys(DiTConfig, {k: v for k, v in m.items() if k != "preset"}, "model")  # preset: a named size
    preset = m.pop("preset", None)
    if preset is not None:
        from synthfr.genmodel.dit.model import DIT_PRESETS

        if preset not in DIT_PRESETS:
            raise ValueError(f"unknown DiT preset {preset!r}; use one of {', '.join(DIT_PRESETS)}")
        m = {**DIT_PRESETS[preset], **m}
    return DiTTrainConfig(model=DiTConfig(**m), **d)


def _dist() -> tuple[int, int, int]:
    """(rank, world size, local rank), initialising torch.distributed under torchrun."""
    from synthfr.utils.distributed import env_rank_world

    world = env_rank_world()[1]
    if world <= 1:
        return 0, 1, 0
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return dist.get_rank(), world, int(os.environ.get("LOCAL_RANK", "0"))


def _load_faces(cfg: DiTTrainConfig, device: str, progress: bool):
    from synthfr.genmodel.trainer import prepare_data

    td = prepare_data(cfg.data, cfg.data_cache or Path(cfg.out) / "data", embedder=cfg.embedder, device=device,
                      val_identities=0, seed=cfg.seed, progress=progress)
    return td.images, td.emb[:, 0].numpy(), td.identity


def _resize(images: torch.Tensor, size: int) -> torch.Tensor:
    """N×112×112×3 uint8 -> N×3×size×size uint8 (antialiased), in chunks to bound memory."""
    out = torch.empty((len(images), 3, size, size), dtype=torch.uint8)
    for a in range(0, len(images), 1024):
        x = images[a:a + 1024].permute(0, 3, 1, 2).float()
        if size != x.shape[-1]:
            x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
        out[a:a + 1024] = x.round().clamp(0, 255).to(torch.uint8)
    return out


def _batch_indices(n: int, batch: int, step: int, seed: int) -> np.ndarray:
    """Global batch of ``step``: positions ``[step·B, (step+1)·B)`` of the endless chain of seeded epoch orders."""
    a, b = step * batch, (step + 1) * batch
    out = []
    for e in range(a // n, (b - 1) // n + 1):
        perm = np.random.default_rng(derive_seed(seed, "epoch", e)).permutation(n)
        lo, hi = max(a, e * n) - e * n, min(b, (e + 1) * n) - e * n
        out.append(perm[lo:hi])
    return np.concatenate(out)


_FLIP_LM = [1, 0, 2, 4, 3]  # left/right eye and mouth corner swap places in a mirror image


def train_dit(cfg: DiTTrainConfig, resume: bool = False, progress: bool = True,
              log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run stage 1 (once) and train the DiT until ``max_steps`` or ``time_budget``; returns a summary."""
    from synthfr.utils.collectives import owned_process_group

    with owned_process_group():  # under torchrun: the group is destroyed before exit (gloo aborts otherwise)
        return _train_dit(cfg, resume, progress, log)


def _train_dit(cfg: DiTTrainConfig, resume: bool, progress: bool, log: Callable[[str], None]) -> dict[str, Any]:
    from synthfr.genmodel.dit.prototypes import train_prototypes
    from synthfr.utils.device import resolve_device

    t_start = time.perf_counter()
    rank, world, local = _dist()
    dev = resolve_device(f"cuda:{local}" if world > 1 and cfg.device in ("auto", "cuda") else cfg.device)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    if not cfg.out:
        raise ValueError("train-dit needs --out RUN (the run folder)")
    run = Path(cfg.out)
    base = latest_checkpoint(run)
    if base is not None and not resume:
        raise FileExistsError(f"{run} already holds a run; add --resume to continue it or choose another --out")
    if cfg.batch_size % world:
        raise ValueError(f"batch_size {cfg.batch_size} is not divisible by the {world} processes")
    run.mkdir(parents=True, exist_ok=True)
    images, emb, labels = _load_faces(cfg, str(dev), progress and rank == 0)
    protos = train_prototypes(emb, labels, cfg.virtual, run / "stage1", seed=cfg.seed,
                              options={"progress": False, **cfg.prototype_options})
    cls = torch.from_numpy(protos.class_index(labels))
    real = torch.from_numpy(protos.real)
    lms = None
    if cfg.landmarks:
        if not cfg.model.landmarks:
            raise ValueError("landmarks given but model.landmarks is false; set model.landmarks=true")
        lms = torch.from_numpy(np.load(cfg.landmarks).astype(np.float32)).reshape(-1, 5, 2) / 56.0 - 1.0
        if len(lms) != len(images):
            raise ValueError(f"{cfg.landmarks} has {len(lms)} rows for {len(images)} faces; they must match")
    elif cfg.model.landmarks:
        raise ValueError("model.landmarks is true but no landmarks file is given (landmarks=PATH.npy)")
    pix = _resize(images, cfg.model.image_size)
    del images
    n = len(pix)
    if cfg.model.cond_dim != real.shape[1]:
        raise ValueError(f"model.cond_dim {cfg.model.cond_dim} but {cfg.embedder} vectors have {real.shape[1]} dims")

    torch.manual_seed(derive_seed(cfg.seed, "init"))
    model = DiT(cfg.model).to(dev)
    ema = DiT(cfg.model).to(dev)
    ema.load_state_dict(model.state_dict())
    ema.requires_grad_(False)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    step, train_seconds = 0, 0.0
    if base is not None:
        meta = load_checkpoint(base, model, ema, opt, device=dev)
        step, train_seconds = int(meta["step"]), float(meta.get("train_seconds", 0.0))
        log(f"resumed {run} at step {step}")
    net = model
    if world > 1:
        net = torch.nn.parallel.DistributedDataParallel(model, device_ids=[dev.index] if dev.type == "cuda" else None)
    sched = NoiseSchedule(**cfg.schedule)
    cfg_dict = dataclasses.asdict(cfg)
    local_b = cfg.batch_size // world
    use_amp = cfg.amp and dev.type == "cuda"

    stop = {"flag": False}

    def _on_signal(signum, frame):
        stop["flag"] = True
    old = {s: signal.signal(s, _on_signal) for s in (signal.SIGTERM, signal.SIGINT)} if rank == 0 else {}

    def checkpoint():
        if rank == 0:
            save_checkpoint(run, step, model, ema, opt, {
                "config": cfg_dict, "train_seconds": train_seconds, "images_seen": step * cfg.batch_size,
                "world": world, "device": str(dev)})

    logf = None
    if rank == 0:
        from synthfr.utils.run_dir import CsvLog, truncate_csv

        truncate_csv(run / "log.csv", step)  # a resumed run re-logs the steps after its checkpoint: once each
        logf = CsvLog(run / "log.csv", ["step", "loss", "lr", "train_seconds"], append=True)
    bar = None
    if progress and rank == 0:
        from tqdm import tqdm

        bar = tqdm(total=cfg.max_steps, initial=step, desc="train-dit", unit="step", mininterval=10)
    last_ckpt = time.perf_counter()
    losses: list[float] = []
    first_loss = None
    try:
        while not stop["flag"]:
            if cfg.max_steps is not None and step >= cfg.max_steps:
                break
            if cfg.time_budget is not None and time.perf_counter() - t_start >= cfg.time_budget:
                break
            t0 = time.perf_counter()
            idx = _batch_indices(n, cfg.batch_size, step, cfg.seed)[rank * local_b:(rank + 1) * local_b]
            g = torch.Generator().manual_seed(derive_seed(cfg.seed, "step", step, rank))
            b = len(idx)
            x = pix[idx].float() / 127.5 - 1.0
            flip = torch.rand(b, generator=g) < cfg.flip
            x = torch.where(flip[:, None, None, None], x.flip(-1), x)
            lm = None
            if lms is not None:
                lm = lms[idx].clone()
                lm_f = lm[:, _FLIP_LM].clone()
                lm_f[..., 0] = -lm_f[..., 0] - 1.0 / 56.0  # pixel x -> 111 - x, in (x / 56 - 1) units
                lm = torch.where(flip[:, None, None], lm_f, lm).reshape(b, 10).to(dev)
            t = torch.randint(0, sched.T, (b,), generator=g)
            noise = torch.randn(x.shape, generator=g)
            keep = torch.rand(b, generator=g) >= cfg.cond_drop
            x, t, noise, keep = x.to(dev), t.to(dev), noise.to(dev), keep.to(dev)
            p = real[cls[idx]].to(dev)
            lr = cfg.lr * min(1.0, (step + 1) / cfg.warmup_steps) if cfg.warmup_steps else cfg.lr
            for gr in opt.param_groups:
                gr["lr"] = lr
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=use_amp):
                pred = net(sched.add_noise(x, noise, t), t, p, keep, lm)
            loss = F.mse_loss(pred.float(), sched.v_target(x, noise, t))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            with torch.no_grad():
                d = min(cfg.ema_decay, (1 + step) / (10 + step))  # warm EMA: early weights fade fast
                for pe, pm in zip(ema.parameters(), model.parameters()):
                    pe.lerp_(pm.detach(), 1 - d)
            step += 1
            train_seconds += time.perf_counter() - t0
            lv = float(loss.detach())
            first_loss = lv if first_loss is None else first_loss
            losses.append(lv)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{lv:.4f}", refresh=False)
            if rank == 0 and step % cfg.log_every == 0:
                logf.write({"step": step, "loss": float(np.mean(losses[-cfg.log_every:])), "lr": lr,
                            "train_seconds": round(train_seconds, 2)})
            if rank == 0 and cfg.sample_every and step % cfg.sample_every == 0:
                _sample_grid(ema, sched, protos, run / "samples" / f"step-{step}.png", cfg)
            if time.perf_counter() - last_ckpt >= cfg.ckpt_minutes * 60:
                checkpoint()
                last_ckpt = time.perf_counter()
    finally:
        checkpoint()
        if logf is not None:
            logf.close()
        if bar is not None:
            bar.close()
        for s, h in old.items():
            signal.signal(s, h)
    summary = {"step": step, "train_seconds": train_seconds, "images_seen": step * cfg.batch_size,
               "first_loss": first_loss, "last_loss": float(np.mean(losses[-50:])) if losses else None,
               "classes": len(protos.classes), "virtual": cfg.virtual, "faces": n}
    if rank == 0:
        write_json(run / "summary.json", summary)
    return summary


def _sample_grid(ema: DiT, sched: NoiseSchedule, protos, path: Path, cfg: DiTTrainConfig, k: int = 8) -> None:
    """EMA renders of ``k`` real class rows (top) and ``k`` virtual rows (bottom), fixed seeds."""
    from PIL import Image

    from synthfr.genmodel.dit.sample import render

    if cfg.model.landmarks:
        return  # needs landmarks per image; the generator renders those
    k = min(k, len(protos.real), len(protos.virtual))
    p = torch.cat([torch.from_numpy(protos.real[:k]), torch.from_numpy(protos.virtual[:k])])
    was = ema.training
    ema.eval()
    x = render(ema, sched, p, list(range(len(p))), steps=cfg.sample_steps, guidance=2.0, out_size=None)
    ema.train(was)
    s = cfg.model.image_size
    grid = (x * 255).round().byte().view(2, k, 3, s, s).permute(0, 3, 1, 4, 2).reshape(2 * s, k * s, 3)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(grid.numpy()).save(path)
