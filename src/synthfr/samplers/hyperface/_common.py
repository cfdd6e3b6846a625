"""Pieces shared by the packer's modes: precision, trust region, gallery pull, initial points, budget, progress,
neighbour-list thresholds and pair keys."""
from __future__ import annotations

import math
import time
from typing import Any

import torch

from synthfr.samplers.geometry import nearest_rows, normalize
from synthfr.utils.seeds import derive_seed


def low_dtype(cfg_dtype: str, x: torch.Tensor) -> torch.dtype:
    """Precision of the Gram products that *pick* pairs ('auto': bfloat16 on CUDA, and on CPU for D ≥ 256, where
    AVX-512-bf16 makes it about 2.4x faster than float32; float32 otherwise). Reported maxima are float32."""
    if cfg_dtype == "auto":
        if x.device.type == "cuda" or (x.device.type == "cpu" and x.shape[1] >= 256):
            return torch.bfloat16
        return torch.float32
    if cfg_dtype not in ("float32", "bfloat16"):
        raise ValueError(f"gram_dtype must be 'auto', 'float32' or 'bfloat16', got {cfg_dtype!r}")
    return getattr(torch, cfg_dtype)


#: columns per tile whose maximum is read before the tile is searched
TILE = 64


def gram_margin(dtype: torch.dtype, dim: int) -> float:
    """A rigorous bound on ``|Gram entry in dtype − exact cosine|`` for unit vectors: inputs rounded to ``dtype``
    (relative error ``u`` each: ``2u + u²`` on the dot product by Cauchy–Schwarz), float32 accumulation
    (``dim · 2⁻²⁴``) and the output rounded back to ``dtype`` (``u``, the entry being at most 1)."""
    u = {torch.bfloat16: 2.0 ** -8, torch.float16: 2.0 ** -11}.get(dtype, 2.0 ** -24)
    return 3 * u + u * u + dim * 2.0 ** -24


