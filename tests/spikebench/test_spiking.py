"""The engine against a plain step-by-step reference, its invariances, gradients and checkpoints."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from spikebench.errors import ModelError
from spikebench.spiking import SpikingNetwork, load_snn, save_snn, spike_function

LAYERS = [
    {"type": "conv", "in_channels": 1, "out_channels": 4, "kernel_size": 3, "stride": 1, "padding": 1, "bias": True},
    {"type": "avgpool", "kernel_size": 2},
    {"type": "conv", "in_channels": 4, "out_channels": 6, "kernel_size": 3, "stride": 1, "padding": 1, "bias": False},
    {"type": "flatten"},
    {"type": "linear", "in_features": 6 * 4 * 4, "out_features": 12, "bias": True},
    {"type": "linear", "in_features": 12, "out_features": 5, "bias": True},
]


def make_net(reset: str = "subtract", leaks=None, v_init: float = 0.0) -> SpikingNetwork:
    torch.manual_seed(1)
    net = SpikingNetwork(LAYERS, [0.6, 0.8, 0.7, None], leaks, reset, v_init)
    with torch.no_grad():
        for layer in net.layers:
            if hasattr(layer, "weight"):
                layer.weight.mul_(3.0)
    return net.eval()


def reference(net: SpikingNetwork, x: torch.Tensor, timesteps: int) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """The contract's dynamics written out plainly, one step and one layer at a time."""
    v = [None] * len(net.synaptic)
    membrane, counts = [], [0] * (len(net.synaptic) - 1)
    out = None
    for _ in range(timesteps):
        h, k = x, 0
        for index, layer in enumerate(net.layers):
            h = layer(h)
            if index in net.synaptic:
                leak = float(net.leaks[k])
                if v[k] is None:
                    v[k] = torch.zeros_like(h) + (net.v_init * float(net.thresholds[k]) if k < len(counts) else 0.0)
                v[k] = leak * v[k] + h
                if k == len(counts):
                    out = v[k]
                    break
                spikes = (v[k] >= float(net.thresholds[k])).float()
                v[k] = v[k] - spikes * float(net.thresholds[k]) if net.reset == "subtract" else v[k] * (1 - spikes)
                counts[k] = counts[k] + spikes
                h, k = spikes, k + 1
        membrane.append(out)
    return torch.stack(membrane), counts


@pytest.mark.parametrize("reset,leaks,v_init", [("subtract", None, 0.0), ("zero", None, 0.0), ("subtract", [0.9, 0.8, 1.0, 1.0], 0.5)])
def test_engine_matches_step_by_step_reference(reset, leaks, v_init):
    net = make_net(reset, leaks, v_init)
    x = torch.rand(7, 1, 8, 8)
    with torch.no_grad():
        result = net(x, 12, record_neurons=True)
        expected_membrane, expected_counts = reference(net, x, 12)
    torch.testing.assert_close(result.membrane, expected_membrane, rtol=1e-5, atol=1e-4)
    for got, want in zip(result.neuron_counts, expected_counts, strict=True):
        assert torch.equal(got, want)
    assert sum(float(c.sum()) for c in result.neuron_counts) > 0
    for per_step, counts in zip(result.spikes_per_step, result.neuron_counts, strict=True):
        assert float(per_step.sum()) == float(counts.sum())


def test_chunking_and_horizon_do_not_change_results():
    net = make_net()
    x = torch.rand(9, 1, 8, 8)
    with torch.no_grad():
        whole = net(x, 16, chunk_images=10_000)
        stepwise = net(x, 16, chunk_images=1)
        shorter = net(x, 5)
    # identical spikes; the read-out sums in another order across chunks (float rounding only)
    assert all(torch.equal(a, b) for a, b in zip(whole.spikes_per_step, stepwise.spikes_per_step, strict=True))
    torch.testing.assert_close(whole.membrane, stepwise.membrane)
    torch.testing.assert_close(whole.membrane[:5], shorter.membrane)
    assert all(torch.equal(a[:5], b) for a, b in zip(whole.spikes_per_step, shorter.spikes_per_step, strict=True))


