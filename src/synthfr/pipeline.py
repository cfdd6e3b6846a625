"""One-command pipeline: sample identities -> generate -> quality report -> (train) -> (evaluate).

``run_pipeline(PipelineConfig)`` (CLI: ``synthfr pipeline CONFIG.yaml``) chains the public API of every stage::

    OUT/sample/ids.npy (+ gallery.npy for ``gallery: builtin``)      synthfr.samplers._api.sample_identities
    OUT/generate/dataset/ (images/, manifest.jsonl, config.yaml)     synthfr.generation.generate_dataset
    OUT/quality/ (embeddings.npy, quality.json, report.html)         evaluate_quality + write_quality_report
    OUT/train/run/ (model.safetensors, config.json, ...)             synthfr.training.loop.train
    OUT/evaluate/ (eval.json, ROC files)                             synthfr.evaluation.evaluate.run_eval
    OUT/pipeline.json (all stage summaries), OUT/config.yaml (resolved config + seed + versions)
    OUT/report.html (samples, quality, training curves, ROC, config)  synthfr.report.pipeline.write_pipeline_report

Resuming. A stage is complete iff ``OUT/<stage>/DONE.json`` exists; it holds the stage's resolved config
(including a digest of the stages it reads from) and its summary, and is written atomically as the stage's
last step. A completed stage with the same resolved config is skipped; a completed stage whose config
changed raises an error naming the stage (``--force STAGE`` deletes that stage's folder and re-runs it and
every later stage). An interrupted stage (no marker) is re-run in place: generation resumes per identity
and training resumes from its latest checkpoint. Run-only settings (device, batch size of generation,
workers, progress bars) are not part of a stage's config: changing them never invalidates a stage.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

__all__ = ["PipelineConfig", "SampleStage", "GenerateStage", "QualityStage", "TrainStage", "EvaluateStage",
           "STAGES", "run_pipeline", "load_pipeline_config", "parse_overrides", "stage_dir"]

#: Stages in the order they run.
STAGES = ("sample", "generate", "quality", "train", "evaluate")

# GenerateConfig fields set by the pipeline itself (not allowed in ``generate.options``).
_GEN_OWNED = ("identities", "out", "seed", "resume", "device", "shard", "shard_mode", "generator", "weights",
              "images_per_id", "variation", "filter_min_sim", "embedder")
# TrainConfig fields set by the pipeline itself (not allowed in ``train.config``).
_TRAIN_OWNED = ("data", "out", "resume")
# TrainConfig fields that do not change the trained model (left out of the stage's resolved config).
_TRAIN_RUN_ONLY = ("device", "num_workers", "threads", "progress", "log_every", "tensorboard", "keep_checkpoints",
                   "checkpoint_every")


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


# ---------------------------------------------------------------------------------------------------------
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


def _canon(obj: Any) -> Any:
    from synthfr.config import to_dict

    return json.loads(json.dumps(to_dict(obj), sort_keys=True, default=str))


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(_canon(obj), sort_keys=True).encode()).hexdigest()[:16]


def _expand(p: str | None) -> str | None:
    return None if p is None else str(Path(p).expanduser()) if p != "builtin" else p


def _abspath(p: str | None) -> str | None:
    if p is None or p == "builtin":
        return p
    return str(Path(p).expanduser().resolve())


def _generator_embedder(spec: str) -> str | None:
    from synthfr.registry import parse_spec
    from synthfr.generators import REGISTRY

    name, _ = parse_spec(spec)
    try:
        return getattr(REGISTRY.get(name), "embedder", None)
    except Exception:  # noqa: BLE001 - unknown generator: generation reports it with the list of names
        return None


def _train_config(cfg: PipelineConfig) -> dict[str, Any]:
    tc = dict(cfg.train.config or {})
    tc.setdefault("seed", cfg.seed)
    return tc


def _resolved(cfg: PipelineConfig) -> dict[str, dict[str, Any]]:
    """Each stage's resolved config (what decides its output), with a digest of the stages it reads from."""
    s = cfg.sample
    sample = {"method": s.method, "n": s.n, "dim": s.dim, "gallery": _abspath(s.gallery),
              "seed": cfg.seed if s.seed is None else s.seed, "options": s.options}
    if s.gallery == "builtin":
        sample["gallery_size"] = s.gallery_size
    from synthfr.generation import RUN_ONLY_FIELDS

    g = cfg.generate
    gen = {"generator": g.generator, "weights": _abspath(g.weights), "images_per_id": g.images_per_id,
           "variation": g.variation, "filter_min_sim": g.filter_min_sim, "embedder": g.embedder, "seed": cfg.seed,
           "options": {k: v for k, v in g.options.items() if k not in RUN_ONLY_FIELDS}}
    q = cfg.quality
    quality = {"embedder": q.embedder, "space": q.space, "reference": _abspath(q.reference),
               "reference_labels": _abspath(q.reference_labels), "options": q.options}
    train = {k: v for k, v in _train_config(cfg).items() if k not in _TRAIN_RUN_ONLY}
    if cfg.train.extra_data:  # more training sets change the model
        train["extra_data"] = [_abspath(p) for p in cfg.train.extra_data]
    e = cfg.evaluate
    evaluate = {"benchmarks": [_abspath(b) for b in e.benchmarks], "flip": e.flip, "embedder": e.embedder,
                "model": "train" if e.embedder is None else None}
    res = {"sample": sample}
    res["generate"] = {**gen, "upstream": {"sample": _digest(res["sample"])}}
    res["quality"] = {**quality, "upstream": {"generate": _digest(res["generate"])}}
    res["train"] = {**train, "upstream": {"generate": _digest(res["generate"])}}
    res["evaluate"] = {**evaluate, "upstream": ({"train": _digest(res["train"])} if e.embedder is None else {})}
    return {k: _canon(v) for k, v in res.items()}


