"""Convert between an ImageFolder (or a synthfr dataset folder) and an insightface ``.rec``/``.idx`` (``synthfr
convert``); image bytes are copied unchanged both ways."""
from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import numpy as np

from synthfr.data.insightface_rec import InsightFaceRecWriter, read_insightface_rec
from synthfr.data.recordio import CorruptRecordError, default_idx_path

__all__ = ["folder_to_rec", "rec_to_folder"]


def folder_to_rec(folder: str | Path, rec_path: str | Path, progress: bool = True) -> dict:
    """Pack an ImageFolder (``identity/image.jpg``, or a synthfr dataset with ``manifest.jsonl``) into an
    insightface ``.rec``/``.idx``; image bytes are stored unchanged.

    Also writes ``<rec>.lst`` (insightface's list format ``key<TAB>label<TAB>relative path``) so that
    :func:`rec_to_folder` restores the same file names, and copies ``manifest.jsonl`` to
    ``<rec stem>.manifest.jsonl``. With a manifest, soft labels are stored as label arrays
    ``[label, id_a, id_b, weight_a]``. Returns ``{"images", "classes", "rec", "idx"}``.
    """
    import json
    import shutil

    from tqdm.auto import tqdm

    from synthfr.data.imagefolder import scan_image_folder

    folder, rec_path = Path(folder), Path(rec_path)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is not a folder: pass an ImageFolder (identity/image.jpg)")
    manifest = folder / "manifest.jsonl"
    items: list[tuple[str, Any]] = []
    if manifest.is_file():
        rows = [json.loads(line) for line in manifest.read_text().splitlines() if line.strip()]
        order = sorted(range(len(rows)), key=lambda i: (int(rows[i]["label"]), i))  # group by class, stable
        for i in order:
            r = rows[i]
            soft = r.get("soft_label")
            lab: Any = int(r["label"]) if soft is None else [float(r["label"]), *[float(x) for x in soft[-3:]]]
            items.append((r["path"], lab))
        num_classes = max(int(r["label"]) for r in rows) + 1 if rows else 0
    else:
        paths, labels, names = scan_image_folder(folder)
        items = list(zip(paths, labels))
        num_classes = len(names)
    lst_path = rec_path.with_suffix(".lst")
    with InsightFaceRecWriter(rec_path, num_classes=num_classes) as w, open(lst_path, "w") as lst:
        for rel, lab in tqdm(items, desc="pack", unit="img", disable=not progress):
            key = w.add((folder / rel).read_bytes(), lab)
            c = lab if isinstance(lab, int) else int(lab[0])
            lst.write(f"{key}\t{c}\t{rel}\n")
    if manifest.is_file():
        shutil.copyfile(manifest, rec_path.with_name(rec_path.stem + ".manifest.jsonl"))
    return {"images": len(items), "classes": num_classes, "rec": str(rec_path), "idx": str(default_idx_path(rec_path))}


def _image_ext(data: bytes) -> str | None:
    """The file extension of encoded image bytes, or None when they are no known image format."""
    if data[:3] == b"\xff\xd8\xff":
        return ".jpg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return ".png"
    if data[:2] == b"BM":
        return ".bmp"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return ".webp"
    return None


def _ext_of(data: bytes) -> str:
    return _image_ext(data) or ".jpg"


def rec_to_folder(rec_path: str | Path, folder: str | Path, progress: bool = True) -> dict:
    """Unpack an insightface ``.rec`` into an ImageFolder, bytes unchanged.

    File names come from ``<rec>.lst`` when present (written by :func:`folder_to_rec`), else
    ``<class:06d>/<key:08d>.<ext>``; ``<rec stem>.manifest.jsonl`` is restored as ``manifest.jsonl``.
    Returns ``{"images", "classes", "folder"}``.
    """
    import shutil

    from tqdm.auto import tqdm

    rec_path, folder = Path(rec_path), Path(folder)
    reader, keys, ranges = read_insightface_rec(rec_path)
    names: dict[int, str] = {}
    lst_path = rec_path.with_suffix(".lst")
    if lst_path.is_file():
        for line in lst_path.read_text().splitlines():
            parts = line.split("\t")
            if len(parts) >= 3:
                names[int(parts[0])] = parts[-1]
    key_class: dict[int, int] = {}
    if ranges is not None:
        for c, (a, b) in enumerate(ranges):
            for k in range(a, b):
                key_class[k] = c
    folder.mkdir(parents=True, exist_ok=True)
    classes = set()
    corrupt: list[dict[str, Any]] = []
    for k in tqdm(keys, desc="unpack", unit="img", disable=not progress):
        try:
            h, data = reader.read(k)
            if _image_ext(data) is None:
                raise CorruptRecordError(f"{rec_path}: record {k} is not a JPEG/PNG/BMP/WebP image")
        except (CorruptRecordError, struct.error) as e:  # reported and skipped, never written as an image
            corrupt.append({"key": int(k), "reason": str(e)})
            continue
        c = key_class.get(k)
        if c is None:
            c = int(h.label) if h.flag == 0 else int(np.asarray(h.label).reshape(-1)[0])
        classes.add(c)
        rel = names.get(k) or f"{c:06d}/{k:08d}{_ext_of(data)}"
        dest = folder / rel
        if folder.resolve() not in dest.resolve().parents:
            raise ValueError(f"{lst_path}: path {rel!r} leaves the output folder")
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(data)
    reader.close()
    man = rec_path.with_name(rec_path.stem + ".manifest.jsonl")
    if man.is_file():
        shutil.copyfile(man, folder / "manifest.jsonl")
    written = len(keys) - len(corrupt)
    if keys and written == 0:
        raise CorruptRecordError(f"{rec_path}: all {len(keys)} records are corrupt (first: {corrupt[0]['reason']})")
    res = {"images": written, "classes": len(ranges) if ranges is not None else len(classes), "folder": str(folder)}
    if corrupt:
        res["corrupt"] = corrupt  # {"key", "reason"} of every record skipped
    return res
