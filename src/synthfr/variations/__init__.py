"""Intra-class variations

Registry kind ``variation``; one module per component. Contract:  per-image condition vectors from identity vectors.:(identity_vectors, images_per_id, seed) -> condition vectors + per-image labels (soft labels as (id_a, id_b, weight_a)).
"""
from __future__ import annotations

from typing import Any

from synthfr.registry import Registry

REGISTRY = Registry("variation", package=__name__)


def create_variation(name: str, **kwargs: Any) -> Any:
    """Create the registered variation ``name``."""
    return REGISTRY.create(name, **kwargs)
