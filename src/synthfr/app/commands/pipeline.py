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
from dataclasses import dataclass, field

HELP = "sample -> generate -> quality -> train -> evaluate from one YAML config (resumable)"


@dataclass
class RunOptions:
    """How ``synthfr pipeline`` treats a config (beside the config's own fields)."""

    force: list[str] = field(default_factory=list)
    """Re-run this stage (sample, generate, quality, train, evaluate, or all) and every later stage even if
    complete (repeatable)."""
    print_config: bool = False
    """Print the resolved config as YAML and exit."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    from synthfr.config import add_common_arguments, add_config_arguments
    from synthfr.app.pipeline import PipelineConfig

    add_common_arguments(p, "config")
    add_config_arguments(p, PipelineConfig, flags={"out": {"metavar": "DIR"}},
                         skip=("train.config.data", "train.config.out", "train.config.resume"))
    add_common_arguments(p, "--set", "--json")
    add_config_arguments(p, RunOptions, flags={"force": {"action": "append", "metavar": "STAGE"}})


def run(args: argparse.Namespace) -> int:
    from synthfr.config import config_from_args
    from synthfr.app.pipeline import PipelineConfig, run_pipeline

    cfg = config_from_args(PipelineConfig, args)  # the YAML < options given < --set
    if args.print_config:
        from synthfr.config import dump_yaml

        print(dump_yaml(cfg), end="")
        return 0
    summary = run_pipeline(cfg, force=args.force or [])
    if args.json:
        from synthfr.utils.io import write_json

        write_json(args.json, summary)
    return 0

