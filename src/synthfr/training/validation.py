"""Validation during training: the in-memory backbone as an embedder, scored on verification benchmarks."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

__all__ = ["BackboneEmbedder", "validate"]


class BackboneEmbedder:
    """Wrap an in-memory backbone as an embedder (``embed(uint8 N×112×112×3) -> unit N×D``)."""

    name = "backbone"

    def __init__(self, backbone: torch.nn.Module, device: torch.device, input_size: int = 112):
        self.backbone, self.device, self.input_size = backbone, device, input_size
        self.dim = int(getattr(backbone, "embedding_size", 0))

    @torch.no_grad()
    def embed(self, images: np.ndarray, batch_size: int = 64) -> np.ndarray:
        import torch.nn.functional as F

        out = []
        for s in range(0, len(images), batch_size):
            x = torch.from_numpy(np.ascontiguousarray(images[s:s + batch_size])).to(self.device)
            x = x.permute(0, 3, 1, 2).float().div_(255.0).sub_(0.5).div_(0.5)
            if x.shape[-1] != self.input_size:
                x = F.interpolate(x, size=(self.input_size, self.input_size), mode="bilinear", align_corners=False,
                              antialias=True)
            out.append(F.normalize(self.backbone(x).float(), dim=1).cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, self.dim), np.float32)


def validate(backbone: torch.nn.Module, benchmarks: list[str], device: torch.device, input_size: int
             ) -> dict[str, float]:
    """Accuracy on each verification benchmark (helper evaluator imported lazily)."""
    if not benchmarks:
        return {}
    try:
        from synthfr.evaluation.evaluate import evaluate_embedder
    except ImportError as e:  # pragma: no cover - evaluation stage missing
        print(f"validation skipped: synthfr.evaluation is not available ({e})")
        return {}
    was = backbone.training
    backbone.eval()
    res = {}
    try:
        emb = BackboneEmbedder(backbone, device, input_size)
        for b in benchmarks:
            r = evaluate_embedder(emb, b, progress=False)
            res[Path(b).stem] = float(r["accuracy"])
    finally:
        backbone.train(was)
    return res
