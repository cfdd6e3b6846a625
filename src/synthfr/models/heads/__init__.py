"""Margin heads / losses: cosine logits in, margin logits out (registry kind ``head``)."""
from __future__ import annotations

from typing import Any

from synthfr.registry import Registry, create_from_spec

REGISTRY = Registry("head", package=__name__)


def create_head(name: str, **kwargs: Any) -> Any:
    """Create the registered head ``name`` (e.g. ``create_head("arcface", s=64.0, m=0.5)``). ``name`` may be a spec ``NAME[:key=value,...]``."""
    return create_from_spec("head", name, **kwargs)


def list_heads(pattern: str = "*") -> list[str]:
    """Registered head names matching a shell-style ``pattern``."""
    return REGISTRY.list(pattern)
