"""Head pose (yaw, pitch) of aligned faces: landmark-based labels and a small differentiable estimator.

Labels (:func:`landmark_pose`): dlib's 68-point shape predictor on the aligned face (upscaled to 224 px, with
a fixed box: aligned faces all sit in the same place), then :func:`cv2.solvePnP` of six landmarks (nose tip
30, chin 8, outer eye corners 36/45, mouth corners 48/54) against a generic 3-D face template, pinhole camera
with focal length = image width. Angles in degrees:

* **yaw** > 0 when the face turns towards the image's right side (its own left), 0 = frontal;
* **pitch** > 0 when the face looks up (relative to the template's neutral, so frontal faces read ≈ 0 after
  the dataset median is subtracted; see :data:`PoseEstimator.pitch_offset`).

Mirroring an image negates its yaw (used as augmentation and checked in the tests).

Estimator (:class:`PoseNet`): a ~0.1 M-parameter CNN on ``N×3×112×112`` images in [0, 1] predicting
``(yaw, pitch)`` in degrees; differentiable, so AttrOP can push a generator's output towards a target pose.
It is trained here on aligned CelebA + UTKFace with the landmark labels (``synthfr train-pose``); weights ship
in ``synthfr/weights/pose-small``. Real faces in those sets are mostly within ±45° yaw, so predictions beyond
that are extrapolations (reported in docs/model_card.md).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["landmark_pose", "label_faces", "PoseNet", "PoseConfig", "train_pose", "load_pose_estimator",
           "default_pose_dir", "TEMPLATE_3D", "TEMPLATE_IDX"]

#: generic 3-D face model (arbitrary units, x right, y up, z towards the camera) for six iBUG landmarks
TEMPLATE_3D = np.array([
    (0.0, 0.0, 0.0),          # 30 nose tip
    (0.0, -330.0, -65.0),     # 8 chin
    (-225.0, 170.0, -135.0),  # 36 left eye outer corner (image left)
    (225.0, 170.0, -135.0),   # 45 right eye outer corner
    (-150.0, -150.0, -125.0),  # 48 left mouth corner
    (150.0, -150.0, -125.0),  # 54 right mouth corner
], dtype=np.float64)
TEMPLATE_IDX = (30, 8, 36, 45, 48, 54)

#: fixed face box (left, top, right, bottom) for the landmark predictor on aligned faces upscaled to 224 px
#: (median HOG box over aligned CelebA faces)
ALIGNED_BOX_224 = (29, 62, 194, 214)


def landmark_pose(points68: np.ndarray, size: float) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees from 68 landmarks of an image ``size`` pixels wide (solvePnP)."""
    import cv2

    pts = np.asarray(points68, dtype=np.float64)[list(TEMPLATE_IDX)]
    f = float(size)
    cam = np.array([[f, 0, size / 2], [0, f, size / 2], [0, 0, 1]], dtype=np.float64)
    # image y grows downwards; flip the template's y so that both frames agree (y down, z away)
    obj = TEMPLATE_3D * np.array([1.0, -1.0, -1.0])
    # start from a frontal head at the distance that matches the outer-eye-corner span (450 template units):
    # without a guess the iterative solver lands on the mirrored solution (|roll| ≈ 180°) for ~20 % of faces
    tz = f * 450.0 / max(float(np.linalg.norm(pts[3] - pts[2])), 1e-6)
    rvec0, tvec0 = np.zeros((3, 1)), np.array([[0.0], [0.0], [tz]])
    ok, rvec, _ = cv2.solvePnP(obj, pts, cam, np.zeros(4), rvec0, tvec0, useExtrinsicGuess=True,
                               flags=cv2.SOLVEPNP_ITERATIVE)
    if not ok:
        return float("nan"), float("nan"), float("nan")
    r, _ = cv2.Rodrigues(rvec)
    if abs(np.degrees(np.arctan2(r[1, 0], r[0, 0]))) > 90:
        # the solver fell into the mirrored solution (roll near ±180°; ~20 % of aligned CelebA faces): start again
        # from an upright face in front of the camera, which converges to the real pose
        ok, rvec, _ = cv2.solvePnP(obj, pts, cam, np.zeros(4), rvec=np.zeros((3, 1)),
                                   tvec=np.array([[0.0], [0.0], [1500.0]]), useExtrinsicGuess=True,
                                   flags=cv2.SOLVEPNP_ITERATIVE)
        if not ok:
            return float("nan"), float("nan"), float("nan")
        r, _ = cv2.Rodrigues(rvec)
    # R maps face coordinates to camera coordinates; decompose as R = Rz(roll) Ry(yaw) Rx(pitch)
    yaw = np.degrees(np.arcsin(-np.clip(r[2, 0], -1, 1)))
    pitch = np.degrees(np.arctan2(r[2, 1], r[2, 2]))
    roll = np.degrees(np.arctan2(r[1, 0], r[0, 0]))
    # face turning to the image's right moves the nose to the right: report that as positive yaw
    return float(-yaw), float(-pitch), float(roll)


