"""Shared pieces of the margin heads: the head interface and a monotone extension of ``cos``."""
from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["MarginHead", "monotone_cos", "target_mask"]


def monotone_cos(phi: torch.Tensor) -> torch.Tensor:
    """``cos(phi)`` for ``phi`` in [0, π]; beyond π it continues decreasing as ``(-1)^k cos(phi) - 2k`` with
    ``k = floor(phi / π)`` (SphereFace's ψ), so a margin pushed past π still lowers the target logit."""
    k = torch.floor(phi / math.pi)
    sign = 1.0 - 2.0 * torch.remainder(k, 2.0)
    return sign * torch.cos(phi) - 2.0 * k


def target_mask(cos: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Row indices with a valid label (``!= -1``) and their label columns."""
    labels = labels.reshape(-1).long()
    rows = torch.nonzero(labels != -1, as_tuple=False).reshape(-1)
    return rows, labels[rows]


class MarginHead(nn.Module):
    """Interface: ``forward(cos, labels, norms=None) -> logits``.

    ``cos`` is the ``N×C`` matrix of cosines between L2-normalised embeddings and class centres; ``labels``
    (``N``, int) the target column of each row, or ``-1`` when the target is not among the columns (another
    rank's shard under Partial FC); ``norms`` (``N×1``) the embedding norms before normalisation (AdaFace).
    Returns the scaled margin logits; the loss is cross-entropy on them. ``update=False`` leaves running
    statistics (AdaFace) untouched, for a second call on the same batch (soft labels).
    """

    s: float = 64.0

    def target_logit(self, cos_t: torch.Tensor, norms: torch.Tensor | None) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, cos: torch.Tensor, labels: torch.Tensor, norms: torch.Tensor | None = None,
                update: bool = True) -> torch.Tensor:
        cos = cos.clamp(-1.0, 1.0)
        rows, cols = target_mask(cos, labels)
        out = cos.clone()
        if rows.numel():
            n = norms.reshape(-1)[rows] if norms is not None else None
            out[rows, cols] = self.target_logit(cos[rows, cols], n).to(out.dtype)
        return out * self.s

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={getattr(self, k)}" for k in ("s", "m", "m1", "m2", "m3", "h") if hasattr(self, k))
