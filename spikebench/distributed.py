"""torchrun support: join the process group that torchrun describes in the environment.

Under `torchrun --nproc_per_node N`, every process trains on its share of each global
batch (DistributedDataParallel); only rank 0 logs to MLflow and writes outputs.
"""

from __future__ import annotations

import os

import torch.distributed as dist


def init_from_env(device: str) -> tuple[int, int]:
    """(rank, world size); joins a gloo (CPU) or nccl (CUDA) group when WORLD_SIZE > 1."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device == "cuda" else "gloo")
    return dist.get_rank(), dist.get_world_size()


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
