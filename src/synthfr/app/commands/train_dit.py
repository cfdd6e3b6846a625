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
from dataclasses import dataclass

HELP = "train VIGFace's DiT generator (vigface-dit) on aligned faces, after its prototypes; resumable"


@dataclass
class DitRunOptions:
    """What ``synthfr train-dit`` does with RUN besides its DiTTrainConfig: resume it, or export it."""

    resume: bool = False
    """Continue the run in out from its newest checkpoint."""
    export_to: str | None = None
    """Do not train: export the run's newest EMA weights to this folder (a vigface-dit weights folder)."""
    half: bool = False
    """With export_to: float16 weights."""
    guidance: float | None = None
    """With export_to: the default guidance scale recorded with the weights."""


_CLI = {"data": {"metavar": "DIR"}, "out": {"metavar": "RUN"}, "data_cache": {"metavar": "DIR"},
        "export_to": {"metavar": "DIR"}}


def add_arguments(p: argparse.ArgumentParser) -> None:
    from synthfr.app.commands.train_generator import _duration
    from synthfr.config import COMMON_OPTIONS, add_common_arguments, add_config_arguments
    from synthfr.genmodel.dit.trainer import DiTTrainConfig

    p.add_argument("--config", dest="dit_config", **{k: v for k, v in COMMON_OPTIONS["--config"].items()})
    add_config_arguments(p, DiTTrainConfig, flags={**_CLI, "time_budget": {"type": _duration}})
    add_config_arguments(p, DitRunOptions, flags=_CLI)
    add_common_arguments(p, "--set", "--no-progress")


def load_dit_config(path: str | None, overrides: dict) -> "object":
    """The train-dit config from a pipeline YAML's ``dit:`` section (top-level ``seed``/``device`` fill in) or a
    plain mapping, with dotted overrides applied."""
    from synthfr.config import load_yaml, set_dotted
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
    return dit_config_from_dict(set_dotted(data, overrides))


def run(args: argparse.Namespace) -> int:
    import dataclasses

    from synthfr.config import config_dict_from_args, config_from_args
    from synthfr.genmodel.dit.trainer import DiTTrainConfig

    job = config_from_args(DitRunOptions, argparse.Namespace(**{f.name: getattr(args, f.name)
                                                                for f in dataclasses.fields(DitRunOptions)}))
    if job.export_to:
        from synthfr.genmodel.dit.checkpoint import export_dit

        if not args.out:
            raise ValueError("--export-to needs --out RUN (the run to export)")
        extra = {} if job.guidance is None else {"guidance": job.guidance}
        dest = export_dit(args.out, job.export_to, half=job.half, defaults=extra)
        print(f"train-dit: exported {args.out} to {dest}")
        return 0
    # the config's dit: section < options given < --set (the trainer's own loader reads presets)
    cfg = load_dit_config(args.dit_config, config_dict_from_args(DiTTrainConfig, args))
    if not cfg.data:
        raise ValueError("train-dit needs training faces: --data DIR [DIR ...] or data: in the config's dit: section")
    from synthfr.genmodel.dit.trainer import train_dit

    s = train_dit(cfg, resume=job.resume, progress=not args.no_progress)
    print(f"train-dit: step {s['step']} in {cfg.out} ({s['train_seconds'] / 3600:.2f} h of training), "
          f"loss {s['first_loss']} -> {s['last_loss']}; virtual identities: {cfg.out}/stage1/virtual.npy")
    return 0
