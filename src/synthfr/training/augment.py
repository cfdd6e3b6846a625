"""Per-sample augmentations on tensors (no torchvision): flip, random erasing, rescale, colour jitter, motion blur,
AdaFace's crop.

:class:`Augment` maps a float ``3×H×W`` image in [0, 1] and a ``numpy.random.Generator`` to an augmented image
in [0, 1]; each augmentation fires with its own probability (:class:`~synthfr.training.config.AugmentConfig`).
Randomness comes only from the generator, which the dataset seeds per ``(seed, epoch, sample)``, so results do
not depend on worker count, batch layout or resuming.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from synthfr.training.config import AugmentConfig

__all__ = ["Augment", "normalise", "motion_blur_kernel", "CV2_INTERPS"]

_INTERPS = ("nearest", "bilinear", "bicubic", "area")


def normalise(x: torch.Tensor) -> torch.Tensor:
    """[0, 1] -> the backbones' input range [-1, 1] (``(x - 0.5) / 0.5``)."""
    return (x - 0.5) / 0.5


def motion_blur_kernel(size: int, angle: float) -> torch.Tensor:
    """A normalised ``size×size`` line kernel through the centre at ``angle`` radians."""
    k = torch.zeros(size, size)
    c = (size - 1) / 2.0
    n = 4 * size
    for t in np.linspace(-c, c, n):
        x = int(round(c + t * math.cos(angle)))
        y = int(round(c + t * math.sin(angle)))
        k[y, x] = 1.0
    return k / k.sum()


#: OpenCV interpolations of ``rescale_interpolations`` (names -> cv2 flags, resolved lazily)
CV2_INTERPS = ("nearest", "bilinear", "bicubic", "area", "lanczos")


def _cv2_rescale(img: torch.Tensor, small: int, names: list, rng: np.random.Generator) -> torch.Tensor:
    """Shrink ``img`` (3×H×W in [0, 1]) to ``small`` and back, each way with an OpenCV interpolation drawn from
    ``names`` (AdaFace's low-resolution augmentation)."""
    import cv2

    flags = {"nearest": cv2.INTER_NEAREST, "bilinear": cv2.INTER_LINEAR, "bicubic": cv2.INTER_CUBIC,
             "area": cv2.INTER_AREA, "lanczos": cv2.INTER_LANCZOS4}
    bad = [n for n in names if n not in flags]
    if bad:
        raise ValueError(f"unknown rescale interpolation(s) {bad}; use {', '.join(CV2_INTERPS)}")
    down, up = flags[names[rng.integers(len(names))]], flags[names[rng.integers(len(names))]]
    h, w = img.shape[-2:]
    a = img.permute(1, 2, 0).numpy().astype(np.float32)
    a = cv2.resize(cv2.resize(a, (small, small), interpolation=down), (w, h), interpolation=up)
    return torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1).to(img.dtype)


def _interp(x: torch.Tensor, size: int, mode: str) -> torch.Tensor:
    kw = {"align_corners": False} if mode in ("bilinear", "bicubic") else {}
    return F.interpolate(x, size=(size, size), mode=mode, **kw)


