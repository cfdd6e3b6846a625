"""Embedders built on synthfr's backbones (registry kind ``embedder``; their code lives with the models).

``face`` sits below ``models`` on the journey, so the embedder registry finds this module through
:data:`synthfr.registry.PROVIDERS` and ``create_embedder("checkpoint", path=RUN)`` works like any embedder.

``checkpoint``: the backbone of a synthfr training run (``RUN/config.json`` + ``RUN/model.safetensors``), used by
``synthfr eval --checkpoint RUN``. As a differentiable embedder (``forward``) it takes a float tensor
``N×3×112×112`` in [0, 1] and maps it to the backbone's range ``(x - 0.5) / 0.5`` itself.

``arcface-r100-glint360k``: insightface's iResNet-100 trained on Glint360K — the space of the Vec2Face generator.

Vec2Face was trained on (un-normalised) features of this network and releases it beside its generator
(``weights/arcface-r100-glint360k.pth`` in the ``BooBooWu/Vec2Face`` download, docs/generators.md). Pass the
Vec2Face weights folder (or the file) as ``weights``. The file is a plain ``torch.save``d state dict of
insightface's ``iresnet100``; it is read with ``torch.load(weights_only=True)`` (no code runs) into synthfr's
:class:`~synthfr.models.backbones.iresnet.IResNet`, whose module names are insightface's. The stage depths, widths,
embedding size and input side are read from the tensors' shapes, so a tiny test network saved the same way loads
too. A ``.safetensors`` file with the same keys is accepted as well.

Contract: ``embed(uint8 N×112×112×3 aligned RGB) -> float32 N×512`` unit rows; differentiable ``forward`` on
float ``N×3×112×112`` in [0, 1] (mapped to insightface's ``(x − 0.5) / 0.5`` here); ``descriptors`` returns the
raw (un-normalised) features, whose norm AttrOP uses as its quality proxy.

Both follow the embedder contract (uint8 ``N×112×112×3`` aligned RGB in, L2-normalised float32 ``N×D`` out).
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from synthfr.face.embedders import REGISTRY, Embedder
from synthfr.models.backbones import create_backbone
from synthfr.models.backbones.iresnet import IResNet

__all__ = ["CheckpointEmbedder", "find_run_files", "ArcFaceR100", "find_arcface_weights", "iresnet_from_state_dict"]


def find_run_files(path: str | Path) -> tuple[Path, Path]:
    """``(config.json, model.safetensors)`` of a run dir, a ``checkpoints/step_*`` folder or a safetensors file."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"checkpoint {p} not found: pass a run directory written by `synthfr train`")
    weights = p if p.is_file() else p / "model.safetensors"
    if not weights.is_file():
        raise FileNotFoundError(f"{p} has no model.safetensors: is the run finished? (a resumable checkpoint "
                                f"is RUN/checkpoints/step_*/)")
    for d in [weights.parent, *weights.parents][:4]:
        if (d / "config.json").is_file():
            return d / "config.json", weights
    raise FileNotFoundError(f"no config.json found above {weights}: it records which backbone the weights are for")


def _freeze(model: torch.nn.Module, device: str | None, memory_format: str) -> tuple[torch.device, torch.memory_format]:
    """``model`` frozen for inference on the resolved device, in the layout ``memory_format`` resolves to there;
    returns ``(device, layout)`` (the layout the inputs are put in before the network)."""
    from synthfr.utils.device import freeze_for_inference

    dev, nhwc = freeze_for_inference(model, device, memory_format)
    return dev, torch.channels_last if nhwc else torch.contiguous_format


