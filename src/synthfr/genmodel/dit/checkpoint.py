"""Checkpoints (safetensors + JSON, never pickles) and the exported weights folder of the VIGFace DiT.

A training checkpoint is ``RUN/ckpt/step-N.safetensors`` (``model.*``, ``ema.*``, ``opt.<param>.<state>``) beside
``RUN/ckpt/step-N.json`` (step, config, optimiser hyper-parameters and scalar state, figures); ``RUN/latest.json``
names the newest and is replaced atomically after both files are written, so a kill never leaves a half
checkpoint behind. An exported weights folder (what the ``vigface-dit`` generator loads) holds
``model.safetensors`` (EMA weights), ``config.json`` (architecture, schedule, sampling defaults, embedder) and
``space.space.json/.npz`` (the condition standardisation).
"""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import torch

from synthfr.utils.io import atomic_write_text, read_json, write_json

__all__ = ["save_checkpoint", "load_checkpoint", "latest_checkpoint", "export_dit", "FORMAT"]

FORMAT = "synthfr.vigface-dit/1"


def _opt_flat(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    sd = opt.state_dict()
    tensors, scalars = {}, {}
    for pid, st in sd["state"].items():
        for k, v in st.items():
            if torch.is_tensor(v):
                tensors[f"opt.{pid}.{k}"] = v.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(pid), {})[k] = v
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def _opt_load(opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: dict[str, Any], device) -> None:
    state: dict[int, dict[str, Any]] = {}
    for key, v in tensors.items():
        if key.startswith("opt."):
            _, pid, k = key.split(".", 2)
            state.setdefault(int(pid), {})[k] = v if k == "step" else v.to(device)
    for pid, d in meta.get("scalars", {}).items():
        state.setdefault(int(pid), {}).update(d)
    opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


def save_checkpoint(run: str | Path, step: int, model: torch.nn.Module, ema: torch.nn.Module,
                    opt: torch.optim.Optimizer, info: dict[str, Any], keep: int = 2) -> Path:
    """Write ``step-N.safetensors`` + ``step-N.json``, then point ``latest.json`` at them; keep the newest ``keep``."""
    from safetensors.torch import save_file

    run = Path(run)
    ck = run / "ckpt"
    ck.mkdir(parents=True, exist_ok=True)
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    tensors.update({f"ema.{k}": v.detach().cpu().contiguous() for k, v in ema.state_dict().items()})
    ot, ometa = _opt_flat(opt)
    tensors.update(ot)
    base = ck / f"step-{step}"
    tmp = base.with_suffix(".safetensors.tmp")
    save_file(tensors, str(tmp))
    tmp.replace(base.with_suffix(".safetensors"))
    write_json(base.with_suffix(".json"), {"format": FORMAT, "step": int(step), "optimizer": ometa, **info})
    atomic_write_text(run / "latest.json", f'{{"step": {int(step)}, "name": "step-{int(step)}"}}\n')
    olds = sorted((int(p.stem.split("-")[1]) for p in ck.glob("step-*.json")), reverse=True)[keep:]
    for s in olds:
        for suf in (".safetensors", ".json"):
            (ck / f"step-{s}{suf}").unlink(missing_ok=True)
    return base


def latest_checkpoint(run: str | Path) -> Path | None:
    """Base path (no suffix) of the run's newest checkpoint, or None."""
    p = Path(run) / "latest.json"
    if not p.is_file():
        return None
    return Path(run) / "ckpt" / read_json(p)["name"]


def load_checkpoint(base: str | Path, model: torch.nn.Module | None = None, ema: torch.nn.Module | None = None,
                    opt: torch.optim.Optimizer | None = None, device: Any = "cpu") -> dict[str, Any]:
    """Load what is asked for from a checkpoint; returns its JSON."""
    from safetensors.torch import load_file

    base = Path(base)
    meta = read_json(base.with_suffix(".json"))
    t = load_file(str(base.with_suffix(".safetensors")))
    for prefix, mod in (("model.", model), ("ema.", ema)):
        if mod is not None:
            mod.load_state_dict({k[len(prefix):]: v for k, v in t.items() if k.startswith(prefix)})
    if opt is not None:
        _opt_load(opt, t, meta["optimizer"], device)
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
