"""Per-image face attributes of aligned 112×112 faces: pose, expression, illumination, sharpness.

One measurement, two users: the built-in generator ``synthfr-v2`` is *conditioned* on these attributes of its
real training faces, and ``synthfr quality`` *reports* them (per dataset and per identity) for generated and
real sets. None of them is an identity network, so the judge rule (SFace judges identity, never trains) is not
involved; the pose here comes from dlib's 68 landmarks + solvePnP, independent of synthfr's pose *network*.

All functions take aligned uint8 ``N×112×112×3`` RGB faces (``synthfr align`` output) and return float32 arrays.

=============  ==========================================================================================
name           meaning (units)
=============  ==========================================================================================
yaw            head yaw in degrees from 68 landmarks (> 0: the face turns towards the image's right)
pitch          head pitch in degrees (> 0: looks up), relative to the template's neutral
roll           in-plane rotation in degrees (≈ 0 on aligned faces)
mouth_open     inner-lip gap / inter-ocular distance (0 = closed; ~0.3 = wide open)
smile          mouth-corner width / inter-ocular distance (≈ 0.55 neutral, larger when smiling)
brightness     mean luminance of the central face region, 0–1 (Rec. 601 luma)
contrast       standard deviation of that luminance / its mean
light_lr       (right half − left half) mean luminance / mean: > 0 lit from the image's right
light_tb       (upper half − lower half) mean luminance / mean: > 0 lit from above
sharpness      log10 of the variance of the Laplacian of the face region's luma (blur is low)
=============  ==========================================================================================

Mirroring an image negates ``yaw``, ``roll`` and ``light_lr`` and keeps the rest (tested).

:func:`detect_faces` adds whether dlib's HOG frontal detector finds a face at all (a dataset's detection rate).
"""
from __future__ import annotations

import functools
from typing import Any, Sequence

import numpy as np

__all__ = ["ATTRIBUTES", "LANDMARK_ATTRIBUTES", "IMAGE_ATTRIBUTES", "MIRROR_SIGN", "landmarks68",
           "landmark_attributes", "image_attributes", "measure_attributes", "FACE_BOX", "UNITS", "detect_faces"]

LANDMARK_ATTRIBUTES = ("yaw", "pitch", "roll", "mouth_open", "smile")
IMAGE_ATTRIBUTES = ("brightness", "contrast", "light_lr", "light_tb", "sharpness")
ATTRIBUTES = LANDMARK_ATTRIBUTES + IMAGE_ATTRIBUTES
#: sign each attribute takes under a horizontal mirror
MIRROR_SIGN = {"yaw": -1.0, "roll": -1.0, "light_lr": -1.0}

#: the unit each attribute is read in (for reports)
UNITS = {"yaw": "degrees", "pitch": "degrees", "roll": "degrees", "mouth_open": "× inter-ocular distance",
         "smile": "× inter-ocular distance", "brightness": "luma 0–1", "contrast": "luma std / mean",
         "light_lr": "Δ luma / mean", "light_tb": "Δ luma / mean", "sharpness": "log10 var(Laplacian)"}

#: central face region of the aligned 112×112 template (x0, y0, x1, y1): eyes at y≈52, mouth at y≈92,
#: so this box holds forehead-to-chin skin and little background or hair
FACE_BOX = (28, 30, 84, 104)


def _as_images(images: np.ndarray) -> np.ndarray:
    a = np.asarray(images)
    if a.ndim == 3:
        a = a[None]
    if a.ndim != 4 or a.shape[1:] != (112, 112, 3) or a.dtype != np.uint8:
        raise ValueError(f"attributes need aligned uint8 N×112×112×3 faces, got {a.dtype} {a.shape}")
    return a


@functools.lru_cache(maxsize=4)
def _dlib_model(kind: str, path: str = "") -> Any:
    """dlib's shape predictor / HOG detector, loaded once per process (loading takes seconds, using them ms)."""
    import dlib

    return dlib.shape_predictor(path) if kind == "shape_predictor" else dlib.get_frontal_face_detector()


def landmarks68(images: np.ndarray, progress: bool = False) -> np.ndarray:
    """dlib's 68 landmarks of aligned faces, N×68×2 in 112-px coordinates (fixed face box; no detection)."""
    import dlib
    from PIL import Image

    from synthfr.face.detect import model_path
    from synthfr.face.pose import ALIGNED_BOX_224

    images = _as_images(images)
    sp = _dlib_model("shape_predictor", model_path("pose68"))
    box = dlib.rectangle(*ALIGNED_BOX_224)
    out = np.empty((len(images), 68, 2), np.float32)
    it: Sequence[int] = range(len(images))
    if progress:
        from tqdm import tqdm

        it = tqdm(it, desc="68 landmarks", unit="img")
    for i in it:
        # the predictor was trained on larger faces: upscale to 224 px as face/pose.py does
        im = np.asarray(Image.fromarray(images[i]).resize((224, 224), Image.BILINEAR))
        s = sp(np.ascontiguousarray(im), box)
        out[i] = [(s.part(j).x / 2.0, s.part(j).y / 2.0) for j in range(68)]
    return out


