"""``synthfr train-generator``: resumable training of the built-in generator on aligned real faces.

One step (batch of ``B`` real faces + ``round(B·synth_frac)`` condition vectors without an image)::

    real:  cond = embedder(image or its mirror), image tokens masked at 50–100 % (25 %: fully masked)
           loss = w_pix·L1 + w_kl·KL(q(z|x)‖N(0,I)) + w_id·(1−cos(E(out), cond)) + w_perc·feature-L1
                  + w_gan·hinge-GAN (after ``gan_start``)
    synth: cond around / between / away from real embeddings, fully masked, z ~ N(0, I)
           loss = w_syn·[(1−cos(E(out), cond)) + w_gan·GAN]      (identity + image prior only)

The identity and perceptual terms ramp up over ``id_ramp`` steps and see randomly shifted/scaled copies of output
and target (``id_jitter``), so they cannot be met with adversarial pixel texture; ``id_space="centred"`` measures
identity after removing the mean embedding (outputs gain nothing by drifting towards the average face).

Everything random in step ``s`` comes from a ``torch.Generator`` seeded with ``derive_seed(seed, "step", s)``
and the data order of epoch ``e`` from ``derive_seed(seed, "epoch", e)``, so the run is a pure function of the
config and the step: ``--resume`` continues *exactly* (tested) from the last checkpoint. Checkpoints are
written every ``ckpt_minutes`` (and at the end, and on SIGTERM/SIGINT) as ``ckpt/step-N.safetensors`` (models,
EMA, both optimisers) + ``ckpt/step-N.json`` (config, step, optimiser hyper-parameters, figures), then
``latest.json`` is replaced atomically; the two newest checkpoints are kept. Losses go to ``log.csv``, sample
grids to ``samples/step-N.png``, held-out-identity fidelity to ``val.csv``.
"""
from __future__ import annotations

import csv
import dataclasses
import functools
import hashlib
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from synthfr.genmodel.conditioning import (ATTR_INPUTS, AttributePrior, balance_weights, identity_conditions,
                                           measured_attributes, mirror_signs, prepare_attributes)
from synthfr.genmodel.model import FaceGenerator, GenModelConfig, PatchDiscriminator
from synthfr.utils.io import atomic_write_bytes, atomic_write_text, read_json, write_json
from synthfr.utils.seeds import derive_seed

__all__ = ["GenTrainConfig", "prepare_data", "train_generator", "TrainData", "load_checkpoint_model",
           "embed_with_features"]

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


@dataclass
class GenTrainConfig:
    """Training of the built-in generator (``synthfr train-generator``)."""

    data: list[str] = field(default_factory=list)
    """Folders of ArcFace-aligned 112×112 faces (``synthfr align`` output), e.g. aligned celeba + utkface. Never LFW."""
    out: str = ""
    """Run folder (checkpoints, logs, samples)."""
    data_cache: str | None = None
    """Where the packed images + condition embeddings are cached (default ``<out>/data``)."""
    embedder: str = "dlib-torch"
    """Embedder giving condition vectors and the identity/perceptual losses (``tiny-test`` in tests)."""
    seed: int = 0
    """Seed of everything random (data order, masks, noise, init)."""
    device: str = "auto"
    """auto | cpu | cuda | cuda:N."""
    threads: int | None = None
    """torch CPU threads (None: torch's default)."""
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
    max_steps: int | None = None
    """Stop after this many steps in total (None: until the time budget)."""
    time_budget: float | None = None
    """Stop (with a checkpoint) after this many seconds of this invocation."""
    ckpt_minutes: float = 5.0
    """Checkpoint interval (wall-clock minutes)."""
    log_every: int = 10
    """Steps between log.csv rows."""
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


# ---------------------------------------------------------------------------------------------------------
# embedder helpers
# ---------------------------------------------------------------------------------------------------------
def make_embedder(name: str, device: torch.device) -> nn.Module:
    if name == "tiny-test":
        from synthfr.genmodel.testing import TinyEmbedder

        return TinyEmbedder().to(device)
    from synthfr.face.embedders import create_embedder, refuse_judge

    refuse_judge(name, "the generator trainer")  # the judge (sface) never conditions or trains a generator
    emb = create_embedder(name, device=str(device))
    if not getattr(emb, "differentiable", False):
        raise ValueError(f"embedder {name!r} is not differentiable; the generator needs e.g. dlib-torch")
    for p in emb.parameters():
        p.requires_grad_(False)
    return emb.eval()


