"""A step-by-step SNN over library neurons: the reference way the libraries are used.

`StepLoopNetwork` runs every layer once per timestep (the first layer included, as in
the libraries' tutorials) and calls a library neuron between synaptic layers. Neuron
adapters implement `reset()` and `step(current) -> spikes` and say which reset modes
they reproduce exactly (`RESETS`).
"""

from __future__ import annotations

import copy
import os
from typing import Protocol

import torch
from torch import nn

from spikebench.errors import ModelError
from spikebench.spiking import SimulationResult, SpikingNetwork

LIBRARIES = ("snntorch", "norse", "spikingjelly")


class LibraryNeuron(Protocol):
    def reset(self) -> None: ...

    def step(self, current: torch.Tensor) -> torch.Tensor: ...


class StepLoopNetwork(nn.Module):
    """`net`'s layers (copied) with one library neuron per spiking layer, stepped through time."""

    def __init__(self, net: SpikingNetwork, neurons: list[LibraryNeuron], library: str) -> None:
        super().__init__()
        self.layers = copy.deepcopy(net.layers)
        for layer in self.layers:  # plain NCHW modules, as a library user builds them
            if isinstance(layer, nn.Conv2d):
                layer.to(memory_format=torch.contiguous_format)
        self.synaptic = list(net.synaptic)
        self.neurons = neurons
        self.library = library
        for k, neuron in enumerate(neurons):
            if isinstance(neuron, nn.Module):
                self.add_module(f"neuron{k}", neuron)

    @torch.no_grad()
    def forward(self, x: torch.Tensor, timesteps: int, *, record_neurons: bool = False,
                fanouts: list[torch.Tensor] | None = None) -> SimulationResult:
        for neuron in self.neurons:
            neuron.reset()
        last = self.synaptic[-1]
        membrane, acc = [], None
        spikes_per_step = [torch.zeros(timesteps) for _ in self.neurons]
        synops_per_step = [torch.zeros(timesteps) for _ in self.neurons] if fanouts is not None else None
        counts: list[torch.Tensor | int] = [0 for _ in self.neurons]
        for t in range(timesteps):
            h = x
            k = 0
            for index, layer in enumerate(self.layers):
                h = layer(h)
                if index == last:
                    acc = h if acc is None else acc + h
                elif index in self.synaptic:
                    h = self.neurons[k].step(h)
                    spikes_per_step[k][t] = h.sum()
                    if synops_per_step is not None:
                        synops_per_step[k][t] = (h.flatten(1) @ fanouts[k].to(h)).sum()
                    if record_neurons:
                        counts[k] = counts[k] + h
                    k += 1
            membrane.append(acc)
        return SimulationResult(torch.stack(membrane), spikes_per_step, synops_per_step, counts if record_neurons else None)


def build_backend(library: str, net: SpikingNetwork) -> StepLoopNetwork:
    """The step-loop network of `library` for `net` (ModelError where its neuron cannot express `net`)."""
    os.environ.setdefault("MPLCONFIGDIR", os.path.join(os.getcwd(), ".mplconfig"))  # snntorch/spikingjelly import matplotlib
    if library == "snntorch":
        from spikebench.backends.snntorch_backend import make_neurons
    elif library == "norse":
        from spikebench.backends.norse_backend import make_neurons
    elif library == "spikingjelly":
        from spikebench.backends.spikingjelly_backend import make_neurons
    else:
        raise ModelError(f"unknown SNN library {library!r}; one of {', '.join(LIBRARIES)}")
    thresholds = [float(t) for t in net.thresholds]
    leaks = [float(v) for v in net.leaks[:-1]]
    if float(net.leaks[-1]) != 1.0:
        raise ModelError(f"{library} backend: the output layer must integrate without leak (leak 1.0), got {float(net.leaks[-1])}")
    if net.v_init:
        raise ModelError(f"{library} backend: initial membrane potential {net.v_init} is not supported (only 0)")
    return StepLoopNetwork(net, make_neurons(thresholds, leaks, net.reset), library)
