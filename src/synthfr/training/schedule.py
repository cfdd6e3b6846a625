"""What each training step sees: the learning-rate schedule and the seeded batch order.

The order of epoch ``e`` is a permutation seeded by ``(seed, e)``; every sample's augmentation seed is
``(seed, "aug", e, index)``; a domain-mixup step is a coin seeded by ``(seed, step)`` and its real batch is
drawn by ``(seed, step)``. Nothing depends on the process or on how far a previous run got, which is what
makes resume exact and ``torchrun`` follow the single-process trajectory.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from synthfr.training.config import TrainConfig
from synthfr.utils.seeds import derive_seed

__all__ = ["lr_at", "StepBatchSampler", "RealBatchSampler", "is_mix_step"]


def lr_at(cfg: TrainConfig, step: int, steps_per_epoch: int, total_steps: int, frac: float | None = None) -> float:
    """Learning rate of ``step`` (0-based): linear warm-up, then multi-step, poly (power 2) or cosine decay.

    ``frac`` (0..1) overrides the progress after warm-up (time-budget runs use the elapsed fraction of the
    budget); multi-step milestones > 1 (epochs) then still count epochs.
    """
    warm = int(round(cfg.warmup_epochs * steps_per_epoch))
    if step < warm:
        return cfg.lr * (step + 1) / warm
    if frac is None:
        frac = (step - warm) / max(1, total_steps - warm)
    frac = min(max(frac, 0.0), 1.0)
    if cfg.schedule == "multistep":
        passed = 0
        for m in cfg.milestones:
            passed += (step >= int(round(m * steps_per_epoch))) if m > 1 else (
                (frac >= m) if total_steps <= 0 else (step >= int(round(m * total_steps))))
        return cfg.lr * cfg.lr_gamma ** passed
    if cfg.schedule == "poly":
        return cfg.lr * (1 - frac) ** 2
    if cfg.schedule == "cosine":
        return cfg.lr * 0.5 * (1 + math.cos(math.pi * frac))
    raise ValueError(f"unknown schedule {cfg.schedule!r}; use multistep, poly or cosine")


# -- samplers ---------------------------------------------------------------------------------------------
class StepBatchSampler(torch.utils.data.Sampler):
    """Yields, for each step from ``start_step``, this rank's slice of the global batch as ``(index, aug_seed)``.

    Epoch ``e`` visits a permutation seeded by ``(seed, e)`` (with several weighted sources:
    :func:`~synthfr.data.multisource.epoch_order`) in batches of ``global_batch`` (the last partial
    batch is dropped); rank ``r`` of ``world`` takes rows ``r·B/world .. (r+1)·B/world`` of each batch.
    """

    def __init__(self, n: int, global_batch: int, seed: int, start_step: int, total_steps: int,
                 rank: int = 0, world: int = 1, sizes: list[int] | None = None, weights: list | None = None):
        self.n, self.B, self.seed = n, global_batch, seed
        self.sizes, self.weights = (list(sizes) if sizes else [n]), (list(weights) if weights else None)
        self.start, self.total, self.rank, self.world = start_step, total_steps, rank, world
        self.spe = n // global_batch
        self.local = global_batch // world
        self._cache: tuple[int, np.ndarray] | None = None

    def _perm(self, epoch: int) -> np.ndarray:
        if self._cache is None or self._cache[0] != epoch:
            from synthfr.data.multisource import epoch_order

            self._cache = (epoch, epoch_order(self.sizes, self.weights, self.seed, epoch))
        return self._cache[1]

    def batch(self, step: int) -> list[tuple[int, int]]:
        epoch, b = divmod(step, self.spe)
        idx = self._perm(epoch)[b * self.B:(b + 1) * self.B][self.rank * self.local:(self.rank + 1) * self.local]
        return [(int(i), derive_seed(self.seed, "aug", epoch, int(i))) for i in idx]

    def __iter__(self):
        for step in range(self.start, self.total):
            yield self.batch(step)

    def __len__(self) -> int:
        return max(0, self.total - self.start)


def is_mix_step(cfg: TrainConfig, step: int) -> bool:
    """Whether ``step`` is domain-mixed (a coin seeded by ``(seed, step)`` with probability ``domain_mixup_prob``)."""
    p = cfg.domain_mixup_prob
    return p >= 1 or np.random.default_rng(derive_seed(cfg.seed, "dmix", step)).random() < p


class RealBatchSampler(torch.utils.data.Sampler):
    """Real batches for domain mixup: for each mixed step in ``start .. stop``, ``global_batch`` images drawn by
    ``(seed, step)`` (this rank's slice)."""

    def __init__(self, n: int, global_batch: int, cfg: TrainConfig, start: int, stop: int, rank: int = 0,
                 world: int = 1):
        self.n, self.B, self.cfg, self.start, self.stop = n, global_batch, cfg, start, stop
        self.seed, self.rank, self.world = cfg.seed, rank, world
        self.local = global_batch // world

    def __iter__(self):
        for s in range(self.start, self.stop):
            if not is_mix_step(self.cfg, s):
                continue
            rng = np.random.default_rng(derive_seed(self.seed, "real", s))
            idx = rng.permutation(self.n)[: self.B] if self.n >= self.B else rng.integers(0, self.n, self.B)
            idx = idx[self.rank * self.local:(self.rank + 1) * self.local]
            yield [(int(i), derive_seed(self.seed, "real-aug", s, int(i))) for i in idx]
