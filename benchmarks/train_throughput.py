"""Training throughput on this machine: model alone vs the real input pipeline (issue acceptance 6).

For each backbone, two measurements with the same batch, head, Partial FC, optimiser and torch threads:

* **model alone** - forward + backward + SGD step on a batch already in memory (random tensors);
* **real training** - ``synthfr.training.loop.train`` on JPEG files: DataLoader workers decode and augment
  (flip, rescale, colour jitter, motion blur, random erasing each with p = 0.2), then the same steps.

samples/s is measured over the steps after ``--warmup`` steps (log timestamps for the real run). Because the
2-core machine is shared, the script also records CPU time: the training process's CPU seconds per sample
(model alone vs real run) and the input pipeline's CPU seconds per sample (decode + augment, one thread, as in a
worker); ``cpu_ratio = alone / (real main process + pipeline)`` is the throughput ratio an otherwise idle machine
would see when the worker shares the cores with the model. Run under the shared CPU lock::

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

from synthfr.training.config import AugmentConfig

AUG = AugmentConfig(flip=0.5, rescale=0.2, jitter=0.2, blur=0.2, erase=0.2)

def model_alone(backbone: str, batch: int, steps: int, warmup: int, num_classes: int, threads: int) -> float:
    from synthfr.models.backbones import create_backbone
    from synthfr.models.heads import create_head
    from synthfr.models.partial_fc import PartialFC

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = create_backbone(backbone, embedding_size=512)
    pfc = PartialFC(create_head("arcface"), model.embedding_size, num_classes)
    opt = torch.optim.SGD([{"params": [p for p in model.parameters() if p.requires_grad]},
                           {"params": list(pfc.parameters())}], lr=0.01, momentum=0.9, weight_decay=5e-4)
    x = torch.randn(batch, 3, 112, 112).clamp(-1, 1)
    y = torch.randint(0, num_classes, (batch,))
    w = torch.ones(batch, 1)
    model.train()
    t0 = c0 = None
    for s in range(warmup + steps):
        if s == warmup:
            t0, c0 = time.perf_counter(), time.process_time()
        loss = pfc(model(x).float(), y[:, None], w)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        float(loss.detach())
    return steps * batch / (time.perf_counter() - t0), (time.process_time() - c0) / (steps * batch)


def pipeline_cpu(data: str, n: int = 128) -> float:
    """CPU seconds per sample of JPEG decoding + augmentation on one thread (what a DataLoader worker does)."""
    from synthfr.data.imagefolder import open_dataset
    from synthfr.training.augment import Augment

    torch.set_num_threads(1)
    ds = open_dataset(data, 112, Augment(AUG))
    c0 = time.process_time()
    for i in range(n):
        ds[(i * 37 % len(ds), i)]
    return (time.process_time() - c0) / n


def real_training(backbone: str, data: str, batch: int, steps: int, warmup: int, threads: int, workers: int
                  ) -> tuple[float, float, int]:
    from synthfr.training.config import TrainConfig
    from synthfr.training.loop import train

    out = Path(tempfile.mkdtemp(prefix="synthfr-tp-"))
    try:
        cfg = TrainConfig(data=data, out=str(out / "run"), backbone=backbone, head="arcface", batch_size=batch,
                          epochs=100, max_steps=warmup + steps, num_workers=workers, threads=threads,
                          log_every=1, progress=False, device="cpu", augment=AUG, keep_checkpoints=1)
        train(cfg)
        rows = list(csv.DictReader(open(out / "run" / "log.csv")))
        meta = json.loads((out / "run" / "config.json").read_text())
        t = {int(r["step"]): float(r["time"]) for r in rows}
        c = {int(r["step"]): float(r["cpu_time"]) for r in rows}
        return (steps * batch / (t[warmup + steps] - t[warmup]), (c[warmup + steps] - c[warmup]) / (steps * batch),
                int(meta["num_classes"]))
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
    pipe = pipeline_cpu(args.data)
    print(f"input pipeline: {pipe * 1000:.2f} CPU ms/sample (decode + augment, 1 thread)", flush=True)
    for bb, b, n in zip(args.backbones, args.batch, args.steps):
        real, real_cpu, ncls = real_training(bb, args.data, b, n, args.warmup, args.threads, args.workers)
        alone, alone_cpu = model_alone(bb, b, n, args.warmup, ncls, args.threads)
        res[bb] = {"batch": b, "steps": n, "model_alone_samples_per_s": alone, "real_samples_per_s": real,
                   "ratio": real / alone, "model_alone_cpu_s_per_sample": alone_cpu,
                   "real_main_cpu_s_per_sample": real_cpu, "pipeline_cpu_s_per_sample": pipe,
                   "cpu_ratio": alone_cpu / (real_cpu + pipe)}
        print(f"{bb}: wall: model alone {alone:.2f} samples/s, real training {real:.2f} samples/s, ratio "
              f"{real / alone:.3f}; CPU s/sample: alone {alone_cpu:.3f}, real {real_cpu:.3f} + pipeline {pipe:.4f}, "
              f"cpu_ratio {res[bb]['cpu_ratio']:.3f}", flush=True)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
