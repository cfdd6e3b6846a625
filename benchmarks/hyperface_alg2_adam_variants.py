"""HyperFace Algorithm 2: which per-batch Adam keeps rows apart (docs/benchmarks.md, "Paper fidelity (issue 14)").

Usage: python benchmarks/hyperface_alg2_adam_variants.py {rowadam|sparse|fresh} STEPS   (n 10,000, D 512, b 1,000)

* rowadam: one Adam state per row, every batch row steps (rows without a gradient move on their momentum);
* sparse:  only the batch rows the loss reaches step (what ``hyperface-alg2`` ships);
* fresh:   a new Adam for the selected pair at every step (no momentum).

No gallery, so the loss is the closest in-batch pair. Prints the batch maximum and the exact global maximum four
times. Untimed: the figure is the maximum after equal steps.
"""
from __future__ import annotations

import sys
import time

import torch

from synthfr.samplers._geometry import normalize
from synthfr.samplers.hyperface import init_points
from synthfr.samplers.hyperface_paper import RowAdam, _closest_pair

N, D, B = 10000, 512, 1000


def global_max(x: torch.Tensor, chunk: int = 2500) -> float:
    best = -2.0
    for a in range(0, len(x), chunk):
        g = x[a:a + chunk] @ x.T
        r = torch.arange(g.shape[0])
        g[r, r + a] = -2.0
        best = max(best, float(g.max()))
    return best


def main(variant: str, steps: int) -> None:
    torch.set_num_threads(1)
    x, _ = init_points(N, D, None, 0, "random", "cpu")
    x = normalize(x)
    print(variant, "start", round(global_max(x), 4), flush=True)
    opt = RowAdam(N, D, 0.01)
    gen = torch.Generator().manual_seed(0)
    t0 = time.time()
    for it in range(steps):
        sub = torch.randperm(N, generator=gen)[:B]
        xs = x[sub]
        i, j, m = _closest_pair(xs, 4096)
        grad = torch.zeros_like(xs)
        grad[i], grad[j] = xs[j], xs[i]  # gradient of x_i · x_j
        if variant == "rowadam":
            opt.step(x, sub, grad)
            x[sub] = normalize(x[sub])
        elif variant == "sparse":
            rows = sub[[i, j]]
            opt.step(x, rows, grad[[i, j]])
            x[rows] = normalize(x[rows])
        elif variant == "fresh":
            rows = sub[[i, j]]
            y = x[rows].clone()
            RowAdam(2, D, 0.01).step(y, None, grad[[i, j]])
            x[rows] = normalize(y)
        else:
            raise SystemExit(f"unknown variant {variant!r}: rowadam, sparse or fresh")
        if (it + 1) % max(1, steps // 4) == 0:
            print(variant, it + 1, round(time.time() - t0, 1), "batch max", round(m, 4),
                  "global max", round(global_max(x), 4), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
