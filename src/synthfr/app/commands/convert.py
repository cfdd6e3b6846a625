"""Convert a training set between an ImageFolder (``identity/image.jpg`` [+ manifest.jsonl]) and insightface
RecordIO (``.rec`` + ``.idx``), without mxnet. Image bytes are copied unchanged, so folder -> .rec -> folder
gives back identical files. Examples:

    synthfr convert data/celeba_aligned train.rec
    synthfr convert train.rec unpacked/
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass

HELP = "convert a training set between an image folder and insightface .rec/.idx"


@dataclass
class ConvertConfig:
    """``synthfr convert``: an ImageFolder to insightface RecordIO or back."""

    src: str
    """An ImageFolder, or a .rec file (with its .idx beside it)."""
    dst: str
    """The .rec to write (for a folder source), or the folder to write (for a .rec)."""
    json: str | None = None
    """Write {images, classes, corrupt} as JSON to this path."""
    progress: bool = True
    """Show a progress bar."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    from synthfr.config import add_config_arguments

    add_config_arguments(p, ConvertConfig, positional=("src", "dst"),
                         flags={"json": {"metavar": "PATH"}, "progress": {"flags": ["--quiet"]}})


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from synthfr.config import config_from_args
    from synthfr.data.rec_convert import folder_to_rec, rec_to_folder

    cfg = config_from_args(ConvertConfig, args)
    src, dst = Path(cfg.src), Path(cfg.dst)
    if src.suffix == ".rec":
        res = rec_to_folder(src, dst, progress=cfg.progress)
    elif src.is_dir():
        if dst.suffix != ".rec":
            raise ValueError(f"destination {dst} must end with .rec when converting a folder")
        res = folder_to_rec(src, dst, progress=cfg.progress)
    else:
        raise FileNotFoundError(f"{src} is neither a folder nor a .rec file")
    print(f"{res['images']} images, {res['classes']} classes -> {dst}")
    bad = res.get("corrupt") or []
    if bad:  # skipped, never written as images
        import sys

        print(f"{len(bad)} corrupt records skipped:", file=sys.stderr)
        for b in bad[:10]:
            print(f"  record {b['key']}: {b['reason']}", file=sys.stderr)
    if cfg.json:
        from synthfr.utils.io import write_json

        write_json(cfg.json, {"images": float(res["images"]), "classes": float(res["classes"]),
                              "corrupt": float(len(bad))})
    return 0
