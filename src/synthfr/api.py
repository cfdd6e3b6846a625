"""The public Python API in one place; every CLI subcommand wraps one of these functions.

Functions are imported lazily from their stage so ``import synthfr`` stays light.
"""
from __future__ import annotations

from typing import Any

from synthfr.registry import KINDS, get_registry

__all__ = ["list_components", "create"]


def list_components(kind: str | None = None, pattern: str = "*", with_descriptions: bool = False
                    ) -> dict[str, Any]:
    """Registered component names per kind (``{"sampler": [...], ...}``); with descriptions, name -> text."""
    kinds = [get_registry(kind).kind] if kind else list(KINDS)
    out: dict[str, Any] = {}
    for k in kinds:
        reg = get_registry(k)
        names = reg.list(pattern)
        out[k] = {n: reg.describe(n) for n in names} if with_descriptions else names
    return out


def create(kind: str, name: str, **kwargs: Any) -> Any:
    """Create any registered component: ``create("sampler", "uniform", ...)``."""
    return get_registry(kind).create(name, **kwargs)
