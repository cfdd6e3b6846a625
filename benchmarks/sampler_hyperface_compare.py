"""Acceptance 1, side by side: `hyperface-alg1`, `hyperface-alg2` (b = 1,000) and `hyperface` with the same
wall-time budget (all from uniform random points, no gallery), plus uniform random points for reference.
(The acceptance command itself, `synthfr sample hyperface --n 10000 --dim 512 --time-budget 300 --seed 0`, is
run on its own.)

    flock /work/cache/cpu.lock .venv/bin/python benchmarks/sampler_hyperface_compare.py OUT_DIR [BUDGET_S] [N]
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
out.mkdir(parents=True, exist_ok=True)
common = ["--n", n, "--dim", "512", "--time-budget", budget, "--seed", "0", "--quiet"]
jobs = [
    ("hyperface", ["sample", "hyperface", *common]),
    ("hyperface-alg1", ["sample", "hyperface-alg1", *common, "--option", "iterations=null"]),
    ("hyperface-alg2 (b=1000)", ["sample", "hyperface-alg2", *common, "--batch-size", "1000",
                                 "--option", "iterations=null"]),
    ("uniform", ["sample", "uniform", "--n", n, "--dim", "512", "--seed", "0"]),
]
rows = []
for name, args in jobs:
    slug = name.split()[0]
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
