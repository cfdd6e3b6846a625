"""synthfr's HyperFace packer: max-min separation on the sphere with HyperFace's gallery regulariser, fast.

Objective (the same as HyperFace): make the largest pairwise cosine as small as possible, plus
``alpha × mean distance of each point to its nearest gallery embedding``. One module per mode:

* :mod:`._dense` (N ≤ ``dense_max``): every step computes the exact Gram matrix in row chunks (bounded memory)
  and applies a *ratcheting hinge*: only pairs whose cosine exceeds ``δ = current max − gap`` repel, with weight
  ``cos − δ`` (a sparse sub-gradient of a soft maximum), the gap shrinking from ``gap`` to ``final_gap`` over the
  budget. The repulsion and the gallery pull (gradient of the smoothed distance to the nearest gallery point,
  weighted by ``alpha × Σweights / N``: with the hinge weights read as a soft-max distribution over pairs, this
  keeps exactly the objective's ratio between the max term and alpha × the mean distance) are projected onto the
  tangent space, accumulated with heavy-ball momentum, clipped to a trust region and each point is renormalised
  (a retraction). Gram products in bfloat16 on CPU for D ≥ 256 and on CUDA (``gram_dtype``); the best iterate is
  returned, its maximum re-measured in float32. Optionally (``polish`` > 0, no regulariser) the last part of the
  budget polishes the tightest pairs on exact neighbour lists (the pairs mode below); off by default (slower).
* :mod:`._pairs` (``dense_max`` < N ≤ ``pairs_max``; off by default: ``pairs_max`` = ``dense_max``): neighbour
  lists, as in molecular dynamics. An exact blockwise pass lists every pair above a threshold a little below the
  maximum (about ``list_pairs × N`` pairs), then ``list_steps`` hinge steps run on the listed pairs only (sparse
  products, not N² ones); the next pass re-lists and measures the true maximum.
* :mod:`._verlet` (N > ``pairs_max``, i.e. above 40,000 by default, ``large_mode: verlet``): an exact listing
  pass (int8 products with one scale on CPU, bfloat16 on GPUs; blockwise, read through tile maxima), then hinge
  steps on the list; instead of re-listing after every few steps, every row's path length is tracked and only
  the rows that moved far enough to meet an unlisted pair are re-scanned against all rows; a new pass runs only
  when the list is exhausted and the budget pays for one. Ends with a certified upper bound of the all-pairs
  maximum (``certified_max_cos``).
* :mod:`._lsh` (``large_mode: lsh``): no all-pairs pass at all. Neighbour lists are filled from
  locality-sensitive hashing: each table hashes every point by cross-polytope LSH (argmax of ± random
  projections, two levels), sorts the points by hash and computes the exact Gram block of every run of
  ``bucket_size`` consecutive points; pairs above the list threshold join the list (deduplicated, capped). Every
  round adds ``lsh_tables`` tables, then runs the pairs mode's hinge steps on the list; as points move, later
  tables find the pairs that moved close. Memory: the points, a bfloat16 copy, the list and one block of buckets.

**Initialisation** (``init``): ``gallery`` (random gallery embeddings + tiny noise, as HyperFace), ``random``
(uniform), ``code`` (an algebraic Gold/dual-BCH spherical code with a *certified* maximal cosine, randomly
rotated, available for D = 2^m or 2^m − 1 with m odd, e.g. 128 and 512; a synthfr extra, never the default) or
``auto`` (gallery if one is given, else uniform random points, as the HyperFace paper).
Without a regulariser the dense and pairs modes return the best iterate seen, never worse than their start.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from synthfr.samplers import REGISTRY
from synthfr.samplers._base import Sampler
from synthfr.samplers.geometry import as_tensor
from synthfr.samplers.hyperface._common import init_points, low_dtype, max_cos
from synthfr.samplers.hyperface._common import nearest_gallery as _nearest_gallery
from synthfr.samplers.hyperface._pairs import collect_pairs as _collect_pairs

__all__ = ["HyperFaceConfig", "HyperFaceSampler", "init_points", "low_dtype", "max_cos"]


@dataclass
class HyperFaceConfig:
    alpha: float = 0.5
    """Weight of the gallery regulariser (mean distance to the nearest gallery embedding); ignored without one."""
    time_budget: float | None = 60.0
    """Wall-clock seconds of optimisation (None = run all ``iterations``)."""
    clock: str = "wall"
    """What ``time_budget`` counts: 'wall' (elapsed seconds) or 'process' (CPU seconds of this process, all
    threads: reproducible work on a shared machine; on one thread, CPU seconds of one core)."""
    iterations: int | None = None
    """Maximal number of steps (dense, pairs) or rounds (LSH); None = only the time budget."""
    lr: float = 0.5
    """Step size of the heavy-ball update (per unit hinge weight)."""
    momentum: float = 0.9
    """Heavy-ball momentum (tangent space)."""
    gap: float = 0.05
    """Initial hinge gap below the current maximum (pairs within it repel)."""
    final_gap: float = 0.003
    """Hinge gap at the end of the budget."""
    gap_schedule: str = "linear"
    """Dense mode: how the gap goes from ``gap`` to ``final_gap`` over the budget, 'linear' or 'geometric'."""
    init: str = "auto"
    """'auto' (gallery when given, else uniform random), 'gallery', 'random' or 'code' (module docstring)."""
    dense_max: int = 40000
    """Largest N optimised with an exact full Gram pass every step (dense mode)."""
    pairs_max: int = 40000
    """Largest N optimised by the pairs mode (exact neighbour lists re-built by bf16 passes); above it
    ``large_mode`` runs. The default equals ``dense_max``: the Verlet mode beat the pairs mode at 10^5 × 512-D
    (sampled max 0.155 against 0.186 in 150 CPU seconds, docs/benchmarks.md), so the pairs mode runs only when
    asked for (``pairs_max`` above ``dense_max``)."""
    large_mode: str = "verlet"
    """Mode above ``pairs_max``: 'verlet' (one exact bf16 listing pass, then lists kept valid by re-scanning only
    the rows that moved, with a certified all-pairs maximum) or 'lsh' (lists from hash tables, no pass; measured
    to find too few of the close pairs at 10^6 × 512-D, see docs/benchmarks.md)."""
    verlet_pairs: float = 16.0
    """Verlet mode: the listing threshold leaves about this many pairs per identity above it (a lower threshold
    lists more pairs and certifies a tighter bound, at the list's memory: 24 bytes a pair)."""
    verlet_steps: int = 50
    """Verlet mode: hinge steps on the list between two re-scans of the rows that moved."""
    verlet_dtype: str = "auto"
    """Verlet mode: the copy the listing pass multiplies, 'auto' (int8 with one global scale on CPU for D ≥ 256,
    measured 25 % faster than bfloat16 on a 2-core AVX-512 CPU; else the ``gram_dtype`` precision), 'int8',
    'bfloat16' or 'float32'. Its rounding is bounded rigorously in the certificate."""
    verlet_rows: int = 2048
    """Verlet mode: rows per Gram block of the listing pass and the re-scans."""
    verlet_cols: int = 16384
    """Verlet mode: columns per Gram block (memory ≈ rows × cols entries in the Gram precision)."""
    polish: float = 0.0
    """Dense mode without a regulariser: fraction of the budget (time or steps) spent at the end polishing the
    tightest pairs on exact neighbour lists (0 = dense steps only, the default: measured at 5,000 × 256-D over 20
    CPU seconds, 0.5 gave 0.1098 against 0.0894 for dense steps only; see docs/benchmarks.md)."""
    gram_dtype: str = "auto"
    """Precision of the Gram products that pick the repelling pairs: 'auto' (bfloat16 on CUDA and on CPU for
    D ≥ 256, about 2.4x faster there; float32 elsewhere), 'float32' or 'bfloat16'. Reported maxima are float32."""
    list_pairs: float = 10.0
    """Pairs mode: neighbour-list size, in pairs per identity (sets the list threshold)."""
    list_steps: int = 150
    """Pairs mode: at most this many optimisation steps on one neighbour list before an exact pass rebuilds it."""
    pairs_max_step: float = 0.01
    """Pairs and LSH modes: trust region per step (smaller than the dense one: unlisted pairs must not jump the
    list)."""
    chunk: int = 2048
    """Rows per Gram chunk (memory ≈ chunk × N floats)."""
    bucket_size: int = 64
    """LSH mode: points per Gram block (a run of consecutive points in hash order)."""
    lsh_dims: Any = "auto"
    """LSH mode: projections of each cross-polytope level (2·d codes per level; the levels' codes concatenate,
    so (64, 64) gives 128 × 128 buckets); 'auto': two equal levels with about N / bucket_size codes in all."""
    lsh_tables: int = 4
    """LSH mode: new hash tables per round (each one pass over the points)."""
    lsh_steps: int = 20
    """LSH mode: at most this many hinge steps on the list per round."""
    lsh_list_pairs: float = 4.0
    """LSH mode: the list threshold is set so that about this many pairs per identity lie above it (the list
    itself holds those found so far; at most ``2 ×`` this many per identity are kept)."""
    lsh_refresh: int = 8
    """LSH mode: re-measure the list threshold (256 random rows against all) every this many rounds."""
    lsh_block: int = 1024
    """LSH mode: buckets per batched Gram product (memory ≈ lsh_block × bucket_size² floats)."""
    gallery_every: int = 5
    """Recompute each point's nearest gallery embedding every this many steps (dense) or rounds (LSH)."""
    max_step: float = 0.05
    """Trust region: no point moves more than this (chord length) in one step (dense mode)."""
    device: str = "cpu"
    """Torch device ('cuda' on a GPU machine: the same code, bfloat16 Gram blocks)."""
    progress: bool = True
    """Show a progress bar."""


@REGISTRY.register("hyperface")
class HyperFaceSampler(Sampler):
    """synthfr's fast HyperFace packer: exact chunked hinge repulsion (dense), exact neighbour lists (pairs) or
    LSH-filled neighbour lists (10^6)."""

    Config = HyperFaceConfig

    def _sample(self, n: int, dim: int, gallery: np.ndarray | None, seed: int) -> tuple[np.ndarray, dict[str, Any]]:
        from synthfr.samplers.hyperface._dense import run_dense
        from synthfr.samplers.hyperface._lsh import run_lsh
        from synthfr.samplers.hyperface._pairs import run_pairs
        from synthfr.samplers.hyperface._verlet import run_verlet

        cfg = self.config
        dev = torch.device(cfg.device)
        gal = as_tensor(gallery, dev) if gallery is not None else None
        x, init = init_points(n, dim, gal, seed, cfg.init, dev)
        alpha = float(cfg.alpha) if gal is not None else 0.0
        if n <= cfg.dense_max:
            x, st = run_dense(cfg, x, gal, alpha, seed)
        elif n <= cfg.pairs_max:
            x, st = run_pairs(cfg, x, gal, alpha, seed)
        elif init == "code" and alpha == 0.0:
            # hinge steps on partial lists cannot lower a code's certified (and attained by many pairs) maximum,
            # and pairs outside the lists would be unchecked: keep the certified code
            st = {"mode": "code", "rounds": 0, "note": "certified algebraic code kept as is"}
        elif cfg.large_mode == "verlet":
            x, st = run_verlet(cfg, x, gal, alpha, seed)
        elif cfg.large_mode != "lsh":
            raise ValueError(f"large_mode must be 'verlet' or 'lsh', got {cfg.large_mode!r}")
        else:
            x, st = run_lsh(cfg, x, gal, alpha, seed)
        st["init"] = init
        st["alpha_used"] = alpha
        st["device"] = str(dev)
        return x.cpu().numpy(), st
