"""synthfr's HyperFace packer: max-min separation on the sphere with HyperFace's gallery regulariser, fast.

Objective (the same as HyperFace): make the largest pairwise cosine as small as possible, plus
``alpha × mean distance of each point to its nearest gallery embedding``.

**Dense mode** (N ≤ ``dense_max``): every step computes the exact Gram matrix in row chunks (bounded memory)
and applies a *ratcheting hinge*: only pairs whose cosine exceeds ``δ = current max − gap`` repel, with weight
``cos − δ`` (a sparse sub-gradient of a soft maximum), the gap shrinking from ``gap`` to ``final_gap`` over the
budget. The repulsion and the gallery pull (gradient of the smoothed distance to the nearest gallery point,
weighted by ``alpha × Σweights / N``: with the hinge weights read as a soft-max distribution over pairs, this
keeps exactly the objective's ratio between the max term and alpha × the mean distance) are projected onto the
tangent space, accumulated with heavy-ball momentum, clipped to a trust region and each point is renormalised
(a retraction). One step
costs one chunked Gram pass plus one chunked weight-times-X product; the best iterate is returned.

**Scalable mode** (N > ``dense_max``, e.g. 10^5–10^6): no all-pairs pass at all. Each round buckets the points
by cross-polytope locality-sensitive hashing (argmax of ±random projections), so near pairs tend to share a
bucket, and runs the same hinge step inside every bucket (chunks of ≤ ``bucket_size``). Thresholds come from a
sampled neighbour estimate.

**Initialisation** (``init``): ``gallery`` (random gallery embeddings + tiny noise, as HyperFace), ``random``
(uniform), ``code`` (an algebraic Gold/dual-BCH spherical code with a *certified* maximal cosine, randomly
rotated, available for D = 2^m or 2^m − 1 with m odd, e.g. 128 and 512) or ``auto`` (gallery if one is given,
else the code where its certified bound is within 1.5× the Welch bound or in scalable mode, else random).
Without a regulariser the optimiser returns the best iterate seen, never worse than its start.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from synthfr.samplers import REGISTRY
from synthfr.samplers._base import Sampler
from synthfr.samplers._geometry import as_tensor, cross_nn, normalize, sampled_pair_stats, tangent
from synthfr.utils.seeds import derive_seed


@dataclass
class HyperFaceConfig:
    alpha: float = 0.5
    """Weight of the gallery regulariser (mean distance to the nearest gallery embedding); ignored without one."""
    time_budget: float | None = 60.0
    """Wall-clock seconds of optimisation (None = run all ``iterations``)."""
    iterations: int | None = None
    """Maximal number of steps (dense) or rounds (scalable); None = only the time budget."""
    lr: float = 0.5
    """Step size of the heavy-ball update (per unit hinge weight)."""
    momentum: float = 0.9
    """Heavy-ball momentum (tangent space)."""
    gap: float = 0.02
    """Initial hinge gap below the current maximum (pairs within it repel)."""
    final_gap: float = 0.003
    """Hinge gap at the end of the budget (annealed linearly)."""
    init: str = "auto"
    """'auto', 'gallery', 'random' or 'code' (see the module docstring)."""
    dense_max: int = 40000
    """Largest N optimised with exact full Gram passes; above it the scalable (bucketed) mode runs."""
    chunk: int = 2048
    """Rows per Gram chunk (memory ≈ chunk × N floats)."""
    bucket_size: int = 2048
    """Scalable mode: points per bucket chunk."""
    gallery_every: int = 5
    """Recompute each point's nearest gallery embedding every this many steps."""
    max_step: float = 0.05
    """Trust region: no point moves more than this (chord length) in one step."""
    device: str = "cpu"
    """Torch device ('cuda' on a GPU machine)."""
    progress: bool = True
    """Show a progress bar."""


def _clip_rows(v: torch.Tensor, max_norm: float) -> torch.Tensor:
    n = v.norm(dim=1, keepdim=True)
    return v * (max_norm / n.clamp_min(max_norm))


def _nearest_gallery(x: torch.Tensor, gal: torch.Tensor, chunk: int = 8192) -> torch.Tensor:
    from synthfr.samplers._geometry import nearest_rows

    return nearest_rows(x, gal, chunk)[1]


def _pull(x: torch.Tensor, target: torch.Tensor, eps: float = 0.05) -> torch.Tensor:
    """Gradient of the (smoothed) Euclidean distance sqrt(||x - g||² + eps²) with respect to x: a unit vector
    away from g far from it, fading to 0 at g (no oscillation around the target)."""
    d = x - target
    return d / (d.pow(2).sum(1, keepdim=True) + eps * eps).sqrt()


def _code_pays(n: int, dim: int, scalable: bool = False) -> bool:
    """Use the algebraic code when its certified bound is within 1.5× the Welch bound (where the dense optimiser
    cannot do much better), and always in the scalable regime (where it beats any affordable optimisation)."""
    from synthfr.samplers._codes import code_bound
    from synthfr.samplers._geometry import welch_bound

    b = code_bound(dim, n)
    w = welch_bound(n, dim)
    return b is not None and (scalable or (w > 0 and b <= 1.5 * w))


