"""An `IntAnn` -> the ANN array's memory images ($readmemh files) and layout.json.

Layout (hardware/rtl/ann_core.v):
  act   activations, channel-major (c*H*W + y*W + x): the input at 0, then each hidden
        layer's output after the previous region (8-bit words)
  wmem  per layer, tile t of N output channels, slot k (conv k = (c, ky, kx), fc k = input):
        row w_base + t*K + k, lane n at bits [n*WB +: WB] = weight of channel t*N + n (0 pads)
  bias  row b_base + t: lane n at [n*AB +: AB] = beta of channel t*N + n
  desc  one word per layer: DESC_FIELDS, DESC_FIELD_BITS bits each, field i at [i*DF +: DF]
Models the configuration cannot hold are refused with a one-line ModelError naming the
layer and the parameter to raise, before any simulation.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from hardware.ann.config import COORD_BITS, DESC_FIELD_BITS, AnnHwConfig
from hardware.ann.quantise import IntAnn, IntLayer
from spikebench.errors import ModelError

DESC_FIELDS = ("flags", "ks", "cin", "cout", "in_h", "in_w", "k_len", "tiles", "in_base", "out_base", "w_base",
               "b_base", "mult", "shift", "out_h", "out_w")
FLAG_BITS = {"is_fc": 0, "relu": 1, "pool": 2, "last": 3}
MEMORY_FILES = {"desc": "desc.hex", "wmem": "wmem.hex", "bias": "bias.hex"}


def _name(layer: IntLayer) -> str:
    return f"layers.{layer.index} ({'Conv2d' if layer.kind == 'conv' else 'Linear'})"


def accumulator_peak(layer: IntLayer, act_bits: int) -> int:
    """Largest |acc| any input can produce: (2^XB - 1) · Σ|w| + |beta| over output channels."""
    w = np.abs(layer.weight.reshape(layer.cout, -1)).sum(1)
    return int(((2**act_bits - 1) * w + np.abs(layer.bias)).max())


def _check_layer(layer: IntLayer, config: AnnHwConfig, act_bits: int) -> None:
    limit = 2 ** (config.weight_bits - 1) - 1
    if np.abs(layer.weight).max(initial=0) > limit:
        raise ModelError(f"{_name(layer)}: weights exceed {config.weight_bits} bits; quantise with weight_bits <= {config.weight_bits}")
    peak = accumulator_peak(layer, act_bits)
    if peak >= 2 ** (config.acc_bits - 1):
        raise ModelError(f"{_name(layer)}: accumulator can reach {peak}, over {config.acc_bits} signed bits; raise acc_bits")
    c, h, w = layer.in_shape
    if max(h, w, layer.kernel) >= 2**COORD_BITS:
        raise ModelError(f"{_name(layer)}: map {h}x{w} exceeds the {COORD_BITS}-bit coordinates of the address generator")
    if layer.kind == "conv" and layer.pool == 2 and (h % 2 or w % 2):
        raise ModelError(f"{_name(layer)}: a 2x2 pool needs an even map, got {h}x{w}")


def plan(net: IntAnn, config: AnnHwConfig) -> dict:
    """layout.json: the descriptor of every layer (DESC_FIELDS), the memories' word counts and the config."""
    layers, act_base, w_base, b_base = [], 0, 0, 0
    in_base = 0
    act_base = int(np.prod(net.input_shape))
    for number, layer in enumerate(net.layers):
        _check_layer(layer, config, net.act_bits)
        last = number == len(net.layers) - 1
        tiles = -(-layer.cout // config.macs)
        out_c, out_h, out_w = layer.out_shape
        flags = (layer.kind == "fc") << 0 | layer.relu << 1 | (layer.pool == 2) << 2 | last << 3
        desc = {"flags": flags, "ks": layer.kernel, "cin": layer.cin, "cout": layer.cout,
                "in_h": layer.in_shape[1], "in_w": layer.in_shape[2], "k_len": layer.k_len, "tiles": tiles,
                "in_base": in_base, "out_base": 0 if last else act_base, "w_base": w_base, "b_base": b_base,
                "mult": layer.multiplier, "shift": layer.shift, "out_h": out_h, "out_w": out_w}
        layers.append(desc)
        in_base = act_base
        act_base += 0 if last else out_c * out_h * out_w
        w_base += tiles * layer.k_len
        b_base += tiles
    layout = {"layers": layers, "act_words": act_base, "weight_rows": w_base, "bias_rows": b_base,
              "outputs": net.num_classes, "input_words": int(np.prod(net.input_shape)), "config": config.to_dict()}
    _check_sizes(net, config, layout)
    return layout


def _check_sizes(net: IntAnn, config: AnnHwConfig, layout: dict) -> None:
    need = {"act_addr_bits": layout["act_words"], "weight_addr_bits": layout["weight_rows"],
            "bias_addr_bits": layout["bias_rows"], "out_addr_bits": layout["outputs"], "layer_addr_bits": len(layout["layers"])}
    for key, words in need.items():
        if words > 2 ** getattr(config, key):
            raise ModelError(f"the model needs {words} words where ann_hw {key} = {getattr(config, key)} holds "
                             f"{2 ** getattr(config, key)}; raise {key} (or size the array to the model)")
    for desc, layer in zip(layout["layers"], net.layers, strict=True):
        for key, value in desc.items():
            if not 0 <= value < 2**DESC_FIELD_BITS:
                raise ModelError(f"{_name(layer)}: descriptor field {key} = {value} does not fit {DESC_FIELD_BITS} bits")


def _pack(values: list[int] | np.ndarray, bits: int) -> int:
    """Lane i of the word at bits [i*bits +: bits] (two's complement)."""
    word, mask = 0, (1 << bits) - 1
    for i, v in enumerate(values):
        word |= (int(v) & mask) << (i * bits)
    return word


def memory_words(net: IntAnn, config: AnnHwConfig, layout: dict) -> dict[str, list[int]]:
    """The words of the desc, wmem and bias memories (from address 0)."""
    n = config.macs
    desc = [_pack([d[key] for key in DESC_FIELDS], DESC_FIELD_BITS) for d in layout["layers"]]
    wmem: list[int] = []
    bias: list[int] = []
    for layer in net.layers:
        tiles = -(-layer.cout // n)
        w = np.zeros((tiles * n, layer.k_len), dtype=np.int64)
        w[: layer.cout] = layer.weight.reshape(layer.cout, -1)
        b = np.zeros(tiles * n, dtype=np.int64)
        b[: layer.cout] = layer.bias
        for t in range(tiles):
            block = w[t * n:(t + 1) * n]
            wmem += [_pack(block[:, k], config.weight_bits) for k in range(layer.k_len)]
            bias.append(_pack(b[t * n:(t + 1) * n], config.acc_bits))
    return {"desc": desc, "wmem": wmem, "bias": bias}


def export(net: IntAnn, config: AnnHwConfig, directory: str | Path) -> dict:
    """Write desc.hex, wmem.hex, bias.hex and layout.json into `directory`; returns the layout."""
    layout = plan(net, config)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for kind, words in memory_words(net, config, layout).items():
        (directory / MEMORY_FILES[kind]).write_text("".join(f"{w:x}\n" for w in words))
    (directory / "layout.json").write_text(json.dumps(layout, indent=1) + "\n")
    return layout
