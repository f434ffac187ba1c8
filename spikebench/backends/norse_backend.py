"""norse 1.1.0 neurons: `IAFCell`, integrate-and-fire with hard reset to 0, fires on v > threshold.

norse has no soft-reset IF, so an engine network with reset "subtract" runs here with
reset-to-zero neurons; the parity report compares norse with the engine's reset "zero"
run of the same weights (identical neuron) and states the difference to "subtract".
"""

from __future__ import annotations

import torch
from norse.torch import IAFCell, IAFParameters

from spikebench.errors import ModelError


class NorseNeuron:
    def __init__(self, threshold: float) -> None:
        self.cell = IAFCell(p=IAFParameters(v_th=torch.as_tensor(threshold), v_reset=torch.as_tensor(0.0)))
        self.state = None

    def reset(self) -> None:
        self.state = None

    def step(self, current: torch.Tensor) -> torch.Tensor:
        spikes, self.state = self.cell(current, self.state)
        return spikes


def make_neurons(thresholds: list[float], leaks: list[float], reset: str) -> list[NorseNeuron]:
    if any(leak != 1.0 for leak in leaks):
        raise ModelError(f"norse backend: only integrate-and-fire neurons (leak 1.0) are mapped, got leaks {leaks}")
    return [NorseNeuron(t) for t in thresholds]
