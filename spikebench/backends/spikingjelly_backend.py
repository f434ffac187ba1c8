"""spikingjelly 2.0.0 neurons: `IFNode` (single-step mode), soft reset with v_reset=None."""

from __future__ import annotations

import torch
from spikingjelly.activation_based import neuron

from spikebench.errors import ModelError


class SpikingjellyNeuron:
    def __init__(self, threshold: float, reset: str) -> None:
        self.cell = neuron.IFNode(v_threshold=threshold, v_reset=None if reset == "subtract" else 0.0, step_mode="s")

    def reset(self) -> None:
        self.cell.reset()

    def step(self, current: torch.Tensor) -> torch.Tensor:
        return self.cell(current)


def make_neurons(thresholds: list[float], leaks: list[float], reset: str) -> list[SpikingjellyNeuron]:
    if any(leak != 1.0 for leak in leaks):
        raise ModelError(f"spikingjelly backend: only integrate-and-fire neurons (leak 1.0) are mapped, got leaks {leaks}")
    return [SpikingjellyNeuron(t, reset) for t in thresholds]
