"""Generator checkpoints, safetensors + JSON (never pickles), in the layout every run keeps resuming from:
``ckpt/step-N.safetensors`` (models ``G.*``/``D.*``/``E.*``, optimisers ``opt_g.*``/``opt_d.*``) +
``ckpt/step-N.json`` (config, step, optimiser hyper-parameters, figures), named by ``latest.json``; the two
newest are kept."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from synthfr.genmodel.model import FaceGenerator, GenModelConfig
from synthfr.utils.run_dir import load_latest_step, load_module, save_step

__all__ = ["save_checkpoint", "load_latest", "load_checkpoint_model", "init_from"]


def save_checkpoint(out: Path, step: int, tensors: dict[str, torch.Tensor], state: dict[str, Any],
                    keep: int = 2) -> Path:
    """``ckpt/step-N.safetensors`` + ``.json`` and ``latest.json`` (:func:`synthfr.utils.run_dir.save_step`)."""
    return save_step(out, step, tensors, state, keep=keep)


def load_latest(out: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]] | None:
    """(tensors, state) of the checkpoint ``latest.json`` names; None without one."""
    return load_latest_step(out)


def load_checkpoint_model(run: str | Path, ema: bool = True) -> FaceGenerator:
    """The generator (EMA weights by default, without the encoder) of a run's latest checkpoint."""
    run = Path(run)
    got = load_latest(run)
    if got is None:
        raise FileNotFoundError(f"{run} has no checkpoint (latest.json); train first with synthfr train-generator")
    tensors, state = got
    cfg = GenModelConfig.from_json(state["config"]["model"])
    g = FaceGenerator(cfg, with_encoder=True)
    load_module(g, "E" if ema and any(k.startswith("E.") for k in tensors) else "G", tensors)
    g.encoder = None
    return g.eval()


def init_from(src: str, G: FaceGenerator, D: nn.Module, E: FaceGenerator) -> None:
    """Start from another run's latest checkpoint, or from an exported weights folder (generator only).

    Layers the source lacks (a synthfr-small folder has no attribute inputs, and no encoder or discriminator)
    keep their fresh initialisation; attribute layers start at zero, so the start renders as the source does.
    """
    path = Path(src).expanduser()
    init = load_latest(path) if (path / "latest.json").is_file() else None
    if init is not None:
        for m, prefix in ((G, "G"), (D, "D"), (E, "E")):
            sd = {k[len(prefix) + 1:]: v for k, v in init[0].items() if k.startswith(prefix + ".")}
            missing, unexpected = m.load_state_dict(sd, strict=False)
            bad = unexpected + [k for k in missing if "attr" not in k]
            if bad:
                raise ValueError(f"init_from {src}: checkpoint does not fit this model ({bad[:4]})")
        print(f"train-generator: initialised from {src} step {init[1]['step']}")
        return
    if (path / "model.safetensors").is_file():
        from safetensors.torch import load_file

        sd = {k: v.float() for k, v in load_file(str(path / "model.safetensors")).items()}
        for m in (G, E):
            missing, unexpected = m.load_state_dict(sd, strict=False)
            bad = unexpected + [k for k in missing if "attr" not in k and not k.startswith("encoder.")]
            if bad:
                raise ValueError(f"init_from {src}: weights do not fit this model ({bad[:4]})")
        print(f"train-generator: initialised the generator from weights folder {src} (encoder, discriminator fresh)")
        return
    raise FileNotFoundError(f"init_from {src} is neither a run (latest.json) nor a weights folder (model.safetensors)")
