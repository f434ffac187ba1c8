"""Mechanics of the STDP-trained spiking CNN of Kheradpisheh et al. 2018 (Neural Networks 99:56).

Everything here is time-discrete with T steps and at most one spike per neuron, so a
layer's activity is stored as *spike times*: an integer tensor where a value in
0..T-1 is the step of the neuron's only spike and the value T means "never fired"
(`NO_SPIKE(T) == T`). The pieces:

  dog_kernel / dog_on_off     on- and off-centre Difference-of-Gaussians filtering
  latency_code                intensity-to-latency coding (stronger -> earlier, rank bins)
  cumulative_spikes           spike times -> (T, ...) maps of "has fired by step t"
  conv_potentials / fire      non-leaky IF conv layer over all T steps, first threshold crossing
  final_spikes                the same layer's spikes without the time axis (see below)
  pointwise_inhibition        lateral inhibition: per position only the earliest map keeps its spike
  spike_time_pool             max pooling in time = the earliest spike of the window
  k_winners                   k-winner-take-all with one winner per map and a radius of inhibition
  stdp_update                 the simplified rule dw = +a+ w(1-w) (pre <= post) / -a- w(1-w)
  convergence                 C = mean(w(1-w)), the paper's stopping measure
  grid_max_pool               readout features: max potential per map over a g x g grid

Why `final_spikes` is exact: weights stay in (0, 1) under the multiplicative rule, so an
IF neuron's potential never decreases; whether it fires at all within T steps is
therefore decided by its potential after the last step. When nothing downstream looks
at spike *times* (no lateral inhibition at inference, features from final potentials),
one convolution replaces T of them with identical spikes (a test checks it).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from spikebench.errors import ParamsError


class SilentLayerWarning(UserWarning):
    """A layer emitted no spikes at all (its threshold is too high for its input)."""


# --- input: DoG filtering and intensity-to-latency coding -----------------------------

def dog_kernel(size: int, sigma_centre: float, sigma_surround: float) -> torch.Tensor:
    """On-centre DoG kernel (size x size), zero-mean and scaled to a centre value of 1.

    Same normalisation as SpykeTorch's DoGKernel, so a threshold of 50/255 on [0, 1]
    images equals its threshold of 50 on 0..255 images.
    """
    if size < 1 or size % 2 == 0:
        raise ParamsError(f"params.yaml: stdp.dog_size must be an odd number >= 1, got {size}")
    if not 0 < sigma_centre < sigma_surround:
        raise ParamsError(f"params.yaml: stdp.dog_sigmas must satisfy 0 < centre < surround, got {sigma_centre}, {sigma_surround}")
    r = torch.arange(size, dtype=torch.float64) - size // 2
    d2 = r[:, None] ** 2 + r[None, :] ** 2
    gauss = lambda s: torch.exp(-d2 / (2 * s * s)) / (2 * math.pi * s * s)  # noqa: E731
    kernel = gauss(sigma_centre) - gauss(sigma_surround)
    kernel = kernel - kernel.mean()
    return (kernel / kernel.max()).float()


def dog_on_off(images: torch.Tensor, kernel: torch.Tensor, threshold: float) -> torch.Tensor:
    """Grey images (B, 1, H, W) in [0, 1] -> (B, 2, H, W) ON and OFF contrast maps.

    ON keeps the positive DoG responses, OFF the negated negative ones; responses below
    `threshold` are set to zero (they will not spike). Padding keeps H x W.
    """
    if images.dim() != 4 or images.shape[1] != 1:
        raise ParamsError(f"stdp input: expected grey images (B, 1, H, W), got {tuple(images.shape)}; the STDP network takes one channel")
    response = F.conv2d(images.float(), kernel[None, None].to(images.device), padding=kernel.shape[-1] // 2)
    maps = torch.cat([response, -response], dim=1)
    return torch.where(maps >= threshold, maps, torch.zeros_like(maps)).clamp_min(0)


def latency_code(intensities: torch.Tensor, timesteps: int) -> torch.Tensor:
    """Intensity-to-latency coding: one spike per positive value, stronger -> earlier.

    Per image, the positive values are ranked in descending order and split into
    `timesteps` bins of (nearly) equal size, as SpykeTorch's Intensity2Latency does;
    a value's spike time is its bin. Zeros never spike (time T). Returns int16 times
    with the shape of `intensities` (B, ...).
    """
    flat = intensities.reshape(len(intensities), -1)
    order = torch.argsort(flat, dim=1, descending=True, stable=True)
    rank = torch.empty_like(order)
    rank.scatter_(1, order, torch.arange(flat.shape[1], device=flat.device).expand_as(order))
    active = flat > 0
    count = active.sum(1, keepdim=True).clamp_min(1)
    times = torch.div(rank * timesteps, count, rounding_mode="floor")
    times = torch.where(active, times, torch.full_like(times, timesteps))
    return times.to(torch.int16).reshape(intensities.shape)


def cumulative_spikes(times: torch.Tensor, timesteps: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Spike times (B, ...) -> float (T, B, ...) with 1 where the neuron has fired by step t."""
    steps = torch.arange(timesteps, device=times.device).view(-1, *([1] * times.dim()))
    return (times.unsqueeze(0) <= steps).to(dtype)


