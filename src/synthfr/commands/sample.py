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


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("method", help="registered sampler (`synthfr list sampler`): uniform, vec2face, hyperface, "
                                  "hyperface-alg1, hyperface-alg2, vigface")
    p.add_argument("--n", type=int, required=True, help="number of identities")
    p.add_argument("--dim", type=int, help="embedding dimension (without a gallery)")
    p.add_argument("--gallery", metavar="EMB.npy", help="real embeddings of the target embedder (N×D .npy)")
    p.add_argument("--labels", metavar="L.npy", help="gallery labels (vigface; default EMB.labels.npy if present)")
    p.add_argument("--standardize", choices=("auto", "center", "none"), default="auto",
                   help="re-centre the gallery: auto (default: only cap-shaped spaces such as dlib's; ArcFace-like "
                        "galleries are used as they are, as the papers), center, none")
    p.add_argument("--no-standardize", action="store_true", help="same as --standardize none")
    p.add_argument("--whiten", action="store_true", help="also whiten the gallery space")
    p.add_argument("--space", metavar="SPACE.json", help="reuse a saved standardisation instead of fitting one")
    p.add_argument("--tau", type=float, help="vec2face/uniform: maximal cosine between identities (vec2face 0.3)")
    p.add_argument("--alpha", type=float, help="hyperface*: gallery regulariser weight (default 0.5)")
    p.add_argument("--time-budget", type=float, help="hyperface*: optimisation seconds")
    p.add_argument("--iterations", type=int, help="hyperface*: steps (rounds in the LSH mode)")
    p.add_argument("--batch-size", type=int, help="hyperface-alg2: mini-batch b; vigface: batch size")
    p.add_argument("--init", help="hyperface*: auto, gallery, random or code")
    p.add_argument("--device", help="torch device (cpu, cuda)")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="any other field of the sampler's config (repeatable), e.g. --option dense_max=100000")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--out", metavar="IDS.npy", help="write the identity vectors (+ .std.npy, .space.*, .config.yaml)")
    p.add_argument("--json", metavar="PATH", help="write the statistics as JSON")
    p.add_argument("--no-check", action="store_true", help="skip the exact all-pairs check; estimate max_cos from "
                                                           "10,000 random rows against all (large N)")
    p.add_argument("--check", choices=("auto", "exact", "sampled", "none"), default="auto",
                   help="auto: exact all pairs up to 250,000 identities, else sampled (10,000 rows vs all)")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's own choice)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def _parse_options(items: list[str]) -> dict:
    import yaml

    out = {}
    for it in items:
        if "=" not in it:
            raise ValueError(f"--option expects KEY=VALUE, got {it!r}")
        k, v = it.split("=", 1)
        out[k.strip()] = yaml.safe_load(v)
    return out


def run(args: argparse.Namespace) -> int:
    from synthfr.samplers import sample_identities

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    opts = {"tau": args.tau, "alpha": args.alpha, "time_budget": args.time_budget, "iterations": args.iterations,
            "batch_size": args.batch_size, "init": args.init, "device": args.device}
    opts = {k: v for k, v in opts.items() if v is not None}
    if args.quiet and args.method != "uniform" and args.method != "vec2face":
        opts["progress"] = False
    opts.update(_parse_options(args.option))
    x, st = sample_identities(args.method, args.n, dim=args.dim, gallery=args.gallery, labels=args.labels,
                              standardize="none" if args.no_standardize else args.standardize,
                              whiten=args.whiten, space=args.space,
                              seed=args.seed, out=args.out, json_path=args.json,
                              check="sampled" if args.no_check else args.check, **opts)
    line = f"{args.method}: {st['n']}×{st['dim']} in {st['seconds']:.1f}s, max_cos {st['max_cos']}"
    line += f", mean_nn_cos {st['mean_nn_cos']}"
    if "gallery_mean_nn_cos" in st:
        line += f", gallery_mean_nn_cos {st['gallery_mean_nn_cos']:.4f}"
    if "rejected" in st["sampler"]:
        line += f", rejected {st['sampler']['rejected']}"
    print(line + (f" ({st['check']})" if st.get("check") else ""))
    if args.out:
        print(f"wrote {args.out} (embedder space) and its .std.npy / .space.json / .config.yaml / .stats.json")
    return 0
