"""Configuration dataclasses of FR training (``synthfr train``); one docstring under every field."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class AugmentConfig:
    """Per-sample augmentations, each applied with its own probability (0 disables it)."""

    flip: float = 0.5
    """Probability of a horizontal flip."""
    erase: float = 0.0
    """Probability of random erasing (a rectangle of ``erase_area`` of the image, aspect ratio 0.3-3.3)."""
    erase_area: list = field(default_factory=lambda: [0.02, 0.33])
    """Smallest and largest erased fraction of the image area."""
    erase_value: float | None = None
    """Fill of the erased rectangle in the backbone's input range [-1, 1] (0 = mid-grey, as torchvision's
    ``RandomErasing`` placed after ``Normalize``, which Vec2Face's and VIGFace's recipes use; -1 = black).
    ``None`` (default): uniform noise per pixel."""
    crop: float = 0.0
    """Probability of AdaFace's crop augmentation: a random box (``crop_area``-1.0 of the area, aspect 3/4-4/3,
    torchvision's ``RandomResizedCrop`` parameters) is kept in place and everything outside it set to black."""
    crop_area: float = 0.2
    """Smallest kept fraction of the image area for ``crop``."""
    rescale: float = 0.0
    """Probability of rescaling: shrink to ``rescale_min``-1.0 of the side and restore - simulates low
    resolution. Interpolations: see ``rescale_interpolations``."""
    rescale_min: float = 0.25
    """Smallest relative side of the shrunken image."""
    rescale_interpolations: list = field(default_factory=list)
    """Empty (default): shrink with a random one of nearest/bilinear/bicubic/area and restore with a random one
    of nearest/bilinear/bicubic (torch). Otherwise AdaFace's low-resolution augmentation: OpenCV, the small
    side ``int(ratio·side)``, one interpolation drawn for shrinking and another for restoring, from
    ``nearest``, ``bilinear``, ``bicubic``, ``area``, ``lanczos`` (AdaFace, Vec2Face, VIGFace: all five)."""
    jitter: float = 0.0
    """Probability of colour jitter (brightness, contrast, saturation)."""
    jitter_strength: float = 0.3
    """Maximal relative change of brightness, contrast and saturation."""
    blur: float = 0.0
    """Probability of motion blur (a line kernel of 3-9 pixels at a random angle)."""
    blur_max: int = 9
    """Largest motion-blur kernel size (odd)."""


@dataclass
class TrainConfig:
    """Everything that defines a training run; ``config.json`` in the run dir stores the resolved values."""

    data: str | list = ""
    """Training set: an ImageFolder (``identity/image.jpg``, optional ``manifest.jsonl`` with labels and soft
    labels) or an insightface ``.rec`` (with ``.idx`` beside it); or a list of them (synthetic + real, or sets
    of different runs), trained together with disjoint class ids (source ``s`` is shifted by the classes of the
    sources before it)."""
    data_weights: list = field(default_factory=list)
    """Per-source sampling shares when ``data`` is a list (e.g. ``[0.7, 0.3]``); an epoch keeps ``Σ`` images but
    draws ``round(N·w_s/Σw)`` from source ``s``. Empty: plain concatenation (each image once per epoch)."""
    out: str = ""
    """Run directory (created)."""
    backbone: str = "iresnet50"
    """Registered backbone name (``synthfr list backbone``)."""
    embedding_size: int = 512
    """Embedding dimension."""
    backbone_kwargs: dict = field(default_factory=dict)
    """Extra keyword arguments of the backbone factory (e.g. ``{"dropout": 0.4}``)."""
    head: str = "arcface"
    """Registered margin head (``synthfr list head``)."""
    head_kwargs: dict = field(default_factory=dict)
    """Head options, e.g. ``{"s": 64, "m": 0.5}``."""
    sample_rate: float = 1.0
    """Partial FC: fraction of negative class centres used per step (1.0 = full softmax)."""
    virtual_classes: int = 0
    """VIGFace: extra classifier rows that get no samples; exported as ``virtual_identities.npy``."""
    soft_labels: bool = True
    """Use identity-mixup soft labels from the manifest (``soft_label: [id_a, id_b, weight_a]``) when present."""
    soft_label_logits: str = "per-target"
    """Where the margins of soft labels (identity and domain mixup) go: ``per-target`` (each target's
    cross-entropy with its own full margin) or ``mixed`` (SynFace's released code: the targets' margin logits
    mixed by their weights, then one softmax; ``configs/synface-mixup.yaml``). Same for hard labels."""
    domain_mixup: str | None = None
    """SynFace domain mixup: a small real ImageFolder/.rec; each batch is mixed pixel-wise with a real batch. Its
    classes are appended after the training classes, unless it is one of the ``data`` sources: then the mixed
    real images keep that source's class ids (synthetic + real trained together with mixup, SynFace's Mix)."""
    domain_mixup_ratio: float | None = None
    """ψ, the weight of the synthetic image (and label) in a domain-mixed sample. ``None`` (default, SynFace's
    recipe): drawn per batch, seeded by ``(seed, step)``, uniformly from ``{0, ψ_step, 2·ψ_step, …, 1}``
    (21 values at the default step 0.05); a number fixes ψ for every batch (synthfr's former default: 0.8)."""
    domain_mixup_psi_step: float = 0.05
    """Grid step of the per-batch ψ values when ``domain_mixup_ratio`` is ``None`` (must divide 1)."""
    domain_mixup_prob: float = 1.0
    """Probability that a step is domain-mixed."""
    epochs: float = 20.0
    """Number of epochs (fractions allowed)."""
    batch_size: int = 128
    """Global batch size (split evenly over the ``torchrun`` processes)."""
    lr: float = 0.1
    """Peak learning rate (scaled by nothing: give the value for the global batch)."""
    momentum: float = 0.9
    """SGD momentum."""
    weight_decay: float = 5e-4
    """SGD weight decay (backbone and class centres)."""
    schedule: str = "multistep"
    """``multistep`` (× ``lr_gamma`` at each milestone), ``poly`` (power 2, insightface) or ``cosine``."""
    milestones: list = field(default_factory=lambda: [0.4, 0.7, 0.9])
    """Multi-step milestones: values <= 1 are fractions of the run, larger values epochs."""
    lr_gamma: float = 0.1
    """Multi-step decay factor."""
    warmup_epochs: float = 0.0
    """Linear warm-up from 0 over this many epochs."""
    grad_clip: float = 5.0
    """Clip the backbone gradient norm to this value (0 disables), as insightface."""
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    """Augmentations."""
    input_size: int = 112
    """Image side fed to the backbone (images of another size are resized)."""
    seed: int = 0
    """Global seed: model init, data order, augmentation and Partial FC sampling derive from it."""
    num_workers: int = 2
    """DataLoader worker processes (JPEG decoding + augmentation); 0 = in the main process."""
    device: str = "auto"
    """``auto``, ``cpu``, ``cuda``, ``cuda:1`` ... (under ``torchrun`` each rank uses its LOCAL_RANK GPU)."""
    amp: str = "auto"
    """Mixed precision: ``auto`` (fp16 on CUDA, off on CPU), ``fp16``, ``bf16`` or ``off``."""
    memory_format: str = "auto"
    """Backbone tensor layout: ``auto`` (``channels_last`` on CPU, ``contiguous`` elsewhere), ``channels_last``
    (NHWC: MobileFaceNet steps 1.3x faster on a 2-core AVX2 CPU, docs/benchmarks.md) or ``contiguous`` (NCHW). The maths
    is the same; only float rounding differs."""
    threads: int = 0
    """torch CPU threads of the training process (0 = leave torch's default)."""
    val: list = field(default_factory=list)
    """Verification benchmarks (``.bin`` files or folders) evaluated at the end of each epoch."""
    val_every: float = 1.0
    """Validate every this many epochs."""
    checkpoint_every: int = 0
    """Also write a resumable checkpoint every this many steps (0 = only at epoch ends)."""
    keep_checkpoints: int = 2
    """How many resumable checkpoints to keep."""
    log_every: int = 10
    """Log (CSV, progress bar) every this many steps."""
    max_steps: int = 0
    """Stop after this many steps (0 = the whole schedule); the schedule still spans ``epochs``."""
    time_limit: float = 0.0
    """Stop (and save) after this many seconds (0 = no limit); the schedule still spans ``epochs``."""
    resume: bool = False
    """Continue from the newest checkpoint in ``out``."""
    tensorboard: bool = False
    """Also log to TensorBoard (needs the ``tensorboard`` extra)."""
    progress: bool = True
    """Show a progress bar."""

    def to_json(self) -> dict[str, Any]:
        from synthfr.config import to_dict

        return to_dict(self)


