"""Vec2Face's intra-class variation: a σ mixture of Gaussian perturbations of the raw feature, cosine floor.

The official sampling (``sample_nearby_vectors`` in Vec2Face's ``image_generation.py``): the identity feature
``f`` (un-normalised, norm ``|f|``) gets Gaussian noise of *standard deviation* σ in every coordinate and is
rescaled to its own norm, ``f' = (f + σ·ε) / |f + σ·ε| · |f|``, ``ε ~ N(0, I_D)``, with σ ∈ {0.3, 0.5, 0.7}
for 40/40/20 % of the images. synthfr's identity vectors are unit vectors ``x``, so ``f = feature_norm · x``
with ``feature_norm`` the norm of the generator's input (default √D, the norm the ``vec2face`` generator
rescales unit vectors to) and the condition is the unit direction of ``f'``:
``normalize(x + σ/feature_norm · ε)``. (The paper's text writes the noise as N(0, σ); ``sigma_is="variance"``
reads σ as a variance, i.e. a standard deviation √σ.)

Per identity the shares are exact, not random draws: of ``K`` images, ``round(w·K)`` (largest remainder) take
each σ — 20/20/10 at K = 50 — assigned to image indices by a per-identity seeded permutation
(``allocation="random"`` draws each image's σ independently instead).

Floor: the condition's cosine to the identity must be ≥ ``min_cos`` (0.5). A try below it is re-drawn (at
most ``max_tries``); if none reaches it, the last draw's noise is scaled down until the cosine equals the
floor and ``params["scaled"]`` records the factor (< 1) — never a failing vector kept silently.
``floor_fallback="error"`` raises instead.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from synthfr.utils.seeds import derive_seed
from synthfr.variations import REGISTRY
from synthfr.variations._base import Variation, VariationResult


@dataclass
class SigmaConfig:
    sigmas: list[float] = field(default_factory=lambda: [0.3, 0.5, 0.7])
    """Noise levels σ of the mixture (Vec2Face: 0.3, 0.5, 0.7)."""
    weights: list[float] = field(default_factory=lambda: [0.4, 0.4, 0.2])
    """Share of each σ among an identity's images (Vec2Face: 40/40/20 %)."""
    allocation: str = "per-identity"
    """'per-identity': exactly round(w·K) images of each identity per σ (largest remainder), on indices chosen
    by a per-identity seeded permutation; 'random': each image draws its σ with probabilities ``weights``."""
    sigma_is: str = "std"
    """'std': σ is the per-coordinate standard deviation of the noise on the raw feature (the official code,
    ``np.random.normal(0, σ)``); 'variance': σ is its variance (standard deviation √σ)."""
    feature_norm: float | None = None
    """Norm of the raw feature the noise is added to (None: √D, the norm the vec2face generator feeds its
    network; the official features are ArcFace features of about that norm)."""
    min_cos: float = 0.5
    """Floor: the condition's cosine to its identity vector is ≥ this."""
    max_tries: int = 100
    """Draws per image before the fallback (``floor_fallback``)."""
    floor_fallback: str = "scale"
    """When no draw reaches ``min_cos``: 'scale' (shrink the last draw's noise until the cosine equals the floor,
    recorded as ``params["scaled"]``) or 'error' (raise)."""
    scale: str | None = None
    """Deprecated alias: 'unit' = feature_norm √D (the default), 'raw' = feature_norm 1 (N(0, σ²I) on the unit
    vector)."""


def shares(weights: Sequence[float], k: int) -> list[int]:
    """Image counts per component for ``k`` images: ``floor(w·k)`` plus one for the largest remainders (ties to
    the earlier component), so they sum to ``k`` and are exact whenever ``w·k`` are integers."""
    w = np.asarray(weights, dtype=np.float64)
    w = w / w.sum()
    raw = w * k
    base = np.floor(raw + 1e-9).astype(int)
    rest = k - int(base.sum())
    order = sorted(range(len(w)), key=lambda j: (-(raw[j] - base[j]), j))
    for j in order[:rest]:
        base[j] += 1
    return base.tolist()


