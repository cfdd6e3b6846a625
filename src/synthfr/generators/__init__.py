"""Generators

Registry kind ``generator``; one module per component. Contract:  condition vectors (+ per-image seeds) -> aligned 112×112 RGB faces.:generate(conditions float32 B×D, seeds int64 B) -> uint8 B×112×112×3; declares the embedder whose space its vectors live in.
"""
from __future__ import annotations

from typing import Any

from synthfr.registry import Registry, create_from_spec

REGISTRY = Registry("generator", package=__name__)


def create_generator(name: str, **kwargs: Any) -> Any:
    """Create the registered generator ``name``. ``name`` may be a spec ``NAME[:key=value,...]``."""
    return create_from_spec("generator", name, **kwargs)


def list_generators(pattern: str = "*") -> list[str]:
    """Registered generator names matching a shell-style ``pattern``."""
    return REGISTRY.list(pattern)
