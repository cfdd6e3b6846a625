"""List registered components (embedders, samplers, variations, generators, backbones, heads, metrics)."""
from __future__ import annotations

import argparse
from dataclasses import dataclass

HELP = "list registered components, grouped by kind"


@dataclass
class ListConfig:
    """``synthfr list``: registered components, grouped by kind."""

    kind: str | None = None
    """Only this kind (embedder, sampler, variation, generator, backbone, head, metric; plurals accepted)."""
    pattern: str = "*"
    """Shell-style filter on names, e.g. 'iresnet*'."""
    json: str | None = None
    """Also write {kind: [names]} as JSON to this path."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    from synthfr.config import add_config_arguments

    add_config_arguments(p, ListConfig, positional=("kind",), flags={"json": {"metavar": "PATH"}})


def run(args: argparse.Namespace) -> int:
    from synthfr.api import list_components
    from synthfr.config import config_from_args

    cfg = config_from_args(ListConfig, args)
    table = list_components(cfg.kind, pattern=cfg.pattern, with_descriptions=True)
    for kind, entries in table.items():
        print(f"{kind}s:")
        if not entries:
            print("  (none)")
        width = max((len(n) for n in entries), default=0)
        for name, desc in entries.items():
            print(f"  {name:<{width}}  {desc}".rstrip())
    if cfg.json:
        from synthfr.utils.io import write_json

        write_json(cfg.json, {k: sorted(v) for k, v in table.items()})
    return 0
