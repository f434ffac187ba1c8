"""Symmetric per-layer k-bit weight quantisation: fake quantisation for QAT and integer export.

Every conv/linear weight tensor W of a layer gets one scale s = max|W| / (2**(k-1) - 1)
and integer weights q = clamp(round(W / s), -(2**(k-1) - 1), 2**(k-1) - 1), so
W ~ q * s (the symmetric, "restricted range" scheme: -2**(k-1) is never used, so the
integer range is symmetric and the hardware needs no special case for it).

Quantisation-aware training attaches a `FakeQuantize` parametrisation to each weight:
the forward pass sees q * s, the backward pass treats the rounding as the identity
(straight-through estimator), so the float master weights keep learning. `bake`
removes the parametrisation and leaves weights that are exact multiples of their
scale; `integer_weights` recovers (q, s) per layer, the artefact the hardware consumes
(SNN checkpoint contract: `weight_bits` = k, `weight_scales` = [s per synaptic layer]).
Biases stay in float: they are constant currents the hardware rounds to its own unit.
`quantization_aware_training` is the whole phase for an SNN: fake quantisation, surrogate-gradient
fine-tuning at a fixed T, bake.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.utils import parametrize

from spikebench.compression import finetune
from spikebench.errors import ModelError, ParamsError

MIN_BITS = 2
SYNAPTIC_MODULES = (nn.Conv2d, nn.Linear)


def check_bits(bits: int, name: str = "bits") -> None:
    """Refuse bit widths the symmetric scheme cannot represent (k < 2 has no non-zero level)."""
    if isinstance(bits, bool) or not isinstance(bits, int) or bits < MIN_BITS:
        raise ParamsError(f"{name} = {bits!r}: weight quantisation needs an integer >= {MIN_BITS} bits")


def max_level(bits: int) -> int:
    """Largest integer magnitude of a k-bit symmetric weight: 2**(k-1) - 1."""
    check_bits(bits)
    return 2 ** (bits - 1) - 1


def symmetric_scale(weight: torch.Tensor, bits: int) -> torch.Tensor:
    """The per-tensor scale max|W| / (2**(k-1) - 1); 1 for an all-zero tensor."""
    peak = weight.detach().abs().max()
    return torch.where(peak > 0, peak / max_level(bits), torch.ones_like(peak))


def quantize_tensor(weight: torch.Tensor, bits: int, scale: torch.Tensor | float | None = None) -> tuple[torch.Tensor, float]:
    """(integer weights as int64, scale) of `weight` at `bits` bits."""
    limit = max_level(bits)
    scale_t = symmetric_scale(weight, bits) if scale is None else torch.as_tensor(scale, dtype=weight.dtype)
    ints = torch.clamp(torch.round(weight.detach() / scale_t), -limit, limit).to(torch.int64)
    return ints, float(scale_t)


def fake_quantize(weight: torch.Tensor, bits: int) -> torch.Tensor:
    """q * s in the forward pass, identity gradient in the backward pass (STE)."""
    limit = max_level(bits)
    scale = symmetric_scale(weight, bits)
    quantised = torch.clamp(torch.round(weight / scale), -limit, limit) * scale
    return weight + (quantised - weight).detach()


class FakeQuantize(nn.Module):
    """A `torch.nn.utils.parametrize` parametrisation: the weight as seen by the layer is quantised."""

    def __init__(self, bits: int) -> None:
        super().__init__()
        check_bits(bits)
        self.bits = bits

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return fake_quantize(weight, self.bits)


def synaptic_modules(model: nn.Module) -> list[nn.Module]:
    """Conv2d/Linear modules of `model` in registration (= execution, for our nets) order."""
    return [m for m in model.modules() if isinstance(m, SYNAPTIC_MODULES)]


def attach_fake_quantization(model: nn.Module, bits: int) -> None:
    """Make every conv/linear weight of `model` fake-quantised to `bits` (for QAT)."""
    check_bits(bits)
    modules = synaptic_modules(model)
    if not modules:
        raise ModelError(f"{type(model).__name__}: no conv/linear layer to quantise")
    for module in modules:
        if parametrize.is_parametrized(module, "weight"):
            raise ModelError(f"{type(module).__name__} weight is already parametrised; bake the previous quantisation first")
        parametrize.register_parametrization(module, "weight", FakeQuantize(bits))


def bake(model: nn.Module, bits: int) -> list[float]:
    """Fix the quantised weights in place (removing any QAT parametrisation); returns the scales.

    Afterwards every weight is exactly `q * s` in float32, so the model simulates what
    the integer hardware computes and `integer_weights` recovers q without rounding error.
    """
    scales = []
    for module in synaptic_modules(model):
        if parametrize.is_parametrized(module, "weight"):
            parametrize.remove_parametrizations(module, "weight", leave_parametrized=False)
        ints, scale = quantize_tensor(module.weight, bits)
        with torch.no_grad():
            module.weight.copy_(ints.to(module.weight.dtype) * scale)
        scales.append(scale)
    return scales


def integer_weights(model: nn.Module, scales: list[float], bits: int) -> list[torch.Tensor]:
    """Integer weights per synaptic layer of a baked model; refuses weights off the k-bit grid."""
    modules = synaptic_modules(model)
    if len(modules) != len(scales):
        raise ModelError(f"{len(scales)} weight scales for {len(modules)} conv/linear layers; pass one scale per layer")
    out = []
    for k, (module, scale) in enumerate(zip(modules, scales, strict=True)):
        scaled = module.weight.detach().double() / scale
        ints = torch.round(scaled)
        if (scaled - ints).abs().max() > 1e-3 or ints.abs().max() > max_level(bits):
            raise ModelError(f"synaptic layer {k}: weights are not {bits}-bit multiples of scale {scale:g}; call quantize.bake first")
        out.append(ints.to(torch.int64))
    return out


def quantization_aware_training(net: nn.Module, bits: int, data: Any, tuning: Any, *, timesteps: int, epochs: int, seed: int,
                                checkpoint: Path, on_epoch: Callable | None, desc: str) -> list[float]:
    """Fine-tune the trainable SNN `net` in place with `bits`-bit fake-quantised weights at `timesteps`
    (`spikebench.compression.SnnTuning` settings), then bake the weights; returns the scales.
    Afterwards `net` is on the CPU."""
    attach_fake_quantization(net, bits)
    finetune(net, data, timesteps, epochs, tuning, seed=seed, checkpoint=checkpoint, on_epoch=on_epoch, desc=desc)
    return bake(net.cpu(), bits)
