"""Combined margins (insightface): target logit ``s·(cos(m1·θ + m2) − m3)``."""
from __future__ import annotations

import torch

from synthfr.models.heads import REGISTRY
from synthfr.models.heads._base import MarginHead, monotone_cos


@REGISTRY.register("combined")
class CombinedMargin(MarginHead):
    """Combined margins: target s·(cos(m1·θ + m2) − m3) (s=64, m1=1.0, m2=0.3, m3=0.2).

    Target ``s·(ψ(m1·θ + m2) − m3)`` (SphereFace m1, ArcFace m2, CosFace m3; defaults
    ``s=64, m1=1.0, m2=0.3, m3=0.2`` as insightface's combined recipe); ψ is ``cos`` continued monotonically
    beyond π."""

    def __init__(self, s: float = 64.0, m1: float = 1.0, m2: float = 0.3, m3: float = 0.2):
        super().__init__()
        self.s, self.m1, self.m2, self.m3 = float(s), float(m1), float(m2), float(m3)

    def target_logit(self, cos_t: torch.Tensor, norms=None) -> torch.Tensor:
        theta = torch.acos(cos_t.clamp(-1 + 1e-7, 1 - 1e-7))
        return monotone_cos(self.m1 * theta + self.m2) - self.m3
