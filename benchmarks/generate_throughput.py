"""Pipeline throughput of `synthfr generate` with a test_* generator (pipeline overhead: generation loop,
JPEG encoding in a thread pool, atomic per-identity folders, manifest).

    flock /work/cache/cpu.lock .venv/bin/python benchmarks/generate_throughput.py \
        --out /work/cache/generate/bench --identities 2000 --images-per-id 10 --threads 2

Prints a JSON summary (images/s over the whole run, including start-up of the loop, excluding imports).
"""
from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="scratch folder (deleted and recreated)")
    ap.add_argument("--identities", type=int, default=2000)
    ap.add_argument("--images-per-id", type=int, default=10)
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2, help="torch threads")
    ap.add_argument("--no-fsync", action="store_true")
    ap.add_argument("--generator", default="test_pattern")
    ap.add_argument("--json", help="write the result here too")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from synthfr.generation import GenerateConfig, generate_dataset

    out = Path(args.out)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    v = np.random.default_rng(0).standard_normal((args.identities, args.dim)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    np.save(out / "ids.npy", v)
    cfg = GenerateConfig(identities=str(out / "ids.npy"), generator=args.generator, out=str(out / "ds"),
                         images_per_id=args.images_per_id, seed=0, batch_size=args.batch_size,
                         workers=args.workers, fsync=not args.no_fsync, device="cpu")
    t0 = time.time()
    s = generate_dataset(cfg, progress=False)
    wall = time.time() - t0
    res = {"images": s["images"], "seconds": wall, "images_per_s": s["images"] / wall,
           "identities": args.identities, "images_per_id": args.images_per_id, "batch_size": args.batch_size,
           "workers": args.workers, "torch_threads": args.threads, "fsync": not args.no_fsync}
    print(json.dumps(res, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2) + "\n")


if __name__ == "__main__":
    main()
