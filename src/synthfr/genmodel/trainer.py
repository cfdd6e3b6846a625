"""``synthfr train-generator``: resumable training of the built-in generator on aligned real faces.

One step (batch of ``B`` real faces + ``round(B·synth_frac)`` condition vectors without an image)::

    real:  cond = embedder(image or its mirror), image tokens masked at 50–100 % (25 %: fully masked)
           loss = w_pix·L1 + w_kl·KL(q(z|x)‖N(0,I)) + w_id·(1−cos(E(out), cond)) + w_perc·feature-L1
                  + w_gan·hinge-GAN (after ``gan_start``)
    synth: cond around / between / away from real embeddings, fully masked, z ~ N(0, I)
           loss = w_syn·[(1−cos(E(out), cond)) + w_gan·GAN]      (identity + image prior only)

The identity and perceptual terms ramp up over ``id_ramp`` steps and see randomly shifted/scaled copies of output
and target (``id_jitter``), so they cannot be met with adversarial pixel texture; ``id_space="centred"`` measures
identity after removing the mean embedding (outputs gain nothing by drifting towards the average face).

Everything random in step ``s`` comes from a ``torch.Generator`` seeded with ``derive_seed(seed, "step", s)``
and the data order of epoch ``e`` from ``derive_seed(seed, "epoch", e)``, so the run is a pure function of the
config and the step: ``--resume`` continues *exactly* (tested) from the last checkpoint. Checkpoints are
written every ``ckpt_minutes`` (and at the end, and on SIGTERM/SIGINT) as ``ckpt/step-N.safetensors`` (models,
EMA, both optimisers) + ``ckpt/step-N.json`` (config, step, optimiser hyper-parameters, figures), then
``latest.json`` is replaced atomically; the two newest checkpoints are kept. Losses go to ``log.csv``, sample
grids to ``samples/step-N.png``, held-out-identity fidelity to ``val.csv``.
"""
from __future__ import annotations

import dataclasses
import signal
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from synthfr.genmodel.checkpoint import init_from, load_latest, save_checkpoint
from synthfr.genmodel.checkpoint import load_checkpoint_model  # noqa: F401 - re-exported (export, CLI)
from synthfr.genmodel.conditioning import ATTR_INPUTS, balance_weights, measured_attributes, mirror_signs
from synthfr.genmodel.model import FaceGenerator, PatchDiscriminator
from synthfr.genmodel.train_config import RESUME_FREE, GenTrainConfig, config_to_json
from synthfr.genmodel.train_config import config_from_json  # noqa: F401 - re-exported (CLI)
from synthfr.genmodel.train_data import (TrainData, batch_attributes, embed_with_features, make_embedder,
                                         prepare_conditioning, prepare_data)
from synthfr.genmodel.train_steps import (batch_indices, jitter_grid, lr_factor, perceptual, samples_and_val,
                                          synthetic_conditions, to_float)
from synthfr.genmodel.warp import MAX_YAW, YAW_GAIN, yaw_warp
from synthfr.utils.run_dir import (append_csv_row, load_module, load_optimizer, module_tensors, optimizer_tensors,
                                   truncate_csv)
from synthfr.utils.seeds import derive_seed

__all__ = ["GenTrainConfig", "prepare_data", "train_generator", "TrainData", "load_checkpoint_model",
           "embed_with_features"]


class _Stop:
    def __init__(self) -> None:
        self.flag = False

    def __call__(self, *_: Any) -> None:
        self.flag = True


