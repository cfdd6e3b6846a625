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
from dataclasses import dataclass

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


@dataclass
class ExportOptions:
    """What ``synthfr train-generator`` does with RUN besides its GenTrainConfig: resume it, or export it."""

    resume: bool = False
    """Continue the run in out from its latest checkpoint."""
    export_to: str | None = None
    """Do not train: export the run's latest EMA weights to this folder (model.safetensors + config.json;
    'package' = the installed package's weights folder)."""
    half: bool = False
    """With export_to: store float16 weights (half size)."""
    id_gain: float | None = None
    """With export_to: record the default identity gain of these weights (synthfr-small id_gain; choose it with
    benchmarks/generator_acceptance.py --id-gain)."""
    z_scale: float | None = None
    """With export_to: record the default style-noise scale of these weights (z_scale; 1.0 when not recorded)."""
    calibrate_on: str | None = None
    """With export_to: measure the exported synthfr-v2 weights' pose response on these TRAINING-set dlib-torch
    embeddings (EMB.npy, N×128 or N×K×128; never evaluation data) and write calibration.safetensors beside them."""
    calibrate_n: int = 40
    """With calibrate_on: identities rendered per grid value of the pose calibration."""


_CLI = {"data": {"metavar": "DIR"}, "out": {"metavar": "RUN"}, "time_budget": {"type": _duration},
        "export_to": {"metavar": "DIR"}, "id_gain": {"metavar": "G"}, "z_scale": {"metavar": "Z"},
        "calibrate_on": {"metavar": "EMB.npy"}, "calibrate_n": {"metavar": "N"}}


def add_arguments(p: argparse.ArgumentParser) -> None:
    from synthfr.config import add_common_arguments, add_config_arguments
    from synthfr.genmodel.trainer import GenTrainConfig

    add_common_arguments(p, "--config")
    add_config_arguments(p, GenTrainConfig, flags=_CLI)
    add_config_arguments(p, ExportOptions, flags=_CLI)
    add_common_arguments(p, "--set", "--no-progress")


def _calibrate(weights: str, emb_path: str, n: int, progress: bool = True) -> None:
    """Fit and store the pose calibration of freshly exported synthfr-v2 weights (see genmodel/calibration)."""
    import numpy as np

    from synthfr.errors import UsageError
    from synthfr.generators import create_generator
    from synthfr.genmodel.calibration import fit_pose_calibration, save_calibration

    emb = np.load(emb_path, mmap_mode="r")
    if emb.ndim == 3:
        emb = emb[:, 0]
    if emb.ndim != 2 or emb.shape[1] != 128 or len(emb) < n:
        raise UsageError(f"--calibrate-on {emb_path}: need at least {n} dlib-torch embeddings (N×128 or N×K×128), "
                         f"got shape {tuple(emb.shape)}")
    idx = np.sort(np.random.default_rng(0).choice(len(emb), n, replace=False))
    cond = np.asarray(emb[idx], np.float32)
    cond /= np.linalg.norm(cond, axis=1, keepdims=True)
    gen = create_generator("synthfr-v2", weights=str(weights))
    path = save_calibration(fit_pose_calibration(gen, cond, progress=progress), weights)
    print(f"train-generator: pose calibration ({n} training identities) -> {path}")


def run(args: argparse.Namespace) -> int:
    import dataclasses

    from synthfr.config import config_dict_from_args, config_from_args
    from synthfr.genmodel.trainer import GenTrainConfig, config_from_json, train_generator

    job = config_from_args(ExportOptions, argparse.Namespace(**{f.name: getattr(args, f.name)
                                                                for f in dataclasses.fields(ExportOptions)}))
    if job.export_to:
        from synthfr.genmodel.export import export_generator

        if not args.out:
            raise ValueError("--export-to needs --out RUN (the run to export)")
        extra = {k: float(v) for k, v in (("id_gain", job.id_gain), ("z_scale", job.z_scale)) if v is not None}
        dest = export_generator(args.out, None if job.export_to == "package" else job.export_to, half=job.half,
                                extra=extra)
        print(f"train-generator: exported {args.out} to {dest}")
        if job.calibrate_on:
            _calibrate(str(dest), job.calibrate_on, job.calibrate_n, progress=not args.no_progress)
        return 0
    if not args.out:
        raise ValueError("pass --out RUN (the run folder: checkpoints, logs, samples)")
    # the trainer's own loader (tuples, the model section) reads the merged settings
    cfg = config_from_json(config_dict_from_args(GenTrainConfig, args, base=GenTrainConfig()))
    if not cfg.data and not job.resume:
        raise ValueError("pass --data DIR [DIR ...] with aligned faces (or --resume an existing run)")
    if not cfg.data and job.resume:
        from pathlib import Path

        from synthfr.genmodel.checkpoint import load_latest

        got = load_latest(Path(cfg.out))
        if got is None:
            raise FileNotFoundError(f"{cfg.out} has no checkpoint to resume; pass --data to start a run")
        cfg = dataclasses.replace(cfg, data=got[1]["config"]["data"])
    summary = train_generator(cfg, resume=job.resume, progress=not args.no_progress)
    since = f" since step {summary['cpu_s_from_step']}" if summary["cpu_s_from_step"] else ""
    print(f"train-generator: step {summary['step']} in {summary['out']} "
          f"({summary['elapsed_s'] / 3600:.2f} h of wall time, {summary['cpu_s'] / 3600:.2f} CPU-hours{since}); "
          "last losses: "
          + ", ".join(f"{k}={v:.4f}" for k, v in summary["last"].items()))
    return 0
