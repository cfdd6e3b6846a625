"""The per-image plan: for every image ``k`` of identity row ``i``, its condition vector and its render seed.

Image ``k`` of row ``i`` is rendered with ``image_seed(S, i, k)`` (attempt ``a > 0`` of the identity filter:
``image_seed(S, i, k, a)``); the variation gets ``derive_seed(S, "variation")`` and is a function of
``(seed, i, k)`` too, so batching, sharding and resuming never change a condition or a pixel.

Variations work in the standardised space the identities carry (:class:`~.identities.Identities`), and their
conditions are mapped back to the generator's space once. A variation that steers the generator's own input
(AttrOP: ``generator_space = True``) gets the vectors in the generator's space and the seeds the images will
be rendered with, so the image written is the image it optimised.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any

import numpy as np

from synthfr.generation.identities import Identities
from synthfr.registry import parse_spec
from synthfr.utils.seeds import derive_seed

__all__ = ["image_seed", "RowPlan", "ImagePlan"]


def image_seed(seed: int, row: int, k: int, attempt: int = 0) -> int:
    """The generator seed of image ``k`` of identity ``row`` (attempt > 0: regenerations by the filter)."""
    return derive_seed(seed, int(row), int(k)) if attempt == 0 else derive_seed(seed, int(row), int(k), int(attempt))


@dataclass
class RowPlan:
    """The K images of one identity row: conditions (K×D, generator space), seeds, labels, variation params."""

    row: int
    conditions: np.ndarray
    seeds: list[int]
    """Render seed of every image's first attempt (``image_seed(S, row, k)``)."""
    labels: list[int]
    soft: list[Any]
    """Soft label per image: None or ``[id_a, id_b, weight_a]``."""
    params: list[dict]


class ImagePlan:
    """Conditions and render seeds for chunks of identity rows, from the variation spec."""

    def __init__(self, spec: str | None, identities: Identities, images_per_id: int, seed: int, *,
                 generator: Any = None, generator_spec: str = "", weights: str | None = None):
        self.name, self.options = parse_spec(spec)
        self.identities = identities
        self.k = int(images_per_id)
        self.global_seed = int(seed)
        self.seed = derive_seed(seed, "variation")
        self.variation = None
        if self.name is not None:
            from synthfr.variations import create_variation

            self.variation = create_variation(self.name, **self.options)
            if generator is not None and hasattr(self.variation, "share_generator"):
                # AttrOP steers the very network that renders its vectors (one copy in memory)
                self.variation.share_generator(generator, generator_spec, weights)

    def seeds(self, rows: np.ndarray) -> np.ndarray:
        """First-attempt render seeds, len(rows)×K."""
        return np.array([[image_seed(self.global_seed, r, k) for k in range(self.k)] for r in rows],
                        dtype=np.int64).reshape(len(rows), self.k)

    def rows(self, rows: np.ndarray) -> list[RowPlan]:
        """The plans of identity rows ``rows`` (one variation call for the chunk)."""
        rows = np.asarray(rows, dtype=np.int64)
        K, n = self.k, len(rows) * self.k
        seeds = self.seeds(rows)
        ids = self.identities
        if self.variation is None:
            cond = np.repeat(np.asarray(ids.vectors[rows], dtype=np.float32), K, axis=0)
            labels, soft, params = np.repeat(rows, K).tolist(), [None] * n, [{}] * n
        else:
            obj, kw = self.variation, {}
            if "image_seeds" in inspect.signature(obj.apply_to).parameters:
                kw["image_seeds"] = seeds  # it optimises for the seed each image is rendered with (AttrOP)
            # variations that steer the generator's own input (AttrOP) work in its space, not the standardised one
            own = bool(getattr(obj, "generator_space", False))
            res = obj.apply_to(ids.vectors if own else ids.standard, rows, K, self.seed, **kw)
            expect_i, expect_k = np.repeat(rows, K), np.tile(np.arange(K), len(rows))
            if not (np.array_equal(np.asarray(res.identity), expect_i) and np.array_equal(np.asarray(res.index), expect_k)):
                raise RuntimeError(f"variation {self.name!r} returned images out of (identity, index) order")
            cond = np.asarray(res.conditions, dtype=np.float32)
            if not own:
                cond = ids.from_standard(cond)
            soft = [None if sl is None else [int(sl[0]), int(sl[1]), float(sl[2])] for sl in res.soft_label] \
                if res.soft_label else [None] * n
            params = [dict(p) if p else {} for p in res.params] if res.params else [{}] * n
            labels = [int(x) for x in res.identity]
        return [RowPlan(int(r), cond[j * K:(j + 1) * K], seeds[j].tolist(), labels[j * K:(j + 1) * K],
                        soft[j * K:(j + 1) * K], params[j * K:(j + 1) * K]) for j, r in enumerate(rows.tolist())]
