"""Tiny deterministic generators for tests and pipeline benchmarks (no weights, any dimension).

``test_pattern`` draws the condition vector as a 16×16 grid of coloured 7×7-pixel cells: cell ``(r, c)`` of
channel ``ch`` shows coordinate ``(ch·256 + r·16 + c) mod D`` (scaled by √D, so unit vectors use the grey
range), plus faint seed-dependent noise at 4-pixel blocks. The vector is visible in the picture and can be
read back by the registered embedder ``test-pattern`` (:class:`synthfr.face.embedders.testing.PatternDecoder`),
which these generators declare as their own embedder, like any generator. It is differentiable
(:meth:`TestPattern.generate_tensor`), so AttrOP-style code can be tested without a real generator.

``test_flaky`` is ``test_pattern`` that, for a fixed fraction of seeds (decided by the seed alone), draws the
pattern of an unrelated vector instead: planted bad images for the identity filter.
"""
from __future__ import annotations

import hashlib
import math
from typing import Any

import numpy as np

# the cell layout is the pattern's format, shared with its reader (the ``test-pattern`` embedder)
from synthfr.face.embedders.testing import CELL, GAIN, GRID
from synthfr.face.embedders.testing import coord_index as _coord_index
from synthfr.generators import REGISTRY
from synthfr.generators.base import Generator, condition_batch

__all__ = ["TestPattern", "TestFlaky", "is_planted_bad"]

NOISE_BLOCK = 4    # noise resolution: 28 × 28 blocks of 4 × 4 pixels
NOISE_AMP = 0.04   # peak-to-peak noise amplitude (fraction of the range)


def _pattern_tensor(cond, noise):
    """cond: float tensor B×D; noise: B×3×28×28 uniform [0,1) -> images B×3×112×112 in [0, 1]."""
    import torch

    b, d = cond.shape
    idx = torch.as_tensor(_coord_index(d), device=cond.device)
    z = cond * math.sqrt(d)
    cells = 0.5 + GAIN * z[:, idx].reshape(b, 3, GRID, GRID)
    img = cells.repeat_interleave(CELL, dim=2).repeat_interleave(CELL, dim=3)
    n = (noise.to(cond.dtype) - 0.5) * NOISE_AMP
    n = n.repeat_interleave(NOISE_BLOCK, dim=2).repeat_interleave(NOISE_BLOCK, dim=3)
    return (img + n).clamp(0.0, 1.0)


