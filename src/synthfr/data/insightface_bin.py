"""The insightface ``.bin`` benchmark file format, read safely.

A ``.bin`` (``lfw.bin``, ``cfp_fp.bin``, ``agedb_30.bin``, ...) is a pickle of ``(list of encoded images, list of
bool issame)``; images ``2k`` and ``2k+1`` form pair ``k``, the pairs are in fold order (10 contiguous folds).
Encoded images are JPEG/PNG ``bytes``, or 1-D ``uint8`` numpy arrays holding those bytes (some insightface
files). Because a pickle can run arbitrary code, :func:`load_bin_raw` uses :class:`RestrictedUnpickler`, which
admits only the handful of globals the format needs (numpy array and dtype reconstruction, ``_codecs.encode`` for
protocol-2 bytes) through *validating stand-ins*: numpy never sees attacker-controlled state, and any other
global is refused before anything is called. :mod:`synthfr.data.benchmarks` turns the result into a benchmark.
"""
from __future__ import annotations

import math
import os
import pickle
from pathlib import Path
from typing import Any, Sequence

import numpy as np

__all__ = ["UnsafePickleError", "RestrictedUnpickler", "load_bin_raw", "write_bin"]

class UnsafePickleError(pickle.UnpicklingError, ValueError):
    """A ``.bin`` file references something a benchmark file never needs; it was refused without running it."""


# ----------------------------------------------------------------------------------------------------------------
# Restricted unpickling
# ----------------------------------------------------------------------------------------------------------------
# Only these numpy element types may appear in a benchmark pickle (image bytes, bool/int issame arrays).
_ALLOWED_DTYPES = {"b1", "?", "u1", "B", "i1", "b", "u2", "H", "i2", "h", "u4", "I", "i4", "i", "u8", "Q", "i8",
                   "q", "l", "L", "f4", "f", "f8", "d", "bool", "uint8", "int8", "int32", "int64", "float32",
                   "float64"}
_MAX_ARRAY_BYTES = 1 << 31  # 2 GiB: far above any real benchmark image or label array


class _NDArrayClass:
    """Stand-in for ``numpy.ndarray`` inside a pickle: only usable as the first argument of ``_reconstruct``."""

    def __repr__(self) -> str:
        return "numpy.ndarray"


_NDARRAY = _NDArrayClass()


class _DTypeSpec:
    """Stand-in for ``numpy.dtype(code, align, copy)`` + its ``__setstate__``: plain numeric types only."""

    def __init__(self, code: Any = None, align: Any = False, copy: Any = False):
        if isinstance(code, bytes):
            code = code.decode("latin1")
        if not isinstance(code, str) or code not in _ALLOWED_DTYPES:
            raise UnsafePickleError(f"numpy dtype {code!r} is not admitted in a benchmark file "
                                    f"(only plain bool/integer/float types)")
        self.code = code
        self.endian = "="

    def __setstate__(self, state: Any) -> None:
        # (version, endian, subarray, names, fields, elsize, alignment, flags[, metadata])
        if not isinstance(state, tuple) or len(state) < 2:
            raise UnsafePickleError(f"unexpected numpy dtype state {state!r}")
        endian = state[1].decode("latin1") if isinstance(state[1], bytes) else state[1]
        if endian not in ("<", ">", "|", "="):
            raise UnsafePickleError(f"unexpected numpy dtype byte order {state[1]!r}")
        if any(s is not None for s in state[2:5]):
            raise UnsafePickleError("structured/sub-array numpy dtypes are not admitted in a benchmark file")
        self.endian = endian

    def to_dtype(self) -> np.dtype:
        dt = np.dtype(self.code)
        return dt.newbyteorder(self.endian) if self.endian in "<>" and dt.itemsize > 1 else dt


def _as_dtype(d: Any) -> np.dtype:
    if isinstance(d, _DTypeSpec):
        return d.to_dtype()
    if isinstance(d, (str, bytes)):
        return _DTypeSpec(d).to_dtype()
    raise UnsafePickleError(f"expected a numpy dtype in the array state, got {type(d).__name__}")


def _as_raw(data: Any) -> bytes:
    if isinstance(data, (bytes, bytearray)):
        return bytes(data)
    if isinstance(data, str):  # Python 2 str under encoding="latin1"
        return data.encode("latin1")
    if isinstance(data, pickle.PickleBuffer):
        return bytes(data.raw())
    raise UnsafePickleError(f"numpy array data must be raw bytes, got {type(data).__name__} "
                            "(object arrays are not admitted)")


def _build_array(raw: bytes, dtype: np.dtype, shape: Any, fortran: bool) -> np.ndarray:
    if not isinstance(shape, tuple) or not all(isinstance(s, int) and s >= 0 for s in shape):
        raise UnsafePickleError(f"bad numpy array shape {shape!r}")
    n = math.prod(shape)
    if n * dtype.itemsize != len(raw) or len(raw) > _MAX_ARRAY_BYTES:
        raise UnsafePickleError(f"numpy array data of {len(raw)} bytes does not match shape {shape} x {dtype}")
    return np.frombuffer(raw, dtype=dtype).reshape(shape, order="F" if fortran else "C").copy()


