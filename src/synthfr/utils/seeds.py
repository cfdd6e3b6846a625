"""Deterministic seeds.

The seed of any unit of work (image ``k`` of identity ``i``, a sampler run, ...) is derived from the global
seed and the unit's own keys only, never from batch position or process rank, so batching, sharding and
resuming never change a result.
"""
from __future__ import annotations

import hashlib
import random
import struct
from typing import Any, Sequence

import numpy as np

__all__ = ["derive_seed", "seed_everything", "per_sample_randn", "per_sample_rand"]


def derive_seed(global_seed: int, *keys: int | str) -> int:
    """A 63-bit seed from ``global_seed`` and any number of integer/string keys (stable across platforms)."""
    h = hashlib.blake2b(digest_size=8)
    h.update(struct.pack("<q", int(global_seed)))
    for k in keys:
        if isinstance(k, str):
            b = k.encode()
            h.update(b"s" + struct.pack("<I", len(b)) + b)
        else:
            h.update(b"i" + struct.pack("<q", int(k)))
    return int.from_bytes(h.digest(), "little") & ((1 << 63) - 1)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    import torch

    torch.manual_seed(seed)


# -- seed -> noise: one torch.Generator per image, so noise never depends on the batch ----------------------
def per_sample_randn(seeds: Sequence[int] | np.ndarray, shape: Sequence[int], device: Any = "cpu",
                     dtype: Any = None, stream: int = 0):
    """Gaussian noise of shape ``(len(seeds), *shape)``, row ``j`` drawn from its own generator seeded by
    ``seeds[j]`` (and ``stream``, for several independent draws per image), so it does not depend on the
    batch. Drawn on CPU, then moved to ``device``, so the numbers are the same on every device."""
    import torch

    dtype = dtype or torch.float32
    rows = []
    for s in np.asarray(seeds, dtype=np.int64).reshape(-1):
        g = torch.Generator(device="cpu")
        g.manual_seed(_mix(int(s), stream))
        rows.append(torch.randn(tuple(shape), generator=g, dtype=torch.float32))
    out = torch.stack(rows) if rows else torch.zeros((0, *shape))
    return out.to(device=device, dtype=dtype)


def per_sample_rand(seeds: Sequence[int] | np.ndarray, shape: Sequence[int], device: Any = "cpu",
                    stream: int = 0):
    """Uniform [0, 1) noise, one generator per image; see :func:`per_sample_randn`."""
    import torch

    rows = []
    for s in np.asarray(seeds, dtype=np.int64).reshape(-1):
        g = torch.Generator(device="cpu")
        g.manual_seed(_mix(int(s), stream))
        rows.append(torch.rand(tuple(shape), generator=g))
    out = torch.stack(rows) if rows else torch.zeros((0, *shape))
    return out.to(device=device)


def _mix(seed: int, stream: int) -> int:
    """The torch generator seed of one image: its seed (63 bits) for stream 0, a derived one for others."""
    if stream == 0:
        return seed & ((1 << 63) - 1)
    return derive_seed(seed, "stream", stream)