def init_points(n: int, dim: int, gallery: torch.Tensor | None, seed: int, init: str, device,
                scalable: bool = False) -> tuple[torch.Tensor, str]:
    """Starting points for the HyperFace family ('auto', 'gallery', 'random', 'code')."""
    from synthfr.samplers._codes import gold_code

    if init == "auto":
        init = "gallery" if gallery is not None else ("code" if _code_pays(n, dim, scalable) else "random")
    gen = torch.Generator().manual_seed(derive_seed(seed, "hyperface-init"))
    if init == "gallery":
        if gallery is None:
            raise ValueError("init='gallery' needs a gallery (--gallery EMB.npy)")
        g = gallery.cpu()
        idx = torch.randperm(g.shape[0], generator=gen)[:n]
        if n > g.shape[0]:
            idx = torch.cat([idx, torch.randint(g.shape[0], (n - g.shape[0],), generator=gen)])
        noise = torch.randn(n, dim, generator=gen) / math.sqrt(dim)
        noise[: g.shape[0]] *= 1e-3  # distinct gallery points: a tiny jitter; repeated ones (n > G): a real spread
        noise[g.shape[0]:] *= 0.1
        x = g[idx] + noise
    elif init == "random":
        x = torch.randn(n, dim, generator=gen)
    elif init == "code":
        x = gold_code(n, dim, derive_seed(seed, "hyperface-code"))
    else:
        raise ValueError(f"init must be 'auto', 'gallery', 'random' or 'code', got {init!r}")
    return normalize(x.float()).to(device), init


@torch.no_grad()
def _dense_grad(x: torch.Tensor, delta: float, chunk: int) -> tuple[torch.Tensor, float, float, int]:
    """Hinge repulsion ``Σ_j relu(c_ij − δ) x_j`` for every row, plus the max cosine, Σ weights and #pairs.

    The Gram matrix (which decides the max and the hinge) is float32; the weights-times-X product only sets a
    step direction and runs in bfloat16 on CPU (about twice as fast there).
    """
    n = x.shape[0]
    g = torch.empty_like(x)
    low = x.device.type == "cpu" and x.shape[1] >= 256
    xl = x.to(torch.bfloat16) if low else x
    m, wsum, active = -2.0, 0.0, 0
    for a in range(0, n, chunk):
        G = x[a:a + chunk] @ x.T
        r = torch.arange(G.shape[0], device=x.device)
        G[r, r + a] = -2.0
        m = max(m, float(G.max()))
        G.sub_(delta).clamp_(min=0.0)
        wsum += float(G.sum())
        active += int((G > 0).sum())
        g[a:a + chunk] = (G.to(torch.bfloat16) @ xl).float() if low else G @ x
    return g, m, wsum, active // 2


@torch.no_grad()
def _max_cos(x: torch.Tensor, chunk: int) -> float:
    m = -2.0
    for a in range(0, x.shape[0], chunk):
        G = x[a:a + chunk] @ x.T
        r = torch.arange(G.shape[0], device=x.device)
        G[r, r + a] = -2.0
        m = max(m, float(G.max()))
    return m


