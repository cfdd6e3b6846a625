"""Backbones: 112×112 RGB face (float, normalised to [-1, 1]) -> embedding (default 512-D).

Registry kind ``backbone``; one module per family; tiny ``test_*`` models for tests.
"""
from __future__ import annotations

from typing import Any

from synthfr.registry import Registry, create_from_spec

REGISTRY = Registry("backbone", package=__name__)


def create_backbone(name: str, **kwargs: Any) -> Any:
    """Create the registered backbone ``name`` (e.g. ``create_backbone("iresnet50", embedding_size=512)``). ``name`` may be a spec ``NAME[:key=value,...]``."""
    return create_from_spec("backbone", name, **kwargs)


def list_backbones(pattern: str = "*") -> list[str]:
    """Registered backbone names matching a shell-style ``pattern``."""
    return REGISTRY.list(pattern)