def embed_with_features(emb: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Unit embeddings and feature maps in one pass when the embedder allows it (dlib-torch, tiny-test)."""
    net = getattr(emb, "net", None)
    if net is not None and hasattr(net, "stages") and hasattr(net, "fc") and hasattr(emb, "chips"):
        feats = net.stages(emb.chips(x))
        return F.normalize(net.fc(feats[-1].mean(dim=(2, 3))), dim=1), feats
    if hasattr(emb, "fc") and hasattr(emb, "features"):
        feats = emb.features(x)
        return F.normalize(emb.fc(feats[-1].mean(dim=(2, 3))), dim=1), feats
    return emb(x), emb.features(x)


# ---------------------------------------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------------------------------------
@dataclass
class TrainData:
    images: torch.Tensor          # N×112×112×3 uint8
    emb: torch.Tensor             # N×2×D float32 (original, mirrored)
    identity: list[str]           # N identity keys ("<root>/<folder>" or the file for flat folders)
    train_idx: np.ndarray
    val_idx: np.ndarray
    fingerprint: str
    mean: torch.Tensor            # D
    chol: torch.Tensor            # D×D Cholesky factor of the embedding covariance
    attrs: torch.Tensor | None = None     # N×A raw attributes (conditioning.ATTR_INPUTS; NaN = unmeasured)
    cond_id: torch.Tensor | None = None   # N×D identity conditions (cond_mode=identity)


def _list_images(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_EXTS and p.is_file())


def prepare_data(dirs: Sequence[str | Path], cache: str | Path, embedder: str = "dlib-torch",
                 device: str = "auto", val_identities: int = 16, seed: int = 0, batch_size: int = 64,
                 progress: bool = True) -> TrainData:
    """Pack the aligned images of ``dirs`` and their (and their mirrors') embeddings into ``cache`` (reused).

    The cache is keyed by the file list and the embedder; a changed list or embedder re-packs.
    """
    from PIL import Image

    from synthfr.utils.device import resolve_device

    if not dirs:
        raise ValueError("no training data: pass --data with folders of aligned faces (synthfr align output)")
    files: list[tuple[Path, str]] = []
    for d in dirs:
        root = Path(d).expanduser()
        if not root.is_dir():
            raise FileNotFoundError(f"training data folder {root} does not exist; align faces first "
                                    "(synthfr align IN OUT) and pass OUT")
        if "lfw" in root.name.lower():
            raise ValueError(f"{root}: LFW is the benchmark and must never be used to train the generator")
        for p in _list_images(root):
            rel = p.relative_to(root)
            ident = f"{root.name}/{rel.parent.as_posix()}" if len(rel.parts) > 1 else f"{root.name}/{rel.as_posix()}"
            files.append((p, ident))
    if not files:
        raise ValueError(f"no images found under {', '.join(map(str, dirs))}")
    h = hashlib.sha256(embedder.encode())
    for p, _ in files:
        h.update(str(p).encode() + b"\0")
    fp = h.hexdigest()[:16]
    cache = Path(cache)
    meta_path = cache / "meta.json"
    if meta_path.is_file() and read_json(meta_path).get("fingerprint") == fp:
        images = np.load(cache / "images.npy", mmap_mode=None)
        emb = np.load(cache / "emb.npy")
    else:
        cache.mkdir(parents=True, exist_ok=True)
        images = np.empty((len(files), 112, 112, 3), np.uint8)
        for i, (p, _) in enumerate(files):
            im = np.asarray(Image.open(p).convert("RGB"))
            if im.shape != (112, 112, 3):
                raise ValueError(f"{p} is {im.shape[1]}×{im.shape[0]}, not an aligned 112×112 face; run synthfr align")
            images[i] = im
        dev = resolve_device(device)
        emb_model = make_embedder(embedder, dev)
        emb = np.empty((len(files), 2, emb_model.dim), np.float32)
        it = range(0, len(files), batch_size)
        if progress:
            from tqdm import tqdm

            it = tqdm(it, desc="embedding training faces (+ mirrors)", unit="batch")
        with torch.inference_mode():
            for i in it:
                x = torch.from_numpy(images[i:i + batch_size]).to(dev).permute(0, 3, 1, 2).float() / 255.0
                emb[i:i + len(x), 0] = emb_model(x).float().cpu().numpy()
                emb[i:i + len(x), 1] = emb_model(x.flip(-1)).float().cpu().numpy()
        np.save(cache / "images.npy", images)
        np.save(cache / "emb.npy", emb)
        atomic_write_text(cache / "files.txt", "".join(f"{p}\t{ident}\n" for p, ident in files))
        write_json(meta_path, {"fingerprint": fp, "n": len(files), "embedder": embedder,
                               "dirs": [str(d) for d in dirs]})
    ident = [i for _, i in files]
    # hold out whole identity folders (only folders with >= 2 images: flat folders have no identities)
    counts: dict[str, int] = {}
    for k in ident:
        counts[k] = counts.get(k, 0) + 1
    folders = sorted((k for k, c in counts.items() if c >= 2), key=lambda k: derive_seed(seed, "val", k))
    val_set = set(folders[:val_identities])
    val_idx = np.array([i for i, k in enumerate(ident) if k in val_set], dtype=np.int64)
    train_idx = np.array([i for i, k in enumerate(ident) if k not in val_set], dtype=np.int64)
    e = torch.from_numpy(emb[train_idx].reshape(-1, emb.shape[-1])).double()
    mean = e.mean(0)
    cov = torch.cov(e.T) + 1e-6 * torch.eye(e.shape[1], dtype=torch.float64)
    chol = torch.linalg.cholesky(cov)
    return TrainData(torch.from_numpy(images), torch.from_numpy(emb), ident, train_idx, val_idx, fp,
                     mean.float(), chol.float())


# ---------------------------------------------------------------------------------------------------------
# checkpoints (safetensors + JSON; never pickles)
# ---------------------------------------------------------------------------------------------------------
def _opt_flat(opt: torch.optim.Optimizer, prefix: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    sd = opt.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for pid, st in sd["state"].items():
        for k, v in st.items():
            if torch.is_tensor(v):
                tensors[f"{prefix}.{pid}.{k}"] = v.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(pid), {})[k] = v
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def _opt_load(opt: torch.optim.Optimizer, prefix: str, tensors: dict[str, torch.Tensor], meta: dict[str, Any],
              device: torch.device) -> None:
    state: dict[int, dict[str, Any]] = {}
    for key, v in tensors.items():
        if key.startswith(prefix + "."):
            _, pid, k = key.split(".", 2)
            state.setdefault(int(pid), {})[k] = v if k == "step" else v.to(device)
    for pid, d in meta.get("scalars", {}).items():
        state.setdefault(int(pid), {}).update(d)
    opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


def _module_tensors(m: nn.Module, prefix: str) -> dict[str, torch.Tensor]:
    return {f"{prefix}.{k}": v.detach().cpu().contiguous() for k, v in m.state_dict().items()}


def _load_module(m: nn.Module, prefix: str, tensors: dict[str, torch.Tensor]) -> None:
    sd = {k[len(prefix) + 1:]: v for k, v in tensors.items() if k.startswith(prefix + ".")}
    m.load_state_dict(sd)


def save_checkpoint(out: Path, step: int, tensors: dict[str, torch.Tensor], state: dict[str, Any],
                    keep: int = 2) -> Path:
    from safetensors.torch import save

    ck = out / "ckpt"
    ck.mkdir(parents=True, exist_ok=True)
    name = f"step-{step:08d}"
    atomic_write_bytes(ck / f"{name}.safetensors", save(tensors))
    write_json(ck / f"{name}.json", state)
    write_json(out / "latest.json", {"step": step, "tensors": f"ckpt/{name}.safetensors",
                                     "state": f"ckpt/{name}.json"})
    olds = sorted(ck.glob("step-*.safetensors"))[:-keep]
    for p in olds:
        for q in (p, p.with_suffix(".json")):
            if q.exists():
                q.unlink()
    return ck / f"{name}.safetensors"


def load_latest(out: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]] | None:
    from safetensors.torch import load_file

    latest = out / "latest.json"
    if not latest.is_file():
        return None
    info = read_json(latest)
    return load_file(str(out / info["tensors"])), read_json(out / info["state"])


def load_checkpoint_model(run: str | Path, ema: bool = True) -> FaceGenerator:
    """The generator (EMA weights by default, without the encoder) of a run's latest checkpoint."""
    run = Path(run)
    got = load_latest(run)
    if got is None:
        raise FileNotFoundError(f"{run} has no checkpoint (latest.json); train first with synthfr train-generator")
    tensors, state = got
    cfg = GenModelConfig.from_json(state["config"]["model"])
    g = FaceGenerator(cfg, with_encoder=True)
    _load_module(g, "E" if ema and any(k.startswith("E.") for k in tensors) else "G", tensors)
    g.encoder = None
    return g.eval()


# ---------------------------------------------------------------------------------------------------------
# training
# ---------------------------------------------------------------------------------------------------------
def _config_json(cfg: GenTrainConfig) -> dict[str, Any]:
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
_RESUME_FREE = {"out", "data", "data_cache", "device", "threads", "max_steps", "time_budget", "ckpt_minutes",
                "log_every", "sample_every"}


class _Stop:
    def __init__(self) -> None:
        self.flag = False

    def __call__(self, *_: Any) -> None:
        self.flag = True


def _perceptual(fo: list[torch.Tensor], ft: list[torch.Tensor]) -> torch.Tensor:
    loss = fo[0].new_zeros(())
    for a, b in zip(fo, ft):
        loss = loss + (a - b).abs().mean() / (b.abs().mean() + 1e-3)
    return loss / len(fo)


def _lr_factor(step: int, warmup: int) -> float:
    return min(1.0, (step + 1) / max(1, warmup))


@functools.lru_cache(maxsize=4)
def _epoch_perm(n: int, seed: int, epoch: int) -> np.ndarray:
    return np.random.default_rng(derive_seed(seed, "epoch", epoch)).permutation(n)


def _batch_indices(train_idx: np.ndarray, step: int, bs: int, seed: int) -> np.ndarray:
    """Indices of step ``step``: positions ``step·bs ...`` of the concatenated per-epoch permutations."""
    n = len(train_idx)
    out = np.empty(bs, dtype=np.int64)
    for j in range(bs):
        epoch, k = divmod(step * bs + j, n)
        out[j] = train_idx[_epoch_perm(n, seed, epoch)[k]]
    return out


def _synthetic_conditions(data: TrainData, n: int, cfg: GenTrainConfig, g: torch.Generator) -> torch.Tensor:
    if n == 0:
        return data.emb.new_zeros(0, data.emb.shape[-1])
    d = data.emb.shape[-1]
    ntr = len(data.train_idx)
    kinds = torch.multinomial(torch.tensor(list(cfg.synth_kinds), dtype=torch.float), n, replacement=True,
                              generator=g)
    a = data.emb[torch.from_numpy(data.train_idx[torch.randint(ntr, (n,), generator=g).numpy()]),
                 torch.randint(2, (n,), generator=g)]
    b = data.emb[torch.from_numpy(data.train_idx[torch.randint(ntr, (n,), generator=g).numpy()]),
                 torch.randint(2, (n,), generator=g)]
    noise = torch.randn(n, d, generator=g)
    lo, hi = cfg.around_sigma
    sig = lo + (hi - lo) * torch.rand(n, generator=g)
    lam = 0.3 + 0.4 * torch.rand(n, generator=g)
    gauss = data.mean + noise @ data.chol.T
    around = a + sig[:, None] * F.normalize(noise, dim=1)
    between = lam[:, None] * a + (1 - lam[:, None]) * b
    out = torch.where((kinds == 0)[:, None], around, torch.where((kinds == 1)[:, None], between, gauss))
    return F.normalize(out, dim=1)


def _jitter_grid(n: int, g: torch.Generator, px: float, size: int, dev: torch.device) -> torch.Tensor:
    """Sampling grids of random shifts (± ``px`` pixels) and ±3 % scalings, one per image."""
    shift = (torch.rand(n, 2, generator=g) * 2 - 1) * (2 * px / size)
    scale = 1 + (torch.rand(n, generator=g) * 2 - 1) * 0.03
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = scale
    theta[:, 1, 1] = scale
    theta[:, :, 2] = shift
    return F.affine_grid(theta, [n, 3, size, size], align_corners=False).to(dev)


def _to_float(images_u8: torch.Tensor, device: torch.device) -> torch.Tensor:
    return images_u8.to(device).permute(0, 3, 1, 2).float() / 255.0


def train_generator(cfg: GenTrainConfig, resume: bool = False, progress: bool = True,
                    data: TrainData | None = None, embedder: nn.Module | None = None,
                    on_step: Callable[[int, dict[str, float]], None] | None = None) -> dict[str, Any]:
    """Train (or, with ``resume``, continue) the generator; returns a summary dict (step, losses, paths)."""
    from synthfr.utils.device import resolve_device
    from synthfr.utils.provenance import write_provenance

    if not cfg.out:
        raise ValueError("train-generator needs an output run folder (--out RUN)")
    out = Path(cfg.out).expanduser()
    got = load_latest(out) if resume else None
    if resume and got is None:
        if (out / "latest.json").exists():
            raise FileNotFoundError(f"{out}/latest.json points to a missing checkpoint")
        print(f"train-generator: no checkpoint in {out} yet; starting from step 0")
    if got is None and not resume and (out / "latest.json").exists():
        raise ValueError(f"{out} already holds a run; pass --resume to continue it or choose another --out")
    if got is not None:
        saved = config_from_json(got[1]["config"])
        diffs = [f.name for f in dataclasses.fields(GenTrainConfig)
                 if f.name not in _RESUME_FREE and getattr(saved, f.name) != getattr(cfg, f.name)]
        # on resume the saved maths wins; say so when the command line asked for something else
        if diffs:
            print(f"train-generator: resuming with the run's saved settings for {', '.join(diffs)}")
        keep = {k: getattr(cfg, k) for k in _RESUME_FREE}
        cfg = dataclasses.replace(saved, **keep)
    cfg.model.validate()
    out.mkdir(parents=True, exist_ok=True)
    if cfg.threads:
        torch.set_num_threads(int(cfg.threads))
    dev = resolve_device(cfg.device)
    if embedder is None:
        embedder = make_embedder(cfg.embedder, dev)
    from synthfr.face.embedders import refuse_judge

    refuse_judge(embedder, "the generator trainer")
    embedder = embedder.to(dev)
    if data is None:
        data = prepare_data(cfg.data, cfg.data_cache or out / "data", cfg.embedder, str(dev), cfg.val_identities,
                            cfg.seed, progress=progress)
    if len(data.train_idx) == 0:
        raise ValueError("no training images left after holding out validation identities")
    prior = _prepare_conditioning(cfg, data, out, progress)

    torch.manual_seed(derive_seed(cfg.seed, "init"))
    G = FaceGenerator(cfg.model, with_encoder=True)
    with torch.no_grad():
        e = data.emb[torch.from_numpy(data.train_idx)].reshape(-1, data.emb.shape[-1])
        G.cond_mean.copy_(e.mean(0))
        G.cond_scale.fill_(1.0 / float((e - e.mean(0)).norm(dim=1).mean().clamp_min(1e-6)))
        if cfg.model.attr_dim:
            a = data.attrs[torch.from_numpy(data.train_idx)]
            a = torch.cat([a, a * mirror_signs()[None]])  # statistics of images and mirrors (yaw centred on 0)
            G.attr_mean.copy_(torch.from_numpy(np.nanmean(a.numpy(), 0)))
            G.attr_std.copy_(torch.from_numpy(np.nanstd(a.numpy(), 0)).clamp_min(1e-3))
    D = PatchDiscriminator()
    E = FaceGenerator(cfg.model, with_encoder=True)
    E.load_state_dict(G.state_dict())
    for p in E.parameters():
        p.requires_grad_(False)
    G.to(dev), D.to(dev), E.to(dev)
    optG = torch.optim.AdamW(G.parameters(), lr=cfg.lr, betas=(0.9, 0.99), weight_decay=0.0)
    optD = torch.optim.AdamW(D.parameters(), lr=cfg.lr_d, betas=(0.5, 0.99), weight_decay=0.0)
    step = 0
    elapsed_total = 0.0
    if got is not None:
        tensors, state = got
        _load_module(G, "G", tensors)
        _load_module(D, "D", tensors)
        _load_module(E, "E", tensors)
        _opt_load(optG, "optG", tensors, state["optG"], dev)
        _opt_load(optD, "optD", tensors, state["optD"], dev)
        step = int(state["step"])
        elapsed_total = float(state.get("elapsed_s", 0.0))
        if state.get("data_fingerprint") not in (None, data.fingerprint):
            print("train-generator: warning: the training data differ from those of the checkpoint")
    if got is None and cfg.init_from:
        _init_from(cfg.init_from, G, D, E)
    write_provenance(out, _config_json(cfg), cfg.seed)

    log_path = out / "log.csv"
    fields = ["step", "elapsed_s", "loss_g", "pix", "kl", "id", "perc", "gan_g", "d", "syn_id", "lr", "attr"]
    _truncate_csv(log_path, step)
    _truncate_csv(out / "val.csv", step)
    stop = _Stop()
    old = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)} \
        if _in_main_thread() else {}

    def checkpoint() -> None:
        tensors = {**_module_tensors(G, "G"), **_module_tensors(D, "D"), **_module_tensors(E, "E")}
        if prior is not None:
            tensors.update(prior.tensors())
        tg, mg = _opt_flat(optG, "optG")
        td, md = _opt_flat(optD, "optD")
        tensors.update(tg)
        tensors.update(td)
        save_checkpoint(out, step, tensors, {"step": step, "config": _config_json(cfg), "optG": mg, "optD": md,
                                             "elapsed_s": elapsed_total + (time.time() - t_start),
                                             "data_fingerprint": data.fingerprint,
                                             "n_train": int(len(data.train_idx)), "n_val": int(len(data.val_idx))})

    t_start = time.time()
    last_ckpt = t_start
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(initial=step, total=cfg.max_steps, desc="train-generator", unit="step")
    t_count = cfg.model.grid ** 2
    pose_net = None
    if cfg.w_attr > 0:
        if not cfg.model.attr_dim:
            raise ValueError("w_attr needs attribute inputs (model.attr_dim > 0)")
        from synthfr.face.pose import load_pose_estimator

        pose_net = load_pose_estimator(device=dev)
    balance = None
    if cfg.pose_balance > 0:
        if data.attrs is None:
            raise ValueError("pose_balance needs attributes (model.attr_dim > 0)")
        balance = torch.from_numpy(balance_weights(data.attrs[torch.from_numpy(data.train_idx), 0].numpy(),
                                                   cfg.pose_balance))
    last: dict[str, float] = {}
    try:
        while True:
            if cfg.max_steps is not None and step >= cfg.max_steps:
                break
            if cfg.time_budget is not None and time.time() - t_start >= cfg.time_budget:
                break
            if stop.flag:
                break
            G.train(), D.train()
            g = torch.Generator().manual_seed(derive_seed(cfg.seed, "step", step))
            bs = cfg.batch_size
            if cfg.pose_balance > 0:
                pick = torch.multinomial(balance, bs, replacement=True, generator=g)
                idx = torch.from_numpy(data.train_idx)[pick]
            else:
                idx = torch.from_numpy(_batch_indices(data.train_idx, step, bs, cfg.seed))
            flip = torch.rand(bs, generator=g) < 0.5
            x = _to_float(data.images[idx], dev)
            x = torch.where(flip.to(dev)[:, None, None, None], x.flip(-1), x)
            cond = data.emb[idx, flip.long()]
            if data.cond_id is not None:
                own = torch.rand(bs, generator=g) < cfg.own_cond_p
                cond = torch.where(own[:, None], cond, data.cond_id[idx])
            cond = cond.to(dev)
            attrs = _batch_attributes(data, idx, flip, cfg, g)
            full = torch.rand(bs, generator=g) < cfg.p_full_mask
            ratio = torch.where(full, torch.ones(bs), cfg.min_mask + (1 - cfg.min_mask) * torch.rand(bs, generator=g))
            noise = torch.randn(bs, cfg.model.z_dim, generator=g)
            mask_noise = torch.rand(bs, t_count, generator=g)
            n_syn = int(round(bs * cfg.synth_frac)) if step >= cfg.synth_start else 0
            syn_cond = _synthetic_conditions(data, n_syn, cfg, g).to(dev)
            syn_noise = torch.randn(n_syn, cfg.model.z_dim, generator=g)
            syn_attrs = None
            if data.attrs is not None and n_syn:
                sidx = torch.from_numpy(data.train_idx)[torch.randint(len(data.train_idx), (n_syn,), generator=g)]
                syn_attrs = _batch_attributes(data, sidx, torch.rand(n_syn, generator=g) < 0.5, cfg, g)
                if cfg.w_attr > 0:  # ask for poses the photos rarely show; the attribute loss checks them
                    wide = torch.rand(n_syn, generator=g) < 0.5
                    yaw = (torch.rand(n_syn, generator=g) * 2 - 1) * cfg.attr_yaw_range
                    syn_attrs[:, 0] = torch.where(wide, yaw, syn_attrs[:, 0])
            use_id = step >= cfg.id_start
            use_gan = step >= cfg.gan_start
            lrf = _lr_factor(step, cfg.warmup_steps)
            for grp in optG.param_groups:
                grp["lr"] = cfg.lr * lrf
            for grp in optD.param_groups:
                grp["lr"] = cfg.lr_d * lrf

            y, aux = G.forward_train(cond, x, ratio.to(dev), noise.to(dev), mask_noise.to(dev),
                                     None if attrs is None else attrs.to(dev))
            pix = (y - x).abs().mean()
            kl = aux["kl"].mean()
            loss = cfg.w_pix * pix + cfg.w_kl * kl
            logs = {"pix": float(pix.detach()), "kl": float(kl.detach())}
            ys = None
            if n_syn:
                ys, _ = G.forward_train(syn_cond, None, torch.ones(n_syn, device=dev), syn_noise.to(dev), None,
                                        None if syn_attrs is None else syn_attrs.to(dev))
            grid = _jitter_grid(bs + n_syn, g, cfg.id_jitter, x.shape[-1], dev) if cfg.id_jitter > 0 else None
            if use_id:
                ramp = min(1.0, (step - cfg.id_start + 1) / cfg.id_ramp) if cfg.id_ramp > 0 else 1.0
                both = y if ys is None else torch.cat([y, ys])
                xt = x
                if grid is not None:
                    both = F.grid_sample(both, grid, padding_mode="border", align_corners=False)
                    xt = F.grid_sample(x, grid[:bs], padding_mode="border", align_corners=False)
                eo, fo = embed_with_features(embedder, both)
                with torch.no_grad():
                    et, ft = embed_with_features(embedder, xt)
                if cfg.id_space == "centred":
                    mu = data.mean.to(dev)
                    eo = F.normalize(eo - mu, dim=1)
                    cond_id = F.normalize(cond - mu, dim=1)
                    syn_id = F.normalize(syn_cond - mu, dim=1)
                elif cfg.id_space == "raw":
                    cond_id, syn_id = cond, syn_cond
                else:
                    raise ValueError(f"id_space must be 'raw' or 'centred', not {cfg.id_space!r}")
                cos = (eo[:bs] * cond_id).sum(1)
                if cfg.id_target == "real":
                    # as recognisable as the real photo is (in the same space), but no more: pushing past it
                    # pulls every image of an identity towards its frontal, neutral average
                    et_s = F.normalize(et - data.mean.to(dev), dim=1) if cfg.id_space == "centred" else et
                    real_bar = ((et_s * cond_id).sum(1) + cfg.id_margin).clamp(max=1.0)
                    idl = F.relu(real_bar - cos).mean()
                    syn_bar = real_bar.mean()
                elif cfg.id_target == "one":
                    idl = (1 - cos).mean()
                    syn_bar = None
                else:
                    raise ValueError(f"id_target must be 'one' or 'real', not {cfg.id_target!r}")
                perc = _perceptual([f[:bs] for f in fo], ft)
                loss = loss + ramp * (cfg.w_id * idl + cfg.w_perc * perc)
                logs.update(id=float(idl.detach()), perc=float(perc.detach()))
                if ys is not None:
                    scos = (eo[bs:] * syn_id).sum(1)
                    sid = (1 - scos).mean() if syn_bar is None else F.relu(syn_bar - scos).mean()
                    loss = loss + ramp * cfg.w_syn * sid
                    logs["syn_id"] = float(sid.detach())
            if cfg.w_attr > 0 and attrs is not None:
                want = attrs if syn_attrs is None else torch.cat([attrs, syn_attrs])
                got = measured_attributes(y if ys is None else torch.cat([y, ys]), pose_net)
                checked = torch.tensor([n in cfg.attr_loss for n in ATTR_INPUTS], device=dev)
                known = torch.isfinite(want.to(dev)) & torch.isfinite(got) & checked[None]
                err = ((got - torch.nan_to_num(want.to(dev))) / E.attr_std).abs()
                al = torch.where(known, err, torch.zeros_like(err)).sum() / known.sum().clamp_min(1)
                loss = loss + cfg.w_attr * al
                logs["attr"] = float(al.detach())
            if use_gan:
                dg = -D(y).mean()
                if ys is not None:
                    dg = dg + cfg.w_syn * (-D(ys).mean())
                loss = loss + cfg.w_gan * dg
                logs["gan_g"] = float(dg.detach())
            optG.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip:
                torch.nn.utils.clip_grad_norm_(G.parameters(), cfg.grad_clip)
            optG.step()
            if use_gan:
                fake = y.detach() if ys is None else torch.cat([y.detach(), ys.detach()])
                dl = F.relu(1 - D(x)).mean() + F.relu(1 + D(fake)).mean()
                optD.zero_grad(set_to_none=True)
                dl.backward()
                optD.step()
                logs["d"] = float(dl.detach())
            with torch.no_grad():
                decay = min(cfg.ema_decay, (1 + step) / (10 + step))
                for pe, pg in zip(E.parameters(), G.parameters()):
                    pe.mul_(decay).add_(pg.detach(), alpha=1 - decay)
                for be, bg in zip(E.buffers(), G.buffers()):
                    be.copy_(bg)
            logs["loss_g"] = float(loss.detach())
            logs["lr"] = cfg.lr * lrf
            step += 1
            last = logs
            if on_step is not None:
                on_step(step, logs)
            if bar is not None:
                bar.update(1)
                bar.set_postfix({k: f"{v:.3f}" for k, v in logs.items() if k in ("pix", "id", "perc", "d")})
            if step % cfg.log_every == 0:
                _append_csv(log_path, fields, {"step": step, "elapsed_s": round(elapsed_total + time.time() - t_start, 1),
                                               **{k: round(v, 6) for k, v in logs.items()}})
            if cfg.sample_every and step % cfg.sample_every == 0:
                _samples_and_val(E, embedder, data, cfg, out, step, dev)
            if time.time() - last_ckpt >= cfg.ckpt_minutes * 60:
                checkpoint()
                last_ckpt = time.time()
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        if bar is not None:
            bar.close()
    checkpoint()
    return {"step": step, "out": str(out), "last": last, "elapsed_s": elapsed_total + time.time() - t_start,
            "stopped_by_signal": stop.flag}


