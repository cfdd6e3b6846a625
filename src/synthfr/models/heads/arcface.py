"""ArcFace (Deng et al. 2019): additive angular margin, target logit ``s·cos(θ + m)``."""
from __future__ import annotations

import math

import torch

from synthfr.models.heads import REGISTRY
from synthfr.models.heads._base import MarginHead


@REGISTRY.register("arcface")
class ArcFace(MarginHead):
    """ArcFace: additive angular margin, target s·cos(θ + m) (s=64, m=0.5).

    Where ``θ + m > π`` it uses ``s·(cos θ − m·sin m)``
    as insightface does (``easy_margin=True``: no margin where ``cos θ < 0``)."""

    def __init__(self, s: float = 64.0, m: float = 0.5, easy_margin: bool = False):
        super().__init__()
        self.s, self.m, self.easy_margin = float(s), float(m), bool(easy_margin)
        self.cos_m, self.sin_m = math.cos(m), math.sin(m)
        self.th = math.cos(math.pi - m)
        self.mm = math.sin(math.pi - m) * m

    def target_logit(self, cos_t: torch.Tensor, norms=None) -> torch.Tensor:
        sin_t = torch.sqrt((1.0 - cos_t * cos_t).clamp_min(1e-12))
        phi = cos_t * self.cos_m - sin_t * self.sin_m
        if self.easy_margin:
            return torch.where(cos_t > 0, phi, cos_t)
        return torch.where(cos_t > self.th, phi, cos_t - self.mm)
