"""Five facial landmarks from dlib's 68-point shape predictor.

The five points follow insightface's order and convention ("left" = on the image's left):

====  =============================  ==========================================
 #    point                          from the 68-point (iBUG 300-W) layout
====  =============================  ==========================================
 0    left eye centre                mean of points 36–41
 1    right eye centre               mean of points 42–47
 2    nose tip                       point 30
 3    left mouth corner              point 48
 4    right mouth corner             point 54
====  =============================  ==========================================
"""
from __future__ import annotations

from typing import Any

import numpy as np

from synthfr.face.detect import Box, FaceDetector, model_path, pick_face

__all__ = ["five_from_68", "LandmarkPredictor", "FaceLandmarker", "FIVE_POINT_NAMES"]

FIVE_POINT_NAMES = ("left_eye", "right_eye", "nose", "left_mouth", "right_mouth")


def five_from_68(points68: np.ndarray) -> np.ndarray:
    """The five alignment points (5×2, float64) from a 68×2 iBUG landmark array."""
    p = np.asarray(points68, dtype=np.float64)
    if p.shape != (68, 2):
        raise ValueError(f"expected 68×2 landmarks, got {p.shape}")
    return np.stack([p[36:42].mean(0), p[42:48].mean(0), p[30], p[48], p[54]])


class LandmarkPredictor:
    """dlib's 68-point shape predictor (``shape_predictor_68_face_landmarks.dat``)."""

    def __init__(self, path: str | None = None):
        import dlib

        self._sp = dlib.shape_predictor(path or model_path("pose68"))

    def predict68(self, image: np.ndarray, box: Box) -> np.ndarray:
        """68×2 landmark array (pixels) for the face in ``box``."""
        shape = self._sp(np.ascontiguousarray(image), box.to_dlib())
        return np.array([[shape.part(i).x, shape.part(i).y] for i in range(shape.num_parts)], dtype=np.float64)

    def predict5(self, image: np.ndarray, box: Box) -> np.ndarray:
        return five_from_68(self.predict68(image, box))


class FaceLandmarker:
    """Detector + landmark predictor: ``five_points(image) -> (5×2 or None, reason)``.

    Args:
        detector: ``hog``, ``cnn`` or ``hog+cnn`` (see :class:`synthfr.face.detect.FaceDetector`).
        upsample: detector upsampling (``None`` = automatic).
        pick: which face to keep when there are several (``largest``, ``central``, ``score``).
    """

    def __init__(self, detector: str = "hog", upsample: int | None = None, pick: str = "largest",
                 pad_retry: float = 0.5, pad_mode: str = "replicate"):
        self.detector = FaceDetector(detector, upsample)
        self.predictor = LandmarkPredictor()
        self.pick = pick
        self.pad_retry = float(pad_retry)
        self.pad_mode = pad_mode

    @classmethod
    def from_config(cls, cfg: Any) -> "FaceLandmarker":
        return cls(detector=cfg.detector, upsample=cfg.upsample, pick=cfg.pick,
                   pad_retry=getattr(cfg, "pad_retry", 0.5))

    def detect(self, image: np.ndarray) -> tuple[Box | None, int]:
        boxes = self.detector.detect(image)
        return pick_face(boxes, image.shape, self.pick), len(boxes)

    def _pad(self, image: np.ndarray) -> tuple[np.ndarray, int, int]:
        import cv2

        h, w = image.shape[:2]
        py, px = int(round(self.pad_retry * h)), int(round(self.pad_retry * w))
        if self.pad_mode == "replicate":
            out = cv2.copyMakeBorder(image, py, py, px, px, cv2.BORDER_REPLICATE)
        else:
            colour = [int(c) for c in image.reshape(-1, 3).mean(0)]
            out = cv2.copyMakeBorder(image, py, py, px, px, cv2.BORDER_CONSTANT, value=colour)
        return out, px, py

    def landmarks68(self, image: np.ndarray) -> tuple[np.ndarray | None, str]:
        """68 landmarks of the chosen face. When nothing is found and ``pad_retry`` > 0, the image is padded
        by that fraction on every side (edge pixels repeated) and searched again: HOG needs some context
        around a face, which tightly cropped faces (e.g. UTKFace's) lack."""
        box, n = self.detect(image)
        if box is not None:
            return self.predictor.predict68(image, box), "ok" if n == 1 else f"ok ({n} faces, kept the {self.pick})"
        if self.pad_retry > 0:
            padded, px, py = self._pad(image)
            box, n = self.detect(padded)
            if box is not None:
                pts = self.predictor.predict68(padded, box) - np.array([px, py], dtype=np.float64)
                return pts, "ok (found after padding)" if n == 1 else f"ok (after padding, {n} faces)"
        return None, "no face detected"

    def five_points(self, image: np.ndarray) -> tuple[np.ndarray | None, str]:
        """Five landmarks (left eye, right eye, nose, left/right mouth corner) of the chosen face."""
        p68, reason = self.landmarks68(image)
        if p68 is None:
            return None, reason
        return five_from_68(p68), reason
