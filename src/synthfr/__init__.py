"""synthfr: privacy-friendly synthetic training sets for face recognition.

Stages (one sub-package each): ``face`` (detect, align, embed), ``samplers``, ``variations``, ``generators``,
``data``, ``models``, ``training``, ``evaluation``, ``quality``, ``report``. The public API is one level deep:
every name of the README's "Python API" section imports from here (``from synthfr import generate_dataset``),
lazily, so that importing the package costs almost nothing.
"""
from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# The public API, one level deep (README "Python API"): name -> "module:attribute", resolved on first access
# (PEP 562). The jobs first, one per stage of the journey, then create_*/list_* for every component kind.
_LAZY = {
    # jobs (each CLI subcommand wraps one) and the configs they take
    "align_folder": "synthfr.face.align:align_folder",
    "embed_path": "synthfr.face.embed:embed_path",
    "sample_identities": "synthfr.samplers:sample_identities",
    "generate_dataset": "synthfr.generation:generate_dataset",
    "measure_quality": "synthfr.quality.evaluate:measure_quality",
    "train": "synthfr.training.loop:train",
    "evaluate": "synthfr.evaluation.evaluate:evaluate",
    "run_pipeline": "synthfr.app.pipeline:run_pipeline",
    "SampleConfig": "synthfr.samplers.config:SampleConfig",
    "GenerateConfig": "synthfr.generation.config:GenerateConfig",
    "QualityConfig": "synthfr.quality.config:QualityConfig",
    "TrainConfig": "synthfr.training.config:TrainConfig",
    "EvalConfig": "synthfr.evaluation.config:EvalConfig",
    "EmbedConfig": "synthfr.evaluation.config:EmbedConfig",
    "PipelineConfig": "synthfr.app.pipeline:PipelineConfig",
    # components: create_<kind>(spec, **options) and list_<kind>s(pattern="*")
    "create_embedder": "synthfr.face.embedders:create_embedder",
    "list_embedders": "synthfr.face.embedders:list_embedders",
    "create_sampler": "synthfr.samplers:create_sampler",
    "list_samplers": "synthfr.samplers:list_samplers",
    "create_variation": "synthfr.variations:create_variation",
    "list_variations": "synthfr.variations:list_variations",
    "create_generator": "synthfr.generators:create_generator",
    "list_generators": "synthfr.generators:list_generators",
    "create_backbone": "synthfr.models.backbones:create_backbone",
    "list_backbones": "synthfr.models.backbones:list_backbones",
    "create_head": "synthfr.models.heads:create_head",
    "list_heads": "synthfr.models.heads:list_heads",
    "create_metric": "synthfr.quality:create_metric",
    "list_metrics": "synthfr.quality:list_metrics",
    "create_from_spec": "synthfr.registry:create_from_spec",
    "list_components": "synthfr.api:list_components",
    # older names, kept as aliases
    "create": "synthfr.api:create",
    "Registry": "synthfr.registry:Registry",
    "run_eval": "synthfr.evaluation.evaluate:run_eval",
    "evaluate_quality": "synthfr.quality.evaluate:evaluate_quality",
    "quality_from_dataset": "synthfr.quality.evaluate:quality_from_dataset",
    "run_demo": "synthfr.app.demo:run_demo",
}
__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        mod, attr = _LAZY[name].split(":")
        value = getattr(importlib.import_module(mod), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'synthfr' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_LAZY))
