"""ANN -> SNN conversion mechanics shared by the conversion methods (Rueckauer et al. 2017).

  1. `parse_ann`: walk an `nn.Sequential`, fold BatchNorm into the preceding conv/linear
     (W' = W gamma / sigma, b' = beta + (b - mu) gamma / sigma), drop Dropout/Identity,
     check that every hidden conv/linear is followed by ReLU and that only average
     pooling and flatten sit between layers. Anything else raises `ModelError` naming
     the layer index and type.
  2. `activation_scales`: run the ANN on a calibration subset of the *training* split and
     take the p-th percentile of each layer's positive ReLU activations (lambda_l), as
     in Rueckauer's SNN toolbox (zeros are excluded; p = 100 is the maximum).
  3. `normalised_snn`: data-based weight normalisation W_l <- W_l lambda_{l-1} / lambda_l,
     b_l <- b_l / lambda_l (lambda_0 = 1: the analog input is in [0, 1]), thresholds 1,
     the bias applied as a constant current every step, avg pooling applied to spikes,
     the output layer read as accumulated membrane potential (it never spikes).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch
from torch import nn

from spikebench.errors import DatasetError, ModelError, ParamsError
from spikebench.predictions import Predictions
from spikebench.spiking import SpikingNetwork, layer_spec

PERCENTILES = (99.0, 99.9, 99.99, 100.0)
MAXPOOL_STRATEGIES = ("avg",)
_PASS_THROUGH = (nn.Dropout, nn.Identity)


@dataclass
class ParsedAnn:
    """A conversion-ready ANN: layers in contract order (BN folded, ReLUs removed).

    `layers` holds copies of the synaptic (conv/linear), avgpool and flatten modules;
    `relu_after[i]` is True where the ANN applied ReLU after synaptic layer `i`.
    """

    layers: list[nn.Module]
    relu_after: dict[int, bool]

    @property
    def synaptic(self) -> list[int]:
        return [i for i, m in enumerate(self.layers) if isinstance(m, (nn.Conv2d, nn.Linear))]

    def forward_activations(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The ANN's post-ReLU activation of every synaptic layer (the last: its output)."""
        out = []
        for i, module in enumerate(self.layers):
            x = module(x)
            if i in self.relu_after:
                if self.relu_after[i]:
                    x = torch.relu(x)
                out.append(x)
        return out


def _fold_batchnorm(layer: nn.Module, bn: nn.Module, index: int) -> nn.Module:
    """A copy of `layer` with the eval-mode BatchNorm `bn` folded into weight and bias."""
    if bn.running_mean is None or bn.running_var is None:
        raise ModelError(f"ANN layer {index} ({type(bn).__name__}): no running statistics to fold; train with track_running_stats=True")
    folded = copy.deepcopy(layer)
    with torch.no_grad():
        scale = (bn.weight if bn.affine else torch.ones_like(bn.running_var)) / torch.sqrt(bn.running_var + bn.eps)
        shift = bn.bias if bn.affine else torch.zeros_like(bn.running_mean)
        bias = layer.bias if layer.bias is not None else torch.zeros_like(bn.running_mean)
        folded.weight.mul_(scale.view(-1, *([1] * (folded.weight.dim() - 1))))
        new_bias = shift + (bias - bn.running_mean) * scale
        if folded.bias is None:
            folded.bias = nn.Parameter(new_bias.clone())
        else:
            folded.bias.copy_(new_bias)
    return folded


def _check_synaptic(module: nn.Module, index: int) -> None:
    if isinstance(module, nn.Conv2d):
        k, s, p = module.kernel_size, module.stride, module.padding
        if module.groups != 1 or module.dilation != (1, 1) or k[0] != k[1] or s[0] != s[1] or isinstance(p, str) or p[0] != p[1]:
            raise ModelError(f"ANN layer {index} (Conv2d): only square kernels, equal stride/padding, groups=1, dilation=1 convert")
        if module.padding_mode != "zeros":
            raise ModelError(f"ANN layer {index} (Conv2d): padding_mode {module.padding_mode!r} does not convert; use zero padding")


