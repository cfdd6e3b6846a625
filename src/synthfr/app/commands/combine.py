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
from dataclasses import dataclass
from typing import Literal

HELP = "combine datasets of different runs (concat, or per-identity replacement as Vec2Face's pose set)"


@dataclass
class CombineConfig:
    """``synthfr combine``: datasets of different runs (or real ImageFolders) joined into one dataset folder."""

    datasets: list[str]
    """Finished dataset folders (two or more; one with counts)."""
    out: str
    """Combined dataset folder (must be new or empty)."""
    replace: int = 0
    """Replace this many images per identity of the first dataset with images of the same identity from the
    second (0: concatenate)."""
    pick: Literal["random", "last"] = "random"
    """Which images replace swaps: random slots and images seeded by (seed, identity), or the first dataset's
    last N slots with the second's first N images."""
    seed: int = 0
    """Seed of pick random."""
    counts: str | None = None
    """Images kept per identity of the result: a JSON file with a list (one count per identity row) or an object
    {identity folder: count} (others get 0); identities left empty are dropped."""
    identity_check: bool = True
    """With replace, require the datasets' identities.npy files to be equal."""
    format: Literal["folder", "rec"] = "folder"
    """folder, or rec (insightface train.rec/.idx instead of images/)."""
    copy: bool = False
    """Copy images instead of hard-linking them."""
    json: str | None = None
    """Also write the summary as JSON to this path."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    from synthfr.config import add_config_arguments

    add_config_arguments(p, CombineConfig, positional=("datasets",),
                         flags={"datasets": {"metavar": "DATASET_DIR"}, "replace": {"metavar": "N"},
                                "counts": {"metavar": "C.json"}, "json": {"metavar": "PATH"}})


def run(args: argparse.Namespace) -> int:
    from synthfr.config import config_from_args
    from synthfr.data.combine import combine_datasets

    cfg = config_from_args(CombineConfig, args)
    s = combine_datasets(cfg.datasets, cfg.out, replace=cfg.replace, pick=cfg.pick, seed=cfg.seed,
                         check_identities=cfg.identity_check, link=not cfg.copy, format=cfg.format,
                         counts=cfg.counts)
    print(f"combined {s['sources']} datasets ({s['mode']}): {s['identities']} identities, {s['images']} images "
          f"(per source {s['from_sources']}) -> {s['out']}")
    if cfg.json:
        from synthfr.utils.io import write_json

        write_json(cfg.json, s)
    return 0
