"""Polling waits: one process waits for a file another process writes (no process group, no timeout, so a
long job on another rank never makes the waiter fail)."""
from __future__ import annotations

import time
from typing import Callable, TypeVar

__all__ = ["wait_until"]

T = TypeVar("T")


def wait_until(ready: Callable[[], T], interval: float = 0.5) -> T:
    """Call ``ready()`` every ``interval`` seconds until it returns a true value; return that value."""
    while True:
        got = ready()
        if got:
            return got
        time.sleep(interval)
