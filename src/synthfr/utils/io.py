"""JSON and YAML output with plain values, and atomic file writes.

The bottom layer: imports no other synthfr module (``synthfr.config`` re-exports ``to_dict`` and ``dump_yaml``)."""
from __future__ import annotations

import dataclasses as _dc
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any, Mapping

__all__ = ["to_dict", "dump_yaml", "to_jsonable", "write_json", "read_json", "atomic_write_bytes", "atomic_write_text",
           "file_sha256"]


def to_jsonable(obj: Any) -> Any:
    """Convert numpy/torch scalars and arrays, Paths and dataclasses into JSON values (NaN -> None)."""
    import dataclasses

    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return to_jsonable(dataclasses.asdict(obj))
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "tolist") and callable(obj.tolist):  # numpy / torch arrays and scalars
        return to_jsonable(obj.tolist())
    if isinstance(obj, float) and (math.isnan(obj) or math.isinf(obj)):
        return None
    return obj


def write_json(path: str | Path, obj: Any, indent: int = 2) -> Path:
    """Write ``obj`` as JSON atomically (parents created)."""
    text = json.dumps(to_jsonable(obj), indent=indent) + "\n"
    return atomic_write_text(path, text)


def read_json(path: str | Path) -> Any:
    with open(path) as f:
        return json.load(f)


def atomic_write_bytes(path: str | Path, data: bytes, fsync: bool = False) -> Path:
    """Write to a temporary file in the same folder, then rename: readers never see half a file (``fsync``:
    the bytes reach the disk before the rename, so the file survives a power loss whole or not at all)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | Path, text: str, fsync: bool = False) -> Path:
    return atomic_write_bytes(path, text.encode(), fsync=fsync)


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks."""
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def to_dict(cfg: Any) -> Any:
    """Recursively convert dataclasses (and Paths, tuples) into YAML/JSON-friendly values (hidden fields left
    out)."""
    if _dc.is_dataclass(cfg) and not isinstance(cfg, type):
        return {f.name: to_dict(getattr(cfg, f.name)) for f in _dc.fields(cfg) if not f.metadata.get("hidden")}
    if isinstance(cfg, Mapping):
        return {str(k): to_dict(v) for k, v in cfg.items()}
    if isinstance(cfg, (list, tuple)):
        return [to_dict(v) for v in cfg]
    if isinstance(cfg, Path):
        return str(cfg)
    if hasattr(cfg, "item") and callable(cfg.item) and getattr(cfg, "ndim", 1) == 0:  # numpy / torch scalar
        return cfg.item()
    return cfg


def dump_yaml(obj: Any, path: str | Path | None = None) -> str:
    """Serialise a dataclass or mapping to YAML (and write it when ``path`` is given)."""
    import yaml

    text = yaml.safe_dump(to_dict(obj), sort_keys=False, default_flow_style=None)
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(text)
    return text
