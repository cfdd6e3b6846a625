"""``synthfr-small``: the built-in, CPU-fast embedding-to-face generator trained by synthfr itself.

A Vec2Face-style feature masked autoencoder (see :mod:`synthfr.genmodel.model`) conditioned on unit
``dlib-torch`` vectors (128-D). Its weights ship inside the package (``synthfr/weights/synthfr-small``:
``model.safetensors`` + ``config.json`` + ``MODEL_CARD.md``), so it works offline out of the box; another
folder (a newer export) can be passed with ``weights=DIR``. Read the model card for what it can and cannot do.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from synthfr.generators import REGISTRY
from synthfr.generators.base import Generator, condition_batch, require_weights, to_uint8_images

__all__ = ["SynthfrSmall"]

_HELP = ("The built-in weights are produced by `synthfr train-generator --data ALIGNED... --out RUN` followed "
         "by `synthfr train-generator --out RUN --export-to DIR` (see docs/model_card.md); a synthfr "
         "installation normally ships them in synthfr/weights/synthfr-small.")


@REGISTRY.register("synthfr-small")
class SynthfrSmall(Generator):
    """Built-in Vec2Face-style generator (dlib-torch space, 128-D), trained here, ships with the package; CPU-fast."""

    dim = 128
    embedder = "dlib-torch"
    differentiable = True
    batch_invariant = True  # fixed internal chunks: pixels never depend on the batch (tested)
    weights_help = _HELP
    #: what its images inherit (the dataset card shows it)
    sources = {
        "datasets": ["CelebA", "UTKFace"],
        "trained_on": "CelebA (about 300 identities, 6,047 aligned faces) and UTKFace (9,692 aligned faces), "
                      "trained by synthfr (see synthfr/weights/synthfr-small/MODEL_CARD.md)",
        "licences": "CelebA: non-commercial research purposes only; UTKFace: non-commercial research purposes only",
        "commercial": False,
    }
    needs_weights = False  # the weights ship inside the package
    #: folder name of the shipped weights inside synthfr/weights
    weights_name = "synthfr-small"

    @classmethod
    def default_weights(cls) -> Path:
        from synthfr.genmodel.export import default_weights_dir

        return default_weights_dir(cls.weights_name)

    def __init__(self, weights: str | Path | None = None, device: Any = "cpu", z_scale: float | None = None,
                 id_gain: float | None = None, **kwargs: Any):
        """``z_scale`` scales the style noise (0 = one fixed look per identity; ``None`` takes the value recorded
        with the weights, ``config.json`` ``z_scale``, 1.0 when absent). ``id_gain`` extrapolates each
        condition away from the mean training embedding before generating, ``normalize(μ + g·(c − μ))``: the
        decoder shrinks identities towards the average face, so g > 1 pre-compensates (cross-identity
        separation 92 % → 97 % at g = 1.5 for the shipped weights, see the model card). ``None`` takes the value
        recorded with the weights (``config.json`` ``id_gain``; 1.0 when absent)."""
        default = weights is None
        folder = Path(weights).expanduser() if weights is not None else type(self).default_weights()
        super().__init__(weights=folder, device=device, **kwargs)
        name, hlp = type(self).weights_name, type(self).weights_help
        if default and not (folder / "model.safetensors").is_file():
            raise FileNotFoundError(
                f"the built-in generator {name!r} has no trained weights in this installation "
                f"({folder / 'model.safetensors'} is missing). {hlp}")
        require_weights(folder, ["model.safetensors", "config.json", *getattr(type(self), "extra_files", ())],
                        generator=name, help=hlp)
        if z_scale is not None and not float(z_scale) >= 0:
            raise ValueError(f"{type(self).weights_name}: z_scale must be >= 0, got {z_scale}")
        self._z_scale = None if z_scale is None else float(z_scale)
        if id_gain is not None and not float(id_gain) > 0:
            raise ValueError(f"{type(self).weights_name}: id_gain must be > 0, got {id_gain}")
        self._id_gain = None if id_gain is None else float(id_gain)
        self._model = None
        self._meta: dict[str, Any] | None = None

    # -- model -------------------------------------------------------------------------------------------
    @property
    def model(self):
        """The :class:`~synthfr.genmodel.model.FaceGenerator` (loaded on first use, frozen, eval mode)."""
        if self._model is None:
            import torch

            from synthfr.genmodel.export import load_generator_folder

            with torch.inference_mode(False):
                m, meta = load_generator_folder(self.weights, self.device)
            if int(meta.get("dim", m.cfg.cond_dim)) != self.dim:
                raise ValueError(f"{self.weights}: weights take {meta.get('dim')}-D vectors, synthfr-small 128-D")
                if self.device.type == "cpu":
                    m = m.to(memory_format=torch.channels_last)  # ~1.7× faster convolutions on CPU
            self._model, self._meta = m, meta
        return self._model

    @property
    def meta(self) -> dict[str, Any]:
        _ = self.model
        return dict(self._meta or {})

    @property
    def id_gain(self) -> float:
        """The identity gain in use (the weights' recorded value unless one was given)."""
        if self._id_gain is None:
            self._id_gain = float(self.meta.get("id_gain", 1.0))
        return self._id_gain

    @property
    def z_scale(self) -> float:
        """The style-noise scale in use (the weights' recorded value unless one was given)."""
        if self._z_scale is None:
            self._z_scale = float(self.meta.get("z_scale", 1.0))
        return self._z_scale

    def options(self) -> dict[str, Any]:
        return {"z_scale": self.z_scale, "id_gain": self.id_gain}

    # -- generation -----------------------------------------------------------------------------------------
    def generate_tensor(self, conditions: Any, seeds: Any):
        """Conditions (B×128, may require grad) + seeds -> B×3×112×112 float in [0, 1], differentiable."""
        import torch

        conditions, s = condition_batch(conditions, seeds, self.dim)
        m = self.model
        c = conditions.to(self.device, torch.float32)
        if self.id_gain != 1.0:
            c = torch.nn.functional.normalize(m.cond_mean + self.id_gain * (c - m.cond_mean), dim=1)
        return m.generate_tensor(c, s.tolist(), z_scale=self.z_scale)

    def _generate(self, conditions: np.ndarray, seeds: np.ndarray) -> np.ndarray:
        import torch

        with torch.no_grad():  # not inference_mode: the lazily loaded weights must stay usable with autograd
            return to_uint8_images(self.generate_tensor(torch.from_numpy(conditions), seeds))
