"""Five-point similarity alignment to the ArcFace/insightface 112×112 template.

The template (:data:`ARCFACE_DST`) is insightface's ``arcface_dst``: left eye, right eye, nose tip, left and
right mouth corner, in pixels of a 112×112 image ("left" = the point on the image's left). The transform
from detected landmarks to the template is the least-squares similarity (rotation, uniform scale,
translation) of Umeyama (1991); the warp is bilinear with a black border, as in insightface's ``norm_crop``.

Public functions:
    :func:`umeyama`, :func:`template`, :func:`estimate_transform`, :func:`align_face` (maths and warp),
    :func:`load_image` (any file -> RGB uint8), :func:`align_image` (detect + align one image),
    :func:`align_folder` (a whole tree, robust, multiprocess; backs ``synthfr align``).
"""
from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from synthfr.utils.images import IMAGE_EXTENSIONS

__all__ = [
    "ARCFACE_DST", "IMAGE_EXTENSIONS", "AlignConfig", "umeyama", "template", "estimate_transform",
    "align_face", "load_image", "align_image", "align_folder", "list_images",
]

#: insightface's ``arcface_dst``: five landmarks of the 112×112 ArcFace crop (x, y in pixels).
ARCFACE_DST = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]],
    dtype=np.float64,
)


@dataclass
class AlignConfig:
    """Settings of :func:`align_image` / :func:`align_folder`."""

    size: int = 112
    """Output side in pixels. Multiples of 112 scale the template; other sizes use insightface's 128-based
    rule (template scaled by size/128 and shifted right by 8·size/128)."""
    detector: str = "hog"
    """Face detector: ``hog`` (dlib HOG, fast), ``cnn`` (dlib MMOD CNN, slower, finds harder faces), or
    ``hog+cnn`` (CNN only when HOG finds nothing)."""
    upsample: int | None = None
    """Times the image is upsampled before detection; ``None`` = automatic (0, then 1 when nothing is found,
    then 2 for images smaller than 160 px)."""
    pick: str = "largest"
    """Which face to keep when several are found: ``largest`` (box area), ``central`` (box centre nearest
    the image centre) or ``score`` (detector confidence)."""
    min_size: int = 32
    """Images whose shorter side is below this many pixels are reported as too small."""
    pad_retry: float = 0.5
    """When no face is found, pad the image by this fraction of its size on every side (edge pixels
    repeated) and search again; helps tightly cropped faces. 0 disables."""
    quality: int = 95
    """JPEG quality of written crops."""


