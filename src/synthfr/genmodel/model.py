"""The ``synthfr-small`` network: a Vec2Face-style feature masked autoencoder that decodes a face from a vector.

Shape of the computation (defaults)::

    identity vector c (128, unit, dlib space) ─standardise─▶ Linear ─▶ 7×7 identity tokens (256 ch)
    seed ─torch.Generator─▶ style z (32)   ─Linear─▶ 7×7 style tokens (added everywhere)
    [training only] real image ─ImageEncoder─▶ 7×7 image tokens + q(z|x)
    tokens = where(mask, identity tokens, image tokens) + position + style
    4 pre-norm transformer blocks over the 49 tokens
    decoder: 3 × (ConvTranspose 4×4/2 → GroupNorm → FiLM(c, z) → SiLU [→ residual 3×3]) 7→14→28→56,
             3×3 conv to 12 channels + PixelShuffle(2) → 112×112×3, sigmoid → [0, 1]

During training a per-sample fraction of 50–100 % of the token positions is *masked*: the image encoder's
tokens there are replaced by the identity tokens (as Vec2Face's fMAE does), so the network learns to fill a
face in from the identity alone; at generation time 100 % is masked and the only other input is the style
vector z drawn from the image's seed (a conditional-VAE prior: the encoder's q(z|x) is pulled towards
N(0, I) with a KL term, so z carries pose, expression, light and background but not identity).

Outputs are batch-independent: :meth:`FaceGenerator.generate_tensor` runs the network in fixed-size chunks
(padding the last one), so an image depends only on its (vector, seed), never on the rest of the batch.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["GenModelConfig", "FaceGenerator", "ImageEncoder", "PatchDiscriminator", "seed_noise", "count_params"]


@dataclass
class GenModelConfig:
    """Architecture of the built-in generator (stored as ``config.json`` beside the weights)."""

    cond_dim: int = 128
    """Dimension of the condition (identity) vector; 128 for ``dlib-torch``."""
    image_size: int = 112
    """Output side in pixels (aligned ArcFace template). Must equal ``grid * 2**(len(dec_channels)+1)``."""
    grid: int = 7
    """Token grid side: the identity vector is expanded to ``grid × grid`` tokens."""
    width: int = 256
    """Channels per token."""
    depth: int = 4
    """Transformer blocks over the tokens."""
    heads: int = 8
    """Attention heads per block."""
    mlp_ratio: float = 2.0
    """Hidden width of each block's MLP relative to ``width``."""
    z_dim: int = 32
    """Dimension of the per-image style vector (drawn from the image seed at generation time)."""
    dec_channels: Sequence[int] = (192, 96, 48)
    """Channels of the decoder's upsampling stages (each doubles the side)."""
    dec_residual: Sequence[bool] = (False, True, False)
    """Whether each decoder stage adds a residual 3×3 conv block."""
    enc_channels: Sequence[int] = (32, 64, 128, 256)
    """Channels of the training-only image encoder (stride-2 stages, 112 → 7)."""
    chunk: int = 16
    """Fixed internal batch for generation: padding to it makes every image independent of batch make-up."""
    attr_dim: int = 0
    """Number of per-image attribute inputs (pose, expression, illumination, sharpness; see
    :mod:`synthfr.face.attributes`); 0 = none (``synthfr-small``). Each attribute also has a known/unknown flag."""
    attr_hidden: int = 256
    """Width of the attribute MLP whose output is added to every token and to every decoder FiLM."""

    def validate(self) -> None:
        side = self.grid * 2 ** (len(self.dec_channels) + 1)
        if side != self.image_size:
            raise ValueError(f"grid {self.grid} with {len(self.dec_channels)} decoder stages gives {side}px, "
                             f"not image_size {self.image_size}; change grid or dec_channels")
        if len(self.dec_residual) != len(self.dec_channels):
            raise ValueError("dec_residual needs one flag per decoder stage")
        if self.image_size // 2 ** len(self.enc_channels) != self.grid:
            raise ValueError(f"encoder with {len(self.enc_channels)} stride-2 stages maps {self.image_size}px to "
                             f"{self.image_size // 2 ** len(self.enc_channels)}, not grid {self.grid}")
        if self.width % self.heads:
            raise ValueError(f"width {self.width} must be divisible by heads {self.heads}")

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "GenModelConfig":
        from synthfr.config import check_keys

        check_keys(cls, d, "model")
        kw = {k: (tuple(v) if isinstance(v, list) else v) for k, v in d.items()}
        return cls(**kw)

    def to_json(self) -> dict[str, Any]:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(self).items()}


