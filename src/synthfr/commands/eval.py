"""Evaluate face verification on benchmarks (insightface .bin files or LFW-style folders with pairs.txt).

Standard 10-fold protocol on cosine similarity (threshold chosen on 9 folds, scored on the 10th; mean ± std),
the mean threshold, EER and TPR at FPR 1e-3 / 1e-4. Examples:

    synthfr eval --embedder dlib-torch --benchmark ../shared/data/lfw/lfw.bin --json lfw.json
    synthfr eval --checkpoint runs/r50 --benchmark lfw.bin --benchmark cfp_fp.bin --flip --roc roc/
"""
from __future__ import annotations

import argparse

HELP = "10-fold verification accuracy, EER and TPR@FPR of an embedder or checkpoint on benchmarks"


def add_arguments(p: argparse.ArgumentParser) -> None:
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--embedder", metavar="SPEC", help="registered embedder NAME[:key=value,...], e.g. dlib-torch or "
                   "onnx:path=MODEL.onnx (see `synthfr list embedder`)")
    who.add_argument("--checkpoint", metavar="DIR", help="a run directory of a face-recognition model trained "
                                                         "by synthfr")
    p.add_argument("--benchmark", metavar="PATH", action="append", required=True,
                   help="insightface .bin file, or a folder of Name/Name_0001.jpg images with a pairs.txt "
                        "(repeatable)")
    p.add_argument("--flip", action="store_true", help="flip test-time augmentation: add the embedding of the "
                                                       "mirrored image and re-normalise")
    p.add_argument("--batch-size", type=int, default=64, help="images per embedder call (default 64)")
    p.add_argument("--device", default="auto", help="torch device for torch embedders: auto, cpu, cuda, ...")
    p.add_argument("--align", choices=("auto", "always", "never"), default="auto",
                   help="folders only: align images that are not 112x112 (auto), every image, or none")
    p.add_argument("--pairs", metavar="FILE", help="folders only: pairs file to use instead of FOLDER/pairs.txt")
    p.add_argument("--roc", metavar="DIR", help="write <benchmark>.roc.csv and <benchmark>.roc.png here")
    p.add_argument("--json", metavar="PATH", help="write the metrics as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


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
    from synthfr.evaluation.evaluate import run_eval

    if args.batch_size < 1:
        raise ValueError("--batch-size must be at least 1")
    result = run_eval(embedder=args.embedder, checkpoint=args.checkpoint, benchmarks=args.benchmark,
                      flip=args.flip, json_path=args.json, roc_dir=args.roc, device=args.device,
                      batch_size=args.batch_size, align=args.align, pairs=args.pairs,
                      progress=not args.quiet)
    print(f"embedder: {result['embedder']}{'  (flip)' if args.flip else ''}")
    print(format_table(result))
    for name, r in result["benchmarks"].items():
        if r.get("align_failures"):
            print(f"{name}: {len(r['align_failures'])} images could not be aligned (centre-cropped instead)")
    if args.json:
        print(f"wrote {args.json}")
    return 0
