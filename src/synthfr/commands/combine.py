"""Combine datasets of different runs or settings (or real ImageFolders) into one dataset folder.

`synthfr merge` joins the shards of ONE run; `combine` joins different datasets and records them all in the
new config.yaml (mode, parameters, and per source its path, counts, manifest hash and config).

  concat (default)   identities of each dataset one after the other, rows/labels shifted so classes never collide
  --replace N        Vec2Face's extreme-pose set: two datasets of the same identities; per identity, N of the
                     first dataset's images are replaced by N images of that identity from the second
  --counts C.json    keep the first n_i images of each identity (a JSON list by row, or {folder: count});
                     with one dataset this makes a subset: a long-tailed set from a balanced one, a few real
                     identities x images (identities with 0 images are dropped, the rest renumbered)

Examples:
  synthfr combine data/hsface10k data/synface10k --out data/both
  synthfr combine data/hsface10k data/hsface10k-attrop --replace 30 --out data/hsface10k-pose   # 30 of 50
  synthfr combine data/syn300x93 --counts longtail.json --out data/syn300-longtail               # a subset
"""
from __future__ import annotations

import argparse

HELP = "combine datasets of different runs (concat, or per-identity replacement as Vec2Face's pose set)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("datasets", nargs="+", metavar="DATASET_DIR",
                   help="finished dataset folders (two or more; one with --counts)")
    p.add_argument("--out", required=True, help="combined dataset folder (must be new or empty)")
    p.add_argument("--replace", type=int, default=0, metavar="N",
                   help="replace N images per identity of the first dataset with images of the same identity "
                        "from the second (default 0: concatenate)")
    p.add_argument("--pick", default="random", choices=["random", "last"],
                   help="which images --replace swaps: random slots and images seeded by (--seed, identity) "
                        "(default), or the first dataset's last N slots with the second's first N images")
    p.add_argument("--seed", type=int, default=0, help="seed of --pick random (default 0)")
    p.add_argument("--counts", metavar="C.json",
                   help="images kept per identity of the result: a JSON list (one count per identity row) or an "
                        "object {identity folder: count} (others get 0); identities left empty are dropped")
    p.add_argument("--no-identity-check", action="store_true",
                   help="allow --replace with identities.npy files that differ")
    p.add_argument("--format", default="folder", choices=["folder", "rec"],
                   help="folder (default) or rec (insightface train.rec/.idx instead of images/)")
    p.add_argument("--copy", action="store_true", help="copy images instead of hard-linking them")
    p.add_argument("--json", metavar="PATH", help="also write the summary as JSON")


def run(args: argparse.Namespace) -> int:
    from synthfr.data.combine import combine_datasets

    s = combine_datasets(args.datasets, args.out, replace=args.replace, pick=args.pick, seed=args.seed,
                         check_identities=not args.no_identity_check, link=not args.copy, format=args.format,
                         counts=args.counts)
    print(f"combined {s['sources']} datasets ({s['mode']}): {s['identities']} identities, {s['images']} images "
          f"(per source {s['from_sources']}) -> {s['out']}")
    if args.json:
        from synthfr.utils.io import write_json

        write_json(args.json, s)
    return 0