def parse_ann(model: nn.Module, maxpool: str | None = None) -> ParsedAnn:
    """Validate and flatten a sequential ANN into conversion-ready layers.

    maxpool: None refuses MaxPool2d; "avg" replaces it by average pooling of the same
        kernel (an approximation: the ANN's max becomes a mean of spike rates).
    """
    if maxpool is not None and maxpool not in MAXPOOL_STRATEGIES:
        raise ModelError(f"max-pool strategy {maxpool!r} unknown; use one of {', '.join(MAXPOOL_STRATEGIES)} or None")
    modules = list(model.children()) if isinstance(model, nn.Sequential) else None
    if not modules:
        raise ModelError(f"ANN {type(model).__name__}: conversion needs a non-empty nn.Sequential of layers")
    layers: list[nn.Module] = []
    relu_after: dict[int, bool] = {}
    pending: int | None = None  # index into `layers` of a synaptic layer awaiting its activation
    for index, module in enumerate(modules):
        name = type(module).__name__
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            _check_synaptic(module, index)
            if pending is not None:
                raise ModelError(f"ANN layer {index} ({name}) follows a conv/linear layer without ReLU; only ReLU networks convert")
            layers.append(copy.deepcopy(module))
            pending = len(layers) - 1
        elif isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
            if pending is None or len(layers) - 1 != pending:
                raise ModelError(f"ANN layer {index} ({name}): BatchNorm must directly follow a conv/linear layer to be folded")
            layers[pending] = _fold_batchnorm(layers[pending], module, index)
        elif isinstance(module, nn.ReLU):
            if pending is None:
                raise ModelError(f"ANN layer {index} (ReLU): no conv/linear layer before it; the converter maps ReLU onto a synaptic layer's neurons")
            relu_after[pending] = True
            pending = None
        elif isinstance(module, (nn.AvgPool2d, nn.MaxPool2d, nn.Flatten)) and pending is not None:
            raise ModelError(f"ANN layer {index} ({name}) sits between a conv/linear layer and its ReLU; put the ReLU first")
        elif isinstance(module, nn.AvgPool2d):
            if _pool_geometry(module) is None:
                raise ModelError(f"ANN layer {index} (AvgPool2d): only square pooling with stride = kernel and no padding converts")
            layers.append(nn.AvgPool2d(_pool_geometry(module)))
        elif isinstance(module, nn.MaxPool2d):
            if maxpool is None:
                raise ModelError(f"ANN layer {index} (MaxPool2d): max-pooling has no spiking equivalent without a chosen strategy; "
                                 "use AvgPool2d in the ANN or pass maxpool='avg'")
            if _pool_geometry(module) is None:
                raise ModelError(f"ANN layer {index} (MaxPool2d): only square pooling with stride = kernel and no padding converts")
            layers.append(nn.AvgPool2d(_pool_geometry(module)))
        elif isinstance(module, nn.Flatten):
            layers.append(nn.Flatten())
        elif isinstance(module, _PASS_THROUGH):
            continue
        else:
            raise ModelError(f"ANN layer {index} ({name}): unsupported for conversion; only Conv2d, Linear, ReLU, BatchNorm, "
                             "AvgPool2d, Flatten, Dropout convert (replace other activations by ReLU and retrain)")
    if pending is None:
        raise ModelError("ANN ends with ReLU; the converter reads the last conv/linear layer's membrane potential, drop the final ReLU")
    relu_after[pending] = False
    synaptic = [i for i, m in enumerate(layers) if isinstance(m, (nn.Conv2d, nn.Linear))]
    if synaptic[-1] != len(layers) - 1:
        raise ModelError(f"ANN layer after the last conv/linear ({type(layers[-1]).__name__}) does not convert; the output layer must be last")
    return ParsedAnn(layers=layers, relu_after=relu_after)


