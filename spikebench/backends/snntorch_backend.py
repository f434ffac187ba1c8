"""snntorch 1.0.0 neurons: `Leaky(beta=leak)` is IF for leak 1; it fires on v > threshold.

snntorch applies the reset of step t-1 at step t (reset_delay); the spike train equals
the engine's (reset right after the spike) except on exact threshold ties.
"""

from __future__ import annotations

import snntorch as snn
import torch


class SnntorchNeuron:
    def __init__(self, threshold: float, leak: float, reset: str) -> None:
        self.cell = snn.Leaky(beta=leak, threshold=threshold, reset_mechanism=reset)
        self.mem: torch.Tensor | None = None

    def reset(self) -> None:
        self.mem = None

    def step(self, current: torch.Tensor) -> torch.Tensor:
        if self.mem is None:
            self.mem = torch.zeros_like(current)
        spikes, self.mem = self.cell(current, self.mem)
        return spikes


def make_neurons(thresholds: list[float], leaks: list[float], reset: str) -> list[SnntorchNeuron]:
    return [SnntorchNeuron(t, leak, reset) for t, leak in zip(thresholds, leaks, strict=True)]
