"""Training datasets: an ImageFolder (``identity/image.jpg``) with an optional ``manifest.jsonl`` of labels and
soft labels, or an insightface ``.rec``. Items are decoded (PIL) and augmented in DataLoader workers.

Labels: without a manifest, the class of an image is the sorted index of its folder. With a manifest (lines
with ``path`` relative to the dataset root, ``label`` and optionally ``soft_label: [id_a, id_b, weight_a]``),
the manifest decides; ``id_a``/``id_b`` are identity rows, mapped to labels through the manifest's
``identity -> label`` pairs (as-is when unknown). A ``.rec`` uses insightface's header/range records; an image
label array ``[id_a, id_b, weight_a]`` (or ``[label, id_a, id_b, weight_a]``) is a soft label.

An item is ``(image, labels, weights, index)``: ``image`` a float ``3×S×S`` tensor normalised to [-1, 1];
``labels`` int64 ``[2]`` (``label_a, label_b``); ``weights`` float32 ``[2]`` (``weight_a, 1 - weight_a``).
Indexing with ``(index, seed)`` seeds the augmentation; a bare index gives the un-augmented image.
"""
from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from synthfr.utils.images import IMAGE_EXTENSIONS

__all__ = ["FaceDataset", "open_dataset", "scan_image_folder", "IMAGE_EXTENSIONS", "decode_rgb"]


