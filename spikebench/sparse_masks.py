"""Sparsity masks at a fixed density, prune-and-regrow sparse training, the connectivity check.

Two modes (Spike-Thrift, Kundu et al. 2021):

  irregular   weight-level: each conv/linear layer keeps its largest-magnitude weights. The
              density is the fraction of all synaptic weights kept; with `dense_first_last`
              the (tiny) first and last layers stay dense and the others share the budget
              at one uniform density.
  structured  channel-level: each hidden conv/linear layer keeps round(density x channels)
              output channels (largest L2 norm of their incoming weights); a pruned
              channel's bias and the next layer's weights reading it are masked too, so the
              network is a genuinely narrower one. The output layer keeps every class.

Sparse learning keeps the density fixed while the mask changes (prune-and-regrow):

  irregular   RigL (Evci et al. 2020): every `update_interval` steps each layer drops the
              fraction f of its active weights with the smallest magnitude and regrows as
              many inactive weights with the largest dense gradient, at zero (so the
              network's function is not disturbed); f decays from `regrow_fraction` to 0
              (cosine) until `update_until` of the steps, then the mask stays fixed.
  structured  a pruned channel's output, bias and gradients are all exactly zero, so a
              gradient says nothing about which channel to regrow. The model keeps dense
              *latent* weights instead: each step runs forward/backward with the masked
              weights and the optimizer applies the gradient to the latent weights
              (straight-through, "dynamic pruning with feedback", Lin et al. 2020); every
              `update_interval` steps the kept channels are re-chosen by the L2 norm of their
              latent incoming weights at the same per-layer counts (prune-and-regrow by
              magnitude). At the end the masked weights are zeroed for good.

`check_connected` refuses a mask that leaves a layer with no non-zero path from the input.
`train_sparse` runs on the core loop (`spikebench.training.train_epochs`), so it resumes from a
checkpoint (masks included) and runs data-parallel under torchrun like every other loop.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from spikebench.errors import ModelError, ParamsError
from spikebench.training import EpochStats, Hooks, accuracy, total_steps, train_epochs

MODES = ("irregular", "structured")
_SYNAPTIC = (nn.Conv2d, nn.Linear)
_SHAPING = (nn.AvgPool2d, nn.MaxPool2d, nn.Flatten)  # change the geometry between synaptic layers
_PASS_THROUGH = (nn.ReLU, nn.BatchNorm1d, nn.BatchNorm2d, nn.Dropout, nn.Identity)  # keep which units are reachable


def check_density(density: float, what: str = "density") -> None:
    """Refuse a density outside (0, 1] with a one-line error."""
    if isinstance(density, bool) or not isinstance(density, (int, float)) or not 0.0 < density <= 1.0:
        raise ParamsError(f"{what} = {density!r}: must be in (0, 1], the fraction of weights kept (e.g. 0.1 for 10x fewer weights)")


def synaptic_layers(modules: Sequence[nn.Module]) -> list[nn.Module]:
    """The conv/linear modules of a layer sequence (an ANN's children or a SpikingNetwork's layers), in order."""
    return [m for m in modules if isinstance(m, _SYNAPTIC)]


@dataclass
class SparseMasks:
    """Boolean masks of every synaptic layer's weight (and, structured, bias), in layer order.

    keep: per layer, how many weights (irregular) or output channels (structured) stay
    active; mask updates keep these counts, so the density never changes.
    """

    mode: str
    density: float
    weight: list[torch.Tensor]
    bias: list[torch.Tensor | None]
    keep: list[int]

    def nonzero_weights(self) -> int:
        return int(sum(int(m.sum()) for m in self.weight))

    def total_weights(self) -> int:
        return int(sum(m.numel() for m in self.weight))

    def weight_density(self) -> float:
        return self.nonzero_weights() / self.total_weights()

    def layer_densities(self) -> list[float]:
        return [float(m.float().mean()) for m in self.weight]

    def state_dict(self) -> dict:
        """The masks as a resumable training state stores them (`spikebench.training_state`)."""
        return {"mode": self.mode, "density": self.density, "weight": list(self.weight), "bias": list(self.bias), "keep": list(self.keep)}

    def load_state_dict(self, state: dict) -> None:
        if state["mode"] != self.mode or len(state["weight"]) != len(self.weight):
            raise ModelError(f"saved {state['mode']} masks of {len(state['weight'])} layers do not fit these "
                             f"{self.mode} masks of {len(self.weight)} layers; delete the training state to start afresh")
        # on the device of the masks they replace (a checkpoint loads onto the CPU)
        self.weight = [w.to(old.device) for w, old in zip(state["weight"], self.weight, strict=True)]
        self.bias = [None if b is None else b.to(old.device if old is not None else b.device) for b, old in zip(state["bias"], self.bias, strict=True)]
        self.density, self.keep = float(state["density"]), [int(k) for k in state["keep"]]

    def active_channels(self) -> list[int]:
        """Output units of each layer with at least one active incoming weight."""
        return [int(m.flatten(1).any(1).sum()) for m in self.weight]

    @torch.no_grad()
    def apply(self, layers: Sequence[nn.Module]) -> None:
        """Zero the masked weights (and biases) of `layers` in place."""
        for layer, weight, bias in zip(_checked(layers, self), self.weight, self.bias, strict=True):
            layer.weight.mul_(weight.to(layer.weight.dtype))
            if bias is not None and layer.bias is not None:
                layer.bias.mul_(bias.to(layer.bias.dtype))

    @torch.no_grad()
    def mask_gradients(self, layers: Sequence[nn.Module]) -> None:
        """Zero the gradients of masked entries (a fixed mask: pruned weights stay exactly zero)."""
        for layer, weight, bias in zip(_checked(layers, self), self.weight, self.bias, strict=True):
            if layer.weight.grad is not None:
                layer.weight.grad.mul_(weight.to(layer.weight.grad.dtype))
            if bias is not None and layer.bias is not None and layer.bias.grad is not None:
                layer.bias.grad.mul_(bias.to(layer.bias.grad.dtype))

    @contextlib.contextmanager
    def masked(self, layers: Sequence[nn.Module]) -> Iterator[None]:
        """Run the block with masked weights, then restore the dense latent weights (gradients kept)."""
        layers = _checked(layers, self)
        latent = [(layer.weight.detach().clone(), layer.bias.detach().clone() if layer.bias is not None else None) for layer in layers]
        self.apply(layers)
        try:
            yield
        finally:
            with torch.no_grad():
                for layer, (weight, bias) in zip(layers, latent, strict=True):
                    layer.weight.copy_(weight)
                    if bias is not None:
                        layer.bias.copy_(bias)


def _checked(layers: Sequence[nn.Module], masks: SparseMasks) -> list[nn.Module]:
    layers = list(layers)
    if len(layers) != len(masks.weight):
        raise ModelError(f"sparsity masks cover {len(masks.weight)} conv/linear layers but the model has {len(layers)}; "
                         "build the masks from the same architecture")
    for k, (layer, mask) in enumerate(zip(layers, masks.weight, strict=True)):
        if tuple(layer.weight.shape) != tuple(mask.shape):
            raise ModelError(f"sparsity mask {k} has shape {tuple(mask.shape)}, layer {k} ({type(layer).__name__}) "
                             f"weight {tuple(layer.weight.shape)}; build the masks from the same architecture")
    return layers


# --- geometry ------------------------------------------------------------------------------

def _output_shapes(modules: Sequence[nn.Module], input_shape: tuple[int, ...]) -> list[tuple[int, ...]]:
    """Output shape (without batch) of every synaptic layer."""
    shapes = []
    x = torch.zeros((1, *input_shape))
    with torch.no_grad():
        for module in modules:
            x = module(x)
            if isinstance(module, _SYNAPTIC):
                shapes.append(tuple(x.shape[1:]))
    return shapes


def _followers(modules: Sequence[nn.Module]) -> list[list[nn.Module]]:
    """Per synaptic layer, the shaping modules (pool, flatten) between it and the next synaptic layer."""
    groups: list[list[nn.Module]] = []
    for index, module in enumerate(modules):
        if isinstance(module, _SYNAPTIC):
            groups.append([])
        elif isinstance(module, _SHAPING):
            if groups:
                groups[-1].append(module)
        elif not isinstance(module, _PASS_THROUGH):
            raise ModelError(f"layer {index} ({type(module).__name__}): sparsity masks support Conv2d, Linear, ReLU, BatchNorm, "
                             "AvgPool2d, MaxPool2d, Flatten and Dropout only")
    return groups


def _reach(x: torch.Tensor, followers: list[nn.Module]) -> torch.Tensor:
    """Push a 0/1 indicator through pooling/flatten: 1 where any reached unit feeds the position."""
    for module in followers:
        x = (module(x) > 0).to(torch.float32)
    return x


# --- building and updating masks -------------------------------------------------------------

def irregular_counts(sizes: list[int], density: float, dense_first_last: bool = True) -> list[int]:
    """Weights kept per layer so the whole network keeps `density` of its weights."""
    check_density(density)
    target = round(density * sum(sizes))
    dense = {0, len(sizes) - 1} if dense_first_last and len(sizes) > 2 else set()
    budget = target - sum(sizes[k] for k in dense)
    shared = sum(s for k, s in enumerate(sizes) if k not in dense)
    if budget < len(sizes) - len(dense):
        raise ParamsError(f"density = {density}: the dense first and last layers alone hold {sum(sizes[k] for k in dense)} of the "
                          f"{target} weights allowed; raise the density or set dense_first_last: false")
    rate = min(1.0, budget / shared) if shared else 1.0
    return [s if k in dense else max(1, min(s, round(rate * s))) for k, s in enumerate(sizes)]


def irregular_masks(modules: Sequence[nn.Module], density: float, dense_first_last: bool = True) -> SparseMasks:
    """Weight-level masks keeping each layer's largest-magnitude weights at an overall `density`."""
    layers = synaptic_layers(modules)
    if not layers:
        raise ModelError("sparsity masks: the model has no conv/linear layer")
    counts = irregular_counts([layer.weight.numel() for layer in layers], density, dense_first_last)
    masks = SparseMasks("irregular", float(density), [torch.ones_like(layer.weight, dtype=torch.bool) for layer in layers],
                        [None] * len(layers), counts)
    update_masks(masks, modules)
    return masks


