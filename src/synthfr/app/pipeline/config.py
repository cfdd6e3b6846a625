"""The pipeline's config: one dataclass per stage, each the stage's job config itself (the quality stage, which
measures the generated images in memory, has its own).

YAML keys are those of ``configs/*.yaml``: ``sample``, ``generate`` (+ ``options``: any other
:class:`~synthfr.generation.GenerateConfig` field), ``quality``, ``train`` (``config``: the
:class:`~synthfr.training.config.TrainConfig` fields), ``evaluate``, ``dit``. Unknown keys fail at load time
with the valid ones (:func:`synthfr.config.check_keys`).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from synthfr.config import HIDDEN
from synthfr.evaluation.config import EvalConfig
from synthfr.generation.config import GenerateConfig
from synthfr.samplers.config import SampleConfig
from synthfr.training.config import TrainConfig

__all__ = ["PipelineConfig", "SampleStage", "GenerateStage", "QualityStage", "TrainStage", "EvaluateStage",
           "STAGES", "load_pipeline_config", "parse_overrides", "stage_dir"]


#: Stages in the order they run.
STAGES = ("sample", "generate", "quality", "train", "evaluate")


# GenerateConfig fields set by the pipeline itself (not allowed in ``generate`` nor in ``generate.options``;
# the stage-level ones are given at the stage level).
_GEN_OWNED = ("identities", "out", "seed", "resume", "device", "shard", "shard_mode")
_GEN_STAGE_LEVEL = ("generator", "weights", "images_per_id", "variation", "filter_min_sim", "embedder")
# Fields of the stages' job configs that the pipeline sets itself.
_SAMPLE_OWNED = ("out", "json")
_TRAIN_OWNED = ("data", "out", "resume")
_EVAL_OWNED = ("checkpoint", "roc", "json", "device")
_OWNER = "the pipeline itself (from the top-level out, seed and device, or the stage's own fields)"


def _validate_dict(cls: type, data: dict, where: str, owned: tuple[str, ...]) -> None:
    from synthfr.config import check_keys

    check_keys(cls, data, where, owned, owner=_OWNER)


def _refuse_owned(cfg: Any, where: str, owned: tuple[str, ...], base: type | None = None) -> None:
    """A stage's job config may not set what the pipeline sets: those fields keep their defaults."""
    from synthfr.config import given_keys, to_dict

    defaults = {f.name: f for f in dataclasses.fields(base or type(cfg))}
    given = {k: v for k, v in given_keys(cfg).items() if k in owned and k in defaults
             and to_dict(v) != to_dict(_default_of(defaults[k]))}  # a dump's own default values are fine
    _validate_dict(base or type(cfg), given, where, owned)


def _default_of(f: dataclasses.Field) -> Any:
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default  # type: ignore[misc]


def _owned(default: Any) -> Any:
    """A field of a job config that the pipeline sets: hidden from dumps and from the command line."""
    return field(default=default, metadata=HIDDEN, repr=False)


@dataclass
class SampleStage(SampleConfig):
    """Identity sampling: the job config of ``synthfr sample`` (:class:`~synthfr.samplers.SampleConfig`);
    ``out`` and ``json`` are the pipeline's."""

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
    seed: int | None = None
    """Sampler seed (default: the top-level seed)."""
    options: dict = field(default_factory=dict)
    """Sampler options passed through, e.g. ``{alpha: 0.5, iterations: 1000}`` (hyperface; a step count is
    reproducible, a time budget is not), ``{tau: 0.3}`` (vec2face)."""
    gallery_size: int = 2000
    """Points drawn for ``gallery: builtin``."""
    out: str | None = _owned(None)
    """OUT/sample/ids.npy (the pipeline's)."""
    json: str | None = _owned(None)
    """OUT/sample/ids.stats.json is written beside the identities (the pipeline's)."""

    def __post_init__(self) -> None:
        _refuse_owned(self, "sample", _SAMPLE_OWNED, SampleConfig)


