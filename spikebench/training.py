"""The one training loop: every model the benchmark trains goes through `train_epochs`.

The ANN baselines (`fit`, below), surrogate-gradient SNN fine-tuning
(`spikebench.snn_training.train_snn`) and sparse learning (`spikebench.sparse_masks.train_sparse`)
differ only in their forward pass, their optimizer's parameter groups and a few hooks; the
loop below owns everything else, once:

- the batch order: a generator seeded with `seed` draws a permutation of the training split
  every epoch (optionally only its first `train_subset` images, a fresh random subset per
  epoch), so a fixed seed gives the same batches in the same order, hence the same weights;
- the optimizer step under a cosine learning-rate schedule over all the run's steps;
- per-epoch statistics (train loss and accuracy, validation accuracy, seconds);
- resuming: with `checkpoint`, the whole state (weights, optimizer, schedule, the batch-order
  generator, history, and any loop-specific `extra_state`) is saved after every epoch
  (`spikebench.training_state`) and a rerun continues after the last saved epoch, ending with
  the same weights as an uninterrupted run;
- torchrun data parallelism (`spikebench.distributed`): every process draws the same order,
  trains on its share of each global batch and applies the gradients averaged over the
  processes, so all keep the same weights; a single process runs exactly the plain loop.

A step's forward pass is the `step(x, y) -> (loss, logits)` callback; `Hooks` plug a loop's own
mechanics in around it (gradient masks, threshold clamping, prune-and-regrow).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
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
from spikebench.errors import ParamsError
from spikebench.training_state import Stateful, load_training_state, save_training_state

StepFn = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


@dataclass
class EpochStats:
    epoch: int
    train_loss: float
    train_accuracy: float
    val_accuracy: float
    seconds: float


@dataclass
class Hooks:
    """A loop's own mechanics around the shared step (all optional).

    step_context()      entered around forward and backward (e.g. run on masked weights)
    before_step(step)   after the gradients are averaged, before the optimizer step (e.g. mask
                        or regrow by gradient); `step` counts optimizer steps from 1 over the run
    after_step(step)    after the optimizer and schedule step (e.g. clamp, re-apply masks)
    end_epoch(stats)    the record kept in the history and checkpoint (default: `stats` itself);
                        it must be a dataclass of type `record_type` of `train_epochs`
    on_epoch(record)    after the record is saved (logging; raising here stops between epochs)
    """

    step_context: Callable[[], AbstractContextManager[Any]] | None = None
    before_step: Callable[[int], None] | None = None
    after_step: Callable[[int], None] | None = None
    end_epoch: Callable[[EpochStats], Any] | None = None
    on_epoch: Callable[[Any], None] | None = None


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch, and ask torch for deterministic kernels (warn where none exist)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, batch_size: int = 1000, device: str | torch.device = "cpu") -> torch.Tensor:
    """Class predictions of `model` for all of `x` (evaluation mode)."""
    was_training = model.training
    model.eval()
    out = [model(x[i : i + batch_size].to(device)).argmax(1).cpu() for i in range(0, len(x), batch_size)]
    model.train(was_training)
    return torch.cat(out)


def accuracy(model: nn.Module, data: tuple[torch.Tensor, torch.Tensor], device: str | torch.device = "cpu") -> float:
    """Fraction of (images, labels) that `model` classifies correctly."""
    return scored_predictions(model, data, device)[0]


def scored_predictions(model: nn.Module, data: tuple[torch.Tensor, torch.Tensor],
                       device: str | torch.device = "cpu") -> tuple[float, torch.Tensor]:
    """(accuracy, predicted class per image) on (images, labels): a result row's accuracy together with
    the per-image predictions it is computed from (`spikebench.predictions`)."""
    x, y = data
    predicted = predict(model, x, device=device)
    return float((predicted == y).float().mean()), predicted


def epoch_size(images: int, train_subset: int = 0) -> int:
    """Images trained on per epoch: all of them, or a `train_subset` drawn afresh each epoch."""
    return min(train_subset, images) if train_subset > 0 else images


def steps_per_epoch(images: int, batch_size: int, train_subset: int = 0) -> int:
    return (epoch_size(images, train_subset) + batch_size - 1) // batch_size


def total_steps(images: int, batch_size: int, epochs: int, train_subset: int = 0) -> int:
    """Optimizer steps of a whole run (at least 1: the cosine schedule's period)."""
    return max(1, epochs * steps_per_epoch(images, batch_size, train_subset))


@dataclass
class _Loop:
    """The mutable state of one run, passed between the loop's parts."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    generator: torch.Generator
    hooks: Hooks
    device: str | torch.device
    step: int = 0


def train_epochs(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    train: tuple[torch.Tensor, torch.Tensor],
    *,
    step: StepFn,
    validate: Callable[[], float],
    epochs: int,
    batch_size: int,
    seed: int,
    train_subset: int = 0,
    device: str | torch.device = "cpu",
    hooks: Hooks | None = None,
    record_type: type = EpochStats,
    extra_state: Stateful | None = None,
    checkpoint: str | Path | None = None,
    desc: str = "train",
) -> list[Any]:
    """Train `model` in place for `epochs` epochs with `optimizer` under a cosine schedule.

    step(x, y) -> (loss, logits): the forward pass on one (share of a) batch; the loop calls
        backward, averages gradients under torchrun and steps the optimizer.
    validate() -> accuracy: called after every epoch (all processes hold the same weights then).
    batch_size: the global batch; under torchrun each process takes its share of it.
    train_subset: images drawn (afresh, seeded) from `train` each epoch; 0 = all.
    extra_state: loop state beyond weights and optimizer (e.g. sparsity masks), checkpointed too.
    checkpoint: the state is saved there after every epoch (by rank 0) and, if the file exists,
        training resumes after its last epoch (a finished run just reloads its state).
    Returns the per-epoch records (`EpochStats`, or what `hooks.end_epoch` makes of them).
    """
    if epochs < 0 or batch_size < 1:
        raise ParamsError(f"{desc}: epochs = {epochs} and batch_size = {batch_size}: need epochs >= 0 and batch_size >= 1")
    model.to(device)
    steps = total_steps(len(train[0]), batch_size, epochs, train_subset)
    loop = _Loop(model, optimizer, torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps),
                 torch.Generator().manual_seed(seed), hooks or Hooks(), device)
    history = _resume(loop, checkpoint, record_type, extra_state, desc)
    loop.step = len(history) * steps_per_epoch(len(train[0]), batch_size, train_subset)  # every epoch has as many steps
    for epoch in range(len(history) + 1, epochs + 1):
        started = time.perf_counter()
        loss_sum, correct, images = _train_one_epoch(loop, train, step, batch_size, train_subset, f"{desc} epoch {epoch}/{epochs}")
        loss_sum, correct = sum_across(loss_sum, correct)
        broadcast_module(model)  # every process continues from exactly what rank 0 checkpoints
        stats = EpochStats(epoch, loss_sum / images, correct / images, validate(), time.perf_counter() - started)
        record = loop.hooks.end_epoch(stats) if loop.hooks.end_epoch is not None else stats
        history.append(record)
        _save(loop, checkpoint, history, extra_state)
        if loop.hooks.on_epoch is not None:
            loop.hooks.on_epoch(record)
    return history


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
    desc: str = "ann",
) -> list[EpochStats]:
    """Adam with a cosine learning-rate schedule and cross-entropy loss.

    The ANN baselines' (and any plain classifier's) training: `train_epochs` with a cross-entropy
    step. With `checkpoint`, an interrupted run resumes and finishes with the same weights as an
    uninterrupted one; under torchrun the result matches a single process with the same
    `batch_size` up to float summation order.
    """
    model.to(device)  # before the optimizer takes the parameters
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)

    def step(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = model(x)
        return nn.functional.cross_entropy(logits, y), logits

    return train_epochs(model, optimizer, train, step=step, validate=lambda: accuracy(model, val, device), epochs=epochs,
                        batch_size=batch_size, seed=seed, device=device, hooks=Hooks(on_epoch=on_epoch), checkpoint=checkpoint,
                        desc=desc)


def _resume(loop: _Loop, checkpoint: str | Path | None, record_type: type, extra_state: Stateful | None, desc: str) -> list[Any]:
    """The history so far, the state restored from `checkpoint` if it exists; the same in every process."""
    history: list[Any] = []
    rank, _ = rank_and_world()
    if checkpoint is not None and Path(checkpoint).exists():
        saved = load_training_state(checkpoint, loop.model, loop.optimizer, loop.scheduler, loop.generator, extra_state)
        history = [record_type(**h) for h in saved]
        if rank == 0:
            print(f"{desc}: resuming from {checkpoint} after epoch {len(history)}")
    check_same_on_all_ranks(len(history), f"{desc}: epochs already trained")
    broadcast_module(loop.model)
    return history


def _train_one_epoch(loop: _Loop, train: tuple[torch.Tensor, torch.Tensor], step: StepFn, batch_size: int, train_subset: int,
                     desc: str) -> tuple[float, int, int]:
    """One pass over this epoch's (subset of the) training split: (summed loss, correct, images) of this process."""
    x, y = train
    loop.model.train()
    # a subset is the head of a full permutation, so the generator advances alike whatever its size
    order = torch.randperm(len(x), generator=loop.generator)[: epoch_size(len(x), train_subset)]
    params = [p for group in loop.optimizer.param_groups for p in group["params"]]
    hooks, loss_sum, correct = loop.hooks, 0.0, 0
    for start in tqdm(range(0, len(order), batch_size), desc=desc, leave=False, mininterval=2, disable=rank_and_world()[0] > 0):
        batch = order[start : start + batch_size]
        index = my_share(batch)
        loop.optimizer.zero_grad(set_to_none=True)
        # a share can be empty (a last batch smaller than the world): it then adds no gradient
        if len(index):
            xb, yb = x[index].to(loop.device), y[index].to(loop.device)
            with hooks.step_context() if hooks.step_context is not None else nullcontext():
                loss, logits = step(xb, yb)
                (loss * share_scale(len(index), len(batch))).backward()
            loss_sum += loss.item() * len(index)
            correct += int((logits.argmax(1) == yb).sum())
        average_gradients(params)
        loop.step += 1
        if hooks.before_step is not None:
            hooks.before_step(loop.step)
        loop.optimizer.step()
        loop.scheduler.step()
        if hooks.after_step is not None:
            hooks.after_step(loop.step)
    return loss_sum, correct, len(order)


def _save(loop: _Loop, checkpoint: str | Path | None, history: list[Any], extra_state: Stateful | None) -> None:
    if checkpoint is None:
        return
    if rank_and_world()[0] == 0:
        save_training_state(checkpoint, loop.model, loop.optimizer, loop.scheduler, loop.generator, [asdict(h) for h in history],
                            extra_state)
    barrier()  # the checkpoint is on disk before any process can look for it again