def structured_masks(modules: Sequence[nn.Module], input_shape: tuple[int, ...], density: float) -> SparseMasks:
    """Channel-level masks keeping round(density x channels) output channels of each hidden layer."""
    check_density(density)
    layers = synaptic_layers(modules)
    if not layers:
        raise ModelError("sparsity masks: the model has no conv/linear layer")
    counts = [max(1, round(density * layer.weight.shape[0])) for layer in layers[:-1]] + [layers[-1].weight.shape[0]]
    masks = SparseMasks("structured", float(density), [torch.ones_like(layer.weight, dtype=torch.bool) for layer in layers],
                        [torch.ones(layer.weight.shape[0], dtype=torch.bool) for layer in layers], counts)
    update_masks(masks, modules, input_shape)
    return masks


def _top(scores: torch.Tensor, count: int) -> torch.Tensor:
    keep = torch.zeros(scores.numel(), dtype=torch.bool)
    # stable ordering makes ties (e.g. all-zero channels) resolve the same way every run
    keep[torch.argsort(scores.flatten(), descending=True, stable=True)[:count]] = True
    return keep.view(scores.shape)


@torch.no_grad()
def update_masks(masks: SparseMasks, modules: Sequence[nn.Module], input_shape: tuple[int, ...] | None = None) -> int:
    """Prune-and-regrow: recompute the masks from the latent weight magnitudes at the same counts.

    Returns how many weights (irregular) or channels (structured) regrew, i.e. became active.
    """
    layers = _checked(synaptic_layers(modules), masks)
    if masks.mode == "irregular":
        regrown = 0
        for k, layer in enumerate(layers):
            new = _top(layer.weight.detach().abs(), masks.keep[k])
            regrown += int((new & ~masks.weight[k]).sum())
            masks.weight[k] = new
        return regrown
    if masks.mode != "structured":
        raise ParamsError(f"sparsity mode {masks.mode!r} unknown; use one of {', '.join(MODES)}")
    if input_shape is None:
        raise ModelError("structured masks need the input shape to map pruned channels onto the next layer")
    followers = _followers(modules)
    shapes = _output_shapes(modules, input_shape)
    regrown = 0
    kept_out = []
    for k, layer in enumerate(layers):
        old = masks.weight[k].flatten(1).any(1)
        new = _top(layer.weight.detach().flatten(1).norm(dim=1), masks.keep[k])
        regrown += int((new & ~old).sum()) if k < len(layers) - 1 else 0
        kept_out.append(new)
    for k, layer in enumerate(layers):
        mask = kept_out[k].view(-1, *([1] * (layer.weight.dim() - 1))).expand_as(layer.weight).clone()
        if k > 0:  # the columns reading a pruned channel of the previous layer
            indicator = kept_out[k - 1].to(torch.float32).view(-1, *([1] * (len(shapes[k - 1]) - 1))).expand(shapes[k - 1])
            alive = _reach(indicator.unsqueeze(0), followers[k - 1])[0]
            alive = alive.flatten(1).amax(1) > 0 if isinstance(layer, nn.Conv2d) else alive.flatten() > 0
            if alive.numel() != layer.weight.shape[1]:
                raise ModelError(f"structured mask: layer {k} ({type(layer).__name__}) reads {layer.weight.shape[1]} inputs but the "
                                 f"previous layer provides {alive.numel()}; unsupported layer geometry")
            mask &= alive.view(1, -1, *([1] * (layer.weight.dim() - 2))).expand_as(mask)
        masks.weight[k] = mask
        masks.bias[k] = kept_out[k].clone()
    return regrown


