"""The training data of the generator: aligned faces, their embeddings (and their mirrors'), attributes.

:func:`prepare_data` packs the images and embeddings into a cache keyed by the file list and the embedder;
:func:`prepare_conditioning` adds what synthfr-v2 conditions on (attributes, identity conditions, the
attribute prior used at generation time).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from synthfr.genmodel.conditioning import (ATTR_INPUTS, AttributePrior, identity_conditions, mirror_signs,
                                           prepare_attributes)
from synthfr.genmodel.train_config import GenTrainConfig
from synthfr.utils.images import IMAGE_EXTENSIONS as IMAGE_EXTS
from synthfr.utils.io import atomic_write_text, read_json, write_json
from synthfr.utils.seeds import derive_seed

__all__ = ["TrainData", "prepare_data", "make_embedder", "embed_with_features", "prepare_conditioning",
           "batch_attributes"]


def make_embedder(name: str, device: torch.device) -> nn.Module:
    from synthfr.face.embedders import refuse_judge
    from synthfr.registry import create_from_spec

    refuse_judge(name, "the generator trainer")  # the judge (sface) never conditions or trains a generator
    emb = create_from_spec("embedder", name, offer={"device": str(device)})
    if not getattr(emb, "differentiable", False):
        raise ValueError(f"embedder {name!r} is not differentiable; the generator needs e.g. dlib-torch")
    for p in emb.parameters():
        p.requires_grad_(False)
    return emb.eval()


def embed_with_features(emb: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Unit embeddings and feature maps in one pass when the embedder allows it (dlib-torch, test-tiny)."""
    net = getattr(emb, "net", None)
    if net is not None and hasattr(net, "stages") and hasattr(net, "fc") and hasattr(emb, "chips"):
        feats = net.stages(emb.chips(x))
        return F.normalize(net.fc(feats[-1].mean(dim=(2, 3))), dim=1), feats
    if hasattr(emb, "fc") and hasattr(emb, "features"):
        feats = emb.features(x)
        return F.normalize(emb.fc(feats[-1].mean(dim=(2, 3))), dim=1), feats
    return emb(x), emb.features(x)


@dataclass
class TrainData:
    images: torch.Tensor          # N×112×112×3 uint8
    emb: torch.Tensor             # N×2×D float32 (original, mirrored)
    identity: list[str]           # N identity keys ("<root>/<folder>" or the file for flat folders)
    train_idx: np.ndarray
    val_idx: np.ndarray
    fingerprint: str
    mean: torch.Tensor            # D
    chol: torch.Tensor            # D×D Cholesky factor of the embedding covariance
    attrs: torch.Tensor | None = None     # N×A raw attributes (conditioning.ATTR_INPUTS; NaN = unmeasured)
    cond_id: torch.Tensor | None = None   # N×D identity conditions (cond_mode=identity)


def _list_images(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_EXTS and p.is_file())