def label_faces(images: np.ndarray, progress: bool = False) -> np.ndarray:
    """Landmark pose labels (N×3: yaw, pitch, roll in degrees) of aligned uint8 N×112×112×3 faces.

    Rows whose solution is degenerate (|roll| > 60° on an aligned face) are NaN."""
    import dlib
    from PIL import Image

    from synthfr.face.detect import model_path

    sp = dlib.shape_predictor(model_path("pose68"))
    box = dlib.rectangle(*ALIGNED_BOX_224)
    out = np.full((len(images), 3), np.nan, dtype=np.float32)
    it = range(len(images))
    if progress:
        from tqdm import tqdm

        it = tqdm(it, desc="pose labels (68 landmarks + solvePnP)", unit="img")
    for i in it:
        im = np.asarray(Image.fromarray(images[i]).resize((224, 224), Image.BILINEAR))
        s = sp(np.ascontiguousarray(im), box)
        pts = np.array([[s.part(j).x, s.part(j).y] for j in range(68)], dtype=np.float64)
        ang = landmark_pose(pts, 224)
        if abs(ang[2]) <= 60:  # |roll| near 180: solvePnP's mirrored solution, not a usable label
            out[i] = ang
    return out


@dataclass
class PoseConfig:
    """The pose estimator's architecture and its label statistics (stored in ``config.json``)."""

    channels: Sequence[int] = (16, 32, 64, 96)
    """Channels of the stride-2 conv stages."""
    pitch_offset: float = 0.0
    """Median landmark pitch of the training faces; subtracted from labels so frontal ≈ 0."""
    yaw_scale: float = 30.0
    """Output scale in degrees (the net predicts angles / scale)."""
    downsample: int = 2
    """Input average-pooling factor (pose needs no fine detail; 2 = the net sees 56×56)."""


class PoseNet(nn.Module):
    """Small CNN (~0.15 M parameters): aligned faces ``N×3×112×112`` in [0, 1] -> ``N×2`` (yaw, pitch) in degrees; differentiable."""

    def __init__(self, cfg: PoseConfig | None = None):
        super().__init__()
        self.cfg = cfg or PoseConfig()
        layers: list[nn.Module] = []
        cin = 3
        for c in self.cfg.channels:
            layers += [nn.Conv2d(cin, c, 3, 2, 1), nn.GroupNorm(min(8, c), c), nn.SiLU(),
                       nn.Conv2d(c, c, 3, 1, 1), nn.GroupNorm(min(8, c), c), nn.SiLU()]
            cin = c
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(cin * 2, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.cfg.downsample > 1:
            x = F.avg_pool2d(x, self.cfg.downsample)
        h = self.body(x * 2 - 1)
        # mean and max pooling keep where the features are coarse but cheap; pose needs left/right asymmetry,
        # which the convolutions see before pooling
        h = torch.cat([h.mean(dim=(2, 3)), h.amax(dim=(2, 3))], dim=1)
        return self.head(h) * self.cfg.yaw_scale


def default_pose_dir() -> Path:
    import synthfr.weights

    return Path(synthfr.weights.__file__).resolve().parent / "pose-small"


def load_pose_estimator(weights: str | Path | None = None, device: Any = "cpu") -> PoseNet:
    """The trained pose estimator (frozen, eval) from ``weights`` (default: the package's ``pose-small``)."""
    from safetensors.torch import load_file

    from synthfr.utils.io import read_json

    folder = Path(weights).expanduser() if weights is not None else default_pose_dir()
    if not (folder / "model.safetensors").is_file() or not (folder / "config.json").is_file():
        raise FileNotFoundError(
            f"pose estimator weights not found in {folder} (model.safetensors + config.json); train them with "
            "`synthfr train-pose --data ALIGNED... --out DIR`")
    meta = read_json(folder / "config.json")
    cfg = PoseConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in meta["model"].items()})
    net = PoseNet(cfg)
    net.load_state_dict(load_file(str(folder / "model.safetensors")))
    net.eval().to(device)
    for p in net.parameters():
        p.requires_grad_(False)
    return net


