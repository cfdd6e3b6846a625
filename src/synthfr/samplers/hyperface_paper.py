"""HyperFace's Algorithms 1 and 2 (Shahreza & Marcel), implemented faithfully as baselines.

Both minimise ``max_{i≠j} cos(x_i, x_j) + alpha × mean_i min_g ||x_i − g||`` with Adam (lr 0.01, multiplied by
0.75 every 5,000 iterations), renormalising every point after each step, starting from gallery embeddings
(random points without a gallery, when the regulariser is dropped).

* Algorithm 1 (``hyperface-alg1``): full batch; each step's separation term is the single closest pair.
* Algorithm 2 (``hyperface-alg2``): each step uses a random mini-batch of ``batch_size`` points (closest pair
  inside the batch, regulariser over the batch).

The max and the nearest gallery points are found without autograd (chunked matmuls); the loss is then built
on the selected pair / points, which gives exactly the same (sub)gradient as autograd through the full max.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from synthfr.samplers import REGISTRY
from synthfr.samplers._base import Sampler
from synthfr.samplers._geometry import as_tensor, normalize
from synthfr.samplers.hyperface import _nearest_gallery, init_points


@dataclass
class HyperFacePaperConfig:
    alpha: float = 0.5
    """Weight of the gallery regulariser (mean Euclidean distance to the nearest gallery embedding)."""
    lr: float = 0.01
    """Adam learning rate (paper: 0.01)."""
    lr_decay: float = 0.75
    """Learning-rate factor applied every ``lr_step`` iterations (paper: 0.75)."""
    lr_step: int = 5000
    """Iterations between learning-rate decays (paper: 5,000)."""
    iterations: int | None = 20000
    """Number of optimisation steps (None = only the time budget)."""
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

    def _sample(self, n: int, dim: int, gallery: np.ndarray | None, seed: int) -> tuple[np.ndarray, dict[str, Any]]:
        cfg = self.config
        if not cfg.iterations and not cfg.time_budget:
            raise ValueError("give --iterations or --time-budget")
        dev = torch.device(cfg.device)
        gal = as_tensor(gallery, dev) if gallery is not None else None
        init = cfg.init
        if init == "auto":
            init = "gallery" if gal is not None else "random"
        x0, init = init_points(n, dim, gal, seed, init, dev)
        alpha = float(cfg.alpha) if gal is not None else 0.0
        x = torch.nn.Parameter(x0.clone())
        opt = torch.optim.Adam([x], lr=cfg.lr)
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=cfg.lr_step, gamma=cfg.lr_decay)
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
            with torch.no_grad():
                if self.stochastic:
                    sub = torch.randperm(n, generator=gen)[:b].to(dev)
                else:
                    sub = None
                xs = x.detach() if sub is None else x.detach()[sub]
                i, j, m = _closest_pair(xs, cfg.chunk)
                if sub is not None:
                    i, j = int(sub[i]), int(sub[j])
                rows = torch.arange(n, device=dev) if sub is None else sub
                nn = _nearest_gallery(x.detach()[rows], gal) if alpha > 0 else None
            loss = (x[i] * x[j]).sum()
            if nn is not None:
                loss = loss + alpha * (x[rows] - gal[nn]).norm(dim=1).mean()
            opt.zero_grad(set_to_none=False)
            loss.backward()
            opt.step()
            sched.step()
            with torch.no_grad():
                x.data = normalize(x.data)
            it += 1
            if it % 100 == 0:
                history.append([round(time.perf_counter() - t0, 2), it, m])
            if bar is not None:
                bar.update(1)
                if it % 20 == 0:
                    bar.set_postfix(max_cos=f"{m:.4f}")
        if bar is not None:
            bar.close()
        return x.detach().cpu().numpy(), {"steps": it, "init": init, "alpha_used": alpha, "history": history,
                                          "optim_seconds": time.perf_counter() - t0}


@REGISTRY.register("hyperface-alg1")
class HyperFaceAlg1(_HyperFacePaper):
    """HyperFace Algorithm 1 (faithful): Adam on closest pair + alpha × gallery distance, full batch."""


@REGISTRY.register("hyperface-alg2")
class HyperFaceAlg2(_HyperFacePaper):
    """HyperFace Algorithm 2 (faithful): Algorithm 1 on a random mini-batch of size b each step."""

    stochastic = True
