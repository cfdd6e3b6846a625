"""Generate a face dataset from identity vectors: variation -> generator -> [checks] -> writer.

Images go to OUT/images/<identity row, zero-padded>/<k>.jpg, with manifest.jsonl (one line per image),
identities.npy and config.yaml (resolved settings, generator weights hash, package versions). Every image's
seed is derived from (--seed, identity row, k), so batching, --shard, torchrun and --resume never change a
byte. Flags override the keys of --config CFG.yaml (same names, underscores).

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

_FLAGS = {
    # flag: (config key, type, help)
    "--identities": ("identities", str, "identity vectors (.npy, N×D) from `synthfr sample`, or a sampler spec "
                                        "NAME:n=N,dim=D,... sampled into OUT/sampled/ids.npy"),
    "--generator": ("generator", str, "generator NAME[:key=value,...] (`synthfr list generators`); "
                                      "default synthfr-small (the built-in generator)"),
    "--weights": ("weights", str, "local folder with the generator's weights (docs/generators.md)"),
    "--images-per-id": ("images_per_id", int, "images per identity K (default 10)"),
    "--variation": ("variation", str, "variation NAME[:key=value,...] (`synthfr list variations`)"),
    "--seed": ("seed", int, "global seed (default 0)"),
    "--out": ("out", str, "output folder"),
    "--num-identities": ("num_identities", int, "use only the first N identity rows"),
    "--shard": ("shard", str, "this job's share i/n (0-based); each shard gets its own --out, then `synthfr merge`; "
                              "auto = the Slurm array task (SLURM_ARRAY_TASK_ID/COUNT) or torchrun's rank"),
    "--shard-mode": ("shard_mode", str, "strided (rows i, i+n, ...; default) or contiguous blocks"),
    "--format": ("format", str, "folder (default) or rec (insightface train.rec/.idx)"),
    "--image-format": ("image_format", str, "jpg (default) or png"),
    "--jpeg-quality": ("jpeg_quality", int, "JPEG quality (default 95)"),
    "--filter-min-sim": ("filter_min_sim", float, "identity filter: regenerate images below this cosine to "
                                                  "their identity vector (e.g. 0.5)"),
    "--embedder": ("embedder", str, "embedder for the filter (default: the generator's own)"),
    "--align-check": ("align_check", float, "alignment check: regenerate images whose five landmarks lie more "
                                            "than this many pixels (mean) from the template, or without a face"),
    "--max-attempts": ("max_attempts", int, "filter bound: attempts per image (default 5)"),
    "--batch-size": ("batch_size", int, "images per generator call (default 64; no effect on pixels)"),
    "--device": ("device", str, "auto (default), cpu, cuda, cuda:1, ..."),
    "--workers": ("workers", int, "image encoding/writing threads (default 2)"),
}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", metavar="CFG.yaml", help="YAML file with GenerateConfig keys; flags override it")
    for flag, (key, tp, hlp) in _FLAGS.items():
        p.add_argument(flag, dest=key, type=tp, default=None, help=hlp)
    p.add_argument("--resume", action="store_true", default=None, help="continue a killed run in --out")
    p.add_argument("--no-fsync", dest="fsync", action="store_false", default=None,
                   help="skip fsync (faster on some filesystems; a kill is still safe, a power cut may not be)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--json", metavar="PATH", help="also write the run summary as JSON")


def config_from_args(args: argparse.Namespace):
    from synthfr.config import from_dict, load_yaml, to_dict
    from synthfr.generation import GenerateConfig

    base = to_dict(load_yaml(args.config, GenerateConfig)) if args.config else {}
    for key in [v[0] for v in _FLAGS.values()] + ["resume", "fsync"]:
        val = getattr(args, key, None)
        if val is not None:
            base[key] = val
    return from_dict(GenerateConfig, base)


def run(args: argparse.Namespace) -> int:
    from synthfr.generation import generate_dataset

    cfg = config_from_args(args)
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
