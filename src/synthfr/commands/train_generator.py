"""Train the built-in embedding-to-face generator (synthfr-small) on aligned real faces.

Resumable and background-friendly: checkpoints every few minutes (safetensors + JSON, atomically), logs
losses to RUN/log.csv, sample grids to RUN/samples/, held-out identity fidelity to RUN/val.csv. Stop it at
any time (Ctrl-C / SIGTERM writes a checkpoint) and continue with the same command plus --resume.

Example (CPU, in the background, friendly to other jobs):

    nice -n 10 synthfr train-generator --data aligned/celeba aligned/utkface --out runs/gen --threads 1 \\
        --time-budget 3h --resume

Export the run's latest (EMA) weights into a weights folder for `synthfr-small` with
`synthfr train-generator --out RUN --export-to DIR` (DIR = `package` for the package's own folder).
"""
from __future__ import annotations

import argparse

HELP = "train the built-in generator (synthfr-small) on aligned faces; resumable"


def _duration(text: str) -> float:
    """Seconds from '5400', '90m', '3h', '1h30m'."""
    t = text.strip().lower()
    try:
        return float(t)
    except ValueError:
        pass
    total, num = 0.0, ""
    for ch in t:
        if ch.isdigit() or ch == ".":
            num += ch
        elif ch in "hms" and num:
            total += float(num) * {"h": 3600, "m": 60, "s": 1}[ch]
            num = ""
        else:
            raise argparse.ArgumentTypeError(f"cannot read duration {text!r}; use e.g. 5400, 90m, 3h or 1h30m")
    if num:
        total += float(num)
    return total


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", nargs="+", default=[], metavar="DIR",
                   help="folders of aligned 112×112 faces (synthfr align output); never LFW")
    p.add_argument("--out", required=True, metavar="RUN", help="run folder (checkpoints, logs, samples)")
    p.add_argument("--resume", action="store_true", help="continue the run in RUN from its latest checkpoint")
    p.add_argument("--config", metavar="YAML", help="training config (keys of GenTrainConfig; model: {...})")
    p.add_argument("--data-cache", metavar="DIR", help="cache of packed images + embeddings (default RUN/data)")
    p.add_argument("--device", default=None, help="auto | cpu | cuda | cuda:N (default auto)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--max-steps", type=int, default=None, help="stop after this many steps in total")
    p.add_argument("--time-budget", type=_duration, default=None,
                   help="stop with a checkpoint after this long (seconds or 90m / 3h)")
    p.add_argument("--ckpt-minutes", type=float, default=None, help="checkpoint interval (default 5)")
    p.add_argument("--sample-every", type=int, default=None, help="steps between sample grids (default 500)")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                   help="override any config key, e.g. --set gan_start=5000 w_id=2 model.depth=6")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (for logs)")
    p.add_argument("--export-to", metavar="DIR", help="do not train: export RUN's latest EMA weights to DIR "
                   "(model.safetensors + config.json; 'package' = the installed package's weights folder)")
    p.add_argument("--half", action="store_true", help="with --export-to: store float16 weights (half size)")
    p.add_argument("--id-gain", type=float, default=None, metavar="G",
                   help="with --export-to: record the default identity gain of these weights (synthfr-small "
                        "id_gain; choose it with benchmarks/generator_acceptance.py --id-gain)")


def run(args: argparse.Namespace) -> int:
    import yaml

    from synthfr.config import load_yaml
    from synthfr.genmodel.trainer import GenTrainConfig, config_from_json, train_generator

    if args.export_to:
        from synthfr.genmodel.export import export_generator

        extra = {} if args.id_gain is None else {"id_gain": float(args.id_gain)}
        dest = export_generator(args.out, None if args.export_to == "package" else args.export_to, half=args.half,
                                extra=extra)
        print(f"train-generator: exported {args.out} to {dest}")
        return 0
    cfg = GenTrainConfig()
    if args.config:
        cfg = config_from_json(load_yaml(args.config))
    over: dict = {"out": args.out}
    if args.data:
        over["data"] = list(args.data)
    for key, attr in [("data_cache", "data_cache"), ("device", "device"), ("threads", "threads"),
                      ("batch_size", "batch_size"), ("max_steps", "max_steps"), ("time_budget", "time_budget"),
                      ("ckpt_minutes", "ckpt_minutes"), ("sample_every", "sample_every"), ("seed", "seed")]:
        v = getattr(args, attr)
        if v is not None:
            over[key] = v
    for item in args.set:
        if "=" not in item:
            raise ValueError(f"--set takes KEY=VALUE, got {item!r}")
        k, v = item.split("=", 1)
        over[k.strip()] = yaml.safe_load(v)
    model_over = {k[len("model."):]: v for k, v in over.items() if k.startswith("model.")}
    over = {k: v for k, v in over.items() if not k.startswith("model.")}
    cfg = _apply(cfg, over, model_over)
    if not cfg.data and not args.resume:
        raise ValueError("pass --data DIR [DIR ...] with aligned faces (or --resume an existing run)")
    if not cfg.data and args.resume:
        from pathlib import Path

        from synthfr.genmodel.trainer import load_latest

        got = load_latest(Path(args.out))
        if got is None:
            raise FileNotFoundError(f"{args.out} has no checkpoint to resume; pass --data to start a run")
        cfg = _apply(cfg, {"data": got[1]["config"]["data"]}, {})
    summary = train_generator(cfg, resume=args.resume, progress=not args.no_progress)
    print(f"train-generator: step {summary['step']} in {summary['out']} "
          f"({summary['elapsed_s'] / 3600:.2f} h of training so far); last losses: "
          + ", ".join(f"{k}={v:.4f}" for k, v in summary["last"].items()))
    return 0


def _apply(cfg, over, model_over):
    import dataclasses

    from synthfr.genmodel.model import GenModelConfig

    names = {f.name for f in dataclasses.fields(cfg)}
    unknown = sorted(set(over) - names)
    if unknown:
        raise ValueError(f"unknown train-generator setting(s) {unknown}; valid: {sorted(names)}")
    if model_over:
        mnames = {f.name for f in dataclasses.fields(GenModelConfig)}
        bad = sorted(set(model_over) - mnames)
        if bad:
            raise ValueError(f"unknown model setting(s) {bad}; valid: {sorted(mnames)}")
        cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, **model_over))
    return dataclasses.replace(cfg, **over)
