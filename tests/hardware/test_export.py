"""Exporter and golden model: unmappable models fail with one line naming the layer;
the integer dynamics match a hand calculation; memory images have the documented size."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hardware.config import HardwareConfig
from hardware.export import quantise, write_memory_images
from hardware.golden import run_golden
from spikebench.errors import ModelError
from tests.hardware.random_nets import TEST_CONFIG, _fc_meta, random_checkpoint, sparsity_checkpoint


def _one_line_error(state, meta, config, *needles):
    with pytest.raises(ModelError) as err:
        quantise(state, meta, config)
    message = str(err.value)
    assert "\n" not in message
    for needle in needles:
        assert needle in message, message
    return message


def test_unsupported_layer_is_named():
    state, meta = sparsity_checkpoint(np.random.default_rng(0))
    meta["layers"][1] = {"type": "maxpool", "kernel_size": 2}
    _one_line_error(state, meta, TEST_CONFIG, "layers.1 (maxpool)", "not supported")


def test_stride_and_leak_are_refused():
    state, meta = sparsity_checkpoint(np.random.default_rng(0))
    meta["layers"][0]["stride"] = 2
    _one_line_error(state, meta, TEST_CONFIG, "layers.0 (conv)", "stride 2")
    state, meta = sparsity_checkpoint(np.random.default_rng(0))
    meta["leaks"][1] = 0.9
    _one_line_error(state, meta, TEST_CONFIG, "layers.3 (linear)", "leak 0.9")


def test_too_many_neurons_for_the_banks():
    state, meta = sparsity_checkpoint(np.random.default_rng(0))
    small = HardwareConfig(**{**TEST_CONFIG.to_dict(), "bank_addr_bits": 6})  # 64 words per lane; conv needs 2*64
    _one_line_error(state, meta, small, "layers.0 (conv)", "too many neurons")


def test_weights_overflowing_k_bits():
    rng = np.random.default_rng(0)
    ints = rng.integers(-127, 128, (8, 16)).astype(np.float64)
    state = {"layers.1.weight": torch.tensor(ints * 0.01), "layers.1.bias": torch.zeros(8),
             "layers.2.weight": torch.tensor(rng.integers(-3, 4, (4, 8)) * 0.01), "layers.2.bias": torch.zeros(4)}
    meta = {**_fc_meta([16, 8, 4], [1.0, None], 4, (1, 4, 4)), "weight_bits": 8, "weight_scales": [0.01, 0.01]}
    _one_line_error(state, meta, TEST_CONFIG, "layers.1 (linear)", "overflowing 6-bit")  # TEST_CONFIG has 6-bit weights
    quantise(state, meta, HardwareConfig(**{**TEST_CONFIG.to_dict(), "weight_bits": 8}))  # fits 8 bits exactly


def test_golden_integer_dynamics_by_hand():
    """1 input pixel, fc 1->1 (w=2, thr 300) -> fc 1->1 (w=1): hand-computed spikes and output."""
    state = {"layers.1.weight": torch.tensor([[2.0]]), "layers.1.bias": torch.tensor([0.0]),
             "layers.2.weight": torch.tensor([[1.0]]), "layers.2.bias": torch.tensor([0.0])}
    config = HardwareConfig(**{**TEST_CONFIG.to_dict(), "weight_bits": 3})  # w_int = 3 for |w| max: scale 2/3
    meta = _fc_meta([1, 1, 1], [1.0, None], 5, (1, 1, 1))
    net = quantise(state, meta, config)
    layer0 = net.layers[0]
    assert layer0.weight.tolist() == [[3]] and layer0.threshold == round(1.0 / (2 / 3 / 255))  # 383
    result = run_golden(net, np.array([[[[200]]]], dtype=np.uint8))
    # I0 = 3 * 200 = 600 per step; v: 600 -> spike (217), 817 -> spike (434), 1034 -> spike (651), spike (868), spike (1085)
    assert result.spikes[0].tolist() == [5, 0]
    # output layer: w_int = 3, 5 spikes -> 15
    assert result.potentials[0].tolist() == [15]
    assert result.macs[0] == 1 and result.sops[0] == 5


def test_memory_images_have_one_word_per_row(tmp_path):
    state, meta = random_checkpoint(np.random.default_rng(3))
    net = quantise(state, meta, TEST_CONFIG)
    layout = write_memory_images(net, tmp_path)
    lines = (tmp_path / "wmem.hex").read_text().split("\n")
    assert lines[layout["words"]["wmem"]].startswith("@") or layout["words"]["wmem"] == 2**TEST_CONFIG.weight_addr_bits
    assert len(lines[0]) == (TEST_CONFIG.lanes * TEST_CONFIG.entry_bits + 3) // 4
    assert layout["vwords"] == sum(entry["fire_n"] for entry in layout["layers"])
