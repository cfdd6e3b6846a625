"""CPU-scale experiments of docs/experiments.md (issue 7): one arm per call, a summary table at the end.

Every arm trains the same backbone recipe (MobileFaceNet, 64×64, CosFace, SGD, cosine schedule) for the same
number of epochs on about the same number of images (300 identities × 20 = 6,000 synthetic images; the aligned
CelebA subset has 6,047), then evaluates on LFW (evaluation only). Synthetic arms run `synthfr pipeline` with
`configs/cpu-experiment.yaml` and overrides, so each arm folder is a complete, resumable pipeline output
(identities, dataset, quality report, run, LFW figures, report.html).

    A=benchmarks/experiments.py; L=../shared/data/lfw/lfw.bin
    flock /work/cache/cpu.lock .venv/bin/python $A real      --out /work/cache/exp --lfw $L --celeba /work/cache/aligned/celeba
    flock /work/cache/cpu.lock .venv/bin/python $A hyperface --out /work/cache/exp --lfw $L
    ...   uniform | vec2face | hyperface-mixup | hyperface-wide | hyperface-deep
    .venv/bin/python $A summary --out /work/cache/exp           # markdown table of every finished arm

Comparisons: (a) real vs hyperface; (b) hyperface vs uniform vs vec2face; (c) hyperface vs hyperface-mixup
(SynFace identity mixup, soft labels); (d) hyperface-wide (mobilefacenet: 2× width) vs hyperface-deep
(mobilefacenet_s1_deep: twice the blocks) at the same image count, with hyperface (width 1) as the reference.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

EPOCHS = 8
TRAIN = {"backbone": "mobilefacenet_s1", "input_size": 64, "embedding_size": 512, "head": "cosface",
         "head_kwargs": {"s": 32, "m": 0.35}, "epochs": EPOCHS, "time_limit": None, "schedule": "cosine",
         "warmup_epochs": 1, "batch_size": 64, "lr": 0.1, "threads": 2, "num_workers": 1, "seed": 0}
ARMS = {
    "hyperface": {},
    "uniform": {"sample.method": "uniform", "sample.options": "{}"},
    "vec2face": {"sample.method": "vec2face", "sample.options": "{tau: 0.3}"},
    "hyperface-mixup": {"generate.variation": "mixup"},
    "hyperface-wide": {"train.config.backbone": "mobilefacenet"},
    "hyperface-deep": {"train.config.backbone": "mobilefacenet_s1_deep"},
    # beyond the four comparisons: the best recipe found here, against real data with the same augmentation
    "hyperface-g2aug": {"generate.generator": "synthfr-small:id_gain=2.0",
                        "train.config.augment": "{rescale: 0.2, jitter: 0.5, blur: 0.2, erase: 0.2}"},
}
AUG = {"rescale": 0.2, "jitter": 0.5, "blur": 0.2, "erase": 0.2}  # of hyperface-g2aug and real-aug


def sh(cmd: list[str]) -> None:
    print("$ " + " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("arm", choices=["real", "real-aug", *ARMS, "summary"])
    ap.add_argument("--out", required=True, help="experiments folder (one sub-folder per arm)")
    ap.add_argument("--lfw", help="lfw.bin (evaluation only)")
    ap.add_argument("--celeba", help="aligned CelebA ImageFolder (arm 'real')")
    ap.add_argument("--epochs", type=int, default=EPOCHS)
    args = ap.parse_args()
    out = Path(args.out)
    exe = [sys.executable, "-m", "synthfr.cli"]
    if args.arm == "summary":
        return summary(out)
    d = out / args.arm
    if args.arm in ("real", "real-aug"):
        t = dict(TRAIN, epochs=args.epochs)
        cmd = exe + ["train", "--data", args.celeba, "--out", str(d / "run"), "--backbone", t["backbone"],
                     "--input-size", str(t["input_size"]), "--head", "cosface", "--scale", "32", "--margin",
                     "0.35", "--epochs", str(t["epochs"]), "--schedule", "cosine", "--warmup-epochs", "1",
                     "--batch-size", "64", "--lr", "0.1", "--workers", "1", "--threads", "2", "--seed", "0",
                     "--quiet"]
        if args.arm == "real-aug":
            cmd += [x for k, v in AUG.items() for x in (f"--aug-{k}", str(v))]
        t0 = time.time()
        sh(cmd)
        (d / "train_seconds.json").write_text(json.dumps({"seconds": time.time() - t0}))
        sh(exe + ["eval", "--checkpoint", str(d / "run"), "--benchmark", args.lfw, "--json",
                  str(d / "eval.json"), "--device", "cpu", "--quiet"])
        return 0
    # The hyperface arm is exactly the documented command of configs/cpu-experiment.yaml (issue 7, acceptance 2).
    sets = {"evaluate.benchmarks": f"[{args.lfw}]"}
    if args.epochs != EPOCHS:
        sets["train.config.epochs"] = str(args.epochs)
    sets.update(ARMS[args.arm])
    cmd = exe + ["pipeline", "configs/cpu-experiment.yaml", "--out", str(d), "--json", str(d / "pipeline.json")]
    for k, v in sets.items():
        cmd += ["--set", f"{k}={v}"]
    sh(cmd)
    return 0


def summary(out: Path) -> int:
    """Markdown table of every finished arm: LFW figures, the last training loss, dataset quality, wall time."""
    print("| arm | LFW accuracy | LFW EER | TPR@FPR=1e-3 | final train loss | dataset: cos to own centre / "
          "impostor mean / EER | wall time |\n|---|---|---|---|---|---|---|")
    for arm in ["real", "real-aug", *ARMS]:
        d = out / arm
        ev = next((p for p in (d / "eval.json", d / "evaluate" / "eval.json") if p.is_file()), None)
        if ev is None:
            continue
        r = json.loads(ev.read_text())["benchmarks"]["lfw"]
        log = next((p for p in (d / "run" / "log.csv", d / "train" / "run" / "log.csv") if p.is_file()), None)
        loss = float(log.read_text().strip().splitlines()[-1].split(",")[3]) if log else float("nan")
        quality, secs = "(real data)", float("nan")
        if (d / "pipeline.json").is_file():
            st = json.loads((d / "pipeline.json").read_text())
            q = st["stages"].get("quality", {}).get("summary", {})
            gi = q.get("genuine mean / impostor mean", "? / ?").split(" / ")[-1]
            quality = f"{q.get('mean cos to own centre', float('nan')):.3f} / {gi} / {q.get('EER', float('nan')):.3f}"
            secs = st["seconds"]
        elif (d / "train_seconds.json").is_file():
            secs = json.loads((d / "train_seconds.json").read_text())["seconds"]
        print(f"| {arm} | {r['accuracy']:.4f} ± {r['std']:.4f} | {r['eer']:.3f} | "
              f"{r['tpr_at_fpr'].get('1e-3', float('nan')):.3f} | {loss:.3f} | {quality} | {secs / 60:.1f} min |")
    # paired differences over LFW's 10 folds (the same pairs for every arm): is a gap bigger than fold noise?
    pairs = [("hyperface", "real"), ("uniform", "hyperface"), ("vec2face", "hyperface"), ("vec2face", "uniform"),
             ("hyperface-mixup", "hyperface"), ("hyperface-wide", "hyperface"), ("hyperface-deep", "hyperface"),
             ("hyperface-wide", "hyperface-deep"), ("real-aug", "real"), ("hyperface-g2aug", "hyperface"),
             ("hyperface-g2aug", "real-aug")]
    folds = {}
    for arm in ["real", "real-aug", *ARMS]:
        for p in (out / arm / "eval.json", out / arm / "evaluate" / "eval.json"):
            if p.is_file():
                folds[arm] = json.loads(p.read_text())["benchmarks"]["lfw"]["fold_accuracies"]
    print("\n| comparison | Δ accuracy (A − B) | paired t over 10 folds |\n|---|---|---|")
    for a, b in pairs:
        if a in folds and b in folds:
            m, t = paired_t(folds[a], folds[b])
            print(f"| {a} − {b} | {m:+.4f} | {t:+.2f} |")
    return 0


def paired_t(a: list[float], b: list[float]) -> tuple[float, float]:
    """Mean of the paired differences ``a − b`` and its t statistic (mean / (sd / √n)); also used by
    benchmarks/experiments15_summary.py (folds of one benchmark, or training seeds)."""
    d = [x - y for x, y in zip(a, b)]
    m = sum(d) / len(d)
    if len(d) < 2:
        return m, float("nan")
    sd = (sum((x - m) ** 2 for x in d) / (len(d) - 1)) ** 0.5
    return m, (m / (sd / len(d) ** 0.5) if sd > 0 else (float("inf") if m else float("nan")))


if __name__ == "__main__":
    sys.exit(main())
