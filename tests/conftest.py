"""Shared fixtures. Tests that need real data use ``shared_data`` and skip cleanly without it."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

# Keep test runs light on the 2-core machines this project is developed and tested on.
os.environ.setdefault("OMP_NUM_THREADS", "2")


def _shared_data() -> Path | None:
    from synthfr.utils.paths import shared_data_dir

    return shared_data_dir()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Root of the real face data (``$SYNTHFR_DATA`` or ``../shared/data``); skips the test when absent."""
    root = _shared_data()
    if root is None:
        pytest.skip("real face data not found: set SYNTHFR_DATA or place it at ../shared/data")
    return root


def shared_file(*parts: str) -> Path:
    """A file under the shared data root, skipping the calling test when it is missing."""
    root = _shared_data()
    if root is None or not (root.joinpath(*parts)).exists():
        pytest.skip(f"real face data {'/'.join(parts)} not found: set SYNTHFR_DATA or place it at ../shared/data")
    return root.joinpath(*parts)


@pytest.fixture(scope="session")
def torch_threads():
    import torch

    torch.set_num_threads(2)
    return 2
