"""Splitting identities across processes: ``--shard i/n`` job arrays and ``torchrun`` ranks.

Two modes, both a pure function of ``(num_rows, index, count)`` so every process agrees without talking:

* ``strided`` (default): shard ``i`` takes rows ``i, i+n, i+2n, ...`` (``rows[i::n]``). Shards stay balanced
  when identities differ in cost (filter retries cluster in some regions of the sphere) and every shard
  makes progress through the whole file.
* ``contiguous``: shard ``i`` takes one block of consecutive rows (``np.array_split`` order: the first
  ``N mod n`` shards get one row more). Handy when a shard's output should be a contiguous range.

Under ``torchrun`` (``RANK``/``WORLD_SIZE`` in the environment) each rank takes shard ``RANK/WORLD_SIZE``
automatically and all ranks write into the same output folder; no process group is needed.

``--shard auto`` (:func:`auto_shard`) reads a Slurm job array (``SLURM_ARRAY_TASK_ID`` minus
``SLURM_ARRAY_TASK_MIN``, of ``SLURM_ARRAY_TASK_COUNT``): each array task is shard ``i/n`` of its own output
folder (then ``synthfr merge``); under torchrun it is the same as no ``--shard`` (ranks share one folder);
with neither it is ``0/1``.
"""
from __future__ import annotations

import os
import re

import numpy as np

__all__ = ["parse_shard", "shard_rows", "env_shard", "auto_shard", "SHARD_MODES"]

SHARD_MODES = ("strided", "contiguous")


def parse_shard(spec: str | tuple[int, int] | None) -> tuple[int, int] | None:
    """``"2/8"`` -> ``(2, 8)`` (0-based index, count); ``None`` -> ``None``."""
    if spec is None or spec == "":
        return None
    if isinstance(spec, (tuple, list)):
        i, n = int(spec[0]), int(spec[1])
    else:
        m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", str(spec))
        if not m:
            raise ValueError(f"--shard takes 'i/n' with 0 <= i < n (e.g. 0/4), got {spec!r}")
        i, n = int(m.group(1)), int(m.group(2))
    if n < 1 or not 0 <= i < n:
        raise ValueError(f"--shard {i}/{n}: need n >= 1 and 0 <= i < n (shards are numbered from 0)")
    return i, n


def shard_rows(num_rows: int, index: int = 0, count: int = 1, mode: str = "strided") -> np.ndarray:
    """The identity rows (sorted, int64) that shard ``index`` of ``count`` generates."""
    if mode not in SHARD_MODES:
        raise ValueError(f"unknown shard mode {mode!r}; choose one of {', '.join(SHARD_MODES)}")
    rows = np.arange(num_rows, dtype=np.int64)
    if count == 1:
        return rows
    if mode == "strided":
        return rows[index::count]
    return np.array_split(rows, count)[index]


def env_shard() -> tuple[int, int] | None:
    """``(RANK, WORLD_SIZE)`` when launched by torchrun (or any launcher that sets them) with WORLD_SIZE > 1."""
    from synthfr.utils.distributed import env_rank_world

    try:
        rank, world = env_rank_world()
    except ValueError:
        return None
    if world <= 1:
        return None
    if not 0 <= rank < world:
        raise ValueError(f"RANK={rank} is outside 0..WORLD_SIZE-1={world - 1}")
    return rank, world


def auto_shard(torchrun: bool = True) -> tuple[int, int] | None:
    """``--shard auto``: ``(i, n)`` of a Slurm job array, else torchrun's ``(RANK, WORLD_SIZE)`` when
    ``torchrun`` is true (``None`` otherwise: the caller's torchrun handling applies), else ``(0, 1)``."""
    task, count = os.environ.get("SLURM_ARRAY_TASK_ID"), os.environ.get("SLURM_ARRAY_TASK_COUNT")
    if task is not None and count is not None:
        try:
            i = int(task) - int(os.environ.get("SLURM_ARRAY_TASK_MIN", "0"))
            n = int(count)
        except ValueError:
            raise ValueError(f"--shard auto: SLURM_ARRAY_TASK_ID={task!r} / SLURM_ARRAY_TASK_COUNT={count!r} are "
                             "not numbers") from None
        if n < 1 or not 0 <= i < n:
            raise ValueError(f"--shard auto: Slurm array task {task} is not in 0..{n - 1} (after subtracting "
                             "SLURM_ARRAY_TASK_MIN); submit the array as --array=0-(N-1) or set --shard i/n")
        return i, n
    env = env_shard()
    if env is not None:
        return env if torchrun else None
    return (0, 1)
