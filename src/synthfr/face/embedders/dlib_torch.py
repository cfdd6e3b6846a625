"""``dlib-torch``: dlib's face-recognition ResNet ported to PyTorch (weights read from dlib's ``.dat``)."""
from __future__ import annotations

from typing import Any

from synthfr.face.embedders import REGISTRY

__all__ = ["dlib_torch"]


@REGISTRY.register("dlib-torch")
def dlib_torch(device: str | None = "auto", weights: str | None = None, fold_affine: bool = True,
               **kwargs: Any):
    """dlib's ResNet in PyTorch: batched, CPU/GPU, differentiable (forward takes N×3×112×112 in [0, 1])."""
    from synthfr.face.dlib_resnet import DlibTorchEmbedder

    return DlibTorchEmbedder(device=device, weights=weights, fold_affine=fold_affine, **kwargs)