def _pool_geometry(module: nn.Module) -> int | None:
    kernel = module.kernel_size if isinstance(module.kernel_size, int) else module.kernel_size[0]
    if not isinstance(module.kernel_size, int) and module.kernel_size[0] != module.kernel_size[1]:
        return None
    stride = module.stride if module.stride is not None else kernel
    stride = stride if isinstance(stride, int) else stride[0]
    padding = module.padding if isinstance(module.padding, int) else module.padding[0]
    if stride != kernel or padding != 0 or getattr(module, "ceil_mode", False) or getattr(module, "dilation", 1) not in (1, (1, 1)):
        return None
    return int(kernel)


def _check_calibration(calibration: torch.Tensor) -> None:
    if calibration is None or len(calibration) == 0:
        raise DatasetError("calibration set is empty; give at least one training image (raise the calibration_size param)")
    if not torch.isfinite(calibration).all():
        raise DatasetError("calibration images contain NaN or inf values; check the prepared data (dvc repro prepare)")


@torch.no_grad()
def activation_scales(parsed: ParsedAnn, calibration: torch.Tensor, percentiles: list[float], batch_size: int = 500) -> dict[float, list[float]]:
    """Per-percentile lambda_l of every hidden synaptic layer from the calibration images.

    lambda_l is the p-th percentile of the layer's positive ReLU activations over all
    calibration images and neurons. Returns {p: [lambda_1, ..., lambda_{L-1}]}.
    """
    _check_calibration(calibration)
    for p in percentiles:
        if not 0.0 < p <= 100.0:
            raise DatasetError(f"percentile {p} outside (0, 100]")
    synaptic = parsed.synaptic
    positives: list[list[torch.Tensor]] = [[] for _ in synaptic[:-1]]
    for start in range(0, len(calibration), batch_size):
        acts = parsed.forward_activations(calibration[start : start + batch_size])
        for k, act in enumerate(acts):
            if not torch.isfinite(act).all():
                index = synaptic[k]
                raise ModelError(f"ANN layer {index} ({type(parsed.layers[index]).__name__}): NaN/inf activations on the calibration "
                                 "set; the ANN weights are broken, retrain the baseline")
            if k < len(positives):
                positives[k].append(act[act > 0])
    scales: dict[float, list[float]] = {p: [] for p in percentiles}
    for k, chunks in enumerate(positives):
        values = torch.cat(chunks).double()
        if values.numel() == 0:
            index = synaptic[k]
            raise ModelError(f"ANN layer {index} ({type(parsed.layers[index]).__name__}): no positive activation on the calibration set "
                             "(dead layer); the layer cannot be normalised, retrain or use more calibration images")
        values, _ = values.sort()
        for p in percentiles:
            position = min(values.numel() - 1, max(0, int(round(p / 100.0 * (values.numel() - 1)))))
            scales[p].append(float(values[position]))
    return scales


def normalised_snn(parsed: ParsedAnn, scales: list[float], reset: str = "subtract", v_init: float = 0.0) -> SpikingNetwork:
    """The converted SNN: weights normalised by `scales` (lambda per hidden layer), thresholds 1."""
    synaptic = parsed.synaptic
    if len(scales) != len(synaptic) - 1:
        raise ModelError(f"need {len(synaptic) - 1} activation scales (one per hidden conv/linear layer), got {len(scales)}")
    specs = [layer_spec(m, i) for i, m in enumerate(parsed.layers)]
    net = SpikingNetwork(specs, [1.0] * (len(synaptic) - 1) + [None], reset=reset, v_init=v_init)
    previous = 1.0
    with torch.no_grad():
        for k, index in enumerate(synaptic):
            source, target = parsed.layers[index], net.layers[index]
            current = scales[k] if k < len(scales) else 1.0
            target.weight.copy_(source.weight * (previous / current))
            if source.bias is not None:
                target.bias.copy_(source.bias / current)
            previous = current
    return net.eval()


