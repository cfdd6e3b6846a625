"""Training throughput on this machine: model alone vs the real input pipeline (issue acceptance 6).

For each backbone, two measurements with the same batch, head, Partial FC, optimiser and torch threads:

* **model alone** - forward + backward + SGD step on a batch already in memory (random tensors);
* **real training** - ``synthfr.training.loop.train`` on JPEG files: DataLoader workers decode and augment
  (flip, rescale, colour jitter, motion blur, random erasing each with p = 0.2), then the same steps.

samples/s is measured over the steps after ``--warmup`` steps (log timestamps for the real run). Run under the
shared CPU lock::

    flock /work/cache/cpu.lock .venv/bin/python benchmarks/train_throughput.py \\
        --data /work/cache/aligned/celeba --json /work/cache/training/bench/throughput.json
"""
from __future__ import annotations

import argparse
import csv
import json
import shutil
import tempfile
import time
from pathlib import Path

import torch


def model_alone(backbone: str, batch: int, steps: int, warmup: int, num_classes: int, threads: int) -> float:
    from synthfr.models.backbones import create_backbone
    from synthfr.models.heads import create_head
    from synthfr.models.partial_fc import PartialFC

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = create_backbone(backbone)
    pfc = PartialFC(create_head("arcface"), 512, num_classes)
    opt = torch.optim.SGD([{"params": [p for p in model.parameters() if p.requires_grad]},
                           {"params": list(pfc.parameters())}], lr=0.01, momentum=0.9, weight_decay=5e-4)
    x = torch.randn(batch, 3, 112, 112).clamp(-1, 1)
    y = torch.randint(0, num_classes, (batch,))
    w = torch.ones(batch, 1)
    model.train()
    t0 = None
    for s in range(warmup + steps):
        if s == warmup:
            t0 = time.perf_counter()
        loss = pfc(model(x).float(), y[:, None], w)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        float(loss.detach())
    return steps * batch / (time.perf_counter() - t0)


def real_training(backbone: str, data: str, batch: int, steps: int, warmup: int, threads: int, workers: int
                  ) -> tuple[float, int]:
    from synthfr.training.config import AugmentConfig, TrainConfig
    from synthfr.training.loop import train

    out = Path(tempfile.mkdtemp(prefix="synthfr-tp-"))
    try:
        aug = AugmentConfig(flip=0.5, rescale=0.2, jitter=0.2, blur=0.2, erase=0.2)
        cfg = TrainConfig(data=data, out=str(out / "run"), backbone=backbone, head="arcface", batch_size=batch,
                          epochs=100, max_steps=warmup + steps, num_workers=workers, threads=threads,
                          log_every=1, progress=False, device="cpu", augment=aug, keep_checkpoints=1)
        train(cfg)
        rows = list(csv.DictReader(open(out / "run" / "log.csv")))
        meta = json.loads((out / "run" / "config.json").read_text())
        t = {int(r["step"]): float(r["time"]) for r in rows}
        return steps * batch / (t[warmup + steps] - t[warmup]), int(meta["num_classes"])
    finally:
        shutil.rmtree(out, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="ImageFolder of aligned 112x112 JPEG faces")
    ap.add_argument("--backbones", nargs="+", default=["mobilefacenet", "iresnet50"])
    ap.add_argument("--batch", nargs="+", type=int, default=[32, 16], help="batch per backbone")
    ap.add_argument("--steps", nargs="+", type=int, default=[12, 8], help="timed steps per backbone")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--json", help="write the figures here")
    args = ap.parse_args()
    res = {}
    for bb, b, n in zip(args.backbones, args.batch, args.steps):
        real, ncls = real_training(bb, args.data, b, n, args.warmup, args.threads, args.workers)
        alone = model_alone(bb, b, n, args.warmup, ncls, args.threads)
        res[bb] = {"batch": b, "steps": n, "model_alone_samples_per_s": alone, "real_samples_per_s": real,
                   "ratio": real / alone}
        print(f"{bb}: model alone {alone:.2f} samples/s, real training {real:.2f} samples/s, "
              f"ratio {real / alone:.3f}", flush=True)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