# --- convolutional IF layers, inhibition and pooling ---------------------------------

def conv_potentials(times: torch.Tensor, weight: torch.Tensor, timesteps: int, padding: int = 0) -> torch.Tensor:
    """Membrane potentials (T, B, C_out, H', W') of a non-leaky IF conv layer.

    With one spike per input neuron, the potential at step t is the convolution of the
    cumulative input spikes up to t (no reset is needed: each neuron fires at most once).
    """
    spikes = cumulative_spikes(times, timesteps)
    batch = spikes.reshape(-1, *times.shape[1:])
    potentials = F.conv2d(batch, weight, padding=padding)
    return potentials.reshape(timesteps, len(times), *potentials.shape[1:])


def fire(potentials: torch.Tensor, threshold: float) -> tuple[torch.Tensor, torch.Tensor]:
    """First step at which each neuron's potential reaches `threshold`.

    Potentials must be non-decreasing in time (true here: inputs are cumulative spikes
    and weights are non-negative), so the crossing step is T minus the number of steps
    at or above threshold. Returns int16 times (T where it never fires) and the
    potential at the firing step (0 where it never fires), both (B, C, H, W).
    """
    timesteps = potentials.shape[0]
    times = timesteps - (potentials >= threshold).sum(0, dtype=torch.int16)
    step = times.clamp(max=timesteps - 1).long().unsqueeze(0)
    at_fire = potentials.gather(0, step).squeeze(0)
    return times, torch.where(times < timesteps, at_fire, torch.zeros_like(at_fire))


def final_spikes(times: torch.Tensor, weight: torch.Tensor, timesteps: int, threshold: float, padding: int = 0) -> torch.Tensor:
    """Whether each neuron fires within T steps, from its potential after the last step.

    Exact for non-negative weights (potentials never decrease); returns a bool map.
    """
    return F.conv2d((times < timesteps).float(), weight, padding=padding) >= threshold


def pointwise_inhibition(times: torch.Tensor, potentials: torch.Tensor, timesteps: int) -> torch.Tensor:
    """Lateral inhibition across maps: at each position only the earliest spike survives.

    Ties in time go to the map with the higher potential at that step (then the lower
    map index). `times` and `potentials` are (B, C, H, W) as returned by `fire`.
    """
    key = _earliness(times, potentials, timesteps)
    winner = key.argmax(1, keepdim=True)
    keep = torch.zeros_like(times, dtype=torch.bool).scatter_(1, winner, True)
    return torch.where(keep, times, torch.full_like(times, timesteps))


def _earliness(times: torch.Tensor, potentials: torch.Tensor, timesteps: int) -> torch.Tensor:
    """A score ordering fired neurons by spike step (earlier first), then potential; -1 if silent."""
    scale = float(potentials.abs().max().clamp_min(1.0)) * 2.0 if potentials.numel() else 1.0
    score = (timesteps - times.double()) * scale + potentials.double()
    return torch.where(times < timesteps, score, torch.full_like(score, -1.0))


