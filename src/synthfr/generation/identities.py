"""The identities a dataset is generated from, with their embedding space.

One hand-over: :class:`Identities` carries the vectors in the generator's own space (what `synthfr sample`
writes to ``IDS.npy``) together with the standardisation beside them (``IDS.space.json``/``.npz``), and gives
the standardised view once, cached. Variations work in that view and map their conditions back with the
same object; nothing else re-reads or re-applies the space.
"""
from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from synthfr.registry import parse_spec

__all__ = ["Identities", "load_identities", "is_sampler_spec", "sample_into", "sampler_record"]


@dataclass
class Identities:
    """Identity vectors (N×D float32, the generator's space) and the embedding space they came with."""

    vectors: np.ndarray
    path: str = ""
    space_files: list[Path] = field(default_factory=list)
    """``IDS.space.json`` (+ ``.npz``) beside the identity file; empty when it has no standardisation."""

    @property
    def shape(self) -> tuple[int, int]:
        return self.vectors.shape

    @cached_property
    def space(self) -> Any:
        """The :class:`~synthfr.spaces.EmbeddingSpace` (None without space files); read once."""
        if not self.space_files:
            return None
        from synthfr.spaces import EmbeddingSpace

        return EmbeddingSpace.load(self.space_files[0])

    @cached_property
    def standard(self) -> np.ndarray:
        """The vectors in the standardised space (the vectors themselves without a space); computed once."""
        return self.space.to_standard(self.vectors) if self.space is not None else self.vectors

    def from_standard(self, cond: np.ndarray) -> np.ndarray:
        """Standardised conditions -> the generator's space (unchanged without a space)."""
        if self.space is None:
            return cond
        return np.asarray(self.space.from_standard(cond), dtype=np.float32)

    def space_record(self) -> dict[str, Any] | None:
        """What config.yaml records of the space: file hashes and the space's JSON (None without one)."""
        if not self.space_files:
            return None
        rec: dict[str, Any] = {"files": {_dataset_name(p): hashlib.sha256(p.read_bytes()).hexdigest()
                                         for p in self.space_files}}
        for p in self.space_files:
            if p.suffix == ".json":
                from synthfr.utils.io import read_json

                try:
                    rec["space"] = read_json(p)
                except ValueError:
                    pass
        return rec

    def space_copies(self) -> dict[str, bytes]:
        """Dataset file name -> bytes of the space files, renamed to ``identities.space.*`` (the JSON's pointer
        to its arrays file is rewritten to match; byte-for-byte deterministic)."""
        import json

        out: dict[str, bytes] = {}
        for p in self.space_files:
            data = p.read_bytes()
            if p.suffix == ".json":
                doc = json.loads(data)
                if "arrays" in doc:
                    doc["arrays"] = "identities.space.npz"
                data = (json.dumps(doc, indent=2) + "\n").encode()
            out[_dataset_name(p)] = data
        return out


def _dataset_name(p: Path) -> str:
    return "identities.space" + p.name.split(".space", 1)[1]


def load_identities(path: str, limit: int | None = None) -> Identities:
    """Read an identity file (``.npy`` from `synthfr sample`; its first ``limit`` rows) and its space files."""
    from synthfr.errors import UsageError
    from synthfr.spaces import space_paths
    from synthfr.utils.validate import load_vectors

    p = Path(path).expanduser()
    if not str(path):
        raise UsageError("no identity file: pass --identities IDS.npy (made by `synthfr sample`)")
    if not p.is_file():
        raise FileNotFoundError(f"identity file {p} does not exist; make one with `synthfr sample ... --out {p}`")
    if p.suffix != ".npy":
        raise UsageError(f"identity file {p} is not a .npy file; `synthfr sample` writes N×D float32 .npy files")
    ids = load_vectors(p, what="identity vectors", mmap=True)  # finite, non-zero rows, at least one
    if limit is not None:
        if limit > ids.shape[0]:
            raise ValueError(f"num_identities={limit} but {p} has only {ids.shape[0]} rows")
        ids = ids[:limit]
    files = [q for q in space_paths(p) if q.is_file()]
    return Identities(np.ascontiguousarray(ids, dtype=np.float32), str(path), files)


def is_sampler_spec(identities: str) -> bool:
    """Whether ``--identities`` names a sampler (``NAME:n=...``) rather than a file."""
    return bool(identities) and not identities.endswith(".npy") and not Path(identities).expanduser().exists()


def sample_into(spec: str, seed: int, out: Path, *, rank: int, log) -> str:
    """Sample identities from a spec ``NAME:n=...,dim=...`` into ``OUT/sampled/ids.npy`` (once; reused on
    --resume; ranks other than 0 wait for rank 0's file). Returns the file's path."""
    from synthfr.samplers import REGISTRY as SAMPLERS, sample_identities
    from synthfr.utils.wait import wait_until

    name, opts = parse_spec(spec)
    if name not in SAMPLERS:
        raise ValueError(f"--identities {spec!r} is neither a .npy file nor a sampler spec "
                         f"NAME:n=N,dim=D (samplers: {', '.join(SAMPLERS.list())})")
    if "n" not in opts:
        raise ValueError(f"sampler spec {spec!r} needs n=NUMBER (e.g. {name}:n=1000,dim=512)")
    target = out / "sampled" / "ids.npy"
    if target.is_file():
        return str(target)
    if rank != 0:
        log(f"waiting for rank 0 to sample the identities into {target}")
        wait_until(target.is_file)
        return str(target)
    tmp = out / f".sampled.{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    n = int(opts.pop("n"))
    seed = int(opts.pop("seed", seed))
    log(f"sampling {n} identities with {name} into {target}")
    sample_identities(name, n, seed=seed, out=tmp / "ids.npy", **opts)
    if target.parent.exists():
        shutil.rmtree(target.parent)
    os.replace(tmp, target.parent)
    return str(target)


def sampler_record(identities: str) -> dict[str, Any] | None:
    """How the identity file was sampled (from ``IDS.config.yaml`` beside it, written by `synthfr sample`), for
    the dataset card; None when there is no such file. Paths are reduced to file names (machine specific)."""
    import yaml

    p = Path(str(identities)).expanduser()
    side = p.with_name(p.name[:-4] + ".config.yaml") if p.name.endswith(".npy") else None
    if side is None or not side.is_file():
        return None
    try:
        doc = yaml.safe_load(side.read_text()) or {}
    except (OSError, yaml.YAMLError):
        return None
    c = doc.get("config") or {}
    if not isinstance(c, dict) or "method" not in c:
        return None
    gal = c.get("gallery")
    return {"method": c.get("method"), "n": c.get("n"), "dim": c.get("dim"),
            "gallery": Path(str(gal)).name if gal else None, "seed": doc.get("seed"),
            "options": c.get("sampler") if isinstance(c.get("sampler"), dict) else {}}
