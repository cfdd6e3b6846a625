"""Acceptance 5: vigface on dlib embeddings of CelebA — cosine of each virtual prototype to its nearest real
class centre vs each real centre to its nearest other real centre (standardised space).

    flock /work/cache/cpu.lock .venv/bin/python benchmarks/sampler_vigface.py EMB.npy LABELS.npy OUT_DIR [V]
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sampler_common import run  # noqa: E402

emb, labels = sys.argv[1], sys.argv[2]
out = Path(sys.argv[3] if len(sys.argv) > 3 else "/work/cache/samplers/bench/vigface")
v = sys.argv[4] if len(sys.argv) > 4 else "300"
out.mkdir(parents=True, exist_ok=True)
r = run(["sample", "vigface", "--n", v, "--gallery", emb, "--labels", labels, "--seed", "0", "--quiet",
         "--out", str(out / "virtual.npy")], out / "vigface.json", out / "vigface.log")
s = r["sampler"]
vr = np.array(s["virtual_to_nearest_real_centre"])
rr = np.array(s["real_to_nearest_real_centre"])
q = [0.0, 0.05, 0.25, 0.5, 0.75, 0.95, 1.0]
print("\n| distribution | n | min | 5% | 25% | median | 75% | 95% | max | mean |\n|---|---|---|---|---|---|---|---|---|---|")
for name, a in (("virtual → nearest real centre", vr), ("real → nearest other real centre", rr)):
    qs = np.quantile(a, q)
    print(f"| {name} | {len(a)} | " + " | ".join(f"{x:.4f}" for x in qs) + f" | {a.mean():.4f} |")
print(f"\nfraction of virtual prototypes farther from every real centre than the median real centre is from its "
      f"nearest neighbour: {float((vr < np.median(rr)).mean()):.4f}; max virtual→real {vr.max():.4f} vs min real→real "
      f"{rr.min():.4f}; virtual max_cos among themselves {r['max_cos']:.4f}")
print(f"- `{r['command']}`")
try:
    from synthfr.report.plots import save_png, values_hist_png

    save_png(values_hist_png({"virtual → nearest real centre": vr, "real → nearest other real centre": rr},
                             title="VIGFace prototypes on CelebA (dlib, standardised)"), out / "vigface_hist.png")
except Exception as e:  # plotting is a convenience here
    print("plot failed:", e)
(out / "summary.json").write_text(json.dumps({"virtual": vr.tolist(), "real": rr.tolist()}))
