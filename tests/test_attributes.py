"""face/attributes: shapes, mirror symmetry, and the image measures against direct formulas."""
from __future__ import annotations

import numpy as np
import pytest

from synthfr.face.attributes import ATTRIBUTES, MIRROR_SIGN, image_attributes, measure_attributes


def _faces(n: int = 4, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 112, 112, 3), dtype=np.uint8)


def test_image_attributes_match_direct_formulas():
    im = _faces(3)
    got = image_attributes(im)
    f = im[:, 30:104, 28:84].astype(np.float64) / 255
    y = f[..., 0] * 0.299 + f[..., 1] * 0.587 + f[..., 2] * 0.114
    for i in range(3):
        m = y[i].mean()
        assert got["brightness"][i] == pytest.approx(m, abs=1e-5)
        assert got["contrast"][i] == pytest.approx(y[i].std() / m, rel=1e-4)
        assert got["light_lr"][i] == pytest.approx((y[i][:, 28:].mean() - y[i][:, :28].mean()) / m, abs=1e-5)
        assert got["light_tb"][i] == pytest.approx((y[i][:37].mean() - y[i][37:].mean()) / m, abs=1e-5)


def test_light_direction_sign():
    ramp = np.tile(np.linspace(40, 220, 112, dtype=np.float32)[None, :, None], (112, 1, 3)).astype(np.uint8)
    a = image_attributes(ramp[None])
    assert a["light_lr"][0] > 0.2 and abs(a["light_tb"][0]) < 1e-3
    b = image_attributes(ramp[None, :, ::-1])
    assert b["light_lr"][0] == pytest.approx(-a["light_lr"][0], rel=1e-3)


def test_blur_lowers_sharpness():
    im = _faces(1)
    blurred = im.astype(np.float32)
    for _ in range(3):
        blurred = (blurred + np.roll(blurred, 1, 1) + np.roll(blurred, 1, 2)) / 3
    a = image_attributes(im)["sharpness"][0]
    b = image_attributes(blurred.astype(np.uint8))["sharpness"][0]
    assert b < a - 0.5


def test_measure_attributes_mirror_signs(shared_data):
    from synthfr.data.benchmarks import decode_image, load_bin_raw

    path = shared_data / "lfw" / "lfw.bin"
    if not path.is_file():
        pytest.skip("lfw.bin not found")
    faces = np.stack([decode_image(b) for b in load_bin_raw(path)[0][:8]])  # evaluation data, measured only
    a = measure_attributes(faces)
    b = measure_attributes(faces[:, :, ::-1].copy())
    assert set(a) == set(ATTRIBUTES) and all(v.shape == (8,) for v in a.values())
    for k in ("yaw", "light_lr", "brightness", "mouth_open"):
        s = MIRROR_SIGN.get(k, 1.0)
        tol = 4.0 if k == "yaw" else 0.02
        assert np.nanmedian(np.abs(a[k] - s * b[k])) < tol, k

