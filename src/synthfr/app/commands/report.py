"""Rebuild the self-contained HTML report of a finished pipeline or demo folder.

Reads what the stages left in RUN_DIR (generate/dataset or dataset, quality/quality.json, train/run/log.csv,
evaluate/eval.json with its ROC files, config.yaml or demo.json) and writes one HTML file with inline images
and no external resources (open it in any browser, or attach it to a mail). Examples:

    synthfr report quickstart-output                      # -> quickstart-output/report.html
    synthfr report demo-output --out /tmp/demo.html --identities 20 --images 10
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass

HELP = "rebuild OUT/report.html (samples, quality, training curves, ROC, config) of a pipeline or demo folder"


@dataclass
class ReportConfig:
    """``synthfr report``: the self-contained HTML report of a finished pipeline (or demo) folder."""

    run_dir: str
    """Output folder of `synthfr pipeline` or `synthfr demo`."""
    out: str | None = None
    """Where to write the HTML (default: RUN_DIR/report.html)."""
    identities: int = 12
    """Identities shown in the sample grid."""
    images: int = 8
    """Images per identity shown."""
    thumb: int = 64
    """Thumbnail size in pixels."""
    title: str | None = None
    """Page title (default: from the folder's kind)."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    from synthfr.config import add_config_arguments

    add_config_arguments(p, ReportConfig, positional=("run_dir",),
                         flags={"run_dir": {"metavar": "RUN_DIR"}, "out": {"metavar": "PATH"},
                                "identities": {"metavar": "K"}, "images": {"metavar": "M"},
                                "thumb": {"metavar": "PX"}})


def run(args: argparse.Namespace) -> int:
    from synthfr.config import config_from_args
    from synthfr.app.report import write_pipeline_report

    cfg = config_from_args(ReportConfig, args)
    for name in ("identities", "images", "thumb"):
        if getattr(cfg, name) < 1:
            raise ValueError(f"--{name} must be >= 1, got {getattr(cfg, name)}")
    path = write_pipeline_report(cfg.run_dir, cfg.out, title=cfg.title, max_identities=cfg.identities,
                                 max_images=cfg.images, thumb=cfg.thumb)
    print(path)
    return 0
