"""Sparsity masks at a fixed density, prune-and-regrow, the connectivity check, sparse training."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from baselines.models import ArchConfig, build_model
from spikebench.errors import ModelError, ParamsError
from spikebench.sparse_masks import (
    check_connected,
    irregular_counts,
    irregular_masks,
    regrow_by_gradient,
    structured_masks,
    synaptic_layers,
    train_sparse,
    update_masks,
)
from spikebench.training import accuracy

SHAPE = (1, 8, 8)


def _cnn(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return build_model(ArchConfig("cnn", SHAPE, 10, channels=(8, 16, 32)))


def test_irregular_masks_keep_the_largest_weights_at_the_target_density():
    model = _cnn()
    modules = list(model.children())
    masks = irregular_masks(modules, 0.2)
    layers = synaptic_layers(modules)
    sizes = [layer.weight.numel() for layer in layers]
    assert masks.nonzero_weights() == pytest.approx(0.2 * sum(sizes), abs=len(sizes))
    assert masks.layer_densities()[0] == 1.0 and masks.layer_densities()[-1] == 1.0  # dense first and last layers
    for layer, mask in zip(layers[1:-1], masks.weight[1:-1], strict=True):
        kept, pruned = layer.weight.abs()[mask], layer.weight.abs()[~mask]
        assert kept.min() >= pruned.max()
    uniform = irregular_masks(modules, 0.25, dense_first_last=False)
    assert uniform.layer_densities() == pytest.approx([0.25] * 4, abs=0.01)


def test_applying_masks_zeroes_exactly_the_masked_weights():
    model = _cnn()
    masks = irregular_masks(list(model.children()), 0.2)
    layers = synaptic_layers(list(model.children()))
    masks.apply(layers)
    for layer, mask in zip(layers, masks.weight, strict=True):
        assert torch.equal(layer.weight != 0, mask)


def test_structured_masks_remove_whole_channels_and_the_weights_reading_them():
    model = _cnn()
    modules = list(model.children())
    masks = structured_masks(modules, SHAPE, 0.5)
    conv1, conv2, fc1, fc2 = synaptic_layers(modules)
    assert masks.active_channels() == [4, 8, 16, 10]  # the output layer keeps every class
    kept1 = masks.weight[0].flatten(1).any(1)
    assert torch.equal(masks.bias[0], kept1)
    assert torch.equal(masks.weight[1].any(0).flatten(1).any(1), kept1)  # conv2 reads only conv1's kept channels
    kept2 = masks.weight[1].flatten(1).any(1)
    features = masks.weight[2].any(0).view(16, 2, 2)  # fc1 input = conv2 channels x 2 x 2 after pooling and flatten
    assert torch.equal(features.flatten(1).all(1), kept2) and torch.equal(features.flatten(1).any(1), kept2)
    masks.apply([conv1, conv2, fc1, fc2])
    model.eval()
    x = torch.rand(4, *SHAPE)
    hidden = model[:2](x)  # conv1 + ReLU
    assert hidden[:, ~kept1].abs().sum() == 0 and hidden[:, kept1].abs().sum() > 0


@pytest.mark.parametrize("density", [0.0, -0.5, 1.5, float("nan")])
def test_a_density_outside_0_1_is_refused_on_one_line(density):
    modules = list(_cnn().children())
    for build in (lambda: irregular_masks(modules, density), lambda: structured_masks(modules, SHAPE, density)):
        with pytest.raises(ParamsError, match=r"must be in \(0, 1\]") as caught:
            build()
        assert "\n" not in str(caught.value)


def test_a_density_too_low_for_dense_first_and_last_layers_is_refused():
    with pytest.raises(ParamsError, match="dense first and last layers alone hold"):
        irregular_counts([100, 1000, 100], 0.1)


def test_a_mask_that_disconnects_a_layer_is_refused_naming_it():
    modules = list(_cnn().children())
    masks = irregular_masks(modules, 1.0)
    masks.weight[1].zero_()
    with pytest.raises(ModelError, match=r"layer 3 \(Conv2d, synaptic layer 1\): the sparsity mask disconnects it") as caught:
        check_connected(masks, modules, SHAPE)
    assert "\n" not in str(caught.value)
    # non-zero weights are not enough: conv2 only reads channel 1 of conv1, which conv1's mask switched off
    masks = irregular_masks(modules, 1.0)
    masks.weight[0].zero_()
    masks.weight[0][0] = True
    masks.weight[1].zero_()
    masks.weight[1][:, 1] = True
    with pytest.raises(ModelError, match=r"layer 3 \(Conv2d"):
        check_connected(masks, modules, SHAPE)
    masks.weight[1][:, 0] = True
    check_connected(masks, modules, SHAPE)


def test_prune_and_regrow_keeps_the_density_and_regrows_weights_that_grew():
    model = _cnn()
    modules = list(model.children())
    masks = irregular_masks(modules, 0.2)
    counts = [int(m.sum()) for m in masks.weight]
    fc1 = synaptic_layers(modules)[2]
    pruned = (~masks.weight[2]).nonzero()[0]
    with torch.no_grad():
        fc1.weight[tuple(pruned)] = 10.0  # gradient feedback made a pruned latent weight large
    assert update_masks(masks, modules) == 1
    assert bool(masks.weight[2][tuple(pruned)])
    assert [int(m.sum()) for m in masks.weight] == counts

    structured = structured_masks(modules, SHAPE, 0.5)
    conv2 = synaptic_layers(modules)[1]
    dead = int((~structured.bias[1]).nonzero()[0])
    with torch.no_grad():
        conv2.weight[dead] = 5.0
    assert update_masks(structured, modules, SHAPE) == 1
    assert bool(structured.bias[1][dead]) and structured.active_channels()[1] == 8


def test_rigl_drops_the_smallest_weights_and_regrows_the_largest_gradients_at_zero():
    model = _cnn()
    modules = list(model.children())
    layers = synaptic_layers(modules)
    masks = irregular_masks(modules, 0.2)
    masks.apply(layers)
    counts = [int(m.sum()) for m in masks.weight]
    fc1 = layers[2]
    active = masks.weight[2].flatten()
    smallest = int(torch.where(active, fc1.weight.detach().abs().flatten(), torch.tensor(float("inf"))).argmin())
    wanted = int((~active).nonzero()[3])
    fc1.weight.grad = torch.zeros_like(fc1.weight)
    fc1.weight.grad.view(-1)[wanted] = 100.0  # the loss wants this pruned connection most
    assert regrow_by_gradient(masks, layers, 0.1) == int(0.1 * counts[2])
    assert bool(masks.weight[2].flatten()[wanted]) and float(fc1.weight.view(-1)[wanted]) == 0.0  # regrown at zero
    assert not bool(masks.weight[2].flatten()[smallest])
    assert [int(m.sum()) for m in masks.weight] == counts  # density fixed; layers without gradients untouched


def test_masked_block_restores_the_latent_weights_and_keeps_the_dense_gradient():
    model = _cnn()
    layers = synaptic_layers(list(model.children()))
    masks = irregular_masks(list(model.children()), 0.2)
    before = [layer.weight.detach().clone() for layer in layers]
    with masks.masked(layers):
        assert all(torch.equal(layer.weight != 0, m) for layer, m in zip(layers, masks.weight, strict=True))
        model(torch.rand(2, *SHAPE)).sum().backward()
    assert all(torch.equal(layer.weight, b) for layer, b in zip(layers, before, strict=True))
    grad = layers[2].weight.grad
    assert grad[~masks.weight[2]].abs().sum() > 0  # pruned weights get feedback (they may regrow)
    masks.mask_gradients(layers)
    assert grad[~masks.weight[2]].abs().sum() == 0


def test_sparse_training_learns_at_a_fixed_density_and_is_deterministic(digits_data, digits_cnn):
    def run() -> tuple[nn.Sequential, float]:
        model = copy.deepcopy(digits_cnn)  # warm start from a trained network, as the stage does
        masks = irregular_masks(list(model.children()), 0.2)
        history = train_sparse(model, masks, digits_data.train, digits_data.val, input_shape=SHAPE, epochs=2, batch_size=32, lr=3e-3,
                               seed=0, update_interval=5)
        assert history[0].mask_updates > 0
        for layer, mask in zip(synaptic_layers(list(model.children())), masks.weight, strict=True):
            assert torch.equal(layer.weight != 0, mask)
        assert masks.weight_density() == pytest.approx(0.2, abs=0.01)
        return model, accuracy(model, digits_data.test)

    first, score = run()
    second, again = run()
    assert score > 0.8  # 80% of the weights gone, two epochs of sparse learning recover most of the accuracy
    assert score == again and all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), second.state_dict().values(), strict=True))


class Interrupted(Exception):
    pass


@pytest.mark.parametrize("mode", ["irregular", "structured"])
def test_sparse_training_interrupted_mid_epoch_resumes_to_the_same_network_and_masks(digits_data, digits_cnn, tmp_path, mode):
    """Killed in epoch 2 (after mask updates), a rerun resumes after epoch 1 with epoch 1's masks
    and ends where an uninterrupted run ends: same weights, masks and per-epoch history."""

    def run(checkpoint=None, crash_at=0):
        model = copy.deepcopy(digits_cnn)
        modules = list(model.children())
        masks = irregular_masks(modules, 0.2) if mode == "irregular" else structured_masks(modules, SHAPE, 0.5)

        calls = {"n": 0}

        def loss_fn(model, x, y):
            calls["n"] += 1
            if calls["n"] == crash_at:
                raise Interrupted
            logits = model(x)
            return nn.functional.cross_entropy(logits, y), logits

        history = train_sparse(model, masks, digits_data.train, digits_data.val, input_shape=SHAPE, epochs=3, batch_size=32, lr=3e-3,
                               seed=0, loss_fn=loss_fn, update_interval=4, train_subset=320, checkpoint=checkpoint)
        return model, masks, [{k: v for k, v in vars(h).items() if k != "seconds"} for h in history]

    reference, reference_masks, reference_history = run()
    assert reference_history[1]["mask_updates"] > 0  # the resumed epochs change the masks, so the masks must be restored
    checkpoint = tmp_path / "sparse.pt"
    with pytest.raises(Interrupted):
        run(checkpoint, crash_at=10 + 7)  # 320 images / 32 per batch = 10 steps per epoch: in epoch 2, after its mask update
    model, masks, history = run(checkpoint)
    assert history == reference_history
    assert all(torch.equal(a, b) for a, b in zip(masks.weight, reference_masks.weight, strict=True))
    for key, value in reference.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key
