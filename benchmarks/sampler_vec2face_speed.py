"""Acceptance 3: `vec2face` wall time at 100,000 and 300,000 identities in 512-D with tau = 0.3.

    flock /work/cache/cpu.lock .venv/bin/python benchmarks/sampler_vec2face_speed.py OUT_DIR
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sampler_common import fmt, run  # noqa: E402

out = Path(sys.argv[1] if len(sys.argv) > 1 else "/work/cache/samplers/bench/vec2face")
sizes = sys.argv[2].split(",") if len(sys.argv) > 2 else ["100000", "300000"]
out.mkdir(parents=True, exist_ok=True)
rows = []
for n in sizes:
    # the exact guarantee is built into the sampler; the post-hoc statistics are a sampled estimate here
    r = run(["sample", "vec2face", "--n", n, "--dim", "512", "--tau", "0.3", "--seed", "0", "--check", "sampled",
             "--out", str(out / f"ids{n}.npy"), "--quiet"], out / f"vec2face{n}.json", out / f"vec2face{n}.log")
    rows.append(r)
    (out / "results.json").write_text(json.dumps(rows, indent=1, default=str))
print("\n| n | sampling s | wall s | peak RSS GiB | proposed | rejected | max_cos (10k rows vs all) |\n|---|---|---|---|---|---|---|")
for r in rows:
    s = r["sampler"]
    print(f"| {r['n']} | {r['seconds']:.1f} | {r['wall_s']:.1f} | {fmt(r.get('peak_rss_gib'), 2)} | {s['proposed']} | "
          f"{s['rejected']} | {fmt(r['max_cos'])} |")
for r in rows:
    print(f"- `{r['command']}`")