def train_generator(cfg: GenTrainConfig, resume: bool = False, progress: bool = True,
                    data: TrainData | None = None, embedder: nn.Module | None = None,
                    on_step: Callable[[int, dict[str, float]], None] | None = None) -> dict[str, Any]:
    """Train (or, with ``resume``, continue) the generator; returns a summary dict (step, losses, paths)."""
    from synthfr.utils.device import resolve_device
    from synthfr.utils.provenance import write_provenance

    if not cfg.out:
        raise ValueError("train-generator needs an output run folder (--out RUN)")
    out = Path(cfg.out).expanduser()
    got = load_latest(out) if resume else None
    if resume and got is None:
        if (out / "latest.json").exists():
            raise FileNotFoundError(f"{out}/latest.json points to a missing checkpoint")
        print(f"train-generator: no checkpoint in {out} yet; starting from step 0")
    if got is None and not resume and (out / "latest.json").exists():
        raise ValueError(f"{out} already holds a run; pass --resume to continue it or choose another --out")
    if got is not None:
        saved = config_from_json(got[1]["config"])
        diffs = [f.name for f in dataclasses.fields(GenTrainConfig)
                 if f.name not in RESUME_FREE and getattr(saved, f.name) != getattr(cfg, f.name)]
        # on resume the saved maths wins; say so when the command line asked for something else
        if diffs:
            print(f"train-generator: resuming with the run's saved settings for {', '.join(diffs)}")
        keep = {k: getattr(cfg, k) for k in RESUME_FREE}
        cfg = dataclasses.replace(saved, **keep)
    cfg.model.validate()
    out.mkdir(parents=True, exist_ok=True)
    if cfg.threads:
        torch.set_num_threads(int(cfg.threads))
    dev = resolve_device(cfg.device)
    if embedder is None:
        embedder = make_embedder(cfg.embedder, dev)
    from synthfr.face.embedders import refuse_judge

    refuse_judge(embedder, "the generator trainer")
    embedder = embedder.to(dev)
    if data is None:
        data = prepare_data(cfg.data, cfg.data_cache or out / "data", cfg.embedder, str(dev), cfg.val_identities,
                            cfg.seed, progress=progress)
    if len(data.train_idx) == 0:
        raise ValueError("no training images left after holding out validation identities")
    prior = prepare_conditioning(cfg, data, out, progress)

    torch.manual_seed(derive_seed(cfg.seed, "init"))
    G = FaceGenerator(cfg.model, with_encoder=True)
    with torch.no_grad():
        e = data.emb[torch.from_numpy(data.train_idx)].reshape(-1, data.emb.shape[-1])
        G.cond_mean.copy_(e.mean(0))
        G.cond_scale.fill_(1.0 / float((e - e.mean(0)).norm(dim=1).mean().clamp_min(1e-6)))
        if cfg.model.attr_dim:
            a = data.attrs[torch.from_numpy(data.train_idx)]
            a = torch.cat([a, a * mirror_signs()[None]])  # statistics of images and mirrors (yaw centred on 0)
            G.attr_mean.copy_(torch.from_numpy(np.nanmean(a.numpy(), 0)))
            G.attr_std.copy_(torch.from_numpy(np.nanstd(a.numpy(), 0)).clamp_min(1e-3))
    D = PatchDiscriminator()
    E = FaceGenerator(cfg.model, with_encoder=True)
    E.load_state_dict(G.state_dict())
    for p in E.parameters():
        p.requires_grad_(False)
    G.to(dev), D.to(dev), E.to(dev)
    optG = torch.optim.AdamW(G.parameters(), lr=cfg.lr, betas=(0.9, 0.99), weight_decay=0.0)
    optD = torch.optim.AdamW(D.parameters(), lr=cfg.lr_d, betas=(0.5, 0.99), weight_decay=0.0)
    step = 0
    elapsed_total = 0.0
    # Wall time keeps counting while the process is paused (SIGSTOP) or shares its cores; the process's own CPU
    # time does not, so "CPU-hours of training" is cpu_s. Checkpoints written before it existed count it from
    # the step they resumed at (cpu_s_from_step).
    cpu_total, cpu_from = 0.0, 0
    if got is not None:
        tensors, state = got
        load_module(G, "G", tensors)
        load_module(D, "D", tensors)
        load_module(E, "E", tensors)
        load_optimizer(optG, "optG", tensors, state["optG"], dev)
        load_optimizer(optD, "optD", tensors, state["optD"], dev)
        step = int(state["step"])
        elapsed_total = float(state.get("elapsed_s", 0.0))
        cpu_total = float(state.get("cpu_s", 0.0))
        cpu_from = int(state.get("cpu_s_from_step", 0)) if "cpu_s" in state else step
        if state.get("data_fingerprint") not in (None, data.fingerprint):
            print("train-generator: warning: the training data differ from those of the checkpoint")
    if got is None and cfg.init_from:
        init_from(cfg.init_from, G, D, E)
    write_provenance(out, config_to_json(cfg), cfg.seed)

    log_path = out / "log.csv"
    fields = ["step", "elapsed_s", "loss_g", "pix", "kl", "id", "perc", "gan_g", "d", "syn_id", "lr", "attr"]
    truncate_csv(log_path, step)
    truncate_csv(out / "val.csv", step)
    stop = _Stop()
    old = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)} \
        if _in_main_thread() else {}

    def checkpoint() -> None:
        tensors = {**module_tensors(G, "G"), **module_tensors(D, "D"), **module_tensors(E, "E")}
        if prior is not None:
            tensors.update(prior.tensors())
        tg, mg = optimizer_tensors(optG, "optG")
        td, md = optimizer_tensors(optD, "optD")
        tensors.update(tg)
        tensors.update(td)
        save_checkpoint(out, step, tensors, {"step": step, "config": config_to_json(cfg), "optG": mg, "optD": md,
                                             "elapsed_s": elapsed_total + (time.time() - t_start),
                                             "cpu_s": cpu_total + (time.process_time() - c_start),
                                             "cpu_s_from_step": cpu_from,
                                             "data_fingerprint": data.fingerprint,
                                             "n_train": int(len(data.train_idx)), "n_val": int(len(data.val_idx))})

    t_start, c_start = time.time(), time.process_time()
    last_ckpt = t_start
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(initial=step, total=cfg.max_steps, desc="train-generator", unit="step")
    t_count = cfg.model.grid ** 2
    pose_net = None
    if cfg.w_attr > 0:
        if not cfg.model.attr_dim:
            raise ValueError("w_attr needs attribute inputs (model.attr_dim > 0)")
        from synthfr.face.pose import load_pose_estimator

        pose_net = load_pose_estimator(device=dev)
    if cfg.warp_p > 0 and not 0 < cfg.warp_yaw <= MAX_YAW:
        raise ValueError(f"warp_yaw must be in (0, {MAX_YAW:g}] degrees (the depth map folds beyond), "
                         f"got {cfg.warp_yaw:g}")
    balance = None
    if cfg.pose_balance > 0:
        if data.attrs is None:
            raise ValueError("pose_balance needs attributes (model.attr_dim > 0)")
        balance = torch.from_numpy(balance_weights(data.attrs[torch.from_numpy(data.train_idx), 0].numpy(),
                                                   cfg.pose_balance))
    last: dict[str, float] = {}
    try:
        while True:
            if cfg.max_steps is not None and step >= cfg.max_steps:
                break
            if cfg.time_budget is not None and time.time() - t_start >= cfg.time_budget:
                break
            if stop.flag:
                break
            G.train(), D.train()
            g = torch.Generator().manual_seed(derive_seed(cfg.seed, "step", step))
            bs = cfg.batch_size
            if cfg.pose_balance > 0:
                pick = torch.multinomial(balance, bs, replacement=True, generator=g)
                idx = torch.from_numpy(data.train_idx)[pick]
            else:
                idx = torch.from_numpy(batch_indices(data.train_idx, step, bs, cfg.seed))
            flip = torch.rand(bs, generator=g) < 0.5
            x = to_float(data.images[idx], dev)
            x = torch.where(flip.to(dev)[:, None, None, None], x.flip(-1), x)
            cond = data.emb[idx, flip.long()]
            x_real, valid = x, None
            if cfg.warp_p > 0:  # turn some heads in 3-D: poses the photos lack, same identity condition
                turned = torch.rand(bs, generator=g) < cfg.warp_p
                deg = torch.where(turned, (torch.rand(bs, generator=g) * 2 - 1) * cfg.warp_yaw, torch.zeros(bs))
                x, valid = yaw_warp(x, deg, return_valid=True)  # unturned photos stay untouched
            if data.cond_id is not None:
                own = torch.rand(bs, generator=g) < cfg.own_cond_p
                cond = torch.where(own[:, None], cond, data.cond_id[idx])
            cond = cond.to(dev)
            attrs = batch_attributes(data, idx, flip, cfg, g)
            if cfg.warp_p > 0 and attrs is not None:
                attrs[:, 0] = attrs[:, 0] + YAW_GAIN * deg  # NaN (unknown or hidden) stays NaN
            full = torch.rand(bs, generator=g) < cfg.p_full_mask
            ratio = torch.where(full, torch.ones(bs), cfg.min_mask + (1 - cfg.min_mask) * torch.rand(bs, generator=g))
            noise = torch.randn(bs, cfg.model.z_dim, generator=g)
            mask_noise = torch.rand(bs, t_count, generator=g)
            n_syn = int(round(bs * cfg.synth_frac)) if step >= cfg.synth_start else 0
            syn_cond = synthetic_conditions(data, n_syn, cfg, g).to(dev)
            syn_noise = torch.randn(n_syn, cfg.model.z_dim, generator=g)
            syn_attrs = None
            if data.attrs is not None and n_syn:
                sidx = torch.from_numpy(data.train_idx)[torch.randint(len(data.train_idx), (n_syn,), generator=g)]
                syn_attrs = batch_attributes(data, sidx, torch.rand(n_syn, generator=g) < 0.5, cfg, g)
                if cfg.w_attr > 0:  # ask for poses the photos rarely show; the attribute loss checks them
                    wide = torch.rand(n_syn, generator=g) < 0.5
                    yaw = (torch.rand(n_syn, generator=g) * 2 - 1) * cfg.attr_yaw_range
                    syn_attrs[:, 0] = torch.where(wide, yaw, syn_attrs[:, 0])
            use_id = step >= cfg.id_start
            use_gan = step >= cfg.gan_start
            lrf = lr_factor(step, cfg.warmup_steps)
            for grp in optG.param_groups:
                grp["lr"] = cfg.lr * lrf
            for grp in optD.param_groups:
                grp["lr"] = cfg.lr_d * lrf

            y, aux = G.forward_train(cond, x, ratio.to(dev), noise.to(dev), mask_noise.to(dev),
                                     None if attrs is None else attrs.to(dev))
            if valid is None:
                pix = (y - x).abs().mean()
            else:  # border pixels a warp filled from outside the image are not evidence of anything
                pix = ((y - x).abs() * valid).sum() / (valid.sum() * x.shape[1]).clamp_min(1)
            kl = aux["kl"].mean()
            loss = cfg.w_pix * pix + cfg.w_kl * kl
            logs = {"pix": float(pix.detach()), "kl": float(kl.detach())}
            ys = None
            if n_syn:
                ys, _ = G.forward_train(syn_cond, None, torch.ones(n_syn, device=dev), syn_noise.to(dev), None,
                                        None if syn_attrs is None else syn_attrs.to(dev))
            grid = jitter_grid(bs + n_syn, g, cfg.id_jitter, x.shape[-1], dev) if cfg.id_jitter > 0 else None
            if use_id:
                ramp = min(1.0, (step - cfg.id_start + 1) / cfg.id_ramp) if cfg.id_ramp > 0 else 1.0
                both = y if ys is None else torch.cat([y, ys])
                xt = x
                if grid is not None:
                    both = F.grid_sample(both, grid, padding_mode="border", align_corners=False)
                    xt = F.grid_sample(x, grid[:bs], padding_mode="border", align_corners=False)
                eo, fo = embed_with_features(embedder, both)
                with torch.no_grad():
                    et, ft = embed_with_features(embedder, xt)
                if cfg.id_space == "centred":
                    mu = data.mean.to(dev)
                    eo = F.normalize(eo - mu, dim=1)
                    cond_id = F.normalize(cond - mu, dim=1)
                    syn_id = F.normalize(syn_cond - mu, dim=1)
                elif cfg.id_space == "raw":
                    cond_id, syn_id = cond, syn_cond
                else:
                    raise ValueError(f"id_space must be 'raw' or 'centred', not {cfg.id_space!r}")
                cos = (eo[:bs] * cond_id).sum(1)
                if cfg.id_target == "real":
                    # as recognisable as the real photo is (in the same space), but no more: pushing past it
                    # pulls every image of an identity towards its frontal, neutral average
                    et_s = F.normalize(et - data.mean.to(dev), dim=1) if cfg.id_space == "centred" else et
                    real_bar = ((et_s * cond_id).sum(1) + cfg.id_margin).clamp(max=1.0)
                    idl = F.relu(real_bar - cos).mean()
                    syn_bar = real_bar.mean()
                elif cfg.id_target == "one":
                    idl = (1 - cos).mean()
                    syn_bar = None
                else:
                    raise ValueError(f"id_target must be 'one' or 'real', not {cfg.id_target!r}")
                perc = perceptual([f[:bs] for f in fo], ft)
                loss = loss + ramp * (cfg.w_id * idl + cfg.w_perc * perc)
                logs.update(id=float(idl.detach()), perc=float(perc.detach()))
                if ys is not None:
                    scos = (eo[bs:] * syn_id).sum(1)
                    sid = (1 - scos).mean() if syn_bar is None else F.relu(syn_bar - scos).mean()
                    loss = loss + ramp * cfg.w_syn * sid
                    logs["syn_id"] = float(sid.detach())
            if cfg.w_attr > 0 and attrs is not None:
                want = attrs if syn_attrs is None else torch.cat([attrs, syn_attrs])
                got = measured_attributes(y if ys is None else torch.cat([y, ys]), pose_net)
                checked = torch.tensor([n in cfg.attr_loss for n in ATTR_INPUTS], device=dev)
                known = torch.isfinite(want.to(dev)) & torch.isfinite(got) & checked[None]
                err = ((got - torch.nan_to_num(want.to(dev))) / E.attr_std).abs()
                al = torch.where(known, err, torch.zeros_like(err)).sum() / known.sum().clamp_min(1)
                loss = loss + cfg.w_attr * al
                logs["attr"] = float(al.detach())
            if use_gan:
                dg = -D(y).mean()
                if ys is not None:
                    dg = dg + cfg.w_syn * (-D(ys).mean())
                loss = loss + cfg.w_gan * dg
                logs["gan_g"] = float(dg.detach())
            optG.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip:
                torch.nn.utils.clip_grad_norm_(G.parameters(), cfg.grad_clip)
            optG.step()
            if use_gan:
                fake = y.detach() if ys is None else torch.cat([y.detach(), ys.detach()])
                dl = F.relu(1 - D(x_real)).mean() + F.relu(1 + D(fake)).mean()
                optD.zero_grad(set_to_none=True)
                dl.backward()
                optD.step()
                logs["d"] = float(dl.detach())
            with torch.no_grad():
                decay = min(cfg.ema_decay, (1 + step) / (10 + step))
                for pe, pg in zip(E.parameters(), G.parameters()):
                    pe.mul_(decay).add_(pg.detach(), alpha=1 - decay)
                for be, bg in zip(E.buffers(), G.buffers()):
                    be.copy_(bg)
            logs["loss_g"] = float(loss.detach())
            logs["lr"] = cfg.lr * lrf
            step += 1
            last = logs
            if on_step is not None:
                on_step(step, logs)
            if bar is not None:
                bar.update(1)
                bar.set_postfix({k: f"{v:.3f}" for k, v in logs.items() if k in ("pix", "id", "perc", "d")})
            if step % cfg.log_every == 0:
                append_csv_row(log_path, fields, {"step": step, "elapsed_s": round(elapsed_total + time.time() - t_start, 1),
                                               **{k: round(v, 6) for k, v in logs.items()}})
            if cfg.sample_every and step % cfg.sample_every == 0:
                samples_and_val(E, embedder, data, cfg, out, step, dev)
            if time.time() - last_ckpt >= cfg.ckpt_minutes * 60:
                checkpoint()
                last_ckpt = time.time()
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        if bar is not None:
            bar.close()
    checkpoint()
    return {"step": step, "out": str(out), "last": last, "elapsed_s": elapsed_total + time.time() - t_start,
            "cpu_s": cpu_total + time.process_time() - c_start, "cpu_s_from_step": cpu_from,
            "stopped_by_signal": stop.flag}


def _in_main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()
