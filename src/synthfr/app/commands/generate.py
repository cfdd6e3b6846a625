"""Generate a face dataset from identity vectors: variation -> generator -> [checks] -> writer.

Images go to OUT/images/<identity row, zero-padded>/<k>.jpg, with manifest.jsonl (one line per image),
identities.npy and config.yaml (resolved settings, generator weights hash, package versions). Every image's
seed is derived from (--seed, identity row, k), so batching, --shard, torchrun and --resume never change a
byte. Options override the keys of --config CFG.yaml (the fields of GenerateConfig).

Examples:
  synthfr generate --identities ids.npy --images-per-id 10 --out data/test   # built-in synthfr-small
  synthfr generate --identities ids.npy --generator arc2face --weights ~/weights/arc2face \\
      --images-per-id 50 --variation hyperface-noise:beta=0.01 --seed 0 --out data/arc2face --filter-min-sim 0.5
  synthfr generate ... --shard 3/16 --out data/shard-3   # then: synthfr merge data/shard-* --out data/all
  torchrun --standalone --nproc_per_node 8 -m synthfr.cli generate ... --out data/all   # ranks split the identities
"""
from __future__ import annotations

import argparse

HELP = "generate a face dataset (images + manifest) from identity vectors; shardable and resumable"

def add_arguments(p: argparse.ArgumentParser) -> None:
    from synthfr.config import add_common_arguments, add_config_arguments
    from synthfr.generation import GenerateConfig

    add_common_arguments(p, "--config")
    add_config_arguments(p, GenerateConfig)
    add_common_arguments(p, "--no-progress", "--json")


def run(args: argparse.Namespace) -> int:
    from synthfr.config import config_from_args
    from synthfr.generation import GenerateConfig, generate_dataset

    cfg = config_from_args(GenerateConfig, args)
    summary = generate_dataset(cfg, progress=not args.no_progress)
    print(f"{summary['identities_generated']} identities generated ({summary['identities_skipped']} already done), "
          f"{summary['images']} images, {summary['dropped']} dropped by the filter, "
          f"{summary['failed_filter']} kept below the threshold, {summary['seconds']:.1f} s "
          f"({summary['images_per_s']:.0f} images/s) -> {summary['out']}"
          + ("" if summary["complete"] else " (this process's share; manifest written when all are done)"))
    if args.json:
        from synthfr.utils.io import write_json

        write_json(args.json, summary)
    return 0
