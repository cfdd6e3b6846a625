"""A toy labelled face-like dataset (coloured blobs per class + noise) for tests, demos and benchmarks."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

__all__ = ["make_toy_dataset"]


def make_toy_dataset(root: str | Path, classes: int = 4, per_class: int = 4, size: int = 112, seed: int = 0,
                     soft_every: int = 0, manifest: bool = False, quality: int = 90) -> Path:
    """Write ``root/<class>/<k>.jpg`` JPEGs (each class a smooth random pattern, each image with noise).

    With ``manifest`` (or ``soft_every > 0``) also write ``manifest.jsonl``; every ``soft_every``-th image then
    carries a soft label ``[class, next class, 0.7]`` (identity mixup). Returns ``root``.
    """
    from PIL import Image

    root = Path(root)
    rng = np.random.default_rng(seed)
    lines = []
    for c in range(classes):
        d = root / f"id{c:04d}"
        d.mkdir(parents=True, exist_ok=True)
        base = rng.integers(0, 256, (8, 8, 3)).astype(np.float32)
        for k in range(per_class):
            img = np.clip(base + rng.normal(0, 25, base.shape), 0, 255).astype(np.uint8)
            rel = f"id{c:04d}/{k}.jpg"
            Image.fromarray(img).resize((size, size), Image.BILINEAR).save(root / rel, quality=quality)
            rec = {"identity": c, "index": k, "path": rel, "label": c}
            if soft_every and (c * per_class + k) % soft_every == 0:
                rec["soft_label"] = [c, (c + 1) % classes, 0.7]
            lines.append(json.dumps(rec))
    if manifest or soft_every:
        (root / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    return root
