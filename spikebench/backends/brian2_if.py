"""brian2 reference for the IF dynamics: the fully connected head of a converted SNN.

The head is every linear layer after the last conv layer (for an MLP: every linear layer
after the first). Its input is the spike train of the spiking layer just before it, taken
from the engine; average pooling and flatten in between are linear, so they are folded
into the synaptic weights (a spike at a pooled position carries w / k^2). brian2 then
simulates one IF `NeuronGroup` per head layer with event-driven `Synapses`
(on_pre: v_post += w) and the bias as a constant current every step, in float64 with
numpy code generation. Within a step the schedule follows the SNN contract (no synaptic
delay): input spikes -> synapses -> bias -> threshold -> reset -> next layer's synapses.
The engine runs the same network in float64, and every head neuron's spike count and the
output membrane potentials are compared.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch

from spikebench.errors import ModelError
from spikebench.spiking import SpikingNetwork


@dataclass
class Brian2Comparison:
    """Spike counts per neuron of the head's spiking layers, in brian2 and in the engine."""

    images: int
    timesteps: int
    head_layers: list[int]  # indices into meta["layers"] of the simulated linear layers
    brian2_counts: list[np.ndarray]  # per spiking head layer: (images, neurons)
    engine_counts: list[np.ndarray]
    brian2_membrane: np.ndarray  # (images, classes) after T steps
    engine_membrane: np.ndarray

    def max_count_difference(self) -> list[int]:
        return [int(np.abs(b - e).max()) for b, e in zip(self.brian2_counts, self.engine_counts, strict=True)]

    def differing_counts(self) -> list[int]:
        return [int((b != e).sum()) for b, e in zip(self.brian2_counts, self.engine_counts, strict=True)]

    def max_membrane_difference(self) -> float:
        return float(np.abs(self.brian2_membrane - self.engine_membrane).max())

    def identical_predictions(self) -> float:
        return float((self.brian2_membrane.argmax(1) == self.engine_membrane.argmax(1)).mean())

    def summary(self) -> dict:
        return {
            "images": self.images, "timesteps": self.timesteps, "head_layers": self.head_layers,
            "neurons_compared": [int(c.size) for c in self.engine_counts],
            "engine_spikes": [int(c.sum()) for c in self.engine_counts],
            "brian2_spikes": [int(c.sum()) for c in self.brian2_counts],
            "differing_counts": self.differing_counts(), "max_count_difference": self.max_count_difference(),
            "max_membrane_difference": self.max_membrane_difference(), "identical_predictions": self.identical_predictions(),
        }


def head_start(net: SpikingNetwork) -> int:
    """Position in `net.synaptic` of the head's first layer (all later synaptic layers are linear)."""
    kinds = [net.specs[i]["type"] for i in net.synaptic]
    first = len(kinds)
    while first > 0 and kinds[first - 1] == "linear":
        first -= 1
    first = max(first, 1)  # the head is fed by spikes, so at least one spiking layer precedes it
    if first >= len(kinds):
        raise ModelError("brian2 check: the SNN needs a spiking layer followed by at least one linear layer")
    return first


def _folded_weight(net: SpikingNetwork, k: int, source_shape: tuple[int, ...]) -> np.ndarray:
    """(targets, sources) weights from spiking layer k-1's neurons through pool/flatten into synaptic layer k."""
    followers = net.layers[net.synaptic[k - 1] + 1 : net.synaptic[k]]
    weight = net.layers[net.synaptic[k]].weight.detach().double()
    n_source = int(np.prod(source_shape))
    columns = []
    with torch.no_grad():
        for start in range(0, n_source, 1024):
            basis = torch.zeros((min(1024, n_source - start), n_source), dtype=torch.float64)
            basis[torch.arange(len(basis)), torch.arange(start, start + len(basis))] = 1.0
            h = basis.view(len(basis), *source_shape)
            for follower in followers:
                h = follower(h)
            columns.append(h.flatten(1) @ weight.T)  # (chunk, targets)
    return torch.cat(columns).T.numpy()