@torch.no_grad()
def regrow_by_gradient(masks: SparseMasks, layers: Sequence[nn.Module], fraction: float) -> int:
    """RigL update of irregular masks: drop the smallest active weights, regrow the largest-gradient inactive ones at zero.

    Uses the dense `.grad` of each layer's (masked, physically sparse) weight. Per-layer
    counts stay fixed; returns the number of weights regrown.
    """
    if masks.mode != "irregular":
        raise ModelError(f"gradient regrowth needs irregular masks, got {masks.mode!r} (a pruned channel has no gradient)")
    regrown = 0
    for k, layer in enumerate(_checked(layers, masks)):
        active = masks.weight[k].flatten()
        count = int(fraction * int(active.sum()))
        if count == 0 or bool(active.all()) or layer.weight.grad is None:
            continue
        count = min(count, int((~active).sum()))
        magnitude = torch.where(active, layer.weight.detach().abs().flatten(), torch.tensor(float("inf")))
        dropped = torch.argsort(magnitude, stable=True)[:count]
        gradient = layer.weight.grad.detach().abs().flatten().clone()
        gradient[active] = -1.0  # only inactive weights can grow, not the ones just dropped
        gradient[dropped] = -1.0
        grown = torch.argsort(gradient, descending=True, stable=True)[:count]
        new = active.clone()
        new[dropped] = False
        new[grown] = True
        masks.weight[k] = new.view_as(masks.weight[k])
        layer.weight.view(-1)[grown] = 0.0  # regrown weights start at zero
        regrown += count
    return regrown