@torch.no_grad()
def tile_hits(G: torch.Tensor, t: float, tile: int = TILE) -> tuple[torch.Tensor, torch.Tensor]:
    """Row and column indices of the entries of ``G`` above ``t``, in row-major order, found through the maxima of
    ``tile``-column tiles (a plain ``G > t`` scan costs a third of the product's time; the tile maxima almost
    nothing, and only the few tiles above ``t`` are searched)."""
    R, C = G.shape
    if C % tile or not G.is_contiguous():
        nz = (G > t).nonzero()
        return nz[:, 0], nz[:, 1]
    Gv = G.view(R, C // tile, tile)
    hit = (Gv.amax(-1) > t).nonzero()
    if len(hit) == 0:
        e = torch.empty(0, dtype=torch.long, device=G.device)
        return e, e
    sub = Gv[hit[:, 0], hit[:, 1]]
    nz = (sub > t).nonzero()
    return hit[nz[:, 0], 0], hit[nz[:, 0], 1] * tile + nz[:, 1]


def upper_blocks(n: int, rows: int, cols: int, block, low, device, stop=None):
    """Walk the upper triangle of an ``n × n`` Gram matrix block by block: yields ``(a, b, G)`` with ``G`` the
    product of rows ``a:a+rows`` and columns ``b:b+cols`` (``block(a, b, w)`` computes it, e.g. into a reused
    buffer), its entries on and below the diagonal set to ``low``. ``stop()`` is asked before each row block."""
    for a in range(0, n, rows):
        if stop is not None and stop():
            return
        ra = min(rows, n - a)
        for b in range(a, n, cols):
            w = min(cols, n - b)
            G = block(a, b, w)
            if b < a + ra:  # a block crossing the diagonal (any, when rows > cols): keep j > i only
                ii = torch.arange(a, a + ra, device=device).unsqueeze(1)
                jj = torch.arange(b, b + w, device=device).unsqueeze(0)
                G.masked_fill_(jj <= ii, low)
            yield a, b, G


def clip_rows(v: torch.Tensor, max_norm: float) -> torch.Tensor:
    n = v.norm(dim=1, keepdim=True)
    return v * (max_norm / n.clamp_min(max_norm))


def nearest_gallery(x: torch.Tensor, gal: torch.Tensor, chunk: int = 8192) -> torch.Tensor:
    return nearest_rows(x, gal, chunk)[1]


def pull(x: torch.Tensor, target: torch.Tensor, eps: float = 0.05) -> torch.Tensor:
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
        # generated in row blocks (same numbers as one call) so that 10^6 × 512 never needs a second full copy
        x = torch.empty(n, dim)
        for a in range(0, n, 1 << 16):
            blk = torch.randn(min(1 << 16, n - a), dim, generator=gen)
            x[a:a + len(blk)] = normalize(blk)
        return x.to(device), init
    elif init == "code":
        x = gold_code(n, dim, derive_seed(seed, "hyperface-code"))
    else:
        raise ValueError(f"init must be 'auto', 'gallery', 'random' or 'code', got {init!r}")
    return normalize(x.float()).to(device), init


CLOCKS = {"wall": time.perf_counter, "process": time.process_time}


class Budget:
    """Fraction of the budget spent (time and/or iterations) and seconds left, on the ``clock`` ('wall': elapsed
    seconds; 'process': CPU seconds of this process, all threads, so that a run on a shared machine gets the same
    work whatever else runs beside it)."""

    def __init__(self, time_budget: float | None, iterations: int | None, clock: str = "wall"):
        if not time_budget and not iterations:
            raise ValueError("give hyperface a --time-budget or --iterations")
        if clock not in CLOCKS:
            raise ValueError(f"clock must be 'wall' or 'process', got {clock!r}")
        self.time_budget, self.iterations = time_budget, iterations
        self.now = CLOCKS[clock]
        self.t0 = self.now()

    def elapsed(self) -> float:
        return self.now() - self.t0

    def fraction(self, it: int) -> float:
        fr = 0.0
        if self.time_budget:
            fr = max(fr, self.elapsed() / self.time_budget)
        if self.iterations:
            fr = max(fr, it / self.iterations)
        return fr

    def left(self) -> float:
        return (self.time_budget - self.elapsed()) if self.time_budget else float("inf")


class Bar:
    """A tqdm bar in per cent of the budget (or nothing when progress is off).

    It redraws only when the percentage moves or, for the post-fix figures, at most once a second (every 30 s
    into a redirected log), and a finished run closes at 100 % — an optimiser calls :meth:`show` thousands of
    times, and a log must not fill with redraws or end at "99/100"."""

    def __init__(self, on: bool, desc: str):
        import sys
        import time

        self.bar = None
        self._clock = time.monotonic
        self._last = -1e9
        self._every = 1.0 if getattr(sys.stderr, "isatty", lambda: False)() else 30.0
        if on:
            from tqdm import tqdm

            self.bar = tqdm(total=100, desc=desc, unit="%", mininterval=self._every)

    def show(self, fr: float, **post: Any) -> None:
        if self.bar is None:
            return
        n = min(100, int(fr * 100))
        now = self._clock()
        if n != self.bar.n or now - self._last >= self._every:
            self.bar.n = n
            self.bar.set_postfix(**post, refresh=False)
            self.bar.refresh()
            self._last = now

    def close(self, finished: bool = True) -> None:
        if self.bar is not None:
            if finished:
                self.bar.n = 100
                self.bar.refresh()
            self.bar.close()


@torch.no_grad()
def max_cos(x: torch.Tensor, chunk: int) -> float:
    """Exact float32 maximum cosine of two distinct rows (row chunks against all rows)."""
    m = -2.0
    for a in range(0, x.shape[0], chunk):
        G = x[a:a + chunk] @ x.T
        r = torch.arange(G.shape[0], device=x.device)
        G[r, r + a] = -2.0
        m = max(m, float(G.max()))
    return m


def split_keys(keys: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Pair keys ``i·n + j`` (sorted, deduplicated lists) back into their rows ``i`` and ``j``."""
    return keys // n, keys % n


@torch.no_grad()
def list_threshold(x: torch.Tensor, per_id: float, seed: int, rows: int = 256) -> float:
    """The cosine above which about ``per_id`` pairs per identity lie, from ``rows`` random rows against all rows
    (each row's top-k kept blockwise; in ``x``'s precision: the threshold only selects candidates)."""
    n = x.shape[0]
    k = max(8, int(8 * per_id))  # per row: rows with more than k pairs above t are rare (Poisson tail)
    gen = torch.Generator().manual_seed(derive_seed(seed, "hyperface-lsh-threshold"))
    idx = torch.randperm(n, generator=gen)[: min(rows, n)].to(x.device)
    q = x[idx]
    top = torch.full((len(idx), k), -2.0, device=x.device)
    for b in range(0, n, 65536):
        g = (q @ x[b:b + 65536].T).float()
        own = (idx >= b) & (idx < b + 65536)
        if own.any():
            r = own.nonzero(as_tuple=True)[0]
            g[r, idx[r] - b] = -2.0
        top = torch.cat([top, g], 1).topk(k, dim=1).values
    # a pair is seen from both of its rows: per_id pairs per identity = 2·per_id values per row above t
    vals = top.flatten().sort(descending=True).values
    pos = min(len(vals) - 1, int(2 * per_id * len(idx)))
    return float(vals[pos])
