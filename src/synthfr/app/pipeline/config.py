"""The pipeline's config: one dataclass per stage, each holding (or passing through) that stage's job config.

YAML keys are those of ``configs/*.yaml``: ``sample``, ``generate`` (+ ``options``: any other
:class:`~synthfr.generation.GenerateConfig` field), ``quality``, ``train`` (``config``: the
:class:`~synthfr.training.config.TrainConfig` fields), ``evaluate``, ``dit``. Unknown keys fail at load time
with the valid ones (:func:`synthfr.config.check_keys`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["PipelineConfig", "SampleStage", "GenerateStage", "QualityStage", "TrainStage", "EvaluateStage",
           "STAGES", "load_pipeline_config", "parse_overrides", "stage_dir"]


#: Stages in the order they run.
STAGES = ("sample", "generate", "quality", "train", "evaluate")


# GenerateConfig fields set by the pipeline itself (not allowed in ``generate.options``).
_GEN_OWNED = ("identities", "out", "seed", "resume", "device", "shard", "shard_mode", "generator", "weights",
              "images_per_id", "variation", "filter_min_sim", "embedder")


# TrainConfig fields set by the pipeline itself (not allowed in ``train.config``).
_TRAIN_OWNED = ("data", "out", "resume")


def _validate_dict(cls: type, data: dict, where: str, owned: tuple[str, ...]) -> None:
    from synthfr.config import check_keys

    check_keys(cls, data, where, owned, owner="the pipeline (the stage section or top-level out/seed/device)")


@dataclass
class SampleStage:
    """Identity sampling (``synthfr sample``)."""

    method: str = "hyperface"
    """Sampler name (`synthfr list samplers`): hyperface, uniform, vec2face, vigface, ..."""
    n: int = 100
    """Number of identities."""
    dim: int | None = None
    """Dimension of the identity vectors (needed without a gallery; must match the gallery otherwise)."""
    gallery: str | None = None
    """Real embeddings of the generator's embedder (.npy) the sampler standardises in and regularises
    towards, or ``builtin``: a synthetic gallery drawn from the dlib-torch statistics shipped with synthfr
    (:class:`synthfr.galleries.GaussianGallery`, 128-D; for the built-in generator)."""
    gallery_size: int = 2000
    """Points drawn for ``gallery: builtin``."""
    seed: int | None = None
    """Sampler seed (default: the top-level seed)."""
    options: dict = field(default_factory=dict)
    """Sampler options passed through, e.g. ``{alpha: 0.5, iterations: 1000}`` (hyperface; a step count is
    reproducible, a time budget is not), ``{tau: 0.3}`` (vec2face)."""


@dataclass
class GenerateStage:
    """Image generation (``synthfr generate``; the fields of :class:`synthfr.generation.GenerateConfig`)."""

    generator: str = "synthfr-v2"
    """Generator NAME[:key=value,...] (`synthfr list generators`); default the built-in one, 2nd generation."""
    weights: str | None = None
    """Local folder with the generator's weights (docs/generators.md); none for the built-in generator."""
    images_per_id: int = 10
    """Images per identity."""
    variation: str | None = None
    """Per-image variation NAME[:key=value,...] (`synthfr list variations`), e.g. hyperface-noise:beta=0.01."""
    filter_min_sim: float | None = None
    """Identity filter: regenerate images whose cosine to their identity vector is below this (e.g. 0.5)."""
    embedder: str | None = None
    """Embedder of the identity filter (default: the generator's own)."""
    options: dict = field(default_factory=dict)
    """Any other GenerateConfig field passed through (align_check, max_attempts, format, image_format,
    jpeg_quality, num_identities, batch_size, workers, fsync)."""

    def __post_init__(self) -> None:
        from synthfr.generation import GenerateConfig

        _validate_dict(GenerateConfig, dict(self.options or {}), "generate.options", _GEN_OWNED)


