"""NIR round trip: the converted digits CNN exported to NIR and re-imported through snntorch."""

from __future__ import annotations

import copy

import pytest
import torch

from spikebench.convert import convert
from spikebench.errors import ModelError
from spikebench.nir_interchange import imported_membrane, read_graph, snntorch_from_nir, to_nir, write_graph


@pytest.fixture(scope="module")
def converted(digits_cnn, digits_data):
    return convert(digits_cnn, digits_data.calibration(200, 0), 99.9, "subtract")


def test_graph_has_one_node_per_layer_and_if_neurons(converted):
    graph = to_nir(converted, (1, 8, 8), 16)
    kinds = [type(graph.nodes[b]).__name__ for _, b in graph.edges]
    assert kinds.count("IF") == len(converted.synaptic) - 1
    assert kinds.count("Conv2d") + kinds.count("Affine") == len(converted.synaptic)
    assert kinds[-2] == "Affine" and kinds[-1] == "Output"  # membrane read-out: no neuron after the last layer
    assert graph.metadata["timesteps"] == 16


def test_round_trip_through_a_file_and_snntorch_predicts_like_the_engine(converted, digits_data, tmp_path):
    path = tmp_path / "model.nir"
    write_graph(to_nir(converted, (1, 8, 8), 16), path)
    module = snntorch_from_nir(read_graph(path))
    x = digits_data.test[0]
    with torch.no_grad():
        ours = converted(x, 16).membrane[-1]
    theirs = imported_membrane(module, x, 16, batch_size=100)
    agree = float((ours.argmax(1) == theirs.argmax(1)).float().mean())
    assert agree >= 0.99
    torch.testing.assert_close(theirs, ours, rtol=1e-3, atol=0.05)


def test_leaky_or_zero_reset_networks_are_refused(converted):
    zero = copy.deepcopy(converted)
    zero.reset = "zero"
    with pytest.raises(ModelError, match="reset"):
        to_nir(zero, (1, 8, 8), 8)
    leaky = copy.deepcopy(converted)
    leaky.leaks.fill_(0.9)
    with pytest.raises(ModelError, match="leak"):
        to_nir(leaky, (1, 8, 8), 8)


def test_unreadable_file_is_a_one_line_error(tmp_path):
    bad = tmp_path / "bad.nir"
    bad.write_bytes(b"not hdf5")
    with pytest.raises(ModelError, match="bad.nir"):
        read_graph(bad)
