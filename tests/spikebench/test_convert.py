"""Conversion mechanics: BN folding, normalisation, accuracy of the converted digits CNN, bad inputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from spikebench.convert import (
    NOT_RUN,
    activation_scales,
    convert,
    evaluate_timesteps,
    fixed_subset,
    parse_ann,
    powers_of_two,
    subset_evaluation,
)
from spikebench.errors import DatasetError, ModelError


def test_batchnorm_folding_preserves_the_ann_function():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4), nn.ReLU(), nn.AvgPool2d(2), nn.Flatten(),
                          nn.Linear(64, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Dropout(0.5), nn.Linear(8, 3))
    model.train()
    model(torch.rand(32, 1, 8, 8))  # populate running statistics
    for bn in (model[1], model[6]):
        bn.weight.data.uniform_(0.5, 2.0)
        bn.bias.data.uniform_(-0.5, 0.5)
    model.eval()
    parsed = parse_ann(model)
    x = torch.rand(5, 1, 8, 8)
    assert [type(m).__name__ for m in parsed.layers] == ["Conv2d", "AvgPool2d", "Flatten", "Linear", "Linear"]
    torch.testing.assert_close(parsed.forward_activations(x)[-1], model(x), rtol=1e-5, atol=1e-5)


def test_converted_digits_cnn_tracks_the_ann(digits_cnn, digits_data):
    x, y = digits_data.test
    calibration = digits_data.calibration(200, 0)
    ann_predictions = digits_cnn(x).argmax(1)
    subtract = convert(digits_cnn, calibration, 99.9, "subtract")
    zero = convert(digits_cnn, calibration, 99.9, "zero")
    ts = powers_of_two(32)
    soft = evaluate_timesteps(subtract, x, y, ts, digits_data.input_shape)
    hard = evaluate_timesteps(zero, x, y, ts, digits_data.input_shape)
    ann_correct = ann_predictions == y
    agreement = float((soft.correct[31] == ann_correct).float().mean())  # lower bound on identical predictions
    assert agreement >= 0.9
    assert soft.accuracy[32] >= float(ann_correct.float().mean()) - 0.05
    assert soft.accuracy[32] > soft.accuracy[2]  # accuracy builds up with T
    assert sum(soft.accuracy[t] for t in (4, 8, 16)) > sum(hard.accuracy[t] for t in (4, 8, 16))  # soft reset converges faster
    assert soft.metrics[32].synops > soft.metrics[8].synops > 0
    assert subtract.threshold_list() == [1.0, 1.0, 1.0, None]
    every_step = soft.every_step_accuracy()  # read from the same pass, at T between the evaluated ones too
    assert sorted(every_step) == list(range(1, 33))
    assert all(every_step[t] == soft.accuracy[t] for t in ts)


def test_every_step_accuracy_uses_only_images_that_ran_all_steps(digits_cnn, digits_data):
    x, y = digits_data.test[0][:40], digits_data.test[1][:40]
    net = convert(digits_cnn, digits_data.calibration(100, 0), 99.9, "subtract")
    partly_long = evaluate_timesteps(net, x, y, [8, 128], digits_data.input_shape, batch_size=10, long_images=10)
    all_long = evaluate_timesteps(net, x[:10], y[:10], [8, 128], digits_data.input_shape, batch_size=10)
    assert partly_long.every_step_accuracy() == all_long.every_step_accuracy()


def test_predictions_at_each_t_are_over_the_images_that_reached_it_by_test_split_position(digits_cnn, digits_data):
    x_test, y_test = digits_data.test
    index = torch.randperm(len(x_test), generator=torch.Generator().manual_seed(1))[:40]  # a permuted subset, as the stages use
    net = convert(digits_cnn, digits_data.calibration(100, 0), 99.9, "subtract")
    evaluation = evaluate_timesteps(net, x_test[index], y_test[index], [8, 128], digits_data.input_shape, batch_size=10,
                                    long_images=10, indices=index)
    assert evaluation.predicted.dtype == torch.int8 and evaluation.predicted.shape == (128, 40)
    assert (evaluation.predicted[8:, 10:] == NOT_RUN).all() and (evaluation.predicted[:8] >= 0).all()  # the rest stop at T=8
    labels = y_test.numpy()
    for t, images in ((8, 40), (128, 10)):
        found = evaluation.predictions_at(t)
        assert len(found) == images == evaluation.images[t]
        assert np.array_equal(found.indices, index[:images].numpy())
        assert float(found.correct(labels).mean()) == pytest.approx(evaluation.accuracy[t], abs=1e-12)
    # the stored classes are the network's: the first 10 images run alone to T=128 predict the same
    alone = net(x_test[index[:10]], 128).predictions()
    assert np.array_equal(evaluation.predictions_at(128).classes, alone.numpy())
    # a subset evaluation keeps the first images' predictions and positions; accuracy read from them is unchanged
    first = subset_evaluation(evaluation, 10)
    assert np.array_equal(first.predictions_at(8).indices, index[:10].numpy())
    assert first.accuracy[8] == evaluation.subset_accuracy(10)[8] == pytest.approx(float(first.predictions_at(8).correct(labels).mean()))
    assert first.every_step_accuracy() == evaluation.every_step_accuracy()
    # without indices the images are the split's first, in order
    plain = evaluate_timesteps(net, x_test[:20], y_test[:20], [4], digits_data.input_shape)
    assert np.array_equal(plain.predictions_at(4).indices, np.arange(20))
    with pytest.raises(DatasetError, match="3 test-split indices for 20 images"):
        evaluate_timesteps(net, x_test[:20], y_test[:20], [4], digits_data.input_shape, indices=index[:3])


def test_scales_grow_with_percentile(digits_cnn, digits_data):
    scales = activation_scales(parse_ann(digits_cnn), digits_data.calibration(100, 0), [99.0, 99.9, 100.0])
    for low, mid, high in zip(scales[99.0], scales[99.9], scales[100.0], strict=True):
        assert 0 < low <= mid <= high


@pytest.mark.parametrize("bad,message", [
    (nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(18, 3)), r"layer 2 \(MaxPool2d\)"),
    (nn.Sequential(nn.Flatten(), nn.Linear(64, 8), nn.Sigmoid(), nn.Linear(8, 3)), r"layer 2 \(Sigmoid\)"),
    (nn.Sequential(nn.Flatten(), nn.Linear(64, 8), nn.Linear(8, 3)), r"layer 2 \(Linear\).*without ReLU"),
    (nn.Sequential(nn.Flatten(), nn.Linear(64, 8), nn.ReLU()), "ends with ReLU"),
])
def test_unsupported_layers_are_named(bad, message):
    with pytest.raises(ModelError, match=message):
        parse_ann(bad)


def test_maxpool_with_a_chosen_strategy_converts():
    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(32, 3))
    assert isinstance(parse_ann(model, maxpool="avg").layers[1], nn.AvgPool2d)


def test_bad_calibration_is_refused(digits_cnn):
    parsed = parse_ann(digits_cnn)
    with pytest.raises(DatasetError, match="calibration set is empty"):
        activation_scales(parsed, torch.zeros(0, 1, 8, 8), [99.9])
    broken = parse_ann(digits_cnn)
    with torch.no_grad():
        broken.layers[2].weight[0, 0, 0, 0] = float("nan")
    with pytest.raises(ModelError, match=r"layer 2 \(Conv2d\): NaN"):
        activation_scales(broken, torch.rand(4, 1, 8, 8), [99.9])


def test_helpers():
    assert powers_of_two(64) == [1, 2, 4, 8, 16, 32, 64]
    assert powers_of_two(40) == [1, 2, 4, 8, 16, 32, 40]
    assert torch.equal(fixed_subset(50, 10, 3), fixed_subset(50, 10, 3))
    assert len(fixed_subset(50, 0, 3)) == 50


def test_main_order_starts_with_the_sweep_subset_and_keeps_every_image_once():
    from spikebench.convert import main_and_sweep_order, shared_first

    main, sweep = main_and_sweep_order(100, seed=0, sweep_images=10, main_images=0)
    assert torch.equal(main[:10], sweep) and torch.equal(sweep, fixed_subset(100, 10, 0))
    assert sorted(main.tolist()) == list(range(100))
    short, _ = main_and_sweep_order(100, seed=0, sweep_images=10, main_images=4)  # never fewer than the sweep's images
    assert torch.equal(short, main[:10])
    index = fixed_subset(100, 20, 0)
    shared = fixed_subset(100, 10, 1)
    reordered = shared_first(index, shared)
    assert torch.equal(reordered[:10], shared) and len(reordered) == 20 and len(set(reordered.tolist())) == 20