@dataclass
class QualityStage:
    """Dataset quality report (``synthfr quality``)."""

    enabled: bool = True
    """Run the quality stage."""
    embedder: str = "auto"
    """Embedder NAME[:key=value,...] that re-embeds the images; ``auto`` = the generator's own embedder
    (test generators: their pattern decoder)."""
    space: str = "auto"
    """Where metrics are measured: ``auto`` (the identities' standardised space when the embedder is the
    generator's own, else ``fit``), ``fit`` (centred on the dataset), ``none`` (raw), or a saved space path."""
    reference: str | None = None
    """Real reference embeddings (.npy, same embedder) for the identity-leakage check."""
    reference_labels: str | None = None
    """Identity labels of the reference (.npy); default ``R.labels.npy`` beside it when present."""
    options: dict = field(default_factory=dict)
    """Per-metric options, e.g. ``{leakage: {threshold: 0.5}, verification: {max_pairs: 200000}}``."""


@dataclass
class TrainStage:
    """Face-recognition training (``synthfr train``)."""

    enabled: bool = False
    """Train an FR model on the generated dataset."""
    config: dict = field(default_factory=dict)
    """TrainConfig fields passed through (`synthfr train --help`): backbone, head, epochs, batch_size, lr,
    domain_mixup, virtual_classes, data_weights, ...; ``data``/``out``/``resume`` are set by the pipeline."""
    extra_data: list = field(default_factory=list)
    """More training sets trained together with the generated dataset (which comes first), each with its own
    class ids, e.g. real aligned faces (SynFace Mix, Vec2Face Table 2); shares in ``config.data_weights``."""

    def __post_init__(self) -> None:
        from synthfr.training.config import TrainConfig

        _validate_dict(TrainConfig, dict(self.config or {}), "train.config", _TRAIN_OWNED)


@dataclass
class EvaluateStage:
    """Verification benchmarks (``synthfr eval``)."""

    enabled: bool = False
    """Evaluate the trained model (or ``embedder``) on ``benchmarks``."""
    benchmarks: list = field(default_factory=list)
    """Benchmark paths: insightface .bin files or LFW-style folders (e.g. ../shared/data/lfw/lfw.bin)."""
    flip: bool = False
    """Flip test-time augmentation."""
    embedder: str | None = None
    """Evaluate this registered embedder instead of the trained model (train disabled)."""
    batch_size: int = 64
    """Images per embedding batch (run-only)."""


@dataclass
class PipelineConfig:
    """``synthfr pipeline CONFIG.yaml``: every stage's settings; see configs/ for examples."""

    out: str = "pipeline-output"
    """Output folder; each stage writes OUT/<stage>/."""
    seed: int = 0
    """Global seed (sampler and generation; training too unless train.config.seed is set)."""
    device: str = "auto"
    """Torch device for every stage: auto, cpu, cuda, cuda:1 (run-only)."""
    sample: SampleStage = field(default_factory=SampleStage)
    """Identity sampling."""
    generate: GenerateStage = field(default_factory=GenerateStage)
    """Image generation."""
    quality: QualityStage = field(default_factory=QualityStage)
    """Quality report."""
    train: TrainStage = field(default_factory=TrainStage)
    """FR training (optional)."""
    evaluate: EvaluateStage = field(default_factory=EvaluateStage)
    """Benchmark evaluation (optional)."""
    dit: dict = field(default_factory=dict)
    """VIGFace stage 2 (the DiT generator's training): read by ``synthfr train-dit --config THIS.yaml``, which runs
    before the pipeline; the pipeline itself ignores it (configs/vigface.yaml)."""


def load_pipeline_config(path: str | Path, overrides: dict[str, Any] | None = None,
                         out: str | None = None) -> PipelineConfig:
    """Read a pipeline YAML, apply dotted ``overrides`` (``{"train.config.epochs": 2}``) and ``out``."""
    from synthfr.config import set_dotted, from_dict, load_yaml

    data = load_yaml(path)
    if not isinstance(data, dict):
        raise ValueError(f"{path} must hold a YAML mapping of pipeline settings (out, seed, sample, generate, ...)")
    data = set_dotted(data, overrides or {})
    if out is not None:
        data["out"] = out
    return from_dict(PipelineConfig, data)


def parse_overrides(items: list[str] | None) -> dict[str, Any]:
    """``["a.b=1", "c=[x, y]"]`` -> ``{"a.b": 1, "c": ["x", "y"]}`` (synthfr's one KEY=VALUE parser)."""
    from synthfr.config import parse_assignments

    return parse_assignments(items, "--set")


def stage_dir(cfg: PipelineConfig, stage: str) -> Path:
    return Path(cfg.out) / stage
