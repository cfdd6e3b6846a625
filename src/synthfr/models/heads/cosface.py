"""CosFace / AM-Softmax (Wang et al. 2018): additive cosine margin, target logit ``s·(cos θ − m)``."""
from __future__ import annotations

import torch

from synthfr.models.heads import REGISTRY
from synthfr.models.heads._base import MarginHead


@REGISTRY.register("cosface", aliases=["am_softmax"])
class CosFace(MarginHead):
    """CosFace: additive cosine margin, target s·(cos θ − m) (s=64, m=0.4)."""

    def __init__(self, s: float = 64.0, m: float = 0.4):
        super().__init__()
        self.s, self.m = float(s), float(m)

    def target_logit(self, cos_t: torch.Tensor, norms=None) -> torch.Tensor:
        return cos_t - self.m
