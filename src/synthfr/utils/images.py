"""Images shared by every stage: one list of file extensions (align, embed, train, quality, report), so a face
written by one stage (e.g. ``align`` keeping a ``.tif`` input's format) is read by all; float -> uint8 images."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["IMAGE_EXTENSIONS", "is_image_file", "to_uint8_images"]

#: Lower-case suffixes of the image files every stage reads (PIL decodes all of them).
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".ppm", ".pgm", ".tif", ".tiff")


def is_image_file(path: str | Path) -> bool:
    """Whether ``path`` has an image extension (any case)."""
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def to_uint8_images(x: Any) -> np.ndarray:
    """Float images in [0, 1], N×3×H×W (torch or numpy) -> uint8 N×H×W×3 numpy (rounded, clipped)."""
    if hasattr(x, "detach"):
        import torch

        x = (x.detach().float().clamp(0, 1) * 255.0).round().to(torch.uint8).permute(0, 2, 3, 1)
        return np.ascontiguousarray(x.cpu().numpy())
    x = np.clip(np.asarray(x, dtype=np.float32), 0, 1)
    return np.ascontiguousarray((x * 255.0).round().astype(np.uint8).transpose(0, 2, 3, 1))
