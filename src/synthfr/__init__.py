"""synthfr: privacy-friendly synthetic training sets for face recognition.

Stages (one sub-package each): ``face`` (detect, align, embed), ``samplers``, ``variations``, ``generators``,
``data``, ``models``, ``training``, ``evaluation``, ``quality``, ``report``. Public entry points are exposed
lazily here (``synthfr.create_embedder`` etc.) so that importing the package costs almost nothing.
"""
from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# name -> "module:attribute"; resolved on first access (PEP 562).
_LAZY = {
    "list_components": "synthfr.api:list_components",
    "create": "synthfr.api:create",
    "create_embedder": "synthfr.face.embedders:create_embedder",
    "list_embedders": "synthfr.face.embedders:list_embedders",
    "create_sampler": "synthfr.samplers:create_sampler",
    "create_variation": "synthfr.variations:create_variation",
    "create_generator": "synthfr.generators:create_generator",
    "create_backbone": "synthfr.models.backbones:create_backbone",
    "create_head": "synthfr.models.heads:create_head",
    "Registry": "synthfr.registry:Registry",
    "align_folder": "synthfr.face.align:align_folder",
    "embed_path": "synthfr.evaluation.embed:embed_path",
    "run_eval": "synthfr.evaluation.evaluate:run_eval",
    "sample_identities": "synthfr.samplers._api:sample_identities",
    "generate_dataset": "synthfr.generation:generate_dataset",
    "evaluate_quality": "synthfr.quality.evaluate:evaluate_quality",
    "quality_from_dataset": "synthfr.quality.evaluate:quality_from_dataset",
    "train": "synthfr.training.loop:train",
    "run_pipeline": "synthfr.app.pipeline:run_pipeline",
    "run_demo": "synthfr.app.demo:run_demo",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        mod, attr = _LAZY[name].split(":")
        value = getattr(importlib.import_module(mod), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'synthfr' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_LAZY))
