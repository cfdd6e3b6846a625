"""Evaluate face verification on benchmarks (insightface .bin files or LFW-style folders with pairs.txt).

Standard 10-fold protocol on cosine similarity (threshold chosen on 9 folds, scored on the 10th; mean ± std),
the mean threshold, EER and TPR at FPR 1e-3 / 1e-4. Examples:

    synthfr eval --embedder dlib-torch --benchmark ../shared/data/lfw/lfw.bin --json lfw.json
    synthfr eval --checkpoint runs/r50 --benchmark lfw.bin --benchmark cfp_fp.bin --flip --roc roc/
"""
from __future__ import annotations

import argparse

HELP = "10-fold verification accuracy, EER and TPR@FPR of an embedder or checkpoint on benchmarks"


#: the option strings that differ from the field names
_CLI = {"benchmarks": {"flags": ["--benchmark"], "action": "append", "metavar": "PATH"},
        "embedder": {"metavar": "SPEC"}, "checkpoint": {"metavar": "DIR"}, "roc": {"metavar": "DIR"},
        "progress": {"flags": ["--quiet"]}}


def add_arguments(p: argparse.ArgumentParser) -> None:
    from synthfr.config import add_config_arguments
    from synthfr.evaluation.config import EvalConfig

    add_config_arguments(p, EvalConfig, flags=_CLI)


def format_table(result: dict) -> str:
    rows = [("benchmark", "pairs", "accuracy", "threshold", "EER", "TPR@1e-3", "TPR@1e-4", "negatives")]

    def f(x, nd=4):
        return "n/a" if x is None or x != x else f"{x:.{nd}f}"

    for name, r in result["benchmarks"].items():
        t = r["tpr_at_fpr"]
        rows.append((name, str(r["pairs"]), f"{f(r['accuracy'])} ± {f(r['std'])}", f(r["threshold"]),
                     f(r["eer"]), f(t.get("1e-3")), f(t.get("1e-4")), str(r["negatives"])))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows)


def run(args: argparse.Namespace) -> int:
    from synthfr.config import config_from_args
    from synthfr.evaluation.config import EvalConfig
    from synthfr.evaluation.evaluate import evaluate

    cfg = config_from_args(EvalConfig, args)
    result = evaluate(cfg)
    print(f"embedder: {result['embedder']}{'  (flip)' if cfg.flip else ''}")
    print(format_table(result))
    for name, r in result["benchmarks"].items():
        if r.get("align_failures"):
            print(f"{name}: {len(r['align_failures'])} images could not be aligned (centre-cropped instead)")
    if cfg.json:
        print(f"wrote {cfg.json}")
    return 0
