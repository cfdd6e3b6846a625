"""Convert a training set between an ImageFolder (``identity/image.jpg`` [+ manifest.jsonl]) and insightface
RecordIO (``.rec`` + ``.idx``), without mxnet. Image bytes are copied unchanged, so folder -> .rec -> folder
gives back identical files. Examples:

    synthfr convert data/celeba_aligned train.rec
    synthfr convert train.rec unpacked/
"""
from __future__ import annotations

import argparse

HELP = "convert a training set between an image folder and insightface .rec/.idx"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("src", help="an ImageFolder, or a .rec file (with its .idx beside it)")
    p.add_argument("dst", help="the .rec to write (for a folder source), or the folder to write (for a .rec)")
    p.add_argument("--json", metavar="PATH", help="write {images, classes} as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from synthfr.data.rec_convert import folder_to_rec, rec_to_folder

    src, dst = Path(args.src), Path(args.dst)
    if src.suffix == ".rec":
        res = rec_to_folder(src, dst, progress=not args.quiet)
    elif src.is_dir():
        if dst.suffix != ".rec":
            raise ValueError(f"destination {dst} must end with .rec when converting a folder")
        res = folder_to_rec(src, dst, progress=not args.quiet)
    else:
        raise FileNotFoundError(f"{src} is neither a folder nor a .rec file")
    print(f"{res['images']} images, {res['classes']} classes -> {dst}")
    bad = res.get("corrupt") or []
    if bad:  # skipped, never written as images
        import sys

        print(f"{len(bad)} corrupt records skipped:", file=sys.stderr)
        for b in bad[:10]:
            print(f"  record {b['key']}: {b['reason']}", file=sys.stderr)
    if args.json:
        from synthfr.utils.io import write_json

        write_json(args.json, {"images": float(res["images"]), "classes": float(res["classes"]),
                               "corrupt": float(len(bad))})
    return 0
