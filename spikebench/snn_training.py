"""Surrogate-gradient training of a `SpikingNetwork` (hybrid training, shared by methods).

Hybrid training (Rathi et al. 2020; Chowdhury et al. 2021; Kundu et al. 2021): start from
a converted ANN, then train the SNN itself with backpropagation through time, the spike
non-linearity replaced by the engine's surrogate derivative. Thresholds (and optionally
leaks) are learnable. The loss is cross-entropy on the output layer's membrane potential
after T steps divided by T (a converted network's per-step output current is the ANN's
logit, so the same scale works at every T), plus an optional method-specific term.

Method hooks keep this loop method-agnostic:
  extra_loss(net, result)  a differentiable penalty added to the loss (e.g. spike activity)
  before_step(net)         after backward, before the optimizer step (e.g. mask gradients)
  after_step(net)          after the step (e.g. re-apply pruning masks to the weights)
  on_epoch(stats)          per-epoch record (MLflow metrics with step=epoch)

The loop itself is the core's `spikebench.training.train_epochs`: seeded batch order
(optionally a fresh random subset of the training split per epoch), Adam under a cosine
schedule, resume from a checkpoint, and torchrun data parallelism (every process trains on its
share of each global batch with gradients averaged, so all keep the same weights, thresholds
and leaks; hooks run in every process on the averaged gradients). This module adds the SNN's
step, its optimizer groups, threshold/leak clamping and validation split across processes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from spikebench.distributed import my_share, rank_and_world, sum_across
from spikebench.energy import SnnMetrics, fanout_maps, snn_metrics_per_step
from spikebench.errors import ParamsError
from spikebench.multistep import retain_freed_memory
from spikebench.spiking import SimulationResult, SpikingNetwork, simulate
from spikebench.training import EpochStats, Hooks, train_epochs

# Thresholds are kept above this so a learnt threshold can never reach zero (every
# neuron would fire every step) or flip sign.
MIN_THRESHOLD = 1e-3


@dataclass
class SnnEpochStats:
    epoch: int
    timesteps: int
    train_loss: float
    train_accuracy: float
    val_accuracy: float
    seconds: float
    thresholds: list[float]
    leaks: list[float]


@dataclass
class SnnMeasurement:
    """Accuracy and per-image op counts of an SNN at T on one image set, and the class it predicted
    for each of those images (what a result row's predictions file holds)."""

    accuracy: float
    metrics: SnnMetrics
    predictions: torch.Tensor  # (images,) predicted class, in the order of the measured images

    @property
    def energy_j(self) -> float:
        return self.metrics.energy_j


def trainable(net: SpikingNetwork, *, learn_threshold: bool = True, learn_leak: bool = False,
              surrogate: str = "fast_sigmoid", surrogate_alpha: float = 10.0) -> SpikingNetwork:
    """A copy of `net` (same weights, thresholds, leaks, reset) with learnable neuron parameters."""
    state, meta = net.to_checkpoint()
    return SpikingNetwork.from_meta(meta, state, learn_threshold=learn_threshold, learn_leak=learn_leak,
                                    surrogate=surrogate, surrogate_alpha=surrogate_alpha)


def output_logits(result: SimulationResult) -> torch.Tensor:
    """Output membrane after the last step divided by T (the per-step mean output current)."""
    return result.membrane[-1] / result.timesteps


@torch.no_grad()
def clamp_neuron_parameters(net: SpikingNetwork) -> None:
    """Keep learnt thresholds positive and leaks in [0, 1] (the engine's valid range)."""
    if isinstance(net.thresholds, nn.Parameter):
        net.thresholds.clamp_(min=MIN_THRESHOLD)
    if isinstance(net.leaks, nn.Parameter):
        net.leaks.clamp_(0.0, 1.0)


def evaluate_snn(net: SpikingNetwork, data: tuple[torch.Tensor, torch.Tensor], timesteps: int, batch_size: int = 500,
                 device: str = "cpu") -> float:
    """Accuracy of `net` after `timesteps` steps on (images, labels)."""
    return _count_correct(net, data, timesteps, batch_size, device) / max(1, len(data[0]))


def predict_snn(net: SpikingNetwork, x: torch.Tensor, timesteps: int, batch_size: int = 500, device: str = "cpu") -> torch.Tensor:
    """The class `net` predicts for each image of `x` after `timesteps` steps (on the CPU, in the order of `x`)."""
    was_training = net.training
    net.eval()
    out = []
    with torch.no_grad():
        for start in range(0, len(x), batch_size):
            out.append(net(x[start : start + batch_size].to(device), timesteps).predictions().cpu())
    net.train(was_training)
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.long)


def _count_correct(net: SpikingNetwork, data: tuple[torch.Tensor, torch.Tensor], timesteps: int, batch_size: int,
                   device: str) -> int:
    x, y = data
    return int((predict_snn(net, x, timesteps, batch_size, device) == y).sum())


def _validate(net: SpikingNetwork, data: tuple[torch.Tensor, torch.Tensor], timesteps: int, device: str) -> float:
    """Validation accuracy; under torchrun each process scores a contiguous part and the counts are summed."""
    _, world = rank_and_world()
    if world == 1:
        return evaluate_snn(net, data, timesteps, device=device)
    part = my_share(torch.arange(len(data[0])))
    (correct,) = sum_across(_count_correct(net, (data[0][part], data[1][part]), timesteps, 500, device))
    return correct / max(1, len(data[0]))