class _ArraySpec:
    """Stand-in for ``numpy.core.multiarray._reconstruct(ndarray, shape, dtype)`` + ``ndarray.__setstate__``."""

    def __init__(self, subtype: Any, shape: Any = (0,), dtype: Any = b"b"):
        if subtype is not _NDARRAY:
            raise UnsafePickleError(f"_reconstruct of {subtype!r} is not admitted (only numpy.ndarray)")
        self.array: np.ndarray | None = None

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, tuple) or len(state) not in (4, 5):
            raise UnsafePickleError("unexpected numpy array state")
        if len(state) == 5:
            state = state[1:]
        shape, dtype, fortran, raw = state
        self.array = _build_array(_as_raw(raw), _as_dtype(dtype), shape, bool(fortran))


def _frombuffer(buf: Any, dtype: Any, shape: Any, order: Any = "C") -> np.ndarray:
    """Stand-in for ``numpy.core.numeric._frombuffer`` (protocol-5 arrays)."""
    order = order.decode("latin1") if isinstance(order, bytes) else order
    if order not in ("C", "F", "A", "K"):
        raise UnsafePickleError(f"bad numpy order {order!r}")
    return _build_array(_as_raw(buf), _as_dtype(dtype), shape, order == "F")


def _scalar(dtype: Any, raw: Any = None) -> Any:
    """Stand-in for ``numpy.core.multiarray.scalar(dtype, raw)`` (numpy bools/ints in an issame list)."""
    dt = _as_dtype(dtype)
    data = _as_raw(raw)
    if len(data) != dt.itemsize:
        raise UnsafePickleError(f"numpy scalar of {dt} needs {dt.itemsize} bytes, got {len(data)}")
    return np.frombuffer(data, dtype=dt)[0]


def _codecs_encode(obj: Any, encoding: Any = "utf-8", errors: str = "strict") -> bytes:
    """Stand-in for ``_codecs.encode``: how protocol-2 pickles written by Python 3 store ``bytes``."""
    if not isinstance(obj, str) or encoding not in ("latin1", "latin-1", "iso-8859-1"):
        raise UnsafePickleError(f"_codecs.encode with {type(obj).__name__}/{encoding!r} is not admitted")
    return obj.encode("latin1")


def _bytearray(obj: Any = b"", encoding: Any = None) -> bytearray:
    """Stand-in for ``builtins.bytearray`` (protocol-2 bytearrays)."""
    if isinstance(obj, str):
        if encoding not in ("latin1", "latin-1", "iso-8859-1"):
            raise UnsafePickleError(f"bytearray with encoding {encoding!r} is not admitted")
        return bytearray(obj.encode("latin1"))
    if isinstance(obj, (bytes, bytearray)) and encoding is None:
        return bytearray(obj)
    raise UnsafePickleError(f"bytearray of {type(obj).__name__} is not admitted")


_ADMITTED: dict[tuple[str, str], Any] = {}
for _mod in ("numpy.core.multiarray", "numpy._core.multiarray"):
    _ADMITTED[(_mod, "_reconstruct")] = _ArraySpec
for _mod in ("numpy.core.multiarray", "numpy._core.multiarray"):
    _ADMITTED[(_mod, "scalar")] = _scalar
for _mod in ("numpy.core.numeric", "numpy._core.numeric"):
    _ADMITTED[(_mod, "_frombuffer")] = _frombuffer
for _mod in ("numpy", "numpy.core.multiarray", "numpy._core.multiarray"):
    _ADMITTED[(_mod, "ndarray")] = _NDARRAY
    _ADMITTED[(_mod, "dtype")] = _DTypeSpec
