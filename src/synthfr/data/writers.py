"""Dataset writers: JPEG encoding, atomic per-identity image folders, and insightface ``.rec`` export.

An identity is written into ``OUT/.tmp/<row>/`` (one file per image, optionally fsync'ed), then the folder
is renamed to ``OUT/images/<row>/`` in one step, and only then is its manifest fragment written. A kill at
any moment leaves either a complete identity (folder + fragment) or debris that ``--resume`` removes and
regenerates; never a half-written identity that counts as done.
"""
from __future__ import annotations

import io
import os
import shutil
from pathlib import Path
from typing import Any, Iterable

import numpy as np

__all__ = ["encode_image", "write_image_file", "fsync_dir", "IdentityFolderWriter", "export_rec"]


def encode_image(img: np.ndarray, fmt: str = "jpg", quality: int = 95) -> bytes:
    """uint8 H×W×3 RGB -> JPEG (``quality``, 4:2:0, no optimisation; deterministic) or PNG bytes."""
    from PIL import Image

    buf = io.BytesIO()
    im = Image.fromarray(np.ascontiguousarray(img))
    if fmt in ("jpg", "jpeg"):
        im.save(buf, format="JPEG", quality=int(quality))
    elif fmt == "png":
        im.save(buf, format="PNG", compress_level=1)
    else:
        raise ValueError(f"unknown image format {fmt!r}; use jpg or png")
    return buf.getvalue()


def write_image_file(path: str | Path, img: np.ndarray, fmt: str = "jpg", quality: int = 95,
                     fsync: bool = False) -> int:
    """Encode and write one image (used from worker threads: PIL releases the GIL while encoding)."""
    data = encode_image(img, fmt, quality)
    with open(path, "wb") as f:
        f.write(data)
        if fsync:
            f.flush()
            os.fsync(f.fileno())
    return len(data)


def fsync_dir(path: str | Path) -> None:
    """fsync a directory so a rename inside it is durable (no-op where directories cannot be opened)."""
    try:
        fd = os.open(str(path), os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class IdentityFolderWriter:
    """Atomic image folders under ``out``: ``begin(row)`` -> write files into ``tmp_dir(row)`` -> ``commit(row)``."""

    def __init__(self, out: str | Path, num_rows: int, fsync: bool = True):
        from synthfr.data.manifest import identity_dirname

        self.out = Path(out)
        self.num_rows = int(num_rows)
        self.fsync = fsync
        self._name = lambda r: identity_dirname(r, self.num_rows)
        (self.out / "images").mkdir(parents=True, exist_ok=True)
        (self.out / ".tmp").mkdir(parents=True, exist_ok=True)

    def tmp_dir(self, row: int) -> Path:
        return self.out / ".tmp" / self._name(row)

    def final_dir(self, row: int) -> Path:
        return self.out / "images" / self._name(row)

    def rel_path(self, row: int, k: int, ext: str = "jpg") -> str:
        return f"images/{self._name(row)}/{int(k)}.{ext}"

    def discard(self, row: int) -> None:
        """Remove any debris of identity ``row`` (temp folder, or a final folder without its fragment)."""
        for d in (self.tmp_dir(row), self.final_dir(row)):
            if d.exists():
                shutil.rmtree(d)

    def begin(self, row: int) -> Path:
        d = self.tmp_dir(row)
        try:
            os.mkdir(d)
        except FileExistsError:
            shutil.rmtree(d)
            os.mkdir(d)
        return d

    def commit(self, row: int) -> Path:
        """Make identity ``row`` visible: fsync its temp folder, rename it into ``images/``."""
        tmp, final = self.tmp_dir(row), self.final_dir(row)
        if self.fsync:
            fsync_dir(tmp)
        try:
            os.rename(tmp, final)
        except OSError:  # debris of a killed run that renamed but did not write the fragment
            if not final.exists():
                raise
            shutil.rmtree(final)
            os.rename(tmp, final)
        if self.fsync:
            fsync_dir(final.parent)
        return final


def export_rec(out: str | Path, records: Iterable[dict[str, Any]], num_classes: int, rec_name: str = "train.rec",
               remove_images: bool = True) -> Path:
    """Pack a finished folder dataset into insightface ``train.rec``/``train.idx`` (records in manifest order).

    Labels are the identity rows (soft-labelled images carry ``[id_a, id_b, weight_a]`` with ``id_a`` the row). With
    ``remove_images`` the ``images/`` folder is deleted afterwards. Returns the ``.rec`` path.
    """
    from synthfr.data.insightface_rec import InsightFaceRecWriter

    out = Path(out)
    rec = out / rec_name
    tmp_rec = rec.with_name(f".{rec.name}.tmp")
    tmp_idx = tmp_rec.with_suffix(".idx.tmp")
    with InsightFaceRecWriter(tmp_rec, tmp_idx, num_classes=num_classes) as w:
        for r in records:
            data = (out / r["path"]).read_bytes()
            soft = r.get("soft_label")
            if soft is None:
                label = int(r["label"])
            else:  # insightface soft label: the class first, then the rest of [id_a, id_b, weight_a]
                soft = [float(x) for x in soft]
                label = soft if int(soft[0]) == int(r["label"]) else [float(r["label"]), *soft]
            w.add(data, label)
    os.replace(tmp_idx, rec.with_suffix(".idx"))
    os.replace(tmp_rec, rec)
    if remove_images:
        shutil.rmtree(out / "images", ignore_errors=True)
    return rec
