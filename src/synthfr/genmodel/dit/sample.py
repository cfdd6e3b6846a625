"""Rendering with a trained DiT: per-image seeds, fixed-size chunks, batch-invariant pixels.

Image ``j`` starts from Gaussian noise drawn by its own ``torch.Generator`` seeded with ``seeds[j]`` (on CPU, so
the numbers are the same on every device); DDIM with η = 0 adds no further randomness. The network runs on
chunks of exactly ``chunk`` images (the last one padded with copies of its first row): a CPU/GPU matrix product
computes each output row with the same operations whenever the *shapes* are the same, so an image's pixels do not
depend on which other images share its batch, nor on the batch size (tested bit for bit).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from synthfr.genmodel.dit.model import DiT
from synthfr.genmodel.dit.schedule import NoiseSchedule, ddim_sample

__all__ = ["seeded_noise", "render"]


def seeded_noise(seeds, shape) -> torch.Tensor:
    """``len(seeds)``×shape standard normal noise, row ``j`` from a generator seeded with ``seeds[j]``."""
    from synthfr.utils.seeds import per_sample_randn

    return per_sample_randn(seeds, shape)


@torch.no_grad()
def render(model: DiT, schedule: NoiseSchedule, protos: torch.Tensor, seeds, *, steps: int = 50,
           guidance: float | None = 2.0, guidance_rescale: float = 0.0, landmarks: torch.Tensor | None = None,
           chunk: int = 8, out_size: int | None = 112) -> torch.Tensor:
    """Standardised prototypes (B×D) + seeds -> images in [0, 1], B×3×S×S (``out_size``: bicubic resize, or None)."""
    cfg = model.cfg
    dev = next(model.parameters()).device
    dtype = next(model.parameters()).dtype
    seeds = [int(s) for s in seeds]
    noise = seeded_noise(seeds, (cfg.in_channels, cfg.image_size, cfg.image_size))
    outs = []
    for a in range(0, len(seeds), chunk):
        n = min(chunk, len(seeds) - a)
        pad = chunk - n

        def padded(x):
            return None if x is None else torch.cat([x[a:a + n], x[a:a + 1].expand(pad, *x.shape[1:])])

        p = padded(protos.float()).to(dev, dtype)
        lm = padded(landmarks)
        lm = None if lm is None else lm.to(dev, dtype)
        z = padded(noise).to(dev, dtype)

        def model_fn(x, t, cond, p=p, lm=lm):
            keep = torch.full((x.shape[0],), bool(cond), device=dev)
            return model(x, t, p, keep, lm)

        x = ddim_sample(model_fn, z, schedule, steps=steps, guidance=guidance, guidance_rescale=guidance_rescale)
        outs.append(x[:n].float().cpu())
    x = torch.cat(outs) if outs else torch.zeros(0, cfg.in_channels, cfg.image_size, cfg.image_size)
    x = ((x + 1) / 2).clamp(0, 1)
    if out_size is not None and out_size != cfg.image_size:
        x = F.interpolate(x, size=(out_size, out_size), mode="bicubic", align_corners=False).clamp(0, 1)
    return x
