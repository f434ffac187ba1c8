"""Activation-based attention maps and the attention-transfer loss (Zagoruyko & Komodakis 2017).

Spike-Thrift (Kundu et al. 2021) guides the compression of a student network with the
attention maps of an unpruned meta-model. The attention map of a hidden conv layer with
activation a (B, C, H, W) is the channel-wise sum of |a_c|^p,

    A = sum_c |a_c|^p            (B, H*W),  p = 2 by default,

normalised to unit L2 norm per image, so the maps of two networks compare where they
attend, not how large their activations are. The attention-transfer loss is the mean
squared difference of the normalised maps, summed over the matched layers:

    L_AT = sum_l mean_{b, j} (Q_s^l - Q_t^l)^2,     Q = A / ||A||_2

Only spatial (conv) layers have maps: a fully connected layer has no spatial extent.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from spikebench.errors import ModelError, ParamsError


def attention_map(activation: torch.Tensor, p: float = 2.0) -> torch.Tensor:
    """Normalised attention map (B, H*W) of a (B, C, H, W) activation: sum_c |a_c|^p / ||.||_2."""
    if not p > 0:
        raise ParamsError(f"attention exponent p = {p}: must be > 0 (2 is the usual choice)")
    if activation.dim() != 4:
        raise ModelError(f"attention map needs a (B, C, H, W) activation, got shape {tuple(activation.shape)}")
    summed = activation.abs().pow(p).sum(1).flatten(1)
    return F.normalize(summed, dim=1)


def forward_with_activations(model: nn.Sequential, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """The output of a sequential model and the post-activation output of each hidden conv block.

    A conv block's activation is the output of the ReLU that follows its Conv2d (after any
    BatchNorm), i.e. what the next layer sees and what becomes spikes after conversion.
    """
    if not isinstance(model, nn.Sequential):
        raise ModelError(f"attention maps need an nn.Sequential model, got {type(model).__name__}")
    activations: list[torch.Tensor] = []
    after_conv = False
    for module in model:
        x = module(x)
        if isinstance(module, nn.Conv2d):
            after_conv = True
        elif isinstance(module, nn.ReLU) and after_conv:
            activations.append(x)
            after_conv = False
        elif not isinstance(module, (nn.BatchNorm2d, nn.Dropout, nn.Identity)):
            after_conv = False
    return x, activations


def attention_maps(model: nn.Sequential, x: torch.Tensor, p: float = 2.0) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """(output, [normalised attention map of every hidden conv block]) of `model` on `x`."""
    output, activations = forward_with_activations(model, x)
    return output, [attention_map(a, p) for a in activations]


def attention_transfer_loss(student: list[torch.Tensor], teacher: list[torch.Tensor]) -> torch.Tensor:
    """Sum over layers of the mean squared difference of normalised maps (teacher detached)."""
    if len(student) != len(teacher) or not student:
        raise ModelError(f"attention transfer needs the same, non-zero number of conv layers in student ({len(student)}) "
                         f"and meta-model ({len(teacher)}); use the meta-model's architecture for the student")
    total = student[0].new_zeros(())
    for k, (s, t) in enumerate(zip(student, teacher, strict=True)):
        if s.shape != t.shape:
            raise ModelError(f"attention map {k}: student {tuple(s.shape)} vs meta-model {tuple(t.shape)}; "
                             "student and meta-model conv layers must keep the same spatial size")
        total = total + (s - t.detach()).pow(2).mean()
    return total
