"""Uniform identities on the hypersphere, with optional minimum-angle rejection."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from synthfr.samplers import REGISTRY
from synthfr.samplers._base import Sampler
from synthfr.samplers.geometry import normalize, rejection_sample
from synthfr.utils.seeds import derive_seed


@dataclass
class UniformConfig:
    tau: float | None = None
    """Optional maximal cosine between any two identities (minimum-angle rejection, exact); None = plain uniform."""
    block: int = 4096
    """Candidates drawn and checked per block when rejecting."""
    precision: str = "auto"
    """Rejection check precision: 'auto' (bf16 pre-filter + exact float32 re-check on CPU for D ≥ 256), 'fp32'."""
    device: str = "cpu"
    """Torch device for the rejection check."""


@REGISTRY.register("uniform")
class UniformSampler(Sampler):
    """Uniform on the unit sphere (normalised Gaussian), optional exact minimum-angle rejection (--tau)."""

    Config = UniformConfig

    def _sample(self, n: int, dim: int, gallery: np.ndarray | None, seed: int) -> tuple[np.ndarray, dict[str, Any]]:
        gen = torch.Generator().manual_seed(derive_seed(seed, "uniform"))
        if self.config.tau is None:
            return normalize(torch.randn(n, dim, generator=gen)).numpy(), {"rejected": 0}
        x, st = rejection_sample(lambda m: torch.randn(m, dim, generator=gen), n, dim, float(self.config.tau),
                                 block=self.config.block, precision=self.config.precision,
                                 device=self.config.device, progress=n >= 20000)
        return x.cpu().numpy(), st
