"""PCA channel counts, channel selection and the slim ANN built from it."""

from __future__ import annotations

import copy

import pytest
import torch

from spikebench.errors import ParamsError
from spikebench.pca_pruning import (
    LayerSelection,
    activity_matrix,
    components_for_variance,
    layer_activities,
    select_channels,
    slim_model,
    slim_widths,
)


def low_rank(rank: int, channels: int = 12, samples: int = 400, noise: float = 0.0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(rank)
    basis = torch.randn(rank, channels, generator=generator)
    return torch.randn(samples, rank, generator=generator) @ basis + noise * torch.randn(samples, channels, generator=generator)


@pytest.mark.parametrize("rank", [1, 3, 7])
def test_components_recover_the_rank_of_low_rank_activity(rank):
    matrix = low_rank(rank, noise=1e-4)
    assert components_for_variance(matrix, 0.999) == rank


def test_fraction_one_keeps_every_component_of_full_rank_activity():
    assert components_for_variance(low_rank(3, noise=0.1), 1.0) == 12


def test_components_grow_with_the_variance_fraction():
    matrix = low_rank(10, noise=0.3)
    counts = [components_for_variance(matrix, f) for f in (0.5, 0.8, 0.95, 0.999)]
    assert counts == sorted(counts) and counts[0] < counts[-1]


@pytest.mark.parametrize("fraction", [0.0, -0.1, 1.01])
def test_variance_fraction_outside_zero_one_is_refused(fraction):
    with pytest.raises(ParamsError, match="variance_fraction"):
        components_for_variance(low_rank(2), fraction)


def test_conv_maps_give_one_sample_per_position():
    maps = torch.arange(2 * 3 * 4 * 5, dtype=torch.float32).view(2, 3, 4, 5)
    matrix = activity_matrix(maps)
    assert matrix.shape == (40, 3)
    assert torch.equal(matrix[:, 1], maps[:, 1].flatten())


@pytest.mark.parametrize("source", ["ann", "snn"])
def test_selection_on_a_trained_cnn_shrinks_every_hidden_layer(digits_cnn, digits_data, source):
    calibration = digits_data.calibration(128, seed=0)
    activities = layer_activities(digits_cnn, calibration, source, timesteps=4)
    assert [a.shape[1] for a in activities] == [16, 32, 64]
    selections = select_channels(digits_cnn, activities, 0.95)
    assert all(1 <= s.kept < s.channels and len(s.keep_index) == s.kept for s in selections)
    assert all(abs(s.explained[-1] - 1.0) < 1e-6 for s in selections)


def test_slim_model_equals_the_original_with_the_dropped_channels_silenced(digits_cnn, digits_data):
    """Removing a ReLU channel is the same as zeroing its weights and bias (it then outputs 0)."""
    keep = [[0, 2, 3, 7, 11], [1, 4, 5, 9, 20, 31], [0, 3, 8, 33, 63]]
    positions = [0, 3, 7]  # conv1, conv2, fc1 in the cnn Sequential
    selections = [LayerSelection(i, "x", 0, len(k), [], k) for i, k in zip(positions, keep, strict=True)]
    slim = slim_model(digits_cnn, selections, digits_data.input_shape)
    assert slim_widths(slim) == [5, 6, 5, 10]

    silenced = copy.deepcopy(digits_cnn)
    with torch.no_grad():
        for index, kept in zip(positions, keep, strict=True):
            dropped = [c for c in range(silenced[index].weight.shape[0]) if c not in kept]
            silenced[index].weight[dropped] = 0
            silenced[index].bias[dropped] = 0
    x = digits_data.test[0][:64]
    assert torch.allclose(slim(x), silenced(x), atol=1e-5)


def test_keeping_every_channel_reproduces_the_model(digits_cnn, digits_data):
    selections = [LayerSelection(i, "x", n, n, [], list(range(n))) for i, n in ((0, 16), (3, 32), (7, 64))]
    slim = slim_model(digits_cnn, selections, digits_data.input_shape)
    x = digits_data.test[0][:32]
    assert torch.allclose(slim(x), digits_cnn(x), atol=1e-6)


def test_unknown_activity_source_is_refused(digits_cnn, digits_data):
    with pytest.raises(ParamsError, match="pca_source"):
        layer_activities(digits_cnn, digits_data.train[0][:4], "membrane")