@settings(max_examples=40, deadline=None)
@given(current=st.floats(0.0, 1.0), threshold=st.floats(0.25, 2.0), timesteps=st.integers(1, 64))
def test_soft_reset_if_counts_floor_of_integrated_input(current, threshold, timesteps):
    """IF with reset by subtraction under constant input I < theta fires floor(T I / theta) times."""
    layers = [{"type": "linear", "in_features": 1, "out_features": 1, "bias": False},
              {"type": "linear", "in_features": 1, "out_features": 1, "bias": False}]
    net = SpikingNetwork(layers, [threshold, None]).double().eval()
    with torch.no_grad():
        net.layers[0].weight.fill_(1.0)
        net.layers[1].weight.fill_(1.0)
        result = net(torch.tensor([[current]], dtype=torch.float64), timesteps)
    exact = timesteps * min(current, threshold) / threshold
    count = float(result.spikes_per_step[0].sum())
    assert abs(count - exact) <= 1.0 + 1e-9 and count <= exact + 1e-9
    assert float(result.membrane[-1, 0, 0]) == pytest.approx(count)  # the read-out integrates the spikes


@pytest.mark.parametrize("surrogate", ["fast_sigmoid", "atan"])
def test_surrogate_gradients_reach_weights_threshold_and_leak(surrogate):
    torch.manual_seed(0)
    net = SpikingNetwork(LAYERS, [0.6, 0.8, 0.7, None], [0.9, 0.9, 0.9, 1.0], learn_threshold=True, learn_leak=True, surrogate=surrogate)
    result = net(torch.rand(4, 1, 8, 8), 6)
    result.membrane[-1].sum().backward()
    assert net.layers[0].weight.grad is not None and net.layers[0].weight.grad.abs().sum() > 0
    assert net.thresholds.grad.abs().sum() > 0
    assert net.leaks.grad.abs().sum() > 0


def test_fast_sigmoid_derivative_formula():
    x = torch.tensor([-0.5, 0.0, 0.25], requires_grad=True)
    spikes = spike_function(x, "fast_sigmoid", alpha=2.0)
    spikes.sum().backward()
    assert spikes.tolist() == [0.0, 1.0, 1.0]
    torch.testing.assert_close(x.grad, 1 / (1 + 2.0 * x.detach().abs()) ** 2)


def test_checkpoint_round_trip(tmp_path):
    net = make_net("zero")
    x = torch.rand(3, 1, 8, 8)
    meta = save_snn(tmp_path / "snn.pt", net, method="conversion", dataset="digits", split_hash="abc", input_shape=[1, 8, 8],
                    num_classes=5, timesteps=8)
    state = torch.load(tmp_path / "snn.pt", weights_only=True)["state_dict"]
    assert sorted(state) == sorted(f"layers.{i}.{p}" for i, s in enumerate(LAYERS) if s["type"] in ("conv", "linear")
                                   for p in (["weight", "bias"] if s["bias"] else ["weight"]))
    assert meta["thresholds"][-1] is None and meta["reset"] == "zero" and meta["kind"] == "snn"
    loaded, _ = load_snn(tmp_path / "snn.pt")
    with torch.no_grad():
        assert torch.equal(net(x, 8).membrane, loaded(x, 8).membrane)


def test_bad_checkpoints_name_the_problem():
    net = make_net()
    state, meta = net.to_checkpoint()
    with pytest.raises(ModelError, match="thresholds"):
        SpikingNetwork.from_meta({**meta, "thresholds": [1.0, None]}, state)
    bad = dict(state)
    bad["layers.4.weight"] = torch.zeros(3, 3)
    with pytest.raises(ModelError, match=r"layers\.4\.weight"):
        SpikingNetwork.from_meta(meta, bad)
    with pytest.raises(ModelError, match="layer 1.*maxpool"):
        SpikingNetwork.from_meta({**meta, "layers": [LAYERS[0], {"type": "maxpool", "kernel_size": 2}, *LAYERS[2:]]}, state)