def _gn(c: int) -> nn.GroupNorm:
    return nn.GroupNorm(min(8, c), c)


class Block(nn.Module):
    """Pre-norm transformer block (attention + MLP) over a short token sequence."""

    def __init__(self, width: int, heads: int, mlp_ratio: float):
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(width)
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        self.norm2 = nn.LayerNorm(width)
        hidden = int(width * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(width, hidden), nn.GELU(), nn.Linear(hidden, width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, c = x.shape
        q, k, v = self.qkv(self.norm1(x)).reshape(b, t, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        a = F.scaled_dot_product_attention(q, k, v)
        x = x + self.proj(a.transpose(1, 2).reshape(b, t, c))
        return x + self.mlp(self.norm2(x))


class UpStage(nn.Module):
    """ConvTranspose 4×4 stride 2 → GroupNorm → FiLM → SiLU, optionally followed by a residual 3×3 conv."""

    def __init__(self, cin: int, cout: int, film_dim: int, residual: bool, attr_hidden: int = 0):
        super().__init__()
        self.up = nn.ConvTranspose2d(cin, cout, 4, 2, 1)
        self.norm = nn.GroupNorm(min(8, cout), cout, affine=False)
        self.film = nn.Linear(film_dim, 2 * cout)
        nn.init.zeros_(self.film.weight)
        nn.init.zeros_(self.film.bias)
        # attributes modulate every stage too (light and expression are local, pose global); zero-initialised so
        # that a model without them (synthfr-small) is the starting point of one with them
        self.attr_film = nn.Linear(attr_hidden, 2 * cout) if attr_hidden else None
        if self.attr_film is not None:
            nn.init.zeros_(self.attr_film.weight)
            nn.init.zeros_(self.attr_film.bias)
        self.res = nn.Sequential(nn.Conv2d(cout, cout, 3, 1, 1), _gn(cout), nn.SiLU()) if residual else None

    def forward(self, x: torch.Tensor, s: torch.Tensor, a: torch.Tensor | None = None) -> torch.Tensor:
        x = self.norm(self.up(x))
        f = self.film(s)
        if a is not None and self.attr_film is not None:
            f = f + self.attr_film(a)
        g, b = f[:, :, None, None].chunk(2, dim=1)
        x = F.silu(x * (1 + g) + b)
        if self.res is not None:
            x = x + self.res(x)
        return x


class ImageEncoder(nn.Module):
    """Training-only encoder: a real image -> ``grid×grid`` tokens and the posterior ``q(z|x)`` (mean, log-var)."""

    def __init__(self, cfg: GenModelConfig):
        super().__init__()
        layers: list[nn.Module] = []
        cin = 3
        for c in cfg.enc_channels:
            layers += [nn.Conv2d(cin, c, 3, 2, 1), _gn(c), nn.SiLU()]
            cin = c
        self.body = nn.Sequential(*layers)
        self.tokens = nn.Conv2d(cin, cfg.width, 1)
        self.posterior = nn.Linear(cin, 2 * cfg.z_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        h = self.body(x * 2 - 1)
        tok = self.tokens(h).flatten(2).transpose(1, 2)  # B×T×C
        mu, logvar = self.posterior(h.mean(dim=(2, 3))).chunk(2, dim=1)
        return tok, mu, logvar.clamp(-8, 4)


def seed_noise(seeds: Sequence[int] | torch.Tensor, dim: int) -> torch.Tensor:
    """Per-image standard-normal style vectors, each from its own ``torch.Generator`` seeded with the image seed."""
    from synthfr.utils.seeds import per_sample_randn

    if isinstance(seeds, torch.Tensor):
        seeds = seeds.tolist()
    return per_sample_randn(seeds, (dim,))


class FaceGenerator(nn.Module):
    """Identity vector (+ style z) -> aligned 112×112 RGB face in [0, 1]; see the module docstring."""

    def __init__(self, cfg: GenModelConfig | None = None, with_encoder: bool = True):
        super().__init__()
        cfg = cfg or GenModelConfig()
        cfg.validate()
        self.cfg = cfg
        t = cfg.grid * cfg.grid
        # standardisation of the condition vector (set from training data by the trainer; stored in weights)
        self.register_buffer("cond_mean", torch.zeros(cfg.cond_dim))
        self.register_buffer("cond_scale", torch.ones(()))
        self.cond_proj = nn.Linear(cfg.cond_dim, t * cfg.width)
        self.z_proj = nn.Linear(cfg.z_dim, t * cfg.width)
        self.pos = nn.Parameter(torch.randn(t, cfg.width) * 0.02)
        self.blocks = nn.ModuleList([Block(cfg.width, cfg.heads, cfg.mlp_ratio) for _ in range(cfg.depth)])
        self.norm = nn.LayerNorm(cfg.width)
        film_dim = cfg.cond_dim + cfg.z_dim
        ah = cfg.attr_hidden if cfg.attr_dim else 0
        if cfg.attr_dim:
            # raw attribute units -> standardised (set from the training data by the trainer, stored in weights)
            self.register_buffer("attr_mean", torch.zeros(cfg.attr_dim))
            self.register_buffer("attr_std", torch.ones(cfg.attr_dim))
            self.attr_mlp = nn.Sequential(nn.Linear(2 * cfg.attr_dim, ah), nn.SiLU(), nn.Linear(ah, ah), nn.SiLU())
            self.attr_tokens = nn.Linear(ah, t * cfg.width)
            nn.init.zeros_(self.attr_tokens.weight)
            nn.init.zeros_(self.attr_tokens.bias)
        stages = []
        cin = cfg.width
        for c, r in zip(cfg.dec_channels, cfg.dec_residual):
            stages.append(UpStage(cin, c, film_dim, r, ah))
            cin = c
        self.stages = nn.ModuleList(stages)
        self.to_rgb = nn.Sequential(nn.Conv2d(cin, cin, 3, 1, 1), _gn(cin), nn.SiLU(), nn.Conv2d(cin, 12, 3, 1, 1),
                                    nn.PixelShuffle(2))
        self.encoder = ImageEncoder(cfg) if with_encoder else None

    # -- pieces -----------------------------------------------------------------------------------------
    def standardise(self, cond: torch.Tensor) -> torch.Tensor:
        return (cond - self.cond_mean) * self.cond_scale

    def identity_tokens(self, cond_std: torch.Tensor) -> torch.Tensor:
        return self.cond_proj(cond_std).view(cond_std.shape[0], -1, self.cfg.width)

    def attribute_features(self, attrs: torch.Tensor | None, batch: int) -> torch.Tensor | None:
        """Raw attributes B×A (NaN = unknown, or ``None``: all unknown) -> hidden features B×attr_hidden."""
        if not self.cfg.attr_dim:
            return None
        if attrs is None:
            attrs = torch.full((batch, self.cfg.attr_dim), float("nan"), device=self.pos.device)
        known = torch.isfinite(attrs)
        v = torch.where(known, (attrs - self.attr_mean) / self.attr_std, torch.zeros_like(attrs))
        return self.attr_mlp(torch.cat([v, known.to(v.dtype)], dim=1))

    def decode(self, tokens: torch.Tensor, cond_std: torch.Tensor, z: torch.Tensor,
               attr_feat: torch.Tensor | None = None) -> torch.Tensor:
        """Tokens (B×T×C, before position/style/attributes) -> image B×3×H×W in [0, 1]."""
        b = tokens.shape[0]
        x = tokens + self.pos + self.z_proj(z).view(b, -1, self.cfg.width)
        if attr_feat is not None:
            x = x + self.attr_tokens(attr_feat).view(b, -1, self.cfg.width)
        for blk in self.blocks:
            x = blk(x)
        x = self.norm(x).transpose(1, 2).reshape(b, self.cfg.width, self.cfg.grid, self.cfg.grid)
        s = torch.cat([cond_std, z], dim=1)
        for st in self.stages:
            x = st(x, s, attr_feat)
        return torch.sigmoid(self.to_rgb(x))

    # -- training -----------------------------------------------------------------------------------------
    def forward_train(self, cond: torch.Tensor, images: torch.Tensor | None, mask_ratio: torch.Tensor,
                      noise: torch.Tensor, mask_noise: torch.Tensor | None,
                      attrs: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """One training forward pass.

        Args:
            cond: B×D condition vectors (unit, embedder space).
            images: B×3×H×W real images in [0, 1] (``None``: conditions without a real image — 100 % masked,
                z drawn from the prior ``noise``).
            mask_ratio: B fractions in [0, 1] of token positions replaced by identity tokens.
            noise: B×z_dim standard normals (reparameterisation / prior sample).
            mask_noise: B×T uniforms deciding which positions are masked (lowest ``ratio·T`` scores).
            attrs: B×A raw attributes of the target images (NaN = unknown; ignored without ``attr_dim``).
        Returns:
            the image in [0, 1] and a dict with ``kl`` (per-sample KL of q(z|x), zeros without images).
        """
        cs = self.standardise(cond)
        idt = self.identity_tokens(cs)
        b, t = idt.shape[:2]
        if images is None or self.encoder is None:
            z = noise
            tokens = idt
            kl = torch.zeros(b, device=cond.device)
        else:
            tok, mu, logvar = self.encoder(images)
            z = mu + torch.exp(0.5 * logvar) * noise
            kl = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(dim=1)
            n_mask = torch.round(mask_ratio * t).long().clamp(0, t)  # B
            rank = mask_noise.argsort(dim=1).argsort(dim=1)          # rank of each position's score
            masked = rank < n_mask[:, None]                          # B×T
            tokens = torch.where(masked[:, :, None], idt, tok)
        return self.decode(tokens, cs, z, self.attribute_features(attrs, b)), {"kl": kl}

    # -- generation -----------------------------------------------------------------------------------------
    def generate_from_z(self, cond: torch.Tensor, z: torch.Tensor, attrs: torch.Tensor | None = None) -> torch.Tensor:
        """Fully masked decoding (identity tokens only) with given style vectors (+ attributes); differentiable."""
        cs = self.standardise(cond)
        return self.decode(self.identity_tokens(cs), cs, z, self.attribute_features(attrs, cs.shape[0]))

    def generate_tensor(self, cond: torch.Tensor, seeds: Sequence[int] | torch.Tensor, z_scale: float = 1.0,
                        chunk: int | None = None, attrs: torch.Tensor | None = None) -> torch.Tensor:
        """Condition vectors B×D + per-image seeds -> B×3×H×W float in [0, 1] (keeps gradients w.r.t. ``cond``).

        The batch is processed in fixed chunks of ``cfg.chunk`` (last one zero-padded) so each image depends
        only on its own (vector, seed, attributes). ``attrs``: B×A raw attributes (NaN = unknown) or ``None``.
        """
        chunk = chunk or self.cfg.chunk
        dev = cond.device
        z = seed_noise(seeds, self.cfg.z_dim).to(dev) * z_scale
        outs = []
        for i in range(0, cond.shape[0], chunk):
            c, zz = cond[i:i + chunk], z[i:i + chunk]
            aa = attrs[i:i + chunk].to(dev) if attrs is not None else None
            n = c.shape[0]
            if n < chunk:
                c = torch.cat([c, c.new_zeros(chunk - n, c.shape[1])])
                zz = torch.cat([zz, zz.new_zeros(chunk - n, zz.shape[1])])
                if aa is not None:
                    aa = torch.cat([aa, aa.new_zeros(chunk - n, aa.shape[1])])
            outs.append(self.generate_from_z(c, zz, aa)[:n])
        return torch.cat(outs) if outs else cond.new_zeros(0, 3, self.cfg.image_size, self.cfg.image_size)


class PatchDiscriminator(nn.Module):
    """A small PatchGAN (70-px-ish receptive field at 112 px) with spectral norm; hinge loss in the trainer."""

    def __init__(self, channels: Sequence[int] = (32, 64, 128)):
        super().__init__()
        sn = nn.utils.parametrizations.spectral_norm
        layers: list[nn.Module] = []
        cin = 3
        for c in channels:
            layers += [sn(nn.Conv2d(cin, c, 4, 2, 1)), nn.LeakyReLU(0.2)]
            cin = c
        layers += [sn(nn.Conv2d(cin, cin, 3, 1, 1)), nn.LeakyReLU(0.2), sn(nn.Conv2d(cin, 1, 3, 1, 1))]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x * 2 - 1)


def count_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())

