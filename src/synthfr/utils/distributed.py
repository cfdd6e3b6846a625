"""The process's place in a launch (torchrun or any launcher that sets ``RANK``/``WORLD_SIZE``/``LOCAL_RANK``),
read from the environment in one place; no process group is needed to ask."""
from __future__ import annotations

import os

__all__ = ["env_rank_world", "env_local_rank"]


def env_rank_world() -> tuple[int, int]:
    """``(RANK, WORLD_SIZE)`` from the environment; ``(0, 1)`` when they are not set."""
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def env_local_rank() -> int:
    """``LOCAL_RANK`` (this process's GPU on its node); 0 when not set."""
    return int(os.environ.get("LOCAL_RANK", "0"))