def unnormalised_snn(parsed: ParsedAnn, thresholds: list[float], reset: str = "subtract") -> SpikingNetwork:
    """The ANN's weights with the given per-layer thresholds (threshold balancing, RMP).

    Spikes carry 1, not the activation they stand for: layer l's spike rate approximates
    a_l / (theta_1 ... theta_l). The weights keep that ratio by themselves, but a bias
    (a constant current) must be divided by the same product of the earlier layers'
    thresholds to stay in proportion, b_l <- b_l / (theta_1 ... theta_{l-1}).
    """
    specs = [layer_spec(m, i) for i, m in enumerate(parsed.layers)]
    net = SpikingNetwork(specs, list(thresholds) + [None], reset=reset)
    scale = 1.0
    with torch.no_grad():
        for k, index in enumerate(parsed.synaptic):
            net.layers[index].weight.copy_(parsed.layers[index].weight)
            if parsed.layers[index].bias is not None:
                net.layers[index].bias.copy_(parsed.layers[index].bias / scale)
            if k < len(thresholds):
                scale *= thresholds[k]
    return net.eval()


def convert(model: nn.Module, calibration: torch.Tensor, percentile: float = 99.99, reset: str = "subtract",
            maxpool: str | None = None) -> SpikingNetwork:
    """Convert a ReLU ANN with data-based normalisation at one percentile (one call does it all)."""
    parsed = parse_ann(model.eval(), maxpool)
    scales = activation_scales(parsed, calibration, [percentile])[percentile]
    return normalised_snn(parsed, scales, reset)


# --- spike-based threshold balancing (Sengupta et al. 2019; RMP-SNN, Han et al. 2020) ---

def _truncated(net: SpikingNetwork, k: int) -> SpikingNetwork:
    """`net` up to synaptic layer k, which becomes a non-spiking read-out of its input current."""
    end = net.synaptic[k]
    head = SpikingNetwork(net.specs[: end + 1], net.threshold_list()[:k] + [None], reset=net.reset)
    head.layers.load_state_dict(net.layers[: end + 1].state_dict())
    return head.eval()


@torch.no_grad()
def balance_thresholds(parsed: ParsedAnn, calibration: torch.Tensor, timesteps: int, batch_size: int = 256) -> list[float]:
    """Threshold balancing on the spiking network, one layer after the other.

    With the thresholds of the earlier layers fixed, the soft-reset SNN runs `timesteps`
    steps on the calibration images and layer l's threshold becomes the largest synaptic
    input current (weighted spikes + bias) any of its neurons receives at any step.
    """
    n_hidden = len(parsed.synaptic) - 1
    thresholds = [1.0] * n_hidden
    for k in range(n_hidden):
        head = _truncated(unnormalised_snn(parsed, thresholds, reset="subtract"), k)
        peak = torch.tensor(-math.inf)

        def record(layer: int, current: torch.Tensor, k: int = k) -> None:
            nonlocal peak
            if layer == k:
                peak = torch.maximum(peak, current.max())

        for start in range(0, len(calibration), batch_size):
            steps = 1 if k == 0 else timesteps  # the first layer's current is constant
            head(calibration[start : start + batch_size], steps, current_hook=record)
        if not torch.isfinite(peak) or peak <= 0:
            raise ParamsError(f"rmp: layer {parsed.synaptic[k]} receives no positive input current during balancing; "
                              "raise rmp.balance_timesteps or rmp.calibration_size")
        thresholds[k] = float(peak)
    return thresholds


# --- evaluation shared by the conversion-style methods ---------------------------------

def powers_of_two(limit: int) -> list[int]:
    """1, 2, 4, ... up to and including `limit` (limit itself is added if not a power of 2)."""
    values = [1 << i for i in range(limit.bit_length()) if 1 << i <= limit]
    return values if values[-1] == limit else [*values, limit]