@REGISTRY.register("test_pattern")
class TestPattern(Generator):
    """Test generator: draws the condition vector as a grid of coloured cells (+ faint seeded noise)."""

    __test__ = False  # not a pytest class
    embedder = "any"  # the vectors may come from any space (recorded in dataset configs)
    needs_weights = False
    differentiable = True
    batch_invariant = True
    weights_help = "test generators need no weights."
    #: what its images inherit (the dataset card shows it)
    sources = {
        "datasets": [],
        "trained_on": "nothing: a test generator that draws the condition vector as coloured patterns (not faces)",
        "licences": "none inherited",
        "commercial": True,
    }

    def __init__(self, dim: int | None = None, delay: float = 0.0, weights: Any = None, device: Any = "cpu",
                 **kwargs: Any):
        super().__init__(weights=None, device=device, **kwargs)
        self.dim = dim  # None: any dimension
        self.delay = float(delay)  # seconds of sleep per image (tests that need a slow run); no effect on pixels

    @classmethod
    def embedder_spec_for(cls, weights: Any = None) -> str:
        """Images of a test generator are read back by the ``test-pattern`` embedder (any dimension)."""
        return "test-pattern"

    @property
    def weights_sha256(self) -> str:
        """A hash of the drawing rule's constants (test generators have no weight files)."""
        spec = f"{type(self).__name__}:{GRID}:{CELL}:{NOISE_BLOCK}:{GAIN}:{NOISE_AMP}:{self.options()}"
        return hashlib.sha256(spec.encode()).hexdigest()

    bad_fraction: float = 0.0

    def generate_tensor(self, conditions: Any, seeds: Any):
        import torch

        conditions, s = condition_batch(conditions, seeds, self.dim)
        bad = [j for j, x in enumerate(s) if is_planted_bad(int(x), self.bad_fraction)]
        if bad:  # planted bad images: the pattern of an unrelated unit vector drawn from the seed
            d = conditions.shape[1]
            rows = []
            for j in range(conditions.shape[0]):
                if j in bad:
                    v = np.random.default_rng(int(s[j]) & 0xFFFFFFFF).standard_normal(d).astype(np.float32)
                    rows.append(torch.as_tensor(v / np.linalg.norm(v), device=conditions.device,
                                                dtype=conditions.dtype))
                else:
                    rows.append(conditions[j])
            conditions = torch.stack(rows)
        noise = torch.from_numpy(seeded_uniform(s, (3, 112 // NOISE_BLOCK, 112 // NOISE_BLOCK)))
        return _pattern_tensor(conditions, noise.to(conditions.device))

    def _generate(self, conditions: np.ndarray, seeds: np.ndarray) -> np.ndarray:
        """Fast NumPy path with the same float32 arithmetic as :meth:`generate_tensor` (same bytes)."""
        if self.delay > 0:
            import time

            time.sleep(self.delay * len(seeds))
        bad = [j for j, x in enumerate(seeds) if is_planted_bad(int(x), self.bad_fraction)]
        if bad:
            conditions = conditions.copy()
            for j in bad:
                v = np.random.default_rng(int(seeds[j]) & 0xFFFFFFFF).standard_normal(conditions.shape[1])
                v = v.astype(np.float32)
                conditions[j] = v / np.linalg.norm(v)
        b, d = conditions.shape
        z = conditions * np.float32(math.sqrt(d))
        cells = np.float32(0.5) + np.float32(GAIN) * z[:, _coord_index(d)].reshape(b, 3, GRID, GRID)
        cells = cells.transpose(0, 2, 3, 1)  # b, 16, 16, 3
        noise = seeded_uniform(seeds, (3, 112 // NOISE_BLOCK, 112 // NOISE_BLOCK))
        noise = ((noise - np.float32(0.5)) * np.float32(NOISE_AMP)).transpose(0, 2, 3, 1)
        # A pixel's value depends only on its (cell, noise block) pair; along each axis there are 40 such
        # segments, so compute 40×40 values per image and expand the uint8 result (same arithmetic per pixel).
        seg_cell, seg_noise, seg_of_px = _segments()
        img = cells[:, seg_cell][:, :, seg_cell]
        img += noise[:, seg_noise][:, :, seg_noise]
        np.clip(img, 0.0, 1.0, out=img)
        img *= np.float32(255.0)
        np.rint(img, out=img)
        small = img.astype(np.uint8)
        reps = np.bincount(seg_of_px)  # segment lengths (segments are runs of consecutive pixels)
        return np.repeat(np.repeat(small, reps, axis=1), reps, axis=2)


_SEGMENTS: tuple | None = None


def _segments() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(cell index per segment, noise block per segment, segment per pixel) along one image axis."""
    global _SEGMENTS
    if _SEGMENTS is None:
        px = np.arange(112)
        pairs = px // CELL * 1000 + px // NOISE_BLOCK
        uniq, seg_of_px = np.unique(pairs, return_inverse=True)
        _SEGMENTS = (uniq // 1000, uniq % 1000, seg_of_px.reshape(-1))
    return _SEGMENTS


def seeded_uniform(seeds, shape) -> np.ndarray:
    """Uniform [0, 1) float32 noise of shape ``(len(seeds), *shape)``; row ``j`` is a pure function of
    ``seeds[j]`` (SplitMix64 of the seed and the element index, 24-bit mantissa; vectorised, fast)."""
    s = np.asarray(seeds, dtype=np.int64).astype(np.uint64).reshape(-1, 1)
    n = int(np.prod(shape))
    i = np.arange(1, n + 1, dtype=np.uint64)[None, :]
    with np.errstate(over="ignore"):
        z = s * np.uint64(0x9E3779B97F4A7C15) + i * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z ^= z >> np.uint64(31)
    u = (z >> np.uint64(40)).astype(np.float32) * np.float32(1.0 / (1 << 24))
    return u.reshape((len(s), *shape))


def is_planted_bad(seed: int, fraction: float) -> bool:
    """Whether ``test_flaky`` draws a wrong face for ``seed`` (a function of the seed alone)."""
    if fraction <= 0:
        return False
    h = int.from_bytes(hashlib.blake2b(int(seed).to_bytes(8, "little", signed=True), digest_size=8).digest(),
                       "little")
    return (h % 1_000_000) < fraction * 1_000_000


@REGISTRY.register("test_flaky")
class TestFlaky(TestPattern):
    """Test generator: like test_pattern, but a fixed fraction of seeds draw an unrelated vector (bad images)."""

    __test__ = False

    def __init__(self, dim: int | None = None, bad_fraction: float = 0.25, delay: float = 0.0, weights: Any = None,
                 device: Any = "cpu", **kwargs: Any):
        super().__init__(dim=dim, delay=delay, device=device, **kwargs)
        self.bad_fraction = float(bad_fraction)

    def options(self) -> dict[str, Any]:
        return {"bad_fraction": self.bad_fraction}
