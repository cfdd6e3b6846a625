"""HyperFace's Algorithms 1 and 2 (Shahreza & Marcel), implemented faithfully as baselines.

Both minimise ``max_{i≠j} cos(x_i, x_j) + alpha × mean_i min_g d(x_i, g)`` with Adam (lr 0.01, multiplied by
0.75 every 5,000 iterations), renormalising every updated point after each step, starting from gallery
embeddings (random points without a gallery, when the regulariser is dropped). ``d`` is the cosine distance
``1 − cos(x_i, g)`` (the paper's); ``regularizer="euclidean"`` uses ``||x_i − g||`` instead (a named option).

* Algorithm 1 (``hyperface-alg1``): full batch; each step's separation term is the single closest pair;
  100,000 iterations by default (the paper's).
* Algorithm 2 (``hyperface-alg2``): each step draws a random mini-batch of ``batch_size`` points and optimises
  only them (closest pair inside the batch, regulariser over the batch). Rows outside the batch never move:
  Adam's state is kept per row (:class:`RowAdam`, a row-sparse Adam like ``torch.optim.SparseAdam``) and a
  row's moments, step count and value change only in steps where the batch's loss has a gradient for it (the
  closest pair, plus every batch row when the gallery regulariser is on). One optimiser over the whole matrix
  keeps moving every row on stale momentum (issue 14: 9 of 12 rows moved at one step were outside the batch,
  and the result ended worse than random points); so does a per-row state that still steps batch rows without
  a gradient: rows that fled the same neighbour keep drifting towards the same direction and collide
  (measured: N = 10,000, D = 512, b = 1,000, from max cos 0.267 to 0.354 after 300 steps, against 0.228 when
  only rows with a gradient step).

The max and the nearest gallery points are found without autograd (chunked matmuls); the loss is then built
on the selected pair / points, which gives exactly the same (sub)gradient as autograd through the full max.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch

from synthfr.samplers import REGISTRY
from synthfr.samplers._base import Sampler
from synthfr.samplers.geometry import as_tensor, normalize
from synthfr.samplers.hyperface import _nearest_gallery, init_points

__all__ = ["HyperFacePaperConfig", "RowAdam", "HyperFaceAlg1", "HyperFaceAlg2"]


@dataclass
class HyperFacePaperConfig:
    alpha: float = 0.5
    """Weight of the gallery regulariser (mean distance of each point to its nearest gallery embedding)."""
    regularizer: str = "cosine"
    """Distance of the regulariser: 'cosine' (1 − cos, the paper's) or 'euclidean' (||x − g||, synthfr's former
    default)."""
    lr: float = 0.01
    """Adam learning rate (paper: 0.01)."""
    lr_decay: float = 0.75
    """Learning-rate factor applied every ``lr_step`` iterations (paper: 0.75)."""
    lr_step: int = 5000
    """Iterations between learning-rate decays (paper: 5,000)."""
    iterations: int | None = 100000
    """Number of optimisation steps (paper: 100,000; None = only the time budget)."""
    time_budget: float | None = None
    """Stop after this many wall-clock seconds (None = run all iterations)."""
    batch_size: int = 1000
    """Algorithm 2 only: mini-batch size b."""
    init: str = "auto"
    """'auto' (gallery if given, else random), 'gallery', 'random' or 'code'."""
    chunk: int = 4096
    """Rows per chunk of the max-cosine search."""
    device: str = "cpu"
    """Torch device."""
    progress: bool = True
    """Show a progress bar."""


class RowAdam:
    """Adam (torch's update rule, betas 0.9/0.999, eps 1e-8) with the state kept per row of an N×D matrix.

    :meth:`step` updates the rows ``rows`` only: their first/second moments, their own step counts (bias
    correction) and their values; every other row — value and state — stays exactly as it is. Updating all rows
    every step is plain Adam (tests check both).
    """

    def __init__(self, n: int, dim: int, lr: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 device: Any = "cpu"):
        self.lr = float(lr)
        self.b1, self.b2 = betas
        self.eps = eps
        self.m = torch.zeros(n, dim, device=device)
        self.v = torch.zeros(n, dim, device=device)
        self.t = torch.zeros(n, dtype=torch.long, device=device)

    @torch.no_grad()
    def step(self, x: torch.Tensor, rows: torch.Tensor | None, grad: torch.Tensor) -> None:
        """``x[rows] -= Adam step`` for ``grad`` (len(rows)×D; ``rows=None``: all rows, ``grad`` N×D)."""
        if rows is None:
            m, v, t = self.m, self.v, self.t
            m.mul_(self.b1).add_(grad, alpha=1 - self.b1)
            v.mul_(self.b2).addcmul_(grad, grad, value=1 - self.b2)
            t += 1
        else:
            t = self.t[rows] + 1
            m = self.m[rows].mul_(self.b1).add_(grad, alpha=1 - self.b1)
            v = self.v[rows].mul_(self.b2).addcmul_(grad, grad, value=1 - self.b2)
            self.m[rows], self.v[rows], self.t[rows] = m, v, t
        tf = t.to(x.dtype)[:, None]
        bc1 = 1 - self.b1 ** tf
        bc2 = 1 - self.b2 ** tf
        upd = (self.lr / bc1) * m / (v.sqrt() / bc2.sqrt() + self.eps)
        if rows is None:
            x.sub_(upd)
        else:
            x[rows] = x[rows] - upd


@torch.no_grad()
def _closest_pair(x: torch.Tensor, chunk: int) -> tuple[int, int, float]:
    best, bi, bj = -2.0, 0, 1
    for a in range(0, x.shape[0], chunk):
        G = x[a:a + chunk] @ x.T
        r = torch.arange(G.shape[0], device=x.device)
        G[r, r + a] = -2.0
        m = float(G.max())
        if m > best:
            k = int(G.argmax())
            best, bi, bj = m, a + k // G.shape[1], k % G.shape[1]
    return bi, bj, best


class _HyperFacePaper(Sampler):
    Config = HyperFacePaperConfig
    stochastic = False
    #: test hook: called after every step with (iteration, updated batch rows or None, the points)
    on_step: Callable[[int, torch.Tensor | None, torch.Tensor], None] | None = None

    def _loss(self, xb: torch.Tensor, i: int, j: int, gal: torch.Tensor | None, nn: torch.Tensor | None,
              alpha: float) -> torch.Tensor:
        loss = (xb[i] * xb[j]).sum()
        if nn is not None:
            g = gal[nn]
            if self.config.regularizer == "cosine":
                loss = loss + alpha * (1 - (xb * g).sum(1)).mean()
            else:
                loss = loss + alpha * (xb - g).norm(dim=1).mean()
        return loss

    def _sample(self, n: int, dim: int, gallery: np.ndarray | None, seed: int) -> tuple[np.ndarray, dict[str, Any]]:
        cfg = self.config
        if not cfg.iterations and not cfg.time_budget:
            raise ValueError("give --iterations or --time-budget")
        if cfg.regularizer not in ("cosine", "euclidean"):
            raise ValueError(f"regularizer must be 'cosine' (the paper's) or 'euclidean', got {cfg.regularizer!r}")
        dev = torch.device(cfg.device)
        gal = as_tensor(gallery, dev) if gallery is not None else None
        init = cfg.init
        if init == "auto":
            init = "gallery" if gal is not None else "random"
        x0, init = init_points(n, dim, gal, seed, init, dev)
        alpha = float(cfg.alpha) if gal is not None else 0.0
        x = normalize(x0.clone())
        opt = RowAdam(n, dim, cfg.lr, device=dev)
        gen = torch.Generator().manual_seed(seed)
        b = min(cfg.batch_size, n)
        t0 = time.perf_counter()
        it = 0
        bar = None
        total = cfg.iterations or 0
        if cfg.progress:
            from tqdm import tqdm

            bar = tqdm(total=total or None, desc=self.registry_name, unit="it")
        history = []
        while True:
            if cfg.iterations and it >= cfg.iterations:
                break
            if cfg.time_budget and time.perf_counter() - t0 >= cfg.time_budget:
                break
            opt.lr = cfg.lr * cfg.lr_decay ** (it // cfg.lr_step)  # StepLR
            sub = torch.randperm(n, generator=gen)[:b].to(dev) if self.stochastic else None
            with torch.no_grad():
                xs = x if sub is None else x[sub]
                i, j, m = _closest_pair(xs, cfg.chunk)
                nn = _nearest_gallery(xs, gal) if alpha > 0 else None
            xb = xs.clone().requires_grad_(True)
            (grad,) = torch.autograd.grad(self._loss(xb, i, j, gal, nn, alpha), xb)
            if sub is not None:  # only the batch rows the loss reaches take a step (row-sparse Adam)
                hit = (grad != 0).any(1)
                sub, grad = sub[hit], grad[hit]
            opt.step(x, sub, grad)
            with torch.no_grad():  # renormalise the updated rows only (the others are untouched, bit for bit)
                if sub is None:
                    x = normalize(x)
                else:
                    x[sub] = normalize(x[sub])
            it += 1
            if self.on_step is not None:
                self.on_step(it, sub, x)
            if it % 100 == 0:
                history.append([round(time.perf_counter() - t0, 2), it, m])
            if bar is not None:
                bar.update(1)
                if it % 20 == 0:
                    bar.set_postfix(max_cos=f"{m:.4f}")
        if bar is not None:
            bar.close()
        return x.cpu().numpy(), {"steps": it, "init": init, "alpha_used": alpha, "regularizer": cfg.regularizer,
                                 "history": history, "optim_seconds": time.perf_counter() - t0}


@REGISTRY.register("hyperface-alg1")
class HyperFaceAlg1(_HyperFacePaper):
    """HyperFace Algorithm 1 (faithful): Adam on closest pair + alpha × gallery distance, full batch."""


@REGISTRY.register("hyperface-alg2")
class HyperFaceAlg2(_HyperFacePaper):
    """HyperFace Algorithm 2 (faithful): Algorithm 1 on a random mini-batch of size b each step; only the batch
    moves (per-row Adam state)."""

    stochastic = True