def _prepare_conditioning(cfg: GenTrainConfig, data: TrainData, out: Path, progress: bool) -> AttributePrior | None:
    """Attributes, identity conditions and the generation-time attribute prior (synthfr-v2 settings)."""
    if cfg.cond_mode not in ("image", "identity"):
        raise ValueError(f"cond_mode must be 'image' or 'identity', not {cfg.cond_mode!r}")
    if cfg.cond_mode == "identity" and data.cond_id is None:
        data.cond_id = identity_conditions(data.emb, data.identity)
    if not cfg.model.attr_dim:
        return None
    if cfg.model.attr_dim != len(ATTR_INPUTS):
        raise ValueError(f"model.attr_dim must be {len(ATTR_INPUTS)} ({', '.join(ATTR_INPUTS)}) or 0")
    if data.attrs is None:
        arr = prepare_attributes(data.images, Path(cfg.data_cache or out / "data"), data.fingerprint, progress)
        data.attrs = torch.from_numpy(arr)
    tr = data.train_idx
    cond = (data.cond_id if data.cond_id is not None else identity_conditions(data.emb, data.identity))[tr]
    return AttributePrior.fit(cond.numpy(), data.attrs[torch.from_numpy(tr)].numpy(),
                              [data.identity[i] for i in tr], seed=cfg.seed)


