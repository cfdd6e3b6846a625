"""The VIGFace stage-2 network: a DiT (Peebles & Xie, 2023) with adaLN-Zero blocks, conditioned on an identity
prototype vector (+ optional 5-point landmarks) and the diffusion timestep.

Input: B×C×H×W (pixels in [-1, 1] here; any latent works), cut into ``patch``×``patch`` tokens with fixed 2-D
sin-cos position embeddings. Conditioning ``c = emb(t) + emb(prototype) [+ emb(landmarks)]`` drives every block's
shift/scale/gate (adaLN-Zero: the gates start at 0, so each block starts as the identity). For classifier-free
guidance the prototype (and landmark) embedding is replaced by a learned *null* vector: with probability
``cond_drop`` per image in training, always in the unconditioned sampling pass.

Shapes at paper scale (DiT-B/4): hidden 768, depth 12, 12 heads, patch 4, MLP ratio 4.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["DiTConfig", "DiT", "DIT_PRESETS"]


@dataclass
class DiTConfig:
    """Architecture of the VIGFace DiT."""

    image_size: int = 64
    """Side of the square input the network sees (pixels or latent cells)."""
    in_channels: int = 3
    """Channels of the input (3 for RGB pixels)."""
    patch: int = 4
    """Patch side (DiT-B/**4**)."""
    hidden: int = 768
    """Token width (DiT-B: 768)."""
    depth: int = 12
    """Transformer blocks (DiT-B: 12)."""
    heads: int = 12
    """Attention heads (DiT-B: 12)."""
    mlp_ratio: float = 4.0
    """MLP width / token width."""
    cond_dim: int = 128
    """Dimension of the prototype vector (128 for dlib-torch, 512 for ArcFace spaces)."""
    landmarks: bool = False
    """Also condition on 5-point landmarks (10 numbers in [-1, 1] of the image side); VIGFace's multi-view option."""

    def __post_init__(self):
        if self.image_size % self.patch:
            raise ValueError(f"image_size {self.image_size} is not a multiple of patch {self.patch}")
        if self.hidden % self.heads:
            raise ValueError(f"hidden {self.hidden} is not a multiple of heads {self.heads}")

    def to_dict(self) -> dict:
        return asdict(self)


DIT_PRESETS = {
    "DiT-B/4": dict(hidden=768, depth=12, heads=12, patch=4),
    "DiT-S/4": dict(hidden=384, depth=12, heads=6, patch=4),
    "DiT-XS/8": dict(hidden=256, depth=6, heads=4, patch=8),
    "test": dict(image_size=16, hidden=32, depth=2, heads=2, patch=4),
}
"""Named shapes: ``DiT-B/4`` (VIGFace), ``DiT-S/4``, the CPU-scale ``DiT-XS/8`` and the tiny ``test``."""


def sincos_2d(dim: int, grid: int) -> torch.Tensor:
    """Fixed 2-D sin-cos position embeddings, grid²×dim (as in MAE/DiT)."""
    def one_d(d: int, pos: np.ndarray) -> np.ndarray:
        omega = 1.0 / 10000 ** (np.arange(d // 2, dtype=np.float64) / (d / 2.0))
        out = np.einsum("m,d->md", pos.reshape(-1), omega)
        return np.concatenate([np.sin(out), np.cos(out)], axis=1)

    gh, gw = np.meshgrid(np.arange(grid, dtype=np.float64), np.arange(grid, dtype=np.float64), indexing="ij")
    emb = np.concatenate([one_d(dim // 2, gh), one_d(dim // 2, gw)], axis=1)
    return torch.from_numpy(emb).float()


def timestep_embedding(t: torch.Tensor, dim: int = 256, max_period: float = 10000.0) -> torch.Tensor:
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return x * (1 + scale[:, None]) + shift[:, None]


class Block(nn.Module):
    """One DiT block with adaLN-Zero conditioning."""

    def __init__(self, hidden: int, heads: int, mlp_ratio: float):
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(hidden, elementwise_affine=False, eps=1e-6)
        self.qkv = nn.Linear(hidden, 3 * hidden)
        self.proj = nn.Linear(hidden, hidden)
        self.norm2 = nn.LayerNorm(hidden, elementwise_affine=False, eps=1e-6)
        m = int(hidden * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(hidden, m), nn.GELU(approximate="tanh"), nn.Linear(m, hidden))
        self.ada = nn.Sequential(nn.SiLU(), nn.Linear(hidden, 6 * hidden))

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        sh1, sc1, g1, sh2, sc2, g2 = self.ada(c).chunk(6, dim=1)
        b, n, d = x.shape
        h = modulate(self.norm1(x), sh1, sc1)
        q, k, v = self.qkv(h).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        a = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, n, d)
        x = x + g1[:, None] * self.proj(a)
        x = x + g2[:, None] * self.mlp(modulate(self.norm2(x), sh2, sc2))
        return x


class DiT(nn.Module):
    """DiT predicting v from (noisy input, timestep, prototype [, landmarks], condition mask)."""

    def __init__(self, cfg: DiTConfig):
        super().__init__()
        self.cfg = cfg
        p, d = cfg.patch, cfg.hidden
        self.grid = cfg.image_size // p
        self.patch_embed = nn.Conv2d(cfg.in_channels, d, p, stride=p)
        self.register_buffer("pos", sincos_2d(d, self.grid)[None], persistent=False)
        self.t_embed = nn.Sequential(nn.Linear(256, d), nn.SiLU(), nn.Linear(d, d))
        self.c_embed = nn.Sequential(nn.Linear(cfg.cond_dim, d), nn.SiLU(), nn.Linear(d, d))
        self.null = nn.Parameter(torch.zeros(d))
        self.l_embed = nn.Sequential(nn.Linear(10, d), nn.SiLU(), nn.Linear(d, d)) if cfg.landmarks else None
        self.blocks = nn.ModuleList(Block(d, cfg.heads, cfg.mlp_ratio) for _ in range(cfg.depth))
        self.norm_out = nn.LayerNorm(d, elementwise_affine=False, eps=1e-6)
        self.ada_out = nn.Sequential(nn.SiLU(), nn.Linear(d, 2 * d))
        self.out = nn.Linear(d, p * p * cfg.in_channels)
        self._init()

    def _init(self):
        def basic(m):
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)
        self.apply(basic)
        w = self.patch_embed.weight.data
        nn.init.xavier_uniform_(w.view(w.shape[0], -1))
        nn.init.zeros_(self.patch_embed.bias)
        for mod in (self.t_embed, self.c_embed) + ((self.l_embed,) if self.l_embed is not None else ()):
            nn.init.normal_(mod[0].weight, std=0.02)
            nn.init.normal_(mod[2].weight, std=0.02)
        nn.init.normal_(self.null, std=0.02)
        for blk in self.blocks:  # adaLN-Zero: every block starts as the identity
            nn.init.zeros_(blk.ada[-1].weight)
            nn.init.zeros_(blk.ada[-1].bias)
        nn.init.zeros_(self.ada_out[-1].weight)
        nn.init.zeros_(self.ada_out[-1].bias)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def condition(self, t: torch.Tensor, proto: torch.Tensor, keep: torch.Tensor,
                  landmarks: torch.Tensor | None = None) -> torch.Tensor:
        """The B×hidden conditioning vector; rows with ``keep`` False get the null (unconditioned) embedding."""
        e = self.c_embed(proto)
        if self.l_embed is not None:
            if landmarks is None:
                raise ValueError("this DiT was trained with landmark conditioning: pass 5-point landmarks (B×10)")
            e = e + self.l_embed(landmarks.reshape(len(landmarks), 10))
        e = torch.where(keep[:, None], e, self.null.to(e.dtype).expand_as(e))
        return self.t_embed(timestep_embedding(t)) + e

    def forward(self, x: torch.Tensor, t: torch.Tensor, proto: torch.Tensor, keep: torch.Tensor | None = None,
                landmarks: torch.Tensor | None = None) -> torch.Tensor:
        cfg = self.cfg
        b = x.shape[0]
        if keep is None:
            keep = torch.ones(b, dtype=torch.bool, device=x.device)
        c = self.condition(t, proto, keep, landmarks)
        h = self.patch_embed(x).flatten(2).transpose(1, 2) + self.pos
        for blk in self.blocks:
            h = blk(h, c)
        sh, sc = self.ada_out(c).chunk(2, dim=1)
        h = self.out(modulate(self.norm_out(h), sh, sc))  # B×N×(p·p·C)
        g, p = self.grid, cfg.patch
        h = h.view(b, g, g, p, p, cfg.in_channels).permute(0, 5, 1, 3, 2, 4)
        return h.reshape(b, cfg.in_channels, g * p, g * p)
