"""SphereFace-style multiplicative angular margin on normalised features: target ``s·ψ(m·θ)``."""
from __future__ import annotations

import torch

from synthfr.models.heads import REGISTRY
from synthfr.models.heads._base import MarginHead, monotone_cos


@REGISTRY.register("sphereface")
class SphereFace(MarginHead):
    """SphereFace-style multiplicative angular margin: target s·cos(m·θ) (s=64, m=1.35).

    Target ``s·ψ(m·θ)`` with ``ψ(φ) = (−1)^k cos φ − 2k``, ``k = ⌊φ/π⌋`` (monotone
    continuation of ``cos``); normalised weights and features as in insightface's ``m1`` (``s=64, m=1.35``)."""

    def __init__(self, s: float = 64.0, m: float = 1.35):
        super().__init__()
        self.s, self.m = float(s), float(m)

    def target_logit(self, cos_t: torch.Tensor, norms=None) -> torch.Tensor:
        theta = torch.acos(cos_t.clamp(-1 + 1e-7, 1 - 1e-7))
        return monotone_cos(self.m * theta)
