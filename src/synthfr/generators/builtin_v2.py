"""``synthfr-v2``: the second-generation built-in generator — identity + per-image attributes → face.

Same contract as ``synthfr-small`` (unit ``dlib-torch`` condition, 128-D, + image seed → aligned 112×112 face,
batch-invariant, deterministic), plus per-image **attributes** the user can set or let the generator draw:
head pose (yaw, pitch), expression (mouth opening, smile), illumination (brightness, contrast, left/right and
top/bottom light direction) and sharpness (see :mod:`synthfr.face.attributes` for units). By default every
image draws them from the distribution of real faces: identity-linked ones (brightness and contrast follow skin
tone) are predicted from the condition, the rest vary as they do between photos of one real person (a real
within-identity deviation drawn from the image seed). Options (``synthfr-v2:key=value,...``):

* ``vary`` — groups that vary per image, ``+``-separated: ``pose+expression+illumination+quality`` (default),
  ``pose`` alone, ``illumination`` alone, ``none``... (SynFace's attribute study).
* ``yaw`` / ``pitch`` / any attribute name — fix it for every image (``yaw=30``).
* ``yaw_range`` — draw yaw uniformly in ±range (pose-balanced sets); ``attr_scale`` — scale the deviations.
* ``z_scale``, ``id_gain`` — as for ``synthfr-small``; by default the values recorded with the weights (the shipped
  ones: ``z_scale`` 2.5, ``id_gain`` 1.5).
* ``turn`` — how a requested yaw (landmark degrees) is rendered: ``warp`` (default: the network up to
  ±``turn_limit``, default 18° — about the 85th percentile of |yaw| in its training photos, beyond which it has
  few real faces to learn from — then the 3-D depth-map warp of :mod:`synthfr.genmodel.warp` for the rest; see
  :meth:`SynthfrV2.render_plan`) or ``network`` (all by the network: heads past ~20° blur and lose identity).
* ``calibrate`` — map yaw and pitch (landmark degrees) through the weights' measured pose calibration
  (``calibration.safetensors``, :mod:`synthfr.genmodel.calibration`) so rendered heads turn as far as asked:
  ``all`` (default: the values the user sets and the per-image pose drawn from the real prior, so an identity's
  heads turn as much as a real person's do across photos — yaw spread ≈ real; with the shipped weights FR
  trained on such sets scores 1.3 LFW points more than on ``requested`` ones, at ~4 points of SFace fidelity;
  docs/benchmarks.md, session 10), ``requested`` (only values the user sets, ``yaw=30`` or ``yaw_range``;
  sampled poses stay raw network inputs, about half the real spread), ``none`` (raw network inputs). Weights
  without a calibration file render raw inputs whatever the mode.

The weights folder (``synthfr/weights/synthfr-v2``) holds ``model.safetensors`` + ``config.json`` (network) and
``attributes.safetensors`` (the attribute prior). The generator was trained with dlib-torch only; SFace judges it.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from synthfr.generators import REGISTRY
from synthfr.generators.base import condition_batch
from synthfr.generators.builtin import SynthfrSmall

__all__ = ["SynthfrV2"]

_HELP = ("synthfr-v2 weights are produced by `synthfr train-generator ... --set model.attr_dim=9 cond_mode=identity` "
         "and exported with `synthfr train-generator --out RUN --export-to DIR` (see docs/model_card.md).")


@REGISTRY.register("synthfr-v2", aliases=("builtin",))
class SynthfrV2(SynthfrSmall):
    """Built-in generator, 2nd generation: dlib-torch identity + per-image pose/expression/light attributes."""

    weights_name = "synthfr-v2"
    weights_help = _HELP
    #: what its images inherit (the dataset card shows it): synthfr-small's data, continued
    sources = {**SynthfrSmall.sources,
               "trained_on": "CelebA (about 300 identities, 6,047 aligned faces) and UTKFace (9,692 aligned faces), "
                             "trained by synthfr from synthfr-small (see synthfr/weights/synthfr-v2/MODEL_CARD.md)"}
    extra_files = ("attributes.safetensors",)

    def __init__(self, weights: str | Path | None = None, device: Any = "cpu", z_scale: float | None = None,
                 id_gain: float | None = None, vary: str = "pose+expression+illumination+quality",
                 yaw_range: float | None = None, attr_scale: float = 1.0, calibrate: Any = "all",
                 turn: str = "warp", turn_limit: float = 18.0, **fixed: Any):
        from synthfr.genmodel.conditioning import ATTR_GROUPS, ATTR_INPUTS

        bad = sorted(set(fixed) - set(ATTR_INPUTS))
        if bad:
            raise ValueError(f"generator 'synthfr-v2' has no option(s) {bad}; its options are: z_scale, id_gain, "
                             f"vary, yaw_range, attr_scale, calibrate, turn, turn_limit and the attributes "
                             f"{', '.join(ATTR_INPUTS)}")
        groups = tuple(g for g in str(vary).replace(",", "+").split("+") if g and g != "none")
        unknown = sorted(set(groups) - set(ATTR_GROUPS))
        if unknown:
            raise ValueError(f"synthfr-v2: unknown vary group(s) {unknown}; use {'+'.join(ATTR_GROUPS)} or none")
        super().__init__(weights=weights, device=device, z_scale=z_scale, id_gain=id_gain)
        self.vary = groups
        self.yaw_range = None if yaw_range in (None, "", "none") else float(yaw_range)
        self.attr_scale = float(attr_scale)
        self.fixed = {k: float(v) for k, v in fixed.items()}
        mode = {"true": "all", "1": "all", "yes": "all", "false": "none", "0": "none", "no": "none", "off": "none",
                "": "none"}.get(str(calibrate).lower(), str(calibrate).lower())
        if mode not in ("requested", "all", "none"):
            raise ValueError(f"synthfr-v2: calibrate={calibrate!r}; use requested, all or none")
        self.calibrate = mode
        if turn not in ("network", "warp"):
            raise ValueError(f"synthfr-v2: turn={turn!r}; use network or warp")
        self.turn = turn
        self.turn_limit = float(turn_limit)
        if self.turn_limit < 0:
            raise ValueError(f"synthfr-v2: turn_limit={turn_limit!r} must be ≥ 0 (landmark degrees)")
        self._prior = None
        self._calibration: dict | None = None

    @property
    def prior(self):
        """The :class:`~synthfr.genmodel.conditioning.AttributePrior` shipped with the weights."""
        if self._prior is None:
            from safetensors.torch import load_file

            from synthfr.genmodel.conditioning import AttributePrior

            path = self.weights / "attributes.safetensors"
            if not path.is_file():
                raise FileNotFoundError(f"{path} is missing: synthfr-v2 weights need their attribute prior. {_HELP}")
            self._prior = AttributePrior.from_tensors(load_file(str(path)))
        return self._prior

    @property
    def calibration(self) -> dict:
        """``{attr: (inputs, measured)}`` from the weights' ``calibration.safetensors`` ({} when absent)."""
        if self._calibration is None:
            from synthfr.genmodel.calibration import load_calibration

            self._calibration = load_calibration(self.weights) or {}
        return self._calibration

    def options(self) -> dict[str, Any]:
        opts = {**super().options(), "vary": "+".join(self.vary) or "none", "yaw_range": self.yaw_range,
                "attr_scale": self.attr_scale, **self.fixed}
        if self._calibrated_names():
            opts["calibrate"] = self.calibrate  # recorded only when it changes the images
        if "yaw" in self._calibrated_names():  # recorded only where it changes the images
            opts.update(turn=self.turn, turn_limit=self.turn_limit)
        return opts

    def attributes(self, conditions: Any, seeds: Any):
        """The B×A raw network attribute inputs each image gets (before the identity gain), as a float tensor."""
        return self.render_plan(conditions, seeds)[0]

    def render_plan(self, conditions: Any, seeds: Any):
        """(B×A network attribute inputs, B warp angles in degrees or None) of each image.

        With ``turn=warp``, a requested yaw (landmark degrees: ``calibrate=all``, or a value the user set with
        ``calibrate=requested``) beyond ±``turn_limit`` is rendered in two parts: the network turns the head to
        ±``turn_limit``, where its faces are clean and keep their identity, and the 3-D depth-map warp of
        :mod:`synthfr.genmodel.warp` turns the rendered face the rest of the way (up to its ±35°; any remainder
        goes back to the network). The network's own response fades beyond ~15°: asked for 30° through the
        calibration it draws washed-out, artefact-laden heads (docs/benchmarks.md, issue 13, session 9)."""
        c, s = condition_batch(conditions, seeds, self.dim)
        a = self.prior.sample(c, s.tolist(), vary=self.vary, scale=self.attr_scale, fixed=self.fixed,
                              yaw_range=self.yaw_range)
        warp = None
        if self.turn == "warp" and "yaw" in self._calibrated_names():
            from synthfr.genmodel.warp import MAX_YAW, YAW_GAIN

            j = self.prior.names.index("yaw")
            y = a[:, j]
            warp = ((y - y.clamp(-self.turn_limit, self.turn_limit)) / YAW_GAIN).clamp(-MAX_YAW, MAX_YAW)
            a = a.clone()
            a[:, j] = y - YAW_GAIN * warp
        return self.calibrated(a), warp

    def neutral_attributes(self, conditions: Any, seeds: Any):
        """B×A raw attributes at each identity's predicted level: no per-image variation, nothing fixed, not
        calibrated, whatever this generator's options (what a calibration renders its grid from)."""
        c, s = condition_batch(conditions, seeds, self.dim)
        return self.prior.sample(c, s.tolist(), vary=(), fixed={})

    def _calibrated_names(self) -> list[str]:
        """The attributes this generator maps through the calibration (by mode; those the weights calibrate)."""
        if self.calibrate == "none" or not self.calibration:
            return []
        names = list(self.calibration)
        if self.calibrate == "requested":
            names = [n for n in names if n in self.fixed or (n == "yaw" and self.yaw_range is not None)]
        return names

    def calibrated(self, attrs: Any):
        """Requested attributes (landmark units) -> the network inputs that render them (identity when
        ``calibrate`` is off or the weights carry no calibration)."""
        import torch

        names = self._calibrated_names()
        if not names:
            return attrs
        from synthfr.genmodel.calibration import to_inputs

        out = attrs.clone()
        for name in names:
            x, y = self.calibration[name]
            j = self.prior.names.index(name)
            out[:, j] = torch.as_tensor(to_inputs(out[:, j].double().numpy(), x, y), dtype=out.dtype)
        return out

    def generate_tensor(self, conditions: Any, seeds: Any, attrs: Any = None):
        """Conditions (B×128, may require grad) + seeds (+ optional B×A raw network attribute inputs, NaN =
        unknown, not calibrated) -> images."""
        import torch

        conditions, s = condition_batch(conditions, seeds, self.dim)
        warp = None
        if attrs is None:
            a, warp = self.render_plan(conditions.detach(), s)
        else:
            a = torch.as_tensor(attrs, dtype=torch.float32)
        m = self.model
        c = conditions.to(self.device, torch.float32)
        if self.id_gain != 1.0:
            c = torch.nn.functional.normalize(m.cond_mean + self.id_gain * (c - m.cond_mean), dim=1)
        img = m.generate_tensor(c, s.tolist(), z_scale=self.z_scale, attrs=a.to(self.device))
        if warp is not None:
            from synthfr.genmodel.warp import yaw_warp

            img = yaw_warp(img, warp)  # rows with a zero angle stay untouched: batch-invariant
        return img
