"""Validation at the edges: arrays read from files, numbers from flags and configs, output folders, devices.

Every check raises :class:`synthfr.errors.UsageError` (a flag or config value is wrong; exit 2) or
:class:`synthfr.errors.InputError` (a file holds bad data; exit 1) with one line naming the input, the
first bad row and what to do. Commands call these *before* they create any output, so a rejected command
leaves nothing behind that would block the corrected one.
"""
from __future__ import annotations

import dataclasses
import math
import os
import typing
from pathlib import Path
from typing import Any

import numpy as np

from synthfr.errors import InputError, UsageError

__all__ = ["check_vectors", "check_labels", "load_vectors", "load_labels", "check_range", "check_choice",
           "check_out_dir", "check_device", "check_types", "check_image_count"]


def _name(source: Any) -> str:
    return str(source) if source is not None else "the array"


def check_vectors(arr: Any, source: Any = None, *, what: str = "vectors", dim: int | None = None,
                  allow_empty: bool = False, nonzero: bool = True) -> np.ndarray:
    """An N×D float array with finite, non-zero rows (returned as float32).

    ``source``: the file (or flag) it came from, named in the message. ``nonzero``: refuse all-zero rows
    (a zero vector has no direction: it cannot be an identity or an embedding).
    """
    src = _name(source)
    a = np.asarray(arr)
    if a.dtype == object or not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer)):
        raise InputError(f"{src} holds {a.dtype} data; expected N×D float {what} (e.g. from `synthfr sample` or "
                         "`synthfr embed`)")
    if a.ndim != 2:
        raise InputError(f"{src} holds an array of shape {a.shape}; expected N×D {what}")
    if a.shape[0] == 0 and not allow_empty:
        raise InputError(f"{src} holds 0 {what} (shape {a.shape}); write a non-empty file first")
    if a.shape[1] == 0:
        raise InputError(f"{src} holds {what} of dimension 0 (shape {a.shape}); expected N×D with D >= 1")
    if dim is not None and a.shape[1] != dim:
        raise InputError(f"{src} holds {a.shape[1]}-D {what}; expected {dim}-D")
    a = np.asarray(a, dtype=np.float32)
    # blockwise so a memory-mapped file of millions of rows is never copied whole
    for start in range(0, a.shape[0], 65536):
        blk = np.asarray(a[start:start + 65536])
        bad = ~np.isfinite(blk).all(axis=1)
        if bad.any():
            r = start + int(np.argmax(bad))
            raise InputError(f"{src}: row {r} of {a.shape[0]} holds NaN or Inf ({int(bad.sum())} such rows in "
                             f"rows {start}..{start + len(blk) - 1}); regenerate the file or drop those rows")
        if nonzero:
            zero = ~(np.abs(blk) > 0).any(axis=1)
            if zero.any():
                r = start + int(np.argmax(zero))
                raise InputError(f"{src}: row {r} of {a.shape[0]} is all zeros (no direction); regenerate the "
                                 "file or drop that row")
    return a


