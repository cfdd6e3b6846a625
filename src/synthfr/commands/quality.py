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
    p.add_argument("--embedder", metavar="SPEC", help="registered embedder NAME[:key=value,...], e.g. dlib-torch or "
                   "onnx:path=MODEL.onnx for DATASET_DIR (`synthfr list embedder`)")
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

    from synthfr.quality.evaluate import quality_from_dataset

    eout = args.embeddings_out
    if args.dataset and not eout:  # default: beside the JSON/HTML output
        eout = Path(args.json or args.html or "quality.json").resolve().parent / "quality_embeddings.npy"
    q = quality_from_dataset(
        args.dataset, embedder=args.embedder, embeddings=args.embeddings, labels=args.labels, embeddings_out=eout,
        reference=args.reference, reference_labels=args.reference_labels, leak_threshold=args.leak_threshold,
        top_k=args.top_k, clean_out=args.clean_out, space="none" if args.no_standardize else (args.space or "fit"),
        metrics=args.metrics, max_pairs=args.max_pairs, device=args.device, seed=args.seed,
        progress=not args.quiet)
    if args.json:
        from synthfr.utils.io import write_json

        write_json(args.json, q)
    _update_card(args, q)
    if args.html:
        from synthfr.report.quality import write_quality_report

        write_quality_report(q, args.html, subtitle=q["source"])
    from synthfr.report.quality import summary_items

    for k, v in summary_items(q).items():
        print(f"{k}: {v}")
    return 0


def _update_card(args: argparse.Namespace, q: dict) -> None:
    """A dataset folder made by `synthfr generate` keeps these figures (quality.<embedder>.json) and its card
    (README.md) shows them, exactly as in the JSON."""
    if not args.dataset or not args.embedder:
        return
    from synthfr.data.card import dataset_root, quality_path, write_dataset_card
    from synthfr.utils.io import write_json

    root = dataset_root(args.dataset)
    if root is None:
        return
    write_json(quality_path(root, args.embedder), q)
    print(f"dataset card: {write_dataset_card(root)}")
