"""Settings of ``synthfr train-generator``: :class:`GenTrainConfig` and its JSON form in checkpoints.

The JSON form (``config`` of every checkpoint's ``.json``) keeps its keys: runs written before keep resuming.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Sequence

from synthfr.genmodel.model import GenModelConfig
from synthfr.genmodel.run_config import TrainRunConfig

__all__ = ["GenTrainConfig", "config_from_json", "config_to_json", "RESUME_FREE"]


@dataclass
class GenTrainConfig(TrainRunConfig):
    """Training of the built-in generator (``synthfr train-generator``)."""

    model: GenModelConfig = field(default_factory=GenModelConfig)
    """Architecture."""
    batch_size: int = 16
    """Real images per step."""
    lr: float = 2e-4
    """Generator (and encoder) learning rate (AdamW, betas 0.9/0.99)."""
    lr_d: float = 2e-4
    """Discriminator learning rate (AdamW, betas 0.5/0.99)."""
    warmup_steps: int = 200
    """Linear learning-rate warm-up."""
    grad_clip: float = 1.0
    """Gradient-norm clip for the generator."""
    w_pix: float = 1.0
    """Weight of the L1 pixel loss."""
    w_kl: float = 0.002
    """Weight of the KL term of the style posterior (summed over z dims, averaged over the batch)."""
    w_id: float = 1.0
    """Weight of the identity loss 1 − cos(E(output), condition)."""
    w_perc: float = 0.5
    """Weight of the perceptual loss (normalised L1 between the embedder's feature maps)."""
    w_gan: float = 0.05
    """Weight of the generator's hinge-GAN loss."""
    w_syn: float = 0.5
    """Weight of the losses on condition vectors without a real image."""
    id_start: int = 0
    """Step from which identity + perceptual losses are on (before: pixel + KL only, much faster on CPU)."""
    id_ramp: int = 1000
    """Steps over which the identity and perceptual weights ramp up linearly after ``id_start`` (0: at once);
    a full-strength identity loss on an untrained decoder breeds adversarial high-frequency texture."""
    id_space: str = "raw"
    """Where the identity losses compare: ``raw`` = 1 − cos in the embedder's space; ``centred`` = 1 − cos after
    subtracting the mean training embedding (the identity-specific direction; unrelated faces ≈ 0), so outputs
    gain nothing by drifting towards the average face (which makes different identities look alike)."""
    init_from: str | None = None
    """Start a new run from the weights (generator, EMA, discriminator) of another run's latest checkpoint."""
    id_jitter: float = 4.0
    """Random shift (± pixels at 112 px) and ±3 % scale applied alike to output and target before the embedder,
    so the identity loss cannot be met with pixel-exact adversarial texture (0: off)."""
    gan_start: int = 3000
    """Step from which the patch-GAN is trained and used."""
    synth_start: int = 3000
    """Step from which condition vectors without a real image are added."""
    synth_frac: float = 0.25
    """Condition vectors without an image per real image."""
    synth_kinds: Sequence[float] = (0.4, 0.3, 0.3)
    """Shares of synthetic conditions around (noise), between (interpolation) and away from (Gaussian fit) real embeddings."""
    around_sigma: Sequence[float] = (0.15, 0.45)
    """Range of the relative noise norm for 'around' vectors (cos to the source ≈ 1/sqrt(1+σ²))."""
    min_mask: float = 0.5
    """Smallest masked fraction of tokens."""
    p_full_mask: float = 0.25
    """Probability of masking all tokens (the generation-time setting)."""
    ema_decay: float = 0.999
    """EMA of the generator's weights (exported and used for samples)."""
    sample_every: int = 500
    """Steps between sample grids and held-out fidelity checks (0: never)."""
    val_identities: int = 16
    """Identity folders held out of training to measure fidelity on unseen identities."""
    val_threshold: float = 0.91
    """Cosine threshold used for the held-out verification rate in val.csv."""
    cond_mode: str = "image"
    """Identity condition of a real training image: ``image`` = its own (or its mirror's) embedding
    (synthfr-small); ``identity`` = the leave-one-out mean embedding of its identity's other images (single
    images: mean of image and mirror), which carries no trace of this image's pose or light, so per-image
    variation must come from the attributes and the style code (synthfr-v2; see genmodel/conditioning.py)."""
    own_cond_p: float = 0.2
    """With ``cond_mode=identity``: share of real images conditioned on their own embedding anyway, so that
    single-photo conditions (an embedding of one face) stay in the training distribution."""
    attr_dropout: float = 0.1
    """Probability that each attribute input is hidden (marked unknown) in a training sample, so the network
    also renders faces with attributes left unspecified."""
    pose_balance: float = 0.0
    """Pose-balanced sampling: each image is drawn with weight (frequency of its |yaw| 5° bin)^-power
    (0 = plain epochs; 0.5 = half-way to flat; weights capped at 20×)."""
    id_target: str = "one"
    """Identity-loss target: ``one`` = 1 − cos(E(out), cond); ``real`` = a hinge at the similarity the real
    target image itself has to its condition (+ ``id_margin``), so outputs are pushed to be as recognisable as
    real photos but not towards the (frontal, neutral) average of their identity."""
    id_margin: float = 0.05
    """Margin added to the real image's similarity when ``id_target=real``."""
    w_attr: float = 0.0
    """Weight of the attribute loss: |measured − requested| / attribute sd, for every attribute given to the
    network that can be measured differentiably on its output (pose by synthfr's pose net; brightness,
    contrast, light direction and sharpness by formula). Teaches the attribute inputs to steer."""
    attr_loss: Sequence[str] = ("yaw", "pitch", "brightness", "contrast", "light_lr", "light_tb", "sharpness")
    """Attributes the attribute loss checks. Leave ``sharpness`` out when training from a blurry start: the
    cheapest way to raise the variance of the Laplacian is high-frequency noise, not detail."""
    attr_yaw_range: float = 45.0
    """Image-less conditions request, half of the time, a yaw drawn uniformly within ± this many degrees (with
    ``w_attr``): pose range beyond the mostly frontal training photos."""
    warp_p: float = 0.0
    """Share of real training photos whose head is turned in 3-D before use (``genmodel/warp.py``: a generic
    depth-map warp): the target, the encoder's input and the identity/perceptual targets are the turned photo,
    its yaw label moves by ``YAW_GAIN``·angle, its identity condition stays; the discriminator sees real photos
    only, and pixels the warp fills from outside the image are left out of the pixel loss. 0 = off."""
    warp_yaw: float = 30.0
    """Turn angles are drawn uniformly within ± this many degrees (at most 35: the depth map folds beyond)."""


def config_to_json(cfg: GenTrainConfig) -> dict[str, Any]:
    d = dataclasses.asdict(cfg)
    d["model"] = cfg.model.to_json()
    for k, v in d.items():
        if isinstance(v, tuple):
            d[k] = list(v)
    return d


def config_from_json(d: dict[str, Any]) -> GenTrainConfig:
    d = dict(d)
    model = GenModelConfig.from_json(d.pop("model", {}))
    from synthfr.config import check_keys

    check_keys(GenTrainConfig, d)
    d = {k: tuple(v) if isinstance(v, list) and k not in ("data",) else v for k, v in d.items()}
    return GenTrainConfig(model=model, **d)


# options that may differ between the original run and a resumed one without changing the maths
RESUME_FREE = {"out", "data", "data_cache", "device", "threads", "max_steps", "time_budget", "ckpt_minutes",
                "log_every", "sample_every"}
