"""Pairs mode: exact neighbour lists (Verlet lists), and the hinge optimiser on a list that the LSH mode shares."""
from __future__ import annotations

import warnings
from typing import Callable

import torch

from synthfr.samplers.hyperface._common import Bar, Budget, low_dtype, nearest_gallery, pull, tile_hits, upper_blocks
from synthfr.utils.seeds import derive_seed

#: rows per chunk of the in-place tangent projection (no full-size temporary)
PAIR_CHUNK = 1 << 16


@torch.no_grad()
def collect_pairs(x: torch.Tensor, t: float, dtype: torch.dtype, rows: int = 4096, cols: int = 32768,
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
    buf = torch.empty(rows, cols, dtype=xl.dtype, device=x.device)  # reused: no page faults per block

    def block(a: int, b: int, w: int) -> torch.Tensor:
        xa = xl[a:a + rows]
        return torch.matmul(xa, xl[b:b + w].T, out=buf[:xa.shape[0], :w]) if w == cols else xa @ xl[b:b + w].T

    for a, b, G in upper_blocks(n, rows, cols, block, -2.0, x.device):
        m = max(m, float(G.max()))
        r, c = tile_hits(G, t)
        if len(r):
            fi.append(r + a)
            fj.append(c + b)
            fv.append(G[r, c].float())
            count += len(r)
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


def _csr_pattern(i: torch.Tensor, j: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """CSR layout of the entries ``(i, j)`` (distinct) of an n × n matrix: row pointers, columns, and the order
    that sorts the entries into it (``values[order[k]]`` is CSR value k)."""
    order = torch.argsort(i * n + j)
    crow = torch.zeros(n + 1, dtype=torch.long, device=i.device)
    crow[1:] = torch.cumsum(torch.bincount(i, minlength=n), 0)
    return crow, j[order], order


def _csr(crow: torch.Tensor, col: torch.Tensor, values: torch.Tensor, n: int) -> torch.Tensor:
    with warnings.catch_warnings():  # torch calls its CSR support "beta" (a one-time UserWarning)
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(crow, col, values, (n, n), check_invariants=False)


def _sddmm(x: torch.Tensor, crow: torch.Tensor, col: torch.Tensor) -> torch.Tensor:
    """``<x_i, x_j>`` for every stored entry of a CSR pattern (a sampled product: no N × N, no gathered copies)."""
    pat = _csr(crow, col, torch.zeros(len(col), dtype=x.dtype, device=x.device), x.shape[0])
    return torch.sparse.sampled_addmm(pat, x, x.T, beta=0.0).values()


@torch.no_grad()
def pair_cos(x: torch.Tensor, i: torch.Tensor, j: torch.Tensor) -> torch.Tensor:
    """float32 cosines of the pairs ``(i[k], j[k])`` (repeats allowed), as one sampled sparse product over the
    distinct pairs (about 8x faster here than gathering both rows of every pair)."""
    if len(i) == 0:
        return torch.empty(0, device=x.device)
    n = x.shape[0]
    keys, inv = torch.unique(i * n + j, return_inverse=True)  # sorted: the CSR order
    ii, jj = keys // n, keys % n
    crow = torch.zeros(n + 1, dtype=torch.long, device=x.device)
    crow[1:] = torch.cumsum(torch.bincount(ii, minlength=n), 0)
    return _sddmm(x, crow, jj).float()[inv]


@torch.no_grad()
def hinge_steps(cfg, x: torch.Tensor, pi: torch.Tensor, pj: torch.Tensor, *, floor: float, max_steps: int,
                gap_at: Callable[[int], float], stop: Callable[[int], bool], steps: int,
                gal: torch.Tensor | None = None, nn_idx: torch.Tensor | None = None, alpha: float = 0.0,
                max_step: float | None = None, on_step: Callable[[int, float], None] | None = None,
                path: torch.Tensor | None = None) -> tuple[int, float]:
    """Up to ``max_steps`` ratcheting-hinge steps on the listed pairs only, **in place** on ``x``.

    Each step: float32 cosines of the listed pairs, ``δ = max(list max − gap, floor)``, weights ``cos − δ`` on the
    pairs above δ, repulsion ``W x`` with the symmetric sparse weight matrix ``W`` (CSR: both directions of every
    pair, one sampled product for the cosines and one sparse-dense product per step, instead of gathers and
    scatter-adds), gallery pull (with ``alpha``; every point), tangent heavy-ball step (momentum belongs to this
    list) with a trust region, renormalisation. Only the points that appear in the list move (without a
    regulariser), so the work and memory are those of the list's points, not of all N. Stops when
    ``stop(steps)`` says so or the list's maximum has come within a tenth of a gap of the floor (the list is
    done: the caller re-lists). Returns ``(steps, last list maximum)``.

    ``path`` (N floats, optional) gains each moving row's step lengths: an upper bound of how far the row has
    moved (a tangent step ``s`` followed by renormalisation moves a unit vector by a chord of at most ``|s|``),
    which the Verlet mode turns into a bound on every unlisted pair.
    """
    if len(pi) == 0:
        return steps, -2.0
    n = x.shape[0]
    u = None  # None: the steps work on x itself (every row has a slot; rows in no pair never move)
    xu, li, lj = x, pi, pj
    if gal is None or alpha <= 0:  # (with a regulariser every point is pulled towards the gallery)
        rows, inv = torch.unique(torch.cat([pi, pj]), return_inverse=True)
        if len(rows) <= n // 2:  # a compact copy of the listed rows; past half of N, x itself costs less memory
            u, li, lj = rows, inv[: len(pi)], inv[len(pi):]
            xu = x[u]
    m_rows = xu.shape[0]
    crow, col, _ = _csr_pattern(torch.cat([li, lj]), torch.cat([lj, li]), m_rows)  # W is symmetric
    # three buffers of the moving rows (points, momentum, gradient/step), updated in place: memory 3 × |rows| × D
    v = torch.zeros_like(xu)
    g = torch.empty_like(xu)
    trust = cfg.pairs_max_step if max_step is None else max_step
    moved = torch.zeros(m_rows, device=x.device) if path is not None else None
    m = m0 = -2.0
    for _ in range(max_steps):
        if stop(steps):
            break
        c = _sddmm(xu, crow, col)  # each pair twice (both directions)
        m = float(c.max())
        m0 = m if m0 == -2.0 else m0
        gap = gap_at(steps)
        delta = max(m - gap, floor)
        # the list is done once its maximum is within a tenth of (the gap, or the list's own height above the
        # floor when that is smaller: near the optimum the top pairs form a plateau thinner than the gap)
        if m <= floor + 0.1 * min(gap, m0 - floor):
            break
        w = c.sub_(delta).clamp_(min=0.0)
        torch.mm(_csr(crow, col, w, m_rows), xu, out=g)  # into g: no fresh rows × D block (page faults)
        if nn_idx is not None:
            g += (alpha * float(w.sum()) / 2 / n) * pull(xu, gal[nn_idx])
        _tangent_(g, xu)
        v.mul_(cfg.momentum).add_(g)
        torch.mul(v, cfg.lr, out=g)  # g now holds the step, clipped to the trust region
        g.mul_(trust / g.norm(dim=1, keepdim=True).clamp_min(trust))
        if moved is not None:
            moved += g.norm(dim=1)
        xu.sub_(g)
        xu.div_(xu.norm(dim=1, keepdim=True).clamp_min(1e-12))
        _tangent_(v, xu)
        steps += 1
        if on_step is not None:
            on_step(steps, m)
    if u is not None:
        x[u] = xu
    if path is not None:
        if u is None:
            path += moved
        else:
            path[u] += moved
    return steps, m


def _tangent_(g: torch.Tensor, x: torch.Tensor, chunk: int = PAIR_CHUNK) -> None:
    """In place: ``g ← g − (g·x) x`` per row (the tangent projection), in row chunks (no full-size temporary)."""
    for a in range(0, len(g), chunk):
        gc, xc = g[a:a + chunk], x[a:a + chunk]
        gc.addcmul_(xc, (gc * xc).sum(1, keepdim=True), value=-1.0)


def run_pairs(cfg, x: torch.Tensor, gal: torch.Tensor | None, alpha: float, seed: int, *,
              time_budget: float | None = -1.0, iterations: int | None = -1, gap: float | None = None,
              desc: str = "hyperface (neighbour lists)"):
    """Neighbour-list mode (dense_max < N ≤ pairs_max; also the dense mode's final polish), the Verlet lists of
    molecular dynamics: an exact blockwise pass lists every pair above a threshold below the maximum (the first
    threshold from a sample of random pairs so that about ``list_pairs × N`` pairs are listed; later ones as deep
    below the latest maximum as the previous list reached; at most ``2 × list_pairs × N`` pairs are kept), then
    up to ``list_steps`` cheap hinge steps run on the listed pairs only (gathers and scatter-adds instead of N²
    products), never pushing below a floor a quarter of the list's depth above its threshold. The next pass
    re-lists and measures the true maximum; the best measured iterate is returned (the last one with a gallery
    regulariser), and a final pass always fits inside the time budget.

    ``time_budget``/``iterations``/``gap`` override the config's (−1: the config's)."""
    n = x.shape[0]
    budget = Budget(cfg.time_budget if time_budget == -1.0 else time_budget,
                    cfg.iterations if iterations == -1 else iterations, cfg.clock)
    gap0 = cfg.gap if gap is None else gap
    low = low_dtype(cfg.gram_dtype, x)
    gen = torch.Generator().manual_seed(derive_seed(seed, "hyperface-pairs"))
    # first list threshold: the quantile of random pairs' cosines that leaves ~list_pairs × N pairs above it
    k = 1_000_000
    ri = torch.randint(n, (k,), generator=gen).to(x.device)
    rj = torch.randint(n, (k,), generator=gen).to(x.device)
    keep = ri != rj
    c_rand = pair_cos(x, ri[keep], rj[keep])
    frac = min(1.0, cfg.list_pairs * n / (n * (n - 1) / 2))
    t_list = float(torch.quantile(c_rand, 1.0 - frac)) if frac < 1 else -1.0
    x = x.clone()
    best_m, best_x = 2.0, x.clone()
    start_max = None
    steps = passes = 0
    pass_s = 0.0
    history = []
    nn_idx = None
    bar = Bar(cfg.progress, desc)

    def gap_at(s: int) -> float:
        fr = budget.fraction(s)
        return gap0 * (1.0 - fr) + cfg.final_gap * fr

    def stop(s: int) -> bool:
        return budget.fraction(s) >= 1.0 or budget.left() < 1.2 * pass_s + 1.0

    def on_step(s: int, m: float) -> None:
        bar.show(budget.fraction(s), list_max=f"{m:.4f}", best=f"{best_m:.4f}", pairs=len(pi))

    while True:
        tp = budget.elapsed()
        target = int(cfg.list_pairs * n)
        pi, pj, m_pass, t_list = collect_pairs(x, t_list, low, cap=2 * target)
        pass_s = budget.elapsed() - tp
        passes += 1
        start_max = m_pass if start_max is None else start_max
        if m_pass < best_m:
            best_m, best_x = m_pass, x.clone()
        history.append([round(budget.elapsed(), 2), steps, m_pass, int(len(pi))])
        depth = max(m_pass - t_list, 1e-3)
        # the hinge never reaches below a quarter of the list's depth above its threshold: an unlisted pair
        # (below t_list at listing time) would have to gain that much to matter, which small steps in D
        # dimensions (moves mostly orthogonal to any other point) rarely do; the next pass catches any
        floor = t_list + 0.25 * (m_pass - t_list)
        if gal is not None and alpha > 0:
            nn_idx = nearest_gallery(x, gal)
        if budget.fraction(steps) >= 1.0 or budget.left() < 1.5 * pass_s + 1.0:
            break
        steps_before = steps
        steps, m_last = hinge_steps(cfg, x, pi, pj, floor=floor, max_steps=cfg.list_steps, gap_at=gap_at, stop=stop,
                               steps=steps, gal=gal, nn_idx=nn_idx, alpha=alpha, on_step=on_step)
        # the next list reaches as deep below the latest (listed) maximum as this one did below its pass's
        # maximum, deeper if this list gave no step (the pass's cap keeps the size bounded either way)
        t_list = (m_last if m_last > -2.0 else m_pass) - depth * (2.0 if steps == steps_before else 1.0)
    if nn_idx is not None:  # with a regulariser: the last measured iterate (joint objective)
        best_x = x
    bar.close()
    return best_x, {"mode": "pairs", "steps": steps, "passes": passes, "start_max_cos": start_max,
                    "pass_seconds": pass_s, "history": history, "optim_seconds": budget.elapsed()}
