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
architecture with its initial random weights (row `extra.control = "random"`).

Energy (45 nm op model): the DoG filter is a dense analog convolution of the image (one
k x k kernel per pixel; ON and OFF are the two signs of the same response) and the SVM is
a dense layer on analog features (standardisation folds into it): both count as MACs.
Every spike delivered to a conv layer counts fan-out synaptic operations (ACs).
Spikes per image = input (latency-coded) spikes + every hidden conv and pooling spike;
the last layer integrates without firing.
"""

from __future__ import annotations

import copy
import time
import warnings
from dataclasses import asdict, dataclass

import numpy as np
import torch

from baselines.training import seed_everything
from spikebench.data import SplitData, load_prepared
from spikebench.energy import energy_joules
from spikebench.errors import DatasetError, ParamsError, cli_main
from spikebench.params import constraint, load_section
from spikebench.plots import plt, save
from spikebench.results import ResultRow, write_rows
from spikebench.stdp import (
    ActivityCounts,
    InputSpec,
    LayerSpec,
    LayerTrainingLog,
    LearningRate,
    STDPNetwork,
    extract_features,
    train_layer,
    warn_silent_layers,
)
from spikebench.tracking import stage_run

RESULTS_PATH = "results/stdp.json"
CONVERGENCE_PLOT = "reports/stdp_convergence.png"
KERNELS_PLOT = "reports/stdp_conv1_kernels.png"
ACCURACY_PLOT = "reports/stdp_accuracy.png"


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


def grey_images(data: SplitData) -> None:
    if data.input_shape[0] != 1:
        raise DatasetError(
            f"stdp: dataset {data.dataset} has {data.input_shape[0]} channels; the STDP network needs grey images (fashion_mnist, mnist, digits)"
        )


def fit_svm(train: torch.Tensor, labels: torch.Tensor, c: float):
    """Standardised features -> scikit-learn LinearSVC (primal; squared hinge, L2, one-vs-rest)."""
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import LinearSVC

    model = make_pipeline(StandardScaler(), LinearSVC(C=c, dual=False, tol=1e-3))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=UserWarning)  # liblinear's convergence note; accuracy is what is measured
        model.fit(train.numpy().astype(np.float64), labels.numpy())
    return model


def svm_accuracy(model, features: torch.Tensor, labels: torch.Tensor) -> float:
    return float((model.predict(features.numpy().astype(np.float64)) == labels.numpy()).mean())


def plot_convergence(logs: list[LayerTrainingLog], threshold: float, path: str) -> None:
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for log in logs:
        images, values = zip(*log.curve, strict=True)
        ax.plot(images, values, marker=".", label=f"conv{log.layer} ({log.stopped_by})")
    ax.axhline(threshold, color="grey", linestyle="--", linewidth=1, label="stop")
    ax.set(xlabel="training images", ylabel="C = mean w(1-w)", title="STDP convergence per layer")
    ax.legend()
    save(fig, path)


def plot_kernels(weight: torch.Tensor, path: str) -> None:
    """First-layer features: ON minus OFF weights of each map (white: ON-centre preferred)."""
    maps = (weight[:, 0] - weight[:, 1]).numpy()
    cols = min(10, len(maps))
    rows = (len(maps) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 0.9, rows * 0.9), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, kernel in zip(axes.flat, maps, strict=False):
        ax.imshow(kernel, cmap="gray", vmin=-1, vmax=1)
    fig.suptitle("conv1 kernels learned by STDP (ON - OFF)")
    save(fig, path)


def plot_accuracy(results: dict[str, float], path: str) -> None:
    fig, ax = plt.subplots(figsize=(6, 3.5))
    labels = list(results)
    ax.bar(labels, [results[k] * 100 for k in labels], color=["tab:blue" if "random" not in k else "tab:grey" for k in labels])
    for i, k in enumerate(labels):
        ax.text(i, results[k] * 100 + 0.5, f"{results[k] * 100:.1f}", ha="center", fontsize=8)
    ax.set(ylabel="test accuracy (%)", title="STDP features + linear SVM", ylim=(0, 100))
    save(fig, path)


def config_name(network: str, grid: int) -> str:
    return f"{network} {grid}x{grid}" if grid > 1 else f"{network} global"


def activity(counts: ActivityCounts) -> tuple[float, float, dict]:
    spikes, synops = counts.per_image("spikes"), counts.per_image("synops")
    detail = {"spikes_per_layer": {k: round(v, 1) for k, v in spikes.items()}, "synops_per_layer": {k: round(v, 1) for k, v in synops.items()}}
    return sum(spikes.values()), sum(synops.values()), detail


@cli_main
def main() -> None:
    common, params = load_section(StdpParams, "stdp")
    data = load_prepared()
    grey_images(data)
    seed_everything(common.seed)
    layers = params.layer_specs()
    network = STDPNetwork(params.input_spec(), layers, seed=common.seed)
    control = copy.deepcopy(network)  # the untrained network: same architecture, its initial random weights
    rate = LearningRate(params.a_plus, params.a_minus, params.a_plus_max, params.double_every)
    x_train, y_train = data.train
    x_test, y_test = data.test
    order = torch.randperm(len(x_train), generator=torch.Generator().manual_seed(common.seed))
    n_svm = len(x_train) if params.svm_train_images == 0 else min(params.svm_train_images, len(x_train))
    svm_index = order[:n_svm]
    started = time.perf_counter()

    with stage_run("stdp", method="stdp", library="spikebench", dataset=data.dataset, split_hash=data.split_hash, params=asdict(params)) as run:
        logs = []
        for index, limit in enumerate(params.train_images):
            images = x_train[order[:limit]]
            log = train_layer(
                network, index, images, rate, limit, params.stop_convergence, inhibit_input=params.train_inhibition,
                on_log=lambda i, seen, c: run.log_metrics({f"conv{i + 1}_convergence": c}, step=seen),
            )
            logs.append(log)
            print(f"stdp: conv{index + 1} learned on {log.images} images, C={log.curve[-1][1]:.4f} ({log.stopped_by})")
        train_seconds = time.perf_counter() - started
        plot_convergence(logs, params.stop_convergence, CONVERGENCE_PLOT)
        plot_kernels(network.weights[0], KERNELS_PLOT)

        headline = params.pooling[0]
        accuracies: dict[str, float] = {}
        rows: list[ResultRow] = []
        for name, net, grids in (("stdp", network, params.pooling), ("random", control, [headline])):
            train_features, _ = extract_features(net, x_train[svm_index], grids, params.inference_inhibition, params.batch_size, f"{name} features train")
            test_features, counts = extract_features(net, x_test, grids, params.inference_inhibition, params.batch_size, f"{name} features test")
            if name == "stdp":
                silent = warn_silent_layers(counts, layers)
            spikes, synops, detail = activity(counts)
            dog_macs = float(np.prod(data.input_shape[1:]) * params.dog_size**2)
            for grid in grids:
                svm = fit_svm(train_features[grid], y_train[svm_index], params.svm_c)
                accuracy = svm_accuracy(svm, test_features[grid], y_test)
                label = config_name(name, grid)
                accuracies[label] = accuracy
                n_features = train_features[grid].shape[1]
                macs = dog_macs + n_features * data.num_classes
                n_params = net.parameter_count() + (n_features + 1) * data.num_classes
                extra = {"pooling": "global" if grid == 1 else f"{grid}x{grid}", "svm_c": params.svm_c, "svm_train_images": n_svm,
                         "features": n_features, "train_images": [log.images for log in logs],
                         "convergence": [round(log.curve[-1][1], 5) for log in logs], "readout": "sklearn LinearSVC(dual=False)",
                         "inference_inhibition": params.inference_inhibition, **detail}
                if name == "random":
                    extra["control"] = "random"
                if name == "random" or grid != headline:
                    extra["leaderboard"] = False
                rows.append(ResultRow(
                    method="stdp", library="spikebench", dataset=data.dataset, split_hash=data.split_hash, arch=params.arch(),
                    timesteps=params.timesteps, accuracy=accuracy, ann_accuracy=None, spikes_per_image=spikes,
                    synops_per_image=synops, macs_per_image=macs, energy_per_image_j=energy_joules(macs, synops),
                    params=n_params, nonzero_params=n_params, weight_bits=32, seed=common.seed,
                    mlflow_run_id=run.run_id, mlflow_experiment_id=run.experiment_id, extra=extra,
                ))
                key = label.replace(" ", "_")
                run.log_metrics({f"{key}_accuracy": accuracy, f"{key}_spikes_per_image": spikes, f"{key}_synops_per_image": synops})
                print(f"stdp: {label}: test accuracy {accuracy:.4f}, {spikes:.0f} spikes/image, {synops:.3g} SOPs/image")
        gap = accuracies[config_name("stdp", headline)] - accuracies[config_name("random", headline)]
        seconds = time.perf_counter() - started
        run.log_metrics({"stdp_minus_random": gap, "train_seconds": train_seconds, "silent_layers": len(silent), "seconds": seconds})
        for row in rows:
            row.extra["stage_seconds"] = round(seconds, 1)
        plot_accuracy(accuracies, ACCURACY_PLOT)
        for path in (CONVERGENCE_PLOT, KERNELS_PLOT, ACCURACY_PLOT):
            run.log_artifact(path, "reports")
        write_rows(RESULTS_PATH, rows)
    print(f"stdp: STDP beats the random-weight control by {gap * 100:.1f} points; stage took {seconds:.0f}s")


if __name__ == "__main__":
    main()
