"""The linear SVM readout of STDP features (Kheradpisheh et al. 2018) and its op counts.

The last conv layer's final potentials, max-pooled over a g x g grid (g = 1: the paper's
global pooling), are standardised and fed to scikit-learn's LinearSVC (primal,
`dual=False`: n_samples >> n_features). Energy (45 nm op model): the DoG filter is a
dense analog convolution of the image and the SVM a dense layer on analog features
(standardisation folds into it), both MACs; every spike delivered to a conv layer costs
fan-out synaptic operations (ACs).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import torch

from spikebench.data import SplitData
from spikebench.energy import OpCounts
from spikebench.errors import DatasetError
from spikebench.stdp_learning import ActivityCounts, STDPNetwork, extract_features


def require_grey_images(data: SplitData) -> None:
    """The STDP network's DoG filtering needs one input channel."""
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
    return svm_scored_predictions(model, features, labels)[0]


def svm_scored_predictions(model, features: torch.Tensor, labels: torch.Tensor) -> tuple[float, np.ndarray]:
    """(accuracy, predicted class per image): a readout row's accuracy with the predictions it is computed from."""
    predicted = np.asarray(model.predict(features.numpy().astype(np.float64)))
    return float((predicted == labels.numpy()).mean()), predicted


def config_name(network: str, grid: int) -> str:
    """'stdp 4x4', 'stdp global', 'random 4x4': one readout configuration."""
    return f"{network} {grid}x{grid}" if grid > 1 else f"{network} global"


def activity(counts: ActivityCounts) -> tuple[float, float, dict]:
    """(spikes, synops) per image over all layers, and the per-layer detail for a row's `extra`."""
    spikes, synops = counts.per_image("spikes"), counts.per_image("synops")
    detail = {"spikes_per_layer": {k: round(v, 1) for k, v in spikes.items()}, "synops_per_layer": {k: round(v, 1) for k, v in synops.items()}}
    return sum(spikes.values()), sum(synops.values()), detail


@dataclass(frozen=True)
class Readout:
    """One readout configuration measured on the test split."""

    network: str  # "stdp" or "random" (the untrained control)
    grid: int
    accuracy: float
    features: int
    ops: OpCounts
    params: int  # conv weights + SVM weights and biases
    predictions: np.ndarray = field(repr=False, compare=False)  # predicted class of each test image, in split order

    @property
    def label(self) -> str:
        return config_name(self.network, self.grid)


@dataclass(frozen=True)
class ReadoutSetup:
    """How features are extracted and read out (from the stage's params)."""

    grids: list[int]
    inhibition: bool
    batch_size: int
    svm_c: float
    dog_size: int


def evaluate_readouts(name: str, net: STDPNetwork, setup: ReadoutSetup, train: tuple[torch.Tensor, torch.Tensor],
                      test: tuple[torch.Tensor, torch.Tensor], num_classes: int) -> tuple[list[Readout], ActivityCounts, dict]:
    """Features of `train` and `test`, an SVM per grid; returns the readouts, the test activity and its per-layer detail."""
    train_features, _ = extract_features(net, train[0], setup.grids, setup.inhibition, setup.batch_size, f"{name} features train")
    test_features, counts = extract_features(net, test[0], setup.grids, setup.inhibition, setup.batch_size, f"{name} features test")
    spikes, synops, detail = activity(counts)
    dog_macs = float(np.prod(test[0].shape[2:]) * setup.dog_size**2)  # per pixel of the (grey) image
    readouts = []
    for grid in setup.grids:
        svm = fit_svm(train_features[grid], train[1], setup.svm_c)
        n_features = train_features[grid].shape[1]
        ops = OpCounts(spikes, synops, dog_macs + n_features * num_classes)
        scored, predicted = svm_scored_predictions(svm, test_features[grid], test[1])
        readouts.append(Readout(name, grid, scored, n_features, ops, net.parameter_count() + (n_features + 1) * num_classes,
                                predicted))
    return readouts, counts, detail
