"""Acceptance 2: hyperface at scale.

* 200,000 identities in 512-D: hyperface (default init) verified by the exact all-pairs check (blockwise,
  float32) vs uniform (10,000 random rows against all rows: a lower bound of uniform's maximum, which makes the
  "≤ 0.8 × uniform's max_cos" comparison conservative); `all` runs both sizes.
* 1,000,000 identities in 512-D (scalable mode, no all-pairs pass): wall time, peak memory, and max_cos of
  10,000 random points against all (``--no-check``), with uniform for reference.
* optional (``random`` as 3rd argument): the scalable LSH-bucket optimiser from a uniform random start at 200k.

    flock /work/cache/cpu.lock .venv/bin/python benchmarks/sampler_scale.py OUT_DIR [200k|1m|all] [random] [BUDGET]
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sampler_common import fmt, run  # noqa: E402

out = Path(sys.argv[1] if len(sys.argv) > 1 else "/work/cache/samplers/bench/scale")
which = sys.argv[2] if len(sys.argv) > 2 else "all"
extra = sys.argv[3] if len(sys.argv) > 3 else ""
budget = sys.argv[4] if len(sys.argv) > 4 else "600"
out.mkdir(parents=True, exist_ok=True)
jobs = []
if which in ("200k", "all"):
    jobs += [("hyperface 200k", ["sample", "hyperface", "--n", "200000", "--dim", "512", "--seed", "0",
                                 "--time-budget", budget, "--check", "exact", "--quiet"]),
             # uniform's max from 10,000 random rows against all: a lower bound of its all-pairs max, so the
             # "≤ 0.8 × uniform" comparison made with it is conservative
             ("uniform 200k", ["sample", "uniform", "--n", "200000", "--dim", "512", "--seed", "0", "--check",
                               "sampled"])]
    if extra == "random":
        jobs += [("hyperface 200k init=random", ["sample", "hyperface", "--n", "200000", "--dim", "512", "--seed", "0",
                                                 "--time-budget", budget, "--init", "random", "--check", "exact",
                                                 "--quiet"])]
if which in ("1m", "all"):
    jobs += [("hyperface 1M", ["sample", "hyperface", "--n", "1000000", "--dim", "512", "--seed", "0",
                               "--time-budget", budget, "--no-check", "--quiet"]),
             ("uniform 1M", ["sample", "uniform", "--n", "1000000", "--dim", "512", "--seed", "0", "--no-check"])]
rows = []
for name, args in jobs:
    slug = name.replace(" ", "_").replace("=", "-")
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