@REGISTRY.register("checkpoint")
class CheckpointEmbedder(torch.nn.Module, Embedder):
    """A backbone trained by ``synthfr train`` (pass ``path=RUN_DIR``); differentiable.

    ``memory_format``: ``auto`` (NHWC on CPU, NCHW elsewhere), ``channels_last`` or ``contiguous``; the
    embeddings agree to float rounding whichever layout runs.
    """

    differentiable = True

    def __init__(self, path: str | Path, device: str | None = "auto", flip: bool = False,
                 memory_format: str = "auto"):
        super().__init__()
        from safetensors.torch import load_file

        cfg_path, weights = find_run_files(path)
        meta: dict[str, Any] = json.loads(cfg_path.read_text())
        self.model = create_backbone(meta["backbone"], **meta.get("backbone_kwargs", {}))
        self.model.load_state_dict(load_file(str(weights)))
        # NHWC on CPU under "auto" (as `synthfr train` trains): ~1.25x faster LFW evaluation, same maths
        self.device, self.fmt = _freeze(self.model, device, memory_format)
        self.input_size = int(meta.get("input", {}).get("size", 112))
        self.dim = int(meta.get("embedding_size", getattr(self.model, "embedding_size", 512)))
        self.name = f"checkpoint:{Path(path).name}"
        self.flip = bool(flip)
        self.meta = meta

    def train(self, mode: bool = True):
        """The backbone always stays in eval mode (BatchNorm running statistics)."""
        super().train(mode)
        self.model.eval()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``N×3×112×112`` float in [0, 1] -> unit ``N×D`` (differentiable w.r.t. ``x``)."""
        x = (x - 0.5) / 0.5
        if x.shape[-1] != self.input_size:
            x = F.interpolate(x, size=(self.input_size, self.input_size), mode="bilinear", align_corners=False,
                              antialias=True)
        return F.normalize(self.model(x.contiguous(memory_format=self.fmt)).float(), dim=1)

    def embed(self, images: np.ndarray, batch_size: int = 64) -> np.ndarray:
        arr = self.check_images(images)
        out = []
        with torch.no_grad():
            for s in range(0, len(arr), batch_size):
                x = torch.from_numpy(arr[s:s + batch_size]).to(self.device).permute(0, 3, 1, 2).float() / 255.0
                e = self.forward(x)
                if self.flip:
                    e = e + self.forward(x.flip(-1))
                out.append(F.normalize(e, dim=1).cpu().numpy().astype(np.float32))
        return np.concatenate(out) if out else np.zeros((0, self.dim), np.float32)


# ---------------------------------------------------------------------------------------------------------
# arcface-r100-glint360k
# ---------------------------------------------------------------------------------------------------------
FILE = "arcface-r100-glint360k.pth"


def find_arcface_weights(weights: str | Path | None) -> Path:
    """The weights file: ``weights`` itself, or ``FILE`` (or ``model.safetensors``) in it or in its ``weights/``."""
    if weights is None:
        raise ValueError("embedder arcface-r100-glint360k needs weights=DIR: the Vec2Face weights folder holding "
                         f"weights/{FILE} (docs/generators.md, 'vec2face')")
    p = Path(weights).expanduser()
    if p.is_file():
        return p
    for cand in (p / FILE, p / "weights" / FILE, p / "model.safetensors"):
        if cand.is_file():
            return cand
    raise FileNotFoundError(f"{p} has no {FILE} (nor weights/{FILE}): download the Vec2Face weights "
                            "(`hf download BooBooWu/Vec2Face ...`, docs/generators.md) and pass that folder")


def iresnet_from_state_dict(sd: dict[str, torch.Tensor]) -> torch.nn.Module:
    """An :class:`IResNet` shaped like the (insightface-named) state dict ``sd``, with its weights loaded."""
    try:
        layers = [1 + max(int(m.group(1)) for k in sd if (m := re.match(rf"layer{s}\.(\d+)\.", k)))
                  for s in range(1, 5)]
        widths = [int(sd[f"layer{s}.0.conv1.weight"].shape[0]) for s in range(1, 5)]
        emb, flat = (int(v) for v in sd["fc.weight"].shape)
    except (KeyError, ValueError) as e:
        raise ValueError(f"not an insightface iResNet state dict (missing {e}); expected keys conv1, layer1..4, "
                         "fc, features") from None
    side = int(round((flat / widths[-1]) ** 0.5)) * 16
    net = IResNet(layers, embedding_size=emb, widths=widths, input_size=side)
    net.load_state_dict(sd, strict=True)
    net.input_side = side
    return net


@REGISTRY.register("arcface-r100-glint360k")
class ArcFaceR100(torch.nn.Module, Embedder):
    """ArcFace iResNet-100 (Glint360K) released with Vec2Face (``weights=VEC2FACE_DIR``); differentiable.

    ``memory_format`` as for ``checkpoint``: ``auto`` runs NHWC on CPU, NCHW elsewhere."""

    differentiable = True

    def __init__(self, weights: str | Path | None = None, device: str | None = "auto", flip: bool = False,
                 memory_format: str = "auto"):
        super().__init__()
        path = find_arcface_weights(weights)
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            sd: Any = load_file(str(path))
        else:
            sd = torch.load(str(path), map_location="cpu", weights_only=True)
        if isinstance(sd, dict) and "state_dict" in sd and isinstance(sd["state_dict"], dict):
            sd = sd["state_dict"]
        sd = {k[7:] if k.startswith("module.") else k: v for k, v in sd.items()}
        self.model = iresnet_from_state_dict(sd)
        self.device, self.fmt = _freeze(self.model, device, memory_format)
        self.dim = int(self.model.embedding_size)
        self.input_size = int(getattr(self.model, "input_side", 112))
        self.name = "arcface-r100-glint360k"
        self.flip = bool(flip)
        self.weights_path = str(path)

    def train(self, mode: bool = True):
        """The network always stays in eval mode (BatchNorm running statistics)."""
        super().train(mode)
        self.model.eval()
        return self

    def descriptors(self, x: torch.Tensor) -> torch.Tensor:
        """Raw (un-normalised) features of ``N×3×H×W`` floats in [0, 1] (differentiable)."""
        x = (x.to(self.device) - 0.5) / 0.5
        side = self.input_size
        if x.shape[-1] != side:
            x = F.interpolate(x, size=(side, side), mode="bilinear", align_corners=False, antialias=True)
        return self.model(x.contiguous(memory_format=self.fmt)).float()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``N×3×112×112`` float in [0, 1] -> unit ``N×D`` (differentiable w.r.t. ``x``)."""
        return F.normalize(self.descriptors(x), dim=1)

    @torch.no_grad()
    def embed(self, images: np.ndarray, batch_size: int = 64) -> np.ndarray:
        arr = self.check_images(images)
        out = []
        for a in range(0, len(arr), batch_size):
            x = torch.from_numpy(arr[a:a + batch_size]).permute(0, 3, 1, 2).float().div(255.0)
            f = self.descriptors(x)
            if self.flip:
                f = f + self.descriptors(torch.flip(x, dims=[3]))
            out.append(F.normalize(f, dim=1).cpu().numpy())
        if not out:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.concatenate(out).astype(np.float32)
