"""The image files synthfr reads: one list of extensions for every stage (align, embed, train, quality,
report), so a face written by one stage (e.g. ``align`` keeping a ``.tif`` input's format) is read by all."""
from __future__ import annotations

from pathlib import Path

__all__ = ["IMAGE_EXTENSIONS", "is_image_file"]

#: Lower-case suffixes of the image files every stage reads (PIL decodes all of them).
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".ppm", ".pgm", ".tif", ".tiff")


def is_image_file(path: str | Path) -> bool:
    """Whether ``path`` has an image extension (any case)."""
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS
