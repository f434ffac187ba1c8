"""Bit-exact integer reference of the accelerator (the contract the RTL is tested against).

Per image: the analog first-layer current I0 = conv/fc(sum_pool(pixels)) is computed once
(8-bit pixels x k-bit weights). Then per timestep t and layer l, in order:

    acc   = v + I_l(t)                      (exact: the exporter proves no accumulator overflow)
    s     = clip(acc + bias (+ I0 on layer 0), -2**(VB-1), 2**(VB-1) - 1)
    spike = s >= thr        (never on the output layer)
    v     = s - thr*spike   (reset "subtract")   or   0 where spiked (reset "zero")

where I_l(t) = conv/fc(sum_pool(spikes of layer l-1 at step t)) with integer weights. The
hardware adds every event's weights into the membrane in any order; since the sums are
exact and saturation is applied once per step in the fire phase, the order of events
does not matter and a batched tensor implementation is bit-exact. The output is the last
layer's saturated membrane after T steps; the class is its argmax (lowest index on ties).

Values are integers held in floating point: float32 when the exporter's worst-case bound
(membrane range + largest per-step current + bias) stays below 2**24, where every partial
sum of any summation order is an exactly representable integer, else float64. Also counts the ops the RTL counters report: synaptic ops (spike events x non-zero
in-bounds weights), analog MACs (non-zero pixels x weights), output spikes, saturations.

`compare` checks what a simulation (RTL or netlist) reported against this reference.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

from hardware.export import IntLayer, IntNetwork, max_current

if TYPE_CHECKING:
    from hardware.driver import CoreRun


@dataclass
class GoldenResult:
    potentials: np.ndarray   # int64 (B, classes): output membrane after T steps
    spikes: np.ndarray       # int64 (B, layers): output spikes per layer, summed over T
    sops: np.ndarray         # int64 (B,)
    macs: np.ndarray         # int64 (B,)
    saturations: np.ndarray  # int64 (B,): neuron-steps clipped by the membrane range

    @property
    def predictions(self) -> np.ndarray:
        return self.potentials.argmax(axis=1)


def _synapse(layer: IntLayer, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Integer current of `layer` for input events/pixels x (N, C, H, W), pool folded as a sum pool."""
    if layer.pool > 1:
        x = F.avg_pool2d(x, layer.pool) * (layer.pool * layer.pool)
    if layer.kind == "conv":
        return F.conv2d(x, weight, padding=layer.padding)
    return x.flatten(1) @ weight.T


def exact_dtype(net: IntNetwork) -> torch.dtype:
    """float32 when every intermediate value is an integer below 2**24, else float64."""
    bound = max(max_current(layer, i == 0) + int(np.abs(layer.bias).max(initial=0)) for i, layer in enumerate(net.layers))
    return torch.float32 if bound + 2 ** (net.config.membrane_bits - 1) < 2**24 else torch.float64


def run_golden(net: IntNetwork, images: np.ndarray, batch_size: int = 500, progress: bool = False, count_ops: bool = True) -> GoldenResult:
    """Run the integer network on uint8 images (B, C, H, W).

    `count_ops=False` skips the synaptic-op, MAC and saturation counts (about half the work; they read 0).
    """
    from tqdm.auto import tqdm

    dtype = exact_dtype(net)
    counts = torch.float64  # op and spike totals can pass 2**24
    weights = [torch.from_numpy(layer.weight).to(dtype) for layer in net.layers]
    masks = [(w != 0).to(dtype) for w in weights]
    lo, hi = float(net.v_min), float(net.v_max)
    chunks: list[tuple[np.ndarray, ...]] = []
    starts = range(0, len(images), batch_size)
    for start in tqdm(starts, desc="golden model", disable=not progress, mininterval=2):
        x = torch.from_numpy(np.asarray(images[start : start + batch_size])).to(dtype)
        n, n_layers = len(x), len(net.layers)
        biases = [torch.from_numpy(layer.bias).to(dtype).reshape(1, -1, *([1, 1] if layer.kind == "conv" else [])) for layer in net.layers]
        i0 = _synapse(net.layers[0], x, weights[0])
        macs = _synapse(net.layers[0], (x != 0).to(dtype), masks[0]).flatten(1).to(counts).sum(1) if count_ops else torch.zeros(n, dtype=counts)
        v = [None] * n_layers
        spikes = torch.zeros(n, n_layers, dtype=counts)
        sops = torch.zeros(n, dtype=counts)
        sats = torch.zeros(n, dtype=counts)
        for _ in range(net.timesteps):
            events = None
            for li, layer in enumerate(net.layers):
                if li == 0:
                    current = i0
                else:
                    current = _synapse(layer, events, weights[li])
                    if count_ops:
                        sops += _synapse(layer, events, masks[li]).flatten(1).to(counts).sum(1)
                if v[li] is None:
                    v[li] = torch.zeros_like(current)
                state = v[li]  # updated in place: the full-split pass is memory-bound
                state.add_(current).add_(biases[li])
                if count_ops:
                    sats += ((state < lo) | (state > hi)).flatten(1).sum(1).to(counts)
                state.clamp_(lo, hi)
                if layer.threshold is None:
                    continue
                fired = state >= layer.threshold
                spikes[:, li] += fired.flatten(1).sum(1).to(counts)
                if net.reset == "zero":
                    state.masked_fill_(fired, 0.0)
                else:
                    state.sub_(fired.to(dtype), alpha=layer.threshold)
                events = fired.to(dtype)
        chunks.append(tuple(t.double().numpy() for t in (v[-1].flatten(1), spikes, sops, macs, sats)))
    cat = lambda i: np.concatenate([c[i] for c in chunks]).astype(np.int64)  # noqa: E731
    return GoldenResult(potentials=cat(0), spikes=cat(1), sops=cat(2), macs=cat(3), saturations=cat(4))


def compare(runs: list[CoreRun], golden: GoldenResult) -> list[str]:
    """One line per image that differs from the golden model in any output or counter."""
    problems = []
    for i, run in enumerate(runs):
        expect = {"potentials": golden.potentials[i].tolist(), "spikes": int(golden.spikes[i].sum()),
                  "sops": int(golden.sops[i]), "macs": int(golden.macs[i])}
        got = {"potentials": run.potentials, "spikes": run.spikes, "sops": run.sops, "macs": run.macs}
        bad = [k for k in expect if expect[k] != got[k]]
        if bad:
            problems.append(f"image {i}: {', '.join(bad)} differ (rtl {[got[k] for k in bad]} vs golden {[expect[k] for k in bad]})")
    return problems
