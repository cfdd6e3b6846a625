"""The ``none`` variation: every image's condition is the identity vector itself."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from synthfr.variations import REGISTRY
from synthfr.variations._base import Variation


@dataclass
class NoneConfig:
    """No options: variety comes from the generator's own noise (its per-image seed)."""


@REGISTRY.register("none")
class NoVariation(Variation):
    """The identity vector itself for every image (variety from the generator's per-image noise)."""

    Config = NoneConfig

    def _image(self, x: np.ndarray, i: int, k: int, rng: np.random.Generator):
        return x[i], {}, None
