"""How far the `hyperface` dense mode goes with many more steps (issue 18, acceptance 2).

Runs the ``hyperface`` sampler (dense mode, default settings, no gallery) from the same uniform random
start for several step counts and prints the exact maximum cosine and its ratio to the Welch bound
``sqrt((N − D) / (D (N − 1)))``. Small analogues with the same N/D as 10,000 × 512 (1,250 × 64, 2,500 × 128,
5,000 × 256) show where the method levels off, which a 300-second run at 10,000 × 512 cannot.

    python benchmarks/hyperface_convergence.py --n 2500 --dim 128 --steps 300 1000 3000 10000 --json conv.json

``--lp-bound S ...`` also prints Delsarte's linear-programming bound on the number of unit vectors in R^D whose
cosines are all ≤ S (needs scipy; Gegenbauer degrees ≤ 40): a code of N points with maximum S can exist only if the
bound is ≥ N.
"""
from __future__ import annotations

import argparse
import json
import math
import time

import torch

from synthfr.samplers import create_sampler
from synthfr.samplers.geometry import pair_stats
from synthfr.samplers.geometry import welch_bound as welch


def lp_bound(d: int, s: float, degree: int = 40, points: int = 4000) -> float:
    """Delsarte's LP bound: the least f(1)/f_0 over f = 1 + Σ_k f_k G_k with f_k ≥ 0 and f ≤ 0 on [−1, s]
    (G_k the Gegenbauer polynomials of R^d, G_k(1) = 1)."""
    import numpy as np
    from scipy.optimize import linprog
    from scipy.special import eval_gegenbauer

    a = (d - 2) / 2
    t = np.concatenate([np.linspace(-1, s, points), np.cos(np.linspace(math.acos(s), math.pi, points))])
    A = np.stack([eval_gegenbauer(k, a, t) / eval_gegenbauer(k, a, 1.0) for k in range(1, degree + 1)], 1)
    res = linprog(np.ones(degree), A_ub=A, b_ub=-np.ones(len(t)), bounds=[(0, None)] * degree, method="highs")
    return 1 + res.fun if res.status == 0 else float("nan")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=1250, help="points")
    p.add_argument("--dim", type=int, default=64, help="dimension")
    p.add_argument("--steps", type=int, nargs="+", default=[300, 1000], help="step counts (one run each)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--lp-bound", type=float, nargs="*", default=[], metavar="S", help="cosines to bound (scipy)")
    p.add_argument("--json", default=None, metavar="PATH")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    w = welch(a.n, a.dim)
    out = {"n": a.n, "dim": a.dim, "welch": w, "seed": a.seed, "threads": a.threads, "runs": [], "lp_bound": {}}
    for steps in a.steps:
        sampler = create_sampler("hyperface", init="random", iterations=steps, time_budget=None, progress=False)
        t0 = time.process_time()
        x, _ = sampler.sample(a.n, dim=a.dim, seed=a.seed)
        m = pair_stats(x)["max_cos"]  # exact, all pairs
        row = {"steps": steps, "max_cos": m, "ratio_to_welch": m / w, "cpu_seconds": time.process_time() - t0}
        out["runs"].append(row)
        print(f"{a.n} x {a.dim}, {steps} steps: max cos {m:.4f} = {m / w:.3f} x Welch ({w:.4f}), "
              f"{row['cpu_seconds']:.0f} CPU s", flush=True)
    for s in a.lp_bound:
        out["lp_bound"][str(s)] = b = lp_bound(a.dim, s)
        print(f"LP bound, all cosines <= {s}: at most {b:,.0f} points in R^{a.dim} (here {a.n:,})")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
