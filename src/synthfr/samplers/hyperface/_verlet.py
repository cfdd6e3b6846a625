"""Verlet mode (N > ``pairs_max``, e.g. 10^6, the default there): **one** exact listing pass, then neighbour lists
kept valid by bookkeeping instead of further passes, and a *certified* all-pairs maximum.

Why one exact pass and not hashing: the pairs that set the maximum of 10^6 uniform points in 512-D have cosines
of 0.2–0.3, i.e. they are barely correlated, and locality-sensitive hashing finds them only ~17× more often
than random pairs per unit of work (measured, docs/benchmarks.md "Packing at scale"): a list holding nearly all
of them costs more in hash tables than one all-pairs pass in bfloat16 (≈ 2.6·10^14 multiply-adds at 10^6,
about 25 minutes on 2 CPU cores at their bf16 peak, seconds on a GPU). The pass is blockwise (memory: one
block), and reads each Gram block through its tile maxima (``amax`` over 64-column tiles is nearly free; only
tiles above the threshold are searched), so it runs at the matrix-multiply rate.

After the pass every pair above the list threshold ``t`` is listed; every other pair had a bf16 cosine ≤ ``t``,
so an exact cosine ≤ ``t + ε`` (``ε``: the rigorous rounding bound of the copy that was multiplied,
:class:`GramCopy`: int8 with one scale on CPUs, 25 % faster than bfloat16 here; bfloat16 on GPUs). The optimiser is the
pairs mode's ratcheting hinge on the list (:func:`hinge_steps`), which also adds every moving row's step lengths
to ``path[i]``. Since ``|cos(x_i', x_j') − cos(x_i, x_j)| ≤ |x_i' − x_i| + |x_j' − x_j|``, an unlisted pair can
have risen to at most ``t + ε + path[i] + path[j]``. Rows whose path exceeds ``r0`` (half the room between
``t + ε`` and the list's maximum) are re-scanned against all rows (``|movers| × N`` products, not N²), which
lists any pair they have approached and resets their path. The run ends with a certificate: the all-pairs
maximum is at most ``max(list maximum, t + ε + the two largest paths)`` — an upper bound, reported as
``certified_max_cos`` beside the exact list maximum.
"""
from __future__ import annotations

import math

import torch

from synthfr.samplers.hyperface._common import (TILE, Bar, Budget, gram_margin, list_threshold, low_dtype,
                                                nearest_gallery, split_keys, tile_hits, upper_blocks)
from synthfr.samplers.hyperface._pairs import hinge_steps, pair_cos

#: pairs this far below the hinge floor take part in a round's steps (a Verlet skin)
SKIN = 0.01
class GramCopy:
    """The low-precision copy of the points that the listing pass and the re-scans multiply: float32 (the points
    themselves), bfloat16, or int8 with one global scale ``s`` (``round(s·x)``; int8 products accumulate exactly
    in int32, and on this CPU run about 25 % faster than bfloat16 ones, measured). :meth:`block` returns a Gram
    block, :meth:`level` a cosine threshold in its units, and :attr:`margin` rigorously bounds
    ``|entry / s² − cosine|`` for every pair: for int8, with ``δ_i = x_i − q_i/s`` measured per row,
    ``|q_i·q_j/s² − x_i·x_j| ≤ |δ_i|(1 + |δ_j|) + |δ_j| ≤ 2e + e²`` (e the largest ``|δ_i|``)."""

    def __init__(self, x: torch.Tensor, kind: str):
        self.x, self.kind = x, kind
        n = x.shape[0]
        if kind == "int8":
            amax = max(float(x[a:a + 65536].abs().max()) for a in range(0, n, 65536))
            self.s = 127.0 / amax
            self.q = torch.empty(x.shape, dtype=torch.int8, device=x.device)
            self.err = torch.empty(n, device=x.device)
            self.update(torch.arange(n, device=x.device))
        elif kind in ("bfloat16", "float16"):
            self.s, self.l = 1.0, x.to(getattr(torch, kind))
        elif kind == "float32":
            self.s, self.l = 1.0, x  # always current: nothing to update
        else:
            raise ValueError(f"verlet_dtype must be 'auto', 'int8', 'bfloat16' or 'float32', got {kind!r}")
        self.low = -(2 ** 31) if kind == "int8" else -2.0  # the fill that masks an entry

    @property
    def margin(self) -> float:
        if self.kind == "int8":
            e = float(self.err.max())
            return 2 * e + e * e
        return gram_margin(self.l.dtype, self.x.shape[1])

    def level(self, t: float) -> float | int:
        return math.floor(t * self.s * self.s) if self.kind == "int8" else t

    def rows(self, idx) -> torch.Tensor:
        return (self.q if self.kind == "int8" else self.l)[idx]

    def block(self, a: torch.Tensor, b: int, w: int, out: torch.Tensor | None = None) -> torch.Tensor:
        # into a reused buffer: a fresh 100 MB block per product costs as much in page faults as the product
        if self.kind == "int8":
            return torch._int_mm(a, self.q[b:b + w].T, out=out) if out is not None else torch._int_mm(a, self.q[b:b + w].T)
        rhs = self.l[b:b + w].T
        return torch.matmul(a, rhs, out=out) if out is not None else a @ rhs

    def update(self, rows: torch.Tensor, chunk: int = 65536) -> None:
        """Re-quantise ``rows`` from the (moved) points."""
        if self.kind == "float32":
            return
        for a in range(0, len(rows), chunk):
            r = rows[a:a + chunk]
            xr = self.x[r]
            if self.kind == "int8":
                q = (xr * self.s).round_().clamp_(-127, 127)
                self.err[r] = (xr - q / self.s).norm(dim=1)
                self.q[r] = q.to(torch.int8)
            else:
                self.l[r] = xr.to(self.l.dtype)


