"""Noise schedule and DDIM sampler of the VIGFace DiT (v-prediction, zero terminal SNR, trailing timesteps).

VIGFace's defaults, all from Lin et al., "Common Diffusion Noise Schedules and Sample Steps are Flawed" (2023):

* the **cosine** schedule (Nichol & Dhariwal), ``T = 1000``, **rescaled to zero terminal SNR**: ``sqrt(ᾱ_t)`` is
  shifted so that its last value is exactly 0 and scaled so that its first value is unchanged. At ``t = T-1``
  the input is pure noise, as it is at sampling time (no train/test gap at the first step);
* **v-prediction** (``v = sqrt(ᾱ)·ε − sqrt(1−ᾱ)·x₀``), because ε-prediction is meaningless at SNR 0;
* **trailing** timesteps for sampling (the first step is ``T-1``), DDIM with η = 0, 50 steps;
* **classifier-free guidance** ``v = v_u + w·(v_c − v_u)``, optionally with Lin et al.'s guidance rescale φ.
"""
from __future__ import annotations

import math
from typing import Callable

import torch

__all__ = ["cosine_alphas_cumprod", "rescale_zero_terminal_snr", "NoiseSchedule", "trailing_timesteps",
           "ddim_sample"]


def cosine_alphas_cumprod(T: int = 1000, s: float = 0.008, max_beta: float = 0.999) -> torch.Tensor:
    """ᾱ_t of the cosine schedule (as diffusers' ``squaredcos_cap_v2``: betas clipped at ``max_beta``), float64."""
    def f(t: float) -> float:
        return math.cos((t + s) / (1 + s) * math.pi / 2) ** 2

    betas = torch.tensor([min(1 - f((i + 1) / T) / f(i / T), max_beta) for i in range(T)], dtype=torch.float64)
    return torch.cumprod(1 - betas, 0)


def rescale_zero_terminal_snr(alphas_cumprod: torch.Tensor) -> torch.Tensor:
    """Lin et al.'s Algorithm 1: shift and scale ``sqrt(ᾱ)`` so the last step has SNR exactly 0 (ᾱ_T = 0)
    and the first keeps its value."""
    a = alphas_cumprod.double().sqrt()
    a0, aT = a[0].clone(), a[-1].clone()
    a = (a - aT) * a0 / (a0 - aT)
    return a.square()


class NoiseSchedule:
    """ᾱ_t for ``t = 0..T-1`` and the v-parameterisation helpers (all tensors broadcast over B×C×H×W)."""

    def __init__(self, T: int = 1000, kind: str = "cosine", zero_terminal_snr: bool = True):
        if kind == "cosine":
            ac = cosine_alphas_cumprod(T)
        elif kind == "linear":  # DDPM's linear betas, for comparison
            ac = torch.cumprod(1 - torch.linspace(1e-4, 0.02, T, dtype=torch.float64), 0)
        else:
            raise ValueError(f"unknown noise schedule {kind!r}; use cosine or linear")
        if zero_terminal_snr:
            ac = rescale_zero_terminal_snr(ac)
        self.T = int(T)
        self.kind = kind
        self.zero_terminal_snr = bool(zero_terminal_snr)
        self.alphas_cumprod = ac  # float64, T

    def snr(self) -> torch.Tensor:
        ac = self.alphas_cumprod
        return ac / (1 - ac).clamp_min(1e-300)

    def _ab(self, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        ab = self.alphas_cumprod.to(like.device)[t.long()].to(like.dtype)
        return ab.view(-1, *([1] * (like.ndim - 1)))

    def add_noise(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        ab = self._ab(t, x0)
        return ab.sqrt() * x0 + (1 - ab).sqrt() * noise

    def v_target(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        ab = self._ab(t, x0)
        return ab.sqrt() * noise - (1 - ab).sqrt() * x0

    def x0_eps_from_v(self, xt: torch.Tensor, v: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        ab = self._ab(t, xt)
        a, s = ab.sqrt(), (1 - ab).sqrt()
        return a * xt - s * v, s * xt + a * v


def trailing_timesteps(T: int, steps: int) -> list[int]:
    """Lin et al.'s "trailing" spacing: ``round(arange(T, 0, -T/steps)) - 1`` (first step ``T-1``)."""
    if not 1 <= steps <= T:
        raise ValueError(f"sampling steps must be in 1..{T}, got {steps}")
    ratio = T / steps
    return [int(round(T - i * ratio)) - 1 for i in range(steps)]


def ddim_sample(model_fn: Callable[[torch.Tensor, torch.Tensor, bool], torch.Tensor], noise: torch.Tensor,
                schedule: NoiseSchedule, steps: int = 50, guidance: float | None = None,
                guidance_rescale: float = 0.0) -> torch.Tensor:
    """Deterministic DDIM (η = 0) from ``noise`` (B×C×H×W) to x₀, the network predicting v.

    ``model_fn(x, t, cond)`` returns v for the conditioned (``cond=True``) or unconditioned pass. With
    ``guidance=None`` only the conditioned pass runs; with a number ``w`` both run and
    ``v = v_u + w·(v_c − v_u)`` (so ``w = 1`` reproduces the conditioned model up to rounding), then Lin et al.'s
    rescale ``φ`` mixes in the guided v rescaled to the conditioned v's per-image standard deviation.
    """
    x = noise
    ts = trailing_timesteps(schedule.T, steps)
    ac = schedule.alphas_cumprod
    for i, t in enumerate(ts):
        tt = torch.full((x.shape[0],), t, dtype=torch.long, device=x.device)
        v_c = model_fn(x, tt, True)
        if guidance is None:
            v = v_c
        else:
            v_u = model_fn(x, tt, False)
            v = v_u + guidance * (v_c - v_u)
            if guidance_rescale > 0:
                dims = tuple(range(1, v.ndim))
                std_c = v_c.std(dim=dims, keepdim=True)
                std_g = v.std(dim=dims, keepdim=True).clamp_min(1e-8)
                v = guidance_rescale * v * (std_c / std_g) + (1 - guidance_rescale) * v
        x0, eps = schedule.x0_eps_from_v(x, v, tt)
        t_prev = ts[i + 1] if i + 1 < len(ts) else -1
        ab_prev = float(ac[t_prev]) if t_prev >= 0 else 1.0
        x = math.sqrt(ab_prev) * x0 + math.sqrt(1 - ab_prev) * eps
    return x
