"""Export a dataset to the Hugging Face ``datasets`` layout: Parquet files with image bytes and labels.

``export_hf(DATASET, OUT)`` (CLI: ``synthfr export-hf DATASET OUT``) writes::

    OUT/data/train-00000-of-0000N.parquet   columns: image {bytes, path}, label (ClassLabel), identity, path
                                             [+ soft_label [id_a, id_b, weight_a] when the manifest has any]
    OUT/README.md                            the dataset card (copied from DATASET when present) with a
                                             ``configs`` entry pointing at data/*.parquet

The image bytes are the dataset's files unchanged (JPEG/PNG), so ``datasets.load_dataset("parquet",
data_files="OUT/data/*.parquet", split="train")`` (or ``load_dataset("OUT")``) gives back the exact bytes
(``cast_column("image", Image(decode=False))``) and labels. The schema carries the ``huggingface`` metadata
(``Image`` and ``ClassLabel`` features), so the images decode to PIL without any casting. Needs ``pyarrow``
(extra ``[hf]``); ``datasets`` itself is not needed to write.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["export_hf"]


def _items(dataset: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """Rows ``{path, label, identity, soft_label}`` (manifest order, or sorted folders) and the class names."""
    manifest = dataset / "manifest.jsonl"
    if manifest.is_file():
        from synthfr.data.manifest import iter_manifest

        recs = list(iter_manifest(manifest))
        labels = sorted({int(r["label"] if not isinstance(r["label"], list) else r["identity"]) for r in recs})
        rows = []
        for r in recs:
            lab = int(r["label"]) if not isinstance(r["label"], list) else int(r["identity"])
            soft = r.get("soft_label")
            rows.append({"path": r["path"], "label": lab, "identity": Path(r["path"]).parent.name,
                         "soft_label": None if soft is None else [float(x) for x in soft[-3:]]})
        # ClassLabel names: the identity folder of each label (labels are 0..N-1 identity rows)
        names_by_label = {}
        for row in rows:
            names_by_label.setdefault(row["label"], row["identity"])
        n = max(labels) + 1 if labels else 0
        names = [names_by_label.get(i, str(i)) for i in range(n)]
        return rows, names
    from synthfr.data.imagefolder import scan_image_folder

    paths, labs, names = scan_image_folder(dataset)
    return [{"path": p, "label": int(c), "identity": names[c], "soft_label": None} for p, c in zip(paths, labs)], names


def _card_with_config(card: str | None, name: str) -> str:
    """The dataset card with a ``configs`` entry (so ``load_dataset(OUT)`` finds the Parquet files)."""
    cfg = "configs:\n- config_name: default\n  data_files:\n  - split: train\n    path: data/train-*.parquet\n"
    if card and card.startswith("---\n"):
        end = card.index("\n---", 4)
        head, rest = card[4:end + 1], card[end:]
        if "configs:" not in head:
            head += cfg
        return "---\n" + head + rest.lstrip("\n").replace("---", "---", 1)
    body = card or f"# {name}\n\nExported with `synthfr export-hf`.\n"
    return "---\n" + cfg + "---\n\n" + body


def export_hf(dataset: str | Path, out: str | Path, *, rows_per_file: int = 10000,
              progress: bool = True) -> dict[str, Any]:
    """Write ``dataset`` (a synthfr dataset folder or an ImageFolder) as Hugging Face Parquet files under
    ``out`` (see the module docstring). Returns ``{"images", "classes", "files", "out"}``."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        from synthfr.errors import UsageError

        raise UsageError("export-hf needs pyarrow: pip install 'synthfr[hf]'") from None
    from tqdm.auto import tqdm

    from synthfr.errors import InputError, UsageError
    from synthfr.utils.io import atomic_write_text
    from synthfr.utils.validate import check_out_dir, check_range

    dataset, out = Path(dataset).expanduser(), Path(out).expanduser()
    if not dataset.is_dir():
        raise FileNotFoundError(f"dataset {dataset} is not a folder; pass a folder written by `synthfr generate` "
                                "or an ImageFolder (<identity>/<image>)")
    check_range("--rows-per-file", rows_per_file, 1, integer=True)
    check_out_dir(out)
    if (out / "data").is_dir() and any((out / "data").glob("*.parquet")):
        raise UsageError(f"{out}/data already holds Parquet files; choose a new output folder")
    rows, names = _items(dataset)
    if not rows:
        raise InputError(f"{dataset}: found 0 images to export")
    has_soft = any(r["soft_label"] is not None for r in rows)
    features: dict[str, Any] = {
        "image": {"_type": "Image"},
        "label": {"names": names, "_type": "ClassLabel"},
        "identity": {"dtype": "string", "_type": "Value"},
        "path": {"dtype": "string", "_type": "Value"},
    }
    fields = [pa.field("image", pa.struct([pa.field("bytes", pa.binary()), pa.field("path", pa.string())])),
              pa.field("label", pa.int64()), pa.field("identity", pa.string()), pa.field("path", pa.string())]
    if has_soft:
        features["soft_label"] = {"feature": {"dtype": "float64", "_type": "Value"}, "_type": "Sequence"}
        fields.append(pa.field("soft_label", pa.list_(pa.float64())))
    meta = {b"huggingface": json.dumps({"info": {"features": features}}).encode()}
    schema = pa.schema(fields, metadata=meta)
    n_files = max(1, -(-len(rows) // rows_per_file))
    (out / "data").mkdir(parents=True, exist_ok=True)
    files = []
    bar = tqdm(total=len(rows), desc="export-hf", unit="img", disable=not progress)
    for i in range(n_files):
        chunk = rows[i * rows_per_file:(i + 1) * rows_per_file]
        cols: dict[str, list] = {"image": [], "label": [], "identity": [], "path": []}
        if has_soft:
            cols["soft_label"] = []
        for r in chunk:
            src = dataset / r["path"]
            if not src.is_file():
                raise InputError(f"{dataset}: image {r['path']} listed in the manifest is missing")
            cols["image"].append({"bytes": src.read_bytes(), "path": Path(r["path"]).name})
            cols["label"].append(r["label"])
            cols["identity"].append(r["identity"])
            cols["path"].append(r["path"])
            if has_soft:
                cols["soft_label"].append(r["soft_label"])
        table = pa.Table.from_pydict(cols, schema=schema)
        dest = out / "data" / f"train-{i:05d}-of-{n_files:05d}.parquet"
        tmp = dest.with_name("." + dest.name + ".tmp")
        pq.write_table(table, tmp)
        tmp.replace(dest)
        files.append(str(dest))
        bar.update(len(chunk))
    bar.close()
    card = (dataset / "README.md").read_text() if (dataset / "README.md").is_file() else None
    atomic_write_text(out / "README.md", _card_with_config(card, dataset.name))
    return {"images": len(rows), "classes": len(names), "files": files, "out": str(out)}
