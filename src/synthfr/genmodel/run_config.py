"""Fields every generator-training run shares (``synthfr train-generator``, ``synthfr train-dit``): what it reads,
where it writes, where it runs, and when it stops and checkpoints. Each trainer's config adds its own maths."""
from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["TrainRunConfig"]


@dataclass
class TrainRunConfig:
    """Data, run folder, device and stopping of a generator-training run (a base of the trainers' configs)."""

    data: list[str] = field(default_factory=list)
    """Folders of ArcFace-aligned 112×112 faces (``synthfr align`` output), e.g. aligned celeba + utkface; identity
    sub-folders are identities, the files of a flat folder one identity each. Never LFW."""
    out: str = ""
    """Run folder (checkpoints, log.csv, samples)."""
    data_cache: str | None = None
    """Cache of the packed images + condition embeddings, one format for both trainers (default ``<out>/data``)."""
    embedder: str = "dlib-torch"
    """Embedder of the condition vectors and of any identity loss (``test-tiny`` in tests); never the judge, SFace."""
    seed: int = 0
    """Seed of everything random (data order, masks, noise, init)."""
    device: str = "auto"
    """auto | cpu | cuda | cuda:N (torchrun: cuda:LOCAL_RANK)."""
    threads: int | None = None
    """torch CPU threads (None: torch's default)."""
    max_steps: int | None = None
    """Stop after this many steps in total (None: until the time budget)."""
    time_budget: float | None = None
    """Stop, with a checkpoint, after this many seconds of this process."""
    ckpt_minutes: float = 5.0
    """Minutes (wall clock) between checkpoints."""
    log_every: int = 10
    """Steps between log.csv rows."""
