"""Pieces of one generator training step: data order, learning-rate warm-up, synthetic conditions, jitter,
the perceptual loss, and the periodic sample grid + held-out fidelity (``samples/``, ``val.csv``)."""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from synthfr.genmodel.model import FaceGenerator
from synthfr.genmodel.train_config import GenTrainConfig
from synthfr.genmodel.train_data import TrainData
from synthfr.utils.run_dir import append_csv_row
from synthfr.utils.seeds import derive_seed

__all__ = ["perceptual", "lr_factor", "batch_indices", "synthetic_conditions", "jitter_grid", "to_float",
           "samples_and_val"]


def perceptual(fo: list[torch.Tensor], ft: list[torch.Tensor]) -> torch.Tensor:
    loss = fo[0].new_zeros(())
    for a, b in zip(fo, ft):
        loss = loss + (a - b).abs().mean() / (b.abs().mean() + 1e-3)
    return loss / len(fo)


def lr_factor(step: int, warmup: int) -> float:
    return min(1.0, (step + 1) / max(1, warmup))


@functools.lru_cache(maxsize=4)
def _epoch_perm(n: int, seed: int, epoch: int) -> np.ndarray:
    return np.random.default_rng(derive_seed(seed, "epoch", epoch)).permutation(n)


def batch_indices(train_idx: np.ndarray, step: int, bs: int, seed: int) -> np.ndarray:
    """Indices of step ``step``: positions ``step·bs ...`` of the concatenated per-epoch permutations."""
    n = len(train_idx)
    out = np.empty(bs, dtype=np.int64)
    for j in range(bs):
        epoch, k = divmod(step * bs + j, n)
        out[j] = train_idx[_epoch_perm(n, seed, epoch)[k]]
    return out


def synthetic_conditions(data: TrainData, n: int, cfg: GenTrainConfig, g: torch.Generator) -> torch.Tensor:
    if n == 0:
        return data.emb.new_zeros(0, data.emb.shape[-1])
    d = data.emb.shape[-1]
    ntr = len(data.train_idx)
    kinds = torch.multinomial(torch.tensor(list(cfg.synth_kinds), dtype=torch.float), n, replacement=True,
                              generator=g)
    a = data.emb[torch.from_numpy(data.train_idx[torch.randint(ntr, (n,), generator=g).numpy()]),
                 torch.randint(2, (n,), generator=g)]
    b = data.emb[torch.from_numpy(data.train_idx[torch.randint(ntr, (n,), generator=g).numpy()]),
                 torch.randint(2, (n,), generator=g)]
    noise = torch.randn(n, d, generator=g)
    lo, hi = cfg.around_sigma
    sig = lo + (hi - lo) * torch.rand(n, generator=g)
    lam = 0.3 + 0.4 * torch.rand(n, generator=g)
    gauss = data.mean + noise @ data.chol.T
    around = a + sig[:, None] * F.normalize(noise, dim=1)
    between = lam[:, None] * a + (1 - lam[:, None]) * b
    out = torch.where((kinds == 0)[:, None], around, torch.where((kinds == 1)[:, None], between, gauss))
    return F.normalize(out, dim=1)


def jitter_grid(n: int, g: torch.Generator, px: float, size: int, dev: torch.device) -> torch.Tensor:
    """Sampling grids of random shifts (± ``px`` pixels) and ±3 % scalings, one per image."""
    shift = (torch.rand(n, 2, generator=g) * 2 - 1) * (2 * px / size)
    scale = 1 + (torch.rand(n, generator=g) * 2 - 1) * 0.03
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = scale
    theta[:, 1, 1] = scale
    theta[:, :, 2] = shift
    return F.affine_grid(theta, [n, 3, size, size], align_corners=False).to(dev)


def to_float(images_u8: torch.Tensor, device: torch.device) -> torch.Tensor:
    return images_u8.to(device).permute(0, 3, 1, 2).float() / 255.0


@torch.no_grad()
def samples_and_val(E: FaceGenerator, embedder: nn.Module, data: TrainData, cfg: GenTrainConfig, out: Path,
                     step: int, dev: torch.device) -> dict[str, float]:
    """Sample grid (target | 75 %-masked reconstruction | 5 fully masked seeds) + held-out identity fidelity."""
    from PIL import Image

    E.eval()
    pool = data.val_idx if len(data.val_idx) else data.train_idx
    pick = pool[np.linspace(0, len(pool) - 1, num=min(8, len(pool))).astype(int)]
    x = to_float(data.images[torch.from_numpy(pick)], dev)
    cond = data.emb[torch.from_numpy(pick), 0].to(dev)
    n = len(pick)
    g = torch.Generator().manual_seed(derive_seed(cfg.seed, "samples"))
    rec, _ = E.forward_train(cond, x, torch.full((n,), 0.75, device=dev), torch.zeros(n, cfg.model.z_dim, device=dev),
                             torch.rand(n, cfg.model.grid ** 2, generator=g).to(dev)) if E.encoder is not None \
        else (x, None)
    cols = [x, rec] + [E.generate_tensor(cond, [derive_seed(cfg.seed, "sample", int(i), k) for i in pick])
                       for k in range(5)]
    grid = torch.stack(cols, 1).reshape(-1, 3, 112, 112)
    arr = (grid.clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).cpu().numpy()
    arr = arr.reshape(n, len(cols), 112, 112, 3).transpose(0, 2, 1, 3, 4).reshape(n * 112, len(cols) * 112, 3)
    (out / "samples").mkdir(exist_ok=True)
    Image.fromarray(arr).save(out / "samples" / f"step-{step:08d}.png")
    res: dict[str, float] = {}
    if len(data.val_idx):
        vi = data.val_idx[:64]
        vc = data.emb[torch.from_numpy(vi), 0].to(dev)
        cos = []
        for k in range(2):
            imgs = E.generate_tensor(vc, [derive_seed(cfg.seed, "val", int(i), k) for i in vi])
            cos.append((embedder(imgs) * vc).sum(1))
        cs = torch.cat(cos)
        res = {"step": step, "val_cos": round(float(cs.mean()), 5),
               "val_verified": round(float((cs >= cfg.val_threshold).float().mean()), 5)}
        append_csv_row(out / "val.csv", ["step", "val_cos", "val_verified"], res)
    return res
