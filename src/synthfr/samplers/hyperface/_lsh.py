"""LSH neighbour-list mode (N > ``pairs_max``, e.g. 10^6): neighbour lists without any all-pairs pass.

A *table* hashes every point with cross-polytope LSH (per level: the argmax over ``±(x · r_k)`` for ``d``
Gaussian directions ``r_k``, i.e. the nearest of the 2d signed directions; the levels' codes concatenate), sorts
the points by code and computes the exact Gram block of each run of ``bucket_size`` consecutive points (batched,
in the Gram precision). Pairs above the list threshold ``t`` join the neighbour list, kept as sorted unique keys
``i·N + j`` (i < j). Near pairs share a code far more often than random ones (measured in 512-D: a pair with
cosine 0.25 shares a 1,024-bucket code about 9× as often as a random pair), and each table draws new
directions, so the list's recall of the pairs above ``t`` grows with the tables, while a table costs one pass of
N × ``bucket_size`` dot products instead of N².

A round = ``lsh_tables`` tables, then float32 cosines of the listed pairs (the list is pruned to the pairs
still above ``t`` and capped at ``2 × lsh_list_pairs × N`` by raising ``t``), then up to ``lsh_steps`` steps of the
pairs mode's ratcheting hinge on the list (:func:`hinge_steps`; only listed points move). The threshold ``t``
is where a sample of rows against all rows puts ``lsh_list_pairs`` pairs per identity above it, re-measured every
``lsh_refresh`` rounds (it only goes down).

Memory: the points (float32), a copy in the Gram precision, the list (two int64 per pair) and one batch of
``lsh_block`` Gram blocks; no N × N or N × chunk product.
"""
from __future__ import annotations

import torch

from synthfr.samplers.geometry import sampled_pair_stats
from synthfr.samplers.hyperface._common import Bar, Budget, list_threshold, low_dtype, nearest_gallery, split_keys
from synthfr.samplers.hyperface._pairs import hinge_steps, pair_cos
from synthfr.utils.seeds import derive_seed

#: pairs this far below the hinge floor at the start of a round take part in its steps (a Verlet skin)
LSH_SKIN = 0.01


@torch.no_grad()
def lsh_codes(xl: torch.Tensor, dims, gen: torch.Generator, rows: int = 1 << 16) -> torch.Tensor:
    """Cross-polytope codes of the rows of ``xl`` (one level per entry of ``dims``; directions drawn from ``gen``
    on the CPU, so a seed gives the same codes on every device)."""
    n, d = xl.shape
    dims = [int(k) for k in dims]
    proj = torch.randn(d, sum(dims), generator=gen).to(device=xl.device, dtype=xl.dtype)
    code = torch.empty(n, dtype=torch.long, device=xl.device)
    for a in range(0, n, rows):
        h = (xl[a:a + rows] @ proj).float()
        c = torch.zeros(h.shape[0], dtype=torch.long, device=xl.device)
        off = 0
        for k in dims:
            hk = h[:, off:off + k]
            off += k
            c = c * (2 * k) + torch.cat([hk, -hk], 1).argmax(1)
        code[a:a + rows] = c
    return code


@torch.no_grad()
def bucket_pairs(xl: torch.Tensor, order: torch.Tensor, t: float, bucket: int, block: int = 64
                 ) -> torch.Tensor:
    """Keys ``i·N + j`` (i < j) of every pair inside a run of ``bucket`` consecutive points of ``order`` whose
    cosine (in ``xl``'s precision) exceeds ``t`` (runs processed ``block`` at a time; unsorted, unique)."""
    n = xl.shape[0]
    keys = []
    nfull = n // bucket
    tri = torch.ones(bucket, bucket, dtype=torch.bool, device=xl.device).triu_(1)

    def emit(idx: torch.Tensor, mask: torch.Tensor) -> None:
        nz = mask.nonzero()
        if len(nz):
            i, j = idx[nz[:, 0], nz[:, 1]], idx[nz[:, 0], nz[:, 2]]
            keys.append(torch.minimum(i, j) * n + torch.maximum(i, j))

    for c0 in range(0, nfull, block):
        c1 = min(nfull, c0 + block)
        idx = order[c0 * bucket:c1 * bucket].view(c1 - c0, bucket)
        xb = xl[idx]
        g = torch.bmm(xb, xb.transpose(1, 2))
        emit(idx, (g > t) & tri)
    rest = order[nfull * bucket:]
    if len(rest) > 1:
        xb = xl[rest]
        g = xb @ xb.T
        emit(rest.unsqueeze(0), ((g > t) & tri[: len(rest), : len(rest)]).unsqueeze(0))
    if not keys:
        return torch.empty(0, dtype=torch.long, device=xl.device)
    return torch.cat(keys)


@torch.no_grad()
def lsh_table(xl: torch.Tensor, t: float, dims, bucket: int, gen: torch.Generator, block: int = 64) -> torch.Tensor:
    """One LSH table: codes, a stable sort by code, the pairs above ``t`` inside each run of ``bucket``."""
    code = lsh_codes(xl, dims, gen)
    order = torch.argsort(code, stable=True)
    return bucket_pairs(xl, order, t, bucket, block)


