"""Supervised training and evaluation of an ANN on in-memory tensors.

Batches are drawn with a seeded generator (no DataLoader workers), so a fixed seed
gives the same weights twice on the same machine.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn
from tqdm.auto import tqdm

from spikebench.distributed import (
    average_gradients,
    barrier,
    broadcast_module,
    check_same_on_all_ranks,
    my_share,
    rank_and_world,
    share_scale,
    sum_across,
)
from spikebench.training_state import load_training_state, save_training_state


@dataclass
class EpochStats:
    epoch: int
    train_loss: float
    train_accuracy: float
    val_accuracy: float
    seconds: float


def seed_everything(seed: int) -> None:
    import random

    import numpy as np

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, batch_size: int = 1000, device: str = "cpu") -> torch.Tensor:
    """Class predictions of `model` for all of `x` (evaluation mode)."""
    was_training = model.training
    model.eval()
    out = [model(x[i : i + batch_size].to(device)).argmax(1).cpu() for i in range(0, len(x), batch_size)]
    model.train(was_training)
    return torch.cat(out)


def accuracy(model: nn.Module, data: tuple[torch.Tensor, torch.Tensor], device: str = "cpu") -> float:
    x, y = data
    return float((predict(model, x, device=device) == y).float().mean())


def fit(
    model: nn.Module,
    train: tuple[torch.Tensor, torch.Tensor],
    val: tuple[torch.Tensor, torch.Tensor],
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    weight_decay: float,
    seed: int,
    device: str = "cpu",
    on_epoch: Callable[[EpochStats], None] | None = None,
    checkpoint: str | Path | None = None,
) -> list[EpochStats]:
    """Adam with a cosine learning-rate schedule and cross-entropy loss.

    With `checkpoint`, the full training state (weights, optimizer, schedule, batch-order
    generator, history) is saved after every epoch and training resumes from it, so an
    interrupted run finishes with the same weights as an uninterrupted one (rank 0 writes
    it under torchrun). Under torchrun, each process takes its share of every global batch
    and the gradients are averaged across processes (`spikebench.distributed`), so the
    result matches a single process with the same `batch_size` up to float summation order.
    """
    rank, _ = rank_and_world()
    model.to(device)
    x, y = train
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    steps_per_epoch = (len(x) + batch_size - 1) // batch_size
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs * steps_per_epoch)
    generator = torch.Generator().manual_seed(seed)
    history: list[EpochStats] = []
    if checkpoint is not None and Path(checkpoint).exists():
        history = [EpochStats(**h) for h in load_training_state(checkpoint, model, optimizer, scheduler, generator)]
        if rank == 0:
            print(f"resuming from {checkpoint} after epoch {len(history)}")
    check_same_on_all_ranks(len(history), "baseline: epochs already trained")
    broadcast_module(model)
    params = list(model.parameters())
    for epoch in range(len(history) + 1, epochs + 1):
        started = time.perf_counter()
        model.train()
        order = torch.randperm(len(x), generator=generator)
        total_loss, correct = 0.0, 0
        batches = range(0, len(x), batch_size)
        for start in tqdm(batches, desc=f"epoch {epoch}/{epochs}", leave=False, mininterval=2, disable=rank > 0):
            batch = order[start : start + batch_size]
            index = my_share(batch)
            optimizer.zero_grad(set_to_none=True)
            # a share can be empty (a last batch smaller than the world): it then adds no gradient
            if len(index):
                xb, yb = x[index].to(device), y[index].to(device)
                logits = model(xb)
                loss = nn.functional.cross_entropy(logits, yb)
                (loss * share_scale(len(index), len(batch))).backward()
                total_loss += loss.item() * len(index)
                correct += int((logits.argmax(1) == yb).sum())
            average_gradients(params)
            optimizer.step()
            scheduler.step()
        total_loss, correct = sum_across(total_loss, correct)
        broadcast_module(model)
        stats = EpochStats(epoch, total_loss / len(x), correct / len(x), accuracy(model, val, device), time.perf_counter() - started)
        history.append(stats)
        if checkpoint is not None and rank == 0:
            save_training_state(checkpoint, model, optimizer, scheduler, generator, [asdict(h) for h in history])
        if checkpoint is not None:
            barrier()  # the checkpoint is on disk before any process can look for it again
        if on_epoch:
            on_epoch(stats)
    return history
