"""Vec2Face's intra-class variation: a σ mixture of Gaussian perturbations with a cosine floor."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from synthfr.variations import REGISTRY
from synthfr.variations._base import Variation


@dataclass
class SigmaConfig:
    sigmas: list[float] = field(default_factory=lambda: [0.3, 0.5, 0.7])
    """Noise levels σ of the mixture (Vec2Face: 0.3, 0.5, 0.7)."""
    weights: list[float] = field(default_factory=lambda: [0.4, 0.4, 0.2])
    """Probability of each σ (Vec2Face: 40/40/20 % of images)."""
    min_cos: float = 0.5
    """Re-sample the noise until the condition's cosine to the identity is ≥ this."""
    max_tries: int = 100
    """Bounded re-sampling; after it the best try is kept (recorded as ``tries`` = max_tries)."""
    scale: str = "unit"
    """Noise scale: 'unit' = v ~ N(0, I/D) (|v| ≈ 1, i.e. relative to the unit identity vector, as for a feature of
    norm √D with N(0, I) noise); 'raw' = v ~ N(0, I) on the unit vector."""


@REGISTRY.register("vec2face-sigma")
class Vec2FaceSigma(Variation):
    """Vec2Face: normalize(x + σ v) with σ from {0.3, 0.5, 0.7} (40/40/20 %), re-sampled until cos ≥ 0.5."""

    Config = SigmaConfig

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        c = self.config
        if len(c.sigmas) != len(c.weights) or not c.sigmas:
            raise ValueError("vec2face-sigma: sigmas and weights must have the same non-zero length")
        w = np.asarray(c.weights, dtype=np.float64)
        if (w < 0).any() or w.sum() <= 0:
            raise ValueError("vec2face-sigma: weights must be non-negative with a positive sum")
        self._p = w / w.sum()

    def _image(self, x: np.ndarray, i: int, k: int, rng: np.random.Generator):
        c = self.config
        j = int(rng.choice(len(c.sigmas), p=self._p))
        sigma = float(c.sigmas[j])
        d = x.shape[1]
        s = 1.0 / np.sqrt(d) if c.scale == "unit" else 1.0
        best, best_cos = None, -2.0
        tries = 0
        for tries in range(1, c.max_tries + 1):
            y = x[i] + sigma * s * rng.standard_normal(d).astype(np.float32)
            y = y / np.linalg.norm(y)
            cs = float(y @ x[i])
            if cs > best_cos:
                best, best_cos = y, cs
            if cs >= c.min_cos:
                break
        return best, {"sigma": sigma, "cos": best_cos, "tries": tries}, None
