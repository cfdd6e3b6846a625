"""The ``test-tiny`` embedder's network (torch; imported only when one is created, so that registry discovery
of the test stand-ins stays free of torch)."""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from synthfr.face.embedders import Embedder

__all__ = ["TinyEmbedder"]


class TinyEmbedder(nn.Module, Embedder):
    """A frozen random conv net with the ``dlib-torch`` interface: ``forward`` (unit N×dim) and ``features``."""

    name = "test-tiny"
    differentiable = True

    def __init__(self, dim: int = 128, seed: int = 0, device: Any = "cpu"):
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
        self.to(device)

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        a = F.relu(self.c1(x * 2 - 1))
        b = F.relu(self.c2(a))
        return [a, b]

    def descriptors(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x)[-1].mean(dim=(2, 3)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.descriptors(x), dim=1)

    def embed(self, images: np.ndarray, batch_size: int = 64) -> np.ndarray:
        arr = self.check_images(images)
        dev = next(self.parameters()).device
        with torch.no_grad():
            x = torch.from_numpy(arr).to(dev).permute(0, 3, 1, 2).float() / 255.0
            return self.forward(x).cpu().numpy().astype(np.float32)