def check_connected(masks: SparseMasks, modules: Sequence[nn.Module], input_shape: tuple[int, ...]) -> None:
    """Refuse masks under which some layer has no non-zero path from the input (a disconnected layer)."""
    import torch.nn.functional as F

    _checked(synaptic_layers(modules), masks)
    reach = torch.ones((1, *input_shape))
    synaptic = -1
    with torch.no_grad():
        for index, module in enumerate(modules):
            if isinstance(module, _SYNAPTIC):
                synaptic += 1
                indicator = masks.weight[synaptic].to(torch.float32)
                if isinstance(module, nn.Conv2d):
                    reach = F.conv2d(reach, indicator, None, module.stride, module.padding, module.dilation, module.groups)
                else:
                    reach = F.linear(reach, indicator)
                reach = (reach > 0).to(torch.float32)
                if not reach.any():
                    raise ModelError(f"layer {index} ({type(module).__name__}, synaptic layer {synaptic}): the sparsity mask disconnects it "
                                     f"from the input (no non-zero path reaches any of its {reach.numel()} units); raise the density")
            elif isinstance(module, _SHAPING):
                reach = (module(reach) > 0).to(torch.float32)


# --- sparse training -------------------------------------------------------------------------

@dataclass
class SparseEpochStats:
    epoch: int
    train_loss: float
    train_accuracy: float
    val_accuracy: float
    seconds: float
    regrown: int  # weights/channels that became active during the epoch
    mask_updates: int


