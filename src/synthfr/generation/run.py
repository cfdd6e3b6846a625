"""``generate_dataset``: the sharded, resumable run that ties the stage together.

    identities (+ space) ─(shard)─▶ plan: conditions + render seeds ─▶ generator ─▶ checks (filter, landmarks)
        ─▶ JPEG (thread pool) ─▶ OUT/.tmp/<row>/ ─rename─▶ OUT/images/<row>/<k>.jpg + OUT/parts/<row>.jsonl
    finally: manifest.jsonl = parts concatenated in row order (+ train.rec/.idx with format "rec")

Sharding. ``shard="i/n"``: this process generates its share (see :mod:`synthfr.data.shards`) into its own
``out`` and writes a manifest of its rows; ``synthfr merge`` joins the shard folders. Under ``torchrun``
(``RANK``/``WORLD_SIZE`` set, no explicit shard) every rank writes its share into the same ``out``; rank 0
waits until every identity is complete (polling the fragments: no process group, no timeout on long jobs)
and writes the manifest.
"""
from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from synthfr.generation.checks import ImageChecks, LandmarkAlignmentCheck, resolve_filter_embedder
from synthfr.generation.config import GenerateConfig, validate_generate_config
from synthfr.generation.folder import DatasetFolder, dataset_config
from synthfr.generation.identities import is_sampler_spec, load_identities, sample_into
from synthfr.generation.plan import ImagePlan
from synthfr.generation.scheduler import Progress, Scheduler
from synthfr.registry import parse_spec

__all__ = ["generate_dataset"]


def generate_dataset(cfg: GenerateConfig | dict, *, generator: Any = None, embedder: Any = None,
                     progress: bool = True, log: Callable[[str], None] | None = None,
                     stop_after: int | None = None, align_checker: Any = None) -> dict[str, Any]:
    """Generate (a shard of) a dataset; returns the run summary (also written to ``logs/``).

    The settings are validated first (nothing is written for a bad config), then ``OUT/.synthfr.lock`` is
    taken (:mod:`synthfr.utils.lock`): a second run into the same folder fails at once naming the first.
    Under torchrun every rank holds its own lock (``.synthfr-rank<R>.lock``).

    Args:
        cfg: a :class:`GenerateConfig` (or a dict of its fields).
        generator: an already built generator (default: built from ``cfg.generator``/``cfg.weights``).
        embedder: an embedder object for the identity filter (default: ``cfg.embedder`` from the registry).
        progress: show a tqdm bar (images/s, ETA).
        log: where to print messages (default: stderr).
        stop_after: stop after this many identities (testing/benchmark aid; the folder stays resumable).
        align_checker: object with ``errors(uint8 N×112×112×3) -> N`` landmark errors in pixels (inf: no
            face) for ``cfg.align_check`` (default :class:`LandmarkAlignmentCheck`).
    """
    from synthfr.config import from_dict
    from synthfr.data.shards import env_shard
    from synthfr.utils.lock import FolderLock

    if isinstance(cfg, dict):
        cfg = from_dict(GenerateConfig, cfg)
    validate_generate_config(cfg)  # everything checkable before a single file is written
    out = Path(cfg.out).expanduser()
    existed = out.exists()
    env = env_shard() if cfg.shard in (None, "", "auto") else None
    lock = FolderLock(out, "generate", key=f"rank{env[0]}" if env else None)
    try:
        with lock:
            return _run(cfg, generator=generator, embedder=embedder, progress=progress,
                        log=log or (lambda m: print(m, file=sys.stderr)), stop_after=stop_after,
                        align_checker=align_checker)
    finally:
        if not existed and out.is_dir() and not any(out.iterdir()):
            out.rmdir()  # a run that failed before writing anything leaves no folder behind


def _build_generator(cfg: GenerateConfig) -> Any:
    from synthfr.generators import create_generator

    name, kw = parse_spec(cfg.generator)
    if cfg.weights is not None:
        kw["weights"] = cfg.weights
    return create_generator(name, device=cfg.device, **kw)


