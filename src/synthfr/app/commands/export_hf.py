"""Export a dataset (a `synthfr generate` folder or any ImageFolder) to the Hugging Face ``datasets`` layout:
Parquet files with the image bytes (unchanged) and labels, plus the dataset card. Load it with

    datasets.load_dataset("parquet", data_files="OUT/data/*.parquet", split="train")

Needs pyarrow (pip install 'synthfr[hf]').
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass

HELP = "export a dataset to Hugging Face datasets Parquet files (image bytes + labels + card)"


@dataclass
class ExportHFConfig:
    """``synthfr export-hf``: a dataset as Hugging Face ``datasets`` Parquet files plus its card."""

    dataset: str
    """Dataset folder (manifest.jsonl + images/) or ImageFolder."""
    out: str
    """Output folder (OUT/data/train-*.parquet + OUT/README.md)."""
    rows_per_file: int = 10000
    """Images per Parquet file."""
    json: str | None = None
    """Write {images, classes} as JSON to this path."""
    progress: bool = True
    """Show a progress bar."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    from synthfr.config import add_config_arguments

    add_config_arguments(p, ExportHFConfig, positional=("dataset", "out"),
                         flags={"json": {"metavar": "PATH"}, "progress": {"flags": ["--quiet"]}})


def run(args: argparse.Namespace) -> int:
    from synthfr.config import config_from_args
    from synthfr.data.hf import export_hf

    cfg = config_from_args(ExportHFConfig, args)
    res = export_hf(cfg.dataset, cfg.out, rows_per_file=cfg.rows_per_file, progress=cfg.progress)
    print(f"{res['images']} images, {res['classes']} classes -> {len(res['files'])} Parquet file(s) in "
          f"{cfg.out}/data")
    if cfg.json:
        from synthfr.utils.io import write_json

        write_json(cfg.json, {"images": float(res["images"]), "classes": float(res["classes"])})
    return 0