def _batch_attributes(data: TrainData, idx: torch.Tensor, flip: torch.Tensor, cfg: GenTrainConfig,
                      g: torch.Generator) -> torch.Tensor | None:
    """Raw attributes of the batch's images (mirrored where flipped), each hidden with ``attr_dropout``."""
    if data.attrs is None:
        return None
    a = data.attrs[idx].clone()
    a = torch.where(flip[:, None], a * mirror_signs()[None], a)
    hide = torch.rand(a.shape, generator=g) < cfg.attr_dropout
    return a.masked_fill(hide, float("nan"))


def _init_from(src: str, G: FaceGenerator, D: nn.Module, E: FaceGenerator) -> None:
    """Start from another run's latest checkpoint, or from an exported weights folder (generator only).

    Layers the source lacks (a synthfr-small folder has no attribute inputs, and no encoder or discriminator)
    keep their fresh initialisation; attribute layers start at zero, so the start renders as the source does.
    """
    path = Path(src).expanduser()
    init = load_latest(path) if (path / "latest.json").is_file() else None
    if init is not None:
        for m, prefix in ((G, "G"), (D, "D"), (E, "E")):
            sd = {k[len(prefix) + 1:]: v for k, v in init[0].items() if k.startswith(prefix + ".")}
            missing, unexpected = m.load_state_dict(sd, strict=False)
            bad = unexpected + [k for k in missing if "attr" not in k]
            if bad:
                raise ValueError(f"init_from {src}: checkpoint does not fit this model ({bad[:4]})")
        print(f"train-generator: initialised from {src} step {init[1]['step']}")
        return
    if (path / "model.safetensors").is_file():
        from safetensors.torch import load_file

        sd = {k: v.float() for k, v in load_file(str(path / "model.safetensors")).items()}
        for m in (G, E):
            missing, unexpected = m.load_state_dict(sd, strict=False)
            bad = unexpected + [k for k in missing if "attr" not in k and not k.startswith("encoder.")]
            if bad:
                raise ValueError(f"init_from {src}: weights do not fit this model ({bad[:4]})")
        print(f"train-generator: initialised the generator from weights folder {src} (encoder, discriminator fresh)")
        return
    raise FileNotFoundError(f"init_from {src} is neither a run (latest.json) nor a weights folder (model.safetensors)")


