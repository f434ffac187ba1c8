"""Stage `stdp`: STDP-trained spiking CNN with a linear SVM readout (Kheradpisheh et al. 2018).

DoG on/off filtering -> intensity-to-latency coding over T steps -> conv IF layers (one
spike per neuron, per-layer thresholds) with earliest-spike max pooling between them.
Each conv layer learns alone, one image at a time, with the simplified STDP rule and
k-winner-take-all + lateral inhibition, on a subset of the training split, until
C = mean(w(1-w)) < stop_convergence or train_images[l] images; no backpropagation.
The readout max-pools the last layer's final potentials over a g x g grid (g=1 is the
paper's global pooling), standardises them and trains scikit-learn's LinearSVC
(primal, `dual=False`: n_samples >> n_features) on (a recorded subset of) the training
split; accuracy is measured on the test split. A control runs the same SVM on the same
architecture with its initial random weights (row `extra.control = "random"`, not a headline row).

Energy (45 nm op model): the DoG filter is a dense analog convolution of the image (one
k x k kernel per pixel; ON and OFF are the two signs of the same response) and the SVM is
a dense layer on analog features (standardisation folds into it): both count as MACs.
Every spike delivered to a conv layer counts fan-out synaptic operations (ACs).
Spikes per image = input (latency-coded) spikes + every hidden conv and pooling spike;
the last layer integrates without firing.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from dataclasses import asdict, dataclass

import torch

from spikebench import paths
from spikebench.data import SplitData, load_prepared
from spikebench.errors import ParamsError, cli_main
from spikebench.params import constraint, load_section
from spikebench.plots import plot_stdp_accuracy, plot_stdp_convergence, plot_stdp_kernels
from spikebench.predictions import Predictions
from spikebench.results import ResultRow, RowContext, write_rows
from spikebench.stdp_learning import (
    InputSpec,
    LayerSpec,
    LayerTrainingLog,
    LearningRate,
    STDPNetwork,
    train_layer,
    warn_silent_layers,
)
from spikebench.stdp_readout import Readout, ReadoutSetup, config_name, evaluate_readouts, require_grey_images
from spikebench.tracking import stage_run
from spikebench.training import seed_everything


@dataclass(frozen=True)
class StdpParams:
    timesteps: int = constraint(min=1)
    dog_size: int = constraint(min=1)
    dog_sigmas: list[float] = constraint(min_exclusive=0.0)
    dog_threshold: float = constraint(min=0.0)  # on [0, 1] images; SpykeTorch's 50 on 0..255
    channels: list[int] = constraint(nonempty=True, min=1)  # maps per conv layer
    kernels: list[int] = constraint(nonempty=True, min=1)
    thresholds: list[float] = constraint(nonempty=True, min_exclusive=0.0)  # last: used while learning only
    winners: list[int] = constraint(nonempty=True, min=1)  # k of k-WTA per layer
    radius: list[int] = constraint(nonempty=True, min=0)  # lateral inhibition radius per layer
    pools: list[int] = constraint(min=1)  # earliest-spike pooling after each layer but the last
    train_images: list[int] = constraint(nonempty=True, min=1)  # max STDP images per layer
    stop_convergence: float = constraint(min=0.0)
    a_plus: float = constraint(min_exclusive=0.0, max=1.0)
    a_minus: float = constraint(min=0.0, max=1.0)
    a_plus_max: float = constraint(min_exclusive=0.0, max=1.0)
    double_every: int = constraint(min=0)  # 0: constant a+/a- (paper); else SpykeTorch's doubling
    train_inhibition: bool = constraint()  # lateral inhibition on the input of deeper layers while they learn
    inference_inhibition: bool = constraint()  # the same at feature extraction (needs the T-step simulation)
    pooling: list[int] = constraint(nonempty=True, min=1)  # readout grids; the first is the headline
    svm_c: float = constraint(min_exclusive=0.0)
    svm_train_images: int = constraint(min=0)  # 0: the whole training split
    batch_size: int = constraint(min=1)

    def validate(self, prefix: str) -> None:
        n = len(self.channels)
        for name in ("kernels", "thresholds", "winners", "radius", "train_images"):
            if len(getattr(self, name)) != n:
                raise ParamsError(f"params.yaml: {prefix}.{name} needs one value per layer ({n}, as {prefix}.channels), got {getattr(self, name)}")
        if len(self.pools) != n - 1:
            raise ParamsError(f"params.yaml: {prefix}.pools needs one value per layer but the last ({n - 1}), got {self.pools}")
        if len(self.dog_sigmas) != 2 or not self.dog_sigmas[0] < self.dog_sigmas[1]:
            raise ParamsError(f"params.yaml: {prefix}.dog_sigmas must be [centre, surround] with centre < surround, got {self.dog_sigmas}")
        if any(k % 2 == 0 for k in self.kernels) or self.dog_size % 2 == 0:
            raise ParamsError(f"params.yaml: {prefix}.kernels and {prefix}.dog_size must be odd (same padding), got {self.kernels}, {self.dog_size}")

    def layer_specs(self) -> list[LayerSpec]:
        pools = [*self.pools, 1]
        return [
            LayerSpec(c, k, t, w, r, p)
            for c, k, t, w, r, p in zip(self.channels, self.kernels, self.thresholds, self.winners, self.radius, pools, strict=True)
        ]

    def input_spec(self) -> InputSpec:
        return InputSpec(self.timesteps, self.dog_size, (self.dog_sigmas[0], self.dog_sigmas[1]), self.dog_threshold)

    def arch(self) -> str:
        layers = zip(self.channels, self.kernels, self.thresholds, [*self.pools, 1], strict=True)
        parts = [f"conv{c}k{k}t{t:g}" + (f"-pool{p}" if p > 1 else "") for c, k, t, p in layers]
        return f"stdp-dog{self.dog_size}-" + "-".join(parts)

    def readout_setup(self) -> ReadoutSetup:
        return ReadoutSetup(self.pooling, self.inference_inhibition, self.batch_size, self.svm_c, self.dog_size)


def train_layers(network: STDPNetwork, params: StdpParams, images: torch.Tensor, order: torch.Tensor, run) -> list[LayerTrainingLog]:
    """STDP on each conv layer in turn, on the first `train_images[l]` images of the seeded order."""
    rate = LearningRate(params.a_plus, params.a_minus, params.a_plus_max, params.double_every)
    logs = []
    for index, limit in enumerate(params.train_images):
        log = train_layer(
            network, index, images[order[:limit]], rate, limit, params.stop_convergence, inhibit_input=params.train_inhibition,
            on_log=lambda i, seen, c: run.log_metrics({f"conv{i + 1}_convergence": c}, step=seen),
        )
        logs.append(log)
        print(f"stdp: conv{index + 1} learned on {log.images} images, C={log.curve[-1][1]:.4f} ({log.stopped_by})")
    return logs


def readout_row(context: RowContext, params: StdpParams, readout: Readout, logs: list[LayerTrainingLog], detail: dict,
                svm_images: int, test_images: int) -> ResultRow:
    """The row of one readout; only the STDP network at the first pooling grid is a headline row. Its
    predictions are the SVM's class for every test image (the whole split, in order)."""
    extra = {"pooling": "global" if readout.grid == 1 else f"{readout.grid}x{readout.grid}", "svm_c": params.svm_c,
             "svm_train_images": svm_images, "features": readout.features, "train_images": [log.images for log in logs],
             "convergence": [round(log.curve[-1][1], 5) for log in logs], "readout": "sklearn LinearSVC(dual=False)",
             "inference_inhibition": params.inference_inhibition, **detail}
    if readout.network == "random":
        extra["control"] = "random"
    headline = readout.network == "stdp" and readout.grid == params.pooling[0]
    return context.row("stdp", "spikebench", params.arch(), timesteps=params.timesteps, accuracy=readout.accuracy,
                       test_images=test_images, ann_accuracy=None, ops=readout.ops, params=(readout.params, readout.params),
                       weight_bits=32, headline=headline, extra=extra, predictions=Predictions.of(readout.predictions))


