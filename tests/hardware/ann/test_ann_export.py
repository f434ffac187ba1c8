"""The exporter: memory words decode back to the integer network, the config is sized to
the model, and what the array cannot hold is refused in one line before any simulation."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from hardware.ann.config import DESC_FIELD_BITS, AnnHwConfig
from hardware.ann.export import DESC_FIELDS, FLAG_BITS, export, memory_words, plan
from spikebench.errors import ModelError
from tests.hardware.ann.random_ann import TEST_CONFIG, random_int_ann


def _lanes(word: int, bits: int, count: int) -> list[int]:
    """Two's-complement lanes of a packed word."""
    values = [(word >> (i * bits)) & ((1 << bits) - 1) for i in range(count)]
    return [v - (1 << bits) if v >> (bits - 1) else v for v in values]


def test_memory_words_decode_to_the_network(tmp_path) -> None:
    rng = np.random.default_rng(3)
    net = random_int_ann(rng)
    layout = export(net, TEST_CONFIG, tmp_path)
    words = memory_words(net, TEST_CONFIG, layout)
    n = TEST_CONFIG.macs
    for desc, word, layer in zip(layout["layers"], words["desc"], net.layers, strict=True):
        fields = dict(zip(DESC_FIELDS, [(word >> (i * DESC_FIELD_BITS)) & ((1 << DESC_FIELD_BITS) - 1) for i in range(len(DESC_FIELDS))], strict=True))
        assert fields == desc
        assert bool(fields["flags"] >> FLAG_BITS["relu"] & 1) == layer.relu
        flat = layer.weight.reshape(layer.cout, -1)
        for t in range(fields["tiles"]):
            for k in range(layer.k_len):
                lanes = _lanes(words["wmem"][fields["w_base"] + t * layer.k_len + k], TEST_CONFIG.weight_bits, n)
                expect = [int(flat[t * n + i, k]) if t * n + i < layer.cout else 0 for i in range(n)]
                assert lanes == expect
            bias = _lanes(words["bias"][fields["b_base"] + t], TEST_CONFIG.acc_bits, n)
            assert bias == [int(layer.bias[t * n + i]) if t * n + i < layer.cout else 0 for i in range(n)]
    assert json.loads((tmp_path / "layout.json").read_text())["layers"] == layout["layers"]
    assert len((tmp_path / "wmem.hex").read_text().split()) == layout["weight_rows"]


def test_sized_config_holds_the_model_and_no_less() -> None:
    rng = np.random.default_rng(5)
    for _ in range(10):
        net = random_int_ann(rng)
        config = AnnHwConfig.sized(net, int(rng.integers(1, 9)))
        layout = plan(net, config)
        assert layout["weight_rows"] <= 2**config.weight_addr_bits
        if config.weight_addr_bits > 1 and layout["weight_rows"] <= 2 ** (config.weight_addr_bits - 1):
            pytest.fail("weight memory larger than the model needs")


@pytest.mark.parametrize(("change", "message"), [
    ({"weight_addr_bits": 2}, r"raise weight_addr_bits"),
    ({"act_addr_bits": 3}, r"raise act_addr_bits"),
    ({"bias_addr_bits": 1}, r"raise bias_addr_bits"),
    ({"out_addr_bits": 0}, r"raise out_addr_bits"),
    ({"weight_bits": 2}, r"weights exceed 2 bits"),
    ({"acc_bits": 12}, r"over 12 signed bits; raise acc_bits"),
])
def test_models_the_config_cannot_hold_are_refused_in_one_line(change, message, tmp_path) -> None:
    rng = np.random.default_rng(7)
    net = random_int_ann(rng)
    while net.weight_bits < 4 or len(net.layers) < 2:
        net = random_int_ann(rng)
    config = dataclasses.replace(TEST_CONFIG, **change)
    with pytest.raises(ModelError, match=message) as err:
        export(net, config, tmp_path)
    assert "\n" not in str(err.value)
    assert not (tmp_path / "wmem.hex").exists()  # refused before anything was written


@pytest.mark.parametrize(("images", "message"), [
    (np.zeros((2, 1, 8, 8), dtype=np.float32), "must be uint8"),
    (np.zeros((2, 1, 7, 7), dtype=np.uint8), r"do not fit the exported model's input of 64 pixels"),
    (np.zeros((0, 1, 8, 8), dtype=np.uint8), r"do not fit"),
])
def test_images_that_do_not_fit_the_model_are_refused_before_simulation(images, message) -> None:
    from hardware.ann.sim import simulate

    with pytest.raises(ModelError, match=message) as err:
        simulate(None, Path("/nonexistent"), {"input_words": 64}, images, workers=1)  # type: ignore[arg-type]
    assert "\n" not in str(err.value)
