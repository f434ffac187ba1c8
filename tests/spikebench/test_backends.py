"""The converted digits CNN in snntorch, norse, spikingjelly and brian2 against the engine."""

from __future__ import annotations

import copy

import pytest
import torch

from spikebench.backends import build_backend
from spikebench.backends.brian2_if import compare_head
from spikebench.convert import convert
from spikebench.errors import ModelError
from spikebench.spiking import SpikingNetwork


@pytest.fixture(scope="module")
def converted(digits_cnn, digits_data) -> SpikingNetwork:
    return convert(digits_cnn, digits_data.calibration(200, 0), 99.9, "subtract")


@pytest.mark.parametrize("library,reset", [("snntorch", "subtract"), ("spikingjelly", "subtract"), ("norse", "zero"),
                                           ("snntorch", "zero"), ("spikingjelly", "zero")])
def test_library_matches_engine_spike_for_spike(converted, digits_data, library, reset):
    net = copy.deepcopy(converted)
    net.reset = reset
    x = digits_data.test[0][:120]
    with torch.no_grad():
        ours = net(x, 16, record_neurons=True)
        theirs = build_backend(library, net)(x, 16, record_neurons=True)
    identical = float((ours.predictions_per_step() == theirs.predictions_per_step()).float().mean())
    assert identical >= 0.99
    for a, b in zip(ours.neuron_counts, theirs.neuron_counts, strict=True):
        # the libraries firing on '>' may differ from the engine's '>=' only on exact ties
        assert int((a - b).abs().max()) <= 1 and int((a != b).sum()) <= a.numel() // 1000
    torch.testing.assert_close(ours.membrane, theirs.membrane, rtol=1e-4, atol=1e-3)


def test_norse_refuses_leaky_networks(converted):
    leaky = SpikingNetwork(converted.specs, converted.threshold_list(), [0.9] * 3 + [1.0])
    with pytest.raises(ModelError, match="norse backend"):
        build_backend("norse", leaky)
    with pytest.raises(ModelError, match="unknown SNN library"):
        build_backend("nest", converted)


def test_brian2_head_spike_counts_equal_the_engine(converted, digits_data):
    comparison = compare_head(converted, digits_data.test[0][:6], 12)
    assert comparison.head_layers == [5, 6]
    assert sum(int(c.sum()) for c in comparison.engine_counts) > 0
    assert comparison.differing_counts() == [0]
    assert comparison.max_membrane_difference() < 1e-9


def test_side_by_side_run_compares_counts_batch_by_batch(converted, digits_data):
    from spikebench.backends.side_by_side import run_side_by_side
    from spikebench.energy import fanout_maps

    x = digits_data.test[0][:90]
    lower = copy.deepcopy(converted)  # a simulator that really differs: thresholds 20% lower
    lower.thresholds.mul_(0.8)
    fanouts = fanout_maps(converted, digits_data.input_shape)
    runs = run_side_by_side({"engine": converted, "same": copy.deepcopy(converted), "lower": lower}, x, 8, batch_size=40, fanouts=fanouts)
    with torch.no_grad():
        whole = converted(x, 8, record_neurons=True)
        lower_whole = lower(x, 8, record_neurons=True)
    assert runs["engine"].predictions.shape == (8, 90)  # batches of 40, 40 and 10 stitched in order
    assert torch.equal(runs["engine"].predictions, whole.predictions_per_step())
    assert runs["same"].max_count_difference == [0, 0, 0] and runs["same"].differing_counts == [0, 0, 0]
    expected_max = [int((a - b).abs().max()) for a, b in zip(lower_whole.neuron_counts, whole.neuron_counts, strict=True)]
    expected_differing = [int((a != b).sum()) for a, b in zip(lower_whole.neuron_counts, whole.neuron_counts, strict=True)]
    assert runs["lower"].max_count_difference == expected_max and sum(expected_differing) > 0
    assert runs["lower"].differing_counts == expected_differing
    assert runs["engine"].spikes_per_layer == [int(c.sum()) for c in whole.neuron_counts]
