"""Acceptance 6: `synthfr quality` on dlib embeddings of CelebA (JSON + HTML report), and the leakage check
finding a planted duplicate identity.

    flock /work/cache/cpu.lock .venv/bin/python benchmarks/quality_celeba.py EMB.npy LABELS.npy OUT_DIR [LEAK_THR]

Leakage set-up: identities are split in two halves by label; the first half is the "synthetic" dataset, the
second half the reference set. One identity P of the first half is *planted* in the reference set as well (its
images split: even-indexed images stay in the dataset, odd-indexed go to the reference under a new label).
The check must list P among the leaked identities.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sampler_common import run  # noqa: E402

emb, labels = sys.argv[1], sys.argv[2]
out = Path(sys.argv[3] if len(sys.argv) > 3 else "/work/cache/samplers/bench/quality")
out.mkdir(parents=True, exist_ok=True)
r = run(["quality", "--embeddings", emb, "--labels", labels, "--html", str(out / "celeba_quality.html")],
        out / "celeba_quality.json", out / "celeba_quality.log")
print({k: r[k] for k in ("n_embeddings", "n_identities")},
      {"separability": r["separability"]["separability"], "noise_pairs": r["noise"]["noise_pairs"],
       "inconsistent_fraction": r["consistency"]["inconsistent_fraction"], "eer": r["verification"]["eer"],
       "eer_threshold": r["verification"]["eer_threshold"]})

e = np.load(emb)
lab = np.load(labels)
cls = np.unique(lab)
first, second = cls[: len(cls) // 2], cls[len(cls) // 2:]
counts = {int(c): int((lab == c).sum()) for c in first}
planted = max(counts, key=counts.get)  # the first-half identity with most images
rows_p = np.flatnonzero(lab == planted)
keep_ds = np.isin(lab, first) & ~np.isin(np.arange(len(lab)), rows_p[1::2])
ref_rows = np.concatenate([np.flatnonzero(np.isin(lab, second)), rows_p[1::2]])
ref_lab = lab[ref_rows].copy()
ref_lab[-len(rows_p[1::2]):] = 100000 + planted
np.save(out / "ds.npy", e[keep_ds])
np.save(out / "ds.labels.npy", lab[keep_ds])
np.save(out / "ref.npy", e[ref_rows])
np.save(out / "ref.labels.npy", ref_lab)
lk = run(["quality", "--embeddings", str(out / "ds.npy"), "--reference", str(out / "ref.npy"), "--reference-labels",
          str(out / "ref.labels.npy"), "--html", str(out / "leakage.html"), "--clean-out", str(out / "clean.npy"),
          "--leak-threshold", sys.argv[4] if len(sys.argv) > 4 else "0.85"],
         out / "leakage.json", out / "leakage.log")
L = lk["leakage"]
print(f"planted identity {planted} ({len(rows_p[::2])} images kept, {len(rows_p[1::2])} in the reference): "
      f"leaked = {L['leaked_identities']} (threshold {L['threshold']}); planted found: {planted in L['leaked_identities']}")
rank = [p["identity"] for p in L["top_pairs"]].index(planted) + 1 if planted in [p["identity"] for p in L["top_pairs"]] else None
print(f"planted identity rank among the most similar synthetic-reference pairs: {rank}")
print("top pairs:", json.dumps(L["top_pairs"][:5]))
print(f"cleaned: {lk.get('cleaned')}")
print(f"- `{r['command']}`\n- `{lk['command']}`")
