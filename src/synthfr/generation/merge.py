"""``synthfr merge``: join the folders of a sharded run (``--shard i/n``) into one dataset folder."""
from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any, Callable

from synthfr.generation.folder import comparable, describe_difference, write_card
from synthfr.utils.io import atomic_write_bytes, atomic_write_text

__all__ = ["merge_shards"]


def merge_shards(shard_dirs: list[str | Path], out: str | Path, *, format: str = "folder", link: bool = True,
                 log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Join finished shard folders (``--shard i/n`` runs of one config) into one dataset folder ``out``.

    Checks that every shard holds the same config and identities, that together they cover each identity
    exactly once, then places images (hard links when possible, else copies), writes ``manifest.jsonl`` in
    identity order, ``config.yaml`` and ``identities.npy``: the result is byte-identical to a single run.
    With ``format="rec"`` it writes ``train.rec``/``train.idx`` instead of ``images/``.
    """
    import yaml

    from synthfr.data.manifest import dumps_record, iter_manifest
    from synthfr.data.writers import export_rec

    log = log or (lambda m: print(m, file=sys.stderr))
    t0 = time.time()
    shard_dirs = [Path(d).expanduser() for d in shard_dirs]
    if not shard_dirs:
        raise ValueError("merge needs at least one shard folder")
    out = Path(out).expanduser()
    docs = []
    for d in shard_dirs:
        for need in ("config.yaml", "identities.npy"):
            if not (d / need).is_file():
                raise FileNotFoundError(f"{d} has no {need}; is it a folder written by `synthfr generate --shard`?")
        if not (d / "manifest.jsonl").is_file():
            raise FileNotFoundError(f"shard {d} is not finished (no manifest.jsonl); run it again with --resume")
        docs.append(yaml.safe_load((d / "config.yaml").read_text()))
    base = comparable(docs[0])
    for d, doc in zip(shard_dirs[1:], docs[1:]):
        if comparable(doc) != base:
            raise ValueError(f"shard {d} was made with different settings than {shard_dirs[0]} "
                             f"({describe_difference(docs[0], doc)}); only shards of one run can be merged")
    ids_bytes = (shard_dirs[0] / "identities.npy").read_bytes()
    n_rows = int(docs[0]["identities"]["rows"])
    by_row: dict[int, tuple[Path, list]] = {}
    for d in shard_dirs:
        recs: dict[int, list] = {}
        for r in iter_manifest(d / "manifest.jsonl"):
            recs.setdefault(int(r["identity"]), []).append(r)
        for row, lst in recs.items():
            if row in by_row:
                raise ValueError(f"identity {row} is in both {by_row[row][0]} and {d}; shards overlap")
            by_row[row] = (d, lst)
    missing = [r for r in range(n_rows) if r not in by_row]
    if missing:
        raise ValueError(f"the shards cover {len(by_row)} of {n_rows} identities; missing e.g. rows "
                         f"{missing[:5]} (pass every shard folder; finish a shard with --resume)")
    if out.exists() and any(out.iterdir()):
        raise ValueError(f"merge output {out} is not empty; choose a new folder")
    out.mkdir(parents=True, exist_ok=True)
    n_img = 0
    lines = []
    for row in range(n_rows):
        d, lst = by_row[row]
        for r in sorted(lst, key=lambda x: int(x["index"])):
            src, dst = d / r["path"], out / r["path"]
            dst.parent.mkdir(parents=True, exist_ok=True)
            if link:
                try:
                    os.link(src, dst)
                except OSError:
                    shutil.copyfile(src, dst)
            else:
                shutil.copyfile(src, dst)
            lines.append(dumps_record(r) + "\n")
            n_img += 1
    atomic_write_text(out / "manifest.jsonl", "".join(lines), fsync=True)
    atomic_write_bytes(out / "identities.npy", ids_bytes, fsync=True)
    shutil.copyfile(shard_dirs[0] / "config.yaml", out / "config.yaml")
    for sp in shard_dirs[0].glob("identities.space.*"):
        shutil.copyfile(sp, out / sp.name)
    if format == "rec":
        export_rec(out, list(iter_manifest(out / "manifest.jsonl")), num_classes=n_rows)
    write_card(out, log)
    return {"shards": len(shard_dirs), "identities": n_rows, "images": n_img, "seconds": time.time() - t0,
            "out": str(out)}
