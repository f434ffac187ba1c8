"""Tune the STDP readout's SVM C once on the validation split (not on the test split).

Trains the STDP network exactly as the `stdp` stage does (same params and seed), extracts the
headline pooling grid's features for the stage's SVM training subset and for the validation
split, and fits the SVM for each C. Writes benchmarks/stdp_svm_c.json; the chosen C goes into
params.yaml (stdp.svm_c) by hand, with the measured figures in its comment.

    python -m benchmarks.stdp_svm_c --c 0.003 0.01 0.03 0.1
"""

from __future__ import annotations

import argparse
import time

import torch

from methods.stdp import StdpParams
from spikebench.data import load_prepared
from spikebench.io import atomic_write_json
from spikebench.params import load_section
from spikebench.stdp_learning import LearningRate, STDPNetwork, extract_features, train_layer
from spikebench.stdp_readout import fit_svm, require_grey_images, svm_accuracy
from spikebench.training import seed_everything

OUTPUT = "benchmarks/stdp_svm_c.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--c", type=float, nargs="+", default=[0.003, 0.01, 0.03, 0.1])
    args = parser.parse_args()
    common, params = load_section(StdpParams, "stdp")
    data = load_prepared()
    require_grey_images(data)
    seed_everything(common.seed)
    network = STDPNetwork(params.input_spec(), params.layer_specs(), seed=common.seed)
    rate = LearningRate(params.a_plus, params.a_minus, params.a_plus_max, params.double_every)
    x_train, y_train = data.train
    x_val, y_val = data.val
    order = torch.randperm(len(x_train), generator=torch.Generator().manual_seed(common.seed))
    n_svm = len(x_train) if params.svm_train_images == 0 else min(params.svm_train_images, len(x_train))
    for index, limit in enumerate(params.train_images):
        train_layer(network, index, x_train[order[:limit]], rate, limit, params.stop_convergence, inhibit_input=params.train_inhibition)
    grid = params.pooling[0]
    train_features, _ = extract_features(network, x_train[order[:n_svm]], [grid], params.inference_inhibition, params.batch_size, "train")
    val_features, _ = extract_features(network, x_val, [grid], params.inference_inhibition, params.batch_size, "val")
    results = []
    for c in args.c:
        started = time.perf_counter()
        svm = fit_svm(train_features[grid], y_train[order[:n_svm]], c)
        accuracy = svm_accuracy(svm, val_features[grid], y_val)
        results.append({"c": c, "val_accuracy": accuracy, "fit_seconds": round(time.perf_counter() - started, 1)})
        print(f"C={c:g}: validation accuracy {accuracy:.4f}")
    atomic_write_json(OUTPUT, {"pooling": grid, "svm_train_images": n_svm, "val_images": len(y_val), "results": results,
                               "best_c": max(results, key=lambda r: r["val_accuracy"])["c"]})


if __name__ == "__main__":
    main()