LossFn = Callable[[nn.Module, torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def _cross_entropy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    logits = model(x)
    return nn.functional.cross_entropy(logits, y), logits


def train_sparse(
    model: nn.Sequential,
    masks: SparseMasks,
    train: tuple[torch.Tensor, torch.Tensor],
    val: tuple[torch.Tensor, torch.Tensor],
    *,
    input_shape: tuple[int, ...],
    epochs: int,
    batch_size: int,
    lr: float,
    seed: int,
    loss_fn: LossFn | None = None,
    update_interval: int = 100,
    update_until: float = 0.75,
    regrow_fraction: float = 0.3,
    train_subset: int = 0,
    on_epoch: Callable[[SparseEpochStats], None] | None = None,
    desc: str = "sparse",
    checkpoint: str | Path | None = None,
) -> list[SparseEpochStats]:
    """Sparse learning of `model` at the fixed density of `masks` (Adam, cosine schedule).

    loss_fn(model, x, y) -> (loss, logits): the task loss plus any guidance term (default:
        cross-entropy). update_interval: optimizer steps between prune-and-regrow updates;
        update_until: fraction of the steps after which the mask stays fixed; regrow_fraction:
        irregular masks' initial drop/regrow fraction per update (cosine-decayed). train_subset:
        images drawn afresh (seeded) from the training split each epoch; 0 = all.
    checkpoint: the training state, masks included, is saved there after every epoch and training
        resumes from it (`spikebench.training.train_epochs`, which also runs it under torchrun).
    On return the masked weights are zero and `masks` holds the final mask.
    """
    for name, value, low in (("epochs", epochs, 0), ("batch_size", batch_size, 1), ("update_interval", update_interval, 1)):
        if value < low:
            raise ParamsError(f"sparse training {name} = {value}: must be >= {low}")
    loss_fn = loss_fn or _cross_entropy
    layers = synaptic_layers(list(model.children()))
    device = layers[0].weight.device if layers else torch.device("cpu")  # train where the model is
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    if masks.mode == "irregular":
        masks.apply(layers)  # RigL trains the physically sparse network
    update_steps = update_until * total_steps(len(train[0]), batch_size, epochs, train_subset)
    hooks = _MaskSchedule(masks, model, input_shape, update_interval, update_steps, regrow_fraction).hooks(on_epoch)

    def validate() -> float:
        with masks.masked(layers):  # score the sparse network, keep the latent weights for later updates
            return accuracy(model, val, device)

    history = train_epochs(model, optimizer, train, step=lambda x, y: loss_fn(model, x, y), validate=validate, epochs=epochs,
                           batch_size=batch_size, seed=seed, train_subset=train_subset, device=device, hooks=hooks,
                           record_type=SparseEpochStats, extra_state=masks, checkpoint=checkpoint, desc=desc)
    masks.apply(layers)
    model.eval()
    return history


@dataclass
class _MaskSchedule:
    """When and how the masks change during training, and the per-epoch count of what regrew.

    irregular (RigL): every `update_interval` steps up to `update_steps`, drop/regrow by the
    averaged dense gradient before the optimizer step, then mask the gradients and, after the
    step, the weights (Adam's momentum must not revive a pruned weight). structured: the step
    runs on masked weights (`step_context`), the optimizer updates the latent weights (feedback),
    and every `update_interval` steps the kept channels are re-chosen by latent magnitude.
    """

    masks: SparseMasks
    model: nn.Sequential
    input_shape: tuple[int, ...]
    update_interval: int
    update_steps: float
    regrow_fraction: float
    regrown: int = 0
    updates: int = 0

    def _due(self, step: int) -> bool:
        return step % self.update_interval == 0 and step <= self.update_steps

    def before_step(self, step: int) -> None:
        layers = synaptic_layers(list(self.model.children()))
        if self._due(step):
            fraction = self.regrow_fraction / 2 * (1 + math.cos(math.pi * step / max(self.update_steps, 1)))
            self.regrown += regrow_by_gradient(self.masks, layers, fraction)
            self.updates += 1
        self.masks.mask_gradients(layers)

    def after_irregular(self, step: int) -> None:
        self.masks.apply(synaptic_layers(list(self.model.children())))

    def after_structured(self, step: int) -> None:
        if self._due(step):
            self.regrown += update_masks(self.masks, list(self.model.children()), self.input_shape)
            self.updates += 1

    def end_epoch(self, stats: EpochStats) -> SparseEpochStats:
        record = SparseEpochStats(stats.epoch, stats.train_loss, stats.train_accuracy, stats.val_accuracy, stats.seconds,
                                  self.regrown, self.updates)
        self.regrown, self.updates = 0, 0  # counts are per epoch
        return record

    def hooks(self, on_epoch: Callable[[SparseEpochStats], None] | None) -> Hooks:
        if self.masks.mode == "irregular":
            return Hooks(before_step=self.before_step, after_step=self.after_irregular, end_epoch=self.end_epoch, on_epoch=on_epoch)
        layers = synaptic_layers(list(self.model.children()))
        return Hooks(step_context=lambda: self.masks.masked(layers), after_step=self.after_structured, end_epoch=self.end_epoch,
                     on_epoch=on_epoch)
