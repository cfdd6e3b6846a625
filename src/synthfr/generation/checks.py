"""Checks on rendered images before they are kept: the identity filter and the landmark alignment check.

The identity filter embeds every image and compares it with its identity vector (cosine ≥
``filter_min_sim``); the alignment check finds five landmarks and compares them with the ArcFace template
(mean distance ≤ ``align_check`` pixels). An image that fails either is regenerated with the next attempt's
seed; :attr:`Verdict.score` ranks the failed attempts so the best one is kept when attempts run out.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["LandmarkAlignmentCheck", "Verdict", "ImageChecks", "resolve_filter_embedder"]


class LandmarkAlignmentCheck:
    """Mean distance (pixels) between the five landmarks found on a 112×112 image and the ArcFace template."""

    def __init__(self, detector: str = "hog"):
        from synthfr.face.align import AlignConfig, template
        from synthfr.face.landmarks import FaceLandmarker

        self.landmarker = FaceLandmarker.from_config(AlignConfig(size=112, detector=detector))
        self.template = template(112)

    def errors(self, images: np.ndarray) -> np.ndarray:
        out = np.full(len(images), np.inf)
        for j, img in enumerate(images):
            five, _ = self.landmarker.five_points(np.ascontiguousarray(img))
            if five is not None:
                out[j] = float(np.linalg.norm(np.asarray(five) - self.template, axis=1).mean())
        return out


def resolve_filter_embedder(spec: str | None, gen: Any, dim: int, device: Any) -> Any:
    """The filter's embedder from ``NAME[:key=value,...]`` (default: the one the generator declares)."""
    from synthfr.face.embedders import refuse_judge
    from synthfr.registry import create_from_spec

    spec = spec or getattr(gen, "embedder_spec", None)
    if not spec:
        raise ValueError("the identity filter needs an embedder in the identities' space: pass --embedder "
                         "NAME[:key=value,...] (`synthfr list embedders`)")
    # a filter that keeps the images a judge accepts would bias every later figure that judge gives
    refuse_judge(spec, "the identity filter of synthfr generate")
    return create_from_spec("embedder", spec, offer={"device": device, "dim": dim})


@dataclass
class Verdict:
    """What the checks say about one rendered image."""

    similarity: float | None = None
    """Cosine to the identity vector (identity filter only)."""
    align_error: float | None = None
    """Mean landmark distance in pixels, rounded to 4 places (alignment check only; None: no face found)."""
    fail_sim: bool = False
    fail_align: bool = False
    checked_align: bool = False

    @property
    def passed(self) -> bool:
        return not (self.fail_sim or self.fail_align)

    @property
    def score(self) -> float:
        """Higher is better: the similarity, minus the alignment error as a fraction of the image (a missing
        face is worst)."""
        s = self.similarity if self.similarity is not None else 0.0
        if not self.checked_align:
            return s
        return s - (1e6 if self.align_error is None else self.align_error / 112.0)


class ImageChecks:
    """The identity filter and/or the alignment check of one run (``active`` is false when neither is on)."""

    def __init__(self, identities: np.ndarray, *, min_sim: float | None = None, embedder: Any = None,
                 align_max: float | None = None, aligner: Any = None):
        self.identities = identities
        self.min_sim, self.embedder = min_sim, embedder
        self.align_max, self.aligner = align_max, aligner if align_max is not None else None
        self.active = min_sim is not None or self.aligner is not None

    def __call__(self, images: np.ndarray, rows: list[int]) -> list[Verdict]:
        sims = aerr = None
        if self.min_sim is not None:
            emb = np.asarray(self.embedder.embed(images), dtype=np.float32)
            ref = self.identities[rows]
            ref = ref / np.maximum(np.linalg.norm(ref, axis=1, keepdims=True), 1e-12)
            sims = (emb * ref).sum(axis=1)
        if self.aligner is not None:
            aerr = np.asarray(self.aligner.errors(images), dtype=np.float64)
        out = []
        for j in range(len(images)):
            sim = None if sims is None else float(sims[j])
            ae = None if aerr is None or not np.isfinite(aerr[j]) else round(float(aerr[j]), 4)
            out.append(Verdict(sim, ae, fail_sim=sim is not None and sim < self.min_sim,
                               fail_align=aerr is not None and (ae is None or ae > self.align_max),
                               checked_align=aerr is not None))
        return out
