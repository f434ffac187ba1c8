"""Mechanics the compression methods share (st_pruning, attention_pruning).

  MethodRows        a method's result rows, built through `RowContext.row`, each compared with
                    the baseline ANN (`Reference`): SNN rows carry the per-layer op counts, the
                    energy ratio against the ANN and the model footprint.
  SnnTuning         the surrogate-gradient training settings of one method; `finetune` trains an
                    SNN at one T with them (`spikebench.snn_training.train_snn`).
  lower_timesteps   temporal pruning: train at the first T of a strictly decreasing schedule,
                    then fine-tune at each lower T, calling back after each step.
  compare_with_snntorch  the same SNN through snntorch's `Leaky` neuron, against our engine.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from spikebench.energy import count_params, fanout_maps, footprint_bytes, snn_metrics_per_step
from spikebench.predictions import Predictions
from spikebench.results import Reference, ResultRow, RowContext
from spikebench.snn_training import SnnMeasurement, train_snn
from spikebench.spiking import SpikingNetwork, simulate
from spikebench.tracking import StageRun, log_snn_epoch

Hook = Callable[[SpikingNetwork], None]  # before_step / after_step of SNN training


@dataclass(frozen=True)
class MethodRows:
    """Builds one method's rows: provenance from `ctx`, accuracy over `test_images` images,
    `shared` (the stage's common details) at the head of every row's `extra`.

    `test_index` holds the test-split positions of those images, in the order they were measured
    (None: the whole split in its own order); every row carries the predictions it was scored from.
    """

    ctx: RowContext
    reference: Reference
    method: str
    arch: str
    test_images: int
    shared: dict = field(default_factory=dict)
    test_index: torch.Tensor | None = field(default=None, compare=False)  # a tensor has no single truth value to compare

    def predictions(self, classes: torch.Tensor) -> Predictions:
        """The row's per-image predictions from the classes predicted for the measured images."""
        return Predictions.of(classes, self.test_index)

    def snn(self, net: SpikingNetwork, measured: SnnMeasurement, timesteps: int, *, weight_bits: int = 32,
            library: str = "spikebench", headline: bool = False, extra: dict | None = None, **fields: Any) -> ResultRow:
        """An SNN row (45 nm op-model energy); `fields` are further typed fields (mappable, model_path)."""
        metrics = measured.metrics
        details = {**self.shared, **metrics.as_extra(), "energy_ratio_vs_ann": round(self.reference.energy_j / metrics.energy_j, 2),
                   "footprint_bytes": footprint_bytes(net, weight_bits), **(extra or {})}
        return self.ctx.row(self.method, library, self.arch, timesteps=timesteps, accuracy=measured.accuracy,
                            test_images=self.test_images, ann_accuracy=self.reference.accuracy, ops=metrics, params=count_params(net),
                            weight_bits=weight_bits, headline=headline, extra=details,
                            predictions=self.predictions(measured.predictions), **fields)

    def ann(self, model: torch.nn.Module, accuracy: float, macs: float, *, predictions: torch.Tensor,
            extra: dict | None = None) -> ResultRow:
        """A non-spiking row of a compressed ANN (MACs per image on the 45 nm op model); never a headline.
        `predictions`: the class it predicted for each measured image (`training.scored_predictions`)."""
        return self.ctx.row(self.method, "torch", self.arch, timesteps=0, accuracy=accuracy, test_images=self.test_images,
                            ann_accuracy=self.reference.accuracy, params=count_params(model), weight_bits=32, macs_per_image=macs,
                            headline=False, extra={**self.shared, **(extra or {})}, predictions=self.predictions(predictions))


def neuron_parameters(net: SpikingNetwork, digits: int = 4) -> dict[str, list[float]]:
    """The (learnt) threshold and leak of every spiking layer, rounded, for a row's `extra`."""
    return {"thresholds": [round(float(t), digits) for t in net.thresholds.detach()],
            "leaks": [round(float(v), digits) for v in net.leaks.detach()]}


@dataclass(frozen=True)
class SnnTuning:
    """Surrogate-gradient training settings: global batch, weight and neuron (threshold/leak)
    learning rates, images per epoch (0 = all), validation images per epoch (0 = all), device."""

    batch_size: int
    lr: float
    neuron_lr: float
    train_subset: int
    val_subset: int
    device: str


def finetune(net: SpikingNetwork, data: Any, timesteps: int, epochs: int, tuning: SnnTuning, *, seed: int, checkpoint: Path,
             on_epoch: Callable | None, desc: str, hooks: tuple[Hook | None, Hook | None] = (None, None)) -> None:
    """Train `net` in place at `timesteps` on `data.train` (validated on `data.val`); resumable from `checkpoint`."""
    before_step, after_step = hooks
    train_snn(net, data.train, data.val, timesteps=timesteps, epochs=epochs, batch_size=tuning.batch_size, lr=tuning.lr,
              neuron_lr=tuning.neuron_lr, seed=seed, train_subset=tuning.train_subset, val_subset=tuning.val_subset,
              device=tuning.device, before_step=before_step, after_step=after_step, on_epoch=on_epoch, desc=desc,
              checkpoint=checkpoint)


@dataclass(frozen=True)
class Schedule:
    """Temporal pruning: `first_epochs` at timesteps[0], then `step_epochs` at each lower T."""

    timesteps: list[int]
    first_epochs: int
    step_epochs: int


def lower_timesteps(net: SpikingNetwork, data: Any, schedule: Schedule, tuning: SnnTuning, *, seed: int, checkpoints: str,
                    run_at: Callable[[int], contextlib.AbstractContextManager[StageRun]],
                    on_trained: Callable[[StageRun, int, int], None], hooks: tuple[Hook | None, Hook | None] = (None, None),
                    label: str = "", desc: str = "snn", metric_prefix: str = "") -> None:
    """Train `net` in place along the schedule; after each T, `on_trained(run, timesteps, epochs)`.

    Step k trains with seed + k and checkpoints to `<checkpoints>T<timesteps>.pt`; its epochs are
    logged to `run_at(timesteps)` (epoch numbers continue across the steps).
    """
    offset = 0
    for step, timesteps in enumerate(schedule.timesteps):
        epochs = schedule.first_epochs if step == 0 else schedule.step_epochs
        with run_at(timesteps) as run:
            finetune(net, data, timesteps, epochs, tuning, seed=seed + step, checkpoint=Path(f"{checkpoints}T{timesteps}.pt"),
                     on_epoch=log_snn_epoch(run, label=label, prefix=metric_prefix, offset=offset), desc=desc, hooks=hooks)
            offset += epochs
            on_trained(run, timesteps, epochs)


def compare_with_snntorch(net: SpikingNetwork, test: tuple[torch.Tensor, torch.Tensor], timesteps: int,
                          input_shape: tuple[int, ...]) -> tuple[SnnMeasurement, dict]:
    """The SNN through snntorch (`Leaky`, learnable beta/threshold) vs our engine on the same images."""
    from spikebench.backends.snntorch_leaky import build_snntorch_leaky

    x, y = test
    fanouts = fanout_maps(net, input_shape)
    engine = simulate(net, x, timesteps, fanouts=fanouts)
    other = simulate(build_snntorch_leaky(net), x, timesteps, fanouts=fanouts, progress="snntorch")
    predictions, reference = other.predictions(), engine.predictions()
    metrics = snn_metrics_per_step(net, input_shape, other.spikes_per_step, other.synops_per_step, len(x))[timesteps - 1]
    engine_spikes = sum(float(s.sum()) for s in engine.spikes_per_step)
    other_spikes = sum(float(s.sum()) for s in other.spikes_per_step)
    comparison = {
        "prediction_agreement": float((predictions == reference).float().mean()),
        "engine_accuracy": float((reference == y).float().mean()),
        "spike_count_engine": engine_spikes,
        "spike_count_library": other_spikes,
        "spike_count_relative_difference": abs(other_spikes - engine_spikes) / max(engine_spikes, 1.0),
        "snntorch_neuron": "snn.Leaky(learn_beta=True, learn_threshold=True) + (1 - beta) theta s[t-1] reset-order current",
    }
    return SnnMeasurement(float((predictions == y).float().mean()), metrics, predictions), comparison
