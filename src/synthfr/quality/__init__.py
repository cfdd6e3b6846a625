"""Dataset-quality metrics on labelled embeddings (separability, consistency, EER, leakage).

Registry kind ``metric``; one module per component. Contract: metric(embeddings float32 N×D unit, labels int N, **options) -> dict of plain floats/lists.
"""
from __future__ import annotations

from typing import Any

from synthfr.registry import Registry, create_from_spec

REGISTRY = Registry("metric", package=__name__)


def create_metric(name: str, **kwargs: Any) -> Any:
    """Create the registered metric ``name``. ``name`` may be a spec ``NAME[:key=value,...]``."""
    return create_from_spec("metric", name, **kwargs)


def list_metrics(pattern: str = "*") -> list[str]:
    """Registered metric names matching a shell-style ``pattern``."""
    return REGISTRY.list(pattern)