@REGISTRY.register("hyperface")
class HyperFaceSampler(Sampler):
    """synthfr's fast HyperFace packer: exact chunked hinge repulsion (dense) or LSH-bucketed (10^5–10^6)."""

    Config = HyperFaceConfig

    def _sample(self, n: int, dim: int, gallery: np.ndarray | None, seed: int) -> tuple[np.ndarray, dict[str, Any]]:
        cfg = self.config
        dev = torch.device(cfg.device)
        gal = as_tensor(gallery, dev) if gallery is not None else None
        x, init = init_points(n, dim, gal, seed, cfg.init, dev, scalable=n > cfg.dense_max)
        alpha = float(cfg.alpha) if gal is not None else 0.0
        if n <= cfg.dense_max:
            x, st = self._dense(x, gal, alpha, seed)
        elif init == "code" and alpha == 0.0:
            # bucketed hinge steps cannot lower a code's certified (and attained by many pairs) maximum, and
            # pairs outside the buckets would be unchecked: keep the certified code
            st = {"mode": "scalable-code", "rounds": 0, "note": "certified algebraic code kept as is"}
        else:
            x, st = self._scalable(x, gal, alpha, seed)
        st["init"] = init
        st["alpha_used"] = alpha
        return x.cpu().numpy(), st

    # -------------------------------------------------------------------------------------------------
    def _progress(self, it: int, t0: float) -> float:
        cfg = self.config
        fr = 0.0
        if cfg.time_budget:
            fr = max(fr, (time.perf_counter() - t0) / cfg.time_budget)
        if cfg.iterations:
            fr = max(fr, it / cfg.iterations)
        if not cfg.time_budget and not cfg.iterations:
            raise ValueError("give hyperface a --time-budget or --iterations")
        return fr

    def _dense(self, x: torch.Tensor, gal: torch.Tensor | None, alpha: float, seed: int):
        cfg = self.config
        n = x.shape[0]
        t0 = time.perf_counter()
        v = torch.zeros_like(x)
        _, m, _, _ = _dense_grad(x, 2.0, cfg.chunk)
        start_max = m
        best_m, best_x = m, x.clone()
        nn_idx = _nearest_gallery(x, gal) if (gal is not None and alpha > 0) else None
        it = 0
        bar = None
        if cfg.progress:
            from tqdm import tqdm

            bar = tqdm(total=100, desc="hyperface (dense)", unit="%")
        history = []
        while True:
            fr = self._progress(it, t0)
            if fr >= 1.0:
                break
            gap = cfg.gap * (1.0 - fr) + cfg.final_gap * fr
            delta = m - gap
            g, m, wsum, active = _dense_grad(x, delta, cfg.chunk)
            if m < best_m:
                best_m, best_x = m, x.clone()
            if nn_idx is not None:
                if it % cfg.gallery_every == 0:
                    nn_idx = _nearest_gallery(x, gal)
                g = g + (alpha * wsum / n) * _pull(x, gal[nn_idx])
            g = tangent(g, x)
            v.mul_(cfg.momentum).add_(g)
            x = normalize(x - _clip_rows(cfg.lr * v, cfg.max_step))
            v = tangent(v, x)
            it += 1
            if it % 10 == 0:
                history.append([round(time.perf_counter() - t0, 2), it, m])
            if bar is not None:
                bar.n = min(100, int(fr * 100))
                bar.set_postfix(max_cos=f"{m:.4f}", best=f"{best_m:.4f}", pairs=active)
                bar.refresh()
        # final exact evaluation of the last iterate; with a regulariser the last iterate is returned (it
        # optimises the joint objective), without one the best separated iterate seen
        m = _max_cos(x, cfg.chunk)
        if nn_idx is not None or m < best_m:
            best_m, best_x = m, x
        if bar is not None:
            bar.close()
        return best_x, {"mode": "dense", "steps": it, "start_max_cos": start_max, "history": history,
                        "optim_seconds": time.perf_counter() - t0}

    def _scalable(self, x: torch.Tensor, gal: torch.Tensor | None, alpha: float, seed: int):
        cfg = self.config
        n, dim = x.shape
        t0 = time.perf_counter()
        gen = torch.Generator().manual_seed(derive_seed(seed, "hyperface-lsh"))
        est = sampled_pair_stats(x, k=min(2000, n), seed=seed, device=x.device)
        start_est = est["max_cos"]
        nbuckets = max(2, int(2 ** round(math.log2(max(n / cfg.bucket_size, 2)))))
        it = 0
        bar = None
        if cfg.progress:
            from tqdm import tqdm

            bar = tqdm(total=100, desc="hyperface (scalable, LSH buckets)", unit="%")
        history = []
        nn_idx = None
        rounds_pushed = 0
        while True:
            fr = self._progress(it, t0)
            if fr >= 1.0:
                break
            # threshold from the sampled nearest-neighbour distribution: push the upper part of it
            q = float(np.quantile(est["nn_cos"], 0.5))
            delta = q
            proj = torch.randn(dim, nbuckets // 2, generator=gen).to(x.device)
            h = x @ proj
            code = torch.cat([h, -h], 1).argmax(1)
            order = torch.argsort(code)
            if gal is not None and alpha > 0 and it % cfg.gallery_every == 0:
                nn_idx = torch.as_tensor(cross_nn(x, gal, device=x.device)[1], device=x.device)
            wsum_total = 0.0
            for a in range(0, n, cfg.bucket_size):
                idx = order[a:a + cfg.bucket_size]
                xb = x[idx]
                G = xb @ xb.T
                G.fill_diagonal_(-2.0)
                G.sub_(delta).clamp_(min=0.0)
                ws = float(G.sum())
                wsum_total += ws
                g = G @ xb
                if nn_idx is not None:
                    g = g + (alpha * ws / len(idx)) * _pull(xb, gal[nn_idx[idx]])
                g = tangent(g, xb)
                x[idx] = normalize(xb - _clip_rows(cfg.lr * g, cfg.max_step))
            rounds_pushed += 1
            it += 1
            if it % 5 == 0:
                est = sampled_pair_stats(x, k=min(2000, n), seed=seed + it, device=x.device)
                history.append([round(time.perf_counter() - t0, 2), it, est["max_cos"]])
            if bar is not None:
                bar.n = min(100, int(fr * 100))
                bar.set_postfix(est_max=f"{est['max_cos']:.4f}", rounds=it)
                bar.refresh()
        if bar is not None:
            bar.close()
        return x, {"mode": "scalable-lsh", "rounds": it, "buckets": nbuckets, "start_max_cos_sampled": start_est,
                   "history": history, "optim_seconds": time.perf_counter() - t0}
