"""Face embedders (registry kind ``embedder``).

Contract (every embedder):
    ``embed(images) -> np.ndarray``: ``images`` is a uint8 array ``N×112×112×3`` of RGB faces aligned to the
    ArcFace five-point template (:mod:`synthfr.face.align`); the result is float32 ``N×D``, L2-normalised.
    ``dim`` (D) and ``name`` attributes.
Differentiable embedders (``differentiable = True``) are also ``torch.nn.Module``s whose ``forward`` takes a
float tensor ``N×3×112×112`` with values in **[0, 1]** (RGB) and returns unit vectors with gradients. This
[0, 1] convention is the one place the input range is defined; generators and losses convert to it.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from synthfr.registry import Registry

REGISTRY = Registry("embedder", package=__name__)

__all__ = ["REGISTRY", "Embedder", "create_embedder", "list_embedders"]


class Embedder:
    """Base class: subclasses set ``name``/``dim`` and implement :meth:`embed`."""

    name: str = "base"
    dim: int = 0
    differentiable: bool = False

    def embed(self, images: np.ndarray, batch_size: int = 64) -> np.ndarray:  # pragma: no cover - interface
        raise NotImplementedError

    @staticmethod
    def check_images(images: Any) -> np.ndarray:
        """Validate the aligned-face batch contract and return a contiguous uint8 array."""
        arr = np.asarray(images)
        if arr.ndim == 3:
            arr = arr[None]
        if arr.ndim != 4 or arr.shape[-1] != 3 or arr.shape[1:3] != (112, 112):
            raise ValueError(
                f"embedders take aligned RGB faces of shape N×112×112×3, got {arr.shape}; align images first "
                "with synthfr.face.align (or `synthfr align`)"
            )
        if arr.dtype != np.uint8:
            raise ValueError(f"embedders take uint8 images, got {arr.dtype}")
        return np.ascontiguousarray(arr)


def create_embedder(name: str, **kwargs: Any) -> Embedder:
    """Create a registered embedder, e.g. ``create_embedder("dlib-torch", device="cuda")``."""
    return REGISTRY.create(name, **kwargs)


def list_embedders(pattern: str = "*") -> list[str]:
    return REGISTRY.list(pattern)
