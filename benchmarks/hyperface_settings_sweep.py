"""The dense mode's step settings at a fixed step count (issue 18, 10K towards the Welch bound).

Each setting packs the same uniform random start for the same number of steps (steps, not seconds, so that a
busy machine changes the wall time only); the table gives the exact maximum cosine and how often the trust region
clipped a row's step early, midway and at the end. Defaults: 5,000 × 256-D, 300 steps, one thread (~75 s a
setting on one core); settings are ``key=value`` options of the ``hyperface`` sampler, ``;``-separated per run.

    python benchmarks/hyperface_settings_sweep.py --json OUT.json [--n 5000 --dim 256 --steps 300] \
        [--runs "" "lr=1.0" "lr=0.25" "momentum=0.95" "momentum=0.8" "final_gap=0.001" "gap=0.03"]
"""
from __future__ import annotations

import argparse
import json
import time

import torch

import synthfr.samplers.hyperface._dense as dense
from synthfr.samplers import create_sampler
from synthfr.samplers.geometry import pair_stats
from synthfr.config import parse_assignment


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--dim", type=int, default=256)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--runs", nargs="*", default=["", "lr=1.0", "lr=0.25", "momentum=0.95", "momentum=0.8",
                                                  "final_gap=0.001", "gap=0.03"])
    ap.add_argument("--json", required=True)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    clip_log: list[tuple[float, float]] = []
    clip = dense.clip_rows

    def logged_clip(v: torch.Tensor, max_norm: float) -> torch.Tensor:  # record, then clip as the sampler does
        norms = v.norm(dim=1)
        clip_log.append((float((norms > max_norm).float().mean()), float(norms.median())))
        return clip(v, max_norm)

    dense.clip_rows = logged_clip
    rows = []
    for spec in a.runs:
        opts = dict(parse_assignment(kv) for kv in spec.split(";") if kv)
        clip_log.clear()
        t = time.process_time()
        x, st = create_sampler("hyperface", init="random", iterations=a.steps, time_budget=None, progress=False,
                               **opts).sample(a.n, dim=a.dim, seed=0)
        at = [clip_log[int(f * (len(clip_log) - 1))] for f in (0.1, 0.5, 1.0)]
        rows.append({"options": opts, "max_cos": pair_stats(x)["max_cos"], "steps": st["steps"],
                     "cpu_s": round(time.process_time() - t, 1), "clipped_at_10_50_100": [r[0] for r in at],
                     "median_step_at_10_50_100": [r[1] for r in at]})
        r = rows[-1]
        print(f"{spec or 'default':<28} max_cos {r['max_cos']:.4f}  clipped {r['clipped_at_10_50_100']}  "
              f"{r['cpu_s']} CPU s", flush=True)
    with open(a.json, "w") as f:
        json.dump({"n": a.n, "dim": a.dim, "steps": a.steps, "threads": a.threads, "runs": rows}, f, indent=1)


if __name__ == "__main__":
    main()
