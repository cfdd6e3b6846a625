"""The dataset folder of a generation run: its recorded settings, resume state and final step.

Files. ``config.yaml`` (the resolved config minus the run-only fields, the generator's description and
weights hash, the embedding space of the identities, package versions), ``identities.npy`` (the rows used),
``identities.space.*``, ``images/``, ``manifest.jsonl`` (see :mod:`synthfr.data.manifest`). These are
byte-identical across runs of the same config. Run records that differ between runs (time, command line,
host, throughput) go to ``logs/``: ``logs/run-<shard>-<n>.yaml`` and ``logs/summary-<shard>-<n>.json``.

Atomicity. An identity is complete iff its fragment ``parts/<row>.jsonl`` exists (or, after the final step,
its lines are in ``manifest.jsonl``); the fragment is written only after the identity's folder has been
renamed into place. ``resume`` skips complete identities and regenerates everything else.
"""
from __future__ import annotations

import hashlib
import io
import os
import shutil
from pathlib import Path
from typing import Any, Callable

import numpy as np

from synthfr.generation.config import RUN_ONLY_FIELDS, GenerateConfig
from synthfr.generation.identities import Identities, sampler_record
from synthfr.utils.io import atomic_write_bytes, atomic_write_text

__all__ = ["DatasetFolder", "dataset_config", "comparable", "describe_difference", "write_card"]


def dataset_config(cfg: GenerateConfig, gen: Any, identities: Identities) -> dict[str, Any]:
    """What config.yaml records: everything that determines the bytes of the dataset, nothing else."""
    from synthfr.config import to_dict
    from synthfr.utils.provenance import provenance

    c = {k: v for k, v in to_dict(cfg).items() if k not in RUN_ONLY_FIELDS}
    gen_desc = gen.describe() if hasattr(gen, "describe") else {"name": getattr(gen, "name", str(gen))}
    gen_desc = {k: v for k, v in gen_desc.items() if k != "weights"}  # the path is machine specific
    prov = provenance()
    if not getattr(gen, "batch_invariant", False):  # its pixels may depend on the batch: record the batching
        c["batch_size"] = int(cfg.batch_size)
    ids = identities.vectors
    return {
        "config": c,
        "seed": int(cfg.seed),
        "generator": gen_desc,
        "identities": {"rows": int(ids.shape[0]), "dim": int(ids.shape[1]),
                       "sha256": hashlib.sha256(np.ascontiguousarray(ids).tobytes()).hexdigest()},
        "embedding_space": identities.space_record(),
        "sampler": sampler_record(cfg.identities),
        "versions": prov.get("versions", {}),
    }


def comparable(doc: dict) -> dict:
    """The parts of config.yaml that must agree for --resume and merge (the identity file is compared by its
    hash, not its path, so shards may read it from different places)."""
    d = {k: doc.get(k) for k in ("config", "seed", "generator", "identities", "embedding_space")}
    if isinstance(d["config"], dict):
        d["config"] = {k: v for k, v in d["config"].items() if k not in ("identities", "weights")}
    return d


def describe_difference(old: dict, new: dict) -> str:
    """The first few settings that differ between two config.yaml documents, 'key: old -> new; ...'."""
    a, b = comparable(old), comparable(new)
    out = []
    for k in a:
        if a[k] != b[k]:
            if isinstance(a[k], dict) and isinstance(b[k], dict):
                keys = sorted(set(a[k]) | set(b[k]))
                out += [f"{k}.{kk}: {a[k].get(kk)!r} -> {b[k].get(kk)!r}" for kk in keys if a[k].get(kk) != b[k].get(kk)]
            else:
                out.append(f"{k}: {a[k]!r} -> {b[k]!r}")
    return "; ".join(out[:4]) or "unknown difference"


def npy_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(arr, dtype=np.float32))
    return buf.getvalue()


def write_card(out: Path, log: Callable[[str], None]) -> None:
    """README.md, the dataset card (synthfr.data.card); a failure is reported, never fatal: the data is done."""
    from synthfr.data.card import write_dataset_card

    try:
        write_dataset_card(out)
    except Exception as e:  # noqa: BLE001 - the dataset is complete; only its card failed
        log(f"could not write the dataset card {out / 'README.md'}: {type(e).__name__}: {e}")


