"""AdaFace (Kim et al. 2022): margin adapted to image quality through the embedding norm."""
from __future__ import annotations

import math

import torch

from synthfr.models.heads import REGISTRY
from synthfr.models.heads._base import MarginHead


@REGISTRY.register("adaface")
class AdaFace(MarginHead):
    """AdaFace: margin adapted to the embedding norm (image quality); s=64, m=0.4, h=0.333.

    With ``ẑ = clip(h·(‖f‖ − μ)/(σ + ε), −1, 1)`` (μ, σ running batch statistics of the norms,
    momentum ``t_alpha``), target ``s·(cos(clip(θ − m·ẑ, ε, π − ε)) − (m + m·ẑ))`` (``s=64, m=0.4, h=0.333``).

    Needs the embedding norms (``norms``); without them ẑ = 0 (plain CosFace + ArcFace mix with margin m)."""

    def __init__(self, s: float = 64.0, m: float = 0.4, h: float = 0.333, t_alpha: float = 0.01,
                 eps: float = 1e-3):
        super().__init__()
        self.s, self.m, self.h, self.t_alpha, self.eps = float(s), float(m), float(h), float(t_alpha), float(eps)
        self.register_buffer("batch_mean", torch.ones(1) * 20.0)
        self.register_buffer("batch_std", torch.ones(1) * 100.0)

    def margin_scaler(self, norms: torch.Tensor | None, n: int, like: torch.Tensor, update: bool = True
                      ) -> torch.Tensor:
        if norms is None:
            return torch.zeros(n, dtype=like.dtype, device=like.device)
        safe = norms.detach().reshape(-1).float().clamp(0.001, 100.0)
        if self.training and update and safe.numel() > 1:
            with torch.no_grad():
                self.batch_mean.mul_(1 - self.t_alpha).add_(self.t_alpha * safe.mean())
                self.batch_std.mul_(1 - self.t_alpha).add_(self.t_alpha * safe.std())
        z = (safe - self.batch_mean) / (self.batch_std + self.eps) * self.h
        return z.clamp(-1.0, 1.0).to(like.dtype)

    def forward(self, cos: torch.Tensor, labels: torch.Tensor, norms: torch.Tensor | None = None,
                update: bool = True) -> torch.Tensor:
        # the running statistics use every row's norm (as the reference implementation), the margin the targets
        cos = cos.clamp(-1.0 + self.eps, 1.0 - self.eps)
        z_all = self.margin_scaler(norms, cos.shape[0], cos, update)
        labels = labels.reshape(-1).long()
        rows = torch.nonzero(labels != -1, as_tuple=False).reshape(-1)
        out = cos.clone()
        if rows.numel():
            cols = labels[rows]
            z = z_all[rows]
            theta = torch.acos(cos[rows, cols])
            theta_m = (theta - self.m * z).clamp(self.eps, math.pi - self.eps)
            out[rows, cols] = torch.cos(theta_m) - (self.m + self.m * z)
        return out * self.s
