"""The one training loop (`train_epochs`) and the plain classifier training built on it (`fit`)."""

from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass

import pytest
import torch
from torch import nn

from spikebench.training import EpochStats, Hooks, epoch_size, fit, seed_everything, total_steps, train_epochs

N, FEATURES, CLASSES = 50, 4, 3


@pytest.fixture
def toy() -> tuple[torch.Tensor, torch.Tensor]:
    """Feature 0 is the image's index, so a step can tell which images it was given."""
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(N, FEATURES, generator=generator)
    x[:, 0] = torch.arange(N, dtype=torch.float32)
    return x, torch.randint(0, CLASSES, (N,), generator=generator)


class Interrupted(Exception):
    pass


def _train(data, *, seed=0, epochs=3, train_subset=0, checkpoint=None, hooks=None, seen=None):
    torch.manual_seed(0)
    model = nn.Linear(FEATURES, CLASSES)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)

    def step(x, y):
        if seen is not None:
            seen.append(x[:, 0].long().tolist())
        logits = model(x)
        return nn.functional.cross_entropy(logits, y), logits

    history = train_epochs(model, optimizer, data, step=step, validate=lambda: 0.5, epochs=epochs, batch_size=8, seed=seed,
                           train_subset=train_subset, hooks=hooks, checkpoint=checkpoint, desc="toy")
    return model, history


def _untimed(history):
    return [{k: v for k, v in asdict(h).items() if k != "seconds"} for h in history]


def test_batches_follow_one_seeded_permutation_per_epoch_and_a_fresh_subset(toy):
    """The batch order a seed fixes: epoch k's images are the head of the k-th permutation drawn."""
    seen: list[list[int]] = []
    _train(toy, seed=7, epochs=2, train_subset=20, seen=seen)
    generator = torch.Generator().manual_seed(7)
    expected = [torch.randperm(N, generator=generator)[:20].tolist() for _ in range(2)]
    assert [sum(seen[:3], []), sum(seen[3:], [])] == expected  # 20 images in batches of 8: 3 steps an epoch
    assert [len(b) for b in seen] == [8, 8, 4] * 2
    assert set(expected[0]) != set(expected[1])  # each epoch draws a fresh subset


def test_same_seed_same_weights_other_seed_other_weights(toy):
    first, history = _train(toy, seed=1)
    second, again = _train(toy, seed=1)
    other, _ = _train(toy, seed=2)
    assert torch.equal(first.weight, second.weight) and _untimed(history) == _untimed(again)
    assert not torch.equal(first.weight, other.weight)
    assert history[-1].train_loss < history[0].train_loss


def test_interrupted_mid_epoch_resumes_to_the_uninterrupted_weights(toy, tmp_path):
    reference, reference_history = _train(toy, train_subset=30)

    def crash(step: int) -> None:
        if step == 4 + 2:  # 30 images in batches of 8: 4 steps an epoch, so in epoch 2
            raise Interrupted

    with pytest.raises(Interrupted):
        _train(toy, train_subset=30, checkpoint=tmp_path / "state.pt", hooks=Hooks(after_step=crash))
    resumed, history = _train(toy, train_subset=30, checkpoint=tmp_path / "state.pt")
    assert [h.epoch for h in history] == [1, 2, 3]
    assert _untimed(history) == _untimed(reference_history)
    assert torch.equal(resumed.weight, reference.weight) and torch.equal(resumed.bias, reference.bias)
    # a finished run's state just reloads: no further training
    again, history = _train(toy, train_subset=30, checkpoint=tmp_path / "state.pt", seen=(seen := []))
    assert seen == [] and len(history) == 3 and torch.equal(again.weight, reference.weight)


def test_hooks_run_in_order_around_every_step(toy):
    events: list[str] = []

    @contextlib.contextmanager
    def around():
        events.append("enter")
        yield
        events.append("exit")

    @dataclass
    class Record:
        epoch: int
        loss: float

    hooks = Hooks(step_context=around, before_step=lambda s: events.append(f"before {s}"), after_step=lambda s: events.append(f"after {s}"),
                  end_epoch=lambda stats: Record(stats.epoch, stats.train_loss), on_epoch=lambda r: events.append(f"epoch {r.epoch}"))
    _, history = _train(toy, epochs=2, train_subset=16, hooks=hooks)
    assert events[:8] == ["enter", "exit", "before 1", "after 1", "enter", "exit", "before 2", "after 2"]
    assert events[8] == "epoch 1" and events[-1] == "epoch 2" and "before 4" in events  # steps count over the whole run
    assert all(isinstance(r, Record) for r in history)


def test_run_length_helpers():
    assert epoch_size(100) == 100 and epoch_size(100, 30) == 30 and epoch_size(10, 30) == 10
    assert total_steps(100, 32, 2) == 8 and total_steps(100, 32, 2, train_subset=40) == 4 and total_steps(100, 32, 0) == 1


def test_fit_is_deterministic_and_resumes(digits_data, tmp_path):
    from baselines.models import ArchConfig, build_model

    def train(checkpoint=None, stop_after=0) -> tuple[nn.Module, list[EpochStats]]:
        seed_everything(1)
        model = build_model(ArchConfig("mlp", digits_data.input_shape, 10, channels=(32,)))

        def stop(stats: EpochStats) -> None:
            if stats.epoch == stop_after:
                raise Interrupted

        history = fit(model, digits_data.train, digits_data.val, epochs=3, batch_size=64, lr=1e-2, weight_decay=1e-4, seed=1,
                      on_epoch=stop, checkpoint=checkpoint)
        return model, history

    reference, history = train()
    assert history[-1].val_accuracy > 0.8
    with pytest.raises(Interrupted):
        train(tmp_path / "ann.pt", stop_after=2)
    resumed, again = train(tmp_path / "ann.pt")
    assert _untimed(again) == _untimed(history)
    for a, b in zip(reference.state_dict().values(), resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b)
