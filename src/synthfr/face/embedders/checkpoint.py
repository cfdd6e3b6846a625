"""``checkpoint``: the backbone of a synthfr training run (``RUN/config.json`` + ``RUN/model.safetensors``).

Used by ``synthfr eval --checkpoint RUN``. Follows the embedder contract (uint8 ``N×112×112×3`` aligned RGB in,
L2-normalised float32 ``N×D`` out). As a differentiable embedder (``forward``), it takes a float tensor
``N×3×112×112`` in [0, 1] and maps it to the backbone's range ``(x - 0.5) / 0.5`` itself.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from synthfr.face.embedders import REGISTRY, Embedder

__all__ = ["CheckpointEmbedder", "find_run_files"]


def find_run_files(path: str | Path) -> tuple[Path, Path]:
    """``(config.json, model.safetensors)`` of a run dir, a ``checkpoints/step_*`` folder or a safetensors file."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"checkpoint {p} not found: pass a run directory written by `synthfr train`")
    weights = p if p.is_file() else p / "model.safetensors"
    if not weights.is_file():
        raise FileNotFoundError(f"{p} has no model.safetensors: is the run finished? (a resumable checkpoint "
                                f"is RUN/checkpoints/step_*/)")
    for d in [weights.parent, *weights.parents][:4]:
        if (d / "config.json").is_file():
            return d / "config.json", weights
    raise FileNotFoundError(f"no config.json found above {weights}: it records which backbone the weights are for")


@REGISTRY.register("checkpoint")
class CheckpointEmbedder(torch.nn.Module, Embedder):
    """A backbone trained by ``synthfr train`` (pass ``path=RUN_DIR``); differentiable."""

    differentiable = True

    def __init__(self, path: str | Path, device: str | None = "auto", flip: bool = False):
        super().__init__()
        from safetensors.torch import load_file

        from synthfr.models.backbones import create_backbone
        from synthfr.utils.device import resolve_device

        cfg_path, weights = find_run_files(path)
        meta: dict[str, Any] = json.loads(cfg_path.read_text())
        self.device = resolve_device(device)
        self.model = create_backbone(meta["backbone"], **meta.get("backbone_kwargs", {}))
        self.model.load_state_dict(load_file(str(weights)))
        self.model.eval().to(self.device)
        self.input_size = int(meta.get("input", {}).get("size", 112))
        self.dim = int(meta.get("embedding_size", getattr(self.model, "embedding_size", 512)))
        self.name = f"checkpoint:{Path(path).name}"
        self.flip = bool(flip)
        self.meta = meta
        for p in self.model.parameters():
            p.requires_grad_(False)

    def train(self, mode: bool = True):
        """The backbone always stays in eval mode (BatchNorm running statistics)."""
        super().train(mode)
        self.model.eval()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``N×3×112×112`` float in [0, 1] -> unit ``N×D`` (differentiable w.r.t. ``x``)."""
        x = (x - 0.5) / 0.5
        if x.shape[-1] != self.input_size:
            x = F.interpolate(x, size=(self.input_size, self.input_size), mode="bilinear", align_corners=False,
                              antialias=True)
        return F.normalize(self.model(x).float(), dim=1)

    def embed(self, images: np.ndarray, batch_size: int = 64) -> np.ndarray:
        arr = self.check_images(images)
        out = []
        with torch.no_grad():
            for s in range(0, len(arr), batch_size):
                x = torch.from_numpy(arr[s:s + batch_size]).to(self.device).permute(0, 3, 1, 2).float() / 255.0
                e = self.forward(x)
                if self.flip:
                    e = e + self.forward(x.flip(-1))
                out.append(F.normalize(e, dim=1).cpu().numpy().astype(np.float32))
        return np.concatenate(out) if out else np.zeros((0, self.dim), np.float32)
