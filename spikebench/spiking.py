"""The spiking engine: IF/LIF neurons, surrogate gradients and a multi-step network.

A `SpikingNetwork` is built from the layer list of the SNN checkpoint contract
(`meta["layers"]`, see `from_meta`) and simulates T timesteps in one call. It runs
**layer by layer**: each synaptic layer (conv/linear) processes all T x B inputs in one
batched call, and only the neuron recurrence is stepped through time, in place. The
first layer sees the analog image as a constant current, so its synaptic current is
computed once, not T times. One pass returns the output membrane potential after
every step (accuracy at every T <= T_max from a single simulation) and per-layer spike
counts per step.

Dynamics of a spiking layer, per step t (contract, `meta["reset"]`):
    v = leak * v + current_t
    spike = v >= threshold
    v -= threshold * spike      (reset "subtract", soft reset)
    v[spike] = 0                (reset "zero", hard reset)
The last synaptic layer never spikes: its membrane potential accumulates and is read out.

Without gradients the recurrence updates the state in place (fast inference path); with
gradients each spiking layer's whole T-step recurrence is one fused autograd node
(`spikebench.multistep`: saves only the pre-reset potentials, explicit reverse-time backward)
and the spike uses a surrogate derivative (fast-sigmoid or atan), so the same module trains
with BPTT. `fused_bptt = False` selects the former step-by-step autograd graph (same gradients).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from spikebench.errors import ModelError
from spikebench.io import load_checkpoint, save_checkpoint
from spikebench.multistep import multistep_spikes

RESETS = ("subtract", "zero")
SURROGATES = ("fast_sigmoid", "atan")
SYNAPTIC_TYPES = ("conv", "linear")
LAYER_TYPES = ("conv", "linear", "avgpool", "flatten")


# --- surrogate gradients ----------------------------------------------------------

class HeavisideSpike(torch.autograd.Function):
    """Heaviside forward (x >= 0); the backward pass is the subclass's surrogate gradient."""

    @staticmethod
    def surrogate_grad(grad: torch.Tensor, x: torch.Tensor, alpha: float) -> torch.Tensor:
        raise NotImplementedError

    @classmethod
    def forward(cls, ctx: Any, x: torch.Tensor, alpha: float) -> torch.Tensor:
        ctx.save_for_backward(x)
        ctx.alpha = alpha
        return (x >= 0).to(x.dtype)

    @classmethod
    def backward(cls, ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        (x,) = ctx.saved_tensors
        return cls.surrogate_grad(grad, x, ctx.alpha), None


class FastSigmoidSpike(HeavisideSpike):
    """Derivative 1 / (1 + alpha |x|)^2 (SuperSpike, Zenke 2018)."""

    @staticmethod
    def surrogate_grad(grad: torch.Tensor, x: torch.Tensor, alpha: float) -> torch.Tensor:
        return grad / (1.0 + alpha * x.abs()) ** 2


class ATanSpike(HeavisideSpike):
    """Derivative (alpha/2) / (1 + (pi/2 alpha x)^2) (Fang 2021)."""

    @staticmethod
    def surrogate_grad(grad: torch.Tensor, x: torch.Tensor, alpha: float) -> torch.Tensor:
        return grad * (alpha / 2) / (1.0 + (math.pi / 2 * alpha * x) ** 2)


_SURROGATE_FUNCTIONS = {"fast_sigmoid": FastSigmoidSpike, "atan": ATanSpike}


def spike_function(x: torch.Tensor, surrogate: str = "fast_sigmoid", alpha: float = 10.0) -> torch.Tensor:
    """Heaviside step of `x` (spike where x >= 0) with the named surrogate derivative."""
    try:
        return _SURROGATE_FUNCTIONS[surrogate].apply(x, alpha)
    except KeyError:
        raise ModelError(f"unknown surrogate {surrogate!r}; one of {', '.join(SURROGATES)}") from None


# --- layers from the checkpoint contract --------------------------------------------

def build_layer(spec: dict, index: int) -> nn.Module:
    """The torch module of one contract layer spec (`meta["layers"][index]`)."""
    kind = spec.get("type")
    try:
        if kind == "conv":
            return nn.Conv2d(int(spec["in_channels"]), int(spec["out_channels"]), int(spec["kernel_size"]),
                             stride=int(spec.get("stride", 1)), padding=int(spec.get("padding", 0)), bias=bool(spec.get("bias", True)))
        if kind == "linear":
            return nn.Linear(int(spec["in_features"]), int(spec["out_features"]), bias=bool(spec.get("bias", True)))
        if kind == "avgpool":
            return nn.AvgPool2d(int(spec["kernel_size"]))
        if kind == "flatten":
            return nn.Flatten()
    except KeyError as err:
        raise ModelError(f"SNN layer {index} ({kind}): missing field {err}; the checkpoint's meta['layers'] is incomplete") from None
    raise ModelError(f"SNN layer {index}: unsupported type {kind!r}; the contract allows {', '.join(LAYER_TYPES)}")


def layer_spec(module: nn.Module, index: int) -> dict:
    """The contract spec of a torch module (inverse of `build_layer`)."""
    if isinstance(module, nn.Conv2d):
        return {"type": "conv", "in_channels": module.in_channels, "out_channels": module.out_channels,
                "kernel_size": module.kernel_size[0], "stride": module.stride[0], "padding": module.padding[0],
                "bias": module.bias is not None}
    if isinstance(module, nn.Linear):
        return {"type": "linear", "in_features": module.in_features, "out_features": module.out_features, "bias": module.bias is not None}
    if isinstance(module, nn.AvgPool2d):
        kernel = module.kernel_size if isinstance(module.kernel_size, int) else module.kernel_size[0]
        return {"type": "avgpool", "kernel_size": int(kernel)}
    if isinstance(module, nn.Flatten):
        return {"type": "flatten"}
    raise ModelError(f"SNN layer {index} ({type(module).__name__}): no spiking equivalent; use Conv2d, Linear, AvgPool2d, Flatten")


# --- simulation ---------------------------------------------------------------------


@torch.no_grad()
def _count_spikes(spikes: torch.Tensor, k: int, spikes_per_step: list, synops_per_step: list | None,
                  fanouts: list[torch.Tensor] | None, neuron_counts: list | None) -> None:
    """Append spiking layer k's per-step spike (and SOP) counts of a chunk; add its per-neuron counts."""
    dims = tuple(range(1, spikes.dim()))  # reduce in the tensor's own layout, no reshape copy
    spikes_per_step[k].append(spikes.detach().sum(dims))
    if synops_per_step is not None:
        weights = fanouts[k].to(spikes).view(spikes.shape[2:])
        synops_per_step[k].append((spikes.detach() * weights).sum(dims))
    if neuron_counts is not None:
        neuron_counts[k] = neuron_counts[k] + spikes.detach().sum(0)


@dataclass
class SimulationResult:
    """What one simulation of T steps returns.

    membrane: (T, B, classes) output membrane potential after each step t = 1..T.
    spikes_per_step: per spiking layer, (T,) spikes summed over the batch at each step.
    synops_per_step: per spiking layer, (T,) spikes x fan-out (only when fan-outs were given).
    neuron_counts: per spiking layer, (B, *neuron shape) spike counts over all T (on request).
    """

    membrane: torch.Tensor
    spikes_per_step: list[torch.Tensor]
    synops_per_step: list[torch.Tensor] | None = None
    neuron_counts: list[torch.Tensor] | None = None

    @property
    def timesteps(self) -> int:
        return self.membrane.shape[0]

    def predictions(self, timesteps: int | None = None) -> torch.Tensor:
        """Class predictions after `timesteps` steps (default: all)."""
        t = self.timesteps if timesteps is None else timesteps
        return self.membrane[t - 1].argmax(-1)

    def predictions_per_step(self) -> torch.Tensor:
        """(T, B) predictions after every step."""
        return self.membrane.argmax(-1)


class SpikingNetwork(nn.Module):
    """A feed-forward SNN over the contract's layer list (conv, avgpool, flatten, linear).

    Every synaptic layer but the last is followed by a spiking neuron layer with its own
    threshold and leak; the last layer integrates without spiking (membrane read-out).
    `learn_threshold` / `learn_leak` make thresholds / leaks trainable parameters.
    `fused_bptt` (default True): with gradients, each spiking layer's T-step recurrence is one
    fused autograd node (`spikebench.multistep`); False uses the step-by-step autograd graph.
    """

    fused_bptt: bool = True

    def __init__(
        self,
        layers: list[dict],
        thresholds: list[float | None],
        leaks: list[float] | None = None,
        reset: str = "subtract",
        v_init: float = 0.0,
        *,
        learn_threshold: bool = False,
        learn_leak: bool = False,
        surrogate: str = "fast_sigmoid",
        surrogate_alpha: float = 10.0,
    ) -> None:
        super().__init__()
        if reset not in RESETS:
            raise ModelError(f"SNN reset {reset!r} unknown; use one of {', '.join(RESETS)}")
        if surrogate not in SURROGATES:
            raise ModelError(f"unknown surrogate {surrogate!r}; one of {', '.join(SURROGATES)}")
        self.specs = [dict(s) for s in layers]
        self.layers = nn.ModuleList(build_layer(s, i) for i, s in enumerate(self.specs))
        # oneDNN's CPU convolutions run fastest on NHWC (channels-last) tensors (~1.4x here)
        for layer in self.layers:
            if isinstance(layer, nn.Conv2d):
                layer.to(memory_format=torch.channels_last)
        self.synaptic = [i for i, s in enumerate(self.specs) if s["type"] in SYNAPTIC_TYPES]
        if not self.synaptic:
            raise ModelError("SNN has no conv/linear layer; meta['layers'] must contain at least one")
        n_syn = len(self.synaptic)
        if len(thresholds) != n_syn:
            raise ModelError(f"SNN has {n_syn} synaptic layers but {len(thresholds)} thresholds; meta['thresholds'] needs one per conv/linear layer")
        hidden = thresholds[:-1]
        if any(t is None or not t > 0 for t in hidden):
            raise ModelError(f"SNN thresholds {hidden} must all be positive numbers (None only for the output layer)")
        leaks = [1.0] * n_syn if leaks is None else list(leaks)
        if len(leaks) != n_syn or any(not 0.0 <= float(leak) <= 1.0 for leak in leaks):
            raise ModelError(f"SNN leaks {leaks}: need {n_syn} values in [0, 1] (1.0 = integrate-and-fire)")
        threshold_tensor = torch.tensor([float(t) for t in hidden], dtype=torch.float32)
        leak_tensor = torch.tensor([float(v) for v in leaks], dtype=torch.float32)
        if learn_threshold:
            self.thresholds = nn.Parameter(threshold_tensor)
        else:
            self.register_buffer("thresholds", threshold_tensor)
        if learn_leak:
            self.leaks = nn.Parameter(leak_tensor)
        else:
            self.register_buffer("leaks", leak_tensor)
        self.reset = reset
        self.v_init = float(v_init)
        self.surrogate = surrogate
        self.surrogate_alpha = float(surrogate_alpha)

    # -- construction from / to checkpoints --

    @staticmethod
    def from_meta(meta: dict, state_dict: dict | None = None, **options: Any) -> SpikingNetwork:
        """Build the network a checkpoint describes and load its weights (contract keys)."""
        for key in ("layers", "thresholds", "reset"):
            if key not in meta:
                raise ModelError(f"SNN checkpoint meta has no {key!r}; it does not follow the SNN checkpoint contract")
        if meta.get("input", "analog") != "analog" or meta.get("output", "membrane") != "membrane":
            raise ModelError(f"SNN input {meta.get('input')!r} / output {meta.get('output')!r} unsupported; the engine runs analog input, membrane output")
        net = SpikingNetwork(meta["layers"], meta["thresholds"], meta.get("leaks"), meta["reset"], meta.get("v_init", 0.0), **options)
        if state_dict is not None:
            net.load_layer_weights(state_dict)
        return net

    def load_layer_weights(self, state_dict: dict) -> None:
        """Load `layers.<i>.weight/bias` tensors, naming the key of any mismatch."""
        own = {k: v for k, v in self.state_dict().items() if k.startswith("layers.")}
        missing = sorted(set(own) - set(state_dict))
        if missing:
            raise ModelError(f"SNN state_dict lacks {missing[0]}; the checkpoint does not match its meta['layers']")
        for key, value in own.items():
            if tuple(state_dict[key].shape) != tuple(value.shape):
                raise ModelError(f"SNN state_dict {key} has shape {tuple(state_dict[key].shape)}, meta['layers'] needs {tuple(value.shape)}")
        with torch.no_grad():
            for key, value in own.items():
                value.copy_(state_dict[key])

    def threshold_list(self) -> list[float | None]:
        return [float(t) for t in self.thresholds.detach()] + [None]

    def to_checkpoint(self, **meta_fields: Any) -> tuple[dict, dict]:
        """(state_dict, meta) per the SNN checkpoint contract; `meta_fields` add the rest."""
        state = {k: v.detach().clone().contiguous() for k, v in self.state_dict().items() if k.startswith("layers.")}
        meta = {
            "kind": "snn",
            "layers": [dict(s) for s in self.specs],
            "thresholds": self.threshold_list(),
            "leaks": [float(v) for v in self.leaks.detach()],
            "reset": self.reset,
            "input": "analog",
            "output": "membrane",
            "weight_bits": 32,
        }
        if self.v_init:
            meta["v_init"] = self.v_init
        meta.update(meta_fields)
        return state, meta

    # -- simulation --

    def forward(
        self,
        x: torch.Tensor,
        timesteps: int,
        *,
        record_neurons: bool = False,
        fanouts: list[torch.Tensor] | None = None,
        current_hook: Callable[[int, torch.Tensor], None] | None = None,
        spike_hook: Callable[[int, torch.Tensor], None] | None = None,
        chunk_images: int = 256,
    ) -> SimulationResult:
        """Simulate `timesteps` steps of the analog input batch `x` (B, C, H, W).

        fanouts: per spiking layer, the fan-out of each neuron (flattened), to count
            synaptic operations per step (see `spikebench.energy.fanout_maps`).
        current_hook(k, current): called with the synaptic current into synaptic layer k,
            shaped (B, ...) for the constant first-layer current, else (t, B, ...) for a
            chunk of t steps; the tensor is reused afterwards, so reduce or copy it at once.
        spike_hook(k, spikes): called with the (t, B, ...) spikes of spiking layer k per chunk; their
            buffer is reused too (by the next chunk, or the next training step), so copy at once.
        chunk_images: time is processed in chunks of about chunk_images / B steps, so each
            batched layer call sees ~chunk_images inputs; without gradients the chunk's
            intermediates stay small and cache-friendly (the neuron state carries over).
        """
        if timesteps < 1:
            raise ModelError(f"timesteps must be >= 1, got {timesteps}")
        differentiable = torch.is_grad_enabled() and (x.requires_grad or any(p.requires_grad for p in self.parameters()))
        batch = x.shape[0]
        chunk = timesteps if differentiable else max(1, min(timesteps, chunk_images // max(batch, 1)))
        first = self.layers[self.synaptic[0]]
        constant = first(_nhwc(x) if isinstance(first, nn.Conv2d) else x)  # analog input: one current for all steps
        if current_hook is not None:
            current_hook(0, constant)
        n_spiking = len(self.synaptic) - 1
        potentials: list[torch.Tensor | None] = [None] * len(self.synaptic)
        membranes, spikes_per_step = [], [[] for _ in range(n_spiking)]
        synops_per_step = [[] for _ in range(n_spiking)] if fanouts is not None else None
        neuron_counts: list[torch.Tensor | int] = [0] * n_spiking
        self._workspace: dict[int, torch.Tensor] = {}
        for start in range(0, timesteps, chunk):
            steps = min(chunk, timesteps - start)
            state: torch.Tensor = constant
            temporal = False
            for k, index in enumerate(self.synaptic):
                if temporal:
                    layer = self.layers[index]
                    current = layer(_nhwc(state.flatten(0, 1)) if isinstance(layer, nn.Conv2d) else state.flatten(0, 1))
                    current = current.view(steps, batch, *current.shape[1:])
                    if current_hook is not None:
                        current_hook(k, current)
                else:
                    current = state
                if k == n_spiking:
                    potentials[k], membrane = self._integrate(current, self.leaks[k], potentials[k], steps, temporal)
                    membranes.append(membrane)
                    break
                if differentiable:
                    spikes, potentials[k] = self._spike_differentiable(current, potentials[k], k, steps, temporal)
                else:
                    spikes, potentials[k] = self._spike_inplace(current, potentials[k], k, steps, temporal)
                if spike_hook is not None:
                    spike_hook(k, spikes)
                _count_spikes(spikes, k, spikes_per_step, synops_per_step, fanouts, neuron_counts if record_neurons else None)
                state, temporal = self._followers(spikes, index, k, steps, batch), True
        result = SimulationResult(
            torch.cat(membranes),
            [torch.cat(s) for s in spikes_per_step],
            [torch.cat(s) for s in synops_per_step] if synops_per_step is not None else None,
            neuron_counts if record_neurons else None,
        )
        self._workspace = {}
        return result

    def _followers(self, state: torch.Tensor, index: int, k: int, steps: int, batch: int) -> torch.Tensor:
        """Spikes of synaptic layer k through the pooling/flatten layers before the next synaptic layer."""
        for follower in self.layers[index + 1 : self.synaptic[k + 1]]:
            state = follower(state.flatten(0, 1))
            state = state.view(steps, batch, *state.shape[1:])
        return state

    def _initial_potential(self, like: torch.Tensor, k: int) -> torch.Tensor:
        v = torch.zeros_like(like)
        return v + self.v_init * self.thresholds[k] if self.v_init else v

    def _spike_inplace(self, current: torch.Tensor, v: torch.Tensor | None, k: int, steps: int,
                       temporal: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """Neuron recurrence with in-place updates; spikes overwrite the consumed currents."""
        threshold, leak = float(self.thresholds[k]), float(self.leaks[k])
        if temporal:
            out = current
        else:  # reuse the first layer's spike buffer across chunks (fresh pages cost more than the work)
            buffer = self._workspace.get(k)
            if buffer is None or buffer.shape[0] < steps or buffer.shape[1:] != current.shape or buffer.dtype != current.dtype:
                buffer = _time_major_like(current, steps)
                self._workspace[k] = buffer
            out = buffer[:steps]
        if v is None:
            v = self._initial_potential(out[0], k)
        subtract = self.reset == "subtract"
        for t in range(steps):
            if leak != 1.0:
                v.mul_(leak)
            v.add_(current[t] if temporal else current)
            spikes = out[t]
            torch.ge(v, threshold, out=spikes)  # a float `out` is ~10x faster than a bool mask on CPU
            if subtract:
                v.sub_(spikes, alpha=threshold)
            else:
                v.addcmul_(v, spikes, value=-1.0)
        return out, v

    def _spike_differentiable(self, current: torch.Tensor, v: torch.Tensor | None, k: int, steps: int,
                              temporal: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """The recurrence with surrogate spike derivatives (for BPTT): one fused autograd node per layer.

        The fused node (`spikebench.multistep`) starts from v_init; a carried-over potential (time
        chunks, which the differentiable path does not use) falls back to the step-by-step graph.
        """
        if not self.fused_bptt or v is not None:
            return self._spike_stepwise(current, v, k, steps, temporal)
        return multistep_spikes(current, self.thresholds[k], self.leaks[k], steps, temporal=temporal, reset=self.reset,
                                surrogate=self.surrogate, alpha=self.surrogate_alpha, v_init=self.v_init, recycle_spikes=True)

    def _spike_stepwise(self, current: torch.Tensor, v: torch.Tensor | None, k: int, steps: int,
                        temporal: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """Out-of-place step-by-step recurrence with surrogate spike derivatives (the pre-fusion BPTT path)."""
        threshold, leak = self.thresholds[k], self.leaks[k]
        if v is None:
            v = self._initial_potential(current[0] if temporal else current, k)
        out = []
        for t in range(steps):
            v = leak * v + (current[t] if temporal else current)
            spikes = spike_function(v - threshold, self.surrogate, self.surrogate_alpha)
            v = v - spikes * threshold if self.reset == "subtract" else v * (1.0 - spikes)
            out.append(spikes)
        return torch.stack(out), v

    @staticmethod
    def _integrate(current: torch.Tensor, leak: torch.Tensor, v: torch.Tensor | None, steps: int,
                   temporal: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """Output layer: membrane after each step, no spikes (v_t = leak v_{t-1} + I_t)."""
        if not temporal:
            current = current.unsqueeze(0).expand(steps, *current.shape)
        if not leak.requires_grad and float(leak) == 1.0:
            membrane = current.cumsum(0)
            if v is not None:
                membrane = membrane + v
            return membrane[-1], membrane
        v = torch.zeros_like(current[0]) if v is None else v
        out = []
        for t in range(steps):
            v = leak * v + current[t]
            out.append(v)
        return v, torch.stack(out)


def _nhwc(x: torch.Tensor) -> torch.Tensor:
    return x.contiguous(memory_format=torch.channels_last)


def _time_major_like(x: torch.Tensor, timesteps: int) -> torch.Tensor:
    """An empty (T, *x.shape) tensor whose every step has x's layout (NHWC stays NHWC)."""
    if x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last):
        b, c, h, w = x.shape
        return x.new_empty((timesteps, b, h, w, c)).permute(0, 1, 4, 2, 3)
    return x.new_empty((timesteps, *x.shape))


# --- convenience ----------------------------------------------------------------------

def simulate(net: SpikingNetwork, x: torch.Tensor, timesteps: int, batch_size: int = 256, *,
             fanouts: list[torch.Tensor] | None = None, progress: str | None = None) -> SimulationResult:
    """Simulate a large input set in batches (no gradients); results concatenated over images."""
    from tqdm.auto import tqdm

    membranes, spikes, synops = [], None, None
    starts = range(0, len(x), batch_size)
    with torch.no_grad():
        for start in tqdm(starts, desc=progress, disable=progress is None, leave=False, mininterval=2):
            result = net(x[start : start + batch_size], timesteps, fanouts=fanouts)
            membranes.append(result.membrane)
            spikes = result.spikes_per_step if spikes is None else [a + b for a, b in zip(spikes, result.spikes_per_step, strict=True)]
            if result.synops_per_step is not None:
                synops = result.synops_per_step if synops is None else [a + b for a, b in zip(synops, result.synops_per_step, strict=True)]
    return SimulationResult(torch.cat(membranes, 1), spikes or [], synops)


def save_snn(path: str | Path, net: SpikingNetwork, **meta_fields: Any) -> dict:
    """Save `net` per the SNN checkpoint contract; returns the meta written."""
    state, meta = net.to_checkpoint(**meta_fields)
    save_checkpoint(path, state, meta)
    return meta


def load_snn(path: str | Path, **options: Any) -> tuple[SpikingNetwork, dict]:
    """Load a contract checkpoint into a `SpikingNetwork` (in eval mode) and its meta."""
    state, meta = load_checkpoint(path)
    if meta.get("kind") != "snn":
        raise ModelError(f"{path}: not an SNN checkpoint (meta kind {meta.get('kind')!r}); convert or train an SNN first")
    net = SpikingNetwork.from_meta(meta, state, **options)
    return net.eval(), meta