def load_vectors(path: str | Path, *, what: str = "vectors", dim: int | None = None, mmap: bool = False,
                 hint: str = "") -> np.ndarray:
    """``np.load`` (no pickles) + :func:`check_vectors`, with one-line errors naming ``path``."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise FileNotFoundError(f"{what} file {p} does not exist{'; ' + hint if hint else ''}")
    try:
        a = np.load(p, mmap_mode="r" if mmap else None, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise InputError(f"cannot read {p} as a .npy array ({' '.join(str(e).split())[:160]}); it is corrupt or "
                         "not a NumPy file") from e
    if isinstance(a, np.lib.npyio.NpzFile):
        a.close()
        raise InputError(f"{p} is an .npz archive; expected a .npy file with N×D {what}")
    return check_vectors(a, p, what=what, dim=dim)


def check_labels(lab: Any, source: Any = None, *, n: int | None = None, rows_source: Any = None) -> np.ndarray:
    """One integer label per row (returned as int64); ``n``: the number of rows it must match."""
    src = _name(source)
    a = np.asarray(lab)
    if a.ndim == 2 and 1 in a.shape:
        a = a.reshape(-1)
    if a.ndim != 1:
        raise InputError(f"{src} holds labels of shape {a.shape}; expected one integer label per row (N,)")
    if np.issubdtype(a.dtype, np.floating):
        if not np.isfinite(a).all():
            r = int(np.argmax(~np.isfinite(a)))
            raise InputError(f"{src}: label {r} is NaN or Inf; labels are integers")
        if (a != np.round(a)).any():
            r = int(np.argmax(a != np.round(a)))
            raise InputError(f"{src}: label {r} is {a[r]}, not an integer")
    elif not np.issubdtype(a.dtype, np.integer):
        raise InputError(f"{src} holds {a.dtype} labels; expected integers")
    if n is not None and len(a) != n:
        raise InputError(f"{src} has {len(a)} labels but {_name(rows_source)} has {n} rows; give one label per row")
    return a.astype(np.int64)


def load_labels(path: str | Path, *, n: int | None = None, rows_source: Any = None) -> np.ndarray:
    p = Path(path).expanduser()
    if not p.is_file():
        raise FileNotFoundError(f"labels file {p} does not exist; give one integer label per embedding row")
    try:
        a = np.load(p, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise InputError(f"cannot read {p} as a .npy array ({' '.join(str(e).split())[:160]})") from e
    return check_labels(a, p, n=n, rows_source=rows_source)


def check_range(name: str, value: Any, lo: float | None = None, hi: float | None = None, *,
                lo_open: bool = False, hi_open: bool = False, integer: bool = False,
                optional: bool = True) -> Any:
    """``lo <= value <= hi`` (open ends with ``lo_open``/``hi_open``); ``None`` passes when ``optional``."""
    if value is None:
        if optional:
            return value
        raise UsageError(f"{name} is required")
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise UsageError(f"{name} must be a number, got {value!r}")
    if integer and not float(value).is_integer():
        raise UsageError(f"{name} must be a whole number, got {value!r}")
    v = float(value)
    if math.isnan(v):
        raise UsageError(f"{name} must be a number, got NaN")
    too_low = lo is not None and (v < lo or (lo_open and v == lo))
    bad = too_low or (hi is not None and (v > hi or (hi_open and v == hi)))
    if bad:
        left = "" if lo is None else f"{'>' if lo_open else '>='} {lo:g}"
        right = "" if hi is None else f"{'<' if hi_open else '<='} {hi:g}"
        rng = " and ".join(x for x in (left, right) if x)
        raise UsageError(f"{name} must be {rng}, got {value!r}")
    return value


def check_choice(name: str, value: Any, choices: typing.Iterable[str]) -> Any:
    choices = list(choices)
    if value not in choices:
        raise UsageError(f"{name} must be one of {', '.join(map(str, choices))}; got {value!r}")
    return value


def check_out_dir(path: str | Path | None, name: str = "--out") -> Path | None:
    """An output folder path: may exist as a folder (or not yet), never as a file."""
    if path is None or str(path) == "":
        return None
    p = Path(path).expanduser()
    if p.exists() and not p.is_dir():
        raise UsageError(f"{name} {p} is a file, not a folder; choose a folder path")
    for parent in p.parents:  # a file where a parent folder should be
        if parent.exists():
            if not parent.is_dir():
                raise UsageError(f"{name} {p}: {parent} is a file, not a folder; choose another path")
            break
    return p


def check_device(device: str | None, name: str = "--device") -> str | None:
    """``auto``/``cpu``/``cuda[:N]``/``mps``: refuse a CUDA device on a machine without one (before any work)."""
    if device in (None, "", "auto", "cpu"):
        return device
    d = str(device)
    if d.startswith("cuda"):
        try:
            import torch
        except ImportError:  # pragma: no cover - torch is a dependency
            raise UsageError(f"{name} {d}: torch is not installed") from None
        if not torch.cuda.is_available():
            raise UsageError(f"{name} {d}: CUDA is not available on this machine; use --device cpu or auto")
        if ":" in d:
            idx = d.split(":", 1)[1]
            if not idx.isdigit() or int(idx) >= torch.cuda.device_count():
                raise UsageError(f"{name} {d}: this machine has {torch.cuda.device_count()} CUDA device(s) "
                                 f"(cuda:0..cuda:{torch.cuda.device_count() - 1})")
        return device
    if d == "mps":
        try:
            import torch

            if not torch.backends.mps.is_available():
                raise UsageError(f"{name} mps: MPS is not available on this machine; use --device cpu or auto")
        except ImportError:  # pragma: no cover
            pass
        return device
    raise UsageError(f"{name} {d!r} is not a device; use auto, cpu, cuda, cuda:N or mps")


def _type_ok(tp: Any, value: Any) -> bool:
    if value is None or tp is Any:
        return True
    origin = typing.get_origin(tp)
    if origin is typing.Union or (origin is not None and str(origin) == "<class 'types.UnionType'>"):
        return any(_type_ok(a, value) for a in typing.get_args(tp))
    if tp is type(None):
        return value is None
    if tp is bool:
        return isinstance(value, bool)
    if tp is int:
        return isinstance(value, (int, np.integer)) and not isinstance(value, bool)
    if tp is float:
        return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if tp is str:
        return isinstance(value, (str, Path))
    if origin in (list, tuple) or tp in (list, tuple):
        return isinstance(value, (list, tuple))
    if origin is dict or tp is dict:
        return isinstance(value, dict)
    return True


def check_types(cfg: Any, where: str = "") -> Any:
    """Every field of dataclass ``cfg`` holds a value of its annotated type (recursively); e.g. a YAML
    ``images_per_id: "3"`` is refused with the key, the value and the expected type."""
    hints = typing.get_type_hints(type(cfg))
    for f in dataclasses.fields(cfg):
        v = getattr(cfg, f.name)
        key = f"{where}.{f.name}" if where else f.name
        if dataclasses.is_dataclass(v) and not isinstance(v, type):
            check_types(v, key)
            continue
        tp = hints.get(f.name, Any)
        if not _type_ok(tp, v):
            want = getattr(tp, "__name__", None) or str(tp).replace("typing.", "")
            hint = f"; write it as a plain {want} (in YAML: without quotes)" if isinstance(v, str) else ""
            raise UsageError(f"config key {key} must be {want}, got {v!r} ({type(v).__name__}){hint}")
    return cfg


def check_image_count(found: int, source: Any, what: str = "usable images") -> int:
    """Refuse an image source that yielded nothing (an empty folder, every file unreadable or unaligned)."""
    if found <= 0:
        raise InputError(f"{_name(source)}: found 0 {what}; point it at a folder of face images "
                         "(<identity>/<image>.jpg or flat)")
    return found


def env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no")