def measure_snn(net: SpikingNetwork, data: tuple[torch.Tensor, torch.Tensor], timesteps: int, input_shape: tuple[int, ...],
                batch_size: int = 500, progress: str | None = None) -> SnnMeasurement:
    """Accuracy, spikes, synaptic operations and energy per image at T (45 nm op model), and the
    predicted class of every image."""
    x, y = data
    net = net.cpu().eval()
    fanouts = fanout_maps(net, input_shape)
    result = simulate(net, x, timesteps, batch_size, fanouts=fanouts, progress=progress)
    predictions = result.predictions()
    accuracy = float((predictions == y).float().mean())
    metrics = snn_metrics_per_step(net, input_shape, result.spikes_per_step, result.synops_per_step, len(x))[timesteps - 1]
    return SnnMeasurement(accuracy, metrics, predictions)


def train_snn(
    net: SpikingNetwork,
    train: tuple[torch.Tensor, torch.Tensor],
    val: tuple[torch.Tensor, torch.Tensor],
    *,
    timesteps: int,
    epochs: int,
    batch_size: int,
    lr: float,
    seed: int,
    neuron_lr: float | None = None,
    weight_decay: float = 0.0,
    train_subset: int = 0,
    val_subset: int = 0,
    device: str = "cpu",
    extra_loss: Callable[[SpikingNetwork, SimulationResult], torch.Tensor] | None = None,
    before_step: Callable[[SpikingNetwork], None] | None = None,
    after_step: Callable[[SpikingNetwork], None] | None = None,
    on_epoch: Callable[[SnnEpochStats], None] | None = None,
    desc: str = "snn",
    checkpoint: str | Path | None = None,
) -> list[SnnEpochStats]:
    """Train `net` in place with BPTT at `timesteps` steps (Adam, cosine learning rate).

    neuron_lr: learning rate of learnable thresholds/leaks (default `lr`); lowering T quickly
        needs thresholds to move faster than the weights.
    train_subset: images drawn (afresh, seeded) from the training split each epoch; 0 = all.
    val_subset: the first n validation images are scored after each epoch; 0 = all.
    Learnable thresholds/leaks are whatever `net` declares as parameters (see `trainable`).
    checkpoint: the training state is saved there after every epoch and, if the file exists,
        training resumes after its last epoch (a finished run just reloads its weights).
        Under torchrun rank 0 writes it and every process resumes from it.
    batch_size: the global batch; under torchrun each process takes its share of it.
    """
    for name, value, low in (("timesteps", timesteps, 1), ("epochs", epochs, 0), ("batch_size", batch_size, 1)):
        if value < low:
            raise ParamsError(f"SNN training {name} = {value}: must be >= {low}")
    for name, value in (("lr", lr), ("neuron_lr", lr if neuron_lr is None else neuron_lr)):
        if not value > 0:
            raise ParamsError(f"SNN training {name} = {value}: must be > 0")
    if device == "cpu":
        retain_freed_memory()  # no page faults on every step's large tensors (see its docstring)
    net.to(device).train()
    val = (val[0][:val_subset], val[1][:val_subset]) if val_subset > 0 else val
    neuron = [p for p in (net.thresholds, net.leaks) if isinstance(p, nn.Parameter)]
    weights = [p for p in net.parameters() if p.requires_grad and all(p is not q for q in neuron)]
    groups = [{"params": weights}] + ([{"params": neuron, "lr": neuron_lr or lr, "weight_decay": 0.0}] if neuron else [])
    optimizer = torch.optim.Adam(groups, lr=lr, weight_decay=weight_decay)

    def step(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        result = net(x, timesteps)
        logits = output_logits(result)
        loss = nn.functional.cross_entropy(logits, y)
        return (loss + extra_loss(net, result) if extra_loss is not None else loss), logits

    history = train_epochs(net, optimizer, train, step=step, validate=lambda: _validate(net, val, timesteps, device), epochs=epochs,
                           batch_size=batch_size, seed=seed, train_subset=train_subset, device=device,
                           hooks=_snn_hooks(net, timesteps, before_step, after_step, on_epoch), record_type=SnnEpochStats,
                           checkpoint=checkpoint, desc=f"{desc} T={timesteps}")
    net.eval()
    return history


def _snn_hooks(net: SpikingNetwork, timesteps: int, before_step: Callable[[SpikingNetwork], None] | None,
               after_step: Callable[[SpikingNetwork], None] | None, on_epoch: Callable[[SnnEpochStats], None] | None) -> Hooks:
    """The SNN's part of the loop: the method's gradient hook, clamped neuron parameters, per-epoch neuron state."""

    def after(_: int) -> None:
        clamp_neuron_parameters(net)  # before the method's hook, which may read the thresholds
        if after_step is not None:
            after_step(net)

    def end_epoch(stats: EpochStats) -> SnnEpochStats:
        return SnnEpochStats(stats.epoch, timesteps, stats.train_loss, stats.train_accuracy, stats.val_accuracy, stats.seconds,
                             [float(t) for t in net.thresholds.detach()], [float(v) for v in net.leaks.detach()])

    before = (lambda _: before_step(net)) if before_step is not None else None
    return Hooks(before_step=before, after_step=after, end_epoch=end_epoch, on_epoch=on_epoch)