def spike_time_pool(times: torch.Tensor, kernel: int, stride: int | None = None, padding: int = 0) -> torch.Tensor:
    """Max pooling of spikes in time: each window emits its earliest spike (min of times)."""
    stride = stride or kernel
    pooled = -F.max_pool2d(-times.float(), kernel, stride, padding)
    return pooled.to(times.dtype)


def grid_max_pool(potentials: torch.Tensor, grid: int) -> torch.Tensor:
    """Readout features: max of each map's potentials over a grid x grid partition.

    grid=1 is the paper's global max pooling (one feature per map). Returns (B, C*g*g).
    """
    return F.adaptive_max_pool2d(potentials, grid).flatten(1)


# --- learning: k-WTA, STDP, convergence ------------------------------------------------

@dataclass(frozen=True)
class Winner:
    """A neuron chosen to learn: its map, position, spike step."""

    channel: int
    row: int
    col: int
    time: int


def k_winners(times: torch.Tensor, potentials: torch.Tensor, timesteps: int, k: int, radius: int) -> list[Winner]:
    """Up to `k` winners of one image's layer output (C, H, W) for STDP.

    The earliest spike wins (ties: higher potential, then the lower flat index); then
    its whole map is excluded (one winner per map, so maps learn different features) and
    so is a (2r+1)^2 neighbourhood in every map (lateral inhibition), and the next
    winner is picked.
    """
    score = _earliness(times, potentials, timesteps)
    height, width = score.shape[1:]
    winners: list[Winner] = []
    for _ in range(k):
        best = int(score.argmax())
        if score.view(-1)[best] < 0:
            break
        channel, rest = divmod(best, height * width)
        row, col = divmod(rest, width)
        winners.append(Winner(channel, row, col, int(times[channel, row, col])))
        score[channel] = -1
        score[:, max(0, row - radius) : row + radius + 1, max(0, col - radius) : col + radius + 1] = -1
    return winners


def stdp_delta(weight: torch.Tensor, pre_times: torch.Tensor, post_time: int | float, a_plus: float, a_minus: float) -> torch.Tensor:
    """Simplified STDP of Kheradpisheh et al. 2018 for the synapses of one post spike.

    dw = +a_plus * w(1-w) where the pre spike is not later than the post spike (a
    pre neuron that never fired counts as later), else -a_minus * w(1-w). The factor
    w(1-w) keeps w in (0, 1) without clipping.
    """
    soft = weight * (1 - weight)
    return torch.where(pre_times <= post_time, a_plus * soft, -a_minus * soft)


def convergence(weight: torch.Tensor) -> float:
    """The paper's learning-convergence measure C = mean(w(1-w)); 0 when all w are 0 or 1."""
    return float((weight * (1 - weight)).mean())


def init_weights(
    channels_out: int, channels_in: int, kernel: int, generator: torch.Generator, mean: float = 0.8, std: float = 0.05
) -> torch.Tensor:
    """Initial weights ~ N(0.8, 0.05), clipped into (0, 1) as the rule needs."""
    weight = torch.empty(channels_out, channels_in, kernel, kernel).normal_(mean, std, generator=generator)
    return weight.clamp_(1e-3, 1 - 1e-3)


