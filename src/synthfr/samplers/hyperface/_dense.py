"""Dense mode: one exact chunked Gram pass per step (N ≤ ``dense_max``), then an optional neighbour-list polish."""
from __future__ import annotations

import torch

from synthfr.samplers.geometry import normalize, tangent
from synthfr.samplers.hyperface._common import Bar, Budget, clip_rows, low_dtype, max_cos, nearest_gallery, pull


@torch.no_grad()
def dense_grad(x: torch.Tensor, delta: float, chunk: int, dtype: torch.dtype = torch.float32
               ) -> tuple[torch.Tensor, float, float, int]:
    """Hinge repulsion ``Σ_j relu(c_ij − δ) x_j`` for every row, plus the max cosine, Σ weights and #pairs.

    ``dtype`` is the precision of both products. bfloat16 (the CPU default for D ≥ 256) rounds cosines by
    ~2e-4, far below the hinge gaps, so it only picks the pairs and sets the step direction; the maximum the
    optimiser finally reports is re-measured in float32.
    """
    n = x.shape[0]
    g = torch.empty_like(x)
    xl = x.to(dtype) if dtype != x.dtype else x
    # one product buffer and one output buffer for all chunks (no per-chunk allocation: fewer page faults)
    buf = torch.empty(min(chunk, n), n, dtype=dtype, device=x.device)
    out = torch.empty(min(chunk, n), x.shape[1], dtype=dtype, device=x.device)
    m, wsum, active = -2.0, 0.0, 0
    for a in range(0, n, chunk):
        rows = min(chunk, n - a)
        G = torch.matmul(xl[a:a + rows], xl.T, out=buf[:rows])
        r = torch.arange(rows, device=x.device)
        G[r, r + a] = -2.0
        m = max(m, float(G.max()))
        G.sub_(delta).clamp_(min=0.0)
        wsum += float(G.sum(dtype=torch.float32))
        active += int(torch.count_nonzero(G))
        g[a:a + rows] = torch.matmul(G, xl, out=out[:rows])
    return g, m, wsum, active // 2


def gap_schedule(cfg, fr: float) -> float:
    """The hinge gap after a fraction ``fr`` of the budget: linear from ``gap`` to ``final_gap``, or geometric
    (``gap_schedule: geometric``: more of the budget at small gaps)."""
    kind = getattr(cfg, "gap_schedule", "linear")
    if kind == "geometric":
        return cfg.gap * (cfg.final_gap / cfg.gap) ** fr
    if kind != "linear":
        raise ValueError(f"gap_schedule must be 'linear' or 'geometric', got {kind!r}")
    return cfg.gap * (1.0 - fr) + cfg.final_gap * fr


def run_dense(cfg, x: torch.Tensor, gal: torch.Tensor | None, alpha: float, seed: int):
    """Ratcheting-hinge steps with exact Gram passes for the first ``1 − polish`` of the budget; without a gallery
    regulariser the rest polishes the tightest pairs on neighbour lists (:func:`run_pairs`, cheap steps)."""
    from synthfr.samplers.hyperface._pairs import run_pairs

    n = x.shape[0]
    polish = float(cfg.polish) if (gal is None or alpha == 0) else 0.0
    budget = Budget(cfg.time_budget * (1 - polish) if cfg.time_budget else None,
                    int(cfg.iterations * (1 - polish)) if cfg.iterations else None, cfg.clock)
    v = torch.zeros_like(x)
    low = low_dtype(cfg.gram_dtype, x)
    _, m, _, _ = dense_grad(x, 2.0, cfg.chunk, low)
    start_max = max_cos(x, cfg.chunk)
    best_m, best_x = m, x.clone()
    nn_idx = nearest_gallery(x, gal) if (gal is not None and alpha > 0) else None
    it = 0
    bar = Bar(cfg.progress, "hyperface (dense)")
    history = []
    while True:
        fr = budget.fraction(it)
        if fr >= 1.0:
            break
        gap = gap_schedule(cfg, fr)
        delta = m - gap
        g, m, wsum, active = dense_grad(x, delta, cfg.chunk, low)
        if m < best_m:
            best_m, best_x = m, x.clone()
        if nn_idx is not None:
            if it % cfg.gallery_every == 0:
                nn_idx = nearest_gallery(x, gal)
            g = g + (alpha * wsum / n) * pull(x, gal[nn_idx])
        g = tangent(g, x)
        v.mul_(cfg.momentum).add_(g)
        x = normalize(x - clip_rows(cfg.lr * v, cfg.max_step))
        v = tangent(v, x)
        it += 1
        if it % 10 == 0:
            history.append([round(budget.elapsed(), 2), it, m])
        bar.show(fr, max_cos=f"{m:.4f}", best=f"{best_m:.4f}", pairs=active)
    bar.close()
    # final exact (float32) evaluation; with a regulariser the last iterate is returned (it optimises the
    # joint objective), without one the better separated of the last and the best iterate seen
    m = max_cos(x, cfg.chunk)
    if nn_idx is None and best_x is not x:
        best_m = max_cos(best_x, cfg.chunk)
    if nn_idx is not None or m <= best_m:
        best_m, best_x = m, x
    st = {"mode": "dense", "steps": it, "start_max_cos": start_max, "history": history,
          "optim_seconds": budget.elapsed()}
    if polish > 0:
        # the polish continues the same gap schedule from where the dense phase left it
        left_t = cfg.time_budget - budget.elapsed() if cfg.time_budget else None
        left_it = cfg.iterations - it if cfg.iterations else None
        if (left_t is None or left_t > 1.0) and (left_it is None or left_it > 0):
            gap0 = cfg.gap * polish + cfg.final_gap * (1 - polish)
            x2, st2 = run_pairs(cfg, best_x, None, 0.0, seed, time_budget=left_t, iterations=left_it, gap=gap0,
                                desc="hyperface (polish)")
            st.update(mode="dense+polish", dense_steps=it, steps=it + st2["steps"], polish_steps=st2["steps"],
                      polish_passes=st2["passes"], polish_history=st2["history"], dense_max_cos=best_m,
                      optim_seconds=st["optim_seconds"] + st2["optim_seconds"])
            best_x = x2
    return best_x, st
