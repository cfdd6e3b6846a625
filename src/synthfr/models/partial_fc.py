"""Classifier with class centres sharded across ranks and Partial FC sampling (An et al. 2021/2022).

:class:`PartialFC` holds this rank's slice of the class-centre matrix, gathers the embeddings (and labels) of
the whole global batch, computes cosine logits against its (sampled) centres, applies a margin head and a
cross-entropy whose softmax denominator is summed over ranks. In a single process (no ``torch.distributed``)
it is an ordinary normalised classifier + margin head + cross-entropy.

Determinism across world sizes: centre initialisation and negative sampling are drawn per *global* class
index from generators seeded by ``(seed, chunk)`` and ``(seed, step, chunk)``, and a negative centre is kept
when its uniform draw is below ``sample_rate`` (positives are always kept). The sampled set therefore does not
depend on how classes are sharded, so 1 and N processes compute the same loss on the same global batch.
(Insightface instead keeps exactly ``sample_rate × num_local`` centres per rank; the expected count is equal.)

Soft labels: ``forward(emb, labels B×K, weights B×K)`` returns the mean of ``Σ_k weights_k·CE(labels_k)``, as
SynFace's identity mixup (K=2) and domain mixup (K=3) need. Where the margins go is ``soft_logits``:

* ``"per-target"`` (synthfr's default): each target's cross-entropy sees the logits with *its own* margin, so
  every target gets the full margin in its own softmax.
* ``"mixed"`` (SynFace's released code, ``lib/core/functions.py``): the margin logits of the targets are mixed
  first, ``z = Σ_k w_k·head(cos, label_k) / Σ_k w_k``, and every cross-entropy uses that one ``z`` — a target of
  weight ``w`` gets the fraction ``w`` of the margin.

Both are the same for hard labels and for a head without margin.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from synthfr.utils import collectives as D
from synthfr.utils.seeds import derive_seed

__all__ = ["PartialFC", "shard_range", "SOFT_LOGITS"]

SOFT_LOGITS = ("per-target", "mixed")

_CHUNK = 65536  # classes per seeded chunk (init and sampling draws); fixed, so results are shard-invariant


def shard_range(num_classes: int, rank: int, world: int) -> tuple[int, int]:
    """``(start, count)`` of the classes held by ``rank`` (insightface's split: the first ranks get one more)."""
    count = num_classes // world + int(rank < num_classes % world)
    start = num_classes // world * rank + min(rank, num_classes % world)
    return start, count


def _chunked(seed_keys: tuple, start: int, count: int, fn) -> torch.Tensor:
    """Rows ``start .. start+count`` of a global per-class random array generated in fixed chunks."""
    parts = []
    end = start + count
    for c in range(start // _CHUNK, (end - 1) // _CHUNK + 1 if count else 0):
        g = torch.Generator().manual_seed(derive_seed(*seed_keys, c))
        block = fn(g)
        lo, hi = max(start, c * _CHUNK) - c * _CHUNK, min(end, (c + 1) * _CHUNK) - c * _CHUNK
        parts.append(block[lo:hi])
    return torch.cat(parts, 0) if parts else fn(torch.Generator())[:0]


class PartialFC(nn.Module):
    """Normalised class centres (this rank's shard) + margin head + distributed cross-entropy.

    Args:
        head: a margin head (``cos, labels, norms -> logits``).
        embedding_size: D.
        num_classes: total number of classes over all ranks (including virtual classes).
        sample_rate: fraction of negative centres used per step (1.0 = all; Partial FC uses 0.1-0.3).
        seed: seeds the centre initialisation (N(0, 0.01)) and the per-step sampling.
        soft_logits: ``"per-target"`` or ``"mixed"``: where soft labels' margins go (module docstring).
    """

    def __init__(self, head: nn.Module, embedding_size: int, num_classes: int, sample_rate: float = 1.0,
                 seed: int = 0, init_std: float = 0.01, rank: int | None = None, world: int | None = None,
                 soft_logits: str = "per-target"):
        super().__init__()
        if not 0.0 < sample_rate <= 1.0:
            raise ValueError(f"sample_rate must be in (0, 1], got {sample_rate}")
        if soft_logits not in SOFT_LOGITS:
            raise ValueError(f"soft_label_logits must be one of {', '.join(SOFT_LOGITS)}, got {soft_logits!r}")
        self.soft_logits = soft_logits
        self.head = head
        self.embedding_size = embedding_size
        self.num_classes = num_classes
        self.sample_rate = float(sample_rate)
        self.seed = int(seed)
        # rank/world override only for tests of the sharding maths; training takes them from torch.distributed
        self.rank = D.rank() if rank is None else int(rank)
        self.world = D.world_size() if world is None else int(world)
        self.class_start, self.num_local = shard_range(num_classes, self.rank, self.world)
        w = _chunked((self.seed, "pfc-init"), self.class_start, self.num_local,
                     lambda g: torch.randn(_CHUNK, embedding_size, generator=g) * init_std)
        self.weight = nn.Parameter(w)
        self.register_buffer("step", torch.zeros((), dtype=torch.long))
        self.last_num_sampled = self.num_local

    # -- helpers -----------------------------------------------------------------------------------
    def _localise(self, labels: torch.Tensor) -> torch.Tensor:
        """Global class ids -> local column ids (``-1`` for classes of other ranks)."""
        inside = (labels >= self.class_start) & (labels < self.class_start + self.num_local)
        return torch.where(inside, labels - self.class_start, torch.full_like(labels, -1))

    def _sample(self, positives: torch.Tensor) -> torch.Tensor | None:
        """Sorted local indices of the centres used this step (``None`` = all)."""
        if self.sample_rate >= 1.0:
            return None
        u = _chunked((self.seed, "pfc-sample", int(self.step)), self.class_start, self.num_local,
                     lambda g: torch.rand(_CHUNK, generator=g))
        keep = u < self.sample_rate
        keep[positives] = True
        return torch.nonzero(keep, as_tuple=False).reshape(-1).to(self.weight.device)

    def full_weight(self) -> torch.Tensor:
        """The whole ``num_classes × D`` centre matrix (gathered from every rank when distributed)."""
        w = self.weight.detach()
        if not D.is_distributed():
            return w.clone()
        n_max = shard_range(self.num_classes, 0, self.world)[1]
        pad = torch.zeros(n_max, w.shape[1], dtype=w.dtype, device=w.device)
        pad[: w.shape[0]] = w
        allw = D.all_gather_nograd(pad)
        parts = [allw[r * n_max: r * n_max + shard_range(self.num_classes, r, self.world)[1]]
                 for r in range(self.world)]
        return torch.cat(parts, 0)

    # -- forward -----------------------------------------------------------------------------------
    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor | None = None
                ) -> torch.Tensor:
        """Mean loss over the global batch.

        ``embeddings``: this rank's ``B×D`` (not normalised). ``labels``: ``B`` class ids, or ``B×K`` with
        ``weights`` ``B×K`` for soft labels; the loss of a row is ``Σ_k weights[k]·CE(labels[k])``.
        """
        dev = embeddings.device
        labels = labels.long().to(dev)
        if labels.ndim == 1:
            labels = labels[:, None]
            weights = None
        if weights is None:
            if labels.shape[1] != 1:
                raise ValueError("soft labels (B×K) need weights (B×K)")
            weights = torch.ones(labels.shape, dtype=torch.float32, device=dev)
        weights = weights.float().to(dev)
        emb = D.all_gather_grad(embeddings)
        labels = D.all_gather_nograd(labels)
        weights = D.all_gather_nograd(weights)
        if labels.numel() and (labels.min() < 0 or labels.max() >= self.num_classes):
            raise ValueError(f"labels must be in [0, {self.num_classes}), got {int(labels.min())}..{int(labels.max())}")
        used = [k for k in range(labels.shape[1]) if bool((weights[:, k] != 0).any())] or [0]

        loc = self._localise(labels)
        pos = loc[:, used]
        pos = pos[pos >= 0]
        index = self._sample(pos.cpu())
        weight = self.weight
        if index is not None:
            weight = self.weight[index]
            loc = self._remap(loc, index)
        self.last_num_sampled = weight.shape[0]
        if self.training:
            self.step += 1

        norms = emb.float().norm(dim=1, keepdim=True)
        cos = F.linear(F.normalize(emb), F.normalize(weight.to(emb.dtype))).float().clamp(-1, 1)
        logits = [self.head(cos, loc[:, k], norms, update=(j == 0)) for j, k in enumerate(used)]
        if self.soft_logits == "mixed" and len(used) > 1:
            # SynFace: one logit matrix, each target's margin scaled by its weight (rows of zero weight: plain);
            # its softmax denominator is shared by every target, so it is computed once
            w = weights[:, used]
            z = sum(wj[:, None] * zj for wj, zj in zip((w / w.sum(1, keepdim=True).clamp_min(1e-12)).T, logits))
            lse = self._lse(z)
            return sum(weights[:, k] * (lse - self._target(z, loc[:, k])) for k in used).mean()
        return sum(weights[:, k] * (self._lse(z) - self._target(z, loc[:, k])) for z, k in zip(logits, used)).mean()

    @staticmethod
    def _remap(loc: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        out = torch.full_like(loc, -1)
        m = loc >= 0
        out[m] = torch.searchsorted(index, loc[m])
        return out

    @staticmethod
    def _lse(logits: torch.Tensor) -> torch.Tensor:
        """Per-row log-sum-exp over the columns of every rank (the cross-entropy's denominator)."""
        mx = logits.detach().max(dim=1).values if logits.shape[1] else torch.full(
            (logits.shape[0],), -1e30, device=logits.device)
        mx = D.all_reduce_max(mx.clone())
        sumexp = torch.exp(logits - mx[:, None]).sum(dim=1)
        sumexp = D.all_reduce_sum_grad(sumexp)
        return torch.log(sumexp) + mx

    @staticmethod
    def _target(logits: torch.Tensor, loc: torch.Tensor) -> torch.Tensor:
        """Per-row logit of the target column, from whichever rank holds it (``loc`` −1 elsewhere)."""
        tgt = torch.zeros(logits.shape[0], dtype=logits.dtype, device=logits.device)
        rows = torch.nonzero(loc >= 0, as_tuple=False).reshape(-1)
        tgt = tgt.index_put((rows,), logits[rows, loc[rows]])
        return D.all_reduce_sum_grad(tgt)

    def extra_repr(self) -> str:
        return (f"num_classes={self.num_classes}, local={self.class_start}+{self.num_local}, "
                f"sample_rate={self.sample_rate}, soft_logits={self.soft_logits}")
