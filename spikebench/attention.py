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

`compress` is the compression phase of the method: a student warm-started from the
meta-model, pruned to a target density (irregular: weights; structured: channels) and
trained by sparse learning (`spikebench.sparse_masks`) with the task loss plus the
attention-transfer loss; `fixed_mask_hooks` keep its mask through SNN training and
`sparse_macs` counts its MACs over non-zero weights.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from spikebench.energy import MacCounter
from spikebench.errors import ModelError, ParamsError
from spikebench.sparse_masks import (
    SparseEpochStats,
    SparseMasks,
    check_connected,
    irregular_masks,
    structured_masks,
    synaptic_layers,
    train_sparse,
)
from spikebench.spiking import SpikingNetwork


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


@dataclass(frozen=True)
class CompressionConfig:
    """One compression configuration: mode (irregular | structured), target density, with or
    without attention guidance."""

    mode: str
    density: float
    attention: bool

    @property
    def name(self) -> str:
        return f"{self.mode}_d{self.density:g}" + ("" if self.attention else "_no_attention")


@dataclass(frozen=True)
class SparseLearning:
    """Sparse-learning settings of the student (see `spikebench.sparse_masks.train_sparse`):
    attention exponent p and loss weight beta, and whether the first and last layers stay dense."""

    epochs: int
    lr: float
    batch_size: int
    train_subset: int
    update_interval: int
    update_until: float
    regrow_fraction: float
    dense_first_last: bool
    attention_p: float
    attention_weight: float


def attention_loss_fn(meta_model: nn.Sequential, p: float, weight: float) -> Callable:
    """Task loss plus `weight` x attention transfer towards the meta-model's maps (loss_fn of train_sparse)."""
    meta_model = meta_model.eval()

    def loss_fn(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits, maps = attention_maps(model, x, p)
        with torch.no_grad():
            _, targets = attention_maps(meta_model, x, p)
        loss = nn.functional.cross_entropy(logits, y) + weight * attention_transfer_loss(maps, targets)
        return loss, logits

    return loss_fn


def build_masks(model: nn.Sequential, config: CompressionConfig, input_shape: tuple[int, ...], dense_first_last: bool) -> SparseMasks:
    """The initial mask of `config`: magnitude-pruned weights (irregular) or channels (structured)."""
    modules = list(model.children())
    if config.mode == "irregular":
        masks = irregular_masks(modules, config.density, dense_first_last)
    else:
        masks = structured_masks(modules, input_shape, config.density)
    check_connected(masks, modules, input_shape)
    return masks


def compress(meta_model: nn.Sequential, config: CompressionConfig, data: Any, settings: SparseLearning, seed: int,
             run: Any, checkpoint: str | Path | None = None) -> tuple[nn.Sequential, SparseMasks]:
    """The sparse student (eval mode) and its mask: warm-started from the meta-model, pruned and
    trained by sparse learning; epochs logged to `run`; resumes from `checkpoint` after an interruption."""
    student = copy.deepcopy(meta_model).train()
    masks = build_masks(student, config, data.input_shape, settings.dense_first_last)
    loss_fn = attention_loss_fn(meta_model, settings.attention_p, settings.attention_weight) if config.attention else None

    def log(stats: SparseEpochStats) -> None:
        run.log_metrics({"ann_train_loss": stats.train_loss, "ann_val_accuracy": stats.val_accuracy, "ann_regrown": stats.regrown,
                         "ann_epoch_seconds": stats.seconds}, step=stats.epoch)
        print(f"  {config.name} sparse ANN epoch {stats.epoch}: loss {stats.train_loss:.4f} val {stats.val_accuracy:.4f} "
              f"regrown {stats.regrown} ({stats.seconds:.1f}s)")

    train_sparse(student, masks, data.train, data.val, input_shape=data.input_shape, epochs=settings.epochs,
                 batch_size=settings.batch_size, lr=settings.lr, seed=seed, loss_fn=loss_fn, update_interval=settings.update_interval,
                 update_until=settings.update_until, regrow_fraction=settings.regrow_fraction, train_subset=settings.train_subset,
                 on_epoch=log, desc=config.name, checkpoint=checkpoint)
    check_connected(masks, list(student.children()), data.input_shape)
    return student.eval(), masks


def fixed_mask_hooks(masks: SparseMasks) -> tuple[Callable[[SpikingNetwork], None], Callable[[SpikingNetwork], None]]:
    """(before_step, after_step) of SNN training: the sparsity mask stays fixed; the read-out never leaks."""

    def before_step(net: SpikingNetwork) -> None:
        masks.mask_gradients(synaptic_layers(net.layers))

    def after_step(net: SpikingNetwork) -> None:
        masks.apply(synaptic_layers(net.layers))
        if isinstance(net.leaks, nn.Parameter):  # the output layer's membrane is the accumulated read-out
            with torch.no_grad():
                net.leaks[-1] = 1.0

    return before_step, after_step


def sparse_macs(model: nn.Module, input_shape: tuple[int, ...]) -> float:
    """MACs per image of a pruned ANN counting only non-zero weights (layer MACs x layer density)."""
    counter = MacCounter(model)
    counter.count(input_shape)
    modules = dict(model.named_modules())
    return float(sum(macs * float((modules[name].weight != 0).float().mean()) for name, macs in counter.per_layer.items()))
