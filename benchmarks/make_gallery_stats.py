"""Build the aggregate gallery statistics shipped in src/synthfr/weights/dlib-gallery.

Input: `synthfr embed` outputs (dlib-torch embeddings) of the aligned CelebA subset and UTKFace, e.g.
    synthfr align ../shared/data/celeba  CACHE/aligned/celeba
    synthfr embed CACHE/aligned/celeba --embedder dlib-torch --out CACHE/emb/celeba.npy
    (same for utkface)
    python benchmarks/make_gallery_stats.py CACHE/emb/celeba.npy CACHE/emb/utkface.npy
Only the mean and covariance are written (no individual embedding).
"""
import sys

import numpy as np

from synthfr.galleries import GaussianGallery, builtin_gallery_dir

paths = sys.argv[1:]
emb = np.concatenate([np.load(p, allow_pickle=False) for p in paths])
g = GaussianGallery.fit(emb, embedder="dlib-torch", sources=["celeba subset (299 ids)", "utkface"],
                        note="aggregate statistics only: mean and covariance of unit dlib-torch embeddings")
g.save(builtin_gallery_dir())
s = g.sample(2000, seed=0)
print("faces:", len(emb), "mean norm:", float(np.linalg.norm(g.mean)),
      "sampled mean cos to mean dir:", float((s @ (g.mean / np.linalg.norm(g.mean))).mean()),
      "real:", float((emb @ (g.mean / np.linalg.norm(g.mean))).mean()))
