"""Align a folder tree of face photos to the ArcFace 112×112 five-point template.

Every image under IN_DIR is read (greyscale is converted to RGB), the face is found with dlib's HOG detector
(upsampling small images) and its five landmarks with dlib's 68-point predictor, and the similarity-aligned
crop is written to the same relative path under OUT_DIR. Bad files never stop the run: unreadable files,
tiny images and images without a face are listed, with reasons, in the report
({"images": N, "aligned": M, "failed": [{"path": ..., "reason": ...}]}).
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Literal

HELP = "align a folder of face photos to the 112x112 ArcFace template (dlib detector + landmarks)"


@dataclass
class AlignConfig:
    """``synthfr align``: every image of a folder tree aligned to the 112×112 five-point template."""

    in_dir: str
    """Folder (tree) of images."""
    out_dir: str
    """Output folder; the input tree and file names are kept."""
    size: int = 112
    """Output side in pixels."""
    json: str | None = None
    """Write the report (counts and every failure with its reason) to this JSON file."""
    detector: Literal["hog", "cnn", "hog+cnn"] = "hog"
    """dlib HOG, MMOD CNN, or CNN only where HOG finds nothing."""
    pick: Literal["largest", "central", "score"] = "largest"
    """Which face to keep when an image shows several."""
    upsample: int | None = None
    """Detector upsampling (default: automatic, more for small images)."""
    pad_retry: float = 0.5
    """When no face is found, pad by this fraction per side and retry (0 = off)."""
    workers: int | None = None
    """Processes (default: all CPU cores)."""
    overwrite: bool = False
    """Redo images whose output already exists."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    from synthfr.config import add_config_arguments

    add_config_arguments(p, AlignConfig, positional=("in_dir", "out_dir"),
                         flags={"in_dir": {"metavar": "IN_DIR"}, "out_dir": {"metavar": "OUT_DIR"},
                                "json": {"metavar": "F"}})


def run(args: argparse.Namespace) -> int:
    from synthfr.config import config_from_args
    from synthfr.face.align import align_folder

    cfg = config_from_args(AlignConfig, args)
    report = align_folder(cfg.in_dir, cfg.out_dir, size=cfg.size, json_path=cfg.json, workers=cfg.workers,
                          overwrite=cfg.overwrite, detector=cfg.detector, pick=cfg.pick, upsample=cfg.upsample,
                          pad_retry=cfg.pad_retry)
    print(f"aligned {report['aligned']} of {report['images']} images into {cfg.out_dir}; "
          f"{len(report['failed'])} failed" + (f" (listed in {cfg.json})" if cfg.json else ""))
    reasons: dict[str, int] = {}
    for f in report["failed"]:
        key = f["reason"].split(":")[0]
        reasons[key] = reasons.get(key, 0) + 1
    for k, v in sorted(reasons.items(), key=lambda kv: -kv[1]):
        print(f"  {v:6d}  {k}")
    if report["aligned"] == 0:
        from synthfr.errors import InputError

        raise InputError(f"{cfg.in_dir}: none of {report['images']} images could be aligned; see the reasons "
                         "above (are they face photos?)")
    return 0
