"""Synthetic galleries drawn from shipped aggregate statistics of real embeddings.

The HyperFace regulariser needs a gallery of real face embeddings. A user without face data (the offline
demo) still needs one, and synthfr must not ship individual embeddings of real people: an embedding is a
biometric template. So synthfr ships only *aggregate* statistics of a space (the mean and covariance of
unit embeddings of many faces) and draws a gallery from the Gaussian they define, normalised back onto the
sphere. This keeps gallery points inside the embedder's cap of real faces (dlib's faces occupy a cap of
about 40° around their mean direction) without any real person's template.

Files: ``NAME/stats.npz`` (``mean`` D, ``cov`` D×D, float64) + ``NAME/stats.json`` (count, embedder, source).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["GaussianGallery", "builtin_gallery_dir"]


def builtin_gallery_dir(name: str = "dlib-gallery") -> Path:
    """Folder of the statistics shipped inside the package (``synthfr/weights/NAME``)."""
    return Path(__file__).resolve().parent / "weights" / name


@dataclass
class GaussianGallery:
    """A Gaussian over raw unit embeddings (mean + covariance), sampled and renormalised onto the sphere."""

    mean: np.ndarray
    """Mean of the unit embeddings (D,)."""
    cov: np.ndarray
    """Covariance of the unit embeddings (D×D)."""
    info: dict[str, Any] = field(default_factory=dict)
    """Provenance: number of faces, embedder, data sets (names only)."""

    @classmethod
    def fit(cls, embeddings: np.ndarray, **info: Any) -> "GaussianGallery":
        e = np.asarray(embeddings, dtype=np.float64)
        if e.ndim != 2 or len(e) < e.shape[1] + 1:
            raise ValueError(f"need an N×D array with N > D to fit a Gaussian gallery, got {e.shape}")
        return cls(mean=e.mean(0), cov=np.cov(e, rowvar=False), info={"count": int(len(e)), **info})

    @property
    def dim(self) -> int:
        return int(self.mean.shape[0])

    def sample(self, n: int, seed: int = 0) -> np.ndarray:
        """``n`` unit vectors (float32 n×D) drawn from the Gaussian and renormalised."""
        rng = np.random.default_rng(seed)
        # eigh instead of cholesky: the covariance of unit vectors is rank-deficient along the mean direction.
        w, v = np.linalg.eigh(self.cov)
        z = rng.standard_normal((n, self.dim)) * np.sqrt(np.clip(w, 0, None))
        x = self.mean + z @ v.T
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        return x.astype(np.float32)

    def save(self, folder: str | Path) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        np.savez(folder / "stats.npz", mean=self.mean, cov=self.cov)
        (folder / "stats.json").write_text(json.dumps({"format": "synthfr.gaussian-gallery/1", **self.info},
                                                      indent=2) + "\n")
        return folder

    @classmethod
    def load(cls, folder: str | Path | None = None) -> "GaussianGallery":
        """Load statistics from ``folder`` (default: the dlib-torch statistics shipped with synthfr)."""
        folder = Path(folder) if folder is not None else builtin_gallery_dir()
        npz, js = folder / "stats.npz", folder / "stats.json"
        if not npz.is_file():
            raise FileNotFoundError(f"gallery statistics {npz} not found; build them with "
                                    "benchmarks/make_gallery_stats.py from `synthfr embed` outputs")
        with np.load(npz, allow_pickle=False) as d:
            mean, cov = d["mean"], d["cov"]
        info = json.loads(js.read_text()) if js.is_file() else {}
        return cls(mean=mean, cov=cov, info=info)
