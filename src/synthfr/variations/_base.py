"""Base class and result type of the intra-class variations."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar, Sequence

import numpy as np

from synthfr.config import from_dict, to_dict
from synthfr.utils.seeds import derive_seed

__all__ = ["Variation", "VariationResult"]


@dataclass
class VariationResult:
    """Per-image conditions and labels; row ``r`` is image ``index[r]`` of identity ``identity[r]``."""

    conditions: np.ndarray
    """float32 (M×D) unit condition vectors."""
    identity: np.ndarray
    """int64 (M,) identity index of every image (its hard label)."""
    index: np.ndarray
    """int64 (M,) image index k within its identity."""
    params: list[dict[str, Any]] = field(default_factory=list)
    """Per-image variation parameters (plain JSON values), e.g. {"sigma": 0.5, "tries": 1}."""
    soft_label: list[tuple[int, int, float] | None] = field(default_factory=list)
    """Per-image soft label (id_a, id_b, weight_a) for mixed identities, else None."""
    variation: str = ""
    """Registered name of the variation that produced it."""

    def __len__(self) -> int:
        return len(self.identity)

    def records(self) -> list[dict[str, Any]]:
        """One JSON-ready dict per image (identity, index, variation, params, label)."""
        return [{"identity": int(i), "index": int(k), "variation": self.variation, "params": p,
                 "label": list(s) if s is not None else int(i)}
                for i, k, p, s in zip(self.identity, self.index, self.params, self.soft_label)]


class Variation:
    """A variation: ``Variation(**config)(identity_vectors, images_per_id, seed)``.

    Subclasses set ``Config`` and implement :meth:`_image`, returning one condition vector (D,) and its
    params/soft label, given a numpy Generator seeded by ``derive_seed(seed, name, i, k)``.
    """

    Config: ClassVar[type]
    registry_name: str = "variation"

    def __init__(self, **kwargs: Any):
        self.config = from_dict(self.Config, kwargs)

    def __call__(self, identity_vectors: np.ndarray, images_per_id: int, seed: int = 0) -> VariationResult:
        x = np.asarray(identity_vectors)
        return self.apply_to(x, np.arange(len(x)), images_per_id, seed)

    def apply_to(self, identity_vectors: np.ndarray, identity_indices: Sequence[int], images_per_id: int,
                 seed: int = 0) -> VariationResult:
        """Conditions for the identities ``identity_indices`` only (rows of the *full* ``identity_vectors``)."""
        x = np.asarray(identity_vectors, dtype=np.float32)
        if x.ndim != 2:
            raise ValueError(f"identity vectors must be an N×D array, got shape {x.shape}")
        x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
        ids = np.asarray(identity_indices, dtype=np.int64).reshape(-1)
        if len(ids) and (ids.min() < 0 or ids.max() >= len(x)):
            raise ValueError(f"identity indices must lie in [0, {len(x)}), got {ids.min()}..{ids.max()}")
        k = int(images_per_id)
        if k < 1:
            raise ValueError(f"images per identity must be ≥ 1, got {k}")
        m = len(ids) * k
        cond = np.empty((m, x.shape[1]), dtype=np.float32)
        params: list[dict[str, Any]] = []
        soft: list[tuple[int, int, float] | None] = []
        r = 0
        for i in ids:
            for kk in range(k):
                rng = np.random.default_rng(derive_seed(seed, self.registry_name, int(i), kk))
                v, p, s = self._image(x, int(i), kk, rng)
                n = float(np.linalg.norm(v))
                cond[r] = v / max(n, 1e-12)
                params.append(p)
                soft.append(s)
                r += 1
        return VariationResult(conditions=cond, identity=np.repeat(ids, k), index=np.tile(np.arange(k), len(ids)),
                               params=params, soft_label=soft, variation=self.registry_name)

    def _image(self, x: np.ndarray, i: int, k: int, rng: np.random.Generator
               ) -> tuple[np.ndarray, dict[str, Any], tuple[int, int, float] | None]:  # pragma: no cover
        raise NotImplementedError

    def describe_config(self) -> dict[str, Any]:
        return to_dict(self.config)

    def __repr__(self) -> str:
        f = ", ".join(f"{d.name}={getattr(self.config, d.name)!r}" for d in dataclasses.fields(self.config))
        return f"{type(self).__name__}({f})"