@dataclass
class LearningRate:
    """a+ / a- schedule: constant (paper) or doubled every `double_every` images (SpykeTorch)."""

    a_plus: float
    a_minus: float
    a_plus_max: float
    double_every: int  # 0: constant

    def at(self, images_seen: int) -> tuple[float, float]:
        if not self.double_every:
            return self.a_plus, self.a_minus
        factor = 2 ** (images_seen // self.double_every)
        a_plus = min(self.a_plus * factor, max(self.a_plus_max, self.a_plus))
        return a_plus, a_plus * self.a_minus / self.a_plus


# --- the network ----------------------------------------------------------------------

@dataclass(frozen=True)
class LayerSpec:
    """One conv IF layer: maps, kernel, threshold, learning competition, pooling after it.

    The last layer's threshold is only used while it learns: for the readout its neurons
    integrate without firing and their final potentials are max-pooled (as in the paper).
    """

    channels: int
    kernel: int
    threshold: float
    winners: int
    radius: int
    pool: int = 1  # earliest-spike pooling after the layer (1: none); not used after the last layer


@dataclass(frozen=True)
class InputSpec:
    timesteps: int = 15
    dog_size: int = 7
    dog_sigmas: tuple[float, float] = (1.0, 2.0)
    dog_threshold: float = 0.2


@dataclass
class ActivityCounts:
    """Per-image totals of spikes and synaptic operations of a forward pass, summed over a batch."""

    images: int = 0
    spikes: dict[str, float] = field(default_factory=dict)
    synops: dict[str, float] = field(default_factory=dict)

    def add(self, kind: str, name: str, value: float) -> None:
        table = self.spikes if kind == "spikes" else self.synops
        table[name] = table.get(name, 0.0) + float(value)

    def per_image(self, kind: str) -> dict[str, float]:
        table = self.spikes if kind == "spikes" else self.synops
        return {k: v / max(self.images, 1) for k, v in table.items()}


def _synops(times: torch.Tensor, timesteps: int, channels_out: int, kernel: int, padding: int) -> float:
    """Synaptic operations caused by the input spikes of a conv layer (each spike x fan-out).

    Counts every delivered event, also to neurons that have already fired (an upper
    bound for hardware that skips them).
    """
    spiked = (times < timesteps).float().sum(1, keepdim=True)
    ones = torch.ones(1, 1, kernel, kernel, device=times.device)
    return float(F.conv2d(spiked, ones, padding=padding).sum()) * channels_out


class STDPNetwork:
    """DoG -> latency code -> [conv IF -> earliest-spike pool]* -> last conv (potentials).

    Convolutions use 'same' padding (k // 2) so feature maps keep their size until pooled.
    """

    def __init__(self, in_spec: InputSpec, layers: list[LayerSpec], seed: int) -> None:
        if not layers:
            raise ParamsError("params.yaml: stdp needs at least one conv layer")
        self.input = in_spec
        self.layers = layers
        self.dog = dog_kernel(in_spec.dog_size, *in_spec.dog_sigmas)
        generator = torch.Generator().manual_seed(seed)
        channels_in = 2
        self.weights: list[torch.Tensor] = []
        for spec in layers:
            self.weights.append(init_weights(spec.channels, channels_in, spec.kernel, generator))
            channels_in = spec.channels

    @property
    def timesteps(self) -> int:
        return self.input.timesteps

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Grey images (B, 1, H, W) -> input spike times (B, 2, H, W)."""
        maps = dog_on_off(images, self.dog, self.input.dog_threshold)
        return latency_code(maps, self.timesteps)

    def layer_times(self, index: int, times: torch.Tensor, inhibit: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """Time-resolved spikes of layer `index` (B, C, H, W) and their firing potentials."""
        spec = self.layers[index]
        potentials = conv_potentials(times, self.weights[index], self.timesteps, spec.kernel // 2)
        out, at_fire = fire(potentials, spec.threshold)
        if inhibit:
            out = pointwise_inhibition(out, at_fire, self.timesteps)
        return out, at_fire

    def input_to_layer(self, index: int, times: torch.Tensor, inhibit: bool) -> torch.Tensor:
        """Spike times arriving at layer `index` from input spike times (time-resolved)."""
        for i in range(index):
            out, _ = self.layer_times(i, times, inhibit)
            times = spike_time_pool(out, self.layers[i].pool) if self.layers[i].pool > 1 else out
        return times

    def features(
        self, images: torch.Tensor, grids: list[int], inhibit: bool, counts: ActivityCounts | None = None
    ) -> dict[int, torch.Tensor]:
        """Readout features per grid size from the last layer's final potentials.

        With `inhibit` the hidden layers are simulated step by step (lateral inhibition
        needs spike times); without it `final_spikes` gives the same spikes in one pass.
        """
        times = self.encode(images)
        T = self.timesteps
        if counts is not None:
            counts.images += len(images)
            counts.add("spikes", "input", (times < T).sum())
        for i, spec in enumerate(self.layers[:-1]):
            if counts is not None:
                counts.add("synops", f"conv{i + 1}", _synops(times, T, spec.channels, spec.kernel, spec.kernel // 2))
            if inhibit:
                out, _ = self.layer_times(i, times, inhibit=True)
            else:
                fired = final_spikes(times, self.weights[i], T, spec.threshold, spec.kernel // 2)
                out = torch.where(fired, torch.zeros_like(fired, dtype=torch.int16), torch.full_like(fired, T, dtype=torch.int16))
            if counts is not None:
                counts.add("spikes", f"conv{i + 1}", (out < T).sum())
            times = spike_time_pool(out, spec.pool) if spec.pool > 1 else out
            if counts is not None and spec.pool > 1:
                counts.add("spikes", f"pool{i + 1}", (times < T).sum())
        last = self.layers[-1]
        index = len(self.layers)
        if counts is not None:
            counts.add("synops", f"conv{index}", _synops(times, T, last.channels, last.kernel, last.kernel // 2))
        potentials = F.conv2d((times < T).float(), self.weights[-1], padding=last.kernel // 2)
        return {g: grid_max_pool(potentials, g) for g in grids}

    def parameter_count(self) -> int:
        return sum(w.numel() for w in self.weights)


def extract_features(
    network: STDPNetwork, images: torch.Tensor, grids: list[int], inhibit: bool, batch_size: int = 500, progress: str | None = None
) -> tuple[dict[int, torch.Tensor], ActivityCounts]:
    """Features of all `images` in batches, plus the spike and synop totals."""
    from tqdm.auto import tqdm

    counts = ActivityCounts()
    parts: dict[int, list[torch.Tensor]] = {g: [] for g in grids}
    starts = range(0, len(images), batch_size)
    for start in tqdm(starts, desc=progress, disable=progress is None, leave=False, mininterval=2):
        with torch.no_grad():
            out = network.features(images[start : start + batch_size], grids, inhibit, counts)
        for g in grids:
            parts[g].append(out[g])
    return {g: torch.cat(parts[g]) for g in grids}, counts


def warn_silent_layers(counts: ActivityCounts, layers: list[LayerSpec]) -> list[str]:
    """Warn, naming the layer and the parameter to lower, for every layer that never spiked."""
    silent = [name for name, value in counts.per_image("spikes").items() if value == 0]
    for name in silent:
        if name == "input":
            hint = "lower stdp.dog_threshold"
        elif name.startswith("conv"):
            index = int(name[4:]) - 1
            hint = f"lower stdp.thresholds[{index}] (now {layers[index].threshold:g})"
        else:
            hint = "lower the threshold of the conv layer before it"
        message = f"stdp: layer {name} is silent (no spike on any image), so the features carry no information; {hint}"
        warnings.warn(message, SilentLayerWarning, stacklevel=2)
    return silent


@dataclass
class LayerTrainingLog:
    """Convergence curve of one layer: (images seen, C) pairs, and why learning stopped."""

    layer: int
    curve: list[tuple[int, float]] = field(default_factory=list)
    images: int = 0
    stopped_by: str = "max_images"
    silent_images: int = 0


def train_layer(
    network: STDPNetwork,
    index: int,
    images: torch.Tensor,
    rate: LearningRate,
    max_images: int,
    stop_convergence: float,
    inhibit_input: bool = True,
    log_every: int = 100,
    on_log=None,
    batch_size: int = 250,
) -> LayerTrainingLog:
    """Unsupervised STDP training of layer `index`, one image at a time.

    The layers below are fixed, so their output spike times are computed for a batch at
    once; then, image by image, the layer's potentials over T steps pick k winners and
    each winner's map learns from its receptive field. Stops when C < `stop_convergence`
    or after `max_images` images.
    """
    from tqdm.auto import tqdm

    spec, weight = network.layers[index], network.weights[index]
    T, pad = network.timesteps, spec.kernel // 2
    log = LayerTrainingLog(layer=index + 1)
    log.curve.append((0, convergence(weight)))
    bar = tqdm(total=min(max_images, len(images)), desc=f"STDP conv{index + 1}", leave=False, mininterval=2)
    seen = 0
    for start in range(0, min(max_images, len(images)), batch_size):
        with torch.no_grad():
            batch = network.input_to_layer(index, network.encode(images[start : start + batch_size]), inhibit_input)
        padded = F.pad(batch, (pad, pad, pad, pad), value=T)
        # per-image ops are small: one thread avoids thread-barrier stalls on a busy machine
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        for b in range(len(batch)):
            if seen >= max_images:
                break
            if not _learn_from_image(weight, spec, T, batch[b : b + 1], padded[b], *rate.at(seen)):
                log.silent_images += 1
            seen += 1
            bar.update(1)
            if seen % log_every == 0 and _log_convergence(log, weight, seen, on_log, stop_convergence):
                break
        torch.set_num_threads(threads)
        if log.stopped_by == "convergence":
            break
    bar.close()
    _finish_log(log, weight, seen, spec)
    return log


def _learn_from_image(weight: torch.Tensor, spec: LayerSpec, timesteps: int, times: torch.Tensor, padded: torch.Tensor,
                      a_plus: float, a_minus: float) -> bool:
    """One image's STDP step: k winners over T steps, each winner's map learns from its receptive field.

    `times` is the image's (1, C, H, W) input spike times, `padded` the same padded for the kernel.
    Returns False when no neuron fired (nothing learnt).
    """
    pad = spec.kernel // 2
    potentials = conv_potentials(times, weight, timesteps, pad)[:, 0]
    fired, at_fire = fire(potentials[:, None], spec.threshold)
    winners = k_winners(fired[0], at_fire[0], timesteps, spec.winners, spec.radius)
    for w in winners:
        patch = padded[:, w.row : w.row + spec.kernel, w.col : w.col + spec.kernel]
        weight[w.channel] += stdp_delta(weight[w.channel], patch, w.time, a_plus, a_minus)
    return bool(winners)


def _log_convergence(log: LayerTrainingLog, weight: torch.Tensor, seen: int, on_log, stop_convergence: float) -> bool:
    """Record C after `seen` images; True (and `stopped_by` set) once C < stop_convergence."""
    c = convergence(weight)
    log.curve.append((seen, c))
    if on_log is not None:
        on_log(log.layer - 1, seen, c)
    if c < stop_convergence:
        log.stopped_by = "convergence"
        return True
    return False


def _finish_log(log: LayerTrainingLog, weight: torch.Tensor, seen: int, spec: LayerSpec) -> None:
    """Close the curve at the last image and warn if the layer never fired while learning."""
    log.images = seen
    if log.curve[-1][0] != seen:
        log.curve.append((seen, convergence(weight)))
    if seen and log.silent_images == seen:
        layer = log.layer - 1
        warnings.warn(
            f"stdp: layer conv{layer + 1} never fired while learning ({seen} images); lower stdp.thresholds[{layer}] ({spec.threshold:g})",
            SilentLayerWarning,
            stacklevel=3,
        )


def neuron_stdp_step(
    pre_times: torch.Tensor, weight: torch.Tensor, threshold: float, timesteps: int, a_plus: float, a_minus: float
) -> tuple[int | None, torch.Tensor]:
    """One post-synaptic IF neuron fed by one spike per input: its spike step and new weights.

    The same mechanics as the conv layers (cumulative-input potentials, first threshold
    crossing, `stdp_delta` at the post spike), on a single neuron; this is what the
    brian2 reference (`spikebench.backends.brian2_stdp`) is compared with. Returns
    (None, unchanged weights) when the neuron never fires.
    """
    potentials = cumulative_spikes(pre_times, timesteps, weight.dtype) @ weight.unsqueeze(1)  # (T, 1)
    times, _ = fire(potentials.view(timesteps, 1, 1, 1, 1), threshold)
    post = int(times.view(-1)[0])
    if post >= timesteps:
        return None, weight.clone()
    return post, weight + stdp_delta(weight, pre_times, post, a_plus, a_minus)
