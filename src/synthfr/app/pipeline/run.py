"""Running the pipeline: the plan (skip, run, re-run), the stage markers, torchrun ranks and the report.

``run_pipeline(PipelineConfig)`` (CLI: ``synthfr pipeline CONFIG.yaml``) writes one folder layout, the only one
the report reads (:mod:`synthfr.app.report`)::

    OUT/sample/ids.npy (+ gallery.npy for ``gallery: builtin``)      synthfr.samplers.sample_identities
    OUT/generate/dataset/ (images/, manifest.jsonl, config.yaml)     synthfr.generation.generate_dataset
    OUT/quality/ (embeddings.npy, quality.json, report.html)         evaluate_quality + write_quality_report
    OUT/train/run/ (model.safetensors, config.json, ...)             synthfr.training.loop.train
    OUT/evaluate/ (eval.json, ROC files)                             synthfr.evaluation.evaluate.run_eval
    OUT/pipeline.json (all stage summaries), OUT/config.yaml (resolved config + seed + versions)
    OUT/report.html (samples, quality, training curves, ROC, config)  synthfr.app.report.write_pipeline_report

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
from pathlib import Path
from typing import Any, Callable

from synthfr.app.pipeline.config import STAGES, PipelineConfig, stage_dir
from synthfr.app.pipeline.stages import RUNNERS, abspath, generate_config, train_config
from synthfr.evaluation.config import EvalConfig
from synthfr.generation.config import GenerateConfig
from synthfr.samplers.config import SampleConfig

__all__ = ["run_pipeline"]


# TrainConfig fields that do not change the trained model (left out of the stage's resolved config).
_TRAIN_RUN_ONLY = ("device", "memory_format", "num_workers", "threads", "progress", "log_every", "tensorboard",
                   "keep_checkpoints", "checkpoint_every")


def _canon(obj: Any) -> Any:
    from synthfr.config import to_dict

    return json.loads(json.dumps(to_dict(obj), sort_keys=True, default=str))


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(_canon(obj), sort_keys=True).encode()).hexdigest()[:16]


def _resolved(cfg: PipelineConfig) -> dict[str, dict[str, Any]]:
    """Each stage's resolved config (what decides its output), with a digest of the stages it reads from."""
    s = cfg.sample
    sample = {"method": s.method, "n": s.n, "dim": s.dim, "gallery": abspath(s.gallery),
              "seed": cfg.seed if s.seed is None else s.seed, "options": s.options}
    if s.gallery == "builtin":
        sample["gallery_size"] = s.gallery_size
    sample.update(_changed(s, SampleConfig, (*sample, "gallery_size", "threads", "progress")))
    from synthfr.generation import RUN_ONLY_FIELDS

    g = cfg.generate
    gen = {"generator": g.generator, "weights": abspath(g.weights), "images_per_id": g.images_per_id,
           "variation": g.variation, "filter_min_sim": g.filter_min_sim, "embedder": g.embedder, "seed": cfg.seed,
           "options": {k: v for k, v in {**_changed(g, GenerateConfig, ()), **g.options}.items()
                       if k not in RUN_ONLY_FIELDS and k not in ("generator", "weights", "images_per_id", "variation",
                                                                "filter_min_sim", "embedder", "identities", "seed")}}
    q = cfg.quality
    quality = {"embedder": q.embedder, "space": q.space, "reference": abspath(q.reference),
               "reference_labels": abspath(q.reference_labels), "options": q.options}
    train = {k: v for k, v in train_config(cfg).items() if k not in _TRAIN_RUN_ONLY}
    if cfg.train.extra_data:  # more training sets change the model
        train["extra_data"] = [abspath(p) for p in cfg.train.extra_data]
    e = cfg.evaluate
    evaluate = {"benchmarks": [abspath(b) for b in e.benchmarks], "flip": e.flip, "embedder": e.embedder,
                "model": "train" if e.embedder is None else None,
                **_changed(e, EvalConfig, ("benchmarks", "flip", "embedder", "batch_size", "progress"))}
    res = {"sample": sample}
    res["generate"] = {**gen, "upstream": {"sample": _digest(res["sample"])}}
    res["quality"] = {**quality, "upstream": {"generate": _digest(res["generate"])}}
    res["train"] = {**train, "upstream": {"generate": _digest(res["generate"])}}
    res["evaluate"] = {**evaluate, "upstream": ({"train": _digest(res["train"])} if e.embedder is None else {})}
    return {k: _canon(v) for k, v in res.items()}


def stage_configs(cfg: PipelineConfig) -> dict[str, dict[str, Any]]:
    """Each stage's resolved config: what ``OUT/<stage>/DONE.json`` records, and what a run compares it with (an
    equal one is skipped). Lets a caller tell whether a finished stage elsewhere made the same output."""
    return _resolved(cfg)


def _changed(stage: Any, job: type, left_out: tuple[str, ...]) -> dict[str, Any]:
    """The fields of job config ``job`` that ``stage`` sets to other than their defaults (so a config that does
    not use them resolves, and digests, as before they existed), the pipeline's own and ``left_out`` aside."""
    defaults = job.__dataclass_fields__
    out = {}
    for f in dataclasses.fields(job):
        if f.name in left_out or f.metadata.get("hidden") or stage.__dataclass_fields__[f.name].metadata.get("hidden"):
            continue
        d = defaults[f.name]
        default = d.default_factory() if d.default_factory is not dataclasses.MISSING else d.default
        if getattr(stage, f.name) != default:
            out[f.name] = getattr(stage, f.name)
    return out


def _enabled(cfg: PipelineConfig, stage: str) -> bool:
    flags = {"quality": cfg.quality.enabled, "train": cfg.train.enabled, "evaluate": cfg.evaluate.enabled}
    return flags.get(stage, True)


def _check(cfg: PipelineConfig) -> None:
    """Errors that would otherwise surface only after the earlier stages have run: every stage's settings are
    validated completely (types, ranges, specs) before the first stage writes anything."""
    from synthfr.generation import validate_generate_config
    from synthfr.utils.validate import check_device, check_out_dir, check_range, check_types

    check_types(cfg)
    check_out_dir(cfg.out, "out")
    check_device(cfg.device, "device")
    check_range("sample.n", cfg.sample.n, 1, integer=True)
    check_range("sample.dim", cfg.sample.dim, 1, integer=True)
    validate_generate_config(generate_config(cfg))
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
    from synthfr.generators import REGISTRY as GENERATORS

    if gen_name in GENERATORS and GENERATORS.get(gen_name).needs_weights and not cfg.generate.weights:
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
            summ = RUNNERS[st](cfg, d, log)
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
    """OUT/report.html (synthfr.app.report) from the stages of this run that are complete; rewritten only
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
        from synthfr.app.report import write_pipeline_report

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
