"""Measure the quality of a face-recognition dataset on the embedding hypersphere and in its images.

    synthfr quality --embeddings E.npy --labels L.npy --json q.json --html report.html
    synthfr quality DATASET_DIR --embedder dlib --json q.json --html report.html   (DIR = <identity>/<image>)
    synthfr quality GENERATED --reference REAL_DIR --embedder sface --json q.json --html q.html

Metrics (in a standardised space: centred on the dataset's own mean by default, --space to reuse a saved
one, --no-standardize to skip): inter-class separability (fraction of identities whose centre has no other
centre with cosine > 0.4, and its curve vs number of identities), inter-class noise (centre pairs > 0.7),
intra-class consistency (images with cosine to their own centre < 0.3), genuine/impostor distributions with
EER and, with --reference R.npy, identity leakage (top-k synthetic–reference pairs, count above
--leak-threshold; --clean-out writes the dataset without the leaked identities).

Against real faces (--reference REAL_DIR, embedded with every network; or R.npy of --embedder's space): Fréchet
distance and precision / recall / density / coverage (k-NN manifolds, --prdc-k) per network, attribute
distributions per dataset and per identity (pose from landmarks and from synthfr's pose net, expression,
illumination, sharpness, detection rate; --no-attributes to skip), a face-quality score (certainty ratio), a 2-D
MDS map of identity centres and the worst identities. --judges (default: dlib-torch and sface when sface is
installed) measures the same folder with more networks, side by side: SFace is the independent judge.
"""
from __future__ import annotations

import argparse

HELP = "dataset quality: identity metrics per network, realism/diversity vs real faces, attributes (+ HTML)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("dataset", nargs="?", metavar="DATASET_DIR", help="image folder <identity>/<image> (with --embedder)")
    p.add_argument("--embedder", metavar="SPEC", help="registered embedder NAME[:key=value,...], e.g. dlib-torch or "
                   "onnx:path=MODEL.onnx for DATASET_DIR (`synthfr list embedder`)")
    p.add_argument("--embeddings", metavar="E.npy", help="precomputed embeddings (N×D)")
    p.add_argument("--labels", metavar="L.npy", help="identity label per row (default E.labels.npy beside E.npy)")
    p.add_argument("--embeddings-out", metavar="E.npy", help="where DATASET_DIR's embeddings are written (default: "
                                                             "beside --json/--html as quality_embeddings.npy)")
    p.add_argument("--judges", default="auto", metavar="NAMES",
                   help="more networks measuring DATASET_DIR side by side (comma-separated; 'auto': dlib-torch and "
                        "sface when sface is registered; 'none')")
    p.add_argument("--reference", metavar="REAL_DIR|R.npy",
                   help="real faces: a folder (embedded with every network) or embeddings of --embedder's space; "
                        "leakage, Fréchet distance, precision/recall/density/coverage, map, attributes")
    p.add_argument("--reference-labels", metavar="RL.npy", help="identity labels of an R.npy reference")
    p.add_argument("--prdc-k", type=int, default=5, help="k of the k-NN manifolds for precision/recall (5)")
    p.add_argument("--no-attributes", action="store_true", help="skip the per-image attribute measurements")
    p.add_argument("--reuse-embeddings", action="store_true",
                   help="reuse folder embeddings an earlier run wrote beside --json for the same folder, network "
                        "name and files (quality_embeddings*.meta.json) instead of embedding again")
    p.add_argument("--attribute-images", type=int, default=2000,
                   help="faces measured per set for attributes, whole identities (2000)")
    p.add_argument("--leak-threshold", type=float, default=0.5, help="cosine above which an identity leaks (0.5)")
    p.add_argument("--top-k", type=int, default=20, help="leakage pairs listed (20)")
    p.add_argument("--clean-out", metavar="E.npy", help="write embeddings + labels without the leaked identities")
    p.add_argument("--space", metavar="SPACE.json", help="saved standardisation to use instead of fitting one")
    p.add_argument("--no-standardize", action="store_true", help="measure in the embedder's raw space")
    p.add_argument("--metrics", default=None, help="comma-separated subset (separability,noise,consistency,"
                                                   "verification,leakage,face_quality,frechet,prdc,identity_map,"
                                                   "worst_identities)")
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
        args.dataset, embedder=args.embedder, judges=args.judges, embeddings=args.embeddings, labels=args.labels, embeddings_out=eout,
        reference=args.reference, reference_labels=args.reference_labels, leak_threshold=args.leak_threshold,
        top_k=args.top_k, clean_out=args.clean_out, space="none" if args.no_standardize else (args.space or "fit"),
        metrics=args.metrics, max_pairs=args.max_pairs, prdc_k=args.prdc_k, attributes=not args.no_attributes,
        attribute_images=args.attribute_images, reuse_embeddings=args.reuse_embeddings, device=args.device,
        seed=args.seed, progress=not args.quiet)
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
