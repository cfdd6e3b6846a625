"""SynFace mixups.

* **Identity mixup** comes from the dataset: an image generated from a mix of identities ``a`` and ``b`` carries
  the soft label ``(a, b, weight_a)`` (manifest ``soft_label``); the loss is ``w·CE(a) + (1 − w)·CE(b)``.
* **Domain mixup** (:func:`domain_mixup`): each synthetic batch is mixed pixel-wise with a batch of a small real
  dataset, ``x = ψ·x_syn + (1 − ψ)·x_real``, and so are the labels (real classes are numbered after the
  synthetic ones): the soft label gets the real class with weight ``1 − ψ`` and the synthetic ones ``ψ·w``.
  ψ is drawn per batch from ``{0, 0.05, …, 1}`` as in SynFace (:func:`psi_at`), or fixed.
"""
from __future__ import annotations

import numpy as np
import torch

from synthfr.utils.seeds import derive_seed

__all__ = ["domain_mixup", "psi_grid", "psi_at"]


def psi_grid(step: float = 0.05) -> np.ndarray:
    """The ψ values SynFace samples from: ``{0, step, 2·step, …, 1}`` (21 values at 0.05)."""
    n = int(round(1.0 / step))
    if n < 1 or abs(n * step - 1.0) > 1e-9:
        raise ValueError(f"domain_mixup_psi_step {step} must divide 1 (e.g. 0.05, 0.1, 0.25)")
    return np.round(np.arange(n + 1) / n, 10)


def psi_at(seed: int, step: int, ratio: float | None = None, grid_step: float = 0.05) -> float:
    """ψ of training step ``step``: ``ratio`` when fixed, else a draw from :func:`psi_grid` seeded by
    ``(seed, step)`` (so resuming and the process count never change it)."""
    if ratio is not None:
        return float(ratio)
    g = psi_grid(grid_step)
    return float(g[np.random.default_rng(derive_seed(seed, "psi", step)).integers(len(g))])


def domain_mixup(x_syn: torch.Tensor, labels_syn: torch.Tensor, weights_syn: torch.Tensor, x_real: torch.Tensor,
                 labels_real: torch.Tensor, psi: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Mix a synthetic batch (``labels_syn``/``weights_syn``: ``B×K``) with a real batch (``labels_real``: ``B``
    or ``B×K'``, first column used) with ratio ``psi``; returns ``(x, labels B×(K+1), weights B×(K+1))``."""
    if x_syn.shape != x_real.shape:
        raise ValueError(f"domain mixup needs equal batch shapes, got {tuple(x_syn.shape)} and {tuple(x_real.shape)}")
    lr = labels_real if labels_real.ndim == 1 else labels_real[:, 0]
    x = psi * x_syn + (1.0 - psi) * x_real
    labels = torch.cat([labels_syn, lr[:, None].to(labels_syn.dtype)], dim=1)
    weights = torch.cat([psi * weights_syn, torch.full_like(weights_syn[:, :1], 1.0 - psi)], dim=1)
    return x, labels, weights
