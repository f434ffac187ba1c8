"""Property test of the exporter's inputs: a damaged checkpoint ends in a one-line ModelError
naming the file (and the layer where there is one) or in a valid integer network; never a
traceback from inside and never a silently wrong network (NaN weights are refused)."""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import numpy as np
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hardware.export import IntNetwork, load_and_quantise
from spikebench.errors import ModelError
from spikebench.io import save_checkpoint
from tests.hardware.random_nets import TEST_CONFIG, random_checkpoint


def _synaptic_keys(state: dict) -> list[str]:
    return sorted(k for k in state if k.endswith(".weight"))


def damage(state: dict, meta: dict, kind: str, pick: int) -> bool:
    """Apply one kind of damage in place; `pick` chooses the layer / key deterministically.

    Returns whether the damaged checkpoint is still consistent (a transposed square fc weight
    is just another valid network), so the exporter may accept it.
    """
    weights = _synaptic_keys(state)
    key = weights[pick % len(weights)]
    if kind == "drop_meta_key":
        del meta[["thresholds", "leaks", "input_shape", "num_classes", "layers", "timesteps"][pick % 6]]
    elif kind == "nan_weight":
        state[key].view(-1)[0] = math.nan
    elif kind == "inf_bias":
        bias = key.replace(".weight", ".bias")
        state[bias if bias in state else key].view(-1)[0] = math.inf
    elif kind == "transposed_weight":
        shape = state[key].shape
        state[key] = state[key].flatten(1).t().contiguous()
        return state[key].shape == shape
    elif kind == "missing_weight":
        del state[key]
    elif kind == "negative_threshold":
        meta["thresholds"][pick % max(1, len(meta["thresholds"]) - 1)] = -1.0
    elif kind == "short_threshold_list":
        meta["thresholds"] = meta["thresholds"][:-1]
    elif kind == "string_field":
        meta["layers"][pick % len(meta["layers"])]["kernel_size"] = "three"
    elif kind == "unknown_layer":
        meta["layers"][pick % len(meta["layers"])] = {"type": "maxpool", "kernel_size": 2}
    elif kind == "overflowing_quantised":
        meta["weight_bits"] = 4
        meta["weight_scales"] = [1e-4] * len(meta["thresholds"])
    elif kind == "bad_scale":
        meta["weight_bits"] = 4
        meta["weight_scales"] = [0.0] * len(meta["thresholds"])
    elif kind == "timesteps_zero":
        meta["timesteps"] = 0
    elif kind == "leaky":
        meta["leaks"][0] = 0.5
    return False


KINDS = ["drop_meta_key", "nan_weight", "inf_bias", "transposed_weight", "missing_weight", "negative_threshold",
         "short_threshold_list", "string_field", "unknown_layer", "overflowing_quantised", "bad_scale", "timesteps_zero", "leaky"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**16), kind=st.sampled_from(KINDS), pick=st.integers(0, 50))
def test_damaged_checkpoint_is_a_one_line_error_or_a_valid_network(seed, kind, pick):
    state, meta = random_checkpoint(np.random.default_rng(seed))
    consistent = damage(state, meta, kind, pick)
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "model.pt"
        save_checkpoint(path, state, meta)
        try:
            net = load_and_quantise(path, TEST_CONFIG)
        except ModelError as err:
            message = str(err)
            assert "\n" not in message and message.startswith(str(path)), message
            return
    # accepted: only damage that leaves a mappable network may pass, and then it must be sane
    assert (consistent or kind in {"negative_threshold", "string_field"}) and isinstance(net, IntNetwork), kind
    for layer in net.layers:
        assert np.isfinite(layer.scale) and layer.weight.dtype == np.int64


def test_nan_weights_are_refused_naming_the_layer(tmp_path):
    state, meta = random_checkpoint(np.random.default_rng(3))
    key = _synaptic_keys(state)[0]
    state[key] = torch.full_like(state[key], math.nan)
    save_checkpoint(tmp_path / "m.pt", state, meta)
    try:
        load_and_quantise(tmp_path / "m.pt", TEST_CONFIG)
    except ModelError as err:
        assert f"layers.{key.split('.')[1]}" in str(err) and "NaN" in str(err)
    else:
        raise AssertionError("NaN weights were accepted")
