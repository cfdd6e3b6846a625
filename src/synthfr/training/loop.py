"""The training loop: one readable function, nanoGPT-style.

    data  ─ DataLoader workers: decode JPEG, augment (seeded per sample) ─▶ batch (this rank's slice)
    [domain mixup with a real batch]  ─▶ backbone (DDP under torchrun, AMP on GPU) ─▶ embeddings
    ─▶ PartialFC (class centres sharded over ranks, sampled negatives, margin head, cross-entropy) ─▶ loss
    ─▶ SGD (momentum, weight decay, warm-up + multi-step/poly/cosine schedule, gradient clipping)

Everything random is derived from ``cfg.seed`` and the step / sample index (never from the process or the
batch layout): data order from ``(seed, epoch)``, augmentation from ``(seed, epoch, sample)``, domain-mixup
batches from ``(seed, step)``, Partial FC sampling from ``(seed, step, class)``. Together with checkpoints that
hold model, classifier, momentum and RNG states, a killed run resumed with ``resume=True`` ends with the same
weights as an uninterrupted one, and ``torchrun`` with N processes follows the single-process trajectory
(up to float summation order; BatchNorm statistics are per rank as in insightface).

Run dir: ``config.json``, ``log.csv`` (and ``val.csv``), ``model.safetensors`` (backbone), ``head.safetensors``
(class centres + head buffers), ``checkpoints/step_*/``, ``virtual_identities.npy`` with virtual classes.
"""
from __future__ import annotations

import math
import os
import signal
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from synthfr.utils import collectives as D
from synthfr.training.config import TrainConfig, validate_train_config
from synthfr.training.schedule import RealBatchSampler, StepBatchSampler, is_mix_step, lr_at
from synthfr.training.validation import validate
from synthfr.utils.run_dir import CsvLog, save_safetensors, truncate_csv, write_config

__all__ = ["train", "validate_train_config"]


def _amp_dtype(cfg: TrainConfig, device: torch.device):
    mode = cfg.amp
    if mode == "auto":
        mode = "fp16" if device.type == "cuda" else "off"
    if mode == "off":
        return None
    if mode in ("fp16", "bf16"):
        return torch.float16 if mode == "fp16" else torch.bfloat16
    raise ValueError(f"unknown amp mode {cfg.amp!r}; use auto, fp16, bf16 or off")


def _loader(ds, sampler, cfg: TrainConfig, device: torch.device):
    kw: dict[str, Any] = {}
    if cfg.num_workers > 0:
        kw.update(prefetch_factor=4, persistent_workers=False)
    # a private generator: the loader must not consume the global torch RNG (exact resume)
    return torch.utils.data.DataLoader(ds, batch_sampler=sampler, num_workers=cfg.num_workers,
                                       pin_memory=device.type == "cuda", generator=torch.Generator(), **kw)


# -- the loop -----------------------------------------------------------------------------------------------
def _channels_last(cfg: TrainConfig, device: torch.device) -> bool:
    from synthfr.utils.device import use_channels_last

    return use_channels_last(cfg.memory_format, device, name="--memory-format")


_STOP: dict[str, int] = {"signal": 0}


def train(cfg: TrainConfig) -> Path:
    """Train a backbone + margin head on ``cfg.data``; returns the run dir (see the module docstring).

    The config is validated first; the run dir is locked (:mod:`synthfr.utils.lock`) so two runs never write
    into one folder. SIGINT/SIGTERM stop the loop after the current step with a checkpoint (raising
    :class:`synthfr.errors.Interrupted`); ``resume=True`` continues from it.
    """
    from synthfr.utils.lock import FolderLock

    validate_train_config(cfg)
    from synthfr.utils.distributed import env_rank_world

    rank, world = env_rank_world()
    lock = FolderLock(cfg.out, "train", key=f"rank{rank}" if world > 1 else None)
    _STOP["signal"] = 0

    def on_signal(signum, frame):  # stop after the current step (a second Ctrl-C interrupts at once)
        if _STOP["signal"] and signum == signal.SIGINT:
            raise KeyboardInterrupt
        _STOP["signal"] = signum

    import threading

    handlers = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            handlers[sig] = signal.signal(sig, on_signal)
    existed = Path(cfg.out).exists()
    try:
        with lock, D.owned_process_group():
            return _train(cfg)
    finally:
        for sig, h in handlers.items():
            signal.signal(sig, h)
        out = Path(cfg.out)
        if not existed and out.is_dir() and not any(out.iterdir()):
            out.rmdir()  # failed before writing anything: leave no folder behind


