"""The compression methods' shared mechanics: rows against the ANN, fixed masks, sparse MACs, schedules."""

from __future__ import annotations

import contextlib
import copy

import pytest
import torch

from spikebench.attention import fixed_mask_hooks, sparse_macs
from spikebench.compression import MethodRows, Schedule, SnnTuning, lower_timesteps, neuron_parameters
from spikebench.convert import convert
from spikebench.energy import MacCounter, count_params
from spikebench.results import Reference, RowContext
from spikebench.snn_training import measure_snn, trainable
from spikebench.sparse_masks import irregular_masks, synaptic_layers
from spikebench.tracking import StageRun
from spikebench.training import scored_predictions


@pytest.fixture(scope="module")
def snn(digits_cnn, digits_data):
    return convert(digits_cnn, digits_data.train[0][:128], 99.9, "subtract")


def _rows(digits_data, **fields) -> MethodRows:
    reference = Reference(accuracy=0.97, energy_j=1e-6, params=9000, arch="cnn")
    return MethodRows(RowContext.of(digits_data, seed=3), reference, "st_pruning", "cnn 8-16", 100, {"compression": 2.0}, **fields)


def test_snn_row_fills_the_typed_fields_and_compares_with_the_ann(snn, digits_data):
    test = (digits_data.test[0][:100], digits_data.test[1][:100])
    measured = measure_snn(snn, test, 4, digits_data.input_shape)
    row = _rows(digits_data).snn(snn, measured, 4, weight_bits=8, headline=True, extra={"step": "temporal"},
                                 model_path="models/x.pt", mappable=True)
    assert (row.method, row.library, row.arch, row.timesteps, row.weight_bits, row.seed) == ("st_pruning", "spikebench", "cnn 8-16", 4, 8, 3)
    assert row.headline and row.mappable and row.model_path == "models/x.pt" and row.test_images == 100
    assert (row.params, row.nonzero_params) == count_params(snn) and row.ann_accuracy == 0.97
    assert row.accuracy == measured.accuracy and row.energy_per_image_j == measured.energy_j
    assert row.extra["compression"] == 2.0 and row.extra["step"] == "temporal"  # shared details first, the row's own after
    assert row.extra["energy_ratio_vs_ann"] == round(1e-6 / measured.energy_j, 2)
    # the row carries the classes its accuracy is computed from, by test-split position (default: the first images)
    assert row.predictions is not None and list(row.predictions.indices) == list(range(100))
    assert float(row.predictions.correct(digits_data.test[1].numpy()).mean()) == pytest.approx(row.accuracy, abs=1e-6)


def test_rows_map_their_predictions_to_the_test_split_positions(snn, digits_data):
    index = torch.arange(len(digits_data.test[1])).flip(0)[:100]  # 100 images, not the split's first
    measured = measure_snn(snn, (digits_data.test[0][index], digits_data.test[1][index]), 4, digits_data.input_shape)
    row = _rows(digits_data, test_index=index).snn(snn, measured, 4)
    assert list(row.predictions.indices) == index.tolist()
    assert float(row.predictions.correct(digits_data.test[1].numpy()).mean()) == pytest.approx(row.accuracy, abs=1e-6)


def test_ann_row_is_never_a_headline_and_prices_its_macs(digits_cnn, digits_data):
    macs = float(MacCounter(digits_cnn).count(digits_data.input_shape))
    accuracy, predicted = scored_predictions(digits_cnn, (digits_data.test[0][:100], digits_data.test[1][:100]))
    row = _rows(digits_data).ann(digits_cnn, accuracy, macs, predictions=predicted, extra={"step": "spatial"})
    assert row.library == "torch" and row.timesteps == 0 and not row.headline and row.macs_per_image == macs
    assert row.energy_per_image_j == pytest.approx(macs * 4.6e-12)
    assert float(row.predictions.correct(digits_data.test[1].numpy()).mean()) == pytest.approx(row.accuracy, abs=1e-6)


def test_fixed_mask_hooks_keep_pruned_weights_zero_and_the_readout_without_leak(snn):
    net = trainable(snn, learn_threshold=True, learn_leak=True)
    masks = irregular_masks(synaptic_layers(net.layers), 0.3, dense_first_last=False)
    before_step, after_step = fixed_mask_hooks(masks)
    masks.apply(synaptic_layers(net.layers))
    with torch.no_grad():
        for layer in synaptic_layers(net.layers):
            layer.weight.add_(1.0)
        net.leaks[-1] = 0.5
    after_step(net)
    for layer, mask in zip(synaptic_layers(net.layers), masks.weight, strict=True):
        assert torch.all(layer.weight[~mask.bool()] == 0)
    assert float(net.leaks.detach()[-1]) == 1.0
    assert callable(before_step)


def test_sparse_macs_count_only_non_zero_weights(digits_cnn, digits_data):
    dense = float(MacCounter(digits_cnn).count(digits_data.input_shape))
    half = copy.deepcopy(digits_cnn)
    with torch.no_grad():
        for layer in synaptic_layers(list(half.children())):
            layer.weight[: layer.weight.shape[0] // 2] = 0.0
    assert sparse_macs(digits_cnn, digits_data.input_shape) == pytest.approx(dense)
    assert sparse_macs(half, digits_data.input_shape) == pytest.approx(dense / 2, rel=0.01)


def test_lower_timesteps_trains_each_step_with_its_seed_and_checkpoint(snn, digits_data, tmp_path):
    net = trainable(snn)
    seen = []
    tuning = SnnTuning(batch_size=64, lr=1e-3, neuron_lr=1e-3, train_subset=64, val_subset=32, device="cpu")
    lower_timesteps(net, digits_data, Schedule([3, 2], first_epochs=1, step_epochs=1), tuning, seed=0,
                    checkpoints=str(tmp_path / "t_"), run_at=lambda _: contextlib.nullcontext(StageRun(None)),
                    on_trained=lambda run, t, epochs: seen.append((t, epochs)))
    assert seen == [(3, 1), (2, 1)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t_T2.pt", "t_T3.pt"]
    assert set(neuron_parameters(net)) == {"thresholds", "leaks"}
