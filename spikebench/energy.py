"""Operation counts and the 45 nm energy model (Horowitz, ISSCC 2014).

  E_ANN = E_MAC * MACs
  E_SNN = E_MAC * MACs(analog first layer) + E_AC * SOPs(spiking layers)

with E_MAC = 4.6 pJ (fp32 multiply-accumulate) and E_AC = 0.9 pJ (fp32 add). Memory
access energy is ignored by this model, as in the papers it is compared with.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

E_MAC_J = 4.6e-12
E_AC_J = 0.9e-12


def energy_joules(macs: float, synops: float) -> float:
    """Compute energy of one inference under the 45 nm op model."""
    return E_MAC_J * macs + E_AC_J * synops


@dataclass(frozen=True)
class OpCounts:
    """Per-image op counts (the `ops` of `spikebench.results.RowContext.row`) and their op-model energy."""

    spikes: float
    synops: float
    macs: float

    @property
    def energy_j(self) -> float:
        return energy_joules(self.macs, self.synops)


class MacCounter:
    """Dense multiply-accumulates per image of the synaptic layers (Conv2d, Linear).

    Defined as in NeuroBench's dense synaptic operations: every weight of a layer is
    used once per output position, whatever the input value.
    """

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.per_layer: dict[str, int] = {}

    def count(self, input_shape: tuple[int, ...]) -> int:
        hooks = []
        for name, module in self.model.named_modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                hooks.append(module.register_forward_hook(self._hook(name)))
        try:
            param = next(self.model.parameters())
            with torch.no_grad():
                self.model(torch.zeros((1, *input_shape), dtype=param.dtype, device=param.device))
        finally:
            for hook in hooks:
                hook.remove()
        return sum(self.per_layer.values())

    def _hook(self, name: str):
        def record(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
            if isinstance(module, nn.Conv2d):
                per_output = module.in_channels // module.groups * module.kernel_size[0] * module.kernel_size[1]
            else:
                per_output = module.in_features
            self.per_layer[name] = int(output[0].numel() * per_output)

        return record


def count_params(model: nn.Module) -> tuple[int, int]:
    """(weights + biases, non-zero ones) of the synaptic layers (Conv2d, Linear).

    The one parameter count of every result row. Neuron parameters (learnt thresholds
    and leaks, a handful per layer) and normalisation statistics are not synapses and
    are left out, so an ANN and the SNNs made from it are counted alike.
    """
    tensors = [p for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear)) for p in (m.weight, m.bias) if p is not None]
    return sum(t.numel() for t in tensors), sum(int(torch.count_nonzero(t)) for t in tensors)


# --- spiking networks: NeuroBench-style metrics ---------------------------------------
#
# Definitions (as NeuroBench, with the event-driven reading of pooling stated):
#   spikes/image     spikes emitted by each spiking layer over all T steps, per image.
#   SOPs (ACs)       every spike costs one accumulate per *non-zero* outgoing synapse, so
#                    SOPs = sum over neurons of spikes x fan-out, with fan-out counted exactly
#                    per neuron (conv borders and zero padding included). A spike feeding an
#                    average pool reaches the next layer through its pooled position: its
#                    fan-out is that position's fan-out (the 1/k^2 scale lives in the weights).
#                    NeuroBench counts a pooled (non-binary) input once per window as an
#                    "effective MAC"; our per-spike count is >= that, equal without pooling.
#   first-layer MACs the analog input is a constant current: the first layer's dense MACs are
#                    computed once per image and held (not once per step).
#   bias currents    a bias adds to its neuron every step; those adds are reported apart
#                    (`bias_adds_per_image`), not in SOPs, as NeuroBench does not count them.
#   activation sparsity  1 - spikes / (spiking neurons x T), over layers, steps and images.
#   footprint        bytes of the weights and biases at `weight_bits`, plus one float32
#                    threshold and leak per spiking layer (NeuroBench: parameters + buffers).


def fanout_maps(net: nn.Module, input_shape: tuple[int, ...]) -> list[torch.Tensor]:
    """Per spiking layer of a `SpikingNetwork`: each neuron's number of non-zero outgoing synapses.

    Computed exactly by differentiating sum(next_layer_indicator(pool(x))) with respect to
    the layer's output, where the indicator layer has weights 1 where W != 0 and the
    pool sums instead of averaging. Returns flattened (neurons,) float tensors.
    """
    shapes = neuron_shapes(net, input_shape)
    with torch.enable_grad():  # callers may be inside no_grad
        return [_fanout(net, k, shapes[k]) for k in range(len(net.synaptic) - 1)]


def _fanout(net: nn.Module, k: int, shape: tuple[int, ...]) -> torch.Tensor:
    import torch.nn.functional as F

    x = torch.zeros((1, *shape), requires_grad=True)
    y = x
    for follower in net.layers[net.synaptic[k] + 1 : net.synaptic[k + 1]]:
        if isinstance(follower, nn.AvgPool2d):
            kernel = follower.kernel_size if isinstance(follower.kernel_size, int) else follower.kernel_size[0]
            y = F.avg_pool2d(y, kernel) * kernel * kernel
        else:
            y = follower(y)
    target = net.layers[net.synaptic[k + 1]]
    indicator = (target.weight.detach() != 0).to(torch.float32)
    if isinstance(target, nn.Conv2d):
        y = F.conv2d(y, indicator, None, target.stride, target.padding)
    else:
        y = F.linear(y, indicator)
    (grad,) = torch.autograd.grad(y.sum(), x)
    return grad.detach().flatten()


def neuron_shapes(net: nn.Module, input_shape: tuple[int, ...]) -> list[tuple[int, ...]]:
    """Output shape (without batch) of every synaptic layer of a `SpikingNetwork`."""
    shapes = []
    with torch.no_grad():
        x = torch.zeros((1, *input_shape))
        for index, layer in enumerate(net.layers):
            x = layer(x)
            if index in net.synaptic:
                shapes.append(tuple(x.shape[1:]))
    return shapes


def first_layer_macs(net: nn.Module, input_shape: tuple[int, ...]) -> int:
    """Dense MACs of the first synaptic layer (analog input), per image."""
    first = net.layers[net.synaptic[0]]
    out = neuron_shapes(net, input_shape)[0]
    fan_in = first.weight[0].numel()
    return int(torch.tensor(out).prod()) * fan_in


def footprint_bytes(net: nn.Module, weight_bits: int = 32) -> int:
    """Bytes of weights and biases at `weight_bits`, plus float32 threshold and leak per spiking layer."""
    synaptic = sum(p.numel() for name, p in net.named_parameters() if name.startswith("layers.")) + \
        sum(b.numel() for name, b in net.named_buffers() if name.startswith("layers."))
    neuron_params = 2 * (len(net.synaptic) - 1) + 1
    return (synaptic * weight_bits + 7) // 8 + 4 * neuron_params


@dataclass
class SnnMetrics:
    """Per-image metrics of an SNN after T steps (lists are per spiking layer)."""

    timesteps: int
    spikes_per_layer: list[float]
    synops_per_layer: list[float]
    macs: float
    neurons_per_layer: list[int]
    bias_adds: float

    @property
    def spikes(self) -> float:
        return float(sum(self.spikes_per_layer))

    @property
    def synops(self) -> float:
        return float(sum(self.synops_per_layer))

    @property
    def activation_sparsity(self) -> float:
        slots = sum(self.neurons_per_layer) * self.timesteps
        return 1.0 - self.spikes / slots if slots else 1.0

    @property
    def energy_j(self) -> float:
        return energy_joules(self.macs, self.synops)

    def as_extra(self) -> dict:
        """Details for a result row's `extra`."""
        return {
            "spikes_per_layer": [round(v, 2) for v in self.spikes_per_layer],
            "synops_per_layer": [round(v, 1) for v in self.synops_per_layer],
            "activation_sparsity": round(self.activation_sparsity, 5),
            "bias_adds_per_image": round(self.bias_adds, 1),
        }


