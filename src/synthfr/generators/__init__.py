"""Generators

Registry kind ``generator``; one module per component. Contract:  condition vectors (+ per-image seeds) -> aligned 112×112 RGB faces.:generate(conditions float32 B×D, seeds int64 B) -> uint8 B×112×112×3; declares the embedder whose space its vectors live in.
"""
from __future__ import annotations

from typing import Any

from synthfr.registry import Registry

REGISTRY = Registry("generator", package=__name__)


def create_generator(name: str, **kwargs: Any) -> Any:
    """Create the registered generator ``name``."""
    return REGISTRY.create(name, **kwargs)
