"""The five stages of the pipeline; each runs one public job of the library and returns its summary (plain
JSON values). ``RUNNERS[stage](cfg, stage_folder, log)``."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Callable

from synthfr.app.pipeline.config import PipelineConfig, stage_dir

__all__ = ["RUNNERS", "generator_embedder", "train_config", "generate_config", "expand", "abspath"]


def expand(p: str | None) -> str | None:
    return None if p is None else str(Path(p).expanduser()) if p != "builtin" else p


def abspath(p: str | None) -> str | None:
    if p is None or p == "builtin":
        return p
    return str(Path(p).expanduser().resolve())


def generator_embedder(spec: str, weights: str | None = None) -> str | None:
    """The embedder spec the generator declares for its weights (None for an unknown generator: generation
    reports that with the list of names)."""
    from synthfr.generators import REGISTRY
    from synthfr.registry import parse_spec

    name, _ = parse_spec(spec)
    return REGISTRY.get(name).embedder_spec_for(weights) if name in REGISTRY else None


def train_config(cfg: PipelineConfig) -> dict[str, Any]:
    """The training settings as the config gave them (the stage's digest), with the top-level seed filled in."""
    from synthfr.config import given_keys

    tc = given_keys(cfg.train.config)
    tc.setdefault("seed", cfg.seed)
    return tc


def generate_config(cfg: PipelineConfig) -> Any:
    """The :class:`~synthfr.generation.GenerateConfig` the generate stage runs (types checked)."""
    gc = cfg.generate.job_config(identities=str(stage_dir(cfg, "sample") / "ids.npy"),
                                 out=str(stage_dir(cfg, "generate") / "dataset"), seed=cfg.seed,
                                 device=cfg.device)  # resolve_device: cuda:LOCAL_RANK per rank
    return dataclasses.replace(gc, weights=expand(gc.weights))


# stages: each runs one public job of the library and returns its summary (plain JSON values)
def _run_sample(cfg: PipelineConfig, d: Path, log: Callable[[str], None]) -> dict[str, Any]:
    import numpy as np

    from synthfr.samplers import SampleConfig, sample

    s = cfg.sample
    seed = cfg.seed if s.seed is None else s.seed
    gallery = expand(s.gallery)
    if gallery == "builtin":
        from synthfr.galleries import GaussianGallery

        gallery = str(d / "gallery.npy")
        np.save(gallery, GaussianGallery.load().sample(s.gallery_size, seed=seed))
        log(f"      builtin gallery: {s.gallery_size} points from the shipped dlib-torch statistics")
    job = SampleConfig(**{f.name: getattr(s, f.name) for f in dataclasses.fields(SampleConfig)})
    _, stats = sample(dataclasses.replace(job, seed=seed, gallery=gallery, out=str(d / "ids.npy")))
    summ = {k: stats[k] for k in ("method", "n", "dim", "max_cos", "mean_nn_cos", "gallery_mean_nn_cos", "seconds")
            if k in stats}
    summ["ids"] = str(d / "ids.npy")
    return summ


def _run_generate(cfg: PipelineConfig, d: Path, log: Callable[[str], None]) -> dict[str, Any]:
    from synthfr.generation import generate_dataset

    res = generate_dataset(generate_config(cfg), log=log)
    summ = {k: v for k, v in res.items() if isinstance(v, (int, float, str, bool)) or v is None}
    summ["dataset"] = str(d / "dataset")
    return summ


def _run_quality(cfg: PipelineConfig, d: Path, log: Callable[[str], None]) -> dict[str, Any]:
    import numpy as np

    from synthfr.face.embed import embed_path
    from synthfr.quality.evaluate import evaluate_quality, load_embeddings
    from synthfr.registry import create_from_spec
    from synthfr.report.quality import summary_items, write_quality_report
    from synthfr.utils.io import write_json

    q = cfg.quality
    ids_path = stage_dir(cfg, "sample") / "ids.npy"
    spec = q.embedder
    own = spec == "auto"
    if own:  # the space the generator declares (with the embedder file from its weights folder, if it has one)
        spec = cfg.generate.embedder or generator_embedder(cfg.generate.generator, expand(cfg.generate.weights))
    try:
        embedder = create_from_spec("embedder", spec, offer={
            "device": cfg.device, "dim": int(np.load(ids_path, mmap_mode="r").shape[1])})
    except (ValueError, FileNotFoundError) as e:  # say which stage and setting, then the embedder's own reason
        raise ValueError(f"quality: no usable embedder for generator {cfg.generate.generator!r} (its space is "
                         f"{spec!r}); set generate.embedder or quality.embedder to NAME[:key=value] such as "
                         f"onnx:path=ARCFACE.onnx (`synthfr list embedders`): {e}") from e
    emb_path = d / "embeddings.npy"
    res = embed_path(stage_dir(cfg, "generate") / "dataset" / "images", embedder, emb_path, device=cfg.device)
    if "labels" not in res:
        raise ValueError(f"{stage_dir(cfg, 'generate') / 'dataset' / 'images'} is not an identity tree; "
                         "quality needs generate.options.format=folder")
    emb, lab = load_embeddings(emb_path, res["labels"])
    ref = rlab = None
    if q.reference:
        ref, rlab = load_embeddings(expand(q.reference), expand(q.reference_labels))
    if q.space == "auto":
        from synthfr.spaces import EmbeddingSpace

        space: Any = EmbeddingSpace.load(ids_path) if own else "fit"
    else:
        space = q.space
    result = evaluate_quality(emb, lab, reference=ref, reference_labels=rlab, space=space,
                              options=dict(q.options or {}))
    result["source"] = f"{stage_dir(cfg, 'generate') / 'dataset'} embedded with {spec}"
    judged = _judge(cfg, spec, embedder, d, options=dict(q.options or {}))
    if judged:  # the report's "networks side by side" table, as `synthfr quality` writes it
        from synthfr.quality.networks import headline, network_name

        result["embedder"] = network_name(spec)
        result["judges"] = judged
        result["networks"] = {name: {"dataset": headline(r), "reference": {}}
                              for name, r in [(network_name(spec), result), *judged.items()]}
    write_json(d / "quality.json", result)
    from synthfr.data.card import quality_path, write_dataset_card

    dataset = stage_dir(cfg, "generate") / "dataset"  # the dataset card shows these figures too
    write_json(quality_path(dataset, spec), result)
    write_dataset_card(dataset)
    report = write_quality_report(result, d / "report.html", title="synthfr pipeline: dataset quality",
                                  subtitle=f"{cfg.sample.n} {cfg.sample.method} identities × "
                                           f"{cfg.generate.images_per_id} images, generator {cfg.generate.generator}")
    summ = {k: v for k, v in summary_items(result).items()}
    for name, r in judged.items():
        for label in ("separability", "EER", "mean cos to own centre"):
            v = (result["networks"][name]["dataset"]).get(label)
            if v is not None:
                summ[f"{name}: {label}"] = v
    summ["report"] = str(report)
    return summ


def _judge(cfg: PipelineConfig, spec: str, embedder: Any, d: Path, options: dict) -> dict[str, Any]:
    """Identity figures of the generated images by the other networks of ``quality.judges`` (each in its own
    fitted space), keyed by network name; {} when there are none."""
    from synthfr.face.embed import embed_path
    from synthfr.quality.evaluate import JUDGE_METRICS, evaluate_quality, load_embeddings
    from synthfr.quality.networks import network_name, resolve_networks
    from synthfr.registry import create_from_spec

    images = stage_dir(cfg, "generate") / "dataset" / "images"
    out: dict[str, Any] = {}
    own = {network_name(spec), network_name(embedder)}
    for j in resolve_networks(spec, cfg.quality.judges)[1:]:
        name = network_name(j)
        if name in own:
            continue
        net = create_from_spec("embedder", j, offer={"device": cfg.device})
        path = d / f"embeddings.{name.replace(':', '_').replace('/', '_')}.npy"
        res = embed_path(images, net, path, device=cfg.device)
        emb, lab = load_embeddings(path, res["labels"])
        out[name] = evaluate_quality(emb, lab, space="fit", options=options,
                                     metrics=[m for m in JUDGE_METRICS if m not in ("leakage", "frechet", "prdc")])
    return out


def _run_train(cfg: PipelineConfig, d: Path, log: Callable[[str], None]) -> dict[str, Any]:
    from synthfr.training.loop import train

    tc, given = cfg.train.config, train_config(cfg)
    data = str(stage_dir(cfg, "generate") / "dataset")
    extra = [abspath(p) for p in cfg.train.extra_data]
    job = dataclasses.replace(tc, seed=given["seed"], device=given.get("device", cfg.device),
                              domain_mixup=expand(tc.domain_mixup), data=[data, *extra] if extra else data,
                              out=str(d / "run"), resume=True)
    run_dir = Path(train(job))
    summ: dict[str, Any] = {"run": str(run_dir), "backbone": tc.backbone}
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
    from synthfr.evaluation import EvalConfig, evaluate

    e = cfg.evaluate
    job = EvalConfig(benchmarks=[expand(b) for b in e.benchmarks], embedder=e.embedder,
                     checkpoint=None if e.embedder is not None else str(stage_dir(cfg, "train") / "run"),
                     flip=e.flip, batch_size=e.batch_size, device=cfg.device, align=e.align, pairs=e.pairs,
                     roc=str(d), json=str(d / "eval.json"), progress=e.progress)
    res = evaluate(job)
    summ: dict[str, Any] = {}
    for name, b in res.get("benchmarks", {}).items():
        summ[f"{name} accuracy"] = b.get("accuracy")
        summ[f"{name} eer"] = b.get("eer")
        tpr = b.get("tpr_at_fpr") or {}
        if "1e-3" in tpr:
            summ[f"{name} tpr@fpr=1e-3"] = tpr["1e-3"]
    summ["json"] = str(d / "eval.json")
    return summ


RUNNERS = {"sample": _run_sample, "generate": _run_generate, "quality": _run_quality, "train": _run_train,
            "evaluate": _run_evaluate}
