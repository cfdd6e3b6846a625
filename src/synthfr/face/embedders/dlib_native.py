"""``dlib``: dlib's own face-recognition ResNet (``face_recognition_model_v1``), the reference embedder."""
from __future__ import annotations

import numpy as np

from synthfr.face.embedders import REGISTRY, Embedder

__all__ = ["DlibEmbedder", "aligned_to_dlib_chips"]


def aligned_to_dlib_chips(images: np.ndarray) -> np.ndarray:
    """uint8 ``N×150×150×3`` dlib chips from uint8 ArcFace-aligned ``N×112×112×3`` faces (the fixed warp of
    :mod:`synthfr.face.chip`, bilinear, rounded to uint8)."""
    import torch

    from synthfr.face.chip import aligned_to_chips

    with torch.inference_mode():
        x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).double()
        chips = aligned_to_chips(x)
    return np.ascontiguousarray(chips.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy())


@REGISTRY.register("dlib")
class DlibEmbedder(Embedder):
    """dlib's face-recognition ResNet via dlib itself (128-D; the reference for dlib-torch)."""

    name = "dlib"
    dim = 128
    differentiable = False

    def __init__(self, weights: str | None = None):
        import dlib

        from synthfr.face.detect import model_path

        self.model = dlib.face_recognition_model_v1(weights or model_path("resnet"))

    def descriptors_from_chips(self, chips: np.ndarray, batch_size: int = 64) -> np.ndarray:
        """Raw dlib descriptors (not normalised) of uint8 ``N×150×150×3`` chips."""
        out = []
        for i in range(0, len(chips), batch_size):
            batch = [np.ascontiguousarray(c) for c in chips[i:i + batch_size]]
            out.extend(np.asarray(d, dtype=np.float64) for d in self.model.compute_face_descriptor(batch))
        return np.asarray(out, dtype=np.float64).reshape(len(chips), self.dim)

    def embed(self, images: np.ndarray, batch_size: int = 64) -> np.ndarray:
        arr = self.check_images(images)
        out = np.empty((len(arr), self.dim), dtype=np.float32)
        for i in range(0, len(arr), batch_size):
            d = self.descriptors_from_chips(aligned_to_dlib_chips(arr[i:i + batch_size]), batch_size)
            out[i:i + len(d)] = d / np.linalg.norm(d, axis=1, keepdims=True)
        return out