def _in_main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def _truncate_csv(path: Path, step: int) -> None:
    """Drop rows logged after ``step`` (a resumed run re-does them)."""
    if not path.is_file():
        return
    with open(path) as f:
        rows = list(csv.reader(f))
    if not rows:
        return
    keep = [rows[0]] + [r for r in rows[1:] if r and int(float(r[0])) <= step]
    atomic_write_text(path, "".join(",".join(r) + "\n" for r in keep))


def _append_csv(path: Path, fields: list[str], row: dict[str, Any]) -> None:
    new = not path.is_file()
    with open(path, "a", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        if new:
            w.writeheader()
        w.writerow(row)


@torch.no_grad()
def _samples_and_val(E: FaceGenerator, embedder: nn.Module, data: TrainData, cfg: GenTrainConfig, out: Path,
                     step: int, dev: torch.device) -> dict[str, float]:
    """Sample grid (target | 75 %-masked reconstruction | 5 fully masked seeds) + held-out identity fidelity."""
    from PIL import Image

    E.eval()
    pool = data.val_idx if len(data.val_idx) else data.train_idx
    pick = pool[np.linspace(0, len(pool) - 1, num=min(8, len(pool))).astype(int)]
    x = _to_float(data.images[torch.from_numpy(pick)], dev)
    cond = data.emb[torch.from_numpy(pick), 0].to(dev)
    n = len(pick)
    g = torch.Generator().manual_seed(derive_seed(cfg.seed, "samples"))
    rec, _ = E.forward_train(cond, x, torch.full((n,), 0.75, device=dev), torch.zeros(n, cfg.model.z_dim, device=dev),
                             torch.rand(n, cfg.model.grid ** 2, generator=g).to(dev)) if E.encoder is not None \
        else (x, None)
    cols = [x, rec] + [E.generate_tensor(cond, [derive_seed(cfg.seed, "sample", int(i), k) for i in pick])
                       for k in range(5)]
    grid = torch.stack(cols, 1).reshape(-1, 3, 112, 112)
    arr = (grid.clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).cpu().numpy()
    arr = arr.reshape(n, len(cols), 112, 112, 3).transpose(0, 2, 1, 3, 4).reshape(n * 112, len(cols) * 112, 3)
    (out / "samples").mkdir(exist_ok=True)
    Image.fromarray(arr).save(out / "samples" / f"step-{step:08d}.png")
    res: dict[str, float] = {}
    if len(data.val_idx):
        vi = data.val_idx[:64]
        vc = data.emb[torch.from_numpy(vi), 0].to(dev)
        cos = []
        for k in range(2):
            imgs = E.generate_tensor(vc, [derive_seed(cfg.seed, "val", int(i), k) for i in vi])
            cos.append((embedder(imgs) * vc).sum(1))
        cs = torch.cat(cos)
        res = {"step": step, "val_cos": round(float(cs.mean()), 5),
               "val_verified": round(float((cs >= cfg.val_threshold).float().mean()), 5)}
        _append_csv(out / "val.csv", ["step", "val_cos", "val_verified"], res)
    return res

