"""The generator contract and the helpers every backend shares.

A generator turns a batch of *condition vectors* (identity vectors, possibly varied per image) and one
integer seed per image into aligned 112×112 RGB faces::

    gen = create_generator("arc2face", weights="~/weights/arc2face", device="cuda")
    images = gen.generate(conditions, seeds)      # float32 B×D, int64 B  ->  uint8 B×112×112×3

Rules every backend keeps (the pipeline's exactness depends on them):

* **Per-image determinism.** Image ``j`` depends only on ``(conditions[j], seeds[j])`` and the weights, never
  on the other images of the batch, the batch size, or the process. All randomness comes from one
  ``torch.Generator`` per image seeded with that image's seed (:func:`per_sample_randn`).
* **Aligned output.** Images are RGB, uint8, 112×112, aligned to the ArcFace five-point template that
  :mod:`synthfr.face.align` uses, so they go straight into an embedder.
* **Declared needs.** ``embedder`` names the registered embedder whose space the condition vectors live in
  (e.g. ``"arcface-r100"`` for Arc2Face) and ``dim`` their dimension; the pipeline checks identity files
  against it. :meth:`Generator.embedder_spec_for` gives the full spec of that embedder for a weights folder
  (the identity filter and the quality step use it), and ``needs_weights`` says whether ``weights=DIR`` is
  required, so no caller checks generator names.
* **Local weights only.** A backend is built from a local folder (``weights=DIR``), never from a hub at run
  time. A missing folder or file raises :class:`FileNotFoundError` naming the file and where to get the
  weights (``weights_help``; see ``docs/generators.md``).
* **Optional differentiability.** Backends with ``differentiable = True`` implement :meth:`generate_tensor`,
  returning float images in **[0, 1]**, shape N×3×112×112, with gradients w.r.t. the conditions (AttrOP).
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from synthfr.utils.images import to_uint8_images  # re-exported: part of the backends' API
from synthfr.utils.seeds import per_sample_rand, per_sample_randn  # re-exported: part of the backends' API

__all__ = [
    "Generator", "hash_folder", "require_weights", "per_sample_randn", "per_sample_rand",
    "to_uint8_images", "as_condition_array", "as_seed_array",
]

_HASH_CACHE: dict[tuple, str] = {}


def hash_folder(folder: str | Path, patterns: Sequence[str] | None = None) -> str:
    """SHA-256 over every regular file under ``folder`` (relative path + content), in sorted path order.

    Hidden files (starting with ``.``) and Markdown documents (``*.md``: a model card is not weights; editing
    it must not change the provenance of every dataset) are skipped. Results are cached per (path, sizes,
    mtimes), so hashing multi-GB weights happens once per process.
    """
    folder = Path(folder).expanduser().resolve()
    if folder.is_file():
        files = [folder]
        root = folder.parent
    else:
        root = folder
        files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() != ".md"
                       and not any(part.startswith(".") for part in p.relative_to(folder).parts))
        if patterns:
            import fnmatch

            files = [p for p in files if any(fnmatch.fnmatch(p.relative_to(folder).as_posix(), pat)
                                             for pat in patterns)]
    key = (str(folder),) + tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in files)
    if key in _HASH_CACHE:
        return _HASH_CACHE[key]
    h = hashlib.sha256()
    for p in files:
        rel = p.relative_to(root).as_posix().encode()
        h.update(len(rel).to_bytes(4, "little") + rel)
        fh = hashlib.sha256()
        with open(p, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 22), b""):
                fh.update(chunk)
        h.update(fh.digest())
    digest = h.hexdigest()
    _HASH_CACHE[key] = digest
    return digest


def require_weights(folder: str | Path | None, files: Iterable[str], *, generator: str, help: str) -> Path:
    """Check that the weights ``folder`` exists and holds every path in ``files`` (alternatives: ``"a|b"``).

    Returns the resolved folder. Raises :class:`FileNotFoundError` naming the missing file, the generator
    and where to get its weights.
    """
    if folder is None:
        raise FileNotFoundError(
            f"generator {generator!r} needs its weights: pass weights=DIR (CLI: --weights DIR). {help}")
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(
            f"weights folder {root} for generator {generator!r} does not exist. {help}")
    for rel in files:
        options = rel.split("|")
        if not any((root / o).exists() for o in options):
            raise FileNotFoundError(
                f"weights folder {root} for generator {generator!r} lacks {' or '.join(options)}. {help}")
    return root.resolve()


def as_condition_array(conditions: Any, dim: int | None = None) -> np.ndarray:
    """Conditions as a float32 B×D numpy array (accepts numpy or torch, one vector or a batch)."""
    if hasattr(conditions, "detach"):
        conditions = conditions.detach().cpu().numpy()
    arr = np.asarray(conditions, dtype=np.float32)
    if arr.ndim == 1:
        arr = arr[None]
    if arr.ndim != 2:
        raise ValueError(f"conditions must be a B×D array, got shape {arr.shape}")
    if dim is not None and arr.shape[1] != dim:
        raise ValueError(f"conditions have dimension {arr.shape[1]} but this generator takes {dim}-D vectors; "
                         "sample identities in the generator's embedding space")
    return np.ascontiguousarray(arr)


def as_seed_array(seeds: Any, n: int) -> np.ndarray:
    """Seeds as an int64 array of length ``n`` (accepts a list, numpy or torch)."""
    if hasattr(seeds, "detach"):
        seeds = seeds.detach().cpu().numpy()
    arr = np.asarray(seeds, dtype=np.int64).reshape(-1)
    if arr.shape[0] != n:
        raise ValueError(f"need one seed per image: {n} conditions but {arr.shape[0]} seeds")
    return arr


def condition_batch(conditions: Any, seeds: Any, dim: int | None = None):
    """``(B×D condition tensor, B int64 seeds)`` for ``generate_tensor``: a torch tensor is used as it is (so
    gradients reach it; one vector becomes a batch of one), anything else goes through :func:`as_condition_array`
    (checked against ``dim``)."""
    import torch

    if not isinstance(conditions, torch.Tensor):
        conditions = torch.as_tensor(as_condition_array(conditions, dim))
    if conditions.ndim == 1:
        conditions = conditions[None]
    return conditions, as_seed_array(seeds, conditions.shape[0])


class Generator:
    """Base class of every generator (subclasses implement :meth:`_generate` or :meth:`generate`).

    Class attributes a backend sets:
        name: registry name (set by ``@REGISTRY.register``; also kept in ``registry_name``).
        dim: dimension D of the condition vectors.
        embedder: registered embedder whose space the condition vectors live in.
        image_size: side of the output images (always 112 for the pipeline).
        differentiable: whether :meth:`generate_tensor` is available.
        batch_invariant: whether pixels are bit-identical whatever the batch (true for the ``test_*``
            generators; neural networks usually differ in the last bit between batch sizes). When false,
            the pipeline cuts generator batches from one identity at a time, identically in every run,
            and records ``batch_size`` in the dataset config.
        weights_help: one or two sentences saying where users get the weights (used in errors).
        needs_weights: whether ``weights=DIR`` must be given (false for built-in and test generators).
        sources: what its images inherit, shown by the dataset card: ``datasets``, ``trained_on``, ``licences``,
            ``commercial`` (None: unknown to synthfr).

    Args:
        weights: local folder (or file) holding the weights; ``None`` for generators without weights.
        device: ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:1"``...
    """

    name: str = "base"
    dim: int = 512
    embedder: str = ""
    image_size: int = 112
    differentiable: bool = False
    batch_invariant: bool = False
    weights_help: str = "See docs/generators.md for where to get the weights."
    needs_weights: bool = True
    sources: dict[str, Any] | None = None

    @classmethod
    def embedder_spec_for(cls, weights: str | Path | None = None) -> str | None:
        """The spec (``NAME[:key=value,...]``) of the embedder that reads this generator's images back in its
        condition space, given its weights folder; backends whose embedder ships with their weights name the
        file here. ``None`` when the generator declares no embedder."""
        return cls.embedder or None

    def __init__(self, weights: str | Path | None = None, device: Any = "cpu", **kwargs: Any):
        if kwargs:
            import inspect

            valid = [n for n in inspect.signature(type(self).__init__).parameters if n not in ("self", "kwargs")]
            raise ValueError(f"generator {getattr(type(self), 'registry_name', type(self).__name__)!r} has no "
                             f"option(s) {sorted(kwargs)}; its options are: {', '.join(valid)}")
        self.weights = Path(weights).expanduser() if weights is not None else None
        self._device_arg = device
        self._sha: str | None = None
        self.name = getattr(type(self), "registry_name", self.name)

    @property
    def embedder_spec(self) -> str | None:
        """:meth:`embedder_spec_for` this generator's weights."""
        return type(self).embedder_spec_for(self.weights)

    # -- device -----------------------------------------------------------------------------------
    @property
    def device(self):
        from synthfr.utils.device import resolve_device

        return resolve_device(self._device_arg)

    # -- provenance --------------------------------------------------------------------------------
    @property
    def weights_sha256(self) -> str | None:
        """SHA-256 of the weights folder (see :func:`hash_folder`); ``None`` without weights.

        Generators without weight files may override this with a hash of their definition."""
        if self._sha is None and self.weights is not None:
            self._sha = hash_folder(self.weights)
        return self._sha

    def describe(self) -> dict[str, Any]:
        """A JSON-friendly record of this generator (stored in the dataset's config and manifest)."""
        return {"name": self.name, "dim": None if self.dim is None else int(self.dim), "embedder": self.embedder,
                "image_size": int(self.image_size),
                "weights": str(self.weights) if self.weights is not None else None,
                "weights_sha256": self.weights_sha256, "options": self.options()}

    def options(self) -> dict[str, Any]:
        """Backend options that change pixels (steps, guidance, ...); recorded in the dataset config."""
        return {}

    # -- generation --------------------------------------------------------------------------------
    def generate(self, conditions: Any, seeds: Any) -> np.ndarray:
        """Conditions (float32 B×D) and seeds (int64 B) -> aligned faces, uint8 B×112×112×3 RGB."""
        c = as_condition_array(conditions, self.dim)
        s = as_seed_array(seeds, c.shape[0])
        if c.shape[0] == 0:
            return np.zeros((0, self.image_size, self.image_size, 3), np.uint8)
        out = self._generate(c, s)
        out = np.asarray(out)
        if out.dtype != np.uint8 or out.shape != (c.shape[0], self.image_size, self.image_size, 3):
            raise RuntimeError(f"{self.name}: backend returned {out.dtype} {out.shape}, expected uint8 "
                               f"{(c.shape[0], self.image_size, self.image_size, 3)}")
        return out

    def _generate(self, conditions: np.ndarray, seeds: np.ndarray) -> np.ndarray:
        """Backend hook: validated float32 B×D conditions and int64 seeds -> uint8 B×112×112×3."""
        if self.differentiable:
            import torch

            with torch.no_grad():
                return to_uint8_images(self.generate_tensor(torch.from_numpy(conditions), seeds))
        raise NotImplementedError(f"{type(self).__name__} implements neither _generate nor generate_tensor")

    def generate_tensor(self, conditions: Any, seeds: Any):
        """Differentiable generation: conditions (float tensor B×D, may require grad) and seeds ->
        float images in [0, 1], shape B×3×112×112, with gradients. Only when ``differentiable``."""
        raise NotImplementedError(f"generator {self.name!r} is not differentiable")

    def __repr__(self) -> str:
        w = f", weights={str(self.weights)!r}" if self.weights is not None else ""
        return f"{type(self).__name__}(name={self.name!r}, dim={self.dim}, embedder={self.embedder!r}{w})"
