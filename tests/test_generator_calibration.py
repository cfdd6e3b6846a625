"""Pose calibration of synthfr-v2: the monotone fit, its inverse, the fitting loop and the backend wiring."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from synthfr.genmodel.calibration import (fit_pose_calibration, isotonic, load_calibration, save_calibration,
                                          to_inputs)


def _brute_isotonic(y: np.ndarray) -> np.ndarray:
    """Least-squares non-decreasing fit by brute force over block partitions (small n only)."""
    n, best, best_err = len(y), None, np.inf
    for mask in range(2 ** (n - 1)):  # bit i set: a block boundary after position i
        cuts = [0] + [i + 1 for i in range(n - 1) if mask >> i & 1] + [n]
        fit = np.concatenate([np.full(b - a, y[a:b].mean()) for a, b in zip(cuts, cuts[1:])])
        if np.all(np.diff(fit) >= -1e-12) and ((fit - y) ** 2).sum() < best_err:
            best, best_err = fit, ((fit - y) ** 2).sum()
    return best


@pytest.mark.parametrize("seed", range(5))
def test_isotonic_matches_brute_force(seed):
    y = np.random.default_rng(seed).normal(size=7).cumsum() * np.random.default_rng(seed + 9).choice([-1, 1])
    got = isotonic(y)
    np.testing.assert_allclose(got, _brute_isotonic(y), atol=1e-5)
    assert np.all(np.diff(got) > 0)  # strictly increasing: invertible


def test_to_inputs_inverts_the_curve_and_extends_it_linearly():
    x = np.array([-90.0, -45, 0, 45, 90])
    y = np.array([-40.0, -18, 0, 17, 39])
    np.testing.assert_allclose(to_inputs(y, x, y), x)                        # the grid points themselves
    np.testing.assert_allclose(np.interp(to_inputs([-30, 10, 25], x, y), x, y), [-30, 10, 25])  # round trip
    np.testing.assert_allclose(to_inputs([50.0], x, y), [90 + 11 * 45 / 22])  # beyond: last segment's slope
    assert np.isnan(to_inputs([np.nan], x, y)[0])                             # unknown stays unknown


class _EchoGenerator:
    """Renders its yaw/pitch input into pixels so a patched measurement can read a known response back."""

    def __init__(self):
        self.vary, self.fixed, self.calibrate = ("pose",), {"yaw": 5.0}, "all"

    def neutral_attributes(self, c, seeds):
        return torch.zeros(len(c), 9)

    def generate_tensor(self, c, seeds, attrs):
        img = torch.zeros(len(c), 3, 112, 112)
        img[:, 0] = (attrs[:, 0, None, None] + 128) / 255.0  # yaw input in channel 0
        img[:, 1] = (attrs[:, 1, None, None] + 128) / 255.0  # pitch input in channel 1
        return img


def test_fit_measures_each_grid_value_and_leaves_the_generator_alone(monkeypatch):
    import synthfr.face.attributes as fa

    def fake_measure(images):  # the "renderer" turns heads 40 % as far as asked, with a wobble at one point
        yaw_in = images[:, 0, 0, 0].astype(float) - 128
        return {"yaw": 0.4 * yaw_in + np.where(yaw_in == 30, -5.0, 0.0),
                "pitch": 0.5 * (images[:, 0, 0, 1].astype(float) - 128)}

    monkeypatch.setattr(fa, "measure_attributes", fake_measure)
    gen = _EchoGenerator()
    cal = fit_pose_calibration(gen, np.ones((3, 128), np.float32), grid={"yaw": [-60, -30, 0, 30, 60],
                                                                          "pitch": [-20, 0, 20]})
    np.testing.assert_allclose(cal["yaw_raw"], [-24, -12, 0, 7, 24])
    assert np.all(np.diff(cal["yaw_out"]) > 0)           # the wobble (12 -> 7) pooled away
    np.testing.assert_allclose(cal["pitch_out"], [-10, 0, 10], atol=1e-5)
    assert gen.vary == ("pose",) and gen.fixed == {"yaw": 5.0} and gen.calibrate == "all"   # untouched


def test_backend_applies_the_calibration_only_when_present_and_asked(tmp_path):
    from test_builtin_generator import TINY, _cfg, _tiny_data, _unit

    from synthfr.generators import create_generator
    from synthfr.genmodel.conditioning import ATTR_INPUTS
    from synthfr.genmodel.export import export_generator
    from synthfr.genmodel.trainer import train_generator

    tiny_v2 = dataclasses.replace(TINY, attr_dim=len(ATTR_INPUTS), attr_hidden=16)
    _tiny_data(tmp_path / "faces", n_ids=3, per_id=2)
    train_generator(_cfg(tmp_path, tmp_path / "a", max_steps=1, model=tiny_v2, cond_mode="identity",
                         sample_every=0), progress=False)
    w = export_generator(tmp_path / "a", tmp_path / "w")
    c = np.repeat(_unit(1).numpy(), 2, 0)
    plain = create_generator("synthfr-v2", weights=str(w), vary="none", yaw=30)
    before = plain.generate(c, [1, 2])
    assert load_calibration(w) is None and "calibrate" not in plain.options()
    save_calibration({"yaw_in": [-90, 0, 90], "yaw_out": [-40, 0, 40], "faces": 2}, w)
    assert set(load_calibration(w)) == {"yaw"}
    cal = create_generator("synthfr-v2", weights=str(w), vary="none", yaw=30, turn="network")
    assert float(cal.attributes(c, [1, 2])[0, 0]) == pytest.approx(30 * 90 / 40)
    assert cal.options()["calibrate"] == "all"
    asked = create_generator("synthfr-v2", weights=str(w), vary="none", yaw=30, turn="network", calibrate="requested")
    assert torch.equal(asked.attributes(c, [1, 2]), cal.attributes(c, [1, 2]))
    # the default turn=warp asks the network for 18° (turn_limit) and warps the rest
    split = create_generator("synthfr-v2", weights=str(w), vary="none", yaw=30)
    assert float(split.attributes(c, [1, 2])[0, 0]) == pytest.approx(18 * 90 / 40)
    off = create_generator("synthfr-v2", weights=str(w), vary="none", yaw=30, calibrate="false")
    assert float(off.attributes(c, [1, 2])[0, 0]) == 30 and np.array_equal(off.generate(c, [1, 2]), before)
    assert "calibrate" not in off.options()
    # sampled pose: mapped by default (calibrate=all), left raw with calibrate=requested
    c8, s8 = np.repeat(c[:1], 8, 0), list(range(8))
    raw = create_generator("synthfr-v2", weights=str(w), vary="pose", calibrate="none").attributes(c8, s8)
    asked = create_generator("synthfr-v2", weights=str(w), vary="pose", calibrate="requested")
    assert torch.equal(asked.attributes(c8, s8), raw) and "calibrate" not in asked.options()
    every = create_generator("synthfr-v2", weights=str(w), vary="pose", turn="network")
    assert every.options()["calibrate"] == "all"
    np.testing.assert_allclose(every.attributes(c8, s8)[:, 0].numpy(), raw[:, 0].numpy() * 90 / 40, rtol=1e-5,
                               atol=1e-5)
    with pytest.raises(ValueError, match="calibrate"):
        create_generator("synthfr-v2", weights=str(w), calibrate="sometimes")
