"""Tiny stand-ins used by tests: a differentiable toy embedder with ``features`` (no weights to load)."""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["TinyEmbedder"]


class TinyEmbedder(nn.Module):
    """A frozen random conv net with the ``dlib-torch`` interface: ``forward`` (unit N×dim) and ``features``."""

    name = "tiny-test"
    differentiable = True

    def __init__(self, dim: int = 128, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.dim = dim
        self.c1 = nn.Conv2d(3, 8, 5, 4, 2)
        self.c2 = nn.Conv2d(8, 16, 3, 2, 1)
        self.fc = nn.Linear(16, dim)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * 0.3)
        for p in self.parameters():
            p.requires_grad_(False)
        self.eval()

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        a = F.relu(self.c1(x * 2 - 1))
        b = F.relu(self.c2(a))
        return [a, b]

    def descriptors(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x)[-1].mean(dim=(2, 3)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.descriptors(x), dim=1)
