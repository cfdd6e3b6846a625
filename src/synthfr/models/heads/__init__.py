"""Margin heads / losses: cosine logits in, margin logits out (registry kind ``head``)."""
from __future__ import annotations

from typing import Any

from synthfr.registry import Registry

REGISTRY = Registry("head", package=__name__)


def create_head(name: str, **kwargs: Any) -> Any:
    """Create the registered head ``name`` (e.g. ``create_head("arcface", s=64.0, m=0.5)``)."""
    return REGISTRY.create(name, **kwargs)
