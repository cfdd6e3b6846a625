"""Real-data baseline (issue acceptance 5): train on CelebA (aligned by synthfr) for at most 30 minutes on
2 CPU cores, then evaluate on LFW with ``synthfr eval --checkpoint``.

The schedule is fitted to the time budget (``--epochs 0 --time-limit``): after the first steps the loop
measures its speed and sets the cosine schedule's length so that it ends inside the budget. Run each command
under the shared CPU lock (the training alone holds it < 30 min)::

    flock /work/cache/cpu.lock .venv/bin/python benchmarks/train_baseline.py train \\
        --data /work/cache/aligned/celeba --out /work/cache/training/baseline_celeba
    flock /work/cache/cpu.lock .venv/bin/python benchmarks/train_baseline.py eval \\
        --out /work/cache/training/baseline_celeba --lfw ../shared/data/lfw/lfw.bin
"""
from __future__ import annotations

import argparse
import subprocess
import sys

RECIPE = ["--backbone", "mobilefacenet_s1", "--input-size", "64", "--head", "cosface", "--scale", "32",
          "--margin", "0.35", "--epochs", "0", "--time-limit", "1680", "--schedule", "cosine",
          "--warmup-epochs", "1", "--batch-size", "64", "--lr", "0.1", "--workers", "1", "--threads", "2",
          "--seed", "0", "--log-every", "20", "--quiet"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=["train", "eval"])
    ap.add_argument("--data", help="aligned CelebA ImageFolder")
    ap.add_argument("--out", required=True, help="run directory")
    ap.add_argument("--lfw", help="lfw.bin")
    args = ap.parse_args()
    exe = [sys.executable, "-m", "synthfr.cli"]
    if args.what == "train":
        cmd = exe + ["train", "--data", args.data, "--out", args.out, *RECIPE]
    else:
        cmd = exe + ["eval", "--checkpoint", args.out, "--benchmark", args.lfw, "--json", f"{args.out}/lfw.json",
                     "--device", "cpu", "--quiet"]
    print(" ".join(cmd), flush=True)
    return subprocess.call(cmd)


if __name__ == "__main__":
    sys.exit(main())
