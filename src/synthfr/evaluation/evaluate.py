"""Evaluate an embedder (or a synthfr-trained checkpoint) on verification benchmarks.

``run_eval`` is what ``synthfr eval`` calls; ``evaluate_embedder`` scores one embedder on one benchmark.
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from synthfr.evaluation.config import EvalConfig
from synthfr.face.embed import embed_benchmark, embed_images, resolve_embedder  # noqa: F401 - their old home
from synthfr.verification import DEFAULT_FPRS, evaluate_embeddings, save_roc

__all__ = ["resolve_embedder", "embed_images", "embed_benchmark", "evaluate_embedder", "run_eval", "evaluate",
           "JSON_KEYS"]

#: per-benchmark keys written to the eval JSON (see docs/formats.md)
JSON_KEYS = ("accuracy", "std", "threshold", "eer", "tpr_at_fpr", "pairs", "positives", "negatives", "images",
             "folds", "fold_accuracies")


def evaluate_embedder(embedder: Any, benchmark: Any, flip: bool = False, batch_size: int = 64,
                      fprs: Sequence[float] = DEFAULT_FPRS, with_roc: bool = False, progress: bool = True
                      ) -> dict[str, Any]:
    """Verification metrics of ``embedder`` on ``benchmark`` (a :class:`Benchmark` or a path to one).

    Each distinct image is embedded once; pairs are scored by cosine similarity with the benchmark's folds
    (see :mod:`synthfr.verification`). Adds ``images`` (distinct images embedded), ``seconds``
    and, for folders that needed alignment, ``align_failures``.
    """
    from synthfr.data.benchmarks import Benchmark
    from synthfr.evaluation.benchmarks import load_benchmark

    if not isinstance(benchmark, Benchmark):
        benchmark = load_benchmark(benchmark)
    t0 = time.perf_counter()
    emb = embed_benchmark(embedder, benchmark, flip=flip, batch_size=batch_size, progress=progress)
    res = evaluate_embeddings(emb[benchmark.pairs[:, 0]], emb[benchmark.pairs[:, 1]], benchmark.issame,
                              folds=benchmark.folds, fprs=fprs, with_roc=with_roc)
    res["images"] = int(benchmark.num_images)
    res["seconds"] = time.perf_counter() - t0
    if benchmark.align_failures:
        res["align_failures"] = list(benchmark.align_failures)
    return res


def run_eval(embedder: Any = None, checkpoint: str | os.PathLike | None = None,
             benchmarks: Sequence[str | os.PathLike | Any] = (), flip: bool = False,
             json_path: str | os.PathLike | None = None, roc_dir: str | os.PathLike | None = None,
             device: str | None = "auto", batch_size: int = 64, align: str = "auto",
             pairs: str | os.PathLike | None = None, progress: bool = True) -> dict[str, Any]:
    """Evaluate one embedder (registered name or object) or a synthfr checkpoint on several benchmarks.

    Returns (and writes to ``json_path``) ``{"benchmarks": {name: {accuracy, std, threshold, eer,
    tpr_at_fpr: {"1e-3", "1e-4"}, pairs, positives, negatives, images, folds, fold_accuracies}},
    "embedder": name, "flip": bool}`` with plain floats. With ``roc_dir``, writes ``<name>.roc.csv`` and
    ``<name>.roc.png`` there. ``align`` and ``pairs`` (a pairs file used instead of ``ROOT/pairs.txt``) apply
    to folder benchmarks.
    """
    from synthfr.data.benchmarks import Benchmark
    from synthfr.evaluation.benchmarks import load_benchmark

    if not benchmarks:
        raise ValueError("no benchmark given: pass --benchmark PATH (an insightface .bin or an LFW-style folder)")
    from synthfr.utils.validate import check_device, check_range

    check_range("--batch-size", batch_size, 1, integer=True)
    if isinstance(device, str):
        check_device(device)  # before the benchmarks are read
    loaded = [b if isinstance(b, Benchmark) else load_benchmark(b, align=align, pairs=pairs)
              for b in benchmarks]
    model = resolve_embedder(embedder, checkpoint, device=device)
    model_name = (str(checkpoint) if checkpoint is not None
                  else embedder if isinstance(embedder, str) else getattr(model, "name", type(model).__name__))
    out: dict[str, Any] = {"benchmarks": {}, "embedder": model_name, "flip": bool(flip)}
    if checkpoint is not None:
        out["checkpoint"] = str(checkpoint)
    for b in loaded:
        res = evaluate_embedder(model, b, flip=flip, batch_size=batch_size, with_roc=roc_dir is not None,
                                progress=progress)
        key, n = b.name, 2
        while key in out["benchmarks"]:
            key, n = f"{b.name}-{n}", n + 1
        entry = {k: res[k] for k in JSON_KEYS}
        if "align_failures" in res:
            entry["align_failures"] = res["align_failures"]
        if roc_dir is not None:
            roc = res["roc"]
            save_roc(str(Path(roc_dir) / key), roc["fpr"], roc["tpr"], roc["thresholds"],
                     title=f"{key} — {model_name}{' (flip)' if flip else ''}")
        out["benchmarks"][key] = entry
    if json_path is not None:
        from synthfr.utils.io import write_json

        write_json(json_path, out)
    return out


def evaluate(cfg: EvalConfig) -> dict[str, Any]:
    """The ``synthfr eval`` job: :func:`run_eval` with the settings of one :class:`EvalConfig`."""
    if (cfg.embedder is None) == (cfg.checkpoint is None):
        from synthfr.errors import UsageError

        raise UsageError("give exactly one of an embedder (--embedder NAME) or a checkpoint (--checkpoint DIR)")
    return run_eval(embedder=cfg.embedder, checkpoint=cfg.checkpoint, benchmarks=cfg.benchmarks, flip=cfg.flip,
                    json_path=cfg.json, roc_dir=cfg.roc, device=cfg.device, batch_size=cfg.batch_size,
                    align=cfg.align, pairs=cfg.pairs, progress=cfg.progress)