def decode_rgb(data: bytes, size: int | None = None) -> np.ndarray:
    """Decode image bytes to ``uint8 H×W×3`` RGB (resized to ``size×size`` when given and different)."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        if size is not None and im.format == "JPEG" and im.size[0] >= 2 * size:
            im.draft("RGB", (size, size))
        im = im.convert("RGB")
        if size is not None and im.size != (size, size):
            im = im.resize((size, size), Image.BILINEAR)
        return np.array(im, dtype=np.uint8)


def scan_image_folder(root: str | Path) -> tuple[list[str], list[int], list[str]]:
    """``(relative paths, labels, class names)`` of ``root/<class>/<image>`` (sorted classes and images).

    A root holding only an ``images/`` folder (a synthfr dataset without manifest) is scanned inside it.
    """
    root = Path(root)
    base = root
    subdirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if [p.name for p in subdirs] == ["images"]:
        base = root / "images"
        subdirs = sorted(p for p in base.iterdir() if p.is_dir() and not p.name.startswith("."))
    paths, labels, names = [], [], []
    for c, d in enumerate(subdirs):
        names.append(d.name)
        for f in sorted(d.iterdir()):
            if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS:
                paths.append(str(f.relative_to(root)))
                labels.append(c)
    if not paths:
        raise ValueError(f"no images found in {root}: expected an ImageFolder root/<identity>/<image>.jpg "
                         f"(extensions {', '.join(IMAGE_EXTENSIONS)})")
    return paths, labels, names


class FaceDataset(torch.utils.data.Dataset):
    """Labelled face images from a folder or a ``.rec`` (see the module docstring)."""

    def __init__(self, root: str | Path, sources: Sequence[Any], labels_a: np.ndarray, labels_b: np.ndarray,
                 weights_a: np.ndarray, num_classes: int, kind: str, input_size: int = 112, augment=None,
                 rec_path: str | Path | None = None, class_names: Sequence[str] | None = None):
        self.root = Path(root)
        self.sources = list(sources)
        self.labels_a = np.asarray(labels_a, dtype=np.int64)
        self.labels_b = np.asarray(labels_b, dtype=np.int64)
        self.weights_a = np.asarray(weights_a, dtype=np.float32)
        self.num_classes = int(num_classes)
        self.kind = kind
        self.input_size = int(input_size)
        self.augment = augment
        self.rec_path = rec_path
        self.class_names = list(class_names) if class_names is not None else None
        self._reader = None
        self.label_offset = 0

    def __len__(self) -> int:
        return len(self.sources)

    @property
    def has_soft_labels(self) -> bool:
        return bool(np.any(self.weights_a < 1.0))

    def read_bytes(self, i: int) -> bytes:
        src = self.sources[i]
        if self.kind == "rec":
            if self._reader is None:
                from synthfr.data.recordio import RecordIOReader

                self._reader = RecordIOReader(self.rec_path)
            return self._reader.read(int(src))[1]
        return (self.root / src).read_bytes()

    def image(self, i: int) -> np.ndarray:
        """The decoded ``uint8 S×S×3`` RGB image ``i`` (no augmentation)."""
        try:
            return decode_rgb(self.read_bytes(i), self.input_size)
        except Exception as e:  # name the file
            raise ValueError(f"cannot decode image {self.sources[i]!r} of {self.root}: {e}") from e

    def __getitem__(self, item):
        if isinstance(item, (tuple, list)):
            i, seed = int(item[0]), int(item[1])
        else:
            i, seed = int(item), None
        x = torch.from_numpy(self.image(i)).permute(2, 0, 1).float().div_(255.0)
        if seed is not None and self.augment is not None:
            # augment single-threaded, as in a DataLoader worker: some kernels (interpolation, convolution)
            # round differently with more threads, and results must not depend on --workers
            threads = torch.get_num_threads()
            if threads != 1:
                torch.set_num_threads(1)
            try:
                x = self.augment(x, np.random.default_rng(seed))
            finally:
                if threads != 1:
                    torch.set_num_threads(threads)
        x = (x - 0.5) / 0.5
        wa = float(self.weights_a[i])
        labels = torch.tensor([self.labels_a[i] + self.label_offset, self.labels_b[i] + self.label_offset])
        weights = torch.tensor([wa, 1.0 - wa], dtype=torch.float32)
        return x, labels, weights, i

    def __getstate__(self):
        d = self.__dict__.copy()
        d["_reader"] = None
        return d


def _from_manifest(root: Path, manifest: Path, soft_labels: bool):
    paths, la, lb, wa = [], [], [], []
    id2label: dict[int, int] = {}
    rows = []
    with open(manifest) as f:
        for n, line in enumerate(f):
            if not line.strip():
                continue
            try:
                r = json.loads(line)
                rows.append((r["path"], int(r["label"]), r.get("soft_label")))
            except (KeyError, ValueError, TypeError) as e:
                raise ValueError(f"{manifest}:{n + 1}: a manifest line needs 'path' and an integer 'label' ({e})")
            if "identity" in r and r["identity"] is not None:
                id2label.setdefault(int(r["identity"]), int(r["label"]))
    for path, label, soft in rows:
        paths.append(path)
        if soft_labels and soft is not None:
            a, b, w = soft[-3], soft[-2], soft[-1]
            la.append(id2label.get(int(a), int(a)))
            lb.append(id2label.get(int(b), int(b)))
            wa.append(float(w))
        else:
            la.append(label)
            lb.append(label)
            wa.append(1.0)
    num_classes = max(max(la), max(lb), max(id2label.values(), default=-1)) + 1 if la else 0
    return paths, la, lb, wa, num_classes


def _has_images(root: Path) -> bool:
    man = root / "manifest.jsonl"
    if man.is_file():
        with open(man) as f:
            for line in f:
                if line.strip():
                    return (root / json.loads(line)["path"]).is_file()
        return False
    return any(p.is_dir() and not p.name.startswith(".") for p in root.iterdir())


def open_dataset(path: str | Path, input_size: int = 112, augment=None, soft_labels: bool = True,
                 manifest: str | Path | None = None) -> FaceDataset:
    """Open a training set: an ImageFolder (with ``manifest.jsonl`` if present) or an insightface ``.rec``."""
    path = Path(path)
    if path.is_dir() and manifest is None:
        # a dataset folder packed as .rec (e.g. synthfr generate --format rec: manifest + train.rec, no images)
        recs = sorted(path.glob("*.rec"))
        if len(recs) == 1 and not _has_images(path):
            path = recs[0]
    if path.suffix == ".rec":
        return _open_rec(path, input_size, augment, soft_labels)
    if not path.is_dir():
        raise FileNotFoundError(f"training data {path} not found: pass an ImageFolder directory "
                                "(identity/image.jpg) or an insightface .rec file")
    man = Path(manifest) if manifest is not None else path / "manifest.jsonl"
    if man.is_file():
        paths, la, lb, wa, nc = _from_manifest(path, man, soft_labels)
        names = None
    else:
        paths, la, names = scan_image_folder(path)
        lb, wa, nc = la, [1.0] * len(la), len(names)
    return FaceDataset(path, paths, np.array(la), np.array(lb), np.array(wa), nc, "folder", input_size, augment,
                       class_names=names)


def _open_rec(path: Path, input_size: int, augment, soft_labels: bool) -> FaceDataset:
    from synthfr.data.insightface_rec import read_insightface_rec

    reader, keys, ranges = read_insightface_rec(path)
    la = np.zeros(len(keys), dtype=np.int64)
    lb = np.zeros(len(keys), dtype=np.int64)
    wa = np.ones(len(keys), dtype=np.float32)
    first_flag = reader.read(keys[0])[0].flag if keys else 0
    if ranges is not None and not (soft_labels and first_flag >= 3):
        pos = {k: i for i, k in enumerate(keys)}
        for c, (a, b) in enumerate(ranges):
            for k in range(a, b):
                if k in pos:
                    la[pos[k]] = lb[pos[k]] = c
        nc = len(ranges)
    else:
        for i, k in enumerate(keys):
            h, _ = reader.read(k)
            if h.flag == 0:
                la[i] = lb[i] = int(h.label)
            else:
                lab = np.asarray(h.label).reshape(-1)
                if soft_labels and lab.size >= 3:
                    la[i], lb[i], wa[i] = int(lab[-3]), int(lab[-2]), float(lab[-1])
                else:
                    la[i] = lb[i] = int(lab[0])
        nc = len(ranges) if ranges is not None else int(max(la.max(initial=-1), lb.max(initial=-1)) + 1)
    reader.close()
    return FaceDataset(path.parent, keys, la, lb, wa, nc, "rec", input_size, augment, rec_path=path)