def lsh_dims(dims, n: int, bucket: int) -> tuple[int, ...]:
    """The cross-polytope levels: as given, or for 'auto' two levels of d projections each, with (2d)² ≈ N / bucket
    codes, so that a bucket holds about one run of ``bucket`` points (measured in 512-D: two levels of 64 find
    pairs at cosine 0.25 as often as one level of 512 followed by one of 8, at a quarter of the hashing cost)."""
    if dims == "auto" or dims is None:
        d = max(2, round((n / max(bucket, 1)) ** 0.5 / 2))
        return (d, d)
    return tuple(int(k) for k in dims)


def run_lsh(cfg, x: torch.Tensor, gal: torch.Tensor | None, alpha: float, seed: int):
    """LSH neighbour-list mode (module docstring); ``x`` is optimised in place and returned."""
    n = x.shape[0]
    budget = Budget(cfg.time_budget, cfg.iterations, cfg.clock)
    low = low_dtype(cfg.gram_dtype, x)
    gen = torch.Generator().manual_seed(derive_seed(seed, "hyperface-lsh"))
    xl = x.to(low) if low != x.dtype else x
    t = list_threshold(xl, cfg.lsh_list_pairs, seed)
    start_est = sampled_pair_stats(x, k=min(1000, n), seed=derive_seed(seed, "hyperface-lsh-start"),
                                   device=x.device)["max_cos"]
    cap = int(2 * cfg.lsh_list_pairs * n)
    dims = lsh_dims(cfg.lsh_dims, n, int(cfg.bucket_size))
    keys = torch.empty(0, dtype=torch.long, device=x.device)
    bar = Bar(cfg.progress, "hyperface (LSH neighbour lists)")
    history = []
    rounds = steps = tables = 0
    table_s = step_s = 0.0
    m_list = float("nan")
    nn_idx = None

    def gap_at(s: int) -> float:
        fr = budget.fraction(rounds)
        return cfg.gap * (1.0 - fr) + cfg.final_gap * fr

    def stop(s: int) -> bool:
        return budget.fraction(rounds) >= 1.0

    while budget.fraction(rounds) < 1.0:
        t0 = budget.elapsed()
        for _ in range(int(cfg.lsh_tables)):
            new = lsh_table(xl, t, dims, int(cfg.bucket_size), gen, int(cfg.lsh_block))
            keys = torch.cat([keys, new])
            tables += 1
            if budget.fraction(rounds) >= 1.0:
                break
        keys = torch.unique(keys)
        pi, pj = split_keys(keys, n)
        c = pair_cos(x, pi, pj)
        keep = c > t
        if int(keep.sum()) > cap:  # bounded memory: raise the threshold to keep the highest cap // 2
            t = float(torch.topk(c, cap // 2).values[-1])
            keep = c > t
        keys, pi, pj, c = keys[keep], pi[keep], pj[keep], c[keep]
        table_s += budget.elapsed() - t0
        if len(keys) == 0:
            rounds += 1
            continue
        m_list = float(c.max())
        if gal is not None and alpha > 0 and rounds % cfg.gallery_every == 0:
            nn_idx = nearest_gallery(x, gal)
        floor = t + 0.25 * (m_list - t)
        # only pairs within a skin below the floor take part in this round's steps (fewer moving rows: memory
        # and time); the others stay listed for later rounds
        hot = c > floor - LSH_SKIN
        t1 = budget.elapsed()
        steps, m_last = hinge_steps(cfg, x, pi[hot], pj[hot], floor=floor, max_steps=int(cfg.lsh_steps), gap_at=gap_at,
                                    stop=stop, steps=steps, gal=gal, nn_idx=nn_idx, alpha=alpha)
        step_s += budget.elapsed() - t1
        if xl is not x:
            xl.copy_(x)
        rounds += 1
        if rounds % int(cfg.lsh_refresh) == 0:
            # the cosine distribution moves as the optimiser works: re-measure where lsh_list_pairs pairs per
            # identity lie (never upwards: listed pairs that could climb back stay listed)
            t = min(t, list_threshold(xl, cfg.lsh_list_pairs, seed + rounds))
        # [seconds, round, list max (as the other modes: index 2 is the maximum), tables, steps, list size, threshold]
        history.append([round(budget.elapsed(), 2), rounds, m_list, tables, steps, int(len(keys)), t])
        bar.show(budget.fraction(rounds), list_max=f"{m_list:.4f}", pairs=len(keys), tables=tables)
    bar.close()
    # the certified part: float32 maximum over the final neighbour list (every listed pair measured exactly)
    if len(keys):
        pi, pj = split_keys(keys, n)
        list_max = float(pair_cos(x, pi, pj).max())
    else:
        list_max = float("nan")
    return x, {"mode": "lsh", "rounds": rounds, "tables": tables, "steps": steps, "list_pairs": int(len(keys)),
               "list_threshold": t, "neighbour_list_max_cos": list_max, "start_max_cos_sampled": start_est,
               "table_seconds": table_s, "step_seconds": step_s, "history": history,
               "optim_seconds": budget.elapsed()}