def landmark_attributes(points: np.ndarray) -> dict[str, np.ndarray]:
    """yaw, pitch, roll (degrees; NaN where solvePnP degenerates) and mouth_open, smile from N×68×2 landmarks."""
    from synthfr.face.pose import landmark_pose

    pts = np.asarray(points, dtype=np.float64)
    n = len(pts)
    ang = np.full((n, 3), np.nan, np.float32)
    for i in range(n):
        a = landmark_pose(pts[i] * 2.0, 224)  # solvePnP in the 224-px frame the template was tuned for
        if abs(a[2]) <= 60:  # |roll| near 180: the mirrored solution, not a usable label
            ang[i] = a
    iod = np.linalg.norm(pts[:, 45] - pts[:, 36], axis=1).clip(1e-6)
    gap = np.linalg.norm(pts[:, [61, 62, 63]] - pts[:, [67, 66, 65]], axis=2).mean(1)
    width = np.linalg.norm(pts[:, 54] - pts[:, 48], axis=1)
    return {"yaw": ang[:, 0], "pitch": ang[:, 1], "roll": ang[:, 2],
            "mouth_open": (gap / iod).astype(np.float32), "smile": (width / iod).astype(np.float32)}


def image_attributes(images: np.ndarray) -> dict[str, np.ndarray]:
    """brightness, contrast, light_lr, light_tb, sharpness of the central face region (vectorised)."""
    images = _as_images(images)
    x0, y0, x1, y1 = FACE_BOX
    f = images[:, y0:y1, x0:x1].astype(np.float32) / 255.0
    luma = f[..., 0] * 0.299 + f[..., 1] * 0.587 + f[..., 2] * 0.114  # N×H×W
    mean = luma.mean(axis=(1, 2))
    safe = np.maximum(mean, 1e-3)
    h, w = luma.shape[1:]
    lr = (luma[:, :, w // 2:].mean(axis=(1, 2)) - luma[:, :, :w // 2].mean(axis=(1, 2))) / safe
    tb = (luma[:, :h // 2].mean(axis=(1, 2)) - luma[:, h // 2:].mean(axis=(1, 2))) / safe
    lap = (luma[:, 1:-1, :-2] + luma[:, 1:-1, 2:] + luma[:, :-2, 1:-1] + luma[:, 2:, 1:-1]
           - 4 * luma[:, 1:-1, 1:-1])
    return {"brightness": mean.astype(np.float32), "contrast": (luma.std(axis=(1, 2)) / safe).astype(np.float32),
            "light_lr": lr.astype(np.float32), "light_tb": tb.astype(np.float32),
            "sharpness": np.log10(lap.var(axis=(1, 2)) + 1e-8).astype(np.float32)}


def measure_attributes(images: np.ndarray, landmarks: bool = True, progress: bool = False,
                       batch: int = 512) -> dict[str, np.ndarray]:
    """All attributes of aligned faces as ``{name: float32 N}`` (see the module table).

    ``landmarks=False`` skips the 68-point landmarks (~2 ms an image) and returns the image attributes only.
    """
    images = _as_images(images)
    out: dict[str, list[np.ndarray]] = {}
    starts = range(0, len(images), batch)
    if progress:
        from tqdm import tqdm

        starts = tqdm(starts, desc="face attributes", unit="batch")
    for s in starts:
        chunk = images[s:s + batch]
        parts = image_attributes(chunk)
        if landmarks:
            parts.update(landmark_attributes(landmarks68(chunk)))
        for k, v in parts.items():
            out.setdefault(k, []).append(v)
    names = ATTRIBUTES if landmarks else IMAGE_ATTRIBUTES
    return {k: np.concatenate(out[k]) if out else np.zeros(0, np.float32) for k in names}


def detect_faces(images: np.ndarray, size: int = 224, progress: bool = False) -> np.ndarray:
    """Whether dlib's HOG frontal-face detector finds a face in each aligned face (bool N).

    The face is upscaled to ``size`` px first: on a 112-px aligned crop the face is smaller than the detector's
    80-px window. A face the detector misses is profile, occluded or not face-like enough for it, so the rate
    is a coarse realism check (real aligned CelebA faces: ≈ 98 %)."""
    from PIL import Image

    images = _as_images(images)
    det = _dlib_model("hog")
    out = np.zeros(len(images), bool)
    it: Sequence[int] = range(len(images))
    if progress:
        from tqdm import tqdm

        it = tqdm(it, desc="face detection (HOG)", unit="img")
    for i in it:
        im = np.asarray(Image.fromarray(images[i]).resize((size, size), Image.BILINEAR))
        out[i] = len(det(np.ascontiguousarray(im), 0)) > 0
    return out
