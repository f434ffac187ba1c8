"""torchrun support: the process group, and the data-parallel mechanics every training loop shares.

Under `torchrun --nproc_per_node N`, every process draws the same global batch order from
the same seeded generator and trains on its share of each global batch (`my_share`); the
gradients are averaged across processes (`average_gradients`) before the optimizer step, so
every process holds the same weights, and the run matches one process with the same global
batch up to float summation order. Train metrics are summed across processes
(`sum_across`); only rank 0 logs to MLflow, prints and writes outputs and checkpoints.

The gradients are all-reduced explicitly rather than by wrapping the model in
DistributedDataParallel: the SNN loop trains one network at several T in turn, its forward
returns a `SimulationResult`, and method hooks (masking gradients) must see the averaged
gradients; one explicit collective per step serves every model the one loop
(`spikebench.training.train_epochs`) trains.

Without a process group (a plain `python -m ...`) every helper is a no-op, so the
single-process path is exactly the code path of a run that never heard of torchrun.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator

import torch
import torch.distributed as dist
from torch import nn

from spikebench.errors import SpikebenchError


def init_from_env(device: str) -> tuple[int, int]:
    """(rank, world size); joins a gloo (CPU) or nccl (CUDA) group when WORLD_SIZE > 1."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1
    if device == "cuda":
        # one GPU per process on the node; "cuda" then means this process's GPU everywhere
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device == "cuda" else "gloo")
    return dist.get_rank(), dist.get_world_size()


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def rank_and_world() -> tuple[int, int]:
    """(rank, world size) of the initialised process group; (0, 1) without one."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def my_share(batch: torch.Tensor) -> torch.Tensor:
    """This process's part of a global batch of indices (shares differ in size by at most one)."""
    rank, world = rank_and_world()
    return batch.tensor_split(world)[rank] if world > 1 else batch


def share_scale(share: int, batch: int) -> float:
    """Factor for this process's mean loss over its `share` of a global `batch`.

    Averaging per-process mean losses weights every process alike, which over-weights the
    images of a smaller share; scaled by world x share / batch, the average of the
    gradients is exactly the gradient of the mean loss over the whole global batch.
    1.0 in a single process.
    """
    _, world = rank_and_world()
    return world * share / batch if world > 1 else 1.0


def _collective_device() -> torch.device:
    # nccl reduces CUDA tensors only
    return torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")


def average_gradients(parameters: Iterable[nn.Parameter]) -> None:
    """Replace every gradient by its mean over the processes (one coalesced all-reduce).

    A process whose share of a batch was empty has no gradients: it contributes zeros, and
    a parameter keeps no gradient (so the optimizer skips it) only if no process gave it one.
    """
    _, world = rank_and_world()
    params = [p for p in parameters if p.requires_grad]
    if world == 1 or not params:
        return
    device, dtype = params[0].device, params[0].dtype
    present = torch.tensor([float(p.grad is not None) for p in params], device=device, dtype=dtype)
    parts = [present] + [(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1).to(device, dtype) for p in params]
    flat = torch.cat(parts)
    dist.all_reduce(flat)
    flat[len(params):] /= world
    offset = len(params)
    for p, count in zip(params, flat[: len(params)].tolist(), strict=True):
        chunk = flat[offset : offset + p.numel()].view(p.shape)
        offset += p.numel()
        if count == 0:
            p.grad = None
        elif p.grad is None:
            p.grad = chunk.to(p.dtype).clone()
        else:
            p.grad.copy_(chunk)  # in place: keeps the gradient's memory format (channels-last convs)


@torch.no_grad()
def broadcast_module(module: nn.Module) -> None:
    """Copy rank 0's parameters and buffers into every process's `module`.

    Called where a loop starts (a fresh or resumed state) and after every epoch, so all
    processes continue from exactly what rank 0 checkpoints; it also carries rank 0's
    batch-norm running statistics (each process updates them from its own share).
    """
    _, world = rank_and_world()
    tensors = [t for t in (*module.parameters(), *module.buffers()) if t.is_floating_point()]
    if world == 1 or not tensors:
        return
    flat = torch.cat([t.detach().reshape(-1).to(tensors[0].device, torch.float64) for t in tensors])
    dist.broadcast(flat, src=0)
    offset = 0
    for t in tensors:
        t.copy_(flat[offset : offset + t.numel()].view(t.shape))
        offset += t.numel()
    # integer buffers (e.g. batch-norm's num_batches_tracked) count the same steps everywhere


def sum_across(*values: float) -> tuple[float, ...]:
    """Each value summed over the processes (float64); the values unchanged in one process."""
    _, world = rank_and_world()
    if world == 1:
        return values
    total = torch.tensor(values, dtype=torch.float64, device=_collective_device())
    dist.all_reduce(total)
    return tuple(total.tolist())


def barrier() -> None:
    """Wait for every process (e.g. until rank 0 has written a checkpoint the others may read next)."""
    if rank_and_world()[1] > 1:
        dist.barrier()


def check_same_on_all_ranks(value: int, what: str) -> None:
    """Stop with a message (not a hang in the next collective) when the processes disagree,
    e.g. on the epoch they resume after when a checkpoint is not on a shared file system."""
    rank, world = rank_and_world()
    if world == 1:
        return
    seen = torch.tensor([value, -value], dtype=torch.int64, device=_collective_device())
    dist.all_reduce(seen, op=dist.ReduceOp.MAX)
    if seen[0] != -seen[1]:
        raise SpikebenchError(f"torchrun rank {rank}: {what} is {value}, but the processes range over "
                              f"{-int(seen[1])}..{int(seen[0])}; every process must see the same checkpoint files")


@contextlib.contextmanager
def rank_zero_output(rank: int) -> Iterator[None]:
    """On ranks > 0: print nothing and log nothing to MLflow (nested child runs included);
    rank 0, which computes the same results, reports them."""
    if rank == 0:
        yield
        return
    tracking = os.environ.get("SPIKEBENCH_TRACKING")
    os.environ["SPIKEBENCH_TRACKING"] = "off"
    try:
        with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
            yield
    finally:
        if tracking is None:
            os.environ.pop("SPIKEBENCH_TRACKING", None)
        else:
            os.environ["SPIKEBENCH_TRACKING"] = tracking