def _train(cfg: TrainConfig) -> Path:
    import torch.nn.functional as F

    from synthfr.data.imagefolder import open_dataset
    from synthfr.data.multisource import MultiSourceDataset, open_datasets
    from synthfr.models.backbones import create_backbone
    from synthfr.models.heads import create_head
    from synthfr.models.partial_fc import PartialFC
    from synthfr.training.augment import Augment
    from synthfr.training.checkpoint import classifier_state, latest_checkpoint, load_checkpoint, save_checkpoint
    from synthfr.training.mixup import domain_mixup, psi_at
    from synthfr.utils.io import write_json
    from synthfr.utils.provenance import provenance

    rank, world, device = D.init_distributed(cfg.device)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    out = Path(cfg.out)
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        if not cfg.resume and (out / "model.safetensors").exists():
            raise ValueError(f"{out} already holds a finished run; choose another --out or pass --resume")

    # data -----------------------------------------------------------------------------------------------
    aug = Augment(cfg.augment)
    ds = open_datasets(cfg.data, cfg.input_size, aug if aug.active else None, cfg.soft_labels)
    multi = isinstance(ds, MultiSourceDataset)
    if cfg.data_weights and not multi:
        raise ValueError("--data-weights needs several --data sources")
    if multi:
        from synthfr.data.multisource import normalised_weights

        normalised_weights(ds.sizes, cfg.data_weights)  # checks the count and signs early
    real, n_real = None, 0
    if cfg.domain_mixup:
        real = open_dataset(cfg.domain_mixup, cfg.input_size, aug if aug.active else None, soft_labels=False)
        srcs = [Path(p).resolve() for p in ([cfg.data] if isinstance(cfg.data, (str, Path)) else cfg.data)]
        if Path(cfg.domain_mixup).resolve() in srcs:  # mix with one of the sources: keep its class ids
            real.label_offset = ds.class_offsets[srcs.index(Path(cfg.domain_mixup).resolve())] if multi else 0
        else:
            real.label_offset, n_real = ds.num_classes, real.num_classes
    n_syn, n_virt = ds.num_classes, int(cfg.virtual_classes)
    num_classes = n_syn + n_real + n_virt
    B = int(cfg.batch_size)
    if B % world:
        raise ValueError(f"batch size {B} is not divisible by the {world} processes")
    spe = len(ds) // B
    if spe == 0:
        raise ValueError(f"{cfg.data} has {len(ds)} images, fewer than one batch of {B}; lower --batch-size")
    # epochs <= 0 with a time limit: after the warm-up steps, the schedule follows the elapsed fraction of the
    # remaining time budget instead of the step count (such runs are not step-reproducible; everything else is).
    fit_to_time = cfg.epochs <= 0
    if fit_to_time and not cfg.time_limit:
        raise ValueError("--epochs 0 (fit the schedule to the time budget) needs --time-limit SECONDS")
    total = 10**9 if fit_to_time else max(1, int(round(cfg.epochs * spe)))
    stop = min(total, cfg.max_steps) if cfg.max_steps else total

    # model ----------------------------------------------------------------------------------------------
    torch.manual_seed(cfg.seed)
    bb_kwargs = {"embedding_size": cfg.embedding_size, "input_size": cfg.input_size, **cfg.backbone_kwargs}
    backbone = create_backbone(cfg.backbone, **bb_kwargs).to(device)
    fmt = torch.channels_last if _channels_last(cfg, device) else torch.contiguous_format
    backbone.to(memory_format=fmt)  # 4-D weights only; checkpoints are saved contiguous whatever the layout
    head = create_head(cfg.head, **cfg.head_kwargs)
    pfc = PartialFC(head, cfg.embedding_size, num_classes, cfg.sample_rate, seed=cfg.seed,
                    soft_logits=cfg.soft_label_logits).to(device)
    model = backbone
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel as DDP

        model = DDP(backbone, device_ids=[device.index] if device.type == "cuda" else None)
    opt = torch.optim.SGD(
        [{"params": [p for p in backbone.parameters() if p.requires_grad]}, {"params": list(pfc.parameters())}],
        lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    amp_dtype = _amp_dtype(cfg, device)
    scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16 and device.type == "cuda")

    start = 0
    if cfg.resume:
        ck = latest_checkpoint(out)
        if ck is not None:
            start = int(load_checkpoint(ck, backbone, pfc, opt, scaler, device)["step"])
            if rank == 0:
                print(f"resuming from {ck} (step {start} of {total})")
        elif rank == 0:
            print(f"no checkpoint in {out}/checkpoints: starting from scratch")

    meta = {
        "config": cfg.to_json(), "seed": cfg.seed, "backbone": cfg.backbone, "backbone_kwargs": bb_kwargs,
        "head": cfg.head, "head_kwargs": dict(cfg.head_kwargs), "embedding_size": cfg.embedding_size,
        "num_classes": num_classes, "classes": {"data": n_syn, "real": n_real, "virtual": n_virt},
        "class_names": ds.class_names, "images": len(ds),
        **({"sources": ds.describe(cfg.data_weights)} if multi else {}), "steps_per_epoch": spe, "total_steps": total,
        "world_size": world, "memory_format": "channels_last" if fmt is torch.channels_last else "contiguous",
        "input": {"size": cfg.input_size, "channels": "RGB", "normalisation": "(x / 255 - 0.5) / 0.5"},
        "provenance": provenance(),
    }
    if rank == 0:
        write_json(out / "config.json", meta)

    loader = _loader(ds, StepBatchSampler(len(ds), B, cfg.seed, start, stop if not fit_to_time else 10**9, rank,
                                          world, ds.sizes if multi else None, cfg.data_weights), cfg, device)
    real_iter = None
    if real is not None:
        real_iter = iter(_loader(real, RealBatchSampler(len(real), B, cfg, start, 10**9 if fit_to_time else stop,
                                                        rank, world), cfg, device))

    log = val_log = tb = None
    if rank == 0 and cfg.resume:  # rows past the checkpoint are logged again below: keep each step once
        truncate_csv(out / "log.csv", start)
        truncate_csv(out / "val.csv", start)
    if rank == 0:
        log = CsvLog(out / "log.csv", ["step", "epoch", "lr", "loss", "samples_per_s", "sampled_classes", "time",
                                              "cpu_time", "psi"],
                     append=cfg.resume)
        if cfg.val:
            val_log = CsvLog(out / "val.csv", ["step", "epoch", "benchmark", "accuracy"], append=cfg.resume)
        if cfg.tensorboard:
            from torch.utils.tensorboard import SummaryWriter  # needs the tensorboard extra

            tb = SummaryWriter(str(out / "tensorboard"))
    bar = None
    if rank == 0 and cfg.progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=None if fit_to_time else stop, initial=start, desc="train", unit="step", dynamic_ncols=True)

    kill_at = int(os.environ.get("SYNTHFR_KILL_AT_STEP", "0"))  # test hook: SIGKILL after this step
    t_start = t_log = time.time()
    cpu_start = time.process_time()
    seen = 0
    step = start
    model.train()
    pfc.train()
    val_every = max(1, int(round(cfg.val_every * spe)))
    warm_steps, t_warm = int(round(cfg.warmup_epochs * spe)), 0.0
    for step, (x, labels, weights, _) in zip(range(start, stop), loader):
        epoch = step // spe
        elapsed = time.time() - t_start
        if cfg.time_limit:  # every rank follows rank 0's clock
            elapsed = D.broadcast_floats([elapsed], device)[0]
            if elapsed > cfg.time_limit:
                if rank == 0:
                    print(f"\ntime limit of {cfg.time_limit:.0f} s reached after step {step}")
                break
        if fit_to_time:  # decay over the time left after the warm-up steps
            if step <= warm_steps:
                t_warm = elapsed
            lr = lr_at(cfg, step, spe, 0, frac=(elapsed - t_warm) / max(cfg.time_limit - t_warm, 1e-9))
        else:
            lr = lr_at(cfg, step, spe, total)
        for g in opt.param_groups:
            g["lr"] = lr
        x = x.to(device, non_blocking=True)
        labels = labels.to(device, non_blocking=True)
        weights = weights.to(device, non_blocking=True)
        psi = None
        if real_iter is not None and is_mix_step(cfg, step):
            xr, lr_labels, _, _ = next(real_iter)
            psi = psi_at(cfg.seed, step, cfg.domain_mixup_ratio, cfg.domain_mixup_psi_step)
            x, labels, weights = domain_mixup(x, labels, weights, xr.to(device), lr_labels.to(device), psi)
        x = x.contiguous(memory_format=fmt)
        with torch.autocast(device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
            emb = model(x)
        loss = pfc(emb.float(), labels, weights)
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        if cfg.grad_clip > 0:
            scaler.unscale_(opt)
            torch.nn.utils.clip_grad_norm_(backbone.parameters(), cfg.grad_clip)
        scaler.step(opt)
        scaler.update()
        done = step + 1
        seen += x.shape[0] * world

        if rank == 0 and (done % cfg.log_every == 0 or done == stop):
            now = time.time()
            lv = float(loss.detach())
            if not math.isfinite(lv):
                raise RuntimeError(f"loss became {lv} at step {done}; lower --lr or check the data")
            row = {"step": done, "epoch": round(done / spe, 4), "lr": lr, "loss": lv,
                   "samples_per_s": round(seen / max(now - t_log, 1e-9), 3), "sampled_classes": pfc.last_num_sampled,
                   "time": round(now - t_start, 3), "cpu_time": round(time.process_time() - cpu_start, 3),
                   "psi": "" if psi is None else psi}
            log.write(row)
            if tb is not None:
                tb.add_scalar("loss", lv, done)
                tb.add_scalar("lr", lr, done)
            if bar is not None:
                bar.set_postfix(loss=f"{lv:.3f}", lr=f"{lr:.4g}", ep=f"{done / spe:.2f}")
            t_log, seen = now, 0
        if bar is not None:
            bar.update(1)

        epoch_end = done % spe == 0
        if cfg.val and (done % val_every == 0 or done == stop):
            if rank == 0:
                for name, acc in validate(backbone, list(cfg.val), device, cfg.input_size).items():
                    val_log.write({"step": done, "epoch": round(done / spe, 4), "benchmark": name, "accuracy": acc})
                    if tb is not None:
                        tb.add_scalar(f"val/{name}", acc, done)
                    print(f"\nstep {done} (epoch {done / spe:.2f}): {name} accuracy {acc:.4f}")
            D.barrier()
        if (cfg.checkpoint_every and done % cfg.checkpoint_every == 0) or (epoch_end and done < stop):
            save_checkpoint(out, done, backbone, pfc, opt, scaler,
                            extra={"epoch": done / spe, "lr": lr, "total_steps": total}, keep=cfg.keep_checkpoints)
        if kill_at and done == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        step = done
        stop_sig = _STOP["signal"]
        if world > 1:  # rank 0's view decides, so every rank saves the same step
            stop_sig = int(D.broadcast_floats([float(stop_sig)], device)[0])
        if stop_sig and done < stop:
            save_checkpoint(out, done, backbone, pfc, opt, scaler,
                            extra={"epoch": done / spe, "lr": lr, "total_steps": total}, keep=cfg.keep_checkpoints)
            if bar is not None:
                bar.close()
            for lg in (log, val_log):
                if lg is not None:
                    lg.close()
            from synthfr.errors import Interrupted

            name = signal.Signals(stop_sig).name
            raise Interrupted(f"{name} at step {done} of {stop}: checkpoint saved in {out}/checkpoints; continue "
                              "with the same command plus --resume", signum=stop_sig)
    else:
        step = stop if stop > start else start
    if bar is not None:
        bar.close()

    # final outputs ------------------------------------------------------------------------------------------
    save_checkpoint(out, step, backbone, pfc, opt, scaler, extra={"epoch": step / spe, "total_steps": total},
                    keep=cfg.keep_checkpoints)
    cls = classifier_state(pfc)
    if rank == 0:
        save_safetensors(out / "model.safetensors", backbone.state_dict(),
                         metadata={"backbone": cfg.backbone, "step": str(step)})
        save_safetensors(out / "head.safetensors", cls, metadata={"head": cfg.head, "num_classes": str(num_classes)})
        if n_virt:
            v = F.normalize(cls["weight"][n_syn + n_real:].float(), dim=1).numpy().astype(np.float32)
            np.save(out / "virtual_identities.npy", v)
        meta["final_step"] = step
        write_config(out / "config.json", meta)
        for lg in (log, val_log):
            if lg is not None:
                lg.close()
        if tb is not None:
            tb.close()
    D.barrier()
    return out
