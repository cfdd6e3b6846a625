"""Offline demo: HyperFace identities -> built-in generator -> dataset -> quality report (CPU, minutes).

Needs no data and no download: the gallery is drawn from aggregate statistics shipped with synthfr, and the
built-in generator's weights ship with the package.
"""
from __future__ import annotations

import argparse

HELP = "offline demo: sample identities, generate a small dataset, write its quality report"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from synthfr.config import add_config_arguments
    from synthfr.app.demo import DemoConfig

    add_config_arguments(p, DemoConfig)


def run(args: argparse.Namespace) -> int:
    from synthfr.config import config_from_args
    from synthfr.app.demo import DemoConfig, run_demo

    run_demo(config_from_args(DemoConfig, args))
    return 0
