"""Functional coverage of the production RTL suite: which corners of the core the random networks reached.

Per network (`measure`): static figures from the network and the memory images the RTL loads
(lanes used, bank words, keys per fc layer, weight rows per key read back from ptr.hex, pool
sizes, layer count, T, reset) and dynamic ones from `trace`, an independent re-run of the
integer model that also records, per layer, the neuron-steps clipped at each membrane limit
and the fullest lane queue (events in one lane's queue set in one step). `trace` is checked
against the golden model (spikes per layer, saturations, output potentials) so the coverage
numbers describe exactly what was simulated. `corners` turns the networks into the table the
suite prints and asserts: every corner reached at least once.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from hardware.config import ROW_COUNT_BITS, HardwareConfig
from hardware.export import IntLayer, IntNetwork, fire_words
from hardware.golden import GoldenResult

TRACE_IMAGES = 512  # images of each network traced for the dynamic figures (all of them are simulated)


def rows_per_key(layer: IntLayer, lanes: int) -> np.ndarray:
    """Weight rows the core streams for each key of `layer`: the most non-zero entries one lane holds."""
    nonzero = (layer.weight != 0).reshape(layer.weight.shape[0], layer.weight.shape[1], -1).sum(axis=2)  # (outputs, keys)
    padded = np.pad(nonzero, ((0, -nonzero.shape[0] % lanes), (0, 0)))
    return padded.reshape(-1, lanes, nonzero.shape[1]).sum(axis=0).max(axis=0)


def estimate_cycles(net: IntNetwork, images: np.ndarray, golden: GoldenResult) -> np.ndarray:
    """Core cycles of each image from the cycle model of hardware/README.md, with each key's mean row count."""
    lanes, steps = net.config.lanes, net.timesteps
    words = [fire_words(layer, lanes) for layer in net.layers]
    rows = [float(rows_per_key(layer, lanes).mean()) for layer in net.layers]
    overhead = steps * sum(w + (lanes + 12 if i else 8) for i, w in enumerate(words)) + 2 * sum(words) + 16
    pixels = np.count_nonzero(images.reshape(len(images), -1), axis=1)
    events = sum(golden.spikes[:, i - 1] * (rows[i] + 2) for i in range(1, len(net.layers)))
    return overhead + pixels * (rows[0] + 3) + events + net.layers[-1].out_shape[0]


