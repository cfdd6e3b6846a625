"""Face-verification benchmarks: insightface ``.bin`` files (loaded safely) and LFW-style folders with ``pairs.txt``.

Two sources give one :class:`Benchmark`:

* **insightface ``.bin``** (``lfw.bin``, ``cfp_fp.bin``, ``agedb_30.bin``, ...): a pickle of
  ``(list of encoded images, list of bool issame)``; images ``2k`` and ``2k+1`` form pair ``k``, the pairs are in
  fold order (10 contiguous folds). Encoded images are JPEG/PNG ``bytes``, or 1-D ``uint8`` numpy arrays holding
  those bytes (some insightface files). Because a pickle can run arbitrary code, :func:`load_bin` uses
  :class:`RestrictedUnpickler`, which admits only the handful of globals the format needs (numpy array and dtype
  reconstruction, ``_codecs.encode`` for protocol-2 bytes) through *validating stand-ins*: numpy never sees
  attacker-controlled state, and any other global is refused before anything is called.
* **LFW-style folder**: ``ROOT/Name/Name_0001.jpg`` images and a ``pairs.txt`` (LFW View 2 format: a header
  ``FOLDS N``, then per fold ``N`` matched lines ``name i j`` followed by ``N`` mismatched lines
  ``name1 i name2 j``). Images that are not 112×112 are aligned with :mod:`synthfr.face.align` (``align="auto"``).

Images are decoded lazily, in batches (:meth:`Benchmark.iter_batches`), and identical images are stored once
(``lfw.bin`` holds 12,000 image slots but only 7,701 distinct images), so each distinct face is embedded once.
"""
from __future__ import annotations

import io
import math
import os
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from synthfr.utils.images import IMAGE_EXTENSIONS as _IMAGE_EXTS

__all__ = [
    "Benchmark", "UnsafePickleError", "RestrictedUnpickler", "load_bin", "load_bin_raw", "load_pairs_folder",
    "load_benchmark", "parse_pairs", "kfold_assignment", "decode_image", "write_bin", "IMAGE_SIZE",
]

IMAGE_SIZE = 112


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


