"""Embed a folder of face images (recursive) or an insightface .bin with a registered embedder.

Writes OUT (.npy, float32 unit rows) and beside it OUT.paths.txt (one line per row: the image path relative to
INPUT, or the index inside the .bin). For an identity tree (<identity>/<image>) also OUT.labels.npy and
OUT.classes.txt. Images that are not 112x112 are aligned first; failures are listed, never fatal.

    synthfr embed ../shared/data/celeba --embedder dlib-torch --out cache/celeba.npy --json cache/celeba.json
"""
from __future__ import annotations

import argparse

HELP = "embed a folder of faces or a .bin into emb.npy (+ emb.paths.txt, labels for identity trees)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", metavar="INPUT", help="folder of images (aligned 112x112 or raw) or an insightface .bin")
    p.add_argument("--embedder", metavar="SPEC", required=True,
                   help="registered embedder NAME[:key=value,...], e.g. dlib-torch or "
                   "onnx:path=MODEL.onnx (`synthfr list embedder`)")
    p.add_argument("--out", metavar="NPY", required=True, help="output .npy file")
    p.add_argument("--batch-size", type=int, default=64, help="images per embedder call (default 64)")
    p.add_argument("--device", default="auto", help="torch device for torch embedders: auto, cpu, cuda, ...")
    p.add_argument("--flip", action="store_true", help="add the mirrored image's embedding and re-normalise")
    p.add_argument("--align", choices=("auto", "always", "never"), default="auto",
                   help="align images that are not 112x112 (auto), every image, or none (failures)")
    p.add_argument("--json", metavar="PATH", help="write a summary (counts, failures with reasons) as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from synthfr.evaluation.embed import embed_path

    if args.batch_size < 1:
        raise ValueError("--batch-size must be at least 1")
    res = embed_path(args.input, args.embedder, args.out, batch_size=args.batch_size, flip=args.flip,
                     device=args.device, align=args.align, progress=not args.quiet, json_path=args.json)
    print(f"embedded {res['embedded']} of {res['images']} images ({res['dim']}-D) -> {res['out']}")
    if res["failed"]:
        print(f"{len(res['failed'])} failed:")
        for f in res["failed"][:20]:
            print(f"  {f['path']}: {f['reason']}")
        if len(res["failed"]) > 20:
            print(f"  ... ({len(res['failed']) - 20} more{'; see ' + args.json if args.json else ''})")
    return 0