def train_pose(images: np.ndarray, labels: np.ndarray, out: str | Path | None = None, *, epochs: int = 8,
               batch_size: int = 64, lr: float = 2e-3, seed: int = 0, val_fraction: float = 0.05,
               max_abs_yaw: float = 90.0, progress: bool = True, threads: int | None = None) -> dict[str, Any]:
    """Train :class:`PoseNet` on aligned faces and their landmark labels (N×≥2: yaw, pitch); mirrors as augmentation.

    Returns a dict with validation MAE (degrees) and, with ``out``, writes ``model.safetensors`` +
    ``config.json`` there.
    """
    from synthfr.utils.run_dir import save_safetensors, write_config
    from synthfr.utils.seeds import derive_seed

    if threads:
        torch.set_num_threads(threads)
    lab = np.asarray(labels, dtype=np.float32)[:, :2]
    ok = np.isfinite(lab).all(1) & (np.abs(lab[:, 0]) <= max_abs_yaw) & (np.abs(lab[:, 1]) <= 60)
    idx = np.flatnonzero(ok)
    if len(idx) < 10:
        raise ValueError(f"only {len(idx)} faces have usable pose labels; need more aligned faces")
    offset = float(np.median(lab[idx, 1]))
    rng = np.random.default_rng(derive_seed(seed, "pose-split"))
    rng.shuffle(idx)
    n_val = max(1, int(len(idx) * val_fraction))
    val, tr = idx[:n_val], idx[n_val:]
    torch.manual_seed(derive_seed(seed, "pose-init"))
    cfg = PoseConfig(pitch_offset=offset)
    net = PoseNet(cfg)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    steps = epochs * max(1, len(tr) // batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.1)
    target = torch.from_numpy(lab - np.array([0.0, offset], np.float32))
    imgs = torch.from_numpy(np.ascontiguousarray(images))
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=steps, desc="train-pose", unit="step")
    step = 0
    for ep in range(epochs):
        perm = np.random.default_rng(derive_seed(seed, "pose-epoch", ep)).permutation(tr)
        g = torch.Generator().manual_seed(derive_seed(seed, "pose-aug", ep))
        net.train()
        for i in range(0, len(perm) - batch_size + 1, batch_size):
            b = torch.from_numpy(perm[i:i + batch_size])
            x = imgs[b].permute(0, 3, 1, 2).float() / 255.0
            y = target[b].clone()
            flip = torch.rand(len(b), generator=g) < 0.5
            x = torch.where(flip[:, None, None, None], x.flip(-1), x)
            y[:, 0] = torch.where(flip, -y[:, 0], y[:, 0])
            # photometric jitter so the estimator does not key on colour (generated faces differ in tone)
            x = (x * (0.7 + 0.6 * torch.rand(len(b), 1, 1, 1, generator=g))
                 + 0.1 * (torch.rand(len(b), 1, 1, 1, generator=g) - 0.5)).clamp(0, 1)
            loss = F.smooth_l1_loss(net(x), y, beta=2.0)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{float(loss.detach()):.2f}")
    if bar is not None:
        bar.close()
    net.eval()
    with torch.no_grad():
        xv = imgs[torch.from_numpy(val)].permute(0, 3, 1, 2).float() / 255.0
        pv = torch.cat([net(xv[i:i + 256]) for i in range(0, len(xv), 256)])
        err = (pv - target[torch.from_numpy(val)]).abs()
    res = {"n_train": int(len(tr)), "n_val": int(len(val)), "val_mae_yaw": float(err[:, 0].mean()),
           "val_mae_pitch": float(err[:, 1].mean()), "pitch_offset": offset, "epochs": epochs,
           "label_yaw_abs_p95": float(np.percentile(np.abs(lab[idx, 0]), 95))}
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        save_safetensors(out / "model.safetensors", net.state_dict())
        write_config(out / "config.json", {"model": {k: (list(v) if isinstance(v, tuple) else v)
                                                   for k, v in dataclasses.asdict(cfg).items()},
                                         "outputs": ["yaw_deg", "pitch_deg"], "training": res,
                                         "labels": "dlib 68 landmarks + cv2.solvePnP, 6-point 3-D template"})
        for name in ("model.safetensors", "config.json"):
            (out / name).chmod(0o644)
    return {**res, "model": net}


def train_pose_from_folders(dirs: Sequence[str | Path], out: str | Path, *, labels_cache: str | Path | None = None,
                            **kw: Any) -> dict[str, Any]:
    """Load aligned faces from ``dirs``, label them (cached in ``labels_cache``), and :func:`train_pose`."""
    from PIL import Image

    from synthfr.utils.images import is_image_file

    files: list[Path] = []
    for d in dirs:
        root = Path(d).expanduser()
        if not root.is_dir():
            raise FileNotFoundError(f"{root} does not exist; pass folders of aligned faces (synthfr align output)")
        if "lfw" in root.name.lower():
            raise ValueError(f"{root}: LFW is for evaluation only; train the pose estimator on other faces")
        files += sorted(p for p in root.rglob("*") if is_image_file(p))
    if not files:
        raise ValueError(f"no images under {', '.join(map(str, dirs))}")
    images = np.stack([np.asarray(Image.open(p).convert("RGB")) for p in files])
    if images.shape[1:] != (112, 112, 3):
        raise ValueError(f"expected aligned 112×112 faces, got {images.shape[1:]}; run synthfr align first")
    labels = None
    names = np.array([str(p) for p in files])
    if labels_cache is not None and Path(labels_cache).is_file():
        z = np.load(labels_cache)
        if len(z["names"]) == len(names) and (z["names"] == names).all():
            labels = z["labels"]
    if labels is None:
        labels = label_faces(images, progress=kw.get("progress", True))
        if labels_cache is not None:
            Path(labels_cache).parent.mkdir(parents=True, exist_ok=True)
            np.savez(labels_cache, names=names, labels=labels)
    res = train_pose(images, labels, out, **kw)
    res["n_labelled"] = int(np.isfinite(labels).all(1).sum())
    res["n_images"] = int(len(files))
    return res
