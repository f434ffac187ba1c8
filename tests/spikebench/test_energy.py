"""Op counts against hand-counted tiny networks, and the energy model."""

from __future__ import annotations

import pytest
import torch

from spikebench.energy import E_AC_J, E_MAC_J, fanout_maps, first_layer_macs, footprint_bytes, snn_metrics_per_step
from spikebench.spiking import SpikingNetwork

CONV = {"type": "conv", "in_channels": 1, "out_channels": 1, "kernel_size": 3, "stride": 1, "padding": 1, "bias": False}


def conv_net(second: dict, extra: list[dict] | None = None) -> SpikingNetwork:
    layers = [CONV, *(extra or []), second, {"type": "flatten"}, {"type": "linear", "in_features": 9 if not extra else 1, "out_features": 2, "bias": False}]
    net = SpikingNetwork(layers, [1.0] * (len([x for x in layers if x["type"] in ("conv", "linear")]) - 1) + [None])
    with torch.no_grad():
        for layer in net.layers:
            if hasattr(layer, "weight"):
                layer.weight.fill_(1.0)
    return net


def test_conv_fanout_counts_borders_and_skips_zero_weights():
    net = conv_net(dict(CONV))
    (fanout, _) = fanout_maps(net, (1, 3, 3))
    # 3x3 kernel, padding 1 on a 3x3 map: corner neurons reach 4 outputs, edges 6, the centre 9
    assert fanout.view(3, 3).tolist() == [[4, 6, 4], [6, 9, 6], [4, 6, 4]]
    with torch.no_grad():
        net.layers[1].weight[0, 0, 0, 0] = 0.0  # top-left tap: output (h, w) reads input (h-1, w-1)
    (fanout, _) = fanout_maps(net, (1, 3, 3))
    assert fanout.view(3, 3).tolist() == [[3, 5, 4], [5, 8, 6], [4, 6, 4]]


def test_linear_and_pooled_fanout():
    net = conv_net({"type": "conv", "in_channels": 1, "out_channels": 1, "kernel_size": 1, "stride": 1, "padding": 0, "bias": False},
                   extra=[{"type": "avgpool", "kernel_size": 3}])
    first, second = fanout_maps(net, (1, 3, 3))
    assert first.tolist() == [1.0] * 9  # every pixel of the 3x3 pool window reaches the one 1x1-conv output
    assert second.tolist() == [2.0]  # one neuron feeding 2 linear outputs
    with torch.no_grad():
        net.layers[-1].weight[1, 0] = 0.0
    assert fanout_maps(net, (1, 3, 3))[1].tolist() == [1.0]


def test_synops_are_spikes_times_fanout():
    torch.manual_seed(0)
    net = conv_net(dict(CONV))
    x = torch.rand(4, 1, 3, 3) * 2
    fanouts = fanout_maps(net, (1, 3, 3))
    with torch.no_grad():
        result = net(x, 10, record_neurons=True, fanouts=fanouts)
    for counts, fanout, synops in zip(result.neuron_counts, fanouts, result.synops_per_step, strict=True):
        assert float(synops.sum()) == pytest.approx(float((counts.flatten(1) * fanout).sum()))
    metrics = snn_metrics_per_step(net, (1, 3, 3), result.spikes_per_step, result.synops_per_step, 4)[-1]
    assert metrics.macs == first_layer_macs(net, (1, 3, 3)) == 9 * 9  # 9 outputs x 9 taps, computed once per image
    assert metrics.energy_j == pytest.approx(E_MAC_J * metrics.macs + E_AC_J * metrics.synops)
    total_spikes = sum(float(c.sum()) for c in result.neuron_counts) / 4
    assert metrics.spikes == pytest.approx(total_spikes)
    assert metrics.activation_sparsity == pytest.approx(1 - total_spikes / (18 * 10))


def test_footprint_counts_weights_at_their_bit_width():
    net = conv_net(dict(CONV))
    weights = 9 + 9 + 9 * 2
    assert footprint_bytes(net, 32) == weights * 4 + 4 * 5
    assert footprint_bytes(net, 4) == (weights * 4 + 7) // 8 + 4 * 5