# ------------------------------------------------------------------------------------------------ maths
def umeyama(src: np.ndarray, dst: np.ndarray, estimate_scale: bool = True) -> np.ndarray:
    """Least-squares similarity transform mapping ``src`` (N×2) onto ``dst`` (N×2) (Umeyama 1991).

    Returns the 3×3 homogeneous matrix ``T`` minimising ``sum ||T·src_i - dst_i||²`` over rotations, a
    uniform scale (when ``estimate_scale``) and translations; reflections are excluded.
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    if src.shape != dst.shape or src.ndim != 2 or src.shape[1] != 2 or len(src) < 2:
        raise ValueError(f"umeyama needs two N×2 point sets with N ≥ 2, got {src.shape} and {dst.shape}")
    n, dim = src.shape
    src_mean, dst_mean = src.mean(0), dst.mean(0)
    src_c, dst_c = src - src_mean, dst - dst_mean
    cov = dst_c.T @ src_c / n
    d = np.ones(dim)
    if np.linalg.det(cov) < 0:
        d[-1] = -1
    u, s, vt = np.linalg.svd(cov)
    rank = np.linalg.matrix_rank(cov)
    T = np.eye(dim + 1)
    if rank == 0:
        T[:dim, dim] = dst_mean - src_mean
        return T
    if rank == dim - 1:
        if np.linalg.det(u) * np.linalg.det(vt) > 0:
            T[:dim, :dim] = u @ vt
        else:
            s_ = d[-1]
            d[-1] = -1
            T[:dim, :dim] = u @ np.diag(d) @ vt
            d[-1] = s_
    else:
        T[:dim, :dim] = u @ np.diag(d) @ vt
    scale = 1.0
    if estimate_scale:
        var = src_c.var(0).sum()
        scale = float((s * d).sum() / var) if var > 0 else 1.0
    T[:dim, :dim] *= scale
    T[:dim, dim] = dst_mean - T[:dim, :dim] @ src_mean
    return T


def template(size: int = 112) -> np.ndarray:
    """The five-point ArcFace template for an output of ``size`` pixels (insightface's ``estimate_norm``)."""
    size = int(size)
    if size <= 0:
        raise ValueError(f"size must be positive, got {size}")
    if size % 112 == 0:
        ratio, diff_x = size / 112.0, 0.0
    else:
        ratio, diff_x = size / 128.0, 8.0 * size / 128.0
    dst = ARCFACE_DST * ratio
    dst[:, 0] += diff_x
    return dst


def estimate_transform(landmarks5: np.ndarray, size: int = 112) -> np.ndarray:
    """The 2×3 matrix mapping image coordinates onto the ``size`` template (least squares over 5 points)."""
    lm = np.asarray(landmarks5, dtype=np.float64).reshape(-1, 2)
    if lm.shape != (5, 2):
        raise ValueError(f"expected five (x, y) landmarks, got shape {np.shape(landmarks5)}")
    return umeyama(lm, template(size))[:2]


def align_face(image: np.ndarray, landmarks5: np.ndarray, size: int = 112) -> np.ndarray:
    """Warp ``image`` (H×W×3 uint8 RGB) so that ``landmarks5`` land on the template; returns size×size×3."""
    import cv2

    M = estimate_transform(landmarks5, size)
    img = np.ascontiguousarray(image)
    return cv2.warpAffine(img, M, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                          borderValue=0)


# ------------------------------------------------------------------------------------------------ images
def load_image(path_or_array: Any) -> np.ndarray:
    """Read an image file (or take an array) as RGB uint8 H×W×3; greyscale/alpha/16-bit are converted.

    Raises ``ValueError`` naming the file when it cannot be decoded.
    """
    if isinstance(path_or_array, np.ndarray):
        arr = path_or_array
        if arr.ndim == 2:
            arr = np.repeat(arr[..., None], 3, axis=2)
        elif arr.ndim == 3 and arr.shape[2] == 1:
            arr = np.repeat(arr, 3, axis=2)
        elif arr.ndim == 3 and arr.shape[2] == 4:
            arr = arr[..., :3]
        if arr.ndim != 3 or arr.shape[2] != 3:
            raise ValueError(f"expected an H×W×3 RGB image array, got shape {arr.shape}")
        if arr.dtype != np.uint8:
            if np.issubdtype(arr.dtype, np.floating) and arr.max(initial=0) <= 1.0:
                arr = arr * 255.0
            arr = np.clip(np.rint(arr), 0, 255).astype(np.uint8)
        return np.ascontiguousarray(arr)
    from PIL import Image, ImageOps

    path = Path(path_or_array)
    try:
        with Image.open(path) as im:
            im.load()
            try:
                im = ImageOps.exif_transpose(im)
            except Exception:  # broken EXIF must not lose the image
                pass
            if im.mode == "I;16" or im.mode == "I":
                arr = np.asarray(im, dtype=np.float64)
                arr = arr * (255.0 / max(arr.max(), 1.0))
                return load_image(arr.astype(np.uint8))
            return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()
    except FileNotFoundError:
        raise
    except Exception as e:  # PIL raises many kinds for corrupt files
        raise ValueError(f"cannot read image {path}: {type(e).__name__}: {e}") from None


def align_image(path_or_array: Any, detector: Any = None, size: int = 112,
                config: AlignConfig | None = None) -> tuple[np.ndarray | None, str]:
    """Detect the face in one image and align it.

    Args:
        path_or_array: image file path or RGB/greyscale array.
        detector: a :class:`synthfr.face.landmarks.FaceLandmarker` (created from ``config`` when ``None``;
            pass one when aligning many images, loading the models takes about a second).
        size: output side in pixels.
    Returns:
        ``(aligned uint8 size×size×3 or None, reason)``; reason is ``"ok"`` or says why it failed.
    """
    cfg = config or AlignConfig(size=size)
    try:
        img = load_image(path_or_array)
    except FileNotFoundError as e:
        return None, f"not found: {e}"
    except ValueError as e:
        return None, f"unreadable: {e}"
    h, w = img.shape[:2]
    if min(h, w) < cfg.min_size:
        return None, f"too small: {w}x{h} px (minimum side {cfg.min_size})"
    if detector is None:
        from synthfr.face.landmarks import FaceLandmarker

        detector = FaceLandmarker.from_config(cfg)
    five, reason = detector.five_points(img)
    if five is None:
        return None, reason
    return align_face(img, five, size), "ok"


# ------------------------------------------------------------------------------------------------ folders
def list_images(root: str | Path, extensions: Iterable[str] = IMAGE_EXTENSIONS) -> list[Path]:
    """Image files under ``root`` (recursive, sorted, relative to ``root``); hidden entries are skipped."""
    from synthfr.utils.paths import walk_files

    root = Path(root)
    return [p.relative_to(root) for p in walk_files(root, extensions)]  # symlinked folders are followed


_WORKER: dict[str, Any] = {}


def _worker_init(cfg: AlignConfig) -> None:
    import cv2

    cv2.setNumThreads(1)
    from synthfr.face.landmarks import FaceLandmarker

    _WORKER["cfg"] = cfg
    _WORKER["det"] = FaceLandmarker.from_config(cfg)


def _save(arr: np.ndarray, path: Path, quality: int) -> None:
    from PIL import Image

    from synthfr.utils.io import atomic_write_bytes

    fmt = {".jpg": "JPEG", ".jpeg": "JPEG"}.get(path.suffix.lower())
    kw = {"quality": quality} if fmt == "JPEG" else {}
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format=fmt or Image.registered_extensions().get(path.suffix.lower(), "PNG"),
                              **kw)
    atomic_write_bytes(path, buf.getvalue())  # the format follows the input's suffix (a .tif stays a .tif)