def _enabled(cfg: PipelineConfig, stage: str) -> bool:
    flags = {"quality": cfg.quality.enabled, "train": cfg.train.enabled, "evaluate": cfg.evaluate.enabled}
    return flags.get(stage, True)


def _check(cfg: PipelineConfig) -> None:
    """Errors that would otherwise surface only after the earlier stages have run: every stage's settings are
    validated completely (types, ranges, specs) before the first stage writes anything."""
    from synthfr.generation import GenerateConfig, validate_generate_config
    from synthfr.utils.validate import check_device, check_out_dir, check_range, check_types

    check_types(cfg)
    check_out_dir(cfg.out, "out")
    check_device(cfg.device, "device")
    check_range("sample.n", cfg.sample.n, 1, integer=True)
    check_range("sample.dim", cfg.sample.dim, 1, integer=True)
    g = cfg.generate
    gc = {"identities": "ids.npy", "generator": g.generator, "weights": g.weights, "images_per_id": g.images_per_id,
          "variation": g.variation, "seed": cfg.seed, "out": str(Path(cfg.out) / "generate" / "dataset"),
          "filter_min_sim": g.filter_min_sim, "embedder": g.embedder, "device": cfg.device, **dict(g.options or {})}
    from synthfr.config import from_dict

    validate_generate_config(from_dict(GenerateConfig, gc))
    if cfg.train.enabled:
        from synthfr.training.config import TrainConfig

        tc = {**_train_config(cfg), "data": "dataset", "out": "run"}
        tc.pop("extra_data", None)  # pipeline-level: joined to data when the stage runs
        from_dict(TrainConfig, tc)
    if cfg.sample.gallery is None and cfg.sample.dim is None:
        raise ValueError("sample: give dim (e.g. 128 for the built-in generator, 512 for ArcFace-space generators)"
                         " or gallery (an embeddings .npy, or 'builtin')")
    for key, p in (("sample.gallery", cfg.sample.gallery), ("generate.weights", cfg.generate.weights),
                   ("quality.reference", cfg.quality.reference if cfg.quality.enabled else None),
                   *(("train.extra_data", x) for x in (cfg.train.extra_data if cfg.train.enabled else []))):
        if p is not None and p != "builtin" and not Path(p).expanduser().exists():
            raise FileNotFoundError(f"{key}: {p} does not exist; fix the path in the config or with "
                                    f"--set {key}=PATH")
    gen_name = cfg.generate.generator.split(":", 1)[0]
    if gen_name in ("arc2face", "vec2face") and not cfg.generate.weights:
        raise ValueError(f"generate.weights is required for the {gen_name} generator: download its weights "
                         f"(docs/generators.md) and pass --set generate.weights=DIR")
    if cfg.evaluate.enabled:
        if not cfg.evaluate.benchmarks:
            raise ValueError("evaluate is enabled but evaluate.benchmarks is empty: pass "
                             "--set evaluate.benchmarks=[PATH] (an insightface .bin such as "
                             "../shared/data/lfw/lfw.bin, or an LFW-style folder), or --set evaluate.enabled=false")
        for b in cfg.evaluate.benchmarks:
            if not Path(b).expanduser().exists():
                raise FileNotFoundError(f"evaluate.benchmarks: {b} does not exist; pass an insightface .bin or an "
                                        "LFW-style folder")
        if not cfg.train.enabled and cfg.evaluate.embedder is None:
            raise ValueError("evaluate needs a model: enable train (--set train.enabled=true) or name a registered "
                             "embedder with --set evaluate.embedder=NAME")


