"""What the second-generation generator is conditioned on, and how generation draws it.

Disentanglement is decided here, not in the network. A face = identity + per-image variation; if the identity
input carried the image's pose and light (an embedding of *that* image does, a little), the network would take
variation from it and every image of one identity would look alike. So, for training:

* **identity condition** — for labelled identities the leave-one-out *mean* embedding of the identity's other
  images and their mirrors (no trace of this image's pose, light or expression); for unlabelled faces the mean
  of the image's and its mirror's embedding (mirroring cancels yaw and left/right light);
* **attributes** — measured on the image itself (:mod:`synthfr.face.attributes`): yaw, pitch, mouth opening,
  smile, brightness, contrast, light direction, sharpness; mirrors flip the signs of yaw and light_lr;
* **style z** — the rest (background, hair, clothes), from the image encoder's posterior.

At generation the attributes come from :class:`AttributePrior`: the attributes that go with an identity
(brightness and contrast depend on skin tone, which the identity vector carries) are *predicted* from the
condition by a linear regression, and each image adds a *within-identity deviation* drawn from real labelled
identities (one real (image − identity mean) row, all attributes jointly, so their correlations stay real).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

__all__ = ["ATTR_INPUTS", "ATTR_GROUPS", "DIFF_ATTRS", "mirror_signs", "prepare_attributes", "identity_conditions",
           "balance_weights", "AttributePrior", "image_attributes_torch", "measured_attributes"]

#: attributes the network takes, in this order (units: see synthfr.face.attributes)
ATTR_INPUTS = ("yaw", "pitch", "mouth_open", "smile", "brightness", "contrast", "light_lr", "light_tb", "sharpness")
#: groups the user can vary on their own (SynFace's "only pose / only illumination / only expression")
ATTR_GROUPS = {"pose": ("yaw", "pitch"), "expression": ("mouth_open", "smile"),
               "illumination": ("brightness", "contrast", "light_lr", "light_tb"), "quality": ("sharpness",)}


def mirror_signs(names: Sequence[str] = ATTR_INPUTS) -> torch.Tensor:
    from synthfr.face.attributes import MIRROR_SIGN

    return torch.tensor([MIRROR_SIGN.get(n, 1.0) for n in names], dtype=torch.float32)


def prepare_attributes(images: torch.Tensor | np.ndarray, cache: str | Path, fingerprint: str,
                       progress: bool = True) -> np.ndarray:
    """Attributes (N×len(ATTR_INPUTS), NaN where unmeasurable) of the packed training images, cached."""
    from synthfr.face.attributes import measure_attributes
    from synthfr.utils.io import read_json, write_json

    cache = Path(cache)
    path, meta = cache / "attrs.npy", cache / "attrs.json"
    if path.is_file() and meta.is_file() and read_json(meta).get("fingerprint") == fingerprint \
            and read_json(meta).get("names") == list(ATTR_INPUTS):
        return np.load(path)
    imgs = images.numpy() if isinstance(images, torch.Tensor) else np.asarray(images)
    got = measure_attributes(imgs, progress=progress)
    arr = np.stack([got[n] for n in ATTR_INPUTS], axis=1).astype(np.float32)
    cache.mkdir(parents=True, exist_ok=True)
    np.save(path, arr)
    write_json(meta, {"fingerprint": fingerprint, "names": list(ATTR_INPUTS), "n": int(len(arr))})
    return arr


def identity_conditions(emb: torch.Tensor, identity: Sequence[str]) -> torch.Tensor:
    """N×D identity conditions: leave-one-out identity means (labelled), image+mirror means (single images).

    ``emb``: N×2×D unit embeddings (original, mirrored). An identity key shared by ≥ 2 images is a label.
    """
    n, _, d = emb.shape
    both = emb.double().sum(1)                               # N×D: image + mirror
    keys: dict[str, int] = {}
    gid = torch.tensor([keys.setdefault(k, len(keys)) for k in identity])
    sums = torch.zeros(len(keys), d, dtype=torch.float64).index_add_(0, gid, both)
    counts = torch.bincount(gid, minlength=len(keys))
    loo = sums[gid] - both                                   # the identity's other images (and mirrors)
    single = counts[gid] < 2
    out = torch.where(single[:, None], both, loo)
    return torch.nn.functional.normalize(out, dim=1).float()


def balance_weights(yaw: np.ndarray, power: float, bins: float = 5.0, cap: float = 20.0) -> np.ndarray:
    """Sampling weights ∝ (frequency of the image's |yaw| bin)^-power (pose-balanced batches); NaN yaw → 1."""
    w = np.ones(len(yaw), np.float64)
    if power <= 0:
        return w
    ok = np.isfinite(yaw)
    b = np.floor(np.abs(yaw[ok]) / bins).astype(int)
    freq = np.bincount(b).astype(np.float64) / max(1, ok.sum())
    w[ok] = freq[b] ** -power
    w[ok] /= np.median(w[ok])
    return np.clip(w, 1.0 / cap, cap)


class AttributePrior:
    """Draws realistic per-image attributes for a condition vector (see the module docstring).

    ``W`` (D×A) and ``b`` (A) predict the identity-level attributes from the condition; ``deviations`` (M×A)
    are real within-identity deviations (image attributes − its identity's mean), NaN-free.
    """

    def __init__(self, W: torch.Tensor, b: torch.Tensor, deviations: torch.Tensor,
                 names: Sequence[str] = ATTR_INPUTS):
        self.W, self.b, self.deviations = W.float(), b.float(), deviations.float()
        self.names = tuple(names)

    # -- fitting (trainer) ----------------------------------------------------------------------------------
    @classmethod
    def fit(cls, cond: np.ndarray, attrs: np.ndarray, identity: Sequence[str], ridge: float = 1e-2,
            max_deviations: int = 20000, seed: int = 0) -> "AttributePrior":
        """Fit on training rows: ``cond`` N×D identity conditions, ``attrs`` N×A, ``identity`` keys."""
        a = np.asarray(attrs, np.float64)
        ok = np.isfinite(a).all(1)
        keys: dict[str, int] = {}
        gid = np.array([keys.setdefault(k, len(keys)) for k in identity])
        # identity means of the attributes (labelled identities), the regression target
        sums = np.zeros((len(keys), a.shape[1]))
        cnt = np.zeros(len(keys))
        np.add.at(sums, gid[ok], a[ok])
        np.add.at(cnt, gid[ok], 1)
        mean_id = sums / np.maximum(cnt, 1)[:, None]
        x = np.asarray(cond, np.float64)[ok]
        y = mean_id[gid[ok]]
        # symmetric attributes only (yaw, light_lr average to 0 over mirrors): predict them as 0 from identity
        xm = x.mean(0)
        ym = y.mean(0)
        xc = x - xm
        W = np.linalg.solve(xc.T @ xc + ridge * len(x) * np.eye(x.shape[1]), xc.T @ (y - ym))
        b = ym - xm @ W
        for j, n in enumerate(ATTR_INPUTS):
            if n in ("yaw", "light_lr"):
                W[:, j] = 0.0
                b[j] = 0.0
        labelled = cnt[gid] >= 2
        devs = (a - mean_id[gid])[ok & labelled]
        rng = np.random.default_rng(seed)
        if len(devs) > max_deviations:
            devs = devs[rng.choice(len(devs), max_deviations, replace=False)]
        # mirrored copies keep the bank symmetric in yaw and left/right light
        devs = np.concatenate([devs, devs * mirror_signs().numpy()[None].astype(np.float64)])
        return cls(torch.from_numpy(W), torch.from_numpy(b), torch.from_numpy(devs))

    # -- storage ----------------------------------------------------------------------------------------------
    def tensors(self) -> dict[str, torch.Tensor]:
        return {"attr_prior.W": self.W.contiguous(), "attr_prior.b": self.b.contiguous(),
                "attr_prior.deviations": self.deviations.half().contiguous()}

    @classmethod
    def from_tensors(cls, t: dict[str, torch.Tensor], names: Sequence[str] = ATTR_INPUTS) -> "AttributePrior":
        return cls(t["attr_prior.W"], t["attr_prior.b"], t["attr_prior.deviations"].float(), names)

    # -- sampling -------------------------------------------------------------------------------------------
    def sample(self, cond: torch.Tensor, seeds: Sequence[int], vary: Sequence[str] = ("pose", "expression",
               "illumination", "quality"), scale: float = 1.0, fixed: dict[str, float] | None = None,
               yaw_range: float | None = None) -> torch.Tensor:
        """B×A attributes for conditions B×D and image seeds (each row depends only on its own seed/condition).

        ``vary``: attribute groups that vary per image (others stay at the identity's predicted level).
        ``scale`` multiplies the deviations. ``fixed``: attributes set to a value (e.g. ``{"yaw": 30}``).
        ``yaw_range``: draw yaw uniformly in ±range instead of from the real deviations (pose-balanced sets).
        """
        unknown = set(vary) - set(ATTR_GROUPS)
        if unknown:
            raise ValueError(f"unknown attribute group(s) {sorted(unknown)}; choose from {sorted(ATTR_GROUPS)}")
        cond = cond.detach().float().cpu()
        # an elementwise product and a sum, not a matmul: BLAS may block a matmul differently for different
        # batch sizes, and an image's attributes must not depend on its batch (last bits included)
        base = (cond[:, :, None] * self.W[None]).sum(1) + self.b
        m = len(self.deviations)
        rows = torch.empty(len(seeds), dtype=torch.long)
        u = torch.empty(len(seeds))
        for i, s in enumerate(seeds):
            # a stream of its own (the style z uses the plain seed): attributes and z stay independent
            g = torch.Generator().manual_seed((int(s) * 0x9E3779B1 + 0x5BD1E995) & ((1 << 63) - 1))
            rows[i] = torch.randint(m, (1,), generator=g)
            u[i] = torch.rand((), generator=g)
        dev = self.deviations[rows] * scale
        on = torch.zeros(len(self.names), dtype=torch.bool)
        for grp in vary:
            for n in ATTR_GROUPS[grp]:
                on[self.names.index(n)] = True
        out = base + torch.where(on[None], dev, torch.zeros_like(dev))
        if yaw_range is not None:
            out[:, self.names.index("yaw")] = (u * 2 - 1) * float(yaw_range)
        for k, v in (fixed or {}).items():
            if k not in self.names:
                raise ValueError(f"unknown attribute {k!r}; choose from {list(self.names)}")
            out[:, self.names.index(k)] = float(v)
        return out

    def summary(self) -> dict[str, Any]:
        d = self.deviations
        return {n: {"base_mean": float(self.b[j]), "deviation_sd": float(d[:, j].std())}
                for j, n in enumerate(self.names)}


#: attributes the trainer can measure differentiably on its own outputs (pose net + image formulas)
DIFF_ATTRS = ("yaw", "pitch", "brightness", "contrast", "light_lr", "light_tb", "sharpness")


def image_attributes_torch(x: torch.Tensor) -> dict[str, torch.Tensor]:
    """:func:`synthfr.face.attributes.image_attributes` on float B×3×112×112 images in [0, 1], differentiable."""
    from synthfr.face.attributes import FACE_BOX

    x0, y0, x1, y1 = FACE_BOX
    f = x[:, :, y0:y1, x0:x1]
    luma = f[:, 0] * 0.299 + f[:, 1] * 0.587 + f[:, 2] * 0.114
    mean = luma.mean(dim=(1, 2))
    safe = mean.clamp_min(1e-3)
    h, w = luma.shape[1:]
    lr = (luma[:, :, w // 2:].mean(dim=(1, 2)) - luma[:, :, :w // 2].mean(dim=(1, 2))) / safe
    tb = (luma[:, :h // 2].mean(dim=(1, 2)) - luma[:, h // 2:].mean(dim=(1, 2))) / safe
    lap = (luma[:, 1:-1, :-2] + luma[:, 1:-1, 2:] + luma[:, :-2, 1:-1] + luma[:, 2:, 1:-1] - 4 * luma[:, 1:-1, 1:-1])
    return {"brightness": mean, "contrast": luma.std(dim=(1, 2), unbiased=False) / safe, "light_lr": lr,
            "light_tb": tb, "sharpness": torch.log10(lap.var(dim=(1, 2), unbiased=False) + 1e-8)}


def measured_attributes(x: torch.Tensor, pose_net: torch.nn.Module) -> torch.Tensor:
    """B×len(ATTR_INPUTS) attributes of generated images, differentiable; NaN for those not measurable here
    (expression needs landmarks). Pose comes from synthfr's pose *network* (trained on landmark labels), so the
    independent landmark check of the outputs stays independent."""
    out = torch.full((x.shape[0], len(ATTR_INPUTS)), float("nan"), device=x.device, dtype=x.dtype)
    yp = pose_net(x)
    cols = {"yaw": yp[:, 0], "pitch": yp[:, 1] + float(getattr(pose_net.cfg, "pitch_offset", 0.0)),
            **image_attributes_torch(x)}
    for n, v in cols.items():
        out[:, ATTR_INPUTS.index(n)] = v
    return out
