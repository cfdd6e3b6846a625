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

# flag -> (config field, type); help texts come from the TrainConfig field docstrings
_OPTIONS = [
    ("--out", "out", str), ("--backbone", "backbone", str),
    ("--embedding-size", "embedding_size", int), ("--head", "head", str), ("--sample-rate", "sample_rate", float),
    ("--virtual-classes", "virtual_classes", int), ("--domain-mixup", "domain_mixup", str),
    ("--domain-mixup-ratio", "domain_mixup_ratio", float), ("--domain-mixup-prob", "domain_mixup_prob", float),
    ("--epochs", "epochs", float), ("--batch-size", "batch_size", int), ("--lr", "lr", float),
    ("--momentum", "momentum", float), ("--weight-decay", "weight_decay", float), ("--schedule", "schedule", str),
    ("--lr-gamma", "lr_gamma", float), ("--warmup-epochs", "warmup_epochs", float),
    ("--grad-clip", "grad_clip", float), ("--input-size", "input_size", int), ("--seed", "seed", int),
    ("--workers", "num_workers", int), ("--device", "device", str), ("--amp", "amp", str),
    ("--threads", "threads", int), ("--val-every", "val_every", float),
    ("--checkpoint-every", "checkpoint_every", int), ("--keep-checkpoints", "keep_checkpoints", int),
    ("--log-every", "log_every", int), ("--max-steps", "max_steps", int), ("--time-limit", "time_limit", float),
]
_AUG = [("--aug-flip", "flip"), ("--aug-erase", "erase"), ("--aug-rescale", "rescale"), ("--aug-jitter", "jitter"),
        ("--aug-blur", "blur")]


def add_arguments(p: argparse.ArgumentParser) -> None:
    from synthfr.config import field_docs
    from synthfr.training.config import AugmentConfig, TrainConfig

    docs, adocs = field_docs(TrainConfig), field_docs(AugmentConfig)
    defaults, adef = TrainConfig(), AugmentConfig()
    p.add_argument("--config", metavar="YAML", help="read TrainConfig fields from a YAML file (flags override it)")
    for flag, name, tp in _OPTIONS:
        p.add_argument(flag, dest=name, type=tp, default=None,
                       help=f"{docs.get(name, '')} (default: {getattr(defaults, name)!r})".replace("%", "%%"))
    p.add_argument("--data", nargs="+", default=None, metavar="DATA",
                   help=docs["data"] + " Several: --data SYNTH_DIR REAL_DIR.")
    p.add_argument("--data-weights", type=float, nargs="+", default=None, metavar="W", help=docs["data_weights"])
    p.add_argument("--milestones", type=float, nargs="+", default=None, help=docs["milestones"])
    p.add_argument("--margin", "-m", dest="head_m", type=float, default=None, help="head margin m")
    p.add_argument("--scale", "-s", dest="head_s", type=float, default=None, help="head scale s")
    p.add_argument("--head-arg", action="append", default=[], metavar="KEY=VALUE",
                   help="any other head option, e.g. --head-arg m1=1.0 (repeatable)")
    p.add_argument("--backbone-arg", action="append", default=[], metavar="KEY=VALUE",
                   help="backbone option, e.g. --backbone-arg dropout=0.4 (repeatable)")
    for flag, name in _AUG:
        p.add_argument(flag, dest=f"aug_{name}", type=float, default=None,
                       help=f"{adocs.get(name, '')} (default: {getattr(adef, name)})".replace("%", "%%"))
    p.add_argument("--val", action="append", default=None, metavar="BENCH",
                   help="verification benchmark (.bin) evaluated each epoch (repeatable)")
    p.add_argument("--no-soft-labels", action="store_true", help="ignore manifest soft labels (identity mixup)")
    p.add_argument("--resume", action="store_true", help=docs["resume"] + " Without other flags, the run's "
                                                                          "config.json is reused.")
    p.add_argument("--tensorboard", action="store_true", help=docs["tensorboard"])
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--json", metavar="PATH", help="write {final_step, loss, val accuracies} as JSON")


def _kv(items: list[str], what: str) -> dict:
    import yaml

    out = {}
    for it in items:
        if "=" not in it:
            raise ValueError(f"{what} {it!r} must look like KEY=VALUE")
        k, v = it.split("=", 1)
        out[k.strip()] = yaml.safe_load(v)
    return out


def build_config(args: argparse.Namespace):
    """The TrainConfig of a command line: run config (on --resume) < --config YAML < flags."""
    import json
    from pathlib import Path

    from synthfr.config import from_dict, load_yaml, merge
    from synthfr.training.config import TrainConfig

    cfg = TrainConfig()
    if args.resume and args.out and (Path(args.out) / "config.json").is_file():
        cfg = from_dict(TrainConfig, json.loads((Path(args.out) / "config.json").read_text())["config"])
    if args.config:
        cfg = merge(cfg, load_yaml(args.config))
    over: dict = {}
    for _, name, _ in _OPTIONS:
        v = getattr(args, name)
        if v is not None:
            over[name] = v
    if args.data is not None:
        over["data"] = args.data[0] if len(args.data) == 1 else list(args.data)
    if args.data_weights is not None:
        over["data_weights"] = list(args.data_weights)
    if args.milestones is not None:
        over["milestones"] = list(args.milestones)
    head_kw = dict(cfg.head_kwargs)
    if args.head_m is not None:
        head_kw["m"] = args.head_m
    if args.head_s is not None:
        head_kw["s"] = args.head_s
    head_kw.update(_kv(args.head_arg, "--head-arg"))
    if head_kw != cfg.head_kwargs:
        over["head_kwargs"] = head_kw
    if args.backbone_arg:
        over["backbone_kwargs"] = {**cfg.backbone_kwargs, **_kv(args.backbone_arg, "--backbone-arg")}
    for _, name in _AUG:
        v = getattr(args, f"aug_{name}")
        if v is not None:
            over[f"augment.{name}"] = v
    if args.val is not None:
        over["val"] = list(args.val)
    if args.no_soft_labels:
        over["soft_labels"] = False
    if args.tensorboard:
        over["tensorboard"] = True
    over["resume"] = bool(args.resume)
    over["progress"] = not args.quiet
    return merge(cfg, over)


def run(args: argparse.Namespace) -> int:
    from synthfr.training.loop import train

    cfg = build_config(args)
    out = train(cfg)
    if args.json:
        import csv

        from synthfr.utils.io import read_json, write_json

        meta = read_json(out / "config.json")
        res = {"final_step": float(meta.get("final_step", 0))}
        rows = list(csv.DictReader(open(out / "log.csv")))
        if rows:
            res["loss"] = float(rows[-1]["loss"])
        if (out / "val.csv").is_file():
            for r in csv.DictReader(open(out / "val.csv")):
                res[f"val_{r['benchmark']}"] = float(r["accuracy"])
        write_json(args.json, res)
    print(f"run written to {out}")
    return 0