@REGISTRY.register("vec2face-sigma")
class Vec2FaceSigma(Variation):
    """Vec2Face: σ ∈ {0.3, 0.5, 0.7}, exactly 40/40/20 % per identity, noise std σ on the raw feature, cos ≥ 0.5"""

    Config = SigmaConfig

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        c = self.config
        if len(c.sigmas) != len(c.weights) or not c.sigmas:
            raise ValueError("vec2face-sigma: sigmas and weights must have the same non-zero length")
        w = np.asarray(c.weights, dtype=np.float64)
        if (w < 0).any() or w.sum() <= 0:
            raise ValueError("vec2face-sigma: weights must be non-negative with a positive sum")
        for key, val, ok in (("allocation", c.allocation, ("per-identity", "random")),
                             ("sigma_is", c.sigma_is, ("std", "variance")),
                             ("floor_fallback", c.floor_fallback, ("scale", "error")),
                             ("scale", c.scale, (None, "unit", "raw"))):
            if val not in ok:
                raise ValueError(f"vec2face-sigma: {key} must be one of {', '.join(map(str, ok))}; got {val!r}")
        if not -1.0 <= c.min_cos < 1.0:
            raise ValueError(f"vec2face-sigma: min_cos must lie in [-1, 1), got {c.min_cos}")
        self._p = w / w.sum()
        self._k = 0
        self._seed = 0

    def apply_to(self, identity_vectors: np.ndarray, identity_indices: Sequence[int], images_per_id: int,
                 seed: int = 0) -> VariationResult:
        self._k, self._seed = int(images_per_id), int(seed)  # the per-identity allocation needs K and the seed
        return super().apply_to(identity_vectors, identity_indices, images_per_id, seed)

    def component(self, i: int, k: int, rng: np.random.Generator) -> int:
        """Index of the σ of image ``k`` of identity ``i``."""
        if self.config.allocation == "random":
            return int(rng.choice(len(self._p), p=self._p))
        key = (self._seed, self._k, i)
        if getattr(self, "_alloc_key", None) != key:  # images of one identity come in a row: one permutation each
            counts = shares(self._p, self._k)
            slots = np.repeat(np.arange(len(counts)), counts)
            rng_i = np.random.default_rng(derive_seed(self._seed, self.registry_name, "allocation", i))
            perm = rng_i.permutation(self._k)
            self._alloc_key, self._alloc = key, slots[perm]
        return int(self._alloc[k])

    def _image(self, x: np.ndarray, i: int, k: int, rng: np.random.Generator):
        c = self.config
        j = self.component(i, k, rng)
        sigma = float(c.sigmas[j])
        std = math.sqrt(sigma) if c.sigma_is == "variance" else sigma
        d = x.shape[1]
        fn = c.feature_norm if c.feature_norm is not None else (1.0 if c.scale == "raw" else math.sqrt(d))
        xi = x[i].astype(np.float64)
        y = cs = None
        noise = None
        tries = 0
        for tries in range(1, c.max_tries + 1):
            noise = (std / fn) * rng.standard_normal(d)
            y = xi + noise
            y /= np.linalg.norm(y)
            cs = float(y @ xi)
            if cs >= c.min_cos:
                return y.astype(np.float32), {"sigma": sigma, "cos": cs, "tries": tries}, None
        if c.floor_fallback == "error":
            raise ValueError(f"vec2face-sigma: no draw of σ={sigma} reached cosine ≥ {c.min_cos} to identity {i} in "
                             f"{c.max_tries} tries (best {cs:.3f}); lower sigma, raise feature_norm or min_cos, or "
                             "use floor_fallback=scale")
        t = _scale_to_floor(xi, noise, c.min_cos)
        y = xi + t * noise
        y /= np.linalg.norm(y)
        return y.astype(np.float32), {"sigma": sigma, "cos": float(y @ xi), "tries": tries, "scaled": t}, None


def _scale_to_floor(x: np.ndarray, n: np.ndarray, floor: float) -> float:
    """Largest t in [0, 1] with cos(x + t·n, x) ≥ floor (x unit; the cosine falls monotonically in t once the
    noise's component along x is removed, so bisection on t finds it)."""
    def cos(t: float) -> float:
        y = x + t * n
        return float(y @ x / np.linalg.norm(y))
    lo, hi = 0.0, 1.0
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if cos(mid) >= floor:
            lo = mid
        else:
            hi = mid
    return lo
