"""snntorch `Leaky` neurons carrying an SNN's learnt per-layer leak (beta) and threshold.

For networks trained DIET-SNN style (per-layer learnable threshold and leak), the snntorch
network holds its own learnable `beta` and `threshold` parameters (`learn_beta`,
`learn_threshold`), initialised to the engine's learnt values, so it can be evaluated or
trained further in snntorch.

Reset timing: snntorch's `Leaky` (default `reset_delay=True`) subtracts the threshold of
the spike at step t-1 at step t, after the leak:   v_t = beta v_{t-1} + I_t - theta s_{t-1}
(DIET-SNN's own form), while the engine resets right after the spike, before the leak:
v_t = beta (v_{t-1} - theta s_{t-1}) + I_t. The two differ by (1 - beta) theta s_{t-1}, so
each neuron gets that as a self-feedback current on top of its synaptic input; with it the
snntorch membrane equals the engine's (pre-reset) membrane for any beta, saturated neurons
included. For beta = 1 (integrate-and-fire) the correction is zero. snntorch fires on
v > threshold, the engine on v >= threshold; they differ on exact ties (and float rounding
of the differently ordered sums) only.
"""

from __future__ import annotations

import os

import torch
from torch import nn

from spikebench.backends.steploop import StepLoopNetwork
from spikebench.errors import ModelError
from spikebench.spiking import SpikingNetwork


class SnntorchLeakyNeuron(nn.Module):
    """One spiking layer as an `snn.Leaky` with learnable beta and threshold."""

    def __init__(self, threshold: float, leak: float, reset: str) -> None:
        super().__init__()
        import snntorch as snn

        self.cell = snn.Leaky(beta=torch.tensor(float(leak)), threshold=torch.tensor(float(threshold)), learn_beta=True,
                              learn_threshold=True, reset_mechanism=reset)
        self.subtract = reset == "subtract"
        self.mem: torch.Tensor | None = None
        self.spikes: torch.Tensor | None = None

    def reset(self) -> None:
        self.mem = None
        self.spikes = None

    def step(self, current: torch.Tensor) -> torch.Tensor:
        if self.mem is None:
            self.mem = torch.zeros_like(current)
        elif self.subtract and self.spikes is not None:  # move snntorch's delayed reset before the leak (engine dynamics)
            current = current + (1.0 - self.cell.beta.clamp(0, 1)) * self.cell.threshold * self.spikes
        self.spikes, self.mem = self.cell(current, self.mem)
        return self.spikes


def build_snntorch_leaky(net: SpikingNetwork) -> StepLoopNetwork:
    """`net` as a step-by-step snntorch network with one learnable `Leaky` per spiking layer."""
    os.environ.setdefault("MPLCONFIGDIR", os.path.join(os.getcwd(), ".mplconfig"))  # snntorch imports matplotlib
    if float(net.leaks.detach()[-1]) != 1.0:
        raise ModelError(f"snntorch: the output layer must integrate without leak (leak 1.0), got {float(net.leaks.detach()[-1])}")
    if net.v_init:
        raise ModelError(f"snntorch: initial membrane potential {net.v_init} is not supported (only 0)")
    neurons = [SnntorchLeakyNeuron(float(t), float(v), net.reset) for t, v in zip(net.thresholds.detach(), net.leaks.detach()[:-1], strict=True)]
    return StepLoopNetwork(net, neurons, "snntorch").eval()