class Augment:
    """Apply the augmentations of ``cfg`` to one image (``3×H×W`` float in [0, 1])."""

    def __init__(self, cfg: AugmentConfig | None = None):
        self.cfg = cfg or AugmentConfig()

    @property
    def active(self) -> bool:
        c = self.cfg
        return any(p > 0 for p in (c.flip, c.erase, c.rescale, c.jitter, c.blur, c.crop))

    def __call__(self, img: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        c = self.cfg
        # draw every decision up front so the number of draws is fixed
        u = rng.random(5)
        if c.crop > 0 and rng.random() < c.crop:  # drawn only when enabled: older runs keep their streams
            img = self.crop(img, rng)
        if u[0] < c.flip:
            img = img.flip(-1)
        if u[1] < c.rescale:
            img = self.rescale(img, rng)
        if u[2] < c.jitter:
            img = self.jitter(img, rng)
        if u[3] < c.blur:
            img = self.motion_blur(img, rng)
        if u[4] < c.erase:
            img = self.erase(img, rng)
        return img.clamp_(0.0, 1.0)

    # -- individual augmentations -----------------------------------------------------------------------
    def rescale(self, img: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        h = img.shape[-1]
        s = rng.uniform(self.cfg.rescale_min, 1.0)
        if self.cfg.rescale_interpolations:  # AdaFace's low-resolution augmentation
            return _cv2_rescale(img, max(1, int(s * h)), self.cfg.rescale_interpolations, rng)
        small = max(4, int(round(h * s)))
        down, up = _INTERPS[rng.integers(4)], _INTERPS[rng.integers(3)]  # "area" is not an upsampler
        x = _interp(img[None], small, down)
        return _interp(x, h, up)[0]

    def crop(self, img: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        """AdaFace's crop augmentation: keep a ``RandomResizedCrop`` box in place, black elsewhere."""
        _, h, w = img.shape
        area = h * w
        for _ in range(10):  # torchvision's RandomResizedCrop.get_params, scale (crop_area, 1), ratio (3/4, 4/3)
            target = area * rng.uniform(self.cfg.crop_area, 1.0)
            ratio = math.exp(rng.uniform(math.log(3 / 4), math.log(4 / 3)))
            cw, ch = int(round(math.sqrt(target * ratio))), int(round(math.sqrt(target / ratio)))
            if 0 < cw <= w and 0 < ch <= h:
                y, x = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
                break
        else:
            return img
        out = torch.zeros_like(img)
        out[:, y:y + ch, x:x + cw] = img[:, y:y + ch, x:x + cw]
        return out

    def jitter(self, img: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        a = self.cfg.jitter_strength
        b, cst, sat = rng.uniform(1 - a, 1 + a, size=3)
        order = rng.permutation(3)
        for o in order:
            if o == 0:
                img = img * float(b)
            elif o == 1:
                gray = (0.299 * img[0] + 0.587 * img[1] + 0.114 * img[2]).mean()
                img = (img - gray) * float(cst) + gray
            else:
                gray = (0.299 * img[0] + 0.587 * img[1] + 0.114 * img[2])[None]
                img = (img - gray) * float(sat) + gray
        return img.clamp(0.0, 1.0)

    def motion_blur(self, img: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        sizes = list(range(3, max(3, self.cfg.blur_max) + 1, 2))
        size = sizes[rng.integers(len(sizes))]
        k = motion_blur_kernel(size, float(rng.uniform(0, math.pi))).to(img.dtype)
        w = k[None, None].repeat(3, 1, 1, 1)
        x = F.pad(img[None], (size // 2,) * 4, mode="replicate")
        return F.conv2d(x, w, groups=3)[0]

    def erase(self, img: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        _, h, w = img.shape
        lo, hi = self.cfg.erase_area
        for _ in range(10):
            area = rng.uniform(lo, hi) * h * w
            ratio = math.exp(rng.uniform(math.log(0.3), math.log(3.3)))
            eh, ew = int(round(math.sqrt(area * ratio))), int(round(math.sqrt(area / ratio)))
            if 0 < eh < h and 0 < ew < w:
                y, x = int(rng.integers(0, h - eh + 1)), int(rng.integers(0, w - ew + 1))
                img = img.clone()
                if self.cfg.erase_value is None:
                    img[:, y:y + eh, x:x + ew] = torch.from_numpy(rng.random((3, eh, ew), dtype=np.float32)).to(
                        img.dtype)
                else:  # the value is given in the input range [-1, 1]; images here are in [0, 1]
                    img[:, y:y + eh, x:x + ew] = (float(self.cfg.erase_value) + 1.0) / 2.0
                return img
        return img
