"""Checkpoints (safetensors + JSON, never pickles) and the exported weights folder of the VIGFace DiT.

Training checkpoints use the generator trainers' one layout (:func:`synthfr.utils.run_dir.save_step`):
``RUN/ckpt/step-N.safetensors`` (``model.*``, ``ema.*``, ``opt.<param>.<state>``) beside ``RUN/ckpt/step-N.json``
(format, step, config, optimiser hyper-parameters and scalar state, figures); ``RUN/latest.json`` names the
newest and is replaced atomically after both files are written, so a kill never leaves a half checkpoint behind.
An exported weights folder (what the ``vigface-dit`` generator loads) holds ``model.safetensors`` (EMA weights),
``config.json`` (architecture, schedule, sampling defaults, embedder) and ``space.space.json/.npz`` (the
condition standardisation).
"""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import torch

from synthfr.utils.io import read_json, write_json
from synthfr.utils.run_dir import latest_step_paths, load_module, load_optimizer, module_tensors, optimizer_tensors, \
    save_step

__all__ = ["save_checkpoint", "load_checkpoint", "latest_checkpoint", "export_dit", "FORMAT"]

FORMAT = "synthfr.vigface-dit/1"


def save_checkpoint(run: str | Path, step: int, model: torch.nn.Module, ema: torch.nn.Module,
                    opt: torch.optim.Optimizer, info: dict[str, Any], keep: int = 2) -> Path:
    """Write the step's checkpoint and point ``latest.json`` at it; keep the newest ``keep``. Returns its base
    path (no suffix)."""
    tensors = {**module_tensors(model, "model"), **module_tensors(ema, "ema")}
    ot, ometa = optimizer_tensors(opt, "opt")
    tensors.update(ot)
    path = save_step(run, int(step), tensors, {"format": FORMAT, "step": int(step), "optimizer": ometa, **info},
                     keep=keep)
    return path.with_suffix("")


def latest_checkpoint(run: str | Path) -> Path | None:
    """Base path (no suffix) of the run's newest checkpoint, or None."""
    paths = latest_step_paths(run)
    return None if paths is None else paths[0].with_suffix("")


def load_checkpoint(base: str | Path, model: torch.nn.Module | None = None, ema: torch.nn.Module | None = None,
                    opt: torch.optim.Optimizer | None = None, device: Any = "cpu") -> dict[str, Any]:
    """Load what is asked for from a checkpoint; returns its JSON."""
    from safetensors.torch import load_file

    base = Path(base)
    meta = read_json(base.with_suffix(".json"))
    t = load_file(str(base.with_suffix(".safetensors")))
    for prefix, mod in (("model", model), ("ema", ema)):
        if mod is not None:
            load_module(mod, prefix, t)
    if opt is not None:
        load_optimizer(opt, "opt", t, meta["optimizer"], device)
    return meta


def export_dit(run: str | Path, dest: str | Path, half: bool = False, defaults: dict[str, Any] | None = None) -> Path:
    """Copy the run's newest EMA weights, config and condition space into the weights folder ``dest``."""
    from safetensors.torch import load_file, save_file

    run, dest = Path(run), Path(dest)
    base = latest_checkpoint(run)
    if base is None:
        raise FileNotFoundError(f"{run} has no checkpoint (latest.json); train it first with synthfr train-dit")
    meta = read_json(base.with_suffix(".json"))
    t = load_file(str(base.with_suffix(".safetensors")))
    ema = {k[4:]: (v.half() if half and v.is_floating_point() else v).contiguous()
           for k, v in t.items() if k.startswith("ema.")}
    dest.mkdir(parents=True, exist_ok=True)
    save_file(ema, str(dest / "model.safetensors"))
    cfg = meta["config"]
    sampling = {"steps": 50, "guidance": 2.0, "guidance_rescale": 0.0, **(defaults or {})}
    write_json(dest / "config.json", {
        "format": FORMAT, "model": cfg["model"], "schedule": cfg["schedule"], "embedder": cfg["embedder"],
        "sampling": sampling, "step": meta["step"], "train_seconds": meta.get("train_seconds"),
        "images_seen": meta.get("images_seen"), "dtype": "float16" if half else "float32"})
    for suf in (".space.json", ".space.npz"):
        shutil.copyfile(run / "stage1" / f"space{suf}", dest / f"space{suf}")
    return dest
