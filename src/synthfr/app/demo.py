"""The offline demo: a small synthetic FR dataset and its quality report, on a CPU, in minutes.

The demo is a shipped pipeline preset (``synthfr/app/presets/demo.yaml``) run by :func:`run_pipeline`, so its
folder has the pipeline's one layout and the report reads it like any pipeline folder:

1. **sample** — a synthetic gallery drawn from the aggregate dlib-torch statistics shipped with synthfr
   (``gallery: builtin``; no real person's embedding ships), and HyperFace identities packed in its
   standardised space (α = 0.5 keeps them near it), mapped back into dlib-torch's own space;
2. **generate** — the built-in generator ``synthfr-v2`` with HyperFace's β-noise;
3. **quality** — the images embedded again with ``dlib-torch`` and measured (separability, consistency,
   genuine/impostor EER) in the identities' standardised space; ``OUT/report.html`` (sample grid, quality
   plots, configuration, next steps) and ``OUT/demo.json`` (the demo's settings and figures).

:class:`DemoConfig` (``synthfr demo --identities N ...``) fills in the preset's values.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from synthfr.app.pipeline import PipelineConfig, run_pipeline

__all__ = ["DemoConfig", "run_demo", "demo_pipeline_config", "PRESET"]

#: the demo's pipeline preset (shipped with the package)
PRESET = Path(__file__).resolve().parent / "presets" / "demo.yaml"


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


def demo_pipeline_config(cfg: DemoConfig) -> PipelineConfig:
    """The pipeline config of the demo: the shipped preset with ``cfg``'s values filled in."""
    from synthfr.config import from_dict, load_yaml, set_dotted

    options: dict[str, Any] = {}
    if cfg.sampler.startswith("hyperface"):
        options = {"alpha": cfg.alpha, "iterations": cfg.iterations, "time_budget": cfg.time_budget}
    data = set_dotted(load_yaml(PRESET), {
        "out": cfg.out, "seed": cfg.seed, "device": cfg.device, "sample.method": cfg.sampler,
        "sample.n": cfg.identities, "sample.gallery_size": cfg.gallery_size, "sample.options": options,
        "generate.generator": cfg.generator, "generate.images_per_id": cfg.images_per_id,
        "generate.variation": cfg.variation})
    return from_dict(PipelineConfig, data)


def run_demo(cfg: DemoConfig | None = None, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run the demo end to end; returns a summary dict (also written to ``OUT/demo.json``)."""
    from synthfr.app.report import write_pipeline_report
    from synthfr.utils.io import write_json

    cfg = cfg or DemoConfig()
    out = Path(cfg.out)
    t0 = time.perf_counter()
    log(f"synthfr demo: {cfg.identities} {cfg.sampler} identities × {cfg.images_per_id} images with "
        f"{cfg.generator}, quality with dlib-torch (pipeline preset {PRESET.name})")
    result = run_pipeline(demo_pipeline_config(cfg), log=log)
    stages = result["stages"]
    if stages["sample"]["status"] == "skipped":
        # a re-run with the same settings reuses the identities (bit-exact reruns of an optimiser are not
        # guaranteed across BLAS thread schedules, and the dataset folder is tied to the identities' hash)
        log("      reusing the identities of an earlier run with the same settings")
    ids = stages["sample"].get("summary", {})
    summary: dict[str, Any] = {
        "config": dataclasses.asdict(cfg),
        "identities": {k: ids[k] for k in ("n", "dim", "max_cos", "mean_nn_cos", "gallery_mean_nn_cos", "seconds")
                       if k in ids},
        "generation": stages["generate"].get("summary", {}),
        "quality": {k: v for k, v in stages["quality"].get("summary", {}).items() if k != "report"},
        "seconds": time.perf_counter() - t0}
    write_json(out / "demo.json", summary)
    dataset = out / "generate" / "dataset"
    train_cmd = f"synthfr train --data {dataset} --backbone mobilefacenet --head arcface --out runs/demo"
    report = write_pipeline_report(out, out / "report.html", config=summary["config"], title="synthfr demo report",
                                   subtitle=f"{cfg.identities} {cfg.sampler} identities × {cfg.images_per_id} "
                                            f"images, generator {cfg.generator}, seed {cfg.seed}",
                                   next_steps=["# train an FR model on this dataset (see README)", train_cmd])
    for k, v in summary["quality"].items():
        log(f"      {k}: {v}")
    log(f"done in {summary['seconds']:.0f} s. Dataset: {dataset}  Report: {report}")
    log(f"next: train an FR model on it:  {train_cmd}  (see README)")
    return summary
