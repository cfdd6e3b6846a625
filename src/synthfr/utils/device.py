"""Device selection."""
from __future__ import annotations

import os

__all__ = ["resolve_device", "use_channels_last", "freeze_for_inference", "MEMORY_FORMATS"]

MEMORY_FORMATS = ("auto", "channels_last", "contiguous")


def _local_cuda_index(torch) -> int | None:
    """This process's GPU under ``torchrun`` (``LOCAL_RANK`` set): ``LOCAL_RANK``, wrapped onto the visible GPUs
    (a launcher that binds one GPU per process leaves only that one visible); ``None`` without ``LOCAL_RANK``."""
    lr = os.environ.get("LOCAL_RANK")
    if lr is None or not lr.strip():
        return None
    try:
        local_rank = int(lr)
    except ValueError:
        raise ValueError(f"LOCAL_RANK={lr!r} is not an integer; unset it or launch with torchrun") from None
    count = torch.cuda.device_count()
    return local_rank % count if count > 0 else 0


def resolve_device(device: str | None = "auto"):
    """``"auto"`` -> CUDA when available, else MPS, else CPU; anything else is passed to ``torch.device``.

    Under ``torchrun`` (``LOCAL_RANK`` in the environment) with CUDA available, ``"auto"`` and a bare ``"cuda"``
    mean this process's GPU, ``cuda:LOCAL_RANK`` (modulo the number of visible GPUs), so that the ranks do not
    all pile onto GPU 0. An explicit index (``"cuda:1"``) is always kept.
    """
    import torch

    if device in (None, "auto"):
        if torch.cuda.is_available():
            idx = _local_cuda_index(torch)
            return torch.device("cuda") if idx is None else torch.device("cuda", idx)
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if isinstance(device, str) and device.strip() == "cuda" and torch.cuda.is_available():
        idx = _local_cuda_index(torch)
        if idx is not None:
            return torch.device("cuda", idx)
    return torch.device(device)


def use_channels_last(memory_format: str | bool | None, device, name: str = "memory format") -> bool:
    """Whether 4-D weights and inputs should be NHWC (``torch.channels_last``) on ``device``.

    ``memory_format``: ``"auto"`` (or ``None``) = NHWC on CPU, NCHW elsewhere; ``"channels_last"`` (or ``True``)
    and ``"contiguous"`` (or ``False``) force a layout. oneDNN's NHWC kernels, depthwise convolutions above all,
    beat NCHW on CPU (docs/benchmarks.md: FR training 1.32x, checkpoint evaluation ~1.25x, arcface-r100 1.16x,
    SFace and dlib-torch embedders); GPUs keep NCHW under ``auto`` because nothing here measured them. The maths
    is the same up to float rounding whichever layout runs.
    """
    if isinstance(memory_format, bool):
        return memory_format
    if memory_format is None:
        memory_format = "auto"
    if memory_format not in MEMORY_FORMATS:
        from synthfr.errors import UsageError

        raise UsageError(f"{name} {memory_format!r}: use auto, channels_last or contiguous")
    if memory_format == "auto":
        return getattr(device, "type", str(device).split(":")[0]) == "cpu"
    return memory_format == "channels_last"


def freeze_for_inference(module, device, memory_format: str | bool | None = "auto", net=None):
    """A pretrained network made ready to embed: eval mode, no gradients, moved to the device ``device``
    resolves to (:func:`resolve_device`), and the 4-D weights of ``net`` (default: ``module``) in NHWC when
    ``memory_format`` asks for it there (:func:`use_channels_last`). Returns ``(device, channels_last)``: the
    resolved device and whether inputs should be put in NHWC before the network."""
    import torch

    dev = resolve_device(device)
    nhwc = use_channels_last(memory_format, dev)
    module.eval()
    for p in module.parameters():
        p.requires_grad_(False)
    module.to(dev)
    if nhwc:
        (module if net is None else net).to(memory_format=torch.channels_last)
    return dev, nhwc
