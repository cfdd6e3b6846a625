"""Offline demo: HyperFace identities -> built-in generator -> dataset -> quality report (CPU, minutes).

Needs no data and no download: the gallery is drawn from aggregate statistics shipped with synthfr, and the
built-in generator's weights ship with the package.
"""
from __future__ import annotations

import argparse

HELP = "offline demo: sample identities, generate a small dataset, write its quality report"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from synthfr.config import field_docs
    from synthfr.demo import DemoConfig

    docs = field_docs(DemoConfig)
    d = DemoConfig()
    kinds = {"time_budget": float, "iterations": int}  # optional fields (default None or a number)
    for name, value in d.__dict__.items():
        p.add_argument(f"--{name.replace('_', '-')}", type=kinds.get(name, type(value)), default=value,
                       help=f"{docs.get(name, '')} (default: {value})")


def run(args: argparse.Namespace) -> int:
    from synthfr.demo import DemoConfig, run_demo

    kw = {k: getattr(args, k) for k in DemoConfig().__dict__}
    run_demo(DemoConfig(**kw))
    return 0
