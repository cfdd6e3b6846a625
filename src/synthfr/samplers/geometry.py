"""Exact, chunked geometry on the unit hypersphere (torch, bounded memory).

Every function here takes/returns torch tensors or numpy arrays of unit rows and works blockwise, so memory
stays O(chunk × N) however large N is.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

__all__ = ["as_tensor", "normalize", "pair_stats", "cross_nn", "sampled_pair_stats", "random_unit",
           "welch_bound", "greedy_keep", "tangent"]


def as_tensor(x: Any, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x.to(device=device, dtype=dtype)
    return torch.as_tensor(np.ascontiguousarray(x), dtype=dtype, device=device)


def normalize(x: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    return x / x.norm(dim=-1, keepdim=True).clamp_min(eps)


def tangent(g: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Project rows of ``g`` onto the tangent space of the sphere at rows of ``x``."""
    return g - (g * x).sum(-1, keepdim=True) * x


def random_unit(n: int, dim: int, seed: int, device: str | torch.device = "cpu") -> torch.Tensor:
    """``n`` points uniform on S^(dim-1), deterministic for ``seed`` (generated on CPU, then moved)."""
    gen = torch.Generator().manual_seed(int(seed) & ((1 << 63) - 1))
    return normalize(torch.randn(n, dim, generator=gen)).to(device)


def welch_bound(n: int, dim: int) -> float:
    """Welch lower bound on the maximal |cosine| of ``n`` unit vectors in ``dim`` dimensions (0 if n ≤ dim)."""
    if n <= dim:
        return 0.0
    return math.sqrt((n - dim) / (dim * (n - 1)))


