"""Vec2Face identity sampling: a PCA-space Gaussian fitted to real embeddings, with an exact τ check."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from synthfr.samplers import REGISTRY
from synthfr.samplers._base import Sampler
from synthfr.samplers.geometry import rejection_sample
from synthfr.utils.seeds import derive_seed


@dataclass
class Vec2FaceConfig:
    tau: float = 0.3
    """Keep a sample only if its cosine to every kept identity is ≤ tau (every pair checked exactly)."""
    block: int = 4096
    """Candidates drawn per block; each block is checked against all kept vectors with chunked matmuls."""
    precision: str = "auto"
    """'auto' = bf16 pre-filter with an exact float32 re-check of every candidate within 0.02 of tau (CPU,
    D ≥ 256); 'fp32' = float32 throughout. Both give the same exact guarantee."""
    var_floor: float = 0.0
    """Relative variance floor added to every PCA direction (0 = the fitted Gaussian exactly)."""
    device: str = "cpu"
    """Torch device of the check ('cuda' on a GPU machine)."""
    max_proposals: int | None = None
    """Give up (with an error) after this many candidates; default 100×n."""
    proposal: str = "auto"
    """'pca' (the paper's: the Gaussian of a gallery in its PCA basis; a gallery is required), 'isotropic'
    (N(0, I), no gallery used) or 'auto' (pca with a gallery, isotropic without)."""


@REGISTRY.register("vec2face")
class Vec2FaceSampler(Sampler):
    """Vec2Face: Gaussian in PCA space of a gallery (isotropic without one), exact cosine ≤ tau rejection."""

    Config = Vec2FaceConfig

    def _sample(self, n: int, dim: int, gallery: np.ndarray | None, seed: int) -> tuple[np.ndarray, dict[str, Any]]:
        cfg = self.config
        gen = torch.Generator().manual_seed(derive_seed(seed, "vec2face"))
        stats: dict[str, Any] = {}
        if cfg.proposal not in ("auto", "pca", "isotropic"):
            raise ValueError(f"vec2face: proposal must be auto, pca or isotropic, got {cfg.proposal!r}")
        if cfg.proposal == "pca" and gallery is None:
            raise ValueError("vec2face: proposal=pca (the paper's) needs a gallery of real embeddings of the "
                             "generator's embedder: pass --gallery EMB.npy (or proposal=isotropic)")
        if gallery is None or cfg.proposal == "isotropic":
            def propose(m: int) -> torch.Tensor:
                return torch.randn(m, dim, generator=gen)
            stats["proposal"] = "isotropic"
        else:
            g = gallery.astype(np.float64)
            mu = g.mean(0)
            cov = np.cov((g - mu).T, bias=True)
            evals, evecs = np.linalg.eigh(cov)  # PCA: all D components kept (no dimension reduction)
            evals = np.maximum(evals, 0.0)
            evals = evals + cfg.var_floor * evals.mean()
            scale = torch.as_tensor(np.sqrt(evals), dtype=torch.float32)
            basis = torch.as_tensor(evecs.T, dtype=torch.float32)  # rows = principal directions
            mean = torch.as_tensor(mu, dtype=torch.float32)

            def propose(m: int) -> torch.Tensor:
                z = torch.randn(m, dim, generator=gen) * scale
                return mean + z @ basis
            stats.update(proposal="pca-gaussian", gallery_size=int(len(g)),
                         pca_rank=int((evals > 1e-10 * max(evals.max(), 1e-30)).sum()),
                         explained_top10=float(np.sort(evals)[::-1][:10].sum() / max(evals.sum(), 1e-30)))
        x, st = rejection_sample(propose, n, dim, float(cfg.tau), block=cfg.block, precision=cfg.precision,
                                 device=cfg.device, max_proposals=cfg.max_proposals, progress=n >= 20000)
        stats.update(st)
        return x.cpu().numpy(), stats
