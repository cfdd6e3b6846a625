"""The settings of ``synthfr generate``: :class:`GenerateConfig` and its up-front validation."""
from __future__ import annotations

from dataclasses import dataclass

from synthfr.registry import parse_spec

__all__ = ["GenerateConfig", "RUN_ONLY_FIELDS", "validate_generate_config"]


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
