"""HyperFace's intra-class variation: ``normalize(x + β·v)`` with Gaussian ``v``."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from synthfr.variations import REGISTRY
from synthfr.variations._base import Variation


@dataclass
class NoiseConfig:
    beta: float = 0.01
    """Noise weight β: condition = normalize(x + β·v), v ~ N(0, I_D) (HyperFace)."""


@REGISTRY.register("hyperface-noise")
class HyperFaceNoise(Variation):
    """HyperFace: normalize(x + β v), v ~ N(0, I) per image (β default 0.01)."""

    Config = NoiseConfig

    def _image(self, x: np.ndarray, i: int, k: int, rng: np.random.Generator):
        v = rng.standard_normal(x.shape[1]).astype(np.float32)
        y = x[i] + self.config.beta * v
        y = y / np.linalg.norm(y)
        return y, {"beta": float(self.config.beta), "cos": float(y @ x[i])}, None
