"""Bit-exact integer reference of the ANN accelerator (the contract the RTL is tested against).

Per layer (quantise.py docstring): acc = Σ x·w + beta (exact; computed in float64, exact
for |values| < 2^53, which the exporter's accumulator bound guarantees), then ReLU, the
2x2 sum pool and x_next = clip((v·M + 2^(S-1)) >> S, 0, 2^XB - 1); the output layer's
accumulators are the logits. `layer_counts` gives per image and layer the MACs the array
issues (non-zero input activation: the lanes multiply) and skips (zero or padding input:
operands held, accumulators not clocked), and the weight-row reads (one per issued slot).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from hardware.ann.quantise import IntAnn, IntLayer


def _accumulate(layer: IntLayer, x: torch.Tensor) -> torch.Tensor:
    """acc (float64 holding exact integers) of `layer` on activations x (B, C, H, W)."""
    w = torch.from_numpy(layer.weight).double()
    b = torch.from_numpy(layer.bias).double()
    if layer.kind == "fc":
        return x.flatten(1) @ w.T + b
    return F.conv2d(x, w, b, padding=layer.kernel // 2)


def requantise(layer: IntLayer, acc: torch.Tensor, act_bits: int) -> torch.Tensor:
    """The next layer's activations from the accumulators: ReLU, sum pool, multiply-shift, clip."""
    v = acc.clamp(min=0) if layer.relu else acc
    if layer.pool == 2:
        v = F.avg_pool2d(v, 2) * 4  # exact: the sum of four integers
    v = v.round().long()
    y = (v * layer.multiplier + (1 << (layer.shift - 1))) >> layer.shift
    return y.clamp(0, 2**act_bits - 1)


def forward(net: IntAnn, images: np.ndarray, keep: bool = False) -> tuple[np.ndarray, list[np.ndarray]]:
    """Integer logits (B, classes) of uint8 images (B, C, H, W); with `keep` also every layer's
    integer input activations (uint8 arrays, layer 0's = the images)."""
    x = torch.from_numpy(np.asarray(images, dtype=np.float64))
    inputs = []
    for layer in net.layers[:-1]:
        if keep:
            inputs.append(x.numpy().astype(np.uint8))
        x = requantise(layer, _accumulate(layer, x), net.act_bits).double()
        if layer.kind == "fc":
            x = x.reshape(len(x), -1, 1, 1)
    if keep:
        inputs.append(x.numpy().astype(np.uint8))
    logits = _accumulate(net.layers[-1], x).round().long().flatten(1).numpy()
    return logits, inputs


def predict(net: IntAnn, images: np.ndarray, batch: int = 500) -> np.ndarray:
    """Integer logits of many images, in batches (memory), (B, classes) int64."""
    return np.concatenate([forward(net, images[i:i + batch])[0] for i in range(0, len(images), batch)])


def classes(logits: np.ndarray) -> np.ndarray:
    """argmax, lowest index on ties (as numpy)."""
    return np.argmax(logits, axis=1)


@dataclass
class LayerCounts:
    """Per image (arrays of length B) for one layer: MACs issued and skipped, input-activation
    reads (in-bounds slots) and weight-row reads (issued slots), per tile pass summed."""

    issued: np.ndarray
    skipped: np.ndarray
    act_reads: np.ndarray
    weight_reads: np.ndarray


def layer_counts(layer: IntLayer, x: np.ndarray, lanes: int) -> LayerCounts:
    """Counts of `layer` on its integer inputs x (B, C, H, W) for an array of `lanes` MACs."""
    tiles = -(-layer.cout // lanes)
    nz = torch.from_numpy((np.asarray(x) != 0).astype(np.float64))
    if layer.kind == "fc":
        slots_nz = nz.flatten(1).sum(1)
        slots_in = torch.full_like(slots_nz, float(layer.cin))
    else:
        ones = torch.ones(1, layer.cin, layer.kernel, layer.kernel, dtype=torch.float64)
        slots_nz = F.conv2d(nz, ones, padding=layer.kernel // 2).flatten(1).sum(1)
        slots_in = F.conv2d(torch.ones_like(nz), ones, padding=layer.kernel // 2).flatten(1).sum(1)
    dense = layer.cout * layer.k_len * layer.in_shape[1] * layer.in_shape[2]
    issued = (slots_nz * layer.cout).round().long().numpy()
    return LayerCounts(issued, dense - issued, (slots_in * tiles).round().long().numpy(), (slots_nz * tiles).round().long().numpy())


def counts(net: IntAnn, images: np.ndarray, lanes: int) -> list[LayerCounts]:
    """`layer_counts` of every layer for uint8 images (B, C, H, W)."""
    _, inputs = forward(net, images, keep=True)
    return [layer_counts(layer, x, lanes) for layer, x in zip(net.layers, inputs, strict=True)]


def layer_cycles(layer: IntLayer, lanes: int) -> int:
    """Busy cycles of one layer on the array (data-independent: zero gating skips work, not cycles).

    Per layer 2 (descriptor read); per tile t and output group (pooled pixel / pixel / the fc
    layer): nsub · (K + 5) (bias read 2, K MAC slots, pipeline flush 2, pool 1; nsub = 4 with a
    2x2 pool) + lanes_t + 1 (drain through the requantiser) + 1 (loop step)."""
    _, groups_h, groups_w = layer.out_shape
    groups = groups_h * groups_w
    nsub = layer.pool**2
    tiles = -(-layer.cout // lanes)
    drain = sum(min(lanes, layer.cout - t * lanes) for t in range(tiles))
    return 2 + groups * (tiles * (nsub * (layer.k_len + 5) + 2) + drain)


def cycles(net: IntAnn, lanes: int) -> int:
    """Busy cycles of one inference (`cycle_count`): the layers plus the final done state."""
    return 1 + sum(layer_cycles(layer, lanes) for layer in net.layers)


def memory_accesses(net: IntAnn, layer_counts_: list[LayerCounts], lanes: int, image: int) -> dict[str, tuple[int, int]]:
    """Expected (reads, writes) per memory for one image, host input writes and logit read-back included."""
    act_writes = int(np.prod(net.input_shape)) + sum(int(np.prod(layer.out_shape)) for layer in net.layers[:-1])
    bias_reads = sum(-(-layer.cout // lanes) * layer.out_shape[1] * layer.out_shape[2] * layer.pool**2 for layer in net.layers)
    return {"desc": (len(net.layers), 0),
            "act": (int(sum(c.act_reads[image] for c in layer_counts_)), act_writes),
            "wmem": (int(sum(c.weight_reads[image] for c in layer_counts_)), 0),
            "bias": (bias_reads, 0), "out": (net.num_classes, net.num_classes)}
