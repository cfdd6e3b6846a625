"""Face embedders (registry kind ``embedder``).

Contract (every embedder):
    ``embed(images) -> np.ndarray``: ``images`` is a uint8 array ``N×112×112×3`` of RGB faces aligned to the
    ArcFace five-point template (:mod:`synthfr.face.align`); the result is float32 ``N×D``, L2-normalised.
    ``dim`` (D) and ``name`` attributes.
Differentiable embedders (``differentiable = True``) are also ``torch.nn.Module``s whose ``forward`` takes a
float tensor ``N×3×112×112`` with values in **[0, 1]** (RGB) and returns unit vectors with gradients. This
[0, 1] convention is the one place the input range is defined; generators and losses convert to it.

Judges (``judge = True``, e.g. ``sface``) are embedders that only measure: they never enter a training loss,
a generator's identity loss, AttrOP or a sampler. Code that trains or steers on an embedder calls
:func:`refuse_judge` first.

An embedder spec may carry options: ``"sface:path=/models/sface.onnx"`` (see :func:`parse_embedder_spec`).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from synthfr.registry import Registry, create_from_spec

REGISTRY = Registry("embedder", package=__name__)

__all__ = ["REGISTRY", "Embedder", "create_embedder", "list_embedders", "parse_embedder_spec", "refuse_judge"]


class Embedder:
    """Base class: subclasses set ``name``/``dim`` and implement :meth:`embed`."""

    name: str = "base"
    dim: int = 0
    differentiable: bool = False
    judge: bool = False

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


def parse_embedder_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """``"name:key=value,key2=value2"`` -> ``("name", {key: value})`` (values YAML-typed, as generator specs)."""
    from synthfr.registry import parse_spec

    name, opts = parse_spec(spec)
    return name or "", opts


def create_embedder(name: str, **kwargs: Any) -> Embedder:
    """Create a registered embedder, e.g. ``create_embedder("dlib-torch", device="cuda")`` or
    ``create_embedder("sface:path=sface.onnx")`` (spec options; explicit keyword arguments win)."""
    return create_from_spec("embedder", name, **kwargs)


def refuse_judge(embedder: Any, where: str) -> None:
    """Raise if ``embedder`` (an object or a name/spec) is a judge network: judges never train or steer."""
    if isinstance(embedder, str):
        name = parse_embedder_spec(embedder)[0]
        obj = REGISTRY.get(name) if name in REGISTRY else None
        judge = bool(getattr(obj, "judge", False))
    else:
        name, judge = getattr(embedder, "name", type(embedder).__name__), bool(getattr(embedder, "judge", False))
    if judge:
        raise ValueError(f"{where} cannot use embedder {name!r}: it is a judge (it never enters a loss, a gradient, "
                         "AttrOP or a sampler); use dlib-torch")


def list_embedders(pattern: str = "*") -> list[str]:
    return REGISTRY.list(pattern)
