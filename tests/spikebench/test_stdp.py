"""STDP spiking CNN mechanics (spikebench/stdp_learning.py) on real digits images and hand-made spike times."""

from __future__ import annotations

import warnings

import pytest
import torch

from spikebench.errors import ParamsError
from spikebench.stdp_learning import (
    ActivityCounts,
    InputSpec,
    LayerSpec,
    LearningRate,
    SilentLayerWarning,
    STDPNetwork,
    conv_potentials,
    convergence,
    dog_kernel,
    dog_on_off,
    extract_features,
    final_spikes,
    fire,
    grid_max_pool,
    k_winners,
    latency_code,
    neuron_stdp_step,
    pointwise_inhibition,
    spike_time_pool,
    stdp_delta,
    train_layer,
    warn_silent_layers,
)

T = 8


def small_network(threshold: float = 3.0, seed: int = 0) -> STDPNetwork:
    return STDPNetwork(InputSpec(T, 3, (0.5, 1.0), 0.1), [LayerSpec(8, 3, threshold, 2, 1, 2), LayerSpec(16, 3, 4.0, 2, 0)], seed=seed)


def test_dog_kernel_is_zero_mean_centre_one_and_rejects_bad_sizes():
    kernel = dog_kernel(7, 1.0, 2.0)
    assert abs(float(kernel.sum())) < 1e-5 and float(kernel[3, 3]) == pytest.approx(1.0)
    assert float(kernel[0, 0]) < 0  # surround is inhibitory
    with pytest.raises(ParamsError, match="dog_size"):
        dog_kernel(4, 1.0, 2.0)


def test_dog_on_off_are_exclusive_and_thresholded(digits_data):
    maps = dog_on_off(digits_data.train[0][:20], dog_kernel(3, 0.5, 1.0), 0.1)
    assert maps.shape == (20, 2, 8, 8) and (maps >= 0).all()
    assert not ((maps[:, 0] > 0) & (maps[:, 1] > 0)).any()
    assert ((maps == 0) | (maps >= 0.1)).all()


def test_latency_code_orders_by_intensity_one_spike_each():
    values = torch.tensor([[[[0.9, 0.0, 0.5, 0.1]]]])
    times = latency_code(values, 4)
    assert times.tolist() == [[[[0, 4, 1, 2]]]]  # strongest first, zero never (time T=4)
    rng = torch.Generator().manual_seed(0)
    many = torch.rand(3, 2, 5, 5, generator=rng) * (torch.rand(3, 2, 5, 5, generator=rng) > 0.3)
    t = latency_code(many, T)
    for b in range(3):  # monotone: a larger value never spikes later
        v, tt = many[b].flatten(), t[b].flatten().float()
        active = v > 0
        order = torch.argsort(v[active], descending=True)
        assert (tt[active][order].diff() >= 0).all() and (tt[~active] == T).all() and tt[active].max() == T - 1


def test_fire_gives_first_crossing_and_final_spikes_agree(digits_data):
    net = small_network()
    times = net.encode(digits_data.train[0][:50])
    potentials = conv_potentials(times, net.weights[0], T, 1)
    out, at_fire = fire(potentials, 3.0)
    fired = out < T
    assert fired.any() and not fired.all()
    # the potential reaches threshold at the firing step and not one step before
    step = out.clamp(max=T - 1).long()
    assert (potentials.gather(0, step[None])[0][fired] >= 3.0).all()
    before = potentials.gather(0, (step - 1).clamp(min=0)[None])[0]
    assert ((before < 3.0) | (step == 0))[fired].all()
    assert torch.equal(at_fire[fired], potentials.gather(0, step[None])[0][fired])
    # the one-pass spikes equal the T-step simulation (weights >= 0, potentials never decrease)
    assert torch.equal(final_spikes(times, net.weights[0], T, 3.0, 1), fired)


def test_pointwise_inhibition_keeps_only_the_earliest_map():
    times = torch.tensor([[[[2]], [[1]], [[1]], [[5]]]], dtype=torch.int16)  # (1, 4 maps, 1, 1); 5 = never
    potentials = torch.tensor([[[[9.0]], [[3.0]], [[4.0]], [[0.0]]]])
    out = pointwise_inhibition(times, potentials, 5)
    assert out.flatten().tolist() == [5, 5, 1, 5]  # map 2: earliest, and higher potential than map 1


def test_spike_time_pool_is_the_earliest_spike():
    times = torch.tensor([[[[3, 1], [T, 2]]]], dtype=torch.int16)
    assert spike_time_pool(times, 2).flatten().tolist() == [1]
    assert spike_time_pool(torch.full((1, 1, 2, 2), T, dtype=torch.int16), 2).item() == T