def fixed_subset(total: int, size: int, seed: int) -> torch.Tensor:
    """Indices of a fixed random subset (sorted) of `size` out of `total` items; all when size <= 0."""
    if size <= 0 or size >= total:
        return torch.arange(total)
    generator = torch.Generator().manual_seed(seed)
    return torch.randperm(total, generator=generator)[:size].sort().values


def main_and_sweep_order(total: int, seed: int, sweep_images: int, main_images: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(main order, sweep subset) of a test split of `total` images, both fixed by `seed`.

    The sweep subset is `fixed_subset(total, sweep_images, seed)`; the main order is that
    subset first, then the rest of the split in a seeded random order, cut to `main_images`
    (0: all of it; never fewer than the sweep's), so the sweep's curves are comparable
    with the main run's first images.
    """
    order = torch.randperm(total, generator=torch.Generator().manual_seed(seed))
    sweep = fixed_subset(total, sweep_images, seed)
    main = torch.cat([sweep, order[~torch.isin(order, sweep)]])
    if main_images:
        main = main[: max(main_images, len(sweep))]
    return main, sweep


def shared_first(index: torch.Tensor, shared: torch.Tensor) -> torch.Tensor:
    """`index` reordered to start with `shared` (added if missing), as long as the longer of the two."""
    return torch.cat([shared, index[~torch.isin(index, shared)]])[: max(len(index), len(shared))]


NOT_RUN = -1  # `TimestepEvaluation.predicted` of an image at a step it did not run to


@dataclass
class TimestepEvaluation:
    """Accuracy and per-image metrics at every evaluated T of one simulated configuration.

    `predicted[t - 1, i]` is the class image i was given after step t (int8 keeps 256 steps of the
    whole 10,000-image split at 2.5 MB), `NOT_RUN` where image i stopped earlier; `labels` are the
    images' labels and `indices` their positions in the test split (None: its first images, in order),
    so each row's per-image predictions can be saved (`predictions_at`).
    """

    timesteps: list[int]
    accuracy: dict[int, float]
    images: dict[int, int]  # images the accuracy at T was measured on (the first ones: see evaluate_timesteps)
    metrics: dict[int, object]  # T -> spikebench.energy.SnnMetrics
    predicted: torch.Tensor  # (T_max, images) int8
    labels: torch.Tensor  # (images,)
    indices: torch.Tensor | None = None  # (images,) test-split positions

    @property
    def correct(self) -> torch.Tensor:
        """(T_max, images) bool: image i correct after step t (False where it did not run to t)."""
        return self.predicted.long() == self.labels.long()

    def predictions_at(self, timesteps: int) -> Predictions:
        """The predicted class of every image that reached `timesteps`, by test-split position: the
        images the accuracy at that T is over."""
        n = self.images[timesteps]
        return Predictions.of(self.predicted[timesteps - 1, :n], None if self.indices is None else self.indices[:n])

    def subset_accuracy(self, images: int) -> dict[int, float]:
        """Accuracy at each evaluated T over the first `images` images (all of which must reach T)."""
        correct = self.correct[:, :images]  # computed once: the property compares the whole table
        return {t: float(correct[t - 1].float().mean()) for t in self.timesteps if self.images[t] >= images}

    def every_step_accuracy(self) -> dict[int, float]:
        """Accuracy after every step 1..T_max (not only the evaluated T), over the images that ran
        all T_max steps (the first ones: see `evaluate_timesteps`' long_images)."""
        t_max = self.timesteps[-1]
        correct = self.correct[:t_max, : self.images[t_max]].double()
        return {t: float(acc) for t, acc in enumerate(correct.mean(1).tolist(), start=1)}


def evaluate_timesteps(net: SpikingNetwork, x: torch.Tensor, y: torch.Tensor, timesteps: list[int], input_shape: tuple[int, ...],
                       batch_size: int = 250, long_images: int | None = None, progress: str | None = None,
                       indices: torch.Tensor | None = None) -> TimestepEvaluation:
    """Simulate once and read accuracy and op counts at every T in `timesteps`.

    long_images: only the first `long_images` images run to max(timesteps); the rest stop at
        the largest T <= 64. A step's result never depends on later steps, so the shorter
        runs give the same numbers for the T they reach; accuracy at T is over the images
        that reached T (recorded in `images`).
    indices: the test-split positions of (x, y) (None: the split's first len(x) images), kept
        with the per-image predictions.
    """
    from tqdm.auto import tqdm

    from spikebench.energy import fanout_maps, snn_metrics_per_step

    if indices is not None and len(indices) != len(x):
        raise DatasetError(f"evaluate_timesteps: {len(indices)} test-split indices for {len(x)} images")

    t_max = max(timesteps)
    t_short = max([t for t in timesteps if t <= 64] or [t_max])
    fanouts = fanout_maps(net, input_shape)
    n_spiking = len(net.synaptic) - 1
    correct = torch.zeros(t_max, dtype=torch.float64)
    predicted = torch.full((t_max, len(x)), NOT_RUN, dtype=torch.int8)
    counted = torch.zeros(t_max, dtype=torch.float64)
    spikes = [torch.zeros(t_max, dtype=torch.float64) for _ in range(n_spiking)]
    synops = [torch.zeros(t_max, dtype=torch.float64) for _ in range(n_spiking)]
    long_images = len(x) if long_images is None else long_images
    with torch.no_grad():
        for start in tqdm(range(0, len(x), batch_size), desc=progress, disable=progress is None, mininterval=5):
            stop = min(start + batch_size, len(x))
            steps = t_max if start < long_images else t_short
            result = net(x[start:stop], steps, fanouts=fanouts)
            classes = result.predictions_per_step()
            if classes.numel() and int(classes.max()) > torch.iinfo(torch.int8).max:  # int8 would wrap silently
                raise ModelError(f"evaluate_timesteps: class {int(classes.max())} does not fit the int8 predictions (at most 128 classes)")
            hits = classes == y[start:stop]
            predicted[:steps, start:stop] = classes.to(torch.int8)
            correct[:steps] += hits.sum(1).double()
            counted[:steps] += stop - start
            for k in range(n_spiking):
                spikes[k][:steps] += result.spikes_per_step[k].double()
                synops[k][:steps] += result.synops_per_step[k].double()
    evaluated = [t for t in timesteps if counted[t - 1] > 0]
    reached = counted.clamp(min=1)
    metrics = dict(zip(evaluated, snn_metrics_per_step(net, input_shape, spikes, synops, reached, at=evaluated), strict=True))
    return TimestepEvaluation(
        timesteps=evaluated,
        accuracy={t: float(correct[t - 1] / counted[t - 1]) for t in evaluated},
        images={t: int(counted[t - 1]) for t in evaluated},
        metrics=metrics,
        predicted=predicted,
        labels=y.clone(),
        indices=None if indices is None else torch.as_tensor(indices).clone(),
    )


def subset_evaluation(evaluation: TimestepEvaluation, images: int, max_timesteps: int | None = None) -> TimestepEvaluation:
    """The accuracy part of `evaluation` restricted to its first `images` images and T <= max_timesteps
    (op counts stay those of the whole run; the predictions those of the first images)."""
    accuracy = {t: a for t, a in evaluation.subset_accuracy(images).items() if max_timesteps is None or t <= max_timesteps}
    return TimestepEvaluation(timesteps=list(accuracy), accuracy=accuracy, images={t: images for t in accuracy},
                              metrics={t: evaluation.metrics[t] for t in accuracy}, predicted=evaluation.predicted[:, :images],
                              labels=evaluation.labels[:images],
                              indices=None if evaluation.indices is None else evaluation.indices[:images])
