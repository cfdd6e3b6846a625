"""The fixed warp from a 112×112 ArcFace-aligned face to dlib's 150×150 face chip.

dlib's face-recognition network reads 150×150 "face chips" cut by ``get_face_chip_details(shape, 150, 0.25)``:
a similarity transform that puts the face's landmarks onto dlib's mean face shape (coordinates in [0, 1],
padded by 25 % on each side: ``chip = (padding + mean) / (1 + 2·padding) · size``).

An ArcFace-aligned image already has its five landmarks on :data:`synthfr.face.align.ARCFACE_DST`, so the
chip follows from it by one FIXED similarity: the same five points computed on dlib's mean face shape (eye
centres = mean of the six eye points, nose tip = point 30, mouth corners = points 48 and 54) are mapped onto
the ArcFace template by least squares (:func:`synthfr.face.align.umeyama`). Chip pixel ``(x, y)`` then
samples the aligned image at ``A · (x, y, 1)``, bilinearly, with zeros outside it (pixel centres at integer
coordinates, like OpenCV and dlib). :func:`chip_grid` expresses that as a ``grid_sample`` grid, so the warp
is differentiable; :func:`aligned_to_chips` applies it. Parts of the chip that fall outside the 112×112
crop (mostly the top of the head and the chin corners) are black.
"""
from __future__ import annotations

import numpy as np

from synthfr.face.align import template, umeyama

__all__ = ["DLIB_MEAN_FACE_X", "DLIB_MEAN_FACE_Y", "dlib_chip_template5", "chip_matrix", "chip_grid",
           "aligned_to_chips", "CHIP_SIZE", "CHIP_PADDING"]

CHIP_SIZE = 150
CHIP_PADDING = 0.25

#: dlib's mean face shape, points 17..67 of the iBUG 68-point layout (``get_face_chip_details``).
DLIB_MEAN_FACE_X = np.array([
    0.000213256, 0.0752622, 0.18113, 0.29077, 0.393397, 0.586856, 0.689483, 0.799124,
    0.904991, 0.98004, 0.490127, 0.490127, 0.490127, 0.490127, 0.36688, 0.426036,
    0.490127, 0.554217, 0.613373, 0.121737, 0.187122, 0.265825, 0.334606, 0.260918,
    0.182743, 0.645647, 0.714428, 0.793132, 0.858516, 0.79751, 0.719335, 0.254149,
    0.340985, 0.428858, 0.490127, 0.551395, 0.639268, 0.726104, 0.642159, 0.556721,
    0.490127, 0.423532, 0.338094, 0.290379, 0.428096, 0.490127, 0.552157, 0.689874,
    0.553364, 0.490127, 0.42689])
DLIB_MEAN_FACE_Y = np.array([
    0.106454, 0.038915, 0.0187482, 0.0344891, 0.0773906, 0.0773906, 0.0344891,
    0.0187482, 0.038915, 0.106454, 0.203352, 0.307009, 0.409805, 0.515625, 0.587326,
    0.609345, 0.628106, 0.609345, 0.587326, 0.216423, 0.178758, 0.179852, 0.231733,
    0.245099, 0.244077, 0.231733, 0.179852, 0.178758, 0.216423, 0.244077, 0.245099,
    0.780233, 0.745405, 0.727388, 0.742578, 0.727388, 0.745405, 0.780233, 0.864805,
    0.902192, 0.909281, 0.902192, 0.864805, 0.784792, 0.778746, 0.785343, 0.778746,
    0.784792, 0.824182, 0.831803, 0.824182])


def dlib_chip_template5(size: int = CHIP_SIZE, padding: float = CHIP_PADDING) -> np.ndarray:
    """The five ArcFace-order points (left eye, right eye, nose, left/right mouth) in dlib chip pixels."""
    mean = np.stack([DLIB_MEAN_FACE_X, DLIB_MEAN_FACE_Y], 1)  # index i <-> iBUG point i + 17
    pts = np.stack([mean[36 - 17:42 - 17].mean(0), mean[42 - 17:48 - 17].mean(0), mean[30 - 17],
                    mean[48 - 17], mean[54 - 17]])
    return (padding + pts) / (2 * padding + 1) * size


def chip_matrix(aligned_size: int = 112, chip_size: int = CHIP_SIZE, padding: float = CHIP_PADDING) -> np.ndarray:
    """2×3 matrix ``A``: chip pixel ``(x, y)`` samples the aligned image at ``A · (x, y, 1)``."""
    return umeyama(dlib_chip_template5(chip_size, padding), template(aligned_size))[:2]


def chip_grid(aligned_size: int = 112, chip_size: int = CHIP_SIZE, padding: float = CHIP_PADDING, dtype=None):
    """``torch.grid_sample`` grid (1×chip×chip×2, ``align_corners=False``; float32 unless ``dtype``)
    realising the warp."""
    import torch

    A = chip_matrix(aligned_size, chip_size, padding)
    ys, xs = np.mgrid[0:chip_size, 0:chip_size].astype(np.float64)
    u = A[0, 0] * xs + A[0, 1] * ys + A[0, 2]
    v = A[1, 0] * xs + A[1, 1] * ys + A[1, 2]
    # align_corners=False: normalised -1..1 spans pixel edges, so pixel centre u maps to (2u + 1)/W - 1
    g = np.stack([(2 * u + 1) / aligned_size - 1, (2 * v + 1) / aligned_size - 1], -1)
    return torch.from_numpy(g[None]).to(dtype or torch.float32)


def aligned_to_chips(x, grid=None):
    """Warp a float batch ``N×C×112×112`` to dlib chips ``N×C×150×150`` (bilinear, zeros outside;
    differentiable)."""
    import torch.nn.functional as F

    if grid is None:
        grid = chip_grid(x.shape[-1], dtype=x.dtype).to(x.device)
    return F.grid_sample(x, grid.expand(x.shape[0], -1, -1, -1), mode="bilinear", padding_mode="zeros",
                         align_corners=False)
