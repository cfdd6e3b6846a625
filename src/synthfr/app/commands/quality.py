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


_CLI = {"dataset": {"metavar": "DATASET_DIR"}, "embedder": {"metavar": "SPEC"}, "embeddings": {"metavar": "E.npy"},
        "labels": {"metavar": "L.npy"}, "embeddings_out": {"metavar": "E.npy"}, "judges": {"metavar": "NAMES"},
        "reference": {"metavar": "REAL_DIR|R.npy"}, "reference_labels": {"metavar": "RL.npy"},
        "clean_out": {"metavar": "E.npy"}, "space": {"metavar": "SPACE"}, "html": {"metavar": "REPORT.html"},
        "json": {"metavar": "PATH"}, "progress": {"flags": ["--quiet"]}}


def add_arguments(p: argparse.ArgumentParser) -> None:
    from synthfr.config import add_config_arguments
    from synthfr.quality.config import QualityConfig

    add_config_arguments(p, QualityConfig, positional=("dataset",), flags=_CLI,
                         aliases={"--no-standardize": ("space", "none")})


def run(args: argparse.Namespace) -> int:
    from synthfr.config import config_from_args
    from synthfr.quality.config import QualityConfig
    from synthfr.quality.evaluate import measure_quality
    from synthfr.report.quality import summary_items, write_quality_report

    cfg = config_from_args(QualityConfig, args)
    q = measure_quality(cfg, log=print)
    if cfg.html:
        write_quality_report(q, cfg.html, subtitle=q["source"])
    for k, v in summary_items(q).items():
        print(f"{k}: {v}")
    return 0
