"""Symmetric k-bit weight quantisation: grid, straight-through gradient, baking, integer export."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.nn.utils import parametrize

from spikebench.errors import ModelError, ParamsError
from spikebench.quantize import (
    attach_fake_quantization,
    bake,
    check_bits,
    fake_quantize,
    integer_weights,
    max_level,
    quantize_tensor,
)


@settings(max_examples=40, deadline=None)
@given(bits=st.integers(2, 10), seed=st.integers(0, 2**16), spread=st.floats(1e-4, 1e3))
def test_quantised_weights_lie_on_the_symmetric_grid_within_half_a_step(bits, seed, spread):
    weight = torch.randn(6, 5, generator=torch.Generator().manual_seed(seed)) * spread
    ints, scale = quantize_tensor(weight, bits)
    limit = 2 ** (bits - 1) - 1
    assert ints.dtype == torch.int64
    assert int(ints.abs().max()) == limit  # the largest weight uses the full range
    assert (weight - ints.double() * scale).abs().max() <= scale / 2 * (1 + 1e-5)


def test_all_zero_weights_quantise_to_zero_with_unit_scale():
    ints, scale = quantize_tensor(torch.zeros(3, 3), 4)
    assert scale == 1.0 and not ints.any()


def test_fake_quantize_forward_is_the_grid_and_backward_is_the_identity():
    weight = torch.tensor([0.9, -0.35, 0.1, -1.2], requires_grad=True)
    out = fake_quantize(weight, 3)  # levels -3..3, scale 0.4
    assert torch.allclose(out, torch.tensor([0.8, -0.4, 0.0, -1.2]))
    out.sum().backward()
    assert torch.equal(weight.grad, torch.ones(4))


@pytest.mark.parametrize("bits", [1, 0, -3])
def test_fewer_than_two_bits_is_refused_naming_the_parameter(bits):
    with pytest.raises(ParamsError, match="export_bits"):
        check_bits(bits, "export_bits")
    with pytest.raises(ParamsError):
        max_level(bits)


def _model() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 16, 3))


def test_qat_trains_the_float_master_weights_and_bake_leaves_exact_integer_multiples():
    model = _model()
    attach_fake_quantization(model, 4)
    seen = model[0].weight  # what the layer computes with: on the 4-bit grid
    _, scale = quantize_tensor(model[0].parametrizations.weight.original, 4)
    assert torch.allclose(seen / scale, torch.round(seen / scale), atol=1e-5)
    before = model[0].parametrizations.weight.original.detach().clone()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    model(torch.rand(8, 1, 4, 4)).pow(2).sum().backward()
    optimizer.step()
    assert not torch.equal(before, model[0].parametrizations.weight.original)  # STE lets gradients through

    scales = bake(model, 4)
    assert not parametrize.is_parametrized(model[0])
    assert set(model.state_dict()) == {"0.weight", "0.bias", "3.weight", "3.bias"}
    ints = integer_weights(model, scales, 4)
    for layer, q, s in zip((model[0], model[3]), ints, scales, strict=True):
        assert int(q.abs().max()) <= 7
        assert torch.equal(layer.weight, q.to(torch.float32) * s)


def test_integer_export_refuses_weights_that_were_not_baked():
    model = _model()
    with pytest.raises(ModelError, match="bake"):
        integer_weights(model, [0.1, 0.1], 4)
    with pytest.raises(ModelError, match="2 conv/linear layers"):
        integer_weights(model, [0.1], 4)


def test_attaching_twice_or_to_a_model_without_layers_is_refused():
    model = _model()
    attach_fake_quantization(model, 5)
    with pytest.raises(ModelError, match="already parametrised"):
        attach_fake_quantization(model, 5)
    with pytest.raises(ModelError, match="no conv/linear"):
        attach_fake_quantization(nn.Sequential(nn.ReLU()), 5)
