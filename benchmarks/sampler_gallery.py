"""Acceptance 4: samplers with a real gallery (dlib embeddings of UTKFace), compared on max_cos and
gallery_mean_nn_cos (both in the standardised space) — uniform, vec2face, hyperface with alpha 0 / 0.5 / 1.

    .venv/bin/python benchmarks/sampler_gallery.py GALLERY.npy OUT_DIR [N] [ITERATIONS]

The HyperFace runs use a fixed number of steps (not a time budget), so the table does not depend on the CPU
load; it is light (about a minute of CPU at N = 400 in 128-D).

Also reports, in dlib's own space, the mean cosine of each identity (OUT .npy, mapped back) to its nearest
gallery embedding and to the gallery mean direction (how far identities sit from real faces).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sampler_common import fmt, run  # noqa: E402

gallery = sys.argv[1] if len(sys.argv) > 1 else "/work/cache/emb/utkface.npy"
out = Path(sys.argv[2] if len(sys.argv) > 2 else "/work/cache/samplers/bench/gallery")
n = sys.argv[3] if len(sys.argv) > 3 else "400"
iters = sys.argv[4] if len(sys.argv) > 4 else "500"
out.mkdir(parents=True, exist_ok=True)
common = ["--n", n, "--gallery", gallery, "--seed", "0", "--quiet"]
jobs = [("uniform", ["sample", "uniform", *common]),
        ("vec2face (tau 0.3)", ["sample", "vec2face", *common, "--option", "max_proposals=5000000"]),
        ("hyperface alpha=0", ["sample", "hyperface", *common, "--alpha", "0", "--iterations", iters,
                                     "--option", "time_budget=null"]),
        ("hyperface alpha=0.5", ["sample", "hyperface", *common, "--alpha", "0.5", "--iterations", iters,
                                     "--option", "time_budget=null"]),
        ("hyperface alpha=1", ["sample", "hyperface", *common, "--alpha", "1", "--iterations", iters,
                                     "--option", "time_budget=null"])]
g = np.load(gallery).astype(np.float32)
g /= np.linalg.norm(g, axis=1, keepdims=True)
gm = g.mean(0)
gm /= np.linalg.norm(gm)
rows = []
for name, args in jobs:
    slug = name.split()[0] + "_" + (name.split("=")[-1] if "=" in name else "x")
    ids = out / f"{slug}_{n}.npy"
    try:
        r = run(args + ["--out", str(ids)], out / f"{slug}_{n}.json", out / f"{slug}_{n}.log")
    except SystemExit as e:
        rows.append((name, {"error": str(e)}))
        continue
    x = np.load(ids)
    r["raw_gallery_mean_nn_cos"] = float((x @ g.T).max(1).mean())
    r["raw_cos_to_gallery_mean"] = float((x @ gm).mean())
    rows.append((name, r))
    (out / f"results_{n}.json").write_text(json.dumps(dict(rows), indent=1, default=str))
print(f"\nn = {n}, gallery {gallery} ({len(g)} embeddings); real gallery: raw cos to gallery mean "
      f"{float((g @ gm).mean()):.4f}\n")
print("| sampler | max_cos | mean_nn_cos | gallery_mean_nn_cos | raw: nearest gallery cos | raw: cos to gallery mean "
      "| s |\n|---|---|---|---|---|---|---|")
for name, r in rows:
    if "error" in r:
        print(f"| {name} | failed: {r['error']} | | | | | |")
        continue
    print(f"| {name} | {fmt(r['max_cos'])} | {fmt(r['mean_nn_cos'])} | {fmt(r['gallery_mean_nn_cos'])} | "
          f"{fmt(r['raw_gallery_mean_nn_cos'])} | {fmt(r['raw_cos_to_gallery_mean'])} | {r['seconds']:.1f} |")
for name, r in rows:
    if "command" in r:
        print(f"- `{r['command']}`")
