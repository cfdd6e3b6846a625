"""Train VIGFace's stage 2, the DiT generator ``vigface-dit`` (stage 1, the prototypes, runs first, once).

    synthfr train-dit --config configs/vigface-cpu.yaml              # the config's dit: section (+ its seed)
    synthfr train-dit --config configs/vigface-cpu.yaml --resume     # continue from the newest checkpoint
    synthfr train-dit --out RUN --export-to RUN/export               # EMA weights -> a vigface-dit weights folder
    torchrun --standalone --nproc_per_node 8 -m synthfr.cli train-dit --config configs/vigface.yaml

Resumable and background-friendly: checkpoints every ``ckpt_minutes`` (safetensors + JSON), SIGTERM/Ctrl-C
writes one. RUN/stage1/virtual.npy holds the virtual identities for ``synthfr generate --generator vigface-dit``.
"""
from __future__ import annotations

import argparse

HELP = "train VIGFace's DiT generator (vigface-dit) on aligned faces, after its prototypes; resumable"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from synthfr.commands.train_generator import _duration

    p.add_argument("--config", metavar="YAML", help="a pipeline YAML with a dit: section (configs/vigface*.yaml) "
                   "or a YAML of train-dit keys")
    p.add_argument("--out", metavar="RUN", help="run folder (default: the config's dit.out)")
    p.add_argument("--data", nargs="+", default=None, metavar="DIR", help="folders of aligned 112×112 faces; never LFW")
    p.add_argument("--data-cache", metavar="DIR", help="packed images + embeddings (default RUN/data)")
    p.add_argument("--resume", action="store_true", help="continue the run in RUN from its newest checkpoint")
    p.add_argument("--device", default=None, help="auto | cpu | cuda | cuda:N")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--max-steps", type=int, default=None, help="stop after this many steps in total")
    p.add_argument("--time-budget", type=_duration, default=None, help="stop with a checkpoint after this long (90m, 3h)")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                   help="override any train-dit key, e.g. --set batch_size=64 model.depth=6 model.preset=DiT-XS/8")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (for logs)")
    p.add_argument("--export-to", metavar="DIR", help="do not train: export RUN's newest EMA weights to DIR")
    p.add_argument("--half", action="store_true", help="with --export-to: float16 weights")
    p.add_argument("--guidance", type=float, default=None, help="with --export-to: default guidance scale recorded")


def load_dit_config(path: str | None, overrides: dict) -> "object":
    """The train-dit config from a pipeline YAML's ``dit:`` section (top-level ``seed``/``device`` fill in) or a
    plain mapping, with dotted overrides applied."""
    from synthfr.config import load_yaml
    from synthfr.genmodel.dit.trainer import dit_config_from_dict

    data: dict = {}
    if path:
        raw = load_yaml(path) or {}
        if not isinstance(raw, dict):
            raise ValueError(f"{path} must hold a YAML mapping (a pipeline config with a dit: section)")
        if "dit" in raw:
            data = dict(raw["dit"] or {})
            for k in ("seed", "device"):
                if k in raw and k not in data:
                    data[k] = raw[k]
        else:
            data = dict(raw)
    for key, value in overrides.items():
        node = data
        parts = key.split(".")
        for q in parts[:-1]:
            node = node.setdefault(q, {})
        node[parts[-1]] = value
    return dit_config_from_dict(data)


def run(args: argparse.Namespace) -> int:
    from synthfr.pipeline import parse_overrides

    if args.export_to:
        from synthfr.genmodel.dit.checkpoint import export_dit

        if not args.out:
            raise ValueError("--export-to needs --out RUN (the run to export)")
        extra = {} if args.guidance is None else {"guidance": args.guidance}
        dest = export_dit(args.out, args.export_to, half=args.half, defaults=extra)
        print(f"train-dit: exported {args.out} to {dest}")
        return 0
    over = parse_overrides(args.set)
    for key, val in (("out", args.out), ("data", args.data), ("data_cache", args.data_cache), ("device", args.device),
                     ("threads", args.threads), ("max_steps", args.max_steps), ("time_budget", args.time_budget)):
        if val is not None:
            over[key] = val
    cfg = load_dit_config(args.config, over)
    if not cfg.data:
        raise ValueError("train-dit needs training faces: --data DIR [DIR ...] or data: in the config's dit: section")
    from synthfr.genmodel.dit.trainer import train_dit

    s = train_dit(cfg, resume=args.resume, progress=not args.no_progress)
    print(f"train-dit: step {s['step']} in {cfg.out} ({s['train_seconds'] / 3600:.2f} h of training), "
          f"loss {s['first_loss']} -> {s['last_loss']}; virtual identities: {cfg.out}/stage1/virtual.npy")
    return 0
