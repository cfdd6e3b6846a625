"""Turn the head of an aligned face in 3-D: a depth-map warp that makes training photos at poses the data lacks.

The aligned CelebA + UTKFace training faces are 85 % within ±18.8° of yaw (landmarks), so a generator learns to
keep identity only for nearly frontal heads (judged by SFace, heads turned past ~20° lose it). This module
re-renders a photo as if the head had turned by ``deg`` degrees about its vertical axis, with a generic depth
map of an aligned 112×112 face — the "face profiling" augmentation of 3DDFA (Zhu et al., 2016) without a fitted
mesh:

* the face is a cylinder-like surface, depth ``z = -R·(x_c/a)²`` (``x_c`` = column from the face's centre
  line, ``a`` = half-width at the cheeks; the front of the face is z = 0 and the cheek edges recede by ``R``),
  flat (``z = -R``) outside ``|x_c| ≤ a``, plus a nose ridge (an elongated Gaussian bump);
* turning by θ moves every point sideways by ``z·sin θ`` (orthographic camera, rotation about an axis through
  the front of the face, so the eyes stay where alignment put them): the visible cheek widens, the far one
  is foreshortened, the nose moves over the far cheek;
* the map is inverted per pixel (Newton steps on the monotonic row map: no folds within ``MAX_YAW``) and the
  image is resampled with border padding.

Occlusion (the nose hiding the far cheek, the far ear disappearing) is not modelled, so the warp stays within
±``MAX_YAW`` degrees. The landmark-measured yaw of a warped face changes by about :data:`YAW_GAIN` degrees per
degree of warp (measured on aligned CelebA faces; ``tests/test_genmodel_warp.py`` checks it on generated
faces), which is what a trainer adds to the image's yaw label. Mirroring commutes with the warp:
``warp(flip(x), θ) = flip(warp(x, −θ))``.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = ["yaw_warp", "warp_grid", "MAX_YAW", "YAW_GAIN"]

#: largest turn the warp accepts (degrees): beyond it the far cheek folds over itself
MAX_YAW = 35.0
#: change of landmark-measured yaw per degree of warp: median 0.60–0.63 over 200 aligned CelebA/UTKFace training
#: faces at ±10/20/30° (dlib 68 landmarks + solvePnP, session 9); the landmark predictor and the generic depth
#: map both pull towards frontal, so the warp's angle is not the measured one
YAW_GAIN = 0.62

# the generic depth map, in pixels of the aligned 112×112 face (ArcFace template: eyes at x 38.3 / 73.5,
# nose tip at (56.0, 71.7), mouth corners at x 41.5 / 70.7)
_CX = 56.0      # the face's centre line
_HALF = 40.0    # half-width at the cheeks (the jaw line of aligned faces lies near x 18 and 94)
_DEPTH = 34.0   # how far the cheek edges recede behind the front of the face
_NOSE = (56.0, 64.0, 5.0, 10.0, 10.0)  # nose ridge: centre x, centre y, sd x, sd y, height


def _shift(xs: torch.Tensor, ys: torch.Tensor, s: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward sideways displacement ``z(x, y)·sin θ`` and its x-derivative, in pixels of a ``size`` image."""
    k = size / 112.0
    xc = xs - _CX * k
    a, r = _HALF * k, _DEPTH * k
    inside = xc.abs() < a
    z = torch.where(inside, -r * (xc / a) ** 2, torch.full_like(xc, -r))
    dz = torch.where(inside, -2 * r * xc / a ** 2, torch.zeros_like(xc))
    nx, ny, sx, sy, h = _NOSE
    gx = (xs - nx * k) / (sx * k)
    bump = h * k * torch.exp(-0.5 * (gx ** 2 + ((ys - ny * k) / (sy * k)) ** 2))
    z = z + bump
    dz = dz - bump * gx / (sx * k)
    return z * s, dz * s


def warp_grid(deg: torch.Tensor, size: int = 112, iters: int = 12) -> torch.Tensor:
    """``grid_sample`` grids (N×size×size×2, ``align_corners=False``) that turn each head by ``deg[i]`` degrees.

    Positive degrees turn the face towards the image's right side (the landmark yaw convention of
    :func:`synthfr.face.pose.landmark_pose`)."""
    deg = torch.as_tensor(deg, dtype=torch.float32).reshape(-1)
    if deg.abs().max() > MAX_YAW:
        raise ValueError(f"yaw_warp: |deg| ≤ {MAX_YAW:g} (the generic depth map folds beyond it), got "
                         f"{float(deg.abs().max()):g}")
    n = deg.shape[0]
    s = torch.sin(torch.deg2rad(deg))[:, None, None]
    c = torch.arange(size, dtype=torch.float32) + 0.5  # pixel centres
    ys, xo = torch.meshgrid(c, c, indexing="ij")
    ys, xo = ys.expand(n, size, size), xo.expand(n, size, size)
    # a source point at x lands at x + z(x, y)·sin θ; solve it for every output column (monotonic: Newton)
    x = xo.clone()
    for _ in range(iters):
        d, dd = _shift(x, ys, s, size)
        x = x - (x + d - xo) / (1 + dd).clamp_min(0.05)
    gx = x / size * 2 - 1
    gy = ys / size * 2 - 1
    return torch.stack([gx, gy], dim=-1)


def yaw_warp(images: torch.Tensor, deg: torch.Tensor | float, return_valid: bool = False):
    """Images (N×3×H×W, H = W, float) with each head turned by ``deg`` degrees (a number or one per image).

    Rows with a zero angle are returned untouched (not resampled), so an image's pixels never depend on the
    other rows of its batch. With ``return_valid``, also an N×1×H×W mask of the pixels whose source lies inside
    the image (the others repeat the border: a trainer leaves them out of its pixel loss)."""
    n, _, h, w = images.shape
    if h != w:
        raise ValueError(f"yaw_warp needs square aligned faces, got {h}×{w}")
    deg = torch.as_tensor(deg, dtype=torch.float32).to("cpu")
    if deg.dim() == 0:
        deg = deg.expand(n)
    out = images
    valid = torch.ones(n, 1, h, w, dtype=images.dtype, device=images.device) if return_valid else None
    k = torch.nonzero(deg != 0).squeeze(1)
    if len(k):
        grid = warp_grid(deg[k], h).to(images.device, images.dtype)
        kd = k.to(images.device)
        turned = F.grid_sample(images[kd], grid, mode="bilinear", padding_mode="border", align_corners=False)
        out = images.index_copy(0, kd, turned)
        if valid is not None:
            valid[kd] = (grid[..., 0].abs() <= 1).unsqueeze(1).to(images.dtype)
    return (out, valid) if return_valid else out


def _max_fold_free() -> float:
    """Largest |θ| (degrees) at which the row map stays monotonic (for the docs and the tests)."""
    xs = torch.linspace(0, 112, 2001)
    ys = torch.full_like(xs, _NOSE[1])
    _, dd = _shift(xs, ys, torch.tensor(1.0), 112)
    return math.degrees(math.asin(min(1.0, 1.0 / float(dd.abs().max()))))