_ADMITTED[("_codecs", "encode")] = _codecs_encode
_ADMITTED[("builtins", "bytearray")] = _bytearray
_ADMITTED[("__builtin__", "bytearray")] = _bytearray


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that admits only what insightface benchmark files use, through validating stand-ins.

    Admitted globals: numpy array reconstruction (``numpy[._]core.multiarray._reconstruct``, ``numpy.ndarray``,
    ``numpy.dtype`` with plain numeric types, ``numpy[._]core.numeric._frombuffer``), numpy scalars
    (``numpy[._]core.multiarray.scalar``, e.g. ``np.True_`` in an issame list), ``_codecs.encode`` (latin-1
    only) and ``bytearray``. Each resolves to a stand-in that checks its arguments and builds the value itself
    (``np.frombuffer`` of raw bytes), so no foreign callable is ever invoked. Everything else — ``os.system``,
    ``builtins.eval``, ``subprocess.*``, any class — raises :class:`UnsafePickleError` while the global is being
    looked up, i.e. before the ``REDUCE`` that would call it. Persistent ids and extension codes are refused too.
    """

    def __init__(self, file: Any, *, source: str = "<bytes>"):
        # latin1: Python 2 ``str`` (image bytes, numpy raw data) arrives as ``str`` and is re-encoded losslessly.
        super().__init__(file, encoding="latin1")
        self.source = source

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ADMITTED[(module, name)]
        except KeyError:
            raise UnsafePickleError(
                f"refusing to load {self.source}: it references the global '{module}.{name}', which an insightface "
                f"benchmark .bin never needs (only numpy array reconstruction and byte strings are admitted). "
                f"The file may be hostile or is not a benchmark file; nothing in it was executed."
            ) from None

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError(f"refusing to load {self.source}: persistent id {pid!r} is not admitted")


def _finalise(obj: Any, depth: int = 0) -> Any:
    """Replace array stand-ins by numpy arrays; refuse leftovers."""
    if depth > 4:
        raise UnsafePickleError("benchmark pickle is nested deeper than the format allows")
    if isinstance(obj, _ArraySpec):
        if obj.array is None:
            raise UnsafePickleError("numpy array without state")
        return obj.array
    if isinstance(obj, (_DTypeSpec, _NDArrayClass)):
        raise UnsafePickleError("stray numpy dtype/class object in a benchmark pickle")
    if isinstance(obj, (list, tuple)):
        out = [_finalise(o, depth + 1) for o in obj]
        return tuple(out) if isinstance(obj, tuple) else out
    if isinstance(obj, dict):
        raise UnsafePickleError("dicts are not part of the benchmark format")
    return obj


def load_bin_raw(path: str | os.PathLike) -> tuple[list[bytes], np.ndarray]:
    """Safely read an insightface ``.bin``: (encoded images as ``bytes`` in file order, ``issame`` bool array).

    Raises :class:`UnsafePickleError` (a ``ValueError``) for a file that references anything beyond the format,
    and ``ValueError`` for a file of the wrong shape.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"benchmark file {path} not found (expected an insightface .bin such as lfw.bin)")
    with open(path, "rb") as f:
        try:
            obj = RestrictedUnpickler(f, source=str(path)).load()
        except UnsafePickleError:
            raise
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError,
                KeyError, MemoryError, UnicodeDecodeError) as e:
            raise ValueError(f"{path} is not a readable insightface .bin benchmark ({type(e).__name__}: {e})") from e
    obj = _finalise(obj)
    if not isinstance(obj, (tuple, list)) or len(obj) != 2:
        raise ValueError(f"{path}: an insightface .bin holds a pair (images, issame); got {type(obj).__name__}"
                         + (f" of length {len(obj)}" if isinstance(obj, (tuple, list)) else ""))
    bins, issame = obj
    if isinstance(bins, np.ndarray) or not isinstance(bins, (list, tuple)):
        raise ValueError(f"{path}: the first element must be a list of encoded images")
    images: list[bytes] = []
    for i, b in enumerate(bins):
        if isinstance(b, np.ndarray):
            if b.dtype not in (np.uint8, np.int8):
                raise ValueError(f"{path}: image {i} is a numpy array of {b.dtype}, expected uint8 encoded bytes")
            b = b.reshape(-1).view(np.uint8).tobytes()
        elif isinstance(b, str):
            b = b.encode("latin1")
        elif isinstance(b, bytearray):
            b = bytes(b)
        elif not isinstance(b, bytes):
            raise ValueError(f"{path}: image {i} is a {type(b).__name__}, expected encoded image bytes")
        images.append(b)
    if isinstance(issame, np.ndarray):
        if issame.dtype.kind not in "biu":
            raise ValueError(f"{path}: issame has dtype {issame.dtype}, expected bool")
        issame_arr = issame.reshape(-1).astype(bool)
    elif isinstance(issame, (list, tuple)):
        if not all(isinstance(v, (bool, int, np.bool_, np.integer)) for v in issame):
            raise ValueError(f"{path}: issame must be a list of booleans")
        issame_arr = np.array([bool(v) for v in issame], dtype=bool)
    else:
        raise ValueError(f"{path}: the second element must be the list of issame booleans")
    if len(images) != 2 * len(issame_arr):
        raise ValueError(f"{path}: {len(images)} images for {len(issame_arr)} pairs; an insightface .bin holds "
                         "two images per pair")
    return images, issame_arr


def write_bin(path: str | os.PathLike, images: Sequence[bytes | np.ndarray], issame: Sequence[bool],
              protocol: int = pickle.HIGHEST_PROTOCOL) -> Path:
    """Write an insightface-format ``.bin`` (used by tests and to package small benchmarks).

    ``images`` are encoded JPEG/PNG bytes (or uint8 arrays holding them), two per pair, in fold order.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        pickle.dump((list(images), [bool(v) for v in issame]), f, protocol=protocol)
    return path

