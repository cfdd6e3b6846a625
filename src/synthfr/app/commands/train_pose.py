"""Train the small differentiable head-pose estimator used by the AttrOP variation.

Labels come from dlib's 68 landmarks + cv2.solvePnP against a 3-D face template (synthfr.face.pose); the
estimator is a small CNN on aligned 112×112 faces predicting (yaw, pitch) in degrees. Train on aligned real
faces (never LFW):

    synthfr train-pose --data aligned/celeba aligned/utkface --out pose-dir --json pose.json

`--out package` writes into the installed package's weights folder (synthfr/weights/pose-small).
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass

HELP = "train the small head-pose estimator (yaw/pitch) used by the attrop variation"


@dataclass
class TrainPoseConfig:
    """``synthfr train-pose``: the small head-pose estimator on landmark labels of aligned real faces."""

    data: list[str]
    """Folders of aligned 112×112 faces (never LFW)."""
    out: str
    """Weights folder to write ('package' = synthfr/weights/pose-small)."""
    labels_cache: str | None = None
    """Cache file for the landmark labels (reused when present)."""
    epochs: int = 6
    """Training epochs."""
    batch_size: int = 64
    """Faces per step."""
    threads: int | None = None
    """Torch CPU threads."""
    seed: int = 0
    """Seed of the split, the initialisation and the data order."""
    json: str | None = None
    """Write the validation figures as JSON to this path."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    from synthfr.config import add_config_arguments

    add_config_arguments(p, TrainPoseConfig, flags={"data": {"metavar": "DIR"}, "labels_cache": {"metavar": "NPZ"},
                                                    "json": {"metavar": "PATH"}})


def run(args: argparse.Namespace) -> int:
    from synthfr.config import config_from_args
    from synthfr.face.pose import default_pose_dir, train_pose_from_folders
    from synthfr.utils.io import write_json

    cfg = config_from_args(TrainPoseConfig, args)
    out = default_pose_dir() if cfg.out == "package" else cfg.out
    res = train_pose_from_folders(cfg.data, out, labels_cache=cfg.labels_cache, epochs=cfg.epochs,
                                  batch_size=cfg.batch_size, threads=cfg.threads, seed=cfg.seed)
    res.pop("model", None)
    print(f"train-pose: wrote {out}; validation MAE yaw {res['val_mae_yaw']:.2f}°, pitch {res['val_mae_pitch']:.2f}° "
          f"on {res['n_val']} faces")
    if cfg.json:
        write_json(cfg.json, res)
    return 0