def _align_task(job: tuple[str, str]) -> tuple[str, str]:
    src, dst = job
    cfg: AlignConfig = _WORKER["cfg"]
    try:
        out, reason = align_image(src, detector=_WORKER["det"], size=cfg.size, config=cfg)
        if out is None:
            return src, reason
        _save(out, Path(dst), cfg.quality)
        return src, "ok"
    except Exception as e:  # never stop a folder run on one file
        return src, f"error: {type(e).__name__}: {e}"


def align_folder(in_dir: str | Path, out_dir: str | Path, size: int = 112, *, json_path: str | Path | None = None,
                 workers: int | None = None, overwrite: bool = False, progress: bool = True,
                 config: AlignConfig | None = None, **config_kw: Any) -> dict[str, Any]:
    """Align every image under ``in_dir`` into ``out_dir``, keeping the folder tree and file names.

    Never stops on a bad file: unreadable files, images without a detectable face and tiny images are
    listed in the report's ``failed`` entries with a reason. Greyscale images are converted to RGB.
    Existing outputs are kept (and counted as aligned) unless ``overwrite``. The settings and package
    versions are recorded in ``OUT_DIR/align.yaml``.

    Args:
        in_dir, out_dir: input tree and output root (created).
        size: output side in pixels.
        json_path: also write the report there (plain JSON).
        workers: processes (default: all CPU cores; 1 = in-process).
        config / config_kw: :class:`AlignConfig` or its fields as keywords.
    Returns:
        ``{"images": N, "aligned": M, "failed": [{"path": rel, "reason": ...}], "size": size}``.
    """
    in_dir, out_dir = Path(in_dir), Path(out_dir)
    if not in_dir.is_dir():
        raise FileNotFoundError(f"input folder {in_dir} does not exist (give a folder of face images)")
    cfg = config or AlignConfig(size=size, **config_kw)
    if config is not None and size != cfg.size:
        cfg = AlignConfig(**{**cfg.__dict__, "size": size})
    if in_dir.resolve() == out_dir.resolve():
        raise ValueError(f"output folder {out_dir} is the input folder; choose another output folder")
    rel_paths = list_images(in_dir)
    if not rel_paths:  # refuse before the output folder exists
        from synthfr.errors import InputError

        raise InputError(f"no images (.jpg/.png/...) found under {in_dir}; point it at a folder of face photos")
    jobs, done = [], 0
    for rel in rel_paths:
        dst = out_dir / rel
        if not overwrite and dst.exists():
            done += 1
            continue
        jobs.append((str(in_dir / rel), str(dst)))
    failed: list[dict[str, str]] = []
    aligned = done
    workers = workers if workers is not None else (os.cpu_count() or 1)
    workers = max(1, min(workers, len(jobs)))

    def consume(results: Iterable[tuple[str, str]]) -> None:
        nonlocal aligned
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=len(jobs), desc=f"align {in_dir.name}", unit="img")
        for src, reason in results:
            if reason == "ok":
                aligned += 1
            else:
                failed.append({"path": str(Path(src).relative_to(in_dir)), "reason": reason})
            if bar is not None:
                bar.update(1)
        if bar is not None:
            bar.close()

    out_dir.mkdir(parents=True, exist_ok=True)
    from synthfr.utils.provenance import write_provenance

    write_provenance(out_dir, {"in_dir": str(in_dir), **cfg.__dict__}, name="align.yaml")
    if jobs:
        if workers == 1:
            _worker_init(cfg)
            consume(map(_align_task, jobs))
        else:
            import multiprocessing as mp

            # spawn, not fork: a forked child deadlocks in OpenCV (and torch) when the parent has already
            # started their thread pools. Scripts calling align_folder need the usual
            # `if __name__ == "__main__":` guard.
            # A failing worker initializer makes multiprocessing.Pool respawn workers forever: run the same
            # initialisation here first so a missing dependency or model fails once, with its real error.
            _worker_init(cfg)
            ctx = mp.get_context("spawn")
            with ctx.Pool(workers, initializer=_worker_init, initargs=(cfg,)) as pool:
                consume(pool.imap_unordered(_align_task, jobs, chunksize=8))
    failed.sort(key=lambda f: f["path"])
    report = {"images": len(rel_paths), "aligned": aligned, "failed": failed, "size": cfg.size}
    if json_path is not None:
        from synthfr.utils.io import write_json

        write_json(json_path, report)
    return report