def _run(cfg: GenerateConfig, *, generator: Any, embedder: Any, progress: bool, log: Callable[[str], None],
         stop_after: int | None, align_checker: Any) -> dict[str, Any]:
    """Generate (a shard of) a dataset while holding the folder's lock."""
    from synthfr.data.shards import auto_shard, env_shard, parse_shard, shard_rows
    from synthfr.data.writers import IdentityFolderWriter
    from synthfr.utils.io import write_json

    t_start = time.time()
    if cfg.shard == "auto":  # a Slurm array task -> "i/n"; torchrun or a single process -> as if unset
        got = auto_shard(torchrun=False)
        cfg = dataclasses.replace(cfg, shard=None if got in (None, (0, 1)) else f"{got[0]}/{got[1]}")
    out = Path(cfg.out).expanduser()
    explicit = parse_shard(cfg.shard)
    from_env = env_shard() if explicit is None else None
    shard_index, shard_count = explicit or from_env or (0, 1)
    shared_out = from_env is not None  # torchrun: every rank writes into the same folder

    if is_sampler_spec(cfg.identities):
        cfg = dataclasses.replace(cfg, identities=sample_into(cfg.identities, cfg.seed, out,
                                                              rank=shard_index if shared_out else 0, log=log))
    identities = load_identities(cfg.identities, cfg.num_identities)
    n_rows, dim = identities.shape
    gen_name = parse_spec(cfg.generator)[0]
    built_here = generator is None  # then it is exactly cfg.generator/cfg.weights, which AttrOP may share
    generator = generator if generator is not None else _build_generator(cfg)
    gdim = getattr(generator, "dim", None)
    if gdim is not None and int(gdim) != dim:
        raise ValueError(f"{cfg.identities} holds {dim}-D vectors but generator {gen_name!r} takes {gdim}-D vectors "
                         f"from embedder {getattr(generator, 'embedder', '?')!r}; sample identities in that space")
    filt = cfg.filter_min_sim is not None
    if cfg.align_check is not None and align_checker is None:
        align_checker = LandmarkAlignmentCheck()
    if filt and embedder is None:
        embedder = resolve_filter_embedder(cfg.embedder, generator, dim, cfg.device)
    if filt and getattr(embedder, "dim", dim) != dim:
        raise ValueError(f"embedder {getattr(embedder, 'name', '?')!r} makes {embedder.dim}-D vectors but the "
                         f"identities are {dim}-D; the filter needs the identities' own embedding space")
    checks = ImageChecks(identities.vectors, min_sim=cfg.filter_min_sim, embedder=embedder,
                         align_max=cfg.align_check, aligner=align_checker)
    rows = shard_rows(n_rows, shard_index, shard_count, cfg.shard_mode)
    tag = f"{shard_index}-of-{shard_count}"

    # ---- the folder: same settings, what is done, the inputs, this run's record
    folder = DatasetFolder(out, n_rows)
    doc = dataset_config(cfg, generator, identities)
    folder.check_settings(doc)
    done_rows = folder.done_rows()
    mine_done = [r for r in rows.tolist() if r in done_rows]
    if mine_done and not cfg.resume:
        raise ValueError(f"{out} already holds {len(mine_done)} finished identities of this run; pass --resume "
                         "to continue it, or choose a new --out")
    folder.write_inputs(doc, identities)
    run_no = folder.start_log(cfg, doc, tag)
    todo = [r for r in rows.tolist() if r not in done_rows]
    writer = IdentityFolderWriter(out, n_rows, fsync=cfg.fsync)
    debris = folder.debris()
    for r in todo:  # folders of unfinished identities (a killed run) are removed and regenerated
        if r in debris:
            writer.discard(r)
    if stop_after is not None:
        todo = todo[:stop_after]

    # ---- generate
    K = int(cfg.images_per_id)
    plan = ImagePlan(cfg.variation, identities, K, cfg.seed, generator=generator if built_here else None,
                     generator_spec=cfg.generator, weights=cfg.weights)
    ext = "jpg" if cfg.image_format in ("jpg", "jpeg") else cfg.image_format
    scheduler = Scheduler(plan, generator, checks, writer, seed=cfg.seed, batch_size=cfg.batch_size,
                          max_attempts=cfg.max_attempts, workers=cfg.workers, ext=ext, jpeg_quality=cfg.jpeg_quality,
                          fsync=cfg.fsync, n_rows=n_rows, generator_name=gen_name)
    bar = Progress(len(todo) * K, progress and (shard_index == 0 or not shared_out), f"generate {tag}")
    stats = scheduler.run(todo, bar)

    # ---- finish
    finished = False
    if stop_after is None and (shard_index == 0 or not shared_out):
        finished = folder.finalize([int(r) for r in (rows if not shared_out else np.arange(n_rows))],
                                   wait=shared_out and shard_index == 0, fsync=cfg.fsync,
                                   rec=cfg.format == "rec" and not cfg.shard, log=log)
    seconds = time.time() - t_start
    summary = {
        "identities": int(len(rows)), "identities_generated": int(len(todo)),
        "identities_skipped": int(len(rows) - len([r for r in rows.tolist() if r not in done_rows])),
        "images": int(stats["images"]), "generated": int(stats["generated"]), "dropped": int(stats["dropped"]),
        "dropped_similarity": int(stats["dropped_similarity"]), "dropped_alignment": int(stats["dropped_alignment"]),
        "failed_filter": int(stats["failed"]), "seconds": float(seconds),
        "images_per_s": float(stats["images"] / seconds) if seconds > 0 else 0.0,
        "shard": [int(shard_index), int(shard_count)], "complete": bool(finished), "out": str(out),
    }
    write_json(folder.logs / f"summary-{tag}-{run_no}.json", summary)
    return summary