@dataclass
class GenerateStage(GenerateConfig):
    """Image generation: the job config of ``synthfr generate`` (:class:`~synthfr.generation.GenerateConfig`);
    the identities, output folder, seed, device and sharding are the pipeline's."""

    identities: str = _owned("")
    """OUT/sample/ids.npy (the pipeline's)."""
    seed: int = _owned(0)
    """The top-level seed (the pipeline's)."""
    out: str = _owned("")
    """OUT/generate/dataset (the pipeline's)."""
    shard: str | None = _owned(None)
    """Under torchrun every rank takes its share (the pipeline's)."""
    shard_mode: str = _owned("strided")
    """The pipeline's."""
    resume: bool = _owned(False)
    """An interrupted stage always resumes (the pipeline's)."""
    device: str = _owned("auto")
    """The top-level device (the pipeline's)."""
    images_per_id: int = 10
    """Images per identity."""
    options: dict = field(default_factory=dict)
    """Other GenerateConfig fields may also be given here (align_check, max_attempts, format, image_format,
    jpeg_quality, num_identities, batch_size, workers, fsync), as older configs do."""

    def __post_init__(self) -> None:
        _refuse_owned(self, "generate", _GEN_OWNED, GenerateConfig)
        _validate_dict(GenerateConfig, dict(self.options or {}), "generate.options", _GEN_OWNED + _GEN_STAGE_LEVEL)

    def job_config(self, identities: str, out: str, seed: int, device: str) -> GenerateConfig:
        """The :class:`GenerateConfig` this stage runs (``options`` applied over the stage's fields)."""
        from synthfr.config import from_dict, to_dict

        kw = {f.name: to_dict(getattr(self, f.name)) for f in dataclasses.fields(GenerateConfig)}
        kw.update(dict(self.options or {}))
        kw.update(identities=identities, out=out, seed=seed, device=device, resume=True)
        return from_dict(GenerateConfig, kw, _where="generate")


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
    judges: str = "auto"
    """More networks that re-embed the images and report identity figures side by side with the embedder's:
    ``auto`` (``dlib-torch`` and the independent judge ``sface``, as ``synthfr quality``), ``none``, or names
    separated by commas. SFace only measures here; it never enters a loss, AttrOP or a sampler."""
    options: dict = field(default_factory=dict)
    """Per-metric options, e.g. ``{leakage: {threshold: 0.5}, verification: {max_pairs: 200000}}``."""


@dataclass
class TrainSection(TrainConfig):
    """The training job's config (a :class:`~synthfr.training.config.TrainConfig`), also readable as the mapping
    ``train.config`` was before it held the config itself: the keys the config sets, with their values
    (``cfg.train.config["epochs"]``, ``dict(cfg.train.config)``)."""

    def keys(self) -> Any:
        from synthfr.config import given_keys

        return given_keys(self).keys()

    def __getitem__(self, key: str) -> Any:
        from synthfr.config import to_dict

        if key not in self.keys():
            raise KeyError(key)
        return to_dict(getattr(self, key))

    def get(self, key: str, default: Any = None) -> Any:
        return self[key] if key in self.keys() else default


@dataclass
class TrainStage:
    """Face-recognition training (``synthfr train``)."""

    enabled: bool = False
    """Train an FR model on the generated dataset."""
    config: TrainSection = field(default_factory=TrainSection)
    """The training job's config (`synthfr train --help`): backbone, head, epochs, batch_size, lr, domain_mixup,
    virtual_classes, data_weights, ...; ``data``/``out``/``resume`` are set by the pipeline, ``seed`` and
    ``device`` default to the top-level ones."""
    extra_data: list = field(default_factory=list)
    """More training sets trained together with the generated dataset (which comes first), each with its own
    class ids, e.g. real aligned faces (SynFace Mix, Vec2Face Table 2); shares in ``config.data_weights``."""

    def __post_init__(self) -> None:
        if isinstance(self.config, dict):  # built in Python from a mapping
            from synthfr.config import from_dict

            self.config = from_dict(TrainSection, self.config, _where="train.config")
        _refuse_owned(self.config, "train.config", _TRAIN_OWNED)


@dataclass
class EvaluateStage(EvalConfig):
    """Verification benchmarks: the job config of ``synthfr eval`` (:class:`~synthfr.evaluation.EvalConfig`);
    the model (the trained run), device and output files are the pipeline's."""

    benchmarks: list[str] = field(default_factory=list)
    """Benchmark paths: insightface .bin files or LFW-style folders (e.g. ../shared/data/lfw/lfw.bin)."""
    embedder: str | None = None
    """Evaluate this registered embedder instead of the trained model (train disabled)."""
    batch_size: int = 64
    """Images per embedding batch (run-only)."""
    enabled: bool = False
    """Evaluate the trained model (or ``embedder``) on ``benchmarks``."""
    checkpoint: str | None = _owned(None)
    """OUT/train/run (the pipeline's)."""
    roc: str | None = _owned(None)
    """OUT/evaluate (the pipeline's)."""
    json: str | None = _owned(None)
    """OUT/evaluate/eval.json (the pipeline's)."""
    device: str = _owned("auto")
    """The top-level device (the pipeline's)."""

    def __post_init__(self) -> None:
        _refuse_owned(self, "evaluate", _EVAL_OWNED, EvalConfig)


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
