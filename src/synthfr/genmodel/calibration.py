"""Pose calibration of a trained generator: map a requested head pose to the network input that renders it.

A conditional generator trained with a regression-style attribute loss under-renders rare values: synthfr-v2
given ``yaw = 30`` draws heads at ~10° by facial landmarks, and the real within-identity yaw spread (sampled by
the attribute prior in landmark degrees) comes out compressed three-fold. The network does follow its input
monotonically well beyond the training range (input 90 → ~39°), so the fix is a measured, monotone lookup
table: render a grid of input values for training-set identities, measure each image's pose by landmarks
(:func:`synthfr.face.attributes.measure_attributes`, the same measurement the attribute prior was fitted on),
and invert the median curve. No face-recognition network is involved (the judge rule is unaffected).

The table lives beside the weights as ``calibration.safetensors`` (``<attr>_in`` / ``<attr>_out`` pairs, float32);
``synthfr-v2`` applies :func:`to_inputs` to the values a user requests and to the pose it samples per image
(option ``calibrate=all``, the default), or to the requested values only (``calibrate=requested``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

__all__ = ["CALIBRATION_FILE", "DEFAULT_GRID", "fit_pose_calibration", "isotonic", "load_calibration",
           "save_calibration", "to_inputs"]

CALIBRATION_FILE = "calibration.safetensors"
# input values rendered per attribute (degrees); wide, because the network extrapolates past its training range
DEFAULT_GRID: dict[str, tuple[float, ...]] = {
    "yaw": tuple(float(v) for v in range(-105, 106, 15)),
    "pitch": tuple(float(v) for v in range(-50, 51, 10)),
}


def isotonic(y: Sequence[float]) -> np.ndarray:
    """Least-squares non-decreasing fit of ``y`` (pool-adjacent-violators), then made strictly increasing by a
    negligible ramp so it can be inverted by interpolation."""
    blocks: list[list[float]] = []  # [sum, count]
    for v in np.asarray(y, np.float64):
        blocks.append([v, 1.0])
        while len(blocks) > 1 and blocks[-2][0] / blocks[-2][1] > blocks[-1][0] / blocks[-1][1]:
            s, c = blocks.pop()
            blocks[-1][0] += s
            blocks[-1][1] += c
    out = np.concatenate([np.full(int(c), s / c) for s, c in blocks])
    return out + np.arange(len(out)) * 1e-6


def to_inputs(values: Any, cal_in: np.ndarray, cal_out: np.ndarray) -> np.ndarray:
    """Requested (landmark-measured) values -> network inputs, by inverting the monotone curve ``cal_out(cal_in)``;
    beyond the measured range the end segments are extended linearly (bounded by the grid's slope)."""
    v = np.asarray(values, np.float64)
    x, y = np.asarray(cal_in, np.float64), np.asarray(cal_out, np.float64)
    out = np.interp(v, y, x)
    lo, hi = v < y[0], v > y[-1]
    out[lo] = x[0] + (v[lo] - y[0]) * (x[1] - x[0]) / max(y[1] - y[0], 1e-6)
    out[hi] = x[-1] + (v[hi] - y[-1]) * (x[-1] - x[-2]) / max(y[-1] - y[-2], 1e-6)
    return out


def fit_pose_calibration(generator: Any, conditions: np.ndarray, seeds: Sequence[int] | None = None,
                         grid: dict[str, Sequence[float]] | None = None, progress: bool = False) -> dict[str, Any]:
    """Render every grid value of each pose attribute (the others at their identity's mean, no variation) for
    ``conditions`` (training-set embeddings, never evaluation data) and return the median landmark-measured value
    per input as ``{"<attr>_in": ..., "<attr>_out": ..., "<attr>_raw": ..., "faces": n}`` (``_out`` made monotone).

    ``generator``: a ``synthfr-v2``-like generator with ``generate_tensor(conditions, seeds, attrs=...)`` and
    ``neutral_attributes(conditions, seeds)``; its settings (vary, fixed values, calibration) are not used.
    """
    import torch

    from synthfr.face.attributes import measure_attributes
    from synthfr.utils.images import to_uint8_images
    from synthfr.genmodel.conditioning import ATTR_INPUTS

    grid = dict(DEFAULT_GRID if grid is None else grid)
    c = np.asarray(conditions, np.float32)
    s = list(range(1, len(c) + 1)) if seeds is None else [int(v) for v in seeds]
    base = generator.neutral_attributes(c, s)  # identity-linked means: no per-image deviation, nothing fixed
    out: dict[str, Any] = {"faces": int(len(c))}
    for name, values in grid.items():
        j = ATTR_INPUTS.index(name)
        med = []
        for v in values:
            a = base.clone()
            a[:, j] = float(v)
            with torch.no_grad():
                img = generator.generate_tensor(torch.as_tensor(c), s, attrs=a)
            m = measure_attributes(to_uint8_images(img))[name]
            med.append(float(np.nanmedian(m)) if np.isfinite(m).any() else float("nan"))
            if progress:
                print(f"calibration: {name} input {v:+.0f} -> {med[-1]:+.1f}", flush=True)
        med = np.asarray(med)
        ok = np.isfinite(med)
        if ok.sum() < 3:
            raise ValueError(f"pose calibration: landmarks found in too few renders for {name}; "
                             "pass more conditions or a narrower grid")
        out[f"{name}_in"] = np.asarray(values, np.float32)[ok]
        out[f"{name}_raw"] = med[ok].astype(np.float32)
        out[f"{name}_out"] = isotonic(med[ok]).astype(np.float32)
    return out


def save_calibration(cal: dict[str, Any], folder: str | Path) -> Path:
    """Write ``cal`` (from :func:`fit_pose_calibration`) as ``folder/calibration.safetensors``."""
    import torch
    from safetensors.torch import save

    from synthfr.utils.io import atomic_write_bytes

    t = {k: torch.as_tensor(np.asarray(v, np.float32)) for k, v in cal.items() if k.endswith(("_in", "_out", "_raw"))}
    path = Path(folder) / CALIBRATION_FILE
    atomic_write_bytes(path, save(t, metadata={"format": "pt", "faces": str(cal.get("faces", ""))}))
    return path


def load_calibration(folder: str | Path) -> dict[str, tuple[np.ndarray, np.ndarray]] | None:
    """``{attr: (inputs, measured)}`` from ``folder/calibration.safetensors``, or None when the folder has none."""
    path = Path(folder) / CALIBRATION_FILE
    if not path.is_file():
        return None
    from safetensors.numpy import load_file

    t = load_file(str(path))
    return {k[:-3]: (t[k], t[k[:-3] + "_out"]) for k in t if k.endswith("_in") and k[:-3] + "_out" in t}
