"""Embedding spaces: an embedder's unit sphere plus a standardisation fitted on a gallery.

Face embedders do not all use their hypersphere alike. Measured on LFW with dlib's descriptor, unrelated faces
have a mean cosine of 0.84 and the mean of the unit embeddings has norm 0.92: all faces live in a cap of about
40° around the mean direction. Centred on a gallery mean and renormalised, unrelated faces sit at cosine 0.00,
the geometry the seed papers assume for ArcFace (τ = 0.3, separability at 0.4, noise at 0.7). So samplers,
variations and quality metrics work in the *standardised* space, and vectors go back to the embedder's own
space for generators.

:class:`EmbeddingSpace` holds the standardisation::

    to_standard(x)   = normalize(W (x - mean))         (W = whitening matrix, or the identity)
    from_standard(u) = the unit vector x with to_standard(x) = u

``from_standard`` is the exact inverse on the sphere: the point where the ray ``mean + t·W⁻¹u`` (t > 0) meets
the unit sphere (it exists and is unique whenever ``|mean| < 1``). So a standardised gallery maps back to the
gallery itself, and uniformly spread standardised points map into the embedder's cap of real faces instead
of all over the raw sphere.

Spaces are saved as two files, never pickles: ``NAME.space.json`` (kind, dim, flags, statistics, provenance)
and ``NAME.space.npz`` (``mean``, and ``whiten``/``unwhiten`` matrices when whitening).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["EmbeddingSpace", "normalize_rows", "space_paths"]

FORMAT = "synthfr.embedding-space/1"


def normalize_rows(x: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Rows scaled to unit L2 norm (float32)."""
    x = np.asarray(x, dtype=np.float32)
    n = np.linalg.norm(x, axis=-1, keepdims=True)
    return (x / np.maximum(n, eps)).astype(np.float32, copy=False)


