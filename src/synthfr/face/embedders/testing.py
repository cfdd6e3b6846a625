"""Test stand-ins of the embedder kind, registered like any embedder (``synthfr list embedders``).

``test-pattern`` reads back the coloured-cell images of the ``test_*`` generators (no face model needed);
``test-tiny`` is a frozen random conv net with the ``dlib-torch`` interface (``forward`` and ``features``) for
tests of the generator trainer and AttrOP. Neither is ever a default.
"""
from __future__ import annotations

from typing import Any

import numpy as np

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
def test_tiny(dim: int = 128, seed: int = 0, device: Any = "cpu") -> Any:
    """Test embedder: a frozen random conv net with the ``dlib-torch`` interface (``forward``, ``features``)."""
    from synthfr.face.embedders._tiny import TinyEmbedder

    return TinyEmbedder(dim=dim, seed=seed, device=device)


def __getattr__(name: str) -> Any:  # ``TinyEmbedder`` without importing torch for the pattern tools
    if name == "TinyEmbedder":
        from synthfr.face.embedders._tiny import TinyEmbedder

        return TinyEmbedder
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
