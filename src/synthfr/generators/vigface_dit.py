"""``vigface-dit``: VIGFace's stage-2 generator — a DiT rendering identity prototypes (``synthfr train-dit``).

Conditions are unit vectors of the embedder the weights were trained with (``dlib-torch`` for synthfr's runs),
e.g. the virtual prototypes ``RUN/stage1/virtual.npy`` of the same run, or any sampler's identities in that
space. The generator standardises them with the space saved beside the weights (the space the stage-1
classifier and the DiT work in), then runs DDIM (trailing timesteps, zero-terminal-SNR cosine schedule,
v-prediction) with classifier-free guidance and resizes the output to 112×112. Options
(``vigface-dit:steps=50,guidance=2``): ``steps``, ``guidance`` (``none`` = the conditioned model alone, no
unconditioned pass; 1 gives the same images up to rounding), ``guidance_rescale`` (Lin et al.'s φ), ``chunk``
(images per network pass; fixed-size chunks keep pixels independent of the batch). Models trained with landmarks take ``landmarks=x1,y1,...,
x5,y5`` (112-px coordinates; default the ArcFace template, a frontal face).

``test-vigface-dit`` is a tiny randomly initialised DiT (no weights) for tests and sweeps.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from synthfr.generators import REGISTRY
from synthfr.generators.base import Generator, require_weights, to_uint8_images

__all__ = ["VigFaceDiT", "TestVigFaceDiT"]

_HELP = ("Train them with `synthfr train-dit --config configs/vigface-cpu.yaml --out RUN` and export with "
         "`synthfr train-dit --out RUN --export-to DIR` (docs/generators.md, 'VIGFace DiT').")
_TEMPLATE = [38.2946, 51.6963, 73.5318, 51.5014, 56.0252, 71.7366, 41.5493, 92.3655, 70.7299, 92.2041]


def _opt_float(v: Any) -> float | None:
    return None if v is None or str(v).lower() in ("none", "") else float(v)


@REGISTRY.register("vigface-dit")
class VigFaceDiT(Generator):
    """VIGFace stage 2: a DiT (trained by synthfr train-dit) rendering prototype vectors; DDIM + CFG."""

    dim = 128
    embedder = "dlib-torch"
    batch_invariant = True  # fixed-size chunks (tested bit for bit)
    weights_help = _HELP
    _files = ("model.safetensors", "config.json", "space.space.json")

    def __init__(self, weights: str | Path | None = None, device: Any = "cpu", steps: int | None = None,
                 guidance: Any = "default", guidance_rescale: float | None = None, chunk: int = 8,
                 landmarks: Any = None, **kwargs: Any):
        super().__init__(weights=weights, device=device, **kwargs)
        require_weights(self.weights, self._files, generator=self.name, help=self.weights_help)
        self._setup(steps, guidance, guidance_rescale, chunk, landmarks)

    def _setup(self, steps, guidance, guidance_rescale, chunk, landmarks):
        self._steps, self._guidance, self._rescale = steps, guidance, guidance_rescale
        self.chunk = int(chunk)
        if self.chunk < 1:
            raise ValueError(f"{self.name}: chunk must be >= 1, got {chunk}")
        if landmarks is not None:
            vals = [float(x) for x in str(landmarks).replace("+", ",").split(",")] if isinstance(landmarks, str) \
                else [float(x) for x in np.asarray(landmarks).reshape(-1)]
            if len(vals) != 10:
                raise ValueError(f"{self.name}: landmarks needs 10 numbers (x1,y1,...,x5,y5), got {len(vals)}")
            landmarks = vals
        self._landmarks = landmarks
        self._loaded = None

    # -- model -----------------------------------------------------------------------------------------
    def _load(self):
        """(model, schedule, space, meta) read from the weights folder."""
        import torch
        from safetensors.torch import load_file

        from synthfr.genmodel.dit.model import DiT, DiTConfig
        from synthfr.genmodel.dit.schedule import NoiseSchedule
        from synthfr.spaces import EmbeddingSpace
        from synthfr.utils.io import read_json

        folder = require_weights(self.weights, self._files, generator=self.name, help=self.weights_help)
        meta = read_json(folder / "config.json")
        model = DiT(DiTConfig(**meta["model"]))
        sd = {k: v.float() for k, v in load_file(str(folder / "model.safetensors")).items()}
        model.load_state_dict(sd)
        return model, NoiseSchedule(**meta["schedule"]), EmbeddingSpace.load(folder / "space"), meta

    @property
    def loaded(self):
        if self._loaded is None:
            import torch

            with torch.inference_mode(False):
                model, sched, space, meta = self._load()
            model = model.to(self.device).eval().requires_grad_(False)
            if model.cfg.cond_dim != self.dim:
                self.dim = model.cfg.cond_dim
            self.embedder = meta.get("embedder", self.embedder)
            self._loaded = (model, sched, space, meta)
        return self._loaded

    @property
    def sampling(self) -> dict[str, Any]:
        """Steps, guidance and rescale in use (the weights' defaults unless given)."""
        d = dict(self.loaded[3].get("sampling", {}))
        g = d.get("guidance", 2.0) if self._guidance == "default" else _opt_float(self._guidance)
        return {"steps": int(self._steps or d.get("steps", 50)), "guidance": g,
                "guidance_rescale": float(self._rescale if self._rescale is not None else d.get("guidance_rescale", 0.0))}

    def options(self) -> dict[str, Any]:
        return {**self.sampling, "landmarks": self._landmarks}

    # -- generation ------------------------------------------------------------------------------------
    def generate_tensor(self, conditions: Any, seeds: Any):
        """Conditions (B×D, embedder space) + seeds -> B×3×112×112 float in [0, 1] (no gradients)."""
        import torch

        from synthfr.genmodel.dit.sample import render

        model, sched, space, _ = self.loaded
        c = conditions.detach().cpu().numpy() if hasattr(conditions, "detach") else np.asarray(conditions)
        protos = torch.from_numpy(space.to_standard(np.asarray(c, np.float32)))
        lm = None
        if model.cfg.landmarks:
            vals = self._landmarks or _TEMPLATE
            lm = (torch.tensor(vals, dtype=torch.float32) / 56.0 - 1.0).expand(len(protos), 10)
        s = self.sampling
        return render(model, sched, protos, [int(x) for x in np.asarray(seeds).reshape(-1)], steps=s["steps"],
                      guidance=s["guidance"], guidance_rescale=s["guidance_rescale"], landmarks=lm,
                      chunk=self.chunk, out_size=self.image_size)

    def _generate(self, conditions: np.ndarray, seeds: np.ndarray) -> np.ndarray:
        _ = self.loaded  # resolve dim before the checks
        return to_uint8_images(self.generate_tensor(conditions, seeds))


@REGISTRY.register("test-vigface-dit")
class TestVigFaceDiT(VigFaceDiT):
    """Tiny randomly initialised VIGFace DiT (16×16, 2 blocks; 32-D conditions), no weights: tests and sweeps."""

    dim = 32
    embedder = "test"
    needs_weights = False
    #: what its images inherit (the dataset card shows it)
    sources = {
        "datasets": [],
        "trained_on": "nothing: a randomly initialised test network (not faces)",
        "licences": "none inherited",
        "commercial": True,
    }

    def __init__(self, weights: str | Path | None = None, device: Any = "cpu", steps: int = 4, guidance: Any = 2.0,
                 guidance_rescale: float = 0.0, chunk: int = 4, seed: int = 0, landmarks: Any = None,
                 **kwargs: Any):
        Generator.__init__(self, weights=None, device=device, **kwargs)
        self.seed = int(seed)
        self._setup(steps, guidance, guidance_rescale, chunk, landmarks)

    @property
    def weights_sha256(self) -> str | None:
        return None

    def _load(self):
        import torch

        from synthfr.genmodel.dit.model import DIT_PRESETS, DiT, DiTConfig
        from synthfr.genmodel.dit.schedule import NoiseSchedule
        from synthfr.spaces import EmbeddingSpace

        torch.manual_seed(self.seed)
        model = DiT(DiTConfig(**DIT_PRESETS["test"], cond_dim=self.dim))
        with torch.no_grad():  # adaLN-Zero starts as the identity; perturb so the output depends on the input
            for p in model.parameters():
                p.add_(0.05 * torch.randn_like(p))
        return model, NoiseSchedule(), EmbeddingSpace.identity(self.dim), {"sampling": {}}