def snn_metrics(net: nn.Module, input_shape: tuple[int, ...], timesteps: int, spikes_per_layer: list[float],
                synops_per_layer: list[float]) -> SnnMetrics:
    """Per-image metrics of `net` after `timesteps` steps from per-image spike and SOP totals."""
    shapes = neuron_shapes(net, input_shape)
    neurons = [int(torch.tensor(s).prod()) for s in shapes[:-1]]
    biased = sum(int(torch.tensor(s).prod()) for s, index in zip(shapes, net.synaptic, strict=True)
                 if net.layers[index].bias is not None and index != net.synaptic[0])
    return SnnMetrics(timesteps, [float(v) for v in spikes_per_layer], [float(v) for v in synops_per_layer],
                      float(first_layer_macs(net, input_shape)), neurons, float(biased * timesteps))


def snn_metrics_per_step(net: nn.Module, input_shape: tuple[int, ...], spikes_per_step: list[torch.Tensor],
                         synops_per_step: list[torch.Tensor], images: int | torch.Tensor, at: list[int] | None = None) -> list[SnnMetrics]:
    """Metrics after every T = 1..T_max from one simulation's per-step totals.

    images: how many images the totals of each step were summed over (a number, or a
        (T,) tensor when not every image ran every step).
    at: only these T (default: every T), in this order.
    """
    spikes = torch.stack([(s.double() / images).cumsum(0) for s in spikes_per_step])  # (layers, T)
    synops = torch.stack([(s.double() / images).cumsum(0) for s in synops_per_step])
    at = list(range(1, spikes.shape[1] + 1)) if at is None else at
    return [snn_metrics(net, input_shape, t, spikes[:, t - 1].tolist(), synops[:, t - 1].tolist()) for t in at]
