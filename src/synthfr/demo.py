"""The offline demo: a small synthetic FR dataset and its quality report, on a CPU, in minutes.

Journey (each step is the public API that the matching CLI subcommand wraps):

1. **Gallery** — a synthetic gallery drawn from the aggregate dlib-torch statistics shipped with synthfr
   (:mod:`synthfr.galleries`): the HyperFace regulariser needs real-face geometry, and no real person's
   embedding ships with the package.
2. **Identities** — ``sample_identities("hyperface", ...)`` packs identities in the standardised space of that
   gallery (α = 0.5 keeps them near it) and maps them back into dlib-torch's own space.
3. **Images** — ``generate_dataset`` with the built-in generator ``synthfr-v2`` and HyperFace's β-noise.
4. **Quality** — the dataset is embedded again with ``dlib-torch`` and measured (separability, consistency,
   genuine/impostor EER) in the identities' standardised space; a self-contained HTML report
   (:mod:`synthfr.report.pipeline`: sample grid, quality plots, configuration) is written to ``OUT/report.html``.
"""
from __future__ import annotations

import json

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

__all__ = ["DemoConfig", "run_demo"]


@dataclass
class DemoConfig:
    """Settings of ``synthfr demo``."""

    out: str = "demo-output"
    """Output folder (identities, dataset, quality JSON and HTML report)."""
    identities: int = 200
    """Number of synthetic identities."""
    images_per_id: int = 8
    """Images per identity."""
    sampler: str = "hyperface"
    """Identity sampler (`synthfr list samplers`)."""
    alpha: float = 0.5
    """HyperFace gallery-regulariser weight (0 = pure packing)."""
    iterations: int | None = 1000
    """Steps of the identity packer: a step count, not a time budget, so that the same seed regenerates the
    same identities (and dataset) on any machine."""
    time_budget: float | None = None
    """Optional extra cap in seconds on the identity packer (makes the result depend on the machine's speed)."""
    gallery_size: int = 2000
    """Size of the synthetic gallery drawn from the shipped statistics."""
    variation: str = "hyperface-noise"
    """Per-image variation spec NAME[:key=value,...]."""
    generator: str = "synthfr-v2"
    """Generator (the built-in one ships with the package)."""
    seed: int = 0
    """Global seed: the same seed regenerates the same dataset."""
    device: str = "auto"
    """Torch device."""


def run_demo(cfg: DemoConfig | None = None, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run the demo end to end; returns a summary dict (also written to ``OUT/demo.json``)."""
    import numpy as np

    from synthfr.evaluation.embed import embed_path
    from synthfr.galleries import GaussianGallery
    from synthfr.generation import GenerateConfig, generate_dataset
    from synthfr.quality.evaluate import evaluate_quality, load_embeddings
    from synthfr.report.pipeline import write_pipeline_report
    from synthfr.report.quality import summary_items
    from synthfr.samplers._api import sample_identities
    from synthfr.spaces import EmbeddingSpace
    from synthfr.utils.io import write_json

    cfg = cfg or DemoConfig()
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    summary: dict[str, Any] = {"config": cfg.__dict__.copy()}

    log(f"[1/4] synthetic gallery: {cfg.gallery_size} points from shipped dlib-torch statistics")
    gallery = GaussianGallery.load().sample(cfg.gallery_size, seed=cfg.seed)
    np.save(out / "gallery.npy", gallery)

    log(f"[2/4] {cfg.identities} identities with {cfg.sampler} (alpha={cfg.alpha}, {cfg.iterations} steps)")
    ids_path = out / "identities" / "ids.npy"
    ids_path.parent.mkdir(parents=True, exist_ok=True)
    options: dict[str, Any] = {}
    if cfg.sampler.startswith("hyperface"):
        options.update(alpha=cfg.alpha, iterations=cfg.iterations, time_budget=cfg.time_budget)
    # a re-run with the same settings reuses the identities (bit-exact reruns of an optimiser are not guaranteed
    # across BLAS thread schedules, and the dataset folder is tied to the identities' hash)
    request = {"sampler": cfg.sampler, "n": cfg.identities, "seed": cfg.seed, "gallery_size": cfg.gallery_size,
               "options": options}
    req_path = ids_path.parent / "request.json"
    stats_path = ids_path.with_suffix(".stats.json")
    if ids_path.is_file() and stats_path.is_file() and req_path.is_file() and \
            json.loads(req_path.read_text()) == json.loads(json.dumps(request)):
        stats = json.loads(stats_path.read_text())
        log("      reusing the identities of an earlier run with the same settings")
    else:
        _, stats = sample_identities(cfg.sampler, cfg.identities, gallery=out / "gallery.npy", seed=cfg.seed,
                                     out=ids_path, **options)
        write_json(req_path, request)
    summary["identities"] = {k: stats[k] for k in ("n", "dim", "max_cos", "mean_nn_cos", "gallery_mean_nn_cos",
                                                   "seconds") if k in stats}
    log(f"      max_cos={stats['max_cos']:.3f} (standardised space), {stats['seconds']:.1f} s")

    log(f"[3/4] {cfg.identities}×{cfg.images_per_id} images with {cfg.generator}")
    gen = generate_dataset(GenerateConfig(
        identities=str(ids_path), generator=cfg.generator, images_per_id=cfg.images_per_id,
        variation=cfg.variation, seed=cfg.seed, out=str(out / "dataset"), device=cfg.device, resume=True))
    summary["generation"] = gen

    log("[4/4] quality: embed the images with dlib-torch, measure, write the report")
    emb_path = out / "quality" / "embeddings.npy"
    res = embed_path(out / "dataset" / "images", "dlib-torch", emb_path, device=cfg.device)
    emb, lab = load_embeddings(emb_path, res["labels"])
    space = EmbeddingSpace.load(ids_path)  # the identities' standardisation: thresholds mean what papers mean
    q = evaluate_quality(emb, lab, space=space)
    write_json(out / "quality" / "quality.json", q)
    summary["quality"] = summary_items(q)
    summary["seconds"] = time.perf_counter() - t0
    write_json(out / "demo.json", summary)
    train_cmd = (f"synthfr train --data {out / 'dataset'} --backbone mobilefacenet --head arcface "
                 "--out runs/demo")
    report = write_pipeline_report(out, out / "report.html", config=summary["config"], title="synthfr demo report",
                                   subtitle=f"{cfg.identities} {cfg.sampler} identities × {cfg.images_per_id} "
                                            f"images, generator {cfg.generator}, seed {cfg.seed}",
                                   next_steps=["# train an FR model on this dataset (see README)", train_cmd])
    for k, v in summary["quality"].items():
        log(f"      {k}: {v}")
    log(f"done in {summary['seconds']:.0f} s. Dataset: {out / 'dataset'}  Report: {report}")
    log(f"next: train an FR model on it:  {train_cmd}  (see README)")
    return summary