def _block_buffer(gc: GramCopy, rows: int, cols: int) -> torch.Tensor:
    dtype = torch.int32 if gc.kind == "int8" else gc.l.dtype
    return torch.empty(rows, cols, dtype=dtype, device=gc.x.device)


def _as_gram(x) -> GramCopy:
    if isinstance(x, GramCopy):
        return x
    return GramCopy(x, "float32" if x.dtype == torch.float32 else str(x.dtype).replace("torch.", ""))


@torch.no_grad()
def scan_upper(xl, t: float, rows: int = 2048, cols: int = 16384, stop=None, on_rows=None
               ) -> tuple[torch.Tensor, int]:
    """Sorted keys ``i·N + j`` (i < j) of every pair whose Gram entry (a tensor's own precision, or a
    :class:`GramCopy`) exceeds ``t``: one blockwise pass over the upper triangle. ``stop()`` is asked before each
    row block (the pass may end early: the second value is the number of rows whose pairs were all seen);
    ``on_rows(done)`` reports progress."""
    gc = _as_gram(xl)
    n = gc.x.shape[0]
    dev = gc.x.device
    lev = gc.level(t)
    cols = max(TILE, cols - cols % TILE)
    buf = _block_buffer(gc, rows, cols)
    keys = []
    done = 0

    def block(a: int, b: int, w: int) -> torch.Tensor:
        xa = gc.rows(slice(a, a + rows))
        return gc.block(xa, b, w, out=buf[:xa.shape[0], :w] if w == cols else None)

    for a, b, G in upper_blocks(n, rows, cols, block, gc.low, dev, stop):
        r, c = tile_hits(G, lev)
        if len(r):
            keys.append((r + a) * n + (c + b))
        if b + cols >= n:  # the row block's last column block: all its pairs are seen
            done = min(n, a + rows)
            if on_rows is not None:
                on_rows(done)
    if not keys:
        return torch.empty(0, dtype=torch.long, device=dev), done
    return torch.sort(torch.cat(keys)).values, done


@torch.no_grad()
def scan_rows(xl, idx: torch.Tensor, t: float, rows: int = 2048, cols: int = 16384) -> torch.Tensor:
    """Keys ``min·N + max`` of every pair (i in ``idx``, j ≠ i anywhere) whose Gram entry exceeds ``t`` (unsorted;
    a pair of two rows of ``idx`` appears twice)."""
    gc = _as_gram(xl)
    n = gc.x.shape[0]
    lev = gc.level(t)
    cols = max(TILE, cols - cols % TILE)
    buf = _block_buffer(gc, rows, cols)
    keys = []
    for a in range(0, len(idx), rows):
        ri = idx[a:a + rows]
        q = gc.rows(ri)
        for b in range(0, n, cols):
            w = min(cols, n - b)
            G = gc.block(q, b, w, out=buf[:len(ri), :w] if w == cols else None)
            own = (ri >= b) & (ri < b + G.shape[1])
            if own.any():
                r = own.nonzero(as_tuple=True)[0]
                G[r, ri[r] - b] = gc.low
            r, c = tile_hits(G, lev)
            if len(r):
                i, j = ri[r], c + b
                keys.append(torch.minimum(i, j) * n + torch.maximum(i, j))
    if not keys:
        return torch.empty(0, dtype=torch.long, device=gc.x.device)
    return torch.cat(keys)


def gram_kind(cfg_kind: str, x: torch.Tensor, gram_dtype: str) -> str:
    """'auto': int8 on CPU for D ≥ 256 (where torch has int8 matrix products), else the Gram precision of
    ``gram_dtype``."""
    if cfg_kind != "auto":
        return cfg_kind
    if x.device.type == "cpu" and x.shape[1] >= 256 and hasattr(torch, "_int_mm"):
        return "int8"
    return str(low_dtype(gram_dtype, x)).replace("torch.", "")


