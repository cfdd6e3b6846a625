"""Identity samplers

Registry kind ``sampler``; one module per component. Contract:  unit identity vectors N×D on the hypersphere.:sample(n, *, dim=None, gallery=None, seed) -> (float32 n×D unit vectors, stats dict).
"""
from __future__ import annotations

from typing import Any

from synthfr.registry import Registry

REGISTRY = Registry("sampler", package=__name__)


def create_sampler(name: str, **kwargs: Any) -> Any:
    """Create the registered sampler ``name``."""
    return REGISTRY.create(name, **kwargs)
