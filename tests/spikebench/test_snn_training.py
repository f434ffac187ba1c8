"""The shared surrogate-gradient SNN training loop (hybrid training from a converted ANN)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from spikebench.convert import convert
from spikebench.energy import E_AC_J, E_MAC_J
from spikebench.errors import ParamsError
from spikebench.snn_training import evaluate_snn, measure_snn, train_snn, trainable


@pytest.fixture(scope="module")
def converted(digits_cnn, digits_data):
    return convert(digits_cnn, digits_data.calibration(256, seed=0), percentile=99.9)


def _train(net, data, **options):
    defaults = dict(timesteps=2, epochs=2, batch_size=32, lr=2e-3, seed=0, train_subset=512, val_subset=200)
    return train_snn(net, data.train, data.val, **{**defaults, **options})


def test_trainable_copy_learns_thresholds_and_simulates_identically(converted, digits_data):
    net = trainable(converted, learn_threshold=True, learn_leak=True)
    assert isinstance(net.thresholds, nn.Parameter) and isinstance(net.leaks, nn.Parameter)
    assert not isinstance(converted.thresholds, nn.Parameter)
    x = digits_data.test[0][:50]
    with torch.no_grad():
        assert torch.allclose(net(x, 4).membrane, converted(x, 4).membrane, atol=1e-4)  # leak loop vs cumsum rounding


def test_surrogate_training_at_low_t_beats_the_converted_network(converted, digits_data):
    """Converted SNNs need many steps; BPTT at T=2 recovers much of the ANN's accuracy."""
    before = evaluate_snn(converted, digits_data.val, 2)
    net = trainable(converted)
    history = _train(net, digits_data)
    after = evaluate_snn(net, digits_data.val, 2)
    assert after > before + 0.05
    assert history[-1].train_loss < history[0].train_loss
    assert history[-1].thresholds != [1.0, 1.0, 1.0]  # thresholds were learnt
    assert min(history[-1].thresholds) > 0


def test_same_seed_gives_the_same_network(converted, digits_data):
    first, second = trainable(converted), trainable(converted)
    _train(first, digits_data, epochs=1)
    _train(second, digits_data, epochs=1)
    for a, b in zip(first.parameters(), second.parameters(), strict=True):
        assert torch.equal(a, b)


def test_hooks_mask_weights_and_extra_loss_is_added(converted, digits_data):
    net = trainable(converted)
    conv = net.layers[net.synaptic[0]]
    mask = torch.ones_like(conv.weight)
    mask[::2] = 0
    calls = {"loss": 0, "before": 0}

    def extra_loss(model, result):
        calls["loss"] += 1
        return 0.0 * result.membrane.sum()

    def before_step(model):
        calls["before"] += 1
        conv.weight.grad.mul_(mask)

    def after_step(model):
        with torch.no_grad():
            conv.weight.mul_(mask)

    before = conv.weight.detach().clone()
    _train(net, digits_data, epochs=1, train_subset=96, extra_loss=extra_loss, before_step=before_step, after_step=after_step)
    assert calls == {"loss": 3, "before": 3}
    assert not conv.weight[::2].any()
    assert not torch.equal(conv.weight[1::2], before[1::2])


def test_measurement_energy_follows_the_45nm_op_model(converted, digits_data):
    measured = measure_snn(converted, (digits_data.test[0][:100], digits_data.test[1][:100]), 4, digits_data.input_shape)
    metrics = measured.metrics
    assert metrics.timesteps == 4 and metrics.spikes > 0 and metrics.synops > metrics.spikes
    assert measured.energy_j == pytest.approx(E_MAC_J * metrics.macs + E_AC_J * metrics.synops)
    assert measured.accuracy == pytest.approx(evaluate_snn(converted, (digits_data.test[0][:100], digits_data.test[1][:100]), 4))


@pytest.mark.parametrize(("option", "value"), [("timesteps", 0), ("batch_size", 0), ("lr", 0.0)])
def test_bad_training_arguments_are_refused_by_name(converted, digits_data, option, value):
    with pytest.raises(ParamsError, match=option):
        _train(trainable(converted), digits_data, **{option: value})


class Interrupted(Exception):
    pass


def test_training_interrupted_mid_epoch_resumes_to_the_same_network(converted, digits_data, tmp_path):
    """Killed in the middle of epoch 2, a rerun resumes after epoch 1 and ends where an
    uninterrupted run ends: same weights, thresholds and per-epoch history."""
    reference = trainable(converted, learn_threshold=True)
    reference_history = _train(reference, digits_data, epochs=3)

    checkpoint = tmp_path / "snn.pt"
    steps = {"n": 0}

    def crash_in_epoch_two(net):
        steps["n"] += 1
        if steps["n"] == 16 + 5:  # 512 images / 32 per batch = 16 steps per epoch
            raise Interrupted

    first = trainable(converted, learn_threshold=True)
    with pytest.raises(Interrupted):
        _train(first, digits_data, epochs=3, checkpoint=checkpoint, after_step=crash_in_epoch_two)
    assert checkpoint.exists()

    resumed = trainable(converted, learn_threshold=True)
    history = _train(resumed, digits_data, epochs=3, checkpoint=checkpoint)
    assert [h.epoch for h in history] == [1, 2, 3]
    assert [round(h.val_accuracy, 6) for h in history] == [round(h.val_accuracy, 6) for h in reference_history]
    for key, value in reference.state_dict().items():
        torch.testing.assert_close(resumed.state_dict()[key], value, rtol=0, atol=0)

    # a finished run's checkpoint just reloads the final state: no further training
    again = trainable(converted, learn_threshold=True)
    assert len(_train(again, digits_data, epochs=3, checkpoint=checkpoint)) == 3
    torch.testing.assert_close(again.thresholds, reference.thresholds, rtol=0, atol=0)


def test_resume_directory_changes_with_the_input_files_it_starts_from(tmp_path):
    from spikebench.training_state import discard_resume_directory, resume_directory

    ann = tmp_path / "ann.pt"
    ann.write_bytes(b"weights v1")
    first = resume_directory("st_pruning", {"epochs": 2}, "split", 0, inputs=[ann])
    assert resume_directory("st_pruning", {"epochs": 2}, "split", 0, inputs=[ann]) == first
    ann.write_bytes(b"weights v2")  # a retrained ANN must not resume states trained from the old one
    assert resume_directory("st_pruning", {"epochs": 2}, "split", 0, inputs=[ann]) != first
    assert resume_directory("st_pruning", {"epochs": 3}, "split", 0, inputs=[ann]) != first
    state = tmp_path / first / "temporal_T8.pt"
    state.parent.mkdir(parents=True)
    state.write_bytes(b"x")
    discard_resume_directory(tmp_path / first)
    assert not (tmp_path / first).exists()