def prepare_data(dirs: Sequence[str | Path], cache: str | Path, embedder: str = "dlib-torch",
                 device: str = "auto", val_identities: int = 16, seed: int = 0, batch_size: int = 64,
                 progress: bool = True) -> TrainData:
    """Pack the aligned images of ``dirs`` and their (and their mirrors') embeddings into ``cache`` (reused).

    The cache is keyed by the file list and the embedder; a changed list or embedder re-packs.
    """
    from PIL import Image

    from synthfr.utils.device import resolve_device

    if not dirs:
        raise ValueError("no training data: pass --data with folders of aligned faces (synthfr align output)")
    files: list[tuple[Path, str]] = []
    for d in dirs:
        root = Path(d).expanduser()
        if not root.is_dir():
            raise FileNotFoundError(f"training data folder {root} does not exist; align faces first "
                                    "(synthfr align IN OUT) and pass OUT")
        if "lfw" in root.name.lower():
            raise ValueError(f"{root}: LFW is the benchmark and must never be used to train the generator")
        for p in _list_images(root):
            rel = p.relative_to(root)
            ident = f"{root.name}/{rel.parent.as_posix()}" if len(rel.parts) > 1 else f"{root.name}/{rel.as_posix()}"
            files.append((p, ident))
    if not files:
        raise ValueError(f"no images found under {', '.join(map(str, dirs))}")
    h = hashlib.sha256(embedder.encode())
    for p, _ in files:
        h.update(str(p).encode() + b"\0")
    fp = h.hexdigest()[:16]
    cache = Path(cache)
    meta_path = cache / "meta.json"
    if meta_path.is_file() and read_json(meta_path).get("fingerprint") == fp:
        images = np.load(cache / "images.npy", mmap_mode=None)
        emb = np.load(cache / "emb.npy")
    else:
        cache.mkdir(parents=True, exist_ok=True)
        images = np.empty((len(files), 112, 112, 3), np.uint8)
        for i, (p, _) in enumerate(files):
            im = np.asarray(Image.open(p).convert("RGB"))
            if im.shape != (112, 112, 3):
                raise ValueError(f"{p} is {im.shape[1]}×{im.shape[0]}, not an aligned 112×112 face; run synthfr align")
            images[i] = im
        dev = resolve_device(device)
        emb_model = make_embedder(embedder, dev)
        emb = np.empty((len(files), 2, emb_model.dim), np.float32)
        it = range(0, len(files), batch_size)
        if progress:
            from tqdm import tqdm

            it = tqdm(it, desc="embedding training faces (+ mirrors)", unit="batch")
        with torch.inference_mode():
            for i in it:
                x = torch.from_numpy(images[i:i + batch_size]).to(dev).permute(0, 3, 1, 2).float() / 255.0
                emb[i:i + len(x), 0] = emb_model(x).float().cpu().numpy()
                emb[i:i + len(x), 1] = emb_model(x.flip(-1)).float().cpu().numpy()
        np.save(cache / "images.npy", images)
        np.save(cache / "emb.npy", emb)
        atomic_write_text(cache / "files.txt", "".join(f"{p}\t{ident}\n" for p, ident in files))
        write_json(meta_path, {"fingerprint": fp, "n": len(files), "embedder": embedder,
                               "dirs": [str(d) for d in dirs]})
    ident = [i for _, i in files]
    # hold out whole identity folders (only folders with >= 2 images: flat folders have no identities)
    counts: dict[str, int] = {}
    for k in ident:
        counts[k] = counts.get(k, 0) + 1
    folders = sorted((k for k, c in counts.items() if c >= 2), key=lambda k: derive_seed(seed, "val", k))
    val_set = set(folders[:val_identities])
    val_idx = np.array([i for i, k in enumerate(ident) if k in val_set], dtype=np.int64)
    train_idx = np.array([i for i, k in enumerate(ident) if k not in val_set], dtype=np.int64)
    e = torch.from_numpy(emb[train_idx].reshape(-1, emb.shape[-1])).double()
    mean = e.mean(0)
    cov = torch.cov(e.T) + 1e-6 * torch.eye(e.shape[1], dtype=torch.float64)
    chol = torch.linalg.cholesky(cov)
    return TrainData(torch.from_numpy(images), torch.from_numpy(emb), ident, train_idx, val_idx, fp,
                     mean.float(), chol.float())


def prepare_conditioning(cfg: GenTrainConfig, data: TrainData, out: Path, progress: bool) -> AttributePrior | None:
    """Attributes, identity conditions and the generation-time attribute prior (synthfr-v2 settings)."""
    if cfg.cond_mode not in ("image", "identity"):
        raise ValueError(f"cond_mode must be 'image' or 'identity', not {cfg.cond_mode!r}")
    if cfg.cond_mode == "identity" and data.cond_id is None:
        data.cond_id = identity_conditions(data.emb, data.identity)
    if not cfg.model.attr_dim:
        return None
    if cfg.model.attr_dim != len(ATTR_INPUTS):
        raise ValueError(f"model.attr_dim must be {len(ATTR_INPUTS)} ({', '.join(ATTR_INPUTS)}) or 0")
    if data.attrs is None:
        arr = prepare_attributes(data.images, Path(cfg.data_cache or out / "data"), data.fingerprint, progress)
        data.attrs = torch.from_numpy(arr)
    tr = data.train_idx
    cond = (data.cond_id if data.cond_id is not None else identity_conditions(data.emb, data.identity))[tr]
    return AttributePrior.fit(cond.numpy(), data.attrs[torch.from_numpy(tr)].numpy(),
                              [data.identity[i] for i in tr], seed=cfg.seed)


def batch_attributes(data: TrainData, idx: torch.Tensor, flip: torch.Tensor, cfg: GenTrainConfig,
                      g: torch.Generator) -> torch.Tensor | None:
    """Raw attributes of the batch's images (mirrored where flipped), each hidden with ``attr_dropout``."""
    if data.attrs is None:
        return None
    a = data.attrs[idx].clone()
    a = torch.where(flip[:, None], a * mirror_signs()[None], a)
    hide = torch.rand(a.shape, generator=g) < cfg.attr_dropout
    return a.masked_fill(hide, float("nan"))
