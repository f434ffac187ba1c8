"""`train_snn` (and `train_sparse`) on scikit-learn's digits, for test_snn_training_distributed.py.

The test calls `fine_tune` in its own process (one process, no process group) and launches
this file under torchrun:

    python -m torch.distributed.run --standalone --nproc_per_node 2 snn_training_worker.py START OUT_DIR [ANN]

where every process fine-tunes the network uninterrupted, then again with a checkpoint,
stopped after epoch 1 and rerun (it resumes), and saves both results to OUT_DIR/rank<k>.pt.
Given the ANN's state dict, it does the same with sparse learning of that ANN (RigL masks).

The training exercises what the stages use: learnable thresholds and leaks, a pruning mask
kept by before_step/after_step hooks, an extra loss, a global batch (33) that two processes
split unevenly (17 + 16) and a last batch of one image (one process gets an empty share).
"""

from __future__ import annotations

import sys
from dataclasses import asdict
from pathlib import Path

import torch

from baselines.models import ArchConfig, build_model
from spikebench.data import SplitData, load_dataset, make_splits, to_split_data
from spikebench.distributed import init_from_env, shutdown
from spikebench.snn_training import SnnEpochStats, evaluate_snn, train_snn, trainable
from spikebench.sparse_masks import SparseEpochStats, irregular_masks, train_sparse
from spikebench.spiking import SimulationResult, SpikingNetwork, load_snn
from spikebench.training import accuracy

TIMESTEPS = 4
BATCH_SIZE = 33
TRAIN_SUBSET = 16 * BATCH_SIZE + 1


class Stop(Exception):
    """Stands for a kill between epochs."""


def digits() -> SplitData:
    """The split of tests/conftest.py's digits_data fixture."""
    raw = load_dataset("digits")
    return to_split_data(raw, make_splits(raw, val_fraction=0.1, test_fraction=0.2, seed=0))


def fine_tune(start: Path, data: SplitData, checkpoint: Path | None = None, stop_after: int = 0) -> tuple[SpikingNetwork, list[SnnEpochStats]]:
    converted, _ = load_snn(start)
    net = trainable(converted, learn_threshold=True, learn_leak=True)
    conv = net.layers[net.synaptic[0]]
    mask = (torch.arange(conv.weight.numel()) % 4 != 0).to(conv.weight.dtype).view_as(conv.weight)

    def before_step(model: SpikingNetwork) -> None:
        conv.weight.grad.mul_(mask)

    def after_step(model: SpikingNetwork) -> None:
        with torch.no_grad():
            conv.weight.mul_(mask)

    def extra_loss(model: SpikingNetwork, result: SimulationResult) -> torch.Tensor:
        return 1e-5 * sum(s.sum() for s in result.spikes_per_step) / result.membrane.shape[1]

    def on_epoch(stats: SnnEpochStats) -> None:
        if stats.epoch == stop_after:
            raise Stop

    after_step(net)
    history = train_snn(net, data.train, data.val, timesteps=TIMESTEPS, epochs=2, batch_size=BATCH_SIZE, lr=2e-3, neuron_lr=5e-3,
                        seed=0, train_subset=TRAIN_SUBSET, extra_loss=extra_loss, before_step=before_step, after_step=after_step,
                        on_epoch=on_epoch, desc="worker", checkpoint=checkpoint)
    return net, history


def sparse_learning(ann: Path, data: SplitData, checkpoint: Path | None = None, stop_after: int = 0
                    ) -> tuple[torch.nn.Module, list[SparseEpochStats]]:
    model = build_model(ArchConfig("cnn", data.input_shape, data.num_classes, channels=(16, 32, 64)))
    model.load_state_dict(torch.load(ann, weights_only=True))
    masks = irregular_masks(list(model.children()), 0.2)

    def on_epoch(stats: SparseEpochStats) -> None:
        if stats.epoch == stop_after:
            raise Stop

    history = train_sparse(model, masks, data.train, data.val, input_shape=data.input_shape, epochs=2, batch_size=BATCH_SIZE, lr=3e-3,
                           seed=0, update_interval=4, train_subset=TRAIN_SUBSET, on_epoch=on_epoch, checkpoint=checkpoint)
    return model, history


def sparse_summary(model: torch.nn.Module, history: list[SparseEpochStats], data: SplitData) -> dict:
    return {"state": {k: v.detach().clone() for k, v in model.state_dict().items()}, "history": [asdict(h) for h in history],
            "test_accuracy": accuracy(model, data.test)}


def summary(net: SpikingNetwork, history: list[SnnEpochStats], data: SplitData) -> dict:
    return {"state": {k: v.detach().clone() for k, v in net.state_dict().items()}, "history": [asdict(h) for h in history],
            "test_accuracy": evaluate_snn(net, data.test, TIMESTEPS)}


def main() -> None:
    start, out = Path(sys.argv[1]), Path(sys.argv[2])
    rank, world = init_from_env("cpu")
    data = digits()
    result = {"world": world, "uninterrupted": summary(*fine_tune(start, data), data)}
    try:
        fine_tune(start, data, out / "checkpoint.pt", stop_after=1)
    except Stop:
        pass
    result["resumed"] = summary(*fine_tune(start, data, out / "checkpoint.pt"), data)
    if len(sys.argv) > 3:
        ann = Path(sys.argv[3])
        result["sparse"] = sparse_summary(*sparse_learning(ann, data), data)
        try:
            sparse_learning(ann, data, out / "sparse.pt", stop_after=1)
        except Stop:
            pass
        result["sparse_resumed"] = sparse_summary(*sparse_learning(ann, data, out / "sparse.pt"), data)
    torch.save(result, out / f"rank{rank}.pt")
    shutdown()


if __name__ == "__main__":
    main()
