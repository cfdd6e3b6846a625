"""Vec2Face (Wu et al., ICLR 2025): a feature masked autoencoder plus an image decoder, vector -> 112×112 face.

Architecture (re-implemented here from the public description and the released checkpoint's layout; the
parameter names and shapes match ``vec2face_generator.pth`` so it loads with ``strict`` checking):

* ``latent_prior_proj_f``: Linear(512 -> E) maps the identity vector to a feature ``f``;
  ``feature_token``: Linear(1 -> 49) spreads ``f`` into 49 tokens (one per cell of a 7×7 map); the sequence is
  ``[f, t_1..t_49]`` (50 tokens), ``token_emb`` adds learned positions and a LayerNorm.
* Masking (the source of intra-class variety): per image a mask ratio ``r ~ TruncNormal(mu, std)`` on
  ``[mask_ratio_min, mask_ratio_max]`` and a random token order are drawn; the first ``ceil(49·r)`` tokens in
  that order are replaced by ``f`` and the first ``ceil(49·mask_ratio_min)`` are dropped from the encoder.
* ``blocks`` (ViT encoder, depth 12, width 768, 12 heads) and ``norm``; ``decoder_embed`` -> width D, the
  dropped/masked positions are filled with the first token, ``decoder_pos_embed_learned`` added,
  ``decoder_blocks`` (depth 8, 16 heads), ``decoder_norm``.
* ``im_decoder_proj``: Linear(E -> 256) on the 49 tokens -> a 256×7×7 map; ``im_decoder``: a VQGAN-style
  convolutional decoder (ch 128, ch_mult 1,1,2,2,4, two residual blocks per level, no attention) that
  upsamples 7 -> 112; output in [-1, 1].
* ``patch_embed`` and ``center_token`` exist in the checkpoint but are not used for generation.

Every random draw of image ``j`` (mask ratio, token order) comes from generators seeded by ``seeds[j]``, so
an image depends on (vector, seed) only. The official script draws one mask ratio per batch; here it is
drawn per image, the same distribution. The network is differentiable (``generate_tensor``) for AttrOP.

Inputs: Vec2Face was trained on *un-normalised* ArcFace features (IResNet-100 on Glint360K, the
``arcface-r100-glint360k.pth`` released with it). Unit condition vectors are rescaled to ``input_norm``
(default √512 ≈ 22.6, the norm of the N(0, I) vectors the official demo feeds); ``input_norm=0`` passes them
unchanged.

Weights folder (``weights=DIR``; docs/generators.md has the download command): ``vec2face_generator.pth``
(official, a dict with key ``model_vec2face``; also found under ``DIR/weights/``), or ``model.safetensors``.
An optional ``config.json`` overrides the architecture sizes (used by the tiny test build).
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from synthfr.generators import REGISTRY
from synthfr.generators.base import Generator, condition_batch, per_sample_rand, require_weights

__all__ = ["Vec2Face", "build_vec2face_net", "VEC2FACE_BASE", "load_vec2face_state_dict"]

#: ``vec2face_vit_base_patch16`` with the VQGAN decoder config of the release (configs/vec2face/vqgan.yaml).
VEC2FACE_BASE: dict[str, Any] = {
    "img_size": 112, "patch_size": 16, "in_chans": 3, "embed_dim": 768, "depth": 12, "num_heads": 12,
    "decoder_embed_dim": 768, "decoder_depth": 8, "decoder_num_heads": 16, "mlp_ratio": 4.0, "rep_dim": 512,
    "num_tokens": 49,
    "ddconfig": {"z_channels": 256, "resolution": 112, "out_ch": 3, "ch": 128, "ch_mult": [1, 1, 2, 2, 4],
                 "num_res_blocks": 2, "norm_groups": 32},
}

_HELP = ("Vec2Face's weights are weights/vec2face_generator.pth in the BooBooWu/Vec2Face model repository; "
         "docs/generators.md gives the exact download command.")


def _nn():
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    return torch, nn, F


def build_vec2face_net(config: dict[str, Any] | None = None):
    """The Vec2Face network (a ``torch.nn.Module``) with official parameter names; ``config`` overrides sizes."""
    torch, nn, F = _nn()
    cfg = json.loads(json.dumps(VEC2FACE_BASE))
    for k, v in (config or {}).items():
        if k == "ddconfig":
            cfg["ddconfig"].update(v)
        else:
            cfg[k] = v
    E, D, dd = int(cfg["embed_dim"]), int(cfg["decoder_embed_dim"]), cfg["ddconfig"]
    n_tok = int(cfg["num_tokens"])
    side = int(round(math.sqrt(n_tok)))
    groups = int(dd.get("norm_groups", 32))

    class Attention(nn.Module):
        def __init__(self, dim, heads):
            super().__init__()
            self.heads = heads
            self.scale = (dim // heads) ** -0.5
            self.qkv = nn.Linear(dim, dim * 3, bias=True)
            self.proj = nn.Linear(dim, dim)

        def forward(self, x):
            b, n, c = x.shape
            q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
            att = (q.float() @ k.float().transpose(-2, -1)) * self.scale
            att = att.softmax(dim=-1).to(v.dtype)
            return self.proj((att @ v).transpose(1, 2).reshape(b, n, c))

    class Mlp(nn.Module):
        def __init__(self, dim, hidden):
            super().__init__()
            self.fc1 = nn.Linear(dim, hidden)
            self.act = nn.GELU()
            self.fc2 = nn.Linear(hidden, dim)

        def forward(self, x):
            return self.fc2(self.act(self.fc1(x)))

    class Block(nn.Module):
        def __init__(self, dim, heads):
            super().__init__()
            self.norm1 = nn.LayerNorm(dim, eps=1e-6)
            self.attn = Attention(dim, heads)
            self.norm2 = nn.LayerNorm(dim, eps=1e-6)
            self.mlp = Mlp(dim, int(dim * float(cfg["mlp_ratio"])))

        def forward(self, x):
            x = x + self.attn(self.norm1(x))
            return x + self.mlp(self.norm2(x))

    class TokenEmbeddings(nn.Module):
        def __init__(self):
            super().__init__()
            self.position_embeddings = nn.Embedding(n_tok + 1, E)
            self.LayerNorm = nn.LayerNorm(E, eps=1e-6)
            self.register_buffer("position_ids", torch.arange(n_tok + 1).expand((1, -1)))

        def forward(self, x):
            return self.LayerNorm(x + self.position_embeddings(self.position_ids[:, : x.shape[1]]))

    class PatchEmbed(nn.Module):  # kept for checkpoint compatibility; unused when generating
        def __init__(self):
            super().__init__()
            p = int(cfg["patch_size"])
            self.proj = nn.Conv2d(int(cfg["in_chans"]), E, kernel_size=p, stride=p)

    def norm(c):
        return nn.GroupNorm(num_groups=groups, num_channels=c, eps=1e-6, affine=True)

    class ResBlock(nn.Module):
        def __init__(self, cin, cout):
            super().__init__()
            self.norm1 = norm(cin)
            self.conv1 = nn.Conv2d(cin, cout, 3, 1, 1, bias=False)
            self.norm2 = norm(cout)
            self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.cin, self.cout = cin, cout
            if cin != cout:
                # as released: a 1×1 conv on the residual branch's output replaces the skip input
                self.nin_shortcut = nn.Conv2d(cout, cout, 1, 1, 0, bias=False)

        def forward(self, x):
            h = self.conv1(F.silu(self.norm1(x)))
            h = self.conv2(F.silu(self.norm2(h)))
            if self.cin != self.cout:
                x = self.nin_shortcut(h)
            return x + h

    class Upsample(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.conv = nn.Conv2d(c, c, 3, 1, 1)

        def forward(self, x):
            return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))

    class ImDecoder(nn.Module):
        def __init__(self):
            super().__init__()
            ch, mult, nres = int(dd["ch"]), list(dd["ch_mult"]), int(dd["num_res_blocks"])
            self.nlev = len(mult)
            block_in = ch * mult[-1]
            self.conv_in = nn.Conv2d(int(dd["z_channels"]), block_in, 3, 1, 1)
            self.mid = nn.Module()
            self.mid.block_1 = ResBlock(block_in, block_in)
            self.mid.block_2 = ResBlock(block_in, block_in)
            self.up = nn.ModuleList()
            for lev in reversed(range(self.nlev)):
                up = nn.Module()
                up.block = nn.ModuleList()
                for _ in range(nres):
                    up.block.append(ResBlock(block_in, ch * mult[lev]))
                    block_in = ch * mult[lev]
                if lev != 0:
                    up.upsample = Upsample(block_in)
                self.up.insert(0, up)
            self.norm_out = norm(block_in)
            self.conv_out = nn.Conv2d(block_in, int(dd["out_ch"]), 3, 1, 1)

        def forward(self, z):
            h = self.conv_in(z)
            h = self.mid.block_2(self.mid.block_1(h))
            for lev in reversed(range(self.nlev)):
                for blk in self.up[lev].block:
                    h = blk(h)
                if lev != 0:
                    h = self.up[lev].upsample(h)
            return self.conv_out(F.silu(self.norm_out(h)))

    class Vec2FaceNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.config = cfg
            self.token_emb = TokenEmbeddings()
            self.latent_prior_proj_f = nn.Linear(int(cfg["rep_dim"]), E, bias=True)
            self.feature_token = nn.Linear(1, n_tok, bias=True)
            self.center_token = nn.Linear(E, n_tok, bias=True)
            self.im_decoder = ImDecoder()
            self.im_decoder_proj = nn.Linear(E, int(dd["z_channels"]))
            self.patch_embed = PatchEmbed()
            self.blocks = nn.ModuleList([Block(E, int(cfg["num_heads"])) for _ in range(int(cfg["depth"]))])
            self.norm = nn.LayerNorm(E, eps=1e-6)
            self.decoder_embed = nn.Linear(E, D, bias=True)
            self.decoder_pos_embed_learned = nn.Parameter(torch.zeros(1, n_tok + 1, D))
            self.decoder_blocks = nn.ModuleList([Block(D, int(cfg["decoder_num_heads"]))
                                                 for _ in range(int(cfg["decoder_depth"]))])
            self.decoder_norm = nn.LayerNorm(D, eps=1e-6)

        def forward(self, rep, drop_mask, all_mask):
            """rep: B×512; drop_mask/all_mask: bool B×49 (dropped ⊆ masked; same number dropped per row).
            Returns images B×3×112×112 in [-1, 1]."""
            b = rep.shape[0]
            f = self.latent_prior_proj_f(rep)
            tok = self.feature_token(f.unsqueeze(-1)).permute(0, 2, 1)
            tok = torch.where(all_mask.unsqueeze(-1), f.unsqueeze(1).expand_as(tok), tok)
            tok = torch.cat([f.unsqueeze(1), tok], dim=1)
            zero = torch.zeros(b, 1, dtype=torch.bool, device=rep.device)
            drop = torch.cat([zero, drop_mask], dim=1)
            allm = torch.cat([zero, all_mask], dim=1)
            emb = self.token_emb(tok)
            keep = emb[~drop].reshape(b, -1, emb.shape[-1])
            x = keep
            for blk in self.blocks:
                x = blk(x)
            x = self.decoder_embed(self.norm(x))
            fill = x[:, 0:1].expand(-1, n_tok + 1, -1)
            padded = fill.clone()
            padded[~drop] = x.reshape(-1, x.shape[-1])
            x = torch.where(allm.unsqueeze(-1), fill, padded) + self.decoder_pos_embed_learned
            for blk in self.decoder_blocks:
                x = blk(x)
            x = self.decoder_norm(x)
            z = self.im_decoder_proj(x[:, 1:, :].reshape(b, side, side, -1)).permute(0, 3, 1, 2)
            return self.im_decoder(z)

    return Vec2FaceNet()


def load_vec2face_state_dict(path: str | Path) -> dict:
    """Tensors of a Vec2Face checkpoint: the official ``.pth`` (key ``model_vec2face``, read with
    ``weights_only=True``, no code runs) or a ``.safetensors`` file."""
    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    import torch

    obj = torch.load(str(path), map_location="cpu", weights_only=True)
    if isinstance(obj, dict) and "model_vec2face" in obj:
        obj = obj["model_vec2face"]
    if not isinstance(obj, dict):
        raise ValueError(f"{path} does not hold a Vec2Face state dict (expected a dict with 'model_vec2face')")
    return obj


def _trunc_normal_ppf(u, mu: float, std: float, lo: float, hi: float):
    """Inverse CDF of N(mu, std) truncated to [lo, hi], applied to uniforms ``u`` (torch)."""
    import torch

    def cdf(x):
        return 0.5 * (1 + math.erf((x - mu) / (std * math.sqrt(2))))

    a, b = cdf(lo), cdf(hi)
    p = (a + u * (b - a)).clamp(1e-12, 1 - 1e-12)
    return (mu + std * math.sqrt(2) * torch.erfinv(2 * p - 1)).clamp(lo, hi)


@REGISTRY.register("vec2face")
class Vec2Face(Generator):
    """Vec2Face: feature masked autoencoder + image decoder (official checkpoint layout)."""

    dim = 512
    embedder = "arcface-r100-glint360k"
    differentiable = True
    batch_invariant = False
    weights_help = _HELP
    #: what its images inherit (the dataset card shows it)
    sources = {
        "datasets": ["WebFace4M"],
        "trained_on": "Vec2Face: WebFace4M, conditioned on an ArcFace (insightface) network",
        "licences": "WebFace4M: non-commercial research only; insightface ArcFace models: non-commercial research "
                    "only",
        "commercial": False,
    }

    @classmethod
    def embedder_spec_for(cls, weights: str | Path | None = None) -> str:
        """The ArcFace released beside the generator (``arcface-r100-glint360k.pth`` in the weights folder or its
        ``weights/``), else the folder itself (the embedder says what it lacks), else the bare name."""
        if weights is None:
            return cls.embedder
        root = Path(weights).expanduser()
        arc = next((p for p in (root / "arcface-r100-glint360k.pth", root / "weights" / "arcface-r100-glint360k.pth")
                    if p.is_file()), root)
        return f"{cls.embedder}:weights={arc}"

    def __init__(self, weights: str | Path | None = None, device: Any = "auto", mask_ratio_min: float = 0.1,
                 mask_ratio_max: float = 1.0, mask_ratio_mu: float = 0.15, mask_ratio_std: float = 0.25,
                 input_norm: float | None = None, **kwargs: Any):
        super().__init__(weights=weights, device=device, **kwargs)
        root = require_weights(weights, [], generator="vec2face", help=_HELP)
        ckpt = None
        for cand in ("vec2face_generator.pth", "weights/vec2face_generator.pth", "model.safetensors",
                     "vec2face_generator.safetensors"):
            if (root / cand).is_file():
                ckpt = root / cand
                break
        if ckpt is None:
            raise FileNotFoundError(f"weights folder {root} for generator 'vec2face' has no vec2face_generator.pth "
                                    f"(or weights/vec2face_generator.pth, model.safetensors). {_HELP}")
        cfg = json.loads((root / "config.json").read_text()) if (root / "config.json").is_file() else {}
        self.net = build_vec2face_net(cfg)
        sd = load_vec2face_state_dict(ckpt)
        sd = {k[len("module."):] if k.startswith("module.") else k: v for k, v in sd.items()}
        own = self.net.state_dict()
        missing = [k for k in own if k not in sd and not k.endswith("position_ids")]
        unexpected = [k for k in sd if k not in own]
        bad = [k for k in own if k in sd and tuple(sd[k].shape) != tuple(own[k].shape)]
        if missing or unexpected or bad:
            raise ValueError(f"{ckpt} does not match the Vec2Face architecture: missing {missing[:5]}, "
                             f"unexpected {unexpected[:5]}, wrong shapes {bad[:5]}"
                             + ("" if cfg else " (add a config.json when the sizes differ from the release)"))
        self.net.load_state_dict(sd, strict=False)
        self.net.to(self.device).eval()
        self.net.requires_grad_(False)
        self.dim = int(self.net.config["rep_dim"])
        self.n_tok = int(self.net.config["num_tokens"])
        self.mask = (float(mask_ratio_min), float(mask_ratio_max), float(mask_ratio_mu), float(mask_ratio_std))
        if not 0 < self.mask[0] <= self.mask[1] <= 1:
            raise ValueError(f"need 0 < mask_ratio_min <= mask_ratio_max <= 1, got {self.mask[:2]}")
        self.input_norm = math.sqrt(self.dim) if input_norm is None else float(input_norm)
        self.checkpoint = ckpt

    def options(self) -> dict[str, Any]:
        lo, hi, mu, sd = self.mask
        return {"mask_ratio_min": lo, "mask_ratio_max": hi, "mask_ratio_mu": mu, "mask_ratio_std": sd,
                "input_norm": self.input_norm}

    def masks(self, seeds):
        """Per-image (drop, masked) boolean masks B×49 drawn from the seeds."""
        import torch

        lo, hi, mu, sd = self.mask
        u = per_sample_rand(seeds, (1 + self.n_tok,), stream=1)
        rate = _trunc_normal_ppf(u[:, 0].double(), mu, sd, lo, hi)
        n_drop = int(math.ceil(self.n_tok * lo))
        n_mask = torch.ceil(self.n_tok * rate).long().clamp(min=n_drop)
        rank = u[:, 1:].argsort(dim=1).argsort(dim=1)  # position of each token in a random order
        drop = rank < n_drop
        masked = rank < n_mask[:, None]
        return drop.to(self.device), masked.to(self.device)

    def generate_tensor(self, conditions: Any, seeds: Any):
        import torch

        conditions, s = condition_batch(conditions, seeds)
        rep = conditions.to(self.device, torch.float32)
        if self.input_norm > 0:
            rep = rep / rep.norm(dim=1, keepdim=True).clamp_min(1e-12) * self.input_norm
        drop, masked = self.masks(s)
        img = self.net(rep, drop, masked)
        return ((img + 1) / 2).clamp(0, 1)