def read_out(networks: dict[str, tuple[STDPNetwork, list[int]]], params: StdpParams, data: SplitData, svm_index: torch.Tensor,
             logs: list[LayerTrainingLog], context: RowContext, run) -> tuple[list[ResultRow], dict[str, float], list[str]]:
    """Every network's readouts (grids per network) as rows; returns the rows, accuracy per label and the silent layers."""
    x_train, y_train = data.train
    rows, accuracies, silent = [], {}, []
    for name, (net, grids) in networks.items():
        setup = dataclasses.replace(params.readout_setup(), grids=grids)
        readouts, counts, detail = evaluate_readouts(name, net, setup, (x_train[svm_index], y_train[svm_index]), data.test,
                                                     data.num_classes)
        if name == "stdp":
            silent = warn_silent_layers(counts, params.layer_specs())
        for readout in readouts:
            rows.append(readout_row(context, params, readout, logs, detail, len(svm_index), len(data.test[1])))
            accuracies[readout.label] = readout.accuracy
            key = readout.label.replace(" ", "_")
            ops = readout.ops
            run.log_metrics({f"{key}_accuracy": readout.accuracy, f"{key}_spikes_per_image": ops.spikes,
                             f"{key}_synops_per_image": ops.synops})
            print(f"stdp: {readout.label}: test accuracy {readout.accuracy:.4f}, {ops.spikes:.0f} spikes/image, "
                  f"{ops.synops:.3g} SOPs/image")
    return rows, accuracies, silent


