"""What produced an output: package versions, command line, git commit, host."""
from __future__ import annotations

import platform
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = ["provenance", "write_provenance"]

_PACKAGES = ("synthfr", "torch", "numpy", "pillow", "dlib-bin", "safetensors", "onnxruntime", "diffusers",
             "transformers", "faiss-cpu")


def _git_commit() -> str | None:
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or None if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def provenance() -> dict[str, Any]:
    """A dict recording versions and environment, stored beside every output folder's config."""
    versions = {}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    info: dict[str, Any] = {
        "versions": versions,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "argv": sys.argv,
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "git_commit": _git_commit(),
    }
    try:
        import torch

        info["torch_cuda"] = torch.version.cuda
        info["cuda_available"] = bool(torch.cuda.is_available())
    except ImportError:
        pass
    return info


def write_provenance(out_dir: str | Path, config: Any = None, seed: int | None = None,
                     name: str = "config.yaml") -> Path:
    """Write ``config.yaml`` in ``out_dir`` holding the resolved config, the seed and :func:`provenance`."""
    from synthfr.utils.io import dump_yaml, to_dict

    doc = {"config": to_dict(config) if config is not None else {}, "seed": seed, "provenance": provenance()}
    path = Path(out_dir) / name
    dump_yaml(doc, path)
    return path
