"""Attribute distributions of a face set, per dataset and per identity, beside a real reference.

Per face (:mod:`synthfr.face.attributes`): yaw / pitch / roll from 68 landmarks + solvePnP, mouth opening and
smile width, brightness / contrast / light direction, sharpness (variance of the Laplacian), whether dlib's HOG
detector finds the face; plus yaw / pitch from synthfr's pose *network* (:func:`synthfr.face.pose.
load_pose_estimator`, an independent second estimate; ``yaw_net`` / ``pitch_net``, its pitch is relative to the
median training face, the landmark pitch to the 3-D template's neutral).

Per attribute and set: mean, standard deviation, percentiles, a histogram on edges shared with the reference,
and the **per-identity spread** — the standard deviation of the attribute within one identity, averaged over
identities with at least two measured faces. That number is what "intra-class variation" means in a unit a
person reads (e.g. "the images of one identity differ by 4° of yaw on average; real people in CelebA by 12°").
Against the reference, the 1-D Wasserstein distance (the mean absolute shift between the two distributions, in
the attribute's unit) summarises how far apart they are.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np

from synthfr.errors import InputError

__all__ = ["load_faces", "measure_faces", "attribute_stats", "wasserstein_1d", "compare_attributes",
           "folder_attributes", "EXTRA_UNITS"]

#: units of the measures added here to face/attributes' own
EXTRA_UNITS = {"yaw_net": "degrees", "pitch_net": "degrees", "detected": "fraction"}


def load_faces(root: str | Path, max_images: int = 2000, seed: int = 0, what: str = "dataset"
               ) -> tuple[np.ndarray, np.ndarray | None, list[str], int]:
    """Aligned uint8 faces of a folder: ``(images, labels or None, relative paths, faces not aligned)``.

    An identity tree (``<identity>/<image>``) keeps whole identities (drawn at random until ``max_images``), so
    per-identity spreads stay measurable; a flat folder gives a random subset. Images that are not 112×112 are
    aligned (those without a detectable face are counted); an unreadable file is a one-line error.
    """
    from synthfr.face.load import IMAGE_SIZE, detect_align, read_rgb
    from synthfr.face.embed import list_images

    root = Path(root)
    files = list_images(root)
    if not files:
        raise InputError(f"{what} {root}: no images (.jpg/.png/...) found")
    rels = [f.relative_to(root) for f in files]
    rng = np.random.default_rng(seed)
    tree = all(len(r.parts) == 2 for r in rels)
    if tree:
        names = sorted({r.parts[0] for r in rels})
        by_id: dict[str, list[int]] = {}
        for i, r in enumerate(rels):
            by_id.setdefault(r.parts[0], []).append(i)
        pick: list[int] = []
        for n in rng.permutation(len(names)):
            if len(pick) >= max_images:
                break
            pick.extend(by_id[names[n]])
        pick = sorted(pick)
    else:
        pick = sorted(rng.permutation(len(files))[:max_images].tolist())
    images, labels, paths, missed = [], [], [], 0
    for i in pick:
        try:
            img = read_rgb(files[i])
        except ValueError as e:
            raise InputError(f"{what} {root}: cannot read image {rels[i].as_posix()} "
                             f"({str(e).splitlines()[0]}); remove or replace it") from None
        if img.shape[:2] != (IMAGE_SIZE, IMAGE_SIZE):
            img, _ = detect_align(img)
            if img is None:
                missed += 1
                continue
        images.append(img)
        paths.append(rels[i].as_posix())
        labels.append(rels[i].parts[0])
    if not images:
        raise InputError(f"{what} {root}: no face could be aligned in {len(pick)} images")
    lab = np.unique(labels, return_inverse=True)[1] if tree else None
    return np.stack(images), lab, paths, missed


def measure_faces(images: np.ndarray, progress: bool = False, pose_net: bool = True, detect: bool = True,
                  measure: Callable[..., dict[str, np.ndarray]] | None = None) -> dict[str, np.ndarray]:
    """Every per-face measure as ``{name: float32 N}`` (``detected`` is 0/1)."""
    import torch

    from synthfr.face.attributes import detect_faces, measure_attributes

    out = dict((measure or measure_attributes)(images, progress=progress))
    if pose_net:
        from synthfr.face.pose import load_pose_estimator

        net = load_pose_estimator()
        rows = []
        with torch.no_grad():
            for s in range(0, len(images), 256):
                x = torch.from_numpy(np.ascontiguousarray(images[s:s + 256])).permute(0, 3, 1, 2).float() / 255.0
                rows.append(net(x).numpy())
        yp = np.concatenate(rows) if rows else np.zeros((0, 2), np.float32)
        out["yaw_net"], out["pitch_net"] = yp[:, 0].astype(np.float32), yp[:, 1].astype(np.float32)
    if detect:
        out["detected"] = detect_faces(images, progress=progress).astype(np.float32)
    return {k: np.asarray(v, dtype=np.float32) for k, v in out.items()}


def per_identity_std(values: np.ndarray, labels: np.ndarray) -> tuple[float, int]:
    """Mean over identities (with >= 2 finite values) of the within-identity standard deviation (ddof=1)."""
    v = np.asarray(values, dtype=np.float64)
    ok = np.isfinite(v)
    lab = np.asarray(labels)[ok]
    v = v[ok]
    stds = []
    for c in np.unique(lab):
        x = v[lab == c]
        if len(x) >= 2:
            stds.append(x.std(ddof=1))
    return (float(np.mean(stds)) if stds else float("nan")), len(stds)


def attribute_stats(values: np.ndarray, labels: np.ndarray | None, edges: np.ndarray) -> dict[str, Any]:
    """Distribution summary of one attribute (NaN = not measurable on that face, e.g. landmark pose failed)."""
    v = np.asarray(values, dtype=np.float64)
    ok = np.isfinite(v)
    f = v[ok]
    pct = np.percentile(f, [5, 25, 50, 75, 95]).tolist() if len(f) else [float("nan")] * 5
    out: dict[str, Any] = {"measured": int(ok.sum()), "missing_fraction": float(1 - ok.mean()) if len(v) else 1.0,
                           "mean": float(f.mean()) if len(f) else float("nan"),
                           "std": float(f.std(ddof=1)) if len(f) > 1 else float("nan"),
                           "p05": pct[0], "p25": pct[1], "median": pct[2], "p75": pct[3], "p95": pct[4],
                           "hist": {"edges": np.asarray(edges).tolist(),
                                    "counts": np.histogram(np.clip(f, edges[0], edges[-1]), bins=edges)[0]
                                    .astype(float).tolist()}}
    if labels is not None:
        out["per_identity_std"], out["identities_measured"] = per_identity_std(v, labels)
    return out


def wasserstein_1d(a: Any, b: Any) -> float:
    """1-D Wasserstein-1 distance between two empirical distributions: ``∫ |F_a(x) − F_b(x)| dx``."""
    a = np.sort(np.asarray(a, dtype=np.float64))
    b = np.sort(np.asarray(b, dtype=np.float64))
    if len(a) == 0 or len(b) == 0:
        return float("nan")
    x = np.sort(np.concatenate([a, b]))
    fa = np.searchsorted(a, x[:-1], side="right") / len(a)
    fb = np.searchsorted(b, x[:-1], side="right") / len(b)
    return float(np.sum(np.abs(fa - fb) * np.diff(x)))


def _edges(*arrays: np.ndarray, bins: int = 40) -> np.ndarray:
    v = np.concatenate([a[np.isfinite(a)] for a in arrays]) if arrays else np.zeros(0)
    if len(v) == 0:
        return np.linspace(0.0, 1.0, bins + 1)
    lo, hi = np.percentile(v, [0.5, 99.5])
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    return np.linspace(lo, hi, bins + 1)


def compare_attributes(ds: dict[str, np.ndarray], ds_labels: np.ndarray | None,
                       ref: dict[str, np.ndarray] | None = None, ref_labels: np.ndarray | None = None
                       ) -> dict[str, Any]:
    """Per-attribute statistics of the dataset (and the reference, on shared histogram edges) and their gaps."""
    from synthfr.face.attributes import UNITS

    names = [k for k in ds if k != "detected"]
    units = {**UNITS, **EXTRA_UNITS}
    out: dict[str, Any] = {"attributes": names, "units": {k: units.get(k, "") for k in names},
                           "dataset": {"faces": int(len(next(iter(ds.values())))) if ds else 0,
                                       "identities": int(len(np.unique(ds_labels))) if ds_labels is not None
                                       else None, "stats": {}},
                           "reference": None, "comparison": {}}
    if "detected" in ds:
        out["dataset"]["detection_rate"] = float(np.mean(ds["detected"]))
    if ref is not None:
        out["reference"] = {"faces": int(len(next(iter(ref.values())))),
                            "identities": int(len(np.unique(ref_labels))) if ref_labels is not None else None,
                            "stats": {}}
        if "detected" in ref:
            out["reference"]["detection_rate"] = float(np.mean(ref["detected"]))
    for k in names:
        r = ref.get(k) if ref is not None else None
        edges = _edges(ds[k], *([r] if r is not None else []))
        out["dataset"]["stats"][k] = attribute_stats(ds[k], ds_labels, edges)
        if r is not None:
            rs = out["reference"]["stats"][k] = attribute_stats(r, ref_labels, edges)
            d = out["dataset"]["stats"][k]
            a, b = ds[k][np.isfinite(ds[k])], r[np.isfinite(r)]
            spread_ratio = (d["per_identity_std"] / rs["per_identity_std"]
                            if ref_labels is not None and ds_labels is not None and rs["per_identity_std"] > 0
                            else None)
            out["comparison"][k] = {"wasserstein": wasserstein_1d(a, b), "mean_difference": d["mean"] - rs["mean"],
                                    "std_ratio": d["std"] / rs["std"] if rs["std"] > 0 else None,
                                    "per_identity_std_ratio": spread_ratio}
    return out


def folder_attributes(dataset: str | Path, reference: str | Path | None = None, *, max_images: int = 2000,
                      seed: int = 0, progress: bool = True, **measure_kw: Any) -> dict[str, Any]:
    """Load, measure and compare the attributes of a dataset folder and (optionally) a reference folder."""
    imgs, lab, _, missed = load_faces(dataset, max_images, seed, "dataset")
    ds = measure_faces(imgs, progress=progress, **measure_kw)
    ref = rlab = None
    rmissed = 0
    if reference is not None:
        rimgs, rlab, _, rmissed = load_faces(reference, max_images, seed, "reference")
        ref = measure_faces(rimgs, progress=progress, **measure_kw)
    out = compare_attributes(ds, lab, ref, rlab)
    out["dataset"]["not_aligned"] = missed
    if out["reference"] is not None:
        out["reference"]["not_aligned"] = rmissed
    out["max_images"] = int(max_images)
    return out
