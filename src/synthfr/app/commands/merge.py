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
from dataclasses import dataclass
from typing import Literal

HELP = "merge shard folders of `synthfr generate --shard i/n` into one dataset"


@dataclass
class MergeConfig:
    """``synthfr merge``: the shard folders of one sharded ``synthfr generate`` run joined into one dataset."""

    shards: list[str]
    """Finished shard output folders."""
    out: str
    """Merged dataset folder (must be new or empty)."""
    format: Literal["folder", "rec"] = "folder"
    """folder, or rec (insightface train.rec/.idx instead of images/)."""
    copy: bool = False
    """Copy images instead of hard-linking them."""
    json: str | None = None
    """Also write the merge summary as JSON to this path."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    from synthfr.config import add_config_arguments

    add_config_arguments(p, MergeConfig, positional=("shards",),
                         flags={"shards": {"metavar": "SHARD_DIR"}, "json": {"metavar": "PATH"}})


def run(args: argparse.Namespace) -> int:
    from synthfr.config import config_from_args
    from synthfr.generation import merge_shards

    cfg = config_from_args(MergeConfig, args)
    summary = merge_shards(cfg.shards, cfg.out, format=cfg.format, link=not cfg.copy)
    print(f"merged {summary['shards']} shards: {summary['identities']} identities, {summary['images']} images "
          f"-> {summary['out']}")
    if cfg.json:
        from synthfr.utils.io import write_json

        write_json(cfg.json, summary)
    return 0