@torch.no_grad()
def pair_stats(x: Any, chunk: int = 4096, device: str | torch.device = "cpu", progress: bool = False
               ) -> dict[str, Any]:
    """Exact all-pairs statistics of unit rows ``x`` (N×D), blockwise over the upper triangle.

    Returns ``max_cos`` (largest cosine of two distinct rows), ``argmax`` (that pair), ``nn_cos`` (per row, the
    cosine to its nearest other row, numpy float32) and ``mean_nn_cos``.
    """
    x = as_tensor(x, device)
    n = x.shape[0]
    if n < 2:
        return {"max_cos": float("nan"), "argmax": None, "nn_cos": np.full(n, np.nan, np.float32),
                "mean_nn_cos": float("nan")}
    nn = torch.full((n,), -2.0, device=x.device)
    best, best_pair = -2.0, (0, 1)
    blocks = [(a, b) for a in range(0, n, chunk) for b in range(a, n, chunk)]
    it = blocks
    if progress:
        from tqdm import tqdm

        it = tqdm(blocks, desc="all-pairs check", unit="block")
    for a, b in it:
        g = x[a:a + chunk] @ x[b:b + chunk].T
        if a == b:
            g.fill_diagonal_(-2.0)
        nn[a:a + g.shape[0]] = torch.maximum(nn[a:a + g.shape[0]], g.max(1).values)
        nn[b:b + g.shape[1]] = torch.maximum(nn[b:b + g.shape[1]], g.max(0).values)
        m = float(g.max())
        if m > best:
            k = int(g.argmax())
            best, best_pair = m, (a + k // g.shape[1], b + k % g.shape[1])
    nn_np = nn.cpu().numpy().astype(np.float32)
    return {"max_cos": best, "argmax": best_pair, "nn_cos": nn_np, "mean_nn_cos": float(nn_np.mean())}


@torch.no_grad()
def sampled_pair_stats(x: Any, k: int = 10000, seed: int = 0, chunk: int = 4096,
                       device: str | torch.device = "cpu") -> dict[str, Any]:
    """Statistics of ``k`` random rows against *all* rows (for N too large for an all-pairs pass).

    ``max_cos`` here is the largest cosine between a sampled row and any other row: a lower bound of the true
    all-pairs maximum, exact for the sampled rows.
    """
    x = as_tensor(x, device)
    n = x.shape[0]
    gen = torch.Generator().manual_seed(int(seed))
    idx = torch.randperm(n, generator=gen)[: min(k, n)].to(x.device)
    q = x[idx]
    nn = torch.full((len(idx),), -2.0, device=x.device)
    for b in range(0, n, chunk):
        g = q @ x[b:b + chunk].T
        own = (idx >= b) & (idx < b + chunk)
        if own.any():
            r = own.nonzero(as_tuple=True)[0]
            g[r, idx[r] - b] = -2.0
        nn = torch.maximum(nn, g.max(1).values)
    nn_np = nn.cpu().numpy().astype(np.float32)
    return {"max_cos": float(nn_np.max()), "nn_cos": nn_np, "mean_nn_cos": float(nn_np.mean()),
            "sampled": int(len(idx))}


@torch.no_grad()
def cross_nn(x: Any, y: Any, chunk: int = 4096, device: str | torch.device = "cpu"
             ) -> tuple[np.ndarray, np.ndarray]:
    """For each row of ``x``: the cosine to its nearest row of ``y`` and that row's index (numpy)."""
    best, arg = nearest_rows(as_tensor(x, device), as_tensor(y, device), chunk)
    return best.cpu().numpy().astype(np.float32), arg.cpu().numpy()


def nearest_rows(x: torch.Tensor, y: torch.Tensor, chunk: int = 4096) -> tuple[torch.Tensor, torch.Tensor]:
    """Torch version of :func:`cross_nn`: (best cosine, index of the nearest row of ``y``) per row of ``x``,
    scanning ``y`` in chunks so memory stays bounded."""
    best = torch.full((x.shape[0],), -2.0, device=x.device)
    arg = torch.zeros(x.shape[0], dtype=torch.long, device=x.device)
    for b in range(0, y.shape[0], chunk):
        v, i = (x @ y[b:b + chunk].T).max(1)
        upd = v > best
        best = torch.where(upd, v, best)
        arg = torch.where(upd, i + b, arg)
    return best, arg


def greedy_keep(gram: torch.Tensor, tau: float) -> torch.Tensor:
    """Greedy in-order selection inside one block: keep row i unless it exceeds ``tau`` with an earlier kept row.

    ``gram`` is the B×B cosine matrix of the block's candidates. Returns a bool mask. Only rows involved in a
    conflict are visited in Python, so a block without conflicts costs one comparison.
    """
    b = gram.shape[0]
    conf = torch.triu(gram > tau, diagonal=1)  # conf[j, i]: j < i conflict
    keep = torch.ones(b, dtype=torch.bool, device=gram.device)
    has = conf.any(0)
    if not bool(has.any()):
        return keep
    cols = has.nonzero(as_tuple=True)[0].tolist()
    conf_t = conf.T  # row i: earlier rows j it conflicts with
    for i in cols:
        if bool((conf_t[i] & keep).any()):
            keep[i] = False
    return keep


#: Bound on |cos_bf16 - cos_exact| for unit vectors: bf16 inputs (2u + u², u = 2^-8) plus the bf16 result's
#: own rounding (u); rounded up. Candidates whose bf16 cosine is within this margin of tau are re-checked in
#: float32, so the bf16 pre-filter never lets a pair above tau through.
BF16_MARGIN = 0.02


@torch.no_grad()
def rejection_sample(propose, n: int, dim: int, tau: float, *, block: int = 4096, kchunk: int = 16384,
                     precision: str = "auto", device: str | torch.device = "cpu", max_proposals: int | None = None,
                     progress: bool = False) -> tuple[torch.Tensor, dict[str, Any]]:
    """Draw unit candidates ``propose(m) -> m×dim`` until ``n`` are kept with every kept pair's cosine ≤ ``tau``.

    Blockwise: each block of candidates is checked against all kept vectors with chunked matmuls (optionally a
    bf16 pre-filter, exact float32 re-check near tau), then conflicts inside the block are resolved greedily in
    draw order. The result equals sequential greedy acceptance of the candidate stream.
    """
    device = torch.device(device)
    if precision == "auto":
        precision = "bf16" if (device.type == "cpu" and dim >= 256) else "fp32"
    if precision not in ("bf16", "fp32"):
        raise ValueError(f"precision must be 'auto', 'bf16' or 'fp32', got {precision!r}")
    lp = precision == "bf16"
    kept = torch.empty(n, dim, device=device)
    kept_lp = torch.empty(n, dim, device=device, dtype=torch.bfloat16) if lp else None
    k = proposed = rej_kept = rej_block = rechecked = 0
    max_proposals = max_proposals or max(100 * n, 10 * block)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=n, desc=f"rejection sampling (tau={tau})", unit="id")
    while k < n:
        if proposed >= max_proposals:
            if bar is not None:
                bar.close()
            raise RuntimeError(
                f"rejection sampling kept only {k} of {n} vectors after {proposed} proposals at tau={tau}; the "
                "proposal is too concentrated for this tau (the kept count saturates when the gallery's effective "
                "dimension is low, e.g. about 24 for dlib): raise --tau, lower --n, or whiten the gallery space "
                "(--whiten)")
        c = normalize(propose(block).to(device=device, dtype=torch.float32))
        proposed += c.shape[0]
        if k > 0:
            cmax = torch.full((c.shape[0],), -2.0, device=device)
            if lp:
                clp = c.to(torch.bfloat16)
                for a in range(0, k, kchunk):
                    cmax = torch.maximum(cmax, (clp @ kept_lp[a:min(k, a + kchunk)].T).max(1).values.float())
                susp = (cmax > tau - BF16_MARGIN).nonzero(as_tuple=True)[0]
                ok = torch.ones(c.shape[0], dtype=torch.bool, device=device)
                if len(susp):
                    rechecked += len(susp)
                    exact = torch.full((len(susp),), -2.0, device=device)
                    cs = c[susp]
                    for a in range(0, k, kchunk):
                        exact = torch.maximum(exact, (cs @ kept[a:min(k, a + kchunk)].T).max(1).values)
                    ok[susp] = exact <= tau
            else:
                for a in range(0, k, kchunk):
                    cmax = torch.maximum(cmax, (c @ kept[a:min(k, a + kchunk)].T).max(1).values)
                ok = cmax <= tau
            rej_kept += int((~ok).sum())
            c = c[ok]
        if c.shape[0] == 0:
            continue
        keep = greedy_keep(c @ c.T, tau)
        rej_block += int((~keep).sum())
        c = c[keep][: n - k]
        kept[k:k + c.shape[0]] = c
        if lp:
            kept_lp[k:k + c.shape[0]] = c.to(torch.bfloat16)
        k += c.shape[0]
        if bar is not None:
            bar.update(c.shape[0])
    if bar is not None:
        bar.close()
    stats = {"tau": float(tau), "proposed": int(proposed), "rejected": int(rej_kept + rej_block),
             "rejected_vs_kept": int(rej_kept), "rejected_in_block": int(rej_block),
             "acceptance_rate": float(n / (n + rej_kept + rej_block)), "rechecked_fp32": int(rechecked),
             "check_precision": precision}
    return kept, stats
