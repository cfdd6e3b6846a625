"""Device selection."""
from __future__ import annotations

__all__ = ["resolve_device"]


def resolve_device(device: str | None = "auto"):
    """``"auto"`` -> CUDA when available, else MPS, else CPU; anything else is passed to ``torch.device``."""
    import torch

    if device in (None, "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    return torch.device(device)
