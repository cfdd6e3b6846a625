"""Align a folder tree of face photos to the ArcFace 112×112 five-point template.

Every image under IN_DIR is read (greyscale is converted to RGB), the face is found with dlib's HOG detector
(upsampling small images) and its five landmarks with dlib's 68-point predictor, and the similarity-aligned
crop is written to the same relative path under OUT_DIR. Bad files never stop the run: unreadable files,
tiny images and images without a face are listed, with reasons, in the report
({"images": N, "aligned": M, "failed": [{"path": ..., "reason": ...}]}).
"""
from __future__ import annotations

import argparse

HELP = "align a folder of face photos to the 112x112 ArcFace template (dlib detector + landmarks)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("in_dir", metavar="IN_DIR", help="folder (tree) of images")
    p.add_argument("out_dir", metavar="OUT_DIR", help="output folder; the input tree and file names are kept")
    p.add_argument("--size", type=int, default=112, help="output side in pixels (default 112)")
    p.add_argument("--json", metavar="F", help="write the report (counts and every failure with its reason)")
    p.add_argument("--detector", default="hog", choices=["hog", "cnn", "hog+cnn"],
                   help="dlib HOG (default), MMOD CNN, or CNN only where HOG finds nothing")
    p.add_argument("--pick", default="largest", choices=["largest", "central", "score"],
                   help="which face to keep when an image shows several (default: largest)")
    p.add_argument("--upsample", type=int, default=None,
                   help="detector upsampling (default: automatic, more for small images)")
    p.add_argument("--pad-retry", type=float, default=0.5,
                   help="when no face is found, pad by this fraction per side and retry (0 = off; default 0.5)")
    p.add_argument("--workers", type=int, default=None, help="processes (default: all CPU cores)")
    p.add_argument("--overwrite", action="store_true", help="redo images whose output already exists")


def run(args: argparse.Namespace) -> int:
    from synthfr.face.align import align_folder

    report = align_folder(args.in_dir, args.out_dir, size=args.size, json_path=args.json, workers=args.workers,
                          overwrite=args.overwrite, detector=args.detector, pick=args.pick, upsample=args.upsample,
                          pad_retry=args.pad_retry)
    print(f"aligned {report['aligned']} of {report['images']} images into {args.out_dir}; "
          f"{len(report['failed'])} failed" + (f" (listed in {args.json})" if args.json else ""))
    reasons: dict[str, int] = {}
    for f in report["failed"]:
        key = f["reason"].split(":")[0]
        reasons[key] = reasons.get(key, 0) + 1
    for k, v in sorted(reasons.items(), key=lambda kv: -kv[1]):
        print(f"  {v:6d}  {k}")
    if report["aligned"] == 0:
        from synthfr.errors import InputError

        raise InputError(f"{args.in_dir}: none of {report['images']} images could be aligned; see the reasons "
                         "above (are they face photos?)")
    return 0
