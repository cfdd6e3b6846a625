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
(a retraction). One step costs one chunked Gram pass plus one chunked weight-times-X product, both in bfloat16
on CPU (``gram_dtype``); the best iterate is returned, its maximum re-measured in float32.

**Pairs mode** (``dense_max`` < N ≤ ``pairs_max``, e.g. 2·10^5): neighbour lists, as in molecular dynamics. An
exact blockwise pass lists every pair above a threshold a little below the maximum (about ``list_pairs × N``
pairs), then ``list_steps`` hinge steps run on the listed pairs only (gathers and scatter-adds, not N² products);
the next pass re-lists and measures the true maximum.

**Scalable mode** (N > ``pairs_max``, e.g. 10^6): no all-pairs pass at all. Each round buckets the points
by cross-polytope locality-sensitive hashing (argmax of ±random projections), so near pairs tend to share a
bucket, and runs the same hinge step inside every bucket (chunks of ≤ ``bucket_size``). Thresholds come from a
sampled neighbour estimate.

**Initialisation** (``init``): ``gallery`` (random gallery embeddings + tiny noise, as HyperFace), ``random``
(uniform), ``code`` (an algebraic Gold/dual-BCH spherical code with a *certified* maximal cosine, randomly
rotated, available for D = 2^m or 2^m − 1 with m odd, e.g. 128 and 512; a synthfr extra, never the default) or
``auto`` (gallery if one is given, else uniform random points, as the HyperFace paper).
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
    gap: float = 0.05
    """Initial hinge gap below the current maximum (pairs within it repel)."""
    final_gap: float = 0.003
    """Hinge gap at the end of the budget (annealed linearly)."""
    init: str = "auto"
    """'auto' (gallery when given, else uniform random), 'gallery', 'random' or 'code' (module docstring)."""
    dense_max: int = 40000
    """Largest N optimised with an exact full Gram pass every step (dense mode)."""
    pairs_max: int = 400000
    """Largest N optimised with exact neighbour lists (pairs mode); above it the LSH-bucketed mode runs."""
    gram_dtype: str = "auto"
    """Precision of the Gram products that pick the repelling pairs: 'auto' (bfloat16 on CPU for D ≥ 256,
    about 2.4x faster there; float32 elsewhere), 'float32' or 'bfloat16'. Reported maxima are always float32."""
    list_pairs: float = 10.0
    """Pairs mode: neighbour-list size, in pairs per identity (sets the list threshold)."""
    list_steps: int = 150
    """Pairs mode: at most this many optimisation steps on one neighbour list before an exact pass rebuilds it."""
    pairs_max_step: float = 0.01
    """Pairs mode: trust region per step (smaller than the dense one: unlisted pairs must not jump the list)."""
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


def _low_dtype(cfg_dtype: str, x: torch.Tensor) -> torch.dtype:
    if cfg_dtype == "auto":
        return torch.bfloat16 if (x.device.type == "cpu" and x.shape[1] >= 256) else torch.float32
    if cfg_dtype not in ("float32", "bfloat16"):
        raise ValueError(f"gram_dtype must be 'auto', 'float32' or 'bfloat16', got {cfg_dtype!r}")
    return getattr(torch, cfg_dtype)


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


def init_points(n: int, dim: int, gallery: torch.Tensor | None, seed: int, init: str, device
                ) -> tuple[torch.Tensor, str]:
    """Starting points for the HyperFace family ('auto', 'gallery', 'random', 'code')."""
    from synthfr.samplers._codes import gold_code

    if init == "auto":
        init = "gallery" if gallery is not None else "random"
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
def _dense_grad(x: torch.Tensor, delta: float, chunk: int, dtype: torch.dtype = torch.float32
                ) -> tuple[torch.Tensor, float, float, int]:
    """Hinge repulsion ``Σ_j relu(c_ij − δ) x_j`` for every row, plus the max cosine, Σ weights and #pairs.

    ``dtype`` is the precision of both products. bfloat16 (the CPU default for D ≥ 256) rounds cosines by
    ~2e-4, far below the hinge gaps, so it only picks the pairs and sets the step direction; the maximum the
    optimiser finally reports is re-measured in float32.
    """
    n = x.shape[0]
    g = torch.empty_like(x)
    xl = x.to(dtype) if dtype != x.dtype else x
    m, wsum, active = -2.0, 0.0, 0
    for a in range(0, n, chunk):
        G = (xl[a:a + chunk] @ xl.T).float()
        r = torch.arange(G.shape[0], device=x.device)
        G[r, r + a] = -2.0
        m = max(m, float(G.max()))
        G.sub_(delta).clamp_(min=0.0)
        wsum += float(G.sum())
        active += int((G > 0).sum())
        g[a:a + chunk] = (G.to(dtype) @ xl).float()
    return g, m, wsum, active // 2


