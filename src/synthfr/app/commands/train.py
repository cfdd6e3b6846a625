"""Train a face-recognition model (backbone + margin head) on an image folder or insightface .rec.

Single process on CPU/GPU, or many GPUs with torchrun (NCCL; gloo on CPU); Partial FC, AMP on GPU, SynFace
identity/domain mixup, VIGFace virtual classes, per-epoch validation on .bin benchmarks, exact --resume.
Examples:

    synthfr train --data celeba_aligned --backbone mobilefacenet --head arcface --out runs/mbf --epochs 20 \\
        --batch-size 128 --val ../shared/data/lfw/lfw.bin
    torchrun --nproc_per_node 8 -m synthfr.cli train --data train.rec --backbone ir_se50 --out runs/irse50 \\
        --batch-size 1024 --sample-rate 0.2
    synthfr train --data synth/ real_aligned/ --data-weights 0.8 0.2 --out runs/mix   # two sources, own classes
    synthfr train --out runs/mbf --resume            # continue a killed run exactly
    synthfr train --config recipe.yaml --out runs/x  # a YAML with TrainConfig fields; flags override it
"""
from __future__ import annotations

import argparse

HELP = "train a face-recognition backbone + margin head (Partial FC, DDP, mixups, virtual classes)"

#: the option strings that differ from the field names (every help is the field's docstring)
_CLI = {"num_workers": {"flags": ["--workers"]}, "backbone_kwargs": {"flags": ["--backbone-arg"]},
        "head_kwargs": {"flags": ["--head-arg"]}, "data": {"metavar": "DATA"},
        "data_weights": {"type": float, "metavar": "W"}, "val": {"action": "append", "metavar": "BENCH"},
        "progress": {"flags": ["--quiet"]}}
_KEYS = {("--margin", "-m"): "head_kwargs.m", ("--scale", "-s"): "head_kwargs.s"}


def add_arguments(p: argparse.ArgumentParser) -> None:
    from synthfr.config import add_common_arguments, add_config_arguments
    from synthfr.training.config import TrainConfig

    add_common_arguments(p, "--config")
    add_config_arguments(p, TrainConfig, flags=_CLI, nested={"augment": "aug"}, keys=_KEYS)
    add_common_arguments(p, "--json")


def build_config(args: argparse.Namespace):
    """The TrainConfig of a command line: run config (on --resume) < --config YAML < options."""
    import dataclasses
    import json
    from pathlib import Path

    from synthfr.config import config_from_args
    from synthfr.training.config import TrainConfig

    base = None
    if args.resume and args.out and (Path(args.out) / "config.json").is_file():
        base = json.loads((Path(args.out) / "config.json").read_text())["config"]
    cfg = config_from_args(TrainConfig, args, base=base)
    # a run is resumed only when asked, and shows its progress unless told not to (whatever the YAML says)
    return dataclasses.replace(cfg, resume=bool(args.resume), progress=args.progress is None)


def run(args: argparse.Namespace) -> int:
    from synthfr.training.loop import train

    cfg = build_config(args)
    out = train(cfg)
    if args.json:
        from synthfr.utils.io import read_json, write_json
        from synthfr.utils.run_dir import read_csv_rows

        meta = read_json(out / "config.json")
        res = {"final_step": float(meta.get("final_step", 0))}
        rows = read_csv_rows(out / "log.csv", numeric=False)
        if rows:
            res["loss"] = float(rows[-1]["loss"])
        if (out / "val.csv").is_file():
            for r in read_csv_rows(out / "val.csv", numeric=False):
                res[f"val_{r['benchmark']}"] = float(r["accuracy"])
        write_json(args.json, res)
    print(f"run written to {out}")
    return 0
