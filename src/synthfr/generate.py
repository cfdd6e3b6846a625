"""The sharded, resumable generation loop: identity vectors in, a training set out.

``generate_dataset(GenerateConfig(...))`` (CLI: ``synthfr generate``) runs::

    identities.npy rows ─(shard)─▶ variation ─▶ condition vectors + per-image seeds ─▶ generator
        ─▶ [identity filter: embed, drop + regenerate below --filter-min-sim, at most max_attempts]
        ─▶ JPEG (thread pool) ─▶ OUT/.tmp/<row>/ ─rename─▶ OUT/images/<row>/<k>.jpg + OUT/parts/<row>.jsonl
    finally: manifest.jsonl = parts concatenated in row order (+ train.rec/.idx with format "rec")

Exactness. Image ``k`` of identity row ``i`` gets the seed ``derive_seed(S, i, k)`` (attempt ``a > 0`` of the
filter: ``derive_seed(S, i, k, a)``); the variation gets ``derive_seed(S, "variation")`` and is a function of
``(seed, i, k)`` too. Generators must make the same pixels for the same ``(condition, seed)`` in any batch,
so batch size, sharding, ``torchrun`` ranks and resuming never change a byte of the output.

Files. ``config.yaml`` (the resolved config minus the run-only fields, the generator's description and
weights hash, the embedding space of the identities, package versions), ``identities.npy`` (the rows used),
``images/``, ``manifest.jsonl`` (see :mod:`synthfr.data.manifest`). These are byte-identical across runs of
the same config. Run records that differ between runs (time, command line, host, throughput) go to
``logs/``: ``logs/run-<shard>-<n>.yaml`` (:func:`synthfr.utils.provenance.write_provenance`) and
``logs/summary-<shard>-<n>.json``.

Atomicity. An identity is complete iff its fragment ``parts/<row>.jsonl`` exists (or, after the final step,
its lines are in ``manifest.jsonl``); the fragment is written only after the identity's folder has been
renamed into place. ``resume`` skips complete identities and regenerates everything else.

Sharding. ``shard="i/n"``: this process generates its share (see :mod:`synthfr.data.shards`) into its own
``out`` and writes a manifest of its rows; ``synthfr merge`` joins the shard folders. Under ``torchrun``
(``RANK``/``WORLD_SIZE`` set, no explicit shard) every rank writes its share into the same ``out``; rank 0
waits until every identity is complete (polling the fragments: no process group, no timeout on long jobs)
and writes the manifest.
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
import sys
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from synthfr.registry import parse_spec  # noqa: F401 - re-exported: ``NAME[:key=value,...]`` specs

__all__ = ["GenerateConfig", "generate_dataset", "validate_generate_config", "merge_shards",
           "parse_spec", "image_seed", "LandmarkAlignmentCheck",
           "RUN_ONLY_FIELDS"]


@dataclass
class GenerateConfig:
    """Settings of ``synthfr generate`` (flags or a YAML file with these keys)."""

    identities: str = ""
    """Identity vectors: a .npy file of N×D rows from `synthfr sample` (in the generator's embedding space),
    or a sampler spec NAME:n=N,dim=D[,gallery=EMB.npy,seed=S,...] sampled into OUT/sampled/ids.npy first."""
    generator: str = "synthfr-v2"
    """Registered generator, optionally with options: NAME[:key=value,...] (e.g. arc2face:steps=25,
    synthfr-v2:vary=pose); default the built-in face generator, second generation (``test_pattern`` is a test fixture that draws coloured grids, never a default)."""
    weights: str | None = None
    """Local folder with the generator's weights (see docs/generators.md for where to get them)."""
    images_per_id: int = 10
    """Images per identity (K); image k of identity i is images/<i>/<k>.jpg."""
    variation: str | None = None
    """Intra-class variation: NAME[:key=value,...] from `synthfr list variations`; none = identity vector."""
    seed: int = 0
    """Global seed; every image's seed is derived from (seed, identity row, image index)."""
    out: str = ""
    """Output folder."""
    num_identities: int | None = None
    """Use only the first N rows of the identity file (default: all)."""
    shard: str | None = None
    """This process's share 'i/n' (0-based) for job arrays; under torchrun RANK/WORLD_SIZE are used."""
    shard_mode: str = "strided"
    """How identities are split: strided (rows i, i+n, ...) or contiguous (one block per shard)."""
    resume: bool = False
    """Continue a killed run in the same folder: skip complete identities, redo the rest."""
    format: str = "folder"
    """Output format: folder (images/<id>/<k>.jpg) or rec (insightface train.rec/.idx, images/ removed)."""
    image_format: str = "jpg"
    """Image file format: jpg or png."""
    jpeg_quality: int = 95
    """JPEG quality (1-100)."""
    filter_min_sim: float | None = None
    """Identity filter: regenerate images whose cosine to their identity vector is below this (e.g. 0.5)."""
    embedder: str | None = None
    """Embedder for the identity filter (default: the generator's own embedder)."""
    align_check: float | None = None
    """Alignment check: find five landmarks on every image (synthfr's dlib aligner) and regenerate images
    whose mean landmark distance to the ArcFace template exceeds this many pixels, or without a face."""
    max_attempts: int = 5
    """Filter bound: attempts per image; after the last, the best attempt is kept and marked passed=false."""
    batch_size: int = 64
    """Images per generator call (does not change any pixel)."""
    device: str = "auto"
    """Device for the generator and the embedder: auto, cpu, cuda, cuda:1, ... (under torchrun, auto/cuda mean
    this rank's GPU, cuda:LOCAL_RANK; see synthfr.utils.device.resolve_device)."""
    workers: int = 2
    """Threads encoding and writing images."""
    fsync: bool = True
    """fsync files and folders before an identity counts as complete (durable across power loss)."""


#: Fields that change how a run proceeds but never the bytes it writes; left out of config.yaml.
RUN_ONLY_FIELDS = ("out", "shard", "shard_mode", "resume", "batch_size", "device", "workers", "fsync")


def image_seed(seed: int, row: int, k: int, attempt: int = 0) -> int:
    """The generator seed of image ``k`` of identity ``row`` (attempt > 0: regenerations by the filter)."""
    from synthfr.utils.seeds import derive_seed

    return derive_seed(seed, int(row), int(k)) if attempt == 0 else derive_seed(seed, int(row), int(k), int(attempt))


# ---------------------------------------------------------------------------------------------------------
# variations
class _Variation:
    """Per-image conditions for a chunk of identity rows; a function of (seed, row, k) only.

    Variations work in the standardised embedding space: when the identity file has a space beside it
    (``IDS.space.json``/``.npz`` from `synthfr sample`), identities are standardised once, the variation is
    applied there, and the conditions are mapped back to the embedder's own space for the generator.
    """

    def __init__(self, spec: str | None, ids: np.ndarray, images_per_id: int, seed: int,
                 space_base: Path | None = None):
        self.name, self.options = parse_spec(spec)
        self.ids = ids
        self.k = int(images_per_id)
        from synthfr.utils.seeds import derive_seed

        self.seed = derive_seed(seed, "variation")
        self.global_seed = int(seed)
        self.obj = None
        self.space = None
        if self.name is not None:
            from synthfr.variations import create_variation

            self.obj = create_variation(self.name, **self.options)
            if space_base is not None:
                from synthfr.spaces import EmbeddingSpace

                self.space = EmbeddingSpace.load(space_base)
            self.std = self.space.to_standard(ids) if self.space is not None else ids

    def conditions(self, rows: np.ndarray) -> tuple[np.ndarray, list[int], list[Any], list[dict]]:
        """(conditions len(rows)·K × D, labels, soft labels (None or [a, b, w]), per-image params)."""
        rows = np.asarray(rows, dtype=np.int64)
        n = len(rows) * self.k
        if self.obj is None:
            cond = np.repeat(np.asarray(self.ids[rows], dtype=np.float32), self.k, axis=0)
            labels = np.repeat(rows, self.k).tolist()
            return cond, labels, [None] * n, [{}] * n
        import inspect

        kw = {}
        if "image_seeds" in inspect.signature(self.obj.apply_to).parameters:
            # variations that optimise for the rendering seed (AttrOP) get the seeds the images are drawn with
            kw["image_seeds"] = np.array([[image_seed(self.global_seed, r, k) for k in range(self.k)] for r in rows],
                                         dtype=np.int64).reshape(len(rows), self.k)
        # variations that steer the generator's own input (AttrOP) work in its space, not the standardised one
        own = bool(getattr(self.obj, "generator_space", False))
        res = self.obj.apply_to(self.ids if own else self.std, rows, self.k, self.seed, **kw)
        expect_i, expect_k = np.repeat(rows, self.k), np.tile(np.arange(self.k), len(rows))
        if not (np.array_equal(np.asarray(res.identity), expect_i) and np.array_equal(np.asarray(res.index), expect_k)):
            raise RuntimeError(f"variation {self.name!r} returned images out of (identity, index) order")
        cond = np.asarray(res.conditions, dtype=np.float32)
        if self.space is not None and not own:
            cond = np.asarray(self.space.from_standard(cond), dtype=np.float32)
        soft = [None if sl is None else [int(sl[0]), int(sl[1]), float(sl[2])] for sl in res.soft_label] \
            if res.soft_label else [None] * n
        params = [dict(p) if p else {} for p in res.params] if res.params else [{}] * n
        return cond, [int(x) for x in res.identity], soft, params


# ---------------------------------------------------------------------------------------------------------
# helpers
def _is_sampler_spec(identities: str) -> bool:
    return bool(identities) and not identities.endswith(".npy") and not Path(identities).expanduser().exists()


def _sample_into(cfg: GenerateConfig, out: Path, log) -> str:
    """Sample identities from a spec ``NAME:n=...,dim=...`` into ``OUT/sampled/ids.npy`` (once; reused on
    --resume, and under torchrun rank 0 samples while the others wait for the file)."""
    from synthfr.data.shards import env_shard
    from synthfr.samplers import REGISTRY as SAMPLERS, sample_identities

    name, opts = parse_spec(cfg.identities)
    if name not in SAMPLERS:
        raise ValueError(f"--identities {cfg.identities!r} is neither a .npy file nor a sampler spec "
                         f"NAME:n=N,dim=D (samplers: {', '.join(SAMPLERS.list())})")
    if "n" not in opts:
        raise ValueError(f"sampler spec {cfg.identities!r} needs n=NUMBER (e.g. {name}:n=1000,dim=512)")
    target = out / "sampled" / "ids.npy"
    if target.is_file():
        return str(target)
    rank = (env_shard() or (0, 1))[0] if cfg.shard is None else 0
    if rank != 0:
        log(f"waiting for rank 0 to sample the identities into {target}")
        while not target.is_file():
            time.sleep(0.5)
        return str(target)
    tmp = out / f".sampled.{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    n = int(opts.pop("n"))
    seed = int(opts.pop("seed", cfg.seed))
    log(f"sampling {n} identities with {name} into {target}")
    sample_identities(name, n, seed=seed, out=tmp / "ids.npy", **opts)
    if target.parent.exists():
        shutil.rmtree(target.parent)
    os.replace(tmp, target.parent)
    return str(target)


def _load_identities(path: str, limit: int | None) -> np.ndarray:
    from synthfr.errors import UsageError
    from synthfr.utils.validate import load_vectors

    p = Path(path).expanduser()
    if not str(path):
        raise UsageError("no identity file: pass --identities IDS.npy (made by `synthfr sample`)")
    if not p.is_file():
        raise FileNotFoundError(f"identity file {p} does not exist; make one with `synthfr sample ... --out {p}`")
    if p.suffix != ".npy":
        raise UsageError(f"identity file {p} is not a .npy file; `synthfr sample` writes N×D float32 .npy files")
    ids = load_vectors(p, what="identity vectors", mmap=True)  # finite, non-zero rows, at least one
    if limit is not None:
        if limit > ids.shape[0]:
            raise ValueError(f"num_identities={limit} but {p} has only {ids.shape[0]} rows")
        ids = ids[:limit]
    return np.ascontiguousarray(ids, dtype=np.float32)


def _space_files(path: str) -> list[Path]:
    """The embedding-space files beside an identity file (``IDS.space.json`` + ``IDS.space.npz``), if any."""
    from synthfr.spaces import space_paths

    return [p for p in space_paths(Path(path).expanduser()) if p.is_file()]


def _space_copies(files: list[Path]) -> dict[str, bytes]:
    """Dataset file name -> bytes of the space files, renamed to ``identities.space.*`` (the JSON's pointer to
    its arrays file is rewritten to match; byte-for-byte deterministic)."""
    import json

    out: dict[str, bytes] = {}
    for p in files:
        name = "identities.space" + p.name.split(".space", 1)[1]
        data = p.read_bytes()
        if p.suffix == ".json":
            doc = json.loads(data)
            if "arrays" in doc:
                doc["arrays"] = "identities.space.npz"
            data = (json.dumps(doc, indent=2) + "\n").encode()
        out[name] = data
    return out


def _space_record(files: list[Path]) -> dict[str, Any] | None:
    if not files:
        return None
    rec: dict[str, Any] = {"files": {"identities.space" + p.name.split(".space", 1)[1]:
                                     hashlib.sha256(p.read_bytes()).hexdigest() for p in files}}
    for p in files:
        if p.suffix == ".json":
            from synthfr.utils.io import read_json

            try:
                rec["space"] = read_json(p)
            except ValueError:
                pass
    return rec


def _dataset_config(cfg: GenerateConfig, gen: Any, ids: np.ndarray, space: dict | None) -> dict[str, Any]:
    """What config.yaml records: everything that determines the bytes of the dataset, nothing else."""
    from synthfr.config import to_dict
    from synthfr.utils.provenance import provenance

    c = {k: v for k, v in to_dict(cfg).items() if k not in RUN_ONLY_FIELDS}
    gen_desc = gen.describe() if hasattr(gen, "describe") else {"name": getattr(gen, "name", str(gen))}
    gen_desc = {k: v for k, v in gen_desc.items() if k != "weights"}  # the path is machine specific
    prov = provenance()
    if not getattr(gen, "batch_invariant", False):  # its pixels may depend on the batch: record the batching
        c["batch_size"] = int(cfg.batch_size)
    return {
        "config": c,
        "seed": int(cfg.seed),
        "generator": gen_desc,
        "identities": {"rows": int(ids.shape[0]), "dim": int(ids.shape[1]),
                       "sha256": hashlib.sha256(np.ascontiguousarray(ids).tobytes()).hexdigest()},
        "embedding_space": space,
        "sampler": _sampler_record(cfg.identities),
        "versions": prov.get("versions", {}),
    }


def _sampler_record(identities: str) -> dict[str, Any] | None:
    """How the identity file was sampled (from ``IDS.config.yaml`` beside it, written by `synthfr sample`), for
    the dataset card; None when there is no such file. Paths are reduced to file names (machine specific)."""
    import yaml

    p = Path(str(identities)).expanduser()
    side = p.with_name(p.name[:-4] + ".config.yaml") if p.name.endswith(".npy") else None
    if side is None or not side.is_file():
        return None
    try:
        doc = yaml.safe_load(side.read_text()) or {}
    except (OSError, yaml.YAMLError):
        return None
    c = doc.get("config") or {}
    if not isinstance(c, dict) or "method" not in c:
        return None
    gal = c.get("gallery")
    return {"method": c.get("method"), "n": c.get("n"), "dim": c.get("dim"),
            "gallery": Path(str(gal)).name if gal else None, "seed": doc.get("seed"),
            "options": c.get("sampler") if isinstance(c.get("sampler"), dict) else {}}


def _resolve_embedder(spec: str | None, gen: Any, dim: int, device: Any) -> Any:
    """The filter's embedder from ``NAME[:key=value,...]`` (default: the generator's own embedder)."""
    spec = spec or getattr(gen, "embedder_spec", None) or getattr(gen, "embedder", None)
    if not spec or spec == "any":
        raise ValueError("the identity filter needs an embedder in the identities' space: pass --embedder "
                         "NAME[:key=value,...] (`synthfr list embedders`)")
    name, opts = parse_spec(spec)
    if name == "test-pattern":
        from synthfr.generators.testing import PatternDecoder

        return PatternDecoder(dim=dim)
    from synthfr.face.embedders import create_embedder, refuse_judge

    # a filter that keeps the images a judge accepts would bias every later figure that judge gives
    refuse_judge(name, "the identity filter of synthfr generate")
    try:
        return create_embedder(name, device=device, **opts)
    except TypeError:  # embedders without a device option
        return create_embedder(name, **opts)


def validate_generate_config(cfg: GenerateConfig) -> None:
    """Every setting of ``cfg`` that can be checked without running (types, ranges, choices, specs, the
    output path, the device), so a bad command fails before its output folder exists."""
    from synthfr.data.shards import SHARD_MODES, parse_shard
    from synthfr.errors import UsageError
    from synthfr.utils.validate import check_choice, check_device, check_out_dir, check_range, check_types

    check_types(cfg)
    if not cfg.out:
        raise UsageError("no output folder: pass --out DIR")
    check_out_dir(cfg.out)
    check_range("--images-per-id", cfg.images_per_id, 1, integer=True)
    check_range("--num-identities", cfg.num_identities, 1, integer=True)
    check_range("--max-attempts", cfg.max_attempts, 1, integer=True)
    check_range("--jpeg-quality", cfg.jpeg_quality, 1, 100, integer=True)
    check_range("--filter-min-sim", cfg.filter_min_sim, -1.0, 1.0)
    check_range("--align-check", cfg.align_check, 0.0)
    check_range("--batch-size", cfg.batch_size, 1, integer=True)
    check_range("--workers", cfg.workers, 1, integer=True)
    check_choice("--format", cfg.format, ("folder", "rec"))
    check_choice("--image-format", cfg.image_format, ("jpg", "jpeg", "png"))
    check_choice("--shard-mode", cfg.shard_mode, SHARD_MODES)
    if cfg.shard not in (None, "", "auto"):
        try:
            parse_shard(cfg.shard)
        except ValueError as e:
            raise UsageError(str(e)) from None
    check_device(cfg.device)
    if cfg.variation:  # build it once: unknown names and bad options (beta=abc) fail here
        name, opts = parse_spec(cfg.variation)
        from synthfr.variations import REGISTRY as VARIATIONS, create_variation

        if name not in VARIATIONS:
            raise UsageError(f"--variation {cfg.variation!r}: unknown variation {name!r}; choose one of "
                             f"{', '.join(VARIATIONS.list())}")
        try:
            create_variation(name, **opts)
        except (KeyError, TypeError, ValueError) as e:
            msg = e.args[0] if isinstance(e, KeyError) and e.args else e
            raise UsageError(f"--variation {cfg.variation!r}: {msg}") from None
    gen_name, _ = parse_spec(cfg.generator)
    from synthfr.generators import REGISTRY as GENERATORS

    if gen_name not in GENERATORS:
        raise UsageError(f"--generator {cfg.generator!r}: unknown generator {gen_name!r}; choose one of "
                         f"{', '.join(GENERATORS.list())}")


class _Progress:
    def __init__(self, total: int, enabled: bool, desc: str):
        self.bar = None
        if enabled and total > 0:
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="img", desc=desc, dynamic_ncols=True, smoothing=0.05)

    def update(self, n: int) -> None:
        if self.bar is not None:
            self.bar.update(n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class LandmarkAlignmentCheck:
    """Mean distance (pixels) between the five landmarks found on a 112×112 image and the ArcFace template."""

    def __init__(self, detector: str = "hog"):
        from synthfr.face.align import AlignConfig, template
        from synthfr.face.landmarks import FaceLandmarker

        self.landmarker = FaceLandmarker.from_config(AlignConfig(size=112, detector=detector))
        self.template = template(112)

    def errors(self, images: np.ndarray) -> np.ndarray:
        out = np.full(len(images), np.inf)
        for j, img in enumerate(images):
            five, _ = self.landmarker.five_points(np.ascontiguousarray(img))
            if five is not None:
                out[j] = float(np.linalg.norm(np.asarray(five) - self.template, axis=1).mean())
        return out


# ---------------------------------------------------------------------------------------------------------
# the loop
@dataclass
class _RowState:
    row: int
    cond: np.ndarray
    labels: list
    soft: list
    params: list
    remaining: int
    kept: dict = field(default_factory=dict)       # k -> (seed, attempt, sim, passed)
    dropped: dict = field(default_factory=dict)    # k -> drops
    best: dict = field(default_factory=dict)       # k -> (sim, img, seed, attempt) (filter only)
    futures: list = field(default_factory=list)
    retry: deque = field(default_factory=deque)     # (state, k, attempt) waiting for regeneration


def generate_dataset(cfg: GenerateConfig | dict, *, generator: Any = None, embedder: Any = None,
                     progress: bool = True, log: Callable[[str], None] | None = None,
                     stop_after: int | None = None, align_checker: Any = None) -> dict[str, Any]:
    """Generate (a shard of) a dataset; returns the run summary (also written to ``logs/``).

    The settings are validated first (nothing is written for a bad config), then ``OUT/.synthfr.lock`` is
    taken (:mod:`synthfr.utils.lock`): a second run into the same folder fails at once naming the first.
    Under torchrun every rank holds its own lock (``.synthfr-rank<R>.lock``). Arguments: see
    :func:`_generate_unlocked`.
    """
    from synthfr.config import from_dict
    from synthfr.data.shards import env_shard
    from synthfr.utils.lock import FolderLock

    if isinstance(cfg, dict):
        cfg = from_dict(GenerateConfig, cfg)
    validate_generate_config(cfg)
    out = Path(cfg.out).expanduser()
    existed = out.exists()
    env = env_shard() if cfg.shard in (None, "", "auto") else None
    lock = FolderLock(out, "generate", key=f"rank{env[0]}" if env else None)
    try:
        with lock:
            return _generate_unlocked(cfg, generator=generator, embedder=embedder, progress=progress, log=log,
                                      stop_after=stop_after, align_checker=align_checker)
    finally:
        if not existed and out.is_dir() and not any(out.iterdir()):
            out.rmdir()  # a run that failed before writing anything leaves no folder behind


def _generate_unlocked(cfg: GenerateConfig | dict, *, generator: Any = None, embedder: Any = None,
                       progress: bool = True, log: Callable[[str], None] | None = None,
                       stop_after: int | None = None, align_checker: Any = None) -> dict[str, Any]:
    """Generate (a shard of) a dataset while holding the folder's lock.

    Args:
        cfg: a :class:`GenerateConfig` (or a dict of its fields).
        generator: an already built generator (default: built from ``cfg.generator``/``cfg.weights``).
        embedder: an embedder object for the identity filter (default: ``cfg.embedder`` from the registry).
        progress: show a tqdm bar (images/s, ETA).
        log: where to print messages (default: stderr).
        stop_after: stop after this many identities (testing/benchmark aid; the folder stays resumable).
        align_checker: object with ``errors(uint8 N×112×112×3) -> N`` landmark errors in pixels (inf: no
            face) for ``cfg.align_check`` (default :class:`LandmarkAlignmentCheck`).
    """
    from synthfr.config import dump_yaml, from_dict
    from synthfr.data.manifest import concat_parts, identity_dirname, iter_manifest, make_record, part_path, write_part
    from synthfr.data.shards import env_shard, parse_shard, shard_rows
    from synthfr.data.writers import IdentityFolderWriter, export_rec, write_image_file
    from synthfr.utils.io import write_json
    from synthfr.utils.provenance import write_provenance

    if isinstance(cfg, dict):
        cfg = from_dict(GenerateConfig, cfg)
    log = log or (lambda m: print(m, file=sys.stderr))
    t_start = time.time()
    validate_generate_config(cfg)  # everything checkable before a single file is written
    if cfg.shard == "auto":  # a Slurm array task -> "i/n"; torchrun or a single process -> as if unset
        from synthfr.data.shards import auto_shard

        got = auto_shard(torchrun=False)
        cfg = dataclasses.replace(cfg, shard=None if got in (None, (0, 1)) else f"{got[0]}/{got[1]}")
    out = Path(cfg.out).expanduser()

    if _is_sampler_spec(cfg.identities):
        cfg = dataclasses.replace(cfg, identities=_sample_into(cfg, out, log))
    ids = _load_identities(cfg.identities, cfg.num_identities)
    n_rows, dim = ids.shape
    gen_name, gen_opts = parse_spec(cfg.generator)
    if generator is None:
        from synthfr.generators import create_generator

        kw = dict(gen_opts)
        if cfg.weights is not None:
            kw["weights"] = cfg.weights
        generator = create_generator(gen_name, device=cfg.device, **kw)
    gdim = getattr(generator, "dim", None)
    if gdim is not None and int(gdim) != dim:
        raise ValueError(f"{cfg.identities} holds {dim}-D vectors but generator {gen_name!r} takes {gdim}-D vectors "
                         f"from embedder {getattr(generator, 'embedder', '?')!r}; sample identities in that space")
    filt = cfg.filter_min_sim is not None
    if cfg.align_check is not None and align_checker is None:
        align_checker = LandmarkAlignmentCheck()
    checker = align_checker if cfg.align_check is not None else None
    gated = filt or checker is not None
    if filt and embedder is None:
        embedder = _resolve_embedder(cfg.embedder, generator, dim, cfg.device)
    if filt and getattr(embedder, "dim", dim) != dim:
        raise ValueError(f"embedder {getattr(embedder, 'name', '?')!r} makes {embedder.dim}-D vectors but the "
                         f"identities are {dim}-D; the filter needs the identities' own embedding space")

    # ---- shards
    explicit = parse_shard(cfg.shard)
    from_env = env_shard() if explicit is None else None
    shard_index, shard_count = explicit or from_env or (0, 1)
    shared_out = from_env is not None
    rows = shard_rows(n_rows, shard_index, shard_count, cfg.shard_mode)
    tag = f"{shard_index}-of-{shard_count}"

    # ---- folder state
    space_files = _space_files(cfg.identities)
    space = _space_record(space_files)
    doc = _dataset_config(cfg, generator, ids, space)
    cfg_path = out / "config.yaml"
    if cfg_path.is_file():
        import yaml

        old = yaml.safe_load(cfg_path.read_text()) or {}
        if _comparable(old) != _comparable(yaml.safe_load(dump_yaml(doc))):  # compare as YAML reads back
            raise ValueError(f"{out} already holds a dataset made with different settings ({_diff(old, doc)}); "
                             "use a new --out, or the same settings to --resume it")
    manifest_path = out / "manifest.jsonl"
    done_rows: set[int] = set()
    if manifest_path.is_file():
        done_rows |= {int(r["identity"]) for r in iter_manifest(manifest_path)}
    parts_dir = out / "parts"
    if parts_dir.is_dir():
        for p in parts_dir.glob("*.jsonl"):
            if p.stem.isdigit():
                done_rows.add(int(p.stem))
    mine_done = [r for r in rows.tolist() if r in done_rows]
    if mine_done and not cfg.resume:
        raise ValueError(f"{out} already holds {len(mine_done)} finished identities of this run; pass --resume "
                         "to continue it, or choose a new --out")
    out.mkdir(parents=True, exist_ok=True)
    _atomic_text(cfg_path, dump_yaml(doc))
    ids_bytes = _npy_bytes(ids)
    ids_path = out / "identities.npy"
    if not ids_path.is_file() or ids_path.read_bytes() != ids_bytes:
        _atomic_bytes(ids_path, ids_bytes)
    for src, data in _space_copies(space_files).items():  # carried along: identities.space.json / .npz
        dst = out / src
        if not dst.is_file() or dst.read_bytes() != data:
            _atomic_bytes(dst, data)
    logs = out / "logs"
    logs.mkdir(exist_ok=True)
    run_no = len(list(logs.glob(f"run-{tag}-*.yaml")))
    write_provenance(logs, {"run": {k: getattr(cfg, k) for k in RUN_ONLY_FIELDS}, "dataset": doc["config"]},
                     seed=cfg.seed, name=f"run-{tag}-{run_no}.yaml")

    todo = [r for r in rows.tolist() if r not in done_rows]
    writer = IdentityFolderWriter(out, n_rows, fsync=cfg.fsync)
    debris = {int(n) for d in (out / "images", out / ".tmp") for n in os.listdir(d) if n.isdigit()}
    for r in todo:  # folders of unfinished identities (a killed run) are removed and regenerated
        if r in debris:
            writer.discard(r)
    if stop_after is not None:
        todo = todo[:stop_after]

    # ---- generate
    K = int(cfg.images_per_id)
    variation = _Variation(cfg.variation, ids, K, cfg.seed,
                           space_base=space_files[0] if space_files else None)
    var_name = variation.name
    gname = getattr(generator, "name", gen_name)
    wsha = getattr(generator, "weights_sha256", None)
    ext = "jpg" if cfg.image_format in ("jpg", "jpeg") else cfg.image_format
    stats = {"images": 0, "dropped": 0, "failed": 0, "generated": 0, "dropped_similarity": 0,
             "dropped_alignment": 0}
    bar = _Progress(len(todo) * K, progress and (shard_index == 0 or not shared_out), f"generate {tag}")
    pool = ThreadPoolExecutor(max_workers=max(1, int(cfg.workers)))
    bs = max(1, int(cfg.batch_size))
    chunk_rows = max(1, -(-4 * bs // K)) if variation.obj is None else max(256, -(-4 * bs // K))
    # Generators whose pixels may depend on the batch (real networks: kernels differ with batch size) get
    # batches cut from one identity at a time, the same way in every run, so outputs stay byte-identical.
    invariant = bool(getattr(generator, "batch_invariant", False))

    def st_done(st: _RowState) -> bool:
        return next_k[st.row] >= K and not st.retry
    row_queue = deque(todo)
    active: deque[_RowState] = deque()      # rows whose new images are being scheduled, in order
    retry: deque[tuple[_RowState, int, int]] = deque()
    # rows with every image accepted: a single committer thread waits for their files, renames the folder
    # and writes the fragment, so the main thread keeps generating (bounded backlog)
    committer = ThreadPoolExecutor(max_workers=1)
    commits: deque[Future] = deque()
    next_k: dict[int, int] = {}

    def commit(st: _RowState) -> None:
        for f in st.futures:
            f.result()
        writer.commit(st.row)
        recs = []
        for k in range(K):
            seed_k, attempt, sim, passed, ae = st.kept[k]
            params = st.params[k]
            if "image_seed" in params and int(params["image_seed"]) != int(seed_k):
                # the filter re-rendered this image with another seed: the optimiser's estimates (AttrOP's
                # `met`, yaw, ...) describe the image it optimised, which is not the one written
                params = {**params, "met": None, "optimised_image_replaced": True}
            recs.append(make_record(
                identity=st.row, index=k, path=writer.rel_path(st.row, k, ext), seed=seed_k, attempt=attempt,
                variation=var_name, params=params, label=st.labels[k], soft_label=st.soft[k],
                similarity=None if sim is None or not np.isfinite(sim) else round(float(sim), 6), align_error=ae,
                passed=passed,
                dropped=st.dropped.get(k, 0), generator=gname, weights_sha256=wsha))
        write_part(out, st.row, recs, n_rows, fsync=cfg.fsync)
        st.cond = st.futures = None  # free memory

    def accept(st: _RowState, k: int, img: np.ndarray, seed_k: int, attempt: int, sim, passed, ae) -> None:
        path = writer.tmp_dir(st.row) / f"{k}.{ext}"
        st.futures.append(pool.submit(write_image_file, path, img, ext, cfg.jpeg_quality, cfg.fsync))
        st.kept[k] = (seed_k, attempt, sim, passed, ae)
        st.remaining -= 1
        stats["images"] += 1
        if st.remaining == 0:
            commits.append(committer.submit(commit, st))

    def drain(block_over: int) -> None:
        while commits and (commits[0].done() or len(commits) > block_over):
            commits.popleft().result()  # re-raises a writer error here

    shown = 0
    try:
        while True:
            batch: list[tuple[_RowState, int, int]] = []
            while len(batch) < bs:
                if not invariant and batch:
                    break  # one identity per generator call, cut the same way in every run
                if invariant and retry:
                    batch.append(retry.popleft())
                    continue
                if active and next_k[active[0].row] < K:
                    st = active[0]
                    take = min(K - next_k[st.row], bs - len(batch))
                    batch.extend((st, kk, 0) for kk in range(next_k[st.row], next_k[st.row] + take))
                    next_k[st.row] += take
                    continue
                if active and not invariant and active[0].retry:
                    st = active[0]
                    while st.retry and len(batch) < bs:
                        batch.append(st.retry.popleft())
                    continue
                if active and (invariant or st_done(active[0])):
                    active.popleft()
                    continue
                if active:  # non-invariant: this identity still has images in flight (cannot happen)
                    raise RuntimeError("internal error: identity scheduling stalled")
                if not row_queue:
                    break
                chunk = np.array([row_queue.popleft() for _ in range(min(chunk_rows, len(row_queue)))])
                cond, labels, soft, params = variation.conditions(chunk)
                for j, r in enumerate(chunk.tolist()):
                    sl = slice(j * K, (j + 1) * K)
                    st = _RowState(r, cond[sl], labels[sl], soft[sl], params[sl], K)
                    next_k[r] = 0
                    writer.begin(r)
                    active.append(st)
            if not batch:
                break
            conds = np.stack([st.cond[k] for st, k, _ in batch])
            seeds = np.array([image_seed(cfg.seed, st.row, k, a) for st, k, a in batch], dtype=np.int64)
            imgs = generator.generate(conds, seeds)
            stats["generated"] += len(batch)
            sims = aerr = None
            if filt:
                emb = np.asarray(embedder.embed(imgs), dtype=np.float32)
                ref = ids[[st.row for st, _, _ in batch]]
                ref = ref / np.maximum(np.linalg.norm(ref, axis=1, keepdims=True), 1e-12)
                sims = (emb * ref).sum(axis=1)
            if checker is not None:
                aerr = np.asarray(checker.errors(imgs), dtype=np.float64)
            for j, (st, k, a) in enumerate(batch):
                if not gated:
                    accept(st, k, imgs[j], int(seeds[j]), a, None, None, None)
                    continue
                sim = None if sims is None else float(sims[j])
                ae = None if aerr is None or not np.isfinite(aerr[j]) else round(float(aerr[j]), 4)
                fail_sim = sim is not None and sim < cfg.filter_min_sim
                fail_align = aerr is not None and (ae is None or ae > cfg.align_check)
                if not (fail_sim or fail_align):
                    accept(st, k, imgs[j], int(seeds[j]), a, sim, True, ae)
                    continue
                stats["dropped"] += 1
                stats["dropped_similarity"] += int(fail_sim)
                stats["dropped_alignment"] += int(fail_align)
                st.dropped[k] = st.dropped.get(k, 0) + 1
                score = (sim if sim is not None else 0.0) - (0.0 if aerr is None else
                                                             (1e6 if ae is None else ae / 112.0))
                prev = st.best.get(k)
                if prev is None or score > prev[0]:
                    st.best[k] = (score, imgs[j].copy(), int(seeds[j]), a, sim, ae, fail_sim, fail_align)
                if a + 1 < cfg.max_attempts:
                    (retry if invariant else st.retry).append((st, k, a + 1))
                else:  # out of attempts: keep the best one, marked as failing
                    _, bimg, bseed, ba, bsim, bae, bfs, bfa = st.best.pop(k)
                    st.dropped[k] -= 1  # the kept attempt is not a drop
                    stats["dropped"] -= 1
                    stats["dropped_similarity"] -= int(bfs)
                    stats["dropped_alignment"] -= int(bfa)
                    stats["failed"] += 1
                    accept(st, k, bimg, bseed, ba, bsim, False, bae)
            for st, k, _ in batch:
                st.best.pop(k, None) if k in st.kept else None
            bar.update(stats["images"] - shown)
            shown = stats["images"]
            drain(block_over=max(8, 4 * bs // K))
        drain(block_over=-1)
    finally:
        committer.shutdown(wait=True)
        pool.shutdown(wait=True)
        bar.close()

    # ---- finish
    n_done = len(todo)
    finished = False
    if stop_after is None:
        finished = _finalize(out, cfg, rows if not shared_out else np.arange(n_rows), n_rows,
                             wait=shared_out and shard_index == 0, leader=(shard_index == 0 or not shared_out),
                             log=log, concat_parts=concat_parts, export_rec=export_rec)
    seconds = time.time() - t_start
    summary = {
        "identities": int(len(rows)), "identities_generated": int(n_done),
        "identities_skipped": int(len(rows) - len([r for r in rows.tolist() if r not in done_rows])),
        "images": int(stats["images"]), "generated": int(stats["generated"]), "dropped": int(stats["dropped"]),
        "dropped_similarity": int(stats["dropped_similarity"]), "dropped_alignment": int(stats["dropped_alignment"]),
        "failed_filter": int(stats["failed"]), "seconds": float(seconds),
        "images_per_s": float(stats["images"] / seconds) if seconds > 0 else 0.0,
        "shard": [int(shard_index), int(shard_count)], "complete": bool(finished), "out": str(out),
    }
    write_json(logs / f"summary-{tag}-{run_no}.json", summary)
    return summary


def _finalize(out: Path, cfg: GenerateConfig, rows: np.ndarray, n_rows: int, *, wait: bool, leader: bool,
              log, concat_parts, export_rec) -> bool:
    """Write manifest.jsonl from the fragments of ``rows`` (rank 0 under torchrun first waits for them)."""
    from synthfr.data.manifest import iter_manifest, part_path

    if not leader:
        return False
    manifest = out / "manifest.jsonl"
    rows = [int(r) for r in rows]

    have: set[int] = set()
    if manifest.is_file():
        have = {int(r["identity"]) for r in iter_manifest(manifest)}
    miss = [r for r in rows if r not in have and not part_path(out, r, n_rows).is_file()]
    if miss and wait:
        log(f"rank 0: waiting for {len(miss)} identities from the other ranks")
        while miss:
            time.sleep(0.5)
            miss = [r for r in miss if not part_path(out, r, n_rows).is_file()]
    if miss:
        return False
    if manifest.is_file() and not (out / "parts").is_dir():
        if not (out / "README.md").is_file():
            _write_card(out, log)
        return True  # already final
    # fold any existing manifest lines back into fragments, then concatenate everything in row order
    if manifest.is_file():
        from synthfr.data.manifest import write_part

        by_row: dict[int, list] = {}
        for r in iter_manifest(manifest):
            by_row.setdefault(int(r["identity"]), []).append(r)
        for r, recs in by_row.items():
            if not part_path(out, r, n_rows).is_file():
                write_part(out, r, recs, n_rows, fsync=cfg.fsync)
    concat_parts(out, rows, manifest, n_rows, fsync=cfg.fsync)
    shutil.rmtree(out / "parts", ignore_errors=True)
    shutil.rmtree(out / ".tmp", ignore_errors=True)
    if cfg.format == "rec" and not cfg.shard:
        export_rec(out, list(iter_manifest(manifest)), num_classes=n_rows)
    _write_card(out, log)
    return True


def _write_card(out: Path, log) -> None:
    """README.md, the dataset card (synthfr.data.card); a failure is reported, never fatal: the data is done."""
    from synthfr.data.card import write_dataset_card

    try:
        write_dataset_card(out)
    except Exception as e:  # noqa: BLE001 - the dataset is complete; only its card failed
        log(f"could not write the dataset card {out / 'README.md'}: {type(e).__name__}: {e}")


def _comparable(doc: dict) -> dict:
    """The parts of config.yaml that must agree for --resume and merge (the identity file is compared by its
    hash, not its path, so shards may read it from different places)."""
    d = {k: doc.get(k) for k in ("config", "seed", "generator", "identities", "embedding_space")}
    if isinstance(d["config"], dict):
        d["config"] = {k: v for k, v in d["config"].items() if k not in ("identities", "weights")}
    return d


def _diff(old: dict, new: dict) -> str:
    a, b = _comparable(old), _comparable(new)
    out = []
    for k in a:
        if a[k] != b[k]:
            if isinstance(a[k], dict) and isinstance(b[k], dict):
                keys = sorted(set(a[k]) | set(b[k]))
                out += [f"{k}.{kk}: {a[k].get(kk)!r} -> {b[k].get(kk)!r}" for kk in keys if a[k].get(kk) != b[k].get(kk)]
            else:
                out.append(f"{k}: {a[k]!r} -> {b[k]!r}")
    return "; ".join(out[:4]) or "unknown difference"


def _npy_bytes(arr: np.ndarray) -> bytes:
    import io

    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(arr, dtype=np.float32))
    return buf.getvalue()


def _atomic_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _atomic_text(path: Path, text: str) -> None:
    _atomic_bytes(path, text.encode())


# ---------------------------------------------------------------------------------------------------------
# merge
def merge_shards(shard_dirs: list[str | Path], out: str | Path, *, format: str = "folder", link: bool = True,
                 log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Join finished shard folders (``--shard i/n`` runs of one config) into one dataset folder ``out``.

    Checks that every shard holds the same config and identities, that together they cover each identity
    exactly once, then places images (hard links when possible, else copies), writes ``manifest.jsonl`` in
    identity order, ``config.yaml`` and ``identities.npy``: the result is byte-identical to a single run.
    With ``format="rec"`` it writes ``train.rec``/``train.idx`` instead of ``images/``.
    """
    import yaml

    from synthfr.data.manifest import dumps_record, iter_manifest
    from synthfr.data.writers import export_rec

    log = log or (lambda m: print(m, file=sys.stderr))
    t0 = time.time()
    shard_dirs = [Path(d).expanduser() for d in shard_dirs]
    if not shard_dirs:
        raise ValueError("merge needs at least one shard folder")
    out = Path(out).expanduser()
    docs, cfg_bytes = [], None
    for d in shard_dirs:
        for need in ("config.yaml", "identities.npy"):
            if not (d / need).is_file():
                raise FileNotFoundError(f"{d} has no {need}; is it a folder written by `synthfr generate --shard`?")
        if not (d / "manifest.jsonl").is_file():
            raise FileNotFoundError(f"shard {d} is not finished (no manifest.jsonl); run it again with --resume")
        docs.append(yaml.safe_load((d / "config.yaml").read_text()))
    base = _comparable(docs[0])
    for d, doc in zip(shard_dirs[1:], docs[1:]):
        if _comparable(doc) != base:
            raise ValueError(f"shard {d} was made with different settings than {shard_dirs[0]} "
                             f"({_diff(docs[0], doc)}); only shards of one run can be merged")
    ids_bytes = (shard_dirs[0] / "identities.npy").read_bytes()
    n_rows = int(docs[0]["identities"]["rows"])
    by_row: dict[int, tuple[Path, list]] = {}
    for d in shard_dirs:
        recs: dict[int, list] = {}
        for r in iter_manifest(d / "manifest.jsonl"):
            recs.setdefault(int(r["identity"]), []).append(r)
        for row, lst in recs.items():
            if row in by_row:
                raise ValueError(f"identity {row} is in both {by_row[row][0]} and {d}; shards overlap")
            by_row[row] = (d, lst)
    missing = [r for r in range(n_rows) if r not in by_row]
    if missing:
        raise ValueError(f"the shards cover {len(by_row)} of {n_rows} identities; missing e.g. rows "
                         f"{missing[:5]} (pass every shard folder; finish a shard with --resume)")
    if out.exists() and any(out.iterdir()):
        raise ValueError(f"merge output {out} is not empty; choose a new folder")
    out.mkdir(parents=True, exist_ok=True)
    n_img = 0
    lines = []
    for row in range(n_rows):
        d, lst = by_row[row]
        for r in sorted(lst, key=lambda x: int(x["index"])):
            src, dst = d / r["path"], out / r["path"]
            dst.parent.mkdir(parents=True, exist_ok=True)
            if link:
                try:
                    os.link(src, dst)
                except OSError:
                    shutil.copyfile(src, dst)
            else:
                shutil.copyfile(src, dst)
            lines.append(dumps_record(r) + "\n")
            n_img += 1
    _atomic_text(out / "manifest.jsonl", "".join(lines))
    _atomic_bytes(out / "identities.npy", ids_bytes)
    shutil.copyfile(shard_dirs[0] / "config.yaml", out / "config.yaml")
    for sp in shard_dirs[0].glob("identities.space.*"):
        shutil.copyfile(sp, out / sp.name)
    if format == "rec":
        export_rec(out, list(iter_manifest(out / "manifest.jsonl")), num_classes=n_rows)
    _write_card(out, log)
    summary = {"shards": len(shard_dirs), "identities": n_rows, "images": n_img, "seconds": time.time() - t0,
               "out": str(out)}
    return summary
