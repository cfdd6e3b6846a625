"""The 3-D head-turn warp (genmodel/warp.py) that gives the generator training photos at poses the data lacks."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from synthfr.genmodel.warp import MAX_YAW, YAW_GAIN, _max_fold_free, warp_grid, yaw_warp


def _faces(n=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, 112, 112, generator=g)


def test_zero_turn_is_the_identity():
    x = _faces()
    assert torch.equal(yaw_warp(x, 0.0), x)  # not resampled at all
    y = yaw_warp(x, torch.tensor([0.0, 20.0, 0.0]))
    assert torch.equal(y[[0, 2]], x[[0, 2]]) and not torch.equal(y[1], x[1])
    # a turned row does not depend on its batch
    assert torch.equal(y[1:2], yaw_warp(x[1:2], 20.0))


def test_mirroring_commutes_with_the_warp():
    x = _faces()
    a = yaw_warp(x.flip(-1), torch.tensor([20.0, -10.0, 5.0])).flip(-1)
    b = yaw_warp(x, torch.tensor([-20.0, 10.0, -5.0]))
    assert (a - b).abs().max() < 2e-3


def test_the_row_map_is_monotonic_and_turns_the_nose_the_right_way():
    assert _max_fold_free() >= MAX_YAW  # no column folds over another within the accepted range
    g = warp_grid(torch.tensor([MAX_YAW, -MAX_YAW]))
    src = g[..., 0]
    assert (src[:, :, 1:] > src[:, :, :-1]).all()
    # turning right (positive yaw) brings the nose tip's pixels to the right: the output column at the nose
    # tip samples the source from further left
    row, col = 71, 56
    assert src[0, row, col] < src[1, row, col]
    assert src[0, row, col] < (col + 0.5) / 112 * 2 - 1


def test_valid_mask_marks_pixels_from_outside_the_image():
    x = _faces(2)
    y, valid = yaw_warp(x, torch.tensor([0.0, 30.0]), return_valid=True)
    assert valid.shape == (2, 1, 112, 112) and bool(valid[0].all())
    assert 0 < float(valid[1].mean()) < 1  # a turned head's background shifts: one edge repeats the border
    with pytest.raises(ValueError, match="folds"):
        yaw_warp(x, 40.0)


def test_warped_generated_faces_turn_as_the_landmarks_measure():
    """A frontal face from the shipped generator, turned ±20°: landmark yaw moves by ≈ YAW_GAIN × 20°."""
    pytest.importorskip("dlib")
    from synthfr.face.pose import label_faces
    from synthfr.generators import create_generator

    try:
        gen = create_generator("synthfr-v2", yaw=0.0, pitch=0.0)
    except (FileNotFoundError, OSError) as e:
        pytest.skip(f"synthfr-v2 weights not available: {e}")
    rng = np.random.default_rng(0)
    c = rng.standard_normal((8, 128)).astype(np.float32)
    c /= np.linalg.norm(c, axis=1, keepdims=True)
    imgs = gen.generate(c, list(range(8)))
    x = torch.from_numpy(imgs).permute(0, 3, 1, 2).float() / 255
    yaws = {}
    for d in (-20.0, 0.0, 20.0):
        u8 = (yaw_warp(x, d).clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).numpy()
        yaws[d] = label_faces(u8)[:, 0]
    up = np.nanmedian(yaws[20.0] - yaws[0.0])
    down = np.nanmedian(yaws[-20.0] - yaws[0.0])
    assert up > 0.5 * YAW_GAIN * 20 and down < -0.5 * YAW_GAIN * 20
    assert abs(up - YAW_GAIN * 20) < 6 and abs(down + YAW_GAIN * 20) < 6