# ----------------------------------------------------------------------------------------------------------------
# Decoding
# ----------------------------------------------------------------------------------------------------------------
def decode_image(data: bytes, size: int = IMAGE_SIZE, source: str = "") -> np.ndarray:
    """Decode JPEG/PNG bytes to ``uint8 size×size×3`` RGB (resized, as insightface does, when not that size)."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as im:
            im = im.convert("RGB")
            if im.size != (size, size):
                im = im.resize((size, size), Image.BILINEAR)
            return np.asarray(im, dtype=np.uint8)
    except Exception as e:  # PIL raises many types for corrupt data
        raise ValueError(f"cannot decode image {source or ''}: {e}") from e


def kfold_assignment(n: int, folds: int = 10) -> np.ndarray:
    """Fold id of each of ``n`` items for ``KFold(n_splits=folds, shuffle=False)`` (contiguous; the first
    ``n % folds`` folds are one longer), as in insightface's verification protocol."""
    if folds < 2 or folds > max(n, 2):
        raise ValueError(f"cannot split {n} pairs into {folds} folds")
    sizes = np.full(folds, n // folds, dtype=np.int64)
    sizes[: n % folds] += 1
    return np.repeat(np.arange(folds), sizes)


# ----------------------------------------------------------------------------------------------------------------
# Benchmark
# ----------------------------------------------------------------------------------------------------------------
@dataclass
class Benchmark:
    """A verification benchmark: distinct images, pairs of them, issame labels and a fold per pair.

    Attributes:
        name: short name ("lfw" from ``lfw.bin`` or from a folder ``lfw/``).
        sources: one entry per distinct image: encoded ``bytes`` (``.bin``) or a file path (folder).
        pairs: ``int64 n×2`` indices into ``sources``.
        issame: ``bool n``.
        folds: ``int64 n`` fold id of each pair (``.bin``: 10 contiguous folds; ``pairs.txt``: its sets).
        slots: for a ``.bin``, the distinct-image index of each of the ``2n`` images in file order.
        path: where it was read from.
        align: folders only: ``"auto"`` aligns images that are not 112×112, ``"never"`` refuses them,
            ``"always"`` aligns every image.
        align_failures: folders only: ``{"path", "reason"}`` of each image whose alignment failed (filled as
            images are decoded; such images are centre-cropped so that every pair is still scored).
    """

    name: str
    sources: list
    pairs: np.ndarray
    issame: np.ndarray
    folds: np.ndarray
    path: Path | None = None
    slots: np.ndarray | None = None
    align: str = "auto"
    align_failures: list = field(default_factory=list)
    _failed: set = field(default_factory=set, repr=False)

    def __len__(self) -> int:
        return len(self.issame)

    @property
    def num_pairs(self) -> int:
        return len(self.issame)

    @property
    def num_images(self) -> int:
        """Number of distinct images (each embedded once)."""
        return len(self.sources)

    @property
    def num_folds(self) -> int:
        return int(self.folds.max()) + 1 if len(self.folds) else 0

    def images(self, indices: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
        """Decoded distinct images ``uint8 k×112×112×3`` RGB (all of them when ``indices`` is None)."""
        idx = range(len(self.sources)) if indices is None else [int(i) for i in indices]
        out = np.empty((len(idx), IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.uint8)
        for j, i in enumerate(idx):
            out[j] = self._load(i)
        return out

    def iter_batches(self, batch_size: int = 256) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield ``(indices, images)`` over all distinct images, decoded ``batch_size`` at a time."""
        n = len(self.sources)
        for s in range(0, n, batch_size):
            idx = np.arange(s, min(n, s + batch_size))
            yield idx, self.images(idx)

    def _load(self, i: int) -> np.ndarray:
        src = self.sources[i]
        if isinstance(src, (bytes, bytearray)):
            return decode_image(src, source=f"{self.name}[{i}]")
        img, reason = _load_face_file(Path(src), self.align)
        if reason is not None and str(src) not in self._failed:
            self._failed.add(str(src))
            self.align_failures.append({"path": str(src), "reason": reason})
        return img

    def __repr__(self) -> str:
        return (f"Benchmark({self.name!r}, pairs={self.num_pairs}, positives={int(self.issame.sum())}, "
                f"images={self.num_images}, folds={self.num_folds}, path={str(self.path)!r})")


def _dedupe(items: Sequence[bytes]) -> tuple[list[bytes], np.ndarray]:
    index: dict[bytes, int] = {}
    uniq: list[bytes] = []
    slots = np.empty(len(items), dtype=np.int64)
    for k, b in enumerate(items):
        j = index.get(b)
        if j is None:
            j = index[b] = len(uniq)
            uniq.append(b)
        slots[k] = j
    return uniq, slots


def _name_from_path(path: Path) -> str:
    name = path.name
    for suf in (".bin",):
        if name.endswith(suf):
            name = name[: -len(suf)]
    return name


def load_bin(path: str | os.PathLike, folds: int = 10, name: str | None = None) -> Benchmark:
    """Load an insightface ``.bin`` safely (see :class:`RestrictedUnpickler`) as a :class:`Benchmark`.

    Pairs are ``(2k, 2k+1)``; folds follow insightface: ``KFold(folds, shuffle=False)`` over the pair order.
    """
    path = Path(path)
    raw, issame = load_bin_raw(path)
    uniq, slots = _dedupe(raw)
    pairs = slots.reshape(-1, 2)
    n = len(issame)
    fold_ids = kfold_assignment(n, folds) if n >= folds else np.arange(n, dtype=np.int64)
    return Benchmark(name=name or _name_from_path(path), sources=uniq, pairs=pairs, issame=issame,
                     folds=fold_ids, path=path, slots=slots)


# ----------------------------------------------------------------------------------------------------------------
# LFW-style folders
# ----------------------------------------------------------------------------------------------------------------
@dataclass
class _PairsFile:
    pairs: list  # [(name1, idx1, name2, idx2)]
    issame: np.ndarray
    folds: np.ndarray


def parse_pairs(path: str | os.PathLike) -> _PairsFile:
    """Parse an LFW ``pairs.txt``.

    Header ``S N`` (View 2: ``10 300``): ``S`` sets, each of ``N`` matched lines ``name i j`` followed by ``N``
    mismatched lines ``name1 i name2 j``; the set becomes the fold. A header with a single number ``N``
    (View 1 ``pairsDevTest.txt``) means one set of ``N`` matched then ``N`` mismatched lines; its folds are then
    10 contiguous tenths of each block (fold ``k`` = the ``k``-th tenth of the matched and of the mismatched
    pairs). Fields may be separated by tabs or spaces.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"pairs file {path} not found (an LFW-style benchmark needs a pairs.txt)")
    lines = [ln.split() for ln in path.read_text().splitlines() if ln.strip()]
    if not lines:
        raise ValueError(f"{path} is empty")
    head = lines[0]
    try:
        if len(head) == 2:
            sets, per = int(head[0]), int(head[1])
        elif len(head) == 1:
            sets, per = 1, int(head[0])
        else:
            raise ValueError
    except ValueError:
        raise ValueError(f"{path}: first line must be the header 'SETS PAIRS_PER_SET' (e.g. '10 300'), "
                         f"got {' '.join(head)!r}") from None
    body = lines[1:]
    if len(body) != sets * 2 * per:
        raise ValueError(f"{path}: header says {sets} sets x (2 x {per}) pairs = {sets * 2 * per} lines, "
                         f"found {len(body)}")
    pairs, issame, folds = [], [], []
    for ln_no, f in enumerate(body, start=2):
        k = (ln_no - 2) // (2 * per)
        want_same = ((ln_no - 2) % (2 * per)) < per
        try:
            if len(f) == 3:
                pairs.append((f[0], int(f[1]), f[0], int(f[2])))
                same = True
            elif len(f) == 4:
                pairs.append((f[0], int(f[1]), f[2], int(f[3])))
                same = False
            else:
                raise ValueError
        except ValueError:
            raise ValueError(f"{path}:{ln_no}: expected 'name i j' or 'name1 i name2 j', got {' '.join(f)!r}") \
                from None
        if same != want_same:
            raise ValueError(f"{path}:{ln_no}: a {'matched' if want_same else 'mismatched'} pair was expected here "
                             f"(each set lists {per} matched then {per} mismatched pairs)")
        issame.append(same)
        folds.append(k)
    issame_arr = np.array(issame, dtype=bool)
    folds_arr = np.array(folds, dtype=np.int64)
    if sets == 1 and per >= 10:
        # a single set (View 1 style): 10 folds, each with a contiguous tenth of the matched and of the
        # mismatched pairs, so every fold holds both kinds as in View 2
        folds_arr = np.concatenate([kfold_assignment(per, 10), kfold_assignment(per, 10)])
    return _PairsFile(pairs, issame_arr, folds_arr)


def _find_image(root: Path, name: str, idx: int) -> Path:
    stem = f"{name}_{idx:04d}"
    for ext in _IMAGE_EXTS + tuple(e.upper() for e in _IMAGE_EXTS):
        p = root / name / (stem + ext)
        if p.is_file():
            return p
    raise FileNotFoundError(f"image {name}/{stem}.jpg listed in the pairs file is missing under {root}")


def load_pairs_folder(root: str | os.PathLike, pairs: str | os.PathLike | None = None, align: str = "auto",
                      name: str | None = None, folds: int | None = None) -> Benchmark:
    """Load an LFW-style folder: ``ROOT/Name/Name_0001.jpg`` + ``pairs.txt`` (default ``ROOT/pairs.txt``).

    ``align``: ``"auto"`` aligns images that are not 112×112 with :mod:`synthfr.face.align` (those are taken as
    already aligned), ``"always"`` aligns every image, ``"never"`` refuses non-112 images. Alignment failures fall
    back to a centre crop and are listed in :attr:`Benchmark.align_failures`. ``folds`` overrides the sets of
    ``pairs.txt`` with contiguous k-fold.
    """
    root = Path(root)
    if root.is_file():
        pairs, root = root, root.parent
    if not root.is_dir():
        raise FileNotFoundError(f"benchmark folder {root} not found")
    pairs_path = Path(pairs) if pairs is not None else root / "pairs.txt"
    if align not in ("auto", "always", "never"):
        raise ValueError(f"align must be 'auto', 'always' or 'never', got {align!r}")
    pf = parse_pairs(pairs_path)
    index: dict[Path, int] = {}
    sources: list[Path] = []
    pair_idx = np.empty((len(pf.pairs), 2), dtype=np.int64)
    for k, (n1, i1, n2, i2) in enumerate(pf.pairs):
        for c, (nm, ii) in enumerate(((n1, i1), (n2, i2))):
            p = _find_image(root, nm, ii)
            j = index.get(p)
            if j is None:
                j = index[p] = len(sources)
                sources.append(p)
            pair_idx[k, c] = j
    fold_ids = pf.folds if folds is None else kfold_assignment(len(pf.issame), folds)
    if name is None:
        name = root.name if pairs is None or Path(pairs).name == "pairs.txt" else Path(pairs).stem
    return Benchmark(name=name, sources=sources, pairs=pair_idx, issame=pf.issame, folds=fold_ids, path=root,
                     align=align)


def load_benchmark(path: str | os.PathLike, align: str = "auto", pairs: str | os.PathLike | None = None
                   ) -> Benchmark:
    """A ``.bin`` file, an LFW-style folder (with ``pairs.txt``, or the pairs file ``pairs``) or a ``pairs.txt``
    file inside such a folder."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"benchmark {path} not found: pass an insightface .bin (e.g. lfw.bin) or a folder "
                                "of Name/Name_0001.jpg images with a pairs.txt")
    if path.is_file() and path.suffix.lower() != ".txt":
        return load_bin(path)
    if path.is_dir() and pairs is None and not (path / "pairs.txt").is_file():
        raise FileNotFoundError(f"{path} is a folder without a pairs.txt; an LFW-style benchmark needs one "
                                "(or pass the pairs file with --pairs)")
    return load_pairs_folder(path, pairs=pairs if path.is_dir() else None, align=align)


# ----------------------------------------------------------------------------------------------------------------
# Loading (and aligning) face image files
# ----------------------------------------------------------------------------------------------------------------
def read_rgb(path: Path) -> np.ndarray:
    """Read an image file as ``uint8 H×W×3`` RGB (:func:`synthfr.face.align.load_image`: EXIF-rotated,
    greyscale/alpha/16-bit converted). Raises ``ValueError`` naming the file when it cannot be decoded."""
    from synthfr.face.align import load_image

    return load_image(Path(path))


def _centre_crop(img: np.ndarray, size: int = IMAGE_SIZE) -> np.ndarray:
    from PIL import Image

    h, w = img.shape[:2]
    s = min(h, w)
    y, x = (h - s) // 2, (w - s) // 2
    return np.asarray(Image.fromarray(img[y:y + s, x:x + s]).resize((size, size), Image.BILINEAR))


_LANDMARKER: Any = None


def align_face(img: np.ndarray) -> tuple[np.ndarray | None, str | None]:
    """Detect and align one RGB image to 112×112 with :func:`synthfr.face.align.align_image` (the detector is
    created once and reused); ``(None, reason)`` when no face is found."""
    global _LANDMARKER
    from synthfr.face.align import AlignConfig, align_image

    if _LANDMARKER is None:
        from synthfr.face.landmarks import FaceLandmarker

        _LANDMARKER = FaceLandmarker.from_config(AlignConfig(size=IMAGE_SIZE))
    try:
        out, reason = align_image(img, detector=_LANDMARKER, size=IMAGE_SIZE)
    except Exception as e:  # a detector failure on one image is reported, never fatal
        return None, f"{type(e).__name__}: {e}"
    if out is None:
        return None, reason or "alignment failed"
    return np.asarray(out, dtype=np.uint8), None


def _load_face_file(path: Path, align: str) -> tuple[np.ndarray, str | None]:
    """The 112×112 face of one file and, when alignment failed (centre crop returned instead), the reason."""
    img = read_rgb(path)
    is_aligned_size = img.shape[:2] == (IMAGE_SIZE, IMAGE_SIZE)
    if align == "never" or (align == "auto" and is_aligned_size):
        if not is_aligned_size:
            raise ValueError(f"{path} is {img.shape[1]}×{img.shape[0]}, not an aligned 112×112 face; "
                             "use align='auto' (or align the folder first with `synthfr align`)")
        return img, None
    out, reason = align_face(img)
    if out is None:
        return _centre_crop(img), reason or "alignment failed"
    return out, None
