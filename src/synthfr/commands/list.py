"""List registered components (embedders, samplers, variations, generators, backbones, heads, metrics)."""
from __future__ import annotations

import argparse

HELP = "list registered components, grouped by kind"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("kind", nargs="?", help="only this kind (embedder, sampler, variation, generator, backbone, "
                                           "head, metric; plurals accepted)")
    p.add_argument("--pattern", default="*", help="shell-style filter on names, e.g. 'iresnet*'")
    p.add_argument("--json", metavar="PATH", help="also write {kind: [names]} as JSON")


def run(args: argparse.Namespace) -> int:
    from synthfr.api import list_components

    table = list_components(args.kind, pattern=args.pattern, with_descriptions=True)
    for kind, entries in table.items():
        print(f"{kind}s:")
        if not entries:
            print("  (none)")
        width = max((len(n) for n in entries), default=0)
        for name, desc in entries.items():
            print(f"  {name:<{width}}  {desc}".rstrip())
    if args.json:
        from synthfr.utils.io import write_json

        write_json(args.json, {k: sorted(v) for k, v in table.items()})
    return 0
