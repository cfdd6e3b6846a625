"""dlib-torch vs dlib: agreement on the LFW raw sample aligned by synthfr, and speed per face at batch 64.

Run (heavy; use the shared CPU lock on the 2-core dev machine):
    flock /work/cache/cpu.lock .venv/bin/python benchmarks/face_dlib_port.py \
        --raw ../shared/data/lfw/raw_sample --work /work/cache/face --json /work/cache/face/dlib_port.json
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--raw", required=True, help="folder of unaligned faces (LFW raw_sample)")
    ap.add_argument("--work", required=True, help="scratch folder for the aligned copy")
    ap.add_argument("--json", help="write the figures here")
    ap.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--speed-batches", type=int, default=3, help="timed batches per embedder")
    ap.add_argument("--skip-speed", action="store_true")
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    from synthfr import create_embedder
    from synthfr.face.align import align_folder, list_images, load_image
    from synthfr.face.embedders.dlib_native import aligned_to_dlib_chips

    aligned_dir = Path(args.work) / "raw_sample_aligned"
    rep = align_folder(args.raw, aligned_dir, workers=2, progress=False)
    paths = list_images(aligned_dir)
    faces = np.stack([load_image(aligned_dir / p) for p in paths])
    ref, port = create_embedder("dlib"), create_embedder("dlib-torch", device="cpu")

    chips = aligned_to_dlib_chips(faces)
    d_ref = ref.descriptors_from_chips(chips)
    d_port = port.embed_chips(chips).astype(np.float64)
    cos_chip = (d_ref * d_port).sum(1) / np.linalg.norm(d_ref, axis=1) / np.linalg.norm(d_port, axis=1)
    e_ref, e_port = ref.embed(faces), port.embed(faces)
    cos = (e_ref.astype(np.float64) * e_port).sum(1)
    out = {
        "faces": int(len(faces)), "aligned": rep["aligned"], "images": rep["images"],
        "same_chip_max_abs_diff": float(np.abs(d_ref - d_port).max()),
        "same_chip_min_cosine": float(cos_chip.min()),
        "min_cosine": float(cos.min()), "mean_cosine": float(cos.mean()),
        "descriptor_norm_mean": float(np.linalg.norm(d_ref, axis=1).mean()),
    }
    if not args.skip_speed:
        n = args.batch
        batches = [faces[(i * n) % len(faces):][:n] for i in range(args.speed_batches)]
        batches = [b if len(b) == n else np.concatenate([b, faces[: n - len(b)]]) for b in batches]
        port.embed(batches[0], batch_size=n)  # warm-up
        ref.embed(batches[0][:4])
        t = time.perf_counter()
        for b in batches:
            port.embed(b, batch_size=n)
        t_port = (time.perf_counter() - t) / (n * len(batches))
        t = time.perf_counter()
        for b in batches:
            ref.embed(b, batch_size=n)
        t_ref = (time.perf_counter() - t) / (n * len(batches))
        out.update({"ms_per_face_dlib": 1000 * t_ref, "ms_per_face_dlib_torch": 1000 * t_port,
                    "speedup": t_ref / t_port, "torch_threads": args.threads, "batch": n})
    for k, v in out.items():
        print(f"{k:28s} {v}")
    if args.json:
        from synthfr.utils.io import write_json

        write_json(args.json, out)
    return out


if __name__ == "__main__":
    main()