def space_paths(path: str | Path) -> tuple[Path, Path]:
    """``(X.space.json, X.space.npz)`` for a base path ``X`` (``X.npy``, ``X.space``, ``X.space.json`` accepted)."""
    p = Path(path)
    name = p.name
    for suffix in (".space.json", ".space.npz", ".npy", ".space"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    base = p.with_name(name)
    return base.with_name(name + ".space.json"), base.with_name(name + ".space.npz")


@dataclass
class EmbeddingSpace:
    """A standardisation of an embedder's unit sphere (centring and optional whitening).

    Use :meth:`identity` for spaces that need none (ArcFace-like) and :meth:`fit` to fit one on gallery
    embeddings; :meth:`to_standard` / :meth:`from_standard` map unit vectors both ways (both renormalise).
    """

    dim: int
    """Embedding dimension D."""
    mean: np.ndarray | None = None
    """Gallery mean of the unit embeddings (D,), subtracted before renormalising; None = no centring."""
    whiten: np.ndarray | None = None
    """D×D whitening matrix applied after centring (rows act on column vectors: W @ (x - mean)); None = none."""
    unwhiten: np.ndarray | None = None
    """Inverse of ``whiten`` (used by :meth:`from_standard`)."""
    info: dict[str, Any] = field(default_factory=dict)
    """Free-form statistics recorded at fit time (gallery size, mean norm, cosine statistics, embedder name)."""

    # -- construction ---------------------------------------------------------------------------------
    @classmethod
    def identity(cls, dim: int, **info: Any) -> "EmbeddingSpace":
        """The identity standardisation (the embedder's sphere is used as it is)."""
        return cls(dim=int(dim), info={"kind": "identity", **info})

    @classmethod
    def fit(cls, gallery: np.ndarray, whiten: bool = False, shrinkage: float = 1e-3, center: bool = True,
            **info: Any) -> "EmbeddingSpace":
        """Fit centring (and optionally ZCA whitening) on gallery embeddings ``G×D`` (rows renormalised first).

        Args:
            gallery: real embeddings of the embedder, one per row.
            whiten: also whiten (ZCA, ``(C + s·tr(C)/D·I)^-1/2``) so every direction has equal variance.
            shrinkage: relative ridge added to the covariance before inverting (keeps W well conditioned).
            center: subtract the mean (False gives the identity space unless ``whiten``).
        """
        g = normalize_rows(np.asarray(gallery, dtype=np.float64).reshape(len(gallery), -1)).astype(np.float64)
        if g.ndim != 2 or len(g) < 2:
            raise ValueError(f"fitting an embedding space needs a gallery of at least 2 embeddings (N×D), got "
                             f"shape {np.shape(gallery)}")
        d = g.shape[1]
        mean = g.mean(0) if center else np.zeros(d)
        mnorm = float(np.linalg.norm(mean))
        if mnorm >= 0.999:
            raise ValueError(f"gallery mean has norm {mnorm:.4f} (all embeddings nearly identical); cannot centre")
        W = Winv = None
        if whiten:
            c = np.cov((g - mean).T, bias=True)
            ridge = shrinkage * np.trace(c) / d
            evals, evecs = np.linalg.eigh(c + ridge * np.eye(d))
            evals = np.maximum(evals, 1e-12)
            W = (evecs * (1.0 / np.sqrt(evals))) @ evecs.T
            Winv = (evecs * np.sqrt(evals)) @ evecs.T
        sp = cls(dim=d, mean=mean.astype(np.float32) if center else None,
                 whiten=None if W is None else W.astype(np.float32),
                 unwhiten=None if Winv is None else Winv.astype(np.float32),
                 info={"kind": "fitted", "center": bool(center), "whiten": bool(whiten), "shrinkage": shrinkage,
                       "gallery_size": int(len(g)), "mean_norm": mnorm, **info})
        # how the gallery looks before / after: mean cosine of random pairs
        rng = np.random.default_rng(0)
        k = min(len(g), 2000)
        idx = rng.choice(len(g), size=k, replace=False)
        raw = g[idx].astype(np.float32)
        std = sp.to_standard(raw)
        iu = np.triu_indices(k, 1)
        sp.info["raw_mean_pair_cos"] = float((raw @ raw.T)[iu].mean())
        sp.info["std_mean_pair_cos"] = float((std @ std.T)[iu].mean())
        return sp

    @property
    def is_identity(self) -> bool:
        return self.mean is None and self.whiten is None

    # -- mapping --------------------------------------------------------------------------------------
    def _check(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32)
        if x.shape[-1] != self.dim:
            raise ValueError(f"vectors have dimension {x.shape[-1]} but the embedding space has {self.dim}; "
                             "use the space fitted on the same embedder")
        return x

    def to_standard(self, x: np.ndarray) -> np.ndarray:
        """Embedder space -> standardised space: ``normalize(W (x - mean))`` (rows of ``x``)."""
        x = self._check(x)
        y = normalize_rows(x)
        if self.mean is not None:
            y = y - self.mean
        if self.whiten is not None:
            y = y @ self.whiten.T
        return normalize_rows(y)

    def from_standard(self, u: np.ndarray) -> np.ndarray:
        """Standardised space -> embedder space: the unit ``x`` on the ray ``mean + t W⁻¹u`` (exact inverse)."""
        if self.mean is None and self.unwhiten is None:
            return normalize_rows(self._check(u))
        u = normalize_rows(self._check(u)).astype(np.float64)
        if self.unwhiten is not None:
            u = u @ self.unwhiten.astype(np.float64).T
            u = u / np.maximum(np.linalg.norm(u, axis=-1, keepdims=True), 1e-12)
        if self.mean is None:
            return u.astype(np.float32)
        m = self.mean.astype(np.float64)
        b = u @ m
        t = -b + np.sqrt(np.maximum(b * b - float(m @ m) + 1.0, 0.0))
        return normalize_rows(m + t[..., None] * u)

    # -- persistence ----------------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return {"format": FORMAT, "dim": self.dim, "center": self.mean is not None,
                "whiten": self.whiten is not None, "info": self.info}

    def save(self, path: str | Path) -> tuple[Path, Path]:
        """Write ``X.space.json`` and ``X.space.npz`` for base path ``X`` (e.g. ``IDS.npy`` -> ``IDS.space.*``)."""
        from synthfr.utils.io import atomic_write_bytes, write_json
        import io

        jpath, npath = space_paths(path)
        arrays = {}
        if self.mean is not None:
            arrays["mean"] = self.mean.astype(np.float32)
        if self.whiten is not None:
            arrays["whiten"] = self.whiten.astype(np.float32)
            arrays["unwhiten"] = self.unwhiten.astype(np.float32)
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        atomic_write_bytes(npath, buf.getvalue())
        doc = self.to_json()
        doc["arrays"] = npath.name
        write_json(jpath, doc)
        return jpath, npath

    @classmethod
    def load(cls, path: str | Path) -> "EmbeddingSpace":
        """Read a space written by :meth:`save` (``X``, ``X.npy`` or ``X.space.json`` all work)."""
        jpath, npath = space_paths(path)
        if not jpath.is_file():
            raise FileNotFoundError(f"embedding space {jpath} not found; it is written beside sampled vectors by "
                                    "`synthfr sample` (or EmbeddingSpace.save)")
        doc = json.loads(jpath.read_text())
        if doc.get("format") != FORMAT:
            raise ValueError(f"{jpath} is not an embedding-space file (format {doc.get('format')!r})")
        arrays: dict[str, np.ndarray] = {}
        if doc.get("center") or doc.get("whiten"):
            apath = jpath.with_name(doc.get("arrays", npath.name))
            if not apath.is_file():
                raise FileNotFoundError(f"{apath} (the arrays of {jpath}) is missing; copy both files together")
            with np.load(apath, allow_pickle=False) as z:
                arrays = {k: np.asarray(z[k], dtype=np.float32) for k in z.files}
        return cls(dim=int(doc["dim"]), mean=arrays.get("mean"), whiten=arrays.get("whiten"),
                   unwhiten=arrays.get("unwhiten"), info=dict(doc.get("info", {})))