@cli_main
def main() -> None:
    common, params = load_section(StdpParams, "stdp")
    data = load_prepared()
    require_grey_images(data)
    seed_everything(common.seed)
    network = STDPNetwork(params.input_spec(), params.layer_specs(), seed=common.seed)
    control = copy.deepcopy(network)  # the untrained network: same architecture, its initial random weights
    x_train = data.train[0]
    order = torch.randperm(len(x_train), generator=torch.Generator().manual_seed(common.seed))
    svm_index = order[: len(x_train) if params.svm_train_images == 0 else min(params.svm_train_images, len(x_train))]
    started = time.perf_counter()

    with stage_run("stdp", method="stdp", library="spikebench", dataset=data.dataset, split_hash=data.split_hash, params=asdict(params)) as run:
        logs = train_layers(network, params, x_train, order, run)
        train_seconds = time.perf_counter() - started
        plot_stdp_convergence(logs, params.stop_convergence, paths.STDP_CONVERGENCE_PLOT)
        plot_stdp_kernels(network.weights[0], paths.STDP_KERNELS_PLOT)
        headline = params.pooling[0]
        rows, accuracies, silent = read_out({"stdp": (network, params.pooling), "random": (control, [headline])}, params, data,
                                            svm_index, logs, RowContext.of(data, common.seed, run), run)
        gap = accuracies[config_name("stdp", headline)] - accuracies[config_name("random", headline)]
        seconds = time.perf_counter() - started
        run.log_metrics({"stdp_minus_random": gap, "train_seconds": train_seconds, "silent_layers": len(silent), "seconds": seconds})
        plot_stdp_accuracy(accuracies, paths.STDP_ACCURACY_PLOT)
        for path in (paths.STDP_CONVERGENCE_PLOT, paths.STDP_KERNELS_PLOT, paths.STDP_ACCURACY_PLOT):
            run.log_artifact(path, "reports")
        write_rows(paths.STDP_RESULTS, rows)
        run.log_headline(rows)
    print(f"stdp: STDP beats the random-weight control by {gap * 100:.1f} points; stage took {seconds:.0f}s")


if __name__ == "__main__":
    main()