def _top2(path: torch.Tensor) -> float:
    if len(path) < 2:
        return 0.0
    return float(torch.topk(path, 2).values.sum())


def run_verlet(cfg, x: torch.Tensor, gal: torch.Tensor | None, alpha: float, seed: int):
    """Verlet mode (module docstring); ``x`` is optimised in place and returned with the run's statistics.

    Rounds of hinge steps work on the listed pairs within a gap of the top. The list cannot be pushed below a
    quarter of its depth above its threshold ``t`` (``floor_min``): below that, pairs that were unlisted could
    be the higher ones. When the list is done, another listing pass (with a threshold re-measured on the moved
    points) runs if the budget allows one; otherwise the rows that moved are re-scanned, and the run ends when
    they bring nothing new above the floor."""
    n, d = x.shape
    budget = Budget(cfg.time_budget, cfg.iterations, cfg.clock)
    xl = GramCopy(x, gram_kind(cfg.verlet_dtype, x, cfg.gram_dtype))
    eps = xl.margin
    bar = Bar(cfg.progress, "hyperface (Verlet lists)")
    rounds = steps = rescans = rescanned = passes = 0
    path = torch.zeros(n, device=x.device)
    history = []
    nn_idx = None
    m_list = float("nan")
    st = {}  # the current list: threshold, keys, rows, columns, exact cosines, floor

    def listing_pass(t: float, stop=None) -> bool:
        """A full pass at threshold ``t``; False if the budget cut it short."""
        nonlocal passes
        t0 = budget.elapsed()
        keys, done = scan_upper(xl, t, int(cfg.verlet_rows), int(cfg.verlet_cols), stop=stop,
                                on_rows=lambda k: bar.show(budget.fraction(rounds),
                                                           listed=f"{(1 - (1 - k / n) ** 2):.0%}"))
        seen = n * n / 2 - (n - done) ** 2 / 2
        st["pass_s"] = budget.elapsed() - t0
        st["row_s"] = st["pass_s"] * n / max(seen, 1.0)  # seconds to scan one row against all rows, measured
        st["t"], st["keys"] = t, keys
        st["pi"], st["pj"] = split_keys(keys, n)
        st["c"] = pair_cos(x, st["pi"], st["pj"])
        m = float(st["c"].max()) if len(keys) else t
        st["floor_min"] = t + 0.25 * (m - t)
        path.zero_()
        passes += 1
        history.append([round(budget.elapsed(), 2), steps, m, int(len(keys)), -1])
        return done == n

    def rescan(movers: torch.Tensor) -> None:
        # every pair of a mover above t joins the list (with its exact cosine) and the movers' paths restart
        nonlocal rescans, rescanned
        new = torch.unique(scan_rows(xl, movers, st["t"], int(cfg.verlet_rows), int(cfg.verlet_cols)))
        new = new[~torch.isin(new, st["keys"])]
        ni, nj = split_keys(new, n)
        st["keys"] = torch.cat([st["keys"], new])
        st["pi"], st["pj"] = torch.cat([st["pi"], ni]), torch.cat([st["pj"], nj])
        st["c"] = torch.cat([st["c"], pair_cos(x, ni, nj)])
        path[movers] = 0.0
        rescans += 1
        rescanned += len(movers)

    def r0() -> float:
        # a row whose path exceeds r0 could have met an unlisted pair above the list's maximum
        return max(0.0, (m_list - st["t"] - eps) / 2)

    def reserve() -> float:
        # time kept for the final re-scan of the movers (at most a tenth of the budget: past that the certificate
        # is left looser rather than the optimisation shorter)
        cost = st["row_s"] * float((path > r0()).sum())
        return min(cost, 0.1 * budget.time_budget if budget.time_budget else cost) + 1.0

    # 1. the first listing pass, at the threshold that leaves about verlet_pairs pairs per identity above it
    # (if the budget cannot pay for the whole pass, it stops at 90 % of it and the rest optimises the pairs
    # found so far: better points, but no certificate)
    complete = listing_pass(list_threshold(x, cfg.verlet_pairs, seed), stop=lambda: budget.fraction(0) >= 0.9)
    first_pass_s = st["pass_s"]
    post0 = budget.elapsed()

    def gap_at(s: int) -> float:
        # the hinge gap is annealed over the budget left after the first pass
        total = (budget.time_budget - post0) if budget.time_budget else None
        fr = min(1.0, (budget.elapsed() - post0) / total) if total and total > 0 else budget.fraction(rounds)
        return cfg.gap * (1.0 - fr) + cfg.final_gap * fr

    def out_of_time() -> bool:
        return budget.fraction(rounds) >= 1.0 or budget.left() < reserve()

    while len(st["keys"]):
        keep = st["c"] > st["t"]  # an exact cosine ≤ t may leave the list (its later bound: t + the paths)
        for k in ("keys", "pi", "pj", "c"):
            st[k] = st[k][keep]
        if len(st["keys"]) == 0:
            break
        c = st["c"]
        m_list = float(c.max())
        if out_of_time():
            break
        if m_list <= st["floor_min"] + 0.1 * gap_at(steps):
            # the list is done: a new pass if one fits (threshold re-measured on the moved points), else re-scan
            # the rows that moved and stop when that lists nothing above the floor
            if budget.left() > 1.5 * st["pass_s"] + reserve():
                t_new = min(list_threshold(x, cfg.verlet_pairs, seed + passes), m_list - 0.01)
                complete = listing_pass(t_new)
                rounds += 1  # a pass counts as a round (iteration budgets end)
                continue
            movers = (path > r0()).nonzero(as_tuple=True)[0]
            if len(movers) == 0 or budget.left() < st["row_s"] * len(movers):
                break
            before = len(st["keys"])
            rescan(movers)
            if len(st["keys"]) == before or float(st["c"][before:].max()) <= st["floor_min"] + 0.1 * gap_at(steps):
                break
            continue
        if gal is not None and alpha > 0 and rounds % cfg.gallery_every == 0:
            nn_idx = nearest_gallery(x, gal)
        # this round works on the pairs within one hinge gap (plus a skin) of the top, a small part of the list
        floor = max(st["floor_min"], m_list - gap_at(steps))
        hot = c > floor - SKIN
        before = path.clone()
        t_round = budget.elapsed()
        steps, _ = hinge_steps(cfg, x, st["pi"][hot], st["pj"][hot], floor=floor, max_steps=int(cfg.verlet_steps),
                               gap_at=gap_at, stop=lambda s: out_of_time(), steps=steps, gal=gal, nn_idx=nn_idx,
                               alpha=alpha, path=path)
        moved_mask = path > before
        moved = moved_mask.nonzero(as_tuple=True)[0]
        if len(moved):
            xl.update(moved)
            eps = max(eps, xl.margin)  # (int8: a moved row may round worse; the bound keeps the largest)
        touch = moved_mask[st["pi"]] | moved_mask[st["pj"]]  # the cached cosines that changed
        c[touch] = pair_cos(x, st["pi"][touch], st["pj"][touch])
        # re-scan the rows that have moved far enough to matter, against all rows, when that costs at most what
        # the steps just took and fits in the budget (the 200k acceptance run overran by 59 s before this check)
        movers = (path > r0()).nonzero(as_tuple=True)[0]
        cost = st["row_s"] * len(movers)
        if len(movers) and cost <= budget.elapsed() - t_round and cost <= budget.left():
            rescan(movers)
        rounds += 1
        history.append([round(budget.elapsed(), 2), steps, m_list, int(len(st["keys"])), int(len(movers))])
        bar.show(budget.fraction(rounds), list_max=f"{m_list:.4f}", pairs=len(st["keys"]), movers=len(movers))
    if len(st["keys"]):
        # the final re-scan of the rows that moved past r0, as far as the budget allows (largest paths first:
        # they loosen the certificate most)
        movers = (path > r0()).nonzero(as_tuple=True)[0]
        room = int(max(0.0, budget.left()) / st["row_s"]) if budget.time_budget else len(movers)
        if len(movers) and room > 0:
            rescan(movers[torch.argsort(path[movers], descending=True)[:room]])
    bar.close()
    t = st["t"]
    out = {"mode": "verlet", "rounds": rounds, "steps": steps, "passes": passes, "pass_seconds": first_pass_s,
           "pass_complete": complete, "list_threshold": t, "gram_margin": eps,
           "list_pairs": int(len(st["keys"])), "rescans": rescans, "rescanned_rows": rescanned, "history": history,
           "optim_seconds": budget.elapsed()}
    if len(st["keys"]):
        out["neighbour_list_max_cos"] = float(pair_cos(x, st["pi"], st["pj"]).max())
    if complete:
        # every pair is either listed (measured exactly above) or was at most t + ε when last scanned and has
        # moved apart by at most the sum of its two rows' paths since
        bound = t + eps + _top2(path)
        out["unlisted_bound"] = bound
        out["certified_max_cos"] = max(out.get("neighbour_list_max_cos", -1.0), bound)
        out["certificate"] = ("all-pairs maximum ≤ max(exact neighbour-list maximum, list threshold + Gram "
                              "rounding margin + the two largest path lengths since each row's last scan)")
    return x, out