@torch.no_grad()
def _collect_pairs(x: torch.Tensor, t: float, dtype: torch.dtype, rows: int = 4096, cols: int = 32768,
                   cap: int | None = None) -> tuple[torch.Tensor, torch.Tensor, float, float]:
    """Every pair ``i < j`` with cosine above ``t`` (one blockwise pass over the upper triangle, in ``dtype``),
    the largest cosine seen and the threshold finally used. With ``cap``, whenever more than ``cap`` pairs have
    been found the threshold rises to keep the highest ``cap // 2`` (pairs already dropped are below it), so
    memory stays bounded: one ``rows × cols`` block plus at most ``cap`` pairs."""
    n = x.shape[0]
    xl = x.to(dtype) if dtype != x.dtype else x
    fi, fj, fv = [], [], []
    count = 0
    m = -2.0
    for a in range(0, n, rows):
        xa = xl[a:a + rows]
        for b in range(a, n, cols):
            G = xa @ xl[b:b + cols].T
            if b == a:  # the block holding the diagonal: keep j > i only
                ii = torch.arange(G.shape[0], device=x.device).unsqueeze(1)
                jj = torch.arange(G.shape[1], device=x.device).unsqueeze(0)
                G.masked_fill_(jj <= ii, -2.0)
            m = max(m, float(G.max()))
            nz = (G > t).nonzero()
            if len(nz):
                fi.append(nz[:, 0] + a)
                fj.append(nz[:, 1] + b)
                fv.append(G[nz[:, 0], nz[:, 1]].float())
                count += len(nz)
            if cap is not None and count > cap:
                i, j, v = torch.cat(fi), torch.cat(fj), torch.cat(fv)
                top = torch.topk(v, cap // 2)
                t = float(top.values[-1])
                keep = v > t
                fi, fj, fv = [i[keep]], [j[keep]], [v[keep]]
                count = int(keep.sum())
    if not fi:
        e = torch.empty(0, dtype=torch.long, device=x.device)
        return e, e, m, t
    return torch.cat(fi), torch.cat(fj), m, t


def _pair_cos(x: torch.Tensor, i: torch.Tensor, j: torch.Tensor, chunk: int = 1 << 18) -> torch.Tensor:
    """float32 cosines of the listed pairs (chunked gathers: bounded memory)."""
    out = torch.empty(len(i), device=x.device)
    for a in range(0, len(i), chunk):
        out[a:a + chunk] = (x[i[a:a + chunk]] * x[j[a:a + chunk]]).sum(1)
    return out


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
        x, init = init_points(n, dim, gal, seed, cfg.init, dev)
        alpha = float(cfg.alpha) if gal is not None else 0.0
        if n <= cfg.dense_max:
            x, st = self._dense(x, gal, alpha, seed)
        elif n <= cfg.pairs_max:
            x, st = self._pairs(x, gal, alpha, seed)
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
        low = _low_dtype(cfg.gram_dtype, x)
        _, m, _, _ = _dense_grad(x, 2.0, cfg.chunk, low)
        start_max = _max_cos(x, cfg.chunk)
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
            g, m, wsum, active = _dense_grad(x, delta, cfg.chunk, low)
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
        # final exact (float32) evaluation; with a regulariser the last iterate is returned (it optimises the
        # joint objective), without one the better separated of the last and the best iterate seen
        m = _max_cos(x, cfg.chunk)
        if nn_idx is None and best_x is not x:
            best_m = _max_cos(best_x, cfg.chunk)
        if nn_idx is not None or m <= best_m:
            best_m, best_x = m, x
        if bar is not None:
            bar.close()
        return best_x, {"mode": "dense", "steps": it, "start_max_cos": start_max, "history": history,
                        "optim_seconds": time.perf_counter() - t0}

    def _pairs(self, x: torch.Tensor, gal: torch.Tensor | None, alpha: float, seed: int):
        """Neighbour-list mode (dense_max < N ≤ pairs_max), the Verlet lists of molecular dynamics: an exact
        blockwise pass lists every pair above a threshold below the maximum (the first threshold from a sample of
        random pairs so that about ``list_pairs × N`` pairs are listed; later ones as deep below the latest
        maximum as the previous list reached; at most ``2 × list_pairs × N`` pairs are kept), then up to
        ``list_steps`` cheap hinge steps run on the listed pairs only (gathers and scatter-adds instead of N²
        products), never pushing below a floor a quarter of the list's depth above its threshold. The next pass
        re-lists and measures the true maximum; the best measured iterate is returned (the last one with a
        gallery regulariser), and a final pass always fits inside the time budget."""
        cfg = self.config
        n = x.shape[0]
        t0 = time.perf_counter()
        low = _low_dtype(cfg.gram_dtype, x)
        gen = torch.Generator().manual_seed(derive_seed(seed, "hyperface-pairs"))
        # first list threshold: the quantile of random pairs' cosines that leaves ~list_pairs × N pairs above it
        k = 1_000_000
        ri = torch.randint(n, (k,), generator=gen).to(x.device)
        rj = torch.randint(n, (k,), generator=gen).to(x.device)
        keep = ri != rj
        c_rand = _pair_cos(x, ri[keep], rj[keep])
        frac = min(1.0, cfg.list_pairs * n / (n * (n - 1) / 2))
        t_list = float(torch.quantile(c_rand, 1.0 - frac)) if frac < 1 else -1.0
        v = torch.zeros_like(x)
        best_m, best_x = 2.0, x.clone()
        start_max = None
        steps = passes = 0
        pass_s = 0.0
        history = []
        nn_idx = None
        bar = None
        if cfg.progress:
            from tqdm import tqdm

            bar = tqdm(total=100, desc="hyperface (neighbour lists)", unit="%")
        while True:
            tp = time.perf_counter()
            target = int(cfg.list_pairs * n)
            pi, pj, m_pass, t_list = _collect_pairs(x, t_list, low, cap=2 * target)
            pass_s = time.perf_counter() - tp
            passes += 1
            start_max = m_pass if start_max is None else start_max
            if m_pass < best_m:
                best_m, best_x = m_pass, x.clone()
            history.append([round(time.perf_counter() - t0, 2), steps, m_pass, int(len(pi))])
            depth = max(m_pass - t_list, 1e-3)
            # the hinge never reaches below a quarter of the list's depth above its threshold: an unlisted pair
            # (below t_list at listing time) would have to gain that much to matter, which small steps in D
            # dimensions (moves mostly orthogonal to any other point) rarely do; the next pass catches any
            floor = t_list + 0.25 * (m_pass - t_list)
            if gal is not None and alpha > 0:
                nn_idx = _nearest_gallery(x, gal)
            fr = self._progress(steps, t0)
            left = (cfg.time_budget - (time.perf_counter() - t0)) if cfg.time_budget else float("inf")
            if fr >= 1.0 or left < 1.5 * pass_s + 1.0:
                break
            m = m_pass
            steps_before = steps
            v.zero_()  # momentum belongs to one list
            for _ in range(cfg.list_steps):
                fr = self._progress(steps, t0)
                left = (cfg.time_budget - (time.perf_counter() - t0)) if cfg.time_budget else float("inf")
                if fr >= 1.0 or left < 1.2 * pass_s + 1.0 or len(pi) == 0:
                    break
                c = _pair_cos(x, pi, pj)
                m = float(c.max())
                gap = cfg.gap * (1.0 - fr) + cfg.final_gap * fr
                delta = max(m - gap, floor)
                if m <= floor + 0.1 * gap:  # the listed pairs are done: re-list
                    break
                w = c.sub_(delta).clamp_(min=0.0)
                act = w > 0
                ai, aj, aw = pi[act], pj[act], w[act].unsqueeze(1)
                g = torch.zeros_like(x)
                for a in range(0, len(ai), 1 << 18):  # chunked: memory ~ 2^18 × D, not #pairs × D
                    ci, cj, cw = ai[a:a + (1 << 18)], aj[a:a + (1 << 18)], aw[a:a + (1 << 18)]
                    g.index_add_(0, ci, cw * x[cj])
                    g.index_add_(0, cj, cw * x[ci])
                if nn_idx is not None:
                    g += (alpha * float(aw.sum()) / n) * _pull(x, gal[nn_idx])
                g = tangent(g, x)
                v.mul_(cfg.momentum).add_(g)
                x = normalize(x - _clip_rows(cfg.lr * v, cfg.pairs_max_step))
                v = tangent(v, x)
                steps += 1
                if bar is not None:
                    bar.n = min(100, int(fr * 100))
                    bar.set_postfix(list_max=f"{m:.4f}", best=f"{best_m:.4f}", pairs=len(pi))
                    bar.refresh()
            # the next list reaches as deep below the latest (listed) maximum as this one did below its pass's
            # maximum, deeper if this list gave no step (the pass's cap keeps the size bounded either way)
            t_list = m - depth * (2.0 if steps == steps_before else 1.0)
        if nn_idx is not None:  # with a regulariser: the last measured iterate (joint objective)
            best_x = x
        if bar is not None:
            bar.close()
        return best_x, {"mode": "pairs", "steps": steps, "passes": passes, "start_max_cos": start_max,
                        "pass_seconds": pass_s, "history": history, "optim_seconds": time.perf_counter() - t0}

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
