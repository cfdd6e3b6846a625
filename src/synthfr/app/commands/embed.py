"""Embed a folder of face images (recursive) or an insightface .bin with a registered embedder.

Writes OUT (.npy, float32 unit rows) and beside it OUT.paths.txt (one line per row: the image path relative to
INPUT, or the index inside the .bin). For an identity tree (<identity>/<image>) also OUT.labels.npy and
OUT.classes.txt. Images that are not 112x112 are aligned first; failures are listed, never fatal.

    synthfr embed ../shared/data/celeba --embedder dlib-torch --out cache/celeba.npy --json cache/celeba.json
"""
from __future__ import annotations

import argparse

HELP = "embed a folder of faces or a .bin into emb.npy (+ emb.paths.txt, labels for identity trees)"


_CLI = {"input": {"metavar": "INPUT"}, "embedder": {"metavar": "SPEC"}, "out": {"metavar": "NPY"},
        "progress": {"flags": ["--quiet"]}}


def add_arguments(p: argparse.ArgumentParser) -> None:
    from synthfr.config import add_config_arguments
    from synthfr.evaluation.config import EmbedConfig

    add_config_arguments(p, EmbedConfig, positional=("input",), flags=_CLI)


def run(args: argparse.Namespace) -> int:
    from synthfr.config import config_from_args
    from synthfr.evaluation.config import EmbedConfig
    from synthfr.evaluation.embed import embed

    cfg = config_from_args(EmbedConfig, args)
    res = embed(cfg)
    print(f"embedded {res['embedded']} of {res['images']} images ({res['dim']}-D) -> {res['out']}")
    if res["failed"]:
        print(f"{len(res['failed'])} failed:")
        for f in res["failed"][:20]:
            print(f"  {f['path']}: {f['reason']}")
        if len(res["failed"]) > 20:
            print(f"  ... ({len(res['failed']) - 20} more{'; see ' + cfg.json if cfg.json else ''})")
    return 0