def validate_train_config(cfg: TrainConfig) -> None:
    """Everything checkable before training starts (so a bad ``--val`` fails now, not after an epoch)."""
    from synthfr.errors import UsageError
    from synthfr.models.partial_fc import SOFT_LOGITS
    from synthfr.utils.device import use_channels_last
    from synthfr.utils.validate import check_device, check_out_dir, check_range, check_types

    check_types(cfg)
    if not cfg.data:
        raise UsageError("no training data: pass --data (an ImageFolder or an insightface .rec)")
    if not cfg.out:
        raise UsageError("no run directory: pass --out RUN_DIR")
    check_out_dir(cfg.out)
    data = [cfg.data] if isinstance(cfg.data, (str, Path)) else list(cfg.data)  # one source or several
    for key, path in [*(("--data", d) for d in data), ("--domain-mixup", cfg.domain_mixup)]:
        if path and not Path(path).expanduser().exists():
            raise FileNotFoundError(f"{key} {path} not found: pass an ImageFolder (identity/image.jpg) or a .rec")
    for key, lo in (("batch_size", 1), ("embedding_size", 1), ("input_size", 8), ("log_every", 1)):
        check_range(f"--{key.replace('_', '-')}", getattr(cfg, key), lo, integer=True)
    check_range("--lr", cfg.lr, 0.0, lo_open=True)
    check_range("--sample-rate", cfg.sample_rate, 0.0, 1.0, lo_open=True)
    check_range("--virtual-classes", cfg.virtual_classes, 0, integer=True)
    check_range("--workers", cfg.num_workers, 0, integer=True)
    check_device(cfg.device)
    if cfg.soft_label_logits not in SOFT_LOGITS:
        raise UsageError(f"--soft-label-logits {cfg.soft_label_logits}: use one of {', '.join(SOFT_LOGITS)}")
    use_channels_last(cfg.memory_format, "cpu", name="--memory-format")  # a bad --memory-format fails now
    for b in cfg.val or []:
        p = Path(b).expanduser()
        if not p.exists():
            raise UsageError(f"--val {b}: no such file; pass an insightface .bin (e.g. ../shared/data/lfw/lfw.bin)")
        if p.is_file():
            from synthfr.data.benchmarks import load_bin_raw

            try:
                load_bin_raw(p)  # read it once now: a corrupt benchmark fails before the first epoch
            except ValueError as e:
                from synthfr.errors import InputError

                raise InputError(f"--val {b}: {e}") from None
        elif not (p / "pairs.txt").is_file():
            raise UsageError(f"--val {b}: a folder benchmark needs a pairs.txt; pass an insightface .bin")
