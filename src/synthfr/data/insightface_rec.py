"""insightface training sets in RecordIO (``train.rec`` + ``train.idx``), on top of :mod:`synthfr.data.recordio`.

An insightface training set stores in record 0 a header with ``flag=2`` and ``label = [num_images + 1,
num_images + 1 + num_classes]``; records ``1..num_images`` are images whose label is the class index (or a soft
label whose first value is the class); records ``num_images + 1 ..`` are one per class (in class order) with
``label = [first_key, end_key)`` of its images. A ``.rec`` without that header is read as images alone.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from synthfr.data.recordio import RecordIOReader, RecordIOWriter, pack_header

__all__ = ["InsightFaceRecWriter", "write_insightface_rec", "read_insightface_rec"]


class InsightFaceRecWriter:
    """Write an insightface training ``.rec``: header record 0, images 1..N, then one range record per class.

    Add images grouped by class (each class's images contiguous, in any class order); classes are
    ``0..num_classes-1`` (a class without images gets an empty range). Record 0 is written first with a
    placeholder of the same size and rewritten on :meth:`close`, so the file reads sequentially in key order.
    ``soft labels``: pass ``label`` as a sequence (e.g. ``[class, id_b, weight_a]``); its first value must be
    the class (what insightface reads as the label).
    """

    def __init__(self, rec_path: str | Path, idx_path: str | Path | None = None, num_classes: int | None = None):
        self.writer = RecordIOWriter(rec_path, idx_path)
        self.num_classes = num_classes
        self._header_pos = self.writer.tell()
        self.writer.write_raw(pack_header([0.0, 0.0], 0, 0), key=0)
        self._ranges: dict[int, list[int]] = {}
        self._last_class: int | None = None
        self.num_images = 0

    def add(self, img_bytes: bytes, label: int | Sequence[float]) -> int:
        """Append an image of class ``label`` (int) or soft label sequence; returns its record key."""
        cls = int(label) if np.ndim(label) == 0 else int(np.asarray(label).reshape(-1)[0])
        if cls < 0:
            raise ValueError(f"class labels must be >= 0, got {cls}")
        if cls != self._last_class and cls in self._ranges:
            raise ValueError(f"images of class {cls} are not contiguous; add images grouped by class")
        key = self.num_images + 1
        lab = float(cls) if np.ndim(label) == 0 else [float(x) for x in np.asarray(label).reshape(-1)]
        self.writer.write(lab, img_bytes, id=key, key=key)
        r = self._ranges.setdefault(cls, [key, key + 1])
        r[1] = key + 1
        self._last_class = cls
        self.num_images += 1
        return key

    def close(self) -> None:
        if self.writer.closed:
            return
        n_cls = max(self._ranges, default=-1) + 1
        if self.num_classes is not None:
            if self.num_classes < n_cls:
                raise ValueError(f"num_classes={self.num_classes} but class {n_cls - 1} was written")
            n_cls = self.num_classes
        first = self.num_images + 1
        for c in range(n_cls):
            a, b = self._ranges.get(c, [first, first])
            self.writer.write([float(a), float(b)], b"", id=first + c, key=first + c)
        # record 0 was a placeholder of the same size (two float labels): rewrite it in place
        self.writer.overwrite(self._header_pos, pack_header([float(first), float(first + n_cls)], 0, 0))
        self.writer.close()

    def __enter__(self) -> "InsightFaceRecWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def write_insightface_rec(items: Iterable[tuple[bytes, int | Sequence[float]]], rec_path: str | Path,
                          idx_path: str | Path | None = None, num_classes: int | None = None) -> int:
    """Write ``(image_bytes, label)`` pairs (grouped by class) as an insightface training set; returns N."""
    with InsightFaceRecWriter(rec_path, idx_path, num_classes=num_classes) as w:
        for img, label in items:
            w.add(img, label)
        return w.num_images


def read_insightface_rec(rec_path: str | Path, idx_path: str | Path | None = None
                         ) -> tuple[RecordIOReader, list[int], list[tuple[int, int]] | None]:
    """Open an insightface ``.rec``: ``(reader, image keys, class ranges or None)``.

    With a header record (key 0, ``flag > 0``), image keys are ``1..label[0]-1`` and the class ranges are read
    from records ``label[0]..label[1]-1``; otherwise every record is an image (labels from the headers).
    """
    reader = RecordIOReader(rec_path, idx_path)
    if 0 in reader:
        h, _ = reader.read(0)
        if h.flag > 0:
            lo, hi = int(h.label[0]), int(h.label[1])
            keys = list(range(1, lo))
            ranges = []
            for k in range(lo, hi):
                hk, _ = reader.read(k)
                ranges.append((int(hk.label[0]), int(hk.label[1])))
            return reader, keys, ranges
    return reader, list(reader.keys), None
