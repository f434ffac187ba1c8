"""Conversion-friendly architectures (the training loop itself: tests/spikebench/test_training.py)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from baselines.models import ArchConfig, build_model
from spikebench.energy import MacCounter, count_params
from spikebench.errors import ParamsError
from spikebench.training import accuracy

ALLOWED = (nn.Conv2d, nn.Linear, nn.ReLU, nn.AvgPool2d, nn.Flatten, nn.BatchNorm1d, nn.BatchNorm2d)


@pytest.mark.parametrize(("arch", "shape"), [("cnn", (1, 28, 28)), ("cnn", (1, 8, 8)), ("mlp", (1, 28, 28)), ("vgg11", (3, 32, 32)), ("vgg16", (3, 32, 32))])
@pytest.mark.parametrize("batch_norm", [False, True])
def test_architectures_use_only_convertible_layers(arch, shape, batch_norm):
    model = build_model(ArchConfig(arch, shape, 10, batch_norm=batch_norm))
    assert all(isinstance(m, ALLOWED) for m in model)
    assert not any(isinstance(m, nn.MaxPool2d) for m in model.modules())
    assert model.eval()(torch.zeros(2, *shape)).shape == (2, 10)
    if batch_norm:  # BN replaces the bias it would fold into
        assert all(m.bias is None for m in model if isinstance(m, nn.Conv2d))


def test_no_bias_option():
    model = build_model(ArchConfig("cnn", (1, 28, 28), 10, bias=False))
    assert all(m.bias is None for m in model if isinstance(m, (nn.Conv2d, nn.Linear)))


def test_default_cnn_size_and_macs():
    model = build_model(ArchConfig("cnn", (1, 28, 28), 10))
    # conv1 28*28*32*9 + conv2 14*14*64*32*9 + fc 3136*128 + fc 128*10
    expected = 28 * 28 * 32 * 9 + 14 * 14 * 64 * 32 * 9 + 3136 * 128 + 128 * 10
    assert MacCounter(model).count((1, 28, 28)) == expected
    assert count_params(model)[0] == (9 * 32 + 32) + (32 * 9 * 64 + 64) + (3136 * 128 + 128) + (128 * 10 + 10)


def test_vgg_refuses_small_inputs():
    with pytest.raises(ParamsError, match="vgg11 needs inputs of at least 32x32"):
        build_model(ArchConfig("vgg11", (1, 28, 28), 10))


def test_state_dict_round_trips_through_arch_meta():
    config = ArchConfig("cnn", (1, 8, 8), 10, channels=(4, 8, 16))
    model = build_model(config)
    rebuilt = build_model(ArchConfig.from_meta(config.to_meta()))
    rebuilt.load_state_dict(model.state_dict())
    x = torch.rand(3, 1, 8, 8)
    assert torch.equal(model(x), rebuilt(x))


def test_training_learns_digits(digits_data, digits_cnn):
    assert accuracy(digits_cnn, digits_data.test) > 0.9

