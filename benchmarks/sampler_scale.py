"""Acceptance 2: hyperface at scale, from uniform random points (the default without a gallery).

* ``200k``: 200,000 identities in 512-D, `hyperface` in its neighbour-list mode within a time budget (default
  1,700 s, under the 30-minute target), verified by the exact all-pairs check (blockwise, float32), against
  uniform random points (10,000 random rows against all rows: a lower bound of uniform's all-pairs maximum,
  which makes the "≤ 0.8 × uniform's max_cos" comparison conservative).
* ``1m``: 1,000,000 identities in 512-D, the LSH mode (no all-pairs pass): wall time, peak memory and
  max_cos of 10,000 random points against all (``--check sampled``), with uniform points for reference.

    flock /work/cache/cpu.lock .venv/bin/python benchmarks/sampler_scale.py OUT_DIR [200k|1m|all] [BUDGET_200K] [BUDGET_1M]
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sampler_common import fmt, run  # noqa: E402

out = Path(sys.argv[1] if len(sys.argv) > 1 else "/work/cache/samplers/bench/scale")
which = sys.argv[2] if len(sys.argv) > 2 else "all"
b200 = sys.argv[3] if len(sys.argv) > 3 else "1700"
b1m = sys.argv[4] if len(sys.argv) > 4 else "600"
out.mkdir(parents=True, exist_ok=True)
jobs = []
if which in ("200k", "all"):
    jobs += [("hyperface 200k", ["sample", "hyperface", "--n", "200000", "--dim", "512", "--seed", "0",
                                 "--time-budget", b200, "--check", "exact", "--quiet"]),
             ("uniform 200k", ["sample", "uniform", "--n", "200000", "--dim", "512", "--seed", "0", "--check",
                               "sampled"])]
if which in ("1m", "all"):
    jobs += [("hyperface 1M", ["sample", "hyperface", "--n", "1000000", "--dim", "512", "--seed", "0",
                               "--time-budget", b1m, "--check", "sampled", "--quiet"]),
             ("uniform 1M", ["sample", "uniform", "--n", "1000000", "--dim", "512", "--seed", "0", "--check",
                             "sampled"])]
rows = []
for name, args in jobs:
    slug = name.replace(" ", "_")
    r = run(args, out / f"{slug}.json", out / f"{slug}.log")
    rows.append((name, r))
    (out / f"results_{which}.json").write_text(json.dumps(dict(rows), indent=1, default=str))
print("\n| run | mode / init | max_cos | check | mean_nn_cos | sampling s | check s | wall s | peak RSS GiB |\n"
      "|---|---|---|---|---|---|---|---|---|")
for name, r in rows:
    s = r.get("sampler", {})
    print(f"| {name} | {s.get('mode', '–')} / {s.get('init', '–')} | {fmt(r['max_cos'])} | {r['check']} | "
          f"{fmt(r['mean_nn_cos'])} | {r['seconds']:.1f} | {r['check_seconds']:.1f} | {r['wall_s']:.1f} | "
          f"{fmt(r.get('peak_rss_gib'), 2)} |")
for name, r in rows:
    print(f"- {name}: `{r['command']}`")
