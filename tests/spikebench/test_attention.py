"""Attention maps (channel-wise sum of |a|^p, normalised) and the attention-transfer loss."""

from __future__ import annotations

import copy

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from baselines.models import ArchConfig, build_model
from spikebench.attention import attention_map, attention_maps, attention_transfer_loss, forward_with_activations
from spikebench.errors import ModelError, ParamsError


def _cnn(seed: int = 0) -> torch.nn.Sequential:
    torch.manual_seed(seed)
    return build_model(ArchConfig("cnn", (1, 8, 8), 10, channels=(4, 6, 8))).eval()


def test_map_is_the_normalised_channel_sum_of_powers():
    a = torch.tensor([[[[1.0, -2.0]], [[3.0, 0.0]]]])  # (B=1, C=2, H=1, W=2)
    summed = torch.tensor([[1.0 + 9.0, 4.0 + 0.0]])
    assert torch.allclose(attention_map(a, p=2), summed / summed.norm())
    summed_p1 = torch.tensor([[4.0, 2.0]])
    assert torch.allclose(attention_map(a, p=1), summed_p1 / summed_p1.norm())


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 4), st.integers(1, 5), st.integers(1, 6), st.floats(0.1, 50.0), st.sampled_from([1.0, 2.0, 4.0]))
def test_maps_have_unit_norm_and_ignore_the_activation_scale(batch, channels, side, scale, p):
    a = torch.randn(batch, channels, side, side, generator=torch.Generator().manual_seed(batch * 100 + channels * 10 + side)) + 0.1
    q = attention_map(a, p)
    assert q.shape == (batch, side * side)
    assert (q >= 0).all()
    assert torch.allclose(q.norm(dim=1), torch.ones(batch), atol=1e-5)
    assert torch.allclose(attention_map(a * scale, p), q, atol=1e-5)


def test_one_map_per_hidden_conv_block_from_post_relu_activations():
    model = _cnn()
    x = torch.rand(3, 1, 8, 8)
    output, activations = forward_with_activations(model, x)
    assert torch.equal(output, model(x))
    assert [tuple(a.shape) for a in activations] == [(3, 4, 8, 8), (3, 6, 4, 4)]
    assert all((a >= 0).all() for a in activations)  # what the next layer sees, after ReLU
    _, maps = attention_maps(model, x)
    assert [tuple(m.shape) for m in maps] == [(3, 64), (3, 16)]


def test_transfer_loss_is_zero_for_the_same_network_and_trains_only_the_student():
    teacher, student = _cnn(0), _cnn(1)
    x = torch.rand(5, 1, 8, 8)
    _, teacher_maps = attention_maps(teacher, x)
    _, same_maps = attention_maps(copy.deepcopy(teacher), x)
    assert attention_transfer_loss(same_maps, teacher_maps).item() == pytest.approx(0.0, abs=1e-12)
    _, student_maps = attention_maps(student, x)
    loss = attention_transfer_loss(student_maps, teacher_maps)
    assert loss.item() > 0
    loss.backward()
    assert student[0].weight.grad is not None and student[0].weight.grad.abs().sum() > 0
    assert teacher[0].weight.grad is None


def test_bad_inputs_give_one_line_errors():
    with pytest.raises(ParamsError, match="attention exponent p = 0"):
        attention_map(torch.rand(1, 2, 3, 3), p=0)
    with pytest.raises(ModelError, match="needs a \\(B, C, H, W\\) activation"):
        attention_map(torch.rand(2, 5))
    with pytest.raises(ModelError, match="same, non-zero number of conv layers"):
        attention_transfer_loss([torch.rand(1, 4)], [])
    with pytest.raises(ModelError, match="attention map 0: student \\(1, 4\\) vs meta-model \\(1, 9\\)"):
        attention_transfer_loss([torch.rand(1, 4)], [torch.rand(1, 9)])