def test_k_winners_one_per_map_and_inhibits_neighbourhood():
    times = torch.full((3, 5, 5), T, dtype=torch.int16)
    pot = torch.zeros(3, 5, 5)
    times[0, 2, 2], pot[0, 2, 2] = 1, 5.0
    times[0, 0, 0], pot[0, 0, 0] = 0, 4.0  # earliest: wins first
    times[1, 0, 1], pot[1, 0, 1] = 1, 9.0  # inside radius 1 of (0, 0): inhibited
    times[1, 4, 4], pot[1, 4, 4] = 2, 6.0
    times[2, 2, 3], pot[2, 2, 3] = 1, 6.0
    winners = k_winners(times, pot, T, 3, 1)
    assert [(w.channel, w.row, w.col, w.time) for w in winners] == [(0, 0, 0, 0), (2, 2, 3, 1), (1, 4, 4, 2)]
    assert len(k_winners(times, pot, T, 1, 1)) == 1
    assert k_winners(torch.full((2, 3, 3), T, dtype=torch.int16), torch.zeros(2, 3, 3), T, 3, 1) == []


def test_stdp_rule_signs_and_bounds():
    w = torch.tensor([0.5, 0.5, 0.5, 0.999])
    pre = torch.tensor([1, 3, T, 0])
    delta = stdp_delta(w, pre, 3, 0.1, 0.05)
    assert delta.tolist() == pytest.approx([0.025, 0.025, -0.0125, 0.1 * 0.999 * 0.001], rel=1e-4)  # pre == post counts as LTP
    w2 = w.clone()
    for _ in range(500):
        w2 = w2 + stdp_delta(w2, pre, 3, 0.15, 0.15)
    assert ((w2 > 0) & (w2 < 1)).all() and convergence(w2) < convergence(w)


def test_neuron_stdp_step_silent_neuron_keeps_weights():
    w = torch.full((4,), 0.5, dtype=torch.float64)
    post, new = neuron_stdp_step(torch.tensor([0, 1, T, T], dtype=torch.int16), w, 5.0, T, 0.1, 0.1)
    assert post is None and torch.equal(new, w)
    post, new = neuron_stdp_step(torch.tensor([0, 1, 2, T], dtype=torch.int16), w, 1.0, T, 0.1, 0.1)
    assert post == 1 and new.tolist() == pytest.approx([0.525, 0.525, 0.475, 0.475])


def test_learning_rate_schedule():
    assert LearningRate(0.004, 0.003, 0.15, 0).at(10_000) == (0.004, 0.003)
    doubling = LearningRate(0.004, 0.003, 0.15, 500)
    assert doubling.at(499) == (0.004, 0.003)
    assert doubling.at(1000)[0] == pytest.approx(0.016) and doubling.at(1000)[1] == pytest.approx(0.012)
    assert doubling.at(100_000)[0] == 0.15


def test_training_converges_and_is_deterministic(digits_data):
    images = digits_data.train[0][:200]
    rate = LearningRate(0.03, 0.0225, 0.15, 50)
    first, second = small_network(), small_network()
    log = train_layer(first, 0, images, rate, 200, 0.01, log_every=25)
    train_layer(second, 0, images, rate, 200, 0.01, log_every=50)
    assert torch.equal(first.weights[0], second.weights[0])
    # weights start near 0.8 (C ~ 0.16), spread (C rises) and then settle towards 0 or 1 (C falls)
    peak = max(c for _, c in log.curve)
    assert log.curve[-1][1] < peak * 0.75 and log.images == 200 and log.stopped_by == "max_images"
    w = first.weights[0]
    assert ((w < 0.1) | (w > 0.9)).float().mean() > 0.3 and w.std() > small_network().weights[0].std() * 3


def test_features_shapes_counts_and_silent_layer_warning(digits_data):
    net = small_network()
    features, counts = extract_features(net, digits_data.test[0][:40], [1, 2], inhibit=False, batch_size=16)
    assert features[1].shape == (40, 16) and features[2].shape == (40, 64)
    assert torch.equal(features[1], grid_max_pool(grid_max_pool_input(net, digits_data.test[0][:40]), 1))
    assert counts.images == 40 and set(counts.per_image("spikes")) == {"input", "conv1", "pool1"}
    assert all(v > 0 for v in counts.per_image("synops").values())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert warn_silent_layers(counts, net.layers) == []
    silent = small_network(threshold=1e6)
    _, counts = extract_features(silent, digits_data.test[0][:40], [1], inhibit=True)
    with pytest.warns(SilentLayerWarning, match=r"layer conv1 is silent.*stdp.thresholds\[0\]"):
        assert warn_silent_layers(counts, silent.layers) == ["conv1", "pool1"]


def grid_max_pool_input(net: STDPNetwork, images: torch.Tensor) -> torch.Tensor:
    """The last layer's final potentials, computed step by step (time-resolved path)."""
    times = net.input_to_layer(1, net.encode(images), inhibit=False)
    return conv_potentials(times, net.weights[1], T, 1)[-1]


def test_inference_inhibition_reduces_activity(digits_data):
    net = small_network()
    counts_plain, counts_inhibited = ActivityCounts(), ActivityCounts()
    net.features(digits_data.test[0][:30], [1], False, counts_plain)
    net.features(digits_data.test[0][:30], [1], True, counts_inhibited)
    assert counts_inhibited.spikes["conv1"] < counts_plain.spikes["conv1"]
    assert counts_inhibited.spikes["conv1"] <= 30 * 64  # at most one map per position
