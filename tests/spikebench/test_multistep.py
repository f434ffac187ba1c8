"""The fused multi-step neuron against the step-by-step autograd recurrence it replaces."""

from __future__ import annotations

import pytest
import torch

from spikebench.errors import ModelError
from spikebench.multistep import multistep_spikes
from spikebench.spiking import SpikingNetwork, spike_function
from tests.spikebench.test_spiking import LAYERS  # the same small CNN the engine's tests use


def stepwise_reference(current, threshold, leak, steps, temporal, reset, surrogate, alpha, v_init=0.0):
    """The pre-fusion out-of-place recurrence, written out (autograd through every step)."""
    v = torch.zeros_like(current[0] if temporal else current) + v_init * threshold
    out = []
    for t in range(steps):
        v = leak * v + (current[t] if temporal else current)
        spikes = spike_function(v - threshold, surrogate, alpha)
        v = v - spikes * threshold if reset == "subtract" else v * (1.0 - spikes)
        out.append(spikes)
    return torch.stack(out)


def make_net(reset: str, leaks: list[float], surrogate: str, v_init: float = 0.0) -> SpikingNetwork:
    torch.manual_seed(3)
    net = SpikingNetwork(LAYERS, [0.6, 0.8, 0.7, None], leaks, reset, v_init, learn_threshold=True, learn_leak=True,
                         surrogate=surrogate, surrogate_alpha=4.0)
    with torch.no_grad():
        for layer in net.layers:
            if hasattr(layer, "weight"):
                layer.weight.mul_(3.0)
    return net


def _loss_and_grads(net: SpikingNetwork, x: torch.Tensor, y: torch.Tensor, timesteps: int, fused: bool):
    net.fused_bptt = fused
    net.zero_grad()
    result = net(x, timesteps)
    # a loss on the output and on the spikes, so the spikes' own gradient is exercised too
    loss = torch.nn.functional.cross_entropy(result.membrane[-1] / timesteps, y) + 1e-3 * sum(s.sum() for s in result.spikes_per_step)
    loss.backward()
    return result, loss.detach(), {name: p.grad.clone() for name, p in net.named_parameters()}


@pytest.mark.parametrize("surrogate", ["fast_sigmoid", "atan"])
@pytest.mark.parametrize("reset", ["subtract", "zero"])
@pytest.mark.parametrize("leaks", [[1.0, 1.0, 1.0, 1.0], [0.9, 0.7, 0.95, 0.8]], ids=["IF", "LIF"])
def test_fused_network_gradients_equal_the_stepwise_graph(surrogate, reset, leaks):
    net = make_net(reset, leaks, surrogate)
    torch.manual_seed(0)
    x, y = torch.rand(16, 1, 8, 8), torch.randint(0, 5, (16,))
    old, old_loss, old_grads = _loss_and_grads(net, x, y, 6, fused=False)
    new, new_loss, new_grads = _loss_and_grads(net, x, y, 6, fused=True)
    torch.testing.assert_close(new.membrane, old.membrane)
    for a, b in zip(new.spikes_per_step, old.spikes_per_step, strict=True):
        torch.testing.assert_close(a, b)
        assert a.sum() > 0  # every layer spikes, so the surrogate paths carry gradient
    torch.testing.assert_close(new_loss, old_loss)
    assert set(new_grads) == set(old_grads) and {"thresholds", "leaks"} <= set(new_grads)
    for name, grad in old_grads.items():
        assert grad.abs().sum() > 0, name
        torch.testing.assert_close(new_grads[name], grad, rtol=1e-4, atol=1e-6, msg=lambda m, n=name: f"{n}: {m}")


@pytest.mark.parametrize("temporal", [True, False], ids=["temporal", "constant"])
@pytest.mark.parametrize("reset", ["subtract", "zero"])
def test_fused_layer_matches_reference_with_v_init_and_nhwc(temporal, reset):
    torch.manual_seed(1)
    steps = 5
    shape = (steps, 3, 4, 5, 5) if temporal else (3, 4, 5, 5)
    base = (torch.rand(shape) * 0.9).contiguous(memory_format=torch.channels_last) if not temporal else torch.rand(shape) * 0.9
    grad_out = torch.randn(steps, 3, 4, 5, 5)
    results = []
    for fused in (False, True):
        current = base.clone().requires_grad_()
        threshold = torch.tensor(0.7, requires_grad=True)
        leak = torch.tensor(0.85, requires_grad=True)
        if fused:
            spikes, _ = multistep_spikes(current, threshold, leak, steps, temporal=temporal, reset=reset, surrogate="atan",
                                         alpha=3.0, v_init=0.3)
        else:
            spikes = stepwise_reference(current, threshold, leak, steps, temporal, reset, "atan", 3.0, v_init=0.3)
        (spikes * grad_out).sum().backward()
        results.append((spikes.detach(), current.grad, threshold.grad, leak.grad))
    for new, old in zip(results[1], results[0], strict=True):
        torch.testing.assert_close(new, old, rtol=1e-4, atol=1e-5)
    assert results[1][0].shape == (steps, 3, 4, 5, 5)


def test_fused_layer_rejects_bad_arguments():
    current, one = torch.rand(4, 10), torch.tensor(1.0)
    with pytest.raises(ModelError, match="reset 'hard' unknown"):
        multistep_spikes(current, one, one, 4, temporal=True, reset="hard")
    with pytest.raises(ModelError, match="unknown surrogate 'relu'"):
        multistep_spikes(current, one, one, 4, temporal=True, surrogate="relu")
    with pytest.raises(ModelError, match="3 steps, expected 4"):
        multistep_spikes(current[:3], one, one, 4, temporal=True)


def test_recycled_buffers_survive_two_forwards_before_backward():
    """Gradient accumulation (two forwards, one backward) with the engine's recycled buffers."""
    net = make_net("subtract", [1.0, 1.0, 1.0, 1.0], "fast_sigmoid")
    torch.manual_seed(2)
    xs, y = [torch.rand(8, 1, 8, 8) for _ in range(2)], torch.randint(0, 5, (8,))
    grads = []
    for fused in (False, True):
        net.fused_bptt = fused
        net.zero_grad()
        for _ in range(2):  # the second step reuses the first step's buffers, whose backward ran
            loss = sum(torch.nn.functional.cross_entropy(net(x, 5).membrane[-1] / 5, y) for x in xs)
            loss.backward()
        grads.append({name: p.grad.clone() for name, p in net.named_parameters()})
    for name, grad in grads[0].items():
        torch.testing.assert_close(grads[1][name], grad, rtol=1e-4, atol=1e-6)


def test_a_retained_graph_whose_buffer_was_reused_fails_loudly():
    net = make_net("subtract", [1.0, 1.0, 1.0, 1.0], "atan")
    x = torch.rand(4, 1, 8, 8)
    first = net(x, 3).membrane[-1].sum()
    first.backward(retain_graph=True)  # its buffers go back to the pool ...
    net(x, 3).membrane[-1].sum()  # ... and this forward writes into them
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        first.backward()
