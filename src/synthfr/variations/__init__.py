"""Intra-class variations (registry kind ``variation``; one module per component).

Contract: ``variation(identity_vectors N×D, images_per_id K, seed) -> VariationResult`` with per-image condition
vectors (``N*K×D`` float32 unit; row ``i*K + k`` is image ``k`` of identity ``i``) and per-image labels
(``identity``, ``index``, ``params`` dicts, ``soft_label`` = ``(id_a, id_b, weight_a)`` or None).
``variation.apply_to(identity_vectors, identity_indices, K, seed)`` produces only some identities; image
``(i, k)`` depends only on ``(seed, i, k)`` (and the full identity matrix for mixup partners), so sharded or
resumed generation gets exactly the same conditions. Variations work in the standardised embedding space
(:mod:`synthfr.spaces`), like the samplers; map results back with ``EmbeddingSpace.from_standard``.
"""
from __future__ import annotations

from typing import Any

from synthfr.registry import Registry, create_from_spec

REGISTRY = Registry("variation", package=__name__)

from synthfr.variations._base import Variation, VariationResult  # noqa: E402

__all__ = ["REGISTRY", "Variation", "VariationResult", "create_variation", "list_variations"]


def create_variation(name: str, **kwargs: Any) -> Any:
    """Create the registered variation ``name``. ``name`` may be a spec ``NAME[:key=value,...]``."""
    return create_from_spec("variation", name, **kwargs)


def list_variations(pattern: str = "*") -> list[str]:
    """Registered variation names matching a shell-style ``pattern``."""
    return REGISTRY.list(pattern)
