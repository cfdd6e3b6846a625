"""Deterministic seeds.

The seed of any unit of work (image ``k`` of identity ``i``, a sampler run, ...) is derived from the global
seed and the unit's own keys only, never from batch position or process rank, so batching, sharding and
resuming never change a result.
"""
from __future__ import annotations

import hashlib
import random
import struct

import numpy as np

__all__ = ["derive_seed", "seed_everything"]


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
