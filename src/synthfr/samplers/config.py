"""Config of the identity-sampling job (``synthfr sample``); one docstring under every field.

The command line is generated from these fields (:func:`synthfr.config.add_config_arguments`). The sampler's
own settings live in its registered config dataclass; the few named here are the common ones, any other goes
through ``options``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

__all__ = ["SampleConfig", "SAMPLER_SHORTCUTS"]

#: SampleConfig fields that are options of the sampler itself (passed on when set).
SAMPLER_SHORTCUTS = ("tau", "alpha", "time_budget", "iterations", "batch_size", "init", "device")


@dataclass
class SampleConfig:
    """``synthfr sample``: identity vectors on the hypersphere of an embedding space, with a separation check."""

    method: str
    """Registered sampler (`synthfr list sampler`): uniform, vec2face, hyperface, hyperface-alg1, hyperface-alg2,
    vigface."""
    n: int
    """Number of identities."""
    dim: int | None = None
    """Embedding dimension (without a gallery)."""
    gallery: str | None = None
    """Real embeddings of the target embedder (N×D .npy)."""
    labels: str | None = None
    """Gallery labels (vigface; default EMB.labels.npy when present)."""
    standardize: Literal["auto", "center", "none"] = "auto"
    """Re-centre the gallery: auto (only cap-shaped spaces such as dlib's; ArcFace-like galleries are used as
    they are, as the papers do), center, none."""
    whiten: bool = False
    """Also whiten the gallery space."""
    space: str | None = None
    """A saved standardisation (SPACE.json) to reuse instead of fitting one."""
    tau: float | None = None
    """vec2face/uniform: maximal cosine between identities (vec2face 0.3)."""
    alpha: float | None = None
    """hyperface*: gallery regulariser weight (default 0.5)."""
    time_budget: float | None = None
    """hyperface*: optimisation seconds."""
    iterations: int | None = None
    """hyperface*: steps (rounds in the LSH mode)."""
    batch_size: int | None = None
    """hyperface-alg2: mini-batch b; vigface: batch size."""
    init: str | None = None
    """hyperface*: auto, gallery, random or code."""
    device: str | None = None
    """Torch device (cpu, cuda)."""
    options: dict = field(default_factory=dict)
    """Any other field of the sampler's config, e.g. dense_max=100000 (KEY=VALUE, repeatable)."""
    seed: int = 0
    """Random seed."""
    out: str | None = None
    """Where the identity vectors are written (IDS.npy, + .std.npy, .space.*, .config.yaml, .stats.json)."""
    json: str | None = None
    """Write the statistics as JSON to this path."""
    check: Literal["auto", "exact", "sampled", "none"] = "auto"
    """Separation check: auto (exact all pairs up to 250,000 identities, else sampled), exact, sampled (10,000
    rows vs all) or none."""
    threads: int | None = None
    """Torch CPU threads (default: torch's own choice)."""
    progress: bool = True
    """Show progress bars."""
