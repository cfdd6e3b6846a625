"""Train the small differentiable head-pose estimator used by the AttrOP variation.

Labels come from dlib's 68 landmarks + cv2.solvePnP against a 3-D face template (synthfr.face.pose); the
estimator is a small CNN on aligned 112×112 faces predicting (yaw, pitch) in degrees. Train on aligned real
faces (never LFW):

    synthfr train-pose --data aligned/celeba aligned/utkface --out pose-dir --json pose.json

`--out package` writes into the installed package's weights folder (synthfr/weights/pose-small).
"""
from __future__ import annotations

import argparse

HELP = "train the small head-pose estimator (yaw/pitch) used by the attrop variation"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", nargs="+", required=True, metavar="DIR", help="folders of aligned 112×112 faces")
    p.add_argument("--out", required=True, help="weights folder to write ('package' = synthfr/weights/pose-small)")
    p.add_argument("--labels-cache", metavar="NPZ", help="cache file for the landmark labels (reused when present)")
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", metavar="PATH", help="write the validation figures as JSON")


def run(args: argparse.Namespace) -> int:
    from synthfr.face.pose import default_pose_dir, train_pose_from_folders
    from synthfr.utils.io import write_json

    out = default_pose_dir() if args.out == "package" else args.out
    res = train_pose_from_folders(args.data, out, labels_cache=args.labels_cache, epochs=args.epochs,
                                  batch_size=args.batch_size, threads=args.threads, seed=args.seed)
    res.pop("model", None)
    print(f"train-pose: wrote {out}; validation MAE yaw {res['val_mae_yaw']:.2f}°, pitch {res['val_mae_pitch']:.2f}° "
          f"on {res['n_val']} faces")
    if args.json:
        write_json(args.json, res)
    return 0
