"""VIGFace virtual prototypes learned in embedding space.

A normalised classifier (rows = unit prototypes) with an ArcFace margin is trained on labelled real
embeddings over the C real classes **plus V virtual rows that receive no samples**. Virtual rows only ever
appear as negatives, so training pushes them away from every real feature; they end up in the empty regions
between real identities and are returned as new identity vectors. (The full method trains the FR backbone
jointly; that version belongs to training.) An optional repulsion term (``repel``) between prototypes keeps
virtual rows from settling on the same spot.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from synthfr.samplers import REGISTRY
from synthfr.samplers._base import Sampler
from synthfr.samplers.geometry import normalize
from synthfr.utils.seeds import derive_seed


@dataclass
class VigFaceConfig:
    scale: float = 32.0
    """ArcFace logit scale s."""
    margin: float = 0.5
    """ArcFace additive angular margin m (radians) on the target logit."""
    epochs: int = 60
    """Passes over the labelled embeddings."""
    batch_size: int = 512
    """Embeddings per step."""
    lr: float = 0.05
    """SGD learning rate (momentum 0.9) of the prototype matrix."""
    repel: float = 0.0
    """Weight of a log-sum-exp repulsion among all prototypes (0 = VIGFace as published)."""
    device: str = "cpu"
    """Torch device."""
    progress: bool = True
    """Show a progress bar."""


def arcface_logits(feat: torch.Tensor, weight: torch.Tensor, labels: torch.Tensor, s: float, m: float) -> torch.Tensor:
    """``s·cos θ`` for every row, ``s·cos(θ + m)`` for the target (standard ArcFace with the easy-margin fix)."""
    cos = feat @ normalize(weight).T
    tgt = cos.gather(1, labels[:, None]).clamp(-1 + 1e-6, 1 - 1e-6)
    th = torch.acos(tgt)
    tgt_m = torch.where(th + m < math.pi, torch.cos(th + m), tgt - m * math.sin(m))
    return s * cos.scatter(1, labels[:, None], tgt_m)


@REGISTRY.register("vigface")
class VigFaceSampler(Sampler):
    """VIGFace: virtual rows of an ArcFace classifier trained on labelled real embeddings (needs a gallery)."""

    Config = VigFaceConfig

    def _sample(self, n: int, dim: int, gallery: np.ndarray | None, seed: int) -> tuple[np.ndarray, dict[str, Any]]:
        cfg = self.config
        if gallery is None:
            raise ValueError("vigface needs labelled real embeddings: pass --gallery EMB.npy --labels LABELS.npy")
        labels = self.labels
        if labels is None:
            labels = np.arange(len(gallery))  # every embedding its own class
        labels = np.asarray(labels)
        if len(labels) != len(gallery):
            raise ValueError(f"{len(labels)} labels for {len(gallery)} gallery embeddings; they must match")
        _, lab = np.unique(labels, return_inverse=True)
        c = int(lab.max()) + 1
        dev = torch.device(cfg.device)
        feat = torch.as_tensor(gallery, device=dev)
        y = torch.as_tensor(lab, device=dev, dtype=torch.long)
        gen = torch.Generator().manual_seed(derive_seed(seed, "vigface"))
        centres = torch.zeros(c, dim).index_add_(0, y.cpu(), feat.cpu())
        w_real = normalize(centres + 1e-3 * torch.randn(c, dim, generator=gen))
        w_virt = normalize(torch.randn(n, dim, generator=gen))
        weight = torch.nn.Parameter(torch.cat([w_real, w_virt]).to(dev))
        opt = torch.optim.SGD([weight], lr=cfg.lr, momentum=0.9)
        steps_per_epoch = max(1, math.ceil(len(feat) / cfg.batch_size))
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.epochs * steps_per_epoch)
        t0 = time.perf_counter()
        it = range(cfg.epochs)
        if cfg.progress:
            from tqdm import tqdm

            it = tqdm(it, desc="vigface", unit="epoch")
        last = float("nan")
        for _ in it:
            perm = torch.randperm(len(feat), generator=gen).to(dev)
            for a in range(0, len(feat), cfg.batch_size):
                idx = perm[a:a + cfg.batch_size]
                logits = arcface_logits(feat[idx], weight, y[idx], cfg.scale, cfg.margin)
                loss = torch.nn.functional.cross_entropy(logits, y[idx])
                if cfg.repel > 0:
                    wn = normalize(weight)
                    g = wn @ wn.T - 3.0 * torch.eye(len(wn), device=dev)
                    loss = loss + cfg.repel * torch.logsumexp(cfg.scale * g, 1).mean() / cfg.scale
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()
                last = float(loss.detach())
        with torch.no_grad():
            wn = normalize(weight.detach())
            real_c = normalize(centres.to(dev))
            v = wn[c:]
            v2r = (v @ real_c.T).max(1).values
            rr = real_c @ real_c.T
            rr.fill_diagonal_(-2.0)
            r2r = rr.max(1).values
        # the real rows too: VIGFace's stage 2 conditions its generator on them (classes in np.unique order)
        self.real_prototypes = wn[:c].cpu().numpy()
        stats = {"classes": c, "virtual": n, "final_loss": last, "train_seconds": time.perf_counter() - t0,
                 "virtual_to_nearest_real_centre": v2r.cpu().numpy().tolist(),
                 "real_to_nearest_real_centre": r2r.cpu().numpy().tolist(),
                 "virtual_to_real_max": float(v2r.max()), "real_to_real_mean": float(r2r.mean()),
                 "virtual_to_real_mean": float(v2r.mean())}
        return v.cpu().numpy(), stats
