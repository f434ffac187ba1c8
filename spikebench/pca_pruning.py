"""PCA-based spatial (channel) pruning (Chowdhury, Garg, Roy 2021).

For every hidden conv/linear layer, the layer's activity over a calibration subset of
the *training* split is arranged as a (samples, channels) matrix (a conv layer
contributes every spatial position of every image as a sample of its C channels), and
the number of principal components that explain a given fraction of the variance
becomes the layer's new width. The output layer keeps its width (the classes).

Activity sources:
  snn  the paper's choice: the converted SNN's average accumulated membrane input,
       (1/T) sum_t I_t per neuron (the membrane potential before resets, averaged over
       T); computed with the shared converter at the given T.
  ann  the ANN's post-ReLU activations (cheaper; the first option the issue allows).

PCA gives a count, not a choice of channels. To warm-start the slim ANN, each layer
keeps the channels with the largest mean squared activity (the ones that carry the
most signal energy) and copies their weights (input and output side); the slim ANN is
then retrained briefly (`spatial_pruning` runs the whole phase; `plot_channels` draws it).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from spikebench.convert import activation_scales, normalised_snn, parse_ann
from spikebench.errors import ModelError, ParamsError
from spikebench.plots import plt, save
from spikebench.training import fit

SOURCES = ("snn", "ann")


@dataclass
class LayerSelection:
    """PCA result for one hidden synaptic layer of the ANN (index into the Sequential)."""

    index: int
    kind: str                  # "conv" | "linear"
    channels: int              # width before pruning
    kept: int                  # principal components explaining `fraction` of the variance
    explained: list[float]     # cumulative explained-variance fraction by component count
    keep_index: list[int]      # channels kept in the slim layer (sorted)


def check_fraction(fraction: float, name: str = "variance_fraction") -> None:
    if not 0.0 < fraction <= 1.0:
        raise ParamsError(f"{name} = {fraction}: the explained-variance fraction must lie in (0, 1]")


def activity_matrix(activity: torch.Tensor) -> torch.Tensor:
    """(samples, channels): conv maps (N, C, H, W) give N*H*W samples of C channels."""
    if activity.dim() == 4:
        return activity.permute(0, 2, 3, 1).reshape(-1, activity.shape[1])
    if activity.dim() == 2:
        return activity
    raise ModelError(f"layer activity of shape {tuple(activity.shape)}: expected (N, C, H, W) or (N, C)")


def explained_variance(matrix: torch.Tensor) -> torch.Tensor:
    """Cumulative explained-variance fraction after 1, 2, ..., C principal components."""
    x = matrix.double()
    x = x - x.mean(0, keepdim=True)
    covariance = x.T @ x / max(1, len(x) - 1)
    eigenvalues = torch.linalg.eigvalsh(covariance).flip(0).clamp(min=0.0)
    total = eigenvalues.sum()
    if total <= 0:
        return torch.ones(len(eigenvalues), dtype=torch.float64)
    return eigenvalues.cumsum(0) / total


def components_for_variance(matrix: torch.Tensor, fraction: float) -> int:
    """Smallest number of principal components explaining at least `fraction` of the variance."""
    check_fraction(fraction)
    cumulative = explained_variance(matrix)
    # A tolerance so that fraction = 1.0 is reached despite round-off in the eigenvalues.
    return int(torch.searchsorted(cumulative, torch.tensor([fraction - 1e-9], dtype=cumulative.dtype))[0]) + 1


@torch.no_grad()
def layer_activities(model: nn.Sequential, calibration: torch.Tensor, source: str, *, timesteps: int = 8,
                     percentile: float = 99.99, batch_size: int = 128) -> list[torch.Tensor]:
    """Activity of every hidden synaptic layer on `calibration`, one (N, C[, H, W]) tensor each."""
    if source not in SOURCES:
        raise ParamsError(f"pca_source = {source!r}: choose one of {', '.join(SOURCES)}")
    parsed = parse_ann(model.eval())
    hidden = len(parsed.synaptic) - 1
    chunks: list[list[torch.Tensor]] = [[] for _ in range(hidden)]
    if source == "ann":
        for start in range(0, len(calibration), batch_size):
            for k, act in enumerate(parsed.forward_activations(calibration[start : start + batch_size])[:hidden]):
                chunks[k].append(act)
    else:
        if timesteps < 1:
            raise ParamsError(f"timesteps = {timesteps}: the SNN activity needs at least one step")
        scales = activation_scales(parsed, calibration, [percentile])[percentile]
        snn = normalised_snn(parsed, scales)

        def record(k: int, current: torch.Tensor) -> None:
            if k < hidden:  # first layer: a constant (B, ...) current; later: (T, B, ...)
                chunks[k].append(current if k == 0 else current.mean(0))

        for start in range(0, len(calibration), batch_size):
            snn(calibration[start : start + batch_size], timesteps, current_hook=record)
    return [torch.cat(c) for c in chunks]


def _position_in_sequential(model: nn.Sequential) -> list[int]:
    """Indices in `model` of its conv/linear modules (BN/ReLU/pool/flatten skipped)."""
    return [i for i, m in enumerate(model) if isinstance(m, (nn.Conv2d, nn.Linear))]


def select_channels(model: nn.Sequential, activities: list[torch.Tensor], fraction: float) -> list[LayerSelection]:
    """Per hidden layer: PCA width for `fraction` and the strongest channels to keep."""
    check_fraction(fraction)
    positions = _position_in_sequential(model)
    if len(activities) != len(positions) - 1:
        raise ModelError(f"{len(activities)} activity tensors for {len(positions) - 1} hidden conv/linear layers")
    selections = []
    for index, activity in zip(positions, activities, strict=False):
        matrix = activity_matrix(activity)
        kept = components_for_variance(matrix, fraction)
        strength = matrix.double().pow(2).mean(0)
        # Stable order: strongest first, ties by channel number, so the choice is deterministic.
        order = sorted(range(len(strength)), key=lambda c: (-float(strength[c]), c))
        explained = explained_variance(matrix)
        kind = "conv" if isinstance(model[index], nn.Conv2d) else "linear"
        selections.append(LayerSelection(index, kind, matrix.shape[1], kept, [round(float(v), 6) for v in explained],
                                         sorted(order[:kept])))
    return selections


def _input_index(keep: list[int], features_per_channel: int) -> torch.Tensor:
    """Input features of a layer after a flatten: channel c covers c*HW ... c*HW + HW - 1."""
    base = torch.tensor(keep, dtype=torch.int64) * features_per_channel
    return (base[:, None] + torch.arange(features_per_channel)).flatten()


def slim_model(model: nn.Sequential, selections: list[LayerSelection], input_shape: tuple[int, ...]) -> nn.Sequential:
    """A copy of `model` with each hidden layer cut to its kept channels (weights copied)."""
    by_index = {s.index: s for s in selections}
    layers = [copy.deepcopy(m) for m in model]
    previous: list[int] | None = None      # channels kept by the last synaptic layer
    spatial = 1                            # H*W of the last conv output, for a following flatten
    x = torch.zeros((1, *input_shape))
    with torch.no_grad():
        for i, module in enumerate(model):
            y = module(x)
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                keep_out = by_index[i].keep_index if i in by_index else list(range(y.shape[1]))
                weight, bias = module.weight, module.bias
                if previous is not None:
                    if isinstance(module, nn.Linear):
                        weight = weight[:, _input_index(previous, spatial)]
                    else:
                        weight = weight[:, previous]
                weight = weight[keep_out]
                if isinstance(module, nn.Conv2d):
                    new = nn.Conv2d(weight.shape[1], weight.shape[0], module.kernel_size, module.stride, module.padding,
                                    bias=bias is not None)
                else:
                    new = nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None)
                new.weight.copy_(weight)
                if bias is not None:
                    new.bias.copy_(bias[keep_out])
                layers[i] = new
                previous = keep_out
            elif isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)) and previous is not None:
                layers[i] = _slice_batchnorm(module, previous)
            if y.dim() == 4:
                spatial = y.shape[2] * y.shape[3]
            elif isinstance(module, nn.Linear):
                spatial = 1  # a flatten keeps the last spatial size, a linear layer ends it
            x = y
    return nn.Sequential(*layers)


def _slice_batchnorm(bn: nn.Module, keep: list[int]) -> nn.Module:
    new = type(bn)(len(keep), eps=bn.eps, momentum=bn.momentum, affine=bn.affine, track_running_stats=bn.track_running_stats)
    with torch.no_grad():
        if bn.affine:
            new.weight.copy_(bn.weight[keep])
            new.bias.copy_(bn.bias[keep])
        if bn.track_running_stats:
            new.running_mean.copy_(bn.running_mean[keep])
            new.running_var.copy_(bn.running_var[keep])
    return new


def slim_widths(model: nn.Sequential) -> list[int]:
    """Output width of every conv/linear layer, in order."""
    return [m.out_channels if isinstance(m, nn.Conv2d) else m.out_features for m in model if isinstance(m, (nn.Conv2d, nn.Linear))]


@dataclass(frozen=True)
class SpatialSettings:
    """The spatial-pruning phase: PCA on `calibration_size` training images (activity `source`,
    the SNN's at `timesteps` with `percentile` normalisation), then `epochs` of retraining."""

    fraction: float
    source: str
    calibration_size: int
    timesteps: int
    percentile: float
    epochs: int
    lr: float
    batch_size: int


def spatial_pruning(ann: nn.Sequential, data: Any, settings: SpatialSettings, *, seed: int, device: str, run: Any,
                    checkpoint: Path) -> tuple[nn.Sequential, list[LayerSelection]]:
    """PCA widths, the slim ANN warm-started from the kept channels, brief retraining (resumable
    from `checkpoint`, epochs logged to `run`); the slim ANN in eval mode on the CPU."""

    calibration = data.calibration(settings.calibration_size, seed)
    activities = layer_activities(ann, calibration, settings.source, timesteps=settings.timesteps, percentile=settings.percentile)
    selections = select_channels(ann, activities, settings.fraction)
    slim = slim_model(ann, selections, data.input_shape)

    def log(stats: Any) -> None:
        run.log_metrics({"train_loss": stats.train_loss, "val_accuracy": stats.val_accuracy, "epoch_seconds": stats.seconds}, step=stats.epoch)
        print(f"  slim ANN epoch {stats.epoch}: loss {stats.train_loss:.4f} val {stats.val_accuracy:.4f} ({stats.seconds:.1f}s)")

    if settings.epochs:
        fit(slim, data.train, data.val, epochs=settings.epochs, batch_size=settings.batch_size, lr=settings.lr, weight_decay=0.0,
            seed=seed, device=device, on_epoch=log, checkpoint=checkpoint)
    return slim.cpu().eval(), selections


def plot_channels(selections: list[LayerSelection], fraction: float, path: str | Path) -> None:
    """Widths before/after pruning and each layer's cumulative explained variance."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
    names = [f"{s.kind} {k + 1}" for k, s in enumerate(selections)]
    positions = range(len(selections))
    left.bar([p - 0.2 for p in positions], [s.channels for s in selections], width=0.4, label="baseline")
    left.bar([p + 0.2 for p in positions], [s.kept for s in selections], width=0.4, label="after PCA")
    left.set_xticks(list(positions), labels=names)
    left.set(ylabel="channels / neurons", title="spatial pruning")
    left.legend()
    for name, s in zip(names, selections, strict=True):
        right.plot(range(1, len(s.explained) + 1), s.explained, label=name)
    right.axhline(fraction, color="k", ls="--", label=f"fraction {fraction}")
    right.set(xscale="log", xlabel="principal components", ylabel="cumulative explained variance", title="PCA of layer activity")
    right.legend(fontsize=7)
    save(fig, path)