def _read_marker(d: Path) -> dict[str, Any] | None:
    p = d / "DONE.json"
    if not p.is_file():
        return None
    try:
        return json.loads(p.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def _write_marker(d: Path, stage: str, config: dict[str, Any], summary: dict[str, Any], seconds: float,
                  token: str = "") -> None:
    from synthfr.utils.io import write_json

    write_json(d / "DONE.json", {"stage": stage, "config": config, "summary": summary, "seconds": seconds,
                                 "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "run": token, "t": time.time()})


def _diff(a: Any, b: Any, prefix: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out: list[str] = []
        for k in sorted(set(a) | set(b)):
            out += _diff(a.get(k), b.get(k), f"{prefix}.{k}" if prefix else str(k))
        return out
    return [] if a == b else [f"{prefix}: {a!r} -> {b!r}"]


# ---------------------------------------------------------------------------------------------------------
# stages: each returns its summary (plain JSON values)
def _run_sample(cfg: PipelineConfig, d: Path, log: Callable[[str], None]) -> dict[str, Any]:
    import numpy as np

    from synthfr.samplers._api import sample_identities

    s = cfg.sample
    seed = cfg.seed if s.seed is None else s.seed
    gallery: Any = _expand(s.gallery)
    if gallery == "builtin":
        from synthfr.galleries import GaussianGallery

        gallery = d / "gallery.npy"
        np.save(gallery, GaussianGallery.load().sample(s.gallery_size, seed=seed))
        log(f"      builtin gallery: {s.gallery_size} points from the shipped dlib-torch statistics")
    _, stats = sample_identities(s.method, s.n, dim=s.dim, gallery=gallery, seed=seed, out=d / "ids.npy",
                                 **dict(s.options or {}))
    summ = {k: stats[k] for k in ("method", "n", "dim", "max_cos", "mean_nn_cos", "gallery_mean_nn_cos", "seconds")
            if k in stats}
    summ["ids"] = str(d / "ids.npy")
    return summ


def _run_generate(cfg: PipelineConfig, d: Path, log: Callable[[str], None]) -> dict[str, Any]:
    from synthfr.generation import GenerateConfig, generate_dataset

    g = cfg.generate
    gc = GenerateConfig(identities=str(stage_dir(cfg, "sample") / "ids.npy"), generator=g.generator,
                        weights=_expand(g.weights), images_per_id=g.images_per_id, variation=g.variation, seed=cfg.seed,
                        out=str(d / "dataset"), filter_min_sim=g.filter_min_sim, embedder=g.embedder,
                        device=cfg.device, resume=True)  # resolve_device: cuda:LOCAL_RANK per rank
    for k, v in (g.options or {}).items():
        setattr(gc, k, v)
    res = generate_dataset(gc, log=log)
    summ = {k: v for k, v in res.items() if isinstance(v, (int, float, str, bool)) or v is None}
    summ["dataset"] = str(d / "dataset")
    return summ


def _run_quality(cfg: PipelineConfig, d: Path, log: Callable[[str], None]) -> dict[str, Any]:
    import numpy as np

    from synthfr.evaluation.embed import embed_path
    from synthfr.registry import parse_spec
    from synthfr.quality.evaluate import evaluate_quality, load_embeddings
    from synthfr.report.quality import summary_items, write_quality_report
    from synthfr.utils.io import write_json

    q = cfg.quality
    ids_path = stage_dir(cfg, "sample") / "ids.npy"
    spec = q.embedder
    own = spec == "auto"
    if own:
        spec = cfg.generate.embedder or _generator_embedder(cfg.generate.generator)
        if spec == "onnx" and cfg.generate.weights:  # Arc2Face: arcface.onnx in the weights folder
            onnx = Path(cfg.generate.weights).expanduser() / "arcface.onnx"
            if onnx.is_file():
                spec = f"onnx:path={onnx}"
        if spec == "arcface-r100-glint360k" and cfg.generate.weights:  # Vec2Face: its ArcFace in the same folder
            spec = f"arcface-r100-glint360k:weights={Path(cfg.generate.weights).expanduser()}"
    name, opts = parse_spec(spec)
    if name not in (None, "any", "test-pattern"):
        from synthfr.face.embedders import REGISTRY as EMBEDDERS

        if name not in EMBEDDERS or (name == "onnx" and "path" not in opts):
            raise ValueError(f"quality: no usable embedder for generator {cfg.generate.generator!r} (its space is "
                             f"{spec!r}); set generate.embedder or quality.embedder to NAME[:key=value] such as "
                             "onnx:path=ARCFACE.onnx (`synthfr list embedders`)")
    if name in (None, "any", "test-pattern"):  # test generators: read the pattern back
        from synthfr.generators.testing import PatternDecoder

        embedder: Any = PatternDecoder(dim=int(np.load(ids_path, mmap_mode="r").shape[1]))
    elif opts:  # NAME:key=value,... (e.g. onnx:path=arcface.onnx)
        from synthfr.face.embedders import create_embedder

        try:
            embedder = create_embedder(name, device=cfg.device, **opts)
        except TypeError:
            embedder = create_embedder(name, **opts)
    else:
        embedder = name
    emb_path = d / "embeddings.npy"
    res = embed_path(stage_dir(cfg, "generate") / "dataset" / "images", embedder, emb_path, device=cfg.device)
    if "labels" not in res:
        raise ValueError(f"{stage_dir(cfg, 'generate') / 'dataset' / 'images'} is not an identity tree; "
                         "quality needs generate.options.format=folder")
    emb, lab = load_embeddings(emb_path, res["labels"])
    ref = rlab = None
    if q.reference:
        ref, rlab = load_embeddings(_expand(q.reference), _expand(q.reference_labels))
    if q.space == "auto":
        from synthfr.spaces import EmbeddingSpace

        space: Any = EmbeddingSpace.load(ids_path) if own else "fit"
    else:
        space = q.space
    result = evaluate_quality(emb, lab, reference=ref, reference_labels=rlab, space=space,
                              options=dict(q.options or {}))
    result["source"] = f"{stage_dir(cfg, 'generate') / 'dataset'} embedded with {spec}"
    write_json(d / "quality.json", result)
    from synthfr.data.card import quality_path, write_dataset_card

    dataset = stage_dir(cfg, "generate") / "dataset"  # the dataset card shows these figures too
    write_json(quality_path(dataset, spec or "test-pattern"), result)
    write_dataset_card(dataset)
    report = write_quality_report(result, d / "report.html", title="synthfr pipeline: dataset quality",
                                  subtitle=f"{cfg.sample.n} {cfg.sample.method} identities × "
                                           f"{cfg.generate.images_per_id} images, generator {cfg.generate.generator}")
    summ = {k: v for k, v in summary_items(result).items()}
    summ["report"] = str(report)
    return summ


def _run_train(cfg: PipelineConfig, d: Path, log: Callable[[str], None]) -> dict[str, Any]:
    from synthfr.config import from_dict
    from synthfr.training.config import TrainConfig
    from synthfr.training.loop import train

    tc = _train_config(cfg)
    tc.setdefault("device", cfg.device)
    if tc.get("domain_mixup"):
        tc["domain_mixup"] = _expand(tc["domain_mixup"])
    data = str(stage_dir(cfg, "generate") / "dataset")
    extra = [_abspath(p) for p in cfg.train.extra_data]
    tc.update(data=[data, *extra] if extra else data, out=str(d / "run"), resume=True)
    run_dir = Path(train(from_dict(TrainConfig, tc)))
    summ: dict[str, Any] = {"run": str(run_dir), "backbone": tc.get("backbone", TrainConfig.backbone)}
    log_csv = run_dir / "log.csv"
    if log_csv.is_file():  # the last logged step: step, epoch, loss
        from synthfr.utils.run_dir import read_csv_rows

        rows = read_csv_rows(log_csv)
        if rows:
            for k in ("step", "epoch", "loss"):
                if rows[-1].get(k) is not None:
                    summ[f"final {k}"] = rows[-1][k]
    return summ


def _run_evaluate(cfg: PipelineConfig, d: Path, log: Callable[[str], None]) -> dict[str, Any]:
    from synthfr.evaluation.evaluate import run_eval

    e = cfg.evaluate
    kw: dict[str, Any] = ({"embedder": e.embedder} if e.embedder is not None
                          else {"checkpoint": stage_dir(cfg, "train") / "run"})
    res = run_eval(**kw, benchmarks=[_expand(b) for b in e.benchmarks], flip=e.flip, json_path=d / "eval.json",
                   roc_dir=d, device=cfg.device, batch_size=e.batch_size)
    summ: dict[str, Any] = {}
    for name, b in res.get("benchmarks", {}).items():
        summ[f"{name} accuracy"] = b.get("accuracy")
        summ[f"{name} eer"] = b.get("eer")
        tpr = b.get("tpr_at_fpr") or {}
        if "1e-3" in tpr:
            summ[f"{name} tpr@fpr=1e-3"] = tpr["1e-3"]
    summ["json"] = str(d / "eval.json")
    return summ


_RUNNERS = {"sample": _run_sample, "generate": _run_generate, "quality": _run_quality, "train": _run_train,
            "evaluate": _run_evaluate}


def run_pipeline(cfg: PipelineConfig, force: list[str] | tuple[str, ...] = (),
                 log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run every enabled stage that is not complete yet; returns (and writes to ``OUT/pipeline.json``)
    ``{"out", "stages": {stage: {"status": ran|skipped|disabled, "seconds", "summary"}}, "seconds"}``.

    ``force``: stage names (or ``all``) to delete and re-run; every later stage is re-run too.
    """
    from synthfr.utils.lock import FolderLock

    log = log or (lambda m: print(m, file=sys.stderr))
    force = list(force or ())
    for f in force:
        if f != "all" and f not in STAGES:
            raise ValueError(f"--force {f}: unknown stage; choose from {', '.join(STAGES)} or all")
    _check(cfg)
    rank, world, token = _dist()
    t_start = time.time() - 120.0  # files of this run are newer than this (ranks start within seconds)
    out = Path(cfg.out)
    resolved = _resolved(cfg)
    existed = out.exists()
    # one pipeline per folder at a time (under torchrun one lock per rank); a second run fails at once
    lock = FolderLock(out, "pipeline", key=f"rank{rank}" if world > 1 else None)
    lock.acquire()
    try:
        # raises before anything is written when a finished stage changed
        plan = _plan(cfg, force, resolved) if rank == 0 else None
        return _run_locked(cfg, plan, rank, world, token, t_start, resolved, log)
    finally:
        lock.release()
        if not existed and out.is_dir() and not any(out.iterdir()):
            out.rmdir()


def _run_locked(cfg: PipelineConfig, plan: dict[str, str] | None, rank: int, world: int, token: str,
                t_start: float, resolved: dict[str, dict[str, Any]], log: Callable[[str], None]) -> dict[str, Any]:
    from synthfr.utils.io import write_json
    from synthfr.utils.provenance import write_provenance

    out = Path(cfg.out)
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        write_provenance(out, config=cfg, seed=cfg.seed)
        if world > 1:
            write_json(out / ".pipeline-plan.json", {"run": token, "t": time.time(), "plan": plan})
    else:  # the plan of rank 0 (it alone reads and writes markers)
        log = (lambda m: None)
        plan = _wait_for(out / ".pipeline-plan.json", token, t_start, "plan")["plan"]

    t_all = time.perf_counter()
    summary: dict[str, Any] = {"out": str(out), "stages": {}}
    n = len(STAGES)
    for i, st in enumerate(STAGES):
        d = stage_dir(cfg, st)
        action = plan[st]
        if action == "disabled":
            log(f"[{i + 1}/{n}] {st}: disabled")
            summary["stages"][st] = {"status": "disabled"}
            continue
        if action == "skip":
            marker = _read_marker(d) or {}
            log(f"[{i + 1}/{n}] {st}: complete, skipped ({d / 'DONE.json'})")
            summary["stages"][st] = {"status": "skipped", "seconds": marker.get("seconds"),
                                     "summary": marker.get("summary", {})}
            continue
        distributed = world > 1 and st in ("generate", "train")
        if rank == 0:
            if action == "rerun":
                (d / "DONE.json").unlink(missing_ok=True)
                shutil.rmtree(d)
            d.mkdir(parents=True, exist_ok=True)
            if distributed:  # the other ranks start once the folder is ready
                write_json(d / ".start.json", {"run": token, "t": time.time()})
            log(f"[{i + 1}/{n}] {st}: running -> {d}" + (f" ({world} processes)" if distributed else ""))
        elif distributed:
            _wait_for(d / ".start.json", token, t_start, st)
        if rank == 0 or distributed:
            t0 = time.perf_counter()
            summ = _RUNNERS[st](cfg, d, log)
            secs = time.perf_counter() - t0
        if rank != 0:  # wait until rank 0 has finished the stage (and every rank its share)
            marker = _wait_for(d / "DONE.json", token, t_start, st)
            summary["stages"][st] = {"status": "ran", "seconds": marker.get("seconds"), "summary": marker["summary"]}
            continue
        _write_marker(d, st, resolved[st], summ, secs, token)
        summary["stages"][st] = {"status": "ran", "seconds": secs, "summary": summ}
        for k, v in summ.items():
            if isinstance(v, float):
                v = f"{v:.4g}"
            log(f"      {k}: {v}")
        log(f"      done in {secs:.1f} s")
    summary["seconds"] = time.perf_counter() - t_all
    if rank == 0:
        report = _write_report(out, summary, log)
        if report is not None:
            summary["report"] = str(report)
        write_json(out / "pipeline.json", summary)
        log(f"pipeline complete in {summary['seconds']:.0f} s: {out / 'pipeline.json'}")
    return summary


def _write_report(out: Path, summary: dict[str, Any], log: Callable[[str], None]) -> Path | None:
    """OUT/report.html (synthfr.report.pipeline) from the stages of this run that are complete; rewritten only
    when a stage ran, the set of reported stages changed or the report is missing. A failure is logged, not
    raised: every stage is done by then."""
    path = out / "report.html"
    complete = [st for st, s in summary["stages"].items() if s.get("status") in ("ran", "skipped")]
    summary["report_stages"] = complete
    ran = any(s.get("status") == "ran" for s in summary["stages"].values())
    try:
        before = json.loads((out / "pipeline.json").read_text()).get("report_stages")
    except (OSError, ValueError, AttributeError):
        before = None
    if path.is_file() and not ran and before == complete:
        return path
    try:
        from synthfr.report.pipeline import write_pipeline_report

        write_pipeline_report(out, path, stages=complete)
    except Exception as e:  # noqa: BLE001 - the stages' outputs are complete; only the summary page failed
        log(f"report: could not write {path}: {type(e).__name__}: {e}; rebuild it with `synthfr report {out}`")
        return None
    log(f"report: {path}")
    return path


def _plan(cfg: PipelineConfig, force: list[str], resolved: dict[str, dict[str, Any]]) -> dict[str, str]:
    """Stage -> disabled | skip | run | rerun; a completed stage whose config changed is an error."""
    first_forced = 0 if "all" in force else min((STAGES.index(f) for f in force), default=len(STAGES))
    plan: dict[str, str] = {}
    for i, st in enumerate(STAGES):
        d = stage_dir(cfg, st)
        if not _enabled(cfg, st):
            plan[st] = "disabled"
            continue
        if i >= first_forced or any(plan.get(p) in ("run", "rerun") for p in _upstream(st, cfg)):
            plan[st] = "rerun" if d.exists() and (i >= first_forced or _read_marker(d) is not None) else "run"
            continue
        marker = _read_marker(d)
        if marker is None:
            plan[st] = "run"
        elif marker.get("config") == resolved[st]:
            plan[st] = "skip"
        else:
            changes = "; ".join(_diff(marker.get("config"), resolved[st])) or "(unreadable marker)"
            raise ValueError(f"stage {st!r} in {d} was completed with a different config ({changes}). "
                             f"Re-run it and every later stage with --force {st}, or choose another --out")
    return plan


def _dist() -> tuple[int, int, str]:
    """(rank, world size, run token) under torchrun; (0, 1, token) otherwise."""
    from synthfr.utils.distributed import env_rank_world

    rank, world = env_rank_world()
    token = "-".join(os.environ.get(k, "") for k in ("TORCHELASTIC_RUN_ID", "MASTER_ADDR", "MASTER_PORT"))
    return rank, world, token


def _wait_for(path: Path, token: str, not_before: float, what: str) -> dict[str, Any]:
    """Poll ``path`` (JSON) until it carries this run's token (ranks > 0 wait for rank 0; no timeout)."""
    from synthfr.utils.wait import wait_until

    def ready() -> dict[str, Any] | None:
        try:
            data = json.loads(path.read_text())
            if data.get("run") == token and float(data.get("t", 0)) >= not_before:
                return data
        except (OSError, ValueError):
            pass
        return None
    return wait_until(ready, interval=1.0)


def _upstream(stage: str, cfg: PipelineConfig) -> tuple[str, ...]:
    return {"sample": (), "generate": ("sample",), "quality": ("generate",), "train": ("generate",),
            "evaluate": ("train",) if cfg.evaluate.embedder is None else ()}[stage]
