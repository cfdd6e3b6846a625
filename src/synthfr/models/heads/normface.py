"""NormFace: scaled cosine softmax without a margin (a baseline head)."""
from __future__ import annotations

import torch

from synthfr.models.heads import REGISTRY
from synthfr.models.heads._base import MarginHead


@REGISTRY.register("normface", aliases=["softmax"])
class NormFace(MarginHead):
    """NormFace: scaled cosine softmax without margin, logits s·cos θ (s=64)."""

    def __init__(self, s: float = 64.0):
        super().__init__()
        self.s = float(s)

    def target_logit(self, cos_t: torch.Tensor, norms=None) -> torch.Tensor:
        return cos_t
