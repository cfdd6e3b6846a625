"""Run the whole journey from one YAML: sample identities -> generate -> quality -> (train) -> (evaluate).

Each stage writes OUT/<stage>/ and, last, OUT/<stage>/DONE.json (its resolved config and summary). Running
the same command again skips complete stages and resumes an interrupted one (generation per identity,
training from its latest checkpoint); a completed stage whose config changed is an error unless
--force STAGE (which also re-runs every later stage). Examples (configs/ holds ready-made recipes):

    synthfr pipeline configs/quickstart.yaml
    synthfr pipeline configs/cpu-experiment.yaml --set evaluate.benchmarks=[../shared/data/lfw/lfw.bin]
    synthfr pipeline configs/cpu-experiment.yaml --set train.config.epochs=2 --force train
    synthfr pipeline configs/hyperface-arc2face.yaml --set sample.gallery=arcface_emb.npy \\
        --set generate.weights=~/weights/arc2face --out runs/hyperface10k

Keys of --set are dotted (section.field, train.config.FIELD, sample.options.FIELD); values are YAML.
"""
from __future__ import annotations

import argparse

HELP = "sample -> generate -> quality -> train -> evaluate from one YAML config (resumable)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", metavar="CONFIG.yaml", help="pipeline config (see configs/)")
    p.add_argument("--out", metavar="DIR", help="output folder (overrides the config's out)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set train.config.epochs=2 (repeatable; YAML values)")
    p.add_argument("--force", action="append", default=[], metavar="STAGE",
                   help="re-run STAGE (sample, generate, quality, train, evaluate, or all) and every later "
                        "stage even if complete (repeatable)")
    p.add_argument("--json", metavar="PATH", help="also write the pipeline summary (stage summaries) as JSON")
    p.add_argument("--print-config", action="store_true", help="print the resolved config as YAML and exit")


def run(args: argparse.Namespace) -> int:
    from synthfr.pipeline import load_pipeline_config, parse_overrides, run_pipeline

    cfg = load_pipeline_config(args.config, parse_overrides(args.overrides), out=args.out)
    if args.print_config:
        from synthfr.config import dump_yaml

        print(dump_yaml(cfg), end="")
        return 0
    summary = run_pipeline(cfg, force=args.force)
    if args.json:
        from synthfr.utils.io import write_json

        write_json(args.json, summary)
    return 0
