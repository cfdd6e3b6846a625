"""Sample identity vectors on the hypersphere of an embedding space.

    synthfr sample hyperface --n 10000 --dim 512 --time-budget 300 --seed 0 --out ids.npy --json stats.json
    synthfr sample vec2face --n 5000 --gallery utkface.npy --tau 0.3 --out ids.npy

With --gallery (real embeddings of the target embedder), --standardize says whether it is re-centred first:
auto (default) centres it only when its faces sit in a narrow cap (the mean of the unit embeddings ≥ 0.5 long,
like dlib's descriptor) and uses ArcFace-like galleries as they are, as the HyperFace and Vec2Face papers do;
center always centres (synthfr's standardised space); none (= --no-standardize) never does; --whiten also
whitens. Sampling and every statistic happen in that space; OUT holds the vectors mapped back to the embedder's own space (for generators),
OUT.std.npy the standardised vectors, OUT.space.json/.npz the standardisation, OUT.config.yaml the resolved
config and versions, OUT.stats.json the statistics. The JSON holds n, dim, max_cos, mean_nn_cos (exact all-pairs
check, blockwise; sampled estimate above 250,000 identities or with --no-check), seconds and, with a
gallery, gallery_mean_nn_cos (mean cosine of each identity to its nearest gallery embedding, standardised
space); vec2face adds its rejection counts.
"""
from __future__ import annotations

import argparse

HELP = "sample identity vectors (uniform, vec2face, hyperface*, vigface) with an exact separation check"


_CLI = {"gallery": {"metavar": "EMB.npy"}, "labels": {"metavar": "L.npy"}, "space": {"metavar": "SPACE.json"},
        "options": {"flags": ["--option"]}, "out": {"metavar": "IDS.npy"}, "json": {"metavar": "PATH"},
        "progress": {"flags": ["--quiet"]}}


def add_arguments(p: argparse.ArgumentParser) -> None:
    from synthfr.config import add_config_arguments
    from synthfr.samplers.config import SampleConfig

    add_config_arguments(p, SampleConfig, positional=("method",), flags=_CLI,
                         aliases={"--no-standardize": ("standardize", "none"), "--no-check": ("check", "sampled")})


def run(args: argparse.Namespace) -> int:
    from synthfr.config import config_from_args
    from synthfr.samplers import SampleConfig, sample

    cfg = config_from_args(SampleConfig, args)
    x, st = sample(cfg)
    line = f"{cfg.method}: {st['n']}×{st['dim']} in {st['seconds']:.1f}s, max_cos {st['max_cos']}"
    line += f", mean_nn_cos {st['mean_nn_cos']}"
    if "gallery_mean_nn_cos" in st:
        line += f", gallery_mean_nn_cos {st['gallery_mean_nn_cos']:.4f}"
    if "rejected" in st["sampler"]:
        line += f", rejected {st['sampler']['rejected']}"
    print(line + (f" ({st['check']})" if st.get("check") else ""))
    if cfg.out:
        print(f"wrote {cfg.out} (embedder space) and its .std.npy / .space.json / .config.yaml / .stats.json")
    return 0
