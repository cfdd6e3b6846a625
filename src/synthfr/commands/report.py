"""Rebuild the self-contained HTML report of a finished pipeline or demo folder.

Reads what the stages left in RUN_DIR (generate/dataset or dataset, quality/quality.json, train/run/log.csv,
evaluate/eval.json with its ROC files, config.yaml or demo.json) and writes one HTML file with inline images
and no external resources (open it in any browser, or attach it to a mail). Examples:

    synthfr report quickstart-output                      # -> quickstart-output/report.html
    synthfr report demo-output --out /tmp/demo.html --identities 20 --images 10
"""
from __future__ import annotations

import argparse

HELP = "rebuild OUT/report.html (samples, quality, training curves, ROC, config) of a pipeline or demo folder"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", metavar="RUN_DIR", help="output folder of `synthfr pipeline` or `synthfr demo`")
    p.add_argument("--out", metavar="PATH", help="where to write the HTML (default: RUN_DIR/report.html)")
    p.add_argument("--identities", type=int, default=12, metavar="K",
                   help="identities shown in the sample grid (default: 12)")
    p.add_argument("--images", type=int, default=8, metavar="M", help="images per identity shown (default: 8)")
    p.add_argument("--thumb", type=int, default=64, metavar="PX", help="thumbnail size in pixels (default: 64)")
    p.add_argument("--title", help="page title (default: from the folder's kind)")


def run(args: argparse.Namespace) -> int:
    from synthfr.report.pipeline import write_pipeline_report

    for name in ("identities", "images", "thumb"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name} must be >= 1, got {getattr(args, name)}")
    path = write_pipeline_report(args.run_dir, args.out, title=args.title, max_identities=args.identities,
                                 max_images=args.images, thumb=args.thumb)
    print(path)
    return 0
