"""Merge the folders of a sharded `synthfr generate` run (--shard i/n) into one dataset folder.

The result is byte-identical to generating the whole dataset in one process: images are hard-linked (or
copied across filesystems), manifest.jsonl is rewritten in identity order, config.yaml and identities.npy
are checked to agree across shards and copied.

Datasets of different runs or settings are joined by `synthfr combine` instead.

Example:
  synthfr merge data/shard-0 data/shard-1 data/shard-2 --out data/all
"""
from __future__ import annotations

import argparse

HELP = "merge shard folders of `synthfr generate --shard i/n` into one dataset"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("shards", nargs="+", metavar="SHARD_DIR", help="finished shard output folders")
    p.add_argument("--out", required=True, help="merged dataset folder (must be new or empty)")
    p.add_argument("--format", default="folder", choices=["folder", "rec"],
                   help="folder (default) or rec (insightface train.rec/.idx instead of images/)")
    p.add_argument("--copy", action="store_true", help="copy images instead of hard-linking them")
    p.add_argument("--json", metavar="PATH", help="also write the merge summary as JSON")


def run(args: argparse.Namespace) -> int:
    from synthfr.generation import merge_shards

    summary = merge_shards(args.shards, args.out, format=args.format, link=not args.copy)
    print(f"merged {summary['shards']} shards: {summary['identities']} identities, {summary['images']} images "
          f"-> {summary['out']}")
    if args.json:
        from synthfr.utils.io import write_json

        write_json(args.json, summary)
    return 0
