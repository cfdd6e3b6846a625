"""Base class shared by the identity samplers."""
from __future__ import annotations

import dataclasses
import time
from typing import Any, ClassVar

import numpy as np

from synthfr.config import from_dict, to_dict

__all__ = ["Sampler"]


class Sampler:
    """An identity sampler: ``Sampler(**config).sample(n, dim=, gallery=, seed=) -> (n×D float32 unit, stats)``.

    Subclasses set ``Config`` (a dataclass with a docstring per field) and implement :meth:`_sample`, which
    receives the gallery already as a float32 unit array in the *standardised* space (or None).
    """

    Config: ClassVar[type]
    registry_name: str = "sampler"

    def __init__(self, **kwargs: Any):
        self.config = from_dict(self.Config, kwargs)

    labels: np.ndarray | None = None

    def sample(self, n: int, *, dim: int | None = None, gallery: np.ndarray | None = None, seed: int = 0,
               labels: np.ndarray | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        """Sample ``n`` unit identity vectors; ``dim`` is required without a gallery (and must match one).

        ``labels`` (one per gallery row) are used by samplers that learn from labelled embeddings (vigface).
        """
        self.labels = labels
        n = int(n)
        if n < 1:
            raise ValueError(f"--n must be a positive number of identities, got {n}")
        if gallery is not None:
            gallery = np.asarray(gallery, dtype=np.float32)
            if gallery.ndim != 2 or len(gallery) < 2:
                raise ValueError(f"the gallery must be an N×D array of embeddings with N ≥ 2, got {gallery.shape}")
            gallery = gallery / np.maximum(np.linalg.norm(gallery, axis=1, keepdims=True), 1e-12)
            if dim is not None and int(dim) != gallery.shape[1]:
                raise ValueError(f"--dim {dim} does not match the gallery's dimension {gallery.shape[1]}; "
                                 "leave --dim out when giving a gallery")
            dim = gallery.shape[1]
        if dim is None:
            raise ValueError("give --dim D (or a gallery) so the sampler knows the embedding dimension")
        t0 = time.perf_counter()
        x, stats = self._sample(n, int(dim), gallery, int(seed))
        x = np.ascontiguousarray(x, dtype=np.float32)
        x /= np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
        out = {"method": self.registry_name, "n": n, "dim": int(dim), "seed": int(seed),
               "config": to_dict(self.config), "sample_seconds": time.perf_counter() - t0}
        out.update(stats)
        return x, out

    def _sample(self, n: int, dim: int, gallery: np.ndarray | None, seed: int
                ) -> tuple[np.ndarray, dict[str, Any]]:  # pragma: no cover - interface
        raise NotImplementedError

    def __repr__(self) -> str:
        fields = ", ".join(f"{f.name}={getattr(self.config, f.name)!r}" for f in dataclasses.fields(self.config))
        return f"{type(self).__name__}({fields})"
