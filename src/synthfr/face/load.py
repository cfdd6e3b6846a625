"""One face image file -> an aligned 112×112 RGB face (used by folder benchmarks, `synthfr embed`, quality).

Files that are already 112×112 are taken as aligned (``align="auto"``); others are detected and aligned with
:func:`synthfr.face.align.align_image`; when no face is found the centre crop is used and the reason returned.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["IMAGE_SIZE", "read_rgb", "detect_align", "load_face_file"]

IMAGE_SIZE = 112


def read_rgb(path: Path) -> np.ndarray:
    """Read an image file as ``uint8 H×W×3`` RGB (:func:`synthfr.face.align.load_image`: EXIF-rotated,
    greyscale/alpha/16-bit converted). Raises ``ValueError`` naming the file when it cannot be decoded."""
    from synthfr.face.align import load_image

    return load_image(Path(path))


def _centre_crop(img: np.ndarray, size: int = IMAGE_SIZE) -> np.ndarray:
    from PIL import Image

    h, w = img.shape[:2]
    s = min(h, w)
    y, x = (h - s) // 2, (w - s) // 2
    return np.asarray(Image.fromarray(img[y:y + s, x:x + s]).resize((size, size), Image.BILINEAR))


_LANDMARKER: Any = None


def detect_align(img: np.ndarray) -> tuple[np.ndarray | None, str | None]:
    """Detect and align one RGB image to 112×112 with :func:`synthfr.face.align.align_image` (the detector is
    created once and reused); ``(None, reason)`` when no face is found."""
    global _LANDMARKER
    from synthfr.face.align import AlignConfig, align_image

    if _LANDMARKER is None:
        from synthfr.face.landmarks import FaceLandmarker

        _LANDMARKER = FaceLandmarker.from_config(AlignConfig(size=IMAGE_SIZE))
    try:
        out, reason = align_image(img, detector=_LANDMARKER, size=IMAGE_SIZE)
    except Exception as e:  # a detector failure on one image is reported, never fatal
        return None, f"{type(e).__name__}: {e}"
    if out is None:
        return None, reason or "alignment failed"
    return np.asarray(out, dtype=np.uint8), None


def load_face_file(path: Path, align: str) -> tuple[np.ndarray, str | None]:
    """The 112×112 face of one file and, when alignment failed (centre crop returned instead), the reason."""
    img = read_rgb(path)
    is_aligned_size = img.shape[:2] == (IMAGE_SIZE, IMAGE_SIZE)
    if align == "never" or (align == "auto" and is_aligned_size):
        if not is_aligned_size:
            raise ValueError(f"{path} is {img.shape[1]}×{img.shape[0]}, not an aligned 112×112 face; "
                             "use align='auto' (or align the folder first with `synthfr align`)")
        return img, None
    out, reason = detect_align(img)
    if out is None:
        return _centre_crop(img), reason or "alignment failed"
    return out, None
