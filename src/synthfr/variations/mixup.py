"""SynFace's identity mixup: mix each image's identity with a random other identity at ratio φ."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from synthfr.variations import REGISTRY
from synthfr.variations._base import Variation


@dataclass
class MixupConfig:
    phi_min: float = 0.0
    """Smallest mixing ratio φ (weight of the *other* identity)."""
    phi_max: float = 1.0
    """Largest mixing ratio φ."""
    phi_step: float = 0.05
    """φ is drawn uniformly from {phi_min, phi_min + step, …, phi_max} (SynFace: {0, 0.05, …, 1})."""


@REGISTRY.register("mixup")
class IdentityMixup(Variation):
    """SynFace identity mixup: normalize((1−φ) x_i + φ x_j), random j ≠ i, soft label (i, j, 1−φ)."""

    Config = MixupConfig

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        c = self.config
        if not (0.0 <= c.phi_min <= c.phi_max <= 1.0) or c.phi_step <= 0:
            raise ValueError("mixup: need 0 ≤ phi_min ≤ phi_max ≤ 1 and phi_step > 0")
        count = int(np.floor((c.phi_max - c.phi_min) / c.phi_step + 1e-9)) + 1
        self._phis = np.round(c.phi_min + c.phi_step * np.arange(count), 6)

    def _image(self, x: np.ndarray, i: int, k: int, rng: np.random.Generator):
        n = len(x)
        phi = float(rng.choice(self._phis))
        if n < 2 or phi == 0.0:
            return x[i], {"phi": 0.0, "other": None}, None
        j = int(rng.integers(n - 1))
        j = j + 1 if j >= i else j
        y = (1.0 - phi) * x[i] + phi * x[j]
        return y, {"phi": phi, "other": j}, (i, j, round(1.0 - phi, 6))
