"""Acceptance 1: `hyperface` at n=10,000 in 512-D with a 300 s budget, and the side-by-side comparison of
`hyperface-alg1`, `hyperface-alg2` (b = 1,000) and `hyperface` (auto init = certified code, and random init)
with the same wall-time budget (SIDE_S, default = BUDGET_S).

    flock /work/cache/cpu.lock .venv/bin/python benchmarks/sampler_hyperface_compare.py OUT_DIR [BUDGET_S] [N] [SIDE_S]
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sampler_common import fmt, run  # noqa: E402

out = Path(sys.argv[1] if len(sys.argv) > 1 else "/work/cache/samplers/bench/compare")
budget = sys.argv[2] if len(sys.argv) > 2 else "300"
n = sys.argv[3] if len(sys.argv) > 3 else "10000"
side = sys.argv[4] if len(sys.argv) > 4 else budget
out.mkdir(parents=True, exist_ok=True)
jobs = [
    ("hyperface (init=random)", ["sample", "hyperface", "--n", n, "--dim", "512", "--time-budget", side, "--seed",
                                 "0", "--init", "random", "--quiet"]),
    ("hyperface-alg1", ["sample", "hyperface-alg1", "--n", n, "--dim", "512", "--time-budget", side, "--seed", "0",
                        "--option", "iterations=null", "--quiet"]),
    ("hyperface-alg2 (b=1000)", ["sample", "hyperface-alg2", "--n", n, "--dim", "512", "--time-budget", side,
                                 "--seed", "0", "--batch-size", "1000", "--option", "iterations=null", "--quiet"]),
    ("uniform", ["sample", "uniform", "--n", n, "--dim", "512", "--seed", "0"]),
    ("hyperface", ["sample", "hyperface", "--n", n, "--dim", "512", "--time-budget", budget, "--seed", "0", "--quiet"]),
]
rows = []
for name, args in jobs:
    slug = name.split()[0] + ("-random" if "random" in name else "")
    r = run(args, out / f"{slug}.json", out / f"{slug}.log")
    rows.append((name, r))
    (out / "results.json").write_text(json.dumps({k: v for k, v in rows}, indent=1, default=str))
print(f"\n| sampler | steps | init | max_cos | mean_nn_cos | sampling s | wall s |\n|---|---|---|---|---|---|---|")
for name, r in rows:
    s = r.get("sampler", {})
    print(f"| {name} | {s.get('steps', '–')} | {s.get('init', '–')} | {fmt(r['max_cos'])} | {fmt(r['mean_nn_cos'])} | "
          f"{r['seconds']:.1f} | {r['wall_s']:.1f} |")
print(f"\nWelch bound (on the largest |cos|): {rows[0][1]['welch_bound']:.4f}")
for name, r in rows:
    print(f"- {name}: `{r['command']}`")