class DatasetFolder:
    """``OUT/`` of one generation run (``n_rows`` identities in all shards)."""

    def __init__(self, out: Path, n_rows: int):
        self.out, self.n_rows = Path(out), int(n_rows)
        self.config_path = self.out / "config.yaml"
        self.manifest = self.out / "manifest.jsonl"
        self.logs = self.out / "logs"

    # -- before a run -----------------------------------------------------------------------------------
    def check_settings(self, doc: dict) -> None:
        """Refuse a folder that holds a dataset made with other settings."""
        import yaml

        from synthfr.config import dump_yaml

        if self.config_path.is_file():
            old = yaml.safe_load(self.config_path.read_text()) or {}
            if comparable(old) != comparable(yaml.safe_load(dump_yaml(doc))):  # compare as YAML reads back
                raise ValueError(f"{self.out} already holds a dataset made with different settings "
                                 f"({describe_difference(old, doc)}); use a new --out, or the same settings to "
                                 "--resume it")

    def done_rows(self) -> set[int]:
        """Identities already complete: in manifest.jsonl or with a fragment in parts/."""
        from synthfr.data.manifest import iter_manifest

        done: set[int] = set()
        if self.manifest.is_file():
            done |= {int(r["identity"]) for r in iter_manifest(self.manifest)}
        parts = self.out / "parts"
        if parts.is_dir():
            done |= {int(p.stem) for p in parts.glob("*.jsonl") if p.stem.isdigit()}
        return done

    def write_inputs(self, doc: dict, identities: Identities) -> None:
        """config.yaml, identities.npy and identities.space.* (rewritten only when their bytes differ)."""
        from synthfr.config import dump_yaml

        self.out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.config_path, dump_yaml(doc), fsync=True)
        files = {"identities.npy": npy_bytes(identities.vectors), **identities.space_copies()}
        for name, data in files.items():
            dst = self.out / name
            if not dst.is_file() or dst.read_bytes() != data:
                atomic_write_bytes(dst, data, fsync=True)

    def start_log(self, cfg: GenerateConfig, doc: dict, tag: str) -> int:
        """Write ``logs/run-<tag>-<n>.yaml`` (this run's provenance); returns ``n``."""
        from synthfr.utils.provenance import write_provenance

        self.logs.mkdir(exist_ok=True)
        run_no = len(list(self.logs.glob(f"run-{tag}-*.yaml")))
        write_provenance(self.logs, {"run": {k: getattr(cfg, k) for k in RUN_ONLY_FIELDS}, "dataset": doc["config"]},
                         seed=cfg.seed, name=f"run-{tag}-{run_no}.yaml")
        return run_no

    def debris(self) -> set[int]:
        """Rows with an image folder (final or temporary) on disk, complete or not."""
        return {int(n) for d in (self.out / "images", self.out / ".tmp") if d.is_dir()
                for n in os.listdir(d) if n.isdigit()}

    # -- after a run ------------------------------------------------------------------------------------
    def finalize(self, rows: list[int], *, wait: bool, fsync: bool, rec: bool, log: Callable[[str], None]) -> bool:
        """Write manifest.jsonl from the fragments of ``rows`` (rank 0 under torchrun first waits for them);
        with ``rec``, also train.rec/.idx. False while identities are missing."""
        from synthfr.data.manifest import concat_parts, iter_manifest, part_path, write_part
        from synthfr.utils.wait import wait_until

        out, n_rows = self.out, self.n_rows
        have: set[int] = set()
        if self.manifest.is_file():
            have = {int(r["identity"]) for r in iter_manifest(self.manifest)}
        miss = [r for r in rows if r not in have and not part_path(out, r, n_rows).is_file()]
        if miss and wait:
            log(f"rank 0: waiting for {len(miss)} identities from the other ranks")

            def arrived() -> bool:
                miss[:] = [r for r in miss if not part_path(out, r, n_rows).is_file()]
                return not miss
            wait_until(arrived)
        if miss:
            return False
        if self.manifest.is_file() and not (out / "parts").is_dir():
            if not (out / "README.md").is_file():
                write_card(out, log)
            return True  # already final
        # fold any existing manifest lines back into fragments, then concatenate everything in row order
        if self.manifest.is_file():
            by_row: dict[int, list] = {}
            for r in iter_manifest(self.manifest):
                by_row.setdefault(int(r["identity"]), []).append(r)
            for r, recs in by_row.items():
                if not part_path(out, r, n_rows).is_file():
                    write_part(out, r, recs, n_rows, fsync=fsync)
        concat_parts(out, rows, self.manifest, n_rows, fsync=fsync)
        shutil.rmtree(out / "parts", ignore_errors=True)
        shutil.rmtree(out / ".tmp", ignore_errors=True)
        if rec:
            from synthfr.data.writers import export_rec

            export_rec(out, list(iter_manifest(self.manifest)), num_classes=n_rows)
        write_card(out, log)
        return True
