"""Export a dataset (a `synthfr generate` folder or any ImageFolder) to the Hugging Face ``datasets`` layout:
Parquet files with the image bytes (unchanged) and labels, plus the dataset card. Load it with

    datasets.load_dataset("parquet", data_files="OUT/data/*.parquet", split="train")

Needs pyarrow (pip install 'synthfr[hf]').
"""
from __future__ import annotations

import argparse

HELP = "export a dataset to Hugging Face datasets Parquet files (image bytes + labels + card)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("dataset", metavar="DATASET", help="dataset folder (manifest.jsonl + images/) or ImageFolder")
    p.add_argument("out", metavar="OUT", help="output folder (OUT/data/train-*.parquet + OUT/README.md)")
    p.add_argument("--rows-per-file", type=int, default=10000, help="images per Parquet file (default 10000)")
    p.add_argument("--json", metavar="PATH", help="write {images, classes} as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from synthfr.data.hf import export_hf

    res = export_hf(args.dataset, args.out, rows_per_file=args.rows_per_file, progress=not args.quiet)
    print(f"{res['images']} images, {res['classes']} classes -> {len(res['files'])} Parquet file(s) in "
          f"{args.out}/data")
    if args.json:
        from synthfr.utils.io import write_json

        write_json(args.json, {"images": float(res["images"]), "classes": float(res["classes"])})
    return 0