def compare_head(net: SpikingNetwork, x: torch.Tensor, timesteps: int) -> Brian2Comparison:
    """Run the head in brian2 on the engine's input spikes for every image of `x` and compare."""
    import brian2 as b2

    b2.prefs.codegen.target = "numpy"
    engine = copy.deepcopy(net).double().eval()
    first = head_start(engine)
    source_k = first - 1
    captured: list[torch.Tensor] = []

    def grab(k: int, spikes: torch.Tensor) -> None:
        if k == source_k:
            captured.append(spikes.detach().clone())

    with torch.no_grad():
        result = engine(x.double(), timesteps, record_neurons=True, spike_hook=grab)
    source = torch.cat(captured).flatten(2).numpy()  # (T, B, source neurons)
    source_shape = tuple(result.neuron_counts[source_k].shape[1:])
    head = engine.synaptic[first:]
    weights = [_folded_weight(engine, first, source_shape)]
    weights += [engine.layers[i].weight.detach().double().numpy() for i in head[1:]]
    biases = [engine.layers[i].bias.detach().double().numpy() if engine.layers[i].bias is not None else None for i in head]
    thresholds = [float(engine.thresholds[k]) for k in range(first, len(engine.synaptic) - 1)]

    network, generator, groups, monitors = _head_network(b2, weights, biases, thresholds, source.shape[2], engine.reset)
    counts = [np.zeros((x.shape[0], g.N), dtype=np.int64) for g in groups[:-1]]
    membrane = np.zeros((x.shape[0], groups[-1].N))
    for image in range(x.shape[0]):
        network.restore()
        steps, neurons = np.nonzero(source[:, image, :])
        generator.set_spikes(neurons, steps * b2.ms)
        network.run(timesteps * b2.ms)
        for m, monitor in enumerate(monitors):
            counts[m][image] = np.asarray(monitor.count[:])
        membrane[image] = np.asarray(groups[-1].v[:])
    engine_counts = [result.neuron_counts[k].flatten(1).numpy().astype(np.int64) for k in range(first, len(engine.synaptic) - 1)]
    return Brian2Comparison(
        images=x.shape[0], timesteps=timesteps, head_layers=head, brian2_counts=counts, engine_counts=engine_counts,
        brian2_membrane=membrane, engine_membrane=result.membrane[-1].numpy(),
    )


def _head_network(b2, weights: list[np.ndarray], biases: list[np.ndarray | None], thresholds: list[float], sources: int, reset: str):
    """The head as a brian2 network fed by a spike generator: (network, generator, neuron groups, spike monitors).

    Per step: synaptic input, then the bias, then threshold and reset (the engine's order); the
    last group integrates without firing. The network is stored, to be restored for every image.
    """
    b2.start_scope()
    b2.defaultclock.dt = 1 * b2.ms
    generator = b2.SpikeGeneratorGroup(sources, np.array([], dtype=int), np.array([]) * b2.ms)
    groups, objects, previous = [], [generator], generator
    reset_code = {"subtract": "v -= {thr!r}", "zero": "v = 0"}[reset]
    order = 0
    for position, (weight, bias) in enumerate(zip(weights, biases, strict=True)):
        spiking = position < len(thresholds)
        if spiking:
            group = b2.NeuronGroup(weight.shape[0], "v : 1\nb : 1", threshold=f"v >= {thresholds[position]!r}",
                                   reset=reset_code.format(thr=thresholds[position]))
        else:
            group = b2.NeuronGroup(weight.shape[0], "v : 1\nb : 1")
        group.b = 0.0 if bias is None else bias
        synapses = b2.Synapses(previous, group, "w : 1", on_pre="v_post += w")
        targets, source_neurons = np.nonzero(weight)
        synapses.connect(i=source_neurons, j=targets)
        synapses.w = weight[targets, source_neurons]
        synapses.pre.when, synapses.pre.order = "synapses", order
        bias_adder = group.run_regularly("v += b", when="synapses", order=order + 1)
        objects += [group, synapses, bias_adder]
        if spiking:
            group.thresholder["spike"].when, group.thresholder["spike"].order = "synapses", order + 2
            group.resetter["spike"].when, group.resetter["spike"].order = "synapses", order + 3
        groups.append(group)
        previous, order = group, order + 4
    monitors = [b2.SpikeMonitor(g) for g in groups[:-1]]
    network = b2.Network(*objects, *monitors)
    network.store()
    return network, generator, groups, monitors
