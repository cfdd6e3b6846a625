"""The dataset manifest: one JSON line per image, in (identity, index) order.

Fields of a line (always in this order; ``soft_label`` only for images with a soft label)::

    identity        int    row of the identity in identities.npy (also its folder name, zero-padded)
    index           int    image index k within the identity (0..K-1)
    path            str    image path relative to the dataset folder (images/000012/3.jpg)
    seed            int    the seed the generator received for this image (attempt 0: derive_seed(S, i, k);
                           attempt a > 0: derive_seed(S, i, k, a))
    attempt         int    which attempt was kept (0 unless the identity filter regenerated it)
    variation       str    variation name, or null
    params          dict   per-image variation parameters ({} when none)
    label           int    the class label used for training (the identity row)
    soft_label      list   [id_a, id_b, weight_a] for mixed images
    similarity      float  cosine between the image's embedding and its identity vector (null without filter)
    align_error     float  mean distance (px) of its five landmarks to the template (null without --align-check
                           or when no face was found)
    passed          bool   whether the image met the filter threshold and alignment check (null without either)
    dropped         int    images of this slot dropped by the filter/check before this one was kept
    generator       str    generator name
    weights_sha256  str    hash of the generator's weights

While a dataset is being generated, each finished identity has a fragment ``parts/<row>.jsonl``; the final
``manifest.jsonl`` is their concatenation in row order, so it is byte-identical however the work was
batched, sharded, killed or resumed.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable, Iterator

from synthfr.utils.io import atomic_write_bytes

__all__ = ["FIELDS", "make_record", "dumps_record", "read_manifest", "iter_manifest", "part_path",
           "write_part", "concat_parts", "identity_dirname", "ROW_DIGITS"]

FIELDS = ("identity", "index", "path", "seed", "attempt", "variation", "params", "label", "soft_label",
          "similarity", "align_error", "passed", "dropped", "generator", "weights_sha256")

ROW_DIGITS = 6


def identity_dirname(row: int, num_rows: int | None = None) -> str:
    """Zero-padded folder name of identity ``row`` (at least 6 digits, more for larger files)."""
    width = max(ROW_DIGITS, len(str(max(int(num_rows or 0) - 1, 0))))
    return f"{int(row):0{width}d}"


def make_record(**kw: Any) -> dict[str, Any]:
    """A manifest line as an ordered dict (unknown keys are an error; ``soft_label`` dropped when None)."""
    unknown = set(kw) - set(FIELDS)
    if unknown:
        raise KeyError(f"unknown manifest field(s) {sorted(unknown)}; fields are {FIELDS}")
    rec = {}
    for f in FIELDS:
        v = kw.get(f)
        if f == "soft_label" and v is None:
            continue
        rec[f] = v
    return rec


def _plain(obj: Any) -> Any:
    from synthfr.utils.io import to_jsonable

    return to_jsonable(obj)


def dumps_record(rec: dict[str, Any]) -> str:
    """One canonical JSON line (no trailing newline): compact separators, insertion order, plain floats."""
    return json.dumps(rec, separators=(",", ":"), ensure_ascii=False, default=_plain, allow_nan=False)


def iter_manifest(path: str | Path) -> Iterator[dict[str, Any]]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"manifest {path} does not exist; is {path.parent} a dataset written by "
                                "`synthfr generate`?")
    with open(path) as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                try:
                    yield json.loads(line)
                except json.JSONDecodeError as e:
                    raise ValueError(f"{path}:{n}: not a JSON line ({e})") from None


def read_manifest(path: str | Path) -> list[dict[str, Any]]:
    """All lines of a ``manifest.jsonl`` (or a fragment) as dicts."""
    return list(iter_manifest(path))


def part_path(out: str | Path, row: int, num_rows: int | None = None) -> Path:
    return Path(out) / "parts" / f"{identity_dirname(row, num_rows)}.jsonl"


def write_part(out: str | Path, row: int, records: Iterable[dict[str, Any]], num_rows: int | None = None,
               fsync: bool = True) -> Path:
    """Atomically write identity ``row``'s manifest fragment (its presence marks the identity complete)."""
    path = part_path(out, row, num_rows)
    text = "".join(dumps_record(r) + "\n" for r in records)
    atomic_write_bytes(path, text.encode(), fsync=fsync)
    return path


def concat_parts(out: str | Path, rows: Iterable[int], dest: str | Path, num_rows: int | None = None,
                 fsync: bool = True) -> int:
    """Concatenate the fragments of ``rows`` (in the given order) into ``dest`` atomically; returns lines."""
    chunks = []
    lines = 0
    for r in rows:
        data = part_path(out, r, num_rows).read_bytes()
        lines += data.count(b"\n")
        chunks.append(data)
    atomic_write_bytes(dest, b"".join(chunks), fsync=fsync)
    return lines