def _current(layer: IntLayer, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Integer current of events / pixels x (N, C, H, W) into `layer`: sum pool, then conv or fc."""
    if layer.pool > 1:
        x = F.avg_pool2d(x, layer.pool) * layer.pool**2
    return F.conv2d(x, weight, padding=layer.padding) if layer.kind == "conv" else x.flatten(1) @ weight.T


def _lane_fill(fired: torch.Tensor, lanes: int) -> int:
    """Most events one lane's queue receives: neuron (channel c, y, x) / fc neuron c goes to lane c mod P."""
    per_channel = fired.flatten(2).sum(2) if fired.dim() == 4 else fired
    padded = F.pad(per_channel, (0, -per_channel.shape[1] % lanes))
    return int(padded.reshape(len(padded), -1, lanes).sum(1).max())


@dataclass
class LayerTrace:
    saturated_high: list[int]  # neuron-steps clipped at 2**(VB-1)-1, per layer
    saturated_low: list[int]   # ... at -2**(VB-1)
    spikes: list[int]
    queue_fill: list[int]      # most events of one lane in one queue set (one layer, one step)
    potentials: np.ndarray


def trace(net: IntNetwork, images: np.ndarray) -> LayerTrace:
    """The integer model once more, recording per layer what the golden model only totals."""
    n_layers, lanes = len(net.layers), net.config.lanes
    lo, hi = float(net.v_min), float(net.v_max)
    weights = [torch.from_numpy(layer.weight).double() for layer in net.layers]
    biases = [torch.from_numpy(layer.bias).double().reshape(1, -1, *([1, 1] if layer.kind == "conv" else [])) for layer in net.layers]
    out = LayerTrace([0] * n_layers, [0] * n_layers, [0] * n_layers, [0] * n_layers, np.zeros(0))
    i0 = _current(net.layers[0], torch.from_numpy(images).double(), weights[0])
    state: list[torch.Tensor | None] = [None] * n_layers
    for _ in range(net.timesteps):
        events = None
        for j, layer in enumerate(net.layers):
            s = (i0 if j == 0 else _current(layer, events, weights[j])) + biases[j] + (0.0 if state[j] is None else state[j])
            out.saturated_high[j] += int((s > hi).sum())
            out.saturated_low[j] += int((s < lo).sum())
            s = s.clamp(lo, hi)
            if layer.threshold is not None:
                fired = s >= layer.threshold
                out.spikes[j] += int(fired.sum())
                out.queue_fill[j] = max(out.queue_fill[j], _lane_fill(fired.double(), lanes))
                s = s.masked_fill(fired, 0.0) if net.reset == "zero" else s - fired.double() * layer.threshold
                events = fired.double()
            state[j] = s
    out.potentials = state[-1].flatten(1).numpy().astype(np.int64)
    return out


def check_trace(tr: LayerTrace, golden: GoldenResult, count: int) -> None:
    """The trace must agree with the golden model on the first `count` images (else the coverage is wrong)."""
    assert tr.spikes == golden.spikes[:count].sum(0).tolist(), f"coverage trace spikes {tr.spikes} != golden {golden.spikes[:count].sum(0)}"
    assert sum(tr.saturated_high) + sum(tr.saturated_low) == int(golden.saturations[:count].sum()), "coverage trace saturations != golden"
    assert np.array_equal(tr.potentials, golden.potentials[:count]), "coverage trace potentials != golden"


@dataclass
class NetCoverage:
    """What one network of the suite exercised."""

    family: str
    images: int
    input_shape: tuple[int, int, int]
    layers: int
    timesteps: int
    reset: str
    lanes_used: int                 # most lanes one layer's neurons occupy
    uneven: bool                    # a layer of more than P channels / neurons, not a multiple of P
    bank_words: int                 # membrane words per lane, all layers
    fc_keys: int                    # most keys of one fc layer
    keys: int                       # pointer words (all layers)
    weight_rows: int
    bias_rows: int
    rows_per_key: int               # most weight rows of one key (ptr.hex)
    pools: set[int] = field(default_factory=set)
    input_fill: int = 0             # most pixel events of one image
    queue_fill: int = 0             # most events in one lane's queue set
    conv_high: int = 0              # conv neuron-steps clipped at the top / bottom of the membrane range
    conv_low: int = 0
    hidden_conv_saturated: int = 0  # ... of those, in spiking (not output) conv layers
    output_limits: set[int] = field(default_factory=set)  # output potentials found at +-limit (+1 / -1)


def _ptr_rows(memdir: Path, layout: dict, cfg: HardwareConfig) -> int:
    """Most rows of one key in the pointer memory image the RTL loads."""
    lines = [line for line in (memdir / layout["files"]["ptr"]).read_text().split() if not line.startswith("@")]
    return max((int(word, 16) >> cfg.weight_addr_bits for word in lines[: layout["words"]["ptr"]]), default=0)


def measure(family: str, net: IntNetwork, layout: dict, images: np.ndarray, golden: GoldenResult, memdir: Path) -> NetCoverage:
    """Coverage of one simulated network (dynamic figures over its first TRACE_IMAGES images)."""
    cfg, lanes = net.config, net.config.lanes
    count = min(len(images), TRACE_IMAGES)
    tr = trace(net, images[:count])
    check_trace(tr, golden, count)
    convs = [j for j, layer in enumerate(net.layers) if layer.kind == "conv"]
    return NetCoverage(
        family=family, images=len(images), input_shape=net.input_shape, layers=len(net.layers), timesteps=net.timesteps, reset=net.reset,
        lanes_used=max(min(layer.out_shape[0], lanes) for layer in net.layers),
        uneven=any(layer.out_shape[0] > lanes and layer.out_shape[0] % lanes for layer in net.layers),
        bank_words=layout["vwords"], fc_keys=max((e["keys"] for e in layout["layers"] if e["is_fc"]), default=0),
        keys=layout["words"]["ptr"], weight_rows=layout["words"]["wmem"], bias_rows=layout["words"]["bias"],
        rows_per_key=_ptr_rows(memdir, layout, cfg), pools={layer.pool for layer in net.layers if layer.pool > 1},
        input_fill=int(np.count_nonzero(images.reshape(len(images), -1), axis=1).max()), queue_fill=max(tr.queue_fill),
        conv_high=sum(tr.saturated_high[j] for j in convs), conv_low=sum(tr.saturated_low[j] for j in convs),
        hidden_conv_saturated=sum(tr.saturated_high[j] + tr.saturated_low[j] for j in convs if net.layers[j].threshold is not None),
        output_limits={sign for sign, limit in ((1, net.v_max), (-1, net.v_min)) if (golden.potentials == limit).any()},
    )


@dataclass(frozen=True)
class Corner:
    name: str
    reached: Callable[[list[NetCoverage]], float]  # over all networks of the run
    target: float                                   # hit when reached >= target
    shown: str = "{:g}"                             # how `reached` and `target` are printed


def corners(cfg: HardwareConfig) -> list[Corner]:
    """The corners the production suite must reach, with the production parameters' limits."""
    def most(key: str) -> Callable[[list[NetCoverage]], float]:
        return lambda covs: max(getattr(c, key) for c in covs)

    def count(test: Callable[[NetCoverage], bool]) -> Callable[[list[NetCoverage]], float]:
        return lambda covs: sum(bool(test(c)) for c in covs)

    near = 0.9  # "approached": at least 90% of a memory or queue
    return [
        Corner("lanes used by one layer", most("lanes_used"), cfg.lanes),
        Corner("networks loading lanes unevenly", count(lambda c: c.uneven), 1),
        Corner("highest bank address bit written", lambda covs: max(c.bank_words - 1 for c in covs).bit_length() - 1, cfg.bank_addr_bits - 1),
        Corner("networks on 28x28 inputs", count(lambda c: c.input_shape[1:] == (28, 28)), 1),
        Corner("keys of one fc layer", most("fc_keys"), 1813),
        Corner("pool 2 / 4 / 8 networks (fewest)", lambda covs: min(sum(p in c.pools for c in covs) for p in (2, 4, 8)), 1),
        Corner("conv neuron-steps clipped high", lambda covs: sum(c.conv_high for c in covs), 1),
        Corner("conv neuron-steps clipped low", lambda covs: sum(c.conv_low for c in covs), 1),
        Corner("spiking conv layers' clipped neuron-steps", lambda covs: sum(c.hidden_conv_saturated for c in covs), 1),
        Corner("networks with outputs at both limits", count(lambda c: c.output_limits == {1, -1}), 1),
        Corner("input queue fill (events)", most("input_fill"), 2**cfg.input_addr_bits),
        Corner("lane queue fill (events in a set)", most("queue_fill"), math.ceil(near * 2**cfg.bank_addr_bits)),
        Corner("weight rows of one key", most("rows_per_key"), math.ceil(near * (2**ROW_COUNT_BITS - 1))),
        Corner("weight rows (memory)", most("weight_rows"), math.ceil(near * 2**cfg.weight_addr_bits)),
        Corner("keys (pointer memory)", most("keys"), math.ceil(near * 2**cfg.pointer_addr_bits)),
        Corner("bias rows", most("bias_rows"), math.ceil(near * 2**cfg.bias_addr_bits)),
        Corner("bank words per lane", most("bank_words"), math.ceil(near * 2**cfg.bank_addr_bits)),
        Corner("synaptic layers", most("layers"), 2**cfg.layer_addr_bits),
        Corner("networks with T = 1", count(lambda c: c.timesteps == 1), 1),
        Corner("networks with T = 8", count(lambda c: c.timesteps == 8), 1),
        Corner("networks with reset to zero / by subtraction (fewest)",
               lambda covs: min(sum(c.reset == r for c in covs) for r in ("zero", "subtract")), 1),
    ]


def coverage_table(covs: list[NetCoverage], cfg: HardwareConfig) -> tuple[str, list[str]]:
    """(the printed table, the names of the corners not reached)."""
    rows, missed = [], []
    for corner in corners(cfg):
        value = corner.reached(covs)
        hit = value >= corner.target
        missed += [] if hit else [corner.name]
        rows.append((corner.name, corner.shown.format(value), corner.shown.format(corner.target), "yes" if hit else "NO"))
    widths = [max(len(r[i]) for r in [("corner", "reached", "target", "hit"), *rows]) for i in range(4)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in [("corner", "reached", "target", "hit"), *rows]]
    return "\n".join(lines), missed
