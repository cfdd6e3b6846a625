"""Test stand-ins of the embedder kind, registered like any embedder (``synthfr list embedders``).

``test-pattern`` reads back the coloured-cell images of the ``test_*`` generators (no face model needed);
``test-tiny`` is a frozen random conv net with the ``dlib-torch`` interface (``forward`` and ``features``) for
tests of the generator trainer and AttrOP. Neither is ever a default.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from synthfr.face.embedders import REGISTRY, Embedder

__all__ = ["PatternDecoder", "TinyEmbedder", "GRID", "CELL", "GAIN", "coord_index"]

# The pattern format of the test generators (synthfr.generators.testing draws it, PatternDecoder reads it):
# cell (r, c) of channel ch shows coordinate (ch·256 + r·16 + c) mod D, scaled by √D.
GRID = 16          # cells per side
CELL = 7           # pixels per cell (16 × 7 = 112)
GAIN = 0.12        # grey-level change per unit of sqrt(D)·coordinate


def coord_index(dim: int) -> np.ndarray:
    """The coordinate shown by each cell, channel-major (3·GRID·GRID entries)."""
    return np.arange(3 * GRID * GRID) % dim


@REGISTRY.register("test-pattern")
class PatternDecoder(Embedder):
    """Test embedder: reads the cell grid of ``test_*`` generator images back into a unit vector.

    Follows the embedder contract (``embed(uint8 N×112×112×3) -> float32 N×D`` unit rows, ``dim``, ``name``),
    so the pipeline's identity filter can be tested without a face model. Coordinates drawn several times
    are averaged; with D ≤ 768 every coordinate is visible and the decoded vector matches the condition
    vector to a cosine of about 0.99 (after JPEG).
    """

    name = "test-pattern"

    def __init__(self, dim: int = 128, **kwargs: Any):
        self.dim = int(dim)

    def embed(self, images: np.ndarray, batch_size: int = 0) -> np.ndarray:
        x = np.asarray(images, dtype=np.float32) / 255.0
        if x.ndim == 3:
            x = x[None]
        n = x.shape[0]
        # mean of the interior of each cell (skip a 1-pixel border against JPEG ringing)
        cells = x.reshape(n, GRID, CELL, GRID, CELL, 3)[:, :, 1:-1, :, 1:-1, :].mean(axis=(2, 4))  # n,16,16,3
        z = (cells.transpose(0, 3, 1, 2).reshape(n, -1) - 0.5) / GAIN  # channel-major like the encoder
        idx = coord_index(self.dim)
        out = np.zeros((n, self.dim), np.float32)
        counts = np.bincount(idx, minlength=self.dim).astype(np.float32)
        np.add.at(out.T, idx, z.T)
        out /= np.maximum(counts, 1)[None]
        out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out


@REGISTRY.register("test-tiny", aliases=("tiny-test",))
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
