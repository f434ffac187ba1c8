"""Supervised training and evaluation of an ANN on in-memory tensors.

Batches are drawn with a seeded generator (no DataLoader workers), so a fixed seed
gives the same weights twice on the same machine.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from tqdm.auto import tqdm


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
) -> list[EpochStats]:
    """Adam with a cosine learning-rate schedule and cross-entropy loss."""
    import time

    model.to(device)
    x, y = train
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    steps_per_epoch = (len(x) + batch_size - 1) // batch_size
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs * steps_per_epoch)
    generator = torch.Generator().manual_seed(seed)
    history = []
    for epoch in range(1, epochs + 1):
        started = time.perf_counter()
        model.train()
        order = torch.randperm(len(x), generator=generator)
        total_loss, correct = 0.0, 0
        for start in tqdm(range(0, len(x), batch_size), desc=f"epoch {epoch}/{epochs}", leave=False, mininterval=2):
            index = order[start : start + batch_size]
            xb, yb = x[index].to(device), y[index].to(device)
            logits = model(xb)
            loss = nn.functional.cross_entropy(logits, yb)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            total_loss += loss.item() * len(index)
            correct += int((logits.argmax(1) == yb).sum())
        stats = EpochStats(epoch, total_loss / len(x), correct / len(x), accuracy(model, val, device), time.perf_counter() - started)
        history.append(stats)
        if on_epoch:
            on_epoch(stats)
    return history
