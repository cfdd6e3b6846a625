"""Identity samplers (registry kind ``sampler``; one module per component).

Contract: ``create_sampler(name, **config).sample(n, *, dim=None, gallery=None, seed=0) -> (float32 n×D unit
vectors, stats dict)``. Samplers work in a *standardised* embedding space (:mod:`synthfr.spaces`);
:func:`sample_identities` (what ``synthfr sample`` calls) standardises a gallery, samples, checks the result
exactly and maps the vectors back to the embedder's own space.

Registered: ``uniform``, ``vec2face``, ``hyperface-alg1``, ``hyperface-alg2``, ``hyperface`` (synthfr's fast
packer: dense, neighbour-list and LSH modes), ``vigface``.
"""
from __future__ import annotations

from typing import Any

from synthfr.registry import Registry, create_from_spec

REGISTRY = Registry("sampler", package=__name__)


def create_sampler(name: str, **kwargs: Any) -> Any:
    """Create the registered sampler ``name`` or spec ``NAME[:key=value,...]`` (options = config fields)."""
    return create_from_spec("sampler", name, **kwargs)


def list_samplers(pattern: str = "*") -> list[str]:
    """Registered sampler names matching a shell-style ``pattern``."""
    return REGISTRY.list(pattern)


from synthfr.samplers._api import sample, sample_identities, sample_stats  # noqa: E402
from synthfr.samplers.config import SampleConfig  # noqa: E402

__all__ = ["REGISTRY", "create_sampler", "list_samplers", "sample_identities", "sample_stats", "sample", "SampleConfig"]
