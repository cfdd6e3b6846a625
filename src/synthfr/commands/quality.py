"""Measure the quality of a face-recognition dataset on the embedding hypersphere.

    synthfr quality --embeddings E.npy --labels L.npy --json q.json --html report.html
    synthfr quality DATASET_DIR --embedder dlib --json q.json --html report.html   (DIR = <identity>/<image>)

Metrics (in a standardised space: centred on the dataset's own mean by default, --space to reuse a saved
one, --no-standardize to skip): inter-class separability (fraction of identities whose centre has no other
centre with cosine > 0.4, and its curve vs number of identities), inter-class noise (centre pairs > 0.7),
intra-class consistency (images with cosine to their own centre < 0.3), genuine/impostor distributions with
EER and, with --reference R.npy, identity leakage (top-k synthetic–reference pairs, count above
--leak-threshold; --clean-out writes the dataset without the leaked identities).
"""
from __future__ import annotations

import argparse

HELP = "dataset quality: separability, noise, consistency, EER, leakage (+ HTML report)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("dataset", nargs="?", metavar="DATASET_DIR", help="image folder <identity>/<image> (with --embedder)")
    p.add_argument("--embedder", metavar="NAME", help="registered embedder for DATASET_DIR (`synthfr list embedder`)")
    p.add_argument("--embeddings", metavar="E.npy", help="precomputed embeddings (N×D)")
    p.add_argument("--labels", metavar="L.npy", help="identity label per row (default E.labels.npy beside E.npy)")
    p.add_argument("--embeddings-out", metavar="E.npy", help="where DATASET_DIR's embeddings are written (default: "
                                                             "beside --json/--html as quality_embeddings.npy)")
    p.add_argument("--reference", metavar="R.npy", help="reference embeddings for the leakage check")
    p.add_argument("--reference-labels", metavar="RL.npy", help="reference identity labels (compare identity centres)")
    p.add_argument("--leak-threshold", type=float, default=0.5, help="cosine above which an identity leaks (0.5)")
    p.add_argument("--top-k", type=int, default=20, help="leakage pairs listed (20)")
    p.add_argument("--clean-out", metavar="E.npy", help="write embeddings + labels without the leaked identities")
    p.add_argument("--space", metavar="SPACE.json", help="saved standardisation to use instead of fitting one")
    p.add_argument("--no-standardize", action="store_true", help="measure in the embedder's raw space")
    p.add_argument("--metrics", default=None, help="comma-separated subset (separability,noise,consistency,"
                                                   "verification,leakage)")
    p.add_argument("--max-pairs", type=int, default=200000, help="genuine/impostor pairs at most (200,000)")
    p.add_argument("--device", default="auto", help="torch device of the embedder")
    p.add_argument("--seed", type=int, default=0, help="seed of pair/curve sampling")
    p.add_argument("--json", metavar="PATH", help="write all metrics as JSON")
    p.add_argument("--html", metavar="REPORT.html", help="write a self-contained HTML report with plots")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    import numpy as np

    from synthfr.quality.evaluate import evaluate_quality, load_embeddings

    if bool(args.dataset) == bool(args.embeddings):
        raise ValueError("give either DATASET_DIR --embedder NAME or --embeddings E.npy --labels L.npy")
    if args.dataset:
        if not args.embedder:
            raise ValueError("DATASET_DIR needs --embedder NAME (see `synthfr list embedder`)")
        from synthfr.evaluation.embed import embed_path

        base = Path(args.json or args.html or "quality.json").resolve().parent
        eout = Path(args.embeddings_out) if args.embeddings_out else base / "quality_embeddings.npy"
        res = embed_path(args.dataset, args.embedder, eout, device=args.device, progress=not args.quiet)
        if "labels" not in res:
            raise ValueError(f"{args.dataset} is not an identity tree (<identity>/<image>); quality needs labels")
        emb, lab = load_embeddings(eout, res["labels"])
        source = f"{args.dataset} embedded with {args.embedder} -> {eout}"
    else:
        emb, lab = load_embeddings(args.embeddings, args.labels)
        source = str(args.embeddings)
    ref = rlab = None
    if args.reference:
        ref, rlab = load_embeddings(args.reference, args.reference_labels)
    space = "none" if args.no_standardize else (args.space or "fit")
    metrics = [m.strip() for m in args.metrics.split(",")] if args.metrics else None
    opts = {"leakage": {"threshold": args.leak_threshold, "top_k": args.top_k},
            "verification": {"max_pairs": args.max_pairs, "seed": args.seed}, "separability": {"seed": args.seed}}
    q = evaluate_quality(emb, lab, reference=ref, reference_labels=rlab, space=space, metrics=metrics, options=opts,
                         clean_out=args.clean_out)
    q["source"] = source
    if args.json:
        from synthfr.utils.io import write_json

        write_json(args.json, q)
    if args.html:
        from synthfr.report.quality import write_quality_report

        write_quality_report(q, args.html, subtitle=source)
    from synthfr.report.quality import summary_items

    for k, v in summary_items(q).items():
        print(f"{k}: {v}")
    return 0
