"""Process-group helpers for ``torchrun`` (NCCL on GPU, gloo on CPU): set-up, barriers, differentiable
all-gather / all-reduce. A single process never initialises ``torch.distributed``: every helper falls back to the
identity when it is not initialised. (Where a process sits in a launch, without torch: :mod:`.distributed`.)

Below training and models on the journey: the FR loop, its checkpoints and partial FC (models) all use them."""
from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

__all__ = ["init_distributed", "is_distributed", "rank", "world_size", "local_rank", "barrier", "all_gather_grad",
           "all_reduce_sum_grad", "all_reduce_max", "cleanup", "owned_process_group", "is_main", "broadcast_floats"]


def _dist():
    import torch.distributed as dist

    return dist


def is_distributed() -> bool:
    """True when ``torch.distributed`` is initialised with more than one process."""
    if not torch.distributed.is_available():
        return False
    dist = _dist()
    return dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return _dist().get_rank() if is_distributed() else 0


def world_size() -> int:
    return _dist().get_world_size() if is_distributed() else 1


def local_rank() -> int:
    from synthfr.utils.distributed import env_local_rank

    return env_local_rank()


def is_main() -> bool:
    return rank() == 0


def init_distributed(device: str = "auto") -> tuple[int, int, torch.device]:
    """Initialise from ``torchrun``'s environment (``WORLD_SIZE > 1``) and return ``(rank, world, device)``.

    Without ``torchrun`` (or with ``WORLD_SIZE=1``) nothing is initialised and ``(0, 1, device)`` is returned.
    The backend is NCCL when the device is CUDA, else gloo.
    """
    from synthfr.utils.device import resolve_device
    from synthfr.utils.distributed import env_rank_world

    world = env_rank_world()[1]
    dev = resolve_device(device)
    if world <= 1:
        return 0, 1, dev
    dist = _dist()
    if dev.type == "cuda":
        dev = torch.device("cuda", local_rank())
        torch.cuda.set_device(dev)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
    return dist.get_rank(), dist.get_world_size(), dev


def cleanup() -> None:
    if torch.distributed.is_available() and _dist().is_initialized():
        _dist().destroy_process_group()


@contextlib.contextmanager
def owned_process_group() -> Iterator[None]:
    """Destroy the process group on leaving if it was created inside (by :func:`init_distributed`).

    Why: a process that exits with a live gloo group can abort at interpreter shutdown ("terminate called without
    an active exception", SIGABRT) because gloo's worker threads outlive Python. A group the caller made stays.
    """
    owned = not (torch.distributed.is_available() and _dist().is_initialized())
    try:
        yield
    finally:
        if owned:
            cleanup()


def barrier() -> None:
    if is_distributed():
        _dist().barrier()


class _AllGather(torch.autograd.Function):
    """Concatenate every rank's tensor along dim 0; backward sums the gradients of all ranks and returns this
    rank's slice multiplied by the world size (DDP then averages the backbone gradients, which gives exactly
    the gradient of the global loss)."""

    @staticmethod
    def forward(ctx, x):
        dist = _dist()
        w = dist.get_world_size()
        sizes = [torch.zeros(1, dtype=torch.long, device=x.device) for _ in range(w)]
        dist.all_gather(sizes, torch.tensor([x.shape[0]], dtype=torch.long, device=x.device))
        sizes = [int(s.item()) for s in sizes]
        if len(set(sizes)) != 1:
            raise RuntimeError(f"all ranks need the same local batch size, got {sizes}")
        out = [torch.empty_like(x) for _ in range(w)]
        dist.all_gather(out, x.contiguous())
        ctx.rank, ctx.n, ctx.w = dist.get_rank(), x.shape[0], w
        return torch.cat(out, 0)

    @staticmethod
    def backward(ctx, grad):
        grad = grad.contiguous().clone()
        _dist().all_reduce(grad)
        return grad[ctx.rank * ctx.n:(ctx.rank + 1) * ctx.n] * ctx.w


class _AllReduceSum(torch.autograd.Function):
    """Sum over ranks; every rank then computes the same loss, so the backward is the identity."""

    @staticmethod
    def forward(ctx, x):
        y = x.clone()
        _dist().all_reduce(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        return grad


def all_gather_grad(x: torch.Tensor) -> torch.Tensor:
    """Differentiable all-gather along dim 0 (identity in a single process)."""
    return _AllGather.apply(x) if is_distributed() else x


def all_reduce_sum_grad(x: torch.Tensor) -> torch.Tensor:
    """Differentiable sum over ranks (identity in a single process)."""
    return _AllReduceSum.apply(x) if is_distributed() else x


def all_gather_nograd(x: torch.Tensor) -> torch.Tensor:
    if not is_distributed():
        return x
    out = [torch.empty_like(x) for _ in range(world_size())]
    _dist().all_gather(out, x.contiguous())
    return torch.cat(out, 0)


def all_reduce_max(x: torch.Tensor) -> torch.Tensor:
    """In-place max over ranks of a tensor that carries no gradient (identity in a single process)."""
    if is_distributed():
        _dist().all_reduce(x, op=_dist().ReduceOp.MAX)
    return x


def broadcast_floats(values: list[float], device: torch.device | str = "cpu") -> list[float]:
    """Rank 0's ``values`` on every rank (identity in a single process): keeps wall-clock decisions (time
    limits, time-based schedules) identical across ranks."""
    if not is_distributed():
        return list(values)
    t = torch.tensor(values, dtype=torch.float64, device=device)
    _dist().broadcast(t, src=0)
    return [float(v) for v in t.tolist()]
